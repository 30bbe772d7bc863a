//! What a message made through the Twilio-compatible door keeps of its request.

use serde::{Deserialize, Serialize};

/// What a message created through the Twilio door keeps of its request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TwilioLink {
    /// The account it was created under.
    pub account_sid: String,
    /// The `From` asked for, as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The `MessagingServiceSid` given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messaging_service_sid: Option<String>,
    /// Where status callbacks go.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_callback: Option<String>,
    /// `outbound-api`, or `outbound-reply` for a TwiML answer to an incoming message.
    #[serde(default = "TwilioLink::api")]
    pub direction: String,
    /// The modem it must go through: the one `From` named (by its number or name), or the
    /// one the message it answers came in on. Absent: any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modem: Option<String>,
}

impl TwilioLink {
    fn api() -> String {
        "outbound-api".into()
    }
}
