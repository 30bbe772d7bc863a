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
//! | `tombstones` | day (4, BE) · sequence (8, BE) | JSON [`tombstones::Tombstone`]: what is left of a message removed whole, chained per day |
//! | `optouts_erased` | SHA-256 of the store's salt · E.164 number (32) | JSON [`optout::ErasedOptOut`]: an opt-out whose number was erased |
//! | `meta` | name | the store's own values: `optout_salt` (32 random bytes, made at the first open) |
//! | `invoices` | invoice (`metadata.invoice`) · 0xFF · id (16); the one-byte key 0x02 once complete (0.1.0 marked it with the empty key and left plans' messages out: made again at open) | empty: messages about an invoice, for the dispute export and the admin page's search |
//! | `audit` | entry id (ULID, 16); the one-byte key 0x00 for the chain's head | JSON [`audit::AuditEntry`]: admin actions through the API, hash-chained ([`audit`]) |
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
//! (`smsgate store check|export|import|compact`), and takes a hot backup of the running one
//! ([`Store::snapshot`]): every method that changes the store holds a pass of its write gate
//! (`let _w = self.writing();`), which the backup closes while it reads.
//!
//! This file holds the [`Store`] itself: its trees, [`Store::open`], health and the errors.
//! The rest, one noun per file: `keys.rs` (the key layouts above and the JSON of records),
//! `messages.rs` (the message aggregate: insert, update, history), `listing.rs` (dispatch
//! order, listings, counts), `idempotency.rs`, `flush.rs` (the group commit), `erasure.rs`
//! (a number erased from every tree), and the modules below for everything else the store
//! keeps (`tombstones.rs`: what is left of a removed message).
//!
//! Retention: each aggregate's file has its bounded step (`purge_inbound`,
//! `purge_idempotency`, `purge_dead_webhooks`, `purge_unmatched_reports`; the messages' two,
//! `redact_finished_texts` and `remove_finished_messages`, are worked out once in `seam/messages.rs`
//! over each backend's `finished_before`), which [`crate::retention`] runs once a minute.

pub mod audit;
pub mod backup;
pub mod history;
pub mod hourly;
pub mod inbound;
pub mod lease;
pub mod live;
pub mod model;
pub mod optout;
pub mod outbox;
pub mod pg;
pub mod plans;
pub mod replies;
pub mod reports;
pub mod tombstones;

mod erasure;

mod flush;
#[cfg(test)]
mod format_tests;
mod idempotency;
mod keys;
mod listing;
mod messages;
mod seam;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use sled::transaction::{ConflictableTransactionError, TransactionError};

pub use erasure::Erased;
use flush::{FlushFiles, FlushRequest, flusher};
pub use idempotency::IdempotencyRecord;
use idempotency::idempotency_row;
#[cfg(test)]
pub(crate) use idempotency::test_record;
pub use keys::id_key;
use keys::{
    decode, decode_message, due_key, encode, event_key, id_string, invoice_key, status_key, to_key,
};
pub(crate) use keys::{report_key, sha256_hex};
pub use listing::{ListFilter, NextDue};
#[cfg(test)]
pub(crate) use messages::test_message;
pub use messages::{Redacted, SweepStep};
use messages::{
    Row, TxTrees, first_event_hash, first_event_shown, id_millis, insert_in, message_rows,
    update_in,
};
pub use pg::PgStore;
pub use seam::Store;

pub use model::{
    Attempt, AttemptResult, Event, Message, Note, Part, PartStatus, Priority, ReminderLink, Reply,
    Status, StepKind,
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

/// Several listeners heard as one: their deliveries in order, each woken.
struct Listeners(Vec<Arc<dyn Notifier>>);

impl Notifier for Listeners {
    fn deliveries(
        &self,
        message: &Message,
        event: &Event,
        old_status: Status,
    ) -> Vec<outbox::NewWebhook> {
        self.0
            .iter()
            .flat_map(|l| l.deliveries(message, event, old_status))
            .collect()
    }

    fn wake(&self) {
        for l in &self.0 {
            l.wake();
        }
    }
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

/// The embedded sled store (the default backend behind [`Store`]). Cheap to clone.
#[derive(Clone)]
pub struct SledStore {
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
    audit: sled::Tree,
    tombstones: sled::Tree,
    optouts_erased: sled::Tree,
    meta: sled::Tree,
    /// The salt of the hashes in `optouts_erased`: random, made at the first open, kept in
    /// `meta` (and so in backups), never shown.
    optout_salt: [u8; 32],
    /// One writer of tombstones at a time: each links to the day's last one.
    tombstone_lock: std::sync::Mutex<()>,
    /// Messages per status, indexed by [`Status::code`].
    counts: [AtomicI64; 9],
    /// What hears every change (the webhook outbox): given at construction, never changed.
    notifier: Option<Arc<dyn Notifier>>,
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
    /// Passed by every write; closed by a hot backup while it reads ([`backup::gate`]).
    gate: backup::gate::WriteGate,
    /// A hot backup ([`Store::snapshot`]) is being made or read.
    snapshot_running: Arc<std::sync::atomic::AtomicBool>,
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

impl SledStore {
    /// Opens (or creates) the store in `path`, with the group-commit flusher on its own thread.
    pub fn open(path: &Path, cache_mb: u64) -> Result<SledStore, StoreError> {
        SledStore::open_with(path, cache_mb, Vec::new())
    }

    /// [`Store::open`] with the listeners that turn every change into deliveries (see
    /// [`Notifier`]), in this order; they are the store's for its whole life.
    pub fn open_with(
        path: &Path,
        cache_mb: u64,
        listeners: Vec<Arc<dyn Notifier>>,
    ) -> Result<SledStore, StoreError> {
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
        let db = open_sled(&config).map_err(|e| {
            StoreError::Io(format!("cannot open the store in {}: {e}", path.display()))
        })?;
        let (flush_tx, flush_rx) = std::sync::mpsc::channel();
        let meta = db.open_tree("meta")?;
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
            audit: db.open_tree("audit")?,
            tombstones: db.open_tree("tombstones")?,
            optouts_erased: db.open_tree("optouts_erased")?,
            optout_salt: optout::salt(&meta)?,
            meta,
            tombstone_lock: std::sync::Mutex::new(()),
            counts: Default::default(),
            notifier: match listeners.len() {
                0 => None,
                1 => listeners.into_iter().next(),
                _ => Some(Arc::new(Listeners(listeners))),
            },
            live: live::channel(),
            db,
            path: path.to_path_buf(),
            flush_tx,
            flush_error: Arc::default(),
            blobs_synced: Arc::default(),
            gate: backup::gate::WriteGate::default(),
            snapshot_running: Arc::default(),
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
        let store = SledStore {
            inner: Arc::new(inner),
        };
        if !store.inner.invoices.contains_key(INVOICES_BUILT)? {
            // A store written before the index, or before plans' messages were in it: built
            // once, then marked.
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

    fn notifier(&self) -> Option<Arc<dyn Notifier>> {
        self.inner.notifier.clone()
    }
}

/// A tree's entries after the key `after` (all of them without one): where a bounded
/// retention step goes on.
/// One bounded step of a retention sweep over `tree`, from after the key `after` (from the
/// start for `None`): every entry `expired` says so of is removed; at most `limit` entries are
/// looked at. The caller holds a write pass.
pub(super) fn sweep_step(
    tree: &sled::Tree,
    after: Option<&[u8]>,
    limit: usize,
    expired: impl Fn(&[u8], &[u8]) -> Result<bool, StoreError>,
) -> Result<SweepStep, StoreError> {
    let entries = match after {
        Some(a) => tree.range((
            std::ops::Bound::Excluded(a.to_vec()),
            std::ops::Bound::Unbounded,
        )),
        None => tree.iter(),
    };
    let mut step = SweepStep::default();
    let mut looked = 0;
    for r in entries {
        let (k, v) = r?;
        looked += 1;
        if expired(&k, &v)? && tree.remove(&k)?.is_some() {
            step.done += 1;
        }
        if looked >= limit {
            step.next = Some(k.to_vec());
            break;
        }
    }
    Ok(step)
}

/// One bounded step of a retention sweep over a tree keyed by ULID (oldest first), up to
/// `cutoff`: `remove` is called on each entry received at or before it and says whether it
/// removed it; at most `limit` entries are looked at. The caller holds a write pass.
pub(super) fn sweep_oldest(
    tree: &sled::Tree,
    cutoff: chrono::DateTime<chrono::Utc>,
    limit: usize,
    mut remove: impl FnMut(&[u8], &[u8]) -> Result<bool, StoreError>,
) -> Result<SweepStep, StoreError> {
    let cutoff_ms = cutoff.timestamp_millis().max(0) as u64;
    let mut step = SweepStep::default();
    for r in tree.iter().take(limit) {
        let (k, v) = r?;
        // Ids sort by arrival: the first one after the cutoff ends the step.
        if id_millis(&k) > cutoff_ms {
            break;
        }
        if remove(&k, &v)? {
            step.done += 1;
        }
    }
    Ok(step)
}

/// Removes every entry of `tree` whose value holds `needle` (an erasure: the values are read
/// whole); how many. The caller holds a write pass.
pub(super) fn remove_containing(tree: &sled::Tree, needle: &[u8]) -> Result<usize, StoreError> {
    let mut n = 0;
    for r in tree.iter() {
        let (k, v) = r?;
        if idempotency::contains(&v, needle) && tree.remove(&k)?.is_some() {
            n += 1;
        }
    }
    Ok(n)
}

/// The key that marks the `invoices` index complete: every message with `metadata.invoice`,
/// the plans' too. A store whose index was marked by the empty key (0.1.0, which left plans'
/// messages out) has it made again at the next open. Shorter than any entry (invoice · 0xFF ·
/// id is at least 17 bytes).
pub(crate) const INVOICES_BUILT: [u8; 1] = [2];

/// Opens sled with `config`. A store just closed in this process may keep its lock for a
/// moment (sled's own background thread lets go of the file when it next wakes), so a refused
/// lock is tried again for a while; another process's lock (a running daemon) still fails after
/// the wait.
pub(super) fn open_sled(config: &sled::Config) -> sled::Result<sled::Db> {
    let mut tries = 0;
    loop {
        match config.open() {
            // sled says so only in words.
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock") && tries < LOCK_TRIES =>
            {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            r => return r,
        }
    }
}

/// Attempts, 50 ms apart, to take the lock of a store this process has just closed: 3 s, as
/// sled's thread may be slow to let go on a loaded machine. Only a store that is really held
/// (by a running daemon) waits that long, and only to be refused.
const LOCK_TRIES: u32 = 60;
