//! `smsgate inbound`: the messages customers sent.

use std::process::ExitCode;

use clap::Subcommand;
use serde::Deserialize;

use super::paging::{Paging, print_list};
use super::parse::parse_since;
use super::remote::{REQUEST_TIMEOUT, Remote};
use super::run_remote;
use super::show::{self, Cell, Table, or_dash, time_text};

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

/// A received message, with what `inbound list` prints of it.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Received {
    id: Option<String>,
    received_at: Option<String>,
    from: Option<String>,
    handling: Option<String>,
    text: Option<String>,
    partial: Option<bool>,
}

/// A page of `GET /v1/inbound`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ReceivedPage {
    messages: Option<Vec<Received>>,
}

/// The table of `inbound list`.
fn inbound_table(list: &[Received]) -> Table {
    let mut t = Table::new(&["ID", "RECEIVED", "FROM", "HANDLING", "TEXT"]);
    for m in list {
        let mut text = show::clean(&or_dash(m.text.as_deref()));
        if m.partial == Some(true) {
            text = format!("(partial) {text}");
        }
        t.row(vec![
            Cell::new(or_dash(m.id.as_deref())),
            Cell::new(time_text(m.received_at.as_deref())),
            Cell::new(or_dash(m.from.as_deref())),
            Cell::new(or_dash(m.handling.as_deref())),
            Cell::new(show::truncate(&text, 60)),
        ]);
    }
    t
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
        print_list(
            &api,
            o,
            "/v1/inbound",
            q,
            "messages",
            &paging,
            "no inbound messages",
            |list: ReceivedPage| inbound_table(&list.messages.unwrap_or_default()),
        )
        .await
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::cli::client::show::s;

    #[test]
    fn the_typed_table_prints_what_the_json_did() {
        let long = "a long answer that goes on and on, well past the sixty characters a row shows";
        let page = json!({"messages": [
            {"id": "01KAR6V1T4Y1Q0ZBC5Z2W3M6XD", "received_at": "2026-12-06T10:00:00Z",
             "from": "+12025550123", "handling": "reply", "text": "yes\r\nplease",
             "partial": false},
            {"id": "01KAR6V1T4Y1Q0ZBC5Z2W3M6XE", "received_at": "2026-12-06T10:01:00Z",
             "from": "INFO", "handling": null, "text": long, "partial": true},
            {"id": "01KAR6V1T4Y1Q0ZBC5Z2W3M6XF", "text": null}
        ], "next_cursor": null});
        // What the list printed when it read the page as JSON values.
        let mut was = Table::new(&["ID", "RECEIVED", "FROM", "HANDLING", "TEXT"]);
        for m in page["messages"].as_array().into_iter().flatten() {
            let mut text = show::clean(&s(&m["text"]));
            if m["partial"] == true {
                text = format!("(partial) {text}");
            }
            was.row(vec![
                Cell::new(s(&m["id"])),
                Cell::new(show::time(&m["received_at"])),
                Cell::new(s(&m["from"])),
                Cell::new(s(&m["handling"])),
                Cell::new(show::truncate(&text, 60)),
            ]);
        }
        let list: ReceivedPage = serde_json::from_value(page).unwrap();
        let now = inbound_table(&list.messages.unwrap());
        assert_eq!(now.render(false), was.render(false));
        assert!(now.render(false).contains("(partial) a long"));
    }
}
