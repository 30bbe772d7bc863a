//! Moving a whole store: [`Store::export_jsonl`] writes it in the [export format](super::format),
//! [`Store::import_jsonl`] reads an export into a new directory, [`Store::copy_into`] copies it
//! into a new directory (how a store is compacted).

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::format::{
    EXPORT_FORMAT, EndLine, Header, RecordLine, hex, hex_form, record_line, unhex,
};
use super::offline::{CACHE_MB, sync_file};
use super::{Finding, TREES, TreeCount};
use crate::store::{PgStore, SledStore, StoreError};

/// Records written per sled batch by an import or a copy.
const BATCH: usize = 1000;

/// sled's `idgen_persist_interval` as [`Store::open`] leaves it (sled's default).
const IDGEN_INTERVAL: u64 = 1_000_000;

/// What an export, an import or a copy moved.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TransferSummary {
    /// Records in all.
    pub records: u64,
    /// Records per tree, in [`TREES`] order.
    pub trees: Vec<TreeCount>,
    /// Trees with records that this version does not use, left out (an export or a copy).
    pub left_out: Vec<TreeCount>,
}

/// Why [`Store::import_jsonl`] failed. Nothing usable is left in the directory: remove it.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The input is not a whole export of this format.
    #[error("line {line}: {detail}")]
    BadInput {
        /// Line number, from 1.
        line: u64,
        /// What is wrong with it.
        detail: String,
    },
    /// The directory is not empty: an import never merges.
    #[error("{}: not empty (an import makes a new store, it never merges)", .0.display())]
    NotEmpty(PathBuf),
    /// sled or the file system failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why [`SledStore::copy_to_postgres`] failed.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// The database holds data already: a copy never merges.
    #[error("the database holds smsgate data already (in {}): a copy goes only into an empty one", .0.join(", "))]
    NotEmpty(Vec<&'static str>),
    /// The store holds trees this version does not use (written by a newer smsgate?): a copy
    /// would lose them.
    #[error("the store holds trees this version does not use ({}): a copy would lose them", .0.iter().map(|t| format!("{}: {} records", t.tree, t.records)).collect::<Vec<_>>().join(", "))]
    UnknownTrees(Vec<TreeCount>),
    /// The store or the database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Refuses a directory that holds anything: an import or a copy makes a new store.
fn ensure_fresh(dir: &Path) -> Result<bool, StoreError> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(StoreError::Io(format!(
            "cannot read {}: {e}",
            dir.display()
        ))),
    }
}

/// Writes records into a new store, in batches (one per tree: records of several trees may
/// come mixed).
struct Restorer<'a> {
    store: &'a SledStore,
    batches: Vec<(sled::Batch, usize)>,
    counts: [u64; TREES.len()],
    max_outbox: Option<u64>,
}

impl<'a> Restorer<'a> {
    fn new(store: &'a SledStore) -> Restorer<'a> {
        Restorer {
            store,
            batches: TREES.iter().map(|_| (sled::Batch::default(), 0)).collect(),
            counts: [0; TREES.len()],
            max_outbox: None,
        }
    }

    fn put(&mut self, tree: usize, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        let Some((batch, pending)) = self.batches.get_mut(tree) else {
            return Err(StoreError::Io(format!("no tree number {tree}")));
        };
        batch.insert(key, value);
        *pending += 1;
        let full = *pending >= BATCH;
        if let Some(c) = self.counts.get_mut(tree) {
            *c += 1;
        }
        if TREES.get(tree) == Some(&"outbox")
            && let Ok(seq) = <[u8; 8]>::try_from(key).map(u64::from_be_bytes)
        {
            self.max_outbox = Some(self.max_outbox.map_or(seq, |m| m.max(seq)));
        }
        if full {
            self.apply(tree)?;
        }
        Ok(())
    }

    fn apply(&mut self, tree: usize) -> Result<(), StoreError> {
        let Some((batch, pending)) = self.batches.get_mut(tree) else {
            return Ok(());
        };
        if *pending == 0 {
            return Ok(());
        }
        let name = TREES.get(tree).copied().unwrap_or("");
        let t = self
            .store
            .tree(name)
            .ok_or_else(|| StoreError::Io(format!("no tree {name:?}")))?;
        t.apply_batch(std::mem::take(batch))?;
        *pending = 0;
        Ok(())
    }

    /// Writes what is left and makes it durable; the highest outbox key, when there is one.
    fn finish(mut self) -> Result<(TransferSummary, Option<u64>), StoreError> {
        for tree in 0..TREES.len() {
            self.apply(tree)?;
        }
        self.store.flush_sync()?;
        let trees: Vec<TreeCount> = TREES
            .iter()
            .zip(self.counts)
            .map(|(t, n)| TreeCount {
                tree: (*t).to_string(),
                records: n,
            })
            .collect();
        Ok((
            TransferSummary {
                records: self.counts.iter().sum(),
                trees,
                left_out: Vec::new(),
            },
            self.max_outbox,
        ))
    }
}

/// Moves sled's id generator of the new store in `dir` (closed, never given an id) past
/// `above`, so that outbox entries added later are numbered after the imported ones.
///
/// At open, sled resumes the generator at the counter it persisted plus twice its persist
/// interval, and it persists the counter when an id crosses a multiple of the interval. Opened
/// once with an interval `I` (a multiple of the one [`Store::open`] uses, so that its own
/// bookkeeping stays aligned), the new store hands out `2·I` as its first id and persists it;
/// every later open then starts above it. `I` is chosen so that `2·I > above`: one open and one
/// id, however high the imported numbers.
fn advance_id_generator(dir: &Path, above: u64) -> Result<(), StoreError> {
    let step = 2 * IDGEN_INTERVAL;
    let interval = (above / step)
        .checked_add(1)
        .and_then(|n| n.checked_mul(IDGEN_INTERVAL))
        .ok_or_else(|| StoreError::Io(format!("outbox sequence {above} is too high")))?;
    // The store was closed a moment ago: its lock may take a moment to be let go.
    let config = sled::Config::new()
        .path(dir)
        .mode(sled::Mode::HighThroughput)
        .idgen_persist_interval(interval);
    let db = crate::store::open_sled(&config)
        .map_err(|e| StoreError::Io(format!("cannot open {}: {e}", dir.display())))?;
    let first = db.generate_id()?;
    if first <= above {
        return Err(StoreError::Io(format!(
            "the new store's id generator is at {first}, not past {above}"
        )));
    }
    db.flush()?;
    drop(db);
    sync_file(&dir.join("db"))
}

/// Writes an export: its header line, a line per record (trees in [`TREES`] order, each
/// tree's records together and in key order), its end line.
pub(super) struct ExportWriter<'a> {
    out: &'a mut dyn Write,
    line: Vec<u8>,
    counts: [u64; TREES.len()],
}

fn write_error(e: std::io::Error) -> StoreError {
    StoreError::Io(format!("cannot write the export: {e}"))
}

impl<'a> ExportWriter<'a> {
    /// Writes the header line.
    pub(super) fn start(
        out: &'a mut dyn Write,
        created_at: DateTime<Utc>,
    ) -> Result<ExportWriter<'a>, StoreError> {
        let text = |s: &str| serde_json::to_string(s).map_err(|e| StoreError::Io(e.to_string()));
        writeln!(
            out,
            "{{\"smsgate_export\":{EXPORT_FORMAT},\"created_at\":{},\"version\":{}}}",
            text(&created_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))?,
            text(env!("CARGO_PKG_VERSION"))?
        )
        .map_err(write_error)?;
        Ok(ExportWriter {
            out,
            line: Vec::with_capacity(512),
            counts: [0; TREES.len()],
        })
    }

    /// Writes one record of the tree `TREES[tree]`.
    pub(super) fn record(
        &mut self,
        tree: usize,
        key: &[u8],
        value: &[u8],
    ) -> Result<(), StoreError> {
        let (Some(name), Some(count)) = (TREES.get(tree), self.counts.get_mut(tree)) else {
            return Err(StoreError::Io(format!("no tree number {tree}")));
        };
        record_line(&mut self.line, name, key, value);
        self.out.write_all(&self.line).map_err(write_error)?;
        *count += 1;
        Ok(())
    }

    /// Writes the end line, flushes; what was written (`left_out` empty).
    pub(super) fn finish(self) -> Result<TransferSummary, StoreError> {
        let records = self.counts.iter().sum();
        writeln!(self.out, "{{\"end\":true,\"records\":{records}}}").map_err(write_error)?;
        self.out.flush().map_err(write_error)?;
        Ok(TransferSummary {
            records,
            trees: TREES
                .iter()
                .zip(self.counts)
                .map(|(t, n)| TreeCount {
                    tree: (*t).to_string(),
                    records: n,
                })
                .collect(),
            left_out: Vec::new(),
        })
    }
}

impl SledStore {
    /// Writes the whole store to `out` in the [export format](super::format),
    /// every tree of [`TREES`], and flushes `out`.
    pub fn export_jsonl(
        &self,
        out: &mut dyn Write,
        created_at: DateTime<Utc>,
    ) -> Result<TransferSummary, StoreError> {
        let mut w = ExportWriter::start(out, created_at)?;
        for (n, name) in TREES.iter().enumerate() {
            let Some(tree) = self.tree(name) else {
                continue;
            };
            for r in tree.iter() {
                let (k, v) = r?;
                w.record(n, &k, &v)?;
            }
        }
        let mut summary = w.finish()?;
        summary.left_out = self.other_trees()?;
        Ok(summary)
    }

    /// Makes a new store in `dir` (missing or empty) from an export read from `input`, makes it
    /// durable and closes it. On an error the directory holds a partial store: remove it.
    pub fn import_jsonl(
        dir: &Path,
        input: &mut dyn BufRead,
    ) -> Result<TransferSummary, ImportError> {
        if !ensure_fresh(dir)? {
            return Err(ImportError::NotEmpty(dir.to_path_buf()));
        }
        let store = SledStore::open(dir, CACHE_MB)?;
        let (summary, max_outbox) = read_export(&store, input)?;
        // An export made before the invoice index carries none: derived, so made again.
        store.rebuild_invoice_index()?;
        drop(store);
        if let Some(seq) = max_outbox {
            advance_id_generator(dir, seq)?;
        }
        Ok(summary)
    }

    /// Copies every record of every tree of [`TREES`] into a new store in `dir` (missing or
    /// empty), makes it durable and closes it: what an export then an import would give, in one
    /// pass. On an error the directory holds a partial store: remove it.
    pub fn copy_into(&self, dir: &Path) -> Result<TransferSummary, StoreError> {
        if !ensure_fresh(dir)? {
            return Err(StoreError::Io(format!(
                "{}: not empty (a copy makes a new store)",
                dir.display()
            )));
        }
        let target = SledStore::open(dir, CACHE_MB)?;
        let mut w = Restorer::new(&target);
        for (n, name) in TREES.iter().enumerate() {
            let Some(tree) = self.tree(name) else {
                continue;
            };
            for r in tree.iter() {
                let (k, v) = r?;
                w.put(n, &k, &v)?;
            }
        }
        let (mut summary, max_outbox) = w.finish()?;
        target.rebuild_invoice_index()?;
        drop(target);
        if let Some(seq) = max_outbox {
            advance_id_generator(dir, seq)?;
        }
        summary.left_out = self.other_trees()?;
        Ok(summary)
    }

    /// Copies every record of every tree of [`TREES`] into the PostgreSQL store `pg`, which
    /// must hold no data (its schema made: [`PgStore::connect`]): the same bodies, the history
    /// entries and tombstones byte for byte, the outbox's and the tombstones' numbers (their
    /// sequences moved past them). One transaction: on an error nothing was written.
    pub fn copy_to_postgres(&self, pg: &PgStore) -> Result<TransferSummary, CopyError> {
        let left_out = self.other_trees()?;
        if !left_out.is_empty() {
            return Err(CopyError::UnknownTrees(left_out));
        }
        let mut load = pg.loader()?;
        let held = load.tables_with_data()?;
        if !held.is_empty() {
            return Err(CopyError::NotEmpty(held));
        }
        let mut counts = [0u64; TREES.len()];
        for (n, name) in TREES.iter().enumerate() {
            let Some(tree) = self.tree(name) else {
                continue;
            };
            for r in tree.iter() {
                let (k, v) = r.map_err(StoreError::from)?;
                load.put(n, &k, &v)?;
                counts[n] += 1;
            }
        }
        load.finish()?;
        Ok(TransferSummary {
            records: counts.iter().sum(),
            trees: TREES
                .iter()
                .zip(counts)
                .map(|(t, n)| TreeCount {
                    tree: (*t).to_string(),
                    records: n,
                })
                .collect(),
            left_out,
        })
    }

    /// Makes a new store in `dir` (missing or empty) from every record of the PostgreSQL
    /// store `pg` (read from one snapshot: gateways may run meanwhile), makes it durable and
    /// closes it. On an error the directory holds a partial store: remove it.
    pub fn import_postgres(dir: &Path, pg: &PgStore) -> Result<TransferSummary, ImportError> {
        if !ensure_fresh(dir)? {
            return Err(ImportError::NotEmpty(dir.to_path_buf()));
        }
        let store = SledStore::open(dir, CACHE_MB)?;
        let mut w = Restorer::new(&store);
        pg.for_each_record(&mut |tree, k, v| w.put(tree, k, v))?;
        let (summary, max_outbox) = w.finish()?;
        // Made from the messages, as at an import.
        store.rebuild_invoice_index()?;
        store.flush_sync()?;
        drop(store);
        if let Some(seq) = max_outbox {
            advance_id_generator(dir, seq)?;
        }
        Ok(summary)
    }

    /// The first record in which this store and `other` differ (a key only in one, or the
    /// same key with other bytes), over every tree of [`TREES`]; `None` when they are equal.
    pub fn first_difference(&self, other: &SledStore) -> Result<Option<Finding>, StoreError> {
        for (name, a) in self.named_trees() {
            let Some(b) = other.tree(name) else { continue };
            let mut ia = a.iter();
            let mut ib = b.iter();
            loop {
                match (ia.next().transpose()?, ib.next().transpose()?) {
                    (None, None) => break,
                    (Some((k, _)), None) => {
                        return Ok(Some(Finding {
                            tree: name.to_string(),
                            key: hex(&k),
                            problem: "missing from the other store".into(),
                        }));
                    }
                    (None, Some((k, _))) => {
                        return Ok(Some(Finding {
                            tree: name.to_string(),
                            key: hex(&k),
                            problem: "only in the other store".into(),
                        }));
                    }
                    (Some((ka, va)), Some((kb, vb))) => {
                        if ka != kb {
                            return Ok(Some(Finding {
                                tree: name.to_string(),
                                key: hex(ka.min(kb).as_ref()),
                                problem: "in one store only".into(),
                            }));
                        }
                        if va != vb {
                            return Ok(Some(Finding {
                                tree: name.to_string(),
                                key: hex(&ka),
                                problem: "the values differ".into(),
                            }));
                        }
                    }
                }
            }
        }
        Ok(None)
    }
}

/// Reads an export into `store`; the summary and the highest outbox key.
fn read_export(
    store: &SledStore,
    input: &mut dyn BufRead,
) -> Result<(TransferSummary, Option<u64>), ImportError> {
    let bad = |line: u64, detail: String| ImportError::BadInput { line, detail };
    let mut w = Restorer::new(store);
    let mut buf = String::new();
    let mut line_no = 0u64;
    let mut ended = false;
    let mut records = 0u64;
    let mut current: Option<usize> = None;
    let mut last_key: Vec<u8> = Vec::new();
    let mut done = [false; TREES.len()];
    loop {
        buf.clear();
        let n = input.read_line(&mut buf).map_err(|e| {
            if e.kind() == std::io::ErrorKind::InvalidData {
                bad(line_no + 1, "not UTF-8 text".into())
            } else {
                ImportError::Store(StoreError::Io(format!("cannot read the export: {e}")))
            }
        })?;
        if n == 0 {
            break;
        }
        line_no += 1;
        let text = buf.strip_suffix('\n').unwrap_or(&buf);
        let text = text.strip_suffix('\r').unwrap_or(text);
        if line_no == 1 {
            let h: Header = serde_json::from_str(text).map_err(|e| {
                bad(
                    1,
                    format!("not an smsgate store export (the first line is not its header: {e})"),
                )
            })?;
            if h.smsgate_export != EXPORT_FORMAT {
                return Err(bad(
                    1,
                    format!(
                        "export format {} (made by smsgate {}); this smsgate ({}) reads format {EXPORT_FORMAT}",
                        h.smsgate_export,
                        h.version.as_deref().unwrap_or("?"),
                        env!("CARGO_PKG_VERSION")
                    ),
                ));
            }
            continue;
        }
        if ended {
            return Err(bad(line_no, "a line after the end line".into()));
        }
        let rec = match serde_json::from_str::<RecordLine<'_>>(text) {
            Ok(r) => r,
            Err(e) => {
                if let Ok(end) = serde_json::from_str::<EndLine>(text) {
                    if !end.end || end.records != records {
                        return Err(bad(
                            line_no,
                            format!(
                                "the end line counts {} records, the export has {records}",
                                end.records
                            ),
                        ));
                    }
                    ended = true;
                    continue;
                }
                return Err(bad(line_no, format!("not a record: {e}")));
            }
        };
        let Some(tree) = TREES.iter().position(|t| *t == rec.tree) else {
            return Err(bad(
                line_no,
                format!(
                    "unknown tree {:?} (this smsgate has: {})",
                    rec.tree,
                    TREES.join(", ")
                ),
            ));
        };
        let key = unhex(&rec.key).map_err(|e| bad(line_no, format!("key: {e}")))?;
        let raw = rec.value.get();
        let value = match hex_form(raw) {
            Some(h) => unhex(&h).map_err(|e| bad(line_no, format!("value: {e}")))?,
            None => raw.as_bytes().to_vec(),
        };
        if current == Some(tree) {
            if key <= last_key {
                return Err(bad(
                    line_no,
                    format!(
                        "key {} of tree {} is not after the one before: repeated or out of order",
                        rec.key, rec.tree
                    ),
                ));
            }
        } else {
            if done[tree] {
                return Err(bad(
                    line_no,
                    format!(
                        "the records of tree {} are not together: it appears again",
                        rec.tree
                    ),
                ));
            }
            done[tree] = true;
            current = Some(tree);
        }
        w.put(tree, &key, &value)?;
        last_key = key;
        records += 1;
    }
    if line_no == 0 {
        return Err(bad(1, "empty: not an smsgate store export".into()));
    }
    if !ended {
        return Err(bad(
            line_no,
            "the export stops here without its end line: it was cut short".into(),
        ));
    }
    Ok(w.finish()?)
}

#[cfg(test)]
mod tests;
