//! Status reports that matched no sent part, on PostgreSQL (see [`crate::store::reports`]).
//!
//! A report is kept once: its fingerprint goes into `inbound_seen` in the same transaction.
//! Ids sort by arrival, also within one millisecond: a new id follows the newest one, chosen
//! under a transaction-scoped advisory lock so two gateways never choose the same.

use chrono::{DateTime, Utc};

use super::inbound::{canonical_id, column, first_id_after, from_body, sql_limit, to_body};
use super::{PgStore, db_error};
use crate::sms::StatusReport;
use crate::store::inbound::fingerprint;
use crate::store::reports::{ReportOutcome, UnmatchedReport, unmatched_id, unmatched_record};
use crate::store::{StoreError, SweepStep};

/// The advisory lock a new unmatched report's id is chosen under ("smsunmat" in ASCII).
const UNMATCHED_ID_LOCK: i64 = 0x736d_7375_6e6d_6174;

impl PgStore {
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
            let n = tx
                .execute(
                    "INSERT INTO inbound_seen (fingerprint, kind) VALUES ($1, 'report') \
                     ON CONFLICT (fingerprint) DO NOTHING",
                    &[&&seen[..]],
                )
                .await
                .map_err(db_error)?;
            if n == 0 {
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
mod tests {
    use chrono::TimeDelta;

    use super::*;
    use crate::sms::{self, Address, Pdu, encode_status_report};
    use crate::store::pg::inbound::tests::places;
    use crate::store::pg::testdb;
    use crate::store::{Store, id_key};

    /// A report PDU as the modem gives it.
    fn report(mr: u8, to: &str, second: u32) -> (Vec<u8>, StatusReport) {
        let ra = Address::parse_number("to", to).unwrap();
        let smsc = Address::parse_number("smsc", "+15550000000").unwrap();
        let scts = DateTime::parse_from_rfc3339("2026-03-02T10:00:00+01:00").unwrap();
        let dt = scts + TimeDelta::seconds(i64::from(second));
        let pdu = encode_status_report(Some(&smsc), mr, &ra, &scts, &dt, 0x00);
        let Ok(Pdu::StatusReport(r)) = sms::decode(&pdu, true) else {
            panic!("not a status report")
        };
        (pdu, r)
    }

    fn unmatched_id(out: &ReportOutcome) -> String {
        match out {
            ReportOutcome::Unmatched { id, .. } => id.clone(),
            o => panic!("{o:?}"),
        }
    }

    #[tokio::test]
    async fn unreadable_reports_are_kept_once_listed_newest_first_and_purged_oldest_first() {
        for place in places() {
            let now = Utc::now();
            let ids = {
                let store = place.open();
                let mut ids = Vec::new();
                // Three in one millisecond: their ids still sort by arrival.
                for (i, reason) in ["cut short", "bad TP-ST", "no TP-RA"].iter().enumerate() {
                    let out = store
                        .keep_unreadable_report("sim0", &[0x00, 0x06, i as u8], reason, now)
                        .unwrap();
                    assert_eq!(
                        out,
                        ReportOutcome::Unmatched {
                            id: unmatched_id(&out),
                            reason: reason.to_string()
                        }
                    );
                    ids.push(unmatched_id(&out));
                }
                assert!(
                    ids.windows(2).all(|w| id_key(&w[0]) < id_key(&w[1])),
                    "{}: {ids:?}",
                    place.name()
                );
                // The same PDU again, on that modem: once.
                assert_eq!(
                    store
                        .keep_unreadable_report("sim0", &[0x00, 0x06, 0], "again", now)
                        .unwrap(),
                    ReportOutcome::Duplicate
                );
                store.durable().await.unwrap();
                ids
            };
            // After a restart: still there, still once.
            let store = place.open();
            assert_eq!(
                store
                    .keep_unreadable_report("sim0", &[0x00, 0x06, 1], "again", now)
                    .unwrap(),
                ReportOutcome::Duplicate
            );
            assert_eq!(store.unmatched_report_count(), 3, "{}", place.name());
            let page1 = store.unmatched_reports(2, None).unwrap();
            let page2 = store.unmatched_reports(2, Some(&page1[1].id)).unwrap();
            let listed: Vec<_> = page1.iter().chain(&page2).map(|u| u.id.clone()).collect();
            assert_eq!(
                listed,
                [ids[2].as_str(), ids[1].as_str(), ids[0].as_str()],
                "{}",
                place.name()
            );
            let u = &page1[0];
            assert_eq!(
                (u.modem.as_str(), u.reason.as_str(), u.pdu.as_str()),
                ("sim0", "no TP-RA", "000602")
            );
            assert_eq!(
                (u.message_reference, u.tp_st, u.received_at),
                (None, None, now)
            );
            // Retention: nothing after the cutoff; at most `limit` looked at.
            let step = store
                .purge_unmatched_reports(now - TimeDelta::seconds(1), 10)
                .unwrap();
            assert_eq!(step.done, 0);
            assert_eq!(store.purge_unmatched_reports(now, 2).unwrap().done, 2);
            assert_eq!(store.unmatched_report_count(), 1);
            assert_eq!(store.unmatched_reports(10, None).unwrap()[0].id, ids[2]);
            assert_eq!(store.purge_unmatched_reports(now, 10).unwrap().done, 1);
            assert_eq!(store.unmatched_report_count(), 0);
        }
    }

    /// A report read whole but matched to nothing is kept with what it says.
    #[test]
    fn a_readable_report_keeps_its_fields() {
        let Some(url) = testdb::database() else {
            return;
        };
        let store = PgStore::connect(&url, Vec::new()).unwrap();
        let (pdu, r) = report(42, "+12025550999", 1);
        let now = Utc::now();
        let out = store
            .keep_unmatched("sim0", Some(&r), &pdu, "nothing sent", now)
            .unwrap();
        let id = unmatched_id(&out);
        let u = &store.unmatched_reports(10, None).unwrap()[0];
        assert_eq!(u.id, id);
        assert_eq!(
            (u.modem.as_str(), u.message_reference, u.tp_st),
            ("sim0", Some(42), Some(0))
        );
        assert_eq!(u.recipient.as_deref(), Some("+12025550999"));
        assert_eq!(u.category.as_deref(), Some("delivered"));
        assert!(u.pdu.starts_with("07915155"), "{}", u.pdu);
        assert_eq!(
            store
                .keep_unreadable_report("sim0", &pdu, "again", now)
                .unwrap(),
            ReportOutcome::Duplicate
        );
    }

    /// Two gateways keeping reports at once never choose the same id.
    #[test]
    fn concurrent_gateways_keep_every_report() {
        let Some(url) = testdb::database() else {
            return;
        };
        let stores: Vec<Store> = (0..3)
            .map(|_| Store::connect(&url, Vec::new()).unwrap())
            .collect();
        let now = Utc::now();
        std::thread::scope(|s| {
            for (g, store) in stores.iter().enumerate() {
                s.spawn(move || {
                    for i in 0..20u8 {
                        let out = store
                            .keep_unreadable_report("sim0", &[0, g as u8, i], "cut short", now)
                            .unwrap();
                        assert!(matches!(out, ReportOutcome::Unmatched { .. }), "{out:?}");
                    }
                });
            }
        });
        assert_eq!(stores[0].unmatched_report_count(), 60);
        assert_eq!(stores[1].unmatched_reports(1000, None).unwrap().len(), 60);
    }
}
