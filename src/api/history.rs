//! A message's tamper-evident history, and exports per number or per invoice for a dispute.

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{ApiError, AppState};
use crate::store::StoreError;
use crate::store::history::{CSV_HEADER, History, csv_rows, jsonl_rows};

/// `GET /v1/messages/{id}/history`: every entry with its hash, and whether the chain holds.
#[utoipa::path(get, path = "/v1/messages/{id}/history", tag = "messages",
    params(("id" = String, Path, description = "Message id")),
    responses((status = 200, body = History), (status = 401, body = super::error::Problem),
        (status = 404, body = super::error::Problem), (status = 503, body = super::error::Problem)),
    security(("bearer" = ["read"])))]
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
    /// Every message to this number (any form). Give `to`, `invoice` or both.
    #[param(value_type = Option<crate::domain::schema::PhoneNumberInput>)]
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
        (status = 422, body = super::error::Problem),
        (status = 429, description = "Two exports are running already", body = super::error::Problem),
        (status = 503, body = super::error::Problem)),
    security(("bearer" = ["read"])))]
pub async fn export(
    State(state): State<AppState>,
    query: Result<Query<ExportQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let to = match &q.to {
        Some(t) => Some(
            crate::numbers::to_e164(t, state.cfg.messages.default_region.as_deref())
                .map_err(|e| ApiError::field("to", e.to_string()))?
                .into_string(),
        ),
        None => None,
    };
    if to.is_none() && q.invoice.as_deref().is_none_or(str::is_empty) {
        return Err(ApiError::field("to", "give `to` or `invoice` (or both)"));
    }
    // Each export holds a store reader for as long as its client reads: a few at a time.
    let Ok(permit) = state.exports.clone().try_acquire_owned() else {
        let mut r = ApiError::other(
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            "exports_busy",
            "Too many exports",
            format!(
                "{} history exports are running; try again when one has finished",
                super::MAX_EXPORTS
            ),
        )
        .into_response();
        r.headers_mut()
            .insert(header::RETRY_AFTER, axum::http::HeaderValue::from(5u32));
        return Ok(r);
    };
    let store = state.store.clone();
    let invoice = q.invoice.clone();
    let format = q.format.unwrap_or_default();
    // Written as it is read, one message at a time, off the async threads: an export of any
    // size holds one message and a few chunks in memory. A store error after the first rows
    // ends the body early (the client sees a cut answer, never a wrong one).
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(16);
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let send = |chunk: String| {
            tx.blocking_send(Ok(bytes::Bytes::from(chunk)))
                .map_err(|_| StoreError::Closed)
        };
        if matches!(format, Format::Csv) && send(CSV_HEADER.to_string()).is_err() {
            return;
        }
        let r = store.for_each_history::<StoreError>(to.as_deref(), invoice.as_deref(), |m, h| {
            send(match format {
                Format::Jsonl => jsonl_rows(m, h)?,
                Format::Csv => csv_rows(m, h)?,
            })
        });
        if let Err(e) = r
            && !matches!(e, StoreError::Closed)
        {
            tracing::error!(error = %e, "history export cut short");
            let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
        }
    });
    let body = axum::body::Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async {
        rx.recv().await.map(|chunk| (chunk, rx))
    }));
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
