//! A whole store moved between the embedded store and PostgreSQL (`smsgate store copy`).
//!
//! Both directions speak in the embedded store's records: (tree of
//! [`TREES`](crate::store::backup::TREES), key, value), the records of an export. [`PgLoader`]
//! writes such records into the tables in bulk (many rows per statement, the whole copy one
//! transaction); [`PgStore::for_each_record`] reads the tables back as such records, from one
//! snapshot. Each record's JSON goes through the same serde types both backends read it with,
//! and the history entries and tombstones (hash-chained over their text) keep their text byte
//! for byte. The embedded store's index trees (`due`, `status`, `to`, `inbound_from`,
//! `plan_invoices`, `invoices`) are not tables here: the loader skips them and the reader makes
//! them from the records, as the embedded store writes them.

mod load;
mod read;
#[cfg(test)]
mod tests;

use super::StoreError;
use crate::store::backup::TREES;

pub use load::PgLoader;

/// Rows written per statement, and read per round trip.
const BATCH: usize = 1000;

/// The tables that hold a store's data (not the leases of running gateways, nor the schema's
/// own bookkeeping): a copy goes only into a database where all are empty.
pub const DATA_TABLES: [&str; 17] = [
    "messages",
    "message_events",
    "idempotency",
    "outbox",
    "inbound",
    "inbound_seen",
    "fragments",
    "optouts",
    "reports_awaited",
    "reports_unmatched",
    "plans",
    "templates",
    "hourly",
    "tombstones",
    "audit",
    "optouts_erased",
    "meta",
];

/// A record of the embedded store's layout: tree number, key, value.
pub type RecordSink<'a> = dyn FnMut(usize, &[u8], &[u8]) -> Result<(), StoreError> + 'a;

/// The number of the tree `name` in [`TREES`] (`usize::MAX`, which no tree has, for a name
/// that is not one: a test holds every name used here to the list).
fn tree(name: &str) -> usize {
    TREES.iter().position(|t| *t == name).unwrap_or(usize::MAX)
}
