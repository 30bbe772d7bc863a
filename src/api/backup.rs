//! `POST /v1/admin/backup`: a hot backup of the running store, streamed to the caller in the
//! export format that `smsgate store import` reads.

use std::io::Read;

use axum::Extension;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::{ApiError, AppState, Caller};
use crate::store::backup::{Snapshot, SnapshotError};

/// Bytes read from the snapshot's file per chunk of the answer.
const CHUNK: usize = 64 * 1024;

/// Chunks read ahead of the client: what the answer holds in memory, whatever the store's size.
const CHUNKS_AHEAD: usize = 4;

/// The header with the number of records in the backup.
pub const RECORDS_HEADER: &str = "smsgate-backup-records";
/// The header with how long writes were paused for the backup, in milliseconds.
pub const PAUSED_HEADER: &str = "smsgate-backup-paused-ms";
/// The header with the point in time the backup shows (RFC 3339).
pub const TAKEN_AT_HEADER: &str = "smsgate-backup-taken-at";

/// `POST /v1/admin/backup` (an admin action, scope `admin`): the whole store at one point in time, as the
/// JSON Lines of `smsgate store export`, for `smsgate store import` to restore.
///
/// Writes are paused while the daemon copies the store's records into an unnamed file beside
/// it (the pause is in `smsgate-backup-paused-ms`), then resumed; the export is written from
/// that copy and streamed afterwards, so a slow client does not hold the store. Every message acknowledged before the request
/// was made is in it, with its whole history; one acknowledged while it runs may be or not,
/// never in part. `Content-Length` is the export's exact length, and its last line
/// (`{"end":true,"records":N}`) closes it: an answer cut short shows. One backup at a time
/// (409 `backup_running`). Needs the `admin` scope; each backup is in the audit log
/// (`backup`, with its records, bytes, pause and point in time).
#[utoipa::path(post, path = "/v1/admin/backup", tag = "gateway",
    responses(
        (status = 200, description = "The export, streamed (JSON Lines)", content_type = "application/x-ndjson", body = String,
            headers(
                ("smsgate-backup-records" = u64, description = "Records in the export"),
                ("smsgate-backup-paused-ms" = u64, description = "How long writes were paused, in milliseconds"),
                ("smsgate-backup-taken-at" = String, description = "The point in time the export shows (RFC 3339)"),
            )),
        (status = 401, body = super::error::Problem),
        (status = 409, description = "A backup is running already, or the store is a PostgreSQL database (backed up with its own tools)", body = super::error::Problem),
        (status = 503, body = super::error::Problem)),
    security(("bearer" = ["admin"])))]
pub async fn backup(
    State(state): State<AppState>,
    Extension(Caller(caller)): Extension<Caller>,
) -> Result<Response, ApiError> {
    let store = state.store.clone();
    // Off the async threads: the export reads the whole store and writes a file.
    let snap = tokio::task::spawn_blocking(move || store.snapshot())
        .await
        .map_err(|e| ApiError::internal(format!("the backup task failed: {e}")))?
        .map_err(|e| match e {
            SnapshotError::Busy => ApiError::conflict("backup_running", e.to_string()),
            SnapshotError::InDatabase => ApiError::conflict("backup_in_database", e.to_string()),
            SnapshotError::Store(e) => {
                tracing::error!(error = %e, "backup failed");
                ApiError::from(e)
            }
        })?;
    // Who took the whole store away, in the audit log, before a byte of it leaves.
    let details = serde_json::json!({
        "records": snap.summary.records,
        "bytes": snap.bytes,
        "paused_ms": u64::try_from(snap.paused.as_millis()).unwrap_or(u64::MAX),
        "taken_at": snap.taken_at,
    });
    super::audit::record(&state, &caller, "backup", None, Some(details)).await?;
    let headers = [
        (header::CONTENT_TYPE, "application/x-ndjson".to_string()),
        (header::CONTENT_LENGTH, snap.bytes.to_string()),
        (
            header::CONTENT_DISPOSITION,
            format!(
                "attachment; filename=\"smsgate-backup-{}.jsonl\"",
                snap.taken_at.format("%Y%m%dT%H%M%SZ")
            ),
        ),
        (
            header::HeaderName::from_static(RECORDS_HEADER),
            snap.summary.records.to_string(),
        ),
        (
            header::HeaderName::from_static(PAUSED_HEADER),
            snap.paused.as_millis().to_string(),
        ),
        (
            header::HeaderName::from_static(TAKEN_AT_HEADER),
            snap.taken_at
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        ),
    ];
    Ok((headers, stream(snap)).into_response())
}

/// The snapshot's file as a body, read a chunk at a time off the async threads. A read error
/// ends the body short of its `Content-Length`: the client sees a cut answer, never a wrong one.
fn stream(snap: Snapshot) -> axum::body::Body {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(CHUNKS_AHEAD);
    tokio::task::spawn_blocking(move || {
        // The snapshot (its file, and the mark that a backup runs) lives until the last chunk
        // is sent or the client is gone.
        let mut snap = snap;
        loop {
            let mut buf = vec![0u8; CHUNK];
            match snap.file.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    buf.truncate(n);
                    if tx.blocking_send(Ok(bytes::Bytes::from(buf))).is_err() {
                        tracing::warn!("backup: the client went away before the end");
                        return;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    tracing::error!(error = %e, "backup: cannot read the snapshot back");
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            }
        }
    });
    axum::body::Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async {
        rx.recv().await.map(|chunk| (chunk, rx))
    }))
}
