//! `POST /v1/admin/reload`: the modems of the configuration file, applied while running.

use axum::extract::State;
use axum::response::{IntoResponse, Response};

use super::{ApiError, AppState};
use crate::fleet::ReloadSummary;

/// `POST /v1/admin/reload`: reads the configuration file again and adds, removes or
/// reconfigures modems (like `SIGHUP`). A modem being removed or restarted finishes the message
/// in hand first. An invalid file changes nothing (422, with the key and line).
#[utoipa::path(post, path = "/v1/admin/reload", tag = "gateway",
    responses((status = 200, body = ReloadSummary), (status = 401, body = super::error::Problem),
        (status = 409, body = super::error::Problem), (status = 422, body = super::error::Problem)),
    security(("bearer" = [])))]
pub async fn reload(State(state): State<AppState>) -> Result<Response, ApiError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    state
        .reload
        .send(tx)
        .await
        .map_err(|_| ApiError::unavailable("the gateway is stopping"))?;
    match rx.await {
        Ok(Ok(summary)) => Ok(axum::Json(summary).into_response()),
        Ok(Err(e)) if e.contains("not started from a configuration file") => {
            Err(ApiError::conflict("no_config_file", e))
        }
        Ok(Err(e)) => Err(ApiError::field("config", e)),
        Err(_) => Err(ApiError::unavailable("the gateway is stopping")),
    }
}
