//! `smsgate inbound`: the messages customers sent.

use std::process::ExitCode;

use clap::Subcommand;

use super::paging::{Paging, more_hint, pages};
use super::parse::parse_since;
use super::remote::{Answer, REQUEST_TIMEOUT, Remote};
use super::run_remote;
use super::show::{self, Cell, Table, out, print_raw, s};

/// `smsgate inbound …`
#[derive(Debug, Subcommand)]
pub enum InboundCommand {
    /// List received messages, newest first (`GET /v1/inbound`).
    #[command(long_about = concat!("List received messages, newest first (`GET /v1/inbound`).\n\n", about_remote!()))]
    List {
        /// Only messages from this number (any form), short code or sender name.
        #[arg(long, value_name = "NUMBER")]
        from: Option<String>,
        /// Only messages received at or after this time: RFC 3339, a date (`2026-12-06`,
        /// midnight here), a local date and time (`2026-12-06 15:00`), or how long ago (`1h`).
        #[arg(long, value_name = "WHEN", value_parser = parse_since)]
        since: Option<String>,
        /// Paging.
        #[command(flatten)]
        paging: Paging,
        /// The daemon and the output.
        #[command(flatten)]
        remote: Remote,
    },
}

/// `smsgate inbound …`
pub fn inbound(cmd: InboundCommand) -> ExitCode {
    let InboundCommand::List {
        from,
        since,
        paging,
        remote,
    } = cmd;
    run_remote(&remote, Some(REQUEST_TIMEOUT), |api, o| async move {
        let mut q = Vec::new();
        for (k, v) in [("from", &from), ("since", &since)] {
            if let Some(v) = v {
                q.push((k, v.clone()));
            }
        }
        let Answer {
            json: page, raw, ..
        } = pages(&api, "/v1/inbound", q, "messages", &paging).await?;
        if o.json {
            print_raw(&raw);
            return Ok(ExitCode::SUCCESS);
        }
        let mut t = Table::new(&["ID", "RECEIVED", "FROM", "HANDLING", "TEXT"]);
        for m in page["messages"].as_array().into_iter().flatten() {
            let mut text = show::clean(&s(&m["text"]));
            if m["partial"] == true {
                text = format!("(partial) {text}");
            }
            t.row(vec![
                Cell::new(s(&m["id"])),
                Cell::new(show::time(&m["received_at"])),
                Cell::new(s(&m["from"])),
                Cell::new(s(&m["handling"])),
                Cell::new(show::truncate(&text, 60)),
            ]);
        }
        if t.is_empty() {
            eprintln!("no inbound messages");
        } else {
            out(&t.render(o.colour));
        }
        more_hint(&page);
        Ok(ExitCode::SUCCESS)
    })
}
