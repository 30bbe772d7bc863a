//! `POST /v1/modems/{name}/ussd`: a USSD code through one modem (a prepaid balance check).

use std::time::Duration;

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::{ApiError, ApiJson, AppState, Caller, FieldError};
use crate::modem::ModemState;
use crate::modem::error::ModemError;

/// `POST /v1/modems/{name}/ussd` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UssdRequest {
    /// The code: digits, `*`, `#` and `+` (e.g. `*100#`).
    #[schema(value_type = crate::domain::schema::UssdCode)]
    pub code: String,
    /// How long to wait for the operator's answer, in seconds (default 30; below 1 counts as 1,
    /// above 120 as 120).
    pub timeout_seconds: Option<u64>,
}

/// `POST /v1/modems/{name}/ussd` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UssdResult {
    /// The modem asked.
    pub modem: String,
    /// The code sent.
    pub code: String,
    /// The operator's answer.
    #[serde(flatten)]
    pub answer: crate::modem::ussd::UssdAnswer,
    /// The first amount in the answer (a balance), when there is one.
    pub amount: Option<f64>,
}

/// `POST /v1/modems/{name}/ussd`: sends a USSD code (e.g. `*100#` for a prepaid balance) and
/// returns the operator's answer. Every code sent is in the audit log (`ussd`), with the
/// answer.
#[utoipa::path(post, path = "/v1/modems/{name}/ussd", tag = "gateway",
    params(("name" = String, Path, description = "The modem's name")),
    request_body = UssdRequest,
    responses((status = 200, body = UssdResult), (status = 401, body = super::error::Problem),
        (status = 404, body = super::error::Problem), (status = 409, body = super::error::Problem),
        (status = 422, body = super::error::Problem), (status = 502, body = super::error::Problem),
        (status = 504, body = super::error::Problem)),
    security(("bearer" = ["modems"])))]
pub async fn ussd(
    State(state): State<AppState>,
    Extension(Caller(caller)): Extension<Caller>,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<UssdRequest>,
) -> Result<Response, ApiError> {
    let code = req.code.trim().to_string();
    if !crate::modem::ussd::valid_code(&code) {
        return Err(ApiError::validation(vec![FieldError {
            field: "code".into(),
            detail: "2 to 40 digits, `*`, `#` or `+`, such as \"*100#\"".into(),
        }]));
    }
    let timeout = Duration::from_secs(req.timeout_seconds.unwrap_or(30).clamp(1, 120));
    let modem = state
        .modems()
        .into_iter()
        .find(|m| m.name() == name)
        .ok_or_else(|| ApiError::not_found(format!("no modem named {name}")))?;
    if modem.status().state != ModemState::Up {
        return Err(ApiError::conflict(
            "modem_not_up",
            format!("modem {name} is {}", modem.status().state.as_str()),
        ));
    }
    let result = modem.ussd(&code, timeout).await;
    let details = match &result {
        Ok(answer) => serde_json::json!({ "code": code, "ok": true, "answer": answer.text }),
        Err(e) => serde_json::json!({ "code": code, "ok": false, "error": e.to_string() }),
    };
    super::audit::record(&state, &caller, "ussd", Some(&name), Some(details)).await?;
    match result {
        Ok(answer) => {
            let amount = answer.text.as_deref().and_then(crate::modem::ussd::amount);
            tracing::info!(modem = %name, code, answer = ?answer.text, "USSD answered");
            Ok(axum::Json(UssdResult {
                modem: name,
                code,
                answer,
                amount,
            })
            .into_response())
        }
        Err(ModemError::Timeout { .. }) => Err(ApiError::other(
            StatusCode::GATEWAY_TIMEOUT,
            "ussd_timeout",
            "No answer",
            format!(
                "the operator did not answer {code} within {} s",
                timeout.as_secs()
            ),
        )),
        Err(e) => Err(ApiError::other(
            StatusCode::BAD_GATEWAY,
            "modem_error",
            "Modem error",
            format!("modem {name}: {e}"),
        )),
    }
}
