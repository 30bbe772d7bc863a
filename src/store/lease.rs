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

/// The lease of a reminder step's precheck (one gateway asks the billing system); it goes
/// with the step (sent, or given up after an answer that holds it back).
pub fn precheck_lease(message_id: &str) -> String {
    format!("precheck:{message_id}")
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

/// The host's name (`localhost` when it cannot be read).
pub fn host_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    if host.is_empty() {
        "localhost".into()
    } else {
        host
    }
}

/// A name for a gateway that has no address of its own yet: host, process and a random part.
pub fn gateway_id() -> String {
    format!(
        "{}:{}:{:04x}",
        host_name(),
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
