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
pub(super) mod tests;
