//! The webhook outbox, in the `outbox` table: deliveries waiting, being retried, or given up.
//!
//! `seq` comes from the `outbox_seq` sequence. As in the embedded store, entries are attempted
//! oldest first, and entries to one URL sharing a non-empty ordering key one at a time, in
//! sequence order: an entry waits while an earlier pending entry with the same URL and key
//! exists ("the head" of its key below). Dead entries block nothing.
//!
//! Sequence numbers of one key must become visible in their order: a transaction adding
//! deliveries takes a transaction-scoped advisory lock per ordering key before it takes their
//! numbers, so a later number of a key never commits before an earlier one.

use chrono::{DateTime, Utc};
use tokio_postgres::Row;

use super::body::{col, count, from_body, to_body};
use super::{PgStore, db_error};
use crate::store::outbox::{DueWebhooks, NewWebhook, OutboxEntry, OutboxState, new_entry};
use crate::store::{StoreError, SweepStep};

/// The first key of the advisory locks on ordering keys ("out" · "b"); the second is the
/// key's hash.
const ORDERING_LOCK: i32 = 0x6f75_7462;

/// An entry `o` no earlier pending entry of its URL and non-empty key holds back (SQL).
const HEAD: &str = "o.state = 'pending' AND (o.ordering_key = '' OR NOT EXISTS (
    SELECT 1 FROM outbox p WHERE p.state = 'pending' AND p.url = o.url
       AND p.ordering_key = o.ordering_key AND p.seq < o.seq))";

/// The `state` column of a state.
pub(super) fn state_name(s: OutboxState) -> &'static str {
    match s {
        OutboxState::Pending => "pending",
        OutboxState::Dead => "dead",
    }
}

/// The row's key, for errors.
fn key_of(seq: i64) -> String {
    format!("outbox/{seq}")
}

/// An entry from a `(seq, body)` row.
fn entry_of(r: &Row) -> Result<OutboxEntry, StoreError> {
    let seq: i64 = col(r, 0, "outbox")?;
    let key = key_of(seq);
    let mut e: OutboxEntry = from_body(&key, col(r, 1, &key)?)?;
    e.seq = u64::try_from(seq).map_err(|_| StoreError::Corrupt {
        key,
        detail: "a negative sequence number".into(),
    })?;
    Ok(e)
}

/// The readable entries of `(seq, body)` rows; unreadable ones are logged and skipped, so
/// that one bad record cannot stop every delivery.
fn readable(rows: &[Row]) -> Vec<OutboxEntry> {
    rows.iter()
        .filter_map(|r| match entry_of(r) {
            Ok(e) => Some(e),
            Err(e) => {
                tracing::warn!(error = %e, "skipping an unreadable webhook delivery");
                None
            }
        })
        .collect()
}

/// A sequence number as the column holds it; `None` past the column's range (no such entry).
fn seq_col(seq: u64) -> Option<i64> {
    i64::try_from(seq).ok()
}

/// Adds deliveries to the outbox inside `tx` (a change and its deliveries commit together),
/// due at once, and returns them with their sequence numbers.
///
/// It takes the advisory locks of the deliveries' ordering keys until `tx` ends: call it
/// after the transaction has locked the rows it changes (the message), so that transactions
/// take their locks in one order.
pub(crate) async fn insert_outbox(
    tx: &tokio_postgres::Transaction<'_>,
    new: &[NewWebhook],
) -> Result<Vec<OutboxEntry>, StoreError> {
    // One key's numbers in the order they commit: see the module's documentation. Keys are
    // locked in one order, so two transactions never wait for each other's.
    let mut keys: Vec<&str> = new
        .iter()
        .map(|n| n.ordering_key.as_str())
        .filter(|k| !k.is_empty())
        .collect();
    keys.sort_unstable();
    keys.dedup();
    for k in keys {
        tx.execute(
            "SELECT pg_advisory_xact_lock($1, hashtext($2))",
            &[&ORDERING_LOCK, &k],
        )
        .await
        .map_err(db_error)?;
    }
    let mut out = Vec::with_capacity(new.len());
    for n in new {
        let row = tx
            .query_one("SELECT nextval('outbox_seq')", &[])
            .await
            .map_err(db_error)?;
        let seq: i64 = col(&row, 0, "outbox_seq")?;
        let e = new_entry(
            u64::try_from(seq).map_err(|_| StoreError::Corrupt {
                key: "outbox_seq".into(),
                detail: format!("{seq} is negative"),
            })?,
            n,
        );
        tx.execute(
            "INSERT INTO outbox (seq, id, url, ordering_key, state, next_attempt_at, created_at, body)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                &seq,
                &e.id,
                &e.url,
                &e.ordering_key,
                &state_name(e.state),
                &e.next_attempt_at,
                &e.created_at,
                &to_body(&e)?,
            ],
        )
        .await
        .map_err(db_error)?;
        out.push(e);
    }
    Ok(out)
}

/// Which entry [`PgStore::update_webhook`] changes.
#[derive(Clone, Copy)]
enum Which<'a> {
    Seq(i64),
    Id(&'a str),
}

impl PgStore {
    /// Adds deliveries to the outbox (all or none), due at once, and returns them with their
    /// sequence numbers; committed when it returns.
    pub fn enqueue_webhooks(&self, new: &[NewWebhook]) -> Result<Vec<OutboxEntry>, StoreError> {
        self.run(async {
            let mut c = self.client().await?;
            let tx = c.transaction().await.map_err(db_error)?;
            let out = insert_outbox(&tx, new).await?;
            tx.commit().await.map_err(db_error)?;
            Ok(out)
        })
    }

    /// Up to `limit` pending entries due at `now`, oldest first, none waiting behind an earlier
    /// pending entry with the same URL and ordering key; entries for which `busy` is true (being
    /// attempted) are not returned but still hold back later entries of their key.
    pub fn due_webhooks(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        busy: impl Fn(u64) -> bool,
    ) -> Result<DueWebhooks, StoreError> {
        // `busy` is the caller's: asked between pages of heads, never inside a query.
        let page = i64::try_from(limit.saturating_add(16).min(1000)).unwrap_or(1000);
        let mut out = DueWebhooks::default();
        let mut after = 0i64;
        'due: loop {
            let rows = self.run(async {
                let c = self.client().await?;
                c.query(
                    &format!(
                        "SELECT o.seq, o.body FROM outbox o
                         WHERE {HEAD} AND o.next_attempt_at <= $1 AND o.seq > $2
                         ORDER BY o.seq LIMIT $3"
                    ),
                    &[&now, &after, &page],
                )
                .await
                .map_err(db_error)
            })?;
            if let Some(last) = rows.last() {
                after = col(last, 0, "outbox")?;
            }
            for e in readable(&rows) {
                if busy(e.seq) {
                    continue;
                }
                if out.entries.len() >= limit {
                    out.next_at = Some(now);
                    break 'due;
                }
                out.entries.push(e);
            }
            if (rows.len() as i64) < page {
                break;
            }
        }
        if out.next_at.is_none() {
            // When to look again: the earliest later attempt of a head not being attempted.
            let mut offset = 0i64;
            'later: loop {
                let rows = self.run(async {
                    let c = self.client().await?;
                    c.query(
                        &format!(
                            "SELECT o.seq, o.body FROM outbox o
                             WHERE {HEAD} AND o.next_attempt_at > $1
                             ORDER BY o.next_attempt_at, o.seq LIMIT $2 OFFSET $3"
                        ),
                        &[&now, &page, &offset],
                    )
                    .await
                    .map_err(db_error)
                })?;
                // The time from the body: the column keeps microseconds only.
                if let Some(e) = readable(&rows).into_iter().find(|e| !busy(e.seq)) {
                    out.next_at = Some(e.next_attempt_at);
                    break 'later;
                }
                if (rows.len() as i64) < page {
                    break;
                }
                offset += page;
            }
        }
        Ok(out)
    }

    /// The earliest next attempt time among pending entries not waiting behind another one.
    pub fn next_webhook_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.run(async {
            let c = self.client().await?;
            // The earliest by the column, its time from the body (the column keeps
            // microseconds only).
            let rows = c
                .query(
                    &format!(
                        "SELECT o.seq, o.body FROM outbox o WHERE {HEAD}
                         ORDER BY o.next_attempt_at, o.seq LIMIT 1"
                    ),
                    &[],
                )
                .await
                .map_err(db_error)?;
            rows.first()
                .map(|r| entry_of(r).map(|e| e.next_attempt_at))
                .transpose()
        })
    }

    /// How many deliveries are pending (waiting for an attempt or a retry) and how many dead.
    pub fn outbox_counts(&self) -> Result<(usize, usize), StoreError> {
        self.run(async {
            let c = self.client().await?;
            let row = c
                .query_one(
                    "SELECT count(*) FILTER (WHERE state = 'pending'),
                            count(*) FILTER (WHERE state = 'dead')
                     FROM outbox",
                    &[],
                )
                .await
                .map_err(db_error)?;
            Ok((
                count(col(&row, 0, "outbox")?),
                count(col(&row, 1, "outbox")?),
            ))
        })
    }

    /// Removes a delivered entry; returns whether it was there.
    pub fn webhook_delivered(&self, seq: u64) -> Result<bool, StoreError> {
        let Some(seq) = seq_col(seq) else {
            return Ok(false);
        };
        self.run(async {
            let c = self.client().await?;
            let n = c
                .execute("DELETE FROM outbox WHERE seq = $1", &[&seq])
                .await
                .map_err(db_error)?;
            Ok(n > 0)
        })
    }

    /// Records a failed attempt: one more attempt, its error and HTTP status, and either the
    /// time of the next attempt or, with `None`, the entry is dead. Returns the entry after.
    pub fn webhook_failed(
        &self,
        seq: u64,
        status: Option<u16>,
        error: &str,
        next_attempt_at: Option<DateTime<Utc>>,
    ) -> Result<Option<OutboxEntry>, StoreError> {
        let Some(seq) = seq_col(seq) else {
            return Ok(None);
        };
        self.update_webhook(Which::Seq(seq), |e| {
            e.attempts = e.attempts.saturating_add(1);
            e.last_status = status;
            e.last_error = Some(error.to_string());
            match next_attempt_at {
                Some(t) => e.next_attempt_at = t,
                None => e.state = OutboxState::Dead,
            }
        })
    }

    /// Dead entries in sequence order, starting after sequence `after` (the previous page's
    /// last), at most `limit` (1 to 1000).
    pub fn dead_webhooks(
        &self,
        limit: usize,
        after: Option<u64>,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        self.outbox_page(limit, after, "state = 'dead'")
    }

    /// Pending entries that have failed at least once and wait for their next attempt, in
    /// sequence order after sequence `after`, at most `limit` (1 to 1000).
    pub fn retrying_webhooks(
        &self,
        limit: usize,
        after: Option<u64>,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        self.outbox_page(
            limit,
            after,
            "state = 'pending' AND (body->>'attempts')::bigint > 0",
        )
    }

    /// The entries `filter` (SQL) accepts, in sequence order after sequence `after`, at most
    /// `limit` (1 to 1000).
    fn outbox_page(
        &self,
        limit: usize,
        after: Option<u64>,
        filter: &str,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let limit = limit.clamp(1, 1000) as i64;
        let after = match after {
            None => 0,
            Some(a) => match seq_col(a) {
                Some(a) => a,
                None => return Ok(Vec::new()),
            },
        };
        let rows = self.run(async {
            let c = self.client().await?;
            c.query(
                &format!(
                    "SELECT seq, body FROM outbox WHERE {filter} AND seq > $1
                     ORDER BY seq LIMIT $2"
                ),
                &[&after, &limit],
            )
            .await
            .map_err(db_error)
        })?;
        Ok(readable(&rows))
    }

    /// The entry with this `webhook-id`, pending or dead (delivered entries are gone).
    pub fn webhook(&self, id: &str) -> Result<Option<OutboxEntry>, StoreError> {
        let rows = self.run(async {
            let c = self.client().await?;
            c.query("SELECT seq, body FROM outbox WHERE id = $1", &[&id])
                .await
                .map_err(db_error)
        })?;
        Ok(readable(&rows).into_iter().next())
    }

    /// Makes the entry with this `webhook-id` pending and due now, keeping its attempts;
    /// returns it after, or `None` when there is no such entry.
    pub fn retry_webhook(
        &self,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<OutboxEntry>, StoreError> {
        self.update_webhook(Which::Id(id), |e| {
            e.state = OutboxState::Pending;
            e.next_attempt_at = now;
        })
    }

    /// One step of `[retention] dead_webhooks_after`: dead deliveries whose event was made at
    /// or before `cutoff` are removed; at most `limit` entries looked at, after the entry
    /// `after` (its sequence number, 8 bytes big-endian, as in the embedded store).
    pub fn purge_dead_webhooks(
        &self,
        cutoff: DateTime<Utc>,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<SweepStep, StoreError> {
        let limit = limit.max(1);
        let from = after
            .and_then(|a| <[u8; 8]>::try_from(a).ok())
            .map(u64::from_be_bytes)
            .map_or(Some(0), seq_col);
        let Some(from) = from else {
            return Ok(SweepStep::default());
        };
        let n = i64::try_from(limit).unwrap_or(i64::MAX);
        self.run(async {
            let c = self.client().await?;
            let rows = c
                .query(
                    "SELECT seq, state = 'dead' AND created_at <= $3 FROM outbox
                     WHERE seq > $1 ORDER BY seq LIMIT $2",
                    &[&from, &n, &cutoff],
                )
                .await
                .map_err(db_error)?;
            let mut gone = Vec::new();
            let mut last = None;
            for r in &rows {
                let seq: i64 = col(r, 0, "outbox")?;
                last = Some(seq);
                if col(r, 1, &key_of(seq))? {
                    gone.push(seq);
                }
            }
            let mut step = SweepStep::default();
            if !gone.is_empty() {
                // Checked again: an entry retried meanwhile is pending, and stays.
                let done = c
                    .execute(
                        "DELETE FROM outbox WHERE seq = ANY($1)
                           AND state = 'dead' AND created_at <= $2",
                        &[&gone, &cutoff],
                    )
                    .await
                    .map_err(db_error)?;
                step.done = usize::try_from(done).unwrap_or(usize::MAX);
            }
            if rows.len() >= limit {
                step.next = last.map(|s| (s as u64).to_be_bytes().to_vec());
            }
            Ok(step)
        })
    }

    /// Changes one entry in place, in one transaction; `None` when it is gone.
    fn update_webhook<F>(&self, which: Which<'_>, f: F) -> Result<Option<OutboxEntry>, StoreError>
    where
        F: Fn(&mut OutboxEntry) + Send + Sync,
    {
        self.run(async {
            let mut c = self.client().await?;
            let tx = c.transaction().await.map_err(db_error)?;
            let row = match which {
                Which::Seq(seq) => {
                    tx.query_opt(
                        "SELECT seq, body FROM outbox WHERE seq = $1 FOR UPDATE",
                        &[&seq],
                    )
                    .await
                }
                Which::Id(id) => {
                    tx.query_opt(
                        "SELECT seq, body FROM outbox WHERE id = $1 FOR UPDATE",
                        &[&id],
                    )
                    .await
                }
            }
            .map_err(db_error)?;
            let Some(row) = row else {
                return Ok(None);
            };
            let seq: i64 = col(&row, 0, "outbox")?;
            let mut e = entry_of(&row)?;
            f(&mut e);
            tx.execute(
                "UPDATE outbox SET state = $2, next_attempt_at = $3, body = $4 WHERE seq = $1",
                &[
                    &seq,
                    &state_name(e.state),
                    &e.next_attempt_at,
                    &to_body(&e)?,
                ],
            )
            .await
            .map_err(db_error)?;
            tx.commit().await.map_err(db_error)?;
            Ok(Some(e))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::body::testing::places;
    use super::*;

    fn new(key: &str, at: DateTime<Utc>) -> NewWebhook {
        let id = format!("evt_{}", ulid::Ulid::generate());
        NewWebhook {
            body: format!(r#"{{"id":"{id}"}}"#),
            id,
            url: "http://127.0.0.1:9/hook".into(),
            event_type: "message.sent".into(),
            ordering_key: key.into(),
            created_at: at,
        }
    }

    fn seqs(d: &DueWebhooks) -> Vec<u64> {
        d.entries.iter().map(|e| e.seq).collect()
    }

    #[tokio::test]
    async fn one_key_at_a_time_in_order() {
        for p in places() {
            eprintln!("backend: {}", p.name());
            let store = p.open();
            let now = Utc::now();
            let e = store
                .enqueue_webhooks(&[
                    new("m1", now),
                    new("m1", now),
                    new("m2", now),
                    new("", now),
                    new("", now),
                ])
                .unwrap();
            assert!(e.windows(2).all(|w| w[0].seq < w[1].seq));
            let (a, b, c, d, f) = (e[0].seq, e[1].seq, e[2].seq, e[3].seq, e[4].seq);
            let due = store.due_webhooks(now, 10, |_| false).unwrap();
            assert_eq!(seqs(&due), vec![a, c, d, f], "the second of m1 waits");
            assert_eq!(due.next_at, None);
            // The limit stops the scan and says more is due.
            let due = store.due_webhooks(now, 2, |_| false).unwrap();
            assert_eq!((seqs(&due), due.next_at), (vec![a, c], Some(now)));
            // Being attempted: not returned, still holds its key.
            let due = store.due_webhooks(now, 10, |s| s == a).unwrap();
            assert_eq!(seqs(&due), vec![c, d, f]);
            // A failed first entry holds the second until its retry is delivered.
            let later = now + chrono::Duration::seconds(30);
            assert!(store.retrying_webhooks(10, None).unwrap().is_empty());
            let failed = store
                .webhook_failed(a, Some(500), "HTTP 500", Some(later))
                .unwrap()
                .unwrap();
            assert_eq!((failed.attempts, failed.last_status), (1, Some(500)));
            // Failing, not yet given up: listed with its error and next attempt.
            let retrying = store.retrying_webhooks(10, None).unwrap();
            assert_eq!(retrying.len(), 1);
            assert_eq!(
                (retrying[0].seq, retrying[0].last_error.as_deref()),
                (a, Some("HTTP 500"))
            );
            assert_eq!(retrying[0].next_attempt_at, later);
            assert!(store.retrying_webhooks(10, Some(a)).unwrap().is_empty());
            let due = store.due_webhooks(now, 10, |_| false).unwrap();
            assert_eq!((seqs(&due), due.next_at), (vec![c, d, f], Some(later)));
            assert_eq!(store.next_webhook_at().unwrap(), Some(now));
            for s in [c, d, f] {
                assert!(store.webhook_delivered(s).unwrap());
            }
            assert_eq!(store.next_webhook_at().unwrap(), Some(later));
            assert_eq!(
                seqs(&store.due_webhooks(later, 10, |_| false).unwrap()),
                vec![a]
            );
            assert!(store.webhook_delivered(a).unwrap());
            assert!(!store.webhook_delivered(a).unwrap());
            assert_eq!(
                seqs(&store.due_webhooks(now, 10, |_| false).unwrap()),
                vec![b]
            );
            assert_eq!(store.webhook(&e[1].id).unwrap().unwrap().seq, b);
            assert!(store.webhook(&e[0].id).unwrap().is_none());
        }
    }

    #[tokio::test]
    async fn one_url_does_not_hold_back_another() {
        for p in places() {
            eprintln!("backend: {}", p.name());
            let store = p.open();
            let now = Utc::now();
            let other = |mut n: NewWebhook| {
                n.url = "https://billing.example/hook".into();
                n
            };
            let e = store
                .enqueue_webhooks(&[
                    new("m1", now),
                    other(new("m1", now)),
                    new("m1", now),
                    other(new("m1", now)),
                ])
                .unwrap();
            let later = now + chrono::Duration::seconds(60);
            store
                .webhook_failed(e[1].seq, None, "connection refused", Some(later))
                .unwrap();
            let due = store.due_webhooks(now, 10, |_| false).unwrap();
            assert_eq!(seqs(&due), vec![e[0].seq]);
            store.webhook_delivered(e[0].seq).unwrap();
            let due = store.due_webhooks(now, 10, |_| false).unwrap();
            assert_eq!((seqs(&due), due.next_at), (vec![e[2].seq], Some(later)));
        }
    }

    #[tokio::test]
    async fn dead_entries_block_nothing_and_can_be_retried() {
        for p in places() {
            eprintln!("backend: {}", p.name());
            let store = p.open();
            let now = Utc::now();
            let e = store
                .enqueue_webhooks(&[new("m1", now), new("m1", now), new("m2", now)])
                .unwrap();
            for _ in 0..2 {
                store
                    .webhook_failed(e[0].seq, None, "connection refused", Some(now))
                    .unwrap();
            }
            let dead = store
                .webhook_failed(e[0].seq, Some(503), "HTTP 503", None)
                .unwrap()
                .unwrap();
            assert_eq!((dead.state, dead.attempts), (OutboxState::Dead, 3));
            let due = store.due_webhooks(now, 10, |_| false).unwrap();
            assert_eq!(seqs(&due), vec![e[1].seq, e[2].seq], "dead does not block");
            store
                .webhook_failed(e[2].seq, None, "timed out", None)
                .unwrap();
            let listed: Vec<u64> = store
                .dead_webhooks(10, None)
                .unwrap()
                .iter()
                .map(|d| d.seq)
                .collect();
            assert_eq!(listed, vec![e[0].seq, e[2].seq]);
            assert_eq!(store.outbox_counts().unwrap(), (1, 2));
            let page2 = store.dead_webhooks(1, Some(e[0].seq)).unwrap();
            assert_eq!(page2.len(), 1);
            assert_eq!(page2[0].seq, e[2].seq);
            assert!(store.dead_webhooks(10, Some(u64::MAX)).unwrap().is_empty());

            let later = now + chrono::Duration::seconds(1);
            let retried = store.retry_webhook(&e[0].id, later).unwrap().unwrap();
            assert_eq!(retried.state, OutboxState::Pending);
            assert_eq!(retried.attempts, 3, "attempts are kept");
            assert_eq!(retried.next_attempt_at, later);
            assert_eq!(retried.last_error.as_deref(), Some("HTTP 503"));
            // Pending again, it comes first for its key again.
            let due = store.due_webhooks(later, 10, |_| false).unwrap();
            assert_eq!(seqs(&due), vec![e[0].seq]);
            assert_eq!(store.dead_webhooks(10, None).unwrap().len(), 1);
            assert_eq!(store.outbox_counts().unwrap(), (2, 1));
            assert!(store.webhook_delivered(e[1].seq).unwrap());
            assert_eq!(store.outbox_counts().unwrap(), (1, 1));
            assert!(store.retry_webhook("evt_missing", now).unwrap().is_none());
            assert!(
                store
                    .webhook_failed(u64::MAX, None, "x", None)
                    .unwrap()
                    .is_none()
            );
        }
    }

    #[tokio::test]
    async fn reopen_keeps_pending_entries_and_sequence_order() {
        for p in places() {
            eprintln!("backend: {}", p.name());
            let now = Utc::now();
            let before: Vec<OutboxEntry>;
            {
                let store = p.open();
                before = store
                    .enqueue_webhooks(&[new("m1", now), new("m1", now), new("", now)])
                    .unwrap();
                store
                    .webhook_failed(before[0].seq, Some(500), "HTTP 500", Some(now))
                    .unwrap();
                store.durable().await.unwrap();
            }
            let store = p.open();
            let due = store.due_webhooks(now, 10, |_| false).unwrap();
            assert_eq!(seqs(&due), vec![before[0].seq, before[2].seq]);
            assert_eq!(due.entries[0].attempts, 1);
            assert_eq!(due.entries[0].body, before[0].body);
            let after = store.enqueue_webhooks(&[new("m1", now)]).unwrap();
            assert!(after[0].seq > before[2].seq, "sequence keeps growing");
            store.webhook_delivered(before[0].seq).unwrap();
            let due = store.due_webhooks(now, 10, |_| false).unwrap();
            assert_eq!(seqs(&due), vec![before[1].seq, before[2].seq]);
            store.webhook_delivered(before[1].seq).unwrap();
            let due = store.due_webhooks(now, 10, |_| false).unwrap();
            assert_eq!(seqs(&due), vec![before[2].seq, after[0].seq]);
        }
    }

    #[tokio::test]
    async fn dead_entries_are_purged_in_bounded_steps() {
        for p in places() {
            let b = p.name();
            let store = p.open();
            let now = Utc::now();
            let old = now - chrono::Duration::days(10);
            let e = store
                .enqueue_webhooks(&[
                    new("m1", old),
                    new("m2", old),
                    new("m3", now),
                    new("m4", old),
                ])
                .unwrap();
            for i in [0, 2, 3] {
                store.webhook_failed(e[i].seq, None, "gone", None).unwrap();
            }
            let cutoff = now - chrono::Duration::days(1);
            let first = store.purge_dead_webhooks(cutoff, None, 2).unwrap();
            assert_eq!(first.done, 1, "{b}");
            assert_eq!(first.next, Some(e[1].seq.to_be_bytes().to_vec()), "{b}");
            let second = store
                .purge_dead_webhooks(cutoff, first.next.as_deref(), 2)
                .unwrap();
            assert_eq!(second.done, 1, "{b}: the recent dead one stays");
            assert_eq!(second.next, Some(e[3].seq.to_be_bytes().to_vec()), "{b}");
            let third = store
                .purge_dead_webhooks(cutoff, second.next.as_deref(), 2)
                .unwrap();
            assert_eq!(third, SweepStep::default(), "{b}");
            assert!(store.webhook(&e[0].id).unwrap().is_none(), "{b}");
            assert!(store.webhook(&e[3].id).unwrap().is_none(), "{b}");
            assert_eq!(
                store.webhook(&e[2].id).unwrap().unwrap().state,
                OutboxState::Dead,
                "{b}"
            );
            assert_eq!(store.outbox_counts().unwrap(), (1, 1), "{b}");
        }
    }

    /// Deliveries written inside another change's transaction, and two gateways adding
    /// deliveries of one key at once: each key's entries become due in sequence order.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn gateways_enqueueing_at_once_keep_each_keys_order() {
        let Some(url) = crate::store::pg::testdb::database() else {
            return;
        };
        let a = PgStore::connect(&url, Vec::new()).unwrap();
        let now = Utc::now();
        // Rolled back with its transaction: nothing is left of it.
        let gone = a.run(async {
            let mut c = a.client().await.unwrap();
            let tx = c.transaction().await.unwrap();
            let e = insert_outbox(&tx, &[new("m0", now)]).await.unwrap();
            tx.rollback().await.unwrap();
            e
        });
        assert!(a.webhook(&gone[0].id).unwrap().is_none());
        let url2 = url.clone();
        let writers: Vec<_> = (0..2)
            .map(|_| {
                let url = url2.clone();
                std::thread::spawn(move || {
                    let s = PgStore::connect(&url, Vec::new()).unwrap();
                    for _ in 0..20 {
                        s.enqueue_webhooks(&[new("m1", now), new("m2", now)])
                            .unwrap();
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        assert_eq!(a.outbox_counts().unwrap(), (80, 0));
        // Delivered one at a time, each key's in sequence order, to the end.
        let mut last = std::collections::HashMap::new();
        let mut delivered = 0;
        loop {
            let due = a.due_webhooks(now, 10, |_| false).unwrap();
            if due.entries.is_empty() {
                break;
            }
            assert_eq!(due.entries.len(), 2, "one per key");
            for e in due.entries {
                let prev = last.insert(e.ordering_key.clone(), e.seq);
                assert!(prev.is_none_or(|p| p < e.seq));
                assert!(a.webhook_delivered(e.seq).unwrap());
                delivered += 1;
            }
        }
        assert_eq!(delivered, 80);
        assert_eq!(a.next_webhook_at().unwrap(), None);
    }
}
