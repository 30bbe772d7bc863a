//! The Twilio-compatible door, driven by Twilio's own Python helper library (`twilio` from
//! PyPI, pinned, in `target/twilio-venv`): `tests/twilio/client.py` creates, fetches, lists
//! and cancels messages through it and checks the errors; `tests/twilio/receiver.py` is an
//! application's webhook endpoint that checks every status callback and incoming message with
//! the library's own `RequestValidator` and answers an incoming text with TwiML. The gateway
//! runs in-process over the simulator on a PTY.
//!
//! Skipped, with a message, when the library cannot be installed (no `python3`, no PyPI),
//! unless `SMSGATE_REQUIRE_TWILIO=1` (`.ci/run` sets it).

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use smsgate::sim::{SimConfig, Simulator};
use tokio::io::AsyncBufReadExt;

use crate::crash::free_port;

const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";
const AUTH_TOKEN: &str = "twilio-auth-token-0123456789";

/// The python of the venv with the `twilio` library, or `None` (with a message) to skip.
fn python() -> Option<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new("bash")
        .arg(root.join("tests/twilio/venv.sh"))
        .output();
    let required = std::env::var("SMSGATE_REQUIRE_TWILIO").is_ok_and(|v| v == "1");
    match out {
        Ok(o) if o.status.success() => Some(String::from_utf8_lossy(&o.stdout).trim().to_string()),
        other => {
            let why = match other {
                Ok(o) => String::from_utf8_lossy(&o.stderr).into_owned(),
                Err(e) => e.to_string(),
            };
            assert!(
                !required,
                "SMSGATE_REQUIRE_TWILIO=1 but the twilio library cannot be installed: {why}"
            );
            crate::skipped(
                "twilio",
                &format!(
                    "the twilio Python library is not available ({why}); Twilio's client was not tried"
                ),
            );
            None
        }
    }
}

/// The receiver's log: one JSON object per request.
fn received(log: &Path) -> Vec<Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

async fn wait_for(log: &Path, what: &str, pred: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let r = received(log);
        if pred(&r) {
            return r;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} within 30 s; the receiver got {r:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilios_own_library_sends_lists_cancels_and_validates_callbacks() {
    let Some(python) = python() else { return };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("received.jsonl");
    let port = free_port();
    let mut receiver = tokio::process::Command::new(&python)
        .arg(root.join("tests/twilio/receiver.py"))
        .args([&port.to_string(), AUTH_TOKEN, &log.display().to_string()])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("receiver starts");
    let mut ready = tokio::io::BufReader::new(receiver.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(20), ready.next_line())
        .await
        .expect("receiver ready in time")
        .unwrap();
    assert_eq!(line.as_deref(), Some("ready"));

    let sim = Simulator::start(SimConfig {
        status_reports: Some(Duration::from_millis(50)),
        ..SimConfig::default()
    })
    .await
    .expect("simulator");
    let r = crate::start(dir.path().join("store"), &sim, |g| {
        g.twilio = smsgate::twilio::TwilioConfig {
            account_sid: Some(ACCOUNT.into()),
            auth_token: Some(AUTH_TOKEN.into()),
            inbound_url: Some(format!("http://127.0.0.1:{port}/incoming")),
        };
    })
    .await;
    crate::wait_modem_up(&r).await;

    // The client, as an application written for Twilio runs it.
    let callback = format!("http://127.0.0.1:{port}/status?app=billing");
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new(&python)
            .arg(root.join("tests/twilio/client.py"))
            .args([&r.base, ACCOUNT, AUTH_TOKEN, &callback, "+12025550123"])
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("client done in time")
    .expect("client runs");
    assert!(
        out.status.success(),
        "client.py: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_slice(&out.stdout).expect("client's JSON");
    let sid = seen["sid"].as_str().unwrap().to_string();
    let id = smsgate::twilio::id_of(&sid).expect("a SID the gateway made");

    // One queue: the message is in smsgate's own API, sent once through the modem From named.
    assert_eq!(
        r.wait_status(&id, "delivered", Duration::from_secs(20))
            .await,
        "delivered"
    );
    let (_, own) = r.get(&format!("/v1/messages/{id}")).await;
    assert_eq!(own["modem"], "sim0");
    assert_eq!(own["to"], "+12025550123");
    let sent: Vec<_> = sim
        .sent()
        .into_iter()
        .filter(|m| m.text == "Invoice 1042 is due")
        .collect();
    assert_eq!(sent.len(), 1, "sent once");
    assert!(
        !sim.sent().iter().any(|m| m.text == "scheduled"),
        "the cancelled message was never sent"
    );

    // Status callbacks: signed so that RequestValidator accepts them, sent then delivered.
    let got = wait_for(&log, "a delivered callback", |r| {
        r.iter().any(|e| {
            e["params"]["MessageSid"] == sid.as_str() && e["params"]["MessageStatus"] == "delivered"
        })
    })
    .await;
    let mine: Vec<&Value> = got
        .iter()
        .filter(|e| e["params"]["MessageSid"] == sid.as_str())
        .collect();
    assert!(mine.iter().all(|e| e["valid"] == true), "{mine:#?}");
    assert!(mine.iter().all(|e| e["path"] == "/status?app=billing"));
    let statuses: Vec<&str> = mine
        .iter()
        .map(|e| e["params"]["MessageStatus"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(statuses, ["sent", "delivered"]);
    let first = &mine[0]["params"];
    assert_eq!(first["AccountSid"], ACCOUNT);
    assert_eq!(first["From"], "+15550001234");
    assert_eq!(first["To"], "+12025550123");
    assert_eq!(first["SmsSid"], sid.as_str());
    assert!(first.get("ErrorCode").is_none());

    // An incoming text: forwarded in Twilio's form, signed; the TwiML answer goes back once.
    sim.inject_inbound("+12025550177", "Can I pay on Friday?", false)
        .unwrap();
    let got = wait_for(&log, "the incoming text", |r| {
        r.iter().any(|e| e["path"] == "/incoming")
    })
    .await;
    let incoming = got.iter().find(|e| e["path"] == "/incoming").unwrap();
    assert_eq!(incoming["valid"], true, "{incoming:#?}");
    let p = &incoming["params"];
    assert_eq!(p["From"], "+12025550177");
    assert_eq!(p["To"], "+15550001234");
    assert_eq!(p["Body"], "Can I pay on Friday?");
    assert_eq!(p["NumSegments"], "1");
    assert_eq!(p["AccountSid"], ACCOUNT);
    let in_sid = p["MessageSid"].as_str().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let reply = loop {
        if let Some(m) = sim
            .sent()
            .into_iter()
            .find(|m| m.text == "Got it: Can I pay on Friday?")
        {
            break m;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the TwiML reply was sent"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(reply.to, "+12025550177");
    // The received text is in the Twilio list too, and in smsgate's own inbound list.
    let in_id = smsgate::twilio::id_of(in_sid).unwrap();
    let (code, inbound) = r.get(&format!("/v1/inbound/{in_id}")).await;
    assert_eq!(code, 200, "{inbound}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        sim.sent()
            .iter()
            .filter(|m| m.text.starts_with("Got it:"))
            .count(),
        1,
        "the reply went once"
    );

    r.stop().await;
    sim.shutdown().await;
    let _ = receiver.kill().await;
}

/// The door's answers without a client library: a JSON body is refused (Twilio's clients
/// send forms), a path under another account is 404, and with no `[twilio]` section the door
/// is closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_door_is_closed_without_its_section_and_checks_what_it_gets() {
    let dir = tempfile::tempdir().unwrap();
    let sim = crate::sim().await;
    let closed = crate::start(dir.path().join("a"), &sim, |_| {}).await;
    let http = smsgate::tls::client_builder().build().unwrap();
    let url =
        |base: &str, account: &str| format!("{base}/2010-04-01/Accounts/{account}/Messages.json");
    let resp = http
        .post(url(&closed.base, ACCOUNT))
        .basic_auth(ACCOUNT, Some(AUTH_TOKEN))
        .form(&[("To", "+12025550123"), ("Body", "hi")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["code"], 20404);
    // It says the door is off and which keys open it.
    let said = v["message"].as_str().unwrap_or_default();
    assert!(
        said.contains("off") && said.contains("[twilio] account_sid and auth_token"),
        "{v}"
    );
    closed.stop().await;

    let open = crate::start(dir.path().join("b"), &sim, |g| {
        g.twilio = smsgate::twilio::TwilioConfig {
            account_sid: Some(ACCOUNT.into()),
            auth_token: Some(AUTH_TOKEN.into()),
            inbound_url: None,
        };
    })
    .await;
    // Bearer tokens of the smsgate API do not open the Twilio door, nor the reverse.
    let resp = http
        .post(url(&open.base, ACCOUNT))
        .bearer_auth(crate::TOKEN)
        .form(&[("To", "+12025550123"), ("Body", "hi")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(resp.headers().contains_key("www-authenticate"));
    let resp = http
        .get(format!("{}/v1/messages", open.base))
        .basic_auth(ACCOUNT, Some(AUTH_TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    // Another account's path.
    let other = "AC00000000000000000000000000000000";
    let resp = http
        .get(url(&open.base, other))
        .basic_auth(ACCOUNT, Some(AUTH_TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    // JSON instead of a form: 415 in Twilio's error shape, nothing stored.
    let resp = http
        .post(url(&open.base, ACCOUNT))
        .basic_auth(ACCOUNT, Some(AUTH_TOKEN))
        .json(&serde_json::json!({"To": "+12025550123", "Body": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 415);
    let v: Value = resp.json().await.unwrap();
    assert!(v["message"].as_str().unwrap().contains("form"), "{v}");
    // MMS is refused rather than sent without its picture.
    let resp = http
        .post(url(&open.base, ACCOUNT))
        .basic_auth(ACCOUNT, Some(AUTH_TOKEN))
        .form(&[
            ("To", "+12025550123"),
            ("Body", "see picture"),
            ("MediaUrl", "https://example.com/a.png"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    // A retry with the same I-Twilio-Idempotency-Token is the same message.
    let mut sids = Vec::new();
    for _ in 0..2 {
        let resp = http
            .post(url(&open.base, ACCOUNT))
            .basic_auth(ACCOUNT, Some(AUTH_TOKEN))
            .header("I-Twilio-Idempotency-Token", "retry-1")
            .form(&[
                ("To", "+12025550123"),
                ("Body", "once"),
                ("ValidityPeriod", "600"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201);
        let v: Value = resp.json().await.unwrap();
        sids.push(v["sid"].as_str().unwrap().to_string());
    }
    assert_eq!(sids[0], sids[1]);
    let (_, own) = open
        .get(&format!(
            "/v1/messages/{}",
            smsgate::twilio::id_of(&sids[0]).unwrap()
        ))
        .await;
    assert!(
        own["expires_at"].is_string(),
        "ValidityPeriod set expires_at: {own}"
    );
    let (_, all) = open.get("/v1/messages?limit=10").await;
    let onces = all["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["text"] == "once")
        .count();
    assert_eq!(onces, 1);
    open.stop().await;
    sim.shutdown().await;
}

/// The door cancels by the API's one rule: a failed message can be closed (`canceled`, with a
/// history entry saying what it was), a sent one cannot (400, code 30409, Twilio's words).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_door_cancels_by_the_apis_rule() {
    let dir = tempfile::tempdir().unwrap();
    let sim = crate::sim().await;
    let r = crate::start(dir.path().join("store"), &sim, |g| {
        g.twilio = smsgate::twilio::TwilioConfig {
            account_sid: Some(ACCOUNT.into()),
            auth_token: Some(AUTH_TOKEN.into()),
            inbound_url: None,
        };
    })
    .await;
    crate::wait_modem_up(&r).await;
    let http = smsgate::tls::client_builder().build().unwrap();
    let ending = |text: &'static str, status: &'static str| {
        let r = &r;
        async move {
            let (code, v) = r
                .post(
                    "/v1/messages",
                    &serde_json::json!({"to": "+12025550123", "text": text}),
                )
                .await;
            assert_eq!(code, 201, "{v}");
            let id = v["id"].as_str().unwrap().to_string();
            assert_eq!(
                r.wait_status(&id, status, Duration::from_secs(10)).await,
                status
            );
            id
        }
    };
    // Error 8 (operator barred) is permanent: the message fails on its first attempt.
    sim.fail_next(1, 8);
    let failed = ending("Past due: invoice INV-0999.", "failed").await;
    let sent = ending("Invoice INV-1042 is paid, thank you.", "sent").await;
    let cancel = |id: &str| {
        http.post(format!(
            "{}/2010-04-01/Accounts/{ACCOUNT}/Messages/{}.json",
            r.base,
            smsgate::twilio::sid_of(id)
        ))
        .basic_auth(ACCOUNT, Some(AUTH_TOKEN))
        .form(&[("Status", "canceled")])
        .send()
    };

    let resp = cancel(&failed).await.unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["status"], "canceled", "{v}");
    assert_eq!(r.status_of(&failed).await, "cancelled");
    let (_, h) = r.get(&format!("/v1/messages/{failed}/history")).await;
    assert!(
        h.to_string()
            .contains("closed through the Twilio-compatible API while failed"),
        "{h}"
    );
    // The door's change names the account's key; the message was made by the API's.
    assert_eq!(h["events"][0]["actor"], "test", "{h}");
    let last = h["events"].as_array().unwrap().last().unwrap();
    assert_eq!(last["actor"], format!("twilio:{ACCOUNT}"), "{h}");

    let resp = cancel(&sent).await.unwrap();
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["code"], 30409, "{v}");
    assert!(
        v["message"]
            .as_str()
            .is_some_and(|m| m.contains("cannot be canceled")),
        "{v}"
    );
    assert_eq!(r.status_of(&sent).await, "sent");
    r.stop().await;
    sim.shutdown().await;
}
