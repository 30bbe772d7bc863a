//! A plan's schedule in time: step offsets, the local time each step is planned for, the
//! send window, and when each step's text expires.

use chrono::{DateTime, NaiveTime, Utc};

use super::Problems;
use crate::reminders::config::{Policy, StepSpec, check_step};
use crate::reminders::window::{self, Window, WindowError};
use crate::store::plans::Plan;

/// A scheduled step's place in time: days from the due date, or at creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Offset {
    Now,
    Days(i64),
}

pub(super) fn parse_step_offset(s: &str) -> Result<Offset, WindowError> {
    if s.trim().eq_ignore_ascii_case("now") {
        Ok(Offset::Now)
    } else {
        window::parse_offset(s).map(Offset::Days)
    }
}

/// The local time a step is planned for (before the send window).
pub(super) fn planned_at(
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

pub(super) fn plan_tz(plan: &Plan) -> chrono_tz::Tz {
    window::timezone(&plan.timezone).unwrap_or(chrono_tz::Tz::UTC)
}

/// When the window lets a text planned for `t` go out.
pub(super) fn window_open(policy: &Policy, plan: &Plan, t: DateTime<Utc>) -> DateTime<Utc> {
    match Window::from_spec(&plan.send_window) {
        Ok(w) => w.next_open(t, &policy.quiet),
        Err(_) => t,
    }
}

/// The schedule's steps in time order, each with its offset and local send time.
pub(super) fn ordered(
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
                problems.push((format!("{field}.offset"), e.to_string()));
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
            problems.push((format!("{field}.{}", e.key()), e.detail()));
            continue;
        }
        let time = match &s.time {
            Some(t) => match window::parse_time(t) {
                Ok(t) => t,
                Err(e) => {
                    problems.push((format!("{field}.time"), e.to_string()));
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
pub(super) fn expiries(policy: &Policy, planned: &[DateTime<Utc>]) -> Vec<DateTime<Utc>> {
    (0..planned.len())
        .map(|i| match planned.get(i + 1) {
            Some(next) if *next > planned[i] => *next,
            _ => planned[i] + policy.last_step_expiry,
        })
        .collect()
}
