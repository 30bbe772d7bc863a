//! A message: its status, attempts, parts and event history, as the store keeps it.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A message's place in its life.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    PartialOrd,
    Ord,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum Status {
    /// Waiting to be sent (now, or after a retry backoff).
    Queued = 0,
    /// Waiting for its `send_at`.
    Scheduled = 1,
    /// Handed to a modem; `AT+CMGS` under way.
    Sending = 2,
    /// Accepted by the network (every part has a TP-MR).
    Sent = 3,
    /// Every part's status report says delivered.
    Delivered = 4,
    /// Gave up: permanent error, attempts exhausted, or a failure report.
    Failed = 5,
    /// Not sent: past `expires_at`, or it could only have gone out too late.
    Expired = 6,
    /// Cancelled by a caller or an opt-out.
    Cancelled = 7,
    /// Was `sending` when the daemon stopped abruptly: it may or may not have gone out. Not
    /// re-sent automatically; an admin may requeue it.
    Unknown = 8,
}

impl Status {
    /// Every status, in life order.
    pub const ALL: [Status; 9] = [
        Status::Queued,
        Status::Scheduled,
        Status::Sending,
        Status::Sent,
        Status::Delivered,
        Status::Failed,
        Status::Expired,
        Status::Cancelled,
        Status::Unknown,
    ];

    /// The name used in JSON and query strings.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::Scheduled => "scheduled",
            Status::Sending => "sending",
            Status::Sent => "sent",
            Status::Delivered => "delivered",
            Status::Failed => "failed",
            Status::Expired => "expired",
            Status::Cancelled => "cancelled",
            Status::Unknown => "unknown",
        }
    }

    /// Parses a name.
    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// The byte that stands for it in the store's index keys: fixed, since it is on disk
    /// (pinned by `store::format_tests`).
    pub(crate) fn code(self) -> u8 {
        self as u8
    }

    fn queued() -> Status {
        Status::Queued
    }

    /// Waiting in the queue (has a due-index entry).
    pub fn is_waiting(self) -> bool {
        matches!(self, Status::Queued | Status::Scheduled)
    }
}

/// Send order among due messages.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// First.
    High,
    /// Default.
    #[default]
    Normal,
    /// Last.
    Low,
}

impl Priority {
    pub(crate) fn code(self) -> u8 {
        match self {
            Priority::High => 0,
            Priority::Normal => 1,
            Priority::Low => 2,
        }
    }
}

/// One try at sending.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Attempt {
    /// When it started.
    pub at: DateTime<Utc>,
    /// Through which modem.
    pub modem: String,
    /// How it ended.
    pub result: AttemptResult,
    /// The modem's error, when it failed.
    pub error: Option<String>,
    /// TP-MR of each part that was accepted.
    pub message_references: Vec<u8>,
}

/// One part as sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Part {
    /// Part number from 1.
    pub part: u8,
    /// The TP-MR the modem gave it.
    pub message_reference: Option<u8>,
    /// What is known of it.
    pub status: PartStatus,
}

/// How one try at sending ended. The names are what the store and the API keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AttemptResult {
    /// The network accepted every part.
    Sent,
    /// The modem refused it: nothing went out.
    Failed,
    /// The modem gave no answer after the text was handed over: the network may have it.
    MaybeSent,
}

impl AttemptResult {
    /// The name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptResult::Sent => "sent",
            AttemptResult::Failed => "failed",
            AttemptResult::MaybeSent => "maybe_sent",
        }
    }
}

/// What is known of one part of a message. The names are what the store and the API keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PartStatus {
    /// Not known yet.
    Pending,
    /// Accepted by the network (it has a TP-MR); no final report yet.
    Sent,
    /// Its status report says delivered.
    Delivered,
    /// The modem refused it, or its status report says it cannot be delivered.
    Failed,
    /// The modem gave no answer after it was handed over: the network may have it.
    Unknown,
    /// Not tried: an earlier part of the same try failed.
    NotSent,
}

impl PartStatus {
    /// The name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            PartStatus::Pending => "pending",
            PartStatus::Sent => "sent",
            PartStatus::Delivered => "delivered",
            PartStatus::Failed => "failed",
            PartStatus::Unknown => "unknown",
            PartStatus::NotSent => "not_sent",
        }
    }

    /// Delivered or failed: a later report does not change it.
    pub fn is_final(self) -> bool {
        matches!(self, PartStatus::Delivered | PartStatus::Failed)
    }
}

/// The `created_by` of texts the gateway sends on its own (opt-out confirmations, help texts,
/// replies a TwiML answer asks for). No API key may have this name (`config check` refuses it).
pub const GATEWAY: &str = "smsgate";

/// Where a message came from, read from what it keeps (`created_by`, `reminder`, `twilio`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin<'a> {
    /// `POST /v1/messages` (or a batch), by the API key of this name.
    Api(&'a str),
    /// The gateway itself: it goes to opted-out numbers too (the confirmation of a STOP must)
    /// and is never held by a send window.
    Gateway,
    /// A step of a reminder plan the API key of this name made.
    Plan(&'a str),
    /// The Twilio-compatible door: its `created_by` (the API key the account belongs to, or
    /// `twilio:<account>` for a reply a TwiML answer asked for).
    Twilio(&'a str),
}

impl Message {
    /// Where it came from.
    pub fn origin(&self) -> Origin<'_> {
        if self.created_by == GATEWAY {
            Origin::Gateway
        } else if self.reminder.is_some() {
            Origin::Plan(&self.created_by)
        } else if self.twilio.is_some() {
            Origin::Twilio(&self.created_by)
        } else {
            Origin::Api(&self.created_by)
        }
    }

    /// The API key whose call made it: the actor of its first history entry. `None` for a
    /// text the gateway sends on its own.
    pub fn creator(&self) -> Option<&str> {
        match self.origin() {
            Origin::Gateway => None,
            Origin::Api(k) | Origin::Plan(k) | Origin::Twilio(k) => Some(k),
        }
    }

    /// A text the gateway sends on its own.
    pub fn is_from_gateway(&self) -> bool {
        self.origin() == Origin::Gateway
    }
}

/// A message and everything known about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// ULID: sorts by creation time. Not stored in the record: it is the record's key.
    #[serde(default, skip_serializing)]
    pub id: String,
    /// The recipient: E.164 ([`crate::numbers::PhoneNumber`]) for every message made through
    /// the API, a plan or the Twilio-compatible door; a text the gateway sends on its own goes
    /// to a sender as the network gave it when that reads as no number (a short code).
    pub to: String,
    /// The text.
    pub text: String,
    /// `gsm7` or `ucs2`.
    pub encoding: String,
    /// Number of SMS parts.
    pub parts: u8,
    /// Where it is.
    pub status: Status,
    /// Why it is there (`opted_out`, `too_late`, the modem's error…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    /// Send order among due messages.
    pub priority: Priority,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Not before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_at: Option<DateTime<Utc>>,
    /// Not after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    /// Longest acceptable delay past the due time, in seconds.
    pub max_lateness_secs: u64,
    /// When the dispatcher may take it next (send_at, or after a retry backoff).
    pub due_at: DateTime<Utc>,
    /// Reply options offered ("1" → "call_me").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_options: Option<BTreeMap<String, String>>,
    /// Where its events are posted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
    /// Caller's data, returned as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Value>,
    /// Ask for delivery reports.
    pub status_report: bool,
    /// Every try.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attempts: Vec<Attempt>,
    /// The parts as last sent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub part_status: Vec<Part>,
    /// The modem that sent it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modem: Option<String>,
    /// When the network accepted it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<DateTime<Utc>>,
    /// When the report of the last part to be delivered arrived (the network's own time is in
    /// the `delivery_report` history entry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<DateTime<Utc>>,
    /// The API key that created it, or [`GATEWAY`] for a text the gateway sends on its own
    /// (read it as an [`Origin`] with [`Message::origin`]).
    pub created_by: String,
    /// Sequence number of the latest history event.
    #[serde(default)]
    pub history_len: u32,
    /// When an admin last requeued it: lateness counts from here then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requeued_at: Option<DateTime<Utc>>,
    /// The status it was accepted in (`queued` or `scheduled`): the first history event, which
    /// is not stored separately.
    #[serde(default = "Status::queued")]
    pub accepted_as: Status,
    /// The recipient's answers, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replies: Vec<Reply>,
    /// SHA-256 (hex) of the latest stored history entry: the head of the hash chain. `None`
    /// while the history holds only the implied first entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history_hash: Option<String>,
    /// The hours it may go out in, in the recipient's time zone (outside them it waits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_window: Option<crate::domain::WindowSpec>,
    /// The reminder plan step it belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reminder: Option<ReminderLink>,
    /// What the Twilio-compatible door kept of the request that created it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub twilio: Option<crate::domain::TwilioLink>,
}

/// Which reminder plan and step a message is the text of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReminderLink {
    /// The plan's id.
    pub plan_id: String,
    /// The invoice reference.
    pub invoice: String,
    /// The step's index in the plan's `steps`.
    pub step: u32,
    /// `reminder` (a scheduled step: counted by the per-recipient cap and prechecked),
    /// `payment_received` or `payment_failed`.
    pub kind: StepKind,
    /// The template it was rendered from.
    pub template: String,
}

/// What a plan step is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// A scheduled reminder (invoice issued, upcoming, past due…).
    Reminder,
    /// The confirmation sent when the invoice is paid.
    PaymentReceived,
    /// The text sent when a payment failed.
    PaymentFailed,
}

/// A recipient's answer to a message with `reply_options`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Reply {
    /// The option the text named (a key of `reply_options`), or `null` when it named none.
    pub choice: Option<String>,
    /// The option's action, or `unrecognised`.
    pub action: String,
    /// The text as received.
    pub text: String,
    /// When it was received.
    pub at: DateTime<Utc>,
    /// The inbound message (`GET /v1/inbound/{id}`).
    pub inbound_id: String,
    /// Why the reply was linked to this message.
    pub matched_by: String,
}

/// One entry of a message's history. Entries form a hash chain: each stored entry carries
/// the SHA-256 of the one before it (`prev`), so an entry changed, removed or inserted after
/// the fact shows (`smsgate history verify` checks every chain).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Event {
    /// Order within the message, from 0.
    pub seq: u32,
    /// When.
    pub at: DateTime<Utc>,
    /// The status after the event.
    pub status: Status,
    /// Why, in words.
    pub reason: Option<String>,
    /// What happened: `accepted`, `status` (a status change), `sent` (parts, TP-MRs, modem),
    /// `delivery_report`, `reply`, `opt_out`, `requeued`, `cancelled`.
    #[serde(default = "Event::status_kind")]
    pub kind: String,
    /// The facts of the event (the text and encoding on `accepted`, TP-MRs on `sent`, the
    /// report's TP-ST on `delivery_report`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub data: Option<serde_json::Value>,
    /// SHA-256 (hex) of the previous entry as stored; `None` on the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev: Option<String>,
    /// The name of the API key whose call made the change (never its token); `None` when the
    /// gateway itself did (a send, a delivery report, a rule). Absent from entries written
    /// before it was kept, so they hash as they always did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

impl Event {
    fn status_kind() -> String {
        "status".into()
    }
}

/// What a change to a message records in its history: see [`crate::store::Store::update`].
#[derive(Debug, Clone, PartialEq)]
pub struct Note {
    /// The event's kind (see [`Event::kind`]).
    pub kind: &'static str,
    /// Why, in words.
    pub reason: String,
    /// The facts.
    pub data: Option<serde_json::Value>,
    /// The API key whose call made the change (see [`Event::actor`]).
    pub actor: Option<String>,
}

impl Note {
    /// A note of a kind with facts.
    pub fn new(kind: &'static str, reason: impl Into<String>, data: serde_json::Value) -> Note {
        Note {
            kind,
            reason: reason.into(),
            data: Some(data),
            actor: None,
        }
    }

    /// The same note, made by the API key named `actor` (`None`: by the gateway itself).
    pub fn by(mut self, actor: Option<&str>) -> Note {
        self.actor = actor.map(str::to_string);
        self
    }
}

impl From<String> for Note {
    fn from(reason: String) -> Note {
        Note {
            kind: "status",
            reason,
            data: None,
            actor: None,
        }
    }
}

impl From<&str> for Note {
    fn from(reason: &str) -> Note {
        Note::from(reason.to_string())
    }
}
