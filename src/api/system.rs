//! `/v1/modems`, `/v1/stats`, `/healthz`, `/readyz`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{ApiError, AppState};
use crate::modem::{ModemState, ModemStatus};

fn modem_view(s: &ModemStatus) -> Value {
    let i = &s.info;
    json!({
        "name": s.name,
        "port": s.port,
        "state": s.state.as_str(),
        "last_error": s.last_error,
        "manufacturer": i.manufacturer,
        "model": i.model,
        "revision": i.revision,
        "imei": i.imei,
        "own_number": i.own_number,
        "sim": i.sim,
        "operator": i.operator,
        "registration": i.registration.map(|r| r.as_str()),
        "signal": i.signal,
        "smsc": i.smsc,
        "storage": i.storage,
        "messages_sent": s.sent_parts,
        "parts_failed": s.failed_parts,
        "received": s.received,
    })
}

/// `GET /v1/modems`
pub async fn modems(State(state): State<AppState>) -> Response {
    let list: Vec<Value> = state
        .modems
        .iter()
        .map(|m| modem_view(&m.status()))
        .collect();
    axum::Json(json!({ "modems": list })).into_response()
}

/// `GET /v1/stats`
pub async fn stats(State(state): State<AppState>) -> Result<Response, ApiError> {
    let counts: serde_json::Map<String, Value> = state
        .store
        .counts()?
        .into_iter()
        .map(|(s, n)| (s.as_str().to_string(), json!(n)))
        .collect();
    let oldest = state.store.oldest_due()?;
    let now = state.clock.now();
    Ok(axum::Json(json!({
        "counts": counts,
        "queue_depth": state.store.queue_depth(),
        "oldest_due": oldest,
        "oldest_due_age_seconds": oldest.map(|t| (now - t).num_seconds().max(0)),
        "modems_up": state.modems.iter().filter(|m| m.status().state == ModemState::Up).count(),
        "modems": state.modems.len(),
    }))
    .into_response())
}

/// `GET /healthz`: the process is up.
pub async fn healthz() -> Response {
    axum::Json(json!({"status": "ok"})).into_response()
}

/// `GET /readyz`: the store answers and at least one modem is up.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let store_ok = state.store.counts().is_ok();
    let up = state
        .modems
        .iter()
        .filter(|m| m.status().state == ModemState::Up)
        .count();
    let ready = store_ok && up > 0;
    let body = json!({
        "status": if ready { "ready" } else { "not_ready" },
        "store": if store_ok { "ok" } else { "failing" },
        "modems_up": up,
        "modems": state.modems.iter().map(|m| {
            let s = m.status();
            json!({"name": s.name, "state": s.state.as_str(), "last_error": s.last_error})
        }).collect::<Vec<_>>(),
    });
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
