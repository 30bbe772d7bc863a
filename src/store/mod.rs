//! The message store: every sled tree, key layout and transaction lives here; nothing else
//! touches sled.
//!
//! | tree | key | value |
//! |---|---|---|
//! | `messages` | message id (ULID, 16 bytes big-endian: sorts by creation) | JSON [`Message`] |
//! | `due` | priority (1) · due time ms (8, BE) · id (16) | status (1): the dispatch order of waiting (`queued`, `scheduled`) messages |
//! | `status` | status (1) · id (16) | empty: messages that are *not* waiting, by status |
//! | `to` | E.164 number · 0xFF · id (16) | empty: listing by recipient |
//! | `events` | id (16) · sequence (4, BE) | JSON [`Event`], from sequence 1 |
//! | `idempotency` | API key name · 0x00 · Idempotency-Key | JSON [`IdempotencyRecord`] |
//! | `outbox` | sequence (8, BE) | JSON webhook delivery ([`outbox`]) |
//! | `inbound` | inbound id (ULID, 16) | JSON [`inbound::InboundMessage`] |
//! | `inbound_from` | E.164 sender · 0xFF · inbound id (16) | empty: listing by sender |
//! | `inbound_seen` | SHA-256 of modem name · 0x00 · PDU | empty, or `report` for a status report: a PDU already stored, deduped across a crash |
//! | `fragments` | modem · 0x00 · sender · 0x00 · reference (2) · total (1) · sequence (1) | JSON part of a concatenated message still incomplete |
//! | `optouts` | E.164 number | JSON [`optout::OptOut`] while the number is opted out |
//! | `inbound_pending` | inbound id (16) | empty: stored, not yet acted on (reply, keyword, event) |
//! | `reports` | modem · 0x00 · TP-MR (1) · id (16) · part (1) | sent time ms (8, BE): parts of sent messages that await a status report ([`reports`]) |
//! | `reports_unmatched` | report id (ULID, 16) | JSON [`reports::UnmatchedReport`]: status reports that matched no sent part |
//! | `plans` | plan id (ULID, 16) | JSON [`plans::Plan`]: an invoice's reminder plan |
//! | `plan_invoices` | invoice reference | plan id (16): one plan per invoice |
//! | `templates` | template name | JSON [`plans::StoredTemplate`]: templates set through the API |
//! | `hourly` | hour since the epoch (4, BE) · modem | sent · delivered · failed (3 × 8, BE): per-hour counts ([`hourly`]) |
//! | `invoices` | invoice (`metadata.invoice`) · 0xFF · id (16); the empty key once built | empty: messages about an invoice, for the dispute export and the admin page's search |
//!
//! Accepting a message writes three entries (record, due, recipient): each sled write costs a
//! few microseconds, so the shape keeps the hot path short. A waiting message is indexed by
//! `due` only (its value says which waiting status), the first history event is implied by the
//! record (`created_at`, `accepted_as`), and the counts by status are kept in memory, counted
//! once at open.
//!
//! A message and its index entries change in one transaction. [`Store::durable`] makes every
//! change made before it survive a power cut: sled's `flush()` stops at `sync_file_range` on
//! Linux, so after it the data file is fsynced too; concurrent callers share one flush (group
//! commit), which keeps durability cheap under load.
//!
//! [`backup`] checks, exports, imports and compacts a whole store while the daemon is stopped
//! (`smsgate store check|export|import|compact`).

pub mod backup;
pub mod history;
pub mod hourly;
pub mod inbound;
pub mod live;
pub mod model;
pub mod optout;
pub mod outbox;
pub mod plans;
pub mod replies;
pub mod reports;

mod flush;
#[cfg(test)]
mod format_tests;
mod idempotency;
mod keys;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Utc};
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};

use flush::{FlushFiles, FlushRequest, flusher};
pub use idempotency::IdempotencyRecord;
use idempotency::idempotency_row;
pub use keys::id_key;
use keys::{
    decode, decode_message, due_key, encode, event_key, id_string, invoice_key, status_key, to_key,
};
pub(crate) use keys::{report_key, sha256_hex};

pub use model::{
    Attempt, Event, Message, Note, Part, Priority, ReminderLink, Reply, Status, StepKind,
};

/// Turns a message's new history entry into webhook deliveries, written in the same
/// transaction as the change, so an event is never lost between the two.
pub trait Notifier: Send + Sync {
    /// The deliveries for `event`, just recorded on `message` (which was in `old_status`).
    fn deliveries(
        &self,
        message: &Message,
        event: &Event,
        old_status: Status,
    ) -> Vec<outbox::NewWebhook>;
    /// New deliveries are on disk.
    fn wake(&self);
}

/// A store failure. The API answers 503 for these: nothing was acknowledged that is not stored.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// sled or the file system failed (disk full, read-only, I/O error).
    #[error("storage error: {0}")]
    Io(String),
    /// A record could not be read back.
    #[error("corrupt record {key}: {detail}")]
    Corrupt {
        /// Which key.
        key: String,
        /// What is wrong.
        detail: String,
    },
    /// The store is shutting down.
    #[error("store closed")]
    Closed,
    /// A record changed while a change to it was being made; computed again, it gave up.
    #[error("conflict: {0}")]
    Conflict(String),
}

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        StoreError::Io(e.to_string())
    }
}

impl From<TransactionError<StoreError>> for StoreError {
    fn from(e: TransactionError<StoreError>) -> Self {
        match e {
            TransactionError::Abort(e) => e,
            TransactionError::Storage(e) => StoreError::Io(e.to_string()),
        }
    }
}

/// The store. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    db: sled::Db,
    messages: sled::Tree,
    due: sled::Tree,
    status: sled::Tree,
    to: sled::Tree,
    events: sled::Tree,
    idempotency: sled::Tree,
    outbox: sled::Tree,
    inbound: sled::Tree,
    inbound_from: sled::Tree,
    inbound_seen: sled::Tree,
    fragments: sled::Tree,
    reports: sled::Tree,
    optouts: sled::Tree,
    inbound_pending: sled::Tree,
    reports_unmatched: sled::Tree,
    plans: sled::Tree,
    plan_invoices: sled::Tree,
    templates: sled::Tree,
    hourly: sled::Tree,
    invoices: sled::Tree,
    /// Messages per status, indexed by [`Status::code`].
    counts: [AtomicI64; 9],
    notifier: std::sync::RwLock<Option<Arc<dyn Notifier>>>,
    /// Live events for subscribers ([`live`]).
    live: tokio::sync::broadcast::Sender<live::LiveEvent>,
    path: PathBuf,
    /// The flusher gets a handle to the database with each request and keeps none between
    /// them, so dropping the store releases its lock on the directory.
    flush_tx: std::sync::mpsc::Sender<FlushRequest>,
    /// The last flush's error, cleared by the next good one (set by the flush thread).
    flush_error: Arc<std::sync::Mutex<Option<String>>>,
    /// Blob files (sled's `blobs/<lsn>`, for items over ~128 KiB) the flusher has fsynced.
    blobs_synced: Arc<std::sync::atomic::AtomicU64>,
}

/// Whether `dir` (created if missing) takes a 4 KiB write and an fsync now, in a small file
/// removed again: the disk has space and is writable.
pub fn directory_takes_writes(dir: &Path) -> bool {
    use std::io::Write;
    let p = dir.join(".smsgate-write-probe");
    let ok = std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::File::create(&p))
        .and_then(|mut f| {
            f.write_all(&[0u8; 4096])?;
            f.sync_all()
        })
        .is_ok();
    let _ = std::fs::remove_file(&p);
    ok
}

/// The key [`Store::health`] writes and removes in sled's default tree.
const HEALTH_PROBE: &[u8] = b"smsgate-health-probe";

type Tx = ConflictableTransactionError<StoreError>;

fn abort(e: StoreError) -> Tx {
    ConflictableTransactionError::Abort(e)
}

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

impl Store {
    /// Opens (or creates) the store in `path`, with the group-commit flusher on its own thread.
    pub fn open(path: &Path, cache_mb: u64) -> Result<Store, StoreError> {
        std::fs::create_dir_all(path)
            .map_err(|e| StoreError::Io(format!("cannot create {}: {e}", path.display())))?;
        let config = sled::Config::new()
            .path(path)
            .cache_capacity(cache_mb.saturating_mul(1024 * 1024))
            .mode(sled::Mode::HighThroughput)
            // No timed flush of sled's own (every 500 ms by default): the gateway makes a write
            // durable when it acknowledges it ([`Store::durable`]), and a timed flush on top
            // cost each message sent at 500 ms a modem another write and sync (3.1 -> 2.6 ms
            // of CPU per message, `cargo bench --bench gateway cpu`).
            .flush_every_ms(None);
        // A store just closed in this process may keep its lock for a moment: sled's own
        // background thread lets go of the file when it next wakes. Another process's lock
        // (a running daemon) still fails after the short wait.
        let mut tries = 0;
        let db = loop {
            match config.open() {
                Ok(db) => break db,
                // sled says so only in words.
                Err(sled::Error::Io(e))
                    if e.to_string().contains("could not acquire lock") && tries < LOCK_TRIES =>
                {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(e) => {
                    return Err(StoreError::Io(format!(
                        "cannot open the store in {}: {e}",
                        path.display()
                    )));
                }
            }
        };
        let (flush_tx, flush_rx) = std::sync::mpsc::channel();
        let inner = Inner {
            messages: db.open_tree("messages")?,
            due: db.open_tree("due")?,
            status: db.open_tree("status")?,
            to: db.open_tree("to")?,
            events: db.open_tree("events")?,
            idempotency: db.open_tree("idempotency")?,
            outbox: db.open_tree("outbox")?,
            inbound: db.open_tree("inbound")?,
            inbound_from: db.open_tree("inbound_from")?,
            inbound_seen: db.open_tree("inbound_seen")?,
            fragments: db.open_tree("fragments")?,
            reports: db.open_tree("reports")?,
            optouts: db.open_tree("optouts")?,
            inbound_pending: db.open_tree("inbound_pending")?,
            reports_unmatched: db.open_tree("reports_unmatched")?,
            plans: db.open_tree("plans")?,
            plan_invoices: db.open_tree("plan_invoices")?,
            templates: db.open_tree("templates")?,
            hourly: db.open_tree("hourly")?,
            invoices: db.open_tree("invoices")?,
            counts: Default::default(),
            notifier: std::sync::RwLock::new(None),
            live: live::channel(),
            db,
            path: path.to_path_buf(),
            flush_tx,
            flush_error: Arc::default(),
            blobs_synced: Arc::default(),
        };
        for s in Status::ALL.iter().filter(|s| !s.is_waiting()) {
            let n = inner.status.scan_prefix([s.code()]).count();
            inner.counts[usize::from(s.code())].store(n as i64, Ordering::Relaxed);
        }
        for r in inner.due.iter().values() {
            let code = r?.first().copied().unwrap_or(Status::Queued.code());
            if let Some(c) = inner.counts.get(usize::from(code)) {
                c.fetch_add(1, Ordering::Relaxed);
            }
        }
        let store = Store {
            inner: Arc::new(inner),
        };
        if !store.inner.invoices.contains_key([])? {
            // A store written before the index: built once, then marked by the empty key.
            store.rebuild_invoice_index()?;
        }
        let files = FlushFiles {
            data: path.join("db"),
            blobs: path.join("blobs"),
            synced: store.inner.blobs_synced.clone(),
        };
        let flush_error = store.inner.flush_error.clone();
        std::thread::Builder::new()
            .name("smsgate-flush".into())
            .spawn(move || flusher(files, &flush_rx, &flush_error))
            .map_err(|e| StoreError::Io(format!("cannot start the flush thread: {e}")))?;
        Ok(store)
    }

    /// Why the store cannot be written now, if it cannot: the last flush failed, or a write
    /// to the database fails (sled refuses every write after an I/O error until it is
    /// reopened). A probe key is written and removed: nothing stays.
    pub fn health(&self) -> Option<String> {
        if let Some(e) = self
            .inner
            .flush_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            return Some(e);
        }
        let probe = self
            .inner
            .db
            .insert(HEALTH_PROBE, &[1u8][..])
            .and_then(|_| self.inner.db.remove(HEALTH_PROBE));
        probe.err().map(|e| format!("storage error: {e}"))
    }

    /// Makes the `invoices` index again from the messages (the empty key marks it built).
    pub(crate) fn rebuild_invoice_index(&self) -> Result<(), StoreError> {
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
        i.invoices.insert([], &[])?;
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

    /// Whether the store's directory takes a write and an fsync now (see
    /// [`directory_takes_writes`]).
    pub fn directory_writable(&self) -> bool {
        directory_takes_writes(&self.inner.path)
    }

    /// The store's directory.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Sets what turns history entries into webhook deliveries (see [`Notifier`]).
    pub fn set_notifier(&self, n: Option<Arc<dyn Notifier>>) {
        *self
            .inner
            .notifier
            .write()
            .unwrap_or_else(|e| e.into_inner()) = n;
    }

    fn notifier(&self) -> Option<Arc<dyn Notifier>> {
        self.inner
            .notifier
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Inserts new messages (all or none) and the idempotency record when given. Call
    /// [`Store::durable`] before acknowledging.
    pub fn insert(
        &self,
        messages: &[Message],
        idempotency: Option<(&str, &IdempotencyRecord)>,
    ) -> Result<(), StoreError> {
        let i = &self.inner;
        let rows = message_rows(messages)?;
        if idempotency.is_none() {
            // Nothing else to keep atomic with the messages: write the index entries one by
            // one, then the records in one atomic step, the commit point. Cheaper than a
            // transaction (no per-key reads, no global lock held over the index writes), and
            // as safe: readers never see a record without its index entries, and an insert cut
            // short by a crash leaves at most index entries without a record (nothing was
            // acknowledged), which readers skip and `next_due` removes.
            for (m, (id, _)) in messages.iter().zip(&rows) {
                if m.status.is_waiting() {
                    i.due.insert(due_key(m, id), &[m.status.code()])?;
                } else {
                    i.status.insert(status_key(m.status, id), &[])?;
                }
                i.to.insert(to_key(&m.to, id), &[])?;
                if let Some(k) = invoice_key(m, id) {
                    i.invoices.insert(k, &[])?;
                }
            }
            if let [(id, json)] = rows.as_slice() {
                i.messages.insert(&id[..], json.as_slice())?;
            } else {
                let mut recs = sled::Batch::default();
                for (id, json) in rows {
                    recs.insert(&id[..], json);
                }
                i.messages.apply_batch(recs)?;
            }
            for m in messages {
                self.count(m.status, 1);
                self.publish(m);
            }
            return Ok(());
        }
        let idem = idempotency_row(idempotency)?;
        (
            &i.messages,
            &i.due,
            &i.status,
            &i.to,
            &i.idempotency,
            &i.invoices,
        )
            .transaction(|(tm, td, ts, tt, ti, tinv)| {
                if let Some((k, v)) = &idem {
                    // A key already written (a retry that raced past the API's guard, or a
                    // second process) is refused, never overwritten: one request, one message.
                    if ti.get(k.as_slice())?.is_some() {
                        return Err(abort(StoreError::Conflict(
                            "this Idempotency-Key was used already".into(),
                        )));
                    }
                    ti.insert(k.as_slice(), v.as_slice())?;
                }
                insert_in(tm, td, ts, tt, messages, &rows)?;
                for (m, (id, _)) in messages.iter().zip(&rows) {
                    if let Some(k) = invoice_key(m, id) {
                        tinv.insert(k, &[])?;
                    }
                }
                Ok::<_, Tx>(())
            })?;
        for m in messages {
            self.count(m.status, 1);
            self.publish(m);
        }
        Ok(())
    }

    fn count(&self, s: Status, delta: i64) {
        if let Some(c) = self.inner.counts.get(usize::from(s.code())) {
            c.fetch_add(delta, Ordering::Relaxed);
        }
    }

    /// A message by id.
    pub fn get(&self, id: &str) -> Result<Option<Message>, StoreError> {
        let Some(key) = id_key(id) else {
            return Ok(None);
        };
        match self.inner.messages.get(key)? {
            Some(v) => Ok(Some(decode_message(&key, &v)?)),
            None => Ok(None),
        }
    }

    /// A message's history, oldest first. The first event (accepted) comes from the record.
    pub fn events(&self, id: &str) -> Result<Vec<Event>, StoreError> {
        Ok(self
            .get_with_events(id)?
            .map(|(_, events)| events)
            .unwrap_or_default())
    }

    /// A message and its history as of the same moment: entries written after the record was
    /// read are left out.
    pub fn get_with_events(&self, id: &str) -> Result<Option<(Message, Vec<Event>)>, StoreError> {
        let Some(m) = self.get(id)? else {
            return Ok(None);
        };
        let Some(key) = id_key(id) else {
            return Ok(None);
        };
        let mut out = vec![first_event(&m)];
        for r in self.inner.events.scan_prefix(key) {
            let (k, v) = r?;
            let e: Event = decode(&k, &v)?;
            if e.seq > m.history_len {
                break;
            }
            if e.seq == 0 {
                // Stores written before the first event was implied hold it explicitly.
                out[0] = e;
            } else {
                out.push(e);
            }
        }
        Ok(Some((m, out)))
    }

    /// Changes a message in one transaction: `f` gets the current record and returns what to
    /// record in its history (a reason, or a [`Note`]), or `None` to leave it unchanged.
    /// Indexes, the history's hash chain and the webhook deliveries of the [`Notifier`] follow
    /// in the same transaction. Returns the message after the change (or unchanged) and whether
    /// it changed, `None` when there is no such id.
    pub fn update<F, N>(&self, id: &str, f: F) -> Result<Option<(Message, bool)>, StoreError>
    where
        F: Fn(&mut Message) -> Option<N>,
        N: Into<Note>,
    {
        let Some(key) = id_key(id) else {
            return Ok(None);
        };
        let i = &self.inner;
        let notifier = self.notifier();
        let trees = Trees {
            messages: &i.messages,
            due: &i.due,
            status: &i.status,
            events: &i.events,
            outbox: &i.outbox,
            reports: &i.reports,
            hourly: &i.hourly,
        };
        let r = trees.transaction(|tx| update_in(tx, &key, &f, notifier.as_deref()))?;
        Ok(r.map(|(old, new, changed)| {
            if old != new.status {
                self.count(old, -1);
                self.count(new.status, 1);
            }
            if changed {
                self.publish(&new);
            }
            (new, changed)
        }))
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

    fn next_due_where(
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
                if u64::from_be_bytes(created) + 60_000 < now_ms
                    && self.inner.due.remove(&k)?.is_some()
                {
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

    fn count_of(&self, s: Status) -> u64 {
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

/// The trees a change to a message touches.
struct Trees<'a> {
    messages: &'a sled::Tree,
    due: &'a sled::Tree,
    status: &'a sled::Tree,
    events: &'a sled::Tree,
    outbox: &'a sled::Tree,
    reports: &'a sled::Tree,
    hourly: &'a sled::Tree,
}

impl Trees<'_> {
    fn transaction<A>(
        &self,
        f: impl Fn(&TxTrees<'_>) -> Result<A, Tx>,
    ) -> Result<A, TransactionError<StoreError>> {
        (
            self.messages,
            self.due,
            self.status,
            self.events,
            self.outbox,
            self.reports,
            self.hourly,
        )
            .transaction(|(messages, due, status, events, outbox, reports, hourly)| {
                f(&TxTrees {
                    messages,
                    due,
                    status,
                    events,
                    outbox,
                    reports,
                    hourly,
                })
            })
    }
}

struct TxTrees<'a> {
    messages: &'a TransactionalTree,
    due: &'a TransactionalTree,
    status: &'a TransactionalTree,
    events: &'a TransactionalTree,
    outbox: &'a TransactionalTree,
    reports: &'a TransactionalTree,
    hourly: &'a TransactionalTree,
}

/// The first history entry, implied by the record: what was accepted. Built only from fields
/// that never change after acceptance (the chain starts with its hash); a later change of
/// anything else is an entry of its own.
fn first_event(m: &Message) -> Event {
    Event {
        seq: 0,
        at: m.created_at,
        status: m.accepted_as,
        reason: Some("accepted".into()),
        kind: "accepted".into(),
        data: Some(serde_json::json!({
            "to": m.to,
            "text": m.text,
            "encoding": m.encoding,
            "parts": m.parts,
            "reply_options": m.reply_options,
            "created_by": m.created_by,
        })),
        prev: None,
    }
}

/// The hash of the implied first entry: the start of the chain.
fn first_event_hash(m: &Message) -> Result<String, StoreError> {
    Ok(sha256_hex(&encode(&first_event(m))?))
}

fn update_in<F, N>(
    t: &TxTrees<'_>,
    key: &[u8; 16],
    f: &F,
    notifier: Option<&dyn Notifier>,
) -> Result<Option<(Status, Message, bool)>, Tx>
where
    F: Fn(&mut Message) -> Option<N>,
    N: Into<Note>,
{
    let Some(v) = t.messages.get(key)? else {
        return Ok(None);
    };
    let old = decode_message(key, &v).map_err(abort)?;
    let mut new = old.clone();
    let Some(note) = f(&mut new).map(Into::into) else {
        return Ok(Some((old.status, old, false)));
    };
    new.updated_at = Utc::now();
    new.history_len = old.history_len + 1;
    if old.status != new.status || old.due_at != new.due_at || old.priority != new.priority {
        if old.status.is_waiting() {
            t.due.remove(due_key(&old, key))?;
        } else {
            t.status.remove(status_key(old.status, key))?;
        }
        index_status(t.due, t.status, &new, key)?;
    }
    let prev = match (&old.history_hash, old.history_len) {
        (_, 0) => Some(first_event_hash(&old).map_err(abort)?),
        (h, _) => h.clone(),
    };
    let event = Event {
        seq: new.history_len,
        at: new.updated_at,
        status: new.status,
        reason: Some(note.reason),
        kind: note.kind.to_string(),
        data: note.data,
        prev,
    };
    if new.status == Status::Sent
        && old.status != Status::Sent
        && new.status_report
        && let Some(modem) = &new.modem
    {
        // The parts wait for their status reports, found by modem and TP-MR.
        let sent = new
            .sent_at
            .unwrap_or(new.updated_at)
            .timestamp_millis()
            .max(0) as u64;
        for p in &new.part_status {
            if let Some(mr) = p.message_reference {
                t.reports
                    .insert(report_key(modem, mr, key, p.part), &sent.to_be_bytes())?;
            }
        }
    }
    if old.status != new.status
        && matches!(
            old.status,
            Status::Sent | Status::Delivered | Status::Failed
        )
        && !matches!(
            new.status,
            Status::Sent | Status::Delivered | Status::Failed
        )
        && let Some(modem) = &old.modem
    {
        // A new attempt (requeue): reports on the old parts no longer apply. A message that
        // became delivered or failed keeps its remaining entries, so the other parts' late
        // reports are still recorded in its history (see `reports`).
        for p in &old.part_status {
            if let Some(mr) = p.message_reference {
                t.reports.remove(report_key(modem, mr, key, p.part))?;
            }
        }
    }
    hourly::count_in(
        t.hourly,
        old.status,
        new.status,
        new.updated_at,
        new.modem.as_deref(),
    )?;
    let bytes = encode(&event).map_err(abort)?;
    new.history_hash = Some(sha256_hex(&bytes));
    t.events.insert(event_key(key, event.seq), bytes)?;
    t.messages.insert(&key[..], encode(&new).map_err(abort)?)?;
    if let Some(n) = notifier {
        for w in n.deliveries(&new, &event, old.status) {
            let seq = t.outbox.generate_id()?;
            let entry = outbox::new_entry(seq, &w);
            t.outbox
                .insert(&seq.to_be_bytes(), encode(&entry).map_err(abort)?)?;
        }
    }
    Ok(Some((old.status, new, true)))
}

/// A record ready to write: its key and its JSON.
type Row<K> = (K, Vec<u8>);

/// New messages as (key, JSON) rows.
fn message_rows(messages: &[Message]) -> Result<Vec<Row<[u8; 16]>>, StoreError> {
    messages
        .iter()
        .map(|m| {
            let id = id_key(&m.id).ok_or_else(|| StoreError::Corrupt {
                key: m.id.clone(),
                detail: "not a ULID".into(),
            })?;
            Ok((id, encode(m)?))
        })
        .collect()
}

/// Writes new messages (`rows` from [`message_rows`]) and their index entries in a
/// transaction.
fn insert_in(
    tm: &TransactionalTree,
    td: &TransactionalTree,
    ts: &TransactionalTree,
    tt: &TransactionalTree,
    messages: &[Message],
    rows: &[Row<[u8; 16]>],
) -> Result<(), Tx> {
    for (m, (id, json)) in messages.iter().zip(rows) {
        tm.insert(&id[..], json.as_slice())?;
        index_status(td, ts, m, id)?;
        tt.insert(to_key(&m.to, id), &[])?;
    }
    Ok(())
}

/// Adds a message's status entry: in `due` while it waits, in `status` otherwise.
fn index_status(
    td: &TransactionalTree,
    ts: &TransactionalTree,
    m: &Message,
    id: &[u8; 16],
) -> Result<(), Tx> {
    if m.status.is_waiting() {
        td.insert(due_key(m, id), &[m.status.code()])?;
    } else {
        ts.insert(status_key(m.status, id), &[])?;
    }
    Ok(())
}

/// A queued one-part message to `to`, for tests to adjust.
#[cfg(test)]
pub(crate) fn test_message(to: &str) -> Message {
    let now = Utc::now();
    Message {
        id: ulid::Ulid::generate().to_string(),
        to: to.into(),
        text: "hello".into(),
        encoding: "gsm7".into(),
        parts: 1,
        status: Status::Queued,
        status_reason: None,
        priority: Priority::Normal,
        created_at: now,
        updated_at: now,
        send_at: None,
        expires_at: None,
        max_lateness_secs: 3600,
        due_at: now,
        reply_options: None,
        callback_url: None,
        metadata: None,
        status_report: false,
        attempts: Vec::new(),
        part_status: Vec::new(),
        modem: None,
        sent_at: None,
        delivered_at: None,
        created_by: "test".into(),
        history_len: 0,
        requeued_at: None,
        accepted_as: Status::Queued,
        replies: Vec::new(),
        history_hash: None,
        send_window: None,
        reminder: None,
        twilio: None,
    }
}

/// Attempts, 50 ms apart, to take the lock of a store this process has just closed.
const LOCK_TRIES: u32 = 20;

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(to: &str, status: Status, due: DateTime<Utc>, prio: Priority) -> Message {
        let mut m = test_message(to);
        m.status = status;
        m.accepted_as = status;
        m.due_at = due;
        m.priority = prio;
        m
    }

    fn record(body: serde_json::Value) -> IdempotencyRecord {
        IdempotencyRecord {
            fingerprint: "f".into(),
            status: 201,
            body,
            at: Utc::now(),
        }
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
            let store = Store::open(dir.path(), 16).unwrap();
            store
                .insert(&[about("INV-1"), about("INV-2")], None)
                .unwrap();
            let rec = record(serde_json::json!({}));
            store.insert(&[about("INV-1")], Some(("k", &rec))).unwrap();
            store.insert(&[test_message("+12025550106")], None).unwrap();
            assert_eq!(store.messages_about("INV-1", 10).unwrap().len(), 2);
            assert_eq!(store.messages_about("INV-2", 10).unwrap().len(), 1);
            assert!(store.messages_about("INV-", 10).unwrap().is_empty());
            // As a store written before the index: none at all.
            store.inner.invoices.clear().unwrap();
            store.durable().await.unwrap();
        }
        let store = Store::open(dir.path(), 16).unwrap();
        assert_eq!(store.messages_about("INV-1", 10).unwrap().len(), 2);
        assert_eq!(store.messages_about("INV-2", 10).unwrap().len(), 1);
    }

    #[tokio::test]
    async fn insert_update_and_dispatch_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 16).unwrap();
        let now = Utc::now();
        let later = now + chrono::Duration::hours(1);
        let low = msg(
            "+15550000001",
            Status::Queued,
            now - chrono::Duration::seconds(10),
            Priority::Low,
        );
        let normal = msg(
            "+15550000002",
            Status::Queued,
            now - chrono::Duration::seconds(5),
            Priority::Normal,
        );
        let high_later = msg("+15550000003", Status::Scheduled, later, Priority::High);
        store
            .insert(&[low.clone(), normal.clone(), high_later.clone()], None)
            .unwrap();
        store.durable().await.unwrap();
        // A high-priority message not yet due does not block a due normal one.
        assert_eq!(
            store.next_due(now).unwrap(),
            NextDue::Ready(normal.id.clone())
        );
        let (m, changed) = store
            .update(&normal.id, |m| {
                m.status = Status::Sending;
                Some("dispatched")
            })
            .unwrap()
            .unwrap();
        assert!(changed);
        assert_eq!(m.status, Status::Sending);
        assert_eq!(store.next_due(now).unwrap(), NextDue::Ready(low.id.clone()));
        store
            .update(&low.id, |m| {
                m.status = Status::Cancelled;
                Some("cancelled")
            })
            .unwrap();
        assert_eq!(
            store.next_due(now).unwrap(),
            NextDue::At(DateTime::<Utc>::from_timestamp_millis(later.timestamp_millis()).unwrap())
        );
        assert_eq!(
            store.next_due(later).unwrap(),
            NextDue::Ready(high_later.id.clone())
        );
        let events = store.events(&normal.id).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[1].status, Status::Sending);
        let counts: std::collections::HashMap<_, _> = store.counts().unwrap().into_iter().collect();
        assert_eq!(counts[&Status::Sending], 1);
        assert_eq!(counts[&Status::Cancelled], 1);
        assert_eq!(counts[&Status::Scheduled], 1);
        assert_eq!(
            store.ids_with_status(Status::Sending).unwrap(),
            vec![normal.id.clone()]
        );
        // Unchanged update writes nothing.
        let (_, changed) = store.update(&normal.id, |_| None::<Note>).unwrap().unwrap();
        assert!(!changed);
        assert_eq!(store.events(&normal.id).unwrap().len(), 2);
    }

    #[tokio::test]
    async fn survives_reopen_and_lists() {
        let dir = tempfile::tempdir().unwrap();
        let ids: Vec<String>;
        {
            let store = Store::open(dir.path(), 16).unwrap();
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
        let store = Store::open(dir.path(), 16).unwrap();
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
            let store = Store::open(dir.path(), 16).unwrap();
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
        let store = Store::open(dir.path(), 16).unwrap();
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
            let store = Store::open(dir.path(), 16).unwrap();
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
        let store = Store::open(dir.path(), 16).unwrap();
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
