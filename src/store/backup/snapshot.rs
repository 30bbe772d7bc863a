//! A hot backup: [`Store::snapshot`] exports the running store, every tree at one point in time,
//! into an unnamed temporary file beside it, which `POST /v1/admin/backup` then streams.
//!
//! Writes are paused (the [write gate](super::gate)) only while sled's records are copied, as
//! they are, into a first local file; the export's lines are written from that copy into a
//! second one with writes going on, and a client reads the second at its own pace: a slow
//! client, or one on another continent, does not hold the store. The file has no name (it is unlinked at once), so a daemon that dies in
//! the middle leaves nothing behind, and the space comes back when the last reader drops it.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::transfer::ExportWriter;
use super::{TREES, TransferSummary};
use crate::store::{SledStore, StoreError};

/// A consistent export of the running store, ready to be read from its start.
#[derive(Debug)]
pub struct Snapshot {
    /// The export (the [export format](super::format)), positioned at its start.
    pub file: File,
    /// Its length in bytes.
    pub bytes: u64,
    /// What it holds.
    pub summary: TransferSummary,
    /// How long writes were paused for it.
    pub paused: Duration,
    /// When writes were paused: the point in time the export shows.
    pub taken_at: DateTime<Utc>,
    /// Held until the snapshot is dropped: one snapshot of a store at a time.
    _running: Running,
}

/// Why [`Store::snapshot`] made nothing.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// Another snapshot of this store is being made or read.
    #[error("a backup of this store is running already; try again when it has finished")]
    Busy,
    /// The store is a PostgreSQL database: its own tools back it up.
    #[error(
        "the store is a PostgreSQL database: back it up with its own tools (pg_dump, or a \
         streaming replica; see docs/scaling.md)"
    )]
    InDatabase,
    /// sled or the file system failed (the temporary file could not be written: disk full?).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Marks a snapshot as running; cleared when dropped.
#[derive(Debug)]
struct Running(std::sync::Arc<AtomicBool>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// One record as copied while writes wait: tree number (1), key length (4, BE), value length
/// (4, BE), key, value.
fn raw_record(out: &mut impl Write, tree: usize, key: &[u8], value: &[u8]) -> std::io::Result<()> {
    let len = |b: &[u8]| {
        u32::try_from(b.len())
            .map(u32::to_be_bytes)
            .map_err(|_| std::io::Error::other("a record over 4 GiB"))
    };
    out.write_all(&[u8::try_from(tree).map_err(std::io::Error::other)?])?;
    out.write_all(&len(key)?)?;
    out.write_all(&len(value)?)?;
    out.write_all(key)?;
    out.write_all(value)
}

/// A record read back: tree number, key, value.
type RawRecord = (usize, Vec<u8>, Vec<u8>);

/// The next record written by [`raw_record`]; `None` at the end.
fn read_raw(input: &mut impl Read) -> std::io::Result<Option<RawRecord>> {
    let mut head = [0u8; 9];
    match input.read_exact(&mut head[..1]) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    input.read_exact(&mut head[1..])?;
    let len = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
    let mut key = vec![0u8; len(&head[1..5])];
    let mut value = vec![0u8; len(&head[5..9])];
    input.read_exact(&mut key)?;
    input.read_exact(&mut value)?;
    Ok(Some((usize::from(head[0]), key, value)))
}

impl SledStore {
    /// Exports every tree of the running store at one point in time into an unnamed file in
    /// the store's directory (through a second one, the records as copied while writes wait). Every change made before the call is in it (the changes of the
    /// writes in progress when it is called too, whole: a write finishes before the pause
    /// begins); a change made after the pause began is not. Blocking: call it off the async
    /// threads.
    pub fn snapshot(&self) -> Result<Snapshot, SnapshotError> {
        let running = &self.inner.snapshot_running;
        if running
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Err(SnapshotError::Busy);
        }
        let running = Running(running.clone());
        let io = |what: &str, e: std::io::Error| {
            StoreError::Io(format!(
                "backup: cannot {what} a temporary file in {}: {e}",
                self.path().display()
            ))
        };
        // Beside the store: the same disk as the data it copies, not a /tmp that may be memory.
        let temp = || tempfile::tempfile_in(self.path()).map_err(|e| io("make", e));
        // While writes wait, only sled's bytes are copied (a few times faster than writing the
        // export's lines, which check each value's JSON); the lines are written afterwards.
        let mut raw = BufWriter::with_capacity(1 << 20, temp()?);
        let (paused, taken_at) = {
            let _paused = self.inner.gate.pause();
            let taken_at = Utc::now();
            let started = Instant::now();
            for (n, name) in TREES.iter().enumerate() {
                let Some(tree) = self.tree(name) else {
                    continue;
                };
                for r in tree.iter() {
                    let (k, v) = r.map_err(StoreError::from)?;
                    raw_record(&mut raw, n, &k, &v).map_err(|e| io("write", e))?;
                }
            }
            (started.elapsed(), taken_at)
        };
        let mut raw = raw.into_inner().map_err(|e| io("write", e.into_error()))?;
        raw.rewind().map_err(|e| io("read", e))?;
        let mut out = BufWriter::with_capacity(1 << 20, temp()?);
        let mut summary = {
            let mut w = ExportWriter::start(&mut out, taken_at)?;
            let mut input = BufReader::with_capacity(1 << 20, raw);
            while let Some((tree, k, v)) = read_raw(&mut input).map_err(|e| io("read", e))? {
                w.record(tree, &k, &v)?;
            }
            w.finish()?
        };
        summary.left_out = self.other_trees()?;
        let mut file = out.into_inner().map_err(|e| io("write", e.into_error()))?;
        file.flush().map_err(|e| io("write", e))?;
        let bytes = file.stream_position().map_err(|e| io("read", e))?;
        file.rewind().map_err(|e| io("read", e))?;
        tracing::info!(
            records = summary.records,
            bytes,
            paused_ms = paused.as_millis() as u64,
            "backup snapshot taken"
        );
        Ok(Snapshot {
            file,
            bytes,
            summary,
            paused,
            taken_at,
            _running: running,
        })
    }

    /// A pass through the write gate: held by every method that changes the store.
    pub(crate) fn writing(&self) -> super::gate::Writing<'_> {
        self.inner.gate.writing()
    }
}

#[cfg(test)]
mod tests {
    use std::io::BufReader;
    use std::sync::Arc;
    use std::sync::atomic::AtomicU64;

    use super::*;
    use crate::store::backup::testing::*;
    use crate::store::test_message;

    #[tokio::test]
    async fn a_snapshot_is_the_export_of_the_same_store() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = populated(&dir.path().join("a"));
        // A value that is no JSON, an empty one, a long one.
        s.inner.templates.insert(b"\xff", &b"\x00\xff"[..]).unwrap();
        s.inner.templates.insert(b"empty", &b""[..]).unwrap();
        s.inner
            .templates
            .insert(b"long", "x".repeat(300_000).into_bytes())
            .unwrap();
        let mut snap = s.snapshot().unwrap();
        let mut got = String::new();
        snap.file.read_to_string(&mut got).unwrap();
        assert_eq!(got.len() as u64, snap.bytes);
        let mut want = Vec::new();
        let summary = s.export_jsonl(&mut want, snap.taken_at).unwrap();
        assert_eq!(got, String::from_utf8(want).unwrap());
        assert_eq!(snap.summary, summary);
    }

    #[tokio::test]
    async fn a_snapshot_under_writes_imports_and_checks_clean() {
        let dir = tempfile::tempdir().unwrap();
        let (s, ms) = populated(&dir.path().join("a"));
        let stop = Arc::new(AtomicBool::new(false));
        let written = Arc::new(AtomicU64::new(0));
        // Writers change records and indexes of several trees in every step.
        let writers: Vec<_> = (0..3)
            .map(|w| {
                let (s, stop, written) = (s.clone(), stop.clone(), written.clone());
                std::thread::spawn(move || {
                    let mut acked = Vec::new();
                    let mut n = 0u32;
                    while !stop.load(Ordering::Relaxed) && n < 20_000 {
                        let m = test_message(&format!("+1202555{w}{:03}", n % 1000));
                        s.insert(std::slice::from_ref(&m), None).unwrap();
                        moved(&s, &m, crate::store::Status::Cancelled);
                        s.enqueue_webhooks(&[webhook(n)]).unwrap();
                        acked.push(m.id);
                        written.fetch_add(1, Ordering::Relaxed);
                        n += 1;
                    }
                    acked
                })
            })
            .collect();
        while written.load(Ordering::Relaxed) < 300 {
            std::thread::yield_now();
        }
        let before = written.load(Ordering::Relaxed);
        let snap = s.snapshot().unwrap();
        assert!(matches!(s.snapshot(), Err(SnapshotError::Busy)));
        stop.store(true, Ordering::Relaxed);
        let acked: Vec<String> = writers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect();
        assert!(snap.summary.records > before, "{:?}", snap.summary);
        let b = dir.path().join("b");
        let imported = SledStore::import_jsonl(&b, &mut BufReader::new(&snap.file)).unwrap();
        assert_eq!(imported.records, snap.summary.records);
        drop(snap);
        // The next snapshot may begin once this one is dropped.
        drop(s.snapshot().unwrap());
        let t = open(&b);
        let r = t.check().unwrap();
        assert!(r.is_clean(), "{r:#?}");
        for m in &ms {
            assert!(t.get(&m.id).unwrap().is_some(), "{}", m.id);
        }
        // Whatever is in it is whole: a message's record with its whole history.
        let mut inside = 0;
        for id in &acked {
            // Inserted, then cancelled: two writes, and the snapshot may fall between them.
            if let Some(m) = t.get(id).unwrap() {
                assert!(
                    matches!(
                        m.status,
                        crate::store::Status::Queued | crate::store::Status::Cancelled
                    ),
                    "{id}: {:?}",
                    m.status
                );
                inside += 1;
            }
        }
        assert!(inside >= before, "{inside} of the {before} written before");
    }

    /// How long a snapshot pauses writes, by store size:
    /// `cargo test --release --lib -- --ignored snapshot_pause_by_size --nocapture`.
    #[test]
    #[ignore = "a measurement, not a check"]
    fn snapshot_pause_by_size() {
        let dir = tempfile::tempdir().unwrap();
        // The daemon's default cache (`[storage] cache_mb`).
        let s = SledStore::open(&dir.path().join("a"), 32).unwrap();
        let mut total = 0;
        for step in [10_000, 40_000, 50_000] {
            for chunk in 0..step / 1000 {
                let ms: Vec<_> = (0..1000)
                    .map(|n| {
                        let mut m =
                            test_message(&format!("+1202555{:04}", (chunk * 1000 + n) % 10_000));
                        m.text =
                            "Invoice INV-1042: $120.50 is due on 1 December. Reply 1 to be called."
                                .into();
                        m.metadata =
                            Some(serde_json::json!({"invoice": format!("INV-{chunk}-{n}")}));
                        m
                    })
                    .collect();
                s.insert(&ms, None).unwrap();
            }
            total += step;
            let snap = s.snapshot().unwrap();
            println!(
                "{total} messages: {} records, {} bytes, writes paused {} ms",
                snap.summary.records,
                snap.bytes,
                snap.paused.as_millis()
            );
        }
    }
}
