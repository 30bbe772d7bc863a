//! Erasure of a phone number on PostgreSQL (`POST /v1/erasure`): what
//! [`crate::store::SledStore::erase_number`] removes and keeps, from the tables. Each removal
//! is atomic on its own, as there: an erasure cut short is completed by running it again.

use chrono::{DateTime, Utc};

use super::body::{col, count, from_body};
use super::{PgStore, db_error};
use crate::store::reports::{UnmatchedReport, same_recipient};
use crate::store::{Erased, StoreError};

impl PgStore {
    /// Erases `number` (E.164) from the store: its plans, its messages (with their history and
    /// replies; a tombstone without the number stays per message), its inbound messages and
    /// held parts, the deliveries and idempotency answers that name it and the unmatched
    /// reports to it; its opt-out stays as a salted hash.
    pub fn erase_number(&self, number: &str, now: DateTime<Utc>) -> Result<Erased, StoreError> {
        let mut out = Erased {
            plans: self.delete_where("DELETE FROM plans WHERE body->>'to' = $1", number)?,
            ..Erased::default()
        };
        for id in self.ids_where("recipient = $1", number)? {
            if let Some(m) = self.remove_message(&id, "erasure", now)? {
                out.messages += 1;
                out.replies += m.replies.len();
            }
        }
        out.inbound = self.erase_inbound_from(number)?;
        out.optouts = usize::from(self.erase_optout(number, now)?);
        // The kept answers and the deliveries' bodies are JSON that may name the number
        // anywhere, as the embedded store reads them whole.
        out.idempotency = self.delete_where(
            "DELETE FROM idempotency WHERE strpos(body::text, $1) > 0",
            number,
        )?;
        out.webhooks = self.delete_where(
            "DELETE FROM outbox WHERE strpos(body::text, $1) > 0",
            number,
        )?;
        out.unmatched_reports = self.erase_unmatched_of(number)?;
        Ok(out)
    }

    /// Runs a `DELETE` whose `$1` is `number`; how many rows went.
    fn delete_where(&self, sql: &str, number: &str) -> Result<usize, StoreError> {
        self.run(async {
            let c = self.client().await?;
            c.execute(sql, &[&number]).await.map_err(db_error)
        })
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
    }

    /// Removes every inbound message from `number` and the held parts of its unfinished ones,
    /// in one transaction; how many messages.
    fn erase_inbound_from(&self, number: &str) -> Result<usize, StoreError> {
        self.run(async {
            let mut c = self.client().await?;
            let tx = c.transaction().await.map_err(db_error)?;
            let n = tx
                .execute("DELETE FROM inbound WHERE sender = $1", &[&number])
                .await
                .map_err(db_error)?;
            tx.execute("DELETE FROM fragments WHERE sender = $1", &[&number])
                .await
                .map_err(db_error)?;
            tx.commit().await.map_err(db_error)?;
            Ok(usize::try_from(n).unwrap_or(usize::MAX))
        })
    }

    /// Removes the unmatched reports whose recipient is `number` (as a report may write it);
    /// how many.
    fn erase_unmatched_of(&self, number: &str) -> Result<usize, StoreError> {
        self.run(async {
            let mut c = self.client().await?;
            let tx = c.transaction().await.map_err(db_error)?;
            let rows = tx
                .query("SELECT id, body FROM reports_unmatched FOR UPDATE", &[])
                .await
                .map_err(db_error)?;
            let mut ids = Vec::new();
            for r in &rows {
                let id: String = col(r, 0, "reports_unmatched")?;
                let u: UnmatchedReport = from_body(&id, col(r, 1, &id)?)?;
                let same = u
                    .recipient
                    .as_deref()
                    .is_some_and(|r| r == number || same_recipient(number, r));
                if same {
                    ids.push(id);
                }
            }
            let n = tx
                .execute("DELETE FROM reports_unmatched WHERE id = ANY($1)", &[&ids])
                .await
                .map_err(db_error)?;
            tx.commit().await.map_err(db_error)?;
            Ok(count(i64::try_from(n).unwrap_or(i64::MAX)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sms::{Address, Pdu, encode_deliver, encode_status_report};
    use crate::store::inbound::Received;
    use crate::store::optout::OptOut;
    use crate::store::outbox::NewWebhook;
    use crate::store::pg::body::testing::places;
    use crate::store::{IdempotencyRecord, Reply, Status, test_message};

    const GONE: &str = "+12025550151";
    const KEPT: &str = "+12025550152";

    fn deliver(from: &str, text: &str) -> Vec<Vec<u8>> {
        let from = Address::parse_number("from", from).unwrap();
        encode_deliver(None, &from, text, &Utc::now().fixed_offset(), false, 7).unwrap()
    }

    fn hook(id: &str, to: &str) -> NewWebhook {
        NewWebhook {
            id: id.into(),
            url: "http://127.0.0.1:9/hook".into(),
            event_type: "message.sent".into(),
            body: serde_json::json!({"id": id, "to": to}).to_string(),
            ordering_key: String::new(),
            created_at: Utc::now(),
        }
    }

    fn answer(to: &str) -> IdempotencyRecord {
        IdempotencyRecord {
            fingerprint: "f".into(),
            status: 201,
            body: serde_json::json!({"to": to}),
            at: Utc::now(),
        }
    }

    #[test]
    fn a_number_goes_from_every_table_and_its_opt_out_stays_hashed() {
        for place in places() {
            let b = place.name();
            let store = place.open();
            let now = Utc::now();
            let mut answered = test_message(GONE);
            answered.status = Status::Cancelled;
            answered.replies = vec![Reply {
                choice: Some("1".into()),
                action: "call_me".into(),
                text: "1".into(),
                at: now,
                inbound_id: "01ARZ3NDEKTSV4RRFFQ69G5FAV".into(),
                matched_by: "test".into(),
            }];
            let queued = test_message(GONE);
            let other = test_message(KEPT);
            store
                .insert(&[answered.clone(), queued.clone(), other.clone()], None)
                .unwrap();
            let Received::Stored(from_gone) = store
                .receive("sim0", &deliver(GONE, "call me")[0], None, now)
                .unwrap()
            else {
                panic!("{b}: not stored");
            };
            let Received::Stored(from_kept) = store
                .receive("sim0", &deliver(KEPT, "hello")[0], None, now)
                .unwrap()
            else {
                panic!("{b}: not stored");
            };
            // One part of two: held.
            let long = deliver(GONE, &"x".repeat(200));
            assert!(long.len() > 1);
            let held = store.receive("sim0", &long[0], None, now).unwrap();
            assert!(matches!(held, Received::Held { .. }), "{b}: {held:?}");
            assert_eq!(store.fragments_held(), 1, "{b}");
            store
                .opt_out(&OptOut {
                    number: GONE.into(),
                    opted_out_at: now,
                    source: "keyword".into(),
                    keyword: Some("STOP".into()),
                    inbound_id: None,
                    note: None,
                })
                .unwrap();
            store.put_idempotency("test\0gone", &answer(GONE)).unwrap();
            store.put_idempotency("test\0kept", &answer(KEPT)).unwrap();
            store
                .enqueue_webhooks(&[hook("evt_gone", GONE), hook("evt_kept", KEPT)])
                .unwrap();
            // A report to the number, as the network writes it, that matched no message.
            let ra = Address::parse_number("to", "2025550151").unwrap();
            let scts = now.fixed_offset();
            let smsc = Address::parse_number("smsc", "+15550000000").unwrap();
            let pdu = encode_status_report(Some(&smsc), 9, &ra, &scts, &scts, 0);
            let Ok(Pdu::StatusReport(report)) = crate::sms::decode(&pdu, true) else {
                panic!("not a status report");
            };
            let plans = match store.sled() {
                Some(_) => {
                    store
                        .apply_status_report("sim0", &report, &pdu, now)
                        .unwrap();
                    0
                }
                None => {
                    let crate::store::pg::body::testing::Place::Pg(url) = &place else {
                        unreachable!()
                    };
                    let p = PgStore::connect(url, Vec::new()).unwrap();
                    p.keep_unmatched("sim0", Some(&report), &pdu, "no such part", now)
                        .unwrap();
                    // A reminder plan to the number (its JSON as the store keeps it).
                    place.sql(
                        "INSERT INTO plans (id, invoice, body) VALUES ('p1', 'INV-1', $1)",
                        &[&serde_json::json!({"id": "p1", "invoice": "INV-1", "to": GONE})],
                    );
                    1
                }
            };
            assert_eq!(store.unmatched_report_count(), 1, "{b}");

            let erased = store.erase_number(GONE, now).unwrap();
            assert_eq!(
                erased,
                Erased {
                    messages: 2,
                    replies: 1,
                    inbound: 1,
                    plans,
                    optouts: 1,
                    idempotency: 1,
                    webhooks: 1,
                    unmatched_reports: 1,
                },
                "{b}"
            );
            assert!(store.messages_to(GONE, 10).unwrap().is_empty(), "{b}");
            assert!(store.get(&answered.id).unwrap().is_none(), "{b}");
            assert!(store.events(&queued.id).unwrap().is_empty(), "{b}");
            assert!(store.get(&other.id).unwrap().is_some(), "{b}");
            assert!(store.inbound(&from_gone.id).unwrap().is_none(), "{b}");
            assert!(store.inbound(&from_kept.id).unwrap().is_some(), "{b}");
            assert_eq!(store.fragments_held(), 0, "{b}");
            assert!(store.is_opted_out(GONE).unwrap(), "{b}: a STOP outlives it");
            assert!(store.erased_optout(GONE).unwrap().is_some(), "{b}");
            assert!(store.idempotency("test\0gone").unwrap().is_none(), "{b}");
            assert!(store.idempotency("test\0kept").unwrap().is_some(), "{b}");
            assert!(store.webhook("evt_gone").unwrap().is_none(), "{b}");
            assert!(store.webhook("evt_kept").unwrap().is_some(), "{b}");
            assert_eq!(store.unmatched_report_count(), 0, "{b}");
            // A tombstone per message, in the day's chain, without the number.
            let day = store.tombstones_on(now.date_naive()).unwrap();
            assert!(day.verified, "{b}: {:?}", day.problem);
            assert_eq!(day.tombstones.len(), 2, "{b}");
            assert!(day.tombstones.iter().all(|t| t.reason == "erasure"));
            let json = serde_json::to_string(&day).unwrap();
            assert!(!json.contains("2025550151"), "{b}: {json}");
            let v = store.verify_all_histories().unwrap();
            assert_eq!((v.messages, v.tombstones, v.broken.len()), (1, 2, 0), "{b}");
            // Nothing left: a second erasure finds nothing.
            assert_eq!(
                store.erase_number(GONE, now).unwrap(),
                Erased::default(),
                "{b}"
            );
        }
    }
}
