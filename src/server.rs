//! Running the gateway: store, modems, dispatcher and HTTP API, with an orderly shutdown.
//!
//! Start: open the store, turn messages left `sending` by an unclean stop into `unknown`, start
//! one driver per modem and one dispatcher worker per modem, then listen. Shutdown (SIGTERM,
//! Ctrl-C): stop accepting requests, let the dispatcher finish the message in hand (an
//! `AT+CMGS` under way completes), stop the drivers, make the store durable, return.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::api::{self, ApiConfig, ApiKey, AppState};
use crate::config::Config;
use crate::dispatch::{Clock, DispatchConfig, Dispatcher};
use crate::inbound::Inbox;
use crate::replies::{OptOutConfig, RepliesConfig};
use crate::store::Store;
use crate::webhook::{WebhookConfig, Webhooks};

mod events;

/// What is done with inbound messages.
#[derive(Debug, Clone)]
pub struct InboundPolicy {
    /// How long parts of a concatenated inbound message wait for the rest.
    pub reassembly_timeout: std::time::Duration,
    /// How answers are matched to messages.
    pub replies: RepliesConfig,
    /// Opt-out keywords and confirmations.
    pub optout: OptOutConfig,
}

impl Default for InboundPolicy {
    fn default() -> Self {
        InboundPolicy {
            reassembly_timeout: std::time::Duration::from_secs(3600),
            replies: RepliesConfig::default(),
            optout: OptOutConfig::default(),
        }
    }
}

/// Everything the gateway needs, from a config file or from `demo`.
#[derive(Clone)]
pub struct Gateway {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Store directory (the embedded store's; unused when `store_url` is given).
    pub store_path: PathBuf,
    /// The PostgreSQL database the store is kept in (`[storage] backend = "postgres"`);
    /// `None`: the embedded store in `store_path`.
    pub store_url: Option<String>,
    /// Store cache in MiB.
    pub cache_mb: u64,
    /// How long leases last unless renewed, with a store several gateways share
    /// ([`crate::store::lease`]).
    pub lease_ttl: std::time::Duration,
    /// API keys.
    pub keys: Vec<ApiKey>,
    /// Modems.
    pub modems: Vec<crate::fleet::ModemSetup>,
    /// API defaults.
    pub api: ApiConfig,
    /// Dispatch policy.
    pub dispatch: DispatchConfig,
    /// What is done with inbound messages.
    pub inbound: InboundPolicy,
    /// Where events are POSTed.
    pub webhooks: WebhookConfig,
    /// Reminder plans, send windows, caps and prechecks.
    pub reminders: crate::reminders::Policy,
    /// The clock.
    pub clock: Clock,
    /// Where `SIGHUP` and `POST /v1/admin/reload` read the modems from; `None`: no reload.
    pub modem_source: Option<crate::fleet::ModemSource>,
    /// Where a reload reads the API keys from; `None`: the keys stay as started.
    pub key_source: Option<crate::fleet::KeySource>,
    /// The Twilio-compatible door (off unless its account is configured).
    pub twilio: crate::twilio::TwilioConfig,
    /// Where webhooks, Twilio callbacks and prechecks may go.
    pub outbound: crate::outbound::OutboundPolicy,
    /// The simulated customers' phones (`smsgate demo` only; `None` everywhere else): the API
    /// then has `/v1/demo/phone` and the admin page its panel.
    pub phone: Option<Arc<crate::api::demo::DemoPhone>>,
    /// How long records are kept (`[retention]`): the sweep's policy.
    pub retention: crate::retention::Policy,
}

/// Why a configuration cannot make a gateway (what [`Config::load`] checks is caught there).
#[derive(Debug, thiserror::Error)]
pub enum GatewayConfigError {
    /// `[http] listen` is not an address.
    #[error("[http] listen: {0}")]
    Listen(#[source] std::net::AddrParseError),
    /// A `token_sha256` that is not 64 hex digits, or an `expires_at` that is not a date.
    #[error("api key {0}: bad token_sha256 or expires_at")]
    TokenHash(String),
    /// An API key with neither `token` nor `token_sha256`.
    #[error("api key {0} has no token")]
    NoToken(String),
    /// `[sms] national_languages`.
    #[error(transparent)]
    Languages(#[from] crate::config::LanguageError),
    /// The reminder policy.
    #[error(transparent)]
    Reminders(#[from] crate::reminders::config::PolicyError),
    /// `[outbound]`.
    #[error("[outbound] {0}")]
    Outbound(#[source] crate::outbound::OutboundConfigError),
}

/// The API keys of a checked configuration, with their scopes and ends.
pub fn api_keys_of(cfg: &Config) -> Result<Vec<ApiKey>, GatewayConfigError> {
    cfg.api_keys
        .iter()
        .map(|k| {
            if k.token.is_none() && k.token_sha256.is_none() {
                return Err(GatewayConfigError::NoToken(k.name.clone()));
            }
            k.api_key()
                .ok_or_else(|| GatewayConfigError::TokenHash(k.name.clone()))
        })
        .collect()
}

impl Gateway {
    /// From a checked configuration.
    pub fn from_config(cfg: &Config) -> Result<Gateway, GatewayConfigError> {
        let listen = cfg
            .http
            .listen
            .parse()
            .map_err(GatewayConfigError::Listen)?;
        let keys = api_keys_of(cfg)?;
        let langs = cfg.national_languages()?;
        let reminders = cfg.reminders_policy()?;
        let outbound = cfg
            .outbound
            .policy()
            .map_err(GatewayConfigError::Outbound)?;
        Ok(Gateway {
            listen,
            store_path: cfg.storage.path.clone().unwrap_or_default(),
            store_url: cfg.storage.postgres_url().map(str::to_owned),
            cache_mb: cfg.storage.cache_mb,
            lease_ttl: cfg.storage.lease_ttl,
            keys,
            modems: cfg.modem_setups(),
            api: ApiConfig {
                messages: crate::domain::MessageRules {
                    default_region: cfg.sms.default_region.clone(),
                    max_parts: cfg.sms.max_parts,
                    status_report: cfg.sms.status_report,
                    max_lateness: cfg.queue.max_lateness,
                    national_languages: langs.clone(),
                },
                body_limit: cfg.http.body_limit,
                dashboard: cfg.dashboard.clone(),
                own_address: None,
                outbound: outbound.clone(),
                connections: cfg.http.limits(),
                auth_failures: cfg.http.auth_failures(),
            },
            dispatch: DispatchConfig {
                max_attempts: cfg.queue.max_attempts,
                backoff: cfg.queue.retry_backoff,
                backoff_max: cfg.queue.retry_backoff_max,
                max_parts: cfg.sms.max_parts,
                validity: cfg.sms.validity,
                national_languages: langs,
                reply_window: cfg.replies.window,
                hold_ambiguous: cfg.replies.hold_ambiguous,
                ..DispatchConfig::default()
            },
            inbound: InboundPolicy {
                reassembly_timeout: cfg.inbound.reassembly_timeout,
                replies: cfg.replies.clone(),
                optout: cfg.optout.clone(),
            },
            webhooks: cfg.webhooks.clone(),
            reminders,
            clock: Clock::system(),
            modem_source: None,
            key_source: None,
            twilio: cfg.twilio.clone(),
            outbound,
            phone: None,
            retention: cfg.retention.policy(),
        })
    }

    /// Runs until `shutdown` fires. `bound` receives the listening address once requests are
    /// accepted (tests and `demo` listen on port 0 or print it).
    ///
    /// When the store stops taking writes (a full or read-only disk: sled then refuses every
    /// write until it is reopened), the API answers 503; once the directory takes writes again,
    /// the gateway stops in order (the message in hand finishes), reopens the store and starts
    /// again on the same socket, so clients see a short pause, not a refused connection.
    pub async fn run(
        self,
        shutdown: CancellationToken,
        bound: Option<oneshot::Sender<SocketAddr>>,
    ) -> anyhow::Result<()> {
        // The process's metrics recorder (GET /metrics).
        crate::metrics::handle();
        // Bind first: a busy port is reported before anything else starts.
        let listener = std::net::TcpListener::bind(self.listen)
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(|source| ListenError {
                addr: self.listen,
                source,
            })?;
        let mut bound = bound;
        let mut reopening = false;
        // The keys in force, kept across rounds: a key a reload revoked stays revoked when the
        // store is reopened.
        let keys = Arc::new(api::KeyRing::new(self.keys.clone()));
        loop {
            let l = TcpListener::from_std(listener.try_clone()?)?;
            match self
                .clone()
                .serve(l, keys.clone(), shutdown.clone(), &mut bound)
                .await
            {
                Ok(Round::Stopped) => return Ok(()),
                Ok(Round::ReopenStore) => reopening = true,
                Err(e) if shutdown.is_cancelled() || e.downcast_ref::<TaskFailed>().is_some() => {
                    return Err(e);
                }
                Err(e) => {
                    let cannot_open = e
                        .downcast_ref::<StoreOpenError>()
                        .is_some_and(|o| !o.is_locked());
                    // A database that does not answer at start is said at once: waiting
                    // for a directory to take writes means nothing there.
                    if self.store_url.is_some() || (!cannot_open && !reopening) {
                        return Err(e);
                    }
                    // The store cannot be opened (a read-only or full disk, permissions): the
                    // API answers 503 until its directory takes writes, then we try again.
                    let l = TcpListener::from_std(listener.try_clone()?)?;
                    let go_on = serve_without_store(
                        l,
                        self.api.connections,
                        &self.store_path,
                        &e.to_string(),
                        &shutdown,
                        bound.take(),
                    )
                    .await?;
                    if !go_on {
                        return Ok(());
                    }
                    reopening = true;
                }
            }
        }
    }

    /// One round: open the store, start everything, serve until `shutdown` or until the store
    /// must be reopened.
    async fn serve(
        self,
        listener: TcpListener,
        keys: Arc<api::KeyRing>,
        outer: CancellationToken,
        bound: &mut Option<oneshot::Sender<SocketAddr>>,
    ) -> anyhow::Result<Round> {
        let shutdown = outer.child_token();
        // The running modems: filled once the fleet starts, replaced by each reload. The
        // Twilio door's callbacks read a modem's own number from it.
        let modems: Arc<std::sync::RwLock<Vec<crate::modem::ModemHandle>>> = Arc::default();
        // The configured modems another gateway drives (a shared store), likewise.
        let standby: Arc<std::sync::RwLock<Vec<String>>> = Arc::default();
        // The store hears every change through the webhook outbox from the start.
        let mut hears = crate::webhook::WebhookListener::new(&self.webhooks);
        if let Some(account) = self.twilio.account() {
            let running = modems.clone();
            hears = hears.with_twilio(crate::webhook::TwilioHooks {
                account,
                numbers: Arc::new(move |name: &str| {
                    running
                        .read()
                        .unwrap_or_else(|e| e.into_inner())
                        .iter()
                        .find(|h| h.name() == name)
                        .and_then(|h| h.status().info.own_number)
                }),
            });
        }
        let store = match &self.store_url {
            Some(url) => Store::connect(url, vec![hears.notifier()]).map_err(|e| {
                anyhow::Error::new(StoreOpenError(e)).context(format!(
                    "cannot use the database {}",
                    crate::config::redacted_url(url)
                ))
            })?,
            None => Store::open_with(&self.store_path, self.cache_mb, vec![hears.notifier()])
                .map_err(|e| anyhow::Error::new(StoreOpenError(e)))?,
        }
        .with_lease_ttl(self.lease_ttl)
        .with_gateway_id(format!(
            "{}:{}",
            crate::store::lease::host_name(),
            listener.local_addr()?
        ));
        tracing::info!(
            backend = store.backend_name(),
            store = %store.location(),
            "store open"
        );
        let webhooks =
            Webhooks::with_listener(store.clone(), &self.webhooks, self.outbound.clone(), &hears)?;
        let webhook_cancel = CancellationToken::new();
        // A background task that panics stops the round (and the daemon, with an error, so that
        // its service manager restarts it) instead of leaving a gateway that accepts messages
        // but no longer sends events or hears its modems.
        let failed: Arc<std::sync::OnceLock<String>> = Arc::new(std::sync::OnceLock::new());
        let reminders = Arc::new(self.reminders);
        let prechecker = crate::reminders::precheck::Prechecker::new(
            reminders.precheck_timeout,
            webhooks.signer(),
            self.outbound.clone(),
        )?;
        let dispatcher = Dispatcher::new(
            store.clone(),
            DispatchConfig {
                reminders: reminders.clone(),
                ..self.dispatch.clone()
            },
            self.clock.clone(),
        )
        .with_precheck(prechecker);
        let unknown = dispatcher.recover().await?;
        if unknown > 0 {
            tracing::warn!(
                unknown,
                "see GET /v1/messages?status=unknown; requeue them if they must go out"
            );
        }

        let (events_tx, events_rx) = mpsc::channel(256);
        let inbox = Inbox::new(
            store.clone(),
            webhooks.clone(),
            dispatcher.clone(),
            self.inbound.replies.clone(),
            self.inbound.optout.clone(),
            self.api.messages.clone(),
            self.clock.clone(),
        );
        // The worker acts on TwiML answers through the inbox; deliveries written so far (by
        // the recovery above, or before a restart) wait in the outbox until it starts.
        let webhook_task = critical(
            "webhook worker",
            &shutdown,
            &failed,
            webhooks
                .clone()
                .answering(Arc::new(inbox.clone()))
                .run_worker(webhook_cancel.clone()),
        );
        // Replies stored but not acted on: one gateway of those sharing a store acts on them.
        let handled = if store.does_job("housekeeping") {
            inbox.handle_pending().await
        } else {
            0
        };
        if handled > 0 {
            tracing::info!(
                handled,
                "acted on inbound messages stored before an unclean stop"
            );
        }
        let events_task = critical(
            "modem event consumer",
            &shutdown,
            &failed,
            events::consume_events(
                events_rx,
                store.clone(),
                inbox.clone(),
                dispatcher.clone(),
                self.clock.clone(),
                self.inbound.reassembly_timeout,
                self.api.messages.default_region.clone(),
            ),
        );
        // The modems start only now: opt-outs stored before an unclean stop are acted on first.
        let mut fleet = crate::fleet::Fleet::new(
            dispatcher.clone(),
            events_tx,
            webhooks.clone(),
            self.clock.clone(),
        );
        for m in self.modems {
            fleet.start(m);
        }
        let watched = !fleet.is_empty();
        let modem_count = fleet.len();
        fleet.show(&modems, &standby);
        let (reload_tx, reload_rx) = mpsc::channel(4);
        let fleet_stop = CancellationToken::new();
        let fleet_task = critical(
            "modem fleet",
            &shutdown,
            &failed,
            crate::fleet::run(
                fleet,
                self.modem_source,
                self.key_source.map(|source| crate::fleet::KeyReload {
                    source,
                    ring: keys.clone(),
                }),
                reload_rx,
                fleet_stop.clone(),
                (modems.clone(), standby.clone()),
            ),
        );

        let retention_task = critical(
            "retention sweep",
            &shutdown,
            &failed,
            sweep_retention(
                store.clone(),
                crate::retention::Sweeper::new(self.retention.clone()),
                self.clock.clone(),
                shutdown.clone(),
            ),
        );

        let sessions = Arc::new(crate::dashboard::Sessions::new(&self.api.dashboard));
        let mut api_cfg = self.api;
        let api_cfg_failures = api_cfg.auth_failures;
        let limits = api_cfg.connections;
        api_cfg.own_address = Some(listener.local_addr()?);
        api_cfg.outbound = self.outbound.clone();
        let state = AppState {
            store: store.clone(),
            dispatcher: dispatcher.clone(),
            modems,
            standby,
            reload: reload_tx,
            keys,
            cfg: Arc::new(api_cfg),
            clock: self.clock,
            in_flight: Arc::new(Mutex::new(HashSet::new())),
            webhooks: webhooks.clone(),
            inbox,
            reminders,
            shutdown: shutdown.clone(),
            sessions,
            failures: Arc::new(crate::api::throttle::Failures::new(api_cfg_failures)),
            exports: Arc::new(tokio::sync::Semaphore::new(crate::api::MAX_EXPORTS)),
            phone: self.phone.clone(),
        };
        let addr = listener.local_addr()?;
        tracing::info!(%addr, "listening");
        if let Some(tx) = bound.take() {
            let _ = tx.send(addr);
        }
        crate::systemd::ready(&format!("listening on {addr}, {modem_count} modem(s)"));
        let watchdog_cancel = CancellationToken::new();
        let watchdog = crate::systemd::spawn_watchdog(
            dispatcher.heartbeat(),
            watched,
            watchdog_cancel.clone(),
        );
        let app = api::router(state);
        let reopen = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let guard = tokio::spawn(guard_store(store.clone(), shutdown.clone(), reopen.clone()));
        crate::connections::serve(listener, app, limits, shutdown.clone()).await?;
        let reopen = reopen.load(std::sync::atomic::Ordering::SeqCst) && !outer.is_cancelled();
        let _ = guard.await;

        if reopen {
            tracing::warn!("restarting to reopen the store: finishing the message in hand");
        } else {
            tracing::info!("shutting down: finishing the message in hand");
            crate::systemd::stopping();
        }
        watchdog_cancel.cancel();
        let _ = retention_task.await;
        if let Some(w) = watchdog {
            let _ = w.await;
        }
        // Every worker finishes the message in hand, then the drivers stop; their event
        // senders go with them, which ends the event consumer once it has stored everything.
        fleet_stop.cancel();
        let _ = fleet_task.await;
        // Prechecks still waiting for an answer are dropped: their steps stay due and are asked
        // again at the next start.
        dispatcher.stop_prechecks().await;
        let _ = events_task.await;
        webhook_cancel.cancel();
        let _ = webhook_task.await;
        if reopen {
            // The old database refuses writes for good; dropping the last handle releases it.
            let _ = store.durable().await;
            drop(store);
            return Ok(Round::ReopenStore);
        }
        store.durable().await?;
        if let Some(why) = failed.get() {
            return Err(anyhow::Error::new(TaskFailed(why.clone())));
        }
        tracing::info!("stopped cleanly");
        Ok(Round::Stopped)
    }
}

/// The retention sweep ([`crate::retention`]): a bounded pass once a minute, and when the
/// clock is moved by hand (tests), by the gateway's clock. Runs off the async threads: a pass
/// reads and writes sled.
async fn sweep_retention(
    store: Store,
    mut sweeper: crate::retention::Sweeper,
    clock: Clock,
    shutdown: CancellationToken,
) {
    if sweeper.is_idle() {
        return;
    }
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let moved = clock.moved();
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
            _ = moved => {}
        }
        // One gateway of those sharing a store sweeps at a time.
        if !store.does_job("retention") {
            continue;
        }
        let now = clock.now();
        let st = store.clone();
        let run = tokio::task::spawn_blocking(move || {
            let r = sweeper.pass(&st, now);
            (sweeper, r)
        })
        .await;
        let r;
        (sweeper, r) = match run {
            Ok(done) => done,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        };
        match r {
            Ok(p) if p.is_empty() => {}
            Ok(p) => {
                if p.messages_removed > 0 {
                    // Tombstones are the trace of a removal: on disk before it is said.
                    if let Err(e) = store.durable().await {
                        tracing::error!(error = %e, "cannot make the retention pass durable");
                    }
                }
                tracing::info!(
                    texts_redacted = p.texts_redacted,
                    messages_removed = p.messages_removed,
                    inbound_removed = p.inbound_removed,
                    idempotency_removed = p.idempotency_removed,
                    dead_webhooks_removed = p.dead_webhooks_removed,
                    unmatched_removed = p.unmatched_removed,
                    "retention pass"
                );
            }
            Err(e) => {
                tracing::error!(error = %e, "the retention pass failed; tried again at the next")
            }
        }
    }
}

/// A background task panicked: the daemon stops with an error (and is restarted).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct TaskFailed(String);

/// Runs `task`; if it panics, the panic is logged, `failed` says which task and why, and the
/// round is stopped (`shutdown`), so the daemon exits with an error rather than run without it.
pub(crate) fn critical<F>(
    name: &'static str,
    shutdown: &CancellationToken,
    failed: &Arc<std::sync::OnceLock<String>>,
    task: F,
) -> tokio::task::JoinHandle<()>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    use futures_util::FutureExt;
    let shutdown = shutdown.clone();
    let failed = failed.clone();
    tokio::spawn(async move {
        if let Err(panic) = std::panic::AssertUnwindSafe(task).catch_unwind().await {
            let what = crate::util::panic_text(panic.as_ref());
            tracing::error!(task = name, panic = %what, "an internal task failed; stopping so that the service manager restarts the gateway");
            let _ = failed.set(format!("the {name} failed ({what}); restart the gateway"));
            shutdown.cancel();
        }
    })
}

/// The listening socket could not be bound (the port is taken, or not ours to take).
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr}: {source}")]
struct ListenError {
    addr: SocketAddr,
    source: std::io::Error,
}

/// The store could not be opened.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
struct StoreOpenError(crate::store::StoreError);

impl StoreOpenError {
    /// Another process holds the store's lock (sled says so only in words).
    fn is_locked(&self) -> bool {
        matches!(&self.0, crate::store::StoreError::Io(why) if why.contains("lock"))
    }
}

/// While the store cannot be opened: `/healthz` answers, `/readyz` and everything else answer
/// 503 saying why, and the store's directory is tried every 5 s. Returns `true` once it takes
/// writes (try opening the store again), `false` on shutdown.
async fn serve_without_store(
    listener: TcpListener,
    limits: crate::connections::Limits,
    path: &std::path::Path,
    reason: &str,
    shutdown: &CancellationToken,
    bound: Option<oneshot::Sender<SocketAddr>>,
) -> anyhow::Result<bool> {
    use axum::response::IntoResponse;
    tracing::error!(error = %reason, path = %path.display(), "the store cannot be opened: the API answers 503 until its directory takes writes");
    crate::systemd::ready(&format!("store unavailable: {reason}"));
    let detail = format!(
        "the message store cannot be opened ({reason}): nothing can be accepted until it can; the gateway tries again every 5 s"
    );
    let ready = serde_json::json!({"status": "not_ready", "store": "failing", "modems_up": 0, "modems": [], "error": reason});
    let app = axum::Router::new()
        .route("/healthz", axum::routing::get(api::system::healthz))
        .route(
            "/readyz",
            axum::routing::get(move || {
                let ready = ready.clone();
                async move {
                    (
                        axum::http::StatusCode::SERVICE_UNAVAILABLE,
                        axum::Json(ready),
                    )
                }
            }),
        )
        .fallback(move || {
            let detail = detail.clone();
            async move { api::ApiError::unavailable(detail).into_response() }
        });
    if let Some(tx) = bound {
        let _ = tx.send(listener.local_addr()?);
    }
    let round = shutdown.child_token();
    let watch = {
        let round = round.clone();
        let path = path.to_path_buf();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = round.cancelled() => return false,
                    _ = tokio::time::sleep(std::time::Duration::from_secs(5)) => {}
                }
                if crate::store::directory_takes_writes(&path) {
                    tracing::warn!(path = %path.display(), "the store's directory takes writes again: opening the store");
                    round.cancel();
                    return true;
                }
            }
        })
    };
    crate::connections::serve(listener, app, limits, round.clone()).await?;
    round.cancel();
    Ok(watch.await.unwrap_or(false) && !shutdown.is_cancelled())
}

/// How a round of [`Gateway::run`] ended.
enum Round {
    /// Shut down as asked.
    Stopped,
    /// The store failed and its directory takes writes again: open it anew.
    ReopenStore,
}

/// Watches the store: when it cannot be written, says so once (the API answers 503 meanwhile)
/// and, as soon as its directory takes a write and an fsync again, asks for a restart of the
/// gateway with the store reopened.
async fn guard_store(
    store: Store,
    round: CancellationToken,
    reopen: Arc<std::sync::atomic::AtomicBool>,
) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(2));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut reported = false;
    loop {
        tokio::select! {
            _ = round.cancelled() => return,
            _ = tick.tick() => {}
        }
        let Some(error) = store.health() else {
            if reported {
                tracing::info!("the store takes writes again");
                reported = false;
            }
            continue;
        };
        if !reported {
            tracing::error!(%error, store = %store.location(), "the store cannot be written (disk full or read-only?): the API answers 503 until the disk takes writes again");
            reported = true;
        }
        // A database comes back by itself (the pool connects again); only the embedded
        // store is reopened.
        if store.sled().is_some() && store.directory_writable() {
            // sled keeps refusing after an I/O error (and a flush may hang on it): only a
            // reopened database writes again.
            tracing::warn!(path = %store.location(), "the disk takes writes again: reopening the store");
            reopen.store(true, std::sync::atomic::Ordering::SeqCst);
            round.cancel();
            return;
        }
    }
}

/// A token that fires on SIGTERM or Ctrl-C.
pub fn shutdown_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut term) => {
                    tokio::select! {
                        _ = ctrl_c => {}
                        _ = term.recv() => {}
                    }
                }
                Err(_) => {
                    let _ = ctrl_c.await;
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = ctrl_c.await;
        }
        tracing::info!("shutdown requested");
        t.cancel();
    });
    token
}

#[cfg(test)]
mod critical_tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_task_stops_the_round_and_says_why() {
        let shutdown = CancellationToken::new();
        let failed = Arc::new(std::sync::OnceLock::new());
        critical("quiet task", &shutdown, &failed, async {})
            .await
            .expect("joined");
        assert!(!shutdown.is_cancelled());
        assert!(failed.get().is_none());
        critical("test task", &shutdown, &failed, async {
            panic!("boom");
        })
        .await
        .expect("the panic is caught inside");
        assert!(shutdown.is_cancelled());
        let why = failed.get().expect("recorded");
        assert!(why.contains("test task") && why.contains("boom"), "{why}");
    }
}
