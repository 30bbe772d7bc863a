//! API errors as RFC 9457 problem details (`application/problem+json`). Internals are logged,
//! never sent to the client.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::store::StoreError;

/// One field's problem.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct FieldError {
    /// The JSON field (`to`, `messages[3].text`).
    pub field: String,
    /// What is wrong.
    pub detail: String,
}

/// An error answer.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable kind: the `type` is `urn:smsgate:problem:<kind>`.
    pub kind: &'static str,
    /// Short summary.
    pub title: &'static str,
    /// This occurrence, in words.
    pub detail: String,
    /// Fields at fault.
    pub errors: Vec<FieldError>,
}

/// RFC 9457 problem details, as sent.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// `urn:smsgate:problem:<kind>`: stable, for programs.
    #[serde(rename = "type")]
    kind: String,
    /// Short summary.
    title: String,
    /// The HTTP status.
    status: u16,
    /// This occurrence, in words.
    detail: String,
    /// The field at fault, when there is exactly one.
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
    /// Every field at fault.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<FieldError>,
}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, title: &'static str, detail: String) -> Self {
        ApiError {
            status,
            kind,
            title,
            detail,
            errors: Vec::new(),
        }
    }

    /// 422: invalid fields.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.detail))
            .collect::<Vec<_>>()
            .join("; ");
        ApiError {
            errors,
            ..ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation",
                "Invalid request",
                detail,
            )
        }
    }

    /// 422: the recipients at fault opted out of messages.
    pub fn opted_out(errors: Vec<FieldError>) -> Self {
        let mut e = ApiError::validation(errors);
        e.kind = "opted_out";
        e.title = "Recipient opted out";
        e
    }

    /// 422 for one field.
    pub fn field(field: &str, detail: impl Into<String>) -> Self {
        ApiError::validation(vec![FieldError {
            field: field.to_string(),
            detail: detail.into(),
        }])
    }

    /// 400.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "Bad request",
            detail.into(),
        )
    }

    /// 401.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Authentication required",
            detail.into(),
        )
    }

    /// Any other status, with its kind and title.
    pub fn other(
        status: StatusCode,
        kind: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        ApiError::new(status, kind, title, detail.into())
    }

    /// 403: a change from the admin page without its session's CSRF token.
    pub fn csrf() -> Self {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "csrf",
            "Forbidden",
            "a change made with a session cookie needs the session's `X-CSRF-Token` header \
             (reload the admin page)"
                .into(),
        )
    }

    /// 403: the key lacks the scope the route needs (`urn:smsgate:problem:forbidden`).
    pub fn forbidden(scope: super::keys::Scope) -> Self {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "Forbidden",
            format!(
                "this API key does not hold the scope `{scope}` (or `admin`) that this operation needs"
            ),
        )
    }

    /// 404.
    pub fn not_found(detail: impl Into<String>) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "Not found",
            detail.into(),
        )
    }

    /// 409.
    pub fn conflict(kind: &'static str, detail: impl Into<String>) -> Self {
        ApiError::new(StatusCode::CONFLICT, kind, "Conflict", detail.into())
    }

    /// 500: a fault of the daemon itself.
    pub fn internal(detail: impl Into<String>) -> Self {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            detail.into(),
        )
    }

    /// 503: the store cannot take the write; nothing was acknowledged.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Service unavailable",
            detail.into(),
        )
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        if let StoreError::Conflict(why) = e {
            return ApiError::conflict("conflict", why);
        }
        tracing::error!(error = %e, "store error");
        ApiError::unavailable(
            "the message store cannot be written right now (disk full, read-only or failing), so the request was not acknowledged; the gateway reopens the store by itself once the disk takes writes again. Send it again then, with the same Idempotency-Key, so it is kept exactly once",
        )
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::MissingJsonContentType(_) => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Unsupported media type",
                "send the body as JSON with `Content-Type: application/json`".into(),
            ),
            JsonRejection::JsonSyntaxError(e) => {
                ApiError::bad_request(format!("malformed JSON: {}", e.body_text()))
            }
            JsonRejection::JsonDataError(e) => {
                let text = e.body_text();
                // serde_path_to_error's text: "Failed to deserialize the JSON body into the target
                // type: <path>: <message>".
                let tail = text
                    .strip_prefix("Failed to deserialize the JSON body into the target type: ")
                    .unwrap_or(&text);
                let (field, detail) = match tail.split_once(": ") {
                    Some((f, d)) if !f.contains(' ') => (f.to_string(), d.to_string()),
                    _ => ("body".to_string(), tail.to_string()),
                };
                ApiError::field(&field, detail)
            }
            JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    "Payload too large",
                    "the request body is larger than the configured limit".into(),
                )
            }
            other => ApiError::bad_request(other.body_text()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let field = (self.errors.len() == 1).then(|| self.errors[0].field.clone());
        let body = Problem {
            kind: format!("urn:smsgate:problem:{}", self.kind),
            title: self.title.to_string(),
            status: self.status.as_u16(),
            detail: self.detail,
            field,
            errors: self.errors,
        };
        let mut resp = (self.status, Json(body)).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}
