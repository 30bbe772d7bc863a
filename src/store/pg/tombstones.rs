//! Tombstones on PostgreSQL (see [`crate::store::tombstones`]): one hash chain per day, in
//! the `tombstones` table. The text of each is kept exactly as written (a `json` column), so
//! the next one's `prev` is the SHA-256 of what is stored. A removal takes its day's head
//! under a transaction-scoped advisory lock on the day: two gateways removing messages at once
//! take turns, and the day stays one chain.

use chrono::NaiveDate;
use tokio_postgres::Transaction;

use super::body::col;
use super::{PgStore, db_error};
use crate::store::tombstones::{
    Tombstone, TombstoneDay, day_chain, day_number, day_number_of, tombstone_key, verify_chains,
};
use crate::store::{StoreError, sha256_hex};

/// The advisory lock class of a day's chain of tombstones ("tomb" in ASCII); the day is the
/// second key.
const TOMBSTONE_LOCK: i32 = 0x746f_6d62;

/// Tombstones read at a time when every chain is checked.
const VERIFY_BATCH: i64 = 1000;

/// A day number as the `day` column holds it.
fn day_column(day: u32) -> Result<i32, StoreError> {
    i32::try_from(day).map_err(|_| StoreError::Io(format!("day {day} is out of range")))
}

/// A stored tombstone's (day, seq, text) as its key and JSON.
fn row_of(r: &tokio_postgres::Row) -> Result<(Vec<u8>, String), StoreError> {
    let day: i32 = col(r, 0, "tombstones")?;
    let seq: i64 = col(r, 1, "tombstones")?;
    let body: String = col(r, 2, "tombstones")?;
    Ok((
        tombstone_key(day.max(0).unsigned_abs(), seq.max(0).unsigned_abs()),
        body,
    ))
}

/// Writes `t` in `tx` as the next tombstone of its day, linked to the day's last one. The
/// day's head stays locked until `tx` ends, so two removals never link to the same
/// predecessor; call it after `tx` has locked the message it removes.
pub(super) async fn insert_tombstone(
    tx: &Transaction<'_>,
    mut t: Tombstone,
) -> Result<(), StoreError> {
    let day = day_column(day_number(t.removed_at))?;
    tx.execute(
        "SELECT pg_advisory_xact_lock($1, $2)",
        &[&TOMBSTONE_LOCK, &day],
    )
    .await
    .map_err(db_error)?;
    // Read after the lock is held: the statement sees the last one committed under it.
    let last = tx
        .query_opt(
            "SELECT body::text FROM tombstones WHERE day = $1 ORDER BY seq DESC LIMIT 1",
            &[&day],
        )
        .await
        .map_err(db_error)?;
    t.prev = match last {
        Some(r) => Some(sha256_hex(col::<String>(&r, 0, "tombstones")?.as_bytes())),
        None => None,
    };
    let json = serde_json::to_string(&t).map_err(|e| StoreError::Io(e.to_string()))?;
    tx.execute(
        "INSERT INTO tombstones (day, seq, message_id, body) \
         VALUES ($1, nextval('tombstones_seq'), $2, ($3::text)::json)",
        &[&day, &t.message_id, &json],
    )
    .await
    .map_err(db_error)?;
    Ok(())
}

impl PgStore {
    /// The tombstones written on `day` (UTC), oldest first, with their chain checked.
    pub fn tombstones_on(&self, day: NaiveDate) -> Result<TombstoneDay, StoreError> {
        let n = day_column(day_number_of(day))?;
        let rows = self.run(async {
            let c = self.client().await?;
            c.query(
                "SELECT day, seq, body::text FROM tombstones WHERE day = $1 ORDER BY seq",
                &[&n],
            )
            .await
            .map_err(db_error)
        })?;
        day_chain(day, rows.iter().map(row_of))
    }

    /// Checks every day's chain of tombstones: how many tombstones, and the days whose chain
    /// breaks (named `tombstones of <day>`), with where. Read a batch at a time.
    pub fn verify_tombstones(&self) -> Result<(u64, Vec<(String, String)>), StoreError> {
        let mut after: Option<(i32, i64)> = None;
        let mut done = false;
        let pages = std::iter::from_fn(|| {
            if done {
                return None;
            }
            let (day, seq) = after.unwrap_or((i32::MIN, i64::MIN));
            let page = self.run(async {
                let c = self.client().await?;
                c.query(
                    "SELECT day, seq, body::text FROM tombstones WHERE (day, seq) > ($1, $2) \
                     ORDER BY day, seq LIMIT $3",
                    &[&day, &seq, &VERIFY_BATCH],
                )
                .await
                .map_err(db_error)
            });
            let page = match page {
                Ok(p) => p,
                Err(e) => {
                    done = true;
                    return Some(vec![Err(e)]);
                }
            };
            done = (page.len() as i64) < VERIFY_BATCH;
            if let Some(last) = page.last() {
                match (col(last, 0, "tombstones"), col(last, 1, "tombstones")) {
                    (Ok(d), Ok(s)) => after = Some((d, s)),
                    (Err(e), _) | (_, Err(e)) => {
                        done = true;
                        return Some(vec![Err(e)]);
                    }
                }
            }
            Some(page.iter().map(row_of).collect::<Vec<_>>())
        });
        verify_chains(pages.flatten())
    }

    /// How many tombstones are kept (0 while the database does not answer).
    pub fn tombstones_len(&self) -> usize {
        self.count_rows("SELECT count(*) FROM tombstones")
    }
}
