//! `smsgate store check|export|import|compact|copy`: the whole store, handled offline while
//! the daemon is stopped (sled locks the store's directory while the daemon runs: these
//! commands then exit 4). `check` also checks a PostgreSQL store, and `copy` moves a whole
//! store between the embedded store and PostgreSQL (those two in [`postgres`]). The store side
//! is [`crate::store::backup`]; this module reads the arguments, handles directories
//! (temporary siblings, renames, ownership) and prints.
//!
//! Exit codes: 0 done (and the store checks clean), 1 the store or the file system failed,
//! 2 bad input (an export that is not one, a target that is not empty (a directory, or a
//! database that holds data), no store at the path),
//! 3 the check found problems, 4 the store is in use (the daemon seems to be running).

use std::fs;
use std::io::{BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Subcommand, ValueEnum};

use super::EXIT_BAD_INPUT;
use super::history::{EXIT_BROKEN, StoreArgs};
use crate::config::Config;
use crate::config::redacted_url;
use crate::store::backup::{
    CheckReport, CopyError, ImportError, OpenError, TransferSummary, TreeCount, in_use,
};
use crate::store::{PgStore, SledStore};

mod postgres;

/// Exit code when the store is in use: the daemon holds it.
pub const EXIT_IN_USE: u8 = 4;

/// Exit code when the store (or the file system) failed.
const EXIT_FAILED: u8 = 1;

/// Export format.
#[derive(Debug, Clone, Copy, Default, ValueEnum)]
pub enum DumpFormat {
    /// JSON Lines: a header, one line per record of every tree, an end line.
    #[default]
    Jsonl,
}

/// `smsgate store …`
#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Check the whole store: every record readable, every history chain whole, the indexes in
    /// agreement with the records. Exit 3 when anything is wrong.
    ///
    /// On PostgreSQL (`--url`, or a configuration whose `[storage] backend` is `postgres`) the
    /// same report, with the tables in place of the trees: every record readable, every history,
    /// tombstone and audit chain whole, the columns in agreement with the records, the parts
    /// awaiting a report and the plans' steps naming stored messages, the sequences past the
    /// numbers in use. Gateways may run meanwhile.
    Check {
        /// Where the store is.
        #[command(flatten)]
        store: StoreArgs,
        /// A PostgreSQL store's URL (`postgres://user@host/database`), instead of the
        /// configuration's store.
        #[arg(long, conflicts_with = "store")]
        url: Option<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Copy a whole store between the embedded store and PostgreSQL, record for record (the
    /// same JSON, history chains intact), then print the records of each kind on both sides
    /// and check the copy (exit 3 when the check finds problems).
    ///
    /// Embedded store to PostgreSQL: the daemon must be stopped (exit 4 otherwise); the
    /// database's schema is made and it must hold no smsgate data (exit 2 otherwise); all or
    /// nothing is written (one transaction). PostgreSQL to the embedded store: into a new or
    /// empty directory (exit 2 otherwise); read from one snapshot, gateways may run meanwhile.
    Copy {
        /// The store to copy: an embedded store's directory or a `postgres://` URL.
        #[arg(long, value_name = "DIR|URL")]
        from: String,
        /// Where the copy goes: a `postgres://` URL (an empty database) or a new or empty
        /// directory.
        #[arg(long, value_name = "URL|DIR")]
        to: String,
        /// Print what was copied and the check of the copy as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write every record of every tree, byte for byte, to a file or standard output: a full
    /// backup, for a dispute or a migration (`smsgate store import` reads it back).
    Export {
        /// Where the store is.
        #[command(flatten)]
        store: StoreArgs,
        /// Output format.
        #[arg(long, value_enum, default_value_t = DumpFormat::Jsonl)]
        format: DumpFormat,
        /// The file to write (replaced if it exists); standard output when not given.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Make a new store from an export, in a new or empty directory (`--store`, or the
    /// configuration's `[storage] path`), then check it. Never merges.
    Import {
        /// Where the new store goes.
        #[command(flatten)]
        store: StoreArgs,
        /// The export to read (`-` for standard input).
        #[arg(long, short)]
        input: PathBuf,
        /// Import even though the directory is not empty: what is there is moved aside to
        /// `<dir>.old-<time>` (not deleted, not merged).
        #[arg(long)]
        force: bool,
    },
    /// Rewrite the store into a fresh directory (sled's files do not shrink by themselves),
    /// check the copy and swap it in. The old store is kept as `<dir>.old-<time>`.
    Compact {
        /// Where the store is.
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Bring a PostgreSQL store's schema up to this version's (`[storage] backend =
    /// "postgres"`), printing what was applied; gateways may run meanwhile. The embedded
    /// store has nothing to migrate.
    Migrate(super::migrate::MigrateArgs),
}

/// Why a command stopped: its exit code and what to say.
struct Failure {
    code: u8,
    message: String,
}

fn fail<T>(code: u8, message: impl Into<String>) -> Result<T, Failure> {
    Err(Failure {
        code,
        message: message.into(),
    })
}

/// Runs a store command.
pub fn run(cmd: StoreCommand) -> ExitCode {
    let r = match cmd {
        StoreCommand::Check { store, url, json } => {
            postgres::pg_target(&store, url).and_then(|target| match target {
                Some(url) => postgres::check_postgres(&url, json),
                None => check(&store, json),
            })
        }
        StoreCommand::Copy { from, to, json } => postgres::copy(&from, &to, json),
        StoreCommand::Export {
            store,
            format: DumpFormat::Jsonl,
            output,
        } => export(&store, output.as_deref()),
        StoreCommand::Import {
            store,
            input,
            force,
        } => import(&store, &input, force),
        StoreCommand::Compact { store } => compact(&store),
        StoreCommand::Migrate(args) => return super::migrate::run(&args),
    };
    match r {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            eprintln!("error: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

/// The store directory: `--store`, or the configuration's `[storage] path`.
fn store_path(args: &StoreArgs) -> Result<PathBuf, Failure> {
    match &args.store {
        Some(p) => Ok(p.clone()),
        None => match Config::load(&args.config) {
            Ok(c) => match c.storage.sled_path() {
                Some(p) => Ok(p.to_path_buf()),
                None => fail(
                    EXIT_BAD_INPUT,
                    format!(
                        "{}: the store is in {}, and this command works on the embedded \
                         store's directory: give it with --store DIR",
                        args.config.display(),
                        c.storage.describe()
                    ),
                ),
            },
            Err(e) => fail(EXIT_BAD_INPUT, e.to_string()),
        },
    }
}

fn in_use_message(path: &Path) -> String {
    format!(
        "the store in {} is locked: the daemon seems to be running. Stop it first (systemctl stop smsgate)",
        path.display()
    )
}

fn open(path: &Path) -> Result<SledStore, Failure> {
    match SledStore::open_offline(path) {
        Ok(s) => Ok(s),
        Err(OpenError::InUse(p)) => fail(EXIT_IN_USE, in_use_message(&p)),
        Err(e @ OpenError::NoStore(_)) => fail(EXIT_BAD_INPUT, e.to_string()),
        Err(e) => fail(EXIT_FAILED, e.to_string()),
    }
}

/// Opens a store this process has just made and closed: sled's own thread lets go of the
/// directory's lock when it next wakes, so a lock still held is waited for a few seconds.
fn open_just_closed(path: &Path) -> Result<SledStore, Failure> {
    let mut tries = 0;
    loop {
        match open(path) {
            Err(f) if f.code == EXIT_IN_USE && tries < 100 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            r => return r,
        }
    }
}

fn failed(e: impl std::fmt::Display) -> Failure {
    Failure {
        code: EXIT_FAILED,
        message: e.to_string(),
    }
}

fn check(args: &StoreArgs, json: bool) -> Result<u8, Failure> {
    let path = store_path(args)?;
    let s = open(&path)?;
    let report = s.check().map_err(failed)?;
    show_check(&path.display().to_string(), &report, json)
}

/// Prints a check's report (as JSON with `json`); the exit code it calls for.
fn show_check(store: &str, report: &CheckReport, json: bool) -> Result<u8, Failure> {
    let mut out = std::io::stdout().lock();
    if json {
        let mut v = serde_json::to_value(report).map_err(failed)?;
        if let Some(o) = v.as_object_mut() {
            o.insert("store".into(), store.into());
            o.insert("clean".into(), report.is_clean().into());
        }
        let _ = writeln!(out, "{v}");
    } else {
        print_report(&mut out, store, report);
    }
    Ok(if report.is_clean() { 0 } else { EXIT_BROKEN })
}

/// Problems (and warnings) a report lists for a person; `--json` has them all.
const LISTED: usize = 100;

/// The report for a person: records per tree, then every problem and warning with its key.
fn print_report(out: &mut dyn Write, store: &str, r: &CheckReport) {
    let _ = writeln!(out, "store {store}");
    for t in &r.trees {
        let _ = writeln!(out, "  {:<18} {:>10}", t.tree, t.records);
    }
    let _ = writeln!(
        out,
        "{} message(s), {} history entries checked",
        r.messages, r.history_entries
    );
    for (label, list) in [("PROBLEM", &r.problems), ("WARNING", &r.warnings)] {
        for p in list.iter().take(LISTED) {
            let _ = writeln!(out, "{label} {} {}: {}", p.tree, p.key, p.problem);
        }
        if list.len() > LISTED {
            let _ = writeln!(
                out,
                "{label} … and {} more (--json lists them all)",
                list.len() - LISTED
            );
        }
    }
    let _ = if r.is_clean() {
        writeln!(
            out,
            "clean: every record readable, every chain holds, the indexes agree{}",
            if r.warnings.is_empty() {
                String::new()
            } else {
                format!(" ({} warning(s))", r.warnings.len())
            }
        )
    } else {
        writeln!(
            out,
            "{} problem(s) found, {} warning(s)",
            r.problems.len(),
            r.warnings.len()
        )
    };
}

fn print_left_out(s: &TransferSummary) {
    for t in &s.left_out {
        eprintln!(
            "warning: tree {} ({} records) is not one this version uses: left out",
            t.tree, t.records
        );
    }
}

fn export(args: &StoreArgs, output: Option<&Path>) -> Result<u8, Failure> {
    let path = store_path(args)?;
    let s = open(&path)?;
    let now = chrono::Utc::now();
    let summary = match output {
        None => {
            let mut out = BufWriter::new(std::io::stdout().lock());
            s.export_jsonl(&mut out, now).map_err(failed)?
        }
        Some(file) => {
            let f = fs::File::create(file)
                .map_err(|e| failed(format!("cannot create {}: {e}", file.display())))?;
            let mut out = BufWriter::new(f);
            let written = s.export_jsonl(&mut out, now).and_then(|summary| {
                let f = out
                    .into_inner()
                    .map_err(|e| crate::store::StoreError::Io(e.to_string()))?;
                f.sync_all()
                    .map_err(|e| crate::store::StoreError::Io(format!("fsync: {e}")))?;
                Ok(summary)
            });
            match written {
                Ok(summary) => summary,
                Err(e) => {
                    // A partial export would be refused on import (no end line); remove it
                    // all the same.
                    let _ = fs::remove_file(file);
                    return fail(EXIT_FAILED, e.to_string());
                }
            }
        }
    };
    print_left_out(&summary);
    eprintln!(
        "exported {} records from {} to {}",
        summary.records,
        path.display(),
        output.map_or("standard output".to_string(), |p| p.display().to_string())
    );
    Ok(0)
}

/// `<dir>.<suffix>`, beside `dir`.
fn sibling(dir: &Path, suffix: &str) -> Result<PathBuf, Failure> {
    let Some(name) = dir.file_name() else {
        return fail(
            EXIT_BAD_INPUT,
            format!("{}: give the store's directory by its name", dir.display()),
        );
    };
    let mut name = name.to_os_string();
    name.push(".");
    name.push(suffix);
    Ok(dir.with_file_name(name))
}

/// A time stamp for the names of `dir`'s siblings, such that none of `<dir>.<prefix>-<stamp>`
/// exists yet (a second run in the same second gets `-2`, and so on).
fn stamp(dir: &Path, prefixes: &[&str]) -> Result<String, Failure> {
    let base = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
    for n in 1..100 {
        let stamp = if n == 1 {
            base.clone()
        } else {
            format!("{base}-{n}")
        };
        let mut free = true;
        for p in prefixes {
            free &= !sibling(dir, &format!("{p}-{stamp}"))?.exists();
        }
        if free {
            return Ok(stamp);
        }
    }
    fail(
        EXIT_FAILED,
        format!("too many {}.* directories", dir.display()),
    )
}

/// fsyncs a directory, so that renames in it survive a power cut.
fn sync_dir(dir: &Path) -> Result<(), Failure> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| failed(format!("fsync {}: {e}", dir.display())))
}

fn parent(dir: &Path) -> &Path {
    dir.parent().unwrap_or(Path::new("."))
}

/// Gives `dir` the mode, owner and group of the directory it replaces (`like`), and its files
/// the same owner, so that the daemon's user can open it when an admin ran the command as
/// root. A warning when that cannot be done.
fn match_owner(dir: &Path, like: &fs::Metadata) {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let _ = fs::set_permissions(dir, fs::Permissions::from_mode(like.mode() & 0o7777));
    let Ok(now) = fs::metadata(dir) else { return };
    if now.uid() == like.uid() && now.gid() == like.gid() {
        return;
    }
    fn walk(p: &Path, uid: u32, gid: u32) -> std::io::Result<()> {
        std::os::unix::fs::lchown(p, Some(uid), Some(gid))?;
        if fs::symlink_metadata(p)?.is_dir() {
            for e in fs::read_dir(p)? {
                walk(&e?.path(), uid, gid)?;
            }
        }
        Ok(())
    }
    if let Err(e) = walk(dir, like.uid(), like.gid()) {
        eprintln!(
            "warning: cannot give {} the owner of the store it replaces ({e}): run chown -R {}:{} {} before starting the daemon",
            dir.display(),
            like.uid(),
            like.gid(),
            dir.display()
        );
    }
}

/// Bytes on disk (allocated blocks) under `dir`.
fn disk_usage(dir: &Path) -> std::io::Result<u64> {
    use std::os::unix::fs::MetadataExt;
    let m = fs::symlink_metadata(dir)?;
    let mut total = m.blocks() * 512;
    if m.is_dir() {
        for e in fs::read_dir(dir)? {
            total += disk_usage(&e?.path())?;
        }
    }
    Ok(total)
}

/// Bytes for a person: `1234567 bytes (1.2 MiB)`.
fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut unit = "";
    for u in UNITS {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    if unit.is_empty() {
        format!("{bytes} bytes")
    } else {
        format!("{bytes} bytes ({v:.1} {unit})")
    }
}

fn import(args: &StoreArgs, input: &Path, force: bool) -> Result<u8, Failure> {
    let target = store_path(args)?;
    let existing = match fs::symlink_metadata(&target) {
        Ok(m) if m.is_dir() => Some(m),
        Ok(_) => {
            return fail(
                EXIT_BAD_INPUT,
                format!("{}: not a directory", target.display()),
            );
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return fail(EXIT_FAILED, format!("{}: {e}", target.display())),
    };
    let occupied = match &existing {
        Some(_) => fs::read_dir(&target)
            .map_err(|e| failed(format!("cannot read {}: {e}", target.display())))?
            .next()
            .is_some(),
        None => false,
    };
    if occupied && !force {
        return fail(
            EXIT_BAD_INPUT,
            format!(
                "{} is not empty: an import makes a new store and never merges. Give a new or empty directory, or --force to move what is there aside",
                target.display()
            ),
        );
    }
    if occupied && in_use(&target).map_err(failed)? {
        return fail(EXIT_IN_USE, in_use_message(&target));
    }
    let mut reader: Box<dyn BufRead> = if input == Path::new("-") {
        Box::new(std::io::stdin().lock())
    } else {
        match fs::File::open(input) {
            Ok(f) => Box::new(std::io::BufReader::with_capacity(1 << 16, f)),
            Err(e) => {
                return fail(
                    EXIT_BAD_INPUT,
                    format!("cannot read {}: {e}", input.display()),
                );
            }
        }
    };
    let source = if input == Path::new("-") {
        "standard input".to_string()
    } else {
        input.display().to_string()
    };
    let stamp = stamp(&target, &["import", "old"])?;
    let tmp = sibling(&target, &format!("import-{stamp}"))?;
    // Written beside the target, moved into place only once whole and checked: an import cut
    // short leaves nothing that looks like a store where the daemon looks.
    let summary = match SledStore::import_jsonl(&tmp, &mut reader) {
        Ok(s) => s,
        Err(e) => {
            let _ = fs::remove_dir_all(&tmp);
            return match e {
                ImportError::BadInput { line, detail } => fail(
                    EXIT_BAD_INPUT,
                    format!("{source}, line {line}: {detail}; nothing was imported"),
                ),
                e => fail(EXIT_FAILED, format!("{e}; nothing was imported")),
            };
        }
    };
    let report = match open(&tmp).and_then(|s| s.check().map_err(failed)) {
        Ok(r) => r,
        Err(f) => {
            let _ = fs::remove_dir_all(&tmp);
            return Err(f);
        }
    };
    if let Some(like) = &existing {
        match_owner(&tmp, like);
    }
    let old = if occupied {
        let old = sibling(&target, &format!("old-{stamp}"))?;
        fs::rename(&target, &old).map_err(|e| {
            let _ = fs::remove_dir_all(&tmp);
            failed(format!(
                "cannot move {} aside to {}: {e}",
                target.display(),
                old.display()
            ))
        })?;
        Some(old)
    } else {
        None
    };
    // An empty directory is replaced by the rename.
    if let Err(e) = fs::rename(&tmp, &target) {
        if let Some(old) = &old {
            let _ = fs::rename(old, &target);
        }
        let _ = fs::remove_dir_all(&tmp);
        return fail(
            EXIT_FAILED,
            format!("cannot move the new store to {}: {e}", target.display()),
        );
    }
    sync_dir(parent(&target))?;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "imported {} records from {source} into {}",
        summary.records,
        target.display()
    );
    if let Some(old) = &old {
        let _ = writeln!(
            out,
            "what was in {} is kept in {}",
            target.display(),
            old.display()
        );
    }
    print_report(&mut out, &target.display().to_string(), &report);
    if !report.is_clean() {
        let _ = writeln!(
            out,
            "the imported store has problems (the exported one had them too): see above"
        );
        return Ok(EXIT_BROKEN);
    }
    Ok(0)
}

fn compact(args: &StoreArgs) -> Result<u8, Failure> {
    let given = store_path(args)?;
    let s = open(&given)?;
    let path = fs::canonicalize(&given).map_err(|e| failed(format!("{}: {e}", given.display())))?;
    let like = fs::metadata(&path).map_err(|e| failed(format!("{}: {e}", path.display())))?;
    let before = disk_usage(&path).map_err(|e| failed(format!("{}: {e}", path.display())))?;
    let stamp = stamp(&path, &["compact", "old"])?;
    let new = sibling(&path, &format!("compact-{stamp}"))?;
    let old = sibling(&path, &format!("old-{stamp}"))?;
    let remove_new = |f: Failure| {
        let _ = fs::remove_dir_all(&new);
        f
    };
    let summary = s.copy_into(&new).map_err(|e| remove_new(failed(e)))?;
    if !summary.left_out.is_empty() {
        print_left_out(&summary);
        return Err(remove_new(Failure {
            code: EXIT_FAILED,
            message: format!(
                "{} holds trees this version does not use (written by a newer smsgate?): a compacted copy would lose them, so nothing was changed",
                path.display()
            ),
        }));
    }
    let (report, difference) = open(&new)
        .and_then(|copy| {
            let report = copy.check().map_err(failed)?;
            let difference = s.first_difference(&copy).map_err(failed)?;
            Ok((report, difference))
        })
        .map_err(remove_new)?;
    if !report.is_clean() || difference.is_some() {
        let _ = fs::remove_dir_all(&new);
        let mut out = std::io::stdout().lock();
        print_report(&mut out, &new.display().to_string(), &report);
        if let Some(d) = difference {
            let _ = writeln!(
                out,
                "PROBLEM the copy differs from the store: {} {}: {}",
                d.tree, d.key, d.problem
            );
        }
        return fail(
            EXIT_BROKEN,
            format!(
                "the compacted copy does not check clean, so {} was left as it is and the copy removed; the store itself has these problems: see smsgate store check",
                path.display()
            ),
        );
    }
    drop(s);
    match_owner(&new, &like);
    fs::rename(&path, &old).map_err(|e| {
        remove_new(failed(format!(
            "cannot move {} aside to {}: {e}",
            path.display(),
            old.display()
        )))
    })?;
    if let Err(e) = fs::rename(&new, &path) {
        let back = fs::rename(&old, &path);
        return fail(
            EXIT_FAILED,
            format!(
                "cannot move {} to {}: {e}; {}",
                new.display(),
                path.display(),
                match back {
                    Ok(()) => format!(
                        "the store was put back; the copy is left in {}",
                        new.display()
                    ),
                    Err(e2) => format!(
                        "and cannot put the store back ({e2}): it is in {}, the copy in {}",
                        old.display(),
                        new.display()
                    ),
                }
            ),
        );
    }
    sync_dir(parent(&path))?;
    let after = disk_usage(&path).map_err(|e| failed(format!("{}: {e}", path.display())))?;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "compacted {} ({} records, checked clean): {} on disk before, {} after",
        path.display(),
        summary.records,
        size(before),
        size(after)
    );
    let _ = writeln!(
        out,
        "the old store is kept in {}: delete it once the daemon runs well on the compacted one",
        old.display()
    );
    Ok(0)
}
