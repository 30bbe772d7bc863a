//! Idempotency records: what a retried POST with the same `Idempotency-Key` gets back.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Row, SledStore, StoreError, SweepStep, decode, encode, remove_containing, sweep_step};

/// What a retried POST with the same Idempotency-Key gets back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    /// SHA-256 of the first request's body: another body with the same key is a conflict.
    pub fingerprint: String,
    /// The first answer's status code.
    pub status: u16,
    /// The first answer's body.
    pub body: serde_json::Value,
    /// When it was stored.
    pub at: DateTime<Utc>,
}

impl SledStore {
    /// The idempotency record for a key.
    pub fn idempotency(&self, key: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        self.idempotency_record(key)
    }

    /// Replaces the answer kept for an Idempotency-Key (call [`Store::durable`] after).
    pub fn put_idempotency(&self, key: &str, r: &IdempotencyRecord) -> Result<(), StoreError> {
        let _w = self.writing();
        self.inner.idempotency.insert(key.as_bytes(), encode(r)?)?;
        Ok(())
    }

    /// One step of `[retention] idempotency_after`: records stored at or before `cutoff` are
    /// removed (a retry after that is a new request); at most `limit` looked at, from `after`.
    pub fn purge_idempotency(
        &self,
        cutoff: DateTime<Utc>,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<SweepStep, StoreError> {
        let _w = self.writing();
        sweep_step(&self.inner.idempotency, after, limit, |k, v| {
            Ok(decode::<IdempotencyRecord>(k, v)?.at <= cutoff)
        })
    }

    /// Removes the idempotency records whose kept answer names `number` (an erasure); how
    /// many. The answers are small and kept a day by default: they are read whole.
    pub(super) fn erase_idempotency_of(&self, number: &str) -> Result<usize, StoreError> {
        let _w = self.writing();
        remove_containing(&self.inner.idempotency, number.as_bytes())
    }

    pub(super) fn idempotency_record(
        &self,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        match self.inner.idempotency.get(key.as_bytes())? {
            Some(v) => Ok(Some(decode(key.as_bytes(), &v)?)),
            None => Ok(None),
        }
    }
}

/// Whether `hay` holds `needle`.
pub(super) fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// An Idempotency-Key's record as a (key, JSON) row.
pub(super) fn idempotency_row(
    idempotency: Option<(&str, &IdempotencyRecord)>,
) -> Result<Option<Row<Vec<u8>>>, StoreError> {
    idempotency
        .map(|(k, r)| Ok((k.as_bytes().to_vec(), encode(r)?)))
        .transpose()
}

/// An answer kept for an Idempotency-Key, now, for tests.
#[cfg(test)]
pub(crate) fn test_record(body: serde_json::Value) -> IdempotencyRecord {
    IdempotencyRecord {
        fingerprint: "f".into(),
        status: 201,
        body,
        at: Utc::now(),
    }
}
