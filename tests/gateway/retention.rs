//! Retention and erasure end to end: the sweep takes its time from a [`ManualClock`] the test
//! moves, over the real HTTP API, the sled store on disk and the simulated modem on a PTY.

use std::time::Duration;

use chrono::Utc;
use serde_json::{Value, json};
use smsgate::dispatch::ManualClock;

use crate::{Running, TOKEN, sim, start, wait_modem_up};

const CUSTOMER: &str = "+12025550123";
const OTHER: &str = "+12025550124";

/// Polls `f` every 50 ms until it holds, for at most 10 s.
async fn eventually<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match f().await {
            Ok(()) => return,
            Err(e) if tokio::time::Instant::now() >= deadline => panic!("{what}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

fn sha256_hex(s: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(s.as_bytes()))
}

async fn post_keyed(r: &Running, key: &str, body: &Value) -> (u16, Value) {
    let resp = r
        .http
        .post(format!("{}/v1/messages", r.base))
        .bearer_auth(TOKEN)
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .unwrap();
    let code = resp.status().as_u16();
    (code, resp.json().await.unwrap_or(Value::Null))
}

/// A message scheduled far ahead, then cancelled: finished now, by the API's own rule.
async fn cancelled(r: &Running, to: &str, text: &str) -> String {
    let (code, v) = r
        .post(
            "/v1/messages",
            &json!({"to": to, "text": text, "send_at": (Utc::now() + chrono::Duration::days(3000)).to_rfc3339()}),
        )
        .await;
    assert_eq!(code, 201, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    let (code, v) = r
        .post(&format!("/v1/messages/{id}/cancel"), &json!({}))
        .await;
    assert_eq!(code, 200, "{v}");
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_messages_lose_their_text_then_go_with_a_tombstone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let sim = sim().await;
    let start_at = Utc::now();
    let clock = ManualClock::new(start_at);
    let c = clock.clock();
    // A receiver that refuses everything: deliveries die after max_age.
    let rx = crate::replies::Receiver::start().await;
    rx.fail_first(usize::MAX);
    let mut hooks = crate::replies::hooks(&rx);
    hooks.max_age = Duration::from_millis(600);
    let r = start(path.clone(), &sim, |gw| {
        gw.clock = c;
        gw.webhooks = hooks;
        gw.retention = smsgate::retention::Policy {
            message_text_after: Some(Duration::from_secs(90 * 86_400)),
            messages_after: Some(Duration::from_secs(730 * 86_400)),
            inbound_after: Some(Duration::from_secs(365 * 86_400)),
            idempotency_after: Some(Duration::from_secs(86_400)),
            dead_webhooks_after: Some(Duration::from_secs(30 * 86_400)),
            unmatched_after: Some(Duration::from_secs(30 * 86_400)),
            max_per_pass: 1000,
        };
    })
    .await;
    wait_modem_up(&r).await;

    let text = "Invoice INV-7 is due: 120.50 USD.";
    let done = cancelled(&r, CUSTOMER, text).await;
    // Scheduled far ahead and never finished: never touched.
    let (code, v) = r
        .post(
            "/v1/messages",
            &json!({"to": OTHER, "text": "Still waiting.", "send_at": (start_at + chrono::Duration::days(3000)).to_rfc3339()}),
        )
        .await;
    assert_eq!(code, 201, "{v}");
    let waiting = v["id"].as_str().unwrap().to_string();
    // An answer kept for an Idempotency-Key: replayed now, forgotten after a day.
    let body = json!({"to": OTHER, "text": "Keyed.", "send_at": (start_at + chrono::Duration::days(3000)).to_rfc3339()});
    let (code, first) = post_keyed(&r, "k-1", &body).await;
    assert_eq!(code, 201, "{first}");
    let (_, replay) = post_keyed(&r, "k-1", &body).await;
    assert_eq!(replay["id"], first["id"], "replayed within the day");
    // A text from a customer: acted on (unmatched), so the sweep may remove it later.
    sim.inject_inbound("+12025550177", "who is this?", false)
        .unwrap();
    eventually("the inbound text is acted on", || async {
        let (_, v) = r.get("/v1/inbound?limit=10").await;
        match v["messages"].as_array().and_then(|a| a.first()) {
            Some(m) if !m["handling"].is_null() => Ok(()),
            _ => Err(v.to_string()),
        }
    })
    .await;

    // A delivery report that matches no sent message.
    sim.inject_status_report(7, "+12025550999", 0x00).unwrap();
    eventually("the report is kept as unmatched", || async {
        let (_, v) = r.get("/v1/reports/unmatched").await;
        match v["reports"].as_array() {
            Some(a) if a.len() == 1 => Ok(()),
            _ => Err(v.to_string()),
        }
    })
    .await;
    eventually("a delivery is dead", || async {
        let (_, v) = r.get("/v1/webhooks/failed").await;
        match v["webhooks"].as_array() {
            Some(a) if !a.is_empty() => Ok(()),
            _ => Err(v.to_string()),
        }
    })
    .await;
    rx.fail_first(0);

    // 91 days on: the finished message's text is its hash, its history still verifies.
    clock.set(start_at + chrono::Duration::days(91));
    eventually("the text is redacted", || async {
        let (_, m) = r.get(&format!("/v1/messages/{done}")).await;
        if m["text"] == "" && !m["redacted"].is_null() {
            Ok(())
        } else {
            Err(m.to_string())
        }
    })
    .await;
    let (_, m) = r.get(&format!("/v1/messages/{done}")).await;
    assert_eq!(m["redacted"]["text_sha256"], sha256_hex(text), "{m}");
    assert_eq!(m["status"], "cancelled");
    let (_, h) = r.get(&format!("/v1/messages/{done}/history")).await;
    assert_eq!(h["verified"], true, "{h:#}");
    let events = h["events"].as_array().unwrap();
    assert_eq!(events[0]["data"]["text_sha256"], sha256_hex(text));
    assert!(events[0]["data"]["text"].is_null(), "{h:#}");
    assert_eq!(events.last().unwrap()["kind"], "text_redacted");
    assert!(!h.to_string().contains("INV-7"), "{h:#}");
    let (_, w) = r.get(&format!("/v1/messages/{waiting}")).await;
    assert_eq!(w["text"], "Still waiting.");
    assert_eq!(w["status"], "scheduled");
    // The idempotency answer went: the same key is a new request now (a replay until then:
    // the sweep's steps run one after the other).
    eventually("the idempotency answer is forgotten", || async {
        let (code, again) = post_keyed(&r, "k-1", &body).await;
        if code == 201 && again["id"] != first["id"] {
            Ok(())
        } else {
            Err(again.to_string())
        }
    })
    .await;
    let (_, v) = r.get("/v1/inbound?limit=10").await;
    assert_eq!(v["messages"].as_array().unwrap().len(), 1, "kept a year");
    // Dead deliveries and unmatched reports: kept 30 days.
    eventually("dead deliveries are removed", || async {
        let (_, v) = r.get("/v1/webhooks/failed").await;
        match v["webhooks"].as_array() {
            Some(a) if a.is_empty() => Ok(()),
            _ => Err(v.to_string()),
        }
    })
    .await;
    eventually("unmatched reports are removed", || async {
        let (_, v) = r.get("/v1/reports/unmatched").await;
        match v["reports"].as_array() {
            Some(a) if a.is_empty() => Ok(()),
            _ => Err(v.to_string()),
        }
    })
    .await;

    // Two years on: removed whole; the inbound text too.
    clock.set(start_at + chrono::Duration::days(731));
    eventually("the message is removed", || async {
        let (code, m) = r.get(&format!("/v1/messages/{done}")).await;
        if code == 404 {
            Ok(())
        } else {
            Err(m.to_string())
        }
    })
    .await;
    assert_eq!(r.get(&format!("/v1/messages/{done}/history")).await.0, 404);
    let (_, list) = r
        .get(&format!("/v1/messages?to=%2B{}", &CUSTOMER[1..]))
        .await;
    assert_eq!(list["messages"].as_array().map(Vec::len), Some(0), "{list}");
    eventually("the inbound text is removed", || async {
        let (_, v) = r.get("/v1/inbound?limit=10").await;
        match v["messages"].as_array() {
            Some(a) if a.is_empty() => Ok(()),
            _ => Err(v.to_string()),
        }
    })
    .await;
    let (_, w) = r.get(&format!("/v1/messages/{waiting}")).await;
    assert_eq!(w["text"], "Still waiting.", "unfinished: never touched");
    let metrics = r
        .http
        .get(format!("{}/metrics", r.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("smsgate_retention_records_total{kind=\"message\"}"),
        "{metrics}"
    );
    r.stop().await;
    sim.shutdown().await;

    // The removal is visible: a tombstone in the day's chain, with no number and no text.
    let store = crate::open_store(&path);
    let day = store
        .tombstones_on((start_at + chrono::Duration::days(731)).date_naive())
        .unwrap();
    assert!(day.verified, "{:?}", day.problem);
    let t = day
        .tombstones
        .iter()
        .find(|t| t.message_id == done)
        .unwrap_or_else(|| panic!("no tombstone: {day:?}"));
    assert_eq!(t.reason, "retention");
    assert_eq!(t.status.as_str(), "cancelled");
    let as_json = serde_json::to_string(&day.tombstones).unwrap();
    assert!(!as_json.contains("2025550123") && !as_json.contains("INV-7"));
    let v = store.verify_all_histories().unwrap();
    assert!(v.broken.is_empty(), "{v:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erased_number_is_nowhere_and_its_stop_still_holds() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let sim = sim().await;
    let rx = crate::replies::Receiver::start().await;
    let hooks = crate::replies::hooks(&rx);
    let r = start(path.clone(), &sim, |g| g.webhooks = hooks).await;
    wait_modem_up(&r).await;

    let (code, v) = r
        .post(
            "/v1/messages",
            &json!({"to": CUSTOMER, "text": "Your invoice INV-9 is ready.", "reply_options": {"1": "call_me"}}),
        )
        .await;
    assert_eq!(code, 201, "{v}");
    let first = v["id"].as_str().unwrap().to_string();
    assert_eq!(
        r.wait_status(&first, "sent", Duration::from_secs(10)).await,
        "sent"
    );
    let (code, v) = r
        .post("/v1/messages", &json!({"to": OTHER, "text": "Not you."}))
        .await;
    assert_eq!(code, 201, "{v}");
    let other = v["id"].as_str().unwrap().to_string();
    // A reply, then STOP.
    sim.inject_inbound(CUSTOMER, "1", false).unwrap();
    eventually("the reply is linked", || async {
        let (_, m) = r.get(&format!("/v1/messages/{first}")).await;
        match m["replies"].as_array() {
            Some(a) if !a.is_empty() => Ok(()),
            _ => Err(m.to_string()),
        }
    })
    .await;
    sim.inject_inbound(CUSTOMER, "STOP", false).unwrap();
    eventually("the number is opted out", || async {
        let (code, v) = r.get("/v1/opt-outs/%2B12025550123").await;
        if code == 200 {
            Ok(())
        } else {
            Err(v.to_string())
        }
    })
    .await;
    // The confirmation goes out (a message to the number too), and both texts are handled.
    eventually("the confirmation is sent and the texts handled", || async {
        let (_, list) = r.get("/v1/messages?to=%2B12025550123").await;
        let n = list["messages"].as_array().map_or(0, Vec::len);
        let sent = list["messages"]
            .as_array()
            .is_some_and(|a| a.iter().all(|m| m["status"] == "sent"));
        let (_, inb) = r.get("/v1/inbound?limit=10").await;
        let handled = inb["messages"]
            .as_array()
            .is_some_and(|a| a.len() == 2 && a.iter().all(|m| !m["handling"].is_null()));
        if n == 2 && sent && handled {
            Ok(())
        } else {
            Err(format!("{list} {inb}"))
        }
    })
    .await;

    // A number that is not a number is refused.
    let (code, v) = r.post("/v1/erasure", &json!({"number": "nope"})).await;
    assert_eq!(code, 422, "{v}");
    let (code, erased) = r.post("/v1/erasure", &json!({"number": CUSTOMER})).await;
    assert_eq!(code, 200, "{erased}");
    assert_eq!(erased["messages"], 2, "{erased}");
    assert_eq!(erased["replies"], 1, "{erased}");
    assert_eq!(erased["inbound"], 2, "{erased}");
    assert_eq!(erased["optouts"], 1, "{erased}");
    assert_eq!(erased["plans"], 0, "{erased}");

    // Nowhere in the API.
    assert_eq!(r.get(&format!("/v1/messages/{first}")).await.0, 404);
    assert_eq!(r.get(&format!("/v1/messages/{first}/history")).await.0, 404);
    for path in [
        "/v1/messages?limit=100",
        "/v1/inbound?limit=100",
        "/v1/opt-outs",
        "/v1/reminders",
        "/v1/webhooks/failed",
        "/v1/messages?to=%2B12025550123",
    ] {
        let (code, v) = r.get(path).await;
        assert_eq!(code, 200, "{path}: {v}");
        assert!(!v.to_string().contains("2025550123"), "{path}: {v}");
    }
    let (_, v) = r.get(&format!("/v1/messages/{other}")).await;
    assert_eq!(v["to"], OTHER, "another number's message stays");
    // The STOP outlives the erasure: a new message is refused as before.
    let (code, v) = r
        .post(
            "/v1/messages",
            &json!({"to": CUSTOMER, "text": "hello again"}),
        )
        .await;
    assert_eq!(code, 422, "{v}");
    assert_eq!(v["type"], "urn:smsgate:problem:opted_out", "{v}");
    assert!(v.to_string().contains("texted \\\"STOP\\\""), "{v}");
    // Asked by the number, the opt-out is there; listed, it is not (checked above).
    let (code, o) = r.get("/v1/opt-outs/%2B12025550123").await;
    assert_eq!(code, 200, "{o}");
    assert_eq!(o["source"], "keyword", "{o}");
    assert!(
        o["note"].as_str().is_some_and(|n| n.contains("erased")),
        "{o}"
    );
    // In the audit log: who asked and what went, never the number.
    let (code, audit) = r.get("/v1/audit").await;
    assert_eq!(code, 200, "{audit}");
    let entry = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "erasure")
        .cloned()
        .unwrap_or_else(|| panic!("no erasure in the audit log: {audit:#}"));
    assert_eq!(entry["actor"], "test", "{entry}");
    assert_eq!(entry["details"]["messages"], 2, "{entry}");
    assert!(entry["target"].is_null(), "{entry}");
    assert!(!audit.to_string().contains("2025550123"), "{audit:#}");
    // Again: nothing left to erase.
    let (code, again) = r.post("/v1/erasure", &json!({"number": CUSTOMER})).await;
    assert_eq!(code, 200);
    assert_eq!(again["messages"], 0);
    assert_eq!(again["optouts"], 0);
    r.stop().await;
    sim.shutdown().await;

    // Nowhere on disk either: every record of every tree, exported.
    if crate::sled_only(
        "an_erased_number_is_nowhere_and_its_stop_still_holds (its export)",
        "the export reads the embedded store's files",
    ) {
        return;
    }
    let store = smsgate::store::SledStore::open_offline(&path).unwrap();
    let mut out = Vec::new();
    store.export_jsonl(&mut out, Utc::now()).unwrap();
    let out = String::from_utf8(out).unwrap();
    assert!(!out.contains("2025550123"), "the number is still stored");
    assert!(
        !out.contains(&hex::encode("2025550123")),
        "the number is still in a key"
    );
    assert!(store.is_opted_out(CUSTOMER).unwrap());
    let v = store.verify_all_histories().unwrap();
    assert!(v.broken.is_empty(), "{v:?}");
    assert_eq!(v.tombstones, 2, "one per erased message");
    let c = store.check().unwrap();
    assert!(c.problems.is_empty(), "{:?}", c.problems);
}
