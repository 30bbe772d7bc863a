//! A new plan from a request: the request checked field by field, the schedule laid out, and
//! the message of each step that is still ahead.

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Map, json};

use super::schedule::{Offset, expiries, ordered, plan_tz, planned_at, window_open};
use super::text::{message, render, vars_for};
use super::{Ctx, NewPlan, Problems, check_vars};
use crate::reminders::config::PastSteps;
use crate::reminders::templates;
use crate::reminders::window::{self, Window, WindowSpec};
use crate::store::Message;
use crate::store::StepKind;
use crate::store::plans::{Plan, PlanStatus, PlanStep};

/// The template of the text that says an invoice was issued (the default `now` step).
const INVOICE_ISSUED: &str = "invoice_issued";
/// What a plan made after its due date sends in its place.
const PAST_DUE: &str = "past_due";

/// Builds a new plan and the messages of its steps, or the request's problems.
pub fn build(ctx: &Ctx<'_>, req: &NewPlan) -> Result<(Plan, Vec<Message>), Problems> {
    let mut problems: Problems = Vec::new();
    let p = &mut problems;
    let to = crate::numbers::to_e164(&req.to, ctx.rules.default_region.as_deref())
        .map_err(|e| p.push(("to".into(), e.to_string())))
        .ok();
    let invoice = req.invoice.trim().to_string();
    if invoice.is_empty() || invoice.len() > 128 || invoice.chars().any(char::is_control) {
        p.push((
            "invoice".into(),
            "must be 1 to 128 printable characters".into(),
        ));
    }
    let currency = templates::check_currency(&req.currency)
        .map_err(|e| p.push(("currency".into(), e.to_string())))
        .ok();
    let amount = currency.as_ref().and_then(|c| {
        templates::normalise_amount(&req.amount.as_text(), c)
            .map_err(|e| p.push(("amount".into(), e.to_string())))
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
    if let Err(e) = window::timezone(&timezone) {
        p.push(("timezone".into(), e.to_string()));
    }
    let locale = match &req.locale {
        Some(l) => templates::check_locale(l)
            .map_err(|e| p.push(("locale".into(), e.to_string())))
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
    if let Err(e) = Window::from_spec(&send_window) {
        p.push(("send_window".into(), e.to_string()));
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
                problems.push((format!("schedule[{i}].template"), e.to_string()));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::MessageRules;
    use crate::reminders::config::Policy;
    use crate::store::Store;

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
