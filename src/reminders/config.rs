//! `[reminders]`, `[send_window]`, `[caps]` and `[templates]`: the configuration of reminder
//! plans, and the policy the dispatcher applies to the texts they create.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::NaiveTime;
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::templates::{LocaleError, TemplateError, TemplateNameError};
use super::window::{self, QuietDays, WindowError, WindowSpec};
use crate::replies::ReplyOptionsError;
use crate::webhook::UrlError;

/// One step of a reminder schedule: when, relative to the due date, and which template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StepSpec {
    /// Days from the due date: `-7d`, `0d`, `+3d` (weeks: `-1w`), or `now` (when the plan is
    /// made: the "invoice issued" text).
    #[schema(value_type = crate::domain::schema::DayOffset)]
    pub offset: String,
    /// The template's name: a shipped template or one stored with `PUT /v1/templates/{name}`.
    #[schema(value_type = crate::domain::schema::TemplateName)]
    pub template: String,
    /// Local time of day it goes out, `HH:MM` (default `[reminders] send_time`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<crate::domain::schema::LocalTime>, example = "10:00")]
    pub time: Option<String>,
    /// Reply choices the text offers, e.g. `{"1": "call_me", "2": "pay_minimum"}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<crate::domain::schema::ReplyOptions>)]
    pub reply_options: Option<BTreeMap<String, String>>,
}

/// What is done with the steps of a new plan whose time has already passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PastSteps {
    /// Skipped (recorded as `skipped`).
    #[default]
    Skip,
    /// The latest of them is sent now (inside the send window); the older ones are skipped.
    /// Never more than one: a plan created late is not a burst of texts.
    SendLatest,
}

/// What is done when the precheck URL cannot be asked (timeout, error, bad answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrecheckPolicy {
    /// The step waits `precheck_retry` and asks again (until the step expires).
    #[default]
    Hold,
    /// The step is sent anyway; the history records that the check failed.
    Send,
}

/// What is done with a text over the per-recipient cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CapPolicy {
    /// It waits until the cap allows it (or it expires).
    #[default]
    Wait,
    /// It is cancelled with reason `cap`.
    Drop,
}

/// `[reminders]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemindersConfig {
    /// Recipients' time zone unless a plan or message gives one (IANA name). Default: this
    /// machine's time zone.
    #[serde(default = "window::system_timezone")]
    pub timezone: String,
    /// Locale of money and dates in texts (`en-US`, `en-GB`, `fr-FR`, `de-DE`, …).
    #[serde(default = "default_locale")]
    pub locale: String,
    /// Local time of day a step goes out unless it says otherwise.
    #[serde(default = "default_send_time")]
    pub send_time: String,
    /// Steps of a new plan whose time has passed: `skip` or `send_latest`.
    #[serde(default)]
    pub past_steps: PastSteps,
    /// Appended by the shipped templates (`{{ opt_out_hint }}`): [`DEFAULT_OPT_OUT_HINT`] unless
    /// set; `""` adds nothing.
    #[serde(default = "default_opt_out_hint")]
    pub opt_out_hint: String,
    /// How long the last step of a plan may wait (send window, cap, precheck, modem outage)
    /// before it is expired; every other step expires when the next one falls due.
    #[serde(default = "default_last_step_expiry", with = "humantime_serde")]
    pub last_step_expiry: Duration,
    /// The schedule of a plan that brings none.
    #[serde(default = "default_schedule")]
    pub schedule: Vec<StepSpec>,
    /// Asked just before each step goes out whether it still applies (a plan may name its own).
    pub precheck_url: Option<String>,
    /// How long to wait for the precheck's answer.
    #[serde(default = "default_precheck_timeout", with = "humantime_serde")]
    pub precheck_timeout: Duration,
    /// `hold` (wait and ask again) or `send` when the precheck cannot be asked.
    #[serde(default)]
    pub precheck_on_error: PrecheckPolicy,
    /// Wait before asking again after a failed precheck (it grows to half the time the step
    /// has waited, up to an hour).
    #[serde(default = "default_precheck_retry", with = "humantime_serde")]
    pub precheck_retry: Duration,
}

impl Default for RemindersConfig {
    fn default() -> Self {
        RemindersConfig {
            timezone: window::system_timezone(),
            locale: default_locale(),
            send_time: default_send_time(),
            past_steps: PastSteps::Skip,
            opt_out_hint: default_opt_out_hint(),
            last_step_expiry: default_last_step_expiry(),
            schedule: default_schedule(),
            precheck_url: None,
            precheck_timeout: default_precheck_timeout(),
            precheck_on_error: PrecheckPolicy::Hold,
            precheck_retry: default_precheck_retry(),
        }
    }
}

/// The opt-out statement the shipped templates end with unless `[reminders] opt_out_hint` says
/// otherwise: short, and in the GSM 7-bit alphabet, so a reminder stays one part.
pub const DEFAULT_OPT_OUT_HINT: &str = "Reply STOP to opt out.";

fn default_opt_out_hint() -> String {
    DEFAULT_OPT_OUT_HINT.into()
}

fn default_locale() -> String {
    "en-US".into()
}

fn default_send_time() -> String {
    "10:00".into()
}

fn default_last_step_expiry() -> Duration {
    Duration::from_secs(3 * 24 * 3600)
}

fn default_precheck_timeout() -> Duration {
    Duration::from_secs(5)
}

fn default_precheck_retry() -> Duration {
    Duration::from_secs(300)
}

/// The shipped schedule: when the invoice is issued (the plan is made), three days before, on
/// the day, three and ten days after (with reply options), and a final notice at twenty days.
pub fn default_schedule() -> Vec<StepSpec> {
    let step = |offset: &str, template: &str| StepSpec {
        offset: offset.into(),
        template: template.into(),
        time: None,
        reply_options: None,
    };
    vec![
        step("now", "invoice_issued"),
        step("-3d", "upcoming"),
        step("0d", "due_today"),
        step("+3d", "past_due"),
        StepSpec {
            reply_options: Some(BTreeMap::from([
                ("1".to_string(), "call_me".to_string()),
                ("2".to_string(), "pay_minimum".to_string()),
            ])),
            ..step("+10d", "second_notice")
        },
        step("+20d", "final_notice"),
    ]
}

/// `[send_window]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendWindowConfig {
    /// Local time texts may start going out.
    #[serde(default = "default_window_start")]
    pub start: String,
    /// Local time they stop.
    #[serde(default = "default_window_end")]
    pub end: String,
    /// Dates nothing windowed goes out (public holidays), `YYYY-MM-DD`.
    #[serde(default)]
    pub quiet_dates: Vec<String>,
    /// Weekdays nothing windowed goes out (`sun`, …).
    #[serde(default)]
    pub quiet_weekdays: Vec<String>,
    /// Also hold plain `POST /v1/messages` texts to the window (reminder plans always are).
    #[serde(default)]
    pub all_messages: bool,
}

impl Default for SendWindowConfig {
    fn default() -> Self {
        SendWindowConfig {
            start: default_window_start(),
            end: default_window_end(),
            quiet_dates: Vec::new(),
            quiet_weekdays: Vec::new(),
            all_messages: false,
        }
    }
}

fn default_window_start() -> String {
    "08:00".into()
}

fn default_window_end() -> String {
    "21:00".into()
}

/// `[caps]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapsConfig {
    /// Most reminder texts one number gets within `period` (0: no cap).
    #[serde(default = "default_cap")]
    pub max_per_recipient: u32,
    /// The sliding period of the cap.
    #[serde(default = "default_cap_period", with = "humantime_serde")]
    pub period: Duration,
    /// `wait` or `drop` a text over the cap.
    #[serde(default)]
    pub policy: CapPolicy,
}

impl Default for CapsConfig {
    fn default() -> Self {
        CapsConfig {
            max_per_recipient: default_cap(),
            period: default_cap_period(),
            policy: CapPolicy::Wait,
        }
    }
}

fn default_cap() -> u32 {
    3
}

fn default_cap_period() -> Duration {
    Duration::from_secs(7 * 24 * 3600)
}

/// The checked policy of reminder plans and send windows, shared by the API and the
/// dispatcher.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Default time zone.
    pub timezone: Tz,
    /// Default locale.
    pub locale: String,
    /// Default local send time of a step.
    pub send_time: NaiveTime,
    /// Past steps of a new plan.
    pub past_steps: PastSteps,
    /// `{{ opt_out_hint }}`.
    pub opt_out_hint: String,
    /// Expiry of a plan's last step after its time.
    pub last_step_expiry: chrono::Duration,
    /// Default schedule.
    pub schedule: Vec<StepSpec>,
    /// Global precheck URL.
    pub precheck_url: Option<String>,
    /// Precheck timeout.
    pub precheck_timeout: Duration,
    /// When the precheck cannot be asked.
    pub precheck_on_error: PrecheckPolicy,
    /// Wait before asking again.
    pub precheck_retry: chrono::Duration,
    /// Default window (local start and end; the zone comes from the plan or message).
    pub window_start: String,
    /// See `window_start`.
    pub window_end: String,
    /// Quiet dates and weekdays.
    pub quiet: QuietDays,
    /// Window for plain messages too.
    pub window_all_messages: bool,
    /// Per-recipient cap (0: none).
    pub cap: u32,
    /// Cap period.
    pub cap_period: chrono::Duration,
    /// Over the cap.
    pub cap_policy: CapPolicy,
    /// Templates from the config file, by name (they override the shipped ones).
    pub templates: BTreeMap<String, String>,
}

impl Default for Policy {
    fn default() -> Self {
        // The defaults are valid by construction.
        Policy::from_config(
            &RemindersConfig::default(),
            &SendWindowConfig::default(),
            &CapsConfig::default(),
            &BTreeMap::new(),
        )
        .unwrap_or_else(|_| Policy::fallback())
    }
}

fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl Policy {
    fn fallback() -> Policy {
        Policy {
            timezone: Tz::UTC,
            locale: default_locale(),
            send_time: NaiveTime::from_hms_opt(10, 0, 0).unwrap_or_default(),
            past_steps: PastSteps::Skip,
            opt_out_hint: default_opt_out_hint(),
            last_step_expiry: chrono_duration(default_last_step_expiry()),
            schedule: default_schedule(),
            precheck_url: None,
            precheck_timeout: default_precheck_timeout(),
            precheck_on_error: PrecheckPolicy::Hold,
            precheck_retry: chrono_duration(default_precheck_retry()),
            window_start: default_window_start(),
            window_end: default_window_end(),
            quiet: QuietDays::default(),
            window_all_messages: false,
            cap: default_cap(),
            cap_period: chrono_duration(default_cap_period()),
            cap_policy: CapPolicy::Wait,
            templates: BTreeMap::new(),
        }
    }

    /// Checks the sections; errors read `key: what is wrong`.
    pub fn from_config(
        r: &RemindersConfig,
        w: &SendWindowConfig,
        c: &CapsConfig,
        templates: &BTreeMap<String, String>,
    ) -> Result<Policy, PolicyError> {
        let timezone = window::timezone(&r.timezone).map_err(PolicyError::Timezone)?;
        let locale = super::templates::check_locale(&r.locale).map_err(PolicyError::Locale)?;
        let send_time = window::parse_time(&r.send_time).map_err(PolicyError::SendTime)?;
        for (i, s) in r.schedule.iter().enumerate() {
            check_step(s).map_err(|source| PolicyError::Step {
                number: i + 1,
                source,
            })?;
        }
        if let Some(u) = &r.precheck_url {
            crate::webhook::validate_url(u).map_err(PolicyError::PrecheckUrl)?;
        }
        window::parse_time(&w.start).map_err(PolicyError::WindowStart)?;
        let spec = WindowSpec {
            start: w.start.clone(),
            end: w.end.clone(),
            timezone: "UTC".into(),
        };
        window::Window::from_spec(&spec).map_err(PolicyError::WindowEnd)?;
        QuietDays::parse(&w.quiet_dates, &[]).map_err(PolicyError::QuietDates)?;
        let quiet = QuietDays::parse(&w.quiet_dates, &w.quiet_weekdays)
            .map_err(PolicyError::QuietWeekdays)?;
        if c.period.is_zero() {
            return Err(PolicyError::CapPeriod);
        }
        for (name, text) in templates {
            super::templates::check_name(name).map_err(|source| PolicyError::TemplateName {
                name: name.clone(),
                source,
            })?;
            super::templates::check(text, &serde_json::json!({})).map_err(|source| {
                PolicyError::Template {
                    name: name.clone(),
                    source,
                }
            })?;
        }
        Ok(Policy {
            timezone,
            locale,
            send_time,
            past_steps: r.past_steps,
            opt_out_hint: r.opt_out_hint.trim().to_string(),
            last_step_expiry: chrono_duration(r.last_step_expiry),
            schedule: r.schedule.clone(),
            precheck_url: r.precheck_url.clone(),
            precheck_timeout: r.precheck_timeout,
            precheck_on_error: r.precheck_on_error,
            precheck_retry: chrono_duration(r.precheck_retry),
            window_start: w.start.trim().to_string(),
            window_end: w.end.trim().to_string(),
            quiet,
            window_all_messages: w.all_messages,
            cap: c.max_per_recipient,
            cap_period: chrono_duration(c.period),
            cap_policy: c.policy,
            templates: templates.clone(),
        })
    }

    /// The default window in a time zone.
    pub fn window_in(&self, timezone: &str) -> WindowSpec {
        WindowSpec {
            start: self.window_start.clone(),
            end: self.window_end.clone(),
            timezone: timezone.to_string(),
        }
    }
}

/// What is wrong with `[reminders]`, `[send_window]`, `[caps]` or `[templates]`; the words
/// read `key: what is wrong` (`send_window: start: …`, `templates: NAME: …`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PolicyError {
    /// `[reminders] timezone`.
    #[error("timezone: {0}")]
    Timezone(#[source] WindowError),
    /// `[reminders] locale`.
    #[error("locale: {0}")]
    Locale(#[source] LocaleError),
    /// `[reminders] send_time`.
    #[error("send_time: {0}")]
    SendTime(#[source] WindowError),
    /// A step of `[reminders] schedule` (numbered from 1).
    #[error("schedule: step {number}: {source}")]
    Step {
        /// Its place in the schedule, from 1.
        number: usize,
        /// What is wrong with it.
        source: StepError,
    },
    /// `[reminders] precheck_url`.
    #[error("precheck_url: {0}")]
    PrecheckUrl(#[source] UrlError),
    /// `[send_window] start`.
    #[error("send_window: start: {0}")]
    WindowStart(#[source] WindowError),
    /// `[send_window] end` (or the window as a whole).
    #[error("send_window: end: {0}")]
    WindowEnd(#[source] WindowError),
    /// `[send_window] quiet_dates`.
    #[error("send_window: quiet_dates: {0}")]
    QuietDates(#[source] WindowError),
    /// `[send_window] quiet_weekdays`.
    #[error("send_window: quiet_weekdays: {0}")]
    QuietWeekdays(#[source] WindowError),
    /// `[caps] period` is zero.
    #[error("caps: period: must be longer than zero")]
    CapPeriod,
    /// A name in `[templates]`.
    #[error("templates: {name}: {source}")]
    TemplateName {
        /// The name.
        name: String,
        /// What is wrong with it.
        source: TemplateNameError,
    },
    /// A text in `[templates]` that does not compile or render.
    #[error("templates: {name}: {source}")]
    Template {
        /// The template's name.
        name: String,
        /// What is wrong with it.
        source: TemplateError,
    },
}

impl PolicyError {
    /// Where the problem is: the section (`reminders`, `send_window`, `caps`, `templates`),
    /// the key in it, and what is wrong without them.
    pub fn place(&self) -> (&'static str, String, String) {
        let at = |section, key: &str, what: String| (section, key.to_owned(), what);
        match self {
            PolicyError::Timezone(e) => at("reminders", "timezone", e.to_string()),
            PolicyError::Locale(e) => at("reminders", "locale", e.to_string()),
            PolicyError::SendTime(e) => at("reminders", "send_time", e.to_string()),
            PolicyError::Step { number, source } => {
                at("reminders", "schedule", format!("step {number}: {source}"))
            }
            PolicyError::PrecheckUrl(e) => at("reminders", "precheck_url", e.to_string()),
            PolicyError::WindowStart(e) => at("send_window", "start", e.to_string()),
            PolicyError::WindowEnd(e) => at("send_window", "end", e.to_string()),
            PolicyError::QuietDates(e) => at("send_window", "quiet_dates", e.to_string()),
            PolicyError::QuietWeekdays(e) => at("send_window", "quiet_weekdays", e.to_string()),
            PolicyError::CapPeriod => at("caps", "period", "must be longer than zero".into()),
            PolicyError::TemplateName { name, source } => at("templates", name, source.to_string()),
            PolicyError::Template { name, source } => at("templates", name, source.to_string()),
        }
    }
}

/// What is wrong with one step of a schedule; the words read `key: what is wrong`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    /// `offset`.
    #[error("offset: {0}")]
    Offset(#[source] WindowError),
    /// `time`.
    #[error("time: {0}")]
    Time(#[source] WindowError),
    /// `template`.
    #[error("template: {0}")]
    Template(#[source] TemplateNameError),
    /// `reply_options`.
    #[error("reply_options: {0}")]
    ReplyOptions(#[source] ReplyOptionsError),
}

impl StepError {
    /// The step's key that is wrong.
    pub fn key(&self) -> &'static str {
        match self {
            StepError::Offset(_) => "offset",
            StepError::Time(_) => "time",
            StepError::Template(_) => "template",
            StepError::ReplyOptions(_) => "reply_options",
        }
    }

    /// What is wrong, without the key.
    pub fn detail(&self) -> String {
        match self {
            StepError::Offset(e) | StepError::Time(e) => e.to_string(),
            StepError::Template(e) => e.to_string(),
            StepError::ReplyOptions(e) => e.to_string(),
        }
    }
}

/// Checks one step's offset, time, template name and reply options.
pub fn check_step(s: &StepSpec) -> Result<(), StepError> {
    if !s.offset.trim().eq_ignore_ascii_case("now") {
        window::parse_offset(&s.offset).map_err(StepError::Offset)?;
    }
    if let Some(t) = &s.time {
        window::parse_time(t).map_err(StepError::Time)?;
    }
    super::templates::check_name(&s.template).map_err(StepError::Template)?;
    if let Some(opts) = &s.reply_options {
        crate::replies::reply_options_problems(opts).map_err(StepError::ReplyOptions)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(toml_text: &str) -> Policy {
        let r: RemindersConfig = toml::from_str(toml_text).unwrap();
        Policy::from_config(
            &r,
            &SendWindowConfig::default(),
            &CapsConfig::default(),
            &BTreeMap::new(),
        )
        .unwrap()
    }

    #[test]
    fn policy_errors_name_their_place() {
        let r: RemindersConfig = toml::from_str("timezone = \"Mars/Olympus\"").unwrap();
        let e = Policy::from_config(
            &r,
            &SendWindowConfig::default(),
            &CapsConfig::default(),
            &BTreeMap::new(),
        )
        .unwrap_err();
        assert_eq!(
            e,
            PolicyError::Timezone(WindowError::Timezone("Mars/Olympus".into()))
        );
        assert_eq!(e.place().0, "reminders");
        assert!(
            e.to_string().starts_with("timezone: \"Mars/Olympus\""),
            "{e}"
        );
        let step = StepSpec {
            offset: "-7d".into(),
            template: "Upcoming".into(),
            time: None,
            reply_options: None,
        };
        let e = check_step(&step).unwrap_err();
        assert!(matches!(
            e,
            StepError::Template(TemplateNameError::Character { .. })
        ));
        assert_eq!(e.key(), "template");
        assert_eq!(e.to_string(), format!("template: {}", e.detail()));
        let templates = BTreeMap::from([("Bad".to_string(), "hi".to_string())]);
        let e = Policy::from_config(
            &RemindersConfig::default(),
            &SendWindowConfig::default(),
            &CapsConfig::default(),
            &templates,
        )
        .unwrap_err();
        let (section, key, _) = e.place();
        assert_eq!((section, key.as_str()), ("templates", "Bad"));
    }

    #[test]
    fn the_opt_out_hint_is_on_unless_set_empty() {
        assert_eq!(policy("").opt_out_hint, "Reply STOP to opt out.");
        assert_eq!(Policy::default().opt_out_hint, DEFAULT_OPT_OUT_HINT);
        assert_eq!(policy("opt_out_hint = \"\"").opt_out_hint, "");
        assert_eq!(
            policy("opt_out_hint = \"STOP: no more texts\"").opt_out_hint,
            "STOP: no more texts"
        );
    }
}
