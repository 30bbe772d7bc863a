//! `/v1/modems`, `/v1/stats`, `/healthz`, `/readyz`.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{ApiError, AppState};
use crate::modem::info::Storage;
use crate::modem::{ModemState, ModemStatus, Signal};

/// A modem as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ModemView {
    /// Configured name.
    pub name: String,
    /// Configured port.
    pub port: String,
    /// `connecting`, `initialising`, `up`, `recovering`, `down` or `stopped`.
    pub state: String,
    /// The last error, in words.
    pub last_error: Option<String>,
    /// `AT+CGMI`.
    pub manufacturer: Option<String>,
    /// `AT+CGMM`.
    pub model: Option<String>,
    /// `AT+CGMR`.
    pub revision: Option<String>,
    /// `AT+CGSN`.
    pub imei: Option<String>,
    /// `AT+CNUM`.
    pub own_number: Option<String>,
    /// SIM state.
    pub sim: Option<String>,
    /// Operator name.
    pub operator: Option<String>,
    /// Registration, in words.
    pub registration: Option<String>,
    /// Signal strength.
    pub signal: Option<Signal>,
    /// SMS service centre.
    pub smsc: Option<String>,
    /// Message store use.
    pub storage: Option<Storage>,
    /// Parts sent since start.
    pub messages_sent: u64,
    /// Parts that failed since start.
    pub parts_failed: u64,
    /// Inbound messages and reports read since start.
    pub received: u64,
    /// SIM slots holding a phone's own texts (SMS-SUBMITs, SMS-COMMANDs a phone left in the
    /// inbox), left alone unless `[inbound] purge_foreign = true`: room customers' replies lack.
    pub foreign_messages: u32,
    /// Its place in the pool: limits, routing, what it sent, whether it takes work now.
    pub pool: crate::dispatch::pool::PoolView,
}

/// `GET /v1/modems` answer.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ModemList {
    /// Every configured modem.
    pub modems: Vec<ModemView>,
}

/// `GET /v1/stats` answer.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Stats {
    /// Messages per status.
    pub counts: BTreeMap<String, u64>,
    /// Messages waiting (queued or scheduled).
    pub queue_depth: usize,
    /// The earliest due time among waiting messages.
    pub oldest_due: Option<DateTime<Utc>>,
    /// How long ago that was (negative values are shown as 0).
    pub oldest_due_age_seconds: Option<i64>,
    /// Modems up.
    pub modems_up: usize,
    /// Modems configured.
    pub modems: usize,
    /// Status reports that matched no sent message (`GET /v1/reports/unmatched`).
    pub unmatched_reports: usize,
    /// Webhook deliveries not yet acknowledged by their receiver (waiting or being retried).
    pub webhooks_pending: usize,
    /// Webhook deliveries given up (`GET /v1/webhooks/failed`).
    pub webhooks_dead: usize,
}

/// `/healthz` answer.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: String,
}

/// One modem in `/readyz`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReadyModem {
    /// Name.
    pub name: String,
    /// State.
    pub state: String,
    /// Last error.
    pub last_error: Option<String>,
}

/// `/readyz` answer.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Ready {
    /// `ready` or `not_ready`.
    pub status: String,
    /// `ok` or `failing`.
    pub store: String,
    /// Modems up.
    pub modems_up: usize,
    /// Every modem's state.
    pub modems: Vec<ReadyModem>,
}

fn modem_view(s: &ModemStatus, pool: crate::dispatch::pool::PoolView) -> ModemView {
    let i = &s.info;
    ModemView {
        name: s.name.clone(),
        port: s.port.clone(),
        state: s.state.as_str().to_string(),
        last_error: s.last_error.clone(),
        manufacturer: i.manufacturer.clone(),
        model: i.model.clone(),
        revision: i.revision.clone(),
        imei: i.imei.clone(),
        own_number: i.own_number.clone(),
        sim: i.sim.clone(),
        operator: i.operator.clone(),
        registration: i.registration.map(|r| r.as_str().to_string()),
        signal: i.signal,
        smsc: i.smsc.clone(),
        storage: i.storage.clone(),
        messages_sent: s.sent_parts,
        parts_failed: s.failed_parts,
        received: s.received,
        foreign_messages: s.foreign_messages,
        pool,
    }
}

/// `GET /v1/modems`
#[utoipa::path(get, path = "/v1/modems", tag = "gateway",
    responses((status = 200, body = ModemList), (status = 401, body = super::error::Problem)),
    security(("bearer" = [])))]
pub async fn modems(State(state): State<AppState>) -> Response {
    let pool = state.dispatcher.pool();
    let now = state.clock.now();
    axum::Json(ModemList {
        modems: state
            .modems()
            .iter()
            .map(|m| modem_view(&m.status(), pool.view(m.name(), now)))
            .collect(),
    })
    .into_response()
}

/// `GET /metrics`: Prometheus text format (every metric is described in `docs/metrics.md`).
#[utoipa::path(get, path = "/metrics", tag = "gateway",
    responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain"),
        (status = 401, body = super::error::Problem)),
    security(("bearer" = [])))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    let modems: Vec<_> = state.modems().iter().map(|m| m.status()).collect();
    let body = crate::metrics::render(&state.store, &modems, state.clock.now());
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// `GET /v1/stats`
#[utoipa::path(get, path = "/v1/stats", tag = "gateway",
    responses((status = 200, body = Stats), (status = 401, body = super::error::Problem),
        (status = 503, body = super::error::Problem)),
    security(("bearer" = [])))]
pub async fn stats(State(state): State<AppState>) -> Result<Response, ApiError> {
    let counts = state
        .store
        .counts()?
        .into_iter()
        .map(|(s, n)| (s.as_str().to_string(), n))
        .collect();
    let oldest = state.store.oldest_due()?;
    let now = state.clock.now();
    let (webhooks_pending, webhooks_dead) = state.store.outbox_counts()?;
    Ok(axum::Json(Stats {
        counts,
        queue_depth: state.store.queue_depth(),
        oldest_due: oldest,
        oldest_due_age_seconds: oldest.map(|t| (now - t).num_seconds().max(0)),
        modems_up: state
            .modems()
            .iter()
            .filter(|m| m.status().state == ModemState::Up)
            .count(),
        modems: state.modems().len(),
        unmatched_reports: state.store.unmatched_report_count(),
        webhooks_pending,
        webhooks_dead,
    })
    .into_response())
}

/// `GET /healthz`: the process is up.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, body = Health)))]
pub async fn healthz() -> Response {
    axum::Json(Health {
        status: "ok".into(),
    })
    .into_response()
}

/// `GET /readyz`: the store answers and at least one modem is up.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses((status = 200, body = Ready), (status = 503, body = Ready)))]
pub async fn readyz(State(state): State<AppState>) -> Response {
    let store_ok = state.store.health().is_none();
    let modems: Vec<ReadyModem> = state
        .modems()
        .iter()
        .map(|m| {
            let s = m.status();
            ReadyModem {
                name: s.name,
                state: s.state.as_str().to_string(),
                last_error: s.last_error,
            }
        })
        .collect();
    let up = modems.iter().filter(|m| m.state == "up").count();
    let ready = store_ok && up > 0;
    let body = Ready {
        status: if ready { "ready" } else { "not_ready" }.into(),
        store: if store_ok { "ok" } else { "failing" }.into(),
        modems_up: up,
        modems,
    };
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, axum::Json(body)).into_response()
}

/// Anything else: 404 as problem details.
pub async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint")
}
