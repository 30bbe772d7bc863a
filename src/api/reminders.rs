//! `/v1/reminders`: an invoice's reminder plan in one call; paid, payment failed, reschedule,
//! cancel. `{id}` is the plan's id or the invoice reference.

use std::collections::BTreeMap;

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::messages::{idempotency_record, idempotent, json_field_error, opted_out, to_json};
use super::{ApiError, ApiJson, AppState, Caller, FieldError};
use crate::reminders::plan::{
    self, Ctx, NewPlan, Outcome, Paid, PaymentFailed, PlanPatch, Refused,
};
use crate::reminders::window::{WindowSpec, timezone};
use crate::store::plans::{Created, Decision, Plan, PlanStatus};
use crate::store::{IdempotencyRecord, Message, Reply, StepKind};

/// One step of a plan as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StepView {
    /// Position in the plan.
    pub index: usize,
    /// `reminder`, `payment_received` or `payment_failed`.
    pub kind: StepKind,
    /// The template it is rendered from.
    pub template: String,
    /// Days from the due date (`-7d`, `now`).
    pub offset: Option<String>,
    /// Local time of day, when the step names one.
    pub time: Option<String>,
    /// When the schedule puts it, in the plan's time zone (before the send window).
    pub planned_at: DateTime<FixedOffset>,
    /// The message's status, or `skipped` when the step has none.
    pub status: String,
    /// Why (`past`, `paid`, `cap`, `precheck`, `send_window`, the modem's error…).
    pub status_reason: Option<String>,
    /// Its message (`GET /v1/messages/{id}`).
    pub message_id: Option<String>,
    /// When it goes, in the plan's time zone: the time it may next be sent while it waits
    /// (the send window applied), the time it was sent after.
    pub send_at: Option<DateTime<FixedOffset>>,
    /// When the network accepted it.
    pub sent_at: Option<DateTime<Utc>>,
    /// When it was delivered.
    pub delivered_at: Option<DateTime<Utc>>,
    /// Not after.
    pub expires_at: Option<DateTime<Utc>>,
    /// The rendered text.
    pub text: Option<String>,
    /// `gsm7` or `ucs2`.
    pub encoding: Option<String>,
    /// Number of SMS parts.
    pub parts: Option<u8>,
    /// Reply choices offered.
    pub reply_options: Option<BTreeMap<String, String>>,
    /// The customer's answers to it.
    pub replies: Vec<Reply>,
    /// Earlier messages of this step, cancelled by a reschedule.
    pub replaced_messages: Vec<String>,
}

/// A plan as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PlanView {
    /// Plan id (ULID).
    pub id: String,
    /// Invoice reference.
    pub invoice: String,
    /// `active`, `paid` or `cancelled`.
    pub status: PlanStatus,
    /// E.164 recipient.
    pub to: String,
    /// Amount due ("120.50").
    pub amount: String,
    /// ISO 4217 code.
    pub currency: String,
    /// Due date.
    pub due_date: NaiveDate,
    /// The recipient's time zone.
    pub timezone: String,
    /// Locale of money and dates.
    pub locale: String,
    /// Template variables (`name`, `pay_url`, `unit`, `property`, custom).
    #[schema(value_type = Object)]
    pub vars: serde_json::Map<String, Value>,
    /// Send hours.
    pub send_window: WindowSpec,
    /// Where the messages' events go.
    pub callback_url: Option<String>,
    /// Asked before each step goes out.
    pub precheck_url: Option<String>,
    /// The caller's data.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
    /// When it was paid.
    pub paid_at: Option<DateTime<Utc>>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Every step: the schedule, then payment texts.
    pub steps: Vec<StepView>,
    /// Every answer the customer gave to the plan's texts, oldest first.
    pub replies: Vec<PlanReply>,
}

/// An answer to one of a plan's texts.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PlanReply {
    /// The step it answers.
    pub step: usize,
    /// The message it answers.
    pub message_id: String,
    /// The answer.
    #[serde(flatten)]
    pub reply: Reply,
}

/// One page of plans.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PlanPage {
    /// Newest first.
    pub reminders: Vec<PlanView>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// The API view of a plan, with each step's message as it is now.
pub fn view(st: &AppState, p: &Plan) -> Result<PlanView, ApiError> {
    let tz = timezone(&p.timezone).unwrap_or(chrono_tz::Tz::UTC);
    let local = |t: DateTime<Utc>| t.with_timezone(&tz).fixed_offset();
    let mut steps = Vec::with_capacity(p.steps.len());
    let mut replies = Vec::new();
    for (i, s) in p.steps.iter().enumerate() {
        let m: Option<Message> = match &s.message_id {
            Some(id) => st.store.get(id)?,
            None => None,
        };
        if let Some(m) = &m {
            replies.extend(m.replies.iter().map(|r| PlanReply {
                step: i,
                message_id: m.id.clone(),
                reply: r.clone(),
            }));
        }
        steps.push(StepView {
            index: i,
            kind: s.kind,
            template: s.template.clone(),
            offset: s.offset.clone(),
            time: s.time.clone(),
            planned_at: local(s.planned_at),
            status: m
                .as_ref()
                .map_or("skipped", |m| m.status.as_str())
                .to_string(),
            status_reason: m
                .as_ref()
                .map_or(s.skipped.clone(), |m| m.status_reason.clone()),
            message_id: s.message_id.clone(),
            send_at: m.as_ref().and_then(|m| {
                if m.status.is_waiting() {
                    Some(local(m.due_at))
                } else {
                    m.send_at.map(local)
                }
            }),
            sent_at: m.as_ref().and_then(|m| m.sent_at),
            delivered_at: m.as_ref().and_then(|m| m.delivered_at),
            expires_at: m.as_ref().and_then(|m| m.expires_at),
            text: m.as_ref().map(|m| m.text.clone()),
            encoding: m.as_ref().map(|m| m.encoding.clone()),
            parts: m.as_ref().map(|m| m.parts),
            reply_options: s.reply_options.clone(),
            replies: m.as_ref().map(|m| m.replies.clone()).unwrap_or_default(),
            replaced_messages: s.replaced.clone(),
        });
    }
    replies.sort_by_key(|r| r.reply.at);
    Ok(PlanView {
        id: p.id.clone(),
        invoice: p.invoice.clone(),
        status: p.status,
        to: p.to.to_string(),
        amount: p.amount.clone(),
        currency: p.currency.clone(),
        due_date: p.due_date,
        timezone: p.timezone.clone(),
        locale: p.locale.clone(),
        vars: p.vars.clone(),
        send_window: p.send_window.clone(),
        callback_url: p.callback_url.clone(),
        precheck_url: p.precheck_url.clone(),
        metadata: p.metadata.clone(),
        paid_at: p.paid_at,
        created_at: p.created_at,
        updated_at: p.updated_at,
        steps,
        replies,
    })
}

fn problems(p: plan::Problems) -> ApiError {
    ApiError::validation(
        p.into_iter()
            .map(|(field, detail)| FieldError { field, detail })
            .collect(),
    )
}

fn ctx<'a>(st: &'a AppState, caller: &'a str) -> Ctx<'a> {
    Ctx {
        policy: &st.reminders,
        rules: &st.cfg.messages,
        own_address: st.cfg.own_address,
        outbound: &st.cfg.outbound,
        store: &st.store,
        now: st.clock.now(),
        caller,
    }
}

/// A plan by id or invoice reference.
fn find(st: &AppState, id: &str) -> Result<Plan, ApiError> {
    if let Some(p) = st.store.plan(id)? {
        return Ok(p);
    }
    st.store
        .plan_by_invoice(id)?
        .ok_or_else(|| ApiError::not_found(format!("no reminder plan with id or invoice {id:?}")))
}

fn fingerprint(body: &Value) -> String {
    crate::store::sha256_hex(body.to_string().as_bytes())
}

fn replayed(mut r: Response) -> Response {
    r.headers_mut().insert(
        "idempotent-replayed",
        axum::http::HeaderValue::from_static("true"),
    );
    r
}

/// The answer to a create whose invoice already has a plan: the plan again when the request
/// is the same, else 409.
fn existing(st: &AppState, p: &Plan, print: &str) -> Result<Response, ApiError> {
    if p.fingerprint == print {
        return Ok(replayed(
            (StatusCode::OK, axum::Json(view(st, p)?)).into_response(),
        ));
    }
    Err(ApiError::conflict(
        "invoice_exists",
        format!(
            "invoice {} already has reminder plan {} (created with other values); change it with PATCH /v1/reminders/{}, or cancel it with DELETE",
            p.invoice, p.id, p.id
        ),
    ))
}

/// `POST /v1/reminders`
#[utoipa::path(post, path = "/v1/reminders", tag = "reminders",
    request_body = NewPlan,
    responses(
        (status = 201, description = "The plan and its scheduled messages, on disk", body = PlanView),
        (status = 200, description = "The same request again: the plan made the first time", body = PlanView),
        (status = 400, body = super::error::Problem), (status = 401, body = super::error::Problem),
        (status = 409, description = "The invoice has a plan made with other values", body = super::error::Problem),
        (status = 413, body = super::error::Problem), (status = 415, body = super::error::Problem),
        (status = 422, body = super::error::Problem), (status = 503, body = super::error::Problem)),
    security(("bearer" = ["send"])))]
pub async fn create(
    State(st): State<AppState>,
    Extension(Caller(caller)): Extension<Caller>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let req: NewPlan =
        serde_path_to_error::deserialize(&body).map_err(|e| json_field_error(&e, ""))?;
    let print = fingerprint(&body);
    if let Some(p) = st.store.plan_by_invoice(req.invoice.trim())? {
        // The plan may still sit in the group-commit window (or on a disk that just filled): a
        // replay is acknowledged only once what it acknowledges is on disk.
        st.store.durable().await?;
        return existing(&st, &p, &print);
    }
    let c = ctx(&st, &caller);
    let (mut plan, messages) = plan::build(&c, &req).map_err(problems)?;
    if let Some(e) = opted_out(&st, &plan.to, "")? {
        return Err(ApiError::opted_out(vec![e]));
    }
    plan.fingerprint = print.clone();
    match st.store.create_plan(&plan, &messages, None)? {
        Created::Exists(p) => {
            st.store.durable().await?;
            existing(&st, &p, &print)
        }
        Created::New => {
            st.dispatcher.announce().await?;
            tracing::info!(plan_id = %plan.id, invoice = %plan.invoice, messages = messages.len(), "reminder plan accepted");
            Ok((StatusCode::CREATED, axum::Json(view(&st, &plan)?)).into_response())
        }
    }
}

/// `GET /v1/reminders/{id}`: every step, its message and status, and the replies.
#[utoipa::path(get, path = "/v1/reminders/{id}", tag = "reminders",
    params(("id" = String, Path, description = "Plan id or invoice reference")),
    responses((status = 200, body = PlanView), (status = 401, body = super::error::Problem),
        (status = 404, body = super::error::Problem), (status = 503, body = super::error::Problem)),
    security(("bearer" = ["read"])))]
pub async fn get_one(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let p = find(&st, &id)?;
    Ok(axum::Json(view(&st, &p)?).into_response())
}

/// Filters of `GET /v1/reminders`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only plans to this number (any form).
    #[param(value_type = Option<crate::domain::schema::PhoneNumberInput>)]
    to: Option<String>,
    /// Only plans in this status (`active`, `paid`, `cancelled`).
    #[param(value_type = Option<crate::store::plans::PlanStatus>)]
    status: Option<String>,
    /// Page size, 1 to 1000 (default 50).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// The previous page's `next_cursor`.
    #[param(value_type = Option<crate::domain::schema::IdCursor>)]
    cursor: Option<String>,
}

/// `GET /v1/reminders?to=&status=&limit=&cursor=`: newest first.
#[utoipa::path(get, path = "/v1/reminders", tag = "reminders", params(ListQuery),
    responses((status = 200, body = PlanPage), (status = 400, body = super::error::Problem),
        (status = 401, body = super::error::Problem), (status = 422, body = super::error::Problem),
        (status = 503, body = super::error::Problem)),
    security(("bearer" = ["read"])))]
pub async fn list(
    State(st): State<AppState>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let status = match q.status.as_deref() {
        None => None,
        Some("active") => Some(PlanStatus::Active),
        Some("paid") => Some(PlanStatus::Paid),
        Some("cancelled") => Some(PlanStatus::Cancelled),
        Some(s) => {
            return Err(ApiError::field(
                "status",
                format!("unknown status {s:?} (active, paid or cancelled)"),
            ));
        }
    };
    let to = match q.to.as_deref() {
        Some(t) => Some(
            crate::numbers::to_e164(t, st.cfg.messages.default_region.as_deref())
                .map_err(|e| ApiError::field("to", e.to_string()))?,
        ),
        None => None,
    };
    let limit = super::page_limit(q.limit, q.cursor.as_deref())?;
    let page = st.store.list_plans(q.cursor.as_deref(), limit, |p| {
        status.is_none_or(|s| p.status == s) && to.as_ref().is_none_or(|t| &p.to == t)
    })?;
    let next = super::next_cursor(&page, limit, |p| p.id.clone());
    let reminders = page
        .iter()
        .map(|p| view(&st, p))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(axum::Json(PlanPage {
        reminders,
        next_cursor: next,
    })
    .into_response())
}

/// Applies a change decided over the plan's current state; answers the plan after it.
async fn change(
    st: &AppState,
    id: &str,
    decide: impl Fn(&Plan, &BTreeMap<String, Message>) -> Decision<Outcome>,
    idempotency: Option<(&str, &IdempotencyRecord)>,
    actor: &str,
) -> Result<Plan, ApiError> {
    let p = find(st, id)?;
    let (plan, outcome) = st
        .store
        .change_plan(&p.id, decide, idempotency, Some(actor))?
        .ok_or_else(|| ApiError::not_found(format!("no reminder plan {id:?}")))?;
    match outcome {
        Ok(()) => {}
        Err(Refused::Invalid(p)) => return Err(problems(p)),
        Err(Refused::State(why)) => return Err(ApiError::conflict("plan_state", why)),
    }
    st.dispatcher.announce().await?;
    Ok(plan)
}

fn body_or_default<T: for<'de> Deserialize<'de> + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        if e.inner().is_syntax() || e.inner().is_eof() {
            ApiError::bad_request(format!("malformed JSON: {}", e.inner()))
        } else {
            ApiError::field(
                if path == "." { "body" } else { &path },
                e.inner().to_string(),
            )
        }
    })
}

/// `POST /v1/reminders/{id}/paid`: every pending step cancelled, the payment confirmation
/// sent once. Again on a paid plan: the plan, nothing sent.
#[utoipa::path(post, path = "/v1/reminders/{id}/paid", tag = "reminders",
    params(("id" = String, Path, description = "Plan id or invoice reference")),
    request_body(content = Option<Paid>, description = "May be left out: no body is `{}`"),
    responses((status = 200, body = PlanView), (status = 401, body = super::error::Problem),
        (status = 404, body = super::error::Problem), (status = 409, body = super::error::Problem),
        (status = 422, body = super::error::Problem), (status = 503, body = super::error::Problem)),
    security(("bearer" = ["send"])))]
pub async fn paid(
    State(st): State<AppState>,
    Extension(Caller(caller)): Extension<Caller>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let req: Paid = body_or_default(&body)?;
    let c = ctx(&st, &caller);
    let p = change(&st, &id, |p, m| plan::paid(&c, p, m, &req), None, &caller).await?;
    tracing::info!(plan_id = %p.id, invoice = %p.invoice, "invoice paid");
    Ok(axum::Json(view(&st, &p)?).into_response())
}

/// `POST /v1/reminders/{id}/payment-failed`: the failed-payment text; a plan marked paid is
/// active again, its steps still ahead scheduled anew. Each call sends a text: retry with the
/// same `Idempotency-Key` to be safe.
#[utoipa::path(post, path = "/v1/reminders/{id}/payment-failed", tag = "reminders",
    params(("id" = String, Path, description = "Plan id or invoice reference"),
        ("Idempotency-Key" = Option<String>, Header, description = "A retry with the same key and body returns the first answer: 1 to 255 printable ASCII characters, not starting or ending with a space.", min_length = 1, max_length = 255, pattern = "^[!-~]([ -~]*[!-~])?$")),
    request_body(content = Option<PaymentFailed>, description = "May be left out: no body is `{}`"),
    responses((status = 200, body = PlanView), (status = 401, body = super::error::Problem),
        (status = 404, body = super::error::Problem), (status = 409, body = super::error::Problem),
        (status = 422, body = super::error::Problem), (status = 503, body = super::error::Problem)),
    security(("bearer" = ["send"])))]
pub async fn payment_failed(
    State(st): State<AppState>,
    Extension(Caller(caller)): Extension<Caller>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let req: PaymentFailed = body_or_default(&body)?;
    let fp_body = serde_json::json!({ "plan": id, "body": String::from_utf8_lossy(&body) });
    let s2 = st.clone();
    let who = caller.clone();
    idempotent(
        &st,
        &headers,
        &who,
        "payment_failed",
        fp_body,
        |idem| async move {
            let c = ctx(&s2, &caller);
            // Kept with the change itself, so a retry after a crash sends no second text; the
            // full answer replaces it once the change is made.
            let first = idempotency_record(idem, br#"{"status":"payment_failed recorded"}"#, c.now)
                .map(|(k, mut r)| {
                    r.status = 200;
                    (k, r)
                });
            let p = change(
                &s2,
                &id,
                |p, m| plan::payment_failed(&c, p, m, &req),
                first.as_ref().map(|(k, r)| (k.as_str(), r)),
                &caller,
            )
            .await?;
            let out = to_json(&view(&s2, &p)?)?;
            if let Some((k, mut rec)) = first {
                rec.body = serde_json::from_slice(&out).unwrap_or(Value::Null);
                s2.store.put_idempotency(&k, &rec)?;
                s2.store.durable().await?;
            }
            Ok((StatusCode::OK, out))
        },
    )
    .await
}

/// `PATCH /v1/reminders/{id}`: a new due date, amount or variables. Steps not yet sent are
/// rescheduled and re-rendered; those sent stay as they were.
#[utoipa::path(patch, path = "/v1/reminders/{id}", tag = "reminders",
    params(("id" = String, Path, description = "Plan id or invoice reference")),
    request_body = PlanPatch,
    responses((status = 200, body = PlanView), (status = 400, body = super::error::Problem),
        (status = 401, body = super::error::Problem), (status = 404, body = super::error::Problem),
        (status = 409, body = super::error::Problem), (status = 422, body = super::error::Problem),
        (status = 503, body = super::error::Problem)),
    security(("bearer" = ["send"])))]
pub async fn patch(
    State(st): State<AppState>,
    Extension(Caller(caller)): Extension<Caller>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let req: PlanPatch =
        serde_path_to_error::deserialize(&body).map_err(|e| json_field_error(&e, ""))?;
    let c = ctx(&st, &caller);
    let p = change(&st, &id, |p, m| plan::patch(&c, p, m, &req), None, &caller).await?;
    tracing::info!(plan_id = %p.id, invoice = %p.invoice, "reminder plan rescheduled");
    Ok(axum::Json(view(&st, &p)?).into_response())
}

/// `DELETE /v1/reminders/{id}`: the plan is cancelled with every pending step.
#[utoipa::path(delete, path = "/v1/reminders/{id}", tag = "reminders",
    params(("id" = String, Path, description = "Plan id or invoice reference")),
    responses((status = 200, body = PlanView), (status = 401, body = super::error::Problem),
        (status = 404, body = super::error::Problem), (status = 503, body = super::error::Problem)),
    security(("bearer" = ["send"])))]
pub async fn cancel(
    State(st): State<AppState>,
    Extension(Caller(caller)): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let now = st.clock.now();
    let p = change(&st, &id, |p, m| plan::cancel(p, m, now), None, &caller).await?;
    tracing::info!(plan_id = %p.id, invoice = %p.invoice, "reminder plan cancelled");
    Ok(axum::Json(view(&st, &p)?).into_response())
}
