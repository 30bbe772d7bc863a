//! The driver task: one task owns one port for its whole life. Sends and commands come in through
//! a channel; inbound messages, status reports and state changes go out as [`ModemEvent`]s.
//!
//! The task loops: open the port → initialise → serve until the port is lost or the modem stops
//! answering → back off → open again. A command that times out starts the recovery ladder: ESC and
//! `AT` (the modem may be stuck in a prompt), re-initialisation, then closing and reopening the
//! port. Inbound messages are deleted from the SIM only after the consumer acknowledges that it
//! stored them.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use futures_util::FutureExt;
use std::panic::AssertUnwindSafe;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior, interval};
use tokio_util::sync::CancellationToken;

use crate::modem::at::{AtPort, Response, SendFailure, UrcEvent};
use crate::modem::codec::Urc;
use crate::modem::error::ModemError;
use crate::modem::info::{self, ModemInfo, ModemState, ModemStatus, Registration};
use crate::modem::init::{self, PinGuard};
use crate::modem::stored::{self, Content, StoredAnswer};
use crate::sms::{self, EncodedPart, SubmitOptions};

/// How to reach and drive one modem.
#[derive(Debug, Clone, PartialEq)]
pub struct ModemConfig {
    /// A name for logs, metrics and the API.
    pub name: String,
    /// A serial device path (`/dev/ttyUSB2`, `/dev/serial/by-id/…`) or `tcp://host:port` for a
    /// modem behind a raw TCP serial server.
    pub port: String,
    /// Baud rate (USB modems ignore it).
    pub baud: u32,
    /// SIM PIN, entered once when the SIM asks; never retried after the SIM refuses it.
    pub pin: Option<String>,
    /// SMSC to set when the SIM has none (`+CMS ERROR 330` otherwise).
    pub smsc: Option<String>,
    /// The SIM's own number, as configured (it wins over `AT+CNUM`, which many SIMs leave
    /// empty).
    pub number: Option<String>,
    /// Timeout of ordinary commands.
    pub command_timeout: Duration,
    /// Wait for the `> ` prompt after `AT+CMGS`.
    pub prompt_timeout: Duration,
    /// Wait for `+CMGS:` after the PDU: the network's time, seconds on real modems.
    pub send_timeout: Duration,
    /// How long to wait for the SIM and the SMS service after power-up.
    pub ready_timeout: Duration,
    /// Registration and signal polling while idle.
    pub health_interval: Duration,
    /// A full `AT+CMGL` sweep of the SIM store, to catch messages whose `+CMTI` was missed.
    pub sweep_interval: Duration,
    /// Longest wait between reconnection attempts.
    pub max_backoff: Duration,
    /// Routing and limits in the pool of modems (the dispatcher's business, not the driver's).
    pub policy: crate::dispatch::ModemPolicy,
    /// A periodic prepaid balance check by USSD.
    pub balance: Option<BalanceCheck>,
    /// Delete SMS-SUBMITs and SMS-COMMANDs a phone left in the SIM (`[inbound] purge_foreign`);
    /// by default they are left alone and counted in [`ModemStatus::foreign_messages`].
    pub purge_foreign: bool,
}

/// `balance_ussd`, `balance_interval`, `balance_low` of a modem.
#[derive(Debug, Clone, PartialEq)]
pub struct BalanceCheck {
    /// The USSD code (`*100#`).
    pub code: String,
    /// How often.
    pub interval: Duration,
    /// Below this amount, a `modem.balance_low` event.
    pub low: Option<f64>,
}

impl ModemConfig {
    /// Defaults for a modem on `port`.
    pub fn new(name: impl Into<String>, port: impl Into<String>) -> Self {
        ModemConfig {
            name: name.into(),
            port: port.into(),
            baud: 115_200,
            pin: None,
            smsc: None,
            number: None,
            command_timeout: Duration::from_secs(5),
            prompt_timeout: Duration::from_secs(5),
            send_timeout: Duration::from_secs(60),
            ready_timeout: Duration::from_secs(60),
            health_interval: Duration::from_secs(30),
            sweep_interval: Duration::from_secs(600),
            max_backoff: Duration::from_secs(30),
            policy: crate::dispatch::ModemPolicy::default(),
            balance: None,
            purge_foreign: false,
        }
    }
}

/// Where an inbound message or report came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Stored in the modem at this memory and index; deleted after the acknowledgement.
    Stored {
        /// `SM`, `ME`, `MT`, `SR`.
        memory: String,
        /// The index.
        index: u32,
        /// Which hand-over of that slot this is: an acknowledgement deletes the slot only while
        /// it is still the one handed over (a slot freed and filled again by a new message is
        /// never deleted by an old acknowledgement).
        handover: u64,
    },
    /// Delivered directly (`+CMT` / `+CDS`); acknowledged to the network with `AT+CNMA` when the
    /// modem needs it.
    Direct,
}

/// An inbound SMS part, as received. The consumer stores it and then calls [`Inbound::ack`];
/// only then is it deleted from the SIM. Without an ack it stays and is offered again after a
/// restart (the consumer deduplicates by modem and PDU).
#[derive(Debug)]
pub struct Inbound {
    /// The modem's name.
    pub modem: String,
    /// Where it came from.
    pub source: Source,
    /// The raw PDU (SMSC field first), kept whatever the decoding says.
    pub pdu: Vec<u8>,
    /// The decoded PDU, or why it could not be decoded.
    pub decoded: Result<sms::Pdu, sms::DecodeError>,
    /// Set when the modem's answer could not be read as a message: the consumer keeps the raw
    /// answer (then acknowledges, so the slot is freed). `pdu` holds whatever octets it had.
    pub unreadable: Option<Unreadable>,
    /// The SIM's country (ISO 3166 region), from its own number or its IMSI: where a sender in
    /// national format is read when no default region is configured.
    pub region: Option<String>,
    ack: Option<AckToken>,
}

/// A stored slot whose answer could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    /// Why, in words.
    pub reason: String,
    /// The modem's answer (`+CMGR:` header and the lines after it) as received.
    pub answer: String,
}

impl Inbound {
    /// Says the message is stored durably: the driver may delete it from the modem.
    pub fn ack(mut self) {
        if let Some(a) = self.ack.take() {
            let _ = a.tx.send(a.source);
        }
    }
}

#[derive(Debug)]
struct AckToken {
    tx: mpsc::UnboundedSender<Source>,
    source: Source,
}

/// What the driver tells its owner.
#[derive(Debug)]
pub enum ModemEvent {
    /// An SMS-DELIVER (or an undecodable PDU) arrived.
    Message(Inbound),
    /// An SMS-STATUS-REPORT arrived (`decoded` holds `Pdu::StatusReport` when it decoded).
    StatusReport(Inbound),
    /// The modem's state changed.
    State {
        /// The modem's name.
        modem: String,
        /// The new state.
        state: ModemState,
        /// Why, for `down`.
        reason: Option<String>,
    },
}

/// The outcome of one part of a send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartOutcome {
    /// Accepted by the network with this TP-MR.
    Sent {
        /// The modem's message reference (`+CMGS: <mr>`).
        message_reference: u8,
    },
    /// Failed. `maybe_sent`: the failure came after the PDU was handed over.
    Failed {
        /// What happened.
        error: ModemError,
        /// Whether the network may have it anyway.
        maybe_sent: bool,
    },
    /// Not tried because an earlier part failed.
    NotAttempted,
}

enum Request {
    Send {
        parts: Vec<EncodedPart>,
        reply: oneshot::Sender<Result<Vec<PartOutcome>, ModemError>>,
    },
    Command {
        command: String,
        timeout: Duration,
        reply: oneshot::Sender<Result<Response, ModemError>>,
    },
    Ussd {
        code: String,
        timeout: Duration,
        reply: UssdReply,
    },
}

type UssdReply = oneshot::Sender<Result<crate::modem::ussd::UssdAnswer, ModemError>>;

/// A cheap, cloneable handle to a running driver.
#[derive(Clone)]
pub struct ModemHandle {
    name: String,
    tx: mpsc::Sender<Request>,
    status: watch::Receiver<ModemStatus>,
    concat_reference: Arc<AtomicU8>,
}

impl ModemHandle {
    /// The modem's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The latest status.
    pub fn status(&self) -> ModemStatus {
        self.status.borrow().clone()
    }

    /// A receiver that sees every status change.
    pub fn watch(&self) -> watch::Receiver<ModemStatus> {
        self.status.clone()
    }

    /// Waits until the modem is up, or `timeout` passes. Returns whether it is up.
    pub async fn wait_up(&self, timeout: Duration) -> bool {
        let mut rx = self.status.clone();
        tokio::time::timeout(timeout, rx.wait_for(|s| s.state == ModemState::Up))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// The next 8-bit concatenation reference for a multi-part message from this modem.
    pub fn next_concat_reference(&self) -> u8 {
        self.concat_reference.fetch_add(1, Ordering::Relaxed)
    }

    /// Sends already-encoded parts back to back. `Err` means nothing was attempted (modem not up,
    /// driver stopped); otherwise one outcome per part.
    ///
    /// When the driver drops the request without an answer (it failed in the middle of it),
    /// nobody knows how far it got: every part is then `Failed` with `maybe_sent`, so that the
    /// message becomes `unknown` rather than being sent twice.
    pub async fn send_parts(
        &self,
        parts: Vec<EncodedPart>,
    ) -> Result<Vec<PartOutcome>, ModemError> {
        let n = parts.len();
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Request::Send { parts, reply })
            .await
            .map_err(|_| ModemError::Stopped)?;
        match rx.await {
            Ok(outcome) => outcome,
            Err(_) => Ok((0..n)
                .map(|_| PartOutcome::Failed {
                    error: ModemError::Stopped,
                    maybe_sent: true,
                })
                .collect()),
        }
    }

    /// Encodes `text` for `to` (with a fresh concatenation reference) and sends it.
    pub async fn send_text(
        &self,
        to: &str,
        text: &str,
        opts: &SubmitOptions,
    ) -> Result<Vec<PartOutcome>, SendTextError> {
        let opts = SubmitOptions {
            concat_reference: self.next_concat_reference(),
            ..opts.clone()
        };
        let msg = sms::encode_submit(to, text, &opts).map_err(SendTextError::Encode)?;
        self.send_parts(msg.parts)
            .await
            .map_err(SendTextError::Modem)
    }

    /// Sends a USSD code (`*100#`) and waits up to `timeout` for the operator's answer. The
    /// code must pass [`crate::modem::ussd::valid_code`].
    pub async fn ussd(
        &self,
        code: &str,
        timeout: Duration,
    ) -> Result<crate::modem::ussd::UssdAnswer, ModemError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Request::Ussd {
                code: code.to_string(),
                timeout,
                reply,
            })
            .await
            .map_err(|_| ModemError::Stopped)?;
        rx.await.map_err(|_| ModemError::Stopped)?
    }

    /// Runs a raw AT command (for admin tools: USSD, diagnostics).
    pub async fn command(&self, command: &str, timeout: Duration) -> Result<Response, ModemError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Request::Command {
                command: command.to_string(),
                timeout,
                reply,
            })
            .await
            .map_err(|_| ModemError::Stopped)?;
        rx.await.map_err(|_| ModemError::Stopped)?
    }
}

/// Why [`ModemHandle::send_text`] failed before any part went out.
#[derive(Debug, thiserror::Error)]
pub enum SendTextError {
    /// The text or number cannot be encoded.
    #[error(transparent)]
    Encode(sms::EncodeError),
    /// The modem is not available.
    #[error(transparent)]
    Modem(ModemError),
}

/// Starts the driver task. Events go to `events` (the task waits when it is full, so nothing is
/// dropped); the task stops when `cancel` fires.
pub fn spawn(
    cfg: ModemConfig,
    events: mpsc::Sender<ModemEvent>,
    cancel: CancellationToken,
) -> (ModemHandle, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(64);
    let status = ModemStatus {
        name: cfg.name.clone(),
        port: cfg.port.clone(),
        ..ModemStatus::default()
    };
    let (status_tx, status_rx) = watch::channel(status);
    let (ack_tx, ack_rx) = mpsc::unbounded_channel();
    let handle = ModemHandle {
        name: cfg.name.clone(),
        tx,
        status: status_rx,
        concat_reference: Arc::new(AtomicU8::new(fastrand::u8(..))),
    };
    let actor = Actor {
        cfg,
        events,
        requests: rx,
        status: status_tx,
        ack_tx,
        ack_rx,
        cancel,
        pin: PinGuard::default(),
        reads: VecDeque::new(),
        read_last: false,
        awaiting_ack: HashMap::new(),
        handovers: 0,
        memory: None,
        receive_memory: None,
        sr_listable: true,
        cnma: false,
        last_send: None,
        sweep_due: false,
        ussd: None,
        foreign: Default::default(),
    };
    let task = tokio::spawn(actor.run());
    (handle, task)
}

/// Any stream the driver can speak AT over.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// Opens a port: a serial device, `tcp://host:port` (raw TCP) or `rfc2217://host:port`
/// (Telnet COM-PORT-OPTION), see [`crate::modem::remote`].
pub async fn open_port(port: &str, baud: u32) -> Result<Box<dyn Stream>, ModemError> {
    let failed = |e: std::io::Error| ModemError::Open {
        port: port.to_string(),
        reason: e.to_string(),
    };
    if let Some(addr) = port.strip_prefix("tcp://") {
        return Ok(Box::new(
            crate::modem::remote::connect(addr).await.map_err(failed)?,
        ));
    }
    if let Some(addr) = port.strip_prefix("rfc2217://") {
        return Ok(Box::new(
            crate::modem::remote::open_rfc2217(addr, baud)
                .await
                .map_err(failed)?,
        ));
    }
    use tokio_serial::SerialPortBuilderExt;
    let s = tokio_serial::new(port, baud)
        .open_native_async()
        .map_err(|e| ModemError::Open {
            port: port.to_string(),
            reason: crate::modem::probe::explain_open_error(&e),
        })?;
    Ok(Box::new(s))
}

/// Why `serve` returned.
enum Exit {
    Cancelled,
    Lost(ModemError),
}

struct Actor {
    cfg: ModemConfig,
    events: mpsc::Sender<ModemEvent>,
    requests: mpsc::Receiver<Request>,
    status: watch::Sender<ModemStatus>,
    ack_tx: mpsc::UnboundedSender<Source>,
    ack_rx: mpsc::UnboundedReceiver<Source>,
    cancel: CancellationToken,
    pin: PinGuard,
    /// Stored messages/reports to read: (memory, index, is_report).
    reads: VecDeque<(String, u32, bool)>,
    /// A stored message was just read: an acknowledgement or a request waiting goes next, so
    /// that a long run of reads (a network handing over what it held) does not stall sends.
    read_last: bool,
    /// Handed to the consumer, not yet acknowledged: not read again. The value is the
    /// hand-over's number ([`Source::Stored::handover`]).
    awaiting_ack: HashMap<(String, u32), u64>,
    /// The number of the last hand-over of a stored message.
    handovers: u64,
    /// The memory `AT+CPMS` last selected for reading.
    memory: Option<String>,
    /// The memory selected at initialisation, where inbound messages are stored: the one the
    /// sweep lists (and leaves selected).
    receive_memory: Option<String>,
    /// The status report store `SR` can be selected for reading (until a modem refuses).
    sr_listable: bool,
    /// Direct deliveries need `AT+CNMA` (`AT+CSMS` service 1).
    cnma: bool,
    last_send: Option<Instant>,
    /// A full sweep of the message store is wanted (storage full reported).
    sweep_due: bool,
    /// A USSD request waiting for the operator's `+CUSD:`, and until when.
    ussd: Option<(UssdReply, tokio::time::Instant, Duration)>,
    /// Slots holding a phone's own texts (SMS-SUBMIT, SMS-COMMAND), left alone: (memory, index).
    foreign: std::collections::BTreeSet<(String, u32)>,
}

/// Errors that end serving: the port is gone or the modem does not answer.
fn is_fatal(e: &ModemError) -> bool {
    matches!(e, ModemError::PortLost(_) | ModemError::Timeout { .. })
}

impl Actor {
    fn set_state(&mut self, state: ModemState, reason: Option<String>) {
        let mut changed = false;
        self.status.send_if_modified(|s| {
            changed = s.state != state || (reason.is_some() && s.last_error != reason);
            s.state = state;
            if reason.is_some() {
                if s.last_error != reason {
                    s.last_error_at = Some(chrono::Utc::now());
                }
                s.last_error = reason.clone();
            }
            changed
        });
        if changed {
            match state {
                ModemState::Down => {
                    tracing::warn!(modem = %self.cfg.name, reason = reason.as_deref().unwrap_or(""), "modem down")
                }
                _ => tracing::info!(modem = %self.cfg.name, state = state.as_str(), "modem state"),
            }
            // Best effort: a full event channel must not stall state reporting forever.
            let _ = self.events.try_send(ModemEvent::State {
                modem: self.cfg.name.clone(),
                state,
                reason,
            });
        }
    }

    fn update_info(&self, f: impl FnOnce(&mut ModemInfo)) {
        self.status.send_modify(|s| f(&mut s.info));
    }

    async fn run(mut self) {
        let mut backoff = Duration::from_millis(250);
        while !self.cancel.is_cancelled() {
            // A bug must not take the modem away for good: a panic ends this session only (the
            // port is closed with it) and the driver starts over, as after a lost port. A send
            // it interrupted is reported as maybe sent (see `ModemHandle::send_parts`).
            let session = AssertUnwindSafe(self.session(&mut backoff))
                .catch_unwind()
                .await;
            match session {
                Ok(true) => break,
                Ok(false) => {}
                Err(panic) => {
                    let what = crate::server::panic_text(panic.as_ref());
                    tracing::error!(modem = %self.cfg.name, panic = %what,
                        "modem driver failed; reopening the port");
                    self.set_state(
                        ModemState::Down,
                        Some(format!("driver failed ({what}); reopening the port")),
                    );
                    self.memory = None;
                    self.receive_memory = None;
                    self.reads.clear();
                    self.awaiting_ack.clear();
                    self.ussd = None;
                    if self.idle_wait(backoff).await {
                        break;
                    }
                    backoff = (backoff * 2).min(self.cfg.max_backoff);
                }
            }
        }
        self.set_state(ModemState::Stopped, None);
        // Answer whatever is still queued.
        self.requests.close();
        while let Some(r) = self.requests.recv().await {
            reject(r, ModemError::Stopped);
        }
    }

    /// One session: open the port, initialise, serve until the port is lost. Returns `true`
    /// when cancelled.
    async fn session(&mut self, backoff: &mut Duration) -> bool {
        self.set_state(ModemState::Connecting, None);
        let stream = match open_port(&self.cfg.port, self.cfg.baud).await {
            Ok(s) => s,
            Err(e) => {
                self.set_state(ModemState::Down, Some(e.to_string()));
                if self.idle_wait(*backoff).await {
                    return true;
                }
                *backoff = (*backoff * 2).min(self.cfg.max_backoff);
                return false;
            }
        };
        let mut at = AtPort::new(stream);
        self.set_state(ModemState::Initialising, None);
        if let Err(e) = self.initialise(&mut at).await {
            self.set_state(ModemState::Down, Some(e.to_string()));
            drop(at);
            if self.idle_wait(*backoff).await {
                return true;
            }
            *backoff = (*backoff * 2).min(self.cfg.max_backoff);
            return false;
        }
        *backoff = Duration::from_millis(250);
        self.set_state(ModemState::Up, None);
        match self.serve(&mut at).await {
            Exit::Cancelled => true,
            Exit::Lost(e) => {
                self.set_state(ModemState::Down, Some(e.to_string()));
                drop(at);
                self.memory = None;
                self.idle_wait(*backoff).await
            }
        }
    }

    /// Waits `d` while answering requests with "not ready". Returns `true` when cancelled.
    async fn idle_wait(&mut self, d: Duration) -> bool {
        let until = Instant::now() + d;
        loop {
            tokio::select! {
                _ = self.cancel.cancelled() => return true,
                _ = tokio::time::sleep_until(until) => return false,
                r = self.requests.recv() => match r {
                    Some(r) => {
                        let why = self.status.borrow().last_error.clone().unwrap_or_else(|| "connecting".into());
                        reject(r, ModemError::NotReady(why));
                    }
                    None => return true,
                },
            }
        }
    }

    async fn initialise<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        at: &mut AtPort<S>,
    ) -> Result<(), ModemError> {
        let t = self.cfg.command_timeout;
        init::sync(at, t).await?;
        init::basic_settings(at, t).await?;
        let sim = init::unlock_sim(
            at,
            self.cfg.pin.as_deref(),
            &mut self.pin,
            t,
            self.cfg.ready_timeout,
        )
        .await;
        let sim = match sim {
            Ok(s) => s,
            Err(e) => {
                self.update_info(|i| i.sim = Some(e.to_string()));
                return Err(e);
            }
        };
        init::wait_sms_ready(at, t, self.cfg.ready_timeout).await?;
        let mut info = ModemInfo {
            sim: Some(sim),
            ..ModemInfo::default()
        };
        // Direct deliveries need AT+CNMA when the SMS service is phase 2+ (AT+CSMS=1).
        self.cnma = match at.command("AT+CSMS?", t).await {
            Ok(r) => r
                .value("+CSMS:")
                .and_then(|v| info::fields(v).first().cloned())
                .is_some_and(|s| s == "1"),
            Err(e) if is_fatal(&e) => return Err(e),
            Err(_) => false,
        };
        init::configure_sms(at, t, self.cfg.smsc.as_deref(), &mut info).await?;
        init::identify(at, t, &mut info).await?;
        if let Some(n) = &self.cfg.number {
            info.own_number = Some(n.clone());
        }
        init::network(at, t, &mut info).await?;
        self.memory = info.storage.as_ref().and_then(|s| s.memory.clone());
        self.receive_memory = self.memory.clone();
        self.sr_listable = true;
        tracing::info!(
            modem = %self.cfg.name,
            manufacturer = info.manufacturer.as_deref().unwrap_or("?"),
            model = info.model.as_deref().unwrap_or("?"),
            operator = info.operator.as_deref().unwrap_or("?"),
            cnmi = info.cnmi.as_deref().unwrap_or("none"),
            "modem initialised"
        );
        self.status.send_modify(|s| s.info = info);
        // URCs that came during initialisation: boot banners are stale now; keep the rest.
        for ev in at.take_urcs() {
            if !matches!(ev.urc, Urc::Boot(_) | Urc::Ready(_)) {
                self.on_urc(ev).await?;
            }
        }
        self.sweep(at).await?;
        Ok(())
    }

    async fn serve<S: AsyncRead + AsyncWrite + Unpin>(&mut self, at: &mut AtPort<S>) -> Exit {
        let mut health = interval(self.cfg.health_interval);
        health.set_missed_tick_behavior(MissedTickBehavior::Delay);
        health.reset();
        let mut sweep = interval(self.cfg.sweep_interval);
        sweep.set_missed_tick_behavior(MissedTickBehavior::Delay);
        sweep.reset();
        loop {
            let step = self.serve_one(at, &mut health, &mut sweep).await;
            match step {
                Ok(true) => {}
                Ok(false) => return Exit::Cancelled,
                Err(e) if matches!(e, ModemError::Timeout { .. }) => {
                    if let Err(e) = self.recover(at, e).await {
                        return Exit::Lost(e);
                    }
                }
                Err(e) if is_fatal(&e) => return Exit::Lost(e),
                Err(e) => {
                    // A modem that rebooted (asks for the PIN again, says RDY): initialise again.
                    tracing::warn!(modem = %self.cfg.name, error = %e, "re-initialising modem");
                    self.set_state(ModemState::Initialising, Some(e.to_string()));
                    if let Err(e) = self.initialise(at).await {
                        return Exit::Lost(e);
                    }
                    self.set_state(ModemState::Up, None);
                }
            }
        }
    }

    /// One turn of the serving loop. `Ok(false)`: cancelled.
    async fn serve_one<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        at: &mut AtPort<S>,
        health: &mut tokio::time::Interval,
        sweep: &mut tokio::time::Interval,
    ) -> Result<bool, ModemError> {
        if std::mem::take(&mut self.sweep_due) {
            self.sweep(at).await?;
            return Ok(true);
        }
        // Stored messages first, but never between the parts of one send (requests are whole),
        // and taking turns with acknowledgements and requests that are waiting.
        if !self.reads.is_empty() {
            if std::mem::take(&mut self.read_last) {
                let mut served = false;
                if let Ok(source) = self.ack_rx.try_recv() {
                    self.acknowledge(at, source).await?;
                    served = true;
                }
                if let Ok(r) = self.requests.try_recv() {
                    self.handle(at, r).await?;
                    served = true;
                }
                if served {
                    return Ok(true);
                }
            }
            if let Some((memory, index, report)) = self.reads.pop_front() {
                self.read_last = true;
                self.read_stored(at, &memory, index, report).await?;
                return Ok(true);
            }
        }
        tokio::select! {
            biased;
            _ = self.cancel.cancelled() => Ok(false),
            Some(source) = self.ack_rx.recv() => {
                self.acknowledge(at, source).await?;
                Ok(true)
            }
            r = self.requests.recv() => match r {
                Some(r) => {
                    self.handle(at, r).await?;
                    Ok(true)
                }
                None => Ok(false),
            },
            ev = at.next_urc() => {
                self.on_urc(ev?).await?;
                Ok(true)
            }
            _ = tokio::time::sleep_until(self.ussd.as_ref().map_or_else(tokio::time::Instant::now, |u| u.1)), if self.ussd.is_some() => {
                if let Some((reply, _, timeout)) = self.ussd.take() {
                    let _ = reply.send(Err(ModemError::Timeout {
                        command: "AT+CUSD (the operator's answer)".into(),
                        timeout,
                    }));
                    // End the session on the modem's side too.
                    let _ = at.command("AT+CUSD=2", self.cfg.command_timeout).await;
                }
                Ok(true)
            }
            _ = health.tick() => {
                // Keep the link free during a burst of sends (AT+CMMS): poll only when idle.
                if self.last_send.is_none_or(|t| t.elapsed() > Duration::from_secs(5)) {
                    self.poll_health(at).await?;
                }
                Ok(true)
            }
            _ = sweep.tick() => {
                self.sweep(at).await?;
                Ok(true)
            }
        }
    }

    /// The recovery ladder after a timeout: ESC + `AT` (a stuck prompt, a busy modem), then a
    /// full re-initialisation. If the modem still does not answer, the port is closed and
    /// reopened by the caller.
    async fn recover<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        at: &mut AtPort<S>,
        cause: ModemError,
    ) -> Result<(), ModemError> {
        self.set_state(ModemState::Recovering, Some(cause.to_string()));
        init::sync(at, Duration::from_secs(2)).await.map_err(|_| {
            ModemError::PortLost(format!(
                "modem stopped answering ({cause}); reopening the port"
            ))
        })?;
        self.set_state(ModemState::Initialising, None);
        self.initialise(at).await?;
        self.set_state(ModemState::Up, None);
        Ok(())
    }

    async fn handle<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        at: &mut AtPort<S>,
        req: Request,
    ) -> Result<(), ModemError> {
        match req {
            Request::Command {
                command,
                timeout,
                reply,
            } => {
                let r = at.command(&command, timeout).await;
                let fatal = r.as_ref().err().filter(|e| is_fatal(e)).cloned();
                let _ = reply.send(r);
                if let Some(e) = fatal {
                    return Err(e);
                }
                self.process_urcs(at).await
            }
            Request::Ussd {
                code,
                timeout,
                reply,
            } => {
                if self.ussd.is_some() {
                    let _ = reply.send(Err(ModemError::Unexpected {
                        command: "AT+CUSD".into(),
                        detail: "another USSD request is waiting for its answer".into(),
                    }));
                    return Ok(());
                }
                let t = self.cfg.command_timeout;
                let mut r = at.command(&format!("AT+CUSD=1,\"{code}\",15"), t).await;
                if matches!(r, Err(ModemError::Cme { .. } | ModemError::Error { .. }))
                    && let Some(packed) = crate::modem::ussd::pack_code(&code)
                {
                    // Some firmwares (Huawei) want the code packed in GSM 7-bit hex.
                    r = at.command(&format!("AT+CUSD=1,\"{packed}\",15"), t).await;
                }
                match r {
                    Ok(resp) => match resp.value("+CUSD:").and_then(crate::modem::ussd::parse) {
                        // Some modems answer before their OK.
                        Some(a) => {
                            let _ = reply.send(Ok(a));
                        }
                        None => {
                            self.ussd =
                                Some((reply, tokio::time::Instant::now() + timeout, timeout));
                        }
                    },
                    Err(e) => {
                        let fatal = is_fatal(&e).then(|| e.clone());
                        let _ = reply.send(Err(e));
                        if let Some(e) = fatal {
                            return Err(e);
                        }
                    }
                }
                self.process_urcs(at).await
            }
            Request::Send { parts, reply } => {
                let mut outcomes = Vec::with_capacity(parts.len());
                let mut fatal = None;
                let mut reinit = None;
                for part in &parts {
                    if fatal.is_some()
                        || reinit.is_some()
                        || outcomes
                            .iter()
                            .any(|o| !matches!(o, PartOutcome::Sent { .. }))
                    {
                        outcomes.push(PartOutcome::NotAttempted);
                        continue;
                    }
                    let r = at
                        .send_pdu(
                            part.tpdu_length,
                            &part.hex(),
                            self.cfg.prompt_timeout,
                            self.cfg.send_timeout,
                        )
                        .await;
                    self.last_send = Some(Instant::now());
                    match r {
                        Ok(mr) => {
                            // It works again: an earlier error is history now.
                            self.status.send_modify(|s| {
                                s.sent_parts += 1;
                                s.last_error = None;
                                s.last_error_at = None;
                            });
                            outcomes.push(PartOutcome::Sent {
                                message_reference: mr,
                            });
                        }
                        Err(SendFailure { error, maybe_sent }) => {
                            self.status.send_modify(|s| {
                                s.failed_parts += 1;
                                s.last_error = Some(error.to_string());
                                s.last_error_at = Some(chrono::Utc::now());
                            });
                            tracing::warn!(modem = %self.cfg.name, %error, maybe_sent, "send failed");
                            if is_fatal(&error) {
                                fatal = Some(error.clone());
                            } else if matches!(
                                error,
                                ModemError::Cms { code: 311 | 310 }
                                    | ModemError::Cme { code: 10 | 11 }
                            ) {
                                // The SIM asks for its PIN again: the modem rebooted.
                                reinit = Some(error.clone());
                            }
                            outcomes.push(PartOutcome::Failed { error, maybe_sent });
                        }
                    }
                }
                let _ = reply.send(Ok(outcomes));
                if let Some(e) = fatal.or(reinit) {
                    return Err(e);
                }
                self.process_urcs(at).await
            }
        }
    }

    /// Handles URCs that arrived during a command.
    async fn process_urcs<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        at: &mut AtPort<S>,
    ) -> Result<(), ModemError> {
        for ev in at.take_urcs() {
            self.on_urc(ev).await?;
        }
        Ok(())
    }

    async fn on_urc(&mut self, ev: UrcEvent) -> Result<(), ModemError> {
        match ev.urc {
            Urc::NewMessage { memory, index } => {
                self.queue_read(memory, index, false);
            }
            Urc::NewStatusReport { memory, index } => {
                self.queue_read(memory, index, true);
            }
            Urc::DirectMessage | Urc::DirectStatusReport => {
                let report = matches!(ev.urc, Urc::DirectStatusReport);
                let Some(line) = ev.pdu else { return Ok(()) };
                let pdu = match sms::parse_hex(&line) {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::warn!(modem = %self.cfg.name, line, error = %e, "unreadable PDU after {}", ev.line);
                        return Ok(());
                    }
                };
                self.deliver(pdu, Source::Direct, report, None).await;
            }
            Urc::Registration(stat) => {
                let reg = stat.map(Registration::from_stat);
                self.update_info(|i| i.registration = reg);
            }
            Urc::Boot(line) => {
                return Err(ModemError::Unexpected {
                    command: String::new(),
                    detail: format!("modem restarted ({line})"),
                });
            }
            Urc::StorageFull => {
                tracing::warn!(modem = %self.cfg.name, "modem reports its message store full; sweeping");
                self.sweep_due = true;
            }
            Urc::Ussd(args) => match (self.ussd.take(), crate::modem::ussd::parse(&args)) {
                (Some((reply, ..)), Some(a)) => {
                    let _ = reply.send(Ok(a));
                }
                (waiting, parsed) => {
                    self.ussd = waiting;
                    tracing::info!(modem = %self.cfg.name, answer = ?parsed.and_then(|a| a.text), "USSD message from the network");
                }
            },
            Urc::Ready(line) | Urc::Other(line) => {
                tracing::trace!(modem = %self.cfg.name, line, "urc");
            }
        }
        Ok(())
    }

    /// Marks a stored message as handed to the consumer; its source for the acknowledgement.
    fn hand_over(&mut self, memory: &str, index: u32) -> Source {
        self.handovers += 1;
        self.awaiting_ack
            .insert((memory.to_string(), index), self.handovers);
        Source::Stored {
            memory: memory.to_string(),
            index,
            handover: self.handovers,
        }
    }

    fn queue_read(&mut self, memory: String, index: u32, report: bool) {
        let key = (memory.clone(), index);
        if self.awaiting_ack.contains_key(&key)
            || self
                .reads
                .iter()
                .any(|(m, i, _)| *m == memory && *i == index)
        {
            return;
        }
        self.reads.push_back((memory, index, report));
    }

    async fn select_memory<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        at: &mut AtPort<S>,
        memory: &str,
    ) -> Result<(), ModemError> {
        if self.memory.as_deref() == Some(memory) {
            return Ok(());
        }
        at.command(&format!("AT+CPMS=\"{memory}\""), self.cfg.command_timeout)
            .await?;
        self.memory = Some(memory.to_string());
        Ok(())
    }

    async fn read_stored<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        at: &mut AtPort<S>,
        memory: &str,
        index: u32,
        report: bool,
    ) -> Result<(), ModemError> {
        // Handed over since this read was queued (a sweep found it): it is the consumer's.
        if self.awaiting_ack.contains_key(&(memory.to_string(), index)) {
            return Ok(());
        }
        if let Err(e) = self.select_memory(at, memory).await {
            if is_fatal(&e) {
                return Err(e);
            }
            tracing::warn!(modem = %self.cfg.name, memory, error = %e, "cannot select message memory");
            return Ok(());
        }
        let Some(mut answer) = self.cmgr(at, memory, index).await? else {
            return self.process_urcs(at).await;
        };
        if let Content::Unreadable { text_mode, .. } = answer.content {
            // Read once more before keeping it raw: line noise garbles one read, not two, and a
            // modem that fell back to text mode (a reset, another program) is put back first.
            if text_mode {
                tracing::warn!(modem = %self.cfg.name, memory, index, "answer in text mode; setting PDU mode again");
                if let Err(e) = at.command("AT+CMGF=0", self.cfg.command_timeout).await
                    && is_fatal(&e)
                {
                    return Err(e);
                }
            }
            if let Some(again) = self.cmgr(at, memory, index).await? {
                if again.is_for_the_gateway()
                    && !matches!(again.content, Content::Unreadable { .. })
                {
                    answer = again;
                } else if again.answer != answer.answer {
                    answer.answer = format!("{}\r\n\r\n{}", answer.answer, again.answer);
                }
            }
        }
        self.take_slot(at, memory, index, answer, report).await?;
        self.process_urcs(at).await
    }

    /// `AT+CMGR=<index>` in the selected memory, read; `None` when the modem refused it.
    async fn cmgr<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        at: &mut AtPort<S>,
        memory: &str,
        index: u32,
    ) -> Result<Option<StoredAnswer>, ModemError> {
        match at
            .command(&format!("AT+CMGR={index}"), self.cfg.command_timeout)
            .await
        {
            Ok(r) => Ok(Some(stored::parse_cmgr(&r.lines))),
            Err(e) if is_fatal(&e) => Err(e),
            Err(e) => {
                tracing::warn!(modem = %self.cfg.name, memory, index, error = %e, "cannot read stored message");
                Ok(None)
            }
        }
    }

    /// Does with a read slot what its content asks: a message or report is handed over, an
    /// unreadable answer is handed over to be kept raw (and freed once kept), a phone's own
    /// text is left alone and counted, or deleted with `purge_foreign`.
    async fn take_slot<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        at: &mut AtPort<S>,
        memory: &str,
        index: u32,
        answer: StoredAnswer,
        report: bool,
    ) -> Result<(), ModemError> {
        let slot = (memory.to_string(), index);
        let foreign = matches!(answer.content, Content::Foreign { .. });
        if !foreign && self.foreign.remove(&slot) {
            self.publish_foreign();
        }
        match answer.content {
            Content::Empty => {
                tracing::debug!(modem = %self.cfg.name, memory, index, "empty message slot");
            }
            Content::Message(pdu) => {
                let source = self.hand_over(memory, index);
                self.deliver(pdu, source, false, None).await;
            }
            Content::Report(pdu) => {
                let source = self.hand_over(memory, index);
                self.deliver(pdu, source, true, None).await;
            }
            Content::Unreadable { reason, pdu, .. } => {
                tracing::warn!(modem = %self.cfg.name, memory, index, reason, answer = answer.answer,
                    "unreadable stored message; kept raw, then deleted from the SIM");
                let source = self.hand_over(memory, index);
                let unreadable = Unreadable {
                    reason,
                    answer: answer.answer,
                };
                self.deliver(pdu, source, report, Some(unreadable)).await;
            }
            Content::Foreign { what } if self.cfg.purge_foreign => {
                tracing::info!(modem = %self.cfg.name, memory, index, what, answer = answer.answer,
                    "a phone's own text in the SIM; deleting it (purge_foreign)");
                self.select_memory(at, memory).await?;
                match at
                    .command(&format!("AT+CMGD={index}"), self.cfg.command_timeout)
                    .await
                {
                    Err(e) if is_fatal(&e) => return Err(e),
                    Err(e) => {
                        tracing::warn!(modem = %self.cfg.name, memory, index, error = %e, "cannot delete stored message")
                    }
                    Ok(_) => {}
                }
                if self.foreign.remove(&slot) {
                    self.publish_foreign();
                }
            }
            Content::Foreign { what } => {
                if self.foreign.insert(slot) {
                    tracing::info!(modem = %self.cfg.name, memory, index, what,
                        "a phone's own text in the SIM, not a customer's; left there ([inbound] purge_foreign deletes such texts)");
                    self.publish_foreign();
                }
            }
        }
        Ok(())
    }

    /// The SIM's country: from its own number (configured or `AT+CNUM`), else from the MCC
    /// of its IMSI.
    fn region(&self) -> Option<String> {
        let status = self.status.borrow();
        let info = &status.info;
        let by_number = info.own_number.as_deref().and_then(|n| {
            let parsed = phonenumber::parse(None, n).ok()?;
            let id = parsed.country().id()?;
            Some(id.as_ref().to_string())
        });
        by_number.or_else(|| {
            info.imsi
                .as_deref()
                .and_then(crate::modem::mcc::region_of_imsi)
                .map(str::to_string)
        })
    }

    fn publish_foreign(&self) {
        let n = u32::try_from(self.foreign.len()).unwrap_or(u32::MAX);
        self.status.send_modify(|s| s.foreign_messages = n);
    }

    /// Hands a PDU to the consumer. An unreadable answer always goes as a message: it is kept
    /// with the inbound messages, where an admin sees it.
    async fn deliver(
        &mut self,
        pdu: Vec<u8>,
        source: Source,
        report_hint: bool,
        unreadable: Option<Unreadable>,
    ) {
        let decoded = sms::decode_lenient(&pdu, true).map(|(p, _)| p);
        let is_report = match &decoded {
            _ if unreadable.is_some() => false,
            Ok(sms::Pdu::StatusReport(_)) => true,
            Ok(_) => false,
            Err(_) => report_hint,
        };
        self.status.send_modify(|s| s.received += 1);
        let inbound = Inbound {
            modem: self.cfg.name.clone(),
            source: source.clone(),
            pdu,
            decoded,
            unreadable,
            region: self.region(),
            ack: Some(AckToken {
                tx: self.ack_tx.clone(),
                source,
            }),
        };
        let ev = if is_report {
            ModemEvent::StatusReport(inbound)
        } else {
            ModemEvent::Message(inbound)
        };
        if self.events.send(ev).await.is_err() {
            tracing::debug!(modem = %self.cfg.name, "no consumer for inbound events; message stays on the modem");
        }
    }

    async fn acknowledge<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        at: &mut AtPort<S>,
        source: Source,
    ) -> Result<(), ModemError> {
        match source {
            Source::Stored {
                memory,
                index,
                handover,
            } => {
                let key = (memory.clone(), index);
                if self.awaiting_ack.get(&key) != Some(&handover) {
                    // An acknowledgement of an earlier hand-over of this slot: the slot may hold
                    // another message by now. The current hand-over deletes it.
                    tracing::debug!(modem = %self.cfg.name, memory, index, "stale acknowledgement; nothing deleted");
                    return self.process_urcs(at).await;
                }
                self.awaiting_ack.remove(&key);
                self.select_memory(at, &memory).await?;
                match at
                    .command(&format!("AT+CMGD={index}"), self.cfg.command_timeout)
                    .await
                {
                    Ok(_) => {}
                    Err(e) if is_fatal(&e) => return Err(e),
                    Err(e) => {
                        tracing::warn!(modem = %self.cfg.name, memory, index, error = %e, "cannot delete stored message")
                    }
                }
            }
            Source::Direct if self.cnma => match at
                .command("AT+CNMA", self.cfg.command_timeout)
                .await
            {
                Ok(_) => {}
                Err(e) if is_fatal(&e) => return Err(e),
                Err(e) => tracing::debug!(modem = %self.cfg.name, error = %e, "AT+CNMA refused"),
            },
            Source::Direct => {}
        }
        self.process_urcs(at).await
    }

    /// Lists everything in the message stores (`AT+CMGL=4`) and hands over what is not already
    /// with the consumer: the status report store `SR` first (a report whose `+CDSI` was missed,
    /// while the daemon was down, is found only there), then the receive store, left selected.
    async fn sweep<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        at: &mut AtPort<S>,
    ) -> Result<(), ModemError> {
        if self.sr_listable && self.receive_memory.as_deref().is_some_and(|m| m != "SR") {
            match self.select_memory(at, "SR").await {
                Ok(()) => self.sweep_memory(at, "SR", true).await?,
                Err(e) if is_fatal(&e) => return Err(e),
                Err(e) => {
                    // Reports kept elsewhere (in the receive store, or not at all).
                    tracing::debug!(modem = %self.cfg.name, error = %e, "no status report store to list");
                    self.sr_listable = false;
                }
            }
        }
        if let Some(m) = self.receive_memory.clone() {
            match self.select_memory(at, &m).await {
                Ok(()) => {}
                Err(e) if is_fatal(&e) => return Err(e),
                Err(e) => {
                    tracing::warn!(modem = %self.cfg.name, memory = m, error = %e, "cannot select the receive store to list it");
                    return self.process_urcs(at).await;
                }
            }
        }
        let memory = self.memory.clone().unwrap_or_else(|| "SM".to_string());
        self.sweep_memory(at, &memory, false).await?;
        if let Ok(r) = at.command("AT+CPMS?", self.cfg.command_timeout).await {
            let storage = r.value("+CPMS:").and_then(info::parse_cpms);
            self.update_info(|i| i.storage = storage.or(i.storage.take()));
        }
        self.process_urcs(at).await
    }

    /// Lists the selected store, `memory`, and hands over what is not already with the consumer.
    async fn sweep_memory<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        at: &mut AtPort<S>,
        memory: &str,
        reports: bool,
    ) -> Result<(), ModemError> {
        let resp = match at.command("AT+CMGL=4", self.cfg.command_timeout * 6).await {
            Ok(r) => r,
            Err(e) if is_fatal(&e) => return Err(e),
            Err(e) => {
                tracing::debug!(modem = %self.cfg.name, memory, error = %e, "AT+CMGL=4 refused");
                return Ok(());
            }
        };
        let mut seen = Vec::new();
        for answer in stored::parse_cmgl(&resp.lines) {
            let Some(index) = answer.index else {
                tracing::warn!(modem = %self.cfg.name, memory, answer = answer.answer, "a listed message without a readable index");
                continue;
            };
            seen.push(index);
            if self.awaiting_ack.contains_key(&(memory.to_string(), index)) {
                continue;
            }
            if matches!(answer.content, Content::Unreadable { .. }) {
                // Read on its own (and once more) before it is kept raw.
                self.read_stored(at, memory, index, reports).await?;
            } else {
                self.take_slot(at, memory, index, answer, reports).await?;
            }
        }
        // Phone texts in slots the listing no longer shows have gone.
        let before = self.foreign.len();
        self.foreign
            .retain(|(m, i)| m != memory || seen.contains(i));
        if self.foreign.len() != before {
            self.publish_foreign();
        }
        Ok(())
    }

    async fn poll_health<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        at: &mut AtPort<S>,
    ) -> Result<(), ModemError> {
        let t = self.cfg.command_timeout;
        let reg = at.command("AT+CREG?", t).await;
        let csq = at.command("AT+CSQ", t).await;
        for r in [&reg, &csq] {
            if let Err(e) = r
                && is_fatal(e)
            {
                return Err(e.clone());
            }
        }
        // Both answered, registered, and up: the modem works, an earlier error is history.
        let works = reg.is_ok() && csq.is_ok();
        let registration = reg.ok().and_then(|r| {
            r.value("+CREG:")
                .and_then(|v| crate::modem::codec::parse_registration(v, false))
                .map(Registration::from_stat)
        });
        let signal = csq
            .ok()
            .and_then(|r| r.value("+CSQ:").and_then(info::parse_csq));
        self.update_info(|i| {
            if registration.is_some() {
                i.registration = registration;
            }
            if signal.is_some() {
                i.signal = signal;
            }
        });
        if works && registration.is_some_and(Registration::is_registered) {
            self.status.send_if_modified(|s| {
                let stale = s.state == ModemState::Up && s.last_error.is_some();
                if stale {
                    s.last_error = None;
                    s.last_error_at = None;
                }
                stale
            });
        }
        self.process_urcs(at).await
    }
}

fn reject(r: Request, e: ModemError) {
    match r {
        Request::Send { reply, .. } => {
            let _ = reply.send(Err(e));
        }
        Request::Command { reply, .. } => {
            let _ = reply.send(Err(e));
        }
        Request::Ussd { reply, .. } => {
            let _ = reply.send(Err(e));
        }
    }
}
