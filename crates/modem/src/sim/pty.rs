//! The pseudo-terminal the simulated modem sits behind.
//!
//! The simulator keeps the master side; the client opens the slave by path, like a
//! `/dev/ttyUSB2`. Both sides are raw (no echo, no CR/LF translation by the tty layer), so the
//! only echo the client sees is the modem's own `ATE1` echo and every byte arrives unchanged.
//!
//! Linux facts this relies on (checked by the tests):
//! - while no process has the slave open, `poll` on the master reports `POLLHUP` and `read`
//!   fails with `EIO`: "no client yet", not an error;
//! - bytes written to the master while nobody has the slave open stay queued for the next
//!   opener, so the simulator writes nothing then and discards what a departed client left
//!   unread (a real serial port does not replay old output to a new opener);
//! - closing the master makes the client's reads return EOF and its writes fail with `EIO`.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl, open};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::sys::stat::Mode;
use nix::sys::termios::{FlushArg, SetArg, cfmakeraw, tcflush, tcgetattr, tcsetattr};
use tokio::io::unix::AsyncFd;

/// What a read of the master gave.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ReadOutcome {
    /// This many bytes.
    Data(usize),
    /// Nobody has the slave open (any more).
    NoClient,
    /// The readiness is stale (see [`Pty::rearm`]); nothing was read.
    Stale,
}

/// One PTY pair, of which the simulator holds the master side.
#[derive(Debug)]
pub(crate) struct Pty {
    /// Always `Some` between calls; `None` only if re-registering failed.
    master: Option<AsyncFd<OwnedFd>>,
    slave_path: PathBuf,
}

impl Pty {
    /// Opens a new PTY pair, puts it in raw mode and closes the slave side again, so that the
    /// client can open it by path (it takes an exclusive lock on it).
    pub(crate) fn open() -> io::Result<Pty> {
        // Close-on-exec from the first moment: a child process started meanwhile (a test
        // spawning a daemon) must not inherit the master, or closing it here would no longer
        // hang the line up ("unplug" would not unplug).
        let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)?;
        grantpt(&master)?;
        unlockpt(&master)?;
        let slave_path = PathBuf::from(ptsname_r(&master)?);
        let slave = open(
            &slave_path,
            OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        let master = OwnedFd::from(master);
        // The line discipline works with the slave's settings: make them raw.
        let mut termios = tcgetattr(&slave)?;
        cfmakeraw(&mut termios);
        tcsetattr(&slave, SetArg::TCSANOW, &termios)?;
        let mut termios = tcgetattr(&master)?;
        cfmakeraw(&mut termios);
        tcsetattr(&master, SetArg::TCSANOW, &termios)?;
        let flags = OFlag::from_bits_truncate(fcntl(&master, FcntlArg::F_GETFL)?);
        fcntl(&master, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
        drop(slave);
        Ok(Pty {
            master: Some(register(master)?),
            slave_path,
        })
    }

    fn master(&self) -> io::Result<&AsyncFd<OwnedFd>> {
        self.master
            .as_ref()
            .ok_or_else(|| io::Error::other("PTY master lost"))
    }

    /// Registers the master with the reactor afresh. Needed after a hang-up: tokio keeps the
    /// "closed" readiness of an `AsyncFd` for good once it has seen one (clearing readiness
    /// leaves those bits), so after a client left, `readable()` would return at once forever,
    /// even for the next client.
    pub(crate) fn rearm(&mut self) -> io::Result<()> {
        if let Some(old) = self.master.take() {
            self.master = Some(register(old.into_inner())?);
        }
        Ok(())
    }

    /// The slave device, e.g. `/dev/pts/7`.
    pub(crate) fn path(&self) -> &Path {
        &self.slave_path
    }

    /// Whether some process has the slave open (the master shows no hang-up).
    pub(crate) fn client_present(&self) -> bool {
        let Ok(master) = self.master() else {
            return false;
        };
        let mut fds = [PollFd::new(master.get_ref().as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::ZERO) {
            Ok(_) => !fds[0]
                .revents()
                .is_some_and(|r| r.contains(PollFlags::POLLHUP)),
            Err(_) => false,
        }
    }

    /// Waits for bytes from the client.
    pub(crate) async fn read(&self, buf: &mut [u8]) -> io::Result<ReadOutcome> {
        let master = self.master()?;
        loop {
            let mut guard = master.readable().await?;
            match nix::unistd::read(master.get_ref(), buf) {
                Ok(0) | Err(Errno::EIO) => {
                    guard.clear_ready();
                    return Ok(ReadOutcome::NoClient);
                }
                Ok(n) => return Ok(ReadOutcome::Data(n)),
                Err(Errno::EAGAIN) if guard.ready().is_read_closed() => {
                    return Ok(ReadOutcome::Stale);
                }
                Err(Errno::EAGAIN) => guard.clear_ready(),
                Err(Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Reads what is there without waiting (after a client appeared, before the next edge).
    pub(crate) fn try_read(&self, buf: &mut [u8]) -> io::Result<ReadOutcome> {
        match nix::unistd::read(self.master()?.get_ref(), buf) {
            Ok(0) | Err(Errno::EIO) => Ok(ReadOutcome::NoClient),
            Ok(n) => Ok(ReadOutcome::Data(n)),
            Err(Errno::EAGAIN) | Err(Errno::EINTR) => Ok(ReadOutcome::Data(0)),
            Err(e) => Err(e.into()),
        }
    }

    /// Writes some of `buf` once the client's input queue has room; returns how much, `None`
    /// when the readiness was stale (see [`Pty::rearm`]).
    pub(crate) async fn write(&self, buf: &[u8]) -> io::Result<Option<usize>> {
        let master = self.master()?;
        loop {
            let mut guard = master.writable().await?;
            match nix::unistd::write(master.get_ref(), buf) {
                Ok(n) => return Ok(Some(n)),
                Err(Errno::EAGAIN) if guard.ready().is_write_closed() => return Ok(None),
                Err(Errno::EAGAIN) => guard.clear_ready(),
                Err(Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Throws away what the departed client left unread and what it wrote that was not read
    /// yet, so the next opener starts on a clean line.
    pub(crate) fn discard_stale(&self) {
        if let Ok(master) = self.master() {
            let _ = tcflush(master.get_ref(), FlushArg::TCIFLUSH);
        }
        // The queue towards the client is the slave's input queue: flush it from the slave side.
        if let Ok(slave) = open(
            &self.slave_path,
            OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_NONBLOCK,
            Mode::empty(),
        ) {
            let _ = tcflush(&slave, FlushArg::TCIFLUSH);
        }
    }
}

/// Registers a descriptor with tokio's reactor.
fn register(fd: OwnedFd) -> io::Result<AsyncFd<OwnedFd>> {
    // `AsyncFd::new` is deprecated (tokio#8587) because it cannot know that an arbitrary
    // `T: AsRawFd` keeps its descriptor open; its replacement `register` is `unsafe`, which this
    // crate forbids. An `OwnedFd` owns its descriptor for the `AsyncFd`'s whole life, which is
    // exactly the contract `register` asks for, so the safe constructor is sound here
    // (tokio-serial calls it the same way).
    #[allow(deprecated)]
    AsyncFd::new(fd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_master_is_not_inherited_by_child_processes() {
        let pty = Pty::open().expect("pty");
        let master = pty.master().expect("master");
        let flags = fcntl(master.get_ref(), FcntlArg::F_GETFD).expect("F_GETFD");
        assert!(
            nix::fcntl::FdFlag::from_bits_truncate(flags).contains(nix::fcntl::FdFlag::FD_CLOEXEC)
        );
        assert!(pty.path().starts_with("/dev/pts"), "{:?}", pty.path());
        assert!(!pty.client_present());
    }
}
