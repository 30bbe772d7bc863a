//! Reminder plans: one record per invoice, with the messages of its steps.
//!
//! | tree | key | value |
//! |---|---|---|
//! | `plans` | plan id (ULID, 16) | JSON [`Plan`] |
//! | `plan_invoices` | invoice reference | plan id (16): one plan per invoice |
//!
//! A plan and the messages it creates or cancels change in one transaction, so a plan never
//! points at a message that is not stored, and a crash never leaves half a reschedule. A change
//! is computed from a snapshot and applied only if the plan's `revision` is still the one
//! read; a message that must be cancelled for the change to hold (a step being replaced) and is
//! no longer waiting (a dispatcher took it in between) aborts the change, which is then
//! computed again from the new state. So a step is never both sent and replaced.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sled::Transactional;

use super::{
    IdempotencyRecord, Message, Note, SledStore, StoreError, Tx, TxTrees, abort, decode, encode,
    id_key, id_string, idempotency_row, insert_in, message_rows, update_in,
};
use crate::domain::Unsent;
pub use crate::domain::{Plan, PlanStatus, PlanStep};

/// A change to a plan, computed from a snapshot by the caller.
#[derive(Debug, Clone, Default)]
pub struct PlanChange {
    /// Messages to cancel: (id, reason, words). With `must`, the change is computed again
    /// when one is no longer waiting.
    pub cancel: Vec<Cancel>,
    /// New messages.
    pub insert: Vec<Message>,
}

/// One message a plan change cancels.
#[derive(Debug, Clone)]
pub struct Cancel {
    /// The message.
    pub id: String,
    /// `status_reason`: `paid`, `rescheduled`, `plan_cancelled`.
    pub reason: String,
    /// The history entry's words.
    pub words: String,
    /// The change is void unless this one is cancelled (it is being replaced).
    pub must: bool,
}

/// What [`Store::create_plan`] did.
#[derive(Debug, Clone)]
pub enum Created {
    /// Stored, with its messages.
    New,
    /// The invoice already has this plan; nothing was written.
    Exists(Box<Plan>),
}

/// What [`Store::change_plan`]'s closure decides.
pub enum Decision<R> {
    /// Leave the plan as it is, answering `R`.
    Keep(R),
    /// Store the new plan (revision bumped) with these message changes, answering `R`.
    Change(Box<Plan>, PlanChange, R),
}

/// How often a plan change is worked out again before it gives up (the plan kept changing).
pub(super) const ATTEMPTS: usize = 5;

impl SledStore {
    /// Stores a new plan and its messages in one transaction, unless its invoice has one.
    pub fn create_plan(
        &self,
        plan: &Plan,
        messages: &[Message],
        idempotency: Option<(&str, &IdempotencyRecord)>,
    ) -> Result<Created, StoreError> {
        let _w = self.writing();
        let pid = key_of(&plan.id)?;
        let rec = encode(plan)?;
        let rows = message_rows(messages)?;
        let idem = idempotency_row(idempotency)?;
        let i = &self.inner;
        let r = (
            &i.plans,
            &i.plan_invoices,
            &i.messages,
            &i.due,
            &i.status,
            &i.to,
            &i.idempotency,
            &i.invoices,
        )
            .transaction(|(tp, ti, tm, td, ts, tt, tidem, tinv)| {
                if let Some(existing) = ti.get(plan.invoice.as_bytes())? {
                    let Some(v) = tp.get(&existing)? else {
                        return Err(abort(StoreError::Corrupt {
                            key: plan.invoice.clone(),
                            detail: "the invoice's plan record is missing".into(),
                        }));
                    };
                    let mut p: Plan = decode(&existing, &v).map_err(abort)?;
                    p.id = id_string(&existing);
                    return Ok(Created::Exists(Box::new(p)));
                }
                tp.insert(&pid[..], rec.as_slice())?;
                ti.insert(plan.invoice.as_bytes(), &pid[..])?;
                insert_in(tm, td, ts, tt, tinv, messages, &rows)?;
                if let Some((k, v)) = &idem {
                    tidem.insert(k.as_slice(), v.as_slice())?;
                }
                Ok::<_, Tx>(Created::New)
            })?;
        if matches!(r, Created::New) {
            for m in messages {
                self.count(m.status, 1);
                self.publish(m);
            }
        }
        Ok(r)
    }

    /// A plan by id.
    pub fn plan(&self, id: &str) -> Result<Option<Plan>, StoreError> {
        let Some(key) = id_key(id) else {
            return Ok(None);
        };
        match self.inner.plans.get(key)? {
            Some(v) => {
                let mut p: Plan = decode(&key, &v)?;
                p.id = id.to_string();
                Ok(Some(p))
            }
            None => Ok(None),
        }
    }

    /// The plan of an invoice.
    pub fn plan_by_invoice(&self, invoice: &str) -> Result<Option<Plan>, StoreError> {
        match self.inner.plan_invoices.get(invoice.as_bytes())? {
            Some(id) => self.plan(&id_string(&id)),
            None => Ok(None),
        }
    }

    /// Plans, newest first, after the cursor `after` (a plan id), at most `limit`.
    pub fn list_plans(
        &self,
        after: Option<&str>,
        limit: usize,
        keep: impl Fn(&Plan) -> bool,
    ) -> Result<Vec<Plan>, StoreError> {
        let iter = match after.and_then(id_key) {
            Some(k) => self.inner.plans.range(..k.to_vec()),
            None => self.inner.plans.range::<Vec<u8>, _>(..),
        };
        let mut out = Vec::new();
        for r in iter.rev() {
            let (k, v) = r?;
            let mut p: Plan = decode(&k, &v)?;
            p.id = id_string(&k);
            if keep(&p) {
                out.push(p);
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Changes a plan: `decide` gets the current plan and the current messages of its steps
    /// (by id) and decides; the change is applied in one transaction if the plan is still the
    /// one it saw, else `decide` runs again on the new state. `None` when there is no plan.
    /// With `idempotency`, that record is written in the same transaction as the change.
    pub fn change_plan<R>(
        &self,
        id: &str,
        decide: impl Fn(&Plan, &BTreeMap<String, Message>) -> Decision<R>,
        idempotency: Option<(&str, &IdempotencyRecord)>,
        actor: Option<&str>,
    ) -> Result<Option<(Plan, R)>, StoreError> {
        let _w = self.writing();
        let Some(pid) = id_key(id) else {
            return Ok(None);
        };
        for _ in 0..ATTEMPTS {
            let Some(plan) = self.plan(id)? else {
                return Ok(None);
            };
            let mut msgs = BTreeMap::new();
            for s in &plan.steps {
                if let Some(mid) = &s.message_id
                    && let Some(m) = self.get(mid)?
                {
                    msgs.insert(mid.clone(), m);
                }
            }
            let (mut new, change, answer) = match decide(&plan, &msgs) {
                Decision::Keep(r) => return Ok(Some((plan, r))),
                Decision::Change(p, c, r) => (*p, c, r),
            };
            new.revision = plan.revision + 1;
            match self.apply_plan_change(&pid, plan.revision, &new, &change, idempotency, actor) {
                Ok(()) => return Ok(Some((new, answer))),
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(kept_changing(id))
    }

    fn apply_plan_change(
        &self,
        pid: &[u8; 16],
        revision: u32,
        plan: &Plan,
        change: &PlanChange,
        idempotency: Option<(&str, &IdempotencyRecord)>,
        actor: Option<&str>,
    ) -> Result<(), StoreError> {
        let rec = encode(plan)?;
        let idem = idempotency_row(idempotency)?;
        let rows = message_rows(&change.insert)?;
        let mut cancels = Vec::with_capacity(change.cancel.len());
        for c in &change.cancel {
            cancels.push((key_of(&c.id)?, c));
        }
        let i = &self.inner;
        let notifier = self.notifier();
        let changed = (
            &i.plans,
            &i.messages,
            &i.due,
            &i.status,
            &i.to,
            &i.events,
            &i.outbox,
            &i.reports,
            &i.idempotency,
            &i.hourly,
            &i.invoices,
        )
            .transaction(
                |(tp, messages, due, status, tt, events, outbox, reports, tidem, hourly, tinv)| {
                    let current = tp.get(&pid[..])?;
                    let current: Option<Plan> = match current {
                        Some(v) => Some(decode(pid, &v).map_err(abort)?),
                        None => None,
                    };
                    if current.map(|p| p.revision) != Some(revision) {
                        return Err(abort(StoreError::Conflict("plan changed".into())));
                    }
                    let t = TxTrees {
                        messages,
                        due,
                        status,
                        events,
                        outbox,
                        reports,
                        hourly,
                    };
                    let mut moved = Vec::new();
                    for (key, c) in &cancels {
                        let f = cancelling(c, &plan.id, actor);
                        match update_in(&t, key, &f, notifier.as_deref())? {
                            Some((old, m, true)) => moved.push((old, m)),
                            _ if c.must => {
                                return Err(abort(StoreError::Conflict(
                                    "a step's message left the queue".into(),
                                )));
                            }
                            _ => {}
                        }
                    }
                    insert_in(messages, due, status, tt, tinv, &change.insert, &rows)?;
                    tp.insert(&pid[..], rec.as_slice())?;
                    if let Some((k, v)) = &idem {
                        tidem.insert(k.as_slice(), v.as_slice())?;
                    }
                    Ok::<_, Tx>(moved)
                },
            )?;
        for (old, new) in changed {
            self.count(old, -1);
            self.count(new.status, 1);
            self.publish(&new);
        }
        for m in &change.insert {
            self.count(m.status, 1);
            self.publish(m);
        }
        Ok(())
    }
}

/// What cancelling `c` for the plan `plan_id` does to its message (for both backends): the
/// message ends unsent, with `c`'s reason and words; `None` when it can no longer be
/// cancelled (it left the queue).
pub(super) fn cancelling<'a>(
    c: &'a Cancel,
    plan_id: &'a str,
    actor: Option<&'a str>,
) -> impl Fn(&mut Message) -> Option<Note> + 'a {
    move |m: &mut Message| {
        let note = Note::new(
            "cancelled",
            c.words.clone(),
            serde_json::json!({ "reason": c.reason, "plan_id": plan_id }),
        )
        .by(actor);
        m.end_unsent(Unsent::Cancelled, &c.reason, note).ok()
    }
}

/// A change to plan `id` that was worked out [`ATTEMPTS`] times and never applied.
pub(super) fn kept_changing(id: &str) -> StoreError {
    StoreError::Conflict(format!(
        "plan {id} kept changing while it was being changed; try again"
    ))
}

/// A plan or message id as its key; an id that is no ULID is a corrupt record.
pub(super) fn key_of(id: &str) -> Result<[u8; 16], StoreError> {
    id_key(id).ok_or_else(|| StoreError::Corrupt {
        key: id.to_string(),
        detail: "not a ULID".into(),
    })
}

/// A template set through the API (it overrides the config file's and the shipped one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredTemplate {
    /// The template source.
    pub text: String,
    /// When it was set.
    pub updated_at: DateTime<Utc>,
    /// The API key that set it.
    pub updated_by: String,
}

impl SledStore {
    /// A template set through the API.
    pub fn template(&self, name: &str) -> Result<Option<StoredTemplate>, StoreError> {
        match self.inner.templates.get(name.as_bytes())? {
            Some(v) => Ok(Some(decode(name.as_bytes(), &v)?)),
            None => Ok(None),
        }
    }

    /// Sets a template; call [`Store::durable`] before acknowledging.
    pub fn put_template(&self, name: &str, t: &StoredTemplate) -> Result<(), StoreError> {
        let _w = self.writing();
        self.inner.templates.insert(name.as_bytes(), encode(t)?)?;
        Ok(())
    }

    /// Removes a template set through the API; whether there was one.
    pub fn delete_template(&self, name: &str) -> Result<bool, StoreError> {
        let _w = self.writing();
        Ok(self.inner.templates.remove(name.as_bytes())?.is_some())
    }

    /// Every template set through the API, by name.
    pub fn templates(&self) -> Result<Vec<(String, StoredTemplate)>, StoreError> {
        let mut out = Vec::new();
        for r in self.inner.templates.iter() {
            let (k, v) = r?;
            out.push((String::from_utf8_lossy(&k).into_owned(), decode(&k, &v)?));
        }
        Ok(out)
    }
}
