//! `[storage]`: where messages are kept: the embedded store in a directory (sled, the
//! default, one gateway) or a PostgreSQL database (several gateways on one queue).

use serde::Deserialize;

use std::path::{Path, PathBuf};

/// The environment variable that gives (or overrides) `[storage] url`, so that the database's
/// password need not be written in the file.
pub const STORAGE_URL_ENV: &str = "SMSGATE_STORAGE_URL";

/// `[storage]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// Which store keeps the data.
    #[serde(default)]
    pub backend: StorageBackend,
    /// Directory of the embedded store (created if missing): required with `backend = "sled"`.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// The PostgreSQL database (`postgres://user:password@host/db` or `key=value` words):
    /// required with `backend = "postgres"`, from the file or `SMSGATE_STORAGE_URL`.
    #[serde(default)]
    pub url: Option<String>,
    /// Memory the embedded store may use as cache, in MiB.
    #[serde(default = "default_cache_mb")]
    pub cache_mb: u64,
    /// With PostgreSQL: how long a gateway's lease on a modem (or on a job only one gateway
    /// does) lasts unless renewed. The holder renews it every third of this; when it stops,
    /// another gateway takes over once it has expired.
    #[serde(default = "default_lease_ttl", with = "humantime_serde")]
    pub lease_ttl: std::time::Duration,
}

fn default_lease_ttl() -> std::time::Duration {
    crate::store::lease::DEFAULT_TTL
}

/// `[storage] backend`
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageBackend {
    /// The embedded store in `path`: one gateway.
    #[default]
    Sled,
    /// A PostgreSQL database at `url`: several gateways may share it.
    Postgres,
}

impl StorageConfig {
    /// The embedded store's directory, when the data is kept there.
    pub fn sled_path(&self) -> Option<&Path> {
        match self.backend {
            StorageBackend::Sled => self.path.as_deref(),
            StorageBackend::Postgres => None,
        }
    }

    /// The database's URL, when the data is kept in PostgreSQL.
    pub fn postgres_url(&self) -> Option<&str> {
        match self.backend {
            StorageBackend::Sled => None,
            StorageBackend::Postgres => self.url.as_deref(),
        }
    }

    /// Where the data is, in words for people and logs: the directory, or the database's
    /// URL without its password.
    pub fn describe(&self) -> String {
        match self.backend {
            StorageBackend::Sled => match &self.path {
                Some(p) => p.display().to_string(),
                None => "(no path)".into(),
            },
            StorageBackend::Postgres => match &self.url {
                Some(u) => format!("PostgreSQL {}", redacted_url(u)),
                None => "PostgreSQL (no url)".into(),
            },
        }
    }

    /// What is wrong with the section as a whole: the key at fault and why.
    pub(super) fn problem(&self) -> Option<(&'static str, String)> {
        match self.backend {
            StorageBackend::Sled if self.path.is_none() => Some((
                "path",
                "is required with backend = \"sled\" (the store's directory)".into(),
            )),
            StorageBackend::Sled => None,
            StorageBackend::Postgres => match &self.url {
                None => Some((
                    "url",
                    format!(
                        "is required with backend = \"postgres\": set it in the file or in \
                         {STORAGE_URL_ENV} (postgres://user@host/database)"
                    ),
                )),
                Some(u) => u.parse::<tokio_postgres::Config>().err().map(|e| {
                    (
                        "url",
                        format!("{} is not a PostgreSQL URL: {e}", redacted_url(u)),
                    )
                }),
            },
        }
    }
}

/// `url` without its password, for people and logs (see [`crate::store::pg::redacted`]).
pub fn redacted_url(url: &str) -> String {
    crate::store::pg::redacted(url)
}

fn default_cache_mb() -> u64 {
    32
}
