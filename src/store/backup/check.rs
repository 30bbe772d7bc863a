//! A whole store at once, while the daemon is stopped: [`Store::check`] (every record readable,
//! every history chain whole, the indexes in agreement with the records), an export of every
//! tree as JSON Lines ([`Store::export_jsonl`]), its import into a new directory
//! ([`Store::import_jsonl`]), and a copy into a new directory ([`Store::copy_into`]), which is
//! how a store is compacted. `smsgate store check|export|import|compact` drives them.
//!
//! ## The export format (version 1)
//!
//! JSON Lines (UTF-8, one object per line, lines end with `\n`):
//!
//! 1. a header: `{"smsgate_export":1,"created_at":"<RFC 3339>","version":"<smsgate version>"}`;
//! 2. one line per record: `{"tree":"<name>","key":"<hex>","value":<value>}`, the trees in the
//!    order of [`TREES`], each tree's records together and in key order. `key` is the key's bytes
//!    in lower-case hex. `value` is the stored bytes themselves when they are JSON on one line,
//!    written exactly as stored (the history's hash chain is over those bytes), or else
//!    `{"hex":"<the bytes in hex>"}` (index entries, binary values; an empty value is
//!    `{"hex":""}`). A stored JSON value that is itself an object whose only member is a `hex`
//!    string is written in the hex form, so the two forms never mix up;
//! 3. a last line `{"end":true,"records":<number of record lines>}`: an export without it was
//!    cut short.
//!
//! Keys and values come back byte for byte. sled's id generator, which numbers the outbox, is
//! not exported: an import moves the new store's generator past the highest outbox key, so new
//! deliveries are numbered after the imported ones.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::store::inbound::InboundMessage;
use crate::store::optout::OptOut;
use crate::store::plans::{Plan, StoredTemplate};
use crate::store::reports::UnmatchedReport;
use crate::store::{
    Event, IdempotencyRecord, Status, Store, StoreError, decode, decode_message, due_key, id_key,
    id_string, status_key, to_key,
};

/// The export format this version writes and reads.
pub const EXPORT_FORMAT: u64 = 1;

/// Every tree of the store, in export order (see the table in [`crate::store`]).
pub const TREES: [&str; 20] = [
    "messages",
    "due",
    "status",
    "to",
    "events",
    "idempotency",
    "outbox",
    "inbound",
    "inbound_from",
    "inbound_seen",
    "fragments",
    "optouts",
    "inbound_pending",
    "reports",
    "reports_unmatched",
    "plans",
    "plan_invoices",
    "templates",
    "hourly",
    "invoices",
];

/// sled's own tree, which this store does not use.
const SLED_DEFAULT_TREE: &[u8] = b"__sled__default";

/// Cache of a store opened by these tools, in MiB.
const CACHE_MB: u64 = 64;

/// Records written per sled batch by an import or a copy.
const BATCH: usize = 1000;

/// sled's `idgen_persist_interval` as [`Store::open`] leaves it (sled's default).
const IDGEN_INTERVAL: u64 = 1_000_000;

/// Something [`Store::check`] found, at one key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The tree.
    pub tree: String,
    /// The key's bytes in hex, as in an export.
    pub key: String,
    /// What is wrong, naming the message, plan or inbound message concerned.
    pub problem: String,
}

/// How many records a tree holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TreeCount {
    /// The tree.
    pub tree: String,
    /// Its records.
    pub records: u64,
}

/// What [`Store::check`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    /// Records per tree, in [`TREES`] order.
    pub trees: Vec<TreeCount>,
    /// Messages whose history was checked.
    pub messages: u64,
    /// History entries checked (the implied first entry of each message included).
    pub history_entries: u64,
    /// What is wrong: a record that cannot be read, a broken history chain, an index that
    /// disagrees with its record.
    pub problems: Vec<Finding>,
    /// What is harmless but worth knowing: index entries of a message that was never stored
    /// (left by an insert cut short by a crash, skipped by readers), trees this version does
    /// not use.
    pub warnings: Vec<Finding>,
}

impl CheckReport {
    /// No problems (warnings allowed).
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

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

/// The bytes in lower-case hex, appended to `out`.
fn hex_into(out: &mut Vec<u8>, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)]);
        out.push(DIGITS[usize::from(b & 0xF)]);
    }
}

/// The bytes in lower-case hex.
fn hex(bytes: &[u8]) -> String {
    let mut out = Vec::with_capacity(bytes.len() * 2);
    hex_into(&mut out, bytes);
    String::from_utf8_lossy(&out).into_owned()
}

/// Hex (either case) back to bytes.
fn unhex(s: &str) -> Result<Vec<u8>, String> {
    fn digit(c: u8) -> Result<u8, String> {
        match c {
            b'0'..=b'9' => Ok(c - b'0'),
            b'a'..=b'f' => Ok(c - b'a' + 10),
            b'A'..=b'F' => Ok(c - b'A' + 10),
            _ => Err(format!("{:?} is not a hex digit", char::from(c))),
        }
    }
    if !s.len().is_multiple_of(2) {
        return Err(format!("odd number of hex digits ({})", s.len()));
    }
    s.as_bytes()
        .chunks(2)
        .map(|p| Ok(digit(p[0])? << 4 | digit(p[1])?))
        .collect()
}

/// The hex form of a value: an object whose only member is `hex`, a string.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HexValue {
    hex: String,
}

/// The hex string when `json` (no surrounding whitespace) is the hex form of a value.
fn hex_form(json: &str) -> Option<String> {
    // serde also reads a struct from an array: only an object is the hex form.
    if !json.starts_with('{') {
        return None;
    }
    serde_json::from_str::<HexValue>(json).ok().map(|h| h.hex)
}

/// The stored bytes as text to write verbatim as an export's `value`: JSON on one line, with
/// nothing around it, that does not look like the hex form.
fn verbatim_json(v: &[u8]) -> Option<&str> {
    let s = std::str::from_utf8(v).ok()?;
    if s.bytes().any(|b| b == b'\n' || b == b'\r') {
        return None;
    }
    let raw: &RawValue = serde_json::from_str(s).ok()?;
    if raw.get().len() != s.len() || hex_form(s).is_some() {
        return None;
    }
    Some(s)
}

/// Writes the export line of one record (with its `\n`) into `line`. The value is written as it
/// is stored when it is JSON that an import reads back to the same bytes (checked on the line
/// itself: the export never writes a line that the import would read otherwise), in the hex form
/// otherwise.
fn record_line(line: &mut Vec<u8>, tree: &str, key: &[u8], value: &[u8]) {
    let start = |line: &mut Vec<u8>| {
        line.clear();
        line.extend_from_slice(b"{\"tree\":\"");
        line.extend_from_slice(tree.as_bytes());
        line.extend_from_slice(b"\",\"key\":\"");
        hex_into(line, key);
        line.extend_from_slice(b"\",\"value\":");
    };
    if let Some(json) = verbatim_json(value) {
        start(line);
        line.extend_from_slice(json.as_bytes());
        line.push(b'}');
        let reads_back = std::str::from_utf8(line)
            .ok()
            .and_then(|l| serde_json::from_str::<RecordLine<'_>>(l).ok())
            .is_some_and(|r| {
                r.value.get().as_bytes() == value && hex_form(r.value.get()).is_none()
            });
        if reads_back {
            line.push(b'\n');
            return;
        }
    }
    start(line);
    line.extend_from_slice(b"{\"hex\":\"");
    hex_into(line, value);
    line.extend_from_slice(b"\"}}\n");
}

/// A record line of an export.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordLine<'a> {
    tree: String,
    key: String,
    #[serde(borrow)]
    value: &'a RawValue,
}

/// The last line of an export.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EndLine {
    end: bool,
    records: u64,
}

/// The first line of an export.
#[derive(Deserialize)]
struct Header {
    smsgate_export: u64,
    #[serde(default)]
    version: Option<String>,
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

/// Writes records into a new store, tree by tree, in batches.
struct Restorer<'a> {
    store: &'a Store,
    batch: sled::Batch,
    pending: usize,
    tree: Option<usize>,
    counts: [u64; TREES.len()],
    max_outbox: Option<u64>,
}

impl<'a> Restorer<'a> {
    fn new(store: &'a Store) -> Restorer<'a> {
        Restorer {
            store,
            batch: sled::Batch::default(),
            pending: 0,
            tree: None,
            counts: [0; TREES.len()],
            max_outbox: None,
        }
    }

    fn put(&mut self, tree: usize, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        if self.tree != Some(tree) {
            self.apply()?;
            self.tree = Some(tree);
        }
        self.batch.insert(key, value);
        self.pending += 1;
        if let Some(c) = self.counts.get_mut(tree) {
            *c += 1;
        }
        if TREES.get(tree) == Some(&"outbox")
            && let Ok(seq) = <[u8; 8]>::try_from(key).map(u64::from_be_bytes)
        {
            self.max_outbox = Some(self.max_outbox.map_or(seq, |m| m.max(seq)));
        }
        if self.pending >= BATCH {
            self.apply()?;
        }
        Ok(())
    }

    fn apply(&mut self) -> Result<(), StoreError> {
        if self.pending == 0 {
            return Ok(());
        }
        let name = self.tree.and_then(|t| TREES.get(t)).copied().unwrap_or("");
        let tree = self
            .store
            .tree(name)
            .ok_or_else(|| StoreError::Io(format!("no tree {name:?}")))?;
        tree.apply_batch(std::mem::take(&mut self.batch))?;
        self.pending = 0;
        Ok(())
    }

    /// Writes what is left and makes it durable; the highest outbox key, when there is one.
    fn finish(mut self) -> Result<(TransferSummary, Option<u64>), StoreError> {
        self.apply()?;
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
    let db = sled::Config::new()
        .path(dir)
        .mode(sled::Mode::HighThroughput)
        .idgen_persist_interval(interval)
        .open()
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

fn sync_file(path: &Path) -> Result<(), StoreError> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| StoreError::Io(format!("fsync {}: {e}", path.display())))
}

/// Collects what a check finds.
#[derive(Default)]
struct Findings {
    problems: Vec<Finding>,
    warnings: Vec<Finding>,
}

impl Findings {
    fn problem(&mut self, tree: &str, key: &[u8], problem: impl Into<String>) {
        self.problems.push(Finding {
            tree: tree.to_string(),
            key: hex(key),
            problem: problem.into(),
        });
    }

    fn warning(&mut self, tree: &str, key: &[u8], problem: impl Into<String>) {
        self.warnings.push(Finding {
            tree: tree.to_string(),
            key: hex(key),
            problem: problem.into(),
        });
    }
}

/// What a check keeps of a message to compare the indexes with.
struct Indexed {
    status: Status,
    due: Vec<u8>,
    to: String,
    /// `metadata.invoice`, when it names one.
    invoice: Option<Vec<u8>>,
    /// Matching entries found in `due` or `status`, in `to`, and in `invoices`.
    status_entries: u32,
    to_entries: u32,
    invoice_entries: u32,
}

/// Why an index entry was left by an insert cut short.
const NEVER_STORED: &str =
    "which is not stored: left by an insert cut short by a crash, harmless (readers skip it)";

/// The messages read (by id), and the ids whose record does not decode.
type Messages = (HashMap<[u8; 16], Indexed>, HashSet<[u8; 16]>);

fn status_of_code(code: u8) -> Option<Status> {
    Status::ALL.get(usize::from(code)).copied()
}

fn id16(bytes: &[u8]) -> Option<[u8; 16]> {
    <[u8; 16]>::try_from(bytes).ok()
}

impl Store {
    /// Opens an existing store for the offline tools: [`OpenError::NoStore`] when `path` holds
    /// none (nothing is created), [`OpenError::InUse`] when the daemon holds it.
    pub fn open_offline(path: &Path) -> Result<Store, OpenError> {
        if !path.join("db").is_file() {
            return Err(OpenError::NoStore(path.to_path_buf()));
        }
        if in_use(path)? {
            return Err(OpenError::InUse(path.to_path_buf()));
        }
        Store::open(path, CACHE_MB).map_err(|e| match e {
            StoreError::Io(m) if m.contains("could not acquire lock") => {
                OpenError::InUse(path.to_path_buf())
            }
            e => OpenError::Store(e),
        })
    }

    /// A tree by its name in [`TREES`].
    fn tree(&self, name: &str) -> Option<&sled::Tree> {
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
            _ => return None,
        })
    }

    /// The trees of [`TREES`] with their names.
    fn named_trees(&self) -> impl Iterator<Item = (&'static str, &sled::Tree)> {
        TREES
            .iter()
            .filter_map(|name| self.tree(name).map(|t| (*name, t)))
    }

    /// Trees with records that are not in [`TREES`] (nothing in this version writes them).
    fn other_trees(&self) -> Result<Vec<TreeCount>, StoreError> {
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
    fn flush_sync(&self) -> Result<(), StoreError> {
        self.inner.db.flush()?;
        sync_file(&self.inner.path.join("db"))?;
        sync_file(&self.inner.path)
    }

    /// Checks the whole store: every record decodes, every message's history chain holds
    /// ([`Store::verify_all_histories`]), and the indexes agree with the records (a waiting
    /// message has exactly one `due` entry and any other exactly one `status` entry, each
    /// matching the record; every message has its `to` entry and every `to` entry names a
    /// stored message to that number; plans and their invoices point at each other and at
    /// stored messages; inbound indexes point at stored inbound messages). Reads everything
    /// once; keeps a few dozen bytes per message in memory.
    pub fn check(&self) -> Result<CheckReport, StoreError> {
        let mut f = Findings::default();
        let mut report = CheckReport {
            trees: self
                .named_trees()
                .map(|(name, t)| TreeCount {
                    tree: name.to_string(),
                    records: t.len() as u64,
                })
                .collect(),
            ..CheckReport::default()
        };
        for t in self.other_trees()? {
            f.warning(
                &t.tree,
                &[],
                format!(
                    "{} record(s) in a tree this version does not use; an export leaves them out",
                    t.records
                ),
            );
        }
        let (msgs, unreadable) = self.check_messages(&mut f)?;
        self.check_histories(&mut f, &msgs, &unreadable, &mut report)?;
        self.check_other_records(&mut f, &msgs, &unreadable)?;
        report.problems = f.problems;
        report.warnings = f.warnings;
        Ok(report)
    }

    /// Messages and their `due`, `status` and `to` entries.
    fn check_messages(&self, f: &mut Findings) -> Result<Messages, StoreError> {
        let i = &self.inner;
        let mut msgs: HashMap<[u8; 16], Indexed> = HashMap::new();
        let mut unreadable = HashSet::new();
        for r in i.messages.iter() {
            let (k, v) = r?;
            let Some(id) = id16(&k) else {
                f.problem("messages", &k, "the key is not a message id (16 bytes)");
                continue;
            };
            match decode_message(&id, &v) {
                Ok(m) => {
                    msgs.insert(
                        id,
                        Indexed {
                            status: m.status,
                            due: due_key(&m, &id),
                            to: m.to.clone(),
                            invoice: crate::store::invoice_key(&m, &id),
                            status_entries: 0,
                            to_entries: 0,
                            invoice_entries: 0,
                        },
                    );
                }
                Err(e) => {
                    unreadable.insert(id);
                    f.problem(
                        "messages",
                        &k,
                        format!(
                            "message {}: the record does not decode: {e}",
                            id_string(&id)
                        ),
                    );
                }
            }
        }
        for r in i.due.iter() {
            let (k, v) = r?;
            let Some(id) = (k.len() == 25).then(|| id16(&k[9..25])).flatten() else {
                f.problem(
                    "due",
                    &k,
                    "the key is not priority · due time · id (25 bytes)",
                );
                continue;
            };
            let sid = id_string(&id);
            let waiting = match v.as_ref() {
                [c] => status_of_code(*c).filter(|s| s.is_waiting()),
                _ => None,
            };
            let Some(status) = waiting else {
                f.problem(
                    "due",
                    &k,
                    format!(
                        "message {sid}: the value {} is not a waiting status",
                        hex(&v)
                    ),
                );
                continue;
            };
            match msgs.get_mut(&id) {
                None if unreadable.contains(&id) => {}
                None => f.warning(
                    "due",
                    &k,
                    format!("queue entry of message {sid}, {NEVER_STORED}"),
                ),
                Some(m) if !m.status.is_waiting() => f.problem(
                    "due",
                    &k,
                    format!(
                        "message {sid} is {} but has a queue entry (as {})",
                        m.status.as_str(),
                        status.as_str()
                    ),
                ),
                Some(m) if m.due[..] != k[..] => f.problem(
                    "due",
                    &k,
                    format!(
                        "message {sid}: the queue entry's priority or due time is not the record's"
                    ),
                ),
                Some(m) if m.status != status => f.problem(
                    "due",
                    &k,
                    format!(
                        "message {sid}: the queue entry says {}, the record {}",
                        status.as_str(),
                        m.status.as_str()
                    ),
                ),
                Some(m) => m.status_entries += 1,
            }
        }

        for r in i.status.iter() {
            let (k, v) = r?;
            let Some(id) = (k.len() == 17).then(|| id16(&k[1..17])).flatten() else {
                f.problem("status", &k, "the key is not status · id (17 bytes)");
                continue;
            };
            let sid = id_string(&id);
            let Some(status) = status_of_code(k[0]).filter(|s| !s.is_waiting()) else {
                f.problem(
                    "status",
                    &k,
                    format!(
                        "message {sid}: {:#04x} is not a status kept in this index",
                        k[0]
                    ),
                );
                continue;
            };
            if !v.is_empty() {
                f.problem(
                    "status",
                    &k,
                    format!("message {sid}: the entry has a value ({})", hex(&v)),
                );
            }
            match msgs.get_mut(&id) {
                None if unreadable.contains(&id) => {}
                None => f.warning(
                    "status",
                    &k,
                    format!("status entry of message {sid}, {NEVER_STORED}"),
                ),
                Some(m) if m.status != status => f.problem(
                    "status",
                    &k,
                    format!(
                        "message {sid}: the status entry says {}, the record {}",
                        status.as_str(),
                        m.status.as_str()
                    ),
                ),
                Some(m) => m.status_entries += 1,
            }
        }

        for r in i.to.iter() {
            let (k, v) = r?;
            let n = k.len();
            let Some(id) = (n >= 17 && k[n - 17] == 0xFF)
                .then(|| id16(&k[n - 16..]))
                .flatten()
            else {
                f.problem("to", &k, "the key is not number · 0xFF · id");
                continue;
            };
            let sid = id_string(&id);
            let number = String::from_utf8_lossy(&k[..n - 17]);
            if !v.is_empty() {
                f.problem(
                    "to",
                    &k,
                    format!("message {sid}: the entry has a value ({})", hex(&v)),
                );
            }
            match msgs.get_mut(&id) {
                None if unreadable.contains(&id) => {}
                None => f.warning(
                    "to",
                    &k,
                    format!("recipient entry ({number}) of message {sid}, {NEVER_STORED}"),
                ),
                Some(m) if m.to.as_bytes() != &k[..n - 17] => f.problem(
                    "to",
                    &k,
                    format!(
                        "message {sid}: the recipient entry says {number}, the record {}",
                        m.to
                    ),
                ),
                Some(m) => m.to_entries += 1,
            }
        }

        let built = i.invoices.contains_key([])?;
        for r in i.invoices.iter() {
            let (k, _) = r?;
            if k.is_empty() {
                continue;
            }
            let n = k.len();
            let Some(id) = (n >= 17 && k[n - 17] == 0xFF)
                .then(|| id16(&k[n - 16..]))
                .flatten()
            else {
                f.problem("invoices", &k, "the key is not invoice · 0xFF · id");
                continue;
            };
            let sid = id_string(&id);
            match msgs.get_mut(&id) {
                None if unreadable.contains(&id) => {}
                None => f.warning(
                    "invoices",
                    &k,
                    format!("invoice entry of message {sid}, {NEVER_STORED}"),
                ),
                Some(m) if m.invoice.as_deref() != Some(&k[..]) => f.problem(
                    "invoices",
                    &k,
                    format!("message {sid}: the invoice entry does not match the record"),
                ),
                Some(m) => m.invoice_entries += 1,
            }
        }

        let mut ids: Vec<&[u8; 16]> = msgs.keys().collect();
        ids.sort_unstable();
        for id in ids {
            let Some(m) = msgs.get(id) else { continue };
            let sid = id_string(id);
            if built
                && m.invoice_entries == 0
                && let Some(k) = &m.invoice
            {
                f.problem(
                    "invoices",
                    k,
                    format!("message {sid} has no invoice entry: the export by invoice misses it"),
                );
            }
            if m.status_entries == 0 {
                if m.status.is_waiting() {
                    f.problem(
                        "due",
                        &m.due,
                        format!(
                            "message {sid} is {} but has no queue entry matching its record: it will not be sent",
                            m.status.as_str()
                        ),
                    );
                } else {
                    f.problem(
                        "status",
                        &status_key(m.status, id),
                        format!(
                            "message {sid} is {} but has no status entry: listing by status misses it",
                            m.status.as_str()
                        ),
                    );
                }
            }
            if m.to_entries == 0 {
                f.problem(
                    "to",
                    &to_key(&m.to, id),
                    format!(
                        "message {sid} has no recipient entry: listing by number ({}) misses it",
                        m.to
                    ),
                );
            }
        }
        Ok((msgs, unreadable))
    }

    /// History entries readable, none without a message, every chain whole.
    fn check_histories(
        &self,
        f: &mut Findings,
        msgs: &HashMap<[u8; 16], Indexed>,
        unreadable: &HashSet<[u8; 16]>,
        report: &mut CheckReport,
    ) -> Result<(), StoreError> {
        let mut orphan: Option<[u8; 16]> = None;
        for r in self.inner.events.iter() {
            let (k, v) = r?;
            let Some(id) = (k.len() == 20).then(|| id16(&k[..16])).flatten() else {
                f.problem("events", &k, "the key is not id · sequence (20 bytes)");
                continue;
            };
            if let Err(e) = decode::<Event>(&k, &v) {
                f.problem(
                    "events",
                    &k,
                    format!(
                        "message {}: a history entry does not decode: {e}",
                        id_string(&id)
                    ),
                );
            }
            if !msgs.contains_key(&id) && !unreadable.contains(&id) && orphan != Some(id) {
                orphan = Some(id);
                f.problem(
                    "events",
                    &k,
                    format!(
                        "history entries of message {}, which is not stored",
                        id_string(&id)
                    ),
                );
            }
        }
        let v = self.verify_all_histories()?;
        report.messages = v.messages;
        report.history_entries = v.entries;
        for (id, problem) in v.broken {
            let key = id_key(&id);
            if key.is_some_and(|k| unreadable.contains(&k)) {
                continue; // reported with the record
            }
            f.problem(
                "events",
                key.as_ref().map_or(&[][..], |k| &k[..]),
                format!("message {id}: the history chain is broken: {problem}"),
            );
        }
        Ok(())
    }

    /// Every other tree: records decode, inbound and plan indexes point where they should.
    fn check_other_records(
        &self,
        f: &mut Findings,
        msgs: &HashMap<[u8; 16], Indexed>,
        unreadable: &HashSet<[u8; 16]>,
    ) -> Result<(), StoreError> {
        let i = &self.inner;
        let message_known = |id: &[u8; 16]| msgs.contains_key(id) || unreadable.contains(id);

        for r in i.idempotency.iter() {
            let (k, v) = r?;
            if let Err(e) = decode::<IdempotencyRecord>(&k, &v) {
                f.problem(
                    "idempotency",
                    &k,
                    format!("the record does not decode: {e}"),
                );
            }
        }
        for r in i.hourly.iter() {
            let (k, v) = r?;
            if !crate::store::hourly::valid(&k, &v) {
                f.problem(
                    "hourly",
                    &k,
                    "not an hour (4 bytes) and a modem name with three 8-byte counters",
                );
            }
        }
        for r in i.outbox.iter() {
            let (k, v) = r?;
            let Ok(seq) = <[u8; 8]>::try_from(&k[..]).map(u64::from_be_bytes) else {
                f.problem("outbox", &k, "the key is not a sequence number (8 bytes)");
                continue;
            };
            if let Err(e) = crate::store::outbox::decode_entry(seq, &v) {
                f.problem("outbox", &k, format!("delivery {seq} does not decode: {e}"));
            }
        }

        // Inbound messages and their indexes.
        let mut inbound: HashMap<[u8; 16], String> = HashMap::new();
        let mut inbound_unreadable = HashSet::new();
        for r in i.inbound.iter() {
            let (k, v) = r?;
            let Some(id) = id16(&k) else {
                f.problem("inbound", &k, "the key is not an id (16 bytes)");
                continue;
            };
            match decode::<InboundMessage>(&k, &v) {
                Ok(m) => {
                    if m.id != id_string(&id) {
                        f.problem(
                            "inbound",
                            &k,
                            format!(
                                "inbound message {}: the record says its id is {}",
                                id_string(&id),
                                m.id
                            ),
                        );
                    }
                    inbound.insert(id, m.from);
                }
                Err(e) => {
                    inbound_unreadable.insert(id);
                    f.problem(
                        "inbound",
                        &k,
                        format!(
                            "inbound message {}: the record does not decode: {e}",
                            id_string(&id)
                        ),
                    );
                }
            }
        }
        for r in i.inbound_from.iter() {
            let (k, _) = r?;
            let n = k.len();
            let Some(id) = (n >= 17 && k[n - 17] == 0xFF)
                .then(|| id16(&k[n - 16..]))
                .flatten()
            else {
                f.problem("inbound_from", &k, "the key is not sender · 0xFF · id");
                continue;
            };
            let sender = String::from_utf8_lossy(&k[..n - 17]);
            match inbound.get(&id) {
                Some(from) if from.as_bytes() == &k[..n - 17] => {}
                Some(from) => f.problem(
                    "inbound_from",
                    &k,
                    format!(
                        "inbound message {}: the sender entry says {sender}, the record {from}",
                        id_string(&id)
                    ),
                ),
                None if inbound_unreadable.contains(&id) => {}
                None => f.problem(
                    "inbound_from",
                    &k,
                    format!(
                        "sender entry ({sender}) of inbound message {}, which is not stored",
                        id_string(&id)
                    ),
                ),
            }
        }
        for r in i.inbound_pending.iter() {
            let (k, _) = r?;
            match id16(&k) {
                None => f.problem("inbound_pending", &k, "the key is not an id (16 bytes)"),
                Some(id) if inbound.contains_key(&id) || inbound_unreadable.contains(&id) => {}
                Some(id) => f.warning(
                    "inbound_pending",
                    &k,
                    format!(
                        "pending entry of inbound message {}, which is not stored (the daemon drops it)",
                        id_string(&id)
                    ),
                ),
            }
        }
        for r in i.inbound_seen.iter() {
            let (k, v) = r?;
            if k.len() != 32 {
                f.problem("inbound_seen", &k, "the key is not a SHA-256 (32 bytes)");
            } else if !v.is_empty() && &v[..] != b"report" {
                f.problem("inbound_seen", &k, format!("unexpected value {}", hex(&v)));
            }
        }
        for r in i.fragments.iter() {
            let (k, v) = r?;
            if let Err(e) = crate::store::inbound::decode_fragment(&k, &v) {
                f.problem(
                    "fragments",
                    &k,
                    format!("the held part does not decode: {e}"),
                );
            }
        }
        for r in i.optouts.iter() {
            let (k, v) = r?;
            match decode::<OptOut>(&k, &v) {
                Ok(o) if o.number.as_bytes() == &k[..] => {}
                Ok(o) => f.problem(
                    "optouts",
                    &k,
                    format!(
                        "the opt-out of {} is stored under {}",
                        o.number,
                        String::from_utf8_lossy(&k)
                    ),
                ),
                Err(e) => f.problem("optouts", &k, format!("the record does not decode: {e}")),
            }
        }
        for r in i.reports.iter() {
            let (k, v) = r?;
            let n = k.len();
            let Some(id) = (n >= 20 && k[n - 19] == 0)
                .then(|| id16(&k[n - 17..n - 1]))
                .flatten()
            else {
                f.problem(
                    "reports",
                    &k,
                    "the key is not modem · 0x00 · TP-MR · id · part",
                );
                continue;
            };
            if v.len() != 8 {
                f.problem(
                    "reports",
                    &k,
                    format!(
                        "message {}: the value is not a sent time (8 bytes)",
                        id_string(&id)
                    ),
                );
            }
            if !message_known(&id) {
                f.problem(
                    "reports",
                    &k,
                    format!(
                        "a part of message {} awaits a status report, but the message is not stored",
                        id_string(&id)
                    ),
                );
            }
        }
        for r in i.reports_unmatched.iter() {
            let (k, v) = r?;
            if let Err(e) = decode::<UnmatchedReport>(&k, &v) {
                f.problem(
                    "reports_unmatched",
                    &k,
                    format!("the record does not decode: {e}"),
                );
            }
        }
        for r in i.templates.iter() {
            let (k, v) = r?;
            if let Err(e) = decode::<StoredTemplate>(&k, &v) {
                f.problem("templates", &k, format!("the record does not decode: {e}"));
            }
        }

        // Plans, their invoices, the messages of their steps.
        let mut plans: HashMap<[u8; 16], String> = HashMap::new();
        let mut plans_unreadable = HashSet::new();
        for r in i.plans.iter() {
            let (k, v) = r?;
            let Some(pid) = id16(&k) else {
                f.problem("plans", &k, "the key is not a plan id (16 bytes)");
                continue;
            };
            let spid = id_string(&pid);
            let plan: Plan = match decode(&k, &v) {
                Ok(p) => p,
                Err(e) => {
                    plans_unreadable.insert(pid);
                    f.problem(
                        "plans",
                        &k,
                        format!("plan {spid}: the record does not decode: {e}"),
                    );
                    continue;
                }
            };
            for (n, step) in plan.steps.iter().enumerate() {
                for mid in step.message_id.iter().chain(&step.replaced) {
                    match id_key(mid) {
                        Some(m) if message_known(&m) => {}
                        Some(_) => f.problem(
                            "plans",
                            &k,
                            format!("plan {spid}, step {}: message {mid} is not stored", n + 1),
                        ),
                        None => f.problem(
                            "plans",
                            &k,
                            format!("plan {spid}, step {}: {mid:?} is not a message id", n + 1),
                        ),
                    }
                }
            }
            plans.insert(pid, plan.invoice);
        }
        let mut indexed_plans = HashSet::new();
        for r in i.plan_invoices.iter() {
            let (k, v) = r?;
            let invoice = String::from_utf8_lossy(&k);
            let Some(pid) = id16(&v) else {
                f.problem(
                    "plan_invoices",
                    &k,
                    format!(
                        "invoice {invoice}: the value is not a plan id ({})",
                        hex(&v)
                    ),
                );
                continue;
            };
            match plans.get(&pid) {
                Some(inv) if inv.as_bytes() == &k[..] => {
                    indexed_plans.insert(pid);
                }
                Some(inv) => f.problem(
                    "plan_invoices",
                    &k,
                    format!(
                        "invoice {invoice} points at plan {}, which is the plan of invoice {inv}",
                        id_string(&pid)
                    ),
                ),
                None if plans_unreadable.contains(&pid) => {}
                None => f.problem(
                    "plan_invoices",
                    &k,
                    format!(
                        "invoice {invoice} points at plan {}, which is not stored",
                        id_string(&pid)
                    ),
                ),
            }
        }
        let mut pids: Vec<(&[u8; 16], &String)> = plans.iter().collect();
        pids.sort_unstable();
        for (pid, invoice) in pids {
            if !indexed_plans.contains(pid) {
                f.problem(
                    "plan_invoices",
                    invoice.as_bytes(),
                    format!(
                        "plan {} (invoice {invoice}) has no invoice entry pointing at it",
                        id_string(pid)
                    ),
                );
            }
        }
        Ok(())
    }

    /// Writes the whole store to `out` in the export format (see the module's documentation),
    /// every tree of [`TREES`], and flushes `out`.
    pub fn export_jsonl(
        &self,
        out: &mut dyn Write,
        created_at: DateTime<Utc>,
    ) -> Result<TransferSummary, StoreError> {
        let io = |e: std::io::Error| StoreError::Io(format!("cannot write the export: {e}"));
        let text = |s: &str| serde_json::to_string(s).map_err(|e| StoreError::Io(e.to_string()));
        writeln!(
            out,
            "{{\"smsgate_export\":{EXPORT_FORMAT},\"created_at\":{},\"version\":{}}}",
            text(&created_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))?,
            text(env!("CARGO_PKG_VERSION"))?
        )
        .map_err(io)?;
        let mut summary = TransferSummary::default();
        let mut line = Vec::with_capacity(512);
        for (name, tree) in self.named_trees() {
            let mut n = 0u64;
            for r in tree.iter() {
                let (k, v) = r?;
                record_line(&mut line, name, &k, &v);
                out.write_all(&line).map_err(io)?;
                n += 1;
            }
            summary.records += n;
            summary.trees.push(TreeCount {
                tree: name.to_string(),
                records: n,
            });
        }
        writeln!(out, "{{\"end\":true,\"records\":{}}}", summary.records).map_err(io)?;
        out.flush().map_err(io)?;
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
        let store = Store::open(dir, CACHE_MB)?;
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
        let target = Store::open(dir, CACHE_MB)?;
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

    /// The first record in which this store and `other` differ (a key only in one, or the
    /// same key with other bytes), over every tree of [`TREES`]; `None` when they are equal.
    pub fn first_difference(&self, other: &Store) -> Result<Option<Finding>, StoreError> {
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
    store: &Store,
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
mod tests {
    use super::*;
    use crate::store::outbox::NewWebhook;
    use crate::store::{Message, Note, test_message};

    fn open(dir: &Path) -> Store {
        Store::open(dir, 16).unwrap()
    }

    fn moved(s: &Store, m: &Message, to: Status) {
        s.update(&m.id, |m| {
            m.status = to;
            Some(Note::new(
                "status",
                to.as_str(),
                serde_json::json!({"by": "test"}),
            ))
        })
        .unwrap()
        .unwrap();
    }

    fn webhook(n: u32) -> NewWebhook {
        NewWebhook {
            id: format!("evt_{n}"),
            url: "http://127.0.0.1:9/hook".into(),
            event_type: "message.sent".into(),
            body: format!("{{\"n\":{n}}}"),
            ordering_key: String::new(),
            created_at: Utc::now(),
        }
    }

    /// A store with something in most trees: messages in several statuses with histories, a
    /// plan, inbound messages (one pending), an opt-out, an outbox entry, a template.
    fn populated(dir: &Path) -> (Store, Vec<Message>) {
        let s = open(dir);
        let mut ms: Vec<Message> = (0..6)
            .map(|n| {
                let mut m = test_message(&format!("+1202555010{n}"));
                m.text = format!("Invoice {n}: été \"due\"\\ ✓");
                m.metadata = Some(serde_json::json!({"invoice": format!("INV-{n}"), "f": 1.50}));
                m
            })
            .collect();
        ms[5].status = Status::Scheduled;
        ms[5].accepted_as = Status::Scheduled;
        ms[5].due_at = Utc::now() + chrono::Duration::days(3);
        s.insert(&ms[..4], None).unwrap();
        let idem = IdempotencyRecord {
            fingerprint: "cafe".into(),
            status: 201,
            body: serde_json::json!({"id": ms[5].id}),
            at: Utc::now(),
        };
        s.insert(&ms[5..], Some(("test\0step-5", &idem))).unwrap();
        // 0 stays queued, 5 scheduled; 1 sent (awaiting its report); 2 delivered; 3 cancelled.
        moved(&s, &ms[1], Status::Sending);
        s.update(&ms[1].id, |m| {
            m.status = Status::Sent;
            m.status_report = true;
            m.modem = Some("sim0".into());
            m.part_status = vec![crate::store::Part {
                part: 1,
                message_reference: Some(42),
                status: "sent".into(),
            }];
            Some("sent")
        })
        .unwrap();
        s.keep_unreadable_report("sim0", &[0x00, 0x06], "too short", Utc::now())
            .unwrap();
        for st in [Status::Sending, Status::Sent, Status::Delivered] {
            moved(&s, &ms[2], st);
        }
        moved(&s, &ms[3], Status::Cancelled);

        // A plan with one step's message (4, scheduled).
        let mut step = test_message("+12025550199");
        step.status = Status::Scheduled;
        step.accepted_as = Status::Scheduled;
        step.due_at = Utc::now() + chrono::Duration::days(10);
        ms[4] = step.clone();
        let now = Utc::now();
        let plan = Plan {
            id: ulid::Ulid::generate().to_string(),
            invoice: "INV-77".into(),
            to: "+12025550199".into(),
            amount: "120.50".into(),
            currency: "USD".into(),
            due_date: chrono::NaiveDate::from_ymd_opt(2030, 1, 15).unwrap(),
            timezone: "America/New_York".into(),
            locale: "en-US".into(),
            vars: serde_json::Map::new(),
            callback_url: None,
            precheck_url: None,
            send_window: crate::reminders::window::WindowSpec {
                start: "09:00".into(),
                end: "18:00".into(),
                timezone: "America/New_York".into(),
            },
            metadata: None,
            status: crate::store::plans::PlanStatus::Active,
            paid_at: None,
            created_at: now,
            updated_at: now,
            created_by: "test".into(),
            steps: vec![crate::store::plans::PlanStep {
                kind: crate::store::StepKind::Reminder,
                template: "due_soon".into(),
                offset: Some("-3d".into()),
                time: Some("10:00".into()),
                reply_options: None,
                planned_at: step.due_at,
                message_id: Some(step.id.clone()),
                skipped: None,
                replaced: Vec::new(),
            }],
            fingerprint: "ab".into(),
            revision: 0,
        };
        s.create_plan(&plan, &[step], None).unwrap();

        // Inbound: a whole message (pending) and a held part of a long one.
        let from = crate::sms::Address::parse_number("from", "+12025550100").unwrap();
        let ts = now.fixed_offset();
        let one = crate::sms::encode_deliver(None, &from, "1", &ts, false, 1).unwrap();
        s.receive("sim0", &one[0], None, now).unwrap();
        let long =
            crate::sms::encode_deliver(None, &from, &"long ".repeat(60), &ts, false, 9).unwrap();
        s.receive("sim0", &long[0], None, now).unwrap();
        s.opt_out(&OptOut {
            number: "+12025550150".into(),
            opted_out_at: Utc::now(),
            source: "api".into(),
            keyword: None,
            inbound_id: None,
            note: Some("asked by phone".into()),
        })
        .unwrap();
        s.enqueue_webhooks(&[webhook(1), webhook(2)]).unwrap();
        s.put_template(
            "due_soon",
            &StoredTemplate {
                text: "Hi {{ name }}".into(),
                updated_at: Utc::now(),
                updated_by: "test".into(),
            },
        )
        .unwrap();
        (s, ms)
    }

    type Records = Vec<(Vec<u8>, Vec<u8>)>;

    fn dump(s: &Store) -> Vec<(String, Records)> {
        TREES
            .iter()
            .map(|name| {
                let t = s.tree(name).unwrap();
                (
                    name.to_string(),
                    t.iter()
                        .map(|r| {
                            let (k, v) = r.unwrap();
                            (k.to_vec(), v.to_vec())
                        })
                        .collect(),
                )
            })
            .collect()
    }

    #[test]
    fn every_tree_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path());
        assert!(TREES.iter().all(|t| s.tree(t).is_some()));
        assert_eq!(s.named_trees().count(), TREES.len());
    }

    #[test]
    fn hex_round_trips() {
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(unhex(&hex(&bytes)).unwrap(), bytes);
        assert_eq!(unhex("ABcd").unwrap(), vec![0xAB, 0xCD]);
        assert!(unhex("abc").unwrap_err().contains("odd"));
        assert!(unhex("zz").unwrap_err().contains("not a hex digit"));
    }

    #[test]
    fn values_that_are_not_verbatim_json() {
        assert_eq!(verbatim_json(br#"{"a":1}"#), Some(r#"{"a":1}"#));
        assert_eq!(verbatim_json(b"null"), Some("null"));
        for v in [
            &b""[..],
            b"\x00",
            b" 1",
            b"1 ",
            b"{\"a\":\n1}",
            br#"{"hex":"00"}"#,
            b"\xff\xfe",
        ] {
            assert_eq!(verbatim_json(v), None, "{v:?}");
        }
        // Not the hex form: kept as JSON.
        assert!(verbatim_json(br#"["00"]"#).is_some());
        assert!(verbatim_json(br#"{"hex":"00","x":1}"#).is_some());
        assert!(verbatim_json(br#"{"hex":1}"#).is_some());
    }

    #[tokio::test]
    async fn export_then_import_gives_the_same_store() {
        let dir = tempfile::tempdir().unwrap();
        let (s, ms) = populated(&dir.path().join("a"));
        // Odd values: JSON that must not be reformatted, and bytes that are no JSON.
        s.inner
            .templates
            .insert(b"spaced", &br#"{"text": "x",  "updated_at":"2030-01-01T00:00:00Z","updated_by":"\u0041"}"#[..])
            .unwrap();
        s.inner
            .templates
            .insert(b"hexlike", &br#"{"hex":"00"}"#[..])
            .unwrap();
        s.inner
            .templates
            .insert(b"\xff\x00", &b"\x00\xff"[..])
            .unwrap();
        // Deeply nested JSON (the import reads a value without a depth limit).
        for depth in [126, 127, 128, 200] {
            let deep = "[".repeat(depth) + &"]".repeat(depth);
            s.inner
                .templates
                .insert(format!("deep{depth}").as_bytes(), deep.as_bytes())
                .unwrap();
        }
        s.durable().await.unwrap();
        let report = s.check().unwrap();
        // The odd templates do not decode as templates: exactly those problems.
        assert_eq!(report.problems.len(), 6, "{report:#?}");
        assert!(
            report
                .problems
                .iter()
                .all(|p| p.tree == "templates" && p.key != hex(b"spaced"))
        );

        let mut out = Vec::new();
        let summary = s.export_jsonl(&mut out, Utc::now()).unwrap();
        let text = String::from_utf8(out.clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len() as u64, summary.records + 2);
        let header: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(header["smsgate_export"], 1);
        assert_eq!(header["version"], env!("CARGO_PKG_VERSION"));
        assert!(lines[0].starts_with("{\"smsgate_export\":1,"));
        assert_eq!(
            lines.last().unwrap(),
            &format!("{{\"end\":true,\"records\":{}}}", summary.records)
        );
        let n = lines.len();
        for l in &lines[1..n - 1] {
            assert!(serde_json::from_str::<RecordLine<'_>>(l).is_ok(), "{l}");
        }
        assert!(
            text.contains(r#""value":{"text": "x",  "updated_at""#),
            "verbatim"
        );
        assert!(text.contains(&format!(r#""key":"{}","value":[[["#, hex(b"deep126"))));
        assert!(text.contains(&format!(r#""key":"{}","value":[[["#, hex(b"deep200"))));
        assert!(text.contains(&format!(
            r#""key":"{}","value":{{"hex":"{}"}}"#,
            hex(b"hexlike"),
            hex(br#"{"hex":"00"}"#)
        )));

        let b = dir.path().join("b");
        let imported = Store::import_jsonl(&b, &mut out.as_slice()).unwrap();
        assert_eq!(imported.records, summary.records);
        assert_eq!(imported.trees, summary.trees);
        let t = open(&b);
        assert_eq!(dump(&s), dump(&t), "every tree equal byte for byte");
        assert_eq!(s.first_difference(&t).unwrap(), None);
        let v = t.verify_all_histories().unwrap();
        assert!(v.broken.is_empty(), "{v:?}");
        assert_eq!(v.messages, ms.len() as u64);
        let r = t.check().unwrap();
        assert_eq!(r.problems, report.problems);
        assert_eq!(r.trees, report.trees);
        // Every tree had something to carry.
        for name in TREES {
            assert!(
                r.trees.iter().any(|c| c.tree == name && c.records > 0),
                "{name}: {:?}",
                r.trees
            );
        }
        // What the store says is the same.
        for m in &ms {
            assert_eq!(
                s.get_with_events(&m.id).unwrap(),
                t.get_with_events(&m.id).unwrap()
            );
        }
        assert_eq!(t.counts().unwrap(), s.counts().unwrap());
        assert_eq!(t.queue_depth(), 3);
    }

    #[tokio::test]
    async fn a_clean_store_checks_clean_and_a_copy_is_identical() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = populated(&dir.path().join("a"));
        let r = s.check().unwrap();
        assert!(r.is_clean(), "{r:#?}");
        assert!(r.warnings.is_empty(), "{r:#?}");
        assert_eq!(r.messages, 6);
        // 6 implied first entries, 2 + 3 + 1 stored ones.
        assert_eq!(r.history_entries, 12);
        let c = dir.path().join("c");
        let copied = s.copy_into(&c).unwrap();
        assert_eq!(
            copied.records,
            r.trees.iter().map(|t| t.records).sum::<u64>()
        );
        let t = open(&c);
        assert_eq!(dump(&s), dump(&t));
        assert!(t.check().unwrap().is_clean());
        // Into a directory that is not empty: refused.
        drop(t);
        assert!(s.copy_into(&c).is_err());
        let e = Store::import_jsonl(&c, &mut &b""[..]).unwrap_err();
        assert!(matches!(e, ImportError::NotEmpty(_)), "{e}");
    }

    #[tokio::test]
    async fn check_names_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let (s, ms) = populated(dir.path());
        let queued = &ms[0];
        let id = id_key(&queued.id).unwrap();
        let m = s.get(&queued.id).unwrap().unwrap();
        // The dispatcher would never see it.
        let due = due_key(&m, &id);
        assert!(s.inner.due.remove(&due).unwrap().is_some());
        // A record that no longer decodes.
        let cancelled = id_key(&ms[3].id).unwrap();
        s.inner
            .messages
            .insert(cancelled, &b"{\"to\":"[..])
            .unwrap();
        // A sent message also listed as delivered.
        let sent = id_key(&ms[1].id).unwrap();
        s.inner
            .status
            .insert(status_key(Status::Delivered, &sent), &[])
            .unwrap();
        // A history entry edited after the fact.
        let delivered = id_key(&ms[2].id).unwrap();
        let k = crate::store::event_key(&delivered, 1);
        let raw = s.inner.events.get(&k).unwrap().unwrap();
        let mut e: Event = serde_json::from_slice(&raw).unwrap();
        e.reason = Some("edited".into());
        s.inner
            .events
            .insert(&k, serde_json::to_vec(&e).unwrap())
            .unwrap();
        // The plan's invoice entry is gone.
        s.inner.plan_invoices.remove(b"INV-77").unwrap();
        // Left by an insert cut short: a warning, not a problem.
        let ghost = ulid::Ulid::generate().0.to_be_bytes();
        s.inner
            .to
            .insert(to_key("+12025550111", &ghost), &[])
            .unwrap();

        let r = s.check().unwrap();
        assert!(!r.is_clean());
        let find = |tree: &str, key: &[u8]| {
            r.problems
                .iter()
                .find(|p| p.tree == tree && p.key == hex(key))
                .unwrap_or_else(|| panic!("no problem at {tree}/{}: {r:#?}", hex(key)))
        };
        let p = find("due", &due);
        assert!(
            p.problem.contains(&queued.id) && p.problem.contains("no queue entry"),
            "{p:?}"
        );
        let p = find("messages", &cancelled);
        assert!(p.problem.contains("does not decode"), "{p:?}");
        let p = find("status", &status_key(Status::Delivered, &sent));
        assert!(
            p.problem.contains("says delivered, the record sent"),
            "{p:?}"
        );
        let p = find("events", &delivered);
        assert!(p.problem.contains("chain is broken"), "{p:?}");
        let p = find("plan_invoices", b"INV-77");
        assert!(p.problem.contains("no invoice entry"), "{p:?}");
        assert_eq!(r.problems.len(), 5, "{r:#?}");
        assert_eq!(r.warnings.len(), 1, "{r:#?}");
        assert_eq!(r.warnings[0].tree, "to");
        assert!(r.warnings[0].problem.contains("not stored"));
    }

    #[tokio::test]
    async fn an_unreadable_history_entry_does_not_stop_the_check() {
        let dir = tempfile::tempdir().unwrap();
        let (s, ms) = populated(dir.path());
        let delivered = id_key(&ms[2].id).unwrap();
        let k = crate::store::event_key(&delivered, 2);
        s.inner.events.insert(&k, &b"not json"[..]).unwrap();
        // And another message's chain is broken too: both are found.
        let sent = id_key(&ms[1].id).unwrap();
        s.inner
            .events
            .remove(crate::store::event_key(&sent, 2))
            .unwrap();
        let r = s.check().unwrap();
        assert!(
            r.problems.iter().any(|p| p.tree == "events"
                && p.key == hex(&k)
                && p.problem.contains("does not decode")),
            "{r:#?}"
        );
        for id in [&ms[2].id, &ms[1].id] {
            assert!(
                r.problems
                    .iter()
                    .any(|p| p.key == hex(&id_key(id).unwrap())
                        && p.problem.contains("chain is broken")),
                "{id}: {r:#?}"
            );
        }
        assert_eq!(r.messages, 6);
    }

    #[tokio::test]
    async fn new_deliveries_are_numbered_after_the_imported_ones() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        // Each reopen moves sled's generator on by two million: high sequence numbers.
        for _ in 0..3 {
            let s = open(&a);
            s.enqueue_webhooks(&[webhook(1)]).unwrap();
            s.durable().await.unwrap();
        }
        let s = open(&a);
        let max = s
            .inner
            .outbox
            .last()
            .unwrap()
            .map(|(k, _)| u64::from_be_bytes(<[u8; 8]>::try_from(&k[..]).unwrap()))
            .unwrap();
        assert!(max >= 4_000_000, "{max}");
        let mut out = Vec::new();
        s.export_jsonl(&mut out, Utc::now()).unwrap();
        drop(s);
        let b = dir.path().join("b");
        Store::import_jsonl(&b, &mut out.as_slice()).unwrap();
        for _ in 0..2 {
            let t = open(&b);
            let e = t.enqueue_webhooks(&[webhook(2)]).unwrap();
            assert!(e[0].seq > max, "{} after {max}", e[0].seq);
            t.durable().await.unwrap();
        }
        // And through a copy.
        let t = open(&b);
        let c = dir.path().join("c");
        t.copy_into(&c).unwrap();
        let top = t
            .inner
            .outbox
            .last()
            .unwrap()
            .map(|(k, _)| u64::from_be_bytes(<[u8; 8]>::try_from(&k[..]).unwrap()))
            .unwrap();
        drop(t);
        let u = open(&c);
        assert!(u.enqueue_webhooks(&[webhook(3)]).unwrap()[0].seq > top);
    }

    #[tokio::test]
    async fn bad_input_is_refused_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = populated(&dir.path().join("a"));
        let mut out = Vec::new();
        s.export_jsonl(&mut out, Utc::now()).unwrap();
        let good = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = good.lines().collect();
        let n = lines.len();
        let cut = |k: usize| lines[..k].join("\n") + "\n";
        let record = |tree: &str, key: &str, value: &str| {
            format!("{{\"tree\":\"{tree}\",\"key\":\"{key}\",\"value\":{value}}}")
        };
        let with = |i: usize, l: String| {
            let mut v: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
            v[i] = l;
            v.join("\n") + "\n"
        };
        let cases: Vec<(String, u64, &str)> = vec![
            (String::new(), 1, "empty"),
            (
                "{\"message_id\":\"x\"}\n".into(),
                1,
                "not an smsgate store export",
            ),
            (
                with(0, "{\"smsgate_export\":2,\"version\":\"9.0.0\"}".into()),
                1,
                "format 2",
            ),
            (cut(n - 1), n as u64 - 1, "cut short"),
            (cut(3) + &lines[3][..lines[3].len() / 2], 4, "not a record"),
            (
                with(2, record("messages", "0g", "{}")),
                3,
                "not a hex digit",
            ),
            (
                with(2, record("messages", "00", "{\"hex\":\"abc\"}")),
                3,
                "odd number",
            ),
            (with(2, record("nope", "00", "{}")), 3, "unknown tree"),
            (with(2, lines[1].to_string()), 3, "repeated or out of order"),
            (
                with(n - 1, "{\"end\":true,\"records\":1}".into()),
                n as u64,
                "counts 1 records",
            ),
            (good.clone() + "{}\n", n as u64 + 1, "after the end line"),
        ];
        for (i, (input, line, what)) in cases.into_iter().enumerate() {
            let target = dir.path().join(format!("t{i}"));
            match Store::import_jsonl(&target, &mut input.as_bytes()) {
                Err(ImportError::BadInput { line: l, detail }) => {
                    assert_eq!(l, line, "case {i}: {detail}");
                    assert!(detail.contains(what), "case {i}: {detail}");
                }
                other => panic!("case {i}: {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn a_store_in_use_is_not_opened() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path());
        assert!(in_use(dir.path()).unwrap());
        assert!(matches!(
            Store::open_offline(dir.path()),
            Err(OpenError::InUse(_))
        ));
        drop(s);
        assert!(!in_use(dir.path()).unwrap());
        assert!(Store::open_offline(dir.path()).is_ok());
        let empty = tempfile::tempdir().unwrap();
        assert!(matches!(
            Store::open_offline(empty.path()),
            Err(OpenError::NoStore(_))
        ));
        assert!(!empty.path().join("db").exists(), "nothing created");
    }
}
