//! Status reports on PostgreSQL (see [`crate::store::reports`] for the matching rules).
//!
//! A sent part that awaits its report is a `reports_awaited` row, keyed by the modem's NAME
//! and the TP-MR: whichever gateway drives the modem when the report comes matches it, also
//! to parts another gateway sent before the modem moved. The report is applied to its message
//! with the message row locked, and its fingerprint goes into `inbound_seen` in the same
//! transaction: the same report applied by two gateways at once is applied once, the other
//! waits on the fingerprint's row and finds it taken.
//!
//! A report that matches nothing is kept once the same way. Unmatched ids sort by arrival,
//! also within one millisecond: a new id follows the newest one, chosen under a
//! transaction-scoped advisory lock so two gateways never choose the same.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::inbound::{
    canonical_id, column, first_id_after, from_body, mark_seen, sql_limit, to_body,
};
use super::messages::{MESSAGE_COLUMNS, live_event, message_of, write_change};
use super::outbox::insert_outbox;
use super::{PgStore, db_error};
use crate::sms::{StatusCategory, StatusReport};
use crate::store::inbound::fingerprint;
use crate::store::messages::Change;
use crate::store::reports::{
    Candidate, Choice, NoMatch, ReportOutcome, UnmatchedReport, unmatched_id, unmatched_record,
};
use crate::store::{Message, StoreError, SweepStep, id_key};

/// The advisory lock a new unmatched report's id is chosen under ("smsunmat" in ASCII).
const UNMATCHED_ID_LOCK: i64 = 0x736d_7375_6e6d_6174;

/// What the report's transaction found.
enum Applied {
    Duplicate,
    /// The awaited row or the message went away since the part was chosen.
    Gone,
    Done {
        message: Box<Message>,
        /// The change written (`None`: the report told nothing new).
        change: Option<Box<Change>>,
        /// Whether webhook deliveries were queued with it.
        deliveries: bool,
    },
}

/// The awaited part chosen for a report, and its message's id as stored.
struct Chosen {
    message_id: String,
    part: u8,
}

impl PgStore {
    /// See [`crate::store::Store::apply_status_report`].
    pub fn apply_status_report(
        &self,
        modem: &str,
        report: &StatusReport,
        pdu: &[u8],
        now: DateTime<Utc>,
    ) -> Result<ReportOutcome, StoreError> {
        let seen = fingerprint(modem, pdu);
        let known = self.run(async {
            let c = self.client().await?;
            c.query_opt(
                "SELECT 1 FROM inbound_seen WHERE fingerprint = $1",
                &[&&seen[..]],
            )
            .await
            .map_err(db_error)
        })?;
        if known.is_some() {
            return Ok(ReportOutcome::Duplicate);
        }
        if report.status_report_qualifier {
            return self.keep_unmatched(
                modem,
                Some(report),
                pdu,
                "reports on an SMS-COMMAND, which this gateway never sends",
                now,
            );
        }
        let final_for_part = matches!(
            report.status.category(),
            StatusCategory::Delivered | StatusCategory::Failed
        );
        // The awaited rows may change between the choice and the transaction (a sweep, a
        // requeue, another gateway): then choose again, as the embedded store does.
        for _ in 0..3 {
            let chosen = match self.choose_candidate(modem, report, now)? {
                Ok(c) => c,
                Err(why) => {
                    return self.keep_unmatched(modem, Some(report), pdu, &why.to_string(), now);
                }
            };
            let applied =
                self.run(self.apply_to(modem, report, &seen, &chosen, final_for_part, now))?;
            let (message, change, deliveries) = match applied {
                Applied::Duplicate => return Ok(ReportOutcome::Duplicate),
                Applied::Gone => continue,
                Applied::Done {
                    message,
                    change,
                    deliveries,
                } => (message, change, deliveries),
            };
            if deliveries && let Some(n) = &self.notifier {
                n.wake();
            }
            // A report never makes a message due: only the deliveries are news elsewhere.
            self.tell(false, deliveries);
            if let Some(c) = &change {
                self.publish(live_event(&c.new, &c.event));
            }
            return Ok(ReportOutcome::Matched {
                message_id: message.id,
                part: chosen.part,
                status: message.status,
                changed: change.is_some(),
                final_for_part,
            });
        }
        self.keep_unmatched(
            modem,
            Some(report),
            pdu,
            "the matching sent part changed while the report was applied",
            now,
        )
    }

    /// Whether a sent part awaits this report: [`PgStore::apply_status_report`] would match it
    /// now. Reads only.
    pub fn report_awaited(
        &self,
        modem: &str,
        report: &StatusReport,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        Ok(self.choose_candidate(modem, report, now)?.is_ok())
    }

    /// The awaited part this report is about, or why there is none: the rows with the
    /// report's (modem, TP-MR) and their messages, weighed as the embedded store does.
    fn choose_candidate(
        &self,
        modem: &str,
        report: &StatusReport,
        now: DateTime<Utc>,
    ) -> Result<Result<Chosen, NoMatch>, StoreError> {
        let mr = i16::from(report.message_reference);
        let rows = self.run(async {
            let c = self.client().await?;
            c.query(
                "SELECT m.id, m.body, a.message_id, a.part, a.sent_at \
                 FROM reports_awaited a LEFT JOIN messages m ON m.id = a.message_id \
                 WHERE a.modem = $1 AND a.mr = $2",
                &[&modem, &mr],
            )
            .await
            .map_err(db_error)
        })?;
        let mut choice = Choice::new(modem, report, now);
        let mut ids = HashMap::new();
        for row in &rows {
            // Columns 0 and 1 are the message as `message_of` reads it, NULL when it is gone.
            let message_id: String = column(row, 2, "reports_awaited")?;
            let part: i16 = column(row, 3, &message_id)?;
            let sent_at: DateTime<Utc> = column(row, 4, &message_id)?;
            // A row no part can have is no candidate (as a malformed index key in sled).
            let (Some(id), Ok(part)) = (id_key(&message_id), u8::try_from(part)) else {
                continue;
            };
            let found: Option<String> = column(row, 0, &message_id)?;
            let c = Candidate {
                id,
                part,
                sent_ms: sent_at.timestamp_millis().max(0) as u64,
            };
            choice.consider(c, || found.map(|_| message_of(row)).transpose())?;
            ids.insert(id, message_id);
        }
        Ok(choice.chosen().map(|c| Chosen {
            message_id: ids.remove(&c.id).unwrap_or_default(),
            part: c.part,
        }))
    }

    /// Applies `report` to the chosen part in one transaction: the fingerprint taken (or the
    /// report is a duplicate), the message row locked, the awaited row still there (or the
    /// part is gone), the change and its deliveries written, the awaited row removed when the
    /// report is final for the part.
    async fn apply_to(
        &self,
        modem: &str,
        report: &StatusReport,
        seen: &[u8; 32],
        chosen: &Chosen,
        final_for_part: bool,
        now: DateTime<Utc>,
    ) -> Result<Applied, StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(db_error)?;
        // Another gateway applying the same report waits here until this one commits.
        if !mark_seen(&tx, seen, "report").await? {
            return Ok(Applied::Duplicate);
        }
        let Some(row) = tx
            .query_opt(
                &format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = $1 FOR UPDATE"),
                &[&chosen.message_id],
            )
            .await
            .map_err(db_error)?
        else {
            return Ok(Applied::Gone);
        };
        let key: [&(dyn tokio_postgres::types::ToSql + Sync); 4] = [
            &modem,
            &i16::from(report.message_reference),
            &chosen.message_id,
            &i16::from(chosen.part),
        ];
        let awaited = tx
            .query_opt(
                "SELECT 1 FROM reports_awaited WHERE modem = $1 AND mr = $2 \
                 AND message_id = $3 AND part = $4 FOR UPDATE",
                &key,
            )
            .await
            .map_err(db_error)?;
        if awaited.is_none() {
            return Ok(Applied::Gone);
        }
        let old = message_of(&row)?;
        let part = chosen.part;
        let change = Change::work_out(&old, &|m: &mut Message| m.apply_report(part, report, now))?;
        let mut deliveries = Vec::new();
        if let Some(ch) = &change {
            if let Some(n) = &self.notifier {
                deliveries = n.deliveries(&ch.new, &ch.event, old.status);
            }
            write_change(&tx, ch).await?;
            insert_outbox(&tx, &deliveries).await?;
        }
        if final_for_part {
            tx.execute(
                "DELETE FROM reports_awaited WHERE modem = $1 AND mr = $2 \
                 AND message_id = $3 AND part = $4",
                &key,
            )
            .await
            .map_err(db_error)?;
        }
        tx.commit().await.map_err(db_error)?;
        let message = change.as_ref().map_or(old, |c| c.new.clone());
        Ok(Applied::Done {
            message: Box::new(message),
            change: change.map(Box::new),
            deliveries: !deliveries.is_empty(),
        })
    }

    /// See [`crate::store::Store::sweep_reports`]: the parts sent before `cutoff` no longer
    /// await a report. Compared in whole milliseconds, as the embedded store keeps send times.
    pub fn sweep_reports(&self, cutoff: DateTime<Utc>) -> Result<usize, StoreError> {
        let cutoff = DateTime::from_timestamp_millis(cutoff.timestamp_millis()).unwrap_or(cutoff);
        self.run(async {
            let c = self.client().await?;
            let n = c
                .execute("DELETE FROM reports_awaited WHERE sent_at < $1", &[&cutoff])
                .await
                .map_err(db_error)?;
            Ok(usize::try_from(n).unwrap_or(usize::MAX))
        })
    }

    /// See [`crate::store::Store::reports_awaited`]: 0 when the database does not answer.
    pub fn reports_awaited(&self) -> usize {
        self.count_rows("SELECT count(*) FROM reports_awaited")
    }

    /// See [`crate::store::Store::keep_unreadable_report`].
    pub fn keep_unreadable_report(
        &self,
        modem: &str,
        pdu: &[u8],
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<ReportOutcome, StoreError> {
        self.keep_unmatched(modem, None, pdu, reason, now)
    }

    /// Stores an unmatched report (`None`: it could not be read) with its fingerprint, once.
    pub(super) fn keep_unmatched(
        &self,
        modem: &str,
        report: Option<&StatusReport>,
        pdu: &[u8],
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<ReportOutcome, StoreError> {
        let seen = fingerprint(modem, pdu);
        self.run(async {
            let mut c = self.client().await?;
            let tx = c.transaction().await.map_err(db_error)?;
            if !mark_seen(&tx, &seen, "report").await? {
                return Ok(ReportOutcome::Duplicate);
            }
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&UNMATCHED_ID_LOCK])
                .await
                .map_err(db_error)?;
            let row = tx
                .query_one("SELECT max(id) FROM reports_unmatched", &[])
                .await
                .map_err(db_error)?;
            let last: Option<String> = column(&row, 0, "reports_unmatched")?;
            let last = match last {
                Some(l) => Some(
                    ulid::Ulid::from_string(&l)
                        .map_err(|e| StoreError::Corrupt {
                            key: l.clone(),
                            detail: e.to_string(),
                        })?
                        .0,
                ),
                None => None,
            };
            let id = unmatched_id(now, last);
            let record = unmatched_record(&id, modem, report, pdu, reason, now);
            tx.execute(
                "INSERT INTO reports_unmatched (id, body) VALUES ($1, $2)",
                &[&record.id, &to_body(&record)?],
            )
            .await
            .map_err(db_error)?;
            tx.commit().await.map_err(db_error)?;
            Ok(ReportOutcome::Unmatched {
                id: record.id,
                reason: record.reason,
            })
        })
    }

    /// See [`crate::store::Store::unmatched_reports`].
    pub fn unmatched_reports(
        &self,
        limit: usize,
        after: Option<&str>,
    ) -> Result<Vec<UnmatchedReport>, StoreError> {
        let limit = sql_limit(limit.clamp(1, 1000));
        let after = after.and_then(canonical_id);
        self.run(async {
            let c = self.client().await?;
            let rows = c
                .query(
                    "SELECT id, body FROM reports_unmatched \
                     WHERE ($1::text IS NULL OR id < $1) ORDER BY id DESC LIMIT $2",
                    &[&after, &limit],
                )
                .await
                .map_err(db_error)?;
            rows.iter()
                .map(|r| {
                    let id: String = column(r, 0, "reports_unmatched")?;
                    from_body(&id, column(r, 1, &id)?)
                })
                .collect()
        })
    }

    /// See [`crate::store::Store::purge_unmatched_reports`]: the oldest `limit` are looked
    /// at, up to the first received after `cutoff`.
    pub fn purge_unmatched_reports(
        &self,
        cutoff: DateTime<Utc>,
        limit: usize,
    ) -> Result<SweepStep, StoreError> {
        let end = first_id_after(cutoff);
        self.run(async {
            let c = self.client().await?;
            let n = c
                .execute(
                    "DELETE FROM reports_unmatched WHERE id IN \
                       (SELECT id FROM reports_unmatched ORDER BY id LIMIT $1) \
                     AND id < $2",
                    &[&sql_limit(limit), &end],
                )
                .await
                .map_err(db_error)?;
            Ok(SweepStep {
                done: usize::try_from(n).unwrap_or(usize::MAX),
                next: None,
            })
        })
    }

    /// See [`crate::store::Store::unmatched_report_count`]: 0 when the database does not
    /// answer.
    pub fn unmatched_report_count(&self) -> usize {
        self.count_rows("SELECT count(*) FROM reports_unmatched")
    }
}

#[cfg(test)]
mod tests;
