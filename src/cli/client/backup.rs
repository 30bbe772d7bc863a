//! `smsgate backup --to FILE`: a hot backup of a running daemon's store, asked with
//! `POST /v1/admin/backup` and streamed into FILE.
//!
//! The answer is written to `FILE.partial`, checked whole (its length, its header line, its
//! end line and record count), fsynced, and only then renamed to FILE (and the directory
//! fsynced): FILE is never a backup cut short. A failed or interrupted backup (Ctrl-C,
//! SIGTERM) removes `FILE.partial`; one killed outright leaves `FILE.partial`, never FILE.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use reqwest::Method;
use serde_json::json;

use super::remote::{Api, Failure, Remote, unreachable};
use super::run_remote;
use super::show::{out, print_raw};
use crate::api::backup::{PAUSED_HEADER, RECORDS_HEADER, TAKEN_AT_HEADER};

/// Arguments of `smsgate backup`.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The file to write the backup to (JSON Lines, for `smsgate store import`). It is written
    /// as FILE.partial and renamed when complete.
    #[arg(long, value_name = "FILE")]
    pub to: PathBuf,
    /// Replace FILE when it exists (only once the new backup is complete).
    #[arg(long)]
    pub force: bool,
    /// The daemon and the output.
    #[command(flatten)]
    pub remote: Remote,
}

/// `--help` of `smsgate backup`.
pub const LONG_ABOUT: &str = concat!(
    "Back up a running daemon's store (`POST /v1/admin/backup`, an admin action): every tree at one point in time, in the JSON Lines of `smsgate store export`. Restore it with `smsgate store import --input FILE --store DIR` into a new directory, then point `[storage] path` at it. Every message acknowledged before the backup began is in it, with its whole history; the daemon pauses writes only while it copies the store to a local file, not while this command reads the backup.\n\n",
    "FILE is written as FILE.partial, checked whole (length, header and end line), fsynced and renamed: FILE is never a backup cut short. An existing FILE is refused unless --force. Prints the records, bytes and how long writes were paused (--json: an object).\n\n",
    about_remote!()
);

/// What a backup wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Written {
    bytes: u64,
    records: u64,
}

/// `smsgate backup`
pub fn backup(args: BackupArgs) -> ExitCode {
    if !args.force && args.to.exists() {
        return Failure::Input(format!(
            "{} exists: give --force to replace it (it is replaced only once the new backup is complete)",
            args.to.display()
        ))
        .report(args.remote.json);
    }
    let remote = args.remote.clone();
    // No limit on the whole request: a large store streams for as long as it takes (connecting
    // is limited).
    run_remote(&remote, None, |api, o| async move {
        let partial = partial_path(&args.to);
        let run = fetch(&api, &args.to, &partial, args.force);
        let result = tokio::select! {
            r = run => r,
            s = interrupted() => Err(Failure::Refused(format!("interrupted ({s}): no backup written"))),
        };
        let (written, paused_ms, taken_at) = match result {
            Ok(r) => r,
            Err(e) => {
                // Ours to remove: named after FILE, written by this command.
                let _ = std::fs::remove_file(&partial);
                return Err(e);
            }
        };
        if o.json {
            print_raw(
                &json!({
                    "file": args.to.display().to_string(),
                    "bytes": written.bytes,
                    "records": written.records,
                    "paused_ms": paused_ms,
                    "taken_at": taken_at,
                })
                .to_string(),
            );
        } else {
            out(&format!(
                "backup written to {}: {} records, {} bytes, as of {}; writes were paused for {} ms\n",
                args.to.display(),
                written.records,
                written.bytes,
                taken_at.as_deref().unwrap_or("?"),
                paused_ms.map_or("?".to_string(), |p| p.to_string()),
            ));
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// FILE.partial, beside FILE.
fn partial_path(to: &Path) -> PathBuf {
    let mut name = to.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".partial");
    to.with_file_name(name)
}

/// Waits for Ctrl-C or SIGTERM; the signal's name.
async fn interrupted() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = tokio::signal::ctrl_c() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            },
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                "SIGINT"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "interrupt"
    }
}

/// Asks for the backup, writes it to `partial`, checks it, makes it durable and renames it to
/// `to`: what was written, the pause in ms and the time it shows, as the daemon said them.
async fn fetch(
    api: &Api,
    to: &Path,
    partial: &Path,
    force: bool,
) -> Result<(Written, Option<u64>, Option<String>), Failure> {
    let io = |what: &str, p: &Path, e: std::io::Error| {
        Failure::Refused(format!("cannot {what} {}: {e}", p.display()))
    };
    let url = api.url("/v1/admin/backup", &[])?;
    let mut resp = api
        .request(Method::POST, url.clone())
        .send()
        .await
        .map_err(|e| unreachable(&url, &e, None))?;
    let status = resp.status().as_u16();
    if status != 200 {
        let bytes = resp.bytes().await.unwrap_or_default();
        let json = serde_json::from_slice(&bytes).ok();
        return Err(api.error_answer(&url, status, json, &bytes));
    }
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let expected_records = header(RECORDS_HEADER).and_then(|v| v.parse::<u64>().ok());
    let paused_ms = header(PAUSED_HEADER).and_then(|v| v.parse::<u64>().ok());
    let taken_at = header(TAKEN_AT_HEADER);
    let expected_bytes = resp.content_length();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(partial)
        .map_err(|e| io("create", partial, e))?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
    let mut check = Shape::default();
    while let Some(chunk) = resp.chunk().await.map_err(|e| Failure::Unreachable {
        url: url.to_string(),
        why: format!("the backup was cut short: {e}"),
    })? {
        check.feed(&chunk);
        w.write_all(&chunk).map_err(|e| io("write", partial, e))?;
    }
    let file = w
        .into_inner()
        .map_err(|e| io("write", partial, e.into_error()))?;
    let written = check
        .finish(expected_bytes, expected_records)
        .map_err(|why| Failure::NotSmsgate {
            url: url.to_string(),
            why: format!("the backup is not whole: {why}"),
        })?;
    file.sync_all().map_err(|e| io("fsync", partial, e))?;
    drop(file);
    if !force && to.exists() {
        return Err(Failure::Input(format!(
            "{} appeared while the backup was made: give --force to replace it",
            to.display()
        )));
    }
    std::fs::rename(partial, to).map_err(|e| io("rename to", to, e))?;
    let dir = match to.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io("fsync the directory", dir, e))?;
    Ok((written, paused_ms, taken_at))
}

/// Checks, as the bytes go by, that a backup is whole: it starts with the export's header
/// line and ends with its end line, whose count is the records' (and the daemon's), and its
/// length is the `Content-Length`. Holds only the first and last line.
#[derive(Debug, Default)]
struct Shape {
    bytes: u64,
    lines: u64,
    first: Vec<u8>,
    first_done: bool,
    last: Vec<u8>,
}

/// Longest header or end line kept.
const LINE_KEPT: usize = 4096;

impl Shape {
    fn feed(&mut self, chunk: &[u8]) {
        self.bytes += chunk.len() as u64;
        for part in chunk.split_inclusive(|b| *b == b'\n') {
            if !self.first_done {
                if self.first.len() < LINE_KEPT {
                    self.first.extend_from_slice(part);
                }
                self.first_done = part.ends_with(b"\n");
            }
            if self.last.ends_with(b"\n") {
                self.last.clear();
            }
            if self.last.len() < LINE_KEPT {
                self.last.extend_from_slice(part);
            }
            if part.ends_with(b"\n") {
                self.lines += 1;
            }
        }
    }

    fn finish(self, bytes: Option<u64>, records: Option<u64>) -> Result<Written, String> {
        if let Some(n) = bytes
            && n != self.bytes
        {
            return Err(format!("{} bytes of {n}", self.bytes));
        }
        if !self.first.starts_with(b"{\"smsgate_export\":") {
            return Err("it does not start with an export's header line".into());
        }
        if !self.last.ends_with(b"\n") {
            return Err("its last line is cut".into());
        }
        #[derive(serde::Deserialize)]
        struct End {
            end: bool,
            records: u64,
        }
        let end: End = serde_json::from_slice(&self.last)
            .map_err(|_| "it does not end with an export's end line".to_string())?;
        // Header + records + end line.
        if !end.end || end.records + 2 != self.lines {
            return Err(format!(
                "its end line counts {} records, it has {} lines",
                end.records, self.lines
            ));
        }
        if let Some(r) = records
            && r != end.records
        {
            return Err(format!("{} records, the daemon announced {r}", end.records));
        }
        Ok(Written {
            bytes: self.bytes,
            records: end.records,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(chunks: &[&[u8]]) -> Shape {
        let mut s = Shape::default();
        for c in chunks {
            s.feed(c);
        }
        s
    }

    #[test]
    fn a_whole_export_passes_in_any_chunks() {
        let text = b"{\"smsgate_export\":1,\"version\":\"x\"}\n{\"tree\":\"messages\",\"key\":\"00\",\"value\":{}}\n{\"end\":true,\"records\":1}\n";
        for cut in 0..text.len() {
            let s = shape(&[&text[..cut], &text[cut..]]);
            assert_eq!(
                s.finish(Some(text.len() as u64), Some(1)),
                Ok(Written {
                    bytes: text.len() as u64,
                    records: 1
                }),
                "cut at {cut}"
            );
        }
        // Cut short anywhere: refused.
        for cut in 0..text.len() {
            let s = shape(&[&text[..cut]]);
            assert!(s.finish(None, None).is_err(), "cut at {cut}");
            let s = shape(&[&text[..cut]]);
            assert!(s.finish(Some(text.len() as u64), Some(1)).is_err());
        }
        // A record dropped in the middle: the end line's count disagrees.
        let s = shape(&[b"{\"smsgate_export\":1}\n{\"end\":true,\"records\":1}\n"]);
        assert!(s.finish(None, None).unwrap_err().contains("counts 1"));
        assert_eq!(
            partial_path(Path::new("/b/x.jsonl")),
            PathBuf::from("/b/x.jsonl.partial")
        );
    }
}
