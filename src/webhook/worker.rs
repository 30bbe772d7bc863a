//! The delivery worker: it claims due deliveries, attempts them (a signed JSON POST, or a
//! Twilio-door form), and records each outcome: delivered, retried after a backoff, or dead once
//! past the maximum age.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use super::{OutboxEntry, Shared, Webhooks, is_twilio, log_url};
use crate::store::StoreError;
use crate::store::outbox::DueWebhooks;

/// The largest TwiML answer read, in bytes.
const MAX_TWIML: usize = 64 * 1024;

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

/// Why an attempt failed.
struct Failure {
    status: Option<u16>,
    error: String,
}

/// An entry being attempted: it is marked busy until this is dropped.
struct Claim {
    entry: OutboxEntry,
    shared: Arc<Shared>,
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
            // With a store several gateways share, one of them delivers at a time (so each
            // receiver gets its events in order); the others look again every third of the
            // lease's time, and the holder renews it as often.
            let store = &self.inner.store;
            let mine = store.does_job("webhooks");
            if store.is_shared() {
                let ttl =
                    TimeDelta::from_std(store.lease_ttl() / 3).unwrap_or(TimeDelta::seconds(5));
                wake = Some(Utc::now() + ttl);
            }
            if free > 0 && mine {
                match self.claim(free, &none) {
                    Ok((claims, next_at)) => {
                        for c in claims {
                            let this = self.clone();
                            running.spawn(async move { this.attempt(c).await });
                        }
                        wake = match (wake, next_at) {
                            (Some(a), Some(b)) => Some(a.min(b)),
                            (a, b) => a.or(b),
                        };
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
        let Some(hooks) = self.inner.twilio.as_deref() else {
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
            && let Some(handler) = &self.answers
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
                error: error.to_string(),
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
