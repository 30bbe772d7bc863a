//! The modem simulator: a fake GSM modem behind a pseudo-terminal that speaks the AT dialogue
//! of a real one (TS 27.007 / 27.005, PDU mode). Every test, benchmark and the demo talk to it
//! through the PTY only, exactly as the driver talks to a USB modem.
//!
//! - `pty`: the PTY pair (raw mode, hang-up detection, stale output discarded).
//! - `at`: command-line parsing (V.250 syntax), result codes and their framing.
//! - `state`: the modem's volatile settings, the SIM's message stores, multipart assembly.
//! - `actor`: the one task that owns the master side and plays the modem (input framing,
//!   command handlers, SIM storage, the simulated network and output, one file each).
//!
//! ```text
//! client ──/dev/pts/N──▶ PTY master ──▶ actor ──▶ SentMessage (sent(), JSONL log)
//!                                         ▲   └──▶ URCs: +CMTI/+CMT, +CDS/+CDSI, noise
//!              SimHandle (knobs, inject) ─┘
//! ```
//!
//! ## What a client sees (exact bytes, default config)
//! - Echo is on after start, `ATZ`, `AT&F`, `AT+CFUN=1,1` and replug: every byte typed comes
//!   back as it arrives, except a LF right after the CR that ended a line. `AT\r\n` gives
//!   `AT\r` `\r\nOK\r\n`. After the prompt the PDU hex is echoed too (not the Ctrl-Z).
//! - Information lines: `\r\n<line>\r\n` (several lines of one command: `\r\n<a>\r\n<b>\r\n`),
//!   then the final result `\r\nOK\r\n`, `\r\nERROR\r\n`, `\r\n+CME ERROR: <n>\r\n` or
//!   `\r\n+CMS ERROR: <n>\r\n`. With `AT+CMEE=0` (the default) both error kinds are plain
//!   `ERROR`; `AT+CMEE=2` gives texts. Unknown commands: `ERROR`.
//! - `AT+CMGS=<n>\r` → `\r\n> ` (no line end); PDU hex; `0x1A` → after the latency
//!   `\r\n+CMGS: <mr>\r\n\r\nOK\r\n`; `0x1B` → `\r\nOK\r\n`, nothing sent. Bytes sent while
//!   the network answer is pending wait and are handled after it.
//! - `+CMGR: <stat>,,<len>\r\n<pdu>\r\n`, `+CMGL: <i>,<stat>,,<len>\r\n<pdu>\r\n`; an empty
//!   slot answers a bare `OK`, an index outside the store `+CMS ERROR: 321`.
//! - URCs: `\r\n+CMTI: "SM",<i>\r\n`, `\r\n+CMT: ,<len>\r\n<pdu>\r\n`,
//!   `\r\n+CDS: <len>\r\n<pdu>\r\n`, `\r\n+CDSI: "SR",<i>\r\n`. Power-on `AT+CNMI` is
//!   `0,0,0,0,0`: inbound is stored silently and status reports are dropped until the client
//!   sets it. Output while no client has the port open is lost, as on a real port.
//!
//! Knobs that change how the modem answers (latency, errors, noise, storage full, freeze) live
//! in shared state behind a `std::sync::Mutex` held only briefly, so a setter has taken effect
//! when it returns; actions that make the modem *do* something (inject, unplug, replug, require
//! a PIN) go to the actor over a bounded channel and are applied before any byte the client
//! writes afterwards.

mod actor;
mod at;
mod pty;
mod state;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::sms::{Address, encode_deliver, encode_status_report};

use state::{Mem, REC_UNREAD, STO_SENT, STO_UNSENT, Slot, Stores};

/// How many AT command lines [`SimHandle::commands`] keeps (the oldest are dropped).
pub const MAX_COMMANDS_KEPT: usize = 100_000;
/// How many delivered messages [`SimHandle::sent`] keeps (the oldest are dropped).
pub const MAX_SENT_KEPT: usize = 100_000;
/// Capacity of the channel from the handles to the actor.
const CONTROL_CAPACITY: usize = 1024;
/// Inbound parts held back while the store is full or the modem not ready (the oldest are
/// dropped beyond this).
pub(crate) const MAX_HELD: usize = 1000;

/// How the simulated modem behaves. Start from [`SimConfig::default`] and change what matters.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// A symlink to create (and keep pointing at the current slave device across replugs).
    pub link: Option<PathBuf>,
    /// Append one JSON line per network-delivered message to this file.
    pub log: Option<PathBuf>,
    /// Append one JSON line per AT command line received (its time and text) to this file.
    pub command_log: Option<PathBuf>,
    /// Network time of one `AT+CMGS`: between the Ctrl-Z and the `+CMGS:` answer.
    pub latency: Duration,
    /// Probability (0.0..=1.0) that an `AT+CMGS` fails with `+CMS ERROR: <error_code>`.
    pub error_rate: f64,
    /// The `+CMS ERROR` code of random failures.
    pub error_code: u16,
    /// Echo on at start and after every reset (real modems: on).
    pub echo: bool,
    /// Unsolicited noise (`^RSSI`, `^HCSQ`, `^MODE`, `^BOOT`, `RING`, `+CREG: 1`) at random
    /// moments, also between the lines of a command's response.
    pub noise: bool,
    /// Send a status report this long after a `+CMGS` whose PDU asked for one; `None`: never.
    pub status_reports: Option<Duration>,
    /// TP-ST of the status reports (0x00 delivered; see TS 23.040 §9.2.3.15).
    pub status_code: u8,
    /// The SIM asks for this PIN at start and after every replug.
    pub pin: Option<String>,
    /// The PUK that unblocks the SIM after three wrong PINs (`AT+CPIN="<puk>","<new pin>"`).
    pub puk: String,
    /// Slots in each message store ("SM", "ME", "SR").
    pub storage_capacity: usize,
    /// The first message index (1; some modems count from 0).
    pub first_index: u32,
    /// What ends a response line: `"\r\n"`, or `"\r\r\n"` like one Huawei variant.
    pub line_ending: &'static str,
    /// The prompt after `AT+CMGS=<n>` (after a `\r\n`): `"> "`, some firmwares send `">"`.
    pub prompt: &'static str,
    /// How long the modem waits after the prompt for the PDU to end (Ctrl-Z or ESC) before it
    /// gives up with `+CMS ERROR: 500` and goes back to command mode (Cinterion manuals: "after
    /// the prompt a timer will be started to observe the input"); `None`: it waits for ever.
    /// Without it, a client killed between the prompt and its Ctrl-Z leaves the modem
    /// swallowing every later command as PDU text.
    pub prompt_timeout: Option<Duration>,
    /// Boot URCs (`RDY`, `+CFUN: 1`, `+CPIN: READY`, `SMS Ready`) when a client first connects
    /// after start/replug (and after `ATZ`); SMS commands answer `+CMS ERROR: 314` until
    /// `SMS Ready`, [`SimConfig::boot_delay`] after the SIM is ready.
    pub boot_urcs: bool,
    /// Time from boot (or PIN entry) to `SMS Ready` when [`SimConfig::boot_urcs`] is on.
    pub boot_delay: Duration,
    /// Send a Huawei-style `^SMMEMFULL: "SM"` when an inbound message finds the store full.
    pub memfull_urc: bool,
    /// Report `+CMS ERROR: <n>` even with `AT+CMEE=0` (many modems do); otherwise plain `ERROR`.
    pub cms_error_ignores_cmee: bool,
    /// With `AT+CSMS=1`, a `+CMT`/`+CDS` not acknowledged with `AT+CNMA` within this time is
    /// delivered once more (the network's redelivery); `None` disables it.
    pub cnma_timeout: Option<Duration>,
    /// Time per byte on the line, each way: 1 ms is a 9600-baud serial link, slower than any
    /// USB modem; zero (the default) is as fast as the PTY goes.
    pub byte_time: Duration,
    /// Seed of the random choices (errors, noise).
    pub seed: u64,
    /// `AT+CGMI`.
    pub manufacturer: String,
    /// `AT+CGMM`.
    pub model: String,
    /// `AT+CGMR`.
    pub revision: String,
    /// `AT+CGSN`.
    pub imei: String,
    /// `AT+CIMI`.
    pub imsi: String,
    /// `AT+CNUM`.
    pub own_number: String,
    /// `AT+COPS?`.
    pub operator: String,
    /// `AT+CSCA?` (the SMSC stored on the SIM) and the SMSC field of inbound PDUs.
    pub smsc: String,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            link: None,
            log: None,
            command_log: None,
            latency: Duration::ZERO,
            error_rate: 0.0,
            error_code: 500,
            echo: true,
            noise: false,
            status_reports: Some(Duration::ZERO),
            status_code: 0,
            pin: None,
            puk: "12345678".into(),
            storage_capacity: 30,
            first_index: 1,
            line_ending: "\r\n",
            prompt: "> ",
            prompt_timeout: Some(Duration::from_secs(60)),
            boot_urcs: false,
            boot_delay: Duration::from_millis(300),
            memfull_urc: false,
            cms_error_ignores_cmee: false,
            cnma_timeout: Some(Duration::from_secs(17)),
            byte_time: Duration::ZERO,
            seed: 0x5EED,
            manufacturer: "smsgate".into(),
            model: "SIM-1 simulated modem".into(),
            revision: concat!("smsgate-sim ", env!("CARGO_PKG_VERSION")).into(),
            imei: "356938035643809".into(),
            imsi: "001010123456789".into(),
            own_number: "+15550001234".into(),
            operator: "SimNet".into(),
            smsc: "+15550000000".into(),
        }
    }
}

/// A message the simulated network delivered: all parts of it were accepted by `AT+CMGS`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentMessage {
    /// The destination as the PDU gave it (`+` and digits when international).
    pub to: String,
    /// The joined text of all parts.
    pub text: String,
    /// `gsm7`, `ucs2` or `8bit`.
    pub encoding: String,
    /// How many parts it took.
    pub parts: usize,
    /// The TP-MR the modem answered for each part (`+CMGS: <mr>`), in part order.
    pub message_references: Vec<u8>,
    /// When the last part was accepted.
    pub at: DateTime<Utc>,
}

/// Starts simulators.
#[derive(Debug)]
pub struct Simulator;

impl Simulator {
    /// Creates the PTY (and the link), spawns the modem task on the current tokio runtime and
    /// returns its handle.
    pub async fn start(cfg: SimConfig) -> std::io::Result<SimHandle> {
        let (tx, rx) = mpsc::channel(CONTROL_CAPACITY);
        let shared = Arc::new(Shared {
            inner: Mutex::new(SharedState {
                knobs: Knobs {
                    latency: cfg.latency,
                    error_rate: cfg.error_rate,
                    error_code: cfg.error_code,
                    fail_next: 0,
                    fail_code: 500,
                    noise: cfg.noise,
                    status_reports: cfg.status_reports,
                    status_code: cfg.status_code,
                    storage_full: false,
                    frozen: false,
                    balance: "12.34".into(),
                    byte_time: cfg.byte_time,
                },
                sent: VecDeque::new(),
                commands: VecDeque::new(),
                stores: Stores::new(cfg.storage_capacity, cfg.first_index),
                slave_path: None,
                inbound_reference: 0,
                view: ModemView::default(),
                in_flight: 0,
                held: VecDeque::new(),
            }),
            link: cfg.link.clone(),
            smsc: cfg.smsc.clone(),
        });
        actor::spawn(cfg, Arc::clone(&shared), rx).await?;
        Ok(SimHandle { tx, shared })
    }
}

/// The knobs the actor reads whenever it needs them.
#[derive(Debug, Clone)]
pub(crate) struct Knobs {
    pub(crate) latency: Duration,
    pub(crate) error_rate: f64,
    pub(crate) error_code: u16,
    /// How many of the next `AT+CMGS` still fail with `fail_code`.
    pub(crate) fail_next: usize,
    pub(crate) fail_code: u16,
    pub(crate) noise: bool,
    pub(crate) status_reports: Option<Duration>,
    pub(crate) status_code: u8,
    pub(crate) storage_full: bool,
    pub(crate) frozen: bool,
    /// The prepaid balance `*100#` answers.
    pub(crate) balance: String,
    /// Time per byte on the line, each way (zero: as fast as the PTY goes).
    pub(crate) byte_time: Duration,
}

/// What the handles and the actor share. The lock is held for a few statements, never across
/// an `.await`.
#[derive(Debug)]
pub(crate) struct Shared {
    inner: Mutex<SharedState>,
    link: Option<PathBuf>,
    smsc: String,
}

#[derive(Debug)]
pub(crate) struct SharedState {
    pub(crate) knobs: Knobs,
    pub(crate) sent: VecDeque<SentMessage>,
    pub(crate) commands: VecDeque<String>,
    /// The message stores: on the SIM (and the modem's flash), so they survive a replug.
    pub(crate) stores: Stores,
    /// The current slave device, `None` while unplugged.
    pub(crate) slave_path: Option<PathBuf>,
    /// Concatenation reference of the next injected multipart message.
    pub(crate) inbound_reference: u8,
    /// What the handles need to know of the modem's state to store an inbound message at once.
    pub(crate) view: ModemView,
    /// Controls that change the modem's state (unplug, replug, PIN) sent but not yet applied:
    /// while any is in flight `view` may be out of date, so inbound messages queue in `held`.
    pub(crate) in_flight: usize,
    /// Inbound SMS-DELIVER PDUs the modem could not take yet (store full, not ready, unplugged,
    /// or routed straight to the client), oldest first.
    pub(crate) held: VecDeque<Vec<u8>>,
}

/// The part of the modem's state that decides where an inbound message goes, published by the
/// actor after every event.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ModemView {
    /// A PTY exists.
    pub(crate) plugged: bool,
    /// Registered and SMS-ready: the network can deliver.
    pub(crate) ready: bool,
    /// `AT+CNMI` `<mt>`.
    pub(crate) mt: u8,
    /// `AT+CPMS` receive store.
    pub(crate) mem3: Mem,
}

impl Default for ModemView {
    fn default() -> Self {
        ModemView {
            plugged: false,
            ready: false,
            mt: 0,
            mem3: Mem::Sm,
        }
    }
}

impl Shared {
    /// Locks the shared state. A panic elsewhere cannot leave it inconsistent in a way that
    /// matters to a simulator, so a poisoned lock is simply taken over.
    pub(crate) fn lock(&self) -> MutexGuard<'_, SharedState> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Actions the actor performs on behalf of a handle.
#[derive(Debug)]
pub(crate) enum Control {
    /// These inbound messages were stored: indicate them per `AT+CNMI`.
    Stored(Vec<(Mem, u32)>),
    /// Write these bytes to the line now.
    Raw(Vec<u8>),
    /// A status report from the network: deliver it per `AT+CNMI` `<ds>`.
    StatusReport(Vec<u8>),
    /// Something in the knobs changed that may release held-back work (storage no longer full,
    /// unfrozen).
    Kick,
    /// The SIM now asks for this PIN (or none).
    RequirePin(Option<String>),
    /// Close the PTY.
    Unplug,
    /// Restart the firmware on the same port (no replug).
    Reboot,
    /// Open a new PTY and reset the modem.
    Replug(oneshot::Sender<std::io::Result<()>>),
    /// Stop the task.
    Shutdown(oneshot::Sender<()>),
}

/// A handle on a running simulator: cheap to clone, `Send + Sync`. The modem task ends when
/// [`SimHandle::shutdown`] is called or the last handle is dropped.
#[derive(Debug, Clone)]
pub struct SimHandle {
    tx: mpsc::Sender<Control>,
    shared: Arc<Shared>,
}

impl SimHandle {
    /// The device to open: the link if one is configured, else the current slave device
    /// (e.g. `/dev/pts/7`; it changes on [`SimHandle::replug`]; empty while unplugged).
    pub fn path(&self) -> PathBuf {
        match &self.shared.link {
            Some(link) => link.clone(),
            None => self.shared.lock().slave_path.clone().unwrap_or_default(),
        }
    }

    /// The current slave device, `None` while unplugged (whatever the link says).
    pub fn slave_path(&self) -> Option<PathBuf> {
        self.shared.lock().slave_path.clone()
    }

    /// The messages the network has delivered so far, oldest first.
    pub fn sent(&self) -> Vec<SentMessage> {
        self.shared.lock().sent.iter().cloned().collect()
    }

    /// Every AT command line received, in order (without the trailing `\r`; PDUs typed after a
    /// prompt are not command lines and are not listed).
    pub fn commands(&self) -> Vec<String> {
        self.shared.lock().commands.iter().cloned().collect()
    }

    /// Inbound parts the network holds because the modem could not take them yet (store full,
    /// not ready, unplugged); it tries again every second and whenever the modem frees room.
    pub fn held(&self) -> usize {
        self.shared.lock().held.len()
    }

    /// The SIM store ("SM"): (index, PDU in upper-case hex with the SMSC field), by index.
    pub fn stored(&self) -> Vec<(u32, String)> {
        self.shared.lock().stores.sm.hex_list()
    }

    /// The status report store ("SR"): (index, PDU in upper-case hex with the SMSC field), by
    /// index. Reports land here with `AT+CNMI=…,2,…` until the client deletes them.
    pub fn stored_reports(&self) -> Vec<(u32, String)> {
        self.shared.lock().stores.sr.hex_list()
    }

    /// Sets the network time of each following `AT+CMGS`.
    pub fn set_latency(&self, d: Duration) {
        self.shared.lock().knobs.latency = d;
    }

    /// Makes each following `AT+CMGS` fail with probability `rate` and `+CMS ERROR: code`.
    pub fn set_error_rate(&self, rate: f64, code: u16) {
        let mut s = self.shared.lock();
        s.knobs.error_rate = rate.clamp(0.0, 1.0);
        s.knobs.error_code = code;
    }

    /// The next `n` `AT+CMGS` with a valid PDU answer `+CMS ERROR: code` (deterministic).
    pub fn fail_next(&self, n: usize, code: u16) {
        let mut s = self.shared.lock();
        s.knobs.fail_next = n;
        s.knobs.fail_code = code;
    }

    /// The balance the USSD code `*100#` reports (`+CUSD: 0,"Balance: <it> USD. …",15`).
    pub fn set_balance(&self, balance: &str) {
        self.shared.lock().knobs.balance = balance.to_string();
    }

    /// Turns URC noise on or off.
    pub fn set_noise(&self, on: bool) {
        self.shared.lock().knobs.noise = on;
    }

    /// Sets when status reports follow a send that asked for one (`None`: never) and their TP-ST.
    pub fn set_status_reports(&self, delay: Option<Duration>, code: u8) {
        let mut s = self.shared.lock();
        s.knobs.status_reports = delay;
        s.knobs.status_code = code;
    }

    /// Hands the modem a message "from the network": encoded as SMS-DELIVER (several parts when
    /// long, UCS-2 when asked or needed) and delivered per `AT+CNMI` (`+CMTI` or `+CMT`). Fails
    /// for an invalid number, a text that cannot be encoded, or a full control channel.
    pub fn inject_inbound(&self, from: &str, text: &str, ucs2: bool) -> std::io::Result<()> {
        let invalid = |e: crate::sms::EncodeError| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string())
        };
        let from = Address::parse_number("from", from).map_err(invalid)?;
        let smsc = if self.shared.smsc.is_empty() {
            None
        } else {
            Some(Address::parse_number("smsc", &self.shared.smsc).map_err(invalid)?)
        };
        let reference = {
            let mut s = self.shared.lock();
            s.inbound_reference = s.inbound_reference.wrapping_add(1);
            s.inbound_reference
        };
        let now = Utc::now().fixed_offset();
        let parts =
            encode_deliver(smsc.as_ref(), &from, text, &now, ucs2, reference).map_err(invalid)?;
        if self.tx.is_closed() {
            return Err(gone());
        }
        // Stored right here, so that `stored()` shows the message as soon as this returns; the
        // actor only sends the indication. What the store cannot take now waits in `held`.
        let mut stored = Vec::new();
        let mut held = false;
        {
            let mut s = self.shared.lock();
            let view = s.view;
            let storable = s.in_flight == 0
                && view.plugged
                && view.ready
                && view.mt != 2
                && !s.knobs.storage_full;
            for pdu in parts {
                if storable && s.held.is_empty() {
                    let store = s.stores.get_mut(view.mem3);
                    if store.used() < store.capacity()
                        && let Some(index) = store.insert(REC_UNREAD, pdu.clone())
                    {
                        stored.push((view.mem3, index));
                        continue;
                    }
                }
                if s.held.len() >= MAX_HELD {
                    s.held.pop_front();
                }
                s.held.push_back(pdu);
                held = true;
            }
        }
        // A full channel only loses an indication, as a busy modem might; the message is safe.
        if !stored.is_empty() {
            let _ = self.control(Control::Stored(stored));
        }
        if held {
            let _ = self.control(Control::Kick);
        }
        Ok(())
    }

    /// Stores a device's answer to `AT+CMGR` in the receive store's next free slot, replayed byte
    /// for byte when the slot is read (and listed by `AT+CMGL` with `+CMGL: <index>,` in front of
    /// its fields), and announces it per `AT+CNMI` (`+CMTI`). `answer` is what the device printed
    /// between the command and its final result: `+CMGR: <stat>,[<alpha>],<length>\r\n<PDU>\r\n`
    /// as real devices vary it (an answer captured from `AT+CMGL` is stored in its `+CMGR` form).
    /// Fails when the store is full or the modem cannot take messages now.
    pub fn inject_verbatim(&self, answer: &str) -> std::io::Result<u32> {
        let answer = cmgr_form(answer);
        let header = answer.split(['\r', '\n']).next().unwrap_or("");
        let args = header.get(6..).unwrap_or("").trim();
        let first = args
            .split(',')
            .next()
            .unwrap_or("")
            .trim()
            .trim_matches('"');
        let stat = match first.parse::<u8>() {
            Ok(n) if n <= STO_SENT => n,
            _ if first.eq_ignore_ascii_case("STO SENT") => STO_SENT,
            _ if first.eq_ignore_ascii_case("STO UNSENT") => STO_UNSENT,
            _ => REC_UNREAD,
        };
        // The PDU line as far as it is hex, for `stored()`.
        let pdu_line = answer
            .split(['\r', '\n'])
            .filter(|l| !l.is_empty())
            .nth(1)
            .unwrap_or("");
        let hex: String = pdu_line
            .chars()
            .take_while(char::is_ascii_hexdigit)
            .collect();
        let pdu = crate::sms::parse_hex(&hex[..hex.len() & !1]).unwrap_or_default();
        if self.tx.is_closed() {
            return Err(gone());
        }
        let index = {
            let mut s = self.shared.lock();
            let view = s.view;
            if !(view.plugged && view.ready) || s.knobs.storage_full {
                return Err(std::io::Error::other(
                    "the modem cannot store a message now",
                ));
            }
            let store = s.stores.get_mut(view.mem3);
            let index = store
                .insert_slot(Slot {
                    stat,
                    pdu,
                    verbatim: Some(answer),
                })
                .ok_or_else(|| std::io::Error::other("the message store is full"))?;
            (view.mem3, index)
        };
        let _ = self.control(Control::Stored(vec![index]));
        Ok(index.1)
    }

    /// Hands the modem a status report "from the network" about the message with TP-MR
    /// `message_reference` sent to `recipient`, with TP-ST `code`, delivered per `AT+CNMI`
    /// (`+CDS`, or stored with `+CDSI`; dropped while unplugged or with `<ds>` 0, as a real
    /// modem does). Fails for an invalid number or a full control channel.
    pub fn inject_status_report(
        &self,
        message_reference: u8,
        recipient: &str,
        code: u8,
    ) -> std::io::Result<()> {
        let invalid = |e: crate::sms::EncodeError| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string())
        };
        let to = Address::parse_number("recipient", recipient).map_err(invalid)?;
        let smsc = if self.shared.smsc.is_empty() {
            None
        } else {
            Some(Address::parse_number("smsc", &self.shared.smsc).map_err(invalid)?)
        };
        let now = Utc::now().fixed_offset();
        let pdu = encode_status_report(smsc.as_ref(), message_reference, &to, &now, &now, code);
        self.control(Control::StatusReport(pdu))
    }

    /// Writes arbitrary bytes (garbage, URCs) to the line now, unframed.
    pub fn inject_raw(&self, bytes: &[u8]) {
        let _ = self.control(Control::Raw(bytes.to_vec()));
    }

    /// Makes the message stores behave as full: inbound messages are held back (not lost) until
    /// `false`, `AT+CMGW` answers `+CMS ERROR: 322`, `AT+CPMS` reports every slot used.
    pub fn set_storage_full(&self, full: bool) {
        self.shared.lock().knobs.storage_full = full;
        let _ = self.control(Control::Kick);
    }

    /// The SIM asks for `pin` now (as after a reboot), or for nothing with `None`.
    pub fn require_pin(&self, pin: Option<String>) {
        let _ = self.state_control(Control::RequirePin(pin));
    }

    /// Freezes the modem: input is read and dropped and nothing at all is written until
    /// unfrozen. A send whose answer falls due while frozen still reaches the network.
    pub fn freeze(&self, on: bool) {
        self.shared.lock().knobs.frozen = on;
        let _ = self.control(Control::Kick);
    }

    /// Makes the line slow: each byte, each way, takes `byte_time` (zero: full speed again).
    pub fn set_byte_time(&self, byte_time: Duration) {
        self.shared.lock().knobs.byte_time = byte_time;
        let _ = self.control(Control::Kick);
    }

    /// The firmware restarts on the same port, as after a crash or a watchdog: settings back to
    /// power-on (echo on, `AT+CNMI` off), the SIM asks for its PIN again when it has one, and
    /// the boot URCs (`RDY`, `+CFUN: 1`, `+CPIN: …`, `SMS Ready`) go out. Stored messages stay.
    pub fn reboot(&self) {
        let _ = self.state_control(Control::Reboot);
    }

    /// Pulls the modem out: the PTY is closed (the client reads EOF, writes fail with EIO) and
    /// the link removed. A send in flight is lost. Stored messages stay on the SIM.
    pub fn unplug(&self) {
        let _ = self.state_control(Control::Unplug);
    }

    /// Plugs the modem back in: a new PTY (a new slave path), the link updated, the modem reset
    /// (echo on, settings to defaults, the PIN asked again if one is configured). Stored
    /// messages are kept. Works with or without a prior [`SimHandle::unplug`].
    pub async fn replug(&self) -> std::io::Result<()> {
        let (tx, rx) = oneshot::channel();
        self.shared.lock().in_flight += 1;
        if self.tx.send(Control::Replug(tx)).await.is_err() {
            self.shared.lock().in_flight -= 1;
            return Err(gone());
        }
        rx.await.map_err(|_| gone())?
    }

    /// Stops the modem task: closes the PTY and removes the link. Idempotent.
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Control::Shutdown(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// Sends a control that changes what `view` says; see [`SharedState::in_flight`].
    fn state_control(&self, c: Control) -> std::io::Result<()> {
        self.shared.lock().in_flight += 1;
        let r = self.control(c);
        if r.is_err() {
            let mut s = self.shared.lock();
            s.in_flight = s.in_flight.saturating_sub(1);
        }
        r
    }

    fn control(&self, c: Control) -> std::io::Result<()> {
        self.tx.try_send(c).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => std::io::Error::new(
                std::io::ErrorKind::WouldBlock,
                "simulator control channel full",
            ),
            mpsc::error::TrySendError::Closed(_) => gone(),
        })
    }
}

fn gone() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::BrokenPipe, "simulator has stopped")
}

/// An answer captured from `AT+CMGL` (`+CMGL: <index>,<fields>`) in its `+CMGR: <fields>` form;
/// any other answer as it is.
fn cmgr_form(answer: &str) -> String {
    match answer.get(..6) {
        Some(h) if h.eq_ignore_ascii_case("+CMGL:") => {
            let rest = &answer[6..];
            let fields = rest.split_once(',').map_or(rest, |(_, f)| f);
            format!("+CMGR: {fields}")
        }
        _ => answer.to_string(),
    }
}
