//! The audit log: what was done through the API that is not about one message (templates,
//! opt-outs, reloads, USSD codes, the admin page's logins), and by which API key.
//!
//! One entry per action in the `audit` tree, keyed by its ULID (which sorts by time). Entries
//! form a hash chain like a message's history: each carries `prev_hash`, the `hash` of the
//! entry before it, and its own `hash`, the SHA-256 of its JSON without `hash`. The one-byte key
//! [`HEAD`] keeps the last entry's hash and the count, so an entry changed, removed, inserted
//! or reordered after the fact, or a log cut short, shows ([`Store::verify_audit`]).

use std::ops::Bound;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sled::transaction::ConflictableTransactionError;

use super::{SledStore, StoreError, abort, decode, encode, id_key, id_string, sha256_hex};

/// The key of the chain's head: shorter than any entry's (16 bytes), so never taken for one.
pub(crate) const HEAD: [u8; 1] = [0];

/// One admin action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditEntry {
    /// ULID: sorts by time.
    pub id: String,
    /// When.
    pub at: DateTime<Utc>,
    /// The name of the API key that did it (never its token).
    pub actor: String,
    /// What was done: `template.put`, `template.delete`, `optout.add`, `optout.remove`,
    /// `reload`, `ussd`, `dashboard.login`, `dashboard.logout`, `backup`.
    pub action: String,
    /// What it was done to: a template's name, a number, a modem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The facts (the USSD code and answer, what a reload changed…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
    /// The `hash` of the entry before; `None` on the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev_hash: Option<String>,
    /// SHA-256 (hex) of this entry's JSON without `hash`.
    pub hash: String,
}

/// An entry as hashed: every field but `hash`, in the same order.
#[derive(Serialize)]
struct Hashed<'a> {
    id: &'a str,
    at: &'a DateTime<Utc>,
    actor: &'a str,
    action: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    target: &'a Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: &'a Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    prev_hash: &'a Option<String>,
}

impl AuditEntry {
    /// The hash this entry's fields give.
    pub(crate) fn computed_hash(&self) -> Result<String, StoreError> {
        Ok(sha256_hex(&encode(&Hashed {
            id: &self.id,
            at: &self.at,
            actor: &self.actor,
            action: &self.action,
            target: &self.target,
            details: &self.details,
            prev_hash: &self.prev_hash,
        })?))
    }
}

/// The last entry of the chain and how many there are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Head {
    pub(crate) id: String,
    pub(crate) hash: String,
    pub(crate) count: u64,
}

impl NewAudit<'_> {
    /// The entry this action makes after `head` (the chain's last entry, if any), and the
    /// head after it. The id is from the action's time, after the last one even when the
    /// clock says otherwise: the id order is the chain's order.
    pub(crate) fn chained(&self, head: Option<&Head>) -> Result<(AuditEntry, Head), StoreError> {
        let mut id = ulid::Ulid::from_datetime(self.at.into());
        if let Some(last) = head.and_then(|h| ulid::Ulid::from_string(&h.id).ok())
            && id <= last
        {
            id = last
                .increment()
                .map_err(|_| StoreError::Conflict("the audit log's ids are spent".into()))?;
        }
        let mut e = AuditEntry {
            id: id.to_string(),
            at: self.at,
            actor: self.actor.to_string(),
            action: self.action.to_string(),
            target: self.target.map(str::to_string),
            details: self.details.clone(),
            prev_hash: head.map(|h| h.hash.clone()),
            hash: String::new(),
        };
        e.hash = e.computed_hash()?;
        let next = Head {
            id: e.id.clone(),
            hash: e.hash.clone(),
            count: head.map_or(0, |h| h.count) + 1,
        };
        Ok((e, next))
    }
}

/// The audit log's chain checked entry by entry, oldest first, whichever store holds it.
#[derive(Default)]
pub(crate) struct AuditChain {
    entries: u64,
    problem: Option<String>,
    prev: Option<String>,
}

impl AuditChain {
    /// The next entry, stored under `id`, as it decoded (or why it did not).
    pub(crate) fn entry(
        &mut self,
        id: &str,
        decoded: Result<AuditEntry, StoreError>,
    ) -> Result<(), StoreError> {
        self.entries += 1;
        if self.problem.is_some() {
            return Ok(());
        }
        let e = match decoded {
            Ok(e) => e,
            Err(e) => {
                self.problem = Some(format!("entry {id} does not decode: {e}"));
                return Ok(());
            }
        };
        if e.id != id {
            self.problem = Some(format!("entry {id} says it is {}: moved", e.id));
        } else if e.computed_hash()? != e.hash {
            self.problem = Some(format!("entry {id} was changed after the fact"));
        } else if e.prev_hash != self.prev {
            self.problem = Some(format!(
                "entry {id} does not link to the entry before it: one was removed or inserted"
            ));
        }
        self.prev = Some(e.hash);
        Ok(())
    }

    /// Whether the head still needs reading: the entries showed no problem.
    pub(crate) fn wants_head(&self) -> bool {
        self.problem.is_none()
    }

    /// The verdict, with the chain's `head` (when [`AuditChain::wants_head`] asked for it):
    /// it must count the entries read and end at the last one.
    pub(crate) fn verdict(mut self, head: Option<Head>) -> AuditVerify {
        if self.problem.is_none() {
            match head {
                None if self.entries > 0 => {
                    self.problem = Some("the log's head is missing".into());
                }
                Some(h) if h.count != self.entries || Some(&h.hash) != self.prev.as_ref() => {
                    self.problem = Some(format!(
                        "the head says {} entries ending at {}, the log has {}: entries were removed or added at its end",
                        h.count, h.id, self.entries
                    ));
                }
                _ => {}
            }
        }
        AuditVerify {
            entries: self.entries,
            verified: self.problem.is_none(),
            problem: self.problem,
        }
    }
}

/// An action to record.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAudit<'a> {
    /// The API key's name.
    pub actor: &'a str,
    /// What was done (see [`AuditEntry::action`]).
    pub action: &'a str,
    /// What it was done to.
    pub target: Option<&'a str>,
    /// The facts.
    pub details: Option<serde_json::Value>,
    /// When.
    pub at: DateTime<Utc>,
}

/// What [`Store::verify_audit`] found.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AuditVerify {
    /// Entries checked.
    pub entries: u64,
    /// Whether every entry is as it was written, links to the one before, and the last is
    /// the head's.
    pub verified: bool,
    /// Where the chain breaks, when it does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// Which entries [`Store::audit_entries`] lists.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditFilter<'a> {
    /// Only this API key's.
    pub actor: Option<&'a str>,
    /// Only those at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only those after this entry (the previous page's last).
    pub after: Option<&'a str>,
}

impl SledStore {
    /// Appends an action to the audit log, chained to the entry before. Durable after
    /// [`Store::durable`].
    pub fn append_audit(&self, a: &NewAudit<'_>) -> Result<AuditEntry, StoreError> {
        let _w = self.writing();
        let entry = self.inner.audit.transaction(|t| {
            let head: Option<Head> = match t.get(HEAD)? {
                Some(v) => Some(decode(&HEAD, &v).map_err(abort)?),
                None => None,
            };
            let (e, new_head) = a.chained(head.as_ref()).map_err(abort)?;
            let key = id_key(&e.id).ok_or_else(|| {
                abort(StoreError::Conflict(format!(
                    "audit id {} is no ULID",
                    e.id
                )))
            })?;
            t.insert(&key[..], encode(&e).map_err(abort)?)?;
            t.insert(&HEAD[..], encode(&new_head).map_err(abort)?)?;
            Ok::<_, ConflictableTransactionError<StoreError>>(e)
        })?;
        Ok(entry)
    }

    /// Audit entries, oldest first, at most `limit`.
    pub fn audit_entries(
        &self,
        filter: &AuditFilter<'_>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        // An entry's id is never before its time, so the ids from `since` on hold every entry
        // from `since` on (and perhaps a few earlier ones, filtered out below).
        let from = filter
            .since
            .map(|t| ulid::Ulid::from_parts(t.timestamp_millis().max(0) as u64, 0).to_bytes());
        let after = filter.after.and_then(id_key);
        let start = match (from, after) {
            (Some(f), Some(a)) if f > a => Bound::Included(f.to_vec()),
            (_, Some(a)) => Bound::Excluded(a.to_vec()),
            (Some(f), None) => Bound::Included(f.to_vec()),
            (None, None) => Bound::Unbounded,
        };
        let mut out = Vec::new();
        for r in self.inner.audit.range((start, Bound::Unbounded)) {
            if out.len() >= limit {
                break;
            }
            let (k, v) = r?;
            if k.len() != 16 {
                continue;
            }
            let e: AuditEntry = decode(&k, &v)?;
            if filter.actor.is_some_and(|a| a != e.actor) || filter.since.is_some_and(|s| e.at < s)
            {
                continue;
            }
            out.push(e);
        }
        Ok(out)
    }

    /// Checks the audit log's chain.
    pub fn verify_audit(&self) -> Result<AuditVerify, StoreError> {
        let mut chain = AuditChain::default();
        for r in self.inner.audit.iter() {
            let (k, v) = r?;
            if k.len() != 16 {
                continue;
            }
            chain.entry(&id_string(&k), decode(&k, &v))?;
        }
        let head: Option<Head> = match self.inner.audit.get(HEAD)? {
            Some(v) if chain.wants_head() => Some(decode(&HEAD, &v)?),
            _ => None,
        };
        Ok(chain.verdict(head))
    }
}
