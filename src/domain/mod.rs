//! The gateway's own vocabulary, free of I/O: what every layer above may speak.
//!
//! The message with its status, attempts, parts and history entries ([`Message`], [`Status`],
//! [`Event`]), the moves of its life, each checked against the status it starts from
//! ([`Message::cancel`], [`Message::claim`], [`Message::apply_send_outcome`],
//! [`Message::apply_report`]…, in `transition.rs`), the rules a new message is made by
//! ([`MessageRules`]), the send window a message keeps ([`WindowSpec`]), what a message made
//! through the Twilio-compatible door keeps ([`TwilioLink`]), a received text
//! ([`InboundMessage`]) and an invoice's reminder plan ([`Plan`]). Phone numbers
//! ([`crate::numbers`]) and the reading of replies
//! ([`crate::replies`]) are in this layer too, and so are the OpenAPI schemas of the values the
//! API checks alike wherever they appear ([`schema`]).

mod inbound;
mod message;
mod plan;
pub mod schema;
mod transition;
#[cfg(test)]
mod transition_tests;
mod twilio;
mod window;

pub use inbound::InboundMessage;
pub use message::{
    Attempt, AttemptResult, Event, GATEWAY, Message, Note, Origin, Part, PartStatus, Priority,
    ReminderLink, Reply, Status, StepKind,
};
pub use plan::{Plan, PlanStatus, PlanStep};
pub use transition::{
    Canceller, HoldReason, NotAllowed, RetryPolicy, SendFailure, SendOutcome, Unsent,
};
pub use twilio::TwilioLink;
pub use window::WindowSpec;

use std::time::Duration;

use crate::sms::NationalLanguage;

/// The rules a new message is made by, wherever it comes from (the API, a reminder plan, an
/// automatic reply, the Twilio-compatible door): `[sms]` and `[queue]` of the configuration.
#[derive(Debug, Clone)]
pub struct MessageRules {
    /// Region for numbers without `+` (`[sms] default_region`).
    pub default_region: Option<String>,
    /// Most parts per message.
    pub max_parts: usize,
    /// Ask for delivery reports unless a message says otherwise.
    pub status_report: bool,
    /// Default `max_lateness`.
    pub max_lateness: Duration,
    /// National language tables the encoder may use.
    pub national_languages: Vec<NationalLanguage>,
}

impl Default for MessageRules {
    fn default() -> Self {
        MessageRules {
            default_region: None,
            max_parts: crate::sms::DEFAULT_MAX_PARTS,
            status_report: true,
            max_lateness: Duration::from_secs(12 * 3600),
            national_languages: Vec::new(),
        }
    }
}
