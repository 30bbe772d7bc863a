//! The driver task: one task owns one port for its whole life. Sends and commands come in through
//! a channel; inbound messages, status reports and state changes go out as [`ModemEvent`]s.
//!
//! The task loops: open the port → initialise → serve until the port is lost or the modem stops
//! answering → back off → open again. A command that times out starts the recovery ladder: ESC and
//! `AT` (the modem may be stuck in a prompt), re-initialisation, then closing and reopening the
//! port. Inbound messages are deleted from the SIM only after the consumer acknowledges that it
//! stored them.
//!
//! - `config`: how to reach and drive one modem.
//! - `handle`: [`spawn`] and the [`ModemHandle`] the rest of the crate calls.
//! - `events`: what goes out: [`ModemEvent`], [`Inbound`] and its acknowledgement.
//! - `session`: the AT conversation of one connection (open, initialise, serve, recover).
//! - `storage`: messages stored on the SIM: reading, handing over, deleting after the
//!   acknowledgement, sweeping.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::modem::error::ModemError;
use crate::modem::info::ModemStatus;
use crate::modem::init::PinGuard;

mod config;
mod events;
mod handle;
mod session;
mod storage;

pub use config::{BalanceCheck, ModemConfig};
pub use events::{Inbound, ModemEvent, Source, Unreadable};
pub use handle::{ModemHandle, PartOutcome, SendTextError, spawn};
pub use session::{Stream, open_port};

use events::AckToken;
use handle::{Request, UssdReply};

/// The state of the driver task, shared by its session and SIM storage halves.
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
