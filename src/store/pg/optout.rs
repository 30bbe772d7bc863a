//! Opted-out numbers, in the `optouts` table while they are opted out, and in
//! `optouts_erased` under SHA-256 of the store's salt and the number once the number was erased
//! (so the number is still refused while it is no longer kept).
//!
//! The salt is 32 random bytes in `meta` (`optout_salt`), made by the first erasure: a gateway
//! inserts its own unless one is there, then reads back the one kept, so every gateway on the
//! database hashes alike. Lookups hash in the query (`sha256(salt || number)`); before any
//! erasure there is no salt and nothing is erased.

use chrono::{DateTime, Utc};

use super::body::{col, count, from_body, to_body};
use super::{PgStore, db_error};
use crate::store::StoreError;
use crate::store::optout::{ErasedOptOut, OptOut};

/// The `meta` name of the salt.
const SALT: &str = "optout_salt";

/// The salted hash of `$1`, the number, in SQL (NULL while there is no salt).
const HASH_SQL: &str =
    "sha256((SELECT value FROM meta WHERE name = 'optout_salt') || convert_to($1, 'UTF8'))";

/// SQL that is true when the number in parameter `param` (`$3`) is not opted out: neither
/// itself nor, once erased, its salted hash.
pub(super) fn not_opted_out(param: &str) -> String {
    format!(
        "NOT EXISTS (SELECT 1 FROM optouts WHERE number = {param}) AND NOT EXISTS \
         (SELECT 1 FROM optouts_erased WHERE hash = {})",
        HASH_SQL.replace("$1", param)
    )
}

/// The opt-out as the API shows it, for the number asked about (the store no longer keeps the
/// number itself): as the embedded store shows it.
fn erased_as_optout(e: ErasedOptOut, number: &str) -> OptOut {
    OptOut {
        number: number.to_string(),
        opted_out_at: e.opted_out_at,
        source: e.source,
        keyword: e.keyword,
        inbound_id: None,
        note: Some(format!(
            "kept after the number was erased on {}",
            e.erased_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )),
    }
}

/// SHA-256 of the salt and the number: the key of `optouts_erased`.
fn number_hash(salt: &[u8], number: &str) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(salt);
    h.update(number.as_bytes());
    h.finalize().to_vec()
}

/// The key an erased opt-out is reported under: never the number.
const ERASED: &str = "optouts_erased";

impl PgStore {
    /// Records an opt-out; `false` when the number was already opted out (the first record
    /// stays).
    pub fn opt_out(&self, o: &OptOut) -> Result<bool, StoreError> {
        let body = to_body(o)?;
        self.run(async {
            let c = self.client().await?;
            let n = c
                .execute(
                    "INSERT INTO optouts (number, body) VALUES ($1, $2)
                     ON CONFLICT (number) DO NOTHING",
                    &[&o.number, &body],
                )
                .await
                .map_err(db_error)?;
            Ok(n == 1)
        })
    }

    /// Removes an opt-out (an erased number's too); the record removed, `None` when the
    /// number was not opted out.
    pub fn opt_in(&self, number: &str) -> Result<Option<OptOut>, StoreError> {
        self.run(async {
            let mut c = self.client().await?;
            let tx = c.transaction().await.map_err(db_error)?;
            let erased = tx
                .query_opt(
                    &format!("DELETE FROM optouts_erased WHERE hash = {HASH_SQL} RETURNING body"),
                    &[&number],
                )
                .await
                .map_err(db_error)?;
            let kept = tx
                .query_opt(
                    "DELETE FROM optouts WHERE number = $1 RETURNING body",
                    &[&number],
                )
                .await
                .map_err(db_error)?;
            tx.commit().await.map_err(db_error)?;
            match (kept, erased) {
                (Some(r), _) => Ok(Some(from_body(number, col(&r, 0, number)?)?)),
                (None, Some(r)) => {
                    let e: ErasedOptOut = from_body(ERASED, col(&r, 0, ERASED)?)?;
                    Ok(Some(erased_as_optout(e, number)))
                }
                (None, None) => Ok(None),
            }
        })
    }

    /// The opt-out of a number, if it is opted out; for an erased number, what is kept of it.
    pub fn optout(&self, number: &str) -> Result<Option<OptOut>, StoreError> {
        // One round trip, on the hot path of every message accepted: the number's row, else
        // the row under its salted hash (an erased number stays refused).
        let (kept, erased) = self.run(async {
            let c = self.client().await?;
            let sql = format!(
                "SELECT body, true FROM optouts WHERE number = $1 \
                 UNION ALL SELECT body, false FROM optouts_erased WHERE hash = {HASH_SQL}"
            );
            let st = c.prepare_cached(&sql).await.map_err(db_error)?;
            let rows = c.query(&st, &[&number]).await.map_err(db_error)?;
            let mut kept = None;
            let mut erased = None;
            for r in &rows {
                if col::<bool>(r, 1, number)? {
                    kept = Some(from_body::<OptOut>(number, col(r, 0, number)?)?);
                } else {
                    erased = Some(from_body::<ErasedOptOut>(ERASED, col(r, 0, ERASED)?)?);
                }
            }
            Ok::<_, StoreError>((kept, erased))
        })?;
        Ok(kept.or_else(|| erased.map(|e| erased_as_optout(e, number))))
    }

    /// Whether a number is opted out: the number, or (for an erased number) its salted hash.
    pub fn is_opted_out(&self, number: &str) -> Result<bool, StoreError> {
        self.run(async {
            let c = self.client().await?;
            let row = c
                .query_one(
                    &format!(
                        "SELECT EXISTS (SELECT 1 FROM optouts WHERE number = $1)
                             OR EXISTS (SELECT 1 FROM optouts_erased WHERE hash = {HASH_SQL})"
                    ),
                    &[&number],
                )
                .await
                .map_err(db_error)?;
            col(&row, 0, ERASED)
        })
    }

    /// What is kept of an erased number's opt-out, if `number` is one.
    pub fn erased_optout(&self, number: &str) -> Result<Option<ErasedOptOut>, StoreError> {
        self.run(async {
            let c = self.client().await?;
            let row = c
                .query_opt(
                    &format!("SELECT body FROM optouts_erased WHERE hash = {HASH_SQL}"),
                    &[&number],
                )
                .await
                .map_err(db_error)?;
            row.map(|r| from_body(ERASED, col(&r, 0, ERASED)?))
                .transpose()
        })
    }

    /// Erases a number's opt-out: the row under the number goes, one under its salted hash
    /// stays, so the number is still refused. `true` when the number was opted out.
    pub fn erase_optout(&self, number: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let fresh = crate::util::secret_bytes(32)
            .map_err(|e| StoreError::Io(format!("no random bytes for the opt-out salt: {e}")))?;
        self.run(async {
            let mut c = self.client().await?;
            let tx = c.transaction().await.map_err(db_error)?;
            let Some(row) = tx
                .query_opt(
                    "DELETE FROM optouts WHERE number = $1 RETURNING body",
                    &[&number],
                )
                .await
                .map_err(db_error)?
            else {
                return Ok(false);
            };
            let o: OptOut = from_body(number, col(&row, 0, number)?)?;
            // Another gateway's salt, when it made one first, is the store's.
            tx.execute(
                "INSERT INTO meta (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
                &[&SALT, &fresh],
            )
            .await
            .map_err(db_error)?;
            let salt_row = tx
                .query_one("SELECT value FROM meta WHERE name = $1", &[&SALT])
                .await
                .map_err(db_error)?;
            let salt: Vec<u8> = col(&salt_row, 0, SALT)?;
            if salt.len() != 32 {
                return Err(StoreError::Corrupt {
                    key: SALT.into(),
                    detail: "not 32 bytes".into(),
                });
            }
            let kept = to_body(&ErasedOptOut {
                opted_out_at: o.opted_out_at,
                source: o.source,
                keyword: o.keyword,
                erased_at: now,
            })?;
            tx.execute(
                "INSERT INTO optouts_erased (hash, body) VALUES ($1, $2)
                 ON CONFLICT (hash) DO UPDATE SET body = EXCLUDED.body",
                &[&number_hash(&salt, number), &kept],
            )
            .await
            .map_err(db_error)?;
            tx.commit().await.map_err(db_error)?;
            Ok(true)
        })
    }

    /// Opted-out numbers in number order (bytes), after `after`, at most `limit` (1 to 1000).
    pub fn list_optouts(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<OptOut>, StoreError> {
        let limit = limit.clamp(1, 1000) as i64;
        self.run(async {
            let c = self.client().await?;
            let rows = c
                .query(
                    r#"SELECT number, body FROM optouts
                       WHERE $1::text IS NULL OR number COLLATE "C" > $1::text
                       ORDER BY number COLLATE "C" LIMIT $2"#,
                    &[&after, &limit],
                )
                .await
                .map_err(db_error)?;
            rows.iter()
                .map(|r| {
                    let n: String = col(r, 0, "optouts")?;
                    from_body(&n, col(r, 1, &n)?)
                })
                .collect()
        })
    }

    /// Number of opted-out numbers (0, logged, when the database does not answer).
    pub fn optouts_len(&self) -> usize {
        let n = self.run(async {
            let c = self.client().await?;
            let row = c
                .query_one("SELECT count(*) FROM optouts", &[])
                .await
                .map_err(db_error)?;
            col::<i64>(&row, 0, "optouts")
        });
        match n {
            Ok(n) => count(n),
            Err(e) => {
                tracing::warn!(error = %e, "cannot count the opt-outs");
                0
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::body::testing::{Place, places};
    use super::*;

    fn rec(n: &str) -> OptOut {
        OptOut {
            number: n.into(),
            opted_out_at: Utc::now(),
            source: "api".into(),
            keyword: None,
            inbound_id: None,
            note: None,
        }
    }

    #[tokio::test]
    async fn opt_out_in_and_list() {
        for p in places() {
            let b = p.name();
            {
                let s = p.open();
                assert!(s.opt_out(&rec("+12025550123")).unwrap(), "{b}");
                let mut again = rec("+12025550123");
                again.source = "keyword".into();
                assert!(!s.opt_out(&again).unwrap(), "{b}: already opted out");
                assert_eq!(s.optout("+12025550123").unwrap().unwrap().source, "api");
                assert!(s.opt_out(&rec("+12025550124")).unwrap());
                assert!(s.opt_out(&rec("+12025550125")).unwrap());
                s.durable().await.unwrap();
            }
            let s = p.open();
            assert!(s.is_opted_out("+12025550124").unwrap(), "{b}");
            assert_eq!(s.optouts_len(), 3, "{b}");
            let p1 = s.list_optouts(None, 2).unwrap();
            assert_eq!(p1.len(), 2, "{b}");
            let p2 = s.list_optouts(Some(&p1[1].number), 2).unwrap();
            assert_eq!(p2.len(), 1, "{b}");
            assert_eq!(p2[0].number, "+12025550125", "{b}");
            assert!(s.opt_in("+12025550124").unwrap().is_some(), "{b}");
            assert!(s.opt_in("+12025550124").unwrap().is_none(), "{b}");
            assert!(!s.is_opted_out("+12025550124").unwrap(), "{b}");
        }
    }

    /// Whether any record anywhere in the store holds `needle`.
    fn anywhere(p: &Place, s: &crate::store::Store, needle: &str) -> bool {
        match p {
            Place::Sled(_) => {
                let db = &s.sled().unwrap().inner.db;
                db.tree_names().iter().any(|t| {
                    db.open_tree(t).unwrap().iter().any(|r| {
                        let (k, v) = r.unwrap();
                        let both = [k.to_vec(), v.to_vec()].concat();
                        String::from_utf8_lossy(&both).contains(needle)
                    })
                })
            }
            Place::Pg(_) => {
                // Every row of every table, as text.
                p.scalar(
                    "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'
                       AND query_to_xml(format('SELECT 1 AS hit FROM %I r WHERE r::text LIKE %L',
                                               tablename, '%' || $1 || '%'), false, false, '')::text
                           LIKE '%<hit>%'",
                    &[&needle],
                ) > 0
            }
        }
    }

    #[tokio::test]
    async fn an_erased_opt_out_still_refuses_the_number() {
        for p in places() {
            let b = p.name();
            {
                let s = p.open();
                assert!(s.opt_out(&rec("+12025550123")).unwrap(), "{b}");
                assert!(
                    anywhere(&p, &s, "2025550123"),
                    "{b}: kept before the erasure"
                );
                assert!(s.erase_optout("+12025550123", Utc::now()).unwrap(), "{b}");
                assert!(!s.erase_optout("+12025550123", Utc::now()).unwrap(), "{b}");
                // Asked by the number, it is opted out still; listed, it is not there.
                let o = s.optout("+12025550123").unwrap().unwrap();
                assert_eq!(o.number, "+12025550123", "{b}");
                assert!(o.note.unwrap().contains("erased"), "{b}");
                assert!(s.list_optouts(None, 10).unwrap().is_empty(), "{b}");
                assert_eq!(s.optouts_len(), 0, "{b}");
                assert!(s.is_opted_out("+12025550123").unwrap(), "{b}");
                assert!(!s.is_opted_out("+12025550124").unwrap(), "{b}");
                let kept = s.erased_optout("+12025550123").unwrap().unwrap();
                assert_eq!(kept.source, "api", "{b}");
                assert!(s.erased_optout("+12025550124").unwrap().is_none(), "{b}");
                s.durable().await.unwrap();
            }
            // The salt is the store's: the same after a reopen, and the number is nowhere.
            let s = p.open();
            assert!(s.is_opted_out("+12025550123").unwrap(), "{b}");
            assert!(!anywhere(&p, &s, "2025550123"), "{b}");
            // A second erasure (another number) keeps the first salt: both still refused.
            assert!(s.opt_out(&rec("+12025550199")).unwrap());
            assert!(s.erase_optout("+12025550199", Utc::now()).unwrap(), "{b}");
            assert!(s.is_opted_out("+12025550123").unwrap(), "{b}");
            assert!(s.is_opted_out("+12025550199").unwrap(), "{b}");
            // An opt-in lets the number be sent to again.
            assert!(s.opt_in("+12025550123").unwrap().is_some(), "{b}");
            assert!(!s.is_opted_out("+12025550123").unwrap(), "{b}");
            assert!(s.optout("+12025550123").unwrap().is_none(), "{b}");
            assert!(s.opt_in("+12025550123").unwrap().is_none(), "{b}");
        }
    }
}
