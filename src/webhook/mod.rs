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

mod config;
mod sign;
#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

use crate::outbound::OutboundPolicy;
use crate::store::outbox::{DueWebhooks, NewWebhook};
pub use crate::store::outbox::{OutboxEntry, OutboxState};
use crate::store::{Event, Message, Notifier, Status, Store, StoreError};
pub use config::WebhookConfig;
pub use sign::Signer;

/// The `user-agent` of every delivery.
pub const USER_AGENT: &str = concat!("smsgate/", env!("CARGO_PKG_VERSION"));

/// The largest TwiML answer read, in bytes.
const MAX_TWIML: usize = 64 * 1024;

/// The longest callback URL accepted, in bytes.
pub const MAX_URL_LEN: usize = 2048;

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

/// A webhook failure that reaches the caller (failed deliveries are retried, not returned).
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// A callback URL that cannot be used.
    #[error("invalid callback URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The configuration is unusable, or the HTTP client could not be built.
    #[error("webhooks: {0}")]
    Config(String),
    /// The event's body could not be built.
    #[error("cannot encode the webhook event: {0}")]
    Encode(#[from] serde_json::Error),
    /// The outbox could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Checks that a callback URL is an absolute `http://` or `https://` URL with a host.
pub fn validate_url(url: &str) -> Result<(), String> {
    if url.len() > MAX_URL_LEN {
        return Err(format!("longer than {MAX_URL_LEN} bytes"));
    }
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("not a URL ({e})"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!(
            "scheme {:?} is not allowed: use http:// or https://",
            parsed.scheme()
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("has no host".into());
    }
    Ok(())
}

/// Whether `url` would reach the daemon itself, listening on `own`: the same port on a
/// loopback or unspecified address, `localhost`, or the listening address. An event posted to
/// itself would loop or pile up.
pub fn points_at(url: &str, own: std::net::SocketAddr) -> bool {
    let Ok(u) = reqwest::Url::parse(url) else {
        return false;
    };
    if u.port_or_known_default() != Some(own.port()) {
        return false;
    }
    let host = u.host_str().unwrap_or("");
    match host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<std::net::IpAddr>()
    {
        Ok(ip) => ip.is_loopback() || ip.is_unspecified() || ip == own.ip(),
        Err(_) => {
            let d = host.trim_end_matches('.').to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost")
        }
    }
}

/// Why a callback URL given through the API is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallbackUrlError {
    /// Not an absolute `http://` or `https://` URL with a host.
    #[error("must be an http:// or https:// URL: {0}")]
    Invalid(String),
    /// It would reach this gateway's own API.
    #[error("points at this gateway's own API: events would loop")]
    OwnApi,
    /// The outbound policy refuses its host.
    #[error("refused by outbound policy: {0}")]
    Refused(crate::outbound::Refusal),
}

/// [`validate_url`], not the daemon's own address (`own`, when known), and a host the
/// outbound policy does not refuse (as far as can be told before the name is resolved).
pub fn validate_callback(
    url: &str,
    own: Option<std::net::SocketAddr>,
    policy: &OutboundPolicy,
) -> Result<(), CallbackUrlError> {
    validate_url(url).map_err(CallbackUrlError::Invalid)?;
    if own.is_some_and(|a| points_at(url, a)) {
        return Err(CallbackUrlError::OwnApi);
    }
    policy.check_url_str(url).map_err(CallbackUrlError::Refused)
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

/// The URL as logged: scheme, host, port and path, without credentials or query.
pub fn log_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => format!(
            "{}://{}{}{}",
            u.scheme(),
            u.host_str().unwrap_or(""),
            u.port().map(|p| format!(":{p}")).unwrap_or_default(),
            u.path()
        ),
        Err(_) => "<invalid URL>".into(),
    }
}

/// The delay before a retry: `base` doubling with each failed attempt up to `cap`, of which a
/// random half is taken off (so retries of many deliveries spread out).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay after the first failed attempt, before jitter.
    pub base: Duration,
    /// Longest delay.
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_secs(5),
            cap: Duration::from_secs(3600),
        }
    }
}

impl Backoff {
    /// The delay after `failures` failed attempts (1 for the first), jitter included.
    pub fn delay(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(31);
        let full = self
            .base
            .checked_mul(1u32 << doublings)
            .unwrap_or(self.cap)
            .min(self.cap);
        full / 2 + full.mul_f64(fastrand::f64() / 2.0)
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

/// Why an attempt failed.
struct Failure {
    status: Option<u16>,
    error: String,
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
/// reason, and the event's facts (the reply, the delivery report).
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
    ) -> futures_util::future::BoxFuture<'a, Result<(), String>>;
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
    twilio: Arc<OnceLock<TwilioHooks>>,
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
        let hooks = self.twilio.get()?;
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

/// What the store hears every change through (see [`Store::open_with`]), made before the
/// store and shared with the [`Webhooks`] made after it: the deliveries a change makes are
/// written in its transaction, and wake the sender's worker once they are on disk.
#[derive(Clone)]
pub struct WebhookListener {
    router: Router,
    notify: Arc<Notify>,
    twilio: Arc<OnceLock<TwilioHooks>>,
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
            twilio: Arc::new(OnceLock::new()),
        }
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

/// The webhook sender: enqueues events and runs the delivery worker. Cheap to clone.
#[derive(Clone)]
pub struct Webhooks {
    inner: Arc<Shared>,
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
    twilio: Arc<OnceLock<TwilioHooks>>,
    answers: OnceLock<std::sync::Weak<dyn TwimlHandler>>,
}

/// An entry being attempted: it is marked busy until this is dropped.
struct Claim {
    entry: OutboxEntry,
    shared: Arc<Shared>,
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

impl Drop for Claim {
    fn drop(&mut self) {
        self.shared.busy().remove(&self.entry.seq);
    }
}

impl Shared {
    fn busy(&self) -> std::sync::MutexGuard<'_, HashSet<u64>> {
        self.busy.lock().unwrap_or_else(|e| e.into_inner())
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
        config.validate().map_err(WebhookError::Config)?;
        let signer = match &config.secret {
            Some(s) => Some(Signer::from_secret(s).map_err(WebhookError::Config)?),
            None => None,
        };
        let client = outbound
            .client_builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .user_agent(USER_AGENT)
            .build()
            .map_err(|e| WebhookError::Config(format!("cannot build the HTTP client: {e}")))?;
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
                answers: OnceLock::new(),
            }),
        })
    }

    /// The signer of deliveries (and of reminder prechecks), when a secret is configured.
    pub fn signer(&self) -> Option<Signer> {
        self.inner.signer.clone()
    }

    /// Turns on the Twilio door's deliveries: status callbacks of its messages and
    /// incoming-message webhooks, signed with the account's token. Set once.
    pub fn set_twilio(&self, hooks: TwilioHooks) {
        let _ = self.inner.twilio.set(hooks);
    }

    /// The Twilio door's account and modem numbers, when it is on.
    pub fn twilio(&self) -> Option<&TwilioHooks> {
        self.inner.twilio.get()
    }

    /// What acts on TwiML answers to incoming-message webhooks. Set once.
    pub fn set_twiml_handler(&self, handler: std::sync::Weak<dyn TwimlHandler>) {
        let _ = self.inner.answers.set(handler);
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
    /// [`Webhooks::notifier`]); this is for the others.
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

    /// Takes up to `limit` due entries that nobody is attempting and that `skip` does not
    /// exclude, and marks them busy.
    fn claim(
        &self,
        limit: usize,
        skip: &HashSet<u64>,
    ) -> Result<(Vec<Claim>, Option<DateTime<Utc>>), StoreError> {
        let mut busy = self.inner.busy();
        let DueWebhooks { entries, next_at } =
            self.inner.store.due_webhooks(Utc::now(), limit, |s| {
                busy.contains(&s) || skip.contains(&s)
            })?;
        let claims = entries
            .into_iter()
            .map(|entry| {
                busy.insert(entry.seq);
                Claim {
                    entry,
                    shared: self.inner.clone(),
                }
            })
            .collect();
        Ok((claims, next_at))
    }

    /// Attempts every due delivery now, up to `max_in_flight` at a time, each at most once, and
    /// returns how many attempts were made (for tests and tools; the worker does this itself).
    pub async fn deliver_due(&self) -> usize {
        let mut tried = HashSet::new();
        loop {
            let claims = match self.claim(self.inner.max_in_flight, &tried) {
                Ok((claims, _)) => claims,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the webhook outbox");
                    break;
                }
            };
            if claims.is_empty() {
                break;
            }
            tried.extend(claims.iter().map(|c| c.entry.seq));
            futures_util::future::join_all(claims.into_iter().map(|c| self.attempt(c))).await;
        }
        tried.len()
    }

    /// Starts the delivery worker: it attempts due deliveries (pending ones left from before a
    /// restart included) until `cancel`, then lets the attempts in flight finish or time out.
    pub fn spawn_worker(&self, cancel: CancellationToken) -> JoinHandle<()> {
        tokio::spawn(self.clone().run_worker(cancel))
    }

    /// The delivery worker itself (see [`Webhooks::spawn_worker`]), for a caller that spawns it.
    pub async fn run_worker(self, cancel: CancellationToken) {
        tracing::info!(
            max_in_flight = self.inner.max_in_flight,
            "webhook worker started"
        );
        let mut running: JoinSet<()> = JoinSet::new();
        let none = HashSet::new();
        loop {
            let free = self.inner.max_in_flight.saturating_sub(running.len());
            let mut wake = None;
            if free > 0 {
                match self.claim(free, &none) {
                    Ok((claims, next_at)) => {
                        for c in claims {
                            let this = self.clone();
                            running.spawn(async move { this.attempt(c).await });
                        }
                        wake = next_at;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot read the webhook outbox; trying again in 5s");
                        wake = Some(Utc::now() + TimeDelta::seconds(5));
                    }
                }
            }
            let sleep = tokio::time::sleep_until(instant_at(wake));
            tokio::select! {
                () = cancel.cancelled() => break,
                Some(r) = running.join_next(), if !running.is_empty() => {
                    if let Err(e) = r {
                        tracing::error!(error = %e, "a webhook delivery task failed");
                    }
                }
                () = self.inner.notify.notified() => {}
                () = sleep, if wake.is_some() => {}
            }
        }
        if !running.is_empty() {
            tracing::info!(
                in_flight = running.len(),
                "webhook worker stopping after the deliveries in flight"
            );
        }
        while let Some(r) = running.join_next().await {
            if let Err(e) = r {
                tracing::error!(error = %e, "a webhook delivery task failed");
            }
        }
        tracing::info!("webhook worker stopped");
    }

    /// One attempt of one delivery, and its outcome recorded.
    async fn attempt(&self, claim: Claim) {
        let e = &claim.entry;
        let attempt = e.attempts.saturating_add(1);
        match self.post(e).await {
            Ok(status) => {
                tracing::debug!(id = %e.id, url = %log_url(&e.url), status, attempt, "webhook delivered");
                metrics::counter!(crate::metrics::WEBHOOKS, "result" => "delivered").increment(1);
                if let Err(err) = self.inner.store.webhook_delivered(e.seq) {
                    tracing::warn!(id = %e.id, error = %err, "cannot remove a delivered webhook from the outbox");
                }
            }
            Err(f) => {
                let now = Utc::now();
                let deadline = e
                    .created_at
                    .checked_add_signed(self.inner.max_age)
                    .unwrap_or(DateTime::<Utc>::MAX_UTC);
                let next = if now >= deadline {
                    None
                } else {
                    let delay = TimeDelta::from_std(self.inner.backoff.delay(attempt))
                        .unwrap_or(TimeDelta::MAX);
                    Some(
                        now.checked_add_signed(delay)
                            .unwrap_or(deadline)
                            .min(deadline),
                    )
                };
                let url = log_url(&e.url);
                let result = if next.is_some() { "failed" } else { "dead" };
                metrics::counter!(crate::metrics::WEBHOOKS, "result" => result).increment(1);
                match next {
                    Some(at) => tracing::warn!(
                        id = %e.id, url = %url, status = ?f.status, attempt, error = %f.error,
                        next_attempt_at = %at.to_rfc3339_opts(SecondsFormat::Secs, true),
                        "webhook delivery failed; will retry"
                    ),
                    None => {
                        tracing::warn!(
                            id = %e.id, url = %url, status = ?f.status, attempt, error = %f.error,
                            "webhook delivery failed"
                        );
                        tracing::info!(
                            id = %e.id, url = %url, event = %e.event_type, attempts = attempt,
                            "webhook delivery is dead: retried for its maximum age"
                        );
                    }
                }
                if let Err(err) = self
                    .inner
                    .store
                    .webhook_failed(e.seq, f.status, &f.error, next)
                {
                    tracing::warn!(id = %e.id, error = %err, "cannot record a failed webhook attempt");
                }
            }
        }
        drop(claim);
    }

    /// Refuses an attempt the outbound policy forbids, before anything is sent.
    fn allowed(&self, e: &OutboxEntry) -> Result<(), Failure> {
        self.inner.outbound.check_url_str(&e.url).map_err(|why| {
            tracing::warn!(id = %e.id, url = %log_url(&e.url), reason = %why, "webhook refused by the outbound policy");
            Failure {
                status: None,
                error: crate::outbound::REFUSED.into(),
            }
        })
    }

    /// POSTs one delivery, signed for this attempt; the 2xx status or why it failed.
    async fn post(&self, e: &OutboxEntry) -> Result<u16, Failure> {
        self.allowed(e)?;
        if is_twilio(&e.event_type) {
            return self.post_twilio(e).await;
        }
        let timestamp = Utc::now().timestamp();
        let mut req = self
            .inner
            .client
            .post(&e.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", &e.id)
            .header("webhook-timestamp", timestamp.to_string())
            .body(e.body.clone());
        if let Some(signer) = &self.inner.signer {
            req = req.header("webhook-signature", signer.sign(&e.id, timestamp, &e.body));
        }
        let resp = req.send().await.map_err(|err| Failure {
            status: None,
            error: self.describe(err),
        })?;
        let status = resp.status();
        if status.is_success() {
            return Ok(status.as_u16());
        }
        Err(Self::refused(resp).await)
    }

    /// POSTs a Twilio form (a status callback or an incoming message), signed with
    /// `X-Twilio-Signature`; an incoming message's TwiML answer is acted on.
    async fn post_twilio(&self, e: &OutboxEntry) -> Result<u16, Failure> {
        let Some(hooks) = self.inner.twilio.get() else {
            return Err(Failure {
                status: None,
                error: "the [twilio] section is no longer configured".into(),
            });
        };
        let params = crate::twilio::parse_form(&e.body);
        let signature = crate::twilio::signature(&hooks.account.token, &e.url, &params);
        let mut resp = self
            .inner
            .client
            .post(&e.url)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded; charset=utf-8",
            )
            .header("X-Twilio-Signature", signature)
            .header("I-Twilio-Idempotency-Token", &e.id)
            .body(e.body.clone())
            .send()
            .await
            .map_err(|err| Failure {
                status: None,
                error: self.describe(err),
            })?;
        let status = resp.status();
        if !status.is_success() {
            return Err(Self::refused(resp).await);
        }
        if e.event_type == crate::twilio::INCOMING
            && let Some(handler) = self.inner.answers.get().and_then(std::sync::Weak::upgrade)
        {
            let mut body = Vec::new();
            loop {
                match resp.chunk().await {
                    Ok(Some(c)) => {
                        body.extend_from_slice(&c);
                        if body.len() > MAX_TWIML {
                            return Err(Failure {
                                status: Some(status.as_u16()),
                                error: format!("the TwiML answer is larger than {MAX_TWIML} bytes"),
                            });
                        }
                    }
                    Ok(None) => break,
                    Err(err) => {
                        return Err(Failure {
                            status: Some(status.as_u16()),
                            error: format!("reading the answer: {}", error_chain(err)),
                        });
                    }
                }
            }
            let text = String::from_utf8_lossy(&body);
            handler.answer(e, &text).await.map_err(|error| Failure {
                status: Some(status.as_u16()),
                error,
            })?;
        }
        Ok(status.as_u16())
    }

    /// The failure of a non-2xx answer, with the start of its body.
    async fn refused(mut resp: reqwest::Response) -> Failure {
        let status = resp.status();
        // A little of the answer helps whoever reads the error.
        let mut head = Vec::new();
        while head.len() < 512 {
            match resp.chunk().await {
                Ok(Some(c)) => head.extend_from_slice(&c),
                Ok(None) | Err(_) => break,
            }
        }
        let text: String = String::from_utf8_lossy(&head)
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .take(200)
            .collect();
        let text = text.trim();
        Failure {
            status: Some(status.as_u16()),
            error: if text.is_empty() {
                format!("HTTP {status}")
            } else {
                format!("HTTP {status}: {text}")
            },
        }
    }

    /// A request error with its causes, e.g. "error sending request: … Connection refused";
    /// only [`crate::outbound::REFUSED`] when the outbound policy stopped it.
    fn describe(&self, err: reqwest::Error) -> String {
        if crate::outbound::is_refused(&err) {
            return crate::outbound::REFUSED.into();
        }
        if err.is_timeout() {
            return format!(
                "timed out after {}",
                humantime::format_duration(self.inner.timeout)
            );
        }
        error_chain(err)
    }
}

/// A request error with its causes, without the URL (it may hold credentials or tokens), e.g.
/// "error sending request: … Connection refused".
pub fn error_chain(err: reqwest::Error) -> String {
    let err = err.without_url();
    let mut s = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        let c = cause.to_string();
        if !s.contains(&c) {
            s.push_str(": ");
            s.push_str(&c);
        }
        source = cause.source();
    }
    s
}

/// The instant to wake at for a wall-clock time: now when it is past, and never more than a
/// minute away (the outbox is looked at again then, whatever the clock did).
fn instant_at(t: Option<DateTime<Utc>>) -> tokio::time::Instant {
    let max = Duration::from_secs(60);
    let d = t.map_or(max, |t| (t - Utc::now()).to_std().unwrap_or(Duration::ZERO));
    tokio::time::Instant::now() + d.min(max)
}
