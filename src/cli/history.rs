//! `smsgate history verify|export`: the tamper-evident message history, read straight from the
//! store while the daemon is stopped (the store is locked while it runs; use
//! `GET /v1/messages/{id}/history` and `GET /v1/history/export` then).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};

use crate::config::Config;
use crate::store::Store;
use crate::store::history::{export_csv, export_jsonl};

/// Exit code when a history chain is broken.
pub const EXIT_BROKEN: u8 = 3;

/// Where the store is.
#[derive(Debug, Args)]
pub struct StoreArgs {
    /// The configuration file (its `[storage] path` is read).
    #[arg(long, short, default_value = "/etc/smsgate/smsgate.toml")]
    pub config: PathBuf,
    /// The store directory, instead of the configuration's.
    #[arg(long)]
    pub store: Option<PathBuf>,
}

/// Export format.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExportFormat {
    /// One JSON object per history entry and line.
    Jsonl,
    /// Comma-separated with a header line.
    Csv,
}

/// `smsgate history …`
#[derive(Debug, Subcommand)]
pub enum HistoryCommand {
    /// Check every message's hash chain (or one message's) and the audit log's; exit 3 when
    /// one is broken.
    Verify {
        /// Where the store is.
        #[command(flatten)]
        store: StoreArgs,
        /// Only this message.
        #[arg(long)]
        id: Option<String>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write the history of every message to a number or about an invoice (`metadata.invoice`)
    /// to standard output.
    Export {
        /// Where the store is.
        #[command(flatten)]
        store: StoreArgs,
        /// Messages to this number (E.164).
        #[arg(long)]
        to: Option<String>,
        /// Messages whose `metadata.invoice` is this.
        #[arg(long)]
        invoice: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl)]
        format: ExportFormat,
    },
}

/// Why the store of a history command cannot be opened.
#[derive(Debug, thiserror::Error)]
enum OpenError {
    /// The configuration file naming the store.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// No store in the directory.
    #[error("{}: no store here", .0.display())]
    Missing(std::path::PathBuf),
    /// The store does not open (most often: the daemon holds it).
    #[error(
        "{0} (is the daemon running? Stop it first, or use GET /v1/messages/{{id}}/history and /v1/history/export)"
    )]
    Store(#[source] crate::store::StoreError),
}

fn open(args: &StoreArgs) -> Result<Store, OpenError> {
    let path = match &args.store {
        Some(p) => p.clone(),
        None => {
            let c = Config::load(&args.config)?;
            // The database is read while the daemons run: there is no lock to wait for.
            if let Some(url) = c.storage.postgres_url() {
                return Store::connect(url, Vec::new()).map_err(OpenError::Store);
            }
            c.storage.path.clone().unwrap_or_default()
        }
    };
    if !path.join("db").exists() {
        return Err(OpenError::Missing(path));
    }
    Store::open(&path, 16).map_err(OpenError::Store)
}

/// Runs a history command.
pub fn run(cmd: HistoryCommand) -> ExitCode {
    match cmd {
        HistoryCommand::Verify { store, id, json } => {
            let s = match open(&store) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let report = match &id {
                Some(id) => match s.history(id) {
                    Ok(Some(h)) => crate::store::history::VerifyReport {
                        messages: 1,
                        entries: h.events.len() as u64,
                        broken: h
                            .problem
                            .map(|p| vec![(h.message_id.clone(), p)])
                            .unwrap_or_default(),
                        tombstones: 0,
                    },
                    Ok(None) => {
                        eprintln!("error: no message {id}");
                        return ExitCode::from(super::EXIT_BAD_INPUT);
                    }
                    Err(e) => {
                        eprintln!("error: {e}");
                        return ExitCode::FAILURE;
                    }
                },
                None => match s.verify_all_histories() {
                    Ok(r) => r,
                    Err(e) => {
                        eprintln!("error: {e}");
                        return ExitCode::FAILURE;
                    }
                },
            };
            // The audit log's chain is checked with every message's (not with one message's).
            let audit = match id {
                Some(_) => None,
                None => match s.verify_audit() {
                    Ok(a) => Some(a),
                    Err(e) => {
                        eprintln!("error: {e}");
                        return ExitCode::FAILURE;
                    }
                },
            };
            let audit_broken = audit.as_ref().is_some_and(|a| !a.verified);
            let mut out = std::io::stdout().lock();
            if json {
                let mut v = serde_json::json!({
                    "messages": report.messages,
                    "entries": report.entries,
                    "broken": report.broken.iter().map(|(id, p)| serde_json::json!({"id": id, "problem": p})).collect::<Vec<_>>(),
                });
                if let (Some(obj), Some(a)) = (v.as_object_mut(), &audit) {
                    obj.insert("audit".into(), serde_json::json!(a));
                }
                let _ = writeln!(out, "{v}");
            } else {
                if let Some(a) = &audit {
                    match &a.problem {
                        Some(p) => {
                            let _ = writeln!(out, "BROKEN audit log: {p}");
                        }
                        None => {
                            let _ = writeln!(
                                out,
                                "audit log: {} entries checked: the chain holds",
                                a.entries
                            );
                        }
                    }
                }
                for (id, p) in &report.broken {
                    let _ = writeln!(out, "BROKEN {id}: {p}");
                }
                let _ = writeln!(
                    out,
                    "{} message(s), {} history entries checked: {}",
                    report.messages,
                    report.entries,
                    if report.broken.is_empty() {
                        "every chain holds".to_string()
                    } else {
                        format!("{} broken", report.broken.len())
                    }
                );
            }
            if report.broken.is_empty() && !audit_broken {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_BROKEN)
            }
        }
        HistoryCommand::Export {
            store,
            to,
            invoice,
            format,
        } => {
            if to.is_none() && invoice.is_none() {
                eprintln!("error: give --to or --invoice (or both)");
                return ExitCode::from(super::EXIT_BAD_INPUT);
            }
            let s = match open(&store) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let text = s
                .histories_for(to.as_deref(), invoice.as_deref())
                .and_then(|rows| match format {
                    ExportFormat::Jsonl => export_jsonl(&rows),
                    ExportFormat::Csv => export_csv(&rows),
                });
            match text {
                Ok(t) => {
                    let _ = std::io::stdout().lock().write_all(t.as_bytes());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
