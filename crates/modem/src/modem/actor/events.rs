//! What the driver hands its owner: inbound messages and reports ([`Inbound`], with the
//! acknowledgement that frees their slot) and state changes ([`ModemEvent`]).

use tokio::sync::mpsc;

use crate::modem::info::ModemState;
use crate::sms;

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
    pub(super) ack: Option<AckToken>,
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
pub(super) struct AckToken {
    pub(super) tx: mpsc::UnboundedSender<Source>,
    pub(super) source: Source,
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
