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

mod ahead;
pub mod hold;
pub mod pool;
mod rules;
mod under_way;

use crate::domain::{HoldReason, PartStatus, RetryPolicy, SendFailure, SendOutcome};
use crate::modem::{ModemHandle, ModemState, PartOutcome, Retry};
use crate::sms::{self, NationalLanguage, SubmitOptions};
use crate::store::{Message, NextDue, Note, Part, Status, Store, StoreError};
pub use hold::Hold;
pub use pool::{Gate, ModemPolicy, Pool, Sending, Traffic};
pub use under_way::{SendsUnderWay, UnderWay};

/// How long a message stays `sending` on a modem no gateway drives before it is `unknown`
/// ([`Dispatcher::recover_orphans`]).
pub const ORPHANED_AFTER: chrono::Duration = chrono::Duration::minutes(5);

/// Due messages a worker looks at, at most, to find one it may take (routing, sticky sender).
const MAX_SCAN: usize = 2000;

/// The time source: the real clock, or one tests move ([`ManualClock`]). The dispatcher sleeps
/// until the next due time by this clock and wakes early when a manual clock is moved.
#[derive(Clone)]
pub struct Clock {
    now: Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>,
    moved: Arc<Notify>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock::from_fn(Utc::now)
    }

    /// A clock from a function.
    pub fn from_fn(f: impl Fn() -> DateTime<Utc> + Send + Sync + 'static) -> Clock {
        Clock {
            now: Arc::new(f),
            moved: Arc::new(Notify::new()),
        }
    }

    /// Now.
    pub fn now(&self) -> DateTime<Utc> {
        (self.now)()
    }

    /// Resolves when the clock is moved by hand (never for the system clock). Enable it
    /// before looking at the time, so a move in between is not missed.
    pub fn moved(&self) -> tokio::sync::futures::Notified<'_> {
        self.moved.notified()
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::system()
    }
}

/// A clock that stands still until it is moved: lets a test run a plan spanning weeks without
/// waiting days for a reminder to fall due.
#[derive(Clone)]
pub struct ManualClock {
    millis: Arc<std::sync::atomic::AtomicI64>,
    clock: Clock,
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: DateTime<Utc>) -> ManualClock {
        let millis = Arc::new(std::sync::atomic::AtomicI64::new(start.timestamp_millis()));
        let m = millis.clone();
        let clock = Clock::from_fn(move || {
            DateTime::from_timestamp_millis(m.load(std::sync::atomic::Ordering::SeqCst))
                .unwrap_or_default()
        });
        ManualClock { millis, clock }
    }

    /// The [`Clock`] to hand to the gateway.
    pub fn clock(&self) -> Clock {
        self.clock.clone()
    }

    /// Now, as this clock stands.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Moves the clock to `t` (forwards or back) and wakes whoever sleeps on it.
    pub fn set(&self, t: DateTime<Utc>) {
        self.millis
            .store(t.timestamp_millis(), std::sync::atomic::Ordering::SeqCst);
        self.clock.moved.notify_waiters();
    }

    /// Moves the clock forwards by `d`.
    pub fn advance(&self, d: chrono::Duration) {
        self.set(self.now() + d);
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
    /// Send windows, quiet days, per-recipient caps and prechecks.
    pub reminders: Arc<crate::reminders::Policy>,
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
            reminders: Arc::default(),
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
    precheck: Option<Arc<crate::reminders::precheck::Prechecker>>,
    /// Prechecks asked ahead of the send, off the workers.
    ahead: Arc<ahead::Ahead>,
    heartbeat: crate::systemd::Heartbeat,
    pool: Arc<Pool>,
    /// Sends handed to a modem whose outcome is not on disk yet.
    under_way: Arc<SendsUnderWay>,
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
        let pool = Arc::new(Pool::new(store.clone(), cfg.reminders.timezone));
        // With a database shared by several gateways, the others' new work wakes the workers
        // too: the store's wake-up is theirs.
        let notify = store
            .due_elsewhere()
            .unwrap_or_else(|| Arc::new(Notify::new()));
        Dispatcher {
            pool,
            store,
            notify,
            clock,
            cfg: Arc::new(cfg),
            precheck: None,
            ahead: Arc::default(),
            heartbeat: crate::systemd::Heartbeat::default(),
            under_way: Arc::default(),
        }
    }

    /// The sends handed to a modem and not yet recorded: a status report waits for them
    /// ([`crate::reports::handle_batch`]).
    pub fn under_way(&self) -> Arc<SendsUnderWay> {
        self.under_way.clone()
    }

    /// The workers' heartbeat: each beats it at least once a minute and around every send
    /// (see [`crate::systemd`]).
    pub fn heartbeat(&self) -> crate::systemd::Heartbeat {
        self.heartbeat.clone()
    }

    /// The modems and what each may take.
    pub fn pool(&self) -> Arc<Pool> {
        self.pool.clone()
    }

    /// Asks precheck URLs with this client before reminder steps go out.
    pub fn with_precheck(mut self, p: crate::reminders::precheck::Prechecker) -> Dispatcher {
        self.precheck = Some(Arc::new(p));
        self
    }

    /// Stops the prechecks under way (their steps stay due and are asked again later) and
    /// waits for them to end.
    pub async fn stop_prechecks(&self) {
        self.ahead.stop().await;
    }

    /// Whether worker `me` may take `m` now: the pool lets it, and no precheck holds it.
    fn may_take_now(&self, me: &str, m: &Message, now: DateTime<Utc>) -> bool {
        !self.ahead.passes_over(m) && self.pool.may_take(me, m, now).is_some()
    }

    /// Wakes the workers: new or changed work is in the store.
    pub fn notify(&self) {
        self.notify.notify_waiters();
    }

    /// What was just written to the store (new messages, a requeue, a plan's change) is made
    /// durable, then the workers are woken: the caller answers only after this, and a worker
    /// never starts on work a crash could still take back.
    pub async fn announce(&self) -> Result<(), StoreError> {
        self.store.durable().await?;
        self.notify();
        Ok(())
    }

    /// After an unclean stop, messages found `sending` may already be on a phone: they become
    /// `unknown` (shown to the admin, never re-sent automatically). Returns how many.
    ///
    /// With a store several gateways share, the others' messages in `sending` are theirs to
    /// send: each modem's are looked at when its lease is taken ([`Dispatcher::recover_modem`]).
    pub async fn recover(&self) -> Result<usize, StoreError> {
        if self.store.is_shared() {
            return Ok(0);
        }
        let ids = self.store.ids_with_status(Status::Sending)?;
        for id in &ids {
            self.store.update(id, |m| m.interrupted().ok())?;
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

    /// The store the workers take their messages from.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The messages a crash left `sending` on `modem`, when this gateway takes the modem's
    /// lease over (a gateway sharing the store stopped while sending through it): they may
    /// already be on a phone, so they become `unknown`, as [`Dispatcher::recover`] does for
    /// every message at the start of a gateway that has its store to itself. Called before
    /// the modem's worker starts (its own claims are not touched); with a shared store each
    /// change is committed when made. Returns how many.
    pub fn recover_modem(&self, modem: &str) -> Result<usize, StoreError> {
        let mut n = 0;
        for id in self.store.ids_with_status(Status::Sending)? {
            let on_it = |m: &mut Message| {
                if m.modem.as_deref() == Some(modem) {
                    m.interrupted().ok()
                } else {
                    None
                }
            };
            if let Some((_, true)) = self.store.update(&id, on_it)? {
                n += 1;
            }
        }
        if n > 0 {
            tracing::warn!(
                count = n,
                modem,
                "messages left in sending on a modem whose gateway stopped are now unknown"
            );
        }
        Ok(n)
    }

    /// With a shared store: messages left `sending` on a modem no gateway holds any more (its
    /// gateway stopped and none is configured to take the modem over) become `unknown` once
    /// unchanged for [`ORPHANED_AFTER`] and the modem's lease has lapsed by a minute: what a
    /// gateway taking the modem over would have done. Run by the one gateway doing the
    /// housekeeping. Returns how many.
    pub fn recover_orphans(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        if !self.store.is_shared() {
            return Ok(0);
        }
        let ids = self.store.ids_with_status(Status::Sending)?;
        if ids.is_empty() {
            return Ok(0);
        }
        // Read after the messages: a modem taken over since is seen as held.
        let leases = self.store.leases()?;
        let lapsed_before = now - chrono::Duration::minutes(1);
        let held = |modem: &str| {
            let name = crate::store::lease::modem_lease(modem);
            leases
                .iter()
                .any(|l| l.name == name && l.expires_at > lapsed_before)
        };
        let quiet_since = now - ORPHANED_AFTER;
        let mut n = 0;
        for id in ids {
            let orphaned = |m: &mut Message| match m.modem.as_deref() {
                Some(modem) if m.updated_at <= quiet_since && !held(modem) => m.interrupted().ok(),
                _ => None,
            };
            if let Some((m, true)) = self.store.update(&id, orphaned)? {
                n += 1;
                tracing::warn!(message_id = %m.id, modem = m.modem.as_deref().unwrap_or(""), "message left in sending on a modem no gateway drives any more is now unknown");
            }
        }
        Ok(n)
    }

    /// Starts a worker for a modem, which joins the pool with `policy`. It stops when `cancel`
    /// fires, after finishing the message in hand, and leaves the pool.
    pub fn spawn_worker(
        &self,
        modem: ModemHandle,
        policy: ModemPolicy,
        cancel: CancellationToken,
    ) -> JoinHandle<()> {
        self.pool.add(modem.clone(), policy);
        let d = self.clone();
        tokio::spawn(async move {
            let name = modem.name().to_string();
            d.clone().worker(modem, cancel).await;
            d.pool.remove(&name);
            // Its numbers' follow-ups may go through the others now.
            d.notify();
        })
    }

    async fn worker(self, modem: ModemHandle, cancel: CancellationToken) {
        let mut status = modem.watch();
        let name = modem.name().to_string();
        let mut was_up = status.borrow().state == ModemState::Up;
        loop {
            self.heartbeat.beat();
            if cancel.is_cancelled() {
                return;
            }
            let state = status.borrow().state;
            self.pool.observe(&name, state, self.clock.now());
            if (state == ModemState::Up) != was_up {
                was_up = state == ModemState::Up;
                // The others may take (or give back) this modem's numbers now.
                self.notify();
            }
            // Only take work while the modem is up (beating once a minute while it is not).
            if state != ModemState::Up {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    r = status.changed() => if r.is_err() { return },
                    _ = tokio::time::sleep(Duration::from_secs(60)) => {}
                }
                continue;
            }
            // Quarantined or at a limit: nothing until it frees up.
            if let Some(p) = self.pool.paused(&name, self.clock.now()) {
                let wait = match p {
                    pool::Pause::Quarantined(t) | pool::Pause::MinuteLimit(t) => {
                        t.saturating_duration_since(std::time::Instant::now())
                    }
                    pool::Pause::DayLimit(t) => (t - self.clock.now()).to_std().unwrap_or_default(),
                };
                self.notify();
                let moved = self.clock.moved();
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    r = status.changed() => if r.is_err() { return },
                    _ = moved => {}
                    _ = tokio::time::sleep(wait.clamp(Duration::from_millis(10), Duration::from_secs(60))) => {}
                }
                continue;
            }
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let moved = self.clock.moved();
            tokio::pin!(moved);
            moved.as_mut().enable();
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
            let now = self.clock.now();
            let mine = &mut |m: &Message| self.may_take_now(&name, m, now);
            let wait = match self.store.next_due_matching(now, MAX_SCAN, mine) {
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
                _ = &mut moved => {}
                _ = tokio::time::sleep(wait) => {}
                r = status.changed() => if r.is_err() { return },
            }
        }
    }

    /// Takes one due message this modem may take, if any, and sends it through `modem`.
    /// `Ok(false)`: nothing due for it.
    pub async fn try_dispatch_one(&self, modem: &ModemHandle) -> Result<bool, StoreError> {
        let now = self.clock.now();
        let me = modem.name();
        let mine = &mut |m: &Message| self.may_take_now(me, m, now);
        let id = match self.store.next_due_matching(now, MAX_SCAN, mine)? {
            NextDue::Ready(id) => id,
            _ => return Ok(false),
        };
        if self.hold_or_drop(&id, now).await? {
            return Ok(true);
        }
        // Taking over from the modem that last texted this number, when it is not available.
        let Some(from) = self
            .store
            .get(&id)?
            .and_then(|m| self.pool.may_take(me, &m, now))
        else {
            return Ok(false);
        };
        let msg = match self.claim(&id, me, from.as_deref(), now).await? {
            Claim::Send(m) => m,
            Claim::Expired | Claim::Lost => return Ok(true),
        };
        self.send(*msg, modem).await?;
        Ok(true)
    }

    /// Before a message goes out: one to a number that opted out is cancelled, and one with
    /// `reply_options` waits while an earlier question to the same number is unanswered within
    /// its reply window (a "1" could not tell which it answers). `true` when it does not go now.
    async fn hold_or_drop(&self, id: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let Some(m) = self.store.get(id)? else {
            return Ok(false);
        };
        if !m.is_from_gateway() && self.store.is_opted_out(&m.to)? {
            self.store.update(id, |msg| msg.cancel_opted_out().ok())?;
            self.store.durable().await?;
            return Ok(true);
        }
        if self.window_hold(&m, now).await? || self.cap_hold(&m, now).await? {
            return Ok(true);
        }
        if self.ambiguity_hold(&m, now).await? {
            return Ok(true);
        }
        self.precheck(&m, now).await
    }

    /// One with `reply_options` waits while an earlier question to the same number is
    /// unanswered within its reply window.
    async fn ambiguity_hold(&self, m: &Message, now: DateTime<Utc>) -> Result<bool, StoreError> {
        if !self.cfg.hold_ambiguous || m.reply_options.as_ref().is_none_or(|o| o.is_empty()) {
            return Ok(false);
        }
        let window =
            chrono::Duration::from_std(self.cfg.reply_window).unwrap_or(chrono::Duration::MAX);
        let Some(open) = self
            .store
            .reply_target(&m.to, now, window, true, Some(&m.id))?
        else {
            return Ok(false);
        };
        let until = open.sent_at.unwrap_or(now) + window;
        let held = self
            .defer(
                &m.id,
                now,
                until,
                HoldReason::AwaitingReply,
                Note::new(
                    "held",
                    format!(
                        "held: message {} to the same number awaits an answer; this one goes when it is answered or at {}, when its reply window closes",
                        open.id,
                        until.to_rfc3339()
                    ),
                    serde_json::json!({ "awaiting": open.id, "until": until }),
                ),
            )
            .await?;
        if held {
            tracing::info!(message_id = %m.id, awaiting = %open.id, until = %until.to_rfc3339(), "message held: an earlier question to the same number is unanswered");
        }
        Ok(true)
    }

    async fn claim(
        &self,
        id: &str,
        modem: &str,
        instead_of: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Claim, StoreError> {
        let r = self
            .store
            .update(id, |m| m.claim(modem, instead_of, now).ok())?;
        if let (Some(other), Some((m, true))) = (instead_of, &r)
            && m.status == Status::Sending
        {
            tracing::info!(message_id = %id, modem, instead_of = other, "sticky modem not available: another modem takes the number over");
        }
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
        // Until the outcome is on disk (or this returns early), a report from this modem waits.
        let _under_way = self.under_way.begin(modem.name());
        let started = self.clock.now();
        let timer = std::time::Instant::now();
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
                let error = e.to_string();
                return self
                    .finish(
                        &msg.id,
                        &SendOutcome::Unencodable { error },
                        self.clock.now(),
                    )
                    .await;
            }
        };
        let modem_name = modem.name().to_string();
        record_send(&modem_name, &result, timer.elapsed());
        if let Ok(outcomes) = &result
            && outcomes.iter().any(|o| {
                matches!(
                    o,
                    PartOutcome::Sent { .. }
                        | PartOutcome::Failed {
                            maybe_sent: true,
                            ..
                        }
                )
            })
        {
            // It reached the network: it counts against the modem's limits, and the number's
            // follow-ups go through this modem from now on.
            self.pool.sent(&modem_name, self.clock.now());
            self.pool.texted(&msg.to, &modem_name);
        }
        // What went out, and through which SIM: the history's record of the send.
        let sim = {
            let st = modem.watch().borrow().clone();
            serde_json::json!({
                "modem": modem_name,
                "imei": st.info.imei,
                "imsi": st.info.imsi,
                "sim": st.info.sim,
                "own_number": st.info.own_number,
                "operator": st.info.operator,
                "encoding": msg.encoding,
                "parts": msg.parts,
                "status_report": msg.status_report,
                "message_references": result.as_ref().ok().map(|o| o.iter().map(|p| match p {
                    PartOutcome::Sent { message_reference } => Some(*message_reference),
                    _ => None,
                }).collect::<Vec<_>>()),
            })
        };
        let now = self.clock.now();
        let outcome = match result {
            Err(e) => {
                // Nothing went out (modem down, driver stopped): back to the queue, no attempt used.
                tracing::info!(message_id = %msg.id, modem = %modem_name, error = %e, "modem unavailable; message requeued");
                let wait = chrono::Duration::from_std(self.cfg.modem_wait).unwrap_or_default();
                SendOutcome::ModemUnavailable {
                    error: e.to_string(),
                    retry_at: now + wait,
                }
            }
            Ok(outcomes) => SendOutcome::Tried {
                at: started,
                modem: modem_name,
                parts: outcomes
                    .iter()
                    .enumerate()
                    .map(|(i, o)| Part {
                        part: (i + 1) as u8,
                        message_reference: match o {
                            PartOutcome::Sent { message_reference } => Some(*message_reference),
                            _ => None,
                        },
                        status: match o {
                            PartOutcome::Sent { .. } => PartStatus::Sent,
                            PartOutcome::Failed {
                                maybe_sent: true, ..
                            } => PartStatus::Unknown,
                            PartOutcome::Failed { .. } => PartStatus::Failed,
                            PartOutcome::NotAttempted => PartStatus::NotSent,
                        },
                    })
                    .collect(),
                failure: outcomes.iter().find_map(|o| match o {
                    PartOutcome::Failed { error, maybe_sent } => Some(SendFailure {
                        error: error.to_string(),
                        maybe_sent: *maybe_sent,
                        permanent: error.retry() == Retry::Permanent,
                    }),
                    _ => None,
                }),
                facts: sim,
            },
        };
        self.finish(&msg.id, &outcome, now).await
    }

    /// Records what the modem did with a message in `sending`.
    async fn finish(
        &self,
        id: &str,
        outcome: &SendOutcome,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let backoff = |attempt: u32| -> chrono::Duration {
            let base = self.cfg.backoff.as_secs_f64() * 2f64.powi(attempt.saturating_sub(1) as i32);
            let capped = base.min(self.cfg.backoff_max.as_secs_f64());
            let jitter = capped * (0.75 + fastrand::f64() * 0.5);
            chrono::Duration::milliseconds((jitter * 1000.0) as i64)
        };
        let retry = RetryPolicy {
            max_attempts: self.cfg.max_attempts,
            backoff: &backoff,
        };
        self.store
            .update(id, |m| m.apply_send_outcome(outcome, retry, now).ok())?;
        self.store.durable().await
    }
}
/// Counts a send attempt: its result, its error code, and how long the modem took.
fn record_send(
    modem: &str,
    result: &Result<Vec<PartOutcome>, crate::modem::error::ModemError>,
    took: Duration,
) {
    let m = modem.to_string();
    let outcome = match result {
        Err(_) => "modem_unavailable",
        Ok(parts) => match parts.iter().find_map(|p| match p {
            PartOutcome::Failed { error, maybe_sent } => Some((error, *maybe_sent)),
            _ => None,
        }) {
            None => "sent",
            Some((e, maybe)) => {
                metrics::counter!(crate::metrics::SEND_ERRORS, "modem" => m.clone(), "code" => crate::metrics::error_code(e))
                    .increment(1);
                if maybe { "maybe_sent" } else { "failed" }
            }
        },
    };
    metrics::counter!(crate::metrics::SEND_ATTEMPTS, "modem" => m.clone(), "result" => outcome)
        .increment(1);
    if result.is_ok() {
        metrics::histogram!(crate::metrics::SEND_SECONDS, "modem" => m).record(took.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{lease, test_message};

    /// Messages left `sending` on a modem no gateway drives become `unknown` once they have
    /// waited; those on a modem a gateway holds stay theirs.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_send_left_on_a_modem_no_gateway_drives_becomes_unknown() {
        let dir = tempfile::tempdir().unwrap();
        let embedded = Store::open(dir.path(), 16).unwrap();
        let d = Dispatcher::new(embedded, DispatchConfig::default(), Clock::system());
        assert_eq!(d.recover_orphans(Utc::now()).unwrap(), 0);
        let Some(url) = crate::store::pg::testdb::database() else {
            return;
        };
        let store = Store::connect(&url, Vec::new())
            .unwrap()
            .with_lease_ttl(Duration::from_secs(3600));
        let left_on = |modem: &str| {
            let m = test_message("+12025550123");
            store.insert(std::slice::from_ref(&m), None).unwrap();
            store
                .update(&m.id, |m| m.claim(modem, None, Utc::now()).ok())
                .unwrap();
            m.id
        };
        let orphan = left_on("gone");
        let held = left_on("held");
        assert!(store.hold(&lease::modem_lease("held")).unwrap().is_mine());
        let d = Dispatcher::new(store.clone(), DispatchConfig::default(), Clock::system());
        let status = |id: &str| store.get(id).unwrap().unwrap().status;
        // Not yet: they have not waited long enough.
        assert_eq!(d.recover_orphans(Utc::now()).unwrap(), 0);
        assert_eq!(status(&orphan), Status::Sending);
        let later = Utc::now() + ORPHANED_AFTER + chrono::Duration::seconds(1);
        assert_eq!(d.recover_orphans(later).unwrap(), 1);
        assert_eq!(status(&orphan), Status::Unknown);
        assert_eq!(status(&held), Status::Sending);
        // The holder lets go: its message is an orphan too.
        store.let_go(&lease::modem_lease("held")).unwrap();
        assert_eq!(d.recover_orphans(later).unwrap(), 1);
        assert_eq!(status(&held), Status::Unknown);
    }
}
