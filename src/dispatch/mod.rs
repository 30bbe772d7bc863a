//! The dispatcher: one worker per modem takes the next due message from the store, marks it
//! `sending` on disk, sends it, and records the outcome.
//!
//! Order: priority, then due time (the store's `due` index). A worker sleeps until the earliest
//! due time or until new work is announced ([`Dispatcher::notify`]); it never spins. A message
//! that fails with a retryable error goes back with exponential backoff and jitter, so it never
//! holds back the messages behind it. A message is never sent after `expires_at`, nor later than
//! `max_lateness` after its due time (no stale bursts after an outage).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::modem::{ModemHandle, ModemState, PartOutcome, Retry};
use crate::sms::{self, NationalLanguage, SubmitOptions};
use crate::store::{Attempt, Message, NextDue, Note, Part, Status, Store, StoreError};

/// The time source: the real clock, or one tests move.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>);

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock(Arc::new(Utc::now))
    }

    /// A clock from a function.
    pub fn from_fn(f: impl Fn() -> DateTime<Utc> + Send + Sync + 'static) -> Clock {
        Clock(Arc::new(f))
    }

    /// Now.
    pub fn now(&self) -> DateTime<Utc> {
        (self.0)()
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::system()
    }
}

/// Dispatch policy.
#[derive(Debug, Clone)]
pub struct DispatchConfig {
    /// Attempts before a message with retryable errors is failed.
    pub max_attempts: u32,
    /// First retry delay (doubles per attempt, ±25 % jitter).
    pub backoff: Duration,
    /// Longest retry delay.
    pub backoff_max: Duration,
    /// Most parts per message.
    pub max_parts: usize,
    /// TP-VP for sent messages.
    pub validity: Option<Duration>,
    /// National language tables the encoder may use.
    pub national_languages: Vec<NationalLanguage>,
    /// Wait before retrying when no modem is up.
    pub modem_wait: Duration,
    /// How long after sending a message with `reply_options` an answer is matched to it.
    pub reply_window: Duration,
    /// Hold a message with `reply_options` while an earlier one to the same number is still
    /// unanswered within its reply window.
    pub hold_ambiguous: bool,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        DispatchConfig {
            max_attempts: 5,
            backoff: Duration::from_secs(30),
            backoff_max: Duration::from_secs(1800),
            max_parts: sms::DEFAULT_MAX_PARTS,
            validity: None,
            national_languages: Vec::new(),
            modem_wait: Duration::from_secs(2),
            reply_window: Duration::from_secs(7 * 24 * 3600),
            hold_ambiguous: true,
        }
    }
}

/// The dispatcher: shared state of the workers.
#[derive(Clone)]
pub struct Dispatcher {
    store: Store,
    notify: Arc<Notify>,
    clock: Clock,
    cfg: Arc<DispatchConfig>,
}

/// What happened to a claimed message.
#[derive(Debug, Clone)]
enum Claim {
    /// It is `sending` now and on disk.
    Send(Box<Message>),
    /// It was expired instead of sent.
    Expired,
    /// Someone else took it, or it changed.
    Lost,
}

impl Dispatcher {
    /// A dispatcher over `store`.
    pub fn new(store: Store, cfg: DispatchConfig, clock: Clock) -> Dispatcher {
        Dispatcher {
            store,
            notify: Arc::new(Notify::new()),
            clock,
            cfg: Arc::new(cfg),
        }
    }

    /// Wakes the workers: new or changed work is in the store.
    pub fn notify(&self) {
        self.notify.notify_waiters();
    }

    /// After an unclean stop, messages found `sending` may already be on a phone: they become
    /// `unknown` (shown to the admin, never re-sent automatically). Returns how many.
    pub async fn recover(&self) -> Result<usize, StoreError> {
        let ids = self.store.ids_with_status(Status::Sending)?;
        for id in &ids {
            self.store.update(id, |m| {
                (m.status == Status::Sending).then(|| {
                    m.status = Status::Unknown;
                    m.status_reason = Some("daemon_stopped_while_sending".into());
                    Note::from("the daemon stopped while this message was being sent; it may have been delivered")
                })
            })?;
        }
        if !ids.is_empty() {
            self.store.durable().await?;
            tracing::warn!(
                count = ids.len(),
                "messages left in sending after an unclean stop are now unknown"
            );
        }
        Ok(ids.len())
    }

    /// Starts a worker for a modem. It stops when `cancel` fires, after finishing the message in
    /// hand.
    pub fn spawn_worker(&self, modem: ModemHandle, cancel: CancellationToken) -> JoinHandle<()> {
        let d = self.clone();
        tokio::spawn(async move { d.worker(modem, cancel).await })
    }

    async fn worker(self, modem: ModemHandle, cancel: CancellationToken) {
        let mut status = modem.watch();
        loop {
            if cancel.is_cancelled() {
                return;
            }
            // Only take work while the modem is up.
            if status.borrow().state != ModemState::Up {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    r = status.changed() => if r.is_err() { return },
                }
                continue;
            }
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match self.try_dispatch_one(&modem).await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => {
                    tracing::error!(error = %e, "dispatcher cannot read the store; retrying");
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                    continue;
                }
            }
            let wait = match self.store.next_due(self.clock.now()) {
                Ok(NextDue::At(t)) => (t - self.clock.now())
                    .to_std()
                    .unwrap_or(Duration::ZERO)
                    .min(Duration::from_secs(60)),
                Ok(NextDue::Ready(_)) => Duration::ZERO,
                Ok(NextDue::Empty) | Err(_) => Duration::from_secs(60),
            };
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = &mut notified => {}
                _ = tokio::time::sleep(wait) => {}
                r = status.changed() => if r.is_err() { return },
            }
        }
    }

    /// Takes one due message, if any, and sends it through `modem`. `Ok(false)`: nothing due.
    pub async fn try_dispatch_one(&self, modem: &ModemHandle) -> Result<bool, StoreError> {
        let now = self.clock.now();
        let id = match self.store.next_due(now)? {
            NextDue::Ready(id) => id,
            _ => return Ok(false),
        };
        let msg = match self.claim(&id, modem.name(), now).await? {
            Claim::Send(m) => m,
            Claim::Expired | Claim::Lost => return Ok(true),
        };
        self.send(*msg, modem).await?;
        Ok(true)
    }

    async fn claim(&self, id: &str, modem: &str, now: DateTime<Utc>) -> Result<Claim, StoreError> {
        let r = self.store.update(id, |m| {
            if !m.status.is_waiting() || m.due_at > now {
                return None;
            }
            if let Some(exp) = m.expires_at
                && exp <= now
            {
                m.status = Status::Expired;
                m.status_reason = Some("expires_at".into());
                return Some(format!("not sent: expired at {}", exp.to_rfc3339()));
            }
            let due = m.requeued_at.or(m.send_at).unwrap_or(m.created_at);
            if (now - due).num_seconds() > m.max_lateness_secs as i64 {
                m.status = Status::Expired;
                m.status_reason = Some("too_late".into());
                return Some(format!(
                    "not sent: it could only go out {} s after its due time, more than max_lateness",
                    (now - due).num_seconds()
                ));
            }
            m.status = Status::Sending;
            m.status_reason = None;
            m.modem = Some(modem.to_string());
            Some(format!("sending via {modem}"))
        })?;
        Ok(match r {
            Some((m, true)) if m.status == Status::Sending => {
                // On disk before AT+CMGS: a crash from here on leaves it `unknown`, never re-sent.
                self.store.durable().await?;
                Claim::Send(Box::new(m))
            }
            Some((m, true)) if m.status == Status::Expired => Claim::Expired,
            _ => Claim::Lost,
        })
    }

    async fn send(&self, msg: Message, modem: &ModemHandle) -> Result<(), StoreError> {
        let started = self.clock.now();
        let opts = SubmitOptions {
            status_report: msg.status_report,
            validity: self.cfg.validity,
            concat_reference: modem.next_concat_reference(),
            max_parts: self.cfg.max_parts.max(usize::from(msg.parts)),
            national_languages: self.cfg.national_languages.clone(),
            ..SubmitOptions::default()
        };
        let encoded = sms::encode_submit(&msg.to, &msg.text, &opts);
        let result = match encoded {
            Ok(e) => modem.send_parts(e.parts).await,
            Err(e) => {
                // Validated at the API; a text that no longer encodes fails for good.
                return self
                    .finish(&msg.id, |m| {
                        m.status = Status::Failed;
                        m.status_reason = Some(format!("encoding: {e}"));
                        Some(format!("failed: {e}"))
                    })
                    .await;
            }
        };
        let modem_name = modem.name().to_string();
        let max_attempts = self.cfg.max_attempts;
        let backoff = |attempt: u32| -> chrono::Duration {
            let base = self.cfg.backoff.as_secs_f64() * 2f64.powi(attempt.saturating_sub(1) as i32);
            let capped = base.min(self.cfg.backoff_max.as_secs_f64());
            let jitter = capped * (0.75 + fastrand::f64() * 0.5);
            chrono::Duration::milliseconds((jitter * 1000.0) as i64)
        };
        let now = self.clock.now();
        match result {
            Err(e) => {
                // Nothing went out (modem down, driver stopped): back to the queue, no attempt used.
                tracing::info!(message_id = %msg.id, modem = %modem_name, error = %e, "modem unavailable; message requeued");
                let wait = chrono::Duration::from_std(self.cfg.modem_wait).unwrap_or_default();
                self.finish(&msg.id, |m| {
                    m.status = Status::Queued;
                    m.status_reason = Some("modem_unavailable".into());
                    m.due_at = now + wait;
                    Some(format!("requeued: {e}"))
                })
                .await
            }
            Ok(outcomes) => {
                let refs: Vec<u8> = outcomes
                    .iter()
                    .filter_map(|o| match o {
                        PartOutcome::Sent { message_reference } => Some(*message_reference),
                        _ => None,
                    })
                    .collect();
                let failure = outcomes.iter().find_map(|o| match o {
                    PartOutcome::Failed { error, maybe_sent } => Some((error.clone(), *maybe_sent)),
                    _ => None,
                });
                let attempt = Attempt {
                    at: started,
                    modem: modem_name.clone(),
                    result: match &failure {
                        None => "sent".into(),
                        Some((_, true)) => "maybe_sent".into(),
                        Some((_, false)) => "failed".into(),
                    },
                    error: failure.as_ref().map(|(e, _)| e.to_string()),
                    message_references: refs.clone(),
                };
                let parts: Vec<Part> = outcomes
                    .iter()
                    .enumerate()
                    .map(|(i, o)| Part {
                        part: (i + 1) as u8,
                        message_reference: match o {
                            PartOutcome::Sent { message_reference } => Some(*message_reference),
                            _ => None,
                        },
                        status: match o {
                            PartOutcome::Sent { .. } => "sent".into(),
                            PartOutcome::Failed {
                                maybe_sent: true, ..
                            } => "unknown".into(),
                            PartOutcome::Failed { .. } => "failed".into(),
                            PartOutcome::NotAttempted => "not_sent".into(),
                        },
                    })
                    .collect();
                self.finish(&msg.id, |m| {
                    m.attempts.push(attempt.clone());
                    m.part_status = parts.clone();
                    match &failure {
                        None => {
                            m.status = Status::Sent;
                            m.status_reason = None;
                            m.sent_at = Some(now);
                            Some(format!("sent via {modem_name}, TP-MR {refs:?}"))
                        }
                        Some((e, true)) => {
                            m.status = Status::Unknown;
                            m.status_reason = Some("no_answer_after_submit".into());
                            Some(format!(
                                "unknown: {e}; the network may have it, so it is not re-sent automatically"
                            ))
                        }
                        Some((e, false)) => {
                            let attempts = m.attempts.len() as u32;
                            if e.retry() == Retry::Retryable && attempts < max_attempts {
                                m.status = Status::Queued;
                                m.status_reason = Some(e.to_string());
                                m.due_at = now + backoff(attempts);
                                Some(format!(
                                    "retry {attempts}/{max_attempts} after {e}, next at {}",
                                    m.due_at.to_rfc3339()
                                ))
                            } else {
                                m.status = Status::Failed;
                                m.status_reason = Some(e.to_string());
                                Some(if e.retry() == Retry::Permanent {
                                    format!("failed: {e}")
                                } else {
                                    format!("failed after {attempts} attempts: {e}")
                                })
                            }
                        }
                    }
                })
                .await
            }
        }
    }

    async fn finish<F>(&self, id: &str, f: F) -> Result<(), StoreError>
    where
        F: Fn(&mut Message) -> Option<String>,
    {
        self.store.update(id, |m| {
            if m.status != Status::Sending {
                return None;
            }
            f(m)
        })?;
        self.store.durable().await
    }
}
