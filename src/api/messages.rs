//! `/v1/messages`: create (one or a batch), read, list, cancel, requeue.

use std::collections::BTreeMap;

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, FixedOffset, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{ApiError, ApiJson, AppState, Caller, FieldError};
use crate::domain::{Canceller, NotAllowed};
use crate::sms::TextPlan;
use crate::store::{Attempt, Event, ListFilter, Message, Part, Priority, Reply, Status};

/// Most messages in one batch.
pub const MAX_BATCH: usize = 1000;

/// A new message as posted.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMessage {
    /// Phone number; E.164 (`+12025550123`), or national with `[sms] default_region`.
    #[schema(value_type = crate::domain::schema::PhoneNumberInput)]
    pub to: String,
    /// The text: 1 to `max_parts` SMS parts.
    #[schema(
        example = "Invoice INV-1042: $120.50 is due Dec 1. Reply 1 for a call.",
        min_length = 1
    )]
    pub text: String,
    /// Not before this time (RFC 3339).
    send_at: Option<DateTime<FixedOffset>>,
    /// Never after this time (RFC 3339).
    expires_at: Option<DateTime<FixedOffset>>,
    /// Order among due messages (default `normal`).
    priority: Option<Priority>,
    /// Reply choices offered in the text, e.g. `{"1": "call_me", "2": "pay_minimum"}`.
    #[schema(value_type = Option<crate::domain::schema::ReplyOptions>)]
    reply_options: Option<BTreeMap<String, String>>,
    /// `http(s)` URL for this message's events.
    #[schema(value_type = Option<crate::domain::schema::CallbackUrl>)]
    callback_url: Option<String>,
    /// A JSON object (at most 4 KiB), returned as given.
    #[schema(value_type = Option<Object>)]
    metadata: Option<Value>,
    /// Ask for a delivery report (default from config).
    status_report: Option<bool>,
    /// Longest acceptable delay past the due time, e.g. `"6h"`.
    #[schema(value_type = Option<crate::domain::schema::DurationText>)]
    max_lateness: Option<String>,
    /// Local hours it may go out in (outside them it waits); default none, or `[send_window]`
    /// with `all_messages = true`.
    send_window: Option<crate::reminders::plan::WindowTimes>,
    /// The recipient's IANA time zone, for `send_window` (default `[reminders] timezone`).
    #[schema(value_type = Option<crate::domain::schema::TimeZone>)]
    timezone: Option<String>,
}

/// `POST /v1/messages/batch` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    /// 1 to 1000 messages.
    #[schema(min_items = 1, max_items = 1000)]
    pub messages: Vec<NewMessage>,
}

/// A message as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MessageView {
    /// Message id (ULID).
    pub id: String,
    /// E.164 destination.
    pub to: String,
    /// The text.
    pub text: String,
    /// Where it is.
    pub status: Status,
    /// Why it is there.
    pub status_reason: Option<String>,
    /// `gsm7` or `ucs2`.
    pub encoding: String,
    /// Number of SMS parts.
    pub parts: u8,
    /// Order among due messages.
    pub priority: Priority,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Not before.
    pub send_at: Option<DateTime<Utc>>,
    /// Not after.
    pub expires_at: Option<DateTime<Utc>>,
    /// When a waiting message may go next (after `send_at` or a retry backoff); when read
    /// (`GET`), when it is looked at next, never in the past.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Why a waiting message does not go out now (a rule holds it, or no modem takes work)
    /// and when it is looked at again; `null` when it is not held. Filled when read (`GET`).
    pub hold: Option<crate::dispatch::Hold>,
    /// Longest acceptable delay past the due time.
    pub max_lateness_seconds: u64,
    /// Reply choices offered.
    pub reply_options: Option<BTreeMap<String, String>>,
    /// Where its events go.
    pub callback_url: Option<String>,
    /// The caller's data.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
    /// Delivery report requested.
    pub status_report: bool,
    /// The modem that sent it.
    pub modem: Option<String>,
    /// When the network accepted it.
    pub sent_at: Option<DateTime<Utc>>,
    /// When it was delivered.
    pub delivered_at: Option<DateTime<Utc>>,
    /// Each part as last sent.
    pub part_status: Vec<Part>,
    /// Every try.
    pub attempts: Vec<Attempt>,
    /// The recipient's answers, oldest first.
    pub replies: Vec<Reply>,
    /// The hours it may go out in, in the recipient's time zone.
    pub send_window: Option<crate::reminders::window::WindowSpec>,
    /// The reminder plan step it is the text of.
    pub reminder: Option<crate::store::ReminderLink>,
    /// Created through the Twilio-compatible API: what its request said (its SID is `SM`
    /// and the 32 hex digits of `id`).
    pub twilio: Option<crate::twilio::TwilioLink>,
    /// Set when the text was removed (`[retention] message_text_after`, or a Twilio `Body=""`
    /// redaction): `text` is then empty and this keeps its SHA-256.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redacted: Option<crate::domain::Redaction>,
}

/// A message with its history.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MessageWithEvents {
    /// The message.
    #[serde(flatten)]
    pub message: MessageView,
    /// Its history, oldest first.
    pub events: Vec<Event>,
}

/// One page of messages.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MessagePage {
    /// Newest first.
    pub messages: Vec<MessageView>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// The messages a batch created.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BatchCreated {
    /// In the order posted.
    pub messages: Vec<MessageView>,
}

pub(crate) use super::idempotency::{idempotency_record, idempotent};
use crate::numbers::to_e164;

/// Checks and turns a posted message into a record (the Twilio-compatible door's too).
/// `prefix` names the fields in errors.
pub(crate) fn build(
    state: &AppState,
    caller: &str,
    input: &NewMessage,
    prefix: &str,
    now: DateTime<Utc>,
) -> Result<Message, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut err = |field: &str, detail: String| {
        errors.push(FieldError {
            field: format!("{prefix}{field}"),
            detail,
        })
    };
    let to = to_e164(&input.to, state.cfg.messages.default_region.as_deref())
        .map(String::from)
        .map_err(|e| err("to", e.to_string()))
        .ok();
    if let Some(t) = &to
        && !state
            .dispatcher
            .pool()
            .routable(t, crate::dispatch::Traffic::Messages)
    {
        err(
            "to",
            format!("no modem sends messages to {t} (see `prefixes` and `only_for` in [[modems]])"),
        );
    }
    let plan = if input.text.is_empty() {
        err("text", "is empty".into());
        None
    } else {
        match TextPlan::new(
            &input.text,
            &state.cfg.messages.national_languages,
            state.cfg.messages.max_parts,
        ) {
            Ok(p) => Some(p),
            Err(e) => {
                err("text", e.to_string());
                None
            }
        }
    };
    let send_at = input.send_at.map(|t| t.with_timezone(&Utc));
    let expires_at = input.expires_at.map(|t| t.with_timezone(&Utc));
    if let Some(e) = expires_at {
        if e <= now {
            err("expires_at", "is in the past".into());
        } else if send_at.is_some_and(|s| s >= e) {
            err("expires_at", "is not after send_at".into());
        }
    }
    if let Some(url) = &input.callback_url
        && let Err(e) =
            crate::webhook::validate_callback(url, state.cfg.own_address, &state.cfg.outbound)
    {
        err("callback_url", e.to_string());
    }
    if let Some(opts) = &input.reply_options
        && let Err(e) = crate::replies::reply_options_problems(opts)
    {
        err("reply_options", e.to_string());
    }
    if let Some(m) = &input.metadata {
        if !m.is_object() {
            err("metadata", "must be a JSON object".into());
        } else if m.to_string().len() > 4096 {
            err("metadata", "is larger than 4 KiB".into());
        }
    }
    let max_lateness = match &input.max_lateness {
        Some(s) => match humantime::parse_duration(s) {
            Ok(d) => d.as_secs(),
            Err(e) => {
                err("max_lateness", format!("{s:?}: {e} (e.g. \"6h\")"));
                0
            }
        },
        None => state.cfg.messages.max_lateness.as_secs(),
    };
    let policy = &state.reminders;
    let timezone = input
        .timezone
        .clone()
        .unwrap_or_else(|| policy.timezone.name().to_string());
    if input.timezone.is_some()
        && let Err(e) = crate::reminders::window::timezone(&timezone)
    {
        err("timezone", e.to_string());
    }
    let send_window = match &input.send_window {
        Some(w) => Some(crate::reminders::window::WindowSpec {
            start: w.start.clone(),
            end: w.end.clone(),
            timezone,
        }),
        None if policy.window_all_messages => Some(policy.window_in(&timezone)),
        None => None,
    };
    let window = match &send_window {
        Some(spec) => match crate::reminders::window::Window::from_spec(spec) {
            Ok(w) => Some(w),
            Err(e) => {
                err("send_window", e.to_string());
                None
            }
        },
        None => None,
    };
    let (Some(to), Some(plan)) = (to, plan) else {
        return Err(errors);
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    // Due when the window next opens at or after its time.
    let due_at = send_at.unwrap_or(now).max(now);
    let due_at = window.map_or(due_at, |w| w.next_open(due_at, &policy.quiet));
    if let (Some(e), Some(w)) = (expires_at, window)
        && due_at >= e
    {
        return Err(vec![FieldError {
            field: format!("{prefix}expires_at"),
            detail: format!(
                "is before its send window opens ({}); it could never be sent",
                due_at.with_timezone(&w.tz).format("%Y-%m-%d %H:%M %Z")
            ),
        }]);
    }
    let scheduled = due_at > now;
    let status = if scheduled {
        Status::Scheduled
    } else {
        Status::Queued
    };
    Ok(Message {
        id: ulid::Ulid::generate().to_string(),
        to,
        text: input.text.clone(),
        encoding: plan.encoding.as_str().to_string(),
        parts: plan.parts.len() as u8,
        status,
        status_reason: None,
        priority: input.priority.unwrap_or_default(),
        created_at: now,
        updated_at: now,
        send_at,
        expires_at,
        max_lateness_secs: max_lateness,
        due_at,
        reply_options: input.reply_options.clone(),
        callback_url: input.callback_url.clone(),
        metadata: input.metadata.clone(),
        status_report: input
            .status_report
            .unwrap_or(state.cfg.messages.status_report),
        attempts: Vec::new(),
        part_status: Vec::new(),
        modem: None,
        sent_at: None,
        delivered_at: None,
        created_by: caller.to_string(),
        history_len: 0,
        // Held to its window: lateness counts from when the window opens.
        requeued_at: (due_at > send_at.unwrap_or(now).max(now)).then_some(due_at),
        accepted_as: status,
        replies: Vec::new(),
        history_hash: None,
        redacted: None,
        send_window,
        reminder: None,
        twilio: None,
    })
}

/// The API view of a message.
pub fn view(m: &Message) -> MessageView {
    MessageView {
        id: m.id.clone(),
        to: m.to.clone(),
        text: m.text.clone(),
        status: m.status,
        status_reason: m.status_reason.clone(),
        encoding: m.encoding.clone(),
        parts: m.parts,
        priority: m.priority,
        created_at: m.created_at,
        updated_at: m.updated_at,
        send_at: m.send_at,
        expires_at: m.expires_at,
        next_attempt_at: m.status.is_waiting().then_some(m.due_at),
        hold: None,
        max_lateness_seconds: m.max_lateness_secs,
        reply_options: m.reply_options.clone(),
        callback_url: m.callback_url.clone(),
        metadata: m.metadata.clone(),
        status_report: m.status_report,
        modem: m.modem.clone(),
        sent_at: m.sent_at,
        delivered_at: m.delivered_at,
        part_status: m.part_status.clone(),
        attempts: m.attempts.clone(),
        replies: m.replies.clone(),
        send_window: m.send_window.clone(),
        reminder: m.reminder.clone(),
        twilio: m.twilio.clone(),
        redacted: m.redacted.clone(),
    }
}

/// The API view of a message as it stands at `now`, with the modems as `gate` says: why it
/// is held, and when it is looked at next.
pub fn view_at(m: &Message, now: DateTime<Utc>, gate: &crate::dispatch::Gate) -> MessageView {
    let mut v = view(m);
    v.hold = crate::dispatch::hold::explain(m, now, Some(gate));
    v.next_attempt_at = crate::dispatch::hold::next_look(m, now, v.hold.as_ref());
    v
}

pub(crate) fn to_json<T: Serialize>(v: &T) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(v).map_err(|e| ApiError::internal(format!("cannot encode the answer: {e}")))
}

/// `POST /v1/messages`
#[utoipa::path(post, path = "/v1/messages", tag = "messages",
    request_body = NewMessage,
    params(("Idempotency-Key" = Option<String>, Header, description = "A retry with the same key and body returns the first answer: 1 to 255 printable ASCII characters, not starting or ending with a space.", min_length = 1, max_length = 255, pattern = "^[!-~]([ -~]*[!-~])?$")),
    responses(
        (status = 201, description = "Accepted and on disk", body = MessageView),
        (status = 400, body = super::error::Problem), (status = 401, body = super::error::Problem),
        (status = 409, body = super::error::Problem), (status = 413, body = super::error::Problem),
        (status = 415, body = super::error::Problem), (status = 422, body = super::error::Problem),
        (status = 503, body = super::error::Problem)),
    security(("bearer" = ["send"])))]
pub async fn create(
    State(state): State<AppState>,
    Extension(Caller(caller)): Extension<Caller>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let input: NewMessage =
        serde_path_to_error::deserialize(&body).map_err(|e| json_field_error(&e, ""))?;
    let st = state.clone();
    let who = caller.clone();
    idempotent(
        &state,
        &headers,
        &who,
        "messages",
        body,
        |idem| async move {
            let now = st.clock.now();
            let m = build(&st, &caller, &input, "", now).map_err(ApiError::validation)?;
            let out = to_json(&view(&m))?;
            accept(&st, &m, idem, &out, now, "api").await?;
            Ok((StatusCode::CREATED, out))
        },
    )
    .await
}

/// Stores one accepted message (refused when its number opted out) with the record that makes
/// a retry with the same Idempotency-Key get `answer` again, durably, and wakes the dispatcher.
pub(crate) async fn accept(
    st: &AppState,
    m: &Message,
    idem: Option<(String, String)>,
    answer: &[u8],
    now: DateTime<Utc>,
    via: &str,
) -> Result<(), ApiError> {
    let rec = idempotency_record(idem, answer, now);
    if let Some(o) = st
        .store
        .insert_unless_opted_out(m, rec.as_ref().map(|(k, r)| (k.as_str(), r)))
        .await?
    {
        return Err(ApiError::opted_out(vec![opted_out_error(&o, &m.to, "")]));
    }
    st.dispatcher.announce().await?;
    tracing::info!(message_id = %m.id, to = %crate::numbers::masked(&m.to), parts = m.parts, via, "message accepted");
    metrics::counter!(crate::metrics::ACCEPTED).increment(1);
    Ok(())
}

/// The error for a message to a number that opted out, if it did.
pub(crate) fn opted_out(
    st: &AppState,
    to: &str,
    prefix: &str,
) -> Result<Option<FieldError>, ApiError> {
    Ok(st
        .store
        .optout(to)?
        .map(|o| opted_out_error(&o, to, prefix)))
}

/// The error for a message to `to`, which opted out with `o`.
fn opted_out_error(o: &crate::store::optout::OptOut, to: &str, prefix: &str) -> FieldError {
    let how = match (&o.source[..], &o.keyword) {
        ("keyword", Some(k)) => format!("texted {k:?}"),
        _ => "opted out through the API".to_string(),
    };
    FieldError {
        field: format!("{prefix}to"),
        detail: format!(
            "{} opted out of messages ({how} on {}); nothing is sent to it until it opts back in (texts START, or DELETE /v1/opt-outs/{})",
            to,
            o.opted_out_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            to
        ),
    }
}

pub(crate) fn json_field_error(
    e: &serde_path_to_error::Error<serde_json::Error>,
    prefix: &str,
) -> ApiError {
    let path = e.path().to_string();
    let field = if path == "." {
        "body".to_string()
    } else {
        format!("{prefix}{path}")
    };
    ApiError::field(&field, e.inner().to_string())
}

/// `POST /v1/messages/batch`: all or nothing, one flush.
#[utoipa::path(post, path = "/v1/messages/batch", tag = "messages",
    request_body = Batch,
    params(("Idempotency-Key" = Option<String>, Header, description = "A retry with the same key and body returns the first answer: 1 to 255 printable ASCII characters, not starting or ending with a space.", min_length = 1, max_length = 255, pattern = "^[!-~]([ -~]*[!-~])?$")),
    responses(
        (status = 201, description = "All accepted and on disk", body = BatchCreated),
        (status = 400, body = super::error::Problem), (status = 401, body = super::error::Problem),
        (status = 409, body = super::error::Problem), (status = 413, body = super::error::Problem),
        (status = 415, body = super::error::Problem), (status = 422, body = super::error::Problem),
        (status = 503, body = super::error::Problem)),
    security(("bearer" = ["send"])))]
pub async fn create_batch(
    State(state): State<AppState>,
    Extension(Caller(caller)): Extension<Caller>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let batch: Batch =
        serde_path_to_error::deserialize(&body).map_err(|e| json_field_error(&e, ""))?;
    if batch.messages.is_empty() || batch.messages.len() > MAX_BATCH {
        return Err(ApiError::field(
            "messages",
            format!("must hold 1 to {MAX_BATCH} messages"),
        ));
    }
    let st = state.clone();
    let who = caller.clone();
    idempotent(&state, &headers, &who, "batch", body, |idem| async move {
        let now = st.clock.now();
        let mut records = Vec::with_capacity(batch.messages.len());
        let mut errors = Vec::new();
        let mut refused = Vec::new();
        for (i, m) in batch.messages.iter().enumerate() {
            let prefix = format!("messages[{i}].");
            match build(&st, &caller, m, &prefix, now) {
                Ok(r) => {
                    if let Some(e) = opted_out(&st, &r.to, &prefix)? {
                        refused.push(e);
                    }
                    records.push(r);
                }
                Err(e) => errors.extend(e),
            }
        }
        if !errors.is_empty() {
            errors.extend(refused);
            return Err(ApiError::validation(errors));
        }
        if !refused.is_empty() {
            return Err(ApiError::opted_out(refused));
        }
        let out = to_json(&BatchCreated {
            messages: records.iter().map(view).collect(),
        })?;
        let rec = idempotency_record(idem, &out, now);
        st.store
            .insert(&records, rec.as_ref().map(|(k, r)| (k.as_str(), r)))?;
        st.dispatcher.announce().await?;
        tracing::info!(count = records.len(), "batch accepted");
        metrics::counter!(crate::metrics::ACCEPTED).increment(records.len() as u64);
        Ok((StatusCode::CREATED, out))
    })
    .await
}

/// `GET /v1/messages/{id}`: the message with its history.
#[utoipa::path(get, path = "/v1/messages/{id}", tag = "messages",
    params(("id" = String, Path, description = "Message id")),
    responses((status = 200, body = MessageWithEvents), (status = 401, body = super::error::Problem),
        (status = 404, body = super::error::Problem), (status = 503, body = super::error::Problem)),
    security(("bearer" = ["read"])))]
pub async fn get_one(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (m, events) = state
        .store
        .get_with_events(&id)?
        .ok_or_else(|| ApiError::not_found(format!("no message {id}")))?;
    let now = state.clock.now();
    let gate = state.dispatcher.pool().gate(now);
    Ok(axum::Json(MessageWithEvents {
        message: view_at(&m, now, &gate),
        events,
    })
    .into_response())
}

/// Filters of `GET /v1/messages`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only this status.
    #[param(value_type = Option<Status>)]
    status: Option<String>,
    /// Only to this number (any form).
    #[param(value_type = Option<crate::domain::schema::PhoneNumberInput>)]
    to: Option<String>,
    /// Only created at or after (RFC 3339).
    since: Option<DateTime<FixedOffset>>,
    /// Page size, 1 to 1000 (default 50).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// The previous page's `next_cursor`.
    #[param(value_type = Option<crate::domain::schema::IdCursor>)]
    cursor: Option<String>,
}

/// `GET /v1/messages?status=&to=&since=&limit=&cursor=`: newest first.
#[utoipa::path(get, path = "/v1/messages", tag = "messages", params(ListQuery),
    responses((status = 200, body = MessagePage), (status = 400, body = super::error::Problem),
        (status = 401, body = super::error::Problem), (status = 422, body = super::error::Problem),
        (status = 503, body = super::error::Problem)),
    security(("bearer" = ["read"])))]
pub async fn list(
    State(state): State<AppState>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let status = match q.status.as_deref() {
        Some(s) => Some(Status::parse(s).ok_or_else(|| {
            ApiError::field(
                "status",
                format!(
                    "unknown status {s:?} (one of {})",
                    Status::ALL.map(Status::as_str).join(", ")
                ),
            )
        })?),
        None => None,
    };
    let to = match q.to.as_deref() {
        Some(t) => Some(
            to_e164(t, state.cfg.messages.default_region.as_deref())
                .map_err(|e| ApiError::field("to", e.to_string()))?
                .into_string(),
        ),
        None => None,
    };
    let limit = super::page_limit(q.limit, q.cursor.as_deref())?;
    let page = state.store.list(&ListFilter {
        status,
        to,
        since: q.since.map(|t| t.with_timezone(&Utc)),
        after: q.cursor.clone(),
        limit,
    })?;
    let next = super::next_cursor(&page, limit, |m| m.id.clone());
    let now = state.clock.now();
    let gate = state.dispatcher.pool().gate(now);
    Ok(axum::Json(MessagePage {
        messages: page.iter().map(|m| view_at(m, now, &gate)).collect(),
        next_cursor: next,
    })
    .into_response())
}

/// `POST /v1/messages/{id}/cancel`: for anything not yet sending, and for an `unknown` or
/// `failed` message an admin decides not to send again (it leaves the list of messages
/// waiting for a decision; its history keeps what it was).
#[utoipa::path(post, path = "/v1/messages/{id}/cancel", tag = "messages",
    params(("id" = String, Path, description = "Message id")),
    responses((status = 200, body = MessageView), (status = 401, body = super::error::Problem),
        (status = 404, body = super::error::Problem), (status = 409, body = super::error::Problem),
        (status = 503, body = super::error::Problem)),
    security(("bearer" = ["send"])))]
pub async fn cancel(
    State(state): State<AppState>,
    Extension(Caller(caller)): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (m, changed) = state
        .store
        .update(&id, |m| {
            m.cancel(Canceller::Api).ok().map(|n| n.by(Some(&caller)))
        })?
        .ok_or_else(|| ApiError::not_found(format!("no message {id}")))?;
    if !changed && m.status != Status::Cancelled {
        return Err(ApiError::conflict(
            "not_cancellable",
            format!(
                "the message is {}; only queued, scheduled, unknown or failed messages can be cancelled",
                m.status.as_str()
            ),
        ));
    }
    state.store.durable().await?;
    Ok(axum::Json(view(&m)).into_response())
}

/// `POST /v1/messages/{id}/requeue`: send an `unknown`, `failed`, `expired` or `cancelled`
/// message again (an admin's decision: an `unknown` one may already be on the phone).
#[utoipa::path(post, path = "/v1/messages/{id}/requeue", tag = "messages",
    params(("id" = String, Path, description = "Message id")),
    responses((status = 200, body = MessageView), (status = 401, body = super::error::Problem),
        (status = 404, body = super::error::Problem), (status = 409, body = super::error::Problem),
        (status = 503, body = super::error::Problem)),
    security(("bearer" = ["send"])))]
pub async fn requeue(
    State(state): State<AppState>,
    Extension(Caller(caller)): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let now = state.clock.now();
    let r = state
        .store
        .update(&id, |m| m.requeue(now).ok().map(|n| n.by(Some(&caller))))?;
    let (m, changed) = r.ok_or_else(|| ApiError::not_found(format!("no message {id}")))?;
    if !changed {
        let why = match m.requeueable(now) {
            Err(NotAllowed::PastExpiry) => {
                "its expires_at has passed; create a new message instead".to_string()
            }
            _ => format!(
                "the message is {}; only unknown, failed, expired or cancelled messages can be requeued",
                m.status.as_str()
            ),
        };
        return Err(ApiError::conflict("not_requeueable", why));
    }
    state.dispatcher.announce().await?;
    Ok(axum::Json(view(&m)).into_response())
}

#[cfg(test)]
mod tests {
    use crate::numbers::to_e164;

    fn normalise_number(input: &str, region: Option<&str>) -> Result<String, String> {
        to_e164(input, region)
            .map(String::from)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn numbers_are_normalised_to_e164() {
        assert_eq!(
            normalise_number("+1 (202) 555-0123", None).unwrap(),
            "+12025550123"
        );
        assert_eq!(
            normalise_number("(202) 555-0123", Some("US")).unwrap(),
            "+12025550123"
        );
        assert_eq!(
            normalise_number("06 12 34 56 78", Some("FR")).unwrap(),
            "+33612345678"
        );
        assert_eq!(
            normalise_number("+4915112345678", Some("US")).unwrap(),
            "+4915112345678"
        );
        assert!(
            normalise_number("2025550123", None)
                .unwrap_err()
                .contains("default_region")
        );
        assert!(
            normalise_number("+15551234567", None)
                .unwrap_err()
                .contains("not a valid number")
        );
        assert!(normalise_number("+1202555012a", None).is_err());
        assert!(normalise_number("", None).is_err());
        assert!(normalise_number("+", None).is_err());
    }
}
