//! Delivery reports from the modems: applied to the store, made durable, and only then deleted
//! from the SIM.
//!
//! The matching rules live with the data in [`crate::store::reports`]; this is the step between
//! the modem driver's [`ModemEvent::StatusReport`](crate::modem::ModemEvent::StatusReport) and
//! the store. A report the store cannot take is not acknowledged: it stays on the SIM and is
//! offered again (after a restart at the latest), and the store's fingerprint of the PDU makes
//! sure a report stored just before a crash is not applied twice.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::dispatch::SendsUnderWay;
use crate::modem::Inbound;
use crate::sms::Pdu;
use crate::store::reports::ReportOutcome;
use crate::store::{Store, StoreError};

/// Applies status reports (one modem's or several), makes them durable with one flush, then
/// acknowledges each one stored; the outcomes in order. A burst of reports (a modem handing
/// over what it held while the gateway was busy or away) costs one disk flush, not one each.
pub async fn handle_batch(
    store: &Store,
    under_way: &SendsUnderWay,
    reports: Vec<Inbound>,
    now: DateTime<Utc>,
) -> Vec<Result<ReportOutcome, StoreError>> {
    wait_for_sends(store, under_way, &reports, now).await;
    let applied: Vec<_> = reports.iter().map(|r| apply(store, r, now)).collect();
    let flushed = if applied.iter().any(Result::is_ok) {
        store.durable().await
    } else {
        Ok(())
    };
    reports
        .into_iter()
        .zip(applied)
        .map(|(report, applied)| {
            let outcome = applied.and_then(|o| flushed.clone().map(|()| o));
            finish(report, &outcome);
            outcome
        })
        .collect()
}

/// How long a report waits, at most, for the send under way on its modem to be recorded.
const SEND_RECORD_WAIT: Duration = Duration::from_secs(10);

/// Waits for the sends under way on the modems of the reports that match no sent part yet:
/// they may be about those very sends.
async fn wait_for_sends(
    store: &Store,
    under_way: &SendsUnderWay,
    reports: &[Inbound],
    now: DateTime<Utc>,
) {
    let mut waited = HashSet::new();
    for report in reports {
        let modem = report.modem.as_str();
        if waited.contains(modem) || !under_way.busy(modem) {
            continue;
        }
        let Ok(Pdu::StatusReport(r)) = &report.decoded else {
            continue;
        };
        // On a store error the report goes ahead: applying it says what is wrong.
        if store.report_awaited(modem, r, now).unwrap_or(true) {
            continue;
        }
        waited.insert(modem);
        if !under_way.recorded(modem, SEND_RECORD_WAIT).await {
            tracing::warn!(
                modem,
                "a send on this modem is still not recorded; its status report is applied now"
            );
        }
    }
}

fn apply(store: &Store, report: &Inbound, now: DateTime<Utc>) -> Result<ReportOutcome, StoreError> {
    let modem = report.modem.as_str();
    match &report.decoded {
        Ok(Pdu::StatusReport(r)) => store.apply_status_report(modem, r, &report.pdu, now),
        Ok(_) => store.keep_unreadable_report(modem, &report.pdu, "not an SMS-STATUS-REPORT", now),
        Err(e) => store.keep_unreadable_report(
            modem,
            &report.pdu,
            &format!("cannot decode the status report: {e}"),
            now,
        ),
    }
}

/// Logs and counts what became of a report, and acknowledges it when it is stored.
fn finish(report: Inbound, outcome: &Result<ReportOutcome, StoreError>) {
    let modem = report.modem.as_str();
    match outcome {
        Ok(ReportOutcome::Matched {
            message_id,
            part,
            status,
            changed,
            ..
        }) => {
            let tp_st = match &report.decoded {
                Ok(Pdu::StatusReport(r)) => Some(r.status.code),
                _ => None,
            };
            tracing::info!(message_id = %message_id, modem, part, tp_st, status = status.as_str(), changed, "status report applied");
        }
        Ok(ReportOutcome::Unmatched { id, reason }) => {
            tracing::warn!(report_id = %id, modem, reason = %reason, "status report matched no sent message; kept as unmatched");
        }
        Ok(ReportOutcome::Duplicate) => {
            tracing::debug!(modem, "status report already stored");
        }
        Err(e) => {
            tracing::error!(modem, error = %e, "cannot store a status report; it stays on the SIM");
        }
    }
    if let Ok(o) = outcome {
        let kind = match o {
            ReportOutcome::Matched { .. } => "matched",
            ReportOutcome::Unmatched { .. } => "unmatched",
            ReportOutcome::Duplicate => "duplicate",
        };
        metrics::counter!(crate::metrics::REPORTS, "outcome" => kind).increment(1);
        report.ack();
    }
}
