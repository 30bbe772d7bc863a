//! Signed webhook delivery: events about messages are kept in the store's outbox and POSTed
//! to callback URLs until they are acknowledged or too old.
//!
//! Each delivery is a POST of `{"id", "type", "created_at", "data"}` with the Standard Webhooks
//! headers `webhook-id` (the same on every attempt: the receiver's dedupe key),
//! `webhook-timestamp` (unix seconds of the attempt) and `webhook-signature` (see [`Signer`]).
//! A 2xx answer acknowledges it; anything else, a redirect, a timeout or a connection error is
//! retried with exponential backoff and jitter until the event is [`WebhookConfig::max_age`]
//! old, then the delivery is dead: listed by [`Webhooks::dead`], retried by [`Webhooks::retry`].
//!
//! Deliveries to one URL about one message (one ordering key) go one at a time, in the order
//! of the events; the others go concurrently, up to [`WebhookConfig::max_in_flight`].
//!
//! Delivery is at least once: an event is stored durably before [`Webhooks::enqueue`] returns,
//! and a crash right after an acknowledged attempt may send it again, with the same
//! `webhook-id`, for the receiver to recognise.
//!
//! `events` says what an event is and where it goes, `listener` is the store's side (the
//! deliveries each change of a message makes), `worker` attempts them, `urls` checks callback
//! URLs; this module builds the sender and holds its public surface.

mod config;
mod events;
mod listener;
mod sign;
#[cfg(test)]
mod tests;
mod urls;
mod worker;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use tokio::sync::Notify;

use crate::outbound::OutboundPolicy;
use crate::store::outbox::NewWebhook;
pub use crate::store::outbox::{OutboxEntry, OutboxState};
use crate::store::{Store, StoreError};
pub use config::{WebhookConfig, WebhookConfigError};
pub use events::{EventType, Router, event_for, message_data, without_hardware_ids};
pub use listener::{ModemNumbers, TwilioHooks, TwimlHandler, WebhookListener, is_twilio};
pub use sign::{SecretError, Signer};
pub use urls::{
    CallbackUrlError, MAX_URL_LEN, UrlError, log_url, points_at, validate_callback, validate_url,
};
pub use worker::{Backoff, error_chain};

/// The `user-agent` of every delivery.
pub const USER_AGENT: &str = concat!("smsgate/", env!("CARGO_PKG_VERSION"));

/// A webhook failure that reaches the caller (failed deliveries are retried, not returned).
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// A callback URL that cannot be used.
    #[error("invalid callback URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL.
        url: String,
        /// What is wrong with it.
        #[source]
        reason: UrlError,
    },
    /// The configuration is unusable.
    #[error("webhooks: {0}")]
    Config(#[from] WebhookConfigError),
    /// The HTTP client could not be built.
    #[error("webhooks: cannot build the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    /// The event's body could not be built.
    #[error("cannot encode the webhook event: {0}")]
    Encode(#[from] serde_json::Error),
    /// The outbox could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The webhook sender: enqueues events and runs the delivery worker. Cheap to clone.
#[derive(Clone)]
pub struct Webhooks {
    inner: Arc<Shared>,
    /// What acts on TwiML answers: given to the worker's copy only ([`Webhooks::answering`]),
    /// so the handler (which holds a sender itself) and the sender never hold each other.
    answers: Option<Arc<dyn TwimlHandler>>,
}

struct Shared {
    store: Store,
    /// Built by the outbound policy: its resolver connects only where the policy allows.
    client: reqwest::Client,
    /// Checked again before each attempt: IP literals never reach the resolver, and a URL
    /// stored before the policy changed must obey the policy of now.
    outbound: OutboundPolicy,
    signer: Option<Signer>,
    router: Router,
    timeout: Duration,
    max_age: TimeDelta,
    max_in_flight: usize,
    backoff: Backoff,
    notify: Arc<Notify>,
    /// Sequence numbers being attempted, by the worker or by [`Webhooks::deliver_due`].
    busy: Mutex<HashSet<u64>>,
    warned_unsigned: AtomicBool,
    twilio: Option<Arc<TwilioHooks>>,
}

impl std::fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhooks")
            .field("url", &self.inner.router.url)
            .field("all_events", &self.inner.router.all_events)
            .field("signed", &self.inner.signer.is_some())
            .field("max_in_flight", &self.inner.max_in_flight)
            .finish_non_exhaustive()
    }
}

impl Webhooks {
    /// A sender for this configuration, with its retry backoff, sending only where
    /// `outbound` allows.
    pub fn new(
        store: Store,
        config: &WebhookConfig,
        outbound: OutboundPolicy,
    ) -> Result<Webhooks, WebhookError> {
        Webhooks::with_listener(store, config, outbound, &WebhookListener::new(config))
    }

    /// [`Webhooks::new`] for a store opened with `listener`'s notifier
    /// ([`Store::open_with`]): the deliveries it writes wake this sender's worker.
    pub fn with_listener(
        store: Store,
        config: &WebhookConfig,
        outbound: OutboundPolicy,
        listener: &WebhookListener,
    ) -> Result<Webhooks, WebhookError> {
        let backoff = Backoff {
            base: config.retry_backoff,
            cap: config.retry_backoff_max,
        };
        Webhooks::build(store, config, backoff, outbound, listener)
    }

    /// A sender for this configuration with another retry backoff.
    pub fn with_backoff(
        store: Store,
        config: &WebhookConfig,
        backoff: Backoff,
        outbound: OutboundPolicy,
    ) -> Result<Webhooks, WebhookError> {
        Webhooks::build(
            store,
            config,
            backoff,
            outbound,
            &WebhookListener::new(config),
        )
    }

    fn build(
        store: Store,
        config: &WebhookConfig,
        backoff: Backoff,
        outbound: OutboundPolicy,
        listener: &WebhookListener,
    ) -> Result<Webhooks, WebhookError> {
        config.validate()?;
        let signer = match &config.secret {
            Some(s) => Some(Signer::from_secret(s).map_err(WebhookConfigError::Secret)?),
            None => None,
        };
        let client = outbound
            .client_builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .user_agent(USER_AGENT)
            .build()
            .map_err(WebhookError::Client)?;
        Ok(Webhooks {
            inner: Arc::new(Shared {
                store,
                client,
                outbound,
                signer,
                router: Router {
                    url: config.url.clone(),
                    all_events: config.all_events,
                },
                timeout: config.timeout,
                max_age: TimeDelta::from_std(config.max_age).unwrap_or(TimeDelta::MAX),
                max_in_flight: config.max_in_flight.max(1),
                backoff,
                notify: listener.notify.clone(),
                busy: Mutex::new(HashSet::new()),
                warned_unsigned: AtomicBool::new(false),
                twilio: listener.twilio.clone(),
            }),
            answers: None,
        })
    }

    /// The signer of deliveries (and of reminder prechecks), when a secret is configured.
    pub fn signer(&self) -> Option<Signer> {
        self.inner.signer.clone()
    }

    /// The Twilio door's account and modem numbers, when it is on.
    pub fn twilio(&self) -> Option<&TwilioHooks> {
        self.inner.twilio.as_deref()
    }

    /// This sender with `handler` acting on the TwiML answers to incoming-message webhooks:
    /// for the copy that runs the worker.
    pub fn answering(mut self, handler: Arc<dyn TwimlHandler>) -> Webhooks {
        self.answers = Some(handler);
        self
    }

    /// Stores a delivery made elsewhere (an incoming-message webhook), durably, and wakes
    /// the worker.
    pub async fn enqueue_raw(&self, new: NewWebhook) -> Result<Vec<OutboxEntry>, WebhookError> {
        let entries = self
            .inner
            .store
            .enqueue_webhooks(std::slice::from_ref(&new))?;
        self.inner.store.durable().await?;
        self.inner.notify.notify_one();
        Ok(entries)
    }

    /// Stores an event for delivery to its URLs (see [`WebhookConfig::all_events`]), durably,
    /// and wakes the worker; returns one entry per URL, none when no URL applies. Events with
    /// the same `ordering_key` (a message id; empty for none) reach each URL in call order.
    /// Events about a message are written by the store with the change itself (see
    /// [`WebhookListener::notifier`]); this is for the others.
    pub async fn enqueue(
        &self,
        event_type: EventType,
        data: serde_json::Value,
        message_callback_url: Option<&str>,
        ordering_key: &str,
    ) -> Result<Vec<OutboxEntry>, WebhookError> {
        let new = self.inner.router.build(
            event_type,
            &data,
            message_callback_url,
            ordering_key,
            Utc::now(),
        )?;
        if new.is_empty() {
            return Ok(Vec::new());
        }
        self.warn_unsigned();
        let entries = self.inner.store.enqueue_webhooks(&new)?;
        self.inner.store.durable().await?;
        self.inner.notify.notify_one();
        Ok(entries)
    }

    fn warn_unsigned(&self) {
        if self.inner.signer.is_none() && !self.inner.warned_unsigned.swap(true, Ordering::Relaxed)
        {
            tracing::warn!("webhooks.secret is not set: webhook deliveries are not signed");
        }
    }

    /// Dead deliveries in sequence order after sequence `after`, at most `limit`.
    pub fn dead(&self, limit: usize, after: Option<u64>) -> Result<Vec<OutboxEntry>, WebhookError> {
        Ok(self.inner.store.dead_webhooks(limit, after)?)
    }

    /// Pending deliveries that failed at least once and wait for their next attempt, in
    /// sequence order after sequence `after`, at most `limit`.
    pub fn retrying(
        &self,
        limit: usize,
        after: Option<u64>,
    ) -> Result<Vec<OutboxEntry>, WebhookError> {
        Ok(self.inner.store.retrying_webhooks(limit, after)?)
    }

    /// Makes a delivery (by `webhook-id`) pending and due now, attempts kept, and wakes the
    /// worker; `None` when there is no such delivery.
    pub async fn retry(&self, id: &str) -> Result<Option<OutboxEntry>, WebhookError> {
        let entry = self.inner.store.retry_webhook(id, Utc::now())?;
        if entry.is_some() {
            self.inner.store.durable().await?;
            self.inner.notify.notify_one();
        }
        Ok(entry)
    }
}
