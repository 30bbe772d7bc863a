//! Durability: the group-commit flush thread behind [`Store::durable`]. sled's `flush()` stops
//! at `sync_file_range` on Linux, so after it the data file is fsynced too, and any blob file
//! sled wrote (items over ~128 KiB, which sled does not fsync) with its directory.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::oneshot;

use super::{SledStore, StoreError};

impl SledStore {
    /// How many of sled's blob files (items over about 128 KiB) the flusher has fsynced.
    pub fn blobs_synced(&self) -> u64 {
        self.inner.blobs_synced.load(Ordering::Relaxed)
    }

    /// Waits until every change made before this call is on disk (group commit: one flush and
    /// fsync serves every caller waiting at the time).
    pub async fn durable(&self) -> Result<(), StoreError> {
        let (tx, rx) = oneshot::channel();
        self.inner
            .flush_tx
            .send((self.inner.db.clone(), tx))
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)??;
        if let Some(n) = self.notifier() {
            n.wake();
        }
        Ok(())
    }
}

/// How long the flusher gathers writers when the previous flush served more than one.
const GATHER: std::time::Duration = std::time::Duration::from_millis(1);

pub(super) type FlushRequest = (sled::Db, oneshot::Sender<Result<(), StoreError>>);

/// What the flusher makes durable besides sled's own flush.
pub(super) struct FlushFiles {
    /// sled's data file.
    pub(super) data: std::path::PathBuf,
    /// sled's blob directory: an item over about 128 KiB (a quarter of a segment) is written to
    /// `blobs/<lsn>` with no fsync of its own.
    pub(super) blobs: std::path::PathBuf,
    /// How many blob files were fsynced (for tests and curiosity).
    pub(super) synced: Arc<std::sync::atomic::AtomicU64>,
}

/// The group-commit thread: takes every waiter queued, flushes once, fsyncs the data file and
/// any blob file written since the last flush (and then the blob directory), and answers them
/// all. The data file stays open: reopening it for every flush would fail every write once the
/// process runs out of file descriptors. Ends when the store is dropped.
pub(super) fn flusher(
    files: FlushFiles,
    rx: &std::sync::mpsc::Receiver<FlushRequest>,
    flush_error: &std::sync::Mutex<Option<String>>,
) {
    let mut last = 1;
    let mut data: Option<std::fs::File> = None;
    let mut blobs = BlobsSeen::default();
    while let Ok((db, first)) = rx.recv() {
        if last > 1 {
            // Under load, wait a moment so one flush serves more writers: every flush costs
            // the disk a write and a cache flush, and the CPU their submission.
            std::thread::sleep(GATHER);
        }
        let mut waiters = vec![first];
        while let Ok((_, w)) = rx.try_recv() {
            waiters.push(w);
        }
        last = waiters.len();
        let result = db
            .flush()
            .map_err(StoreError::from)
            // sled's flush ends with sync_file_range on Linux, which does not survive a power
            // cut for metadata; fsync the data file itself.
            .and_then(|_| sync_data(&files.data, &mut data))
            .and_then(|()| sync_new_blobs(&files, &mut blobs));
        drop(db);
        *flush_error.lock().unwrap_or_else(|e| e.into_inner()) =
            result.as_ref().err().map(ToString::to_string);
        for w in waiters {
            let _ = w.send(result.clone());
        }
    }
}

/// fsyncs the data file through the handle kept open (opened on first use, and again after a
/// failure: the store may have been reopened on a new file).
pub(super) fn sync_data(path: &Path, file: &mut Option<std::fs::File>) -> Result<(), StoreError> {
    let r = match file {
        Some(f) => f.sync_all(),
        None => std::fs::File::open(path).and_then(|f| {
            let r = f.sync_all();
            *file = Some(f);
            r
        }),
    };
    r.map_err(|e| {
        *file = None;
        StoreError::Io(format!("fsync {}: {e}", path.display()))
    })
}

/// What the flusher knows of the blob directory: its handle, kept open, and its modification
/// time and size when last looked at.
#[derive(Default)]
pub(super) struct BlobsSeen {
    dir: Option<std::fs::File>,
    stamp: Option<(std::time::SystemTime, u64)>,
    /// The newest blob fsynced (blob files are named by their log sequence number).
    done: Option<u64>,
}

/// fsyncs the blob files newer than the last done, then their directory (so their names survive
/// too). The directory is looked into only when its modification time or size changed (read
/// from the handle kept open: no descriptor needed), and it is usually empty: values are small.
pub(super) fn sync_new_blobs(files: &FlushFiles, seen: &mut BlobsSeen) -> Result<(), StoreError> {
    let io = |e: std::io::Error| StoreError::Io(format!("fsync {}: {e}", files.blobs.display()));
    let dir = match &seen.dir {
        Some(d) => d,
        None => match std::fs::File::open(&files.blobs) {
            Ok(d) => seen.dir.insert(d),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io(e)),
        },
    };
    let meta = dir.metadata().map_err(io)?;
    let stamp = Some((meta.modified().map_err(io)?, meta.len()));
    if stamp == seen.stamp {
        return Ok(());
    }
    let mut newest = seen.done;
    for entry in std::fs::read_dir(&files.blobs).map_err(io)? {
        let entry = entry.map_err(io)?;
        let Some(lsn) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        if seen.done.is_some_and(|d| lsn <= d) {
            continue;
        }
        match std::fs::File::open(entry.path()).and_then(|f| f.sync_all()) {
            Ok(()) => {}
            // Removed meanwhile (sled rewrote the item): nothing to keep.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io(e)),
        }
        files.synced.fetch_add(1, Ordering::Relaxed);
        newest = newest.max(Some(lsn));
    }
    dir.sync_all().map_err(io)?;
    seen.done = newest;
    seen.stamp = stamp;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{test_message, test_record};

    /// A value over sled's blob threshold (about 128 KiB) goes to `blobs/<lsn>`, which sled does
    /// not fsync: the flusher does, with the directory, before `durable` returns.
    #[tokio::test]
    async fn large_values_are_made_durable_too() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path(), 16).unwrap();
        store.durable().await.unwrap();
        assert_eq!(store.blobs_synced(), 0);
        let big = serde_json::json!({"messages": "x".repeat(300 * 1024)});
        store
            .insert(
                &[test_message("+12025550102")],
                Some(("big", &test_record(big))),
            )
            .unwrap();
        store.durable().await.unwrap();
        let blobs = std::fs::read_dir(dir.path().join("blobs")).unwrap().count();
        assert!(blobs >= 1, "the value was not written as a blob");
        assert!(store.blobs_synced() >= 1, "the blob file was not fsynced");
    }

    /// Run in a child process with a low descriptor limit (it exhausts the process's
    /// descriptors): the flusher keeps the data file open, so writes stay durable.
    #[tokio::test]
    #[ignore = "run by durable_writes_survive_exhausted_descriptors in a child process"]
    async fn exhausted_descriptors_child() {
        if std::env::var_os("SMSGATE_FD_CHILD").is_none() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path(), 16).unwrap();
        store.insert(&[test_message("+12025550103")], None).unwrap();
        store.durable().await.unwrap();
        nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, 256, 256)
            .unwrap();
        let mut held = Vec::new();
        while let Ok(f) = std::fs::File::open("/dev/null") {
            held.push(f);
            assert!(held.len() < 10_000);
        }
        store.insert(&[test_message("+12025550104")], None).unwrap();
        store.durable().await.unwrap();
        println!("DURABLE WITH NO DESCRIPTOR LEFT");
    }

    #[test]
    fn durable_writes_survive_exhausted_descriptors() {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--ignored",
                "--exact",
                "--nocapture",
                "store::flush::tests::exhausted_descriptors_child",
            ])
            .env("SMSGATE_FD_CHILD", "1")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains("DURABLE WITH NO DESCRIPTOR LEFT"),
            "{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
