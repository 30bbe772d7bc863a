//! Versioned schema migrations, applied in order in one transaction, under an
//! advisory lock: gateways starting together apply each one once, and a gateway never runs
//! on a schema newer than it knows.

use super::{PgStore, db_error};
use crate::store::StoreError;

/// One step of the schema.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Its version: 1, 2, ... in order.
    pub version: i32,
    /// A short name (the file's).
    pub name: &'static str,
    /// The SQL it runs.
    pub sql: &'static str,
}

/// Every migration this build knows, in order.
pub const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "schema",
    sql: include_str!("migrations/0001_schema.sql"),
}];

/// The advisory lock key migrations run under ("smsgate" in ASCII, as a number).
const MIGRATION_LOCK: i64 = 0x0073_6d73_6761_7465;

/// What [`PgStore::migrate`] found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Migrated {
    /// The schema's version before.
    pub from: i32,
    /// The versions applied now, in order.
    pub applied: Vec<i32>,
}

impl PgStore {
    /// Brings the schema up to date. Fails, changing nothing, when the database has a newer
    /// schema than this build knows (a newer gateway migrated it).
    pub fn migrate(&self) -> Result<Migrated, StoreError> {
        self.run(async {
            let mut c = self.client().await?;
            let tx = c.transaction().await.map_err(db_error)?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
                .await
                .map_err(db_error)?;
            tx.batch_execute(
                "CREATE TABLE IF NOT EXISTS smsgate_migrations (
                    version integer PRIMARY KEY,
                    name text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now())",
            )
            .await
            .map_err(db_error)?;
            let row = tx
                .query_one(
                    "SELECT coalesce(max(version), 0) FROM smsgate_migrations",
                    &[],
                )
                .await
                .map_err(db_error)?;
            let from: i32 = row.get(0);
            let known = MIGRATIONS.last().map_or(0, |m| m.version);
            if from > known {
                return Err(StoreError::Io(format!(
                    "the database's schema is version {from}, newer than this smsgate knows \
                     ({known}): upgrade smsgate"
                )));
            }
            let mut applied = Vec::new();
            for m in MIGRATIONS.iter().filter(|m| m.version > from) {
                tx.batch_execute(m.sql).await.map_err(|e| {
                    StoreError::Io(format!("migration {} ({}): {e}", m.version, m.name))
                })?;
                tx.execute(
                    "INSERT INTO smsgate_migrations (version, name) VALUES ($1, $2)",
                    &[&m.version, &m.name],
                )
                .await
                .map_err(db_error)?;
                applied.push(m.version);
            }
            tx.commit().await.map_err(db_error)?;
            Ok(Migrated { from, applied })
        })
    }
}
