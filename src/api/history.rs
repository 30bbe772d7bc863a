//! A message's tamper-evident history, and exports per number or per invoice for a dispute.

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::messages::normalise_number;
use super::{ApiError, AppState};
use crate::store::history::{History, export_csv, export_jsonl};

/// `GET /v1/messages/{id}/history`: every entry with its hash, and whether the chain holds.
#[utoipa::path(get, path = "/v1/messages/{id}/history", tag = "messages",
    params(("id" = String, Path, description = "Message id")),
    responses((status = 200, body = History), (status = 401, body = super::error::Problem),
        (status = 404, body = super::error::Problem), (status = 503, body = super::error::Problem)),
    security(("bearer" = [])))]
pub async fn one(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let h = state
        .store
        .history(&id)?
        .ok_or_else(|| ApiError::not_found(format!("no message {id}")))?;
    Ok(axum::Json(h).into_response())
}

/// Export format.
#[derive(Debug, Clone, Copy, Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// One JSON object per history entry and line.
    #[default]
    Jsonl,
    /// Comma-separated with a header line.
    Csv,
}

/// Filters of `GET /v1/history/export`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// Every message to this number (any form).
    to: Option<String>,
    /// Every message whose `metadata.invoice` is this.
    invoice: Option<String>,
    /// `jsonl` (default) or `csv`.
    format: Option<Format>,
}

/// `GET /v1/history/export?to=|invoice=&format=jsonl|csv`: the history of every message to a
/// number or about an invoice, oldest first, one row per entry with its hash and whether its
/// message's chain holds.
#[utoipa::path(get, path = "/v1/history/export", tag = "messages", params(ExportQuery),
    responses((status = 200, description = "JSON Lines (`format=jsonl`) or CSV (`format=csv`)",
            content((String = "application/x-ndjson"), (String = "text/csv"))),
        (status = 400, body = super::error::Problem), (status = 401, body = super::error::Problem),
        (status = 422, body = super::error::Problem), (status = 503, body = super::error::Problem)),
    security(("bearer" = [])))]
pub async fn export(
    State(state): State<AppState>,
    query: Result<Query<ExportQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let to = match &q.to {
        Some(t) => Some(
            normalise_number(t, state.cfg.default_region.as_deref())
                .map_err(|e| ApiError::field("to", e))?,
        ),
        None => None,
    };
    if to.is_none() && q.invoice.as_deref().is_none_or(str::is_empty) {
        return Err(ApiError::field("to", "give `to` or `invoice` (or both)"));
    }
    let store = state.store.clone();
    let invoice = q.invoice.clone();
    let format = q.format.unwrap_or_default();
    // Reading every message (by invoice) may take a while: off the async threads.
    let body = tokio::task::spawn_blocking(move || {
        let rows = store.histories_for(to.as_deref(), invoice.as_deref())?;
        match format {
            Format::Jsonl => export_jsonl(&rows),
            Format::Csv => export_csv(&rows),
        }
    })
    .await
    .map_err(|e| ApiError::internal(format!("export failed: {e}")))??;
    let (ctype, ext) = match format {
        Format::Jsonl => ("application/x-ndjson", "jsonl"),
        Format::Csv => ("text/csv; charset=utf-8", "csv"),
    };
    Ok((
        [
            (header::CONTENT_TYPE, ctype.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"smsgate-history.{ext}\""),
            ),
        ],
        body,
    )
        .into_response())
}
