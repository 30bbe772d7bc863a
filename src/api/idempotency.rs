//! Idempotency keys of the API's creating requests: a retry with the same key and body gets
//! the first answer (once it is on disk), one with another body gets 409, and two racing
//! retries make one message.

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{ApiError, AppState};
use crate::store::IdempotencyRecord;

/// Idempotency: the key scoped to the caller, and the fingerprint of this request.
fn idempotency_key(headers: &HeaderMap, caller: &str) -> Result<Option<String>, ApiError> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = v
        .to_str()
        .map_err(|_| ApiError::bad_request("Idempotency-Key must be printable ASCII"))?;
    if key.is_empty() || key.len() > 255 {
        return Err(ApiError::bad_request(
            "Idempotency-Key must be 1 to 255 characters",
        ));
    }
    Ok(Some(format!("{caller}\u{0}{key}")))
}

fn fingerprint(route: &str, body: &Value) -> String {
    let digest = Sha256::digest(format!("{route}\n{body}").as_bytes());
    crate::sms::to_hex(&digest)
}

/// Releases an in-flight idempotency key when the request ends, however it ends.
struct InFlight<'a> {
    state: &'a AppState,
    key: Option<String>,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if let Some(k) = &self.key
            && let Ok(mut set) = self.state.in_flight.lock()
        {
            set.remove(k);
        }
    }
}

/// Runs `work` once per idempotency key: a retry with the same body gets the first answer, one
/// with another body gets 409.
pub(crate) async fn idempotent<F, Fut>(
    state: &AppState,
    headers: &HeaderMap,
    caller: &str,
    route: &str,
    body: Value,
    work: F,
) -> Result<Response, ApiError>
where
    F: FnOnce(Option<(String, String)>) -> Fut,
    Fut: std::future::Future<Output = Result<(StatusCode, Vec<u8>), ApiError>>,
{
    let key = idempotency_key(headers, caller)?;
    let print = key.as_ref().map(|_| fingerprint(route, &body));
    let _guard = match &key {
        Some(k) => {
            // The guard first, then the stored key: two retries racing cannot both pass the
            // check before either has written (the store also refuses a key written twice).
            let inserted = state
                .in_flight
                .lock()
                .map(|mut s| s.insert(k.clone()))
                .unwrap_or(false);
            if !inserted {
                return Err(ApiError::conflict(
                    "idempotency_key_in_use",
                    "a request with this Idempotency-Key is being processed; retry in a moment",
                ));
            }
            let guard = InFlight {
                state,
                key: Some(k.clone()),
            };
            if let Some(rec) = state.store.idempotency(k)? {
                if Some(&rec.fingerprint) != print.as_ref() {
                    return Err(ApiError::conflict(
                        "idempotency_key_reused",
                        "this Idempotency-Key was used with a different request body",
                    ));
                }
                // The first answer may still sit in the group-commit window, or on a disk that
                // just filled: it is given again only once what it acknowledges is on disk.
                state.store.durable().await?;
                let status = StatusCode::from_u16(rec.status).unwrap_or(StatusCode::OK);
                let mut resp = (status, axum::Json(rec.body)).into_response();
                resp.headers_mut().insert(
                    "idempotent-replayed",
                    axum::http::HeaderValue::from_static("true"),
                );
                return Ok(resp);
            }
            guard
        }
        None => InFlight { state, key: None },
    };
    let (status, body) = work(key.zip(print)).await?;
    Ok((
        status,
        [(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response())
}

/// The record that makes a retry with the same key get this `201` answer again.
pub(crate) fn idempotency_record(
    idem: Option<(String, String)>,
    body: &[u8],
    now: DateTime<Utc>,
) -> Option<(String, IdempotencyRecord)> {
    idem.map(|(key, fingerprint)| {
        (
            key,
            IdempotencyRecord {
                fingerprint,
                status: 201,
                body: serde_json::from_slice(body).unwrap_or(Value::Null),
                at: now,
            },
        )
    })
}
