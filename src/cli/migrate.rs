//! `smsgate store migrate`: brings a PostgreSQL store's schema up to this build's version
//! before the gateways are started (they apply it themselves too, each once, under a lock).
//! With the embedded store there is nothing to migrate: its format is read as it is.
//!
//! Exit codes: 0 done (or nothing to do), 1 the database failed or refused, 2 bad input (a
//! configuration that does not load, a URL that does not parse).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use serde_json::json;

use super::EXIT_BAD_INPUT;
use crate::config::{Config, redacted_url};
use crate::store::pg::{MIGRATIONS, PgStore};

/// Exit code when the database failed.
const EXIT_FAILED: u8 = 1;

/// Arguments of `smsgate store migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The configuration file (its `[storage]` is read; `SMSGATE_STORAGE_URL` gives the url).
    #[arg(long, short, default_value = "/etc/smsgate/smsgate.toml")]
    pub config: PathBuf,
    /// The database's URL (`postgres://user@host/database`), instead of the configuration's.
    #[arg(long, conflicts_with = "config")]
    pub url: Option<String>,
    /// Print what was done as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `smsgate store migrate`.
pub fn run(args: &MigrateArgs) -> ExitCode {
    let url = match &args.url {
        Some(u) => u.clone(),
        None => match Config::load(&args.config) {
            Err(e) => return failed(EXIT_BAD_INPUT, e.to_string()),
            Ok(c) => match c.storage.postgres_url() {
                Some(u) => u.to_string(),
                None => {
                    let at = c.storage.describe();
                    if args.json {
                        println!(
                            "{}",
                            json!({ "backend": "sled", "store": at, "applied": [], "version": null })
                        );
                    } else {
                        println!("the store is the embedded one ({at}): nothing to migrate");
                    }
                    return ExitCode::SUCCESS;
                }
            },
        },
    };
    if let Err(e) = url.parse::<tokio_postgres::Config>() {
        return failed(
            EXIT_BAD_INPUT,
            format!("{} is not a PostgreSQL URL: {e}", redacted_url(&url)),
        );
    }
    let shown = redacted_url(&url);
    let store = match PgStore::open(&url, Vec::new()) {
        Ok(s) => s,
        Err(e) => return failed(EXIT_FAILED, format!("{shown}: {e}")),
    };
    let (before, now) = match store.migrate() {
        Ok(m) => (m.from, m.applied.last().copied().unwrap_or(m.from)),
        Err(e) => return failed(EXIT_FAILED, format!("{shown}: {e}")),
    };
    let applied: Vec<_> = MIGRATIONS
        .iter()
        .filter(|m| m.version > before && m.version <= now)
        .collect();
    if args.json {
        let list: Vec<_> = applied
            .iter()
            .map(|m| json!({ "version": m.version, "name": m.name }))
            .collect();
        println!(
            "{}",
            json!({ "backend": "postgres", "store": shown, "from": before, "applied": list, "version": now })
        );
    } else {
        for m in &applied {
            println!("applied migration {} ({})", m.version, m.name);
        }
        if applied.is_empty() {
            println!("{shown}: schema version {now}, nothing to apply");
        } else {
            println!("{shown}: schema version {now}");
        }
    }
    ExitCode::SUCCESS
}

fn failed(code: u8, message: String) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(code)
}
