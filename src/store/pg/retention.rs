//! Retention on PostgreSQL: a message's text redacted, a message removed whole with a
//! tombstone, the bounded steps of `[retention]` that do either to finished messages, and the
//! check of every history chain (see [`crate::store::SledStore::redact_text`] and
//! [`crate::store::SledStore::remove_message`] for what each keeps).
//!
//! A redaction or a removal is a change of the message: its row is locked (`SELECT … FOR
//! UPDATE`) and the history entry or tombstone written in the same transaction.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::body::col;
use super::messages::{MESSAGE_COLUMNS, message_of, write_change};
use super::tombstones::insert_tombstone;
use super::{PgStore, db_error};
use crate::store::history::{VerifyReport, chain_of};
use crate::store::messages::redaction;
use crate::store::tombstones::Tombstone;
use crate::store::{Message, Redacted, Status, StoreError};

/// Messages whose chains are checked per read.
const VERIFY_BATCH: i64 = 500;

/// The finished statuses, as SQL.
fn finished_sql() -> String {
    let names: Vec<String> = Status::ALL
        .iter()
        .filter(|s| s.is_finished())
        .map(|s| format!("'{}'", s.as_str()))
        .collect();
    format!("({})", names.join(", "))
}

impl PgStore {
    /// Replaces a message's text by its SHA-256 and records a `text_redacted` history entry
    /// saying `reason` (by `actor`), in one transaction with the row locked.
    pub fn redact_text(
        &self,
        id: &str,
        reason: &str,
        actor: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Redacted, StoreError> {
        self.run(async {
            let mut c = self.client().await?;
            let tx = c.transaction().await.map_err(db_error)?;
            let Some(row) = tx
                .query_opt(
                    &format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = $1 FOR UPDATE"),
                    &[&id],
                )
                .await
                .map_err(db_error)?
            else {
                return Ok(Redacted::NotFound);
            };
            let m = message_of(&row)?;
            if m.redacted.is_some() {
                return Ok(Redacted::Already(Box::new(m)));
            }
            let change = redaction(&m, reason, actor, now)?;
            write_change(&tx, &change).await?;
            tx.commit().await.map_err(db_error)?;
            Ok(Redacted::Now(Box::new(change.new)))
        })
    }

    /// Removes a message whole (its row, history and awaited reports) in one transaction with
    /// a tombstone saying `reason` in the day's chain. Returns the message as it was, `None`
    /// when there is no such message.
    pub fn remove_message(
        &self,
        id: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Message>, StoreError> {
        self.run(async {
            let mut c = self.client().await?;
            let tx = c.transaction().await.map_err(db_error)?;
            let Some(row) = tx
                .query_opt(
                    &format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = $1 FOR UPDATE"),
                    &[&id],
                )
                .await
                .map_err(db_error)?
            else {
                return Ok(None);
            };
            let m = message_of(&row)?;
            insert_tombstone(&tx, Tombstone::of(&m, reason, now)).await?;
            tx.execute("DELETE FROM reports_awaited WHERE message_id = $1", &[&id])
                .await
                .map_err(db_error)?;
            // Its history goes with it (ON DELETE CASCADE).
            tx.execute("DELETE FROM messages WHERE id = $1", &[&id])
                .await
                .map_err(db_error)?;
            tx.commit().await.map_err(db_error)?;
            Ok(Some(m))
        })
    }

    /// Finished messages whose last change is at or before `cutoff`, by id after `after` (an
    /// id's bytes); at most `limit` rows are looked at. The cursor is the last id looked at,
    /// `None` when the table was read to its end.
    pub(crate) fn finished_before(
        &self,
        after: Option<&[u8]>,
        cutoff: DateTime<Utc>,
        limit: usize,
        keep: impl Fn(&Message) -> bool,
    ) -> Result<(Vec<Message>, Option<Vec<u8>>), StoreError> {
        let after = after.map(|a| String::from_utf8_lossy(a).into_owned());
        let limit = i64::try_from(limit.max(1)).unwrap_or(i64::MAX);
        let rows = self.run(async {
            let c = self.client().await?;
            c.query(
                &format!(
                    "SELECT {MESSAGE_COLUMNS} FROM messages WHERE status IN {} \
                     AND updated_at <= $1 AND ($2::text IS NULL OR id > $2) ORDER BY id LIMIT $3",
                    finished_sql()
                ),
                &[&cutoff, &after, &limit],
            )
            .await
            .map_err(db_error)
        })?;
        let mut out = Vec::new();
        for r in &rows {
            let m = message_of(r)?;
            if m.status.is_finished() && m.updated_at <= cutoff && keep(&m) {
                out.push(m);
            }
        }
        let next = match rows.last() {
            Some(last) if rows.len() as i64 >= limit => {
                Some(col::<String>(last, 0, "messages")?.into_bytes())
            }
            _ => None,
        };
        Ok((out, next))
    }

    /// Checks every message's history, and the chains of tombstones of removed messages. Reads
    /// a batch of messages with their entries at a time, each batch in one snapshot.
    pub fn verify_all_histories(&self) -> Result<VerifyReport, StoreError> {
        let mut report = VerifyReport::default();
        let (tombstones, broken) = self.verify_tombstones()?;
        report.tombstones = tombstones;
        report.broken.extend(broken);
        let mut after: Option<String> = None;
        loop {
            let (rows, entries) = self.run(async {
                let mut c = self.client().await?;
                let tx = c
                    .build_transaction()
                    .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
                    .read_only(true)
                    .start()
                    .await
                    .map_err(db_error)?;
                let rows = tx
                    .query(
                        &format!(
                            "SELECT {MESSAGE_COLUMNS} FROM messages \
                             WHERE ($1::text IS NULL OR id > $1) ORDER BY id LIMIT $2"
                        ),
                        &[&after, &VERIFY_BATCH],
                    )
                    .await
                    .map_err(db_error)?;
                let ids = rows
                    .iter()
                    .map(|r| col::<String>(r, 0, "messages"))
                    .collect::<Result<Vec<_>, _>>()?;
                let entries = tx
                    .query(
                        "SELECT message_id, seq, body::text FROM message_events \
                         WHERE message_id = ANY($1) ORDER BY message_id, seq",
                        &[&ids],
                    )
                    .await
                    .map_err(db_error)?;
                tx.commit().await.map_err(db_error)?;
                Ok::<_, StoreError>((rows, entries))
            })?;
            let mut by_message: HashMap<String, Vec<(String, String)>> = HashMap::new();
            for e in &entries {
                let id: String = col(e, 0, "message_events")?;
                let seq: i32 = col(e, 1, &id)?;
                let body: String = col(e, 2, &id)?;
                by_message
                    .entry(id.clone())
                    .or_default()
                    .push((format!("{id}/{seq}"), body));
            }
            for r in &rows {
                let id: String = col(r, 0, "messages")?;
                after = Some(id.clone());
                let m = match message_of(r) {
                    Ok(m) => m,
                    Err(e) => {
                        report.broken.push((id, format!("unreadable record: {e}")));
                        continue;
                    }
                };
                let raws = by_message.remove(&id).unwrap_or_default();
                report.messages += 1;
                match chain_of(
                    &m,
                    raws.iter().map(|(k, raw)| (k.as_bytes(), raw.as_bytes())),
                ) {
                    Ok(h) => {
                        report.entries += h.events.len() as u64;
                        if let Some(p) = h.problem {
                            report.broken.push((m.id, p));
                        }
                    }
                    // One unreadable entry must not stop the check of every other chain.
                    Err(e) => report
                        .broken
                        .push((m.id, format!("unreadable history entry: {e}"))),
                }
            }
            if (rows.len() as i64) < VERIFY_BATCH {
                return Ok(report);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Barrier};

    use chrono::Duration;

    use super::*;
    use crate::store::SweepStep;
    use crate::store::pg::body::testing::{Place, places};
    use crate::store::pg::testdb;
    use crate::store::{Event, Note, Store, sha256_hex, test_message};

    /// A message finished at `at`, created then (the id says so too).
    fn finished(to: &str, status: Status, at: DateTime<Utc>) -> Message {
        let mut m = test_message(to);
        m.status = status;
        m.created_at = at;
        m.updated_at = at;
        m.id = ulid::Ulid::from_parts(at.timestamp_millis() as u64, fastrand::u128(..)).to_string();
        m
    }

    /// Removes the `n`th tombstone (from 0) behind the store's back, as a tamperer would.
    fn remove_tombstone(place: &Place, store: &Store, n: usize) {
        match store.sled() {
            Some(s) => s.remove_tombstone_for_test(n),
            None => {
                let gone = place.sql(
                    "DELETE FROM tombstones WHERE (day, seq) = \
                     (SELECT day, seq FROM tombstones ORDER BY day, seq OFFSET $1 LIMIT 1)",
                    &[&(n as i64)],
                );
                assert_eq!(gone, 1);
            }
        }
    }

    #[test]
    fn texts_go_then_messages_with_tombstones_and_steps_are_bounded() {
        for place in places() {
            let b = place.name();
            let store = place.open();
            let long_ago = Utc::now() - Duration::days(400);
            let old: Vec<_> = (0..5)
                .map(|i| finished(&format!("+1202555010{i}"), Status::Delivered, long_ago))
                .collect();
            store.insert(&old, None).unwrap();
            // Unfinished and old: never touched.
            let mut waiting = test_message("+12025550199");
            waiting.created_at = long_ago;
            waiting.id = ulid::Ulid::from_parts(long_ago.timestamp_millis() as u64, 1).to_string();
            let mut unknown = finished("+12025550198", Status::Unknown, long_ago);
            unknown.text = "maybe sent".into();
            store
                .insert(&[waiting.clone(), unknown.clone()], None)
                .unwrap();
            // Finished, but recently.
            let recent = finished("+12025550197", Status::Failed, Utc::now());
            store.insert(std::slice::from_ref(&recent), None).unwrap();

            let now = Utc::now();
            let cutoff = now - Duration::days(90);
            let (mut redacted, mut steps, mut after) = (0, 0, None::<Vec<u8>>);
            loop {
                let s = store
                    .redact_finished_texts(cutoff, now, after.as_deref(), 2)
                    .unwrap();
                assert!(s.done <= 2, "{b}: a step is bounded: {s:?}");
                redacted += s.done;
                steps += 1;
                assert!(steps < 10, "{b}: the sweep goes on where it stopped");
                match s.next {
                    Some(n) => after = Some(n),
                    None => break,
                }
            }
            assert_eq!(redacted, 5, "{b}");
            assert!(steps >= 3, "{b}: {steps}");
            // Read to its end: the next pass starts again, and finds nothing left to do.
            let again = store.redact_finished_texts(cutoff, now, None, 100).unwrap();
            assert_eq!(again, SweepStep::default(), "{b}");
            for m in &old {
                let got = store.get(&m.id).unwrap().unwrap();
                assert_eq!(got.text, "", "{b}");
                let r = got.redacted.unwrap();
                assert_eq!(r.text_sha256, sha256_hex(b"hello"), "{b}");
                let h = store.history(&m.id).unwrap().unwrap();
                assert!(h.verified, "{b}: {:?}", h.problem);
                assert_eq!(h.events.last().unwrap().event.kind, "text_redacted", "{b}");
            }
            assert!(matches!(
                store.redact_text(&old[0].id, "again", None, now).unwrap(),
                Redacted::Already(_)
            ));
            assert_eq!(
                store
                    .redact_text("01ARZ3NDEKTSV4RRFFQ69G5FAV", "x", None, now)
                    .unwrap(),
                Redacted::NotFound
            );
            assert_eq!(store.verify_all_histories().unwrap().broken, vec![], "{b}");
            assert_eq!(store.get(&waiting.id).unwrap().unwrap().text, "hello");
            assert_eq!(store.get(&unknown.id).unwrap().unwrap().text, "maybe sent");
            assert_eq!(store.get(&recent.id).unwrap().unwrap().text, "hello");

            // Then removed whole, each with a tombstone in today's chain.
            let s = store
                .remove_finished_messages(now - Duration::days(365), now, None, 1000)
                .unwrap();
            assert_eq!(
                s,
                SweepStep {
                    done: 5,
                    next: None
                },
                "{b}"
            );
            for m in &old {
                assert!(store.get(&m.id).unwrap().is_none(), "{b}");
                assert!(store.events(&m.id).unwrap().is_empty(), "{b}");
                assert!(store.history(&m.id).unwrap().is_none(), "{b}");
            }
            assert!(store.messages_to("+12025550100", 10).unwrap().is_empty());
            assert_eq!(
                store.remove_message(&old[0].id, "retention", now).unwrap(),
                None
            );
            let day = store.tombstones_on(now.date_naive()).unwrap();
            assert!(day.verified, "{b}: {:?}", day.problem);
            assert_eq!(day.tombstones.len(), 5, "{b}");
            assert!(day.tombstones.iter().all(|t| t.reason == "retention"));
            assert!(day.tombstones[0].prev.is_none(), "{b}");
            assert!(day.tombstones[1..].iter().all(|t| t.prev.is_some()), "{b}");
            let mut ids: Vec<_> = day
                .tombstones
                .iter()
                .map(|t| t.message_id.clone())
                .collect();
            ids.sort();
            let mut want: Vec<_> = old.iter().map(|m| m.id.clone()).collect();
            want.sort();
            assert_eq!(ids, want, "{b}");
            let yesterday = now.date_naive().pred_opt().unwrap();
            assert!(
                store
                    .tombstones_on(yesterday)
                    .unwrap()
                    .tombstones
                    .is_empty()
            );
            assert_eq!(store.tombstones_len(), 5, "{b}");
            assert_eq!(
                store.len(),
                3,
                "{b}: the waiting, unknown and recent ones stay"
            );
            let v = store.verify_all_histories().unwrap();
            assert_eq!(v.broken, vec![], "{b}");
            assert_eq!((v.messages, v.tombstones), (3, 5), "{b}");
            // Nothing left half removed.
            match store.sled() {
                Some(s) => {
                    let c = s.check().unwrap();
                    assert!(c.problems.is_empty(), "{:?}", c.problems);
                }
                None => assert_eq!(
                    place.scalar(
                        "SELECT count(*) FROM message_events WHERE message_id = ANY($1)",
                        &[&want]
                    ),
                    0
                ),
            }
            // A tombstone taken away afterwards shows.
            remove_tombstone(&place, &store, 1);
            let v = store.verify_all_histories().unwrap();
            assert_eq!(v.broken.len(), 1, "{b}: {v:?}");
            assert!(v.broken[0].0.starts_with("tombstones of "), "{b}: {v:?}");
            assert!(
                !store.tombstones_on(now.date_naive()).unwrap().verified,
                "{b}"
            );
        }
    }

    /// Changes entry `seq` of `id`'s history (its reason) behind the store's back.
    fn edit_entry(place: &Place, store: &Store, id: &str, seq: u32) {
        match store.sled() {
            Some(s) => {
                let k = crate::store::event_key(&crate::store::id_key(id).unwrap(), seq);
                let raw = s.inner.events.get(&k).unwrap().unwrap();
                let mut e: Event = serde_json::from_slice(&raw).unwrap();
                e.reason = Some("edited".into());
                s.inner
                    .events
                    .insert(&k, serde_json::to_vec(&e).unwrap())
                    .unwrap();
            }
            None => {
                let n = place.sql(
                    "UPDATE message_events \
                     SET body = (jsonb_set(body::jsonb, '{reason}', '\"edited\"'))::text::json \
                     WHERE message_id = $1 AND seq = $2",
                    &[&id, &(seq as i32)],
                );
                assert_eq!(n, 1);
            }
        }
    }

    /// Removes entry `seq` of `id`'s history behind the store's back.
    fn drop_entry(place: &Place, store: &Store, id: &str, seq: u32) {
        match store.sled() {
            Some(s) => {
                let k = crate::store::event_key(&crate::store::id_key(id).unwrap(), seq);
                s.inner.events.remove(k).unwrap().unwrap();
            }
            None => {
                let n = place.sql(
                    "DELETE FROM message_events WHERE message_id = $1 AND seq = $2",
                    &[&id, &(seq as i32)],
                );
                assert_eq!(n, 1);
            }
        }
    }

    #[test]
    fn every_chain_is_checked_and_tampering_shows() {
        for place in places() {
            let b = place.name();
            let store = place.open();
            let a = test_message("+12025550123");
            let c = test_message("+12025550124");
            store.insert(&[a.clone(), c.clone()], None).unwrap();
            for st in [Status::Sending, Status::Sent, Status::Delivered] {
                for id in [&a.id, &c.id] {
                    store
                        .update(id, |m| {
                            m.status = st;
                            Some(Note::new(
                                "status",
                                st.as_str(),
                                serde_json::json!({"x": 1}),
                            ))
                        })
                        .unwrap();
                }
            }
            let r = store.verify_all_histories().unwrap();
            assert_eq!((r.messages, r.entries, r.broken.len()), (2, 8, 0), "{b}");
            assert_eq!(r.tombstones, 0, "{b}");

            // A redacted text still verifies, by a key that asked.
            let Redacted::Now(m) = store
                .redact_text(&a.id, "asked", Some("admin"), Utc::now())
                .unwrap()
            else {
                panic!("{b}: not redacted");
            };
            assert_eq!(m.history_len, 4);
            assert_eq!(store.get(&a.id).unwrap().unwrap(), *m, "{b}");
            let h = store.history(&a.id).unwrap().unwrap();
            assert!(h.verified, "{b}: {:?}", h.problem);
            let last = &h.events.last().unwrap().event;
            assert_eq!(
                (last.kind.as_str(), last.actor.as_deref()),
                ("text_redacted", Some("admin"))
            );
            assert_eq!(
                h.events[0].event.data.as_ref().unwrap()["text"],
                serde_json::Value::Null
            );
            let r = store.verify_all_histories().unwrap();
            assert_eq!((r.messages, r.entries, r.broken.len()), (2, 9, 0), "{b}");

            // Change a stored entry's reason: the next entry no longer links to it.
            edit_entry(&place, &store, &a.id, 2);
            let r = store.verify_all_histories().unwrap();
            assert_eq!(r.broken.len(), 1, "{b}: {r:?}");
            assert_eq!(r.broken[0].0, a.id);
            assert!(r.broken[0].1.contains("entry 3"), "{b}: {r:?}");
            // Remove the last entry of the other: the record's head no longer matches.
            drop_entry(&place, &store, &c.id, 3);
            let r = store.verify_all_histories().unwrap();
            assert_eq!(r.broken.len(), 2, "{b}: {r:?}");
            assert_eq!(r.messages, 2, "{b}");
        }
    }

    /// Two gateways on one database remove different messages of one day at once: the day's
    /// tombstones stay one chain, each linked to the one before it.
    #[test]
    fn two_gateways_removing_at_once_keep_one_chain() {
        let Some(url) = testdb::database() else {
            return;
        };
        let a = Store::connect(&url, Vec::new()).unwrap();
        let b = Store::connect(&url, Vec::new()).unwrap();
        let now = Utc::now();
        let ms: Vec<Message> = (0..40)
            .map(|i| finished(&format!("+1555100{i:04}"), Status::Delivered, now))
            .collect();
        a.insert(&ms, None).unwrap();
        let start = Arc::new(Barrier::new(2));
        let remove = |store: Store, ids: Vec<String>| {
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                for id in ids {
                    assert!(
                        store
                            .remove_message(&id, "retention", now)
                            .unwrap()
                            .is_some()
                    );
                }
            })
        };
        let (even, odd): (Vec<_>, Vec<_>) = ms
            .iter()
            .map(|m| m.id.clone())
            .enumerate()
            .partition(|(i, _)| i % 2 == 0);
        let ta = remove(a.clone(), even.into_iter().map(|(_, id)| id).collect());
        let tb = remove(b.clone(), odd.into_iter().map(|(_, id)| id).collect());
        ta.join().unwrap();
        tb.join().unwrap();
        let day = b.tombstones_on(now.date_naive()).unwrap();
        assert!(day.verified, "{:?}", day.problem);
        assert_eq!(day.tombstones.len(), 40);
        let mut ids: Vec<_> = day
            .tombstones
            .iter()
            .map(|t| t.message_id.clone())
            .collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 40, "one tombstone per message");
        let v = a.verify_all_histories().unwrap();
        assert_eq!(
            (v.messages, v.tombstones, v.broken.len()),
            (0, 40, 0),
            "{v:?}"
        );
        assert_eq!(a.len(), 0);
    }
}
