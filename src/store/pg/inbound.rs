//! Inbound texts on PostgreSQL: the same records, deduplication and reassembly as the embedded
//! store's (see [`crate::store::inbound`]), in tables.
//!
//! A PDU is stored in one transaction with its fingerprint (`inbound_seen`, unique): of two
//! gateways storing the same PDU at once, the second waits for the first and finds it seen, so
//! it answers [`Received::Duplicate`]. The parts of one concatenated message are taken under a
//! transaction-scoped advisory lock named after their group, so the part that completes it is
//! always seen to, whichever gateway stores it.

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use tokio_postgres::types::FromSql;
use tokio_postgres::{Row, Transaction};

use super::{PgStore, db_error};
use crate::store::inbound::{
    Fragment, InboundFilter, InboundMessage, Reading, Received, answer_fingerprint, assemble,
    fingerprint, read_pdu, unreadable_message,
};
use crate::store::live::inbound_event;
use crate::store::{StoreError, SweepStep, id_key};

/// `id` as the store writes ids (upper-case ULID), or `None` when it is not a ULID.
pub(super) fn canonical_id(id: &str) -> Option<String> {
    id_key(id).map(|k| ulid::Ulid(u128::from_be_bytes(k)).to_string())
}

/// The smallest id of a record stored at `t`: ids from `t` on compare at or above it.
pub(super) fn first_id_at(t: DateTime<Utc>) -> String {
    ulid::Ulid::from_parts(t.timestamp_millis().max(0) as u64, 0).to_string()
}

/// The smallest id of a record stored after `cutoff`: a sweep up to `cutoff` stops there.
pub(super) fn first_id_after(cutoff: DateTime<Utc>) -> String {
    let ms = (cutoff.timestamp_millis().max(0) as u64).saturating_add(1);
    ulid::Ulid::from_parts(ms, 0).to_string()
}

/// A column of a row, or the row is corrupt.
pub(super) fn column<'a, T: FromSql<'a>>(
    row: &'a Row,
    i: usize,
    key: &str,
) -> Result<T, StoreError> {
    row.try_get(i).map_err(|e| StoreError::Corrupt {
        key: key.to_string(),
        detail: e.to_string(),
    })
}

/// A record from its `body`.
pub(super) fn from_body<T: DeserializeOwned>(
    key: &str,
    v: serde_json::Value,
) -> Result<T, StoreError> {
    serde_json::from_value(v).map_err(|e| StoreError::Corrupt {
        key: key.to_string(),
        detail: e.to_string(),
    })
}

/// A record as its `body`.
pub(super) fn to_body<T: serde::Serialize>(v: &T) -> Result<serde_json::Value, StoreError> {
    serde_json::to_value(v).map_err(|e| StoreError::Io(e.to_string()))
}

/// A page size as SQL's `LIMIT` takes it.
pub(super) fn sql_limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The advisory lock key of one concatenated message's parts: the first 8 bytes of SHA-256
/// of modem · 0x00 · sender · 0x00 · reference · total (the embedded store's group key).
fn group_lock(modem: &str, from: &str, reference: u16, total: u8) -> i64 {
    let mut h = Sha256::new();
    h.update(modem.as_bytes());
    h.update([0]);
    h.update(from.as_bytes());
    h.update([0]);
    h.update(reference.to_be_bytes());
    h.update([total]);
    let d = h.finalize();
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    i64::from_be_bytes(b)
}

/// Records a fingerprint; `false` when it was recorded before (by this gateway or another,
/// whose transaction this one waited for).
pub(super) async fn mark_seen(
    c: &Transaction<'_>,
    seen: &[u8; 32],
    kind: &str,
) -> Result<bool, StoreError> {
    let n = c
        .execute(
            "INSERT INTO inbound_seen (fingerprint, kind) VALUES ($1, $2) \
             ON CONFLICT (fingerprint) DO NOTHING",
            &[&&seen[..], &kind],
        )
        .await
        .map_err(db_error)?;
    Ok(n == 1)
}

/// Writes a whole inbound message, pending (not yet acted on).
async fn insert_inbound(c: &Transaction<'_>, m: &InboundMessage) -> Result<(), StoreError> {
    let id = canonical_id(&m.id).ok_or_else(|| StoreError::Corrupt {
        key: m.id.clone(),
        detail: "not a ULID".into(),
    })?;
    c.execute(
        "INSERT INTO inbound (id, sender, pending, received_at, body) \
         VALUES ($1, $2, true, $3, $4)",
        &[&id, &m.from, &m.received_at, &to_body(m)?],
    )
    .await
    .map_err(db_error)?;
    Ok(())
}

/// The held parts of one group: (part, received_at, fragment), by part.
async fn group_parts(
    c: &Transaction<'_>,
    modem: &str,
    from: &str,
    reference: i32,
    total: i16,
    lock: bool,
) -> Result<Vec<(i16, DateTime<Utc>, Fragment)>, StoreError> {
    let sql = if lock {
        "SELECT part, received_at, body FROM fragments \
         WHERE modem = $1 AND sender = $2 AND reference = $3 AND total = $4 \
         ORDER BY part FOR UPDATE"
    } else {
        "SELECT part, received_at, body FROM fragments \
         WHERE modem = $1 AND sender = $2 AND reference = $3 AND total = $4 ORDER BY part"
    };
    let rows = c
        .query(sql, &[&modem, &from, &reference, &total])
        .await
        .map_err(db_error)?;
    let key = format!("{modem}/{from}/{reference}/{total}");
    rows.iter()
        .map(|r| {
            Ok((
                column(r, 0, &key)?,
                column(r, 1, &key)?,
                from_body(&key, column(r, 2, &key)?)?,
            ))
        })
        .collect()
}

impl PgStore {
    /// See [`crate::store::Store::receive`].
    pub fn receive(
        &self,
        modem: &str,
        pdu: &[u8],
        region: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Received, StoreError> {
        let seen = fingerprint(modem, pdu);
        let reading = read_pdu(modem, pdu, region, now);
        self.run(async {
            let mut c = self.client().await?;
            let tx = c.transaction().await.map_err(db_error)?;
            if !mark_seen(&tx, &seen, "").await? {
                return Ok(Received::Duplicate);
            }
            let (from, concat, fragment) = match reading {
                Reading::Whole(m) => {
                    insert_inbound(&tx, &m).await?;
                    tx.commit().await.map_err(db_error)?;
                    return Ok(Received::Stored(m));
                }
                Reading::Part {
                    from,
                    concat,
                    fragment,
                } => (from, concat, fragment),
            };
            let (reference, total) = (i32::from(concat.reference), i16::from(concat.total));
            tx.execute(
                "SELECT pg_advisory_xact_lock($1)",
                &[&group_lock(modem, &from, concat.reference, concat.total)],
            )
            .await
            .map_err(db_error)?;
            // A part seen before under another PDU keeps the first one, as in sled.
            tx.execute(
                "INSERT INTO fragments (modem, sender, reference, total, part, received_at, body) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
                &[
                    &modem,
                    &from,
                    &reference,
                    &total,
                    &i16::from(concat.part),
                    &fragment.received_at,
                    &to_body(&fragment)?,
                ],
            )
            .await
            .map_err(db_error)?;
            let held = group_parts(&tx, modem, &from, reference, total, true).await?;
            let mut parts = Vec::with_capacity(usize::from(concat.total));
            for n in 1..=concat.total {
                match held.iter().find(|(p, _, _)| *p == i16::from(n)) {
                    Some((_, _, f)) => parts.push(Some(f.clone())),
                    None => {
                        tx.commit().await.map_err(db_error)?;
                        return Ok(Received::Held {
                            part: concat.part,
                            total: concat.total,
                        });
                    }
                }
            }
            let m = assemble(modem, &parts, concat.total, now);
            insert_inbound(&tx, &m).await?;
            tx.execute(
                "DELETE FROM fragments WHERE modem = $1 AND sender = $2 AND reference = $3 \
                 AND total = $4 AND part BETWEEN 1 AND $4",
                &[&modem, &from, &reference, &total],
            )
            .await
            .map_err(db_error)?;
            tx.commit().await.map_err(db_error)?;
            Ok(Received::Stored(Box::new(m)))
        })
    }

    /// See [`crate::store::Store::receive_unreadable`].
    pub fn receive_unreadable(
        &self,
        modem: &str,
        answer: &str,
        pdu: &[u8],
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<Received, StoreError> {
        let seen = answer_fingerprint(modem, answer);
        let m = unreadable_message(modem, answer, pdu, reason, now);
        self.run(async {
            let mut c = self.client().await?;
            let tx = c.transaction().await.map_err(db_error)?;
            if !mark_seen(&tx, &seen, "").await? {
                return Ok(Received::Duplicate);
            }
            insert_inbound(&tx, &m).await?;
            tx.commit().await.map_err(db_error)?;
            Ok(Received::Stored(Box::new(m)))
        })
    }

    /// See [`crate::store::Store::release_stale_fragments`].
    pub fn release_stale_fragments(
        &self,
        cutoff: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Vec<InboundMessage>, StoreError> {
        self.run(async {
            let c = self.client().await?;
            let groups = c
                .query(
                    "SELECT modem, sender, reference, total FROM fragments \
                     GROUP BY modem, sender, reference, total HAVING min(received_at) < $1 \
                     ORDER BY modem, sender, reference, total",
                    &[&cutoff],
                )
                .await
                .map_err(db_error)?;
            drop(c);
            let mut out = Vec::new();
            for g in &groups {
                let key = "fragments";
                let modem: String = column(g, 0, key)?;
                let from: String = column(g, 1, key)?;
                let reference: i32 = column(g, 2, key)?;
                let total_col: i16 = column(g, 3, key)?;
                let corrupt = |what: &str| StoreError::Corrupt {
                    key: format!("{modem}/{from}/{reference}/{total_col}"),
                    detail: format!("{what} out of range"),
                };
                let reference16 = u16::try_from(reference).map_err(|_| corrupt("reference"))?;
                let total = u8::try_from(total_col).map_err(|_| corrupt("total"))?;
                let mut c = self.client().await?;
                let tx = c.transaction().await.map_err(db_error)?;
                tx.execute(
                    "SELECT pg_advisory_xact_lock($1)",
                    &[&group_lock(&modem, &from, reference16, total)],
                )
                .await
                .map_err(db_error)?;
                // Read again under the lock: another gateway may have completed or released it.
                let held = group_parts(&tx, &modem, &from, reference, total_col, true).await?;
                if held
                    .iter()
                    .map(|(_, t, _)| *t)
                    .min()
                    .is_none_or(|t| t >= cutoff)
                {
                    continue;
                }
                let mut slots: Vec<Option<Fragment>> = vec![None; usize::from(total)];
                for (n, _, f) in &held {
                    if let Ok(n) = usize::try_from(*n)
                        && (1..=slots.len()).contains(&n)
                    {
                        slots[n - 1] = Some(f.clone());
                    }
                }
                let m = assemble(&modem, &slots, total, now);
                insert_inbound(&tx, &m).await?;
                tx.execute(
                    "DELETE FROM fragments WHERE modem = $1 AND sender = $2 AND reference = $3 \
                     AND total = $4",
                    &[&modem, &from, &reference, &total_col],
                )
                .await
                .map_err(db_error)?;
                tx.commit().await.map_err(db_error)?;
                out.push(m);
            }
            Ok(out)
        })
    }

    /// See [`crate::store::Store::inbound`].
    pub fn inbound(&self, id: &str) -> Result<Option<InboundMessage>, StoreError> {
        let Some(id) = canonical_id(id) else {
            return Ok(None);
        };
        self.run(async {
            let c = self.client().await?;
            let row = c
                .query_opt("SELECT body FROM inbound WHERE id = $1", &[&id])
                .await
                .map_err(db_error)?;
            row.map(|r| from_body(&id, column(&r, 0, &id)?)).transpose()
        })
    }

    /// See [`crate::store::Store::list_inbound`].
    pub fn list_inbound(&self, f: &InboundFilter) -> Result<Vec<InboundMessage>, StoreError> {
        let limit = sql_limit(f.limit.clamp(1, 1000));
        let after = f.after.as_deref().and_then(canonical_id);
        let since = f.since.map(first_id_at);
        // What could not be read has no sender: it is the one listed under ''.
        let from = match (&f.from, f.unreadable) {
            (_, true) => Some(String::new()),
            (Some(from), false) => Some(from.clone()),
            (None, false) => None,
        };
        self.run(async {
            let c = self.client().await?;
            let rows = c
                .query(
                    "SELECT id, body FROM inbound \
                     WHERE ($1::text IS NULL OR sender = $1) \
                       AND (NOT $2 OR body->>'decode_error' IS NOT NULL) \
                       AND ($3::text IS NULL OR id < $3) \
                       AND ($4::text IS NULL OR id >= $4) \
                     ORDER BY id DESC LIMIT $5",
                    &[&from, &f.unreadable, &after, &since, &limit],
                )
                .await
                .map_err(db_error)?;
            rows.iter()
                .map(|r| {
                    let id: String = column(r, 0, "inbound")?;
                    from_body(&id, column(r, 1, &id)?)
                })
                .collect()
        })
    }

    /// See [`crate::store::Store::purge_inbound`]: the oldest `limit` are looked at, up to
    /// the first received after `cutoff`; those not pending go.
    pub fn purge_inbound(
        &self,
        cutoff: DateTime<Utc>,
        limit: usize,
    ) -> Result<SweepStep, StoreError> {
        let end = first_id_after(cutoff);
        self.run(async {
            let c = self.client().await?;
            let n = c
                .execute(
                    "DELETE FROM inbound WHERE id IN \
                       (SELECT id FROM inbound ORDER BY id LIMIT $1) \
                     AND id < $2 AND NOT pending",
                    &[&sql_limit(limit), &end],
                )
                .await
                .map_err(db_error)?;
            Ok(SweepStep {
                done: usize::try_from(n).unwrap_or(usize::MAX),
                next: None,
            })
        })
    }

    /// See [`crate::store::Store::fragments_held`]: 0 when the database does not answer.
    pub fn fragments_held(&self) -> usize {
        self.count_rows("SELECT count(*) FROM fragments")
    }

    /// A `SELECT count(*)`'s answer; 0 (logged) when the database does not answer.
    pub(super) fn count_rows(&self, sql: &'static str) -> usize {
        let r = self.run(async {
            let c = self.client().await?;
            let row = c.query_one(sql, &[]).await.map_err(db_error)?;
            column::<i64>(&row, 0, sql)
        });
        match r {
            Ok(n) => usize::try_from(n).unwrap_or(0),
            Err(e) => {
                tracing::warn!(error = %e, query = sql, "cannot count");
                0
            }
        }
    }

    /// See [`crate::store::Store::pending_inbound`].
    pub fn pending_inbound(&self) -> Result<Vec<InboundMessage>, StoreError> {
        self.run(async {
            let c = self.client().await?;
            let rows = c
                .query(
                    "SELECT id, body FROM inbound WHERE pending ORDER BY id",
                    &[],
                )
                .await
                .map_err(db_error)?;
            rows.iter()
                .map(|r| {
                    let id: String = column(r, 0, "inbound")?;
                    from_body(&id, column(r, 1, &id)?)
                })
                .collect()
        })
    }

    /// See [`crate::store::Store::inbound_handled`].
    pub fn inbound_handled(
        &self,
        id: &str,
        handling: &str,
        in_reply_to: Option<&str>,
    ) -> Result<Option<InboundMessage>, StoreError> {
        let Some(id) = canonical_id(id) else {
            return Ok(None);
        };
        self.run(async {
            let mut c = self.client().await?;
            let tx = c.transaction().await.map_err(db_error)?;
            let Some(row) = tx
                .query_opt("SELECT body FROM inbound WHERE id = $1 FOR UPDATE", &[&id])
                .await
                .map_err(db_error)?
            else {
                return Ok(None);
            };
            let mut m: InboundMessage = from_body(&id, column(&row, 0, &id)?)?;
            m.handling = Some(handling.to_string());
            m.in_reply_to = in_reply_to.map(str::to_string);
            tx.execute(
                "UPDATE inbound SET body = $2, pending = false WHERE id = $1",
                &[&id, &to_body(&m)?],
            )
            .await
            .map_err(db_error)?;
            tx.commit().await.map_err(db_error)?;
            Ok(Some(m))
        })
    }

    /// Publishes a stored inbound message to this gateway's subscribers.
    pub fn publish_inbound(&self, m: &InboundMessage) {
        if self.live.receiver_count() == 0 {
            return;
        }
        let _ = self.live.send(inbound_event(m));
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::sms::{Address, encode_deliver};
    use crate::store::Store;
    use crate::store::live::LiveEvent;
    use crate::store::pg::testdb;

    /// Where a store under test lives: a directory (sled) or a database (PostgreSQL).
    pub(in crate::store::pg) enum Place {
        Dir(tempfile::TempDir),
        Db(String),
    }

    impl Place {
        /// Opens the store there (again, after a restart).
        pub(in crate::store::pg) fn open(&self) -> Store {
            match self {
                Place::Dir(d) => Store::open(d.path(), 16).unwrap(),
                Place::Db(url) => Store::connect(url, Vec::new()).unwrap(),
            }
        }

        pub(in crate::store::pg) fn name(&self) -> &'static str {
            match self {
                Place::Dir(_) => "sled",
                Place::Db(_) => "postgres",
            }
        }
    }

    /// A fresh embedded store and a fresh database (when a server can be made).
    pub(in crate::store::pg) fn places() -> Vec<Place> {
        let mut v = vec![Place::Dir(tempfile::tempdir().unwrap())];
        if let Some(url) = testdb::database() {
            v.push(Place::Db(url));
        }
        v
    }

    fn pdus(from: &str, text: &str, ucs2: bool, reference: u8) -> Vec<Vec<u8>> {
        let from = Address::parse_number("from", from).unwrap();
        let ts = Utc::now().fixed_offset();
        encode_deliver(None, &from, text, &ts, ucs2, reference).unwrap()
    }

    fn all(store: &Store) -> Vec<InboundMessage> {
        store
            .list_inbound(&InboundFilter {
                limit: 1000,
                ..InboundFilter::default()
            })
            .unwrap()
    }

    #[tokio::test]
    async fn single_and_duplicate() {
        for place in places() {
            let store = place.open();
            let now = Utc::now();
            let p = pdus("+12025550123", "1", false, 1).remove(0);
            let Received::Stored(m) = store.receive("sim0", &p, None, now).unwrap() else {
                panic!("{}: not stored", place.name())
            };
            assert_eq!(
                (m.from.as_str(), m.text.as_str(), m.partial),
                ("+12025550123", "1", false)
            );
            assert_eq!(
                store.receive("sim0", &p, None, now).unwrap(),
                Received::Duplicate,
                "{}",
                place.name()
            );
            // The same PDU on another modem is another message.
            assert!(matches!(
                store.receive("sim1", &p, None, now).unwrap(),
                Received::Stored(_)
            ));
            assert_eq!(store.inbound(&m.id).unwrap(), Some((*m).clone()));
            // Ids are read as ULIDs, in either case; anything else is no message.
            assert_eq!(
                store.inbound(&m.id.to_lowercase()).unwrap(),
                Some((*m).clone())
            );
            assert_eq!(store.inbound("not-an-id").unwrap(), None);
            // Garbage is kept as it came, marked.
            let Received::Stored(g) = store.receive("sim0", &[0, 0x03, 0xFF], None, now).unwrap()
            else {
                panic!("{}: garbage not stored", place.name())
            };
            assert_eq!(g.encoding, "undecodable");
            assert!(g.decode_error.is_some());
            assert_eq!(g.pdus, vec!["0003FF".to_string()]);
            assert_eq!(all(&store).len(), 3, "{}", place.name());
        }
    }

    #[test]
    fn short_user_data_is_kept_partial_and_an_unreadable_answer_raw() {
        for place in places() {
            let store = place.open();
            let now = Utc::now();
            let mut p = pdus("+12025550123", "STOP sending me these", false, 1).remove(0);
            p.truncate(p.len() - 8);
            let Received::Stored(m) = store.receive("sim0", &p, None, now).unwrap() else {
                panic!("{}: a short PDU not stored", place.name())
            };
            assert!(m.partial, "{m:?}");
            assert!(m.decode_error.is_none());
            assert_eq!(m.from, "+12025550123");
            assert!(
                m.text.starts_with("STOP sending") && m.text.ends_with("[…]"),
                "{}",
                m.text
            );
            // An answer that is not a message at all: kept raw, once.
            let answer = "+CMGR: \"REC UNREAD\",\"+1202\",,\"26/12/07,10:00:00+00\"\r\nSTOP";
            let Received::Stored(u) = store
                .receive_unreadable("sim0", answer, &[], "text mode", now)
                .unwrap()
            else {
                panic!("{}: not stored", place.name())
            };
            assert_eq!(u.raw_answer.as_deref(), Some(answer));
            assert_eq!(u.decode_error.as_deref(), Some("text mode"));
            assert!(u.pdus.is_empty());
            assert_eq!(
                store
                    .receive_unreadable("sim0", answer, &[], "text mode", now)
                    .unwrap(),
                Received::Duplicate
            );
            let listed = store
                .list_inbound(&InboundFilter {
                    unreadable: true,
                    limit: 10,
                    ..InboundFilter::default()
                })
                .unwrap();
            assert_eq!(listed.len(), 1, "{}", place.name());
            assert_eq!(listed[0].id, u.id);
        }
    }

    #[tokio::test]
    async fn parts_out_of_order_interleaved_and_across_a_restart() {
        for place in places() {
            let now = Utc::now();
            let long = "Ça va? Je paierai la facture demain, merci 🙂 ".repeat(4);
            let a = pdus("+12025550123", &long, true, 7);
            let b = pdus(
                "+12025550124",
                &"second sender, also long. ".repeat(12),
                false,
                7,
            );
            assert!(a.len() >= 3 && b.len() >= 2);
            {
                let store = place.open();
                // Last part first, interleaved with the other sender's parts.
                let last = a.len() - 1;
                assert!(matches!(
                    store.receive("sim0", &a[last], None, now).unwrap(),
                    Received::Held { .. }
                ));
                assert!(matches!(
                    store.receive("sim0", &b[0], None, now).unwrap(),
                    Received::Held { part: 1, .. }
                ));
                assert!(matches!(
                    store.receive("sim0", &a[0], None, now).unwrap(),
                    Received::Held { part: 1, .. }
                ));
                // The same part again (the SIM offered it twice) changes nothing.
                assert_eq!(
                    store.receive("sim0", &a[0], None, now).unwrap(),
                    Received::Duplicate
                );
                assert_eq!(store.fragments_held(), 3, "{}", place.name());
                store.durable().await.unwrap();
            }
            let store = place.open();
            let mut whole = None;
            for p in &a[1..a.len() - 1] {
                if let Received::Stored(m) = store.receive("sim0", p, None, now).unwrap() {
                    whole = Some(m);
                }
            }
            let m = whole.expect("reassembled after the restart");
            assert_eq!(m.text, long);
            assert_eq!((m.encoding.as_str(), m.partial), ("ucs2", false));
            assert_eq!(usize::from(m.parts_received), a.len());
            // The other sender's message is still waiting, and is released as partial.
            assert_eq!(store.fragments_held(), 1, "{}", place.name());
            assert!(
                store
                    .release_stale_fragments(now - chrono::Duration::hours(1), now)
                    .unwrap()
                    .is_empty(),
                "not stale yet"
            );
            let released = store
                .release_stale_fragments(now + chrono::Duration::seconds(1), now)
                .unwrap();
            assert_eq!(released.len(), 1, "{}", place.name());
            let p = &released[0];
            assert!(p.partial);
            assert_eq!((p.parts_received, usize::from(p.total_parts)), (1, b.len()));
            assert!(p.text.starts_with("second sender") && p.text.ends_with("[…]"));
            assert_eq!(store.fragments_held(), 0);
            let listed = store
                .list_inbound(&InboundFilter {
                    from: Some("+12025550124".into()),
                    limit: 10,
                    ..InboundFilter::default()
                })
                .unwrap();
            assert_eq!(listed, vec![p.clone()]);
            assert_eq!(all(&store).len(), 2, "{}", place.name());
        }
    }

    /// Pages, filters, what is pending, and the retention step that keeps what is.
    #[test]
    fn listing_pending_and_purge_agree_on_both_backends() {
        for place in places() {
            let store = place.open();
            let t0 = Utc::now();
            let at = |mins: i64| t0 - chrono::Duration::minutes(mins);
            let text = |from: &str, t: &str| pdus(from, t, false, 1).remove(0);
            let stored = |r: Received| match r {
                Received::Stored(m) => *m,
                r => panic!("{}: {r:?}", place.name()),
            };
            let a = stored(
                store
                    .receive("sim0", &text("+12025550101", "A"), None, at(120))
                    .unwrap(),
            );
            let b = stored(
                store
                    .receive("sim0", &text("+12025550102", "B"), None, at(60))
                    .unwrap(),
            );
            let c = stored(
                store
                    .receive("sim0", &text("+12025550101", "C"), None, at(0))
                    .unwrap(),
            );
            let ids = |v: Vec<InboundMessage>| v.into_iter().map(|m| m.id).collect::<Vec<_>>();
            assert_eq!(
                ids(store.pending_inbound().unwrap()),
                [a.id.as_str(), b.id.as_str(), c.id.as_str()],
                "{}: oldest first",
                place.name()
            );
            let page = |f: InboundFilter| ids(store.list_inbound(&f).unwrap());
            assert_eq!(
                page(InboundFilter {
                    limit: 2,
                    ..InboundFilter::default()
                }),
                [c.id.as_str(), b.id.as_str()]
            );
            assert_eq!(
                page(InboundFilter {
                    limit: 2,
                    after: Some(b.id.clone()),
                    ..InboundFilter::default()
                }),
                [a.id.as_str()]
            );
            assert_eq!(
                page(InboundFilter {
                    limit: 10,
                    since: Some(at(90)),
                    ..InboundFilter::default()
                }),
                [c.id.as_str(), b.id.as_str()]
            );
            assert_eq!(
                page(InboundFilter {
                    limit: 10,
                    from: Some("+12025550101".into()),
                    ..InboundFilter::default()
                }),
                [c.id.as_str(), a.id.as_str()]
            );
            assert!(
                page(InboundFilter {
                    limit: 10,
                    unreadable: true,
                    ..InboundFilter::default()
                })
                .is_empty()
            );
            // Acted on: no longer pending, with what was done.
            let h = store
                .inbound_handled(a.id.as_str(), "reply", Some("01JABCDEFGHJKMNPQRSTVWXYZ0"))
                .unwrap()
                .unwrap();
            assert_eq!(
                (h.handling.as_deref(), h.in_reply_to.as_deref()),
                (Some("reply"), Some("01JABCDEFGHJKMNPQRSTVWXYZ0"))
            );
            assert_eq!(store.inbound(a.id.as_str()).unwrap(), Some(h));
            store
                .inbound_handled(c.id.as_str(), "unmatched", None)
                .unwrap();
            assert_eq!(ids(store.pending_inbound().unwrap()), [b.id.as_str()]);
            assert_eq!(
                store
                    .inbound_handled("01JABCDEFGHJKMNPQRSTVWXYZ0", "x", None)
                    .unwrap(),
                None
            );
            // Retention: A is old and acted on; B is old but pending; C is recent.
            let step = store.purge_inbound(at(30), 10).unwrap();
            assert_eq!(step.done, 1, "{}", place.name());
            assert_eq!(store.inbound(a.id.as_str()).unwrap(), None);
            assert_eq!(store.purge_inbound(at(30), 10).unwrap().done, 0);
            store
                .inbound_handled(b.id.as_str(), "unmatched", None)
                .unwrap();
            // One looked at: the oldest, B. At the cutoff's millisecond still goes.
            assert_eq!(store.purge_inbound(t0, 1).unwrap().done, 1);
            assert_eq!(ids(all(&store)), [c.id.as_str()]);
            assert_eq!(store.purge_inbound(t0, 0).unwrap().done, 0);
            assert_eq!(store.purge_inbound(at(1), 10).unwrap().done, 0);
            assert_eq!(store.purge_inbound(t0, 10).unwrap().done, 1);
            assert!(all(&store).is_empty(), "{}", place.name());
        }
    }

    #[tokio::test]
    async fn a_stored_text_is_published_live() {
        for place in places() {
            let store = place.open();
            let mut rx = store.subscribe();
            let p = pdus("+12025550123", "hello", false, 1).remove(0);
            let Received::Stored(m) = store.receive("sim0", &p, None, Utc::now()).unwrap() else {
                panic!("not stored")
            };
            store.publish_inbound(&m);
            let e = tokio::time::timeout(std::time::Duration::from_secs(5), rx.recv())
                .await
                .expect("an event in time")
                .unwrap();
            assert_eq!(
                e,
                LiveEvent::Inbound {
                    inbound_id: m.id.clone(),
                    from: "+12025550123".into(),
                    text: "hello".into(),
                    at: m.received_at,
                },
                "{}",
                place.name()
            );
        }
    }

    /// Two gateways on one database given the same PDU at once: one stores it, the other
    /// finds it stored; two parts of one message at once: one of them completes it.
    #[test]
    fn concurrent_gateways_store_once_and_complete_once() {
        let Some(url) = testdb::database() else {
            return;
        };
        let (g1, g2) = (
            Store::connect(&url, Vec::new()).unwrap(),
            Store::connect(&url, Vec::new()).unwrap(),
        );
        let both = |f1: &(dyn Fn() -> Received + Sync), f2: &(dyn Fn() -> Received + Sync)| {
            let go = std::sync::Barrier::new(2);
            std::thread::scope(|s| {
                let a = s.spawn(|| {
                    go.wait();
                    f1()
                });
                let b = s.spawn(|| {
                    go.wait();
                    f2()
                });
                (a.join().unwrap(), b.join().unwrap())
            })
        };
        let now = Utc::now();
        for round in 0..10u8 {
            let p = pdus("+12025550123", &format!("round {round}"), false, 1).remove(0);
            let (r1, r2) = both(&|| g1.receive("sim0", &p, None, now).unwrap(), &|| {
                g2.receive("sim0", &p, None, now).unwrap()
            });
            let stored = [&r1, &r2]
                .iter()
                .filter(|r| matches!(r, Received::Stored(_)))
                .count();
            assert_eq!(stored, 1, "round {round}: {r1:?} / {r2:?}");
            assert!(r1 == Received::Duplicate || r2 == Received::Duplicate);

            let text = format!("round {round}: ").repeat(20);
            let parts = pdus("+12025550124", &text, false, round);
            assert_eq!(parts.len(), 2);
            let (r1, r2) = both(
                &|| g1.receive("sim0", &parts[0], None, now).unwrap(),
                &|| g2.receive("sim0", &parts[1], None, now).unwrap(),
            );
            let whole: Vec<_> = [r1, r2]
                .into_iter()
                .filter_map(|r| match r {
                    Received::Stored(m) => Some(m),
                    _ => None,
                })
                .collect();
            assert_eq!(whole.len(), 1, "round {round}: completed once");
            assert_eq!(whole[0].text, text);
            assert_eq!(g1.fragments_held(), 0);
        }
        assert_eq!(all(&g2).len(), 20);
    }
}
