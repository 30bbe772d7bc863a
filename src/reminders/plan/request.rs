//! The bodies of the plan endpoints (new plan, patch, paid, payment failed) and the checks
//! of their template variables.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::reminders::config::{PastSteps, StepSpec};

/// Problems with a request, by field (`schedule[2].template`).
pub type Problems = Vec<(String, String)>;

/// An amount as posted: a decimal string (`"120.50"`, exact) or a JSON number.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum Amount {
    /// `"120.50"`.
    #[schema(value_type = crate::domain::schema::AmountText)]
    Text(String),
    /// `120.5`.
    #[schema(value_type = crate::domain::schema::AmountNumber)]
    Number(serde_json::Number),
}

impl Amount {
    pub(super) fn as_text(&self) -> String {
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
    #[schema(value_type = crate::domain::schema::LocalTime, example = "09:00")]
    pub start: String,
    /// Closes, `HH:MM` local, after `start`.
    #[schema(value_type = crate::domain::schema::LocalTime, example = "20:00")]
    pub end: String,
}

/// `POST /v1/reminders`
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPlan {
    /// Phone number (E.164, or national with `[sms] default_region`).
    #[schema(value_type = crate::domain::schema::PhoneNumberInput)]
    pub to: String,
    /// Invoice reference: one plan per invoice; 1 to 128 bytes (UTF-8) once the spaces around
    /// it are dropped, no control characters.
    #[schema(
        example = "INV-1042",
        min_length = 1,
        max_length = 128,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub invoice: String,
    /// Amount due, as a decimal string.
    #[schema(example = "120.50")]
    pub amount: Amount,
    /// ISO 4217 currency code.
    #[schema(value_type = crate::domain::schema::Currency)]
    pub currency: String,
    /// Due date, `YYYY-MM-DD`, in the recipient's calendar.
    #[schema(example = "2026-12-01", format = Date)]
    pub due_date: String,
    /// The recipient's IANA time zone (default `[reminders] timezone`).
    #[schema(value_type = Option<crate::domain::schema::TimeZone>)]
    pub timezone: Option<String>,
    /// Locale of money and dates (default `[reminders] locale`).
    #[schema(value_type = Option<crate::domain::schema::Locale>)]
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
    #[schema(value_type = Option<crate::domain::schema::TemplateVars>)]
    pub vars: Option<Map<String, Value>>,
    /// The steps (default `[reminders] schedule`): 1 to 20.
    #[schema(min_items = 1, max_items = 20)]
    pub schedule: Option<Vec<StepSpec>>,
    /// Steps whose time has passed: `skip` (default) or `send_latest`.
    pub past_steps: Option<PastSteps>,
    /// Send hours (default `[send_window]`).
    pub send_window: Option<WindowTimes>,
    /// Where the messages' events go.
    #[schema(value_type = Option<crate::domain::schema::CallbackUrl>)]
    pub callback_url: Option<String>,
    /// Asked before each step goes out (default `[reminders] precheck_url`).
    #[schema(value_type = Option<crate::domain::schema::CallbackUrl>)]
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
    /// New due date, `YYYY-MM-DD`.
    #[schema(format = Date)]
    pub due_date: Option<String>,
    /// New amount.
    pub amount: Option<Amount>,
    /// New currency.
    #[schema(value_type = Option<crate::domain::schema::Currency>)]
    pub currency: Option<String>,
    /// New name.
    pub name: Option<String>,
    /// New payment link.
    pub pay_url: Option<String>,
    /// Variables to set (merged into the plan's).
    #[schema(value_type = Option<crate::domain::schema::TemplateVars>)]
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
    /// Why, in words (`{{ failure_reason }}`): at most 200 bytes (UTF-8).
    #[schema(max_length = 200)]
    pub reason: Option<String>,
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

pub(super) fn check_vars(extra: &Map<String, Value>, p: &mut Problems) {
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
