//! The Twilio-compatible Messages API under `/2010-04-01/Accounts/{AccountSid}/`: create
//! (form-encoded, as Twilio's helper libraries send it), fetch, list and cancel, with HTTP
//! Basic authentication (account SID and auth token from `[twilio]`), Twilio's JSON shapes,
//! status names and error JSON. It is a second door into the one queue: what it creates is an
//! ordinary message (see [`crate::twilio`]).

use std::collections::VecDeque;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Value, json};

use super::messages::{NewMessage, accept, build, idempotent, to_json};
use super::{ApiError, AppState, Caller};
use crate::domain::Canceller;
use crate::store::inbound::{InboundFilter, InboundMessage};
use crate::store::{ListFilter, Message, Status};
use crate::twilio::{API_VERSION, Account, TwilioLink, id_of, rfc2822, sid_of};

mod list;
pub use list::list;

/// Most messages one list page holds.
const MAX_PAGE: usize = 1000;
/// Most records a list request looks at (filters that match little stop here).
const MAX_SCAN: usize = 20_000;

/// An error in Twilio's JSON shape: `{"code", "message", "more_info", "status"}`.
#[derive(Debug, Clone)]
pub struct TwilioError {
    status: StatusCode,
    code: u32,
    message: String,
}

impl TwilioError {
    fn new(status: StatusCode, code: u32, message: impl Into<String>) -> Self {
        TwilioError {
            status,
            code,
            message: message.into(),
        }
    }

    fn bad(code: u32, message: impl Into<String>) -> Self {
        TwilioError::new(StatusCode::BAD_REQUEST, code, message)
    }

    fn not_found(path: &str) -> Self {
        TwilioError::new(
            StatusCode::NOT_FOUND,
            20404,
            format!("The requested resource {path} was not found"),
        )
    }
}

impl TwilioError {
    /// Every path of a door that is off: a 404 that says why, so that whoever tries it does
    /// not hunt for a wrong URL.
    fn off() -> Self {
        TwilioError::new(
            StatusCode::NOT_FOUND,
            20404,
            "The Twilio-compatible API is off: set [twilio] account_sid and auth_token \
             (see docs/twilio.md)",
        )
    }
}

impl IntoResponse for TwilioError {
    fn into_response(self) -> Response {
        let body = json!({
            "code": self.code,
            "message": self.message,
            "more_info": format!("https://www.twilio.com/docs/errors/{}", self.code),
            "status": self.status.as_u16(),
        });
        let mut resp = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"Twilio API\""),
            );
        }
        resp
    }
}

impl From<ApiError> for TwilioError {
    fn from(e: ApiError) -> Self {
        let code = match e.status {
            StatusCode::SERVICE_UNAVAILABLE => 20503,
            StatusCode::CONFLICT => 20409,
            StatusCode::NOT_FOUND => 20404,
            StatusCode::PAYLOAD_TOO_LARGE => 20413,
            StatusCode::INTERNAL_SERVER_ERROR => 20500,
            _ => 21600,
        };
        let status = if e.status == StatusCode::UNPROCESSABLE_ENTITY {
            StatusCode::BAD_REQUEST
        } else {
            e.status
        };
        TwilioError::new(status, code, e.detail)
    }
}

impl From<crate::store::StoreError> for TwilioError {
    fn from(e: crate::store::StoreError) -> Self {
        ApiError::from(e).into()
    }
}

/// HTTP Basic with the account SID and auth token; the path's account must be that one.
/// Like the bearer door, an address that presented too many wrong credentials is answered 429
/// (in Twilio's error format, code 20429, with `Retry-After`) until its window ends.
pub async fn auth(
    State(state): State<AppState>,
    client: super::throttle::ClientAddr,
    mut req: Request,
    next: Next,
) -> Response {
    let Some(account) = state.webhooks.twilio().map(|h| h.account.clone()) else {
        return TwilioError::off().into_response();
    };
    let credentials = req.headers().contains_key(header::AUTHORIZATION);
    if credentials && let Some(wait) = state.failures.blocked(client) {
        metrics::counter!(crate::metrics::AUTH_THROTTLED).increment(1);
        let secs = super::throttle::retry_after_secs(wait);
        let mut r = TwilioError::new(
            StatusCode::TOO_MANY_REQUESTS,
            20429,
            format!("Too Many Requests: too many wrong credentials from this address; try again in {secs} s"),
        )
        .into_response();
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        return r;
    }
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|h| {
            h.get(..6)
                .filter(|p| p.eq_ignore_ascii_case("basic "))
                .map(|_| h[6..].trim())
        })
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok());
    let ok = presented
        .as_deref()
        .and_then(|p| p.split_once(':'))
        .is_some_and(|(user, pass)| {
            // Both compared whatever the first gives: the time tells nothing.
            let u = crate::util::same(user, &account.sid);
            let p = crate::util::same(pass, &account.token);
            u & p
        });
    if !ok {
        if credentials {
            state.failures.record(client);
        }
        return TwilioError::new(StatusCode::UNAUTHORIZED, 20003, "Authenticate").into_response();
    }
    let path_account = req
        .uri()
        .path()
        .trim_start_matches(&format!("/{API_VERSION}/Accounts/"))
        .split('/')
        .next()
        .unwrap_or("")
        .trim_end_matches(".json")
        .to_string();
    if path_account != account.sid {
        return TwilioError::not_found(req.uri().path()).into_response();
    }
    req.extensions_mut()
        .insert(Caller(format!("twilio:{}", account.sid)));
    // The Twilio door sends and reads messages, nothing else: what `send` + `read` allow.
    req.extensions_mut().insert(super::Scopes::from_iter([
        super::Scope::Send,
        super::Scope::Read,
    ]));
    req.extensions_mut().insert(account);
    next.run(req).await
}

/// The number of modem `name`, when its SIM knows it.
fn number_of(state: &AppState, name: &str) -> Option<String> {
    state
        .modems()
        .iter()
        .find(|h| h.name() == name)
        .and_then(|h| h.status().info.own_number)
}

/// A number as compared: E.164 when it parses, else its `+` and digits (a SIM's own number
/// need not be one the numbering plan knows).
fn number_key(n: &str, region: Option<&str>) -> String {
    crate::numbers::to_e164(n, region).map_or_else(
        |_| {
            n.chars()
                .filter(|c| c.is_ascii_digit() || *c == '+')
                .collect()
        },
        String::from,
    )
}

/// The modem a `From` names: by its number or by its name.
fn modem_for(state: &AppState, from: &str) -> Option<String> {
    let region = state.cfg.messages.default_region.as_deref();
    let wanted = number_key(from, region);
    state.modems().iter().find_map(|h| {
        let by_name = h.name() == from;
        let by_number = !wanted.is_empty()
            && h.status()
                .info
                .own_number
                .as_deref()
                .is_some_and(|n| number_key(n, region) == wanted);
        (by_name || by_number).then(|| h.name().to_string())
    })
}

fn uri_of(account: &str, sid: &str) -> String {
    format!("/{API_VERSION}/Accounts/{account}/Messages/{sid}.json")
}

/// A message in Twilio's JSON shape.
fn message_json(state: &AppState, account: &str, m: &Message) -> Value {
    let sid = sid_of(&m.id);
    let link = m.twilio.as_ref();
    // The number it went out from; the `From` asked for until a modem took it.
    let from = m
        .modem
        .as_deref()
        .and_then(|n| number_of(state, n))
        .or_else(|| link.and_then(|l| l.from.clone()))
        .or_else(|| m.modem.clone());
    let (error_code, error_message) = match crate::twilio::error_of(m) {
        Some((c, msg)) => (json!(c), json!(msg)),
        None => (Value::Null, Value::Null),
    };
    let uri = uri_of(account, &sid);
    json!({
        "account_sid": account,
        "api_version": API_VERSION,
        "body": m.text,
        "date_created": rfc2822(m.created_at),
        "date_sent": m.sent_at.map(rfc2822),
        "date_updated": rfc2822(m.updated_at),
        "direction": link.map_or("outbound-api", |l| l.direction.as_str()),
        "error_code": error_code,
        "error_message": error_message,
        "from": from,
        "messaging_service_sid": link.and_then(|l| l.messaging_service_sid.clone()),
        "num_media": "0",
        "num_segments": m.parts.to_string(),
        "price": Value::Null,
        "price_unit": "USD",
        "sid": sid,
        "status": crate::twilio::status_name(m),
        "subresource_uris": {
            "media": uri.replace(".json", "/Media.json"),
            "feedback": uri.replace(".json", "/Feedback.json"),
        },
        "to": m.to,
        "uri": uri,
        "smsgate_id": m.id,
        "smsgate_status": m.status,
    })
}

/// A received message in Twilio's JSON shape.
fn inbound_json(state: &AppState, account: &str, m: &InboundMessage) -> Value {
    let sid = sid_of(&m.id);
    let uri = uri_of(account, &sid);
    json!({
        "account_sid": account,
        "api_version": API_VERSION,
        "body": m.text,
        "date_created": rfc2822(m.received_at),
        "date_sent": rfc2822(m.received_at),
        "date_updated": rfc2822(m.received_at),
        "direction": "inbound",
        "error_code": Value::Null,
        "error_message": Value::Null,
        "from": m.from,
        "messaging_service_sid": Value::Null,
        "num_media": "0",
        "num_segments": m.total_parts.max(1).to_string(),
        "price": Value::Null,
        "price_unit": "USD",
        "sid": sid,
        "status": "received",
        "subresource_uris": {
            "media": uri.replace(".json", "/Media.json"),
            "feedback": uri.replace(".json", "/Feedback.json"),
        },
        "to": number_of(state, &m.modem).unwrap_or_else(|| m.modem.clone()),
        "uri": uri,
        "smsgate_id": m.id,
    })
}

/// The last value of each parameter of a form body, and an error for a body that is not one.
fn form(headers: &HeaderMap, body: &Bytes) -> Result<Vec<(String, String)>, TwilioError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !body.is_empty() && !ct.starts_with("application/x-www-form-urlencoded") {
        return Err(TwilioError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            20415,
            "send the parameters form-encoded (application/x-www-form-urlencoded), as Twilio's clients do",
        ));
    }
    let text =
        std::str::from_utf8(body).map_err(|_| TwilioError::bad(21600, "the form is not UTF-8"))?;
    Ok(crate::twilio::parse_form(text))
}

fn param<'a>(p: &'a [(String, String)], name: &str) -> Option<&'a str> {
    p.iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Parameters this door cannot honour: a message with them would not be what was asked.
const REFUSED: [(&str, u32, &str); 3] = [
    (
        "MediaUrl",
        21620,
        "MediaUrl: a modem sends SMS only, not MMS",
    ),
    (
        "ContentSid",
        21656,
        "ContentSid: content templates are not supported; send Body",
    ),
    (
        "SendAsMms",
        21620,
        "SendAsMms: a modem sends SMS only, not MMS",
    ),
];

/// `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`
pub async fn create(
    State(state): State<AppState>,
    Extension(Caller(caller)): Extension<Caller>,
    Extension(account): Extension<Account>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, TwilioError> {
    let p = form(&headers, &body)?;
    for (name, code, why) in REFUSED {
        if param(&p, name).is_some_and(|v| !v.is_empty() && v != "false") {
            return Err(TwilioError::bad(code, why));
        }
    }
    let Some(to) = param(&p, "To").filter(|t| !t.trim().is_empty()) else {
        return Err(TwilioError::bad(21604, "A 'To' phone number is required."));
    };
    let Some(text) = param(&p, "Body").filter(|b| !b.is_empty()) else {
        return Err(TwilioError::bad(21602, "Message body is required."));
    };
    if text.chars().count() > 1600 {
        return Err(TwilioError::bad(
            21617,
            "The concatenated message body exceeds the 1600 character limit.",
        ));
    }
    let from = param(&p, "From").filter(|f| !f.is_empty());
    let service = param(&p, "MessagingServiceSid").filter(|f| !f.is_empty());
    let status_callback = param(&p, "StatusCallback").filter(|f| !f.is_empty());
    let now = state.clock.now();
    let send_at = match (param(&p, "ScheduleType"), param(&p, "SendAt")) {
        (Some("fixed"), Some(at)) => {
            let t = DateTime::parse_from_rfc3339(at)
                .map_err(|e| {
                    TwilioError::bad(35111, format!("SendAt {at:?} is not an ISO 8601 time: {e}"))
                })?
                .with_timezone(&Utc);
            if t <= now {
                return Err(TwilioError::bad(35114, "SendAt must be in the future."));
            }
            Some(t)
        }
        (Some("fixed"), None) => {
            return Err(TwilioError::bad(
                35111,
                "SendAt is required with ScheduleType=fixed.",
            ));
        }
        (Some(other), _) => {
            return Err(TwilioError::bad(
                35111,
                format!("ScheduleType {other:?} is not supported; use fixed."),
            ));
        }
        (None, Some(_)) => {
            return Err(TwilioError::bad(35111, "SendAt needs ScheduleType=fixed."));
        }
        (None, None) => None,
    };
    let expires_at = match param(&p, "ValidityPeriod") {
        None | Some("") => None,
        Some(v) => {
            let secs: i64 = v
                .parse()
                .ok()
                .filter(|s| (1..=36_000).contains(s))
                .ok_or_else(|| {
                    TwilioError::bad(
                        30012,
                        format!("ValidityPeriod {v:?} must be 1 to 36000 seconds."),
                    )
                })?;
            Some(send_at.unwrap_or(now) + chrono::Duration::seconds(secs))
        }
    };
    let modem = from.and_then(|f| modem_for(&state, f));
    let link = TwilioLink {
        account_sid: account.sid.clone(),
        from: from.map(str::to_string),
        messaging_service_sid: service.map(str::to_string),
        status_callback: status_callback.map(str::to_string),
        direction: "outbound-api".into(),
        modem: modem.clone(),
    };
    let mut input = json!({ "to": to, "text": text });
    if let Some(t) = send_at {
        input["send_at"] = json!(t);
    }
    if let Some(t) = expires_at {
        input["expires_at"] = json!(t);
    }
    if let Some(url) = status_callback {
        // Checked like any callback URL; the events themselves go in Twilio's form.
        crate::webhook::validate_callback(url, state.cfg.own_address, &state.cfg.outbound)
            .map_err(|e| {
                TwilioError::bad(
                    21609,
                    format!("The StatusCallback URL {url} is not valid: {e}"),
                )
            })?;
    }
    let input: NewMessage = serde_json::from_value(input)
        .map_err(|e| TwilioError::bad(21600, format!("invalid parameters: {e}")))?;
    // `I-Twilio-Idempotency-Token` (Twilio's) or `Idempotency-Key` (smsgate's).
    let mut idem_headers = HeaderMap::new();
    if let Some(v) = headers
        .get("i-twilio-idempotency-token")
        .or_else(|| headers.get("idempotency-key"))
    {
        idem_headers.insert("idempotency-key", v.clone());
    }
    let fingerprint_body = json!(p);
    let st = state.clone();
    let who = caller.clone();
    let r = idempotent(
        &state,
        &idem_headers,
        &who,
        "twilio-messages",
        fingerprint_body,
        |idem| async move {
            let mut m = build(&st, &caller, &input, "", now).map_err(|errors| {
                let e = errors.first().cloned();
                let detail = errors
                    .iter()
                    .map(|e| format!("{}: {}", e.field, e.detail))
                    .collect::<Vec<_>>()
                    .join("; ");
                match e.as_ref().map(|e| e.field.as_str()) {
                    Some("to") => ApiError::field("To", detail),
                    _ => ApiError::validation(errors),
                }
            })?;
            m.twilio = Some(link);
            let out = to_json(&message_json(&st, &account.sid, &m))?;
            accept(&st, &m, idem, &out, now, "twilio").await?;
            Ok((StatusCode::CREATED, out))
        },
    )
    .await;
    r.map_err(
        |e| match (e.kind, e.errors.first().map(|f| f.field.as_str())) {
            ("opted_out", _) => {
                TwilioError::bad(21610, "Attempt to send to unsubscribed recipient")
            }
            (_, Some("To")) | (_, Some("to")) => TwilioError::bad(
                21211,
                format!(
                    "The 'To' number {to} is not a valid phone number. ({})",
                    e.detail
                ),
            ),
            (_, Some("text")) => TwilioError::bad(21617, e.detail),
            _ => e.into(),
        },
    )
}

/// The id a `{Sid}.json` path segment names.
fn sid_param(file: &str) -> Option<(String, String)> {
    let sid = file.strip_suffix(".json").unwrap_or(file);
    id_of(sid).map(|id| (sid.to_string(), id))
}

/// `GET /2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json`
pub async fn fetch(
    State(state): State<AppState>,
    Extension(account): Extension<Account>,
    Path((_, file)): Path<(String, String)>,
    req_uri: axum::http::Uri,
) -> Result<Response, TwilioError> {
    let Some((_, id)) = sid_param(&file) else {
        return Err(TwilioError::not_found(req_uri.path()));
    };
    if let Some(m) = state.store.get(&id)? {
        return Ok(axum::Json(message_json(&state, &account.sid, &m)).into_response());
    }
    if let Some(m) = state.store.inbound(&id)? {
        return Ok(axum::Json(inbound_json(&state, &account.sid, &m)).into_response());
    }
    Err(TwilioError::not_found(req_uri.path()))
}

/// `POST /2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json`: `Status=canceled` cancels a
/// message by the API's one rule ([`crate::domain::Message::cancellable`]): a scheduled or
/// queued one, or an `unknown` or `failed` one not to be sent again.
pub async fn update(
    State(state): State<AppState>,
    Extension(Caller(caller)): Extension<Caller>,
    Extension(account): Extension<Account>,
    Path((_, file)): Path<(String, String)>,
    req_uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, TwilioError> {
    let p = form(&headers, &body)?;
    let Some((_, id)) = sid_param(&file) else {
        return Err(TwilioError::not_found(req_uri.path()));
    };
    match param(&p, "Status") {
        Some("canceled") => {}
        Some(other) => {
            return Err(TwilioError::bad(
                21600,
                format!("Status {other:?} cannot be set; only canceled."),
            ));
        }
        None if param(&p, "Body").is_some() => {
            return Err(TwilioError::bad(
                21600,
                "Redacting a message's Body is not supported; smsgate keeps its history.",
            ));
        }
        None => {
            return Err(TwilioError::bad(
                21600,
                "Nothing to change: send Status=canceled.",
            ));
        }
    }
    let r = state.store.update(&id, |m| {
        m.cancel(Canceller::Twilio)
            .ok()
            .map(|n| n.by(Some(&caller)))
    })?;
    let Some((m, changed)) = r else {
        return Err(TwilioError::not_found(req_uri.path()));
    };
    if !changed && m.status != Status::Cancelled {
        return Err(TwilioError::bad(
            30409,
            format!(
                "This message cannot be canceled: it is {}.",
                crate::twilio::status_name(&m)
            ),
        ));
    }
    state.store.durable().await?;
    Ok(axum::Json(message_json(&state, &account.sid, &m)).into_response())
}

/// Every path of this door that does not exist answers Twilio's 404.
pub async fn not_found(uri: axum::http::Uri) -> TwilioError {
    TwilioError::not_found(uri.path())
}
