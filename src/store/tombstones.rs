//! Tombstones: what is left of a message removed whole (by `[retention] messages_after` or an
//! erasure), so that a removal is visible, never silent.
//!
//! | tree | key | value |
//! |---|---|---|
//! | `tombstones` | day of the removal (days since 1970-01-01, 4, BE) · sequence (8, BE) | JSON [`Tombstone`] |
//!
//! The tombstones of one day form a hash chain like a message's history: each carries `prev`,
//! the SHA-256 of the one before it that day as stored (`None` for the day's first). A
//! tombstone removed or changed after the fact breaks the day's chain at that point
//! ([`Store::tombstones_on`] says where). A tombstone names the message, its status and the
//! head of its history's chain; never its recipient or its text.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sled::transaction::TransactionalTree;

use super::{SledStore, Status, StoreError, Tx, decode, encode, sha256_hex};

/// What is kept of a removed message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Tombstone {
    /// The message that was removed.
    pub message_id: String,
    /// When it was removed.
    pub removed_at: DateTime<Utc>,
    /// `retention` (`[retention] messages_after`) or `erasure` (`POST /v1/erasure`).
    pub reason: String,
    /// Its status when removed.
    pub status: Status,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// The head of its history's hash chain when removed (`None`: only the first entry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history_hash: Option<String>,
    /// SHA-256 (hex) of the day's tombstone before this one as stored; `None` for the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev: Option<String>,
}

/// One day's tombstones and whether their chain holds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TombstoneDay {
    /// The day (UTC).
    pub day: NaiveDate,
    /// Oldest first.
    pub tombstones: Vec<Tombstone>,
    /// Whether every tombstone links to the one before it.
    pub verified: bool,
    /// Where the chain breaks, when it does.
    pub problem: Option<String>,
}

/// Days since the epoch of `t`: the day its tombstones are chained in.
pub(crate) fn day_number(t: DateTime<Utc>) -> u32 {
    t.timestamp().div_euclid(86_400).max(0) as u32
}

/// Days since the epoch of `t`, the key prefix of its day.
fn day_of(t: DateTime<Utc>) -> [u8; 4] {
    day_number(t).to_be_bytes()
}

/// Days since the epoch of the start of `day` (UTC).
pub(crate) fn day_number_of(day: NaiveDate) -> u32 {
    day_number(day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc())
}

/// A tombstone's key: its day, then its sequence (both big-endian), so keys sort by day and
/// then by removal.
pub(crate) fn tombstone_key(day: u32, seq: u64) -> Vec<u8> {
    let mut key = day.to_be_bytes().to_vec();
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

impl Tombstone {
    /// What is kept of `m`, removed at `now` for `reason`; linked into its day's chain when
    /// written (`prev`).
    pub(crate) fn of(m: &super::Message, reason: &str, now: DateTime<Utc>) -> Tombstone {
        Tombstone {
            message_id: m.id.clone(),
            removed_at: now,
            reason: reason.to_string(),
            status: m.status,
            created_at: m.created_at,
            history_hash: m.history_hash.clone(),
            prev: None,
        }
    }
}

/// The problem of a tombstone that does not link to the one before it.
fn unlinked(t: &Tombstone) -> String {
    format!(
        "the tombstone of {} does not link to the one before it: a tombstone was changed, removed or inserted",
        t.message_id
    )
}

/// One day's tombstones from their stored rows (key, JSON as stored), oldest first, with their
/// chain checked. Shared by both backends.
pub(crate) fn day_chain<K: AsRef<[u8]>, V: AsRef<[u8]>>(
    day: NaiveDate,
    rows: impl Iterator<Item = Result<(K, V), StoreError>>,
) -> Result<TombstoneDay, StoreError> {
    let mut out = TombstoneDay {
        day,
        tombstones: Vec::new(),
        verified: true,
        problem: None,
    };
    let mut prev: Option<String> = None;
    for r in rows {
        let (k, v) = r?;
        let t: Tombstone = decode(k.as_ref(), v.as_ref())?;
        if out.problem.is_none() && t.prev != prev {
            out.problem = Some(unlinked(&t));
            out.verified = false;
        }
        prev = Some(sha256_hex(v.as_ref()));
        out.tombstones.push(t);
    }
    Ok(out)
}

/// Every day's chain of tombstones from all the stored rows (key as [`tombstone_key`], JSON
/// as stored) in key order: how many tombstones, and the days whose chain breaks (named
/// `tombstones of <day>`), with where. Shared by both backends.
pub(crate) fn verify_chains<K: AsRef<[u8]>, V: AsRef<[u8]>>(
    rows: impl Iterator<Item = Result<(K, V), StoreError>>,
) -> Result<(u64, Vec<(String, String)>), StoreError> {
    let mut n = 0;
    let mut broken = Vec::new();
    let mut day: Option<[u8; 4]> = None;
    let mut prev: Option<String> = None;
    let mut day_broken = false;
    for r in rows {
        let (k, v) = r?;
        let (k, v) = (k.as_ref(), v.as_ref());
        n += 1;
        let this = <[u8; 4]>::try_from(k.get(..4).unwrap_or_default()).unwrap_or_default();
        if day != Some(this) {
            day = Some(this);
            prev = None;
            day_broken = false;
        }
        let name = || {
            let days = i64::from(u32::from_be_bytes(this));
            let date = DateTime::from_timestamp(days * 86_400, 0)
                .map(|t| t.date_naive().to_string())
                .unwrap_or_default();
            format!("tombstones of {date}")
        };
        match decode::<Tombstone>(k, v) {
            Ok(t) if t.prev == prev => {}
            Ok(t) if !day_broken => {
                broken.push((name(), unlinked(&t)));
                day_broken = true;
            }
            Err(e) if !day_broken => {
                broken.push((name(), format!("unreadable tombstone: {e}")));
                day_broken = true;
            }
            _ => {}
        }
        prev = Some(sha256_hex(v));
    }
    Ok((n, broken))
}

/// A tombstone ready to be written in the removal's transaction: its key and JSON.
pub(super) struct PendingTombstone {
    key: Vec<u8>,
    json: Vec<u8>,
}

impl PendingTombstone {
    /// Writes it (in the transaction that removes the message).
    pub(super) fn write_in(&self, t: &TransactionalTree) -> Result<(), Tx> {
        t.insert(self.key.as_slice(), self.json.as_slice())?;
        Ok(())
    }
}

impl SledStore {
    /// The next tombstone of the day of `t.removed_at`, linked to the day's last one. The
    /// caller holds [`Store::tombstone_lock`] until it is written, so two removals never link
    /// to the same predecessor.
    pub(super) fn next_tombstone(&self, mut t: Tombstone) -> Result<PendingTombstone, StoreError> {
        let day = day_of(t.removed_at);
        t.prev = match self.inner.tombstones.scan_prefix(day).next_back() {
            Some(r) => Some(sha256_hex(&r?.1)),
            None => None,
        };
        let seq = self.inner.db.generate_id()?;
        Ok(PendingTombstone {
            key: tombstone_key(day_number(t.removed_at), seq),
            json: encode(&t)?,
        })
    }

    /// Serialises the writers of tombstones (the retention sweep, erasures).
    pub(super) fn tombstone_lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.inner
            .tombstone_lock
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// The tombstones written on `day` (UTC), oldest first, with their chain checked.
    pub fn tombstones_on(&self, day: NaiveDate) -> Result<TombstoneDay, StoreError> {
        let prefix = day_number_of(day).to_be_bytes();
        day_chain(
            day,
            self.inner
                .tombstones
                .scan_prefix(prefix)
                .map(|r| r.map_err(StoreError::from)),
        )
    }

    /// Checks every day's chain of tombstones: how many tombstones, and the days whose chain
    /// breaks (named `tombstones of <day>`), with where.
    pub fn verify_tombstones(&self) -> Result<(u64, Vec<(String, String)>), StoreError> {
        verify_chains(
            self.inner
                .tombstones
                .iter()
                .map(|r| r.map_err(StoreError::from)),
        )
    }

    /// How many tombstones are kept.
    pub fn tombstones_len(&self) -> usize {
        self.inner.tombstones.len()
    }
}

#[cfg(test)]
impl SledStore {
    /// Removes the `n`th tombstone (from 0), as a tamperer would.
    pub(crate) fn remove_tombstone_for_test(&self, n: usize) {
        let _w = self.writing();
        let k = self.inner.tombstones.iter().keys().nth(n).unwrap().unwrap();
        self.inner.tombstones.remove(k).unwrap();
    }
}
