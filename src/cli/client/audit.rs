//! `smsgate audit`: who did what through the API that is not about one message (templates,
//! opt-outs, reloads, USSD codes, the admin page's logins).

use std::process::ExitCode;

use clap::Args;
use serde::Deserialize;

use super::paging::{Paging, print_list};
use super::parse::parse_since;
use super::remote::{REQUEST_TIMEOUT, Remote};
use super::run_remote;
use super::show::{self, Cell, Table, or_dash, time_text};

/// Arguments of `smsgate audit`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only the actions of the API key of this name.
    #[arg(long, value_name = "KEY")]
    pub actor: Option<String>,
    /// Only actions at or after this time: RFC 3339, a date (`2026-12-06`, midnight here), a
    /// local date and time (`2026-12-06 15:00`), or how long ago (`1h`, `2d`).
    #[arg(long, value_name = "WHEN", value_parser = parse_since)]
    pub since: Option<String>,
    /// Paging.
    #[command(flatten)]
    pub paging: Paging,
    /// The daemon and the output.
    #[command(flatten)]
    pub remote: Remote,
}

/// One entry, with what `audit` prints of it.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Entry {
    at: Option<String>,
    actor: Option<String>,
    action: Option<String>,
    target: Option<String>,
    details: Option<serde_json::Value>,
}

/// A page of `GET /v1/audit`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Page {
    entries: Option<Vec<Entry>>,
}

/// The table of `audit`.
fn audit_table(list: &[Entry]) -> Table {
    let mut t = Table::new(&["AT", "KEY", "ACTION", "TARGET", "DETAILS"]);
    for e in list {
        let details = e
            .details
            .as_ref()
            .map(|d| show::truncate(&show::clean(&d.to_string()), 60))
            .unwrap_or_else(|| "-".into());
        t.row(vec![
            Cell::new(time_text(e.at.as_deref())),
            Cell::new(or_dash(e.actor.as_deref())),
            Cell::new(or_dash(e.action.as_deref())),
            Cell::new(show::clean(&or_dash(e.target.as_deref()))),
            Cell::new(details),
        ]);
    }
    t
}

/// `smsgate audit`
pub fn audit(a: AuditArgs) -> ExitCode {
    run_remote(&a.remote, Some(REQUEST_TIMEOUT), |api, o| async move {
        let mut q = Vec::new();
        for (k, v) in [("actor", &a.actor), ("since", &a.since)] {
            if let Some(v) = v {
                q.push((k, v.clone()));
            }
        }
        print_list(
            &api,
            o,
            "/v1/audit",
            q,
            "entries",
            &a.paging,
            "no audit entries",
            |page: Page| audit_table(&page.entries.unwrap_or_default()),
        )
        .await
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_table_shows_who_did_what() {
        let page: Page = serde_json::from_value(json!({"entries": [
            {"id": "01KAR6V1T4Y1Q0ZBC5Z2W3M6XD", "at": "2026-12-07T06:00:00Z", "actor": "ops",
             "action": "template.put", "target": "friendly", "details": {"text": "Hi\tthere"},
             "hash": "ab"},
            {"at": "2026-12-07T06:01:00Z", "actor": "billing", "action": "reload"}
        ], "next_cursor": null}))
        .unwrap();
        let text = audit_table(&page.entries.unwrap()).render(false);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[1].contains("ops") && lines[1].contains("template.put"));
        assert!(lines[1].contains("friendly") && !lines[1].contains('\t'));
        assert!(lines[2].contains("billing") && lines[2].contains("reload"));
    }
}
