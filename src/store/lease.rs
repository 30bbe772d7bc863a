//! Leases: which gateway drives a modem, and which does a job only one may do at a time, when
//! several gateways share one store (PostgreSQL). A lease is held for a time and renewed by its
//! holder's heartbeat; when the holder stops renewing (it died, or lost the database), another
//! gateway takes it over once it has expired.
//!
//! The embedded store belongs to one process (sled locks its directory), so there every lease
//! is this gateway's.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

/// The lease of a modem, by its name.
pub fn modem_lease(modem: &str) -> String {
    format!("modem:{modem}")
}

/// The lease of a job only one gateway does at a time (`webhooks`, `retention`, ...).
pub fn job_lease(job: &str) -> String {
    format!("job:{job}")
}

/// What asking for a lease found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hold {
    /// This gateway holds it (until the next renewal is due). `fresh`: it did not hold it
    /// before this call (a first start, or taken over from `from`, whose lease expired).
    Mine {
        /// Not held by this gateway before.
        fresh: bool,
        /// The gateway whose expired lease was taken over.
        from: Option<String>,
    },
    /// Another gateway holds it.
    Theirs {
        /// That gateway.
        holder: String,
        /// Until when, unless renewed.
        until: DateTime<Utc>,
    },
}

impl Hold {
    /// Whether this gateway holds the lease.
    pub fn is_mine(&self) -> bool {
        matches!(self, Hold::Mine { .. })
    }
}

/// A lease as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lease {
    /// `modem:<name>` or `job:<name>`.
    pub name: String,
    /// The gateway holding it.
    pub owner: String,
    /// Until when, unless renewed.
    pub expires_at: DateTime<Utc>,
    /// Since when this owner holds it.
    pub acquired_at: DateTime<Utc>,
}

/// How long a lease lasts unless renewed, by default; holders renew it every third of it.
pub const DEFAULT_TTL: Duration = Duration::from_secs(15);

/// This gateway's name among those sharing a store: host, process and a random part (a
/// restarted process is a new holder).
pub fn gateway_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    format!(
        "{}:{}:{:04x}",
        if host.is_empty() { "localhost" } else { &host },
        std::process::id(),
        fastrand::u16(..)
    )
}

/// The embedded store's leases: all this process's; remembered only to say which are fresh.
#[derive(Debug, Default)]
pub(crate) struct LocalLeases(Mutex<HashSet<String>>);

impl LocalLeases {
    pub(crate) fn hold(&self, name: &str) -> Hold {
        let fresh = self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_string());
        Hold::Mine { fresh, from: None }
    }

    pub(crate) fn let_go(&self, name: &str) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
    }
}
