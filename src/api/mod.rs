//! The HTTP API (axum): `/v1` behind bearer tokens, health endpoints open.
//!
//! Every write is on disk (flushed and fsynced, group commit) before its 2xx answer.

pub mod admin;
pub mod audit;
pub mod backup;
pub mod dashboard;
pub mod demo;
pub mod erasure;
pub mod error;
pub mod events;
pub mod history;
mod idempotency;
pub mod inbound;
pub mod keys;
pub mod messages;
pub mod openapi;
pub mod optouts;
pub mod reminders;
pub mod reports;
pub mod system;
pub mod templates;
pub mod throttle;
pub mod twilio;
pub mod ussd;
pub mod webhooks;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};

use crate::dispatch::{Clock, Dispatcher};
use crate::modem::ModemHandle;
use crate::store::Store;
pub use error::{ApiError, FieldError};
pub use keys::{ApiKey, KeyRing, Scope, Scopes, authenticate, required_scope};

/// The API's settings.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// The rules new messages are made by.
    pub messages: crate::domain::MessageRules,
    /// Largest request body.
    pub body_limit: usize,
    /// The admin web page.
    pub dashboard: crate::dashboard::DashboardConfig,
    /// The address the API listens on, once bound: callback URLs may not point at it.
    pub own_address: Option<std::net::SocketAddr>,
    /// Where callback and precheck URLs may point (the same policy the requests obey).
    pub outbound: crate::outbound::OutboundPolicy,
    /// Timeouts and the connection limit of the HTTP server.
    pub connections: crate::connections::Limits,
    /// Wrong credentials allowed per client address.
    pub auth_failures: throttle::FailureLimit,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            messages: crate::domain::MessageRules::default(),
            body_limit: 4 * 1024 * 1024,
            dashboard: crate::dashboard::DashboardConfig::default(),
            own_address: None,
            outbound: crate::outbound::OutboundPolicy::default(),
            connections: crate::connections::Limits::default(),
            auth_failures: throttle::FailureLimit::default(),
        }
    }
}

/// Shared state of the handlers.
#[derive(Clone)]
pub struct AppState {
    /// The store.
    pub store: Store,
    /// Wakes the dispatcher after writes.
    pub dispatcher: Dispatcher,
    /// The running modems, in configuration order (a reload replaces them).
    pub modems: Arc<std::sync::RwLock<Vec<ModemHandle>>>,
    /// The configured modems this gateway stands by for: another gateway sharing the store
    /// drives each (it holds the modem's lease).
    pub standby: Arc<std::sync::RwLock<Vec<String>>>,
    /// Reload requests to the modem fleet (`POST /v1/admin/reload`).
    pub reload: tokio::sync::mpsc::Sender<admin::ReloadRequest>,
    /// The API keys in force (a reload replaces them).
    pub keys: Arc<KeyRing>,
    /// Defaults.
    pub cfg: Arc<ApiConfig>,
    /// The clock.
    pub clock: Clock,
    /// Idempotency keys being processed now (a concurrent retry gets 409, not a duplicate).
    pub in_flight: Arc<Mutex<HashSet<String>>>,
    /// Webhook deliveries: dead ones listed and retried.
    pub webhooks: crate::webhook::Webhooks,
    /// Opt-outs and what is done with inbound messages.
    pub inbox: crate::inbound::Inbox,
    /// Reminder plans, templates and send windows.
    pub reminders: Arc<crate::reminders::Policy>,
    /// Fires when the daemon stops: long-lived answers (`/v1/events`) end then.
    pub shutdown: tokio_util::sync::CancellationToken,
    /// Logged-in browsers of the admin page.
    pub sessions: Arc<crate::dashboard::Sessions>,
    /// Wrong credentials per client address (bearer, Twilio Basic, admin login).
    pub failures: Arc<throttle::Failures>,
    /// History exports running at once: each reads the store for as long as its client reads.
    pub exports: Arc<tokio::sync::Semaphore>,
    /// The simulated customers' phones, in `smsgate demo` only: `/v1/demo/phone` exists when
    /// this is set (and the admin page shows its panel).
    pub phone: Option<Arc<demo::DemoPhone>>,
}

/// History exports that may run at once.
pub const MAX_EXPORTS: usize = 2;

impl AppState {
    /// The running modems now.
    pub fn modems(&self) -> Vec<ModemHandle> {
        self.modems
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// The authenticated caller: the key's name. What it may do is the [`Scopes`] extension set
/// beside it.
#[derive(Debug, Clone)]
pub struct Caller(pub String);

/// JSON body extractor whose rejections are problem details (400, 413, 415, 422).
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    Json<T>: FromRequest<S, Rejection = axum::extract::rejection::JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let Json(v) = Json::<T>::from_request(req, state).await?;
        Ok(ApiJson(v))
    }
}

/// Checks a list's `limit` (1 to 1000, default 50) and `cursor` (an id this API returned).
pub(crate) fn page_limit(limit: Option<usize>, cursor: Option<&str>) -> Result<usize, ApiError> {
    let limit = limit.unwrap_or(50);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::field("limit", "must be 1 to 1000"));
    }
    if cursor.is_some_and(|c| crate::store::id_key(c).is_none()) {
        return Err(ApiError::field(
            "cursor",
            "is not a cursor returned by this API",
        ));
    }
    Ok(limit)
}

/// The cursor of the next page: the last item's key when the page is full, else none.
pub(crate) fn next_cursor<T, K>(page: &[T], limit: usize, key: impl Fn(&T) -> K) -> Option<K> {
    (page.len() == limit)
        .then(|| page.last().map(key))
        .flatten()
}

/// The key of a valid `Authorization: Bearer` header, if it works at `now`.
pub fn bearer_caller(
    keys: &[ApiKey],
    headers: &axum::http::HeaderMap,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<ApiKey> {
    let h = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let token = h
        .get(..7)?
        .eq_ignore_ascii_case("bearer ")
        .then(|| h[7..].trim())?;
    authenticate(keys, token, now)
}

/// Lets the request of the key `name` through when `scopes` hold what its route needs; else
/// 403 naming the scope.
async fn admit(name: &str, scopes: Scopes, mut req: Request, next: Next) -> Response {
    use axum::response::IntoResponse;
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    if let Some(needed) = required_scope(req.method(), &route)
        && let Err(e) = scopes.require(needed)
    {
        tracing::info!(key = %name, scope = %needed, method = %req.method(), route = %route, "refused: the key lacks the scope");
        return e.into_response();
    }
    req.extensions_mut().insert(scopes);
    next.run(req).await
}

/// Who is calling: a bearer token, or else the admin page's session cookie. A session
/// changes nothing without its CSRF token in `X-CSRF-Token`. An address that presented too
/// many wrong tokens is answered 429 for any token until its window ends (a right one too:
/// otherwise the answer would still tell a guess right from wrong). Then the key's scopes
/// must hold what the route needs (403 otherwise); a session has the scopes of its key as the
/// key is now, and ends when the key is revoked or expires.
async fn auth(
    State(state): State<AppState>,
    client: throttle::ClientAddr,
    mut req: Request,
    next: Next,
) -> Response {
    use axum::response::IntoResponse;
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if header.is_some()
        && let Some(wait) = state.failures.blocked(client)
    {
        return throttle::too_many(wait);
    }
    let token = match header {
        Some(h) if h.len() > 7 && h[..7].eq_ignore_ascii_case("bearer ") => h[7..].trim(),
        Some(_) => {
            return ApiError::unauthorized("use `Authorization: Bearer <token>`").into_response();
        }
        None => {
            if let Some(s) = state.sessions.from_headers(req.headers()) {
                let safe = matches!(
                    *req.method(),
                    axum::http::Method::GET | axum::http::Method::HEAD
                );
                let presented = req
                    .headers()
                    .get(crate::dashboard::CSRF_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                if !safe && !crate::util::same(presented, &s.csrf) {
                    return ApiError::csrf().into_response();
                }
                let Some(key) = state.keys.still(&s.caller, &s.key, state.clock.now()) else {
                    return ApiError::unauthorized(
                        "the key this session logged in with no longer works; log in again",
                    )
                    .into_response();
                };
                req.extensions_mut().insert(Caller(s.caller));
                return admit(&key.name, key.scopes, req, next).await;
            }
            return ApiError::unauthorized("missing `Authorization: Bearer <token>` header")
                .into_response();
        }
    };
    match authenticate(&state.keys.current(), token, state.clock.now()) {
        Some(key) => {
            req.extensions_mut().insert(Caller(key.name.clone()));
            admit(&key.name, key.scopes, req, next).await
        }
        None => {
            state.failures.record(client);
            ApiError::unauthorized("unknown token").into_response()
        }
    }
}

/// The router.
pub fn router(state: AppState) -> Router {
    let body_limit = state.cfg.body_limit;
    let v1 = Router::new()
        .route("/messages", post(messages::create).get(messages::list))
        .route("/messages/batch", post(messages::create_batch))
        .route("/messages/{id}", get(messages::get_one))
        .route("/messages/{id}/cancel", post(messages::cancel))
        .route("/messages/{id}/requeue", post(messages::requeue))
        .route("/messages/{id}/history", get(history::one))
        .route("/history/export", get(history::export))
        .route("/opt-outs", get(optouts::list).post(optouts::add))
        .route(
            "/opt-outs/{number}",
            get(optouts::get_one).delete(optouts::remove),
        )
        .route("/reminders", post(reminders::create).get(reminders::list))
        .route(
            "/reminders/{id}",
            get(reminders::get_one)
                .patch(reminders::patch)
                .delete(reminders::cancel),
        )
        .route("/reminders/{id}/paid", post(reminders::paid))
        .route(
            "/reminders/{id}/payment-failed",
            post(reminders::payment_failed),
        )
        .route("/templates", get(templates::list))
        .route(
            "/templates/{name}",
            get(templates::get_one)
                .put(templates::put)
                .delete(templates::remove),
        )
        .route("/inbound", get(inbound::list))
        .route("/inbound/{id}", get(inbound::get_one))
        .route("/reports/unmatched", get(reports::unmatched))
        .route("/modems", get(system::modems))
        .route("/modems/{name}/ussd", post(ussd::ussd))
        .route("/stats", get(system::stats))
        .route("/events", get(events::stream))
        .route("/webhooks/failed", get(webhooks::failed))
        .route("/webhooks/{id}/retry", post(webhooks::retry))
        .route("/admin/reload", post(admin::reload))
        .route("/admin/backup", post(backup::backup))
        .route("/erasure", post(erasure::erase))
        .route("/audit", get(audit::list))
        .route("/dashboard", get(dashboard::summary))
        .route("/dashboard/search", get(dashboard::search));
    // The demo's simulated phones: routes that only `smsgate demo` has.
    let v1 = if state.phone.is_some() {
        v1.route("/demo/phone", get(demo::phone))
            .route("/demo/phone/reply", post(demo::reply))
    } else {
        v1
    };
    let v1 = v1.route_layer(middleware::from_fn_with_state(state.clone(), auth));
    let docs = Router::new()
        .route("/openapi.json", get(openapi::serve))
        .route("/metrics", get(system::metrics))
        .route_layer(middleware::from_fn_with_state(state.clone(), auth));
    let twilio = Router::new()
        .route(
            "/2010-04-01/Accounts/{account}/Messages.json",
            post(twilio::create).get(twilio::list),
        )
        .route(
            "/2010-04-01/Accounts/{account}/Messages/{sid}",
            get(twilio::fetch).post(twilio::update),
        )
        .route(
            "/2010-04-01/{*rest}",
            get(twilio::not_found).post(twilio::not_found),
        )
        .route_layer(middleware::from_fn_with_state(state.clone(), twilio::auth));
    Router::new()
        .nest("/v1", v1)
        .merge(twilio)
        .merge(docs)
        .route("/", get(crate::dashboard::index))
        .route(
            "/login",
            get(crate::dashboard::login_form).post(crate::dashboard::login),
        )
        .route("/logout", post(crate::dashboard::logout))
        .route("/assets/{name}", get(crate::dashboard::asset))
        .route("/healthz", get(system::healthz))
        .route("/readyz", get(system::readyz))
        .fallback(system::not_found)
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}
