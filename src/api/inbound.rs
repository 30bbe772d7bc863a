//! `/v1/inbound`: the messages customers sent.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, FixedOffset, Utc};
use serde::{Deserialize, Serialize};

use super::{ApiError, AppState};
use crate::store::inbound::{InboundFilter, InboundMessage};

/// Filters of `GET /v1/inbound`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct InboundQuery {
    /// Only received at or after (RFC 3339).
    since: Option<DateTime<FixedOffset>>,
    /// Only from this number (any form).
    #[param(value_type = Option<crate::domain::schema::PhoneNumberInput>)]
    from: Option<String>,
    /// Only messages that could not be read (`decode_error` and `raw_answer` set).
    unreadable: Option<bool>,
    /// Page size, 1 to 1000 (default 50).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// The previous page's `next_cursor`.
    #[param(value_type = Option<crate::domain::schema::IdCursor>)]
    cursor: Option<String>,
}

/// One page of inbound messages.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct InboundPage {
    /// Newest first.
    pub messages: Vec<InboundMessage>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// `GET /v1/inbound?since=&from=&unreadable=&limit=&cursor=`: newest first.
#[utoipa::path(get, path = "/v1/inbound", tag = "inbound", params(InboundQuery),
    responses((status = 200, body = InboundPage), (status = 400, body = super::error::Problem),
        (status = 401, body = super::error::Problem), (status = 422, body = super::error::Problem),
        (status = 503, body = super::error::Problem)),
    security(("bearer" = ["read"])))]
pub async fn list(
    State(state): State<AppState>,
    query: Result<Query<InboundQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let from = match q.from.as_deref() {
        // A sender may be a short code or a name: keep what does not parse as a number.
        Some(f) => Some(
            crate::numbers::to_e164(f, state.cfg.messages.default_region.as_deref())
                .map_or_else(|_| f.trim().to_string(), String::from),
        ),
        None => None,
    };
    let limit = super::page_limit(q.limit, q.cursor.as_deref())?;
    let page = state.store.list_inbound(&InboundFilter {
        from,
        unreadable: q.unreadable.unwrap_or(false),
        since: q.since.map(|t| t.with_timezone(&Utc)),
        after: q.cursor.clone(),
        limit,
    })?;
    let next_cursor = super::next_cursor(&page, limit, |m| m.id.clone());
    Ok(axum::Json(InboundPage {
        messages: page,
        next_cursor,
    })
    .into_response())
}

/// `GET /v1/inbound/{id}`.
#[utoipa::path(get, path = "/v1/inbound/{id}", tag = "inbound",
    params(("id" = String, Path, description = "Inbound message id")),
    responses((status = 200, body = InboundMessage), (status = 401, body = super::error::Problem),
        (status = 404, body = super::error::Problem), (status = 503, body = super::error::Problem)),
    security(("bearer" = ["read"])))]
pub async fn get_one(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let m = state
        .store
        .inbound(&id)?
        .ok_or_else(|| ApiError::not_found(format!("no inbound message {id}")))?;
    Ok(axum::Json(m).into_response())
}
