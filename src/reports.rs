//! Delivery reports from the modems: applied to the store, made durable, and only then deleted
//! from the SIM.
//!
//! The matching rules live with the data in [`crate::store::reports`]; this is the step between
//! the modem driver's [`ModemEvent::StatusReport`](crate::modem::ModemEvent::StatusReport) and
//! the store. A report the store cannot take is not acknowledged: it stays on the SIM and is
//! offered again (after a restart at the latest), and the store's fingerprint of the PDU makes
//! sure a report stored just before a crash is not applied twice.

use chrono::{DateTime, Utc};

use crate::modem::Inbound;
use crate::sms::Pdu;
use crate::store::reports::ReportOutcome;
use crate::store::{Store, StoreError};

/// Applies one status report from a modem, makes it durable, then acknowledges it so the
/// driver deletes it from the SIM. On a store error nothing is acknowledged.
pub async fn handle(
    store: &Store,
    report: Inbound,
    now: DateTime<Utc>,
) -> Result<ReportOutcome, StoreError> {
    handle_batch(store, vec![report], now)
        .await
        .pop()
        .unwrap_or(Err(StoreError::Closed))
}

/// Applies status reports (one modem's or several), makes them durable with one flush, then
/// acknowledges each one stored; the outcomes in order. A burst of reports (a modem handing
/// over what it held while the gateway was busy or away) costs one disk flush, not one each.
pub async fn handle_batch(
    store: &Store,
    reports: Vec<Inbound>,
    now: DateTime<Utc>,
) -> Vec<Result<ReportOutcome, StoreError>> {
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
