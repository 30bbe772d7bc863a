//! The one task that owns the PTY master and plays the modem.
//!
//! It waits on four things at once: control messages from the handles, bytes from the client,
//! room to write pending output, and the next timer (a send's answer after the network latency,
//! a status report, a boot URC, noise). Nothing in it blocks except the small append to the JSONL
//! log.
//!
//! This file holds the task itself: its state, the wait loop, the controls (unplug, replug,
//! reboot) and the timers. What it does with what arrives is cut along the modem's parts:
//!
//! - `input`: bytes → command lines, and the PDU typed after the `> ` prompt.
//! - `commands`: the AT command handlers (V.250 basic, TS 27.007 / 27.005 extended).
//! - `storage`: the commands that read and delete the SIM's message stores.
//! - `network`: the simulated network: send answers, status reports, inbound delivery.
//! - `output`: bytes back to the client: information lines, result codes, URCs, noise.

mod commands;
mod input;
mod network;
mod output;
mod storage;

use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};
use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::{Instant, sleep, sleep_until};
use tracing::{debug, warn};

use super::at::Failure;
use super::pty::{Pty, ReadOutcome};
use super::state::{Assembler, Settings, SimLock};
use super::{Control, ModemView, Shared, SimConfig};
use commands::After;
use input::Line;
use network::SendOutcome;

/// How often to look for a client while nobody has the slave open.
const CLIENT_POLL: Duration = Duration::from_millis(20);
/// Pending timers (mostly status reports).
const MAX_TIMERS: usize = 100_000;

/// Creates the PTY and the link, and spawns the task.
pub(crate) async fn spawn(
    cfg: SimConfig,
    shared: Arc<Shared>,
    rx: mpsc::Receiver<Control>,
) -> io::Result<()> {
    let append = |path: &Option<std::path::PathBuf>| -> io::Result<Option<File>> {
        match path {
            Some(path) => std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map(Some),
            None => Ok(None),
        }
    };
    let log = append(&cfg.log)?;
    let command_log = append(&cfg.command_log)?;
    let pty = Pty::open()?;
    if let Some(link) = &cfg.link {
        set_link(link, pty.path())?;
    }
    {
        let mut s = shared.lock();
        s.slave_path = Some(pty.path().to_path_buf());
        s.stores.smsc = cfg.smsc.clone();
    }
    debug!(path = %pty.path().display(), "modem simulator started");
    let mut actor = Actor::new(cfg, shared, rx, pty, log);
    actor.command_log = command_log;
    actor.publish();
    tokio::spawn(actor.run());
    Ok(())
}

/// Points `link` at `target`, atomically (a temporary symlink renamed over it). Refuses to
/// replace anything that is not a symlink.
fn set_link(link: &Path, target: &Path) -> io::Result<()> {
    if let Ok(meta) = std::fs::symlink_metadata(link)
        && !meta.file_type().is_symlink()
    {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a symlink", link.display()),
        ));
    }
    let name = link
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = link.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp)?;
    std::fs::rename(&tmp, link)
}

/// Removes `link` if it is a symlink.
pub(crate) fn remove_link(link: &Path) {
    if std::fs::symlink_metadata(link).is_ok_and(|m| m.file_type().is_symlink()) {
        let _ = std::fs::remove_file(link);
    }
}

#[derive(Debug)]
enum Event {
    SendDone {
        epoch: u64,
        outcome: SendOutcome,
    },
    StatusReport {
        pdu: Vec<u8>,
    },
    Noise,
    SmsReady {
        epoch: u64,
    },
    AckTimeout {
        id: u64,
    },
    /// The network's answer to a USSD request.
    Ussd {
        urc: String,
    },
    /// The input timer of the prompt numbered `prompt`.
    PromptTimeout {
        epoch: u64,
        prompt: u64,
    },
    /// The network tries again to deliver what it holds (as an SMSC retries).
    RetryHeld,
}

#[derive(Debug)]
struct Timer {
    at: Instant,
    seq: u64,
    event: Event,
}

impl PartialEq for Timer {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at && self.seq == other.seq
    }
}
impl Eq for Timer {}
impl PartialOrd for Timer {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Timer {
    /// Reversed, so that `BinaryHeap` pops the earliest first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// What woke the task up.
enum Wake {
    Control(Option<Control>),
    Read(io::Result<ReadOutcome>),
    Wrote(io::Result<Option<usize>>),
    Poll,
    Timer,
}

struct Actor {
    cfg: SimConfig,
    shared: Arc<Shared>,
    rx: mpsc::Receiver<Control>,
    pty: Option<Pty>,
    /// A client has the slave open.
    connected: bool,
    /// An [`Event::RetryHeld`] is scheduled.
    retry_held: bool,
    /// Send the boot URCs when the next client appears (after start/replug).
    boot_on_connect: bool,
    settings: Settings,
    sim: SimLock,
    /// The PIN the SIM asks for (changed by `require_pin` and by a PUK unlock).
    pin: Option<String>,
    cfun: u8,
    /// `SMS Ready` was reached (always, without boot URCs).
    sms_ready: bool,
    line: Line,
    /// The last byte ended a command line (a following LF belongs to it).
    after_cr: bool,
    /// A command's final result is still due; input waits.
    busy: bool,
    queued_input: VecDeque<u8>,
    out: Vec<u8>,
    timers: BinaryHeap<Timer>,
    timer_seq: u64,
    /// Bumped by every reset and replug: timers of an earlier life are void.
    epoch: u64,
    rng: fastrand::Rng,
    assembler: Assembler,
    /// `^SMMEMFULL` was sent for the current full spell.
    memfull_reported: bool,
    buffered_urcs: VecDeque<Vec<u8>>,
    /// Direct deliveries (`+CMT`, `+CDS`) awaiting `AT+CNMA` with `AT+CSMS=1`.
    unacked: VecDeque<(u64, Vec<u8>)>,
    next_ack_id: u64,
    log: Option<File>,
    /// `SimConfig::command_log`.
    command_log: Option<File>,
    last_line: String,
    /// Counts prompts, so that the input timer of an earlier one does nothing.
    prompts: u64,
    frozen: bool,
    after: Vec<After>,
    /// On a slow line: when the next byte may be read / written.
    read_free_at: Instant,
    write_free_at: Instant,
}

/// When the line is free again after moving `n` bytes at `byte_time` each.
fn pace(byte_time: Duration, n: usize) -> Instant {
    let n = u32::try_from(n).unwrap_or(u32::MAX);
    Instant::now() + byte_time.saturating_mul(n)
}

impl Actor {
    fn new(
        cfg: SimConfig,
        shared: Arc<Shared>,
        rx: mpsc::Receiver<Control>,
        pty: Pty,
        log: Option<File>,
    ) -> Self {
        let rng = fastrand::Rng::with_seed(cfg.seed);
        let pin = cfg.pin.clone();
        let mut a = Actor {
            settings: Settings::defaults(cfg.echo),
            sim: SimLock::Ready,
            pin,
            cfun: 1,
            sms_ready: !cfg.boot_urcs,
            cfg,
            shared,
            rx,
            pty: Some(pty),
            connected: false,
            retry_held: false,
            boot_on_connect: true,
            line: Line::command(),
            after_cr: false,
            busy: false,
            queued_input: VecDeque::new(),
            out: Vec::new(),
            timers: BinaryHeap::new(),
            timer_seq: 0,
            epoch: 0,
            rng,
            assembler: Assembler::default(),
            memfull_reported: false,
            buffered_urcs: VecDeque::new(),
            unacked: VecDeque::new(),
            next_ack_id: 0,
            log,
            command_log: None,
            last_line: String::new(),
            prompts: 0,
            frozen: false,
            after: Vec::new(),
            read_free_at: Instant::now(),
            write_free_at: Instant::now(),
        };
        a.sim = a.locked_sim();
        a
    }

    /// Tells the handles what they need to store inbound messages themselves.
    fn publish(&self) {
        self.shared.lock().view = ModemView {
            plugged: self.pty.is_some(),
            ready: self.registered() && self.sms_ready,
            mt: self.settings.cnmi.mt,
            mem3: self.settings.mem[2],
        };
    }

    /// A state-changing control was applied: publish the new view and count it done.
    fn applied(&self) {
        self.publish();
        let mut s = self.shared.lock();
        s.in_flight = s.in_flight.saturating_sub(1);
    }

    fn locked_sim(&self) -> SimLock {
        if self.pin.is_some() {
            SimLock::Pin { tries: 3 }
        } else {
            SimLock::Ready
        }
    }

    async fn run(mut self) {
        let first_noise = self.noise_interval();
        self.schedule(first_noise, Event::Noise);
        let mut buf = vec![0u8; 4096];
        loop {
            let deadline = self.timers.peek().map(|t| t.at);
            let want_write = self.connected && !self.out.is_empty();
            let reading = self.pty.is_some() && self.connected;
            let polling = self.pty.is_some() && !self.connected;
            // A slow line moves one byte per `byte_time` each way.
            let byte_time = self.shared.lock().knobs.byte_time;
            let chunk = if byte_time.is_zero() { usize::MAX } else { 1 };
            let paced = !byte_time.is_zero();
            let read_at = paced.then_some(self.read_free_at);
            let write_at = paced.then_some(self.write_free_at);
            let wake = {
                let pty = self.pty.as_ref();
                let out = self
                    .out
                    .get(..chunk.min(self.out.len()))
                    .unwrap_or_default();
                let rx = &mut self.rx;
                let end = chunk.min(buf.len());
                let buf = buf.get_mut(..end).unwrap_or_default();
                tokio::select! {
                    biased;
                    c = rx.recv() => Wake::Control(c),
                    r = async { if let Some(at) = read_at { sleep_until(at).await; } match pty { Some(p) => p.read(buf).await, None => std::future::pending().await } }, if reading => Wake::Read(r),
                    w = async { if let Some(at) = write_at { sleep_until(at).await; } match pty { Some(p) => p.write(out).await, None => std::future::pending().await } }, if want_write => Wake::Wrote(w),
                    () = sleep(CLIENT_POLL), if polling => Wake::Poll,
                    () = async { match deadline { Some(d) => sleep_until(d).await, None => std::future::pending().await } }, if deadline.is_some() => Wake::Timer,
                }
            };
            match wake {
                Wake::Control(None) => break,
                Wake::Control(Some(c)) => {
                    if !self.control(c) {
                        break;
                    }
                }
                Wake::Read(Ok(ReadOutcome::Data(n))) => {
                    self.read_free_at = pace(byte_time, n);
                    // Actions a handle queued before the client wrote these bytes come first.
                    let epoch = self.epoch;
                    if !self.drain_controls() {
                        break;
                    }
                    // Bytes for a modem that has since been unplugged are gone with it.
                    if epoch != self.epoch {
                        continue;
                    }
                    if let Some(bytes) = buf.get(..n) {
                        let bytes = bytes.to_vec();
                        self.input(&bytes);
                    }
                }
                Wake::Read(Ok(ReadOutcome::NoClient)) => self.client_gone(),
                Wake::Read(Ok(ReadOutcome::Stale)) | Wake::Wrote(Ok(None)) => self.rearm(),
                Wake::Read(Err(e)) => {
                    warn!(error = %e, "reading the PTY master failed");
                    self.client_gone();
                }
                Wake::Wrote(Ok(Some(n))) => {
                    self.write_free_at = pace(byte_time, n);
                    self.out.drain(..n.min(self.out.len()));
                }
                Wake::Wrote(Err(e)) => {
                    debug!(error = %e, "writing the PTY master failed");
                    self.client_gone();
                }
                Wake::Poll => self.poll_client(&mut buf),
                Wake::Timer => self.fire_timers(),
            }
            self.publish();
        }
        self.pty = None;
        if let Some(link) = &self.cfg.link {
            remove_link(link);
        }
        self.shared.lock().slave_path = None;
        debug!("modem simulator stopped");
    }

    /// Applies queued control messages without waiting; `false` when told to stop.
    fn drain_controls(&mut self) -> bool {
        while let Ok(c) = self.rx.try_recv() {
            if !self.control(c) {
                return false;
            }
        }
        true
    }

    /// Applies one control message; `false` when told to stop.
    fn control(&mut self, c: Control) -> bool {
        match c {
            Control::Stored(indexes) => {
                self.memfull_reported = false;
                for (mem, index) in indexes {
                    self.indicate_stored(mem, index);
                }
            }
            Control::Raw(bytes) => self.emit(&bytes),
            Control::StatusReport(pdu) => self.deliver_report(pdu),
            Control::Kick => {
                self.check_frozen();
                self.deliver_held();
            }
            Control::RequirePin(pin) => {
                let before = self.registered();
                self.pin = pin;
                self.sim = self.locked_sim();
                self.registration_changed(before);
                self.applied();
                self.deliver_held();
            }
            Control::Unplug => {
                self.unplug();
                self.applied();
            }
            Control::Reboot => {
                // The firmware restarts on the same port: settings back to power-on, the SIM
                // locked again when it has a PIN, the boot URCs on the line.
                self.reset_volatile();
                self.boot_urcs();
                self.applied();
                self.deliver_held();
            }
            Control::Replug(reply) => {
                let r = self.replug();
                self.applied();
                let _ = reply.send(r);
            }
            Control::Shutdown(reply) => {
                self.unplug();
                let _ = reply.send(());
                return false;
            }
        }
        true
    }

    fn unplug(&mut self) {
        if self.pty.take().is_some() {
            debug!("modem unplugged");
        }
        if let Some(link) = &self.cfg.link {
            remove_link(link);
        }
        self.shared.lock().slave_path = None;
        self.connected = false;
        self.reset_volatile();
    }

    fn replug(&mut self) -> io::Result<()> {
        self.unplug();
        let pty = Pty::open()?;
        if let Some(link) = &self.cfg.link {
            set_link(link, pty.path())?;
        }
        self.shared.lock().slave_path = Some(pty.path().to_path_buf());
        debug!(path = %pty.path().display(), "modem replugged");
        self.pty = Some(pty);
        self.boot_on_connect = true;
        // What the network kept for us while we were away.
        self.deliver_held();
        Ok(())
    }

    /// Power cycle: everything but the SIM's contents goes back to power-on state.
    fn reset_volatile(&mut self) {
        self.epoch += 1;
        self.settings = Settings::defaults(self.cfg.echo);
        self.sim = self.locked_sim();
        self.cfun = 1;
        self.sms_ready = !self.cfg.boot_urcs;
        self.line = Line::command();
        self.after_cr = false;
        self.busy = false;
        self.queued_input.clear();
        self.out.clear();
        self.buffered_urcs.clear();
        self.unacked.clear();
        self.memfull_reported = false;
    }

    fn client_gone(&mut self) {
        if self.connected {
            debug!("client closed the port");
        }
        self.connected = false;
        self.out.clear();
        if let Some(p) = &self.pty {
            p.discard_stale();
        }
    }

    fn rearm(&mut self) {
        if let Some(p) = &mut self.pty
            && let Err(e) = p.rearm()
        {
            warn!(error = %e, "re-registering the PTY master failed; modem unplugged");
            self.unplug();
        }
    }

    fn poll_client(&mut self, buf: &mut [u8]) {
        let Some(p) = &self.pty else { return };
        if !p.client_present() {
            return;
        }
        debug!("client opened the port");
        self.rearm();
        self.connected = true;
        if std::mem::take(&mut self.boot_on_connect) && self.cfg.boot_urcs {
            self.boot_urcs();
        }
        // Bytes the client wrote before the next readiness edge.
        if let Some(p) = &self.pty {
            match p.try_read(buf) {
                Ok(ReadOutcome::Data(n)) if n > 0 => {
                    if let Some(bytes) = buf.get(..n) {
                        let bytes = bytes.to_vec();
                        self.input(&bytes);
                    }
                }
                Ok(ReadOutcome::NoClient) => self.client_gone(),
                _ => {}
            }
        }
    }

    // ---- timers ----------------------------------------------------------------------------

    fn schedule(&mut self, after: Duration, event: Event) {
        if self.timers.len() >= MAX_TIMERS {
            warn!("too many pending simulator timers; event dropped");
            return;
        }
        self.schedule_always(after, event);
    }

    fn schedule_always(&mut self, after: Duration, event: Event) {
        self.timer_seq += 1;
        self.timers.push(Timer {
            at: Instant::now() + after,
            seq: self.timer_seq,
            event,
        });
    }

    fn fire_timers(&mut self) {
        let now = Instant::now();
        while self.timers.peek().is_some_and(|t| t.at <= now) {
            let Some(t) = self.timers.pop() else { break };
            match t.event {
                Event::SendDone { epoch, outcome } => {
                    if epoch == self.epoch {
                        self.send_done(outcome);
                    }
                }
                Event::StatusReport { pdu } => self.deliver_report(pdu),
                Event::Ussd { urc } => self.urc(&urc),
                Event::PromptTimeout { epoch, prompt } => {
                    if epoch == self.epoch
                        && prompt == self.prompts
                        && matches!(self.line, Line::Pdu { .. })
                    {
                        // Nothing typed so far is sent; the modem takes commands again.
                        self.line = Line::command();
                        self.final_result(Err(Failure::Cms(500)));
                    }
                }
                Event::Noise => {
                    if self.noise_on() && matches!(self.line, Line::Command { .. }) {
                        self.noise();
                    }
                    let next = self.noise_interval();
                    self.schedule_always(next, Event::Noise);
                }
                Event::RetryHeld => {
                    self.retry_held = false;
                    self.deliver_held();
                }
                Event::SmsReady { epoch } => {
                    if epoch == self.epoch && !self.sms_ready && self.sim == SimLock::Ready {
                        self.sms_ready = true;
                        self.urc("SMS Ready");
                        self.deliver_held();
                    }
                }
                Event::AckTimeout { id } => {
                    if let Some(pos) = self.unacked.iter().position(|(i, _)| *i == id)
                        && let Some((_, urc)) = self.unacked.remove(pos)
                    {
                        // The network did not get its acknowledgement: it delivers again.
                        debug!("no AT+CNMA in time; delivering again");
                        self.indicate(urc);
                    }
                }
            }
        }
    }
}
