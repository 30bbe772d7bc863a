//! `GET /v1/audit`: who did what through the API that is not about one message (templates,
//! opt-outs, reloads, USSD codes, the admin page's logins), and the recording of it.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{ApiError, AppState};
use crate::store::audit::{AuditEntry, AuditFilter, NewAudit};

/// Filters and paging of `GET /v1/audit`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only the actions of the API key of this name.
    actor: Option<String>,
    /// Only the actions at or after this time (RFC 3339).
    since: Option<DateTime<Utc>>,
    /// The previous page's `next_cursor`.
    #[param(value_type = Option<crate::domain::schema::IdCursor>)]
    cursor: Option<String>,
    /// Page size, 1 to 1000 (default 50).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
}

/// One page of the audit log.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AuditPage {
    /// Oldest first.
    pub entries: Vec<AuditEntry>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// `GET /v1/audit?actor=&since=&cursor=&limit=`: the admin actions, oldest first, each with
/// the API key that did it and its place in the log's hash chain (`prev_hash`, `hash`).
#[utoipa::path(get, path = "/v1/audit", tag = "gateway", params(AuditQuery),
    responses((status = 200, body = AuditPage), (status = 400, body = super::error::Problem),
        (status = 401, body = super::error::Problem), (status = 422, body = super::error::Problem),
        (status = 503, body = super::error::Problem)),
    security(("bearer" = ["admin"])))]
pub async fn list(
    State(state): State<AppState>,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let limit = super::page_limit(q.limit, q.cursor.as_deref())?;
    let entries = state.store.audit_entries(
        &AuditFilter {
            actor: q.actor.as_deref(),
            since: q.since,
            after: q.cursor.as_deref(),
        },
        limit,
    )?;
    let next_cursor = super::next_cursor(&entries, limit, |e| e.id.clone());
    Ok(axum::Json(AuditPage {
        entries,
        next_cursor,
    })
    .into_response())
}

/// Records an admin action by the API key `actor`, on disk before it returns.
pub(crate) async fn record(
    state: &AppState,
    actor: &str,
    action: &str,
    target: Option<&str>,
    details: Option<serde_json::Value>,
) -> Result<(), ApiError> {
    append(state, actor, action, target, details)?;
    state.store.durable().await?;
    Ok(())
}

/// Records an admin action, durable with the next [`crate::store::Store::durable`] (for many
/// at once).
pub(crate) fn append(
    state: &AppState,
    actor: &str,
    action: &str,
    target: Option<&str>,
    details: Option<serde_json::Value>,
) -> Result<(), ApiError> {
    state.store.append_audit(&NewAudit {
        actor,
        action,
        target,
        details,
        at: state.clock.now(),
    })?;
    Ok(())
}
