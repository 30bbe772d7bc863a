//! The store's seam: [`Store`] is what the rest of the gateway holds, and behind it one of two
//! backends keeps the data: the embedded sled store ([`SledStore`], the default, one process)
//! or PostgreSQL ([`PgStore`], several gateways on one database; see docs/scaling.md).
//!
//! Both keep the same promises (docs/architecture.md, "The store's seam"): an acknowledged
//! change is durable, a change and its history entry, webhook deliveries and counts are one
//! transaction, scans come back in the same order. The methods here only choose the backend.

#![allow(clippy::too_many_arguments)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};

use crate::sms::StatusReport;
use tokio::sync::broadcast;

use super::audit::*;
use super::backup::{Snapshot, SnapshotError};
use super::history::*;
use super::hourly::*;
use super::inbound::*;
use super::lease::{self, Hold, Lease};
use super::live::*;
use super::optout::*;
use super::outbox::*;
use super::plans::*;
use super::reports::*;
use super::tombstones::*;
use super::*;
use crate::store::pg::PgStore;

/// The store: messages, their history, and everything else the gateway keeps. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
    /// This gateway's name among those sharing the store (lease holder).
    gateway: Arc<str>,
    /// The embedded store's leases (all this process's).
    local_leases: Arc<lease::LocalLeases>,
    /// How long a lease lasts unless renewed.
    lease_ttl: std::time::Duration,
    /// When each job's lease was last asked for, and whether it was this gateway's: asked
    /// again only after a sixth of the lease's time (a worker may ask on every wake-up).
    jobs: Arc<std::sync::Mutex<std::collections::HashMap<String, (std::time::Instant, bool)>>>,
}

#[derive(Clone)]
enum Backend {
    Sled(SledStore),
    Postgres(Arc<PgStore>),
}

impl Store {
    /// Opens (or creates) the embedded store in `path` ([`SledStore::open`]).
    pub fn open(path: &Path, cache_mb: u64) -> Result<Store, StoreError> {
        SledStore::open(path, cache_mb).map(Store::from)
    }

    /// [`Store::open`] with the listeners that turn every change into deliveries (see
    /// [`Notifier`]), in this order; they are the store's for its whole life.
    pub fn open_with(
        path: &Path,
        cache_mb: u64,
        listeners: Vec<Arc<dyn Notifier>>,
    ) -> Result<Store, StoreError> {
        SledStore::open_with(path, cache_mb, listeners).map(Store::from)
    }

    /// Connects to the PostgreSQL database at `url`, brings its schema up to date, and
    /// keeps `listeners` as [`Store::open_with`] does.
    pub fn connect(url: &str, listeners: Vec<Arc<dyn Notifier>>) -> Result<Store, StoreError> {
        PgStore::connect(url, listeners).map(|p| Store {
            backend: Backend::Postgres(Arc::new(p)),
            gateway: lease::gateway_id().into(),
            local_leases: Arc::default(),
            lease_ttl: lease::DEFAULT_TTL,
            jobs: Arc::default(),
        })
    }

    /// The embedded store behind this one, if it is the embedded one (hot backups and the
    /// offline tools work on its files).
    pub fn sled(&self) -> Option<&SledStore> {
        match &self.backend {
            Backend::Sled(s) => Some(s),
            Backend::Postgres(_) => None,
        }
    }

    /// Where the data is, for logs: the embedded store's directory, or the database's URL
    /// without its password.
    pub fn location(&self) -> String {
        match &self.backend {
            Backend::Sled(s) => s.path().display().to_string(),
            Backend::Postgres(p) => p.location().to_string(),
        }
    }

    /// A consistent copy of the whole store in a temporary file (a hot backup): see
    /// [`SledStore::snapshot`]. A database is backed up with its own tools.
    pub fn snapshot(&self) -> Result<Snapshot, SnapshotError> {
        match &self.backend {
            Backend::Sled(s) => s.snapshot(),
            Backend::Postgres(_) => Err(SnapshotError::InDatabase),
        }
    }

    /// This gateway's name among those sharing the store: what its leases are held by. The
    /// daemon names itself by its host and its HTTP address (no two processes listen on one
    /// address), so a gateway restarted after a crash takes its own modems back at once, where
    /// another gateway waits for the leases to expire.
    pub fn gateway_id(&self) -> &str {
        &self.gateway
    }

    /// Whether other gateways may share this store (PostgreSQL): leases decide who drives a
    /// modem and who does the jobs only one may do.
    pub fn is_shared(&self) -> bool {
        matches!(self.backend, Backend::Postgres(_))
    }

    /// This store with leases that last `ttl` unless renewed (`[storage] lease_ttl`).
    pub fn with_lease_ttl(mut self, ttl: std::time::Duration) -> Store {
        self.lease_ttl = ttl.max(std::time::Duration::from_secs(1));
        self
    }

    /// How long a lease lasts unless renewed; holders renew every third of it.
    pub fn lease_ttl(&self) -> std::time::Duration {
        self.lease_ttl
    }

    /// Takes or renews lease `name` (see [`lease`]). With the embedded store every lease is
    /// this gateway's.
    pub fn hold(&self, name: &str) -> Result<Hold, StoreError> {
        match &self.backend {
            Backend::Sled(_) => Ok(self.local_leases.hold(name)),
            Backend::Postgres(p) => {
                let held = p.hold(name, &self.gateway, self.lease_ttl)?;
                // First held by this process: fresh, even when the row already names this
                // gateway (a previous run of it, killed, on the same host and address).
                let first_here =
                    matches!(self.local_leases.hold(name), Hold::Mine { fresh: true, .. });
                Ok(match held {
                    Hold::Mine { fresh: false, from } if first_here => {
                        Hold::Mine { fresh: true, from }
                    }
                    Hold::Theirs { .. } => {
                        self.local_leases.let_go(name);
                        held
                    }
                    other => other,
                })
            }
        }
    }

    /// This store, holding its leases as `id` (see [`Store::gateway_id`]).
    pub fn with_gateway_id(mut self, id: impl Into<Arc<str>>) -> Store {
        self.gateway = id.into();
        self
    }

    /// Whether this gateway does job `job` now (see [`lease::job_lease`]): always with the
    /// embedded store; with a shared one, while it holds the job's lease (taken or renewed by
    /// this call, so call it at least every third of [`Store::lease_ttl`]; the answer is kept
    /// for a sixth of it). `false` when the database does not answer.
    pub fn does_job(&self, job: &str) -> bool {
        let fresh_for = self.lease_ttl / 6;
        if let Some((at, mine)) = self.jobs.lock().unwrap_or_else(|e| e.into_inner()).get(job)
            && at.elapsed() < fresh_for
        {
            return *mine;
        }
        let mine = self.ask_for_job(job);
        self.jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(job.to_string(), (std::time::Instant::now(), mine));
        mine
    }

    fn ask_for_job(&self, job: &str) -> bool {
        match self.hold(&lease::job_lease(job)) {
            Ok(Hold::Mine {
                from: Some(from), ..
            }) => {
                tracing::info!(job, from = %from, "taking the job over: its gateway stopped renewing its lease");
                true
            }
            Ok(h) => h.is_mine(),
            Err(e) => {
                tracing::warn!(job, error = %e, "cannot ask for the job's lease");
                false
            }
        }
    }

    /// Gives lease `name` up, if this gateway holds it.
    pub fn let_go(&self, name: &str) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sled(_) => {
                self.local_leases.let_go(name);
                Ok(())
            }
            Backend::Postgres(p) => {
                self.local_leases.let_go(name);
                p.let_go(name, &self.gateway)
            }
        }
    }

    /// Removes the leases of a shared store that expired over an hour ago. Returns how many.
    pub fn forget_stale_leases(&self) -> Result<u64, StoreError> {
        match &self.backend {
            Backend::Sled(_) => Ok(0),
            Backend::Postgres(p) => p.forget_stale_leases(),
        }
    }

    /// Every lease held in a shared store, by name (none in the embedded one).
    pub fn leases(&self) -> Result<Vec<Lease>, StoreError> {
        match &self.backend {
            Backend::Sled(_) => Ok(Vec::new()),
            Backend::Postgres(p) => p.leases(),
        }
    }

    /// Which backend keeps the data: `sled` or `postgres`.
    pub fn backend_name(&self) -> &'static str {
        match &self.backend {
            Backend::Sled(_) => "sled",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// Makes every change made before it survive a power cut. With PostgreSQL each change is
    /// committed (with `synchronous_commit` on) before its call returns, so there is nothing
    /// left to wait for.
    pub async fn durable(&self) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.durable().await,
            Backend::Postgres(_) => Ok(()),
        }
    }

    /// Why the store cannot be written now, if it cannot.
    pub fn health(&self) -> Option<String> {
        match &self.backend {
            Backend::Sled(db) => db.health(),
            Backend::Postgres(db) => db.health(),
        }
    }

    /// Whether the store's directory takes a write and an fsync now (always `true` for
    /// PostgreSQL, whose disk is the database server's).
    pub fn directory_writable(&self) -> bool {
        match &self.backend {
            Backend::Sled(db) => db.directory_writable(),
            Backend::Postgres(_) => true,
        }
    }

    /// Changes a message in one transaction: see [`SledStore::update`].
    pub fn update<F, N>(&self, id: &str, f: F) -> Result<Option<(Message, bool)>, StoreError>
    where
        F: Fn(&mut Message) -> Option<N>,
        N: Into<Note>,
    {
        match &self.backend {
            Backend::Sled(db) => db.update(id, f),
            Backend::Postgres(db) => db.update(id, f),
        }
    }

    /// Every message to `to` (or about `invoice`) with its history: see
    /// [`SledStore::for_each_history`].
    pub fn for_each_history<E: From<StoreError>>(
        &self,
        to: Option<&str>,
        invoice: Option<&str>,
        f: impl FnMut(&Message, &History) -> Result<(), E>,
    ) -> Result<(), E> {
        match &self.backend {
            Backend::Sled(db) => db.for_each_history(to, invoice, f),
            Backend::Postgres(db) => db.for_each_history(to, invoice, f),
        }
    }

    /// Changes a plan and its messages in one transaction: see [`SledStore::change_plan`].
    pub fn change_plan<R>(
        &self,
        id: &str,
        decide: impl Fn(&Plan, &BTreeMap<String, Message>) -> Decision<R>,
        idempotency: Option<(&str, &IdempotencyRecord)>,
        actor: Option<&str>,
    ) -> Result<Option<(Plan, R)>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.change_plan(id, decide, idempotency, actor),
            Backend::Postgres(db) => db.change_plan(id, decide, idempotency, actor),
        }
    }

    /// The first due message `accept` takes: see [`SledStore::next_due_matching`].
    pub fn next_due_matching(
        &self,
        now: DateTime<Utc>,
        max_scan: usize,
        accept: &mut dyn FnMut(&Message) -> bool,
    ) -> Result<NextDue, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.next_due_matching(now, max_scan, accept),
            Backend::Postgres(db) => db.next_due_matching(now, max_scan, accept),
        }
    }

    /// Woken when another gateway sharing the store made a message due (PostgreSQL only): the
    /// dispatcher's wake-up, so a message accepted by one gateway is sent at once by another.
    pub fn due_elsewhere(&self) -> Option<Arc<tokio::sync::Notify>> {
        match &self.backend {
            Backend::Sled(_) => None,
            Backend::Postgres(p) => Some(p.due_elsewhere()),
        }
    }

    /// Live events from now on, from every gateway on the store.
    pub fn subscribe(&self) -> broadcast::Receiver<LiveEvent> {
        match &self.backend {
            Backend::Sled(db) => db.subscribe(),
            Backend::Postgres(db) => db.subscribe(),
        }
    }

    /// Appends an action to the audit log, chained to the entry before. Durable after
    /// [`Store::durable`].
    pub fn append_audit(&self, a: &NewAudit<'_>) -> Result<AuditEntry, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.append_audit(a),
            Backend::Postgres(db) => db.append_audit(a),
        }
    }

    /// Audit entries, oldest first, at most `limit`.
    pub fn audit_entries(
        &self,
        filter: &AuditFilter<'_>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.audit_entries(filter, limit),
            Backend::Postgres(db) => db.audit_entries(filter, limit),
        }
    }

    /// Checks the audit log's chain.
    pub fn verify_audit(&self) -> Result<AuditVerify, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.verify_audit(),
            Backend::Postgres(db) => db.verify_audit(),
        }
    }

    /// Erases `number` (E.164) from the store: its plans, its messages (with their history and
    /// replies; a tombstone without the number stays per message), its inbound messages, the
    /// deliveries and idempotency answers that name it and the unmatched reports to it; its
    /// opt-out stays as a salted hash. Each removal is atomic on its own: an erasure cut short
    /// by a crash is completed by running it again.
    pub fn erase_number(&self, number: &str, now: DateTime<Utc>) -> Result<Erased, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.erase_number(number, now),
            Backend::Postgres(db) => db.erase_number(number, now),
        }
    }

    /// A message's history with each entry's hash, checked; `None` when there is no such
    /// message.
    pub fn history(&self, id: &str) -> Result<Option<History>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.history(id),
            Backend::Postgres(db) => db.history(id),
        }
    }

    /// Checks every message's history, and the chains of tombstones of removed messages.
    pub fn verify_all_histories(&self) -> Result<VerifyReport, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.verify_all_histories(),
            Backend::Postgres(db) => db.verify_all_histories(),
        }
    }

    /// Every message to `to` and/or about `invoice`, with its history, oldest first (see
    /// [`Store::for_each_history`]).
    pub fn histories_for(
        &self,
        to: Option<&str>,
        invoice: Option<&str>,
    ) -> Result<Vec<(Message, History)>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.histories_for(to, invoice),
            Backend::Postgres(db) => db.histories_for(to, invoice),
        }
    }

    /// The counts of every hour from the one holding `from` to the one holding `to`, per modem,
    /// oldest first. Hours with nothing are left out.
    pub fn hourly(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<HourCount>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.hourly(from, to),
            Backend::Postgres(db) => db.hourly(from, to),
        }
    }

    /// The idempotency record for a key.
    pub fn idempotency(&self, key: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.idempotency(key),
            Backend::Postgres(db) => db.idempotency(key),
        }
    }

    /// Replaces the answer kept for an Idempotency-Key (call [`Store::durable`] after).
    pub fn put_idempotency(&self, key: &str, r: &IdempotencyRecord) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.put_idempotency(key, r),
            Backend::Postgres(db) => db.put_idempotency(key, r),
        }
    }

    /// One step of `[retention] idempotency_after`: records stored at or before `cutoff` are
    /// removed (a retry after that is a new request); at most `limit` looked at, from `after`.
    pub fn purge_idempotency(
        &self,
        cutoff: DateTime<Utc>,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<SweepStep, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.purge_idempotency(cutoff, after, limit),
            Backend::Postgres(db) => db.purge_idempotency(cutoff, after, limit),
        }
    }

    /// Stores a PDU that arrived on `modem` (SMSC field first); a sender in national format is
    /// read in `region` (see [`crate::numbers::normalise_sender`]). Call [`Store::durable`]
    /// before deleting it from the SIM.
    pub fn receive(
        &self,
        modem: &str,
        pdu: &[u8],
        region: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Received, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.receive(modem, pdu, region, now),
            Backend::Postgres(db) => db.receive(modem, pdu, region, now),
        }
    }

    /// Stores a modem's answer that could not be read as a message (`answer`: header and lines
    /// as received; `pdu`: whatever octets it held; `reason`: why), as an inbound message with
    /// `decode_error` and `raw_answer` set, so that its slot can be freed. The same answer seen
    /// again on that modem (a crash before the slot was freed) is a duplicate. Call
    /// [`Store::durable`] before deleting it from the SIM.
    pub fn receive_unreadable(
        &self,
        modem: &str,
        answer: &str,
        pdu: &[u8],
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<Received, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.receive_unreadable(modem, answer, pdu, reason, now),
            Backend::Postgres(db) => db.receive_unreadable(modem, answer, pdu, reason, now),
        }
    }

    /// Releases, as partial messages, the concatenated messages whose first part arrived
    /// before `cutoff` and that are still incomplete.
    pub fn release_stale_fragments(
        &self,
        cutoff: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Vec<InboundMessage>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.release_stale_fragments(cutoff, now),
            Backend::Postgres(db) => db.release_stale_fragments(cutoff, now),
        }
    }

    /// An inbound message by id.
    pub fn inbound(&self, id: &str) -> Result<Option<InboundMessage>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.inbound(id),
            Backend::Postgres(db) => db.inbound(id),
        }
    }

    /// Inbound messages newest first, filtered, one page.
    pub fn list_inbound(&self, f: &InboundFilter) -> Result<Vec<InboundMessage>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.list_inbound(f),
            Backend::Postgres(db) => db.list_inbound(f),
        }
    }

    /// One step of `[retention] inbound_after`: inbound messages received at or before
    /// `cutoff` and acted on are removed, oldest first; at most `limit` looked at.
    pub fn purge_inbound(
        &self,
        cutoff: DateTime<Utc>,
        limit: usize,
    ) -> Result<SweepStep, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.purge_inbound(cutoff, limit),
            Backend::Postgres(db) => db.purge_inbound(cutoff, limit),
        }
    }

    /// Number of concatenated messages' parts held, waiting for the rest.
    pub fn fragments_held(&self) -> usize {
        match &self.backend {
            Backend::Sled(db) => db.fragments_held(),
            Backend::Postgres(db) => db.fragments_held(),
        }
    }

    /// Messages whose `metadata.invoice` is `invoice`, newest first, at most `limit`.
    pub fn messages_about(&self, invoice: &str, limit: usize) -> Result<Vec<Message>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.messages_about(invoice, limit),
            Backend::Postgres(db) => db.messages_about(invoice, limit),
        }
    }

    /// The first waiting message due at or before `now`, by priority then due time. Also returns
    /// the earliest due time of all waiting messages when nothing is due yet.
    pub fn next_due(&self, now: DateTime<Utc>) -> Result<NextDue, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.next_due(now),
            Backend::Postgres(db) => db.next_due(now),
        }
    }

    /// Messages newest first, filtered, one page.
    pub fn list(&self, filter: &ListFilter) -> Result<Vec<Message>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.list(filter),
            Backend::Postgres(db) => db.list(filter),
        }
    }

    /// How many messages are in each status (kept in memory: O(1)).
    pub fn counts(&self) -> Result<Vec<(Status, u64)>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.counts(),
            Backend::Postgres(db) => db.counts(),
        }
    }

    /// Number of messages waiting in the queue.
    pub fn queue_depth(&self) -> usize {
        match &self.backend {
            Backend::Sled(db) => db.queue_depth(),
            Backend::Postgres(db) => db.queue_depth(),
        }
    }

    /// The oldest due time among waiting messages.
    pub fn oldest_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.oldest_due(),
            Backend::Postgres(db) => db.oldest_due(),
        }
    }

    /// Ids of messages in a status that is not waiting (for start-up recovery).
    pub fn ids_with_status(&self, s: Status) -> Result<Vec<String>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.ids_with_status(s),
            Backend::Postgres(db) => db.ids_with_status(s),
        }
    }

    /// Number of messages stored.
    pub fn len(&self) -> usize {
        match &self.backend {
            Backend::Sled(db) => db.len(),
            Backend::Postgres(db) => db.len(),
        }
    }

    /// Whether the store holds no message.
    pub fn is_empty(&self) -> bool {
        match &self.backend {
            Backend::Sled(db) => db.is_empty(),
            Backend::Postgres(db) => db.is_empty(),
        }
    }

    /// Publishes a stored inbound message.
    pub fn publish_inbound(&self, m: &InboundMessage) {
        match &self.backend {
            Backend::Sled(db) => db.publish_inbound(m),
            Backend::Postgres(db) => db.publish_inbound(m),
        }
    }

    /// Inserts new messages (all or none) and the idempotency record when given. Call
    /// [`Store::durable`] before acknowledging.
    pub fn insert(
        &self,
        messages: &[Message],
        idempotency: Option<(&str, &IdempotencyRecord)>,
    ) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.insert(messages, idempotency),
            Backend::Postgres(db) => db.insert(messages, idempotency),
        }
    }

    /// Inserts one new message (and the idempotency record when given) unless its number
    /// opted out: `Ok(Some(opt-out))` when it did, and then nothing is written. Call
    /// [`Store::durable`] before acknowledging.
    pub async fn insert_unless_opted_out(
        &self,
        m: &Message,
        idempotency: Option<(&str, &IdempotencyRecord)>,
    ) -> Result<Option<OptOut>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => {
                if let Some(o) = db.optout(&m.to)? {
                    return Ok(Some(o));
                }
                db.insert(std::slice::from_ref(m), idempotency)?;
                Ok(None)
            }
            Backend::Postgres(db) => db.insert_unless_opted_out(m, idempotency).await,
        }
    }

    /// A message by id.
    pub fn get(&self, id: &str) -> Result<Option<Message>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.get(id),
            Backend::Postgres(db) => db.get(id),
        }
    }

    /// A message's history, oldest first. The first event (accepted) comes from the record.
    pub fn events(&self, id: &str) -> Result<Vec<Event>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.events(id),
            Backend::Postgres(db) => db.events(id),
        }
    }

    /// A message and its history as of the same moment: entries written after the record was
    /// read are left out.
    pub fn get_with_events(&self, id: &str) -> Result<Option<(Message, Vec<Event>)>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.get_with_events(id),
            Backend::Postgres(db) => db.get_with_events(id),
        }
    }

    /// Replaces a message's text by its SHA-256 (see [`crate::domain::Redaction`]) and records
    /// a `text_redacted` history entry saying `reason` (by `actor`, the API key that asked, if
    /// one did). The history still verifies: the chain
    /// starts from the hash the first entry had with the text. The record's `updated_at` stays
    /// (it is when the message last moved, which retention counts from).
    pub fn redact_text(
        &self,
        id: &str,
        reason: &str,
        actor: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Redacted, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.redact_text(id, reason, actor, now),
            Backend::Postgres(db) => db.redact_text(id, reason, actor, now),
        }
    }

    /// Removes a message whole: its record, history and index entries, in one transaction
    /// with a [`Tombstone`](super::tombstones::Tombstone) saying `reason` in the day's chain.
    /// Returns the message as it was, `None` when there is no such message.
    pub fn remove_message(
        &self,
        id: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Message>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.remove_message(id, reason, now),
            Backend::Postgres(db) => db.remove_message(id, reason, now),
        }
    }

    /// One step of `[retention] message_text_after`: the texts of finished messages whose last
    /// change is at or before `cutoff` are redacted ([`Store::redact_text`]); at most `limit`
    /// index entries are looked at, from `after`.
    pub fn redact_finished_texts(
        &self,
        cutoff: DateTime<Utc>,
        now: DateTime<Utc>,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<SweepStep, StoreError> {
        let (found, next) = self.finished_before(after, cutoff, limit, |m| m.redacted.is_none())?;
        let mut done = 0;
        for m in found {
            if let Redacted::Now(_) =
                self.redact_text(&m.id, "retention: message_text_after", None, now)?
            {
                done += 1;
            }
        }
        Ok(SweepStep { done, next })
    }

    /// One step of `[retention] messages_after`: finished messages whose last change is at or
    /// before `cutoff` are removed with a tombstone ([`Store::remove_message`]); at most
    /// `limit` index entries are looked at, from `after`.
    pub fn remove_finished_messages(
        &self,
        cutoff: DateTime<Utc>,
        now: DateTime<Utc>,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<SweepStep, StoreError> {
        let (found, next) = self.finished_before(after, cutoff, limit, |_| true)?;
        let mut done = 0;
        for m in found {
            if self.remove_message(&m.id, "retention", now)?.is_some() {
                done += 1;
            }
        }
        Ok(SweepStep { done, next })
    }

    /// Finished messages whose last change is at or before `cutoff` and that `keep` keeps,
    /// from the cursor `after`; at most `limit` entries are looked at. The cursor to go on
    /// from, `None` at the end.
    fn finished_before(
        &self,
        after: Option<&[u8]>,
        cutoff: DateTime<Utc>,
        limit: usize,
        keep: impl Fn(&Message) -> bool,
    ) -> Result<(Vec<Message>, Option<Vec<u8>>), StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.finished_before(after, cutoff, limit, keep),
            Backend::Postgres(db) => db.finished_before(after, cutoff, limit, keep),
        }
    }

    /// Records an opt-out; `false` when the number was already opted out (the first record
    /// stays).
    pub fn opt_out(&self, o: &OptOut) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.opt_out(o),
            Backend::Postgres(db) => db.opt_out(o),
        }
    }

    /// Removes an opt-out (an erased number's too); the record removed, `None` when the
    /// number was not opted out.
    pub fn opt_in(&self, number: &str) -> Result<Option<OptOut>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.opt_in(number),
            Backend::Postgres(db) => db.opt_in(number),
        }
    }

    /// The opt-out of a number, if it is opted out; for an erased number, what is kept of it
    /// (see [`ErasedOptOut`]).
    pub fn optout(&self, number: &str) -> Result<Option<OptOut>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.optout(number),
            Backend::Postgres(db) => db.optout(number),
        }
    }

    /// Whether a number is opted out: two point lookups, the number and (for an erased number)
    /// its salted hash.
    pub fn is_opted_out(&self, number: &str) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.is_opted_out(number),
            Backend::Postgres(db) => db.is_opted_out(number),
        }
    }

    /// What is kept of an erased number's opt-out, if `number` is one.
    pub fn erased_optout(&self, number: &str) -> Result<Option<ErasedOptOut>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.erased_optout(number),
            Backend::Postgres(db) => db.erased_optout(number),
        }
    }

    /// Erases a number's opt-out: the entry under the number goes, one under its salted hash
    /// stays, so the number is still refused. `true` when the number was opted out.
    pub fn erase_optout(&self, number: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.erase_optout(number, now),
            Backend::Postgres(db) => db.erase_optout(number, now),
        }
    }

    /// Opted-out numbers in number order, after `after`, at most `limit` (1 to 1000).
    pub fn list_optouts(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<OptOut>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.list_optouts(after, limit),
            Backend::Postgres(db) => db.list_optouts(after, limit),
        }
    }

    /// Number of opted-out numbers.
    pub fn optouts_len(&self) -> usize {
        match &self.backend {
            Backend::Sled(db) => db.optouts_len(),
            Backend::Postgres(db) => db.optouts_len(),
        }
    }

    /// Adds deliveries to the outbox (all or none), due at once, and returns them with their
    /// sequence numbers; call [`Store::durable`] before relying on them.
    pub fn enqueue_webhooks(&self, new: &[NewWebhook]) -> Result<Vec<OutboxEntry>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.enqueue_webhooks(new),
            Backend::Postgres(db) => db.enqueue_webhooks(new),
        }
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
        match &self.backend {
            Backend::Sled(db) => db.due_webhooks(now, limit, busy),
            Backend::Postgres(db) => db.due_webhooks(now, limit, busy),
        }
    }

    /// The earliest next attempt time among pending entries not waiting behind another one.
    pub fn next_webhook_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.next_webhook_at(),
            Backend::Postgres(db) => db.next_webhook_at(),
        }
    }

    /// How many deliveries are pending (waiting for an attempt or a retry) and how many dead.
    pub fn outbox_counts(&self) -> Result<(usize, usize), StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.outbox_counts(),
            Backend::Postgres(db) => db.outbox_counts(),
        }
    }

    /// Removes a delivered entry; returns whether it was there.
    pub fn webhook_delivered(&self, seq: u64) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.webhook_delivered(seq),
            Backend::Postgres(db) => db.webhook_delivered(seq),
        }
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
        match &self.backend {
            Backend::Sled(db) => db.webhook_failed(seq, status, error, next_attempt_at),
            Backend::Postgres(db) => db.webhook_failed(seq, status, error, next_attempt_at),
        }
    }

    /// Dead entries in sequence order, starting after sequence `after` (the previous page's
    /// last), at most `limit` (1 to 1000).
    pub fn dead_webhooks(
        &self,
        limit: usize,
        after: Option<u64>,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.dead_webhooks(limit, after),
            Backend::Postgres(db) => db.dead_webhooks(limit, after),
        }
    }

    /// Pending entries that have failed at least once (the receiver answered an error or could
    /// not be reached) and wait for their next attempt, in sequence order after sequence
    /// `after`, at most `limit` (1 to 1000): deliveries failing but not yet given up.
    pub fn retrying_webhooks(
        &self,
        limit: usize,
        after: Option<u64>,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.retrying_webhooks(limit, after),
            Backend::Postgres(db) => db.retrying_webhooks(limit, after),
        }
    }

    /// The entry with this `webhook-id`, pending or dead (delivered entries are gone).
    pub fn webhook(&self, id: &str) -> Result<Option<OutboxEntry>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.webhook(id),
            Backend::Postgres(db) => db.webhook(id),
        }
    }

    /// Makes the entry with this `webhook-id` pending and due now, keeping its attempts;
    /// returns it after, or `None` when there is no such entry.
    pub fn retry_webhook(
        &self,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<OutboxEntry>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.retry_webhook(id, now),
            Backend::Postgres(db) => db.retry_webhook(id, now),
        }
    }

    /// One step of `[retention] dead_webhooks_after`: dead deliveries whose event was made at
    /// or before `cutoff` are removed; at most `limit` entries looked at, from `after`.
    pub fn purge_dead_webhooks(
        &self,
        cutoff: DateTime<Utc>,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<SweepStep, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.purge_dead_webhooks(cutoff, after, limit),
            Backend::Postgres(db) => db.purge_dead_webhooks(cutoff, after, limit),
        }
    }

    /// Stores a new plan and its messages in one transaction, unless its invoice has one.
    pub fn create_plan(
        &self,
        plan: &Plan,
        messages: &[Message],
        idempotency: Option<(&str, &IdempotencyRecord)>,
    ) -> Result<Created, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.create_plan(plan, messages, idempotency),
            Backend::Postgres(db) => db.create_plan(plan, messages, idempotency),
        }
    }

    /// A plan by id.
    pub fn plan(&self, id: &str) -> Result<Option<Plan>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.plan(id),
            Backend::Postgres(db) => db.plan(id),
        }
    }

    /// The plan of an invoice.
    pub fn plan_by_invoice(&self, invoice: &str) -> Result<Option<Plan>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.plan_by_invoice(invoice),
            Backend::Postgres(db) => db.plan_by_invoice(invoice),
        }
    }

    /// Plans, newest first, after the cursor `after` (a plan id), at most `limit`.
    pub fn list_plans(
        &self,
        after: Option<&str>,
        limit: usize,
        keep: impl Fn(&Plan) -> bool,
    ) -> Result<Vec<Plan>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.list_plans(after, limit, keep),
            Backend::Postgres(db) => db.list_plans(after, limit, keep),
        }
    }

    /// A template set through the API.
    pub fn template(&self, name: &str) -> Result<Option<StoredTemplate>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.template(name),
            Backend::Postgres(db) => db.template(name),
        }
    }

    /// Sets a template; call [`Store::durable`] before acknowledging.
    pub fn put_template(&self, name: &str, t: &StoredTemplate) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.put_template(name, t),
            Backend::Postgres(db) => db.put_template(name, t),
        }
    }

    /// Removes a template set through the API; whether there was one.
    pub fn delete_template(&self, name: &str) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.delete_template(name),
            Backend::Postgres(db) => db.delete_template(name),
        }
    }

    /// Every template set through the API, by name.
    pub fn templates(&self) -> Result<Vec<(String, StoredTemplate)>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.templates(),
            Backend::Postgres(db) => db.templates(),
        }
    }

    /// A number's messages, newest first, at most `limit`.
    pub fn messages_to(&self, to: &str, limit: usize) -> Result<Vec<Message>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.messages_to(to, limit),
            Backend::Postgres(db) => db.messages_to(to, limit),
        }
    }

    /// The numbers messages went to whose last `n` digits (at least 7) are those of `sender`, at
    /// most `max` of them. Reads the keys of the recipient index: for the rare sender that does
    /// not read as a number.
    pub fn numbers_ending_like(
        &self,
        sender: &str,
        n: usize,
        max: usize,
    ) -> Result<Vec<String>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.numbers_ending_like(sender, n, max),
            Backend::Postgres(db) => db.numbers_ending_like(sender, n, max),
        }
    }

    /// The message an answer from `to` at `now` belongs to: of the messages with
    /// `reply_options` that went out to it (sent or delivered) within `window` before `now`,
    /// the one sent last. With `unanswered`, only one without replies yet; `except` is left out.
    pub fn reply_target(
        &self,
        to: &str,
        now: DateTime<Utc>,
        window: chrono::Duration,
        unanswered: bool,
        except: Option<&str>,
    ) -> Result<Option<Message>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.reply_target(to, now, window, unanswered, except),
            Backend::Postgres(db) => db.reply_target(to, now, window, unanswered, except),
        }
    }

    /// Inbound messages stored but not yet acted on, oldest first.
    pub fn pending_inbound(&self) -> Result<Vec<InboundMessage>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.pending_inbound(),
            Backend::Postgres(db) => db.pending_inbound(),
        }
    }

    /// Records what was done with an inbound message (see [`InboundMessage::handling`]) and
    /// the message it answers; it is no longer pending.
    pub fn inbound_handled(
        &self,
        id: &str,
        handling: &str,
        in_reply_to: Option<&str>,
    ) -> Result<Option<InboundMessage>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.inbound_handled(id, handling, in_reply_to),
            Backend::Postgres(db) => db.inbound_handled(id, handling, in_reply_to),
        }
    }

    /// Applies a status report that arrived on `modem` (`pdu`: the raw PDU, SMSC field first,
    /// for deduplication and for the unmatched record). Call [`Store::durable`] before deleting
    /// it from the SIM. See the [module](self) for the matching rules.
    pub fn apply_status_report(
        &self,
        modem: &str,
        report: &StatusReport,
        pdu: &[u8],
        now: DateTime<Utc>,
    ) -> Result<ReportOutcome, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.apply_status_report(modem, report, pdu, now),
            Backend::Postgres(db) => db.apply_status_report(modem, report, pdu, now),
        }
    }

    /// Whether a sent part awaits this report: [`Store::apply_status_report`] would match it
    /// now. Reads only.
    pub fn report_awaited(
        &self,
        modem: &str,
        report: &StatusReport,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.report_awaited(modem, report, now),
            Backend::Postgres(db) => db.report_awaited(modem, report, now),
        }
    }

    /// Keeps a PDU that arrived as a status report but cannot be read as one, with `reason`.
    /// Deduplicated like [`Store::apply_status_report`].
    pub fn keep_unreadable_report(
        &self,
        modem: &str,
        pdu: &[u8],
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<ReportOutcome, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.keep_unreadable_report(modem, pdu, reason, now),
            Backend::Postgres(db) => db.keep_unreadable_report(modem, pdu, reason, now),
        }
    }

    /// Removes the index entries of parts sent before `cutoff` (normally now minus
    /// [`REPORT_MAX_AGE`]): their reports will not come, or would no longer be matched.
    /// Returns how many were removed.
    pub fn sweep_reports(&self, cutoff: DateTime<Utc>) -> Result<usize, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.sweep_reports(cutoff),
            Backend::Postgres(db) => db.sweep_reports(cutoff),
        }
    }

    /// Unmatched reports newest first, one page: those stored before `after` (the previous
    /// page's last id) when given.
    pub fn unmatched_reports(
        &self,
        limit: usize,
        after: Option<&str>,
    ) -> Result<Vec<UnmatchedReport>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.unmatched_reports(limit, after),
            Backend::Postgres(db) => db.unmatched_reports(limit, after),
        }
    }

    /// One step of `[retention] unmatched_after`: unmatched reports received at or before
    /// `cutoff` are removed, oldest first; at most `limit` looked at.
    pub fn purge_unmatched_reports(
        &self,
        cutoff: DateTime<Utc>,
        limit: usize,
    ) -> Result<SweepStep, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.purge_unmatched_reports(cutoff, limit),
            Backend::Postgres(db) => db.purge_unmatched_reports(cutoff, limit),
        }
    }

    /// How many unmatched reports are kept.
    pub fn unmatched_report_count(&self) -> usize {
        match &self.backend {
            Backend::Sled(db) => db.unmatched_report_count(),
            Backend::Postgres(db) => db.unmatched_report_count(),
        }
    }

    /// How many sent parts await a status report.
    pub fn reports_awaited(&self) -> usize {
        match &self.backend {
            Backend::Sled(db) => db.reports_awaited(),
            Backend::Postgres(db) => db.reports_awaited(),
        }
    }

    /// The tombstones written on `day` (UTC), oldest first, with their chain checked.
    pub fn tombstones_on(&self, day: NaiveDate) -> Result<TombstoneDay, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.tombstones_on(day),
            Backend::Postgres(db) => db.tombstones_on(day),
        }
    }

    /// Checks every day's chain of tombstones: how many tombstones, and the days whose chain
    /// breaks (named `tombstones of <day>`), with where.
    pub fn verify_tombstones(&self) -> Result<(u64, Vec<(String, String)>), StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.verify_tombstones(),
            Backend::Postgres(db) => db.verify_tombstones(),
        }
    }

    /// How many tombstones are kept.
    pub fn tombstones_len(&self) -> usize {
        match &self.backend {
            Backend::Sled(db) => db.tombstones_len(),
            Backend::Postgres(db) => db.tombstones_len(),
        }
    }
}

impl From<SledStore> for Store {
    fn from(s: SledStore) -> Store {
        Store {
            backend: Backend::Sled(s),
            gateway: lease::gateway_id().into(),
            local_leases: Arc::default(),
            lease_ttl: lease::DEFAULT_TTL,
            jobs: Arc::default(),
        }
    }
}
