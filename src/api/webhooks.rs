//! `/v1/webhooks`: deliveries given up on or failing, and retrying them.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::{ApiError, AppState};
use crate::webhook::{OutboxEntry, WebhookError};

impl From<WebhookError> for ApiError {
    fn from(e: WebhookError) -> Self {
        match e {
            WebhookError::Store(s) => s.into(),
            other => ApiError::internal(other.to_string()),
        }
    }
}

/// Paging of `GET /v1/webhooks/failed`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FailedQuery {
    /// Page size, 1 to 1000 (default 50).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// The previous page's `next_cursor`.
    cursor: Option<u64>,
    /// `dead` (the default): deliveries given up; `retrying`: deliveries that failed at least
    /// once (wrong secret, receiver down) and wait for their next attempt, not yet given up.
    #[param(value_type = Option<String>, pattern = "^(dead|retrying)$")]
    state: Option<String>,
}

/// One page of dead (or, with `state=retrying`, failing) deliveries.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FailedPage {
    /// Oldest first.
    pub webhooks: Vec<OutboxEntry>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<u64>,
}

/// `GET /v1/webhooks/failed`: deliveries retried for `[webhooks] max_age` without a 2xx
/// answer, oldest first, with the last error; with `state=retrying`, the deliveries still being
/// retried that failed at least once, with their last error and `next_attempt_at`.
#[utoipa::path(get, path = "/v1/webhooks/failed", tag = "webhooks", params(FailedQuery),
    responses((status = 200, body = FailedPage), (status = 400, body = super::error::Problem),
        (status = 401, body = super::error::Problem), (status = 422, body = super::error::Problem),
        (status = 503, body = super::error::Problem)),
    security(("bearer" = ["read"])))]
pub async fn failed(
    State(state): State<AppState>,
    query: Result<Query<FailedQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let limit = super::page_limit(q.limit, None)?;
    let page = match q.state.as_deref() {
        None | Some("dead") => state.webhooks.dead(limit, q.cursor)?,
        Some("retrying") => state.webhooks.retrying(limit, q.cursor)?,
        Some(other) => {
            return Err(ApiError::field(
                "state",
                format!("unknown state {other:?} (dead or retrying)"),
            ));
        }
    };
    let next_cursor = super::next_cursor(&page, limit, |e| e.seq);
    Ok(axum::Json(FailedPage {
        webhooks: page,
        next_cursor,
    })
    .into_response())
}

/// `POST /v1/webhooks/{id}/retry`: a delivery (by its `webhook-id`) is attempted once more,
/// now; if that fails too it is dead again.
#[utoipa::path(post, path = "/v1/webhooks/{id}/retry", tag = "webhooks",
    params(("id" = String, Path, description = "The delivery's webhook-id (evt_…)")),
    responses((status = 200, body = OutboxEntry), (status = 401, body = super::error::Problem),
        (status = 404, body = super::error::Problem), (status = 503, body = super::error::Problem)),
    security(("bearer" = ["admin"])))]
pub async fn retry(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let e = state.webhooks.retry(&id).await?.ok_or_else(|| {
        ApiError::not_found(format!(
            "no webhook delivery {id} (delivered ones are not kept)"
        ))
    })?;
    Ok(axum::Json(e).into_response())
}
