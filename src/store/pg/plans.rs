//! Invoice reminder plans in PostgreSQL: the `plans` table, one row per plan, its `body` the
//! JSON the embedded store keeps (see [`crate::store::plans`]).
//!
//! One plan per invoice across every gateway on the database: the UNIQUE `invoice` column
//! decides. Two gateways creating the plan of one invoice at once insert in turn (the second
//! insert waits for the first transaction); the second finds the first's plan and writes
//! nothing, neither its plan nor its messages.
//!
//! A change holds the plan's row (`SELECT … FOR UPDATE`), then the rows of its steps'
//! messages (the same way, by id) while the caller decides: a dispatcher cannot take one of
//! those messages in between, and another gateway changing the same plan waits for this
//! change and sees it. Locks are always taken in that order (plan, then messages by id), so
//! two changes never wait for each other's.

use std::collections::BTreeMap;

use deadpool_postgres::Transaction;

use super::body::{col, from_body, to_body};
use super::messages::{
    MESSAGE_COLUMNS, insert_idempotency, insert_row, live_event, message_of, write_change,
};
use super::outbox::insert_outbox;
use super::{PgStore, db_error};
use crate::store::keys::id_string;
use crate::store::messages::{Change, first_event_shown};
use crate::store::plans::{
    ATTEMPTS, Created, Decision, Plan, PlanChange, cancelling, kept_changing, key_of,
};
use crate::store::{IdempotencyRecord, Message, StoreError, id_key};

/// Plans a listing reads at a time while the caller's filter passes over them.
const PAGE: i64 = 200;

/// A plan from a row of (`id`, `body`).
fn plan_of(row: &tokio_postgres::Row) -> Result<Plan, StoreError> {
    let id: String = col(row, 0, "plans")?;
    let mut p: Plan = from_body(&id, col(row, 1, &id)?)?;
    p.id = id;
    Ok(p)
}

/// `id` as the plans table keeps it (a ULID's canonical text); `None` if it is no ULID.
fn canonical(id: &str) -> Option<String> {
    id_key(id).map(|k| id_string(&k))
}

impl PgStore {
    /// Stores a new plan and its messages in one transaction, unless its invoice has one
    /// (see [`crate::store::SledStore::create_plan`]).
    pub fn create_plan(
        &self,
        plan: &Plan,
        messages: &[Message],
        idempotency: Option<(&str, &IdempotencyRecord)>,
    ) -> Result<Created, StoreError> {
        let pid = id_string(&key_of(&plan.id)?);
        let body = to_body(plan)?;
        let created = self.run(async {
            let mut c = self.client().await?;
            for _ in 0..ATTEMPTS {
                let tx = c.transaction().await.map_err(db_error)?;
                let n = tx
                    .execute(
                        "INSERT INTO plans (id, invoice, body) VALUES ($1, $2, $3) \
                         ON CONFLICT (invoice) DO NOTHING",
                        &[&pid, &plan.invoice, &body],
                    )
                    .await
                    .map_err(db_error)?;
                if n == 0 {
                    // The invoice's plan, committed (by this gateway or another): a new
                    // statement sees it.
                    let row = tx
                        .query_opt(
                            "SELECT id, body FROM plans WHERE invoice = $1",
                            &[&plan.invoice],
                        )
                        .await
                        .map_err(db_error)?;
                    tx.rollback().await.map_err(db_error)?;
                    match row {
                        Some(r) => return Ok(Created::Exists(Box::new(plan_of(&r)?))),
                        // Removed in between (an erasure): the invoice is free again.
                        None => continue,
                    }
                }
                for m in messages {
                    insert_row(&tx, m).await?;
                }
                if let Some((k, r)) = idempotency {
                    insert_idempotency(&tx, k, r).await?;
                }
                tx.commit().await.map_err(db_error)?;
                return Ok(Created::New);
            }
            Err(StoreError::Conflict(format!(
                "the plan of invoice {} kept appearing and going; try again",
                plan.invoice
            )))
        })?;
        if matches!(created, Created::New) {
            for m in messages {
                self.publish(live_event(m, &first_event_shown(m)));
            }
            self.tell(messages.iter().any(|m| m.status.is_waiting()), false);
        }
        Ok(created)
    }

    /// A plan by id.
    pub fn plan(&self, id: &str) -> Result<Option<Plan>, StoreError> {
        let Some(pid) = canonical(id) else {
            return Ok(None);
        };
        let found = self.plan_where("id", &pid)?;
        Ok(found.map(|p| Plan {
            id: id.to_string(),
            ..p
        }))
    }

    /// The plan of an invoice.
    pub fn plan_by_invoice(&self, invoice: &str) -> Result<Option<Plan>, StoreError> {
        self.plan_where("invoice", invoice)
    }

    /// The plan whose `column` is `value`.
    fn plan_where(&self, column: &str, value: &str) -> Result<Option<Plan>, StoreError> {
        self.run(async {
            let c = self.client().await?;
            let row = c
                .query_opt(
                    &format!("SELECT id, body FROM plans WHERE {column} = $1"),
                    &[&value],
                )
                .await
                .map_err(db_error)?;
            row.as_ref().map(plan_of).transpose()
        })
    }

    /// Plans, newest first, after the cursor `after` (a plan id), at most `limit` of those
    /// `keep` takes. `keep` runs here, between pages of rows.
    pub fn list_plans(
        &self,
        after: Option<&str>,
        limit: usize,
        keep: impl Fn(&Plan) -> bool,
    ) -> Result<Vec<Plan>, StoreError> {
        let mut cursor = after.and_then(canonical);
        let mut out = Vec::new();
        loop {
            let page = self.run(async {
                let c = self.client().await?;
                let rows = c
                    .query(
                        "SELECT id, body FROM plans WHERE $1::text IS NULL OR id < $1 \
                         ORDER BY id DESC LIMIT $2",
                        &[&cursor, &PAGE],
                    )
                    .await
                    .map_err(db_error)?;
                rows.iter().map(plan_of).collect::<Result<Vec<_>, _>>()
            })?;
            let more = page.len() as i64 == PAGE;
            for p in page {
                cursor = Some(p.id.clone());
                if keep(&p) {
                    out.push(p);
                    if out.len() >= limit {
                        return Ok(out);
                    }
                }
            }
            if !more {
                return Ok(out);
            }
        }
    }

    /// Changes a plan (see [`crate::store::SledStore::change_plan`]): `decide` gets the plan
    /// and its steps' messages as they are, their rows locked, so what it decides is applied
    /// as it was decided, in one transaction with the plan's new revision and `idempotency`.
    /// `None` when there is no plan.
    pub fn change_plan<R>(
        &self,
        id: &str,
        decide: impl Fn(&Plan, &BTreeMap<String, Message>) -> Decision<R>,
        idempotency: Option<(&str, &IdempotencyRecord)>,
        actor: Option<&str>,
    ) -> Result<Option<(Plan, R)>, StoreError> {
        let Some(pid) = canonical(id) else {
            return Ok(None);
        };
        for _ in 0..ATTEMPTS {
            let mut c = self.run(self.client())?;
            let tx = self.run(c.transaction()).map_err(db_error)?;
            let row = self
                .run(tx.query_opt(
                    "SELECT id, body FROM plans WHERE id = $1 FOR UPDATE",
                    &[&pid],
                ))
                .map_err(db_error)?;
            let Some(row) = row else {
                return Ok(None);
            };
            let plan = Plan {
                id: id.to_string(),
                ..plan_of(&row)?
            };
            let ids: Vec<String> = plan
                .steps
                .iter()
                .filter_map(|s| s.message_id.clone())
                .collect();
            let rows = self
                .run(tx.query(
                    &format!(
                        "SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ANY($1) \
                         ORDER BY id FOR UPDATE"
                    ),
                    &[&ids],
                ))
                .map_err(db_error)?;
            let mut msgs = BTreeMap::new();
            for r in &rows {
                let m = message_of(r)?;
                msgs.insert(m.id.clone(), m);
            }
            let (mut new, change, answer) = match decide(&plan, &msgs) {
                Decision::Keep(r) => return Ok(Some((plan, r))),
                Decision::Change(p, c, r) => (*p, c, r),
            };
            new.revision = plan.revision + 1;
            let applied =
                self.apply_plan_change(tx, &pid, &new, &change, msgs, idempotency, actor)?;
            if applied {
                return Ok(Some((new, answer)));
            }
        }
        Err(kept_changing(id))
    }

    /// Writes a decided change in `tx` and commits it; `false` (nothing written) when a
    /// message that must be cancelled can no longer be.
    #[allow(clippy::too_many_arguments)]
    fn apply_plan_change(
        &self,
        tx: Transaction<'_>,
        pid: &str,
        plan: &Plan,
        change: &PlanChange,
        mut msgs: BTreeMap<String, Message>,
        idempotency: Option<(&str, &IdempotencyRecord)>,
        actor: Option<&str>,
    ) -> Result<bool, StoreError> {
        let mut changes: Vec<Change> = Vec::new();
        let mut deliveries = Vec::new();
        for c in &change.cancel {
            let old = match msgs.get(&c.id) {
                Some(m) => Some(m.clone()),
                // Not one of the steps' messages: locked now, after them.
                None => {
                    let row = self
                        .run(tx.query_opt(
                            &format!(
                                "SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = $1 FOR UPDATE"
                            ),
                            &[&c.id],
                        ))
                        .map_err(db_error)?;
                    row.as_ref().map(message_of).transpose()?
                }
            };
            let f = cancelling(c, &plan.id, actor);
            let worked = match &old {
                Some(old) => Change::work_out(old, &f)?,
                None => None,
            };
            match worked {
                Some(ch) => {
                    if let Some(n) = &self.notifier {
                        deliveries.extend(n.deliveries(&ch.new, &ch.event, ch.old.status));
                    }
                    msgs.insert(c.id.clone(), ch.new.clone());
                    changes.push(ch);
                }
                None if c.must => return Ok(false),
                None => {}
            }
        }
        let body = to_body(plan)?;
        self.run(async {
            for ch in &changes {
                write_change(&tx, ch).await?;
            }
            insert_outbox(&tx, &deliveries).await?;
            for m in &change.insert {
                insert_row(&tx, m).await?;
            }
            tx.execute("UPDATE plans SET body = $2 WHERE id = $1", &[&pid, &body])
                .await
                .map_err(db_error)?;
            if let Some((k, r)) = idempotency {
                insert_idempotency(&tx, k, r).await?;
            }
            tx.commit().await.map_err(db_error)
        })?;
        if !deliveries.is_empty()
            && let Some(n) = &self.notifier
        {
            n.wake();
        }
        let due = changes
            .iter()
            .any(|c| c.new.status.is_waiting() && c.moves_in_the_queue())
            || change.insert.iter().any(|m| m.status.is_waiting());
        self.tell(due, !deliveries.is_empty());
        for ch in &changes {
            self.publish(live_event(&ch.new, &ch.event));
        }
        for m in &change.insert {
            self.publish(live_event(m, &first_event_shown(m)));
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::sync::{Arc, Barrier};

    use chrono::Utc;

    use super::super::body::testing::{Place, places};
    use crate::domain::WindowSpec;
    use crate::store::plans::{Cancel, PlanStatus, PlanStep};
    use crate::store::{Status, StepKind, Store, test_message, test_record};

    use super::*;

    /// A plan of `invoice` whose steps are `messages`.
    fn plan_for(invoice: &str, messages: &[Message]) -> Plan {
        let now = Utc::now();
        Plan {
            id: ulid::Ulid::generate().to_string(),
            invoice: invoice.into(),
            to: "+12025550123".into(),
            amount: "120.50".into(),
            currency: "USD".into(),
            due_date: chrono::NaiveDate::from_ymd_opt(2030, 1, 15).unwrap(),
            timezone: "America/New_York".into(),
            locale: "en-US".into(),
            vars: serde_json::Map::new(),
            callback_url: None,
            precheck_url: None,
            send_window: WindowSpec {
                start: "09:00".into(),
                end: "18:00".into(),
                timezone: "America/New_York".into(),
            },
            metadata: None,
            status: PlanStatus::Active,
            paid_at: None,
            created_at: now,
            updated_at: now,
            created_by: "billing".into(),
            steps: messages
                .iter()
                .map(|m| PlanStep {
                    kind: StepKind::Reminder,
                    template: "upcoming".into(),
                    offset: Some("-3d".into()),
                    time: Some("10:00".into()),
                    reply_options: None,
                    planned_at: m.due_at,
                    message_id: Some(m.id.clone()),
                    skipped: None,
                    replaced: Vec::new(),
                })
                .collect(),
            fingerprint: "ab12".into(),
            revision: 0,
        }
    }

    fn messages(n: usize) -> Vec<Message> {
        (0..n).map(|_| test_message("+12025550123")).collect()
    }

    fn ids(plans: &[Plan]) -> Vec<String> {
        plans.iter().map(|p| p.id.clone()).collect()
    }

    /// Created once per invoice, found by id and by invoice, listed newest first by page.
    fn plans_are_made_once_per_invoice_and_listed(store: &Store, at: &str) {
        let ms = messages(2);
        let plan = plan_for("INV-1", &ms);
        let rec = test_record(serde_json::json!({"plan": plan.id}));
        let made = store
            .create_plan(&plan, &ms, Some(("billing\0p1", &rec)))
            .unwrap();
        assert!(matches!(made, Created::New), "{at}: {made:?}");
        assert_eq!(store.plan(&plan.id).unwrap().as_ref(), Some(&plan), "{at}");
        assert_eq!(
            store.plan_by_invoice("INV-1").unwrap().as_ref(),
            Some(&plan),
            "{at}"
        );
        for m in &ms {
            assert_eq!(store.get(&m.id).unwrap().as_ref(), Some(m), "{at}");
        }
        assert_eq!(store.idempotency("billing\0p1").unwrap(), Some(rec), "{at}");
        assert_eq!(store.plan("not a plan").unwrap(), None, "{at}");
        assert_eq!(
            store.plan(&ulid::Ulid::generate().to_string()).unwrap(),
            None,
            "{at}"
        );
        assert_eq!(store.plan_by_invoice("INV-404").unwrap(), None, "{at}");

        // The same invoice again: the plan it has, and nothing of the new one is written.
        let other = messages(1);
        let again = plan_for("INV-1", &other);
        match store.create_plan(&again, &other, None).unwrap() {
            Created::Exists(p) => assert_eq!(*p, plan, "{at}"),
            Created::New => panic!("{at}: a second plan for one invoice"),
        }
        assert_eq!(store.plan(&again.id).unwrap(), None, "{at}");
        assert_eq!(store.get(&other[0].id).unwrap(), None, "{at}");
        // A plan whose id is no ULID is refused.
        let mut bad = plan_for("INV-9", &[]);
        bad.id = "plan-9".into();
        let e = store.create_plan(&bad, &[], None).unwrap_err();
        assert!(matches!(e, StoreError::Corrupt { .. }), "{at}: {e}");
        assert_eq!(store.plan_by_invoice("INV-9").unwrap(), None, "{at}");

        // Listings: newest first, from a cursor, at most `limit` of those kept.
        for i in 2..=5 {
            store
                .create_plan(&plan_for(&format!("INV-{i}"), &[]), &[], None)
                .unwrap();
        }
        let all = store.list_plans(None, 10, |_| true).unwrap();
        let mut newest_first = ids(&all);
        newest_first.sort_by(|a, b| b.cmp(a));
        assert_eq!(ids(&all), newest_first, "{at}");
        assert_eq!(all.len(), 5, "{at}");
        let page = store.list_plans(Some(&all[1].id), 2, |_| true).unwrap();
        assert_eq!(ids(&page), ids(&all[2..4]), "{at}");
        let last = store.list_plans(Some(&all[3].id), 10, |_| true).unwrap();
        assert_eq!(ids(&last), ids(&all[4..]), "{at}");
        assert!(
            store
                .list_plans(Some(&all[4].id), 10, |_| true)
                .unwrap()
                .is_empty(),
            "{at}"
        );
        let kept = store
            .list_plans(None, 10, |p| p.invoice == "INV-3")
            .unwrap();
        assert_eq!(kept.len(), 1, "{at}");
        assert_eq!(kept[0].invoice, "INV-3", "{at}");
        // A cursor that names no plan lists from the newest.
        assert_eq!(
            ids(&store.list_plans(Some("junk"), 2, |_| true).unwrap()),
            ids(&all[..2]),
            "{at}"
        );
    }

    /// A change cancels and adds messages with the plan's new revision; a step's message that
    /// must be cancelled and has left the queue voids the change.
    fn a_change_moves_the_plan_and_its_messages_together(store: &Store, at: &str) {
        let ms = messages(2);
        let (a, b) = (ms[0].clone(), ms[1].clone());
        let plan = plan_for("INV-20", &ms);
        store.create_plan(&plan, &ms, None).unwrap();
        let never = |_: &Plan, _: &BTreeMap<String, Message>| -> Decision<()> {
            panic!("no plan, no decision")
        };
        assert!(
            store
                .change_plan(&ulid::Ulid::generate().to_string(), never, None, None)
                .unwrap()
                .is_none(),
            "{at}"
        );
        assert!(
            store
                .change_plan("junk", never, None, None)
                .unwrap()
                .is_none(),
            "{at}"
        );

        // Keep: the plan as it is, with both steps' messages, and the answer.
        let (kept, n) = store
            .change_plan(
                &plan.id,
                |p, msgs| {
                    assert_eq!(p, &plan);
                    Decision::Keep(msgs.len())
                },
                None,
                None,
            )
            .unwrap()
            .unwrap();
        assert_eq!((kept, n), (plan.clone(), 2), "{at}");

        // Reschedule the first step: its message is replaced by a new one.
        let c = test_message("+12025550123");
        let rec = test_record(serde_json::json!({"change": 1}));
        let reschedule = |p: &Plan, msgs: &BTreeMap<String, Message>| {
            assert_eq!(msgs[&a.id].status, Status::Queued);
            let mut new = p.clone();
            new.steps[0].replaced.push(a.id.clone());
            new.steps[0].message_id = Some(c.id.clone());
            let change = PlanChange {
                cancel: vec![Cancel {
                    id: a.id.clone(),
                    reason: "rescheduled".into(),
                    words: "the plan was rescheduled".into(),
                    must: true,
                }],
                insert: vec![c.clone()],
            };
            Decision::Change(Box::new(new), change, "moved")
        };
        let (changed, answer) = store
            .change_plan(
                &plan.id,
                reschedule,
                Some(("billing\0c1", &rec)),
                Some("ops"),
            )
            .unwrap()
            .unwrap();
        assert_eq!(answer, "moved", "{at}");
        assert_eq!(changed.revision, 1, "{at}");
        assert_eq!(
            store.plan(&plan.id).unwrap().as_ref(),
            Some(&changed),
            "{at}"
        );
        assert_eq!(
            changed.steps[0].message_id.as_deref(),
            Some(c.id.as_str()),
            "{at}"
        );
        let gone = store.get(&a.id).unwrap().unwrap();
        assert_eq!(gone.status, Status::Cancelled, "{at}");
        assert_eq!(gone.status_reason.as_deref(), Some("rescheduled"), "{at}");
        let h = store.history(&a.id).unwrap().unwrap();
        assert!(h.verified, "{at}: {:?}", h.problem);
        let last = &h.events.last().unwrap().event;
        assert_eq!(last.kind, "cancelled", "{at}");
        assert_eq!(last.actor.as_deref(), Some("ops"), "{at}");
        assert_eq!(store.get(&c.id).unwrap().as_ref(), Some(&c), "{at}");
        assert_eq!(store.idempotency("billing\0c1").unwrap(), Some(rec), "{at}");

        // A dispatcher takes the second step's message: a change that must cancel it is
        // worked out again and again, then refused, and changes nothing.
        store
            .update(&b.id, |m| {
                m.status = Status::Sending;
                Some("dispatched")
            })
            .unwrap();
        let tries = Cell::new(0);
        let cancel_b = |must: bool| {
            let tries = &tries;
            let b = b.id.clone();
            move |p: &Plan, _: &BTreeMap<String, Message>| {
                tries.set(tries.get() + 1);
                let change = PlanChange {
                    cancel: vec![Cancel {
                        id: b.clone(),
                        reason: "paid".into(),
                        words: "the invoice was paid".into(),
                        must,
                    }],
                    insert: Vec::new(),
                };
                let mut new = p.clone();
                new.status = PlanStatus::Paid;
                Decision::Change(Box::new(new), change, ())
            }
        };
        let e = store
            .change_plan(&plan.id, cancel_b(true), None, None)
            .unwrap_err();
        assert!(matches!(e, StoreError::Conflict(_)), "{at}: {e}");
        assert_eq!(tries.get(), ATTEMPTS, "{at}");
        assert_eq!(store.plan(&plan.id).unwrap().unwrap().revision, 1, "{at}");
        assert_eq!(store.get(&b.id).unwrap().unwrap().status, Status::Sending);
        // Without `must`, the message that left is passed over and the plan changes.
        let (paid, ()) = store
            .change_plan(&plan.id, cancel_b(false), None, None)
            .unwrap()
            .unwrap();
        assert_eq!((paid.status, paid.revision), (PlanStatus::Paid, 2), "{at}");
        assert_eq!(store.plan(&plan.id).unwrap().unwrap(), paid, "{at}");
        assert_eq!(
            store.get(&b.id).unwrap().unwrap().status,
            Status::Sending,
            "{at}"
        );
    }

    #[test]
    fn plans_are_made_once_per_invoice_and_listed_on_both_backends() {
        for place in places() {
            plans_are_made_once_per_invoice_and_listed(&place.open(), place.name());
        }
    }

    #[test]
    fn a_change_moves_the_plan_and_its_messages_together_on_both_backends() {
        for place in places() {
            a_change_moves_the_plan_and_its_messages_together(&place.open(), place.name());
        }
    }

    /// Two gateways on one database create the plan of the same invoice at once: one plan,
    /// one set of messages; the other gateway is answered with that plan.
    #[test]
    fn two_gateways_make_one_plan_per_invoice() {
        let Some(place) = places().into_iter().find(|p| matches!(p, Place::Pg(_))) else {
            return;
        };
        let gateways = [place.open(), place.open()];
        for round in 0..8 {
            let invoice = format!("INV-R{round}");
            let barrier = Arc::new(Barrier::new(2));
            let runs: Vec<_> = gateways
                .iter()
                .map(|store| {
                    let (store, barrier, invoice) =
                        (store.clone(), barrier.clone(), invoice.clone());
                    std::thread::spawn(move || {
                        let ms = messages(3);
                        let plan = plan_for(&invoice, &ms);
                        barrier.wait();
                        let made = store.create_plan(&plan, &ms, None).unwrap();
                        (plan, ms, made)
                    })
                })
                .collect();
            let results: Vec<_> = runs.into_iter().map(|t| t.join().unwrap()).collect();
            let winners: Vec<_> = results
                .iter()
                .filter(|(_, _, made)| matches!(made, Created::New))
                .collect();
            assert_eq!(winners.len(), 1, "round {round}: {results:?}");
            let (won, won_ms, _) = winners[0];
            for (plan, ms, made) in &results {
                if let Created::Exists(p) = made {
                    assert_eq!(**p, *won, "round {round}");
                    let lost: Vec<String> = ms.iter().map(|m| m.id.clone()).collect();
                    assert_eq!(
                        place.scalar("SELECT count(*) FROM messages WHERE id = ANY($1)", &[&lost]),
                        0,
                        "round {round}: the other gateway's messages were stored"
                    );
                    assert_eq!(gateways[0].plan(&plan.id).unwrap(), None);
                }
            }
            assert_eq!(
                place.scalar("SELECT count(*) FROM plans WHERE invoice = $1", &[&invoice]),
                1,
                "round {round}"
            );
            let kept: Vec<String> = won_ms.iter().map(|m| m.id.clone()).collect();
            assert_eq!(
                place.scalar("SELECT count(*) FROM messages WHERE id = ANY($1)", &[&kept]),
                3,
                "round {round}"
            );
            for g in &gateways {
                assert_eq!(g.plan_by_invoice(&invoice).unwrap().as_ref(), Some(won));
            }
        }
    }

    /// One gateway reschedules a step while another's dispatcher claims its message: the
    /// step is either replaced (and never sent) or sent (and the plan left as it was), never
    /// both.
    #[test]
    fn a_step_is_never_both_sent_and_replaced() {
        let Some(place) = places().into_iter().find(|p| matches!(p, Place::Pg(_))) else {
            return;
        };
        let (planner, dispatcher) = (place.open(), place.open());
        for round in 0..8 {
            let ms = messages(1);
            let a = ms[0].id.clone();
            let plan = plan_for(&format!("INV-S{round}"), &ms);
            planner.create_plan(&plan, &ms, None).unwrap();
            let barrier = Arc::new(Barrier::new(2));
            let replace = {
                let (store, barrier, plan, a) =
                    (planner.clone(), barrier.clone(), plan.clone(), a.clone());
                std::thread::spawn(move || {
                    let c = test_message("+12025550123");
                    barrier.wait();
                    store
                        .change_plan(
                            &plan.id,
                            |p, msgs| {
                                if !msgs[&a].status.is_waiting() {
                                    return Decision::Keep(false);
                                }
                                let mut new = p.clone();
                                new.steps[0].replaced.push(a.clone());
                                new.steps[0].message_id = Some(c.id.clone());
                                let change = PlanChange {
                                    cancel: vec![Cancel {
                                        id: a.clone(),
                                        reason: "rescheduled".into(),
                                        words: "the plan was rescheduled".into(),
                                        must: true,
                                    }],
                                    insert: vec![c.clone()],
                                };
                                Decision::Change(Box::new(new), change, true)
                            },
                            None,
                            None,
                        )
                        .unwrap()
                        .unwrap()
                        .1
                })
            };
            let claim = {
                let (store, barrier, a) = (dispatcher.clone(), barrier.clone(), a.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    let r = store
                        .update(&a, |m| {
                            m.status.is_waiting().then(|| {
                                m.status = Status::Sending;
                                "claimed"
                            })
                        })
                        .unwrap();
                    matches!(r, Some((_, true)))
                })
            };
            let (replaced, claimed) = (replace.join().unwrap(), claim.join().unwrap());
            assert!(
                replaced != claimed,
                "round {round}: replaced {replaced}, claimed {claimed}"
            );
            let now = planner.plan(&plan.id).unwrap().unwrap();
            let status = planner.get(&a).unwrap().unwrap().status;
            if replaced {
                assert_eq!(now.revision, 1, "round {round}");
                assert_eq!(status, Status::Cancelled, "round {round}");
            } else {
                assert_eq!(now, plan, "round {round}");
                assert_eq!(status, Status::Sending, "round {round}");
            }
        }
    }
}
