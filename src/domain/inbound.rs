//! A received SMS as it is kept: whole, or released incomplete.

use chrono::{DateTime, FixedOffset, Utc};
use serde::{Deserialize, Serialize};

/// A received SMS, whole or released incomplete.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InboundMessage {
    /// ULID: sorts by arrival.
    pub id: String,
    /// The modem (SIM) it came in on.
    pub modem: String,
    /// The sender in E.164 when it reads as a number (a national-format sender is read in
    /// `[sms] default_region`, else in the country of the modem's SIM), else as the network gave
    /// it (a short code, a name).
    pub from: String,
    /// The sender as the network gave it, when that differs from `from` (`07700900123`,
    /// `447700900123`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_raw: Option<String>,
    /// The text (parts joined in order; a missing part of a partial message shows as `[…]`).
    pub text: String,
    /// When the gateway stored its first part.
    pub received_at: DateTime<Utc>,
    /// The SMSC's time stamp of its first part, with the SMSC's offset.
    #[schema(value_type = Option<String>)]
    pub smsc_timestamp: Option<DateTime<FixedOffset>>,
    /// `gsm7`, `ucs2`, `8bit`, or `undecodable`.
    pub encoding: String,
    /// How many parts the sender sent.
    pub total_parts: u8,
    /// How many arrived.
    pub parts_received: u8,
    /// Released incomplete after the reassembly timeout.
    pub partial: bool,
    /// The raw PDUs (SMSC field first, hex), in part order.
    pub pdus: Vec<String>,
    /// Why the PDU could not be read, when it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decode_error: Option<String>,
    /// The modem's whole answer (`+CMGR:` header and the lines after it, CR LF between them),
    /// kept when it could not be read as a message: `smsgate pdu decode` reads it again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_answer: Option<String>,
    /// The message this answers, when reply matching found one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_reply_to: Option<String>,
    /// What the gateway did with it: `reply` (matched, see `in_reply_to`), `unmatched`,
    /// `opt_out`, `opt_in`, `help`, `repeat_opt_out` (already opted out), or `ignored`
    /// (nothing readable). Absent while it has not been acted on yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handling: Option<String>,
}
