//! A record's `body` column (the same JSON the embedded store keeps) and the other columns
//! read back, as store errors rather than panics: a bad row is a corrupt record.

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_postgres::Row;
use tokio_postgres::types::FromSql;

use crate::store::StoreError;

/// `v` as the JSON kept in a `body` column.
pub(super) fn to_body<T: Serialize>(v: &T) -> Result<serde_json::Value, StoreError> {
    serde_json::to_value(v).map_err(|e| StoreError::Io(e.to_string()))
}

/// A `body` column read back as `T`; `key` names the record in the error.
pub(super) fn from_body<T: DeserializeOwned>(
    key: &str,
    v: serde_json::Value,
) -> Result<T, StoreError> {
    serde_json::from_value(v).map_err(|e| StoreError::Corrupt {
        key: key.to_string(),
        detail: e.to_string(),
    })
}

/// Column `idx` of `row`; `key` names the record in the error.
pub(super) fn col<'a, T: FromSql<'a>>(
    row: &'a Row,
    idx: usize,
    key: &str,
) -> Result<T, StoreError> {
    row.try_get(idx).map_err(|e| StoreError::Corrupt {
        key: key.to_string(),
        detail: e.to_string(),
    })
}

/// A count read back as a `usize`.
pub(super) fn count(n: i64) -> usize {
    usize::try_from(n).unwrap_or(0)
}

/// The places a test's store can live: the embedded store in a temporary directory always,
/// and a fresh PostgreSQL database when one can be made here.
#[cfg(test)]
pub(crate) mod testing {
    use crate::store::pg::PgStore;
    use crate::store::{Store, StoreError};

    /// Where a test's store lives, to open it (again).
    pub(crate) enum Place {
        /// The embedded store's directory.
        Sled(tempfile::TempDir),
        /// A database's URL.
        Pg(String),
    }

    impl Place {
        /// The store kept here; opened again, it is the same data.
        pub(crate) fn open(&self) -> Store {
            match self {
                Place::Sled(d) => Store::open(d.path(), 16).unwrap(),
                Place::Pg(url) => Store::connect(url, vec![]).unwrap(),
            }
        }

        /// Which backend, for assertion messages.
        pub(crate) fn name(&self) -> &'static str {
            match self {
                Place::Sled(_) => "sled",
                Place::Pg(_) => "postgres",
            }
        }

        /// Runs `sql` on the database directly (a test altering rows behind the store's back).
        pub(crate) fn sql(
            &self,
            sql: &str,
            params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
        ) -> u64 {
            let Place::Pg(url) = self else {
                panic!("not a database");
            };
            let p = PgStore::connect(url, Vec::new()).unwrap();
            p.run(async {
                let c = p.client().await?;
                c.execute(sql, params).await.map_err(super::super::db_error)
            })
            .map_err(|e: StoreError| e.to_string())
            .unwrap()
        }

        /// The `bigint` that `sql` answers, read on the database directly.
        pub(crate) fn scalar(
            &self,
            sql: &str,
            params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
        ) -> i64 {
            let Place::Pg(url) = self else {
                panic!("not a database");
            };
            let p = PgStore::connect(url, Vec::new()).unwrap();
            p.run(async {
                let c = p.client().await?;
                let row = c
                    .query_one(sql, params)
                    .await
                    .map_err(super::super::db_error)?;
                Ok::<i64, StoreError>(row.get(0))
            })
            .map_err(|e| e.to_string())
            .unwrap()
        }
    }

    /// Every place a test can run here.
    pub(crate) fn places() -> Vec<Place> {
        let mut v = vec![Place::Sled(tempfile::tempdir().unwrap())];
        if let Some(url) = crate::store::pg::testdb::database() {
            v.push(Place::Pg(url));
        }
        v
    }
}
