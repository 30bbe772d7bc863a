//! A step's text: where its template comes from, the variables it is rendered with, and the
//! message that carries it.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::Ctx;
use crate::reminders::config::Policy;
use crate::reminders::templates;
use crate::sms::TextPlan;
use crate::store::plans::{Plan, PlanStep};
use crate::store::{Message, Priority, ReminderLink, Status, Store, StoreError};

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

/// The render variables of a step of `plan` going out on local date `on`.
pub(super) fn vars_for(
    policy: &Policy,
    plan: &Plan,
    on: NaiveDate,
    extra: &[(&str, Value)],
) -> Value {
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
pub(super) struct Rendered {
    pub(super) text: String,
    pub(super) encoding: String,
    pub(super) parts: u8,
}

/// Why a step's text cannot be made.
#[derive(Debug, thiserror::Error)]
pub(super) enum RenderError {
    /// The API's templates could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No template has the name.
    #[error(
        "no template {0:?} (shipped: {names}; add one with PUT /v1/templates/{0} or in [templates])",
        names = templates::DEFAULT_NAMES.join(", ")
    )]
    Missing(String),
    /// The template does not render.
    #[error("template {name:?}: {source}")]
    Template {
        name: String,
        source: templates::TemplateError,
    },
    /// It renders only whitespace.
    #[error("template {0:?} renders an empty text")]
    Empty(String),
    /// The text cannot go as an SMS (too long, …).
    #[error("template {name:?}: {source}")]
    Text {
        name: String,
        source: crate::sms::EncodeError,
    },
}

pub(super) fn render(ctx: &Ctx<'_>, name: &str, vars: &Value) -> Result<Rendered, RenderError> {
    let (src, _) = template_source(ctx.store, ctx.policy, name)?
        .ok_or_else(|| RenderError::Missing(name.to_owned()))?;
    let text = templates::render(&src, vars).map_err(|source| RenderError::Template {
        name: name.to_owned(),
        source,
    })?;
    if text.trim().is_empty() {
        return Err(RenderError::Empty(name.to_owned()));
    }
    let p = TextPlan::new(&text, &ctx.rules.national_languages, ctx.rules.max_parts).map_err(
        |source| RenderError::Text {
            name: name.to_owned(),
            source,
        },
    )?;
    Ok(Rendered {
        text,
        encoding: p.encoding.as_str().to_string(),
        parts: p.parts.len() as u8,
    })
}

/// The message of a step.
#[allow(clippy::too_many_arguments)]
pub(super) fn message(
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
        to: plan.to.to_string(),
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
        redacted: None,
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
