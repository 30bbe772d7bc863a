//! What an event is and where it goes: the event types, the deliveries an event makes (one per
//! URL, each with its own `webhook-id`), and the event a change of a message makes.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{WebhookError, validate_url};
use crate::store::outbox::NewWebhook;
use crate::store::{Event, Message, Status};

/// What happened: the `type` of a webhook event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub enum EventType {
    /// The network accepted a message.
    #[serde(rename = "message.sent")]
    MessageSent,
    /// The recipient's phone received a message (status report).
    #[serde(rename = "message.delivered")]
    MessageDelivered,
    /// A message will not be sent or was not delivered.
    #[serde(rename = "message.failed")]
    MessageFailed,
    /// A message was not sent: past its `expires_at`, or it could only have gone out too late.
    #[serde(rename = "message.expired")]
    MessageExpired,
    /// A message may or may not have gone out (the modem stopped answering mid-send, or the
    /// daemon stopped while sending): it is not re-sent automatically.
    #[serde(rename = "message.unknown")]
    MessageUnknown,
    /// A message was cancelled before it was sent (through the API, or because the number
    /// opted out).
    #[serde(rename = "message.cancelled")]
    MessageCancelled,
    /// The recipient answered a message.
    #[serde(rename = "message.reply")]
    MessageReply,
    /// A message was received that answers no message sent.
    #[serde(rename = "inbound.unmatched")]
    InboundUnmatched,
    /// A number opted out or back in.
    #[serde(rename = "optout.changed")]
    OptoutChanged,
    /// A modem's prepaid balance fell below `balance_low`.
    #[serde(rename = "modem.balance_low")]
    ModemBalanceLow,
}

impl EventType {
    /// Every event type.
    pub const ALL: [EventType; 10] = [
        EventType::MessageSent,
        EventType::MessageDelivered,
        EventType::MessageFailed,
        EventType::MessageExpired,
        EventType::MessageUnknown,
        EventType::MessageCancelled,
        EventType::MessageReply,
        EventType::InboundUnmatched,
        EventType::OptoutChanged,
        EventType::ModemBalanceLow,
    ];

    /// The name sent as the event's `type`, e.g. `message.sent`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::MessageSent => "message.sent",
            EventType::MessageDelivered => "message.delivered",
            EventType::MessageFailed => "message.failed",
            EventType::MessageExpired => "message.expired",
            EventType::MessageUnknown => "message.unknown",
            EventType::MessageCancelled => "message.cancelled",
            EventType::MessageReply => "message.reply",
            EventType::InboundUnmatched => "inbound.unmatched",
            EventType::OptoutChanged => "optout.changed",
            EventType::ModemBalanceLow => "modem.balance_low",
        }
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The keys of facts about the hardware (the SIM's IMSI and ICCID, the modem's IMEI): they
/// identify a device and a subscriber, so they stay in the history and out of events sent to
/// URLs a caller chose.
const HARDWARE_KEYS: [&str; 3] = ["imsi", "imei", "iccid"];

/// `data` without hardware identifiers, at any depth.
pub fn without_hardware_ids(data: &serde_json::Value) -> serde_json::Value {
    match data {
        serde_json::Value::Object(map) => map
            .iter()
            .filter(|(k, _)| {
                let k = k.to_ascii_lowercase();
                !HARDWARE_KEYS.iter().any(|h| k.contains(h))
            })
            .map(|(k, v)| (k.clone(), without_hardware_ids(v)))
            .collect(),
        serde_json::Value::Array(items) => items.iter().map(without_hardware_ids).collect(),
        other => other.clone(),
    }
}

/// The JSON body of a delivery.
#[derive(Serialize)]
struct Body<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    event_type: EventType,
    created_at: String,
    data: &'a serde_json::Value,
}

/// Where events go and what is sent: the message's own callback URL, and the global URL when
/// the message has none, or for every event with `all_events`.
#[derive(Debug, Clone, PartialEq)]
pub struct Router {
    /// The global URL.
    pub url: Option<String>,
    /// Whether the global URL gets every event.
    pub all_events: bool,
}

impl Router {
    /// The URLs an event goes to.
    fn targets<'a>(&'a self, message_callback_url: Option<&'a str>) -> Vec<&'a str> {
        let mut out = Vec::with_capacity(2);
        if let Some(own) = message_callback_url {
            out.push(own);
        }
        if let Some(global) = self.url.as_deref() {
            let wanted = match message_callback_url {
                None => true,
                Some(own) => self.all_events && own != global,
            };
            if wanted {
                out.push(global);
            }
        }
        out
    }

    /// One delivery per URL the event goes to, each with its own `webhook-id`.
    pub fn build(
        &self,
        event_type: EventType,
        data: &serde_json::Value,
        message_callback_url: Option<&str>,
        ordering_key: &str,
        at: DateTime<Utc>,
    ) -> Result<Vec<NewWebhook>, WebhookError> {
        let targets = self.targets(message_callback_url);
        for url in &targets {
            validate_url(url).map_err(|reason| WebhookError::InvalidUrl {
                url: (*url).to_string(),
                reason,
            })?;
        }
        let data = &without_hardware_ids(data);
        // Millisecond precision, as in the body.
        let created_at = DateTime::from_timestamp_millis(at.timestamp_millis()).unwrap_or(at);
        let mut new = Vec::with_capacity(targets.len());
        for url in targets {
            let id = format!("evt_{}", ulid::Ulid::generate());
            let body = serde_json::to_string(&Body {
                id: &id,
                event_type,
                created_at: created_at.to_rfc3339_opts(SecondsFormat::Millis, true),
                data,
            })?;
            new.push(NewWebhook {
                id,
                url: url.to_string(),
                event_type: event_type.as_str().to_string(),
                body,
                ordering_key: ordering_key.to_string(),
                created_at,
            });
        }
        Ok(new)
    }
}

/// The event a message's history entry makes, if any: a change of status to one the caller
/// wants to hear about, or a reply.
pub fn event_for(message: &Message, event: &Event, old_status: Status) -> Option<EventType> {
    if event.kind == "reply" {
        return Some(EventType::MessageReply);
    }
    if old_status == message.status {
        return None;
    }
    Some(match message.status {
        Status::Sent => EventType::MessageSent,
        Status::Delivered => EventType::MessageDelivered,
        Status::Failed => EventType::MessageFailed,
        Status::Expired => EventType::MessageExpired,
        Status::Unknown => EventType::MessageUnknown,
        Status::Cancelled => EventType::MessageCancelled,
        Status::Queued | Status::Scheduled | Status::Sending => return None,
    })
}

/// The `data` of an event about a message: the message as it is after the event, the event's
/// reason, the API key that made the change (`actor`, when one did), and the event's facts
/// (the reply, the delivery report).
pub fn message_data(message: &Message, event: &Event) -> serde_json::Value {
    let mut data = serde_json::json!({
        "message_id": message.id,
        "to": message.to,
        "status": message.status,
        "status_reason": message.status_reason,
        "parts": message.parts,
        "modem": message.modem,
        "sent_at": message.sent_at,
        "delivered_at": message.delivered_at,
        "metadata": message.metadata,
        "reason": event.reason,
        "history_seq": event.seq,
    });
    if let (Some(obj), Some(actor)) = (data.as_object_mut(), &event.actor) {
        // The API key whose call made the change; absent when the gateway did.
        obj.insert("actor".into(), actor.clone().into());
    }
    if let (Some(obj), Some(facts)) = (data.as_object_mut(), &event.data) {
        let key = if event.kind == "reply" {
            "reply"
        } else {
            "details"
        };
        obj.insert(key.into(), facts.clone());
    }
    data
}
