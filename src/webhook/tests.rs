//! Deliveries to a real HTTP receiver on 127.0.0.1.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::DateTime;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::*;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    headers: HeaderMap,
    body: Bytes,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    fn id(&self) -> &str {
        self.header("webhook-id")
    }
}

/// What the receiver answers: per `webhook-id`, a list of statuses to answer first (200 once
/// they are used up), or a delay before answering.
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<HashMap<String, VecDeque<u16>>>>,
    slow: Arc<Mutex<HashMap<String, Duration>>>,
}

impl Receiver {
    fn answer(&self, id: &str, statuses: &[u16]) {
        self.script
            .lock()
            .unwrap()
            .insert(id.to_string(), statuses.iter().copied().collect());
    }

    fn got(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    fn ids(&self) -> Vec<String> {
        self.got().iter().map(|r| r.id().to_string()).collect()
    }
}

async fn hook(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> Response {
    let id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    r.got.lock().unwrap().push(Received { headers, body });
    let delay = r.slow.lock().unwrap().get(&id).copied();
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    let status = r
        .script
        .lock()
        .unwrap()
        .get_mut(&id)
        .and_then(VecDeque::pop_front)
        .unwrap_or(200);
    let status = StatusCode::from_u16(status).unwrap();
    if status.is_redirection() {
        (status, [("location", "/hook")], "moved").into_response()
    } else {
        (status, format!("answer {status}")).into_response()
    }
}

/// Starts a receiver on 127.0.0.1; returns it and its URL.
async fn receiver() -> (Receiver, String) {
    let r = Receiver::default();
    let app = Router::new()
        .route("/hook", post(hook))
        .with_state(r.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (r, format!("http://{addr}/hook"))
}

/// Fast retries: 20 ms doubling to 100 ms.
const FAST: Backoff = Backoff {
    base: Duration::from_millis(20),
    cap: Duration::from_millis(100),
};

fn config(url: Option<&str>) -> WebhookConfig {
    WebhookConfig {
        url: url.map(str::to_string),
        secret: Some(SECRET.into()),
        timeout: Duration::from_secs(2),
        ..WebhookConfig::default()
    }
}

/// The receivers listen on 127.0.0.1: the policy that lets tests reach them.
fn loopback() -> OutboundPolicy {
    OutboundPolicy::allowing_loopback()
}

fn setup(config: &WebhookConfig) -> (tempfile::TempDir, Store, Webhooks) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), 16).unwrap();
    let hooks = Webhooks::with_backoff(store.clone(), config, FAST, loopback()).unwrap();
    (dir, store, hooks)
}

/// Calls `deliver_due` until `done` holds, for at most 3 s.
async fn drain_until(hooks: &Webhooks, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(3), "timed out");
        hooks.deliver_due().await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn delivers_a_signed_event() {
    let (rx, url) = receiver().await;
    let (_dir, store, hooks) = setup(&config(Some(&url)));
    let data = json!({"message_id": "01J0000000000000000000000", "to": "+15550000001"});
    let entries = hooks
        .enqueue(EventType::MessageSent, data.clone(), None, "m1")
        .await
        .unwrap();
    assert_eq!(entries.len(), 1);
    let entry = &entries[0];
    assert!(entry.id.starts_with("evt_"));
    assert_eq!(hooks.deliver_due().await, 1);

    let got = rx.got();
    assert_eq!(got.len(), 1);
    let r = &got[0];
    assert_eq!(r.header("content-type"), "application/json");
    assert_eq!(
        r.header("user-agent"),
        format!("smsgate/{}", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(r.id(), entry.id);
    let ts: i64 = r.header("webhook-timestamp").parse().unwrap();
    assert!(
        (ts - Utc::now().timestamp()).abs() <= 5,
        "unix seconds of the attempt"
    );
    let body = std::str::from_utf8(&r.body).unwrap();
    assert_eq!(body, entry.body, "the exact stored body is sent");
    let signer = Signer::from_secret(SECRET).unwrap();
    let signature = r.header("webhook-signature");
    assert!(signature.starts_with("v1,"));
    assert_eq!(signature, signer.sign(r.id(), ts, body));
    assert!(signer.verify(r.id(), ts, body, signature));

    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["id"], entry.id.as_str());
    assert_eq!(v["type"], "message.sent");
    assert_eq!(v["data"], data);
    let created = v["created_at"].as_str().unwrap();
    assert!(DateTime::parse_from_rfc3339(created).is_ok(), "{created}");
    assert_eq!(v.as_object().unwrap().len(), 4);

    assert!(
        store.webhook(&entry.id).unwrap().is_none(),
        "delivered: gone"
    );
    assert_eq!(store.next_webhook_at().unwrap(), None);
    assert_eq!(hooks.deliver_due().await, 0);
}

#[tokio::test]
async fn retries_with_the_same_id_until_acknowledged() {
    let (rx, url) = receiver().await;
    let (_dir, store, hooks) = setup(&config(Some(&url)));
    let entry = hooks
        .enqueue(EventType::MessageDelivered, json!({"n": 1}), None, "m1")
        .await
        .unwrap()
        .remove(0);
    rx.answer(&entry.id, &[500, 500, 500]);
    assert_eq!(hooks.deliver_due().await, 1);
    let after_one = store.webhook(&entry.id).unwrap().unwrap();
    assert_eq!(after_one.attempts, 1);
    assert_eq!(after_one.last_status, Some(500));
    assert_eq!(
        after_one.last_error.as_deref(),
        Some("HTTP 500 Internal Server Error: answer 500 Internal Server Error")
    );
    assert_eq!(after_one.state, OutboxState::Pending);
    assert!(after_one.next_attempt_at > Utc::now() - TimeDelta::seconds(1));

    drain_until(&hooks, || rx.got().len() == 4).await;
    let got = rx.got();
    assert!(
        got.iter().all(|r| r.id() == entry.id),
        "same webhook-id every time"
    );
    assert!(
        got.iter().all(|r| r.body == entry.body.as_bytes()),
        "same body"
    );
    let signer = Signer::from_secret(SECRET).unwrap();
    for r in &got {
        let ts: i64 = r.header("webhook-timestamp").parse().unwrap();
        let body = std::str::from_utf8(&r.body).unwrap();
        assert!(signer.verify(r.id(), ts, body, r.header("webhook-signature")));
    }
    assert!(
        store.webhook(&entry.id).unwrap().is_none(),
        "acknowledged: gone"
    );
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(hooks.deliver_due().await, 0);
    assert_eq!(rx.got().len(), 4);
}

#[tokio::test]
async fn events_of_one_message_arrive_in_order() {
    let (rx, url) = receiver().await;
    // The message's own callback URL; no global one.
    let (_dir, _store, hooks) = setup(&config(None));
    let enqueue = |t, key: &'static str| {
        let hooks = hooks.clone();
        let url = url.clone();
        async move {
            hooks
                .enqueue(t, json!({"message_id": key}), Some(&url), key)
                .await
                .unwrap()
                .remove(0)
        }
    };
    let sent = enqueue(EventType::MessageSent, "m1").await;
    let delivered = enqueue(EventType::MessageDelivered, "m1").await;
    let other = enqueue(EventType::MessageSent, "m2").await;
    rx.answer(&sent.id, &[503]);

    // First round: m1's first event fails, its second waits; m2 is not held back.
    assert_eq!(hooks.deliver_due().await, 2);
    let mut ids = rx.ids();
    ids.sort();
    let mut want = vec![sent.id.clone(), other.id.clone()];
    want.sort();
    assert_eq!(ids, want);

    drain_until(&hooks, || rx.got().len() == 4).await;
    let m1: Vec<String> = rx.ids().into_iter().filter(|id| *id != other.id).collect();
    assert_eq!(
        m1,
        vec![sent.id.clone(), sent.id.clone(), delivered.id.clone()]
    );
}

#[tokio::test]
async fn dead_after_max_age_then_retried_on_demand() {
    let (rx, url) = receiver().await;
    let mut c = config(Some(&url));
    c.max_age = Duration::from_secs(1);
    let (_dir, store, hooks) = setup(&c);
    let started = Instant::now();
    let entry = hooks
        .enqueue(EventType::MessageFailed, json!({}), None, "m1")
        .await
        .unwrap()
        .remove(0);
    let later = hooks
        .enqueue(EventType::MessageReply, json!({}), None, "m1")
        .await
        .unwrap()
        .remove(0);
    rx.answer(&entry.id, &[500; 1000]);
    drain_until(&hooks, || {
        store
            .webhook(&entry.id)
            .unwrap()
            .is_some_and(|e| e.state == OutboxState::Dead)
    })
    .await;
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "retried for max_age"
    );
    let dead = store.webhook(&entry.id).unwrap().unwrap();
    assert!(dead.attempts >= 3, "{} attempts", dead.attempts);
    assert_eq!(dead.last_status, Some(500));
    assert_eq!(hooks.dead(10, None).unwrap(), vec![dead.clone()]);
    // Dead, it no longer holds back the message's next event.
    drain_until(&hooks, || rx.ids().contains(&later.id)).await;
    assert!(store.webhook(&later.id).unwrap().is_none());

    // The receiver is fixed; a retry on demand delivers it.
    rx.answer(&entry.id, &[]);
    let retried = hooks.retry(&entry.id).await.unwrap().unwrap();
    assert_eq!(retried.state, OutboxState::Pending);
    assert_eq!(retried.attempts, dead.attempts, "attempts are kept");
    assert_eq!(hooks.deliver_due().await, 1);
    assert!(store.webhook(&entry.id).unwrap().is_none());
    assert!(hooks.dead(10, None).unwrap().is_empty());
    assert_eq!(rx.got().last().unwrap().id(), entry.id);
    assert!(hooks.retry("evt_unknown").await.unwrap().is_none());
}

#[tokio::test]
async fn only_http_urls_are_accepted() {
    let (_dir, store, hooks) = setup(&config(None));
    for bad in [
        "ftp://billing.example/hook",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "http://",
        "/relative/hook",
        "not a url",
    ] {
        let e = hooks
            .enqueue(EventType::MessageSent, json!({}), Some(bad), "m1")
            .await
            .unwrap_err();
        assert!(matches!(e, WebhookError::InvalidUrl { .. }), "{bad}: {e}");
    }
    assert_eq!(store.next_webhook_at().unwrap(), None, "nothing stored");
    for bad in ["ftp://billing.example/hook", "gopher://x"] {
        let e = Webhooks::new(store.clone(), &config(Some(bad)), loopback())
            .err()
            .unwrap();
        assert!(matches!(e, WebhookError::Config(_)), "{bad}: {e}");
    }
    let no_secret = WebhookConfig {
        secret: Some("not-a-whsec".into()),
        ..WebhookConfig::default()
    };
    assert!(Webhooks::new(store.clone(), &no_secret, loopback()).is_err());
    assert!(
        hooks
            .enqueue(
                EventType::MessageSent,
                json!({}),
                Some("https://billing.example/h"),
                "m1"
            )
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn which_urls_get_an_event() {
    let global = "https://billing.example/global";
    let own = "https://billing.example/own";
    let urls = |entries: Vec<OutboxEntry>| entries.into_iter().map(|e| e.url).collect::<Vec<_>>();

    let (_dir, _store, hooks) = setup(&config(Some(global)));
    let ev = EventType::MessageSent;
    assert_eq!(
        urls(hooks.enqueue(ev, json!({}), Some(own), "m1").await.unwrap()),
        vec![own]
    );
    assert_eq!(
        urls(hooks.enqueue(ev, json!({}), None, "m2").await.unwrap()),
        vec![global]
    );
    let unmatched = EventType::InboundUnmatched;
    assert_eq!(
        urls(hooks.enqueue(unmatched, json!({}), None, "").await.unwrap()),
        vec![global]
    );

    let mut all = config(Some(global));
    all.all_events = true;
    let (_dir2, _store2, hooks) = setup(&all);
    let both = hooks.enqueue(ev, json!({}), Some(own), "m1").await.unwrap();
    assert_eq!(urls(both.clone()), vec![own, global]);
    assert_ne!(both[0].id, both[1].id, "one webhook-id per delivery");
    assert_eq!(
        urls(
            hooks
                .enqueue(ev, json!({}), Some(global), "m1")
                .await
                .unwrap()
        ),
        vec![global]
    );

    let (_dir3, store3, hooks) = setup(&config(None));
    assert!(
        hooks
            .enqueue(ev, json!({}), None, "m1")
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store3.next_webhook_at().unwrap(), None);
}

#[tokio::test]
async fn redirects_refusals_and_timeouts_are_failures() {
    let (rx, url) = receiver().await;
    let mut c = config(None);
    c.timeout = Duration::from_millis(300);
    let (_dir, store, hooks) = setup(&c);
    let redirected = hooks
        .enqueue(EventType::MessageSent, json!({}), Some(&url), "m1")
        .await
        .unwrap()
        .remove(0);
    rx.answer(&redirected.id, &[302]);
    let slow = hooks
        .enqueue(EventType::MessageSent, json!({}), Some(&url), "m2")
        .await
        .unwrap()
        .remove(0);
    rx.slow
        .lock()
        .unwrap()
        .insert(slow.id.clone(), Duration::from_secs(2));
    // A port nobody listens on.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/hook", l.local_addr().unwrap())
    };
    let refused = hooks
        .enqueue(EventType::MessageSent, json!({}), Some(&closed), "m3")
        .await
        .unwrap()
        .remove(0);

    assert_eq!(hooks.deliver_due().await, 3);
    let r = store.webhook(&redirected.id).unwrap().unwrap();
    assert_eq!((r.attempts, r.last_status), (1, Some(302)));
    assert_eq!(
        rx.ids().iter().filter(|id| **id == redirected.id).count(),
        1,
        "not followed"
    );
    let s = store.webhook(&slow.id).unwrap().unwrap();
    assert_eq!((s.attempts, s.last_status), (1, None));
    assert!(
        s.last_error.as_deref().unwrap().contains("timed out"),
        "{s:?}"
    );
    let f = store.webhook(&refused.id).unwrap().unwrap();
    assert_eq!((f.attempts, f.last_status), (1, None));
    let error = f.last_error.unwrap();
    assert!(!error.is_empty() && !error.contains(&closed), "{error}");
}

#[tokio::test]
async fn the_worker_delivers_retries_and_stops() {
    let (rx, url) = receiver().await;
    let (dir, store, hooks) = setup(&config(Some(&url)));
    // Left pending by a previous run.
    let old = hooks
        .enqueue(EventType::MessageSent, json!({"n": 0}), None, "m0")
        .await
        .unwrap()
        .remove(0);
    let first = hooks
        .enqueue(EventType::MessageSent, json!({"n": 1}), None, "m1")
        .await
        .unwrap()
        .remove(0);
    rx.answer(&first.id, &[500]);
    let cancel = CancellationToken::new();
    let worker = hooks.spawn_worker(cancel.clone());
    let second = hooks
        .enqueue(EventType::MessageDelivered, json!({"n": 2}), None, "m1")
        .await
        .unwrap()
        .remove(0);
    let start = Instant::now();
    while rx.got().len() < 4 {
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "worker too slow: {:?}",
            rx.ids()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let m1: Vec<String> = rx.ids().into_iter().filter(|id| *id != old.id).collect();
    assert_eq!(
        m1,
        vec![first.id.clone(), first.id.clone(), second.id.clone()]
    );
    assert!(rx.ids().contains(&old.id));
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(3), worker)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(store.next_webhook_at().unwrap(), None);
    drop(dir);
}

#[tokio::test]
async fn a_refused_destination_is_never_connected_to() {
    let (rx, url) = receiver().await;
    let port = reqwest::Url::parse(&url).unwrap().port().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), 16).unwrap();
    // A literal loopback address under the default policy; a name that resolves to loopback
    // under a policy that lets the name through and denies every address it has.
    let by_name = crate::outbound::OutboundConfig {
        allow_loopback: true,
        deny: vec!["127.0.0.0/8".into(), "::1".into()],
        ..Default::default()
    }
    .policy()
    .unwrap();
    for (policy, target) in [
        (OutboundPolicy::default(), url.clone()),
        (by_name, format!("http://localhost:{port}/hook")),
    ] {
        let hooks =
            Webhooks::with_backoff(store.clone(), &config(Some(&target)), FAST, policy).unwrap();
        let entry = hooks
            .enqueue(EventType::MessageSent, json!({"n": 1}), None, "m1")
            .await
            .unwrap()
            .remove(0);
        assert_eq!(hooks.deliver_due().await, 1);
        let e = store.webhook(&entry.id).unwrap().unwrap();
        assert_eq!(e.attempts, 1, "{target}");
        assert_eq!(e.last_status, None);
        assert_eq!(
            e.last_error.as_deref(),
            Some(crate::outbound::REFUSED),
            "{target}"
        );
        store.webhook_delivered(e.seq).unwrap();
    }
    assert!(
        rx.got().is_empty(),
        "the receiver was reached: {:?}",
        rx.ids()
    );
}

#[tokio::test]
async fn events_carry_no_hardware_identifiers() {
    let (rx, url) = receiver().await;
    let (_dir, _store, hooks) = setup(&config(Some(&url)));
    let data = json!({
        "message_id": "01J0000000000000000000000",
        "details": {"modem": "sim0", "imsi": "310150123456789", "imei": "356938035643809",
                    "ICCID": "8901260123456789012", "operator": "Example",
                    "history": [{"sim_imsi": "310150123456789"}]},
    });
    hooks
        .enqueue(EventType::MessageSent, data, None, "m1")
        .await
        .unwrap();
    assert_eq!(hooks.deliver_due().await, 1);
    let body = String::from_utf8(rx.got()[0].body.to_vec()).unwrap();
    for banned in [
        "imsi",
        "imei",
        "iccid",
        "310150123456789",
        "356938035643809",
        "8901260123456789012",
    ] {
        assert!(
            !body.to_ascii_lowercase().contains(banned),
            "{banned} in {body}"
        );
    }
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v["data"]["details"]["operator"], "Example",
        "the rest is kept"
    );
}
