//! `/v1/reports/unmatched`: status reports that matched no sent message.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::{ApiError, AppState};
use crate::store::reports::UnmatchedReport;

/// Paging of `GET /v1/reports/unmatched`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UnmatchedQuery {
    /// Page size, 1 to 1000 (default 50).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// The previous page's `next_cursor`.
    #[param(value_type = Option<crate::domain::schema::IdCursor>)]
    cursor: Option<String>,
}

/// One page of unmatched status reports.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UnmatchedPage {
    /// Newest first.
    pub reports: Vec<UnmatchedReport>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// `GET /v1/reports/unmatched?limit=&cursor=`: newest first.
#[utoipa::path(get, path = "/v1/reports/unmatched", tag = "reports", params(UnmatchedQuery),
    responses((status = 200, body = UnmatchedPage), (status = 400, body = super::error::Problem),
        (status = 401, body = super::error::Problem), (status = 422, body = super::error::Problem),
        (status = 503, body = super::error::Problem)),
    security(("bearer" = ["read"])))]
pub async fn unmatched(
    State(state): State<AppState>,
    query: Result<Query<UnmatchedQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let limit = super::page_limit(q.limit, q.cursor.as_deref())?;
    let page = state.store.unmatched_reports(limit, q.cursor.as_deref())?;
    let next_cursor = super::next_cursor(&page, limit, |r| r.id.clone());
    Ok(axum::Json(UnmatchedPage {
        reports: page,
        next_cursor,
    })
    .into_response())
}
