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
mod listing;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::Utc;
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
pub use listing::{ListFilter, NextDue};

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
