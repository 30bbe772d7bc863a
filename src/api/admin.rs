//! `POST /v1/admin/reload`: the modems and API keys of the configuration file, applied while
//! running.

use axum::Extension;
use axum::extract::State;
use axum::response::{IntoResponse, Response};

use super::{ApiError, AppState, Caller};

/// What a reload did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct ReloadSummary {
    /// Modems started.
    pub added: Vec<String>,
    /// Modems stopped (after the message in hand).
    pub removed: Vec<String>,
    /// Modems stopped and started again with new driver settings.
    pub restarted: Vec<String>,
    /// Modems that took new routing or limits without a restart.
    pub updated: Vec<String>,
    /// Modems left as they were.
    pub unchanged: Vec<String>,
    /// What became of the API keys (`serve` only: a gateway started without a file keeps its
    /// keys).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_keys: Option<super::keys::KeyChanges>,
}

/// Why a reload changed nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReloadError {
    /// The gateway has no file to read again (`smsgate demo`, or a gateway built in code).
    #[error("this gateway was not started from a configuration file (smsgate serve --config)")]
    NoConfigFile,
    /// The file is not valid; the message names the key and line.
    #[error("{0}")]
    Invalid(String),
}

/// A reload request: the answer goes back on the channel (served by the app's fleet).
pub type ReloadRequest = tokio::sync::oneshot::Sender<Result<ReloadSummary, ReloadError>>;

/// `POST /v1/admin/reload`: reads the configuration file again, adds, removes or reconfigures
/// modems and puts its API keys in force (like `SIGHUP`). A modem being removed or restarted finishes the message
/// in hand first. An invalid file changes nothing (422, with the key and line). Every reload
/// asked for is in the audit log (`reload`), with what it did or why it did nothing.
#[utoipa::path(post, path = "/v1/admin/reload", tag = "gateway",
    responses((status = 200, body = ReloadSummary), (status = 401, body = super::error::Problem),
        (status = 409, body = super::error::Problem), (status = 422, body = super::error::Problem)),
    security(("bearer" = ["modems"])))]
pub async fn reload(
    State(state): State<AppState>,
    Extension(Caller(caller)): Extension<Caller>,
) -> Result<Response, ApiError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    state
        .reload
        .send(tx)
        .await
        .map_err(|_| ApiError::unavailable("the gateway is stopping"))?;
    let outcome = rx.await;
    let details = match &outcome {
        Ok(Ok(summary)) => serde_json::json!({ "ok": true, "summary": summary }),
        Ok(Err(e)) => serde_json::json!({ "ok": false, "error": e.to_string() }),
        Err(_) => serde_json::json!({ "ok": false, "error": "the gateway is stopping" }),
    };
    super::audit::record(&state, &caller, "reload", None, Some(details)).await?;
    match outcome {
        Ok(Ok(summary)) => Ok(axum::Json(summary).into_response()),
        Ok(Err(e @ ReloadError::NoConfigFile)) => {
            Err(ApiError::conflict("no_config_file", e.to_string()))
        }
        Ok(Err(ReloadError::Invalid(e))) => Err(ApiError::field("config", e)),
        Err(_) => Err(ApiError::unavailable("the gateway is stopping")),
    }
}
