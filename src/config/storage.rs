//! `[storage]`: where messages are kept.

use serde::Deserialize;

use std::path::PathBuf;

/// `[storage]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// Directory of the message store (created if missing).
    pub path: PathBuf,
    /// Memory the store may use as cache, in MiB.
    #[serde(default = "default_cache_mb")]
    pub cache_mb: u64,
}

fn default_cache_mb() -> u64 {
    32
}
