//! The webhook outbox: deliveries waiting, being retried, or given up.
//!
//! Every delivery (one event to one URL) is one entry in the `outbox` tree under its sequence
//! number (8 bytes, big-endian), taken from sled's id generator, which stays monotonic across
//! restarts and crashes. Entries are attempted oldest first, and entries to the same URL that
//! share a non-empty ordering key (a message id) one at a time, in sequence order: an entry
//! waits while an earlier pending entry with the same URL and key exists (one receiver that
//! fails does not hold back another's events). Dead entries stay until retried and block
//! nothing.

use std::collections::HashSet;

use sled::Transactional;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{SledStore, StoreError, SweepStep, Tx, abort, encode, remove_containing, sweep_step};

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OutboxState {
    /// Waiting for its next attempt (or being attempted).
    Pending,
    /// Given up after its maximum age; waits for a retry on demand.
    Dead,
}

/// One webhook delivery: one event to one URL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OutboxEntry {
    /// Position in the outbox: deliveries with the same ordering key go in this order.
    pub seq: u64,
    /// The `webhook-id` header and the body's `id`, the same on every attempt (`evt_<ULID>`).
    pub id: String,
    /// Where the event is POSTed.
    pub url: String,
    /// The event type, e.g. `message.delivered`.
    pub event_type: String,
    /// The exact JSON body sent.
    pub body: String,
    /// Deliveries to one URL with the same non-empty key go one at a time, in order (the
    /// message id).
    pub ordering_key: String,
    /// When the event happened.
    pub created_at: DateTime<Utc>,
    /// Attempts made so far.
    pub attempts: u32,
    /// When the next attempt is due (pending entries).
    pub next_attempt_at: DateTime<Utc>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// The HTTP status of the last failed attempt, when there was an answer.
    pub last_status: Option<u16>,
    /// Pending or dead.
    pub state: OutboxState,
}

/// A delivery to add with [`Store::enqueue_webhooks`].
#[derive(Debug, Clone, PartialEq)]
pub struct NewWebhook {
    /// The `webhook-id`, unique per delivery.
    pub id: String,
    /// Where to POST.
    pub url: String,
    /// The event type.
    pub event_type: String,
    /// The exact JSON body to send.
    pub body: String,
    /// The ordering key (a message id), or empty for none.
    pub ordering_key: String,
    /// When the event happened; the delivery is due at once.
    pub created_at: DateTime<Utc>,
}

/// What [`Store::due_webhooks`] found.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DueWebhooks {
    /// Entries to attempt now, oldest first.
    pub entries: Vec<OutboxEntry>,
    /// When to look again: the earliest attempt time of an entry not returned that is not
    /// waiting behind another; `now` when more entries were due than the limit allowed.
    pub next_at: Option<DateTime<Utc>>,
}

/// Whether `e` is the first pending entry of its (URL, ordering key) seen so far in a scan;
/// entries without a key always are.
fn first_of_key(held: &mut HashSet<(String, String)>, e: &OutboxEntry) -> bool {
    e.ordering_key.is_empty() || held.insert((e.url.clone(), e.ordering_key.clone()))
}

/// The entry for a new delivery, due at once.
pub(crate) fn new_entry(seq: u64, n: &NewWebhook) -> OutboxEntry {
    OutboxEntry {
        seq,
        id: n.id.clone(),
        url: n.url.clone(),
        event_type: n.event_type.clone(),
        body: n.body.clone(),
        ordering_key: n.ordering_key.clone(),
        created_at: n.created_at,
        attempts: 0,
        next_attempt_at: n.created_at,
        last_error: None,
        last_status: None,
        state: OutboxState::Pending,
    }
}

fn seq_of(key: &[u8]) -> Option<u64> {
    <[u8; 8]>::try_from(key).ok().map(u64::from_be_bytes)
}

pub(super) fn decode_entry(seq: u64, v: &[u8]) -> Result<OutboxEntry, StoreError> {
    let mut e: OutboxEntry = serde_json::from_slice(v).map_err(|e| StoreError::Corrupt {
        key: format!("outbox/{seq}"),
        detail: e.to_string(),
    })?;
    e.seq = seq;
    Ok(e)
}

impl SledStore {
    /// Adds deliveries to the outbox (all or none), due at once, and returns them with their
    /// sequence numbers; call [`Store::durable`] before relying on them.
    pub fn enqueue_webhooks(&self, new: &[NewWebhook]) -> Result<Vec<OutboxEntry>, StoreError> {
        let _w = self.writing();
        // A transaction, like every other write to the outbox: sled runs transactions one at
        // a time, so sequence numbers are taken and written in the same order, and a scan
        // never sees a later entry of a key without the earlier one.
        let out = (&self.inner.outbox,).transaction(|(t,)| {
            let mut out = Vec::with_capacity(new.len());
            for n in new {
                let e = new_entry(t.generate_id()?, n);
                t.insert(&e.seq.to_be_bytes(), encode(&e).map_err(abort)?)?;
                out.push(e);
            }
            Ok::<_, Tx>(out)
        })?;
        Ok(out)
    }

    /// Every readable entry in sequence order, from `start`; unreadable ones are logged and
    /// skipped so that one bad record cannot stop every delivery.
    fn outbox_entries(
        &self,
        start: u64,
    ) -> impl Iterator<Item = Result<OutboxEntry, StoreError>> + '_ {
        self.inner
            .outbox
            .range(start.to_be_bytes()..)
            .filter_map(|r| match r {
                Err(e) => Some(Err(StoreError::from(e))),
                Ok((k, v)) => {
                    let seq = seq_of(&k)?;
                    match decode_entry(seq, &v) {
                        Ok(e) => Some(Ok(e)),
                        Err(e) => {
                            tracing::warn!(error = %e, "skipping an unreadable webhook delivery");
                            None
                        }
                    }
                }
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
        let mut held = HashSet::new();
        let mut out = DueWebhooks::default();
        for e in self.outbox_entries(0) {
            let e = e?;
            if e.state != OutboxState::Pending || !first_of_key(&mut held, &e) {
                continue;
            }
            if busy(e.seq) {
                continue;
            }
            if e.next_attempt_at <= now {
                if out.entries.len() >= limit {
                    out.next_at = Some(now);
                    break;
                }
                out.entries.push(e);
            } else {
                out.next_at = Some(
                    out.next_at
                        .map_or(e.next_attempt_at, |t| t.min(e.next_attempt_at)),
                );
            }
        }
        Ok(out)
    }

    /// The earliest next attempt time among pending entries not waiting behind another one.
    pub fn next_webhook_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let mut held = HashSet::new();
        let mut next: Option<DateTime<Utc>> = None;
        for e in self.outbox_entries(0) {
            let e = e?;
            if e.state == OutboxState::Pending && first_of_key(&mut held, &e) {
                next = Some(next.map_or(e.next_attempt_at, |t| t.min(e.next_attempt_at)));
            }
        }
        Ok(next)
    }

    /// How many deliveries are pending (waiting for an attempt or a retry) and how many dead.
    pub fn outbox_counts(&self) -> Result<(usize, usize), StoreError> {
        /// Only the state: the body is skipped, not copied.
        #[derive(Deserialize)]
        struct StateOnly {
            state: OutboxState,
        }
        let (mut pending, mut dead) = (0, 0);
        for r in self.inner.outbox.iter() {
            let (_, v) = r?;
            match serde_json::from_slice::<StateOnly>(&v).map(|e| e.state) {
                Ok(OutboxState::Pending) => pending += 1,
                Ok(OutboxState::Dead) => dead += 1,
                Err(_) => {}
            }
        }
        Ok((pending, dead))
    }

    /// Removes a delivered entry; returns whether it was there.
    pub fn webhook_delivered(&self, seq: u64) -> Result<bool, StoreError> {
        let _w = self.writing();
        Ok(self.inner.outbox.remove(seq.to_be_bytes())?.is_some())
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
        self.update_webhook(seq, |e| {
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
        self.outbox_page(limit, after, |e| e.state == OutboxState::Dead)
    }

    /// Pending entries that have failed at least once (the receiver answered an error or could
    /// not be reached) and wait for their next attempt, in sequence order after sequence
    /// `after`, at most `limit` (1 to 1000): deliveries failing but not yet given up.
    pub fn retrying_webhooks(
        &self,
        limit: usize,
        after: Option<u64>,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        self.outbox_page(limit, after, |e| {
            e.state == OutboxState::Pending && e.attempts > 0
        })
    }

    /// The entries `keep` accepts, in sequence order after sequence `after`, at most `limit`
    /// (1 to 1000).
    fn outbox_page(
        &self,
        limit: usize,
        after: Option<u64>,
        keep: impl Fn(&OutboxEntry) -> bool,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let limit = limit.clamp(1, 1000);
        let start = match after {
            Some(a) => match a.checked_add(1) {
                Some(s) => s,
                None => return Ok(Vec::new()),
            },
            None => 0,
        };
        let mut out = Vec::new();
        for e in self.outbox_entries(start) {
            let e = e?;
            if keep(&e) {
                out.push(e);
                if out.len() == limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// The entry with this `webhook-id`, pending or dead (delivered entries are gone).
    pub fn webhook(&self, id: &str) -> Result<Option<OutboxEntry>, StoreError> {
        for e in self.outbox_entries(0) {
            let e = e?;
            if e.id == id {
                return Ok(Some(e));
            }
        }
        Ok(None)
    }

    /// Makes the entry with this `webhook-id` pending and due now, keeping its attempts;
    /// returns it after, or `None` when there is no such entry.
    pub fn retry_webhook(
        &self,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<OutboxEntry>, StoreError> {
        let Some(e) = self.webhook(id)? else {
            return Ok(None);
        };
        self.update_webhook(e.seq, |e| {
            e.state = OutboxState::Pending;
            e.next_attempt_at = now;
        })
    }

    /// One step of `[retention] dead_webhooks_after`: dead deliveries whose event was made at
    /// or before `cutoff` are removed; at most `limit` entries looked at, from `after`.
    pub fn purge_dead_webhooks(
        &self,
        cutoff: DateTime<Utc>,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<SweepStep, StoreError> {
        let _w = self.writing();
        sweep_step(&self.inner.outbox, after, limit, |k, v| {
            let seq = <[u8; 8]>::try_from(k).map_or(0, u64::from_be_bytes);
            let e = decode_entry(seq, v)?;
            Ok(e.state == OutboxState::Dead && e.created_at <= cutoff)
        })
    }

    /// Removes the deliveries, pending or dead, whose body names `number` (an erasure): the
    /// event of an erased message is not sent on after it. How many.
    pub(super) fn erase_webhooks_of(&self, number: &str) -> Result<usize, StoreError> {
        let _w = self.writing();
        remove_containing(&self.inner.outbox, number.as_bytes())
    }

    /// Changes one entry in place, atomically; `None` when it is gone.
    fn update_webhook<F>(&self, seq: u64, f: F) -> Result<Option<OutboxEntry>, StoreError>
    where
        F: Fn(&mut OutboxEntry),
    {
        let _w = self.writing();
        let key = seq.to_be_bytes();
        let r = self.inner.outbox.transaction(|t| {
            let Some(v) = t.get(key)? else {
                return Ok(None);
            };
            let mut e = decode_entry(seq, &v).map_err(abort)?;
            f(&mut e);
            t.insert(&key[..], encode(&e).map_err(abort)?)?;
            Ok::<_, Tx>(Some(e))
        })?;
        Ok(r)
    }
}
