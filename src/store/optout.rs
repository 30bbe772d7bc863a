//! Opted-out numbers: one entry per number in the `optouts` tree while it is opted out.
//!
//! An erasure (`POST /v1/erasure`) must not undo a STOP: the number's entry then moves to
//! `optouts_erased`, keyed by SHA-256 of the store's salt and the number, so a message to that
//! number is still refused while the number itself is no longer kept. The salt is 32 random
//! bytes made at the store's first open and kept in its `meta` tree (so a backup carries it):
//! without it, the hash of a phone number would be reversed by trying every number.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{SledStore, StoreError, decode, encode};

/// The `meta` key of the salt.
const SALT_KEY: &[u8] = b"optout_salt";

/// The store's salt, made and kept at the first open.
pub(super) fn salt(meta: &sled::Tree) -> Result<[u8; 32], StoreError> {
    if let Some(v) = meta.get(SALT_KEY)?
        && let Ok(s) = <[u8; 32]>::try_from(&v[..])
    {
        return Ok(s);
    }
    let fresh = crate::util::secret_bytes(32)
        .map_err(|e| StoreError::Io(format!("no random bytes for the opt-out salt: {e}")))?;
    // Another opener that won the race keeps its salt.
    let _ = meta.compare_and_swap(SALT_KEY, None as Option<&[u8]>, Some(fresh))?;
    match meta.get(SALT_KEY)? {
        Some(v) => <[u8; 32]>::try_from(&v[..]).map_err(|_| StoreError::Corrupt {
            key: "optout_salt".into(),
            detail: "not 32 bytes".into(),
        }),
        None => Err(StoreError::Io("the opt-out salt was not kept".into())),
    }
}

/// What is kept of an opt-out whose number was erased: enough to keep refusing the number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErasedOptOut {
    /// Since when the number was opted out.
    pub opted_out_at: DateTime<Utc>,
    /// `keyword` or `api`, as it was.
    pub source: String,
    /// The keyword as received, for `keyword` (a word, not the number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyword: Option<String>,
    /// When the number was erased.
    pub erased_at: DateTime<Utc>,
}

impl ErasedOptOut {
    /// The opt-out as the API shows it, for the number asked about (the store no longer
    /// keeps the number itself).
    fn as_optout(&self, number: &str) -> OptOut {
        OptOut {
            number: number.to_string(),
            opted_out_at: self.opted_out_at,
            source: self.source.clone(),
            keyword: self.keyword.clone(),
            inbound_id: None,
            note: Some(format!(
                "kept after the number was erased on {}",
                self.erased_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            )),
        }
    }
}

/// A number that asked for no more messages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OptOut {
    /// E.164.
    pub number: String,
    /// Since when.
    pub opted_out_at: DateTime<Utc>,
    /// `keyword` (the customer texted STOP or another stop word) or `api`.
    pub source: String,
    /// The keyword as received, for `keyword`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyword: Option<String>,
    /// The inbound message that asked, for `keyword`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inbound_id: Option<String>,
    /// The caller's note, for `api`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl SledStore {
    /// Records an opt-out; `false` when the number was already opted out (the first record
    /// stays).
    pub fn opt_out(&self, o: &OptOut) -> Result<bool, StoreError> {
        let _w = self.writing();
        let v = encode(o)?;
        let r = self.inner.optouts.compare_and_swap(
            o.number.as_bytes(),
            None as Option<&[u8]>,
            Some(v),
        )?;
        Ok(r.is_ok())
    }

    /// Removes an opt-out (an erased number's too); the record removed, `None` when the
    /// number was not opted out.
    pub fn opt_in(&self, number: &str) -> Result<Option<OptOut>, StoreError> {
        let _w = self.writing();
        let hash = self.number_hash(number);
        let erased = match self.inner.optouts_erased.remove(hash)? {
            Some(v) => Some(decode::<ErasedOptOut>(&hash, &v)?.as_optout(number)),
            None => None,
        };
        match self.inner.optouts.remove(number.as_bytes())? {
            Some(v) => Ok(Some(decode(number.as_bytes(), &v)?)),
            None => Ok(erased),
        }
    }

    /// The opt-out of a number, if it is opted out; for an erased number, what is kept of it
    /// (see [`ErasedOptOut`]).
    pub fn optout(&self, number: &str) -> Result<Option<OptOut>, StoreError> {
        match self.inner.optouts.get(number.as_bytes())? {
            Some(v) => Ok(Some(decode(number.as_bytes(), &v)?)),
            None => Ok(self.erased_optout(number)?.map(|e| e.as_optout(number))),
        }
    }

    /// Whether a number is opted out: two point lookups, the number and (for an erased number)
    /// its salted hash.
    pub fn is_opted_out(&self, number: &str) -> Result<bool, StoreError> {
        Ok(self.inner.optouts.contains_key(number.as_bytes())?
            || self
                .inner
                .optouts_erased
                .contains_key(self.number_hash(number))?)
    }

    /// What is kept of an erased number's opt-out, if `number` is one.
    pub fn erased_optout(&self, number: &str) -> Result<Option<ErasedOptOut>, StoreError> {
        let key = self.number_hash(number);
        match self.inner.optouts_erased.get(key)? {
            Some(v) => Ok(Some(decode(&key, &v)?)),
            None => Ok(None),
        }
    }

    /// SHA-256 of the store's salt · the number: the key of `optouts_erased`.
    fn number_hash(&self, number: &str) -> [u8; 32] {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(self.inner.optout_salt);
        h.update(number.as_bytes());
        h.finalize().into()
    }

    /// Erases a number's opt-out: the entry under the number goes, one under its salted hash
    /// stays, so the number is still refused. `true` when the number was opted out.
    pub fn erase_optout(&self, number: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let _w = self.writing();
        let Some(v) = self.inner.optouts.get(number.as_bytes())? else {
            return Ok(false);
        };
        let o: OptOut = decode(number.as_bytes(), &v)?;
        let kept = encode(&ErasedOptOut {
            opted_out_at: o.opted_out_at,
            source: o.source,
            keyword: o.keyword,
            erased_at: now,
        })?;
        let hash = self.number_hash(number);
        use sled::Transactional;
        (&self.inner.optouts, &self.inner.optouts_erased).transaction(|(t, te)| {
            te.insert(&hash[..], kept.as_slice())?;
            t.remove(number.as_bytes())?;
            Ok::<_, sled::transaction::ConflictableTransactionError<StoreError>>(())
        })?;
        Ok(true)
    }

    /// Opted-out numbers in number order, after `after`, at most `limit` (1 to 1000).
    pub fn list_optouts(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<OptOut>, StoreError> {
        let limit = limit.clamp(1, 1000);
        let mut out = Vec::new();
        let iter = match after {
            Some(a) => {
                let mut start = a.as_bytes().to_vec();
                start.push(0);
                self.inner.optouts.range(start..)
            }
            None => self.inner.optouts.iter(),
        };
        for r in iter {
            let (k, v) = r?;
            out.push(decode(&k, &v)?);
            if out.len() == limit {
                break;
            }
        }
        Ok(out)
    }

    /// Number of opted-out numbers.
    pub fn optouts_len(&self) -> usize {
        self.inner.optouts.len()
    }
}
