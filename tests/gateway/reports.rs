//! Delivery reports: matched to the parts of sent messages, stored, then deleted from the SIM.

use std::time::Duration;

use serde_json::{Value, json};

use crate::flows::conforms;
use crate::{Running, sim, start, wait_modem_up};

const TO: &str = "+12025550123";

/// Long enough for three GSM 7-bit parts (307–459 characters).
fn three_part_text() -> String {
    "Reminder: invoice INV-2043 is past due. ".repeat(10)
}

async fn message(r: &Running, id: &str) -> Value {
    let (code, m) = r.get(&format!("/v1/messages/{id}")).await;
    assert_eq!(code, 200, "{m}");
    m
}

/// The message's `delivery_report` history entries, oldest first.
fn report_events(m: &Value) -> Vec<Value> {
    m["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "delivery_report")
        .cloned()
        .collect()
}

/// Waits until the message has `n` delivery report entries; returns it.
async fn wait_reports(r: &Running, id: &str, n: usize) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let m = message(r, id).await;
        if report_events(&m).len() >= n {
            return m;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} delivery reports, wanted {n}: {m}",
            report_events(&m).len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the simulated SIM's status report store is empty.
async fn wait_reports_deleted(sim: &smsgate::sim::SimHandle) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !sim.stored_reports().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "left on the SIM: {:?}",
            sim.stored_reports()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn post_body(text: &str) -> Value {
    json!({"to": TO, "text": text})
}

async fn post(r: &Running, text: &str) -> String {
    let (code, m) = r.post("/v1/messages", &post_body(text)).await;
    assert_eq!(code, 201, "{m}");
    assert_eq!(m["status_report"], true, "asked for by default");
    m["id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_is_delivered_once_every_part_is() {
    let dir = tempfile::tempdir().unwrap();
    let sim = sim().await;
    sim.set_status_reports(Some(Duration::from_millis(100)), 0x00);
    let r = start(dir.path().join("store"), &sim, |_| {}).await;
    wait_modem_up(&r).await;
    let single = post(&r, "Invoice INV-1042 is due Dec 1.").await;
    let multi = post(&r, &three_part_text()).await;
    for id in [&single, &multi] {
        assert_eq!(
            r.wait_status(id, "delivered", Duration::from_secs(15))
                .await,
            "delivered"
        );
    }

    let m = message(&r, &single).await;
    assert!(m["delivered_at"].is_string(), "{m}");
    assert_eq!(m["part_status"][0]["status"], "delivered");
    let reports = report_events(&m);
    assert_eq!(reports.len(), 1, "{m}");
    let d = &reports[0]["data"];
    assert_eq!(d["part"], 1);
    assert_eq!(d["tp_st"], 0);
    assert_eq!(d["category"], "delivered");
    assert_eq!(
        d["message_reference"],
        m["part_status"][0]["message_reference"]
    );
    assert!(d["discharge_time"].is_string() && d["smsc_timestamp"].is_string());
    assert_eq!(reports[0]["status"], "delivered");
    assert_eq!(
        m["events"].as_array().unwrap().last().unwrap()["kind"],
        "delivery_report"
    );

    // The simulated network sent one report per part; the message became delivered with the
    // last of them, not before.
    let m = message(&r, &multi).await;
    assert_eq!(m["parts"], 3);
    let reports = report_events(&m);
    let statuses: Vec<&str> = reports
        .iter()
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["sent", "sent", "delivered"], "{m}");
    let mut parts: Vec<u64> = reports
        .iter()
        .map(|e| e["data"]["part"].as_u64().unwrap())
        .collect();
    parts.sort_unstable();
    assert_eq!(parts, [1, 2, 3]);
    for e in &reports {
        let part = e["data"]["part"].as_u64().unwrap() as usize;
        assert_eq!(
            e["data"]["message_reference"],
            m["part_status"][part - 1]["message_reference"]
        );
    }
    assert!(
        m["part_status"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["status"] == "delivered")
    );
    let sent = sim.sent();
    assert_eq!(sent.len(), 2);
    assert_eq!(
        sent.iter()
            .map(|s| s.message_references.len())
            .sum::<usize>(),
        4
    );

    // The reports went through the SIM's report store and were deleted from it once stored.
    wait_reports_deleted(&sim).await;
    assert!(
        sim.commands()
            .iter()
            .any(|c| c.eq_ignore_ascii_case("AT+CPMS=\"SR\""))
    );
    let (_, stats) = r.get("/v1/stats").await;
    assert_eq!(stats["counts"]["delivered"], 2);
    assert_eq!(stats["counts"]["sent"], 0);
    assert_eq!(stats["unmatched_reports"], 0);
    r.stop().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_report_fails_the_message_with_the_networks_reason() {
    let dir = tempfile::tempdir().unwrap();
    let sim = sim().await;
    sim.set_status_reports(Some(Duration::from_millis(100)), 0x61);
    let r = start(dir.path().join("store"), &sim, |_| {}).await;
    wait_modem_up(&r).await;
    let busy = post(&r, "Invoice INV-1043 is due Dec 1.").await;
    assert_eq!(
        r.wait_status(&busy, "failed", Duration::from_secs(15))
            .await,
        "failed"
    );
    let m = message(&r, &busy).await;
    assert_eq!(
        m["status_reason"],
        "delivery failed: recipient busy (TP-ST 0x61)"
    );
    assert_eq!(m["part_status"][0]["status"], "failed");
    assert!(m["delivered_at"].is_null());
    assert_eq!(report_events(&m)[0]["data"]["tp_st"], 0x61);

    // Three parts, each refused: the first report fails the message, the others are still
    // recorded on it, and it stays failed with the first reason.
    sim.set_status_reports(Some(Duration::from_millis(100)), 0x41);
    let multi = post(&r, &three_part_text()).await;
    let m = wait_reports(&r, &multi, 3).await;
    assert_eq!(m["status"], "failed");
    assert_eq!(
        m["status_reason"],
        "delivery failed: incompatible destination (TP-ST 0x41)"
    );
    let reports = report_events(&m);
    let statuses: Vec<&str> = reports
        .iter()
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["failed", "failed", "failed"], "{m}");
    assert!(
        m["part_status"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["status"] == "failed"),
        "{m:#}"
    );
    wait_reports_deleted(&sim).await;
    let (_, stats) = r.get("/v1/stats").await;
    assert_eq!(stats["counts"]["failed"], 2);
    assert_eq!(stats["unmatched_reports"], 0);
    r.stop().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_unmatched_and_reports_that_wait_on_the_sim_while_the_daemon_is_down() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let sim = sim().await; // no automatic reports: this test hands them over itself
    let r = start(store.clone(), &sim, |_| {}).await;
    wait_modem_up(&r).await;
    let id = post(&r, "Invoice INV-1044 is due Dec 1.").await;
    assert_eq!(
        r.wait_status(&id, "sent", Duration::from_secs(10)).await,
        "sent"
    );
    let mr = sim.sent()[0].message_references[0];

    // Pending: the network keeps trying; history only.
    sim.inject_status_report(mr, TO, 0x21).unwrap();
    let m = wait_reports(&r, &id, 1).await;
    assert_eq!(m["status"], "sent");
    let e = &report_events(&m)[0];
    assert_eq!(e["data"]["category"], "pending");
    assert!(
        e["reason"].as_str().unwrap().contains("recipient busy"),
        "{e}"
    );
    wait_reports_deleted(&sim).await;

    // Reports that match nothing are kept, counted and listed, and leave the SIM too.
    let other = mr.wrapping_add(100);
    sim.inject_status_report(other, TO, 0x00).unwrap();
    sim.inject_status_report(mr, "+12025550999", 0x00).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let page = loop {
        let (code, page) = r.get("/v1/reports/unmatched").await;
        assert_eq!(code, 200, "{page}");
        if page["reports"].as_array().unwrap().len() == 2 {
            break page;
        }
        assert!(tokio::time::Instant::now() < deadline, "{page}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let listed = page["reports"].as_array().unwrap();
    // Newest first.
    assert_eq!(listed[0]["recipient"], "+12025550999");
    assert_eq!(listed[0]["message_reference"], mr);
    assert!(
        listed[0]["reason"]
            .as_str()
            .unwrap()
            .contains("another recipient"),
        "{page}"
    );
    assert_eq!(listed[1]["message_reference"], other);
    assert_eq!(listed[1]["modem"], "sim0");
    assert_eq!(listed[1]["tp_st"], 0);
    assert!(listed[1]["pdu"].as_str().unwrap().len() > 30);
    assert_eq!(
        message(&r, &id).await["status"],
        "sent",
        "not moved by them"
    );
    let (_, stats) = r.get("/v1/stats").await;
    assert_eq!(stats["unmatched_reports"], 2);
    let (_, one) = r.get("/v1/reports/unmatched?limit=1").await;
    assert_eq!(one["reports"].as_array().unwrap().len(), 1);
    let cursor = one["next_cursor"].as_str().unwrap().to_string();
    let (_, rest) = r
        .get(&format!("/v1/reports/unmatched?limit=1&cursor={cursor}"))
        .await;
    assert_eq!(rest["reports"][0]["id"], listed[1]["id"]);
    assert_eq!(r.get("/v1/reports/unmatched?limit=0").await.0, 422);
    assert_eq!(r.get("/v1/reports/unmatched?cursor=nope").await.0, 422);
    assert_eq!(r.get("/v1/reports/unmatched?what=1").await.0, 400);
    let (_, doc) = r.get("/openapi.json").await;
    conforms(&doc, "UnmatchedPage", &page);
    for u in listed {
        conforms(&doc, "UnmatchedReport", u);
    }
    conforms(&doc, "Stats", &stats);
    wait_reports_deleted(&sim).await;

    // The final report arrives while the daemon is down: it waits on the SIM and is applied
    // at the next start.
    r.stop().await;
    sim.inject_status_report(mr, TO, 0x00).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while sim.stored_reports().len() != 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not stored on the SIM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let r = start(store, &sim, |_| {}).await;
    assert_eq!(
        r.wait_status(&id, "delivered", Duration::from_secs(15))
            .await,
        "delivered"
    );
    wait_reports_deleted(&sim).await;
    let m = message(&r, &id).await;
    assert_eq!(report_events(&m).len(), 2);
    let (_, stats) = r.get("/v1/stats").await;
    assert_eq!(stats["unmatched_reports"], 2);
    r.stop().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_that_overtakes_the_record_of_its_send_is_matched() {
    // The network answers at once: each report reaches the gateway while the send it is about
    // may not be on disk yet. It waits for that record and is matched, never kept unmatched.
    let dir = tempfile::tempdir().unwrap();
    let sim = sim().await;
    sim.set_status_reports(Some(Duration::ZERO), 0x00);
    let r = start(dir.path().join("store"), &sim, |_| {}).await;
    wait_modem_up(&r).await;
    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(post(&r, &format!("Invoice INV-{} is due Dec 1.", 3000 + i)).await);
    }
    for id in &ids {
        assert_eq!(
            r.wait_status(id, "delivered", Duration::from_secs(30))
                .await,
            "delivered",
            "{id}"
        );
    }
    wait_reports_deleted(&sim).await;
    let (_, stats) = r.get("/v1/stats").await;
    assert_eq!(stats["counts"]["delivered"], 20, "{stats}");
    assert_eq!(stats["unmatched_reports"], 0, "{stats}");
    r.stop().await;
    sim.shutdown().await;
}
