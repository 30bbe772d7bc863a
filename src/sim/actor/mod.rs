//! The one task that owns the PTY master and plays the modem.
//!
//! It waits on four things at once: control messages from the handles, bytes from the client,
//! room to write pending output, and the next timer (a send's answer after the network latency,
//! a status report, a boot URC, noise). Nothing in it blocks except the small append to the JSONL
//! log.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};
use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, FixedOffset, Utc};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep, sleep_until};
use tracing::{debug, warn};

use super::at::{Arg, Cmd, Failure, MAX_LINE, Op, parse_commands};
use super::pty::{Pty, ReadOutcome};
use super::state::{
    AcceptedPart, Assembler, Cnmi, Mem, REC_READ, REC_UNREAD, STO_UNSENT, Settings, SimLock,
    tpdu_len,
};
use super::{
    Control, MAX_COMMANDS_KEPT, MAX_HELD, MAX_SENT_KEPT, ModemView, SentMessage, Shared, SimConfig,
};
use crate::sms::{Address, Pdu, Submit, decode, encode_status_report, parse_hex, to_hex};

/// How often to look for a client while nobody has the slave open.
const CLIENT_POLL: Duration = Duration::from_millis(20);
/// Output kept for a client that does not read; beyond it output is dropped.
const MAX_OUT: usize = 1 << 20;
/// Input kept while a command is still running (`AT+CMGS` waiting for the network).
const MAX_QUEUED_INPUT: usize = 4096;
/// Hex digits accepted after the prompt (a PDU is at most 12 + 164 octets).
const MAX_PDU_HEX: usize = 1024;
/// Pending timers (mostly status reports).
const MAX_TIMERS: usize = 100_000;
/// How soon the network tries again to deliver what the modem could not take.
const HELD_RETRY: Duration = Duration::from_secs(1);
/// SMS indications held back while `AT+CNMI` mode is 0.
const MAX_BUFFERED_URCS: usize = 64;
/// The TE character sets `AT+CSCS` accepts (TS 27.007 §5.5).
const CHARSETS: [&str; 3] = ["GSM", "IRA", "UCS2"];
/// The longest `AT+CMGS=<length>`: a TPDU is at most 164 octets (TS 23.040 §9.2.2.2).
const MAX_TPDU: usize = 164;

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

/// What the line discipline of the modem is doing.
#[derive(Debug)]
enum Line {
    /// Collecting a command line.
    Command { buf: Vec<u8>, overflow: bool },
    /// Collecting a PDU after the `> ` prompt, until Ctrl-Z or ESC.
    Pdu {
        kind: PduKind,
        declared: usize,
        hex: Vec<u8>,
        bad: bool,
    },
}

impl Line {
    fn command() -> Line {
        Line::Command {
            buf: Vec::new(),
            overflow: false,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum PduKind {
    /// `AT+CMGS`
    Send,
    /// `AT+CMGW` with this `<stat>`.
    Write(u8),
}

/// The answer of a send, due after the latency.
#[derive(Debug)]
enum SendOutcome {
    Accepted {
        mr: u8,
        submit: Box<Submit>,
        submitted: DateTime<FixedOffset>,
    },
    Failed(Failure),
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

/// What one command of a line did.
enum Step {
    /// Done; these information lines (one block) go before the final result.
    Ok(Vec<String>),
    /// Failed: the line stops here.
    Fail(Failure),
    /// `AT+CMGS`/`AT+CMGW`: the prompt was sent, the PDU comes next.
    Prompt,
}

/// Something to do after the final `OK` of a line.
enum After {
    /// `ATZ`: boot URCs again (when configured).
    BootUrcs,
    /// `AT+CFUN=1,1`: reboot.
    Reboot,
    /// `AT+CNMI=` with `<mode>` > 0: flush (or drop) the buffered indications.
    CnmiBuffer { flush: bool },
    /// Something may have freed room or readied the modem: deliver held-back messages.
    Deliver,
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

    // ---- output ----------------------------------------------------------------------------

    /// Queues bytes for the client; dropped while frozen, unplugged or nobody listens (a real
    /// port does not keep a modem's output for the next opener).
    fn emit(&mut self, bytes: &[u8]) {
        if self.check_frozen() || self.pty.is_none() || !self.connected {
            return;
        }
        if self.out.len() + bytes.len() > MAX_OUT {
            warn!("client does not read; modem output dropped");
            return;
        }
        self.out.extend_from_slice(bytes);
    }

    /// `\r\n<line><line ending>`: a URC or an information line.
    fn urc(&mut self, line: &str) {
        let framed = format!("\r\n{line}{}", self.cfg.line_ending);
        self.emit(framed.as_bytes());
    }

    /// Writes information blocks and the final result code.
    fn respond(&mut self, info: &[Vec<String>], result: Result<(), Failure>) {
        let le = self.cfg.line_ending;
        let mut text = String::new();
        for block in info {
            text.push_str("\r\n");
            for l in block {
                text.push_str(l);
                text.push_str(le);
            }
        }
        self.emit(text.as_bytes());
        if !info.is_empty() && self.noise_on() && self.rng.bool() {
            self.noise();
        }
        self.final_result(result);
    }

    fn final_result(&mut self, result: Result<(), Failure>) {
        let line = match result {
            Ok(()) => "OK".to_string(),
            Err(f) => f.line(self.settings.cmee, self.cfg.cms_error_ignores_cmee),
        };
        self.urc(&line);
    }

    fn noise_on(&self) -> bool {
        self.shared.lock().knobs.noise
    }

    fn noise(&mut self) {
        const NOISE: [&str; 6] = [
            "^RSSI: 17",
            "^HCSQ: \"LTE\",52,45,133,21",
            "^MODE: 17,17",
            "^BOOT: 20952548,0,0,0,72",
            "RING",
            "+CREG: 1",
        ];
        let i = self.rng.usize(..NOISE.len());
        self.urc(NOISE[i]);
    }

    fn noise_interval(&mut self) -> Duration {
        Duration::from_millis(self.rng.u64(100..=1000))
    }

    fn boot_urcs(&mut self) {
        self.urc("RDY");
        self.urc("+CFUN: 1");
        let cpin = self.cpin_line();
        self.urc(&cpin);
        if self.sim == SimLock::Ready {
            let epoch = self.epoch;
            self.schedule(self.cfg.boot_delay, Event::SmsReady { epoch });
        }
    }

    /// An SMS indication (`+CMTI`, `+CMT`, `+CDS`, `+CDSI`): buffered while `AT+CNMI` mode is 0.
    fn indicate(&mut self, bytes: Vec<u8>) {
        if self.settings.cnmi.mode == 0 {
            if self.buffered_urcs.len() < MAX_BUFFERED_URCS {
                self.buffered_urcs.push_back(bytes);
            }
        } else {
            self.emit(&bytes);
        }
    }

    /// A direct delivery; with `AT+CSMS=1` it must be acknowledged with `AT+CNMA`.
    fn deliver_direct(&mut self, bytes: Vec<u8>) {
        if self.settings.csms == 1
            && let Some(timeout) = self.cfg.cnma_timeout
        {
            let id = self.next_ack_id;
            self.next_ack_id += 1;
            if self.unacked.len() < MAX_HELD {
                self.unacked.push_back((id, bytes.clone()));
                self.schedule(timeout, Event::AckTimeout { id });
            }
        }
        self.indicate(bytes);
    }

    fn two_line(&self, header: &str, pdu: &[u8]) -> Vec<u8> {
        let le = self.cfg.line_ending;
        format!("\r\n{header}{le}{}{le}", to_hex(pdu)).into_bytes()
    }

    // ---- input -----------------------------------------------------------------------------

    /// Reads the frozen knob; on thawing, the modem starts over on an empty line.
    fn check_frozen(&mut self) -> bool {
        let frozen = self.shared.lock().knobs.frozen;
        if self.frozen && !frozen {
            self.line = Line::command();
            self.queued_input.clear();
        }
        self.frozen = frozen;
        frozen
    }

    fn input(&mut self, bytes: &[u8]) {
        if self.check_frozen() {
            return;
        }
        let room = MAX_QUEUED_INPUT.saturating_sub(self.queued_input.len());
        if room < bytes.len() {
            warn!("input while busy overflowed; bytes dropped");
        }
        self.queued_input.extend(bytes.iter().take(room).copied());
        self.drain_input();
    }

    fn drain_input(&mut self) {
        while !self.busy {
            let Some(b) = self.queued_input.pop_front() else {
                break;
            };
            self.byte(b);
        }
    }

    fn byte(&mut self, b: u8) {
        if matches!(self.line, Line::Pdu { .. }) {
            self.pdu_byte(b);
            return;
        }
        // A LF right after the CR that ended a line belongs to that line's terminator.
        if b == b'\n' && self.after_cr {
            self.after_cr = false;
            return;
        }
        self.after_cr = false;
        if self.settings.echo {
            self.emit(&[b]);
        }
        let Line::Command { buf, overflow } = &mut self.line else {
            return;
        };
        match b {
            b'\r' => {
                let (buf, overflow) = (std::mem::take(buf), *overflow);
                self.line = Line::command();
                self.after_cr = true;
                self.command_line(&buf, overflow);
            }
            // V.250 §6.2.3 (S5): backspace edits the line.
            0x08 => {
                buf.pop();
            }
            0x20..=0x7E | 0x80..=0xFF => {
                if buf.len() < MAX_LINE {
                    buf.push(b);
                } else {
                    *overflow = true;
                }
                // V.250 §5.2.4: `A/` repeats the last command line, no CR needed.
                if b == b'/' && buf.eq_ignore_ascii_case(b"A/") {
                    self.line = Line::command();
                    let last = self.last_line.clone();
                    if !last.is_empty() {
                        self.command_line(last.as_bytes(), false);
                    }
                }
            }
            // Other control characters (Ctrl-Z, ESC, NUL) mean nothing in command mode.
            _ => {}
        }
    }

    /// A byte after the prompt: hex digits of the PDU, Ctrl-Z to send, ESC to cancel.
    fn pdu_byte(&mut self, b: u8) {
        let Line::Pdu {
            kind,
            declared,
            hex,
            bad,
        } = &mut self.line
        else {
            return;
        };
        match b {
            0x1A => {
                let (kind, declared, hex, bad) = (*kind, *declared, std::mem::take(hex), *bad);
                self.line = Line::command();
                self.pdu_done(kind, declared, &hex, bad);
            }
            0x1B => {
                self.line = Line::command();
                self.final_result(Ok(()));
            }
            // Line breaks and spaces a client may put around the hex are skipped.
            b'\r' | b'\n' | b' ' => {}
            _ => {
                if b.is_ascii_hexdigit() && hex.len() < MAX_PDU_HEX {
                    hex.push(b);
                } else {
                    *bad = true;
                }
                if self.settings.echo {
                    self.emit(&[b]);
                }
            }
        }
    }

    fn command_line(&mut self, raw: &[u8], overflow: bool) {
        let line = String::from_utf8_lossy(raw).trim().to_string();
        if line.is_empty() {
            return;
        }
        // V.250 §5.2.1: a command line starts with AT; anything else is ignored.
        let Some(body) = line
            .get(..2)
            .filter(|p| p.eq_ignore_ascii_case("AT"))
            .and_then(|_| line.get(2..))
        else {
            return;
        };
        {
            let mut s = self.shared.lock();
            if s.commands.len() >= MAX_COMMANDS_KEPT {
                s.commands.pop_front();
            }
            s.commands.push_back(line.clone());
        }
        if let Some(file) = &mut self.command_log {
            let entry = serde_json::json!({ "at": Utc::now(), "line": line });
            if let Err(e) = writeln!(file, "{entry}").and_then(|()| file.flush()) {
                warn!(error = %e, "writing the simulator's command log failed");
            }
        }
        self.last_line = line.clone();
        if overflow {
            self.final_result(Err(Failure::Error));
            return;
        }
        let Some(cmds) = parse_commands(body) else {
            self.final_result(Err(Failure::Error));
            return;
        };
        self.after.clear();
        let mut info = Vec::new();
        for cmd in cmds {
            match self.execute(cmd) {
                Step::Ok(lines) => {
                    if !lines.is_empty() {
                        info.push(lines);
                    }
                }
                Step::Fail(f) => {
                    self.after.clear();
                    self.respond(&info, Err(f));
                    return;
                }
                Step::Prompt => return,
            }
        }
        self.respond(&info, Ok(()));
        for after in std::mem::take(&mut self.after) {
            match after {
                After::BootUrcs => {
                    self.urc("RDY");
                    let cpin = self.cpin_line();
                    self.urc(&cpin);
                    if self.sms_ready {
                        self.urc("SMS Ready");
                    }
                }
                After::Reboot => {
                    self.reset_volatile();
                    if self.cfg.boot_urcs {
                        self.boot_urcs();
                    }
                    self.deliver_held();
                }
                After::CnmiBuffer { flush } => {
                    let urcs = std::mem::take(&mut self.buffered_urcs);
                    if flush {
                        for u in urcs {
                            self.emit(&u);
                        }
                    }
                }
                After::Deliver => self.deliver_held(),
            }
        }
    }

    // ---- commands --------------------------------------------------------------------------

    fn registered(&self) -> bool {
        self.cfun == 1 && self.sim == SimLock::Ready
    }

    fn registration_changed(&mut self, before: bool) {
        let now = self.registered();
        if before != now && self.settings.creg > 0 {
            let stat = if now { 1 } else { 0 };
            self.urc(&format!("+CREG: {stat}"));
        }
    }

    fn cpin_line(&self) -> String {
        match self.sim {
            SimLock::Ready => "+CPIN: READY".into(),
            SimLock::Pin { .. } => "+CPIN: SIM PIN".into(),
            SimLock::Puk => "+CPIN: SIM PUK".into(),
        }
    }

    /// 27.007 commands that need an unlocked SIM.
    fn need_sim_cme(&self) -> Result<(), Failure> {
        match self.sim {
            SimLock::Ready => Ok(()),
            SimLock::Pin { .. } => Err(Failure::Cme(11)),
            SimLock::Puk => Err(Failure::Cme(12)),
        }
    }

    /// 27.005 commands: need an unlocked SIM and, with boot URCs, `SMS Ready`.
    fn need_sms(&self) -> Result<(), Failure> {
        match self.sim {
            SimLock::Pin { .. } => Err(Failure::Cms(311)),
            SimLock::Puk => Err(Failure::Cms(316)),
            SimLock::Ready if !self.sms_ready => Err(Failure::Cms(314)),
            SimLock::Ready => Ok(()),
        }
    }

    fn execute(&mut self, cmd: Cmd) -> Step {
        let r = match cmd {
            Cmd::Basic { name, value, query } => self.basic(&name, value, query),
            Cmd::Extended { name, op } => return self.extended(&name, op),
        };
        match r {
            Ok(lines) => Step::Ok(lines),
            Err(f) => Step::Fail(f),
        }
    }

    fn basic(
        &mut self,
        name: &str,
        value: Option<u32>,
        query: bool,
    ) -> Result<Vec<String>, Failure> {
        match name {
            "E" => match value.unwrap_or(0) {
                0 => self.settings.echo = false,
                1 => self.settings.echo = true,
                _ => return Err(Failure::Error),
            },
            "Z" => {
                self.settings = Settings::defaults(self.cfg.echo);
                if self.cfg.boot_urcs {
                    self.after.push(After::BootUrcs);
                }
            }
            "&F" => self.settings = Settings::defaults(self.cfg.echo),
            "I" => {
                return Ok(vec![
                    self.cfg.manufacturer.clone(),
                    self.cfg.model.clone(),
                    format!("Revision: {}", self.cfg.revision),
                ]);
            }
            // Result code format, quiet mode, DTR/DCD handling, hook: accepted and ignored.
            "V" | "Q" | "X" | "H" | "&C" | "&D" | "&K" | "&W" | "&S" => {}
            n if n.starts_with('S') => {
                if query {
                    let v = match n {
                        "S3" => 13,
                        "S4" => 10,
                        "S5" => 8,
                        _ => 0,
                    };
                    return Ok(vec![format!("{v:03}")]);
                }
            }
            _ => return Err(Failure::Error),
        }
        Ok(Vec::new())
    }

    fn extended(&mut self, name: &str, op: Op) -> Step {
        let r = match name {
            "+CMGS" => return self.cmgs(op, PduKind::Send),
            "+CMGW" => return self.cmgs(op, PduKind::Write(STO_UNSENT)),
            _ => self.simple(name, op),
        };
        match r {
            Ok(lines) => Step::Ok(lines),
            Err(f) => Step::Fail(f),
        }
    }

    fn simple(&mut self, name: &str, op: Op) -> Result<Vec<String>, Failure> {
        let num = |args: &[Arg], i: usize| args.get(i).and_then(Arg::num);
        let cfg = &self.cfg;
        match (name, &op) {
            ("+CMEE", Op::Read) => Ok(vec![format!("+CMEE: {}", self.settings.cmee)]),
            ("+CMEE", Op::Test) => Ok(vec!["+CMEE: (0-2)".into()]),
            ("+CMEE", Op::Set(a)) => match num(a, 0) {
                Some(n @ 0..=2) => {
                    self.settings.cmee = n as u8;
                    Ok(Vec::new())
                }
                _ => Err(Failure::Cme(50)),
            },
            ("+CGMI" | "+GMI", Op::Exec) => Ok(vec![cfg.manufacturer.clone()]),
            ("+CGMM" | "+GMM", Op::Exec) => Ok(vec![cfg.model.clone()]),
            ("+CGMR" | "+GMR", Op::Exec) => Ok(vec![cfg.revision.clone()]),
            ("+CGSN" | "+GSN", Op::Exec) => Ok(vec![cfg.imei.clone()]),
            (
                "+CGMI" | "+GMI" | "+CGMM" | "+GMM" | "+CGMR" | "+GMR" | "+CGSN" | "+GSN",
                Op::Test,
            ) => Ok(Vec::new()),
            ("+CIMI", Op::Exec) => {
                self.need_sim_cme()?;
                Ok(vec![cfg.imsi.clone()])
            }
            ("+CNUM", Op::Exec) => {
                self.need_sim_cme()?;
                let ty = if cfg.own_number.starts_with('+') {
                    145
                } else {
                    129
                };
                Ok(vec![format!("+CNUM: \"\",\"{}\",{ty}", cfg.own_number)])
            }
            ("+CFUN", Op::Read) => Ok(vec![format!("+CFUN: {}", self.cfun)]),
            ("+CFUN", Op::Test) => Ok(vec!["+CFUN: (0,1,4),(0,1)".into()]),
            ("+CFUN", Op::Set(a)) => {
                let fun = match num(a, 0) {
                    Some(f @ (0 | 1 | 4)) => f as u8,
                    _ => return Err(Failure::Cme(50)),
                };
                if num(a, 1) == Some(1) {
                    self.after.push(After::Reboot);
                    return Ok(Vec::new());
                }
                let before = self.registered();
                self.cfun = if fun == 4 { 0 } else { fun };
                self.registration_changed(before);
                self.after.push(After::Deliver);
                Ok(Vec::new())
            }
            ("+CPIN", Op::Read) => Ok(vec![self.cpin_line()]),
            ("+CPIN", Op::Test) => Ok(Vec::new()),
            ("+CPIN", Op::Set(a)) => self.cpin(a),
            ("+CMGF", Op::Read) => Ok(vec![format!("+CMGF: {}", self.settings.cmgf)]),
            ("+CMGF", Op::Test) => Ok(vec!["+CMGF: (0)".into()]),
            ("+CMGF", Op::Set(a)) => match num(a, 0) {
                Some(0) => Ok(Vec::new()),
                // Text mode is not simulated: only PDU mode matters to smsgate.
                _ => Err(Failure::Cms(303)),
            },
            ("+CSMS", Op::Read) => Ok(vec![format!("+CSMS: {},1,1,1", self.settings.csms)]),
            ("+CSMS", Op::Test) => Ok(vec!["+CSMS: (0,1)".into()]),
            ("+CSMS", Op::Set(a)) => match num(a, 0) {
                Some(s @ 0..=1) => {
                    self.settings.csms = s as u8;
                    Ok(vec!["+CSMS: 1,1,1".into()])
                }
                _ => Err(Failure::Cms(303)),
            },
            ("+CNMI", Op::Read) => {
                let c = self.settings.cnmi;
                Ok(vec![format!(
                    "+CNMI: {},{},{},{},{}",
                    c.mode, c.mt, c.bm, c.ds, c.bfr
                )])
            }
            ("+CNMI", Op::Test) => Ok(vec!["+CNMI: (0-3),(0-3),(0,2),(0-2),(0,1)".into()]),
            ("+CNMI", Op::Set(a)) => {
                let v = |i: usize, max: u32| -> Result<u8, Failure> {
                    match a.get(i) {
                        None => Ok(0),
                        Some(arg) if arg.text.is_empty() => Ok(0),
                        Some(arg) => match arg.num() {
                            Some(n) if n <= max => Ok(n as u8),
                            _ => Err(Failure::Cms(303)),
                        },
                    }
                };
                let cnmi = Cnmi {
                    mode: v(0, 3)?,
                    mt: v(1, 3)?,
                    bm: v(2, 3)?,
                    ds: v(3, 2)?,
                    bfr: v(4, 1)?,
                };
                if cnmi.bm == 1 || cnmi.bm == 3 {
                    return Err(Failure::Cms(303));
                }
                self.settings.cnmi = cnmi;
                if cnmi.mode > 0 {
                    self.after.push(After::CnmiBuffer {
                        flush: cnmi.bfr == 0,
                    });
                }
                self.after.push(After::Deliver);
                Ok(Vec::new())
            }
            ("+CPMS", Op::Read) => {
                self.need_sms()?;
                let full = self.shared.lock().knobs.storage_full;
                let mut s = self.shared.lock();
                let parts: Vec<String> = self
                    .settings
                    .mem
                    .iter()
                    .map(|&m| {
                        let st = s.stores.get_mut(m);
                        let used = if full { st.capacity() } else { st.used() };
                        format!("\"{}\",{},{}", m.name(), used, st.capacity())
                    })
                    .collect();
                Ok(vec![format!("+CPMS: {}", parts.join(","))])
            }
            ("+CPMS", Op::Test) => Ok(vec![
                "+CPMS: (\"SM\",\"ME\",\"SR\"),(\"SM\",\"ME\"),(\"SM\",\"ME\")".into(),
            ]),
            ("+CPMS", Op::Set(a)) => {
                self.need_sms()?;
                if a.is_empty() || a.len() > 3 {
                    return Err(Failure::Cms(302));
                }
                let mut mem = self.settings.mem;
                for (i, arg) in a.iter().enumerate() {
                    let m = Mem::parse(&arg.text).ok_or(Failure::Cms(302))?;
                    if i > 0 && m == Mem::Sr {
                        return Err(Failure::Cms(302));
                    }
                    mem[i] = m;
                }
                self.settings.mem = mem;
                let full = self.shared.lock().knobs.storage_full;
                let mut s = self.shared.lock();
                let parts: Vec<String> = mem
                    .iter()
                    .map(|&m| {
                        let st = s.stores.get_mut(m);
                        let used = if full { st.capacity() } else { st.used() };
                        format!("{},{}", used, st.capacity())
                    })
                    .collect();
                Ok(vec![format!("+CPMS: {}", parts.join(","))])
            }
            ("+CREG", Op::Read) => {
                let stat = if self.registered() { 1 } else { 0 };
                Ok(vec![match self.settings.creg {
                    2 if stat == 1 => format!("+CREG: 2,{stat},\"00C3\",\"0000A1B2\",7"),
                    n => format!("+CREG: {n},{stat}"),
                }])
            }
            ("+CREG", Op::Test) => Ok(vec!["+CREG: (0-2)".into()]),
            // TS 27.007 §10.1.20: packet-domain registration, the same network as `+CREG`.
            // Gammu asks for it to read the network state and gives up on that without it.
            ("+CGREG", Op::Read) => {
                let stat = if self.registered() { 1 } else { 0 };
                Ok(vec![match self.settings.cgreg {
                    2 if stat == 1 => format!("+CGREG: 2,{stat},\"00C3\",\"0000A1B2\",7"),
                    n => format!("+CGREG: {n},{stat}"),
                }])
            }
            ("+CGREG", Op::Test) => Ok(vec!["+CGREG: (0-2)".into()]),
            ("+CGREG", Op::Set(a)) => match num(a, 0) {
                Some(n @ 0..=2) => {
                    self.settings.cgreg = n as u8;
                    Ok(Vec::new())
                }
                _ => Err(Failure::Cme(50)),
            },
            ("+CREG", Op::Set(a)) => match num(a, 0) {
                Some(n @ 0..=2) => {
                    self.settings.creg = n as u8;
                    Ok(Vec::new())
                }
                _ => Err(Failure::Cme(50)),
            },
            ("+COPS", Op::Read) => Ok(vec![if self.registered() {
                format!("+COPS: 0,0,\"{}\",7", cfg.operator)
            } else {
                "+COPS: 0".into()
            }]),
            ("+COPS", Op::Test) => Ok(vec![format!(
                "+COPS: (2,\"{0}\",\"{0}\",\"00101\",7),,(0-4),(0-2)",
                cfg.operator
            )]),
            ("+COPS", Op::Set(_)) => Ok(Vec::new()),
            ("+CSQ", Op::Exec) => Ok(vec![if self.cfun == 1 {
                "+CSQ: 20,99".into()
            } else {
                "+CSQ: 99,99".into()
            }]),
            ("+CSQ", Op::Test) => Ok(vec!["+CSQ: (0-31,99),(0-7,99)".into()]),
            ("+CUSD", Op::Test) => Ok(vec!["+CUSD: (0-2)".into()]),
            ("+CUSD", Op::Read) => Ok(vec!["+CUSD: 1".into()]),
            ("+CUSD", Op::Set(a)) => self.cusd(a),
            ("+CSCA", Op::Read) => {
                self.need_sms()?;
                let smsc = self.shared.lock().stores.smsc.clone();
                let ty = if smsc.starts_with('+') { 145 } else { 129 };
                Ok(vec![format!("+CSCA: \"{smsc}\",{ty}")])
            }
            ("+CSCA", Op::Test) => Ok(Vec::new()),
            ("+CSCA", Op::Set(a)) => {
                self.need_sms()?;
                let smsc = a.first().map(|a| a.text.clone()).unwrap_or_default();
                if !smsc.is_empty() && Address::parse_number("smsc", &smsc).is_err() {
                    return Err(Failure::Cms(304));
                }
                self.shared.lock().stores.smsc = smsc;
                Ok(Vec::new())
            }
            ("+CMMS", Op::Read) => Ok(vec![format!("+CMMS: {}", self.settings.cmms)]),
            ("+CMMS", Op::Test) => Ok(vec!["+CMMS: (0-2)".into()]),
            ("+CMMS", Op::Set(a)) => match num(a, 0) {
                Some(n @ 0..=2) => {
                    self.settings.cmms = n as u8;
                    Ok(Vec::new())
                }
                _ => Err(Failure::Cms(303)),
            },
            ("+CNMA", Op::Exec | Op::Set(_)) => {
                if self.unacked.pop_front().is_some() {
                    Ok(Vec::new())
                } else {
                    Err(Failure::Cms(340))
                }
            }
            ("+CNMA", Op::Test) => Ok(vec!["+CNMA: (0-2)".into()]),
            ("+CMGR", Op::Set(a)) => self.cmgr(num(a, 0)),
            ("+CMGL", Op::Exec) => self.cmgl(Some(u32::from(REC_UNREAD))),
            ("+CMGL", Op::Set(a)) => self.cmgl(num(a, 0)),
            ("+CMGL", Op::Test) => Ok(vec!["+CMGL: (0-4)".into()]),
            ("+CMGD", Op::Set(a)) => self.cmgd(num(a, 0), a.get(1).map(|f| f.num())),
            ("+CMGD", Op::Test) => {
                self.need_sms()?;
                let mem = self.settings.mem[0];
                let mut s = self.shared.lock();
                let st = s.stores.get_mut(mem);
                let used: Vec<String> = st.hex_list().iter().map(|(i, _)| i.to_string()).collect();
                Ok(vec![format!("+CMGD: ({}),(0-4)", used.join(","))])
            }
            ("+CMGS" | "+CMGW", Op::Test) => Ok(Vec::new()),
            // TS 27.005 §3.1: PDU mode ignores the TE character set, but clients set and read
            // it (Gammu picks its text encoding from the test command's list).
            ("+CSCS", Op::Read) => Ok(vec![format!("+CSCS: \"{}\"", self.settings.cscs)]),
            ("+CSCS", Op::Test) => Ok(vec![format!(
                "+CSCS: ({})",
                CHARSETS
                    .iter()
                    .map(|c| format!("\"{c}\""))
                    .collect::<Vec<_>>()
                    .join(",")
            )]),
            ("+CSCS", Op::Set(a)) => {
                let wanted = a.first().map(|a| a.text.to_ascii_uppercase());
                match CHARSETS.iter().find(|c| Some(**c) == wanted.as_deref()) {
                    Some(c) => {
                        self.settings.cscs = c;
                        Ok(Vec::new())
                    }
                    None => Err(Failure::Cme(4)),
                }
            }
            ("+CSMP" | "^CURC" | "+CSCLK" | "+IPR" | "+IFC" | "+CLIP" | "+CRC", Op::Set(_)) => {
                Ok(Vec::new())
            }
            // USSD and everything else: not a modem feature smsgate needs.
            _ => Err(Failure::Error),
        }
    }

    /// `AT+CUSD=1,"<code>"[,<dcs>]`: OK at once, the network's answer a moment later as a
    /// `+CUSD:` URC. `*100#` reports the balance; other codes are not supported (`+CUSD: 4`).
    /// The code may also come as packed GSM 7-bit in hex, the way some Huawei firmwares want it.
    fn cusd(&mut self, a: &[Arg]) -> Result<Vec<String>, Failure> {
        if self.sim != SimLock::Ready || self.cfun != 1 {
            return Err(Failure::Cme(30));
        }
        match a.first().and_then(Arg::num) {
            Some(0 | 2) => return Ok(Vec::new()),
            Some(1) => {}
            _ => return Err(Failure::Cme(4)),
        }
        // TS 27.007 §7.15: without `<str>` the command only sets the result code presentation
        // (`AT+CUSD=1` is how Gammu enables it); nothing goes to the network, nothing comes back.
        let Some(raw) = a.get(1).map(|a| a.text.clone()) else {
            return Ok(Vec::new());
        };
        let code = if !raw.is_empty()
            && raw.len() % 2 == 0
            && raw.chars().all(|c| c.is_ascii_hexdigit())
            && !raw.contains(['*', '#'])
        {
            crate::modem::ussd::unpack_hex(&raw).unwrap_or(raw)
        } else {
            raw
        };
        let urc = if code.trim_end_matches('\r') == "*100#" {
            let balance = self.shared.lock().knobs.balance.clone();
            format!("+CUSD: 0,\"Balance: {balance} USD. Valid until 31.12.2027.\",15")
        } else {
            "+CUSD: 4".to_string()
        };
        self.schedule(Duration::from_millis(50), Event::Ussd { urc });
        Ok(Vec::new())
    }

    fn cpin(&mut self, a: &[Arg]) -> Result<Vec<String>, Failure> {
        let given = a.first().map(|a| a.text.clone()).unwrap_or_default();
        let before = self.registered();
        match self.sim.clone() {
            // No PIN pending: entering one is not allowed (TS 27.007 §8.3).
            SimLock::Ready => return Err(Failure::Cme(3)),
            SimLock::Pin { tries } => {
                if self.pin.as_deref() == Some(given.as_str()) {
                    self.sim = SimLock::Ready;
                } else if tries <= 1 {
                    self.sim = SimLock::Puk;
                    return Err(Failure::Cme(16));
                } else {
                    self.sim = SimLock::Pin { tries: tries - 1 };
                    return Err(Failure::Cme(16));
                }
            }
            SimLock::Puk => {
                let Some(new_pin) = a.get(1) else {
                    return Err(Failure::Cme(12));
                };
                if given != self.cfg.puk {
                    return Err(Failure::Cme(16));
                }
                self.pin = Some(new_pin.text.clone());
                self.sim = SimLock::Ready;
            }
        }
        self.registration_changed(before);
        if self.cfg.boot_urcs && !self.sms_ready {
            self.urc("+CPIN: READY");
            let epoch = self.epoch;
            self.schedule(self.cfg.boot_delay, Event::SmsReady { epoch });
        }
        self.after.push(After::Deliver);
        Ok(Vec::new())
    }

    fn cmgr(&mut self, index: Option<u32>) -> Result<Vec<String>, Failure> {
        self.need_sms()?;
        let index = index.ok_or(Failure::Cms(321))?;
        let mem = self.settings.mem[0];
        let mut s = self.shared.lock();
        let store = s.stores.get_mut(mem);
        if !store.in_range(index) {
            return Err(Failure::Cms(321));
        }
        // An empty slot answers a bare OK, like most modems.
        let Some(slot) = store.get_mut(index) else {
            return Ok(Vec::new());
        };
        let lines = match &slot.verbatim {
            // One block written as it is: `\r\n<answer>`, its last line ending supplied by
            // `respond`.
            Some(v) => verbatim_block(v, self.cfg.line_ending),
            None => vec![
                format!("+CMGR: {},,{}", slot.stat, slot.tpdu_len()),
                to_hex(&slot.pdu),
            ],
        };
        if slot.stat == REC_UNREAD {
            slot.stat = REC_READ;
        }
        Ok(lines)
    }

    fn cmgl(&mut self, stat: Option<u32>) -> Result<Vec<String>, Failure> {
        self.need_sms()?;
        let stat = match stat {
            Some(s @ 0..=4) => s as u8,
            _ => return Err(Failure::Cms(302)),
        };
        let mem = self.settings.mem[0];
        let mut s = self.shared.lock();
        let mut lines = Vec::new();
        for (index, slot) in s.stores.get_mut(mem).list_mut(stat) {
            if let Some(v) = &slot.verbatim {
                // The device's `+CMGR:` answer listed: `+CMGL: <index>,` before its fields.
                let listed = match v.get(..6) {
                    Some(h) if h.eq_ignore_ascii_case("+CMGR:") => {
                        format!("+CMGL: {index},{}", v[6..].trim_start())
                    }
                    _ => v.clone(),
                };
                lines.extend(verbatim_block(&listed, self.cfg.line_ending));
                if slot.stat == REC_UNREAD {
                    slot.stat = REC_READ;
                }
                continue;
            }
            lines.push(format!("+CMGL: {index},{},,{}", slot.stat, slot.tpdu_len()));
            lines.push(to_hex(&slot.pdu));
            if slot.stat == REC_UNREAD {
                slot.stat = REC_READ;
            }
        }
        Ok(lines)
    }

    fn cmgd(
        &mut self,
        index: Option<u32>,
        flag: Option<Option<u32>>,
    ) -> Result<Vec<String>, Failure> {
        self.need_sms()?;
        let flag = match flag {
            None => 0,
            Some(Some(f @ 0..=4)) => f,
            Some(_) => return Err(Failure::Cms(302)),
        };
        let mem = self.settings.mem[0];
        {
            let mut s = self.shared.lock();
            let store = s.stores.get_mut(mem);
            let index = index.unwrap_or(0);
            if flag == 0 && !store.in_range(index) {
                return Err(Failure::Cms(321));
            }
            store.delete(index, flag);
        }
        self.after.push(After::Deliver);
        Ok(Vec::new())
    }

    fn cmgs(&mut self, op: Op, kind: PduKind) -> Step {
        let Op::Set(a) = op else {
            return match op {
                Op::Test => Step::Ok(Vec::new()),
                _ => Step::Fail(Failure::Error),
            };
        };
        let declared = match a.first().and_then(Arg::num) {
            Some(n) if n >= 1 && n as usize <= MAX_TPDU => n as usize,
            _ => return Step::Fail(Failure::Cms(304)),
        };
        let kind = match (kind, a.get(1).map(Arg::num)) {
            (PduKind::Write(_), Some(Some(stat @ 0..=3))) => PduKind::Write(stat as u8),
            (PduKind::Write(_), Some(_)) => return Step::Fail(Failure::Cms(304)),
            (k, _) => k,
        };
        if let Err(f) = self.need_sms() {
            return Step::Fail(f);
        }
        let prompt = format!("\r\n{}", self.cfg.prompt);
        self.emit(prompt.as_bytes());
        self.line = Line::Pdu {
            kind,
            declared,
            hex: Vec::new(),
            bad: false,
        };
        self.prompts += 1;
        if let Some(timeout) = self.cfg.prompt_timeout {
            let (epoch, prompt) = (self.epoch, self.prompts);
            self.schedule(timeout, Event::PromptTimeout { epoch, prompt });
        }
        Step::Prompt
    }

    /// The PDU after the prompt is complete (Ctrl-Z).
    fn pdu_done(&mut self, kind: PduKind, declared: usize, hex: &[u8], bad: bool) {
        let octets = match std::str::from_utf8(hex).ok().map(parse_hex) {
            Some(Ok(o)) if !bad => o,
            _ => return self.final_result(Err(Failure::Cms(304))),
        };
        let smsc_len = octets.first().map_or(0, |&l| usize::from(l));
        // TS 27.005 §3.1: <length> counts the TPDU only, not the SMSC field.
        if octets.len() <= smsc_len + 1 || tpdu_len(&octets) != declared {
            return self.final_result(Err(Failure::Cms(304)));
        }
        let pdu = decode(&octets, true);
        match kind {
            PduKind::Write(stat) => {
                if pdu.is_err() {
                    return self.final_result(Err(Failure::Cms(304)));
                }
                let mem = self.settings.mem[1];
                let full = self.shared.lock().knobs.storage_full;
                let index = if full {
                    None
                } else {
                    self.shared.lock().stores.get_mut(mem).insert(stat, octets)
                };
                match index {
                    Some(i) => self.respond(&[vec![format!("+CMGW: {i}")]], Ok(())),
                    None => self.final_result(Err(Failure::Cms(322))),
                }
            }
            PduKind::Send => {
                let submit = match pdu {
                    Ok(Pdu::Submit(s)) => s,
                    _ => return self.final_result(Err(Failure::Cms(304))),
                };
                if let Err(f) = self.need_sms() {
                    return self.final_result(Err(f));
                }
                let outcome = self.decide(smsc_len == 0, submit);
                let latency = self.shared.lock().knobs.latency;
                self.busy = true;
                let epoch = self.epoch;
                self.schedule_always(latency, Event::SendDone { epoch, outcome });
            }
        }
    }

    /// What the network will answer to this SUBMIT.
    fn decide(&mut self, default_smsc: bool, submit: Submit) -> SendOutcome {
        let mut s = self.shared.lock();
        if default_smsc && s.stores.smsc.is_empty() {
            return SendOutcome::Failed(Failure::Cms(330));
        }
        if self.cfun != 1 {
            return SendOutcome::Failed(Failure::Cms(331));
        }
        if s.knobs.fail_next > 0 {
            s.knobs.fail_next -= 1;
            return SendOutcome::Failed(Failure::Cms(s.knobs.fail_code));
        }
        if s.knobs.error_rate > 0.0 && self.rng.f64() < s.knobs.error_rate {
            return SendOutcome::Failed(Failure::Cms(s.knobs.error_code));
        }
        let mr = s.stores.next_mr;
        s.stores.next_mr = mr.wrapping_add(1);
        SendOutcome::Accepted {
            mr,
            submit: Box::new(submit),
            submitted: Utc::now().fixed_offset(),
        }
    }

    fn send_done(&mut self, outcome: SendOutcome) {
        self.busy = false;
        match outcome {
            SendOutcome::Failed(f) => self.final_result(Err(f)),
            SendOutcome::Accepted {
                mr,
                submit,
                submitted,
            } => {
                self.network_accepts(mr, &submit);
                let (reports, code) = {
                    let s = self.shared.lock();
                    (s.knobs.status_reports, s.knobs.status_code)
                };
                if submit.status_report_requested
                    && let Some(delay) = reports
                {
                    let smsc = self.smsc_address();
                    let pdu = encode_status_report(
                        smsc.as_ref(),
                        mr,
                        &submit.to,
                        &submitted,
                        &Utc::now().fixed_offset(),
                        code,
                    );
                    self.schedule(delay, Event::StatusReport { pdu });
                }
                let le = self.cfg.line_ending;
                self.emit(format!("\r\n+CMGS: {mr}{le}").as_bytes());
                if self.noise_on() && self.rng.bool() {
                    self.noise();
                }
                self.final_result(Ok(()));
            }
        }
        self.drain_input();
    }

    /// Records an accepted part; a complete message goes to `sent()` and the log.
    fn network_accepts(&mut self, mr: u8, submit: &Submit) {
        let concat = submit
            .user_data
            .concat()
            .map(|c| (c.reference, c.part, c.total));
        let part = AcceptedPart {
            body: submit.user_data.body.clone(),
            mr,
        };
        let Some(m) = self.assembler.add(submit.to.to_string(), concat, part) else {
            return;
        };
        let msg = SentMessage {
            to: m.to,
            text: m.text,
            encoding: m.encoding.to_string(),
            parts: m.parts,
            message_references: m.message_references,
            at: Utc::now(),
        };
        if let Some(file) = &mut self.log {
            match serde_json::to_string(&msg) {
                Ok(line) => {
                    if let Err(e) = writeln!(file, "{line}").and_then(|()| file.flush()) {
                        warn!(error = %e, "writing the simulator's JSONL log failed");
                    }
                }
                Err(e) => warn!(error = %e, "serializing a sent message failed"),
            }
        }
        let mut s = self.shared.lock();
        if s.sent.len() >= MAX_SENT_KEPT {
            s.sent.pop_front();
        }
        s.sent.push_back(msg);
    }

    fn smsc_address(&self) -> Option<Address> {
        let smsc = self.shared.lock().stores.smsc.clone();
        Address::parse_number("smsc", &smsc).ok()
    }

    // ---- inbound and reports ---------------------------------------------------------------

    /// Delivers held-back inbound messages while the modem can take them.
    fn deliver_held(&mut self) {
        loop {
            let Some(pdu) = self.shared.lock().held.pop_front() else {
                break;
            };
            if let Err(pdu) = self.deliver_inbound(pdu) {
                {
                    let mut s = self.shared.lock();
                    if s.held.len() < MAX_HELD {
                        s.held.push_front(pdu);
                    }
                }
                // Nothing the modem does may come to release it: the network tries again.
                if !self.retry_held {
                    self.retry_held = true;
                    self.schedule_always(HELD_RETRY, Event::RetryHeld);
                }
                break;
            }
        }
    }

    /// Delivers one inbound SMS-DELIVER per `AT+CNMI` `<mt>` (TS 27.005 §3.4.1); gives it back
    /// when the modem cannot take it now.
    fn deliver_inbound(&mut self, pdu: Vec<u8>) -> Result<(), Vec<u8>> {
        if self.pty.is_none() || !self.registered() || !self.sms_ready {
            return Err(pdu);
        }
        if self.settings.cnmi.mt == 2 {
            // Routed to the TE, not stored: lost if nobody listens (why CNMI=2,1 is safer).
            let urc = self.two_line(&format!("+CMT: ,{}", tpdu_len(&pdu)), &pdu);
            self.deliver_direct(urc);
            return Ok(());
        }
        let mem = self.settings.mem[2];
        let index = {
            let mut s = self.shared.lock();
            if s.knobs.storage_full {
                None
            } else {
                s.stores.get_mut(mem).insert(REC_UNREAD, pdu.clone())
            }
        };
        let Some(index) = index else {
            if self.cfg.memfull_urc && !self.memfull_reported {
                self.memfull_reported = true;
                self.urc(&format!("^SMMEMFULL: \"{}\"", mem.name()));
            }
            return Err(pdu);
        };
        self.memfull_reported = false;
        self.indicate_stored(mem, index);
        Ok(())
    }

    /// `+CMTI` for a stored message when `AT+CNMI` `<mt>` asks for it.
    fn indicate_stored(&mut self, mem: Mem, index: u32) {
        if matches!(self.settings.cnmi.mt, 1 | 3) {
            let le = self.cfg.line_ending;
            let urc = format!("\r\n+CMTI: \"{}\",{index}{le}", mem.name()).into_bytes();
            self.indicate(urc);
        }
    }

    /// Delivers a status report per `AT+CNMI` `<ds>`: 1 `+CDS`, 2 stored + `+CDSI`, 0 dropped.
    fn deliver_report(&mut self, pdu: Vec<u8>) {
        if self.pty.is_none() {
            return;
        }
        match self.settings.cnmi.ds {
            1 => {
                let urc = self.two_line(&format!("+CDS: {}", tpdu_len(&pdu)), &pdu);
                self.deliver_direct(urc);
            }
            2 => {
                let index = self.shared.lock().stores.sr.insert(REC_UNREAD, pdu);
                match index {
                    Some(i) => {
                        let le = self.cfg.line_ending;
                        self.indicate(format!("\r\n+CDSI: \"SR\",{i}{le}").into_bytes());
                    }
                    None => warn!("status report store full; report dropped"),
                }
            }
            _ => {}
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

/// A verbatim answer as one information "line" whose inner line endings are its own: written
/// after `\r\n` and followed by the configured line ending, it comes out byte for byte (an
/// empty answer: nothing, a bare `OK`).
fn verbatim_block(answer: &str, line_ending: &str) -> Vec<String> {
    let body = answer
        .strip_suffix(line_ending)
        .or_else(|| answer.strip_suffix("\r\n"))
        .unwrap_or(answer);
    if body.is_empty() {
        Vec::new()
    } else {
        vec![body.to_string()]
    }
}
