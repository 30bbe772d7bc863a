//! The life of a message: sent, scheduled, cancelled, retried, failed, expired, resumed.

use std::time::Duration;

use chrono::Utc;
use serde_json::json;

use crate::{sim, start, wait_modem_up};

const TO: &str = "+12025550123";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posted_message_reaches_the_network_and_its_history_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let sim = sim().await;
    let r = start(dir.path().join("store"), &sim, |_| {}).await;
    wait_modem_up(&r).await;
    let (code, m) = r
        .post("/v1/messages", &json!({"to": "+1 202 555 0123", "text": "Invoice INV-1042 is due Dec 1. Reply 1 for a call.", "metadata": {"invoice": "INV-1042"}}))
        .await;
    assert_eq!(code, 201, "{m}");
    assert_eq!(m["to"], TO, "normalised to E.164");
    assert_eq!(m["encoding"], "gsm7");
    assert_eq!(m["parts"], 1);
    let id = m["id"].as_str().unwrap().to_string();
    assert_eq!(
        r.wait_status(&id, "sent", Duration::from_secs(5)).await,
        "sent"
    );
    let sent = sim.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].to, TO);
    assert_eq!(
        sent[0].text,
        "Invoice INV-1042 is due Dec 1. Reply 1 for a call."
    );
    let (_, full) = r.get(&format!("/v1/messages/{id}")).await;
    assert_eq!(full["metadata"]["invoice"], "INV-1042");
    assert_eq!(
        full["attempts"][0]["message_references"][0]
            .as_u64()
            .unwrap(),
        u64::from(sent[0].message_references[0])
    );
    let statuses: Vec<&str> = full["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, vec!["queued", "sending", "sent"]);
    let (_, stats) = r.get("/v1/stats").await;
    assert_eq!(stats["counts"]["sent"], 1);
    assert_eq!(stats["queue_depth"], 0);
    r.stop().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_cancelled_and_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let sim = sim().await;
    let r = start(dir.path().join("store"), &sim, |_| {}).await;
    wait_modem_up(&r).await;
    let at = Utc::now() + chrono::Duration::milliseconds(1500);
    let (code, a) = r
        .post(
            "/v1/messages",
            &json!({"to": TO, "text": "scheduled", "send_at": at.to_rfc3339()}),
        )
        .await;
    assert_eq!(code, 201);
    assert_eq!(a["status"], "scheduled");
    let (_, b) = r
        .post("/v1/messages", &json!({"to": TO, "text": "to cancel", "send_at": (Utc::now() + chrono::Duration::hours(1)).to_rfc3339()}))
        .await;
    let a_id = a["id"].as_str().unwrap();
    let b_id = b["id"].as_str().unwrap();
    let (code, c) = r
        .post(&format!("/v1/messages/{b_id}/cancel"), &json!({}))
        .await;
    assert_eq!((code, c["status"].as_str()), (200, Some("cancelled")));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(r.status_of(a_id).await, "scheduled", "not before send_at");
    assert!(sim.sent().is_empty());
    assert_eq!(
        r.wait_status(a_id, "sent", Duration::from_secs(5)).await,
        "sent"
    );
    assert!(Utc::now() >= at);
    // Cancelling a sent message is a conflict.
    let (code, p) = r
        .post(&format!("/v1/messages/{a_id}/cancel"), &json!({}))
        .await;
    assert_eq!(code, 409, "{p}");
    assert_eq!(p["type"], "urn:smsgate:problem:not_cancellable");
    // Idempotency: the same key and body give the first answer, once.
    let send = |key: &'static str, text: &'static str| {
        r.http
            .post(format!("{}/v1/messages", r.base))
            .bearer_auth(crate::TOKEN)
            .header("Idempotency-Key", key)
            .json(&json!({"to": TO, "text": text}))
            .send()
    };
    let first: serde_json::Value = send("inv-1042-reminder-1", "once")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let again = send("inv-1042-reminder-1", "once").await.unwrap();
    assert_eq!(again.status().as_u16(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: serde_json::Value = again.json().await.unwrap();
    assert_eq!(first["id"], again["id"]);
    let other = send("inv-1042-reminder-1", "another body").await.unwrap();
    assert_eq!(other.status().as_u16(), 409);
    let id = first["id"].as_str().unwrap();
    assert_eq!(
        r.wait_status(id, "sent", Duration::from_secs(5)).await,
        "sent"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let texts: Vec<String> = sim.sent().into_iter().map(|m| m.text).collect();
    assert_eq!(
        texts,
        vec!["scheduled", "once"],
        "cancelled never sent, idempotent sent once"
    );
    r.stop().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retryable_errors_retry_permanent_ones_fail_and_nothing_blocks_the_queue() {
    let dir = tempfile::tempdir().unwrap();
    let sim = sim().await;
    let r = start(dir.path().join("store"), &sim, |_| {}).await;
    wait_modem_up(&r).await;
    sim.fail_next(1, 332);
    let (_, a) = r
        .post("/v1/messages", &json!({"to": TO, "text": "retry me"}))
        .await;
    let a_id = a["id"].as_str().unwrap().to_string();
    assert_eq!(
        r.wait_status(&a_id, "sent", Duration::from_secs(10)).await,
        "sent"
    );
    let (_, full) = r.get(&format!("/v1/messages/{a_id}")).await;
    let attempts = full["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0]["result"], "failed");
    assert!(attempts[0]["error"].as_str().unwrap().contains("332"));

    // A permanent error fails at once with the modem's reason.
    sim.fail_next(1, 8);
    let (_, b) = r
        .post("/v1/messages", &json!({"to": TO, "text": "barred"}))
        .await;
    let b_id = b["id"].as_str().unwrap().to_string();
    assert_eq!(
        r.wait_status(&b_id, "failed", Duration::from_secs(5)).await,
        "failed"
    );
    let (_, full) = r.get(&format!("/v1/messages/{b_id}")).await;
    assert!(
        full["status_reason"].as_str().unwrap().contains("barring"),
        "{full}"
    );

    // A message that keeps failing does not hold back the one behind it.
    sim.fail_next(3, 38);
    let (_, c) = r
        .post("/v1/messages", &json!({"to": TO, "text": "keeps failing"}))
        .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (_, d) = r
        .post("/v1/messages", &json!({"to": TO, "text": "behind it"}))
        .await;
    let d_id = d["id"].as_str().unwrap().to_string();
    let c_id = c["id"].as_str().unwrap().to_string();
    assert_eq!(
        r.wait_status(&d_id, "sent", Duration::from_secs(10)).await,
        "sent"
    );
    assert_eq!(
        r.wait_status(&c_id, "sent", Duration::from_secs(15)).await,
        "sent"
    );
    r.stop().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_and_expired_messages_are_never_sent() {
    let dir = tempfile::tempdir().unwrap();
    let sim = sim().await;
    let r = start(dir.path().join("store"), &sim, |_| {}).await;
    wait_modem_up(&r).await;
    // Due 10 minutes ago, may be at most 1 minute late.
    let (_, a) = r
        .post("/v1/messages", &json!({"to": TO, "text": "stale", "send_at": (Utc::now() - chrono::Duration::minutes(10)).to_rfc3339(), "max_lateness": "1m"}))
        .await;
    let a_id = a["id"].as_str().unwrap().to_string();
    assert_eq!(
        r.wait_status(&a_id, "expired", Duration::from_secs(5))
            .await,
        "expired"
    );
    let (_, full) = r.get(&format!("/v1/messages/{a_id}")).await;
    assert_eq!(full["status_reason"], "too_late");
    // Expires while the modem is busy with a slow message.
    sim.set_latency(Duration::from_millis(1500));
    let (_, b) = r
        .post("/v1/messages", &json!({"to": TO, "text": "slow"}))
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (_, c) = r
        .post("/v1/messages", &json!({"to": TO, "text": "expires", "expires_at": (Utc::now() + chrono::Duration::milliseconds(700)).to_rfc3339()}))
        .await;
    let b_id = b["id"].as_str().unwrap().to_string();
    let c_id = c["id"].as_str().unwrap().to_string();
    assert_eq!(
        r.wait_status(&b_id, "sent", Duration::from_secs(5)).await,
        "sent"
    );
    assert_eq!(
        r.wait_status(&c_id, "expired", Duration::from_secs(5))
            .await,
        "expired"
    );
    let texts: Vec<String> = sim.sent().into_iter().map(|m| m.text).collect();
    assert_eq!(texts, vec!["slow"]);
    r.stop().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_work_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let sim = sim().await;
    let r = start(store.clone(), &sim, |_| {}).await;
    let at = Utc::now() + chrono::Duration::seconds(2);
    let mut ids = Vec::new();
    for i in 0..5 {
        let (code, m) = r
            .post("/v1/messages", &json!({"to": TO, "text": format!("after restart {i}"), "send_at": at.to_rfc3339()}))
            .await;
        assert_eq!(code, 201);
        ids.push(m["id"].as_str().unwrap().to_string());
    }
    r.stop().await;
    assert!(sim.sent().is_empty());
    let r = start(store, &sim, |_| {}).await;
    for id in &ids {
        assert_eq!(
            r.wait_status(id, "sent", Duration::from_secs(10)).await,
            "sent"
        );
    }
    assert_eq!(sim.sent().len(), 5);
    r.stop().await;
    sim.shutdown().await;
}

/// Every key of real responses is a documented property, and every required one is present.
pub(crate) fn conforms(doc: &serde_json::Value, schema: &str, v: &serde_json::Value) {
    let s = &doc["components"]["schemas"][schema];
    let props = s["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("{schema} has properties"));
    let obj = v
        .as_object()
        .unwrap_or_else(|| panic!("{schema}: not an object: {v}"));
    for k in obj.keys() {
        assert!(
            props.contains_key(k),
            "{schema}: `{k}` is sent but not documented"
        );
    }
    for r in s["required"].as_array().into_iter().flatten() {
        let r = r.as_str().unwrap();
        assert!(
            obj.contains_key(r),
            "{schema}: required `{r}` missing in {v}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document_describes_the_real_responses() {
    let dir = tempfile::tempdir().unwrap();
    let sim = sim().await;
    let r = start(dir.path().join("store"), &sim, |_| {}).await;
    wait_modem_up(&r).await;
    let resp = r
        .http
        .get(format!("{}/openapi.json", r.base))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status().as_u16(),
        401,
        "the document needs a token like the API"
    );
    let (code, doc) = r.get("/openapi.json").await;
    assert_eq!(code, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let (_, m) = r
        .post("/v1/messages", &json!({"to": TO, "text": "documented"}))
        .await;
    conforms(&doc, "MessageView", &m);
    let id = m["id"].as_str().unwrap().to_string();
    assert_eq!(
        r.wait_status(&id, "sent", Duration::from_secs(5)).await,
        "sent"
    );
    let (_, full) = r.get(&format!("/v1/messages/{id}")).await;
    for a in full["attempts"].as_array().unwrap() {
        conforms(&doc, "Attempt", a);
    }
    for e in full["events"].as_array().unwrap() {
        conforms(&doc, "Event", e);
    }
    let (_, page) = r.get("/v1/messages").await;
    conforms(&doc, "MessagePage", &page);
    let (_, modems) = r.get("/v1/modems").await;
    conforms(&doc, "ModemList", &modems);
    conforms(&doc, "ModemView", &modems["modems"][0]);
    let (_, stats) = r.get("/v1/stats").await;
    conforms(&doc, "Stats", &stats);
    let (_, problem) = r
        .post("/v1/messages", &json!({"to": "x", "text": ""}))
        .await;
    conforms(&doc, "Problem", &problem);
    let (_, b) = r
        .post(
            "/v1/messages/batch",
            &json!({"messages": [{"to": TO, "text": "b", "send_at": "2099-01-01T00:00:00Z"}]}),
        )
        .await;
    conforms(&doc, "BatchCreated", &b);
    r.stop().await;
    sim.shutdown().await;
}
