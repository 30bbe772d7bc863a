//! What is checked just before a due message is taken: its send window and quiet days, the
//! per-recipient cap of reminder texts, and for a reminder step, that its plan still stands
//! and (with a precheck URL) that the billing system still wants it sent: that question is
//! asked ahead, off the modem's worker (see `ahead.rs`).
//!
//! A message held by one of these stays waiting with a later due time, a `status_reason`
//! (`send_window`, `cap`, `precheck_unavailable`) and a `held` history entry that says until
//! when and why; one that cannot go out any more is expired or cancelled, with a reason.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::Dispatcher;
use crate::domain::{HoldReason, Unsent};
use crate::reminders::config::{CapPolicy, PrecheckPolicy};
use crate::reminders::precheck::Answer;
use crate::reminders::window::Window;
use crate::store::plans::PlanStatus;
use crate::store::{Message, Note, Status, StepKind, StoreError};

/// How many of a number's latest messages the cap looks at.
const CAP_SCAN: usize = 500;

impl Dispatcher {
    /// Moves a waiting, due message's due time to `until`, recording why. `false` when it was
    /// no longer waiting and due.
    pub(super) async fn defer(
        &self,
        id: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        why: HoldReason,
        note: Note,
    ) -> Result<bool, StoreError> {
        // Lateness counts from when it may go, not from the original time.
        let r = self
            .store
            .update(id, |msg| msg.hold(until, why, note.clone(), now).ok())?;
        let changed = r.is_some_and(|(_, c)| c);
        if changed {
            self.store.durable().await?;
            metrics::counter!(crate::metrics::HELD, "reason" => why.as_str()).increment(1);
        }
        Ok(changed)
    }

    /// Ends a waiting message as expired or cancelled with `reason`.
    async fn end(&self, id: &str, how: Unsent, reason: &str, note: Note) -> Result<(), StoreError> {
        let r = self
            .store
            .update(id, |msg| msg.end_unsent(how, reason, note.clone()).ok())?;
        self.store.durable().await?;
        if r.is_some_and(|(_, c)| c) {
            metrics::counter!(crate::metrics::HELD, "reason" => reason.to_string()).increment(1);
        }
        Ok(())
    }

    /// Outside its send window (or on a quiet day) a message waits for the window to open; one
    /// that would expire first is expired, never sent at night.
    pub(super) async fn window_hold(
        &self,
        m: &Message,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let policy = &self.cfg.reminders;
        let spec = match &m.send_window {
            Some(w) => w.clone(),
            None if policy.window_all_messages && !m.is_from_gateway() => {
                policy.window_in(policy.timezone.name())
            }
            None => return Ok(false),
        };
        let w = match Window::from_spec(&spec) {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(message_id = %m.id, error = %e, "ignoring a send window that does not parse");
                return Ok(false);
            }
        };
        let open = w.next_open(now, &policy.quiet);
        if open <= now {
            return Ok(false);
        }
        let local = open.with_timezone(&w.tz).format("%Y-%m-%d %H:%M %Z");
        if let Some(exp) = m.expires_at
            && exp <= open
        {
            self.end(
                &m.id,
                Unsent::Expired,
                "send_window",
                Note::new(
                    "expired",
                    format!(
                        "not sent: outside the send window ({}–{} {}), and it expires at {} before the window opens again ({local})",
                        spec.start, spec.end, spec.timezone, exp.to_rfc3339()
                    ),
                    json!({ "reason": "send_window", "window": spec, "opens": open }),
                ),
            )
            .await?;
            return Ok(true);
        }
        self.defer(
            &m.id,
            now,
            open,
            HoldReason::SendWindow,
            Note::new(
                "held",
                format!(
                    "held: outside the send window ({}–{} {}); it goes when the window opens, {local}",
                    spec.start, spec.end, spec.timezone
                ),
                json!({ "reason": "send_window", "window": spec, "until": open }),
            ),
        )
        .await?;
        Ok(true)
    }

    /// A reminder step to a number that already got `cap` reminder texts within the cap's
    /// period waits until the oldest of them leaves the period, or is cancelled (`drop`).
    pub(super) async fn cap_hold(
        &self,
        m: &Message,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let policy = &self.cfg.reminders;
        if policy.cap == 0
            || !m
                .reminder
                .as_ref()
                .is_some_and(|r| r.kind == StepKind::Reminder)
        {
            return Ok(false);
        }
        let since = now - policy.cap_period;
        let mut sent: Vec<DateTime<Utc>> = self
            .store
            .messages_to(&m.to, CAP_SCAN)?
            .into_iter()
            .filter(|x| {
                x.id != m.id
                    && x.reminder
                        .as_ref()
                        .is_some_and(|r| r.kind == StepKind::Reminder)
            })
            .filter_map(|x| match x.status {
                // One being sent now counts as sent now.
                Status::Sending => Some(now),
                Status::Sent | Status::Delivered | Status::Failed | Status::Unknown => {
                    x.sent_at.or(x.attempts.last().map(|a| a.at))
                }
                _ => None,
            })
            .filter(|t| *t > since)
            .collect();
        let max = policy.cap as usize;
        if sent.len() < max {
            return Ok(false);
        }
        sent.sort();
        let free_at = sent[sent.len() - max] + policy.cap_period;
        let period = humantime::format_duration(policy.cap_period.to_std().unwrap_or_default());
        let words = format!(
            "{} reminder texts went to {} in the last {period} (cap {})",
            sent.len(),
            m.to,
            policy.cap
        );
        let data = json!({ "reason": "cap", "sent_in_period": sent.len(), "cap": policy.cap, "period": period.to_string(), "until": free_at });
        match policy.cap_policy {
            CapPolicy::Drop => {
                self.end(
                    &m.id,
                    Unsent::Cancelled,
                    "cap",
                    Note::new("cancelled", format!("cancelled: {words}"), data),
                )
                .await?
            }
            CapPolicy::Wait => {
                if m.expires_at.is_some_and(|e| e <= free_at) {
                    self.end(
                        &m.id,
                        Unsent::Expired,
                        "cap",
                        Note::new(
                            "expired",
                            format!("not sent: {words}, and it expires before the cap allows it"),
                            data,
                        ),
                    )
                    .await?
                } else {
                    self.defer(
                        &m.id,
                        now,
                        free_at,
                        HoldReason::Cap,
                        Note::new(
                            "held",
                            format!("held: {words}; it may go at {}", free_at.to_rfc3339()),
                            data,
                        ),
                    )
                    .await?;
                }
            }
        }
        tracing::info!(message_id = %m.id, to = %crate::numbers::masked(&m.to), "reminder held back by the per-recipient cap");
        Ok(true)
    }

    /// A reminder step goes only while its plan is active, and, with a precheck URL, only if
    /// the billing system says it still applies. The question is asked in a task of its own;
    /// until its answer is in, the step is passed over (`true`: not now).
    pub(super) async fn precheck(
        &self,
        m: &Message,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let Some(link) = &m.reminder else {
            return Ok(false);
        };
        if link.kind != StepKind::Reminder {
            return Ok(false);
        }
        let Some(plan) = self.store.plan(&link.plan_id)? else {
            return Ok(false);
        };
        if plan.status != PlanStatus::Active {
            // The plan's change cancels its waiting steps in the same transaction; this is the
            // guard for one it could not see.
            let reason = if plan.status == PlanStatus::Paid {
                "paid"
            } else {
                "plan_cancelled"
            };
            self.end(
                &m.id,
                Unsent::Cancelled,
                reason,
                Note::new(
                    "cancelled",
                    format!(
                        "cancelled: the plan of invoice {} is {reason}",
                        plan.invoice
                    ),
                    json!({ "reason": reason, "plan_id": plan.id }),
                ),
            )
            .await?;
            return Ok(true);
        }
        let policy = &self.cfg.reminders;
        let Some(url) = plan
            .precheck_url
            .clone()
            .or_else(|| policy.precheck_url.clone())
        else {
            return Ok(false);
        };
        let Some(client) = &self.precheck else {
            return Ok(false);
        };
        if self.ahead.take_cleared(&m.id) {
            return Ok(false);
        }
        // One gateway of those sharing a store asks (the holder of the step's precheck lease);
        // the others pass over the step meanwhile.
        let lease = crate::store::lease::precheck_lease(&m.id);
        if self.store.is_shared() && !self.store.hold(&lease)?.is_mine() {
            return Ok(true);
        }
        // Asked in a task of its own: this modem's worker goes on with other messages, and
        // the step is taken once the answer is in (the task wakes the workers).
        let d = self.clone();
        let client = client.clone();
        let msg = m.clone();
        let step = link.step as usize;
        let asked = self.ahead.start(
            &m.id,
            async move {
                let answer = client.ask(&url, &plan, &msg, step).await;
                tracing::info!(message_id = %msg.id, invoice = %plan.invoice, answer = ?answer, "precheck");
                let go = match d.answered(&msg, now, answer).await {
                    Ok(go) => go,
                    Err(e) => {
                        tracing::error!(message_id = %msg.id, error = %e, "cannot record a precheck's answer; it is asked again");
                        false
                    }
                };
                if !go && let Err(e) = d.store.let_go(&lease) {
                    tracing::debug!(message_id = %msg.id, error = %e, "the precheck's lease expires by itself");
                }
                go
            },
            {
                let d = self.clone();
                move || d.notify()
            },
        );
        if asked {
            tracing::debug!(message_id = %m.id, "precheck asked ahead of the send");
        }
        // Not now either way: being asked, or too many questions are out.
        Ok(true)
    }

    /// Acts on a precheck's answer for `m` (due at `now`): `true` when the step may go.
    async fn answered(
        &self,
        m: &Message,
        now: DateTime<Utc>,
        answer: Answer,
    ) -> Result<bool, StoreError> {
        let policy = &self.cfg.reminders;
        match answer {
            Answer::Send => {
                // Recorded: the history shows the billing system was asked and said yes.
                self.store.update(&m.id, |msg| {
                    msg.status.is_waiting().then(|| {
                        Note::new(
                            "precheck",
                            "precheck: the billing system confirmed the step still applies",
                            json!({ "send": true }),
                        )
                    })
                })?;
                self.store.durable().await?;
                Ok(true)
            }
            Answer::Skip(reason) => {
                self.end(
                    &m.id,
                    Unsent::Cancelled,
                    "precheck",
                    Note::new(
                        "cancelled",
                        format!(
                            "cancelled: the billing system said not to send it{}",
                            reason
                                .as_deref()
                                .map(|r| format!(" ({r})"))
                                .unwrap_or_default()
                        ),
                        json!({ "reason": "precheck", "send": false, "answer_reason": reason }),
                    ),
                )
                .await?;
                Ok(false)
            }
            Answer::Unavailable(why) => {
                match policy.precheck_on_error {
                    PrecheckPolicy::Send => {
                        self.store.update(&m.id, |msg| {
                            msg.status.is_waiting().then(|| {
                                Note::new(
                                    "precheck",
                                    format!("precheck failed ({why}); sent anyway, as configured"),
                                    json!({ "error": why, "policy": "send" }),
                                )
                            })
                        })?;
                        self.store.durable().await?;
                        Ok(true)
                    }
                    PrecheckPolicy::Hold => {
                        // `precheck_retry`, growing with the time the step has waited (half of
                        // it), up to an hour: a billing system down for a day is asked a few
                        // dozen times, not hundreds.
                        let waited = now - m.send_at.unwrap_or(m.created_at);
                        let retry = policy.precheck_retry;
                        let until = now
                            + retry
                                .max(waited / 2)
                                .min(retry.max(chrono::Duration::hours(1)));
                        if m.expires_at.is_some_and(|e| e <= until) {
                            self.end(
                            &m.id,
                            Unsent::Expired,
                            "precheck_unavailable",
                            Note::new(
                                "expired",
                                format!("not sent: the precheck failed ({why}) until the step expired"),
                                json!({ "error": why, "policy": "hold" }),
                            ),
                        )
                        .await?;
                        } else {
                            self.defer(
                                &m.id,
                                now,
                                until,
                                HoldReason::PrecheckUnavailable,
                                Note::new(
                                    "held",
                                    format!(
                                        "held: the precheck failed ({why}); asking again at {}",
                                        until.to_rfc3339()
                                    ),
                                    json!({ "error": why, "policy": "hold", "until": until }),
                                ),
                            )
                            .await?;
                        }
                        Ok(false)
                    }
                }
            }
        }
    }
}
