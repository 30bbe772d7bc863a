//! `smsgate store check --url` and `smsgate store copy`: a PostgreSQL store checked, and a
//! whole store moved between the embedded store and PostgreSQL, both ways.

use super::*;

/// The PostgreSQL store a command is given: `--url`, or the configuration's when its backend
/// is `postgres` and no `--store` is given; `None` for the embedded store.
pub(super) fn pg_target(args: &StoreArgs, url: Option<String>) -> Result<Option<String>, Failure> {
    if url.is_some() || args.store.is_some() {
        return Ok(url);
    }
    match Config::load(&args.config) {
        Ok(c) => Ok(c.storage.postgres_url().map(str::to_string)),
        Err(e) => fail(EXIT_BAD_INPUT, e.to_string()),
    }
}

/// Whether a `--from`/`--to` names a PostgreSQL database rather than a directory.
fn is_url(s: &str) -> bool {
    s.starts_with("postgres://") || s.starts_with("postgresql://")
}

/// Opens a PostgreSQL store; `migrate` makes or updates its schema first.
fn open_postgres(url: &str, migrate: bool) -> Result<PgStore, Failure> {
    if let Err(e) = url.parse::<tokio_postgres::Config>() {
        return fail(
            EXIT_BAD_INPUT,
            format!("{} is not a PostgreSQL URL: {e}", redacted_url(url)),
        );
    }
    let opened = if migrate {
        PgStore::connect(url, Vec::new())
    } else {
        PgStore::open(url, Vec::new())
    };
    opened.map_err(|e| failed(format!("{}: {e}", redacted_url(url))))
}

pub(super) fn check_postgres(url: &str, json: bool) -> Result<u8, Failure> {
    let s = open_postgres(url, false)?;
    let report = s
        .check()
        .map_err(|e| failed(format!("{}: {e}", redacted_url(url))))?;
    show_check(&redacted_url(url), &report, json)
}

/// Records per kind, for a person.
fn print_counts(out: &mut dyn Write, title: &str, counts: &[TreeCount]) {
    let _ = writeln!(out, "{title}");
    for t in counts {
        let _ = writeln!(out, "  {:<18} {:>10}", t.tree, t.records);
    }
}

pub(super) fn copy(from: &str, to: &str, json: bool) -> Result<u8, Failure> {
    match (is_url(from), is_url(to)) {
        (false, true) => copy_to_postgres(Path::new(from), to, json),
        (true, false) => copy_from_postgres(from, Path::new(to), json),
        (false, false) => fail(
            EXIT_BAD_INPUT,
            "both --from and --to are directories: smsgate store copy moves a store between \
             the embedded store and PostgreSQL (to copy a directory, use smsgate store compact \
             or export and import)",
        ),
        (true, true) => fail(
            EXIT_BAD_INPUT,
            "both --from and --to are databases: smsgate store copy moves a store between the \
             embedded store and PostgreSQL (use pg_dump to copy a database)",
        ),
    }
}

/// Prints what a copy did and the check of its target; the exit code.
fn show_copy(
    from: &str,
    to: &str,
    summary: &TransferSummary,
    report: &CheckReport,
    json: bool,
) -> Result<u8, Failure> {
    let mut out = std::io::stdout().lock();
    if json {
        let v = serde_json::json!({
            "from": from,
            "to": to,
            "records": summary.records,
            "source": summary.trees,
            "left_out": summary.left_out,
            "target": report,
            "clean": report.is_clean(),
        });
        let _ = writeln!(out, "{v}");
    } else {
        let _ = writeln!(
            out,
            "copied {} records from {from} to {to}",
            summary.records
        );
        print_counts(&mut out, &format!("source {from}"), &summary.trees);
        print_report(&mut out, to, report);
    }
    if !report.is_clean() {
        let _ = writeln!(
            out,
            "the copy has problems (see above; smsgate store check on the source tells whether it had them too)"
        );
        return Ok(EXIT_BROKEN);
    }
    Ok(0)
}

fn copy_to_postgres(dir: &Path, url: &str, json: bool) -> Result<u8, Failure> {
    let s = open(dir)?;
    let pg = open_postgres(url, true)?;
    let to = redacted_url(url);
    let summary = match s.copy_to_postgres(&pg) {
        Ok(summary) => summary,
        Err(e @ CopyError::NotEmpty(_)) => {
            return fail(EXIT_BAD_INPUT, format!("{to}: {e}; nothing was copied"));
        }
        Err(e) => return fail(EXIT_FAILED, format!("{e}; nothing was copied")),
    };
    print_left_out(&summary);
    let report = pg.check().map_err(|e| failed(format!("{to}: {e}")))?;
    show_copy(&dir.display().to_string(), &to, &summary, &report, json)
}

fn copy_from_postgres(url: &str, target: &Path, json: bool) -> Result<u8, Failure> {
    match fs::symlink_metadata(target) {
        Ok(m) if !m.is_dir() => {
            return fail(
                EXIT_BAD_INPUT,
                format!("{}: not a directory", target.display()),
            );
        }
        Ok(_) => {
            let occupied = fs::read_dir(target)
                .map_err(|e| failed(format!("cannot read {}: {e}", target.display())))?
                .next()
                .is_some();
            if occupied {
                return fail(
                    EXIT_BAD_INPUT,
                    format!(
                        "{} is not empty: a copy makes a new store and never merges. Give a new or empty directory",
                        target.display()
                    ),
                );
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return fail(EXIT_FAILED, format!("{}: {e}", target.display())),
    }
    let pg = open_postgres(url, false)?;
    let from = redacted_url(url);
    let stamp = stamp(target, &["copy"])?;
    let tmp = sibling(target, &format!("copy-{stamp}"))?;
    // Written beside the target, moved into place only once whole: a copy cut short leaves
    // nothing that looks like a store where the daemon looks.
    let summary = match SledStore::import_postgres(&tmp, &pg) {
        Ok(s) => s,
        Err(e) => {
            let _ = fs::remove_dir_all(&tmp);
            return fail(EXIT_FAILED, format!("{from}: {e}; nothing was copied"));
        }
    };
    // An empty directory is replaced by the rename.
    if let Err(e) = fs::rename(&tmp, target) {
        let _ = fs::remove_dir_all(&tmp);
        return fail(
            EXIT_FAILED,
            format!("cannot move the new store to {}: {e}", target.display()),
        );
    }
    sync_dir(parent(target))?;
    let report = open_just_closed(target)?.check().map_err(failed)?;
    show_copy(
        &from,
        &target.display().to_string(),
        &summary,
        &report,
        json,
    )
}
