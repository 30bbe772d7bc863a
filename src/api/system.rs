//! `/v1/modems`, `/v1/stats`, `/healthz`, `/readyz`.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, TimeZone, Utc};
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
    /// Whether it sends now: `up`, `resting` (after going down too often), `limited` (at
    /// `max_per_minute` or `max_per_day`) or `down` (not up). A modem `up` that is resting
    /// sends nothing.
    pub sending: crate::dispatch::Sending,
    /// When a rest or a limit ends and it sends again (`resting`, `limited`).
    pub sending_until: Option<DateTime<Utc>>,
    /// The last error, in words; cleared once the modem works again (a part sent, or a health
    /// probe answered while it is up).
    pub last_error: Option<String>,
    /// When the last error happened.
    pub last_error_at: Option<DateTime<Utc>>,
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
    /// Messages it sent since midnight (in `[reminders] timezone`).
    pub sent_today: u64,
    /// Messages it sent that failed since midnight (each counted once, however many parts or
    /// attempts).
    pub failed_today: u64,
    /// Customers' texts it received since midnight (delivery reports are not counted).
    pub received_today: u64,
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
    /// Every modem this gateway drives.
    pub modems: Vec<ModemView>,
    /// The configured modems this gateway stands by for, when several gateways share a
    /// PostgreSQL store: another gateway drives each, and this one takes it over when that
    /// gateway's lease on it lapses. Empty with the embedded store.
    pub standby: Vec<StandbyModem>,
}

/// A configured modem another gateway drives.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StandbyModem {
    /// Its name.
    pub name: String,
    /// The gateway holding its lease (`host:listen-address`), when one does.
    pub driven_by: Option<String>,
    /// Until when that lease holds unless renewed (the holder renews it every third of
    /// `[storage] lease_ttl`).
    pub lease_expires_at: Option<DateTime<Utc>>,
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

/// One modem's messages since midnight.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct DayCounts {
    /// Messages sent.
    pub sent: u64,
    /// Messages failed.
    pub failed: u64,
    /// Customers' texts received.
    pub received: u64,
}

/// Received texts read at most to count today's (a gateway gets far fewer a day).
const RECEIVED_SCAN: usize = 20_000;

/// Each modem's messages since `midnight`, by name: sent and failed from the per-hour
/// counters, received from the stored customers' texts (unreadable ones and delivery reports
/// are not texts from a customer).
pub(crate) fn day_counts(
    store: &crate::store::Store,
    midnight: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<BTreeMap<String, DayCounts>, ApiError> {
    let mut out: BTreeMap<String, DayCounts> = BTreeMap::new();
    // Counted by whole hours: the hour that holds midnight counts (a zone half an hour off
    // UTC), as for the admin page's "sent today".
    let first_hour = Utc
        .timestamp_opt(midnight.timestamp().div_euclid(3600) * 3600, 0)
        .single()
        .unwrap_or(midnight);
    for c in store.hourly(first_hour, now)? {
        if c.hour < first_hour {
            continue;
        }
        let d = out.entry(c.modem.clone()).or_default();
        d.sent += c.sent;
        d.failed += c.failed;
    }
    let mut after: Option<String> = None;
    let mut read = 0;
    while read < RECEIVED_SCAN {
        let page = store.list_inbound(&crate::store::inbound::InboundFilter {
            since: Some(midnight),
            after: after.take(),
            limit: 1000,
            ..Default::default()
        })?;
        read += page.len();
        for m in page.iter().filter(|m| m.decode_error.is_none()) {
            out.entry(m.modem.clone()).or_default().received += 1;
        }
        if page.len() < 1000 {
            break;
        }
        after = page.last().map(|m| m.id.clone());
    }
    Ok(out)
}

/// Midnight today in `tz`, as an instant.
pub(crate) fn midnight(now: DateTime<Utc>, tz: chrono_tz::Tz) -> DateTime<Utc> {
    let local = now.with_timezone(&tz).date_naive();
    crate::reminders::window::local_instant(tz, local, chrono::NaiveTime::MIN)
}

fn modem_view(
    s: &ModemStatus,
    pool: crate::dispatch::pool::PoolView,
    sending: (crate::dispatch::Sending, Option<DateTime<Utc>>),
    today: DayCounts,
) -> ModemView {
    let i = &s.info;
    ModemView {
        name: s.name.clone(),
        port: s.port.clone(),
        state: s.state.as_str().to_string(),
        sending: sending.0,
        sending_until: sending.1,
        last_error: s.last_error.clone(),
        last_error_at: s.last_error_at,
        sent_today: today.sent,
        failed_today: today.failed,
        received_today: today.received,
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
    responses((status = 200, body = ModemList), (status = 401, body = super::error::Problem),
        (status = 503, body = super::error::Problem)),
    security(("bearer" = ["read"])))]
pub async fn modems(State(state): State<AppState>) -> Result<Response, ApiError> {
    let list = tokio::task::spawn_blocking(move || {
        let pool = state.dispatcher.pool();
        let now = state.clock.now();
        let today = day_counts(&state.store, midnight(now, state.reminders.timezone), now)?;
        let names = state
            .standby
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let leases = if names.is_empty() {
            Vec::new()
        } else {
            state.store.leases()?
        };
        let standby = names
            .into_iter()
            .map(|name| {
                let lease = crate::store::lease::modem_lease(&name);
                let held = leases.iter().find(|l| l.name == lease);
                StandbyModem {
                    driven_by: held.map(|l| l.owner.clone()),
                    lease_expires_at: held.map(|l| l.expires_at),
                    name,
                }
            })
            .collect();
        Ok::<_, ApiError>(ModemList {
            standby,
            modems: state
                .modems()
                .iter()
                .map(|m| {
                    modem_view(
                        &m.status(),
                        pool.view(m.name(), now),
                        pool.sending(m.name(), now),
                        today.get(m.name()).copied().unwrap_or_default(),
                    )
                })
                .collect(),
        })
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))??;
    Ok(axum::Json(list).into_response())
}

/// `GET /metrics`: Prometheus text format (every metric is described in `docs/metrics.md`).
#[utoipa::path(get, path = "/metrics", tag = "gateway",
    responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain"),
        (status = 401, body = super::error::Problem)),
    security(("bearer" = ["metrics"])))]
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
    security(("bearer" = ["read"])))]
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
