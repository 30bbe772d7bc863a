//! Answers, opt-outs and signed callbacks end to end: the simulator on a PTY plays the customer,
//! a real HTTP receiver on 127.0.0.1 plays the billing system and checks every signature with
//! the Standard Webhooks reference library.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::HeaderMap;
use serde_json::{Value, json};
use smsgate::sim::SimHandle;
use smsgate::webhook::WebhookConfig;

use crate::{Running, sim, start, wait_modem_up};

/// A base64 secret of 32 bytes, as `whsec_…`.
pub const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// One delivery as received.
#[derive(Debug, Clone)]
pub struct Got {
    pub path: String,
    pub webhook_id: String,
    pub body: Value,
    pub verified: bool,
}

/// The billing system's receiver: records every POST, checks its signature, and answers 500
/// to the first `fail_first` deliveries of each webhook-id.
#[derive(Clone)]
pub struct Receiver {
    got: Arc<Mutex<Vec<Got>>>,
    fail_first: Arc<Mutex<usize>>,
    answer: Arc<Mutex<Option<Answer>>>,
    pub addr: SocketAddr,
}

/// A scripted answer: status and JSON body for a request body.
type Answer = Box<dyn Fn(&Value) -> (u16, Value) + Send>;

impl Receiver {
    pub async fn start() -> Receiver {
        Receiver::start_on("127.0.0.1:0".parse().unwrap()).await
    }

    pub async fn start_on(addr: SocketAddr) -> Receiver {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let rx = Receiver {
            got: Arc::default(),
            fail_first: Arc::default(),
            answer: Arc::default(),
            addr,
        };
        let verifier = Arc::new(standardwebhooks::Webhook::new(SECRET).unwrap());
        let state = rx.clone();
        let app = axum::Router::new().route(
            "/{*path}",
            axum::routing::post(
                move |axum::extract::Path(path): axum::extract::Path<String>,
                      headers: HeaderMap,
                      body: axum::body::Bytes| {
                    let state = state.clone();
                    let verified = verifier.verify(&body, &headers).is_ok();
                    async move {
                        let webhook_id = headers
                            .get("webhook-id")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_string();
                        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                        let scripted = state.answer.lock().unwrap().as_ref().map(|f| f(&body));
                        let mut got = state.got.lock().unwrap();
                        let seen = got.iter().filter(|g| g.webhook_id == webhook_id).count();
                        got.push(Got {
                            path,
                            webhook_id,
                            body,
                            verified,
                        });
                        use axum::response::IntoResponse;
                        if let Some((code, json)) = scripted {
                            let code = axum::http::StatusCode::from_u16(code).unwrap();
                            (code, axum::Json(json)).into_response()
                        } else if seen < *state.fail_first.lock().unwrap() {
                            axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response()
                        } else {
                            axum::http::StatusCode::NO_CONTENT.into_response()
                        }
                    }
                },
            ),
        );
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        rx
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}/{path}", self.addr)
    }

    /// Answers every request with `f(body)` from now on.
    pub fn answer(&self, f: impl Fn(&Value) -> (u16, Value) + Send + 'static) {
        *self.answer.lock().unwrap() = Some(Box::new(f));
    }

    pub fn fail_first(&self, n: usize) {
        *self.fail_first.lock().unwrap() = n;
    }

    pub fn got(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }

    /// Waits until a delivery matching `f` arrived, at most 15 s.
    pub async fn wait_for(&self, what: &str, f: impl Fn(&Got) -> bool) -> Got {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(g) = self.got().into_iter().find(|g| f(g)) {
                return g;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no {what}; got {:#?}",
                self.got()
                    .iter()
                    .map(|g| (&g.path, &g.body["type"]))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The event types delivered to `path` about message `id`, in arrival order, each once.
    pub fn types_for(&self, path: &str, id: &str) -> Vec<String> {
        let mut seen = std::collections::HashSet::new();
        self.got()
            .into_iter()
            .filter(|g| g.path == path && g.body["data"]["message_id"] == id)
            .filter(|g| seen.insert(g.webhook_id.clone()))
            .map(|g| g.body["type"].as_str().unwrap_or("").to_string())
            .collect()
    }
}

pub fn hooks(rx: &Receiver) -> WebhookConfig {
    WebhookConfig {
        url: Some(rx.url("global")),
        secret: Some(SECRET.into()),
        retry_backoff: Duration::from_millis(100),
        retry_backoff_max: Duration::from_millis(400),
        ..WebhookConfig::default()
    }
}

const CUSTOMER: &str = "+12025550123";

async fn send(r: &Running, body: Value) -> String {
    let (code, v) = r.post("/v1/messages", &body).await;
    assert_eq!(code, 201, "{v}");
    v["id"].as_str().unwrap().to_string()
}

async fn wait_message(r: &Running, id: &str, what: &str, f: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (_, m) = r.get(&format!("/v1/messages/{id}")).await;
        if f(&m) {
            return m;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what}: {m:#}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn texts_to(sim: &SimHandle, to: &str) -> Vec<String> {
    sim.sent()
        .into_iter()
        .filter(|s| s.to == to)
        .map(|s| s.text)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_reach_the_callback_signed_and_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let sim = sim().await;
    let rx = Receiver::start().await;
    let cfg = hooks(&rx);
    let r = start(dir.path().join("store"), &sim, |g| g.webhooks = cfg).await;
    wait_modem_up(&r).await;
    let id = send(
        &r,
        json!({"to": CUSTOMER, "text": "Invoice INV-1042 is past due. Reply 1 for a call, 2 to pay the minimum.",
               "reply_options": {"1": "call_me", "2": "pay_minimum"},
               "callback_url": rx.url("billing"), "metadata": {"invoice": "INV-1042"}}),
    )
    .await;
    assert_eq!(
        r.wait_status(&id, "sent", Duration::from_secs(10)).await,
        "sent"
    );
    sim.inject_inbound(CUSTOMER, " #1. ", false).unwrap();
    wait_message(&r, &id, "first reply", |m| {
        m["replies"].as_array().is_some_and(|a| !a.is_empty())
    })
    .await;
    sim.inject_inbound(CUSTOMER, "Two", false).unwrap();
    sim.inject_inbound(CUSTOMER, "what is this about?", false)
        .unwrap();
    let m = wait_message(&r, &id, "three replies", |m| {
        m["replies"].as_array().is_some_and(|a| a.len() == 3)
    })
    .await;
    let replies = m["replies"].as_array().unwrap();
    assert_eq!(
        (&replies[0]["choice"], &replies[0]["action"]),
        (&json!("1"), &json!("call_me"))
    );
    assert_eq!(
        (&replies[1]["choice"], &replies[1]["action"]),
        (&json!("2"), &json!("pay_minimum"))
    );
    assert_eq!(
        (&replies[2]["choice"], &replies[2]["action"]),
        (&Value::Null, &json!("unrecognised"))
    );
    assert!(
        replies[0]["matched_by"]
            .as_str()
            .unwrap()
            .contains("reply window")
    );

    // The inbound record links back.
    let inbound_id = replies[0]["inbound_id"].as_str().unwrap();
    let (_, inb) = r.get(&format!("/v1/inbound/{inbound_id}")).await;
    assert_eq!(
        (&inb["in_reply_to"], &inb["handling"]),
        (&json!(id), &json!("reply"))
    );

    // The message's own callback gets sent, reply 1, reply 2, the unrecognised one, in order,
    // every delivery signed; the global URL gets none of them (the message has its own).
    rx.wait_for("third reply event", |g| {
        g.body["type"] == "message.reply" && g.body["data"]["reply"]["action"] == "unrecognised"
    })
    .await;
    assert_eq!(
        rx.types_for("billing", &id),
        [
            "message.sent",
            "message.reply",
            "message.reply",
            "message.reply"
        ]
    );
    let reply_events: Vec<Got> = rx
        .got()
        .into_iter()
        .filter(|g| g.body["type"] == "message.reply")
        .collect();
    let choices: Vec<&Value> = reply_events
        .iter()
        .map(|g| &g.body["data"]["reply"]["choice"])
        .collect();
    assert_eq!(choices, [&json!("1"), &json!("2"), &Value::Null]);
    assert!(
        rx.got().iter().all(|g| g.verified),
        "unsigned or badly signed delivery"
    );
    assert!(rx.got().iter().all(|g| g.path == "billing"));
    assert_eq!(
        reply_events[0].body["data"]["metadata"]["invoice"],
        "INV-1042"
    );

    // A text from a number nobody asked goes to the global URL as inbound.unmatched.
    sim.inject_inbound("+12025550124", "hello?", false).unwrap();
    let g = rx
        .wait_for("inbound.unmatched", |g| {
            g.body["type"] == "inbound.unmatched"
        })
        .await;
    assert_eq!(
        (g.path.as_str(), &g.body["data"]["text"]),
        ("global", &json!("hello?"))
    );

    // The history holds it all and its chain verifies.
    let (code, h) = r.get(&format!("/v1/messages/{id}/history")).await;
    assert_eq!(code, 200);
    assert_eq!(h["verified"], true, "{h:#}");
    let kinds: Vec<&str> = h["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "reply").count(),
        3,
        "{kinds:?}"
    );
    assert_eq!(kinds[0], "accepted");
    assert!(kinds.contains(&"sent"));
    let events = h["events"].as_array().unwrap();
    for w in events.windows(2) {
        assert_eq!(w[1]["prev"], w[0]["hash"]);
    }
    // Export by invoice, as CSV and JSONL.
    let r2 = r
        .http
        .get(format!(
            "{}/v1/history/export?invoice=INV-1042&format=csv",
            r.base
        ))
        .bearer_auth(crate::TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r2.status(), 200);
    let csv = r2.text().await.unwrap();
    assert_eq!(csv.lines().count(), events.len() + 1, "{csv}");
    assert!(csv.starts_with("message_id,to,invoice,seq"));
    let (code, _) = r.get("/v1/history/export").await;
    assert_eq!(code, 422);
    r.stop().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_blocks_and_start_allows_again() {
    let dir = tempfile::tempdir().unwrap();
    let sim = sim().await;
    let rx = Receiver::start().await;
    let cfg = hooks(&rx);
    let r = start(dir.path().join("store"), &sim, |g| g.webhooks = cfg).await;
    wait_modem_up(&r).await;
    let first = send(
        &r,
        json!({"to": CUSTOMER, "text": "Your invoice is ready."}),
    )
    .await;
    assert_eq!(
        r.wait_status(&first, "sent", Duration::from_secs(10)).await,
        "sent"
    );
    // Scheduled for later: cancelled by the STOP.
    let later = send(
        &r,
        json!({"to": CUSTOMER, "text": "Reminder: due tomorrow.", "send_at": (chrono::Utc::now() + chrono::Duration::hours(3)).to_rfc3339()}),
    )
    .await;

    sim.inject_inbound(CUSTOMER, "Stop!", false).unwrap();
    rx.wait_for("optout.changed", |g| g.body["type"] == "optout.changed")
        .await;
    let m = wait_message(&r, &later, "cancelled", |m| m["status"] == "cancelled").await;
    assert_eq!(m["status_reason"], "opted_out");
    // The opt-out is in the history of the message that went out before it.
    let (_, h) = r.get(&format!("/v1/messages/{first}/history")).await;
    assert_eq!(h["verified"], true);
    let opt = h["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "opt_out")
        .cloned()
        .unwrap_or_else(|| panic!("no opt_out entry: {h:#}"));
    assert_eq!(opt["data"]["keyword"], "Stop!");
    // Confirmed once, even when STOP comes again.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while texts_to(&sim, CUSTOMER).len() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no confirmation: {:?}",
            texts_to(&sim, CUSTOMER)
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(texts_to(&sim, CUSTOMER)[1].contains("unsubscribed"));
    sim.inject_inbound(CUSTOMER, "STOP", false).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, page) = r.get("/v1/inbound?limit=10").await;
        let msgs = page["messages"].as_array().cloned().unwrap_or_default();
        if msgs.iter().any(|m| m["handling"] == "repeat_opt_out") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{page:#}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        texts_to(&sim, CUSTOMER).len(),
        2,
        "a second confirmation was sent"
    );

    // The next POST is refused, and in a batch per item.
    let (code, v) = r
        .post(
            "/v1/messages",
            &json!({"to": "+1 202 555 0123", "text": "hi"}),
        )
        .await;
    assert_eq!(code, 422, "{v}");
    assert_eq!(v["type"], "urn:smsgate:problem:opted_out");
    assert!(v["detail"].as_str().unwrap().contains("opted out"), "{v}");
    let (code, v) = r
        .post(
            "/v1/messages/batch",
            &json!({"messages": [
            {"to": "+12025550124", "text": "fine"},
            {"to": CUSTOMER, "text": "refused"}]}),
        )
        .await;
    assert_eq!(code, 422, "{v}");
    assert_eq!(v["errors"][0]["field"], "messages[1].to");
    let (_, list) = r.get("/v1/opt-outs").await;
    assert_eq!(list["opt_outs"][0]["number"], CUSTOMER);
    assert_eq!(list["opt_outs"][0]["source"], "keyword");

    // START opts back in (confirmed), and messages go again.
    sim.inject_inbound(CUSTOMER, "start", false).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while r.get(&format!("/v1/opt-outs/{}", "%2B12025550123")).await.0 != 404 {
        assert!(tokio::time::Instant::now() < deadline, "still opted out");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let again = send(&r, json!({"to": CUSTOMER, "text": "Welcome back."})).await;
    assert_eq!(
        r.wait_status(&again, "sent", Duration::from_secs(10)).await,
        "sent"
    );
    assert!(
        texts_to(&sim, CUSTOMER)
            .iter()
            .any(|t| t.contains("subscribed again"))
    );

    // The billing system syncs its own records through the API; no text goes out for those.
    let sent_before = sim.sent().len();
    let (code, v) = r
        .post(
            "/v1/opt-outs",
            &json!({"numbers": ["+12025550125", "(202) 555-0126x"], "note": "asked by phone"}),
        )
        .await;
    assert_eq!(code, 422, "{v}");
    let (code, v) = r
        .post(
            "/v1/opt-outs",
            &json!({"numbers": ["+12025550125", "+1 202 555 0126"], "note": "asked by phone"}),
        )
        .await;
    assert_eq!((code, &v["added"]), (201, &json!(2)), "{v}");
    let (code, _) = r
        .post("/v1/opt-outs", &json!({"number": "+12025550125"}))
        .await;
    assert_eq!(code, 200, "already opted out");
    let (code, _) = r
        .post("/v1/messages", &json!({"to": "+12025550126", "text": "x"}))
        .await;
    assert_eq!(code, 422);
    let del = r
        .http
        .delete(format!("{}/v1/opt-outs/%2B12025550126", r.base))
        .bearer_auth(crate::TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 200);
    let (code, _) = r
        .post("/v1/messages", &json!({"to": "+12025550126", "text": "x"}))
        .await;
    assert_eq!(code, 201);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        sim.sent()
            .iter()
            .skip(sent_before)
            .filter(|s| s.to == "+12025550125")
            .count(),
        0
    );
    let changes: Vec<Value> = rx
        .got()
        .into_iter()
        .filter(|g| g.body["type"] == "optout.changed")
        .map(|g| g.body["data"].clone())
        .collect();
    assert!(
        changes
            .iter()
            .any(|d| d["number"] == CUSTOMER && d["opted_out"] == false)
    );
    assert!(
        changes
            .iter()
            .any(|d| d["number"] == "+12025550126" && d["source"] == "api")
    );
    r.stop().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_question_waits_for_the_first_answer() {
    let dir = tempfile::tempdir().unwrap();
    let sim = sim().await;
    let r = start(dir.path().join("store"), &sim, |_| {}).await;
    wait_modem_up(&r).await;
    let ask = |inv: &str| {
        json!({"to": CUSTOMER, "text": format!("{inv}: reply 1 for a call, 2 to pay the minimum."),
               "reply_options": {"1": "call_me", "2": "pay_minimum"}})
    };
    let a = send(&r, ask("INV-1")).await;
    assert_eq!(
        r.wait_status(&a, "sent", Duration::from_secs(10)).await,
        "sent"
    );
    let b = send(&r, ask("INV-2")).await;
    let held = wait_message(&r, &b, "held", |m| m["status_reason"] == "awaiting_reply").await;
    assert_eq!(held["status"], "queued");
    assert_eq!(
        texts_to(&sim, CUSTOMER).len(),
        1,
        "the second question went out"
    );
    // A message without reply options is not held.
    let plain = send(
        &r,
        json!({"to": CUSTOMER, "text": "Thank you for your payment."}),
    )
    .await;
    assert_eq!(
        r.wait_status(&plain, "sent", Duration::from_secs(10)).await,
        "sent"
    );

    // The answer goes to the first; the second then goes out and takes the next answer.
    sim.inject_inbound(CUSTOMER, "1", false).unwrap();
    let m = wait_message(&r, &a, "reply on a", |m| {
        m["replies"].as_array().is_some_and(|x| x.len() == 1)
    })
    .await;
    assert_eq!(m["replies"][0]["action"], "call_me");
    assert_eq!(
        r.wait_status(&b, "sent", Duration::from_secs(10)).await,
        "sent"
    );
    sim.inject_inbound(CUSTOMER, "2", false).unwrap();
    let m = wait_message(&r, &b, "reply on b", |m| {
        m["replies"].as_array().is_some_and(|x| x.len() == 1)
    })
    .await;
    assert_eq!(m["replies"][0]["action"], "pay_minimum");
    let (_, a_now) = r.get(&format!("/v1/messages/{a}")).await;
    assert_eq!(a_now["replies"].as_array().unwrap().len(), 1);
    let (_, h) = r.get(&format!("/v1/messages/{b}/history")).await;
    let kinds: Vec<&str> = h["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"held") && kinds.contains(&"released"),
        "{kinds:?}"
    );
    assert_eq!(h["verified"], true);
    r.stop().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_receiver_gets_the_event_until_it_acknowledges() {
    let dir = tempfile::tempdir().unwrap();
    let sim = sim().await;
    let rx = Receiver::start().await;
    rx.fail_first(3);
    let cfg = hooks(&rx);
    let r = start(dir.path().join("store"), &sim, |g| g.webhooks = cfg).await;
    wait_modem_up(&r).await;
    let id = send(
        &r,
        json!({"to": CUSTOMER, "text": "Payment received, thank you."}),
    )
    .await;
    assert_eq!(
        r.wait_status(&id, "sent", Duration::from_secs(10)).await,
        "sent"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while rx.got().len() < 4 {
        assert!(tokio::time::Instant::now() < deadline, "{:?}", rx.got());
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    // Nothing more comes once it answered 2xx.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let got = rx.got();
    assert_eq!(got.len(), 4, "{got:#?}");
    let ids: std::collections::HashSet<_> = got.iter().map(|g| g.webhook_id.clone()).collect();
    assert_eq!(
        ids.len(),
        1,
        "one event, the same webhook-id on every attempt"
    );
    assert!(
        got.iter()
            .all(|g| g.verified && g.body["type"] == "message.sent")
    );
    let (code, failed) = r.get("/v1/webhooks/failed").await;
    assert_eq!(
        (code, failed["webhooks"].as_array().unwrap().len()),
        (200, 0)
    );
    r.stop().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_deliveries_are_listed_and_retried() {
    let dir = tempfile::tempdir().unwrap();
    let sim = sim().await;
    let rx = Receiver::start().await;
    rx.fail_first(usize::MAX);
    let mut cfg = hooks(&rx);
    cfg.max_age = Duration::from_millis(600);
    let r = start(dir.path().join("store"), &sim, |g| g.webhooks = cfg).await;
    wait_modem_up(&r).await;
    let id = send(&r, json!({"to": CUSTOMER, "text": "Hello."})).await;
    assert_eq!(
        r.wait_status(&id, "sent", Duration::from_secs(10)).await,
        "sent"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let dead = loop {
        let (_, v) = r.get("/v1/webhooks/failed").await;
        if let Some(d) = v["webhooks"].as_array().and_then(|a| a.first()).cloned() {
            break d;
        }
        assert!(tokio::time::Instant::now() < deadline, "never dead: {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(dead["state"], "dead");
    assert_eq!(dead["last_status"], 500);
    rx.fail_first(0);
    let before = rx.got().len();
    let (code, v) = r
        .post(
            &format!("/v1/webhooks/{}/retry", dead["id"].as_str().unwrap()),
            &json!({}),
        )
        .await;
    assert_eq!(code, 200, "{v}");
    rx.wait_for("the retried delivery", |g| g.webhook_id == dead["id"])
        .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while rx.got().len() == before {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (_, v) = r.get("/v1/webhooks/failed").await;
        if v["webhooks"].as_array().is_some_and(|a| a.is_empty()) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{v}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(
        r.post("/v1/webhooks/evt_nope/retry", &json!({})).await.0,
        404
    );
    r.stop().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_verify_finds_a_changed_entry() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let sim = sim().await;
    let r = start(store.clone(), &sim, |_| {}).await;
    wait_modem_up(&r).await;
    let id = send(&r, json!({"to": CUSTOMER, "text": "Invoice INV-9: $10 due Dec 1.", "metadata": {"invoice": "INV-9"}})).await;
    assert_eq!(
        r.wait_status(&id, "sent", Duration::from_secs(10)).await,
        "sent"
    );
    r.stop().await;
    sim.shutdown().await;
    if crate::sled_only(
        "history_verify_finds_a_changed_entry",
        "`history verify --store` reads and the test edits the embedded store's directory",
    ) {
        return;
    }

    let cli = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_smsgate"))
            .args(args)
            .output()
            .unwrap()
    };
    let s = store.to_str().unwrap();
    let ok = cli(&["history", "verify", "--store", s]);
    let out = String::from_utf8_lossy(&ok.stdout);
    assert_eq!(ok.status.code(), Some(0), "{out}");
    assert!(
        out.contains("1 message(s)") && out.contains("every chain holds"),
        "{out}"
    );
    let export = cli(&[
        "history",
        "export",
        "--store",
        s,
        "--invoice",
        "INV-9",
        "--format",
        "csv",
    ]);
    let csv = String::from_utf8_lossy(&export.stdout);
    assert!(csv.lines().count() >= 4, "{csv}");
    assert!(csv.contains("Invoice INV-9: $10 due Dec 1."));

    // Someone edits an entry in the store: verify says which message and exits 3.
    {
        let db = sled::open(&store).unwrap();
        let events = db.open_tree("events").unwrap();
        let (k, v) = events.iter().next().unwrap().unwrap();
        let mut e: Value = serde_json::from_slice(&v).unwrap();
        e["reason"] = json!("nothing happened here");
        events.insert(k, serde_json::to_vec(&e).unwrap()).unwrap();
        db.flush().unwrap();
    }
    let bad = cli(&["history", "verify", "--store", s]);
    let out = String::from_utf8_lossy(&bad.stdout);
    assert_eq!(bad.status.code(), Some(3), "{out}");
    assert!(out.contains(&format!("BROKEN {id}")), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_and_failure_reports_reach_the_callback_after_sent() {
    let dir = tempfile::tempdir().unwrap();
    let sim = sim().await;
    sim.set_status_reports(Some(Duration::from_millis(100)), 0x00);
    let rx = Receiver::start().await;
    let cfg = hooks(&rx);
    let r = start(dir.path().join("store"), &sim, |g| g.webhooks = cfg).await;
    wait_modem_up(&r).await;
    let long = "Invoice INV-5 for unit 4B: $120.50 is due on December 1. ".repeat(4);
    let ok = send(
        &r,
        json!({"to": CUSTOMER, "text": long, "callback_url": rx.url("billing")}),
    )
    .await;
    rx.wait_for("message.delivered", |g| {
        g.body["type"] == "message.delivered"
    })
    .await;
    assert_eq!(
        rx.types_for("billing", &ok),
        ["message.sent", "message.delivered"]
    );
    // recipient busy, given up: a permanent failure report.
    sim.set_status_reports(Some(Duration::from_millis(100)), 0x61);
    let bad = send(
        &r,
        json!({"to": "+12025550124", "text": "Reminder", "callback_url": rx.url("billing")}),
    )
    .await;
    let g = rx
        .wait_for("message.failed", |g| g.body["type"] == "message.failed")
        .await;
    assert_eq!(
        rx.types_for("billing", &bad),
        ["message.sent", "message.failed"]
    );
    assert!(
        g.body["data"]["status_reason"]
            .as_str()
            .unwrap()
            .contains("TP-ST 0x61"),
        "{:#}",
        g.body
    );
    assert!(rx.got().iter().all(|g| g.verified));
    r.stop().await;
    sim.shutdown().await;
}
