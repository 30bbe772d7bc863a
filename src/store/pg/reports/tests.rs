use chrono::TimeDelta;

use super::*;
use crate::sms::{self, Address, Pdu, encode_status_report};
use crate::store::pg::inbound::tests::places;
use crate::store::pg::testdb;
use crate::store::reports::REPORT_MAX_AGE;
use crate::store::{Part, PartStatus, Status, Store, id_key};

const TO: &str = "+12025550123";

/// Runs `check` on a fresh embedded store and a fresh database.
fn on_both(check: impl Fn(&Store)) {
    for place in places() {
        eprintln!("on {}", place.name());
        check(&place.open());
    }
}

/// Inserts a message and moves it to `sent` on sim0 with these TP-MRs, at `sent_at`.
fn sent(store: &Store, to: &str, mrs: &[u8], sent_at: DateTime<Utc>) -> Message {
    let mut m = crate::store::test_message(to);
    m.text = "Your invoice is due".into();
    m.parts = mrs.len() as u8;
    m.status_report = true;
    store.insert(std::slice::from_ref(&m), None).unwrap();
    let mrs = mrs.to_vec();
    store
        .update(&m.id, |m| {
            m.status = Status::Sent;
            m.modem = Some("sim0".into());
            m.sent_at = Some(sent_at);
            m.part_status = mrs
                .iter()
                .enumerate()
                .map(|(i, mr)| Part {
                    part: i as u8 + 1,
                    message_reference: Some(*mr),
                    status: PartStatus::Sent,
                })
                .collect();
            Some("sent")
        })
        .unwrap()
        .unwrap()
        .0
}

fn apply(store: &Store, mr: u8, to: &str, code: u8, second: u32) -> ReportOutcome {
    let (pdu, r) = report(mr, to, code, second);
    store
        .apply_status_report("sim0", &r, &pdu, Utc::now())
        .unwrap()
}

fn status_of(store: &Store, id: &str) -> Status {
    store.get(id).unwrap().unwrap().status
}

fn counts(store: &Store) -> std::collections::HashMap<Status, u64> {
    store.counts().unwrap().into_iter().collect()
}

#[test]
fn single_part_delivered() {
    on_both(|store| {
        let m = sent(store, TO, &[17], Utc::now());
        assert_eq!(store.reports_awaited(), 1);
        let out = apply(store, 17, TO, 0x00, 5);
        assert_eq!(
            out,
            ReportOutcome::Matched {
                message_id: m.id.clone(),
                part: 1,
                status: Status::Delivered,
                changed: true,
                final_for_part: true,
            }
        );
        let got = store.get(&m.id).unwrap().unwrap();
        assert_eq!(got.status, Status::Delivered);
        assert!(got.delivered_at.is_some());
        assert_eq!(got.part_status[0].status, PartStatus::Delivered);
        let events = store.events(&m.id).unwrap();
        let last = events.last().unwrap();
        assert_eq!(last.kind, "delivery_report");
        assert_eq!(last.status, Status::Delivered);
        let data = last.data.as_ref().unwrap();
        assert_eq!(data["tp_st"], 0);
        assert_eq!(data["message_reference"], 17);
        assert_eq!(data["part"], 1);
        assert_eq!(data["category"], "delivered");
        assert!(data["discharge_time"].is_string() && data["smsc_timestamp"].is_string());
        assert!(store.history(&m.id).unwrap().is_some(), "the chain holds");
        assert_eq!(store.reports_awaited(), 0, "a final report removes the row");
        let counts = counts(store);
        assert_eq!((counts[&Status::Sent], counts[&Status::Delivered]), (0, 1));
    });
}

#[test]
fn the_newest_send_with_a_wrapped_reference_gets_the_report() {
    on_both(|store| {
        let now = Utc::now();
        // 256 sends apart, both TP-MR 5, same recipient.
        let old = sent(store, TO, &[5], now - TimeDelta::hours(3));
        let new = sent(store, TO, &[5], now - TimeDelta::minutes(1));
        let out = apply(store, 5, TO, 0x00, 1);
        assert!(
            matches!(&out, ReportOutcome::Matched { message_id, .. } if *message_id == new.id),
            "{out:?}"
        );
        assert_eq!(status_of(store, &new.id), Status::Delivered);
        assert_eq!(status_of(store, &old.id), Status::Sent);
        // A part sent longer ago than REPORT_MAX_AGE is not matched; the sweep removes it.
        let ancient = sent(store, "+12025550999", &[9], now - TimeDelta::days(8));
        let out = apply(store, 9, "+12025550999", 0x00, 1);
        assert!(
            matches!(&out, ReportOutcome::Unmatched { reason, .. } if reason.contains("no part sent on sim0 in the last 7 days")),
            "{out:?}"
        );
        assert_eq!(status_of(store, &ancient.id), Status::Sent);
        assert_eq!(store.sweep_reports(now - REPORT_MAX_AGE).unwrap(), 1);
        assert_eq!(store.reports_awaited(), 1, "the recent one stays");
    });
}

#[test]
fn another_recipient_is_unmatched_and_kept() {
    on_both(|store| {
        let m = sent(store, TO, &[42], Utc::now());
        let out = apply(store, 42, "+12025550999", 0x00, 1);
        let ReportOutcome::Unmatched { id, reason } = out else {
            panic!("{out:?}")
        };
        assert!(reason.contains("another recipient"), "{reason}");
        assert_eq!(status_of(store, &m.id), Status::Sent);
        assert_eq!(store.unmatched_report_count(), 1);
        let list = store.unmatched_reports(10, None).unwrap();
        assert_eq!(list.len(), 1);
        let u = &list[0];
        assert_eq!(u.id, id);
        assert_eq!(
            (u.modem.as_str(), u.message_reference, u.tp_st),
            ("sim0", Some(42), Some(0))
        );
        assert_eq!(u.recipient.as_deref(), Some("+12025550999"));
        // No candidate at all.
        let out = apply(store, 43, TO, 0x00, 1);
        assert!(
            matches!(&out, ReportOutcome::Unmatched { reason, .. } if reason.contains("TP-MR 43")),
            "{out:?}"
        );
        assert_eq!(store.unmatched_report_count(), 2);
        assert_eq!(store.reports_awaited(), 1);
    });
}

#[test]
fn national_format_recipients_match_by_trailing_digits() {
    on_both(|store| {
        let m = sent(store, TO, &[3], Utc::now());
        assert!(matches!(
            apply(store, 3, "2025550123", 0x00, 1),
            ReportOutcome::Matched { .. }
        ));
        assert_eq!(status_of(store, &m.id), Status::Delivered);
    });
}

#[test]
fn three_parts_are_delivered_when_all_three_are() {
    on_both(|store| {
        let m = sent(store, TO, &[254, 255, 0], Utc::now());
        assert_eq!(store.reports_awaited(), 3);
        for (i, mr) in [(0, 0u8), (1, 254)] {
            let out = apply(store, mr, TO, 0x00, i);
            assert!(
                matches!(
                    out,
                    ReportOutcome::Matched {
                        status: Status::Sent,
                        changed: true,
                        ..
                    }
                ),
                "{out:?}"
            );
        }
        let mid = store.get(&m.id).unwrap().unwrap();
        assert_eq!(mid.status, Status::Sent);
        assert!(mid.delivered_at.is_none());
        let statuses: Vec<_> = mid.part_status.iter().map(|p| p.status.as_str()).collect();
        assert_eq!(statuses, ["delivered", "sent", "delivered"]);
        let out = apply(store, 255, TO, 0x00, 2);
        assert!(
            matches!(
                out,
                ReportOutcome::Matched {
                    part: 2,
                    status: Status::Delivered,
                    ..
                }
            ),
            "{out:?}"
        );
        let done = store.get(&m.id).unwrap().unwrap();
        assert_eq!(done.status, Status::Delivered);
        assert!(
            done.part_status
                .iter()
                .all(|p| p.status == PartStatus::Delivered)
        );
        let reports = store
            .events(&m.id)
            .unwrap()
            .into_iter()
            .filter(|e| e.kind == "delivery_report")
            .count();
        assert_eq!(reports, 3);
        assert_eq!(store.reports_awaited(), 0);
    });
}

#[test]
fn a_permanent_failure_fails_the_message_with_the_reason() {
    on_both(|store| {
        let m = sent(store, TO, &[10, 11], Utc::now());
        let out = apply(store, 11, TO, 0x61, 1);
        assert!(
            matches!(
                out,
                ReportOutcome::Matched {
                    part: 2,
                    status: Status::Failed,
                    final_for_part: true,
                    ..
                }
            ),
            "{out:?}"
        );
        let failed = store.get(&m.id).unwrap().unwrap();
        assert_eq!(failed.status, Status::Failed);
        assert_eq!(
            failed.status_reason.as_deref(),
            Some("delivery failed: recipient busy (TP-ST 0x61)")
        );
        assert_eq!(failed.part_status[1].status, PartStatus::Failed);
        // The other part's report still lands in the history; the status stays failed.
        let out = apply(store, 10, TO, 0x00, 2);
        assert!(
            matches!(
                out,
                ReportOutcome::Matched {
                    part: 1,
                    status: Status::Failed,
                    changed: true,
                    ..
                }
            ),
            "{out:?}"
        );
        let after = store.get(&m.id).unwrap().unwrap();
        assert_eq!(after.status, Status::Failed);
        assert_eq!(after.status_reason, failed.status_reason);
        assert_eq!(after.part_status[0].status, PartStatus::Delivered);
        assert!(after.delivered_at.is_none());
        let last = store.events(&m.id).unwrap().pop().unwrap();
        assert_eq!(last.kind, "delivery_report");
        assert!(
            last.reason
                .unwrap()
                .contains("after the message became failed")
        );
        // Validity expired: the same kind of failure, another reason.
        let m2 = sent(store, TO, &[20], Utc::now());
        let out = apply(store, 20, TO, 0x46, 1);
        assert!(matches!(
            out,
            ReportOutcome::Matched {
                status: Status::Failed,
                ..
            }
        ));
        assert_eq!(
            store.get(&m2.id).unwrap().unwrap().status_reason.as_deref(),
            Some("delivery failed: validity period expired (TP-ST 0x46)")
        );
        assert_eq!(counts(store)[&Status::Failed], 2);
    });
}

#[test]
fn requeue_drops_the_old_attempts_awaited_parts() {
    on_both(|store| {
        let m = sent(store, TO, &[30, 31, 32], Utc::now());
        apply(store, 30, TO, 0x41, 1);
        assert_eq!(
            store.reports_awaited(),
            2,
            "the other parts still await theirs"
        );
        store
            .update(&m.id, |m| {
                m.status = Status::Queued;
                Some("requeued")
            })
            .unwrap();
        assert_eq!(store.reports_awaited(), 0);
        let out = apply(store, 31, TO, 0x00, 1);
        assert!(matches!(out, ReportOutcome::Unmatched { .. }), "{out:?}");
        assert_eq!(status_of(store, &m.id), Status::Queued);
    });
}

#[test]
fn a_pending_report_is_history_and_the_message_stays_sent() {
    on_both(|store| {
        let m = sent(store, TO, &[7], Utc::now());
        let out = apply(store, 7, TO, 0x21, 1);
        assert!(
            matches!(
                out,
                ReportOutcome::Matched {
                    status: Status::Sent,
                    changed: true,
                    final_for_part: false,
                    ..
                }
            ),
            "{out:?}"
        );
        let got = store.get(&m.id).unwrap().unwrap();
        assert_eq!(
            (got.status, got.part_status[0].status.as_str()),
            (Status::Sent, "sent")
        );
        let last = store.events(&m.id).unwrap().pop().unwrap();
        assert_eq!(last.kind, "delivery_report");
        assert_eq!(last.data.as_ref().unwrap()["category"], "pending");
        assert!(last.reason.unwrap().contains("recipient busy"));
        assert_eq!(
            store.reports_awaited(),
            1,
            "still waiting for the final report"
        );
        // The final one follows.
        assert!(matches!(
            apply(store, 7, TO, 0x00, 9),
            ReportOutcome::Matched {
                status: Status::Delivered,
                ..
            }
        ));
        assert_eq!(store.reports_awaited(), 0);
    });
}

#[test]
fn the_same_pdu_twice_is_counted_once() {
    on_both(|store| {
        let m = sent(store, TO, &[1, 2], Utc::now());
        let (pdu, r) = report(1, TO, 0x00, 1);
        let now = Utc::now();
        assert!(matches!(
            store.apply_status_report("sim0", &r, &pdu, now).unwrap(),
            ReportOutcome::Matched { .. }
        ));
        let len = store.get(&m.id).unwrap().unwrap().history_len;
        assert_eq!(
            store.apply_status_report("sim0", &r, &pdu, now).unwrap(),
            ReportOutcome::Duplicate
        );
        assert_eq!(store.get(&m.id).unwrap().unwrap().history_len, len);
        // An unmatched one, twice: stored once.
        let (pdu, r) = report(99, TO, 0x00, 1);
        assert!(matches!(
            store.apply_status_report("sim0", &r, &pdu, now).unwrap(),
            ReportOutcome::Unmatched { .. }
        ));
        assert_eq!(
            store.apply_status_report("sim0", &r, &pdu, now).unwrap(),
            ReportOutcome::Duplicate
        );
        assert_eq!(
            store
                .keep_unreadable_report("sim0", &pdu, "again", now)
                .unwrap(),
            ReportOutcome::Duplicate
        );
        assert_eq!(store.unmatched_report_count(), 1);
    });
}

#[tokio::test]
async fn the_awaited_parts_and_the_unmatched_survive_a_restart() {
    for place in places() {
        let (id, pdu, r) = {
            let store = place.open();
            let m = sent(&store, TO, &[50, 51], Utc::now());
            assert!(matches!(
                apply(&store, 50, TO, 0x00, 1),
                ReportOutcome::Matched { .. }
            ));
            let (pdu, r) = report(52, TO, 0x00, 1);
            store
                .apply_status_report("sim0", &r, &pdu, Utc::now())
                .unwrap();
            store.durable().await.unwrap();
            (m.id, pdu, r)
        };
        let store = place.open();
        assert_eq!(store.reports_awaited(), 1, "{}", place.name());
        assert_eq!(store.unmatched_report_count(), 1);
        // Offered again after the restart (never deleted from the SIM): not twice.
        assert_eq!(
            store
                .apply_status_report("sim0", &r, &pdu, Utc::now())
                .unwrap(),
            ReportOutcome::Duplicate
        );
        assert!(matches!(
            apply(&store, 51, TO, 0x00, 2),
            ReportOutcome::Matched {
                status: Status::Delivered,
                ..
            }
        ));
        assert_eq!(status_of(&store, &id), Status::Delivered);
        assert_eq!(counts(&store)[&Status::Delivered], 1);
    }
}

/// A modem moved to another gateway: that gateway matches the reports on the parts the
/// first one sent, by the modem's name.
#[test]
fn a_report_matches_a_part_another_gateway_sent() {
    let Some(url) = testdb::database() else {
        return;
    };
    let a = Store::connect(&url, Vec::new()).unwrap();
    let b = Store::connect(&url, Vec::new()).unwrap();
    let m = sent(&a, TO, &[77, 78], Utc::now());
    assert_eq!(b.reports_awaited(), 2);
    let out = apply(&b, 78, TO, 0x00, 1);
    assert!(
        matches!(&out, ReportOutcome::Matched { message_id, part: 2, .. } if *message_id == m.id),
        "{out:?}"
    );
    assert_eq!(a.reports_awaited(), 1);
    // Not on another modem with the same TP-MR.
    let (pdu, r) = report(77, TO, 0x00, 2);
    let out = b.apply_status_report("sim1", &r, &pdu, Utc::now()).unwrap();
    assert!(matches!(out, ReportOutcome::Unmatched { .. }), "{out:?}");
    assert!(matches!(
        apply(&a, 77, TO, 0x00, 2),
        ReportOutcome::Matched {
            status: Status::Delivered,
            ..
        }
    ));
    assert_eq!(status_of(&b, &m.id), Status::Delivered);
}

/// The same report applied by two gateways at once is applied once: the other sees a
/// duplicate.
#[test]
fn the_same_report_on_two_gateways_at_once_is_applied_once() {
    let Some(url) = testdb::database() else {
        return;
    };
    let gateways: Vec<Store> = (0..2)
        .map(|_| Store::connect(&url, Vec::new()).unwrap())
        .collect();
    for round in 0..10u8 {
        // Pending first (the row stays), then final: both kinds race.
        let code = if round % 2 == 0 { 0x21 } else { 0x00 };
        let m = sent(&gateways[0], TO, &[100 + round], Utc::now());
        let (pdu, r) = report(100 + round, TO, code, u32::from(round));
        let now = Utc::now();
        let barrier = std::sync::Barrier::new(2);
        let outs: Vec<ReportOutcome> = std::thread::scope(|s| {
            let handles: Vec<_> = gateways
                .iter()
                .map(|g| {
                    let (barrier, pdu, r) = (&barrier, &pdu, &r);
                    s.spawn(move || {
                        barrier.wait();
                        g.apply_status_report("sim0", r, pdu, now).unwrap()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let matched = outs
            .iter()
            .filter(|o| matches!(o, ReportOutcome::Matched { .. }))
            .count();
        let duplicate = outs
            .iter()
            .filter(|o| **o == ReportOutcome::Duplicate)
            .count();
        assert_eq!((matched, duplicate), (1, 1), "round {round}: {outs:?}");
        let reports = gateways[1]
            .events(&m.id)
            .unwrap()
            .into_iter()
            .filter(|e| e.kind == "delivery_report")
            .count();
        assert_eq!(reports, 1, "round {round}");
        assert_eq!(gateways[1].unmatched_report_count(), 0);
    }
    assert_eq!(
        gateways[0].reports_awaited(),
        5,
        "the pending ones still await"
    );
}

/// A report PDU as the modem gives it, and its decoding.
fn report(mr: u8, to: &str, code: u8, second: u32) -> (Vec<u8>, StatusReport) {
    let ra = Address::parse_number("to", to).unwrap();
    let smsc = Address::parse_number("smsc", "+15550000000").unwrap();
    let scts = DateTime::parse_from_rfc3339("2026-03-02T10:00:00+01:00").unwrap();
    let dt = scts + TimeDelta::seconds(i64::from(second));
    let pdu = encode_status_report(Some(&smsc), mr, &ra, &scts, &dt, code);
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
    let (pdu, r) = report(42, "+12025550999", 0x00, 1);
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
