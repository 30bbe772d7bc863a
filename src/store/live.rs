//! Live events: every history entry and every stored inbound message, published after its
//! transaction commits, for `GET /v1/events` (and `smsgate tail`). Best effort by design: a
//! subscriber that falls behind skips events (the history in the store is the record); with no
//! subscriber nothing is done.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use super::inbound::InboundMessage;
use super::{Message, SledStore, decode, event_key, first_event_shown, id_key};

/// Events a slow subscriber may fall behind by before it skips some.
pub const CAPACITY: usize = 1024;

/// One live event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LiveEvent {
    /// A message's new history entry.
    Message {
        /// The message.
        message_id: String,
        /// The entry's sequence number in the message's history.
        seq: u32,
        /// When.
        at: DateTime<Utc>,
        /// The message's status after it.
        status: super::Status,
        /// What happened (`accepted`, `sent`, `delivery_report`, `reply`, `held`, …).
        kind: String,
        /// In words.
        reason: Option<String>,
        /// The recipient.
        to: String,
    },
    /// An inbound message was stored.
    Inbound {
        /// The inbound message.
        inbound_id: String,
        /// The sender.
        from: String,
        /// Its text.
        text: String,
        /// When it was received.
        at: DateTime<Utc>,
    },
}

/// The publisher, one per store.
pub(crate) fn channel() -> broadcast::Sender<LiveEvent> {
    broadcast::channel(CAPACITY).0
}

impl SledStore {
    /// Live events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<LiveEvent> {
        self.inner.live.subscribe()
    }

    /// Publishes a message's latest history entry (after its transaction committed).
    pub(crate) fn publish(&self, m: &Message) {
        if self.inner.live.receiver_count() == 0 {
            return;
        }
        let event = if m.history_len == 0 {
            Some(first_event_shown(m))
        } else {
            id_key(&m.id).and_then(|key| {
                let k = event_key(&key, m.history_len);
                let v = self.inner.events.get(&k).ok().flatten()?;
                decode::<super::Event>(&k, &v).ok()
            })
        };
        if let Some(e) = event {
            let _ = self.inner.live.send(LiveEvent::Message {
                message_id: m.id.clone(),
                seq: e.seq,
                at: e.at,
                status: e.status,
                kind: e.kind,
                reason: e.reason,
                to: m.to.clone(),
            });
        }
    }

    /// Publishes a stored inbound message.
    pub fn publish_inbound(&self, m: &InboundMessage) {
        if self.inner.live.receiver_count() == 0 {
            return;
        }
        let _ = self.inner.live.send(inbound_event(m));
    }
}

/// The live event of a stored inbound message.
pub(super) fn inbound_event(m: &InboundMessage) -> LiveEvent {
    LiveEvent::Inbound {
        inbound_id: m.id.clone(),
        from: m.from.clone(),
        text: m.text.clone(),
        at: m.received_at,
    }
}
