//! From a request to an invoice's plan and the messages of its steps; and the later changes:
//! paid, payment failed, rescheduled, cancelled. Pure decisions over a snapshot: the store
//! applies them in one transaction ([`crate::store::plans`]).

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::config::{PastSteps, Policy, StepSpec, check_step};
use super::templates;
use super::window::{self, Window, WindowSpec};
use crate::domain::MessageRules;
use crate::sms::TextPlan;
use crate::store::plans::{Cancel, Decision, Plan, PlanChange, PlanStatus, PlanStep};
use crate::store::{Message, Priority, ReminderLink, Status, StepKind, Store, StoreError};

/// Problems with a request, by field (`schedule[2].template`).
pub type Problems = Vec<(String, String)>;

/// The template of the text that says an invoice was issued (the default `now` step).
const INVOICE_ISSUED: &str = "invoice_issued";
/// What a plan made after its due date sends in its place.
const PAST_DUE: &str = "past_due";

/// An amount as posted: a decimal string (`"120.50"`, exact) or a JSON number.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum Amount {
    /// `"120.50"`.
    Text(String),
    /// `120.5`.
    #[schema(value_type = f64)]
    Number(serde_json::Number),
}

impl Amount {
    fn as_text(&self) -> String {
        match self {
            Amount::Text(s) => s.trim().to_string(),
            Amount::Number(n) => n.to_string(),
        }
    }
}

/// Local send hours of a plan.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WindowTimes {
    /// Opens, `HH:MM` local.
    #[schema(example = "09:00")]
    pub start: String,
    /// Closes, `HH:MM` local.
    #[schema(example = "20:00")]
    pub end: String,
}

/// `POST /v1/reminders`
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPlan {
    /// Phone number (E.164, or national with `[sms] default_region`).
    #[schema(example = "+12025550123")]
    pub to: String,
    /// Invoice reference: one plan per invoice.
    #[schema(example = "INV-1042")]
    pub invoice: String,
    /// Amount due, as a decimal string.
    #[schema(example = "120.50")]
    pub amount: Amount,
    /// ISO 4217 currency code.
    #[schema(example = "USD")]
    pub currency: String,
    /// Due date, `YYYY-MM-DD`, in the recipient's calendar.
    #[schema(example = "2026-12-01")]
    pub due_date: String,
    /// The recipient's IANA time zone (default `[reminders] timezone`).
    #[schema(example = "America/New_York")]
    pub timezone: Option<String>,
    /// Locale of money and dates (default `[reminders] locale`).
    #[schema(example = "en-US")]
    pub locale: Option<String>,
    /// The customer's name (`{{ name }}`).
    pub name: Option<String>,
    /// A payment link (`{{ pay_url }}`).
    pub pay_url: Option<String>,
    /// Unit (`{{ unit }}`).
    pub unit: Option<String>,
    /// Property (`{{ property }}`).
    pub property: Option<String>,
    /// More template variables.
    #[schema(value_type = Option<Object>)]
    pub vars: Option<Map<String, Value>>,
    /// The steps (default `[reminders] schedule`).
    pub schedule: Option<Vec<StepSpec>>,
    /// Steps whose time has passed: `skip` (default) or `send_latest`.
    pub past_steps: Option<PastSteps>,
    /// Send hours (default `[send_window]`).
    pub send_window: Option<WindowTimes>,
    /// Where the messages' events go.
    pub callback_url: Option<String>,
    /// Asked before each step goes out (default `[reminders] precheck_url`).
    pub precheck_url: Option<String>,
    /// Ask for delivery reports (default from config).
    pub status_report: Option<bool>,
    /// A JSON object (at most 4 KiB), returned as given and copied into each message's metadata.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
}

/// `PATCH /v1/reminders/{id}`: what changes. Steps not yet sent are rescheduled and
/// re-rendered; sent ones stay as they were.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanPatch {
    /// New due date.
    pub due_date: Option<String>,
    /// New amount.
    pub amount: Option<Amount>,
    /// New currency.
    pub currency: Option<String>,
    /// New name.
    pub name: Option<String>,
    /// New payment link.
    pub pay_url: Option<String>,
    /// Variables to set (merged into the plan's).
    #[schema(value_type = Option<Object>)]
    pub vars: Option<Map<String, Value>>,
}

/// `POST /v1/reminders/{id}/paid`
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Paid {
    /// Amount received (`{{ amount_paid }}`; default the amount due).
    pub amount_paid: Option<Amount>,
    /// Send the `payment_received` text (default true).
    pub confirm: Option<bool>,
}

/// `POST /v1/reminders/{id}/payment-failed`
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentFailed {
    /// Why, in words (`{{ failure_reason }}`).
    pub reason: Option<String>,
}

/// What plan logic needs: policy, defaults, the store (templates), the time and the caller.
pub struct Ctx<'a> {
    /// Reminder policy.
    pub policy: &'a Policy,
    /// The rules new messages are made by.
    pub rules: &'a MessageRules,
    /// The API's own address, where callback URLs may not point.
    pub own_address: Option<std::net::SocketAddr>,
    /// Where callback URLs may point.
    pub outbound: &'a crate::outbound::OutboundPolicy,
    /// Templates set through the API.
    pub store: &'a Store,
    /// Now.
    pub now: DateTime<Utc>,
    /// The API key.
    pub caller: &'a str,
}

/// Variables a plan sets itself; `vars` may not override them.
pub const RESERVED_VARS: [&str; 14] = [
    "name",
    "invoice",
    "amount",
    "currency",
    "due_date",
    "pay_url",
    "unit",
    "property",
    "locale",
    "opt_out_hint",
    "days_until_due",
    "days_overdue",
    "amount_paid",
    "failure_reason",
];

/// Where a template's text comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// Set through `PUT /v1/templates/{name}`.
    Api,
    /// `[templates]` in the config file.
    Config,
    /// Shipped with smsgate.
    Default,
}

/// A template's source and where it comes from: the API's, else the config file's, else the
/// shipped one.
pub fn template_source(
    store: &Store,
    policy: &Policy,
    name: &str,
) -> Result<Option<(String, Origin)>, StoreError> {
    if let Some(t) = store.template(name)? {
        return Ok(Some((t.text, Origin::Api)));
    }
    if let Some(t) = policy.templates.get(name) {
        return Ok(Some((t.clone(), Origin::Config)));
    }
    Ok(templates::default_template(name).map(|t| (t.to_string(), Origin::Default)))
}

/// A scheduled step's place in time: days from the due date, or at creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Offset {
    Now,
    Days(i64),
}

fn parse_step_offset(s: &str) -> Result<Offset, String> {
    if s.trim().eq_ignore_ascii_case("now") {
        Ok(Offset::Now)
    } else {
        window::parse_offset(s).map(Offset::Days)
    }
}

/// The local time a step is planned for (before the send window).
fn planned_at(
    plan: &Plan,
    tz: chrono_tz::Tz,
    offset: Offset,
    time: NaiveTime,
    now: DateTime<Utc>,
) -> DateTime<Utc> {
    match offset {
        Offset::Now => now,
        Offset::Days(d) => {
            let day = plan.due_date + chrono::Duration::days(d);
            window::local_instant(tz, day, time)
        }
    }
}

fn plan_tz(plan: &Plan) -> chrono_tz::Tz {
    window::parse_timezone(&plan.timezone).unwrap_or(chrono_tz::Tz::UTC)
}

/// The render variables of a step of `plan` going out on local date `on`.
fn vars_for(policy: &Policy, plan: &Plan, on: NaiveDate, extra: &[(&str, Value)]) -> Value {
    let mut v = Map::new();
    for k in [
        "name",
        "pay_url",
        "unit",
        "property",
        "amount_paid",
        "failure_reason",
    ] {
        v.insert(k.into(), Value::String(String::new()));
    }
    for (k, val) in &plan.vars {
        v.insert(k.clone(), val.clone());
    }
    let days = (plan.due_date - on).num_days();
    v.insert("invoice".into(), json!(plan.invoice));
    v.insert("amount".into(), json!(plan.amount));
    v.insert("amount_paid".into(), json!(plan.amount));
    v.insert("currency".into(), json!(plan.currency));
    v.insert("due_date".into(), json!(plan.due_date.to_string()));
    v.insert("locale".into(), json!(plan.locale));
    v.insert("opt_out_hint".into(), json!(policy.opt_out_hint));
    v.insert("days_until_due".into(), json!(days));
    v.insert("days_overdue".into(), json!((-days).max(0)));
    for (k, val) in extra {
        v.insert((*k).into(), val.clone());
    }
    Value::Object(v)
}

/// A rendered text and how it goes out.
struct Rendered {
    text: String,
    encoding: String,
    parts: u8,
}

fn render(ctx: &Ctx<'_>, name: &str, vars: &Value) -> Result<Rendered, String> {
    let (src, _) = template_source(ctx.store, ctx.policy, name)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| {
            format!(
                "no template {name:?} (shipped: {}; add one with PUT /v1/templates/{name} or in [templates])",
                templates::DEFAULT_NAMES.join(", ")
            )
        })?;
    let text = templates::render(&src, vars).map_err(|e| format!("template {name:?}: {e}"))?;
    if text.trim().is_empty() {
        return Err(format!("template {name:?} renders an empty text"));
    }
    let p = TextPlan::new(&text, &ctx.rules.national_languages, ctx.rules.max_parts)
        .map_err(|e| format!("template {name:?}: {e}"))?;
    Ok(Rendered {
        text,
        encoding: p.encoding.as_str().to_string(),
        parts: p.parts.len() as u8,
    })
}

/// The message of a step.
#[allow(clippy::too_many_arguments)]
fn message(
    ctx: &Ctx<'_>,
    plan: &Plan,
    index: usize,
    step: &PlanStep,
    r: Rendered,
    send_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    status_report: bool,
) -> Message {
    let status = if send_at > ctx.now {
        Status::Scheduled
    } else {
        Status::Queued
    };
    let mut meta = match &plan.metadata {
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    };
    meta.insert("invoice".into(), json!(plan.invoice));
    meta.insert("plan_id".into(), json!(plan.id));
    meta.insert("step".into(), json!(step.template));
    Message {
        id: ulid::Ulid::generate().to_string(),
        to: plan.to.clone(),
        text: r.text,
        encoding: r.encoding,
        parts: r.parts,
        status,
        status_reason: None,
        priority: Priority::Normal,
        created_at: ctx.now,
        updated_at: ctx.now,
        send_at: Some(send_at),
        expires_at,
        max_lateness_secs: ctx.rules.max_lateness.as_secs(),
        due_at: send_at.max(ctx.now),
        reply_options: step.reply_options.clone(),
        callback_url: plan.callback_url.clone(),
        metadata: Some(Value::Object(meta)),
        status_report,
        attempts: Vec::new(),
        part_status: Vec::new(),
        modem: None,
        sent_at: None,
        delivered_at: None,
        created_by: ctx.caller.to_string(),
        history_len: 0,
        requeued_at: None,
        accepted_as: status,
        replies: Vec::new(),
        history_hash: None,
        send_window: Some(plan.send_window.clone()),
        reminder: Some(ReminderLink {
            plan_id: plan.id.clone(),
            invoice: plan.invoice.clone(),
            step: index as u32,
            kind: step.kind,
            template: step.template.clone(),
        }),
        twilio: None,
    }
}

/// When the window lets a text planned for `t` go out.
fn window_open(policy: &Policy, plan: &Plan, t: DateTime<Utc>) -> DateTime<Utc> {
    match Window::parse(&plan.send_window) {
        Ok(w) => w.next_open(t, &policy.quiet),
        Err(_) => t,
    }
}

/// The schedule's steps in time order, each with its offset and local send time.
fn ordered(
    policy: &Policy,
    specs: &[StepSpec],
    prefix: &str,
    problems: &mut Problems,
) -> Vec<(Offset, NaiveTime, StepSpec)> {
    let mut out = Vec::new();
    for (i, s) in specs.iter().enumerate() {
        let field = format!("{prefix}[{i}]");
        let off = match parse_step_offset(&s.offset) {
            Ok(o) => o,
            Err(e) => {
                problems.push((format!("{field}.offset"), e));
                continue;
            }
        };
        let spec = StepSpec {
            offset: if off == Offset::Now {
                "now".into()
            } else {
                s.offset.clone()
            },
            ..s.clone()
        };
        if let Err(e) = check_step(&spec) {
            let (k, m) = e.split_once(": ").unwrap_or(("", e.as_str()));
            problems.push((format!("{field}.{k}"), m.to_string()));
            continue;
        }
        let time = match &s.time {
            Some(t) => match window::parse_time(t) {
                Ok(t) => t,
                Err(e) => {
                    problems.push((format!("{field}.time"), e));
                    continue;
                }
            },
            None => policy.send_time,
        };
        out.push((off, time, spec));
    }
    out.sort_by_key(|s| (s.0, s.1));
    out
}

/// The expiry of each scheduled step: when the next one falls due, or `last_step_expiry`
/// after the last.
fn expiries(policy: &Policy, planned: &[DateTime<Utc>]) -> Vec<DateTime<Utc>> {
    (0..planned.len())
        .map(|i| match planned.get(i + 1) {
            Some(next) if *next > planned[i] => *next,
            _ => planned[i] + policy.last_step_expiry,
        })
        .collect()
}

/// Builds a new plan and the messages of its steps, or the request's problems.
pub fn build(ctx: &Ctx<'_>, req: &NewPlan) -> Result<(Plan, Vec<Message>), Problems> {
    let mut problems: Problems = Vec::new();
    let p = &mut problems;
    let to = crate::numbers::normalise_number(&req.to, ctx.rules.default_region.as_deref())
        .map_err(|e| p.push(("to".into(), e)))
        .ok();
    let invoice = req.invoice.trim().to_string();
    if invoice.is_empty() || invoice.len() > 128 || invoice.chars().any(char::is_control) {
        p.push((
            "invoice".into(),
            "must be 1 to 128 printable characters".into(),
        ));
    }
    let currency = templates::check_currency(&req.currency)
        .map_err(|e| p.push(("currency".into(), e)))
        .ok();
    let amount = currency.as_ref().and_then(|c| {
        templates::normalise_amount(&req.amount.as_text(), c)
            .map_err(|e| p.push(("amount".into(), e)))
            .ok()
    });
    let due_date = NaiveDate::parse_from_str(req.due_date.trim(), "%Y-%m-%d")
        .map_err(|_| {
            p.push((
                "due_date".into(),
                format!("{:?} is not a date YYYY-MM-DD", req.due_date),
            ))
        })
        .ok();
    let timezone = req
        .timezone
        .clone()
        .unwrap_or_else(|| ctx.policy.timezone.name().to_string());
    if let Err(e) = window::parse_timezone(&timezone) {
        p.push(("timezone".into(), e));
    }
    let locale = match &req.locale {
        Some(l) => templates::check_locale(l)
            .map_err(|e| p.push(("locale".into(), e)))
            .unwrap_or_default(),
        None => ctx.policy.locale.clone(),
    };
    let send_window = match &req.send_window {
        Some(w) => WindowSpec {
            start: w.start.clone(),
            end: w.end.clone(),
            timezone: timezone.clone(),
        },
        None => ctx.policy.window_in(&timezone),
    };
    if let Err(e) = Window::parse(&send_window) {
        p.push(("send_window".into(), e));
    }
    for (field, url) in [
        ("callback_url", &req.callback_url),
        ("precheck_url", &req.precheck_url),
    ] {
        if let Some(u) = url
            && let Err(e) = crate::webhook::validate_callback(u, ctx.own_address, ctx.outbound)
        {
            p.push((field.into(), e.to_string()));
        }
    }
    if let Some(m) = &req.metadata {
        if !m.is_object() {
            p.push(("metadata".into(), "must be a JSON object".into()));
        } else if m.to_string().len() > 4096 {
            p.push(("metadata".into(), "is larger than 4 KiB".into()));
        }
    }
    let mut vars = Map::new();
    for (k, v) in [
        ("name", &req.name),
        ("pay_url", &req.pay_url),
        ("unit", &req.unit),
        ("property", &req.property),
    ] {
        if let Some(v) = v {
            vars.insert(k.into(), json!(v.trim()));
        }
    }
    if let Some(extra) = &req.vars {
        check_vars(extra, p);
        for (k, v) in extra {
            vars.insert(k.clone(), v.clone());
        }
    }
    let specs = req
        .schedule
        .clone()
        .unwrap_or_else(|| ctx.policy.schedule.clone());
    if specs.is_empty() || specs.len() > 20 {
        p.push(("schedule".into(), "must have 1 to 20 steps".into()));
    }
    let steps = ordered(ctx.policy, &specs, "schedule", p);
    let (Some(to), Some(currency), Some(amount), Some(due_date)) = (to, currency, amount, due_date)
    else {
        return Err(problems);
    };
    if !problems.is_empty() {
        return Err(problems);
    }
    let mut plan = Plan {
        id: ulid::Ulid::generate().to_string(),
        invoice,
        to,
        amount,
        currency,
        due_date,
        timezone,
        locale,
        vars,
        callback_url: req.callback_url.clone(),
        precheck_url: req.precheck_url.clone(),
        send_window,
        metadata: req.metadata.clone(),
        status: PlanStatus::Active,
        paid_at: None,
        created_at: ctx.now,
        updated_at: ctx.now,
        created_by: ctx.caller.to_string(),
        steps: Vec::new(),
        fingerprint: String::new(),
        revision: 0,
    };
    let tz = plan_tz(&plan);
    let planned: Vec<DateTime<Utc>> = steps
        .iter()
        .map(|(o, t, _)| planned_at(&plan, tz, *o, *t, ctx.now))
        .collect();
    let expires = expiries(ctx.policy, &planned);
    let past_steps = req.past_steps.unwrap_or(ctx.policy.past_steps);
    // With `send_latest`, the one past step that goes now: the latest whose successor is
    // still ahead.
    let latest_past = planned.iter().rposition(|t| *t <= ctx.now);
    let status_report = req.status_report.unwrap_or(ctx.rules.status_report);
    let mut messages = Vec::new();
    // A plan made after its due date does not open with "new invoice …, due …": its
    // `now` step sends the past-due notice instead.
    let overdue = window::local_date(tz, ctx.now) > plan.due_date;
    for (i, ((offset, _, spec), at)) in steps.iter().zip(&planned).enumerate() {
        let template = if overdue && *offset == Offset::Now && spec.template == INVOICE_ISSUED {
            PAST_DUE.to_string()
        } else {
            spec.template.clone()
        };
        let mut step = PlanStep {
            kind: StepKind::Reminder,
            template,
            offset: Some(spec.offset.clone()),
            time: spec.time.clone(),
            reply_options: spec.reply_options.clone(),
            planned_at: *at,
            message_id: None,
            skipped: None,
            replaced: Vec::new(),
        };
        let past = *offset != Offset::Now && *at <= ctx.now;
        let send_now = past && past_steps == PastSteps::SendLatest && latest_past == Some(i);
        // Rendered even when skipped: a template that fails is refused now, not later.
        let vars = vars_for(
            ctx.policy,
            &plan,
            window::local_date(tz, (*at).max(ctx.now)),
            &[],
        );
        let r = match render(ctx, &step.template, &vars) {
            Ok(r) => r,
            Err(e) => {
                problems.push((format!("schedule[{i}].template"), e));
                plan.steps.push(step);
                continue;
            }
        };
        if past && !send_now {
            step.skipped = Some("past".into());
        } else {
            let from = if send_now { ctx.now } else { *at };
            let m = message(
                ctx,
                &plan,
                i,
                &step,
                r,
                window_open(ctx.policy, &plan, from),
                Some(expires[i]),
                status_report,
            );
            step.message_id = Some(m.id.clone());
            messages.push(m);
        }
        plan.steps.push(step);
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok((plan, messages))
}

fn check_vars(extra: &Map<String, Value>, p: &mut Problems) {
    if Value::Object(extra.clone()).to_string().len() > 4096 {
        p.push(("vars".into(), "is larger than 4 KiB".into()));
    }
    for (k, v) in extra {
        if RESERVED_VARS.contains(&k.as_str()) {
            p.push((
                format!("vars.{k}"),
                "is set by the plan itself; use the field of that name".into(),
            ));
        } else if k.is_empty()
            || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            || k.starts_with(|c: char| c.is_ascii_digit())
        {
            p.push((
                format!("vars.{k}"),
                "names are letters, digits and `_`, not starting with a digit".into(),
            ));
        } else if v.is_object() || v.is_array() {
            p.push((
                format!("vars.{k}"),
                "must be a string, number or boolean".into(),
            ));
        }
    }
}

/// Why a change to a plan is refused.
#[derive(Debug, Clone, PartialEq)]
pub enum Refused {
    /// The request is wrong (422), by field.
    Invalid(Problems),
    /// The plan is in the wrong state (409).
    State(String),
}

/// What a change answers.
pub type Outcome = Result<(), Refused>;

fn is_waiting(msgs: &BTreeMap<String, Message>, id: &Option<String>) -> bool {
    id.as_ref()
        .and_then(|i| msgs.get(i))
        .is_some_and(|m| m.status.is_waiting())
}

/// A payment text step appended to the plan, with its message.
fn payment_step(
    ctx: &Ctx<'_>,
    plan: &mut Plan,
    kind: StepKind,
    template: &str,
    extra: &[(&str, Value)],
    change: &mut PlanChange,
) -> Result<(), Refused> {
    let tz = plan_tz(plan);
    let vars = vars_for(ctx.policy, plan, window::local_date(tz, ctx.now), extra);
    let r =
        render(ctx, template, &vars).map_err(|e| Refused::Invalid(vec![("template".into(), e)]))?;
    let step = PlanStep {
        kind,
        template: template.to_string(),
        offset: None,
        time: None,
        reply_options: None,
        planned_at: ctx.now,
        message_id: None,
        skipped: None,
        replaced: Vec::new(),
    };
    let index = plan.steps.len();
    let status_report = change_status_report(ctx, plan);
    let m = message(
        ctx,
        plan,
        index,
        &step,
        r,
        window_open(ctx.policy, plan, ctx.now),
        None,
        status_report,
    );
    plan.steps.push(PlanStep {
        message_id: Some(m.id.clone()),
        ..step
    });
    change.insert.push(m);
    Ok(())
}

/// Whether a plan's texts ask for delivery reports: as its first message did.
fn change_status_report(ctx: &Ctx<'_>, plan: &Plan) -> bool {
    plan.steps
        .iter()
        .find_map(|s| s.message_id.as_ref())
        .and_then(|id| ctx.store.get(id).ok().flatten())
        .map_or(ctx.rules.status_report, |m| m.status_report)
}

fn cancel_waiting(
    plan: &Plan,
    msgs: &BTreeMap<String, Message>,
    reason: &str,
    words: &str,
    change: &mut PlanChange,
) {
    for s in &plan.steps {
        if is_waiting(msgs, &s.message_id)
            && let Some(id) = &s.message_id
        {
            change.cancel.push(Cancel {
                id: id.clone(),
                reason: reason.into(),
                words: words.into(),
                must: false,
            });
        }
    }
}

/// `paid`: pending steps cancelled, the confirmation sent once.
pub fn paid(
    ctx: &Ctx<'_>,
    plan: &Plan,
    msgs: &BTreeMap<String, Message>,
    req: &Paid,
) -> Decision<Outcome> {
    match plan.status {
        PlanStatus::Paid => return Decision::Keep(Ok(())),
        PlanStatus::Cancelled => {
            return Decision::Keep(Err(Refused::State(
                "the plan was cancelled; nothing more is sent for it".into(),
            )));
        }
        PlanStatus::Active => {}
    }
    let mut new = plan.clone();
    let mut change = PlanChange::default();
    cancel_waiting(
        plan,
        msgs,
        "paid",
        &format!("cancelled: invoice {} was paid", plan.invoice),
        &mut change,
    );
    let amount_paid = match &req.amount_paid {
        Some(a) => match templates::normalise_amount(&a.as_text(), &plan.currency) {
            Ok(a) => a,
            Err(e) => {
                return Decision::Keep(Err(Refused::Invalid(vec![("amount_paid".into(), e)])));
            }
        },
        None => plan.amount.clone(),
    };
    if req.confirm.unwrap_or(true)
        && let Err(e) = payment_step(
            ctx,
            &mut new,
            StepKind::PaymentReceived,
            "payment_received",
            &[("amount_paid", json!(amount_paid))],
            &mut change,
        )
    {
        return Decision::Keep(Err(e));
    }
    new.status = PlanStatus::Paid;
    new.paid_at = Some(ctx.now);
    new.updated_at = ctx.now;
    Decision::Change(Box::new(new), change, Ok(()))
}

/// `payment-failed`: the failed-payment text; a plan marked paid becomes active again, with
/// its steps still ahead scheduled anew.
pub fn payment_failed(
    ctx: &Ctx<'_>,
    plan: &Plan,
    msgs: &BTreeMap<String, Message>,
    req: &PaymentFailed,
) -> Decision<Outcome> {
    if plan.status == PlanStatus::Cancelled {
        return Decision::Keep(Err(Refused::State(
            "the plan was cancelled; nothing more is sent for it".into(),
        )));
    }
    let mut new = plan.clone();
    let mut change = PlanChange::default();
    let reason = req.reason.clone().unwrap_or_default();
    if reason.len() > 200 {
        return Decision::Keep(Err(Refused::Invalid(vec![(
            "reason".into(),
            "is longer than 200 characters".into(),
        )])));
    }
    if let Err(e) = payment_step(
        ctx,
        &mut new,
        StepKind::PaymentFailed,
        "payment_failed",
        &[("failure_reason", json!(reason.trim()))],
        &mut change,
    ) {
        return Decision::Keep(Err(e));
    }
    if plan.status == PlanStatus::Paid {
        new.status = PlanStatus::Active;
        new.paid_at = None;
        if let Err(e) = reschedule_steps(ctx, &mut new, msgs, &mut change, true) {
            return Decision::Keep(Err(e));
        }
    }
    new.updated_at = ctx.now;
    Decision::Change(Box::new(new), change, Ok(()))
}

/// `DELETE`: pending steps cancelled.
pub fn cancel(
    plan: &Plan,
    msgs: &BTreeMap<String, Message>,
    now: DateTime<Utc>,
) -> Decision<Outcome> {
    if plan.status == PlanStatus::Cancelled {
        return Decision::Keep(Ok(()));
    }
    let mut new = plan.clone();
    let mut change = PlanChange::default();
    cancel_waiting(
        plan,
        msgs,
        "plan_cancelled",
        &format!(
            "cancelled: the plan of invoice {} was cancelled",
            plan.invoice
        ),
        &mut change,
    );
    new.status = PlanStatus::Cancelled;
    new.updated_at = now;
    Decision::Change(Box::new(new), change, Ok(()))
}

/// `PATCH`: new due date, amount or variables; steps not yet sent are rescheduled and
/// re-rendered (their old message cancelled with reason `rescheduled` and a new one made),
/// steps already sent stay as they were.
pub fn patch(
    ctx: &Ctx<'_>,
    plan: &Plan,
    msgs: &BTreeMap<String, Message>,
    req: &PlanPatch,
) -> Decision<Outcome> {
    if plan.status != PlanStatus::Active {
        return Decision::Keep(Err(Refused::State(format!(
            "the plan is {}; only an active plan can be changed",
            match plan.status {
                PlanStatus::Paid => "paid",
                _ => "cancelled",
            }
        ))));
    }
    let mut problems = Problems::new();
    let mut new = plan.clone();
    if let Some(c) = &req.currency {
        match templates::check_currency(c) {
            Ok(c) => new.currency = c,
            Err(e) => problems.push(("currency".into(), e)),
        }
    }
    let amount = req
        .amount
        .as_ref()
        .map_or_else(|| plan.amount.clone(), Amount::as_text);
    match templates::normalise_amount(&amount, &new.currency) {
        Ok(a) => new.amount = a,
        Err(e) => problems.push(("amount".into(), e)),
    }
    if let Some(d) = &req.due_date {
        match NaiveDate::parse_from_str(d.trim(), "%Y-%m-%d") {
            Ok(d) => new.due_date = d,
            Err(_) => problems.push(("due_date".into(), format!("{d:?} is not a date YYYY-MM-DD"))),
        }
    }
    for (k, v) in [("name", &req.name), ("pay_url", &req.pay_url)] {
        if let Some(v) = v {
            new.vars.insert(k.into(), json!(v.trim()));
        }
    }
    if let Some(extra) = &req.vars {
        check_vars(extra, &mut problems);
        for (k, v) in extra {
            new.vars.insert(k.clone(), v.clone());
        }
    }
    if !problems.is_empty() {
        return Decision::Keep(Err(Refused::Invalid(problems)));
    }
    let mut change = PlanChange::default();
    if let Err(e) = reschedule_steps(ctx, &mut new, msgs, &mut change, false) {
        return Decision::Keep(Err(e));
    }
    new.updated_at = ctx.now;
    Decision::Change(Box::new(new), change, Ok(()))
}

/// Plans the scheduled steps of `plan` again: a step whose message still waits is replaced;
/// a step skipped as past, or (with `after_paid`) cancelled because the invoice was paid, gets
/// a message when its new time is ahead. Steps sent, sending, failed or cancelled for another
/// reason stay as they are.
fn reschedule_steps(
    ctx: &Ctx<'_>,
    plan: &mut Plan,
    msgs: &BTreeMap<String, Message>,
    change: &mut PlanChange,
    after_paid: bool,
) -> Result<(), Refused> {
    let tz = plan_tz(plan);
    let schedule: Vec<usize> = (0..plan.steps.len())
        .filter(|&i| plan.steps[i].kind == StepKind::Reminder)
        .collect();
    let mut planned = Vec::with_capacity(schedule.len());
    for &i in &schedule {
        let s = &plan.steps[i];
        let off = s
            .offset
            .as_deref()
            .map_or(Ok(Offset::Now), parse_step_offset)
            .unwrap_or(Offset::Now);
        let time = s
            .time
            .as_deref()
            .and_then(|t| window::parse_time(t).ok())
            .unwrap_or(ctx.policy.send_time);
        planned.push(match off {
            Offset::Now => s.planned_at,
            Offset::Days(_) => planned_at(plan, tz, off, time, ctx.now),
        });
    }
    let expires = expiries(ctx.policy, &planned);
    let status_report = change_status_report(ctx, plan);
    let mut problems = Problems::new();
    for (n, &i) in schedule.iter().enumerate() {
        let step = plan.steps[i].clone();
        let waiting = is_waiting(msgs, &step.message_id);
        let revivable = step.message_id.is_none() && step.skipped.is_some()
            || after_paid
                && step
                    .message_id
                    .as_ref()
                    .and_then(|id| msgs.get(id))
                    .is_some_and(|m| {
                        m.status == Status::Cancelled && m.status_reason.as_deref() == Some("paid")
                    });
        if !waiting && !revivable {
            continue;
        }
        let mut new_step = PlanStep {
            planned_at: planned[n],
            message_id: None,
            skipped: None,
            ..step.clone()
        };
        if let Some(old) = &step.message_id {
            if waiting {
                change.cancel.push(Cancel {
                    id: old.clone(),
                    reason: "rescheduled".into(),
                    words: format!(
                        "cancelled: the plan of invoice {} was rescheduled",
                        plan.invoice
                    ),
                    must: true,
                });
            }
            new_step.replaced.push(old.clone());
        }
        let is_now = step.offset.as_deref().is_some_and(|o| o == "now");
        if planned[n] <= ctx.now && !is_now {
            new_step.skipped = Some("past".into());
            plan.steps[i] = new_step;
            continue;
        }
        let vars = vars_for(
            ctx.policy,
            plan,
            window::local_date(tz, planned[n].max(ctx.now)),
            &[],
        );
        match render(ctx, &step.template, &vars) {
            Ok(r) => {
                let m = message(
                    ctx,
                    plan,
                    i,
                    &new_step,
                    r,
                    window_open(ctx.policy, plan, planned[n].max(ctx.now)),
                    Some(expires[n]),
                    status_report,
                );
                new_step.message_id = Some(m.id.clone());
                change.insert.push(m);
            }
            Err(e) => problems.push((format!("steps[{i}].template"), e)),
        }
        plan.steps[i] = new_step;
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Refused::Invalid(problems))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build_at(now: DateTime<Utc>, due_date: &str) -> (Plan, Vec<Message>) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store"), 8).unwrap();
        let policy = Policy {
            timezone: chrono_tz::Tz::UTC,
            ..Policy::default()
        };
        let rules = MessageRules::default();
        let outbound = crate::outbound::OutboundPolicy::default();
        let ctx = Ctx {
            policy: &policy,
            rules: &rules,
            own_address: None,
            outbound: &outbound,
            store: &store,
            now,
            caller: "test",
        };
        let req: NewPlan = serde_json::from_value(json!({
            "to": "+12025550123", "invoice": "INV-1042", "amount": "120.50",
            "currency": "USD", "due_date": due_date, "timezone": "UTC"
        }))
        .unwrap();
        build(&ctx, &req).unwrap()
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn a_plan_before_its_due_date_opens_with_the_invoice() {
        let (plan, messages) = build_at(at("2026-11-20T12:00:00Z"), "2026-12-01");
        assert_eq!(plan.steps[0].template, INVOICE_ISSUED);
        assert!(
            messages[0].text.starts_with("New invoice"),
            "{}",
            messages[0].text
        );
    }

    #[test]
    fn a_plan_after_its_due_date_opens_with_the_past_due_notice() {
        // Five days late: the invoice-issued text would say "New invoice … is due Dec 1".
        let (plan, messages) = build_at(at("2026-12-06T12:00:00Z"), "2026-12-01");
        assert_eq!(plan.steps[0].template, PAST_DUE);
        let first = &messages[0];
        assert_eq!(plan.steps[0].message_id.as_deref(), Some(first.id.as_str()));
        assert!(!first.text.starts_with("New invoice"), "{}", first.text);
        assert!(first.text.contains("was due"), "{}", first.text);
        assert!(first.text.contains("5 days ago"), "{}", first.text);
        // The steps whose time passed are skipped as before, not sent.
        let skipped: Vec<_> = plan
            .steps
            .iter()
            .filter(|s| s.skipped.is_some())
            .map(|s| s.template.as_str())
            .collect();
        assert_eq!(skipped, ["upcoming", "due_today", "past_due"]);
        // On the due date itself it is not past due yet.
        let (plan, _) = build_at(at("2026-12-01T12:00:00Z"), "2026-12-01");
        assert_eq!(plan.steps[0].template, INVOICE_ISSUED);
    }
}
