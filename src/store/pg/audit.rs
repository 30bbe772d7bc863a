//! The audit log, in the `audit` table: one row per admin action, by ULID, hash-chained as in
//! the embedded store (each entry carries the `hash` of the one before and its own, the
//! SHA-256 of its JSON without `hash`).
//!
//! The chain's head (the last entry's id and hash, and the count) is kept in `meta`
//! (`audit_head`), so a log cut short shows. Gateways appending at once take the same
//! transaction-scoped advisory lock before reading the head, so they extend one chain.

use super::body::{col, from_body, to_body};
use super::{PgStore, db_error};
use crate::store::StoreError;
use crate::store::audit::{AuditChain, AuditEntry, AuditFilter, AuditVerify, Head, NewAudit};
use crate::store::keys::encode;

/// The advisory lock appends take (`pg_advisory_xact_lock`): "smsaudit".
const AUDIT_LOCK: i64 = 0x736d_7361_7564_6974;

/// The `meta` name of the chain's head.
pub(super) const HEAD: &str = "audit_head";

/// Rows read at a time while the chain is checked.
const VERIFY_PAGE: i64 = 1000;

/// The head kept in `meta`, if any.
async fn read_head(c: &impl tokio_postgres::GenericClient) -> Result<Option<Head>, StoreError> {
    let row = c
        .query_opt("SELECT value FROM meta WHERE name = $1", &[&HEAD])
        .await
        .map_err(db_error)?;
    let Some(row) = row else {
        return Ok(None);
    };
    let v: Vec<u8> = col(&row, 0, HEAD)?;
    serde_json::from_slice(&v)
        .map(Some)
        .map_err(|e| StoreError::Corrupt {
            key: HEAD.into(),
            detail: e.to_string(),
        })
}

impl PgStore {
    /// Appends an action to the audit log, chained to the entry before; committed when it
    /// returns.
    pub fn append_audit(&self, a: &NewAudit<'_>) -> Result<AuditEntry, StoreError> {
        self.run(async {
            let mut c = self.client().await?;
            let tx = c.transaction().await.map_err(db_error)?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&AUDIT_LOCK])
                .await
                .map_err(db_error)?;
            let head = read_head(&*tx).await?;
            let (e, new_head) = a.chained(head.as_ref())?;
            let new_head = encode(&new_head)?;
            tx.execute(
                "INSERT INTO audit (id, actor, action, at, body) VALUES ($1, $2, $3, $4, $5)",
                &[&e.id, &e.actor, &e.action, &e.at, &to_body(&e)?],
            )
            .await
            .map_err(db_error)?;
            tx.execute(
                "INSERT INTO meta (name, value) VALUES ($1, $2)
                 ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
                &[&HEAD, &new_head],
            )
            .await
            .map_err(db_error)?;
            tx.commit().await.map_err(db_error)?;
            Ok(e)
        })
    }

    /// Audit entries, oldest first, at most `limit`.
    pub fn audit_entries(
        &self,
        filter: &AuditFilter<'_>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        // An entry's id is never before its time, so the ids from `since` on hold every entry
        // from `since` on; an `after` that is no ULID is ignored, as the embedded store does.
        let from = filter
            .since
            .map(|t| ulid::Ulid::from_parts(t.timestamp_millis().max(0) as u64, 0).to_string());
        let after = filter
            .after
            .and_then(|a| ulid::Ulid::from_string(a).ok())
            .map(|u| u.to_string());
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.run(async {
            let c = self.client().await?;
            let rows = c
                .query(
                    r#"SELECT id, body FROM audit
                       WHERE ($1::text IS NULL OR id COLLATE "C" >= $1::text)
                         AND ($2::text IS NULL OR id COLLATE "C" > $2::text)
                         AND ($3::text IS NULL OR actor = $3::text)
                         AND ($4::timestamptz IS NULL OR at >= $4::timestamptz)
                       ORDER BY id COLLATE "C" LIMIT $5"#,
                    &[&from, &after, &filter.actor, &filter.since, &limit],
                )
                .await
                .map_err(db_error)?;
            rows.iter()
                .map(|r| {
                    let id: String = col(r, 0, "audit")?;
                    from_body(&id, col(r, 1, &id)?)
                })
                .collect()
        })
    }

    /// Checks the audit log's chain: every entry as it was written, linked to the one before,
    /// the last one the head's.
    pub fn verify_audit(&self) -> Result<AuditVerify, StoreError> {
        let mut chain = AuditChain::default();
        let mut cursor = String::new();
        loop {
            let rows = self.run(async {
                let c = self.client().await?;
                c.query(
                    r#"SELECT id, body FROM audit WHERE id COLLATE "C" > $1
                       ORDER BY id COLLATE "C" LIMIT $2"#,
                    &[&cursor, &VERIFY_PAGE],
                )
                .await
                .map_err(db_error)
            })?;
            for r in &rows {
                let id: String = col(r, 0, "audit")?;
                chain.entry(&id, col(r, 1, &id).and_then(|v| from_body(&id, v)))?;
                cursor = id;
            }
            if (rows.len() as i64) < VERIFY_PAGE {
                break;
            }
        }
        let head = if chain.wants_head() {
            self.run(async {
                let c = self.client().await?;
                let client: &tokio_postgres::Client = &c;
                read_head(client).await
            })?
        } else {
            None
        };
        Ok(chain.verdict(head))
    }
}

#[cfg(test)]
mod tests {
    use super::super::body::testing::{Place, places};
    use super::*;
    use crate::store::Store;
    use chrono::Utc;

    fn action<'a>(actor: &'a str, action: &'a str, target: &'a str) -> NewAudit<'a> {
        NewAudit {
            actor,
            action,
            target: Some(target),
            details: Some(serde_json::json!({"note": "x", "n": 1.5})),
            at: Utc::now(),
        }
    }

    /// The same pinned hash as the embedded store's: a log hashes alike on both backends.
    #[test]
    fn the_hash_is_pinned() {
        let e = AuditEntry {
            id: "01KBVZ0000AAAAAAAAAAAAAAAA".into(),
            at: "2026-12-07T06:00:00Z".parse().unwrap(),
            actor: "ops".into(),
            action: "optout.add".into(),
            target: Some("+12025550123".into()),
            details: Some(serde_json::json!({"newly": true})),
            prev_hash: Some("00ff".into()),
            hash: String::new(),
        };
        assert_eq!(
            e.computed_hash().unwrap(),
            "f531d19f20ebd57cccdfcebea090246c6115ada64609df1b3c4d5171f4172bc0"
        );
    }

    /// Writes `e` as the entry of its id, behind the store's back.
    fn put_raw(p: &Place, s: &Store, e: &AuditEntry) {
        match p {
            Place::Sled(_) => {
                let key = crate::store::id_key(&e.id).unwrap();
                s.sled()
                    .unwrap()
                    .inner
                    .audit
                    .insert(key, encode(e).unwrap())
                    .unwrap();
            }
            Place::Pg(_) => {
                let body = to_body(e).unwrap();
                assert_eq!(
                    p.sql("UPDATE audit SET body = $2 WHERE id = $1", &[&e.id, &body]),
                    1
                );
            }
        }
    }

    /// Removes the entry `id`, behind the store's back.
    fn remove_raw(p: &Place, s: &Store, id: &str) {
        match p {
            Place::Sled(_) => {
                let key = crate::store::id_key(id).unwrap();
                s.sled().unwrap().inner.audit.remove(key).unwrap();
            }
            Place::Pg(_) => {
                assert_eq!(p.sql("DELETE FROM audit WHERE id = $1", &[&id]), 1);
            }
        }
    }

    #[tokio::test]
    async fn the_chain_verifies_and_an_edited_entry_shows() {
        for p in places() {
            let s = p.open();
            let n = p.name();
            assert!(s.verify_audit().unwrap().verified, "{n}");
            let a = s
                .append_audit(&action("ops", "template.put", "first"))
                .unwrap();
            let b = s
                .append_audit(&action("billing", "optout.add", "+12025550123"))
                .unwrap();
            let c = s.append_audit(&action("ops", "reload", "config")).unwrap();
            assert_eq!(b.prev_hash.as_deref(), Some(a.hash.as_str()), "{n}");
            assert!(a.id < b.id && b.id < c.id, "{n}: ids keep the order");
            let v = s.verify_audit().unwrap();
            assert_eq!((v.entries, v.verified), (3, true), "{n}: {v:?}");

            // Filters and paging.
            let ops = s
                .audit_entries(
                    &AuditFilter {
                        actor: Some("ops"),
                        ..AuditFilter::default()
                    },
                    10,
                )
                .unwrap();
            assert_eq!(
                ops.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
                [a.id.as_str(), c.id.as_str()],
                "{n}"
            );
            let page = s
                .audit_entries(
                    &AuditFilter {
                        after: Some(&a.id),
                        ..AuditFilter::default()
                    },
                    1,
                )
                .unwrap();
            assert_eq!(page, vec![b.clone()], "{n}");
            let later = s
                .audit_entries(
                    &AuditFilter {
                        since: Some(Utc::now() + chrono::Duration::hours(1)),
                        ..AuditFilter::default()
                    },
                    10,
                )
                .unwrap();
            assert!(later.is_empty(), "{n}");

            // Edit the middle entry's actor, keeping its stored hash: it no longer matches.
            let mut edited = b.clone();
            edited.actor = "someone-else".into();
            put_raw(&p, &s, &edited);
            let v = s.verify_audit().unwrap();
            assert!(!v.verified, "{n}");
            assert!(
                v.problem.as_deref().unwrap().contains(&b.id),
                "{n}: {:?}",
                v.problem
            );

            // Its hash made again to match: the next entry no longer links to it.
            edited.hash = edited.computed_hash().unwrap();
            put_raw(&p, &s, &edited);
            let v = s.verify_audit().unwrap();
            assert!(!v.verified, "{n}");
            assert!(
                v.problem.as_deref().unwrap().contains(&c.id),
                "{n}: {:?}",
                v.problem
            );

            // Put back, then the last entry removed: the head shows it.
            put_raw(&p, &s, &b);
            assert!(s.verify_audit().unwrap().verified, "{n}");
            remove_raw(&p, &s, &c.id);
            let v = s.verify_audit().unwrap();
            assert!(!v.verified, "{n}");
            assert!(v.problem.unwrap().contains("end"), "{n}");
        }
    }

    /// Two gateways appending at once keep one chain.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn gateways_appending_at_once_keep_one_chain() {
        let Some(url) = crate::store::pg::testdb::database() else {
            return;
        };
        let gateways: Vec<Store> = (0..2)
            .map(|_| Store::connect(&url, vec![]).unwrap())
            .collect();
        let handles: Vec<_> = gateways
            .iter()
            .enumerate()
            .map(|(g, s)| {
                let s = s.clone();
                std::thread::spawn(move || {
                    for i in 0..25 {
                        let target = format!("{g}-{i}");
                        s.append_audit(&action("ops", "reload", &target)).unwrap();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let v = gateways[0].verify_audit().unwrap();
        assert_eq!((v.entries, v.verified), (50, true), "{v:?}");
        let all = gateways[1]
            .audit_entries(&AuditFilter::default(), 100)
            .unwrap();
        assert_eq!(all.len(), 50);
        assert!(
            all.windows(2)
                .all(|w| w[1].prev_hash.as_ref() == Some(&w[0].hash))
        );
    }
}
