//! `smsgate status`: the daemon's modems, queue and failing webhooks on one screen.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use serde_json::Value;

use super::remote::{Failure, REQUEST_TIMEOUT, Remote};
use super::show::{self, Cell, Table, fields, out, present, print_raw, s};
use super::{raw_field, run_remote};
use crate::store::Status;

/// Arguments of `smsgate status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The daemon and the output.
    #[command(flatten)]
    pub remote: Remote,
}

/// `smsgate status`
pub fn status(args: StatusArgs) -> ExitCode {
    run_remote(&args.remote, Some(REQUEST_TIMEOUT), |api, o| async move {
        let retrying_query = [
            ("state", "retrying".to_string()),
            ("limit", "20".to_string()),
        ];
        let (modems, stats, hooks) = tokio::join!(
            api.get("/v1/modems", &[]),
            api.get("/v1/stats", &[]),
            api.get("/v1/webhooks/failed", &retrying_query)
        );
        let (modems, stats) = (modems?, stats?);
        // A daemon from before the filter answers 422: nothing to show then.
        let hooks = hooks.ok();
        let list = modems.json["modems"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let sending = list.iter().filter(|m| sends(m)).count();
        if o.json {
            let modems = raw_field(&modems.raw, "modems").unwrap_or_else(|| "[]".into());
            let retrying = hooks
                .as_ref()
                .and_then(|h| raw_field(&h.raw, "webhooks"))
                .unwrap_or_else(|| "[]".into());
            print_raw(&format!(
                "{{\"modems\":{modems},\"stats\":{},\"retrying_webhooks\":{retrying}}}",
                stats.raw
            ));
        } else {
            let retrying = hooks
                .and_then(|h| h.json["webhooks"].as_array().cloned())
                .unwrap_or_default();
            out(&render_status(&list, &stats.json, &retrying, o.colour));
        }
        if sending == 0 {
            return Err(Failure::Refused(if list.is_empty() {
                "the daemon has no modem configured".into()
            } else {
                "no modem sends now: see each one's state, rest and last error".into()
            }));
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// Whether a modem of `GET /v1/modems` sends now (`sending`; a daemon without it: `state`).
fn sends(m: &Value) -> bool {
    match m["sending"].as_str() {
        Some(s) => s == "up",
        None => m["state"] == "up",
    }
}

/// A modem's STATE cell: whether it sends, and until when it does not.
fn sending_cell(m: &Value) -> Cell {
    let state = s(&m["state"]);
    match m["sending"].as_str() {
        Some(w @ ("resting" | "limited")) => {
            let until = present(&m["sending_until"]).map(show::time_zoned);
            let why = match (w, until) {
                ("resting", Some(t)) => format!("went down too often; sends again {t}"),
                ("resting", None) => "went down too often".to_string(),
                (_, Some(t)) => format!("at its limit until {t}"),
                (_, None) => "at its limit".to_string(),
            };
            Cell::status(w, Some(&why))
        }
        _ => Cell::status(&state, None),
    }
}

fn signal(v: &Value) -> String {
    match (v["dbm"].as_i64(), v["bars"].as_u64()) {
        (Some(dbm), Some(bars)) => format!("{dbm} dBm ({bars}/5)"),
        _ if v.is_null() => "-".into(),
        _ => "unknown".into(),
    }
}

fn render_status(modems: &[Value], stats: &Value, retrying: &[Value], colour: bool) -> String {
    let mut t = Table::new(&[
        "MODEM",
        "STATE",
        "OPERATOR",
        "SIGNAL",
        "SENT",
        "FAILED",
        "RECEIVED",
        "LAST ERROR",
    ]);
    // Today's messages; a daemon from before these fields: its counts since start.
    let today = |m: &Value, key: &str, old: &str| {
        if m[key].is_null() {
            s(&m[old])
        } else {
            s(&m[key])
        }
    };
    for m in modems {
        let last_error = match (present(&m["last_error"]), present(&m["last_error_at"])) {
            (Some(e), Some(at)) => format!("{} ({})", s(e), show::time(at)),
            (Some(e), None) => s(e),
            (None, _) => String::new(),
        };
        t.row(vec![
            Cell::new(s(&m["name"])),
            sending_cell(m),
            Cell::new(s(&m["operator"])),
            Cell::new(signal(&m["signal"])),
            Cell::new(today(m, "sent_today", "messages_sent")),
            Cell::new(today(m, "failed_today", "parts_failed")),
            Cell::new(today(m, "received_today", "received")),
            Cell::new(last_error),
        ]);
    }
    let mut text = t.render(colour);
    if modems.iter().any(|m| !m["sent_today"].is_null()) {
        text.push_str(
            "SENT, FAILED: messages since midnight (each once, whatever its parts); RECEIVED: customers' texts since midnight (not delivery reports)\n",
        );
    }
    for m in modems {
        let n = m["foreign_messages"].as_u64().unwrap_or(0);
        if n > 0 {
            text.push_str(&format!(
                "{}: {n} of a phone's own texts left in the SIM, taking slots customers' replies need ([inbound] purge_foreign = true deletes them)\n",
                s(&m["name"])
            ));
        }
    }
    if !retrying.is_empty() {
        text.push_str("\nWebhooks failing (not given up yet)\n");
        let mut t = Table::new(&["EVENT", "URL", "ATTEMPTS", "NEXT ATTEMPT", "LAST ERROR"]);
        for w in retrying {
            t.row(vec![
                Cell::new(s(&w["event_type"])),
                Cell::new(s(&w["url"])),
                Cell::new(s(&w["attempts"])),
                Cell::new(
                    present(&w["next_attempt_at"])
                        .map(show::time_zoned)
                        .unwrap_or_default(),
                ),
                Cell::new(s(&w["last_error"])),
            ]);
        }
        text.push_str(&t.render(colour));
    }
    text.push('\n');
    let counts = &stats["counts"];
    let mut names: Vec<String> = Status::ALL.iter().map(|s| s.as_str().to_string()).collect();
    if let Some(o) = counts.as_object() {
        names.extend(
            o.keys()
                .filter(|k| !names.contains(k))
                .cloned()
                .collect::<Vec<_>>(),
        );
    }
    let header: Vec<String> = names.iter().map(|n| n.to_uppercase()).collect();
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut t = Table::new(&header);
    t.row(
        names
            .iter()
            .map(|n| Cell::new(counts[n].as_u64().unwrap_or(0).to_string()))
            .collect(),
    );
    text.push_str(&t.render(colour));
    text.push('\n');
    let oldest = match (
        present(&stats["oldest_due"]),
        stats["oldest_due_age_seconds"].as_u64(),
    ) {
        (Some(t), Some(age)) if age > 0 => format!(
            "{} ({} ago)",
            show::time(t),
            humantime::format_duration(Duration::from_secs(age))
        ),
        (Some(t), _) => show::time(t),
        (None, _) => "-".into(),
    };
    text.push_str(&fields(
        &[
            ("waiting", Some(s(&stats["queue_depth"]))),
            ("oldest due", Some(oldest)),
            (
                "modems up",
                Some(format!(
                    "{} of {}",
                    s(&stats["modems_up"]),
                    s(&stats["modems"])
                )),
            ),
            (
                "unmatched delivery reports",
                present(&stats["unmatched_reports"]).map(s),
            ),
        ],
        |_| None,
        colour,
    ));
    text
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn status_screen_shows_modems_and_counts() {
        let modems = vec![json!({"name": "sim0", "state": "up", "operator": "SimNet",
            "signal": {"rssi": 20, "dbm": -73, "bars": 4}, "last_error": null,
            "messages_sent": 3, "parts_failed": 0, "received": 1})];
        let stats = json!({"counts": {"queued": 2, "sent": 3}, "queue_depth": 2,
            "oldest_due": null, "oldest_due_age_seconds": null, "modems_up": 1, "modems": 1,
            "unmatched_reports": 0});
        let text = render_status(&modems, &stats, &[], false);
        assert!(text.contains("sim0"), "{text}");
        assert!(text.contains("-73 dBm (4/5)"), "{text}");
        assert!(text.contains("QUEUED  SCHEDULED"), "{text}");
        assert!(text.contains("modems up"), "{text}");
        assert!(!text.contains('\x1b'));
        assert!(!text.contains("phone's own texts"), "{text}");
        let modems = vec![json!({"name": "sim0", "state": "up", "foreign_messages": 3})];
        let text = render_status(&modems, &stats, &[], false);
        assert!(
            text.contains("sim0: 3 of a phone's own texts left in the SIM"),
            "{text}"
        );
        // A resting modem is not "up": it says so, and until when; today's counts are shown.
        let modems = vec![json!({"name": "sim0", "state": "up", "sending": "resting",
            "sending_until": "2026-12-07T03:12:00Z", "sent_today": 4, "failed_today": 1,
            "received_today": 2, "messages_sent": 9, "parts_failed": 3, "received": 7,
            "last_error": null})];
        let hooks = vec![
            json!({"event_type": "message.sent", "url": "http://127.0.0.1:9/h",
            "attempts": 2, "next_attempt_at": "2026-12-07T03:20:00Z", "last_error": "HTTP 500"}),
        ];
        let text = render_status(&modems, &stats, &hooks, false);
        assert!(
            text.contains("resting (went down too often; sends again 2026-12-07"),
            "{text}"
        );
        assert!(!sends(&modems[0]));
        let row = text.lines().find(|l| l.starts_with("sim0")).unwrap();
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert!(cells.windows(3).any(|w| w == ["4", "1", "2"]), "{row}");
        assert!(
            text.contains("Webhooks failing (not given up yet)"),
            "{text}"
        );
        assert!(text.contains("HTTP 500"), "{text}");
    }
}
