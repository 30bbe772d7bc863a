//! The store's side of webhooks: the deliveries each change of a message makes (its event, and
//! a Twilio-door message's status callback), written in the change's transaction.

use std::sync::Arc;

use chrono::Utc;
use tokio::sync::Notify;

use super::{OutboxEntry, Router, WebhookConfig, event_for, message_data};
use crate::store::outbox::NewWebhook;
use crate::store::{Event, Message, Notifier, Status};

/// A modem's own number by its name, when its SIM knows it.
pub type ModemNumbers = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// The Twilio door's part in deliveries: its account (whose token signs status callbacks and
/// incoming-message webhooks) and the numbers of the modems (the `From` of a callback).
#[derive(Clone)]
pub struct TwilioHooks {
    /// The account.
    pub account: crate::twilio::Account,
    /// A modem's own number by its name, when the SIM knows it.
    pub numbers: ModemNumbers,
}

/// What is done with the answer to an incoming-message webhook (a TwiML document): the
/// replies it holds are queued. An error makes the delivery count as failed, so it is tried
/// again (queuing must be safe to repeat).
pub trait TwimlHandler: Send + Sync {
    /// Acts on `answer`, the body of a 2xx answer to `entry`.
    fn answer<'a>(
        &'a self,
        entry: &'a OutboxEntry,
        answer: &'a str,
    ) -> futures_util::future::BoxFuture<'a, Result<(), crate::store::StoreError>>;
}

/// Whether an outbox entry is one of the Twilio door's form posts.
pub fn is_twilio(event_type: &str) -> bool {
    event_type.starts_with("twilio.")
}

/// The store's [`Notifier`]: deliveries for message events, written in the change's
/// transaction; the worker is woken once they are on disk.
struct Hook {
    router: Router,
    notify: Arc<Notify>,
    twilio: Option<Arc<TwilioHooks>>,
}

impl Hook {
    /// The status callback a Twilio-door message gets for this change, if any.
    fn twilio_callback(&self, message: &Message, old_status: Status) -> Option<NewWebhook> {
        let link = message.twilio.as_ref()?;
        let url = link.status_callback.as_deref()?;
        if old_status == message.status
            || !matches!(
                message.status,
                Status::Sent
                    | Status::Unknown
                    | Status::Delivered
                    | Status::Failed
                    | Status::Expired
                    | Status::Cancelled
            )
        {
            return None;
        }
        let hooks = self.twilio.as_deref()?;
        // The number it went out from; the `From` asked for until a modem took it.
        let from = message
            .modem
            .as_deref()
            .and_then(|m| (hooks.numbers)(m))
            .or_else(|| link.from.clone())
            .or_else(|| message.modem.clone())
            .unwrap_or_default();
        let form = crate::twilio::status_form(message, link, &from);
        Some(NewWebhook {
            id: format!("evt_{}", ulid::Ulid::generate()),
            url: url.to_string(),
            event_type: crate::twilio::STATUS_CALLBACK.to_string(),
            body: crate::twilio::form_body(&form),
            ordering_key: message.id.clone(),
            created_at: Utc::now(),
        })
    }
}

impl Notifier for Hook {
    fn deliveries(&self, message: &Message, event: &Event, old_status: Status) -> Vec<NewWebhook> {
        let twilio = self.twilio_callback(message, old_status);
        let Some(t) = event_for(message, event, old_status) else {
            return twilio.into_iter().collect();
        };
        let mut out = match self.router.build(
            t,
            &message_data(message, event),
            message.callback_url.as_deref(),
            &message.id,
            event.at,
        ) {
            Ok(v) => v,
            Err(e) => {
                // The URL was checked when the message was accepted; nothing to deliver to.
                tracing::warn!(message_id = %message.id, event = %t, error = %e, "no webhook for this event");
                Vec::new()
            }
        };
        out.extend(twilio);
        out
    }

    fn wake(&self) {
        self.notify.notify_one();
    }
}

/// What the store hears every change through (see [`Store::open_with`](crate::store::Store::open_with)), made before the
/// store and shared with the [`Webhooks`](super::Webhooks) made after it: the deliveries a change makes are
/// written in its transaction, and wake the sender's worker once they are on disk.
#[derive(Clone)]
pub struct WebhookListener {
    router: Router,
    /// Woken once a change's deliveries are on disk; shared with the sender's worker.
    pub(super) notify: Arc<Notify>,
    /// The Twilio door's part, when the door is on.
    pub(super) twilio: Option<Arc<TwilioHooks>>,
}

impl WebhookListener {
    /// A listener for this configuration's events.
    pub fn new(config: &WebhookConfig) -> WebhookListener {
        WebhookListener {
            router: Router {
                url: config.url.clone(),
                all_events: config.all_events,
            },
            notify: Arc::new(Notify::new()),
            twilio: None,
        }
    }

    /// With the Twilio-compatible door on: its messages' status callbacks and incoming-message
    /// webhooks are delivered too, signed with the account's token.
    pub fn with_twilio(mut self, hooks: TwilioHooks) -> WebhookListener {
        self.twilio = Some(Arc::new(hooks));
        self
    }

    /// The store's side of it.
    pub fn notifier(&self) -> Arc<dyn Notifier> {
        Arc::new(Hook {
            router: self.router.clone(),
            notify: self.notify.clone(),
            twilio: self.twilio.clone(),
        })
    }
}
