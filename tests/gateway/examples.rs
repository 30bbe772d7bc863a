//! The Python examples of docs/integrating.md against the real gateway: `send_reminder.py`
//! sends a message, makes a reminder plan, marks it paid and reads them back;
//! `webhook_receiver.py` gets the daemon's signed events, prints each verified one once, and
//! refuses deliveries that are tampered with, stale, unsigned or signed with another secret.
//! Skipped, with a message, where there is no `python3`.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use smsgate::webhook::{Signer, WebhookConfig};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStderr, ChildStdout, Command};

use crate::replies::SECRET;
use crate::{Running, TOKEN, sim, start, wait_modem_up};

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("docs/examples")
        .join(name)
}

async fn have_python() -> bool {
    let probe = Command::new("python3")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .status();
    matches!(
        tokio::time::timeout(Duration::from_secs(10), probe).await,
        Ok(Ok(s)) if s.success()
    )
}

/// `webhook_receiver.py` on a free port of 127.0.0.1, and what it prints.
struct PyReceiver {
    _child: Child,
    url: String,
    stdout: Lines<BufReader<ChildStdout>>,
    stderr: Lines<BufReader<ChildStderr>>,
    /// Every event printed so far.
    events: Vec<Value>,
}

impl PyReceiver {
    async fn start() -> PyReceiver {
        let mut child = Command::new("python3")
            .arg(script("webhook_receiver.py"))
            .args(["--host", "127.0.0.1", "--port", "0"])
            .env("SMSGATE_WEBHOOK_SECRET", SECRET)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 runs");
        let stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut stderr = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let first = tokio::time::timeout(Duration::from_secs(10), stderr.next_line())
            .await
            .expect("the receiver starts within 10 s")
            .expect("its standard error")
            .unwrap_or_default();
        let url = first
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("the receiver said {first:?}"))
            .to_string();
        PyReceiver {
            _child: child,
            url,
            stdout,
            stderr,
            events: Vec::new(),
        }
    }

    /// The first event printed that matches `f`, waiting at most 20 s for it.
    async fn wait_for(&mut self, what: &str, f: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(e) = self.events.iter().find(|e| f(e)) {
                return e.clone();
            }
            let line = tokio::time::timeout_at(deadline, self.stdout.next_line())
                .await
                .unwrap_or_else(|_| panic!("no {what} within 20 s; got {:#?}", self.events))
                .expect("the receiver's output")
                .unwrap_or_else(|| panic!("the receiver stopped; got {:#?}", self.events));
            let event: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("the receiver printed {line:?}: {e}"));
            self.events.push(event);
        }
    }

    /// The next line the receiver logs on standard error, within 10 s.
    async fn next_log(&mut self) -> String {
        tokio::time::timeout(Duration::from_secs(10), self.stderr.next_line())
            .await
            .expect("a log line within 10 s")
            .expect("the receiver's standard error")
            .unwrap_or_default()
    }
}

/// `send_reminder.py ARGS` against the gateway: exit code and the JSON it printed.
async fn client(r: &Running, args: &[&str]) -> (i32, Value) {
    let run = Command::new("python3")
        .arg(script("send_reminder.py"))
        .args(args)
        .env("SMSGATE_URL", &r.base)
        .env("SMSGATE_TOKEN", TOKEN)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("send_reminder.py finishes within 30 s")
        .expect("python3 runs");
    let json = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code().unwrap_or(-1), json)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_examples_work_against_the_daemon() {
    if !have_python().await {
        crate::skipped(
            "examples",
            "no python3; the Python examples of the docs were not run",
        );
        return;
    }
    let mut rx = PyReceiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let sim = sim().await;
    let hooks = WebhookConfig {
        url: Some(format!("{}/smsgate/events", rx.url)),
        secret: Some(SECRET.into()),
        retry_backoff: Duration::from_millis(100),
        retry_backoff_max: Duration::from_millis(400),
        ..WebhookConfig::default()
    };
    let r = start(dir.path().join("store"), &sim, |g| g.webhooks = hooks).await;
    wait_modem_up(&r).await;

    // A message, its signed event, and its status read back.
    let (code, m) = client(
        &r,
        &[
            "message",
            "--to",
            "+12025550123",
            "--text",
            "Invoice INV-1042 is due Dec 1.",
            "--invoice",
            "INV-1042",
        ],
    )
    .await;
    assert_eq!(code, 0, "{m}");
    let id = m["id"].as_str().expect("a message id").to_string();
    let sent = rx
        .wait_for("message.sent", |e| {
            e["type"] == "message.sent" && e["data"]["message_id"] == id
        })
        .await;
    assert_eq!(sent["verified"], true);
    assert_eq!(sent["data"]["metadata"]["invoice"], "INV-1042");
    let (code, m) = client(&r, &["status", &id]).await;
    assert_eq!((code, &m["status"]), (0, &json!("sent")), "{m}");

    // A reminder plan, paid, read back by its invoice.
    let due = (chrono::Utc::now() + chrono::Duration::days(40))
        .format("%Y-%m-%d")
        .to_string();
    let plan_args = [
        "plan",
        "--to",
        "+12025550124",
        "--invoice",
        "INV-2001",
        "--amount",
        "120.50",
        "--currency",
        "USD",
        "--due-date",
        &due,
        "--timezone",
        "UTC",
        "--name",
        "Ana",
    ];
    let (code, p) = client(&r, &plan_args).await;
    assert_eq!((code, &p["status"]), (0, &json!("active")), "{p}");
    assert_eq!(p["steps"].as_array().map(Vec::len), Some(6), "{p}");
    // The same request again is the same plan.
    let (code, again) = client(&r, &plan_args).await;
    assert_eq!((code, &again["id"]), (0, &p["id"]), "{again}");
    let (code, paid) = client(&r, &["paid", "INV-2001"]).await;
    assert_eq!((code, &paid["status"]), (0, &json!("paid")), "{paid}");
    assert!(
        paid["steps"]
            .as_array()
            .is_some_and(|s| s.iter().any(|s| s["template"] == "payment_received")),
        "{paid}"
    );
    let (code, shown) = client(&r, &["plan-status", "INV-2001"]).await;
    assert_eq!((code, &shown["status"]), (0, &json!("paid")), "{shown}");
    // Refused input: exit 1, nothing printed on standard output.
    let (code, refused) = client(&r, &["message", "--to", "123", "--text", "x"]).await;
    assert_eq!((code, refused), (1, Value::Null));

    // Deliveries the receiver must refuse, then one it takes, once.
    let http = smsgate::tls::client_builder().build().unwrap();
    let signer = Signer::from_secret(SECRET).unwrap();
    let other = Signer::from_secret(&Signer::generate_secret().unwrap()).unwrap();
    let now = chrono::Utc::now().timestamp();
    let body = |id: &str| {
        json!({"id": id, "type": "message.sent", "created_at": "2026-11-23T15:04:05.123Z",
               "data": {"message_id": "01TEST"}})
        .to_string()
    };
    let events_url = format!("{}/smsgate/events", rx.url);
    let post = |id: String, ts: i64, body: String, signature: Option<String>| {
        let mut req = http
            .post(&events_url)
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", ts.to_string())
            .body(body);
        if let Some(s) = signature {
            req = req.header("webhook-signature", s);
        }
        async move {
            req.send()
                .await
                .expect("the receiver answers")
                .status()
                .as_u16()
        }
    };
    let good = body("evt_good");
    let tampered = good.replace("01TEST", "01OTHER");
    let cases = [
        (
            "a changed body",
            now,
            tampered,
            Some(signer.sign("evt_good", now, &good)),
        ),
        (
            "a stale timestamp",
            now - 600,
            good.clone(),
            Some(signer.sign("evt_good", now - 600, &good)),
        ),
        ("no signature", now, good.clone(), None),
        (
            "another secret",
            now,
            good.clone(),
            Some(other.sign("evt_good", now, &good)),
        ),
    ];
    for (what, ts, body, signature) in cases {
        let status = post("evt_good".into(), ts, body, signature).await;
        assert_eq!(status, 401, "{what} is refused");
        let log = rx.next_log().await;
        assert!(log.starts_with("refused a delivery (401)"), "{what}: {log}");
    }
    // Signed right: taken; again with the same webhook-id: acknowledged, handled once.
    for _ in 0..2 {
        let sig = signer.sign("evt_good", now, &good);
        assert_eq!(
            post("evt_good".into(), now, good.clone(), Some(sig)).await,
            204
        );
    }
    let last = body("evt_last");
    let sig = signer.sign("evt_last", now, &last);
    assert_eq!(post("evt_last".into(), now, last, Some(sig)).await, 204);
    rx.wait_for("evt_last", |e| e["id"] == "evt_last").await;
    let handled = rx.events.iter().filter(|e| e["id"] == "evt_good").count();
    assert_eq!(handled, 1, "a repeated delivery is handled once");
    assert!(
        rx.events.iter().all(|e| e["verified"] == true),
        "{:#?}",
        rx.events
    );

    r.stop().await;
}

/// docs/integrating.md shows each script whole, as it is in docs/examples/.
#[test]
fn integrating_md_shows_the_scripts_as_they_are() {
    let doc = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/integrating.md"),
    )
    .unwrap();
    for name in ["send_reminder.py", "webhook_receiver.py"] {
        let code = std::fs::read_to_string(script(name)).unwrap();
        assert!(
            doc.contains(&format!("```python\n{code}```\n")),
            "docs/integrating.md does not show docs/examples/{name} as it is"
        );
    }
}
