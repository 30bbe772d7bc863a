//! The store's seam: [`Store`] is what the rest of the gateway holds, and behind it one of two
//! backends keeps the data: the embedded sled store ([`SledStore`], the default, one process)
//! or PostgreSQL ([`PgStore`], several gateways on one database; see docs/scaling.md).
//!
//! Both keep the same promises (docs/architecture.md, "The store's seam"): an acknowledged
//! change is durable, a change and its history entry, webhook deliveries and counts are one
//! transaction, scans come back in the same order. The methods here only choose the backend
//! (or, where both backends would do the same, do it once over their primitives); they are
//! grouped by aggregate in the files below this one.

#![allow(clippy::too_many_arguments)]

mod audit;
mod inbound;
mod messages;
mod optouts;
mod outbox;
mod plans;

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
