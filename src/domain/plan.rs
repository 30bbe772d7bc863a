//! An invoice's reminder plan as it is kept: its steps, each with the message it became.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::{StepKind, WindowSpec};

/// Where a plan is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PlanStatus {
    /// Its steps go out as they fall due.
    Active,
    /// Paid: pending steps cancelled, confirmation sent.
    Paid,
    /// Cancelled (`DELETE`): pending steps cancelled.
    Cancelled,
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanStep {
    /// A scheduled reminder, or a payment text.
    pub kind: StepKind,
    /// The template's name.
    pub template: String,
    /// Days from the due date (`-7d`), for scheduled reminders.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<String>,
    /// Local time of day, `HH:MM`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    /// Reply choices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_options: Option<BTreeMap<String, String>>,
    /// When the schedule puts it (local time on its day), before the send window.
    pub planned_at: DateTime<Utc>,
    /// Its message, once it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// Why it has no message (`past`: its time had passed when the plan was made).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    /// Earlier messages of this step, cancelled when the plan was rescheduled.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replaced: Vec<String>,
}

/// An invoice's reminder plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// ULID; the record's key, not stored in it.
    #[serde(default, skip_serializing)]
    pub id: String,
    /// The invoice reference: one plan per invoice.
    pub invoice: String,
    /// E.164 recipient.
    pub to: crate::numbers::PhoneNumber,
    /// Amount due, normalised to the currency's decimals ("120.50").
    pub amount: String,
    /// ISO 4217 code.
    pub currency: String,
    /// Due date, in the recipient's calendar.
    pub due_date: NaiveDate,
    /// The recipient's time zone.
    pub timezone: String,
    /// Locale of money and dates.
    pub locale: String,
    /// Template variables: `name`, `pay_url`, `unit`, `property` and the caller's `vars`.
    #[serde(default)]
    pub vars: serde_json::Map<String, serde_json::Value>,
    /// Where the messages' events go.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
    /// Asked before each step goes out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precheck_url: Option<String>,
    /// The hours texts go out in.
    pub send_window: WindowSpec,
    /// Caller's data, returned as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Value>,
    /// Where it is.
    pub status: PlanStatus,
    /// When it was paid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paid_at: Option<DateTime<Utc>>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// The API key that created it.
    pub created_by: String,
    /// Its steps: the schedule, then payment texts as they are sent.
    pub steps: Vec<PlanStep>,
    /// SHA-256 of the creating request: the same request again is answered with this plan.
    pub fingerprint: String,
    /// Changes so far (a change applies only to the revision it was computed from).
    #[serde(default)]
    pub revision: u32,
}
