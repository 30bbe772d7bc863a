//! `smsgate status`: the daemon's modems, queue and failing webhooks on one screen.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::remote::{Failure, REQUEST_TIMEOUT, Remote};
use super::show::{Cell, Table, fields, or_dash, out, print_raw, time_text, time_zoned_text};
use super::{raw_field, run_remote, view};
use crate::store::Status;

/// Arguments of `smsgate status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The daemon and the output.
    #[command(flatten)]
    pub remote: Remote,
}

/// A modem of `GET /v1/modems`, with what `status` prints of it.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Modem {
    name: Option<String>,
    state: Option<String>,
    /// Whether it sends now (`up`, `resting`, `limited`…); absent from older daemons.
    sending: Option<String>,
    sending_until: Option<String>,
    operator: Option<String>,
    signal: Option<Signal>,
    last_error: Option<String>,
    last_error_at: Option<String>,
    sent_today: Option<u64>,
    failed_today: Option<u64>,
    received_today: Option<u64>,
    /// Counts since the daemon started: what older daemons give instead of today's.
    messages_sent: Option<u64>,
    parts_failed: Option<u64>,
    received: Option<u64>,
    foreign_messages: Option<u64>,
}

/// A modem's signal.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Signal {
    dbm: Option<i64>,
    bars: Option<u64>,
}

/// The answer of `GET /v1/modems`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Modems {
    modems: Option<Vec<Modem>>,
    /// Configured modems another gateway sharing the store drives; absent from older daemons.
    standby: Option<Vec<Standby>>,
}

/// A configured modem another gateway drives (`GET /v1/modems`, `standby`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Standby {
    name: Option<String>,
    driven_by: Option<String>,
}

/// The answer of `GET /v1/stats`, with what `status` prints of it.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Stats {
    /// Messages per status; statuses this client does not know are shown too.
    counts: Option<Map<String, Value>>,
    queue_depth: Option<u64>,
    oldest_due: Option<String>,
    oldest_due_age_seconds: Option<u64>,
    modems_up: Option<u64>,
    modems: Option<u64>,
    unmatched_reports: Option<u64>,
}

/// A webhook delivery failing but not given up yet (`GET /v1/webhooks/failed?state=retrying`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Hook {
    event_type: Option<String>,
    url: Option<String>,
    attempts: Option<u64>,
    next_attempt_at: Option<String>,
    last_error: Option<String>,
}

/// The answer of `GET /v1/webhooks/failed`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Hooks {
    webhooks: Option<Vec<Hook>>,
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
        let seen = view::<Modems>(&api, &modems.json)?;
        let list = seen.modems.unwrap_or_default();
        let standby = seen.standby.unwrap_or_default();
        let sending = list.iter().filter(|m| sends(m)).count();
        if o.json {
            let standby = raw_field(&modems.raw, "standby").unwrap_or_else(|| "[]".into());
            let modems = raw_field(&modems.raw, "modems").unwrap_or_else(|| "[]".into());
            let retrying = hooks
                .as_ref()
                .and_then(|h| raw_field(&h.raw, "webhooks"))
                .unwrap_or_else(|| "[]".into());
            print_raw(&format!(
                "{{\"modems\":{modems},\"standby\":{standby},\"stats\":{},\"retrying_webhooks\":{retrying}}}",
                stats.raw
            ));
        } else {
            let stats: Stats = view(&api, &stats.json)?;
            // Like the answer itself, a list that cannot be read is left out.
            let retrying = hooks
                .and_then(|h| Hooks::deserialize(&h.json).ok())
                .and_then(|h| h.webhooks)
                .unwrap_or_default();
            out(&render_status(&list, &standby, &stats, &retrying, o.colour));
        }
        if sending == 0 {
            return Err(Failure::Refused(
                if list.is_empty() && !standby.is_empty() {
                    "no modem sends through this gateway: another gateway sharing the store drives each of its modems".into()
                } else if list.is_empty() {
                    "the daemon has no modem configured".into()
                } else {
                    "no modem sends now: see each one's state, rest and last error".into()
                },
            ));
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// Whether a modem of `GET /v1/modems` sends now (`sending`; a daemon without it: `state`).
fn sends(m: &Modem) -> bool {
    match &m.sending {
        Some(s) => s == "up",
        None => m.state.as_deref() == Some("up"),
    }
}

/// A modem's STATE cell: whether it sends, and until when it does not.
fn sending_cell(m: &Modem) -> Cell {
    let state = or_dash(m.state.as_deref());
    match m.sending.as_deref() {
        Some(w @ ("resting" | "limited")) => {
            let until = m.sending_until.as_deref().map(time_zoned_text);
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

fn signal(v: Option<&Signal>) -> String {
    match v {
        Some(Signal {
            dbm: Some(dbm),
            bars: Some(bars),
        }) => format!("{dbm} dBm ({bars}/5)"),
        None => "-".into(),
        Some(_) => "unknown".into(),
    }
}

fn render_status(
    modems: &[Modem],
    standby: &[Standby],
    stats: &Stats,
    retrying: &[Hook],
    colour: bool,
) -> String {
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
    for m in modems {
        let last_error = match (&m.last_error, m.last_error_at.as_deref()) {
            (Some(e), Some(at)) => format!("{e} ({})", time_text(Some(at))),
            (Some(e), None) => e.clone(),
            (None, _) => String::new(),
        };
        // Today's messages; a daemon from before these fields: its counts since start.
        t.row(vec![
            Cell::new(or_dash(m.name.as_deref())),
            sending_cell(m),
            Cell::new(or_dash(m.operator.as_deref())),
            Cell::new(signal(m.signal.as_ref())),
            Cell::new(or_dash(m.sent_today.or(m.messages_sent))),
            Cell::new(or_dash(m.failed_today.or(m.parts_failed))),
            Cell::new(or_dash(m.received_today.or(m.received))),
            Cell::new(last_error),
        ]);
    }
    let mut text = t.render(colour);
    if modems.iter().any(|m| m.sent_today.is_some()) {
        text.push_str(
            "SENT, FAILED: messages since midnight (each once, whatever its parts); RECEIVED: customers' texts since midnight (not delivery reports)\n",
        );
    }
    for m in modems {
        let n = m.foreign_messages.unwrap_or(0);
        if n > 0 {
            text.push_str(&format!(
                "{}: {n} of a phone's own texts left in the SIM, taking slots customers' replies need ([inbound] purge_foreign = true deletes them)\n",
                or_dash(m.name.as_deref())
            ));
        }
    }
    for m in standby {
        text.push_str(&format!(
            "{}: standing by, driven by {}\n",
            or_dash(m.name.as_deref()),
            m.driven_by
                .as_deref()
                .unwrap_or("no gateway now (this one takes it at its next lease renewal)")
        ));
    }
    if !retrying.is_empty() {
        text.push_str("\nWebhooks failing (not given up yet)\n");
        let mut t = Table::new(&["EVENT", "URL", "ATTEMPTS", "NEXT ATTEMPT", "LAST ERROR"]);
        for w in retrying {
            t.row(vec![
                Cell::new(or_dash(w.event_type.as_deref())),
                Cell::new(or_dash(w.url.as_deref())),
                Cell::new(or_dash(w.attempts)),
                Cell::new(
                    w.next_attempt_at
                        .as_deref()
                        .map(time_zoned_text)
                        .unwrap_or_default(),
                ),
                Cell::new(or_dash(w.last_error.as_deref())),
            ]);
        }
        text.push_str(&t.render(colour));
    }
    text.push('\n');
    let empty = Map::new();
    let counts = stats.counts.as_ref().unwrap_or(&empty);
    let mut names: Vec<String> = Status::ALL.iter().map(|s| s.as_str().to_string()).collect();
    names.extend(
        counts
            .keys()
            .filter(|k| !names.contains(k))
            .cloned()
            .collect::<Vec<_>>(),
    );
    let header: Vec<String> = names.iter().map(|n| n.to_uppercase()).collect();
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut t = Table::new(&header);
    t.row(
        names
            .iter()
            .map(|n| {
                Cell::new(
                    counts
                        .get(n)
                        .and_then(Value::as_u64)
                        .unwrap_or(0)
                        .to_string(),
                )
            })
            .collect(),
    );
    text.push_str(&t.render(colour));
    text.push('\n');
    let oldest = match (stats.oldest_due.as_deref(), stats.oldest_due_age_seconds) {
        (Some(t), Some(age)) if age > 0 => format!(
            "{} ({} ago)",
            time_text(Some(t)),
            humantime::format_duration(Duration::from_secs(age))
        ),
        (Some(t), _) => time_text(Some(t)),
        (None, _) => "-".into(),
    };
    text.push_str(&fields(
        &[
            ("waiting", Some(or_dash(stats.queue_depth))),
            ("oldest due", Some(oldest)),
            (
                "modems up",
                Some(format!(
                    "{} of {}",
                    or_dash(stats.modems_up),
                    or_dash(stats.modems)
                )),
            ),
            (
                "unmatched delivery reports",
                stats.unmatched_reports.map(|n| n.to_string()),
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

    fn typed<T: serde::de::DeserializeOwned>(v: Value) -> T {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn status_screen_shows_modems_and_counts() {
        let modems: Vec<Modem> = typed(json!([{"name": "sim0", "state": "up",
            "operator": "SimNet", "signal": {"rssi": 20, "dbm": -73, "bars": 4},
            "last_error": null, "messages_sent": 3, "parts_failed": 0, "received": 1}]));
        let stats: Stats = typed(json!({"counts": {"queued": 2, "sent": 3}, "queue_depth": 2,
            "oldest_due": null, "oldest_due_age_seconds": null, "modems_up": 1, "modems": 1,
            "unmatched_reports": 0}));
        let text = render_status(&modems, &[], &stats, &[], false);
        assert!(text.contains("sim0"), "{text}");
        assert!(!text.contains("standing by"), "{text}");
        let standby: Vec<Standby> =
            typed(json!([{"name": "sim3", "driven_by": "gw-b:0.0.0.0:8080",
            "lease_expires_at": "2026-12-07T03:12:00Z"}, {"name": "sim4", "driven_by": null}]));
        let with = render_status(&modems, &standby, &stats, &[], false);
        assert!(
            with.contains("sim3: standing by, driven by gw-b:0.0.0.0:8080"),
            "{with}"
        );
        assert!(
            with.contains("sim4: standing by, driven by no gateway now"),
            "{with}"
        );
        assert!(text.contains("-73 dBm (4/5)"), "{text}");
        assert!(text.contains("QUEUED  SCHEDULED"), "{text}");
        assert!(text.contains("modems up"), "{text}");
        assert!(!text.contains('\x1b'));
        assert!(!text.contains("phone's own texts"), "{text}");
        let modems: Vec<Modem> =
            typed(json!([{"name": "sim0", "state": "up", "foreign_messages": 3}]));
        let text = render_status(&modems, &[], &stats, &[], false);
        assert!(
            text.contains("sim0: 3 of a phone's own texts left in the SIM"),
            "{text}"
        );
        // A resting modem is not "up": it says so, and until when; today's counts are shown.
        let modems: Vec<Modem> = typed(json!([{"name": "sim0", "state": "up",
            "sending": "resting", "sending_until": "2026-12-07T03:12:00Z", "sent_today": 4,
            "failed_today": 1, "received_today": 2, "messages_sent": 9, "parts_failed": 3,
            "received": 7, "last_error": null}]));
        let hooks: Vec<Hook> = typed(json!([{"event_type": "message.sent",
            "url": "http://127.0.0.1:9/h", "attempts": 2,
            "next_attempt_at": "2026-12-07T03:20:00Z", "last_error": "HTTP 500"}]));
        let text = render_status(&modems, &[], &stats, &hooks, false);
        // In this machine's time zone, with its offset.
        let until = time_zoned_text("2026-12-07T03:12:00Z");
        assert!(
            text.contains(&format!(
                "resting (went down too often; sends again {until})"
            )),
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
