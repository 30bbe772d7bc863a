//! Idempotency records, in the `idempotency` table: what a retried POST with the same
//! `Idempotency-Key` gets back.
//!
//! The API names a record `<API key name> NUL <Idempotency-Key>`; PostgreSQL's text holds no
//! NUL, so the two halves are the table's two key columns. A retention sweep's cursor is that
//! same name (as bytes), and rows are walked in its byte order.

use chrono::{DateTime, Utc};

use super::body::{col, from_body, to_body};
use super::{PgStore, db_error};
use crate::store::{IdempotencyRecord, StoreError, SweepStep};

/// (API key name, Idempotency-Key) of a record's name; a name without a NUL has an empty
/// API key name.
fn split(key: &str) -> Result<(&str, &str), StoreError> {
    let (name, k) = key.split_once('\0').unwrap_or(("", key));
    if k.contains('\0') {
        return Err(StoreError::Io(
            "an Idempotency-Key may not hold a NUL byte".into(),
        ));
    }
    Ok((name, k))
}

/// A record's name again from its two columns.
fn joined(name: &str, key: &str) -> String {
    format!("{name}\0{key}")
}

impl PgStore {
    /// The idempotency record for a key.
    pub fn idempotency(&self, key: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        let (name, k) = split(key)?;
        self.run(async {
            let c = self.client().await?;
            let row = c
                .query_opt(
                    "SELECT body FROM idempotency WHERE key_name = $1 AND key = $2",
                    &[&name, &k],
                )
                .await
                .map_err(db_error)?;
            row.map(|r| from_body(key, col(&r, 0, key)?)).transpose()
        })
    }

    /// Replaces the answer kept for an Idempotency-Key.
    pub fn put_idempotency(&self, key: &str, r: &IdempotencyRecord) -> Result<(), StoreError> {
        let (name, k) = split(key)?;
        let body = to_body(r)?;
        self.run(async {
            let c = self.client().await?;
            c.execute(
                "INSERT INTO idempotency (key_name, key, at, body) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (key_name, key) DO UPDATE SET at = EXCLUDED.at, body = EXCLUDED.body",
                &[&name, &k, &r.at, &body],
            )
            .await
            .map_err(db_error)?;
            Ok(())
        })
    }

    /// One step of `[retention] idempotency_after`: records stored at or before `cutoff` are
    /// removed (a retry after that is a new request); at most `limit` looked at, after the
    /// record named `after` (`None`: from the first).
    pub fn purge_idempotency(
        &self,
        cutoff: DateTime<Utc>,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<SweepStep, StoreError> {
        let limit = limit.max(1);
        let from = after.map(|a| String::from_utf8_lossy(a).into_owned());
        // A cursor that names no record (not UTF-8 or holding two NULs) starts again.
        let from = from.as_deref().and_then(|f| split(f).ok());
        let (from_name, from_key) = (from.map(|f| f.0), from.map(|f| f.1));
        let n = i64::try_from(limit).unwrap_or(i64::MAX);
        self.run(async {
            let c = self.client().await?;
            let rows = c
                .query(
                    r#"SELECT key_name, key, at FROM idempotency
                       WHERE $1::text IS NULL
                          OR (key_name COLLATE "C", key COLLATE "C") > ($1::text, $2::text)
                       ORDER BY key_name COLLATE "C", key COLLATE "C"
                       LIMIT $3"#,
                    &[&from_name, &from_key, &n],
                )
                .await
                .map_err(db_error)?;
            let mut names = Vec::new();
            let mut keys = Vec::new();
            let mut last = None;
            for r in &rows {
                let name: String = col(r, 0, "idempotency")?;
                let key: String = col(r, 1, &name)?;
                let at: DateTime<Utc> = col(r, 2, &key)?;
                last = Some(joined(&name, &key));
                if at <= cutoff {
                    names.push(name);
                    keys.push(key);
                }
            }
            let mut step = SweepStep::default();
            if !names.is_empty() {
                // The time checked again: a record replaced meanwhile is a new one.
                let done = c
                    .execute(
                        "DELETE FROM idempotency
                         WHERE (key_name, key) IN (SELECT * FROM unnest($1::text[], $2::text[]))
                           AND at <= $3",
                        &[&names, &keys, &cutoff],
                    )
                    .await
                    .map_err(db_error)?;
                step.done = usize::try_from(done).unwrap_or(usize::MAX);
            }
            if rows.len() >= limit {
                step.next = last.map(String::into_bytes);
            }
            Ok(step)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::body::testing::places;
    use super::*;
    use crate::store::idempotency::test_record;
    use crate::store::test_message;

    #[tokio::test]
    async fn an_idempotency_key_is_written_once() {
        for p in places() {
            let store = p.open();
            let b = p.name();
            let rec = test_record(serde_json::json!({"id": "a"}));
            match store.insert(&[test_message("+12025550100")], Some(("k1", &rec))) {
                // Messages are another part of the database backend.
                Err(e) if e.to_string().contains("not available with PostgreSQL") => continue,
                r => r.unwrap(),
            }
            let again = store.insert(&[test_message("+12025550101")], Some(("k1", &rec)));
            assert!(
                matches!(again, Err(StoreError::Conflict(_))),
                "{b}: {again:?}"
            );
            // Nothing of the refused insert was written.
            assert!(
                store.messages_to("+12025550101", 10).unwrap().is_empty(),
                "{b}"
            );
            assert_eq!(
                store.messages_to("+12025550100", 10).unwrap().len(),
                1,
                "{b}"
            );
        }
    }

    #[tokio::test]
    async fn records_are_kept_replaced_and_swept_in_bounded_steps() {
        let now = Utc::now();
        for p in places() {
            let store = p.open();
            let b = p.name();
            let mut old = test_record(serde_json::json!({"id": "old"}));
            old.at = now - chrono::Duration::days(2);
            let new = test_record(serde_json::json!({"id": "new"}));
            // Five old records and two new ones, under two API keys.
            for k in ["a", "b", "c"] {
                store
                    .put_idempotency(&format!("billing\0{k}"), &old)
                    .unwrap();
            }
            for k in ["a", "b"] {
                store.put_idempotency(&format!("ops\0{k}"), &old).unwrap();
            }
            store.put_idempotency("billing\0new", &new).unwrap();
            store.put_idempotency("ops\0new", &new).unwrap();
            assert_eq!(
                store.idempotency("billing\0a").unwrap(),
                Some(old.clone()),
                "{b}"
            );
            assert_eq!(store.idempotency("ops\0c").unwrap(), None, "{b}");
            // Replaced: the new answer and time.
            store.put_idempotency("ops\0b", &new).unwrap();
            assert_eq!(
                store.idempotency("ops\0b").unwrap(),
                Some(new.clone()),
                "{b}"
            );

            let cutoff = now - chrono::Duration::days(1);
            let mut after: Option<Vec<u8>> = None;
            let mut done = 0;
            let mut steps = 0;
            loop {
                let step = store
                    .purge_idempotency(cutoff, after.as_deref(), 3)
                    .unwrap();
                done += step.done;
                steps += 1;
                assert!(steps <= 4, "{b}: the sweep ends");
                match step.next {
                    Some(n) => after = Some(n),
                    None => break,
                }
            }
            // Seven records, three a step: the third step reads to the end.
            assert_eq!((done, steps), (4, 3), "{b}");
            assert_eq!(
                store.purge_idempotency(cutoff, None, 100).unwrap(),
                SweepStep::default(),
                "{b}"
            );
            for k in ["billing\0a", "billing\0b", "billing\0c", "ops\0a"] {
                assert_eq!(store.idempotency(k).unwrap(), None, "{b}: {k:?}");
            }
            for k in ["billing\0new", "ops\0new", "ops\0b"] {
                assert_eq!(
                    store.idempotency(k).unwrap(),
                    Some(new.clone()),
                    "{b}: {k:?}"
                );
            }
        }
    }
}
