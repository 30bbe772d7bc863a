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
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "schema",
        sql: include_str!("migrations/0001_schema.sql"),
    },
    Migration {
        version: 2,
        name: "views",
        sql: include_str!("migrations/0002_views.sql"),
    },
];

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

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::store::optout::OptOut;
    use crate::store::pg::testdb;
    use crate::store::{Reply, Status, test_message};

    /// The views billing systems read show what the store holds.
    #[test]
    fn the_sql_views_show_messages_history_replies_inbound_and_opt_outs() {
        let Some(url) = testdb::database() else {
            return;
        };
        let store = PgStore::connect(&url, Vec::new()).unwrap();
        let mut m = test_message("+447700900123");
        m.metadata = Some(serde_json::json!({"invoice": "INV-42"}));
        store.insert(std::slice::from_ref(&m), None).unwrap();
        let now = Utc::now();
        store
            .update(&m.id, |m| {
                m.status = Status::Sent;
                m.sent_at = Some(now);
                m.replies.push(Reply {
                    choice: Some("1".into()),
                    action: "call_me".into(),
                    text: "1".into(),
                    at: now,
                    inbound_id: "01ARZ3NDEKTSV4RRFFQ69G5FAV".into(),
                    matched_by: "reply_window".into(),
                });
                Some("sent")
            })
            .unwrap();
        store
            .opt_out(&OptOut {
                number: "+447700900999".into(),
                opted_out_at: now,
                source: "keyword".into(),
                keyword: Some("STOP".into()),
                inbound_id: None,
                note: None,
            })
            .unwrap();
        let rows = store
            .run(async {
                let c = store.client().await?;
                let q = |sql: &'static str| c.query(sql, &[]);
                Ok::<_, StoreError>((
                    q("SELECT id, status, to_number, text, invoice, sent_at FROM smsgate_messages")
                        .await
                        .map_err(db_error)?,
                    q("SELECT message_id, seq, status, kind FROM smsgate_message_history ORDER BY seq")
                        .await
                        .map_err(db_error)?,
                    q("SELECT message_id, invoice, choice, action FROM smsgate_replies")
                        .await
                        .map_err(db_error)?,
                    q("SELECT number, keyword FROM smsgate_optouts")
                        .await
                        .map_err(db_error)?,
                    q("SELECT count(*) FROM smsgate_inbound").await.map_err(db_error)?,
                ))
            })
            .unwrap();
        let (messages, history, replies, optouts, inbound) = rows;
        assert_eq!(messages.len(), 1);
        let r = &messages[0];
        assert_eq!(r.get::<_, String>(0), m.id);
        assert_eq!(r.get::<_, String>(1), "sent");
        assert_eq!(r.get::<_, String>(2), "+447700900123");
        assert_eq!(r.get::<_, String>(3), "hello");
        assert_eq!(r.get::<_, String>(4), "INV-42");
        assert!(r.get::<_, Option<chrono::DateTime<Utc>>>(5).is_some());
        let kinds: Vec<(i32, String)> = history.iter().map(|r| (r.get(1), r.get(2))).collect();
        assert_eq!(kinds, [(0, "queued".to_string()), (1, "sent".to_string())]);
        assert_eq!(replies.len(), 1);
        assert_eq!(replies[0].get::<_, String>(1), "INV-42");
        assert_eq!(replies[0].get::<_, String>(3), "call_me");
        assert_eq!(optouts.len(), 1);
        assert_eq!(optouts[0].get::<_, String>(0), "+447700900999");
        assert_eq!(inbound[0].get::<_, i64>(0), 0);
    }
}
