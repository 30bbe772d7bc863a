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
//! `[[api_keys]]` is reloaded too (for `serve`): keys added work at once, keys removed or past
//! their `expires_at` stop working at once (and so do the admin page's sessions they started),
//! and a key's new scopes apply to its next request. Other sections take effect at the next
//! start.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use crate::api::admin::{ReloadError, ReloadRequest, ReloadSummary};
use crate::api::{ApiKey, KeyRing};
use crate::dispatch::{Clock, Dispatcher, ModemPolicy};
use crate::modem::{self, BalanceCheck, ModemConfig, ModemEvent, ModemHandle, ModemState};
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

    /// Starts a modem's driver and worker.
    pub fn start(&mut self, cfg: ModemSetup) {
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
            summary.removed.push(r.cfg.name().to_string());
            Fleet::stop(r).await;
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

    /// Stops every worker (each finishes the message in hand), then every driver.
    pub async fn stop_all(&mut self) {
        let mut running = std::mem::take(&mut self.running);
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
    }
}

/// Serves reload requests (and `SIGHUP`, when there is a `source`) until `shutdown`, then stops
/// every modem. A reload reads the modems from `source` and, when given, the API keys from
/// `keys`. Returns when the last driver has stopped (its event sender is dropped then).
pub async fn run(
    mut fleet: Fleet,
    source: Option<ModemSource>,
    keys: Option<KeyReload>,
    mut requests: mpsc::Receiver<ReloadRequest>,
    shutdown: CancellationToken,
    modems_now: Arc<std::sync::RwLock<Vec<ModemHandle>>>,
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
        *modems_now.write().unwrap_or_else(|e| e.into_inner()) = fleet.handles();
        crate::systemd::ready(&format!("reloaded, {} modem(s)", fleet.len()));
        tracing::info!(added = ?summary.added, removed = ?summary.removed, restarted = ?summary.restarted, updated = ?summary.updated, "modems reloaded");
        Ok(summary)
    };
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
