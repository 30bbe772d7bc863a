//! Opening a store while the daemon is stopped, and telling whether it runs: what every
//! offline tool starts with.

use std::fs::File;
use std::path::{Path, PathBuf};

use super::{TREES, TreeCount};
use crate::store::{SledStore, StoreError};

/// sled's own tree, which this store does not use.
const SLED_DEFAULT_TREE: &[u8] = b"__sled__default";

/// Cache of a store opened by these tools, in MiB.
pub(super) const CACHE_MB: u64 = 64;

/// Why [`Store::open_offline`] failed.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The directory holds no store.
    #[error("{}: no store here", .0.display())]
    NoStore(PathBuf),
    /// Another process (the daemon) holds the store.
    #[error("the store in {} is in use: the daemon seems to be running; stop it first", .0.display())]
    InUse(PathBuf),
    /// sled or the file system failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Whether another process holds the store in `dir` (sled locks its `db` file while open).
pub fn in_use(dir: &Path) -> Result<bool, StoreError> {
    use nix::errno::Errno;
    use nix::fcntl::{Flock, FlockArg};
    let path = dir.join("db");
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => {
            return Err(StoreError::Io(format!(
                "cannot open {}: {e}",
                path.display()
            )));
        }
    };
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        // Dropping the lock releases it.
        Ok(_lock) => Ok(false),
        Err((_, Errno::EWOULDBLOCK)) => Ok(true),
        Err((_, e)) => Err(StoreError::Io(format!(
            "cannot test the lock on {}: {e}",
            path.display()
        ))),
    }
}

pub(super) fn sync_file(path: &Path) -> Result<(), StoreError> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| StoreError::Io(format!("fsync {}: {e}", path.display())))
}

impl SledStore {
    /// Opens an existing store for the offline tools: [`OpenError::NoStore`] when `path` holds
    /// none (nothing is created), [`OpenError::InUse`] when the daemon holds it.
    pub fn open_offline(path: &Path) -> Result<SledStore, OpenError> {
        if !path.join("db").is_file() {
            return Err(OpenError::NoStore(path.to_path_buf()));
        }
        if in_use(path)? {
            return Err(OpenError::InUse(path.to_path_buf()));
        }
        SledStore::open(path, CACHE_MB).map_err(|e| match e {
            StoreError::Io(m) if m.contains("could not acquire lock") => {
                OpenError::InUse(path.to_path_buf())
            }
            e => OpenError::Store(e),
        })
    }

    /// A tree by its name in [`TREES`].
    pub(super) fn tree(&self, name: &str) -> Option<&sled::Tree> {
        let i = &self.inner;
        Some(match name {
            "messages" => &i.messages,
            "due" => &i.due,
            "status" => &i.status,
            "to" => &i.to,
            "events" => &i.events,
            "idempotency" => &i.idempotency,
            "outbox" => &i.outbox,
            "inbound" => &i.inbound,
            "inbound_from" => &i.inbound_from,
            "inbound_seen" => &i.inbound_seen,
            "fragments" => &i.fragments,
            "optouts" => &i.optouts,
            "inbound_pending" => &i.inbound_pending,
            "reports" => &i.reports,
            "reports_unmatched" => &i.reports_unmatched,
            "plans" => &i.plans,
            "plan_invoices" => &i.plan_invoices,
            "templates" => &i.templates,
            "hourly" => &i.hourly,
            "invoices" => &i.invoices,
            "audit" => &i.audit,
            "tombstones" => &i.tombstones,
            "optouts_erased" => &i.optouts_erased,
            "meta" => &i.meta,
            _ => return None,
        })
    }

    /// The trees of [`TREES`] with their names.
    pub(super) fn named_trees(&self) -> impl Iterator<Item = (&'static str, &sled::Tree)> {
        TREES
            .iter()
            .filter_map(|name| self.tree(name).map(|t| (*name, t)))
    }

    /// Trees with records that are not in [`TREES`] (nothing in this version writes them).
    pub(super) fn other_trees(&self) -> Result<Vec<TreeCount>, StoreError> {
        let mut out = Vec::new();
        for name in self.inner.db.tree_names() {
            let known = std::str::from_utf8(&name).is_ok_and(|n| TREES.contains(&n));
            if known {
                continue;
            }
            let records = if &name[..] == SLED_DEFAULT_TREE {
                self.inner.db.len()
            } else {
                self.inner.db.open_tree(&name)?.len()
            };
            if records > 0 {
                out.push(TreeCount {
                    tree: String::from_utf8_lossy(&name).into_owned(),
                    records: records as u64,
                });
            }
        }
        Ok(out)
    }

    /// Flushes and fsyncs now, on this thread (the tools have no runtime for
    /// [`Store::durable`]): sled's flush, then the data file and the directory.
    pub(super) fn flush_sync(&self) -> Result<(), StoreError> {
        self.inner.db.flush()?;
        sync_file(&self.inner.path.join("db"))?;
        sync_file(&self.inner.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::backup::testing::open;

    #[test]
    fn every_tree_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path());
        assert!(TREES.iter().all(|t| s.tree(t).is_some()));
        assert_eq!(s.named_trees().count(), TREES.len());
    }

    #[tokio::test]
    async fn a_store_in_use_is_not_opened() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path());
        assert!(in_use(dir.path()).unwrap());
        assert!(matches!(
            SledStore::open_offline(dir.path()),
            Err(OpenError::InUse(_))
        ));
        drop(s);
        // sled's own thread lets go of the lock when it next wakes: a moment, longer on a
        // loaded machine.
        let released = (0..60).any(|_| {
            let free = !in_use(dir.path()).unwrap();
            if !free {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            free
        });
        assert!(
            released,
            "the lock is still held 3 s after the store was dropped"
        );
        assert!(SledStore::open_offline(dir.path()).is_ok());
        let empty = tempfile::tempdir().unwrap();
        assert!(matches!(
            SledStore::open_offline(empty.path()),
            Err(OpenError::NoStore(_))
        ));
        assert!(!empty.path().join("db").exists(), "nothing created");
    }
}
