//! `POST /v1/erasure`: a phone number erased from the gateway (a data subject's request).

use axum::Extension;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;

use super::{ApiError, ApiJson, AppState, Caller};
use crate::store::Erased;

/// The number to erase.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErasureRequest {
    /// The number, E.164 (or national, read in `[sms] default_region`).
    #[schema(value_type = crate::domain::schema::PhoneNumberInput)]
    pub number: String,
}

/// `POST /v1/erasure`: erases a number: every message to it (with its history and replies:
/// a tombstone without the number stays per message), its inbound texts, its reminder plans,
/// the webhook deliveries and idempotency answers that name it, and its unmatched delivery
/// reports. An opt-out stays as a salted hash of the number: a STOP outlives the erasure and a
/// new message to the number is still refused (422). Answers with what was removed, by kind.
/// Running it again is harmless (all counts 0). Needs the scope `admin`; recorded in the audit
/// log as `erasure` with the counts, never the number.
#[utoipa::path(post, path = "/v1/erasure", tag = "gateway", request_body = ErasureRequest,
    responses((status = 200, body = Erased), (status = 400, body = super::error::Problem),
        (status = 401, body = super::error::Problem), (status = 422, body = super::error::Problem),
        (status = 503, body = super::error::Problem)),
    security(("bearer" = ["admin"])))]
pub async fn erase(
    State(state): State<AppState>,
    Extension(Caller(caller)): Extension<Caller>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let req: ErasureRequest = serde_path_to_error::deserialize(&body)
        .map_err(|e| ApiError::field(&e.path().to_string(), e.inner().to_string()))?;
    let number = crate::numbers::to_e164(&req.number, state.cfg.messages.default_region.as_deref())
        .map_err(|e| ApiError::field("number", e.to_string()))?;
    let store = state.store.clone();
    let now = state.clock.now();
    let n = number.clone();
    let erased = tokio::task::spawn_blocking(move || store.erase_number(n.as_str(), now))
        .await
        .map_err(|_| ApiError::unavailable("the erasure stopped; run it again"))??;
    metrics::counter!(crate::metrics::ERASURES).increment(1);
    // The audit entry of an erasure: who, when, and what went; never the number (no target).
    let details = serde_json::to_value(&erased).unwrap_or_default();
    super::audit::record(&state, &caller, "erasure", None, Some(details)).await?;
    tracing::info!(
        actor = %caller,
        messages = erased.messages,
        inbound = erased.inbound,
        plans = erased.plans,
        optouts = erased.optouts,
        "number erased"
    );
    tracing::debug!(number = %number, "number erased");
    Ok(axum::Json(erased).into_response())
}
