//! The outbound policy end to end: callback and precheck URLs the policy refuses are refused by
//! the API; a callback whose name resolves to a refused address is never connected to and its
//! delivery says why; events carry no hardware identifiers.
//!
//! Only loopback is ever connected to: the private addresses below are accepted for messages
//! scheduled far ahead (no event is sent for them while the test runs).

use std::time::Duration;

use serde_json::{Value, json};
use smsgate::outbound::{OutboundConfig, OutboundPolicy, REFUSED};

use crate::replies::Receiver;
use crate::{Running, sim, start, wait_modem_up};

const LATER: &str = "2099-01-01T00:00:00Z";

fn policy(allow: &[&str], deny: &[&str]) -> OutboundPolicy {
    OutboundConfig {
        allow: allow.iter().map(|s| s.to_string()).collect(),
        deny: deny.iter().map(|s| s.to_string()).collect(),
        allow_loopback: false,
    }
    .policy()
    .unwrap()
}

/// `POST /v1/messages` with this callback URL, scheduled far ahead: its status and answer.
async fn with_callback(r: &Running, url: &str) -> (u16, Value) {
    r.post(
        "/v1/messages",
        &json!({"to": "+12025550123", "text": "hello", "send_at": LATER, "callback_url": url}),
    )
    .await
}

/// Asserts `url` is refused with a problem naming `callback_url` and the policy.
async fn refused(r: &Running, url: &str) {
    let (code, v) = with_callback(r, url).await;
    assert_eq!(code, 422, "{url}: {v}");
    assert_eq!(v["errors"][0]["field"], "callback_url", "{url}: {v}");
    let why = v["errors"][0]["detail"].as_str().unwrap_or("");
    assert!(why.starts_with(REFUSED), "{url}: {v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callback_urls_the_policy_refuses_are_refused_by_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let sim = sim().await;
    let r = start(dir.path().join("store"), &sim, |gw| {
        gw.outbound = OutboundPolicy::default();
    })
    .await;
    let port = r.base.rsplit(':').next().unwrap().to_string();
    for url in [
        "http://169.254.169.254/latest/meta-data/".to_string(),
        format!("http://[::ffff:127.0.0.1]:{port}/"),
        "http://[::ffff:127.0.0.1]:9/".to_string(),
        "http://[fd00:ec2::254]/".to_string(),
        "http://localhost:9/hook".to_string(),
        "http://127.0.0.1:9/hook".to_string(),
        "http://2130706433:9/hook".to_string(),
        "http://[::]:9/".to_string(),
        "http://0.0.0.0:9/".to_string(),
        "http://224.0.0.251/".to_string(),
        "http://100.100.100.200/latest/meta-data/".to_string(),
    ] {
        refused(&r, &url).await;
    }
    // The gateway's own API is still refused as such.
    let (code, v) = with_callback(&r, &format!("{}/v1/messages", r.base)).await;
    assert_eq!(code, 422, "{v}");
    assert!(v.to_string().contains("own API"), "{v}");
    // Private addresses are allowed by default: the billing system is on the LAN.
    for url in ["http://10.1.2.3/hook", "http://[fd12:3456::1]/hook"] {
        let (code, v) = with_callback(&r, url).await;
        assert_eq!(code, 201, "{url}: {v}");
    }
    // A precheck URL the same.
    let (code, v) = r
        .post(
            "/v1/reminders",
            &json!({"to": "+12025550123", "invoice": "INV-META", "amount": "1.00", "currency": "USD",
                    "due_date": "2099-01-10", "precheck_url": "http://169.254.169.254/latest/meta-data/"}),
        )
        .await;
    assert_eq!(code, 422, "{v}");
    assert_eq!(v["errors"][0]["field"], "precheck_url", "{v}");
    assert!(v.to_string().contains(REFUSED), "{v}");
    r.stop().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_narrows_and_deny_wins() {
    let dir = tempfile::tempdir().unwrap();
    let sim = sim().await;
    let r = start(dir.path().join("store"), &sim, |gw| {
        gw.outbound = policy(&["192.168.0.0/16"], &[]);
    })
    .await;
    refused(&r, "http://10.1.2.3/hook").await;
    refused(&r, "http://[::ffff:10.1.2.3]/hook").await;
    let (code, v) = with_callback(&r, "http://192.168.1.5/hook").await;
    assert_eq!(code, 201, "{v}");
    r.stop().await;

    let r = start(dir.path().join("store2"), &sim, |gw| {
        gw.outbound = policy(
            &["10.0.0.0/8", "billing.example.com"],
            &["10.9.0.0/16", "billing.example.com"],
        );
    })
    .await;
    refused(&r, "http://10.9.1.1/hook").await;
    refused(&r, "https://billing.example.com/hook").await;
    refused(&r, "http://192.168.1.5/hook").await;
    let (code, v) = with_callback(&r, "http://10.1.2.3/hook").await;
    assert_eq!(code, 201, "{v}");
    r.stop().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_resolving_to_a_refused_address_is_never_connected_to() {
    let dir = tempfile::tempdir().unwrap();
    let sim = sim().await;
    let rx = Receiver::start().await;
    // `localhost` passes the name check (loopback allowed) and every address it resolves to is
    // denied: only the resolver can stop it.
    let r = start(dir.path().join("store"), &sim, |gw| {
        gw.outbound = OutboundConfig {
            allow_loopback: true,
            deny: vec!["127.0.0.0/8".into(), "::1".into()],
            ..Default::default()
        }
        .policy()
        .unwrap();
        gw.webhooks.max_age = Duration::from_secs(2);
        gw.webhooks.retry_backoff = Duration::from_millis(200);
        gw.webhooks.retry_backoff_max = Duration::from_millis(400);
    })
    .await;
    wait_modem_up(&r).await;
    let url = format!("http://localhost:{}/hook", rx.addr.port());
    let (code, v) = r
        .post(
            "/v1/messages",
            &json!({"to": "+12025550123", "text": "hello", "callback_url": url}),
        )
        .await;
    assert_eq!(code, 201, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    assert_eq!(
        r.wait_status(&id, "sent", Duration::from_secs(10)).await,
        "sent"
    );
    // Retried until it is 2 s old, then dead, with the policy's words as its error.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let dead = loop {
        let (_, page) = r.get("/v1/webhooks/failed").await;
        if let Some(e) = page["webhooks"].as_array().and_then(|w| w.first()) {
            break e.clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "never dead");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(dead["last_error"], REFUSED, "{dead}");
    assert!(dead["attempts"].as_u64().unwrap() >= 1, "{dead}");
    assert!(rx.got().is_empty(), "the receiver was reached");
    r.stop().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sent_event_carries_no_hardware_identifiers() {
    let dir = tempfile::tempdir().unwrap();
    let sim = sim().await;
    let rx = Receiver::start().await;
    let r = start(dir.path().join("store"), &sim, |_| {}).await;
    wait_modem_up(&r).await;
    let (code, v) = r
        .post(
            "/v1/messages",
            &json!({"to": "+12025550123", "text": "hello", "callback_url": rx.url("cb")}),
        )
        .await;
    assert_eq!(code, 201, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    let got = rx
        .wait_for("message.sent", |g| {
            g.body["type"] == "message.sent" && g.body["data"]["message_id"] == id
        })
        .await;
    // The history keeps them: that is where they come from.
    let (_, history) = r.get(&format!("/v1/messages/{id}/history")).await;
    let history = history.to_string();
    let imsi = "001010123456789";
    let imei = "356938035643809";
    assert!(
        history.contains(imsi) && history.contains(imei),
        "{history}"
    );
    let body = got.body.to_string().to_ascii_lowercase();
    assert_eq!(got.body["data"]["details"]["modem"], "sim0", "{body}");
    for banned in ["imsi", "imei", "iccid", imsi, imei] {
        assert!(!body.contains(banned), "{banned} in {body}");
    }
    r.stop().await;
    sim.shutdown().await;
}

/// The real binary, configured as shipped (no `[outbound]` section): the cloud metadata URL is
/// refused with 422, a LAN address is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_binary_refuses_the_metadata_url() {
    let dir = tempfile::tempdir().unwrap();
    let sim = sim().await;
    let http = smsgate::tls::client_builder().build().unwrap();
    let (_, base, mut daemon) = crate::crash::daemon_with(dir.path(), &sim, "", &http).await;
    let post = |url: &'static str| {
        http.post(format!("{base}/v1/messages"))
            .bearer_auth(crate::TOKEN)
            .json(
                &json!({"to": "+12025550123", "text": "Invoice INV-1 is due",
                          "send_at": LATER, "callback_url": url}),
            )
            .send()
    };
    let refused = post("http://169.254.169.254/latest/meta-data/")
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 422);
    let body: Value = refused.json().await.unwrap();
    assert!(body.to_string().contains(REFUSED), "{body}");
    let lan = post("http://10.1.2.3/hooks/sms").await.unwrap();
    assert_eq!(lan.status().as_u16(), 201);
    let _ = daemon.kill().await;
    sim.shutdown().await;
}
