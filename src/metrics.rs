//! Prometheus metrics (`GET /metrics`): counters recorded where things happen, gauges read from
//! the store and the modems when scraped. Every metric is listed in `docs/metrics.md`.

use std::sync::OnceLock;

use metrics::{Unit, describe_counter, describe_gauge, describe_histogram, gauge};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::modem::error::ModemError;
use crate::modem::info::{ModemState, ModemStatus, Registration};
use crate::store::{Status, Store};

/// Send attempts by modem and result (`sent`, `failed`, `maybe_sent`, `modem_unavailable`).
pub const SEND_ATTEMPTS: &str = "smsgate_send_attempts_total";
/// Send errors by modem and error code (`cms_500`, `timeout`, …).
pub const SEND_ERRORS: &str = "smsgate_send_errors_total";
/// Time from `AT+CMGS` of the first part to the network's answer for the last.
pub const SEND_SECONDS: &str = "smsgate_send_duration_seconds";
/// Messages accepted through the API.
pub const ACCEPTED: &str = "smsgate_messages_accepted_total";
/// Messages by status, now.
pub const MESSAGES: &str = "smsgate_messages";
/// Waiting messages (queued and scheduled).
pub const QUEUE_DEPTH: &str = "smsgate_queue_depth";
/// How overdue the most overdue waiting message is.
pub const OLDEST_DUE_AGE: &str = "smsgate_queue_oldest_due_age_seconds";
/// Inbound messages stored, by modem.
pub const INBOUND: &str = "smsgate_inbound_total";
/// Inbound messages that could not be read, kept raw with `decode_error`, by modem.
pub const INBOUND_UNREADABLE: &str = "smsgate_inbound_unreadable_total";
/// Slots of the SIM holding a phone's own texts (SMS-SUBMIT, SMS-COMMAND), left alone.
pub const MODEM_SIM_FOREIGN: &str = "smsgate_modem_sim_foreign";
/// Inbound messages acted on, by handling (`reply`, `opt_out`, `unmatched`, …).
pub const INBOUND_HANDLED: &str = "smsgate_inbound_handled_total";
/// Delivery reports, by outcome (`matched`, `unmatched`, `duplicate`).
pub const REPORTS: &str = "smsgate_delivery_reports_total";
/// Webhook delivery attempts, by result (`delivered`, `failed`, `dead`).
pub const WEBHOOKS: &str = "smsgate_webhook_deliveries_total";
/// Webhook deliveries not yet acknowledged, by state (`pending`, `dead`).
pub const WEBHOOKS_WAITING: &str = "smsgate_webhooks_waiting";
/// Messages held back or ended before sending, by reason (`send_window`, `cap`,
/// `precheck_unavailable`, `awaiting_reply`, `opted_out`, …).
pub const HELD: &str = "smsgate_messages_held_total";
/// 1 when the modem is up.
pub const MODEM_UP: &str = "smsgate_modem_up";
/// Signal strength, dBm.
pub const MODEM_SIGNAL: &str = "smsgate_modem_signal_dbm";
/// 1 when registered on a network (home or roaming).
pub const MODEM_REGISTERED: &str = "smsgate_modem_registered";
/// Parts the modem sent since the daemon started.
pub const MODEM_SENT_PARTS: &str = "smsgate_modem_sent_parts";
/// The prepaid balance the last USSD balance check read (`balance_ussd`).
pub const MODEM_BALANCE: &str = "smsgate_modem_balance";
/// Connections closed to make room for a new one at `[http] max_connections` (each had no
/// request in progress).
pub const HTTP_EVICTED: &str = "smsgate_http_connections_evicted_total";
/// Requests refused with 429 because their address presented too many wrong credentials.
pub const AUTH_THROTTLED: &str = "smsgate_auth_throttled_total";

/// Records the retention sweep redacted or removed, by kind (`message_text`, `message`,
/// `inbound`, `idempotency`, `dead_webhook`, `unmatched_report`).
pub const RETENTION: &str = "smsgate_retention_records_total";
/// Numbers erased through `POST /v1/erasure`.
pub const ERASURES: &str = "smsgate_erasures_total";

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process's recorder, installed on first use; `None` when another recorder was installed
/// first (then nothing is exported).
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    metrics_exporter_prometheus::Matcher::Full(SEND_SECONDS.into()),
                    &[0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 20.0, 30.0, 60.0],
                )
                .ok()?;
            let h = builder.install_recorder().ok()?;
            describe();
            Some(h)
        })
        .as_ref()
}

fn describe() {
    describe_counter!(SEND_ATTEMPTS, "Send attempts by modem and result.");
    describe_counter!(SEND_ERRORS, "Send errors by modem and error code.");
    describe_histogram!(
        SEND_SECONDS,
        Unit::Seconds,
        "Time a message took on the modem, first AT+CMGS to last answer."
    );
    describe_counter!(ACCEPTED, "Messages accepted through the API.");
    describe_gauge!(MESSAGES, "Messages by status.");
    describe_gauge!(QUEUE_DEPTH, "Waiting messages (queued and scheduled).");
    describe_gauge!(
        OLDEST_DUE_AGE,
        Unit::Seconds,
        "How long the most overdue waiting message has been due (0 when none is)."
    );
    describe_counter!(INBOUND, "Inbound messages stored, by modem.");
    describe_counter!(
        INBOUND_UNREADABLE,
        "Inbound messages that could not be read, kept raw with decode_error, by modem."
    );
    describe_gauge!(
        MODEM_SIM_FOREIGN,
        "SIM slots holding a phone's own texts (SMS-SUBMIT, SMS-COMMAND), left alone."
    );
    describe_counter!(INBOUND_HANDLED, "Inbound messages acted on, by handling.");
    describe_counter!(REPORTS, "Delivery reports, by outcome.");
    describe_counter!(WEBHOOKS, "Webhook delivery attempts, by result.");
    describe_gauge!(
        WEBHOOKS_WAITING,
        "Webhook deliveries not yet acknowledged, by state."
    );
    describe_counter!(
        HELD,
        "Messages held back or ended before sending, by reason."
    );
    describe_gauge!(MODEM_UP, "1 when the modem is up.");
    describe_gauge!(MODEM_SIGNAL, "Signal strength in dBm.");
    describe_gauge!(MODEM_REGISTERED, "1 when registered on a network.");
    describe_gauge!(MODEM_SENT_PARTS, "Parts sent since the daemon started.");
    describe_counter!(
        HTTP_EVICTED,
        "Idle connections closed to make room at [http] max_connections."
    );
    describe_counter!(
        RETENTION,
        "Records the retention sweep redacted or removed, by kind."
    );
    describe_counter!(ERASURES, "Numbers erased through POST /v1/erasure.");
    describe_counter!(
        AUTH_THROTTLED,
        "Requests refused (429) after too many wrong credentials from their address."
    );
}

/// A low-cardinality code for a modem error: `cms_<n>`, `cme_<n>`, `timeout`, …
pub fn error_code(e: &ModemError) -> String {
    match e {
        ModemError::Cms { code } => format!("cms_{code}"),
        ModemError::Cme { code } => format!("cme_{code}"),
        ModemError::Timeout { .. } => "timeout".into(),
        ModemError::PortLost(_) => "port_lost".into(),
        ModemError::Open { .. } => "open".into(),
        ModemError::Error { .. } => "error".into(),
        ModemError::NotSupported { .. } => "not_supported".into(),
        ModemError::Unexpected { .. } => "unexpected".into(),
        ModemError::SimLocked(_) => "sim_locked".into(),
        ModemError::NotReady(_) => "not_ready".into(),
        ModemError::Stopped => "stopped".into(),
    }
}

/// The text exposition, with the gauges read now.
pub fn render(store: &Store, modems: &[ModemStatus], now: chrono::DateTime<chrono::Utc>) -> String {
    let Some(h) = handle() else {
        return String::new();
    };
    if let Ok(counts) = store.counts() {
        for (s, n) in counts {
            gauge!(MESSAGES, "status" => s.as_str()).set(n as f64);
        }
    }
    for s in Status::ALL {
        // Every status appears, at 0 when empty, so alerts and graphs see the series.
        let _ = gauge!(MESSAGES, "status" => s.as_str());
    }
    gauge!(QUEUE_DEPTH).set(store.queue_depth() as f64);
    let age = store
        .oldest_due()
        .ok()
        .flatten()
        .map_or(0.0, |t| (now - t).num_milliseconds().max(0) as f64 / 1000.0);
    gauge!(OLDEST_DUE_AGE).set(age);
    if let Ok((pending, dead)) = store.outbox_counts() {
        gauge!(WEBHOOKS_WAITING, "state" => "pending").set(pending as f64);
        gauge!(WEBHOOKS_WAITING, "state" => "dead").set(dead as f64);
    }
    for m in modems {
        let name = m.name.clone();
        gauge!(MODEM_UP, "modem" => name.clone()).set(if m.state == ModemState::Up {
            1.0
        } else {
            0.0
        });
        let registered = matches!(
            m.info.registration,
            Some(Registration::Home | Registration::Roaming)
        );
        gauge!(MODEM_REGISTERED, "modem" => name.clone()).set(if registered { 1.0 } else { 0.0 });
        if let Some(dbm) = m.info.signal.as_ref().and_then(|s| s.dbm) {
            gauge!(MODEM_SIGNAL, "modem" => name.clone()).set(f64::from(dbm));
        }
        gauge!(MODEM_SIM_FOREIGN, "modem" => name.clone()).set(f64::from(m.foreign_messages));
        gauge!(MODEM_SENT_PARTS, "modem" => name).set(m.sent_parts as f64);
    }
    h.run_upkeep();
    h.render()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [&str; 24] = [
        SEND_ATTEMPTS,
        SEND_ERRORS,
        SEND_SECONDS,
        ACCEPTED,
        MESSAGES,
        QUEUE_DEPTH,
        OLDEST_DUE_AGE,
        INBOUND,
        INBOUND_UNREADABLE,
        INBOUND_HANDLED,
        REPORTS,
        WEBHOOKS,
        WEBHOOKS_WAITING,
        HELD,
        MODEM_UP,
        MODEM_SIGNAL,
        MODEM_REGISTERED,
        MODEM_SENT_PARTS,
        MODEM_BALANCE,
        MODEM_SIM_FOREIGN,
        HTTP_EVICTED,
        AUTH_THROTTLED,
        RETENTION,
        ERASURES,
    ];

    fn doc(name: &str) -> String {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("docs")
            .join(name);
        std::fs::read_to_string(p).unwrap()
    }

    /// Every metric is documented, and the shipped alerts and dashboard use only real ones.
    #[test]
    fn docs_alerts_and_dashboard_name_real_metrics() {
        let md = doc("metrics.md");
        for m in ALL {
            assert!(
                md.contains(&format!("`{m}`")),
                "{m} is not in docs/metrics.md"
            );
        }
        for file in ["prometheus-alerts.yml", "grafana-dashboard.json"] {
            let text = doc(file);
            for word in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                if let Some(base) = word.strip_prefix("smsgate_") {
                    let name = format!("smsgate_{base}");
                    let known = ALL.iter().any(|m| {
                        name == *m
                            || name
                                .strip_prefix(*m)
                                .is_some_and(|s| ["_bucket", "_sum", "_count"].contains(&s))
                    });
                    assert!(known, "{file} uses {name}, which smsgate does not export");
                }
            }
        }
        assert!(serde_json::from_str::<serde_json::Value>(&doc("grafana-dashboard.json")).is_ok());
    }

    #[test]
    fn error_codes_are_low_cardinality() {
        assert_eq!(error_code(&ModemError::Cms { code: 500 }), "cms_500");
        assert_eq!(
            error_code(&ModemError::PortLost("gone".into())),
            "port_lost"
        );
    }
}
