//! Reading messages in order: the dispatch order of waiting messages ([`Store::next_due`]),
//! listings by status, recipient and invoice, and the counts by status.

use std::sync::atomic::Ordering;

use chrono::{DateTime, Utc};

use super::{
    INVOICES_BUILT, Message, SledStore, Status, StoreError, decode_message, id_key, id_string,
    invoice_key,
};

/// Filter for [`Store::list`].
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Only this status.
    pub status: Option<Status>,
    /// Only to this number.
    pub to: Option<String>,
    /// Only created at or after.
    pub since: Option<DateTime<Utc>>,
    /// Start after this id (the previous page's cursor).
    pub after: Option<String>,
    /// Page size.
    pub limit: usize,
}

/// What [`Store::next_due`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextDue {
    /// This message is due now.
    Ready(String),
    /// Nothing is due before this time.
    At(DateTime<Utc>),
    /// The queue is empty.
    Empty,
}

impl SledStore {
    /// Makes the `invoices` index again from the messages ([`INVOICES_BUILT`] marks it built).
    pub(crate) fn rebuild_invoice_index(&self) -> Result<(), StoreError> {
        let _w = self.writing();
        let i = &self.inner;
        i.invoices.clear()?;
        for r in i.messages.iter() {
            let (k, v) = r?;
            let Ok(id) = <[u8; 16]>::try_from(&k[..]) else {
                continue;
            };
            if let Ok(m) = decode_message(&id, &v)
                && let Some(key) = invoice_key(&m, &id)
            {
                i.invoices.insert(key, &[])?;
            }
        }
        i.invoices.insert(INVOICES_BUILT, &[])?;
        Ok(())
    }

    /// Messages whose `metadata.invoice` is `invoice`, newest first, at most `limit`.
    pub fn messages_about(&self, invoice: &str, limit: usize) -> Result<Vec<Message>, StoreError> {
        let mut prefix = invoice.as_bytes().to_vec();
        prefix.push(0xFF);
        let n = prefix.len();
        let mut out = Vec::new();
        for r in self.inner.invoices.scan_prefix(prefix).rev() {
            let (k, _) = r?;
            let Some(id) = k.get(n..n + 16) else { continue };
            if let Some(v) = self.inner.messages.get(id)? {
                out.push(decode_message(id, &v)?);
                if out.len() == limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// The first waiting message due at or before `now`, by priority then due time. Also returns
    /// the earliest due time of all waiting messages when nothing is due yet.
    pub fn next_due(&self, now: DateTime<Utc>) -> Result<NextDue, StoreError> {
        self.next_due_where(now, usize::MAX, None)
    }

    /// Like [`Store::next_due`], but only a message `accept` takes (a modem's routing, a
    /// recipient's sticky modem): due messages it refuses are passed over, at most `max_scan`
    /// of them, and do not count as due for the answer `At` (the earliest *future* due time).
    pub fn next_due_matching(
        &self,
        now: DateTime<Utc>,
        max_scan: usize,
        accept: &mut dyn FnMut(&Message) -> bool,
    ) -> Result<NextDue, StoreError> {
        self.next_due_where(now, max_scan, Some(accept))
    }

    pub(super) fn next_due_where(
        &self,
        now: DateTime<Utc>,
        max_scan: usize,
        mut accept: Option<&mut dyn FnMut(&Message) -> bool>,
    ) -> Result<NextDue, StoreError> {
        let now_ms = now.timestamp_millis().max(0) as u64;
        let mut earliest: Option<u64> = None;
        let mut scanned = 0usize;
        for prio in 0u8..3 {
            for entry in self.inner.due.scan_prefix([prio]) {
                let (k, v) = entry?;
                if k.len() != 25 {
                    continue;
                }
                let mut ms = [0u8; 8];
                ms.copy_from_slice(&k[1..9]);
                let due = u64::from_be_bytes(ms);
                if due > now_ms {
                    earliest = Some(earliest.map_or(due, |e| e.min(due)));
                    break;
                }
                if scanned >= max_scan {
                    break;
                }
                let found = match accept.as_mut() {
                    None => self.inner.messages.contains_key(&k[9..25])?,
                    Some(f) => match self.inner.messages.get(&k[9..25])? {
                        Some(rec) => {
                            scanned += 1;
                            let mut key = [0u8; 16];
                            key.copy_from_slice(&k[9..25]);
                            let m = decode_message(&key, &rec)?;
                            if !f(&m) {
                                continue;
                            }
                            true
                        }
                        None => false,
                    },
                };
                if found {
                    return Ok(NextDue::Ready(id_string(&k[9..])));
                }
                // No record: an insert is writing it right now, or one was cut short by a
                // crash (its index entries landed, its record did not, nothing was
                // acknowledged). The id's ULID time tells which.
                let mut created = [0u8; 8];
                created[2..].copy_from_slice(&k[9..15]);
                if u64::from_be_bytes(created) + 60_000 < now_ms && {
                    let _w = self.writing();
                    self.inner.due.remove(&k)?.is_some()
                } {
                    tracing::warn!(id = %id_string(&k[9..]), "removed the queue entry of a message that was never stored");
                    if let Some(s) = v.first().and_then(|c| Status::ALL.get(usize::from(*c))) {
                        self.count(*s, -1);
                    }
                }
            }
        }
        Ok(match earliest {
            Some(ms) => {
                NextDue::At(DateTime::<Utc>::from_timestamp_millis(ms as i64).unwrap_or(now))
            }
            None => NextDue::Empty,
        })
    }

    /// Messages newest first, filtered, one page.
    pub fn list(&self, filter: &ListFilter) -> Result<Vec<Message>, StoreError> {
        let limit = filter.limit.clamp(1, 1000);
        let after = filter.after.as_deref().and_then(id_key);
        let mut out = Vec::new();
        let since_key = filter.since.map(|t| {
            ulid::Ulid::from_parts(t.timestamp_millis().max(0) as u64, 0)
                .0
                .to_be_bytes()
        });
        let accept = |m: &Message| {
            filter.status.is_none_or(|s| m.status == s)
                && filter.to.as_deref().is_none_or(|t| m.to == t)
        };
        // Pick the narrowest index, then walk ids newest first.
        let ids: Box<dyn Iterator<Item = Result<[u8; 16], StoreError>>> = if let Some(s) = filter
            .status
            .filter(|s| s.is_waiting() && filter.to.is_none())
        {
            // Waiting messages are indexed by due time: collect the ids, newest first.
            let mut ids = Vec::new();
            for r in self.inner.due.iter() {
                let (k, v) = r?;
                if k.len() == 25 && v.first() == Some(&s.code()) {
                    let mut id = [0u8; 16];
                    id.copy_from_slice(&k[9..25]);
                    ids.push(id);
                }
            }
            ids.sort_unstable_by(|a, b| b.cmp(a));
            Box::new(ids.into_iter().map(Ok))
        } else if let Some(to) = &filter.to {
            let mut prefix = to.as_bytes().to_vec();
            prefix.push(0xFF);
            let n = prefix.len();
            Box::new(self.inner.to.scan_prefix(prefix).rev().map(move |r| {
                let (k, _) = r?;
                let mut id = [0u8; 16];
                id.copy_from_slice(&k[n..n + 16]);
                Ok(id)
            }))
        } else if let Some(s) = filter.status {
            Box::new(self.inner.status.scan_prefix([s.code()]).rev().map(|r| {
                let (k, _) = r?;
                let mut id = [0u8; 16];
                id.copy_from_slice(&k[1..17]);
                Ok(id)
            }))
        } else {
            Box::new(self.inner.messages.iter().keys().rev().map(|r| {
                let k = r?;
                let mut id = [0u8; 16];
                id.copy_from_slice(&k[..16]);
                Ok(id)
            }))
        };
        for id in ids {
            let id = id?;
            if after.is_some_and(|a| id >= a) {
                continue;
            }
            if since_key.is_some_and(|s| id < s) {
                break;
            }
            let Some(v) = self.inner.messages.get(id)? else {
                continue;
            };
            let m = decode_message(&id, &v)?;
            if accept(&m) {
                out.push(m);
                if out.len() == limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// How many messages are in each status (kept in memory: O(1)).
    pub fn counts(&self) -> Result<Vec<(Status, u64)>, StoreError> {
        Ok(Status::ALL
            .into_iter()
            .map(|s| (s, self.count_of(s)))
            .collect())
    }

    pub(super) fn count_of(&self, s: Status) -> u64 {
        self.inner
            .counts
            .get(usize::from(s.code()))
            .map_or(0, |c| c.load(Ordering::Relaxed).max(0) as u64)
    }

    /// Number of messages waiting in the queue.
    pub fn queue_depth(&self) -> usize {
        (self.count_of(Status::Queued) + self.count_of(Status::Scheduled)) as usize
    }

    /// The oldest due time among waiting messages.
    pub fn oldest_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let mut oldest: Option<u64> = None;
        for prio in 0u8..3 {
            if let Some(r) = self.inner.due.scan_prefix([prio]).next() {
                let (k, _) = r?;
                if k.len() == 25 {
                    let mut ms = [0u8; 8];
                    ms.copy_from_slice(&k[1..9]);
                    let v = u64::from_be_bytes(ms);
                    oldest = Some(oldest.map_or(v, |o| o.min(v)));
                }
            }
        }
        Ok(oldest.and_then(|ms| DateTime::<Utc>::from_timestamp_millis(ms as i64)))
    }

    /// Ids of messages in a status that is not waiting (for start-up recovery).
    pub fn ids_with_status(&self, s: Status) -> Result<Vec<String>, StoreError> {
        self.inner
            .status
            .scan_prefix([s.code()])
            .keys()
            .map(|k| Ok(id_string(&k?[1..])))
            .collect()
    }

    /// Number of messages stored.
    pub fn len(&self) -> usize {
        self.inner.messages.len()
    }

    /// Whether the store holds no message.
    pub fn is_empty(&self) -> bool {
        self.inner.messages.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Priority, due_key, test_message, test_record, to_key};

    fn msg(to: &str, status: Status, due: DateTime<Utc>, prio: Priority) -> Message {
        let mut m = test_message(to);
        m.status = status;
        m.accepted_as = status;
        m.due_at = due;
        m.priority = prio;
        m
    }

    #[tokio::test]
    async fn the_invoice_index_is_kept_and_built_for_an_older_store() {
        let dir = tempfile::tempdir().unwrap();
        let about = |i: &str| {
            let mut m = test_message("+12025550105");
            m.metadata = Some(serde_json::json!({ "invoice": i }));
            m
        };
        {
            let store = SledStore::open(dir.path(), 16).unwrap();
            store
                .insert(&[about("INV-1"), about("INV-2")], None)
                .unwrap();
            let rec = test_record(serde_json::json!({}));
            store.insert(&[about("INV-1")], Some(("k", &rec))).unwrap();
            store.insert(&[test_message("+12025550106")], None).unwrap();
            assert_eq!(store.messages_about("INV-1", 10).unwrap().len(), 2);
            assert_eq!(store.messages_about("INV-2", 10).unwrap().len(), 1);
            assert!(store.messages_about("INV-", 10).unwrap().is_empty());
            // As a store written before the index: none at all.
            store.inner.invoices.clear().unwrap();
            store.durable().await.unwrap();
        }
        let store = SledStore::open(dir.path(), 16).unwrap();
        assert_eq!(store.messages_about("INV-1", 10).unwrap().len(), 2);
        assert_eq!(store.messages_about("INV-2", 10).unwrap().len(), 1);
    }

    #[tokio::test]
    async fn survives_reopen_and_lists() {
        let dir = tempfile::tempdir().unwrap();
        let ids: Vec<String>;
        {
            let store = SledStore::open(dir.path(), 16).unwrap();
            let ms: Vec<Message> = (0..5)
                .map(|i| {
                    msg(
                        &format!("+1555000000{}", i % 2),
                        Status::Queued,
                        Utc::now(),
                        Priority::Normal,
                    )
                })
                .collect();
            ids = ms.iter().map(|m| m.id.clone()).collect();
            store.insert(&ms, None).unwrap();
            store.durable().await.unwrap();
        }
        let store = SledStore::open(dir.path(), 16).unwrap();
        assert_eq!(store.len(), 5);
        let all = store
            .list(&ListFilter {
                limit: 10,
                ..ListFilter::default()
            })
            .unwrap();
        assert_eq!(all.len(), 5);
        let to0 = store
            .list(&ListFilter {
                to: Some("+15550000000".into()),
                limit: 10,
                ..ListFilter::default()
            })
            .unwrap();
        assert_eq!(to0.len(), 3);
        let page1 = store
            .list(&ListFilter {
                limit: 2,
                ..ListFilter::default()
            })
            .unwrap();
        let page2 = store
            .list(&ListFilter {
                limit: 2,
                after: Some(page1[1].id.clone()),
                ..ListFilter::default()
            })
            .unwrap();
        assert_eq!(page2.len(), 2);
        assert!(page2.iter().all(|m| !page1.contains(m)));
        assert_eq!(store.queue_depth(), 5);
        assert!(ids.iter().all(|id| store.get(id).unwrap().is_some()));
        assert!(store.get("not-an-id").unwrap().is_none());
    }

    #[tokio::test]
    async fn counts_and_waiting_lists_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let now = Utc::now();
        let queued: Vec<Message> = (0..3)
            .map(|_| msg("+15550000001", Status::Queued, now, Priority::Normal))
            .collect();
        let later = now + chrono::Duration::hours(2);
        let scheduled: Vec<Message> = (0..2)
            .map(|_| msg("+15550000002", Status::Scheduled, later, Priority::Normal))
            .collect();
        {
            let store = SledStore::open(dir.path(), 16).unwrap();
            store.insert(&queued, None).unwrap();
            // One at a time too: the single-record path.
            for m in &scheduled {
                store.insert(std::slice::from_ref(m), None).unwrap();
            }
            store
                .update(&queued[0].id, |m| {
                    m.status = Status::Cancelled;
                    Some("cancelled")
                })
                .unwrap();
            store.durable().await.unwrap();
        }
        let store = SledStore::open(dir.path(), 16).unwrap();
        let counts: std::collections::HashMap<_, _> = store.counts().unwrap().into_iter().collect();
        assert_eq!(counts[&Status::Queued], 2);
        assert_eq!(counts[&Status::Scheduled], 2);
        assert_eq!(counts[&Status::Cancelled], 1);
        assert_eq!(store.queue_depth(), 4);
        let by = |status| {
            store
                .list(&ListFilter {
                    status: Some(status),
                    limit: 10,
                    ..ListFilter::default()
                })
                .unwrap()
                .into_iter()
                .map(|m| m.id)
                .collect::<Vec<_>>()
        };
        // Newest (highest id) first, from the due index for waiting statuses.
        let desc = |ms: &[Message]| {
            let mut ids: Vec<String> = ms.iter().map(|m| m.id.clone()).collect();
            ids.sort_unstable_by(|a, b| b.cmp(a));
            ids
        };
        assert_eq!(by(Status::Scheduled), desc(&scheduled));
        assert_eq!(by(Status::Queued), desc(&queued[1..]));
        assert_eq!(by(Status::Cancelled), vec![queued[0].id.clone()]);
        // The first event is implied by the record.
        let events = store.events(&queued[0].id).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(
            (events[0].seq, events[0].status, events[0].reason.as_deref()),
            (0, Status::Queued, Some("accepted"))
        );
        assert_eq!((events[1].seq, events[1].status), (1, Status::Cancelled));
        assert_eq!(
            store.events(&scheduled[0].id).unwrap()[0].status,
            Status::Scheduled
        );
    }

    #[tokio::test]
    async fn queue_entries_without_a_record_are_skipped_then_removed() {
        let dir = tempfile::tempdir().unwrap();
        let now = Utc::now();
        let real = msg("+15550000001", Status::Queued, now, Priority::Normal);
        // What an insert cut short by a crash leaves: index entries, no record. One from two
        // minutes ago, one being written right now; both ahead of the real message.
        let stale = ulid::Ulid::from_parts((now.timestamp_millis() - 120_000) as u64, 7);
        let fresh = ulid::Ulid::from_parts(now.timestamp_millis() as u64, 8);
        let ghost = |id: ulid::Ulid| {
            let mut m = msg("+15550000009", Status::Queued, now, Priority::High);
            m.id = id.to_string();
            m
        };
        {
            let store = SledStore::open(dir.path(), 16).unwrap();
            store.insert(std::slice::from_ref(&real), None).unwrap();
            for id in [stale, fresh] {
                let key = id.0.to_be_bytes();
                let m = ghost(id);
                store
                    .inner
                    .due
                    .insert(due_key(&m, &key), &[Status::Queued.code()])
                    .unwrap();
                store.inner.to.insert(to_key(&m.to, &key), &[]).unwrap();
            }
            store.durable().await.unwrap();
        }
        let store = SledStore::open(dir.path(), 16).unwrap();
        assert_eq!(store.queue_depth(), 3, "counted at open, ghosts included");
        assert_eq!(
            store.next_due(now).unwrap(),
            NextDue::Ready(real.id.clone())
        );
        assert_eq!(store.queue_depth(), 2, "the stale ghost is gone");
        let keys: Vec<_> = store.inner.due.iter().keys().map(|k| k.unwrap()).collect();
        assert_eq!(keys.len(), 2);
        assert!(
            keys.iter().any(|k| k[9..25] == fresh.0.to_be_bytes()),
            "a fresh one stays"
        );
        assert!(keys.iter().all(|k| k[9..25] != stale.0.to_be_bytes()));
        // Listing by recipient skips entries without a record.
        let to9 = store
            .list(&ListFilter {
                to: Some("+15550000009".into()),
                limit: 10,
                ..ListFilter::default()
            })
            .unwrap();
        assert!(to9.is_empty());
    }
}
