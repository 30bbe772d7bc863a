//! The running modems: a driver and a dispatcher worker for each, started, stopped and
//! reconfigured while the gateway runs (`SIGHUP`, `POST /v1/admin/reload`).
//!
//! A reload compares the modems of the configuration with the running ones, by name:
//!
//! - a new name starts a driver and a worker;
//! - a name that is gone stops its worker first, which finishes the message in hand (nothing is
//!   cut off mid-send), then its driver; its queued work goes to the others;
//! - a modem whose routing or limits changed keeps running and takes the new ones at once;
//! - a modem whose port, PIN, timeouts or other driver settings changed is stopped that way and
//!   started again.
//!
//! With a store several gateways share (PostgreSQL), a modem is driven by one gateway at a
//! time: the holder of its lease (`modem:<name>`, see [`crate::store::lease`]). A configured
//! modem whose lease another gateway holds stands by, its port closed; every third of the
//! lease's time the holder renews it and the others ask again, so when the holder stops (or
//! loses the database for half the lease's time, and stops the modem itself) another gateway
//! configured with the same modem takes it over once the lease has expired. Before its worker
//! starts, the messages the last holder left `sending` on it become `unknown`. A gateway that
//! stops cleanly gives its leases up: the others take over at once. The same name means the
//! same modem on every gateway of one database.
//!
//! `[[api_keys]]` is reloaded too (for `serve`): keys added work at once, keys removed or past
//! their `expires_at` stop working at once (and so do the admin page's sessions they started),
//! and a key's new scopes apply to its next request. Other sections take effect at the next
//! start.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use crate::api::admin::{ReloadError, ReloadRequest, ReloadSummary};
use crate::api::{ApiKey, KeyRing};
use crate::dispatch::{Clock, Dispatcher, ModemPolicy};
use crate::modem::{self, BalanceCheck, ModemConfig, ModemEvent, ModemHandle, ModemState};
use crate::store::lease::{self, Hold};
use crate::webhook::{EventType, Webhooks};

/// Where a reload reads the modems from (the configuration file, for `serve`).
pub type ModemSource = Arc<dyn Fn() -> Result<Vec<ModemSetup>, String> + Send + Sync>;

/// Where a reload reads the API keys from (the configuration file, for `serve`).
pub type KeySource = Arc<dyn Fn() -> Result<Vec<ApiKey>, String> + Send + Sync>;

/// The API keys a reload reads again, and the ring the API reads them from.
pub struct KeyReload {
    /// Where the keys are read from.
    pub source: KeySource,
    /// The keys in force.
    pub ring: Arc<KeyRing>,
}

/// A modem as the gateway runs it: its driver's settings, and its routing and limits in the
/// pool of modems (the dispatcher's business, not the driver's).
#[derive(Debug, Clone, PartialEq)]
pub struct ModemSetup {
    /// The driver's settings.
    pub driver: ModemConfig,
    /// Routing and limits.
    pub policy: ModemPolicy,
}

impl From<ModemConfig> for ModemSetup {
    /// A modem with the default policy: every destination, no limits.
    fn from(driver: ModemConfig) -> Self {
        ModemSetup {
            driver,
            policy: ModemPolicy::default(),
        }
    }
}

impl ModemSetup {
    /// The modem's name.
    pub fn name(&self) -> &str {
        &self.driver.name
    }
}

struct Running {
    cfg: ModemSetup,
    handle: ModemHandle,
    driver_cancel: CancellationToken,
    driver: JoinHandle<()>,
    worker_cancel: CancellationToken,
    worker: JoinHandle<()>,
    balance: Option<(CancellationToken, JoinHandle<()>)>,
}

/// The modems the gateway drives now.
pub struct Fleet {
    running: Vec<Running>,
    /// Configured modems another gateway drives (their leases are its).
    standby: Vec<ModemSetup>,
    /// When each running modem's lease was last renewed.
    renewed: HashMap<String, Instant>,
    events: mpsc::Sender<ModemEvent>,
    dispatcher: Dispatcher,
    webhooks: Webhooks,
    clock: Clock,
}

/// Whether two configurations differ only in routing, limits and the balance check (which
/// need no restart of the driver).
fn same_driver(a: &ModemSetup, b: &ModemSetup) -> bool {
    let mut a = a.driver.clone();
    a.balance = b.driver.balance.clone();
    a == b.driver
}

/// How long the operator may take to answer a balance check.
const BALANCE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Checks a modem's prepaid balance every `interval` while it is up: the answer is shown in
/// `GET /v1/modems` and `smsgate_modem_balance`; falling below `low` sends one
/// `modem.balance_low` event (again only after it was back above).
async fn check_balance(
    handle: ModemHandle,
    check: BalanceCheck,
    dispatcher: Dispatcher,
    webhooks: Webhooks,
    clock: Clock,
    cancel: CancellationToken,
) {
    let name = handle.name().to_string();
    let pool = dispatcher.pool();
    let mut status = handle.watch();
    let mut was_low = pool.balance(&name).is_some_and(|b| b.low);
    let first = check.interval.min(std::time::Duration::from_secs(2));
    let mut wait = first;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        if status.borrow_and_update().state != ModemState::Up {
            tokio::select! {
                _ = cancel.cancelled() => return,
                r = status.wait_for(|s| s.state == ModemState::Up) => if r.is_err() { return },
            }
            wait = first;
            continue;
        }
        wait = check.interval;
        let now = clock.now();
        let mut view = pool
            .balance(&name)
            .unwrap_or(crate::dispatch::pool::BalanceView {
                checked_at: now,
                text: None,
                amount: None,
                low: false,
                error: None,
            });
        view.checked_at = now;
        match handle.ussd(&check.code, BALANCE_TIMEOUT).await {
            Ok(a) => {
                view.amount = a.text.as_deref().and_then(modem::ussd::amount);
                view.text = a.text;
                view.error = None;
                view.low = matches!((view.amount, check.low), (Some(x), Some(l)) if x < l);
                if let Some(x) = view.amount {
                    metrics::gauge!(crate::metrics::MODEM_BALANCE, "modem" => name.clone()).set(x);
                }
            }
            Err(e) => {
                tracing::warn!(modem = %name, error = %e, code = %check.code, "balance check failed");
                view.error = Some(e.to_string());
            }
        }
        pool.set_balance(&name, view.clone());
        if view.error.is_some() {
            continue;
        }
        if view.low && !was_low {
            tracing::warn!(modem = %name, amount = ?view.amount, threshold = ?check.low, answer = ?view.text, "prepaid balance low");
            let sent = webhooks
                .enqueue(
                    EventType::ModemBalanceLow,
                    serde_json::json!({
                        "modem": name,
                        "amount": view.amount,
                        "threshold": check.low,
                        "text": view.text,
                        "at": now,
                    }),
                    None,
                    "",
                )
                .await;
            if let Err(e) = sent {
                tracing::error!(modem = %name, error = %e, "cannot queue the modem.balance_low event");
            }
        }
        was_low = view.low;
    }
}

impl Fleet {
    /// No modems yet; drivers send their events to `events`.
    pub fn new(
        dispatcher: Dispatcher,
        events: mpsc::Sender<ModemEvent>,
        webhooks: Webhooks,
        clock: Clock,
    ) -> Fleet {
        Fleet {
            running: Vec::new(),
            standby: Vec::new(),
            renewed: HashMap::new(),
            events,
            dispatcher,
            webhooks,
            clock,
        }
    }

    fn start_balance(
        &self,
        handle: &ModemHandle,
        check: &Option<BalanceCheck>,
    ) -> Option<(CancellationToken, JoinHandle<()>)> {
        let check = check.clone()?;
        let cancel = CancellationToken::new();
        let task = tokio::spawn(check_balance(
            handle.clone(),
            check,
            self.dispatcher.clone(),
            self.webhooks.clone(),
            self.clock.clone(),
            cancel.clone(),
        ));
        Some((cancel, task))
    }

    /// Starts a modem's driver and worker, once this gateway holds its lease (at once with a
    /// store of its own); else it stands by.
    pub fn start(&mut self, cfg: ModemSetup) {
        let store = self.dispatcher.store();
        if !store.is_shared() {
            self.start_now(cfg);
            return;
        }
        let name = cfg.name().to_string();
        match store.hold(&lease::modem_lease(&name)) {
            Ok(Hold::Mine { from, .. }) => {
                if let Some(from) = from {
                    tracing::warn!(modem = %name, from = %from, "taking the modem over: its gateway stopped renewing its lease");
                }
                // Not running here, and nobody else's: whatever is left `sending` on it was
                // left by a worker that is gone, another gateway's or this one's (stopped when
                // the lease could not be renewed, its outcome perhaps never written). Even a
                // lease this gateway kept (`fresh` false) may have such messages.
                if let Err(e) = self.dispatcher.recover_modem(&name) {
                    // Its worker waits: a message still `sending` on it must not be left so.
                    tracing::error!(modem = %name, error = %e, "cannot look for messages left sending on the modem; standing by");
                    let _ = store.let_go(&lease::modem_lease(&name));
                    self.standby.push(cfg);
                    return;
                }
                self.renewed.insert(name, Instant::now());
                self.start_now(cfg);
            }
            Ok(Hold::Theirs { holder, until }) => {
                tracing::info!(modem = %name, gateway = %holder, until = %until.to_rfc3339(), "another gateway drives the modem: standing by");
                self.standby.push(cfg);
            }
            Err(e) => {
                tracing::warn!(modem = %name, error = %e, "cannot ask for the modem's lease: standing by");
                self.standby.push(cfg);
            }
        }
    }

    fn start_now(&mut self, cfg: ModemSetup) {
        let driver_cancel = CancellationToken::new();
        let (handle, driver) = modem::spawn(
            cfg.driver.clone(),
            self.events.clone(),
            driver_cancel.clone(),
        );
        let worker_cancel = CancellationToken::new();
        let worker =
            self.dispatcher
                .spawn_worker(handle.clone(), cfg.policy.clone(), worker_cancel.clone());
        let balance = self.start_balance(&handle, &cfg.driver.balance);
        self.running.push(Running {
            cfg,
            handle,
            driver_cancel,
            driver,
            worker_cancel,
            worker,
            balance,
        });
    }

    /// Renews the leases of the running modems and asks again for those standing by (with a
    /// shared store; every third of the lease's time). A modem whose lease another gateway
    /// now holds, or that could not be renewed for half the lease's time (the database is
    /// away: another gateway may take it over when it expires), is stopped and stands by.
    /// Returns whether the running modems changed.
    pub async fn renew(&mut self) -> bool {
        let store = self.dispatcher.store().clone();
        if !store.is_shared() {
            return false;
        }
        let mut changed = false;
        let mut i = 0;
        while i < self.running.len() {
            let name = self.running[i].cfg.name().to_string();
            let lost = match store.hold(&lease::modem_lease(&name)) {
                Ok(Hold::Mine { .. }) => {
                    self.renewed.insert(name.clone(), Instant::now());
                    None
                }
                Ok(Hold::Theirs { holder, .. }) => {
                    Some(format!("gateway {holder} holds its lease now"))
                }
                Err(e) => {
                    let since = self
                        .renewed
                        .get(&name)
                        .map_or(Duration::MAX, Instant::elapsed);
                    (since > store.lease_ttl() / 2).then(|| {
                        format!(
                            "its lease could not be renewed for {}s: {e}",
                            since.as_secs()
                        )
                    })
                }
            };
            match lost {
                None => i += 1,
                Some(why) => {
                    tracing::warn!(modem = %name, "stopping the modem: {why}");
                    let r = self.running.remove(i);
                    self.renewed.remove(&name);
                    let cfg = r.cfg.clone();
                    Fleet::stop(r).await;
                    self.standby.push(cfg);
                    changed = true;
                }
            }
        }
        for cfg in std::mem::take(&mut self.standby) {
            let before = self.running.len();
            self.start(cfg);
            changed |= self.running.len() != before;
        }
        if changed {
            self.dispatcher.notify();
        }
        changed
    }

    /// The configured modems another gateway drives.
    pub fn standing_by(&self) -> Vec<String> {
        self.standby.iter().map(|c| c.name().to_string()).collect()
    }

    /// Shows the running modems and those stood by for to the API.
    pub fn show(&self, running: &Shown<ModemHandle>, standby: &Shown<String>) {
        *running.write().unwrap_or_else(|e| e.into_inner()) = self.handles();
        *standby.write().unwrap_or_else(|e| e.into_inner()) = self.standing_by();
    }

    async fn stop(r: Running) {
        if let Some((c, t)) = r.balance {
            c.cancel();
            let _ = t.await;
        }
        // The worker first: it finishes the message in hand, then leaves the pool.
        r.worker_cancel.cancel();
        let _ = r.worker.await;
        r.driver_cancel.cancel();
        let _ = r.driver.await;
    }

    /// The running modems' handles, in configuration order.
    pub fn handles(&self) -> Vec<ModemHandle> {
        self.running.iter().map(|r| r.handle.clone()).collect()
    }

    /// How many modems run.
    pub fn len(&self) -> usize {
        self.running.len()
    }

    /// Whether no modem runs.
    pub fn is_empty(&self) -> bool {
        self.running.is_empty()
    }

    /// Brings the running modems to `wanted` (see the module's description).
    pub async fn apply(&mut self, wanted: Vec<ModemSetup>) -> ReloadSummary {
        let mut summary = ReloadSummary::default();
        // Modems standing by are reconfigured in place (or dropped): their leases decide when
        // they start.
        let standby = std::mem::take(&mut self.standby);
        let wanted: Vec<ModemSetup> = wanted
            .into_iter()
            .filter(
                |cfg| match standby.iter().find(|s| s.name() == cfg.name()) {
                    Some(s) => {
                        if s == cfg {
                            summary.unchanged.push(cfg.name().to_string());
                        } else {
                            summary.updated.push(cfg.name().to_string());
                        }
                        self.standby.push(cfg.clone());
                        false
                    }
                    None => true,
                },
            )
            .collect();
        for s in &standby {
            if !self.standby.iter().any(|k| k.name() == s.name()) {
                summary.removed.push(s.name().to_string());
            }
        }
        let mut old: Vec<Running> = std::mem::take(&mut self.running);
        let mut keep: Vec<Option<Running>> = Vec::with_capacity(wanted.len());
        let mut starts = Vec::new();
        for cfg in &wanted {
            match old.iter().position(|r| r.cfg.name() == cfg.name()) {
                Some(i) if old[i].cfg == *cfg => {
                    summary.unchanged.push(cfg.name().to_string());
                    keep.push(Some(old.remove(i)));
                }
                Some(i) if same_driver(&old[i].cfg, cfg) => {
                    let mut r = old.remove(i);
                    self.dispatcher
                        .pool()
                        .set_policy(cfg.name(), cfg.policy.clone());
                    r.cfg = cfg.clone();
                    summary.updated.push(cfg.name().to_string());
                    keep.push(Some(r));
                }
                Some(i) => {
                    let r = old.remove(i);
                    Fleet::stop(r).await;
                    summary.restarted.push(cfg.name().to_string());
                    keep.push(None);
                    starts.push(cfg.clone());
                }
                None => {
                    summary.added.push(cfg.name().to_string());
                    keep.push(None);
                    starts.push(cfg.clone());
                }
            }
        }
        // Whatever is left is no longer configured.
        for r in old {
            let name = r.cfg.name().to_string();
            summary.removed.push(name.clone());
            Fleet::stop(r).await;
            self.let_go(&name);
        }
        // Back in configuration order.
        let mut starts = starts.into_iter();
        for (slot, cfg) in keep.into_iter().zip(&wanted) {
            match slot {
                Some(r) => self.running.push(r),
                None => {
                    if let Some(c) = starts.next() {
                        debug_assert_eq!(c.name(), cfg.name());
                        self.start(c);
                    }
                }
            }
        }
        self.dispatcher.notify();
        summary
    }

    /// Gives a stopped modem's lease up: another gateway may take it at once.
    fn let_go(&mut self, name: &str) {
        self.renewed.remove(name);
        if let Err(e) = self.dispatcher.store().let_go(&lease::modem_lease(name)) {
            tracing::warn!(modem = %name, error = %e, "cannot give the modem's lease up; it expires by itself");
        }
    }

    /// Stops every worker (each finishes the message in hand), then every driver, and gives
    /// their leases up.
    pub async fn stop_all(&mut self) {
        self.standby.clear();
        let mut running = std::mem::take(&mut self.running);
        let names: Vec<String> = running.iter().map(|r| r.cfg.name().to_string()).collect();
        for r in &mut running {
            r.worker_cancel.cancel();
            if let Some((c, t)) = r.balance.take() {
                c.cancel();
                let _ = t.await;
            }
        }
        let mut drivers = Vec::new();
        for r in running {
            let _ = r.worker.await;
            drivers.push((r.driver_cancel, r.driver));
        }
        for (c, _) in &drivers {
            c.cancel();
        }
        for (_, d) in drivers {
            let _ = d.await;
        }
        for name in names {
            self.let_go(&name);
        }
    }
}

/// A list the API shows, replaced whenever the fleet changes.
pub type Shown<T> = Arc<std::sync::RwLock<Vec<T>>>;

/// Serves reload requests (and `SIGHUP`, when there is a `source`) until `shutdown`, then stops
/// every modem. A reload reads the modems from `source` and, when given, the API keys from
/// `keys`. Returns when the last driver has stopped (its event sender is dropped then).
pub async fn run(
    mut fleet: Fleet,
    source: Option<ModemSource>,
    keys: Option<KeyReload>,
    mut requests: mpsc::Receiver<ReloadRequest>,
    shutdown: CancellationToken,
    (modems_now, standby_now): (Shown<ModemHandle>, Shown<String>),
) {
    let mut hangup = source.as_ref().and_then(|_| {
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .map_err(|e| tracing::warn!(error = %e, "cannot listen for SIGHUP; use POST /v1/admin/reload"))
            .ok()
    });
    let reload = async |fleet: &mut Fleet| -> Result<ReloadSummary, ReloadError> {
        let Some(src) = &source else {
            return Err(ReloadError::NoConfigFile);
        };
        // Both read before either applies: an invalid file changes nothing.
        let new_keys = match &keys {
            Some(k) => Some((k.source)().map_err(ReloadError::Invalid)?),
            None => None,
        };
        let wanted = src().map_err(ReloadError::Invalid)?;
        crate::systemd::reloading();
        let mut summary = fleet.apply(wanted).await;
        if let (Some(k), Some(new)) = (&keys, new_keys) {
            let changes = k.ring.replace(new);
            tracing::info!(added = ?changes.added, removed = ?changes.removed, updated = ?changes.updated, "API keys reloaded");
            summary.api_keys = Some(changes);
        }
        fleet.show(&modems_now, &standby_now);
        crate::systemd::ready(&format!("reloaded, {} modem(s)", fleet.len()));
        tracing::info!(added = ?summary.added, removed = ?summary.removed, restarted = ?summary.restarted, updated = ?summary.updated, "modems reloaded");
        Ok(summary)
    };
    // With a shared store, leases are renewed (and asked for) every third of their time.
    let shared = fleet.dispatcher.store().is_shared();
    let mut renew = tokio::time::interval(fleet.dispatcher.store().lease_ttl() / 3);
    renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    renew.reset();
    loop {
        let hup = async {
            match hangup.as_mut() {
                Some(h) => h.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(reply) = requests.recv() => {
                let r = reload(&mut fleet).await;
                if let Err(e) = &r {
                    tracing::error!(error = %e, "reload refused; the running modems are unchanged");
                }
                let _ = reply.send(r);
            }
            _ = renew.tick(), if shared => {
                if fleet.renew().await {
                    fleet.show(&modems_now, &standby_now);
                }
            }
            Some(()) = hup => {
                tracing::info!("SIGHUP: reloading the modems");
                if let Err(e) = reload(&mut fleet).await {
                    tracing::error!(error = %e, "reload refused; the running modems are unchanged");
                }
            }
        }
    }
    fleet.stop_all().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::DispatchConfig;
    use crate::store::{Status, Store, test_message};

    /// A gateway that stopped its own modem (its lease could not be renewed while the database
    /// was away) and starts it again under the lease it kept: the message its worker left
    /// `sending` (the outcome never written) becomes `unknown`, like after another's crash.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn starting_a_modem_under_a_lease_kept_turns_what_was_left_sending_unknown() {
        let Some(url) = crate::store::pg::testdb::database() else {
            return;
        };
        let store = Store::connect(&url, Vec::new()).expect("database opens");
        // The lease is this gateway's already: asking again is not a fresh hold.
        assert_eq!(
            store.hold(&lease::modem_lease("m0")).unwrap(),
            Hold::Mine {
                fresh: true,
                from: None
            }
        );
        let m = test_message("+12025550123");
        store.insert(std::slice::from_ref(&m), None).unwrap();
        store
            .update(&m.id, |m| m.claim("m0", None, chrono::Utc::now()).ok())
            .unwrap();
        assert_eq!(store.get(&m.id).unwrap().unwrap().status, Status::Sending);

        let clock = Clock::system();
        let dispatcher = Dispatcher::new(store.clone(), DispatchConfig::default(), clock.clone());
        let webhooks = Webhooks::new(
            store.clone(),
            &crate::webhook::WebhookConfig::default(),
            crate::outbound::OutboundPolicy::allowing_loopback(),
        )
        .unwrap();
        let (events, _rx) = mpsc::channel(16);
        let mut fleet = Fleet::new(dispatcher, events, webhooks, clock);
        fleet.start(ModemConfig::new("m0", "/nonexistent/m0").into());
        assert_eq!(
            fleet.len(),
            1,
            "the modem runs: its lease is this gateway's"
        );
        let after = store.get(&m.id).unwrap().unwrap();
        assert_eq!(after.status, Status::Unknown);
        assert_eq!(
            after.status_reason.as_deref(),
            Some("daemon_stopped_while_sending")
        );
        fleet.stop_all().await;
    }
}
