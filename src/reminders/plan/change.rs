//! The changes to an existing plan: paid, payment failed, patched (rescheduled and
//! re-rendered), cancelled. Each is a [`Decision`] over a snapshot of the plan and its messages.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Value, json};

use super::schedule::{Offset, expiries, parse_step_offset, plan_tz, planned_at, window_open};
use super::text::{message, render, vars_for};
use super::{Amount, Ctx, Paid, PaymentFailed, PlanPatch, Problems, check_vars};
use crate::reminders::templates;
use crate::reminders::window;
use crate::store::plans::{Cancel, Decision, Plan, PlanChange, PlanStatus, PlanStep};
use crate::store::{Message, Status, StepKind};

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
    let r = render(ctx, template, &vars)
        .map_err(|e| Refused::Invalid(vec![("template".into(), e.to_string())]))?;
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
                return Decision::Keep(Err(Refused::Invalid(vec![(
                    "amount_paid".into(),
                    e.to_string(),
                )])));
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
            Err(e) => problems.push(("currency".into(), e.to_string())),
        }
    }
    let amount = req
        .amount
        .as_ref()
        .map_or_else(|| plan.amount.clone(), Amount::as_text);
    match templates::normalise_amount(&amount, &new.currency) {
        Ok(a) => new.amount = a,
        Err(e) => problems.push(("amount".into(), e.to_string())),
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
            Err(e) => problems.push((format!("steps[{i}].template"), e.to_string())),
        }
        plan.steps[i] = new_step;
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Refused::Invalid(problems))
    }
}
