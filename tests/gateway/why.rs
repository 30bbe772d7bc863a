//! "Why isn't it sending?": each state that keeps texts or events from going out is shown,
//! with its reason and until when, in the admin page's data (`GET /v1/dashboard`), the API and
//! `smsgate status` / `smsgate messages show` (the real binary): a webhook receiver answering
//! 500 (failing, not yet given up), a modem resting after a fall (`quarantine_after = 1`), a
//! message held by its send window and one due while the only modem rests, and the status
//! counts (customers' texts, not delivery reports; failed messages, not parts).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use smsgate::sim::{SimConfig, SimHandle, Simulator};

use crate::cli::cli;
use crate::{Running, sim, start, wait_modem_up};

pub const CUSTOMER: &str = "+12025550140";
pub const STRANGER: &str = "+12025550141";
pub const HOLDING: &str = "+12025550142";

/// What [`resting_gateway`] made.
pub struct Resting {
    pub sim: SimHandle,
    pub r: Running,
    /// Held by its send window (closed now).
    pub windowed: String,
    /// Due, waiting while the only modem rests.
    pub stuck: String,
    /// POSTs the receiver answered (all with 500).
    pub hits: Arc<AtomicUsize>,
    pub _dir: tempfile::TempDir,
}

/// A receiver on 127.0.0.1 that answers every POST with 500; its URL.
async fn failing_receiver(hits: Arc<AtomicUsize>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let hits = hits.clone();
            async move {
                hits.fetch_add(1, Ordering::SeqCst);
                (
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                    "receiver broken",
                )
            }
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}/hook")
}

async fn wait_for(r: &Running, path: &str, what: &str, f: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (_, v) = r.get(path).await;
        if f(&v) {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what}: {v:#}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn time(v: &Value) -> DateTime<Utc> {
    v.as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .unwrap_or_else(|| panic!("not a time: {v}"))
        .with_timezone(&Utc)
}

/// A gateway whose webhook receiver answers 500, with one message delivered (a delivery
/// report received), one failed after two retryable errors, one customer's text nobody asked
/// for, one held by its send window, and then its only modem resting after one fall with a
/// message due behind it.
pub async fn resting_gateway() -> Resting {
    let dir = tempfile::tempdir().unwrap();
    // A link that follows the device across the unplug (a PTY's own number may be another
    // test's by then).
    let sim = Simulator::start(SimConfig {
        status_reports: None,
        link: Some(dir.path().join("modem")),
        ..SimConfig::default()
    })
    .await
    .expect("simulator");
    sim.set_status_reports(Some(Duration::from_millis(50)), 0);
    let hits = Arc::new(AtomicUsize::new(0));
    let url = failing_receiver(hits.clone()).await;
    let r = start(dir.path().join("store"), &sim, |g| {
        // Retried an hour later, given up after a day: failing, not dead, for the whole test.
        g.webhooks = smsgate::webhook::WebhookConfig {
            url: Some(url),
            secret: Some("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into()),
            retry_backoff: Duration::from_secs(3600),
            retry_backoff_max: Duration::from_secs(3600),
            max_age: Duration::from_secs(86_400),
            ..Default::default()
        };
        g.dispatch.max_attempts = 2;
        g.modems[0].driver.health_interval = Duration::from_millis(300);
        // One fall and it rests (a minute, longer than this test).
        g.modems[0].policy.quarantine_after = Some(1);
    })
    .await;
    wait_modem_up(&r).await;

    // Delivered: its report is received, but it is not a customer's text.
    let (code, v) = r
        .post(
            "/v1/messages",
            &json!({"to": CUSTOMER, "text": "Invoice INV-5: $10 due."}),
        )
        .await;
    assert_eq!(code, 201, "{v}");
    let delivered = v["id"].as_str().unwrap().to_string();
    assert_eq!(
        r.wait_status(&delivered, "delivered", Duration::from_secs(10))
            .await,
        "delivered"
    );
    // Failed after two retryable errors: two failed parts, one failed message.
    sim.fail_next(2, 500);
    let (code, v) = r
        .post(
            "/v1/messages",
            &json!({"to": STRANGER, "text": "Past due: invoice INV-6."}),
        )
        .await;
    assert_eq!(code, 201, "{v}");
    let failed = v["id"].as_str().unwrap().to_string();
    assert_eq!(
        r.wait_status(&failed, "failed", Duration::from_secs(10))
            .await,
        "failed"
    );
    // A text that answers nothing.
    sim.inject_inbound(STRANGER, "Who is this?", false).unwrap();
    wait_for(&r, "/v1/inbound", "the customer's text", |v| {
        v["messages"].as_array().is_some_and(|a| !a.is_empty())
    })
    .await;

    // Outside its window (it opens in two hours, UTC): held until then.
    let now = Utc::now();
    let opens = (now + chrono::Duration::hours(2))
        .format("%H:00")
        .to_string();
    let closes = (now + chrono::Duration::hours(3))
        .format("%H:00")
        .to_string();
    let (code, v) = r
        .post(
            "/v1/messages",
            &json!({"to": HOLDING, "text": "Office hours only.", "timezone": "UTC",
                    "send_window": {"start": opens, "end": closes}}),
        )
        .await;
    assert_eq!(code, 201, "{v}");
    let windowed = v["id"].as_str().unwrap().to_string();

    // The modem falls once and comes back: up, but resting.
    sim.unplug();
    wait_for(&r, "/v1/modems", "the modem down", |v| {
        v["modems"][0]["state"] != "up" && v["modems"][0]["last_error"].is_string()
    })
    .await;
    sim.replug().await.unwrap();
    wait_for(&r, "/v1/modems", "the modem up and resting", |v| {
        v["modems"][0]["state"] == "up" && v["modems"][0]["sending"] == "resting"
    })
    .await;
    let (code, v) = r
        .post(
            "/v1/messages",
            &json!({"to": CUSTOMER, "text": "Sent while the modem rests."}),
        )
        .await;
    assert_eq!(code, 201, "{v}");
    let stuck = v["id"].as_str().unwrap().to_string();
    Resting {
        sim,
        r,
        windowed,
        stuck,
        hits,
        _dir: dir,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn why_it_is_not_sending_is_shown_in_the_api_the_page_and_the_cli() {
    let f = resting_gateway().await;
    let r = &f.r;
    let now = Utc::now();

    // The modem: up, resting until when; its last error cleared once a probe answered.
    let v = wait_for(r, "/v1/modems", "the stale error cleared", |v| {
        v["modems"][0]["last_error"].is_null()
    })
    .await;
    let m = &v["modems"][0];
    assert_eq!(
        (m["state"].as_str(), m["sending"].as_str()),
        (Some("up"), Some("resting")),
        "{m:#}"
    );
    assert_eq!(m["pool"]["paused"], "quarantined");
    let rest_ends = time(&m["sending_until"]);
    assert!(
        rest_ends > now && rest_ends <= now + chrono::Duration::seconds(61),
        "{m:#}"
    );
    assert!(m["last_error_at"].is_null());
    // Today's counts: one sent, one failed message (two failed parts), one customer's text
    // (the delivery report is received too, but is not one).
    assert_eq!(
        (
            m["sent_today"].as_u64(),
            m["failed_today"].as_u64(),
            m["received_today"].as_u64()
        ),
        (Some(1), Some(1), Some(1)),
        "{m:#}"
    );
    assert_eq!(m["parts_failed"], 2, "{m:#}");
    assert!(
        m["received"].as_u64().unwrap() >= 2,
        "text and report: {m:#}"
    );

    // The held messages: reason in words, the time they are looked at again, never past.
    let (_, w) = r.get(&format!("/v1/messages/{}", f.windowed)).await;
    assert_eq!(w["hold"]["reason"], "send_window", "{w:#}");
    assert!(
        w["hold"]["text"].as_str().unwrap().contains("send window"),
        "{w:#}"
    );
    let opens = time(&w["hold"]["until"]);
    assert!(opens > now + chrono::Duration::minutes(59), "{w:#}");
    assert_eq!(time(&w["next_attempt_at"]), opens);
    let (_, s) = r.get(&format!("/v1/messages/{}", f.stuck)).await;
    assert_eq!(s["status"], "queued", "{s:#}");
    assert_eq!(s["hold"]["reason"], "modem_resting", "{s:#}");
    assert!(
        s["hold"]["text"].as_str().unwrap().contains("resting"),
        "{s:#}"
    );
    assert_eq!(time(&s["hold"]["until"]), rest_ends);
    assert_eq!(time(&s["next_attempt_at"]), rest_ends);
    // The list says the same.
    let (_, list) = r
        .get(&format!("/v1/messages?to=%2B{}", &CUSTOMER[1..]))
        .await;
    let listed = list["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == f.stuck.as_str())
        .cloned()
        .expect("listed");
    assert_eq!(listed["hold"]["reason"], "modem_resting");

    // The failing webhook: pending, with its error and next attempt, not dead.
    assert!(f.hits.load(Ordering::SeqCst) >= 1);
    let (code, hooks) = r.get("/v1/webhooks/failed?state=retrying").await;
    assert_eq!(code, 200, "{hooks}");
    let hook = &hooks["webhooks"][0];
    assert_eq!(hook["state"], "pending", "{hooks:#}");
    assert!(
        hook["last_error"].as_str().unwrap().contains("500"),
        "{hook:#}"
    );
    assert_eq!(hook["last_status"], 500);
    assert!(time(&hook["next_attempt_at"]) > now + chrono::Duration::minutes(30));
    let (_, dead) = r.get("/v1/webhooks/failed").await;
    assert_eq!(dead["webhooks"], json!([]), "none given up");
    let (code, bad) = r.get("/v1/webhooks/failed?state=sideways").await;
    assert_eq!(code, 422, "{bad}");

    // The page's data: all of it.
    let (code, d) = r.get("/v1/dashboard").await;
    assert_eq!(code, 200, "{d}");
    let dm = &d["modems"][0];
    assert_eq!(dm["sending"], "resting", "{dm:#}");
    assert_eq!(time(&dm["sending_until"]), rest_ends);
    assert!(dm["last_error"].is_null());
    assert_eq!(
        (dm["failed_today"].as_u64(), dm["received_today"].as_u64()),
        (Some(1), Some(1))
    );
    let retrying = d["retrying_webhooks"].as_array().unwrap();
    assert!(!retrying.is_empty(), "{d:#}");
    assert!(retrying[0]["last_error"].as_str().unwrap().contains("500"));
    assert!(retrying[0]["next_attempt_at"].is_string());
    assert_eq!(d["failed_webhooks"], json!([]));
    let recent = d["recent"].as_array().unwrap();
    let shown = |id: &str| {
        recent
            .iter()
            .find(|m| m["id"] == id)
            .cloned()
            .expect("listed")
    };
    assert_eq!(shown(&f.stuck)["hold"]["reason"], "modem_resting");
    assert_eq!(time(&shown(&f.stuck)["next_attempt_at"]), rest_ends);
    assert_eq!(shown(&f.windowed)["hold"]["reason"], "send_window");
    assert_eq!(time(&shown(&f.windowed)["next_attempt_at"]), opens);
    assert_eq!(d["unmatched"][0]["from"], STRANGER, "{d:#}");
    assert_eq!(d["unmatched"][0]["text"], "Who is this?");

    // `smsgate status`: the rest and its end, today's counts, the failing webhook; exit 1
    // because no modem sends.
    let out = cli(r, &["status"]).await;
    assert_eq!(out.code, 1, "{} {}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("resting (went down too often; sends again"),
        "{}",
        out.stdout
    );
    let row = out.stdout.lines().find(|l| l.starts_with("sim0")).unwrap();
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert!(cells.windows(3).any(|w| w == ["1", "1", "1"]), "{row}");
    assert!(
        out.stdout.contains("Webhooks failing (not given up yet)"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("message.sent"), "{}", out.stdout);
    assert!(out.stdout.contains("HTTP 500"), "{}", out.stdout);
    assert!(out.stderr.contains("no modem sends now"), "{}", out.stderr);
    let out = cli(r, &["status", "--json"]).await;
    let j = out.json();
    assert_eq!(j["modems"][0]["sending"], "resting");
    assert_eq!(j["retrying_webhooks"][0]["last_status"], 500);

    // `smsgate messages show`: the hold in words and when it is looked at again.
    let out = cli(r, &["messages", "show", &f.stuck]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let held = out
        .stdout
        .lines()
        .find(|l| l.starts_with("held"))
        .unwrap_or_else(|| panic!("{}", out.stdout));
    assert!(
        held.contains("every modem is resting") && held.contains("looked at again"),
        "{held}"
    );
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("status") && l.ends_with("queued (held)")),
        "{}",
        out.stdout
    );
    let out = cli(r, &["messages", "show", &f.windowed]).await;
    assert!(
        out.stdout.contains("outside its send window"),
        "{}",
        out.stdout
    );
    assert!(
        !out.stdout.contains("send_window;"),
        "no raw code: {}",
        out.stdout
    );

    f.r.stop().await;
    f.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_stops_step_times_in_order_and_reads_national_numbers() {
    const STOPPER: &str = "+12025550143";
    const PLANNED: &str = "+12025550144";
    const INVOICE: &str = "INV-8800";
    let dir = tempfile::tempdir().unwrap();
    let sim = sim().await;
    let r = start(dir.path().join("store"), &sim, |g| {
        g.api.messages.default_region = Some("US".into());
    })
    .await;
    wait_modem_up(&r).await;

    // A STOP answers the last message sent to the number: it shows under that one.
    let (code, v) = r
        .post("/v1/messages", &json!({"to": STOPPER, "text": "First."}))
        .await;
    assert_eq!(code, 201, "{v}");
    let first = v["id"].as_str().unwrap().to_string();
    assert_eq!(
        r.wait_status(&first, "sent", Duration::from_secs(10)).await,
        "sent"
    );
    let (_, v) = r
        .post("/v1/messages", &json!({"to": STOPPER, "text": "Second."}))
        .await;
    let second = v["id"].as_str().unwrap().to_string();
    assert_eq!(
        r.wait_status(&second, "sent", Duration::from_secs(10))
            .await,
        "sent"
    );
    sim.inject_inbound(STOPPER, "STOP", false).unwrap();
    let d = wait_for(&r, "/v1/dashboard", "the opt-out", |d| {
        d["opt_out_count"] == 1
    })
    .await;
    let recent = d["recent"].as_array().unwrap();
    let shown = |id: &str| {
        recent
            .iter()
            .find(|m| m["id"] == id)
            .cloned()
            .expect("listed")
    };
    assert_eq!(shown(&second)["stop"]["keyword"], "STOP", "{d:#}");
    assert!(shown(&second)["stop"]["inbound_id"].is_string());
    assert!(
        shown(&first)["stop"].is_null(),
        "only under the one it answered"
    );

    // A reminder plan's steps: searched by invoice, in the plan's order, each with when it
    // goes (its send time, not when it was made).
    let due = (Utc::now() + chrono::Duration::days(20)).date_naive();
    let (code, plan) = r
        .post(
            "/v1/reminders",
            &json!({"to": PLANNED, "invoice": INVOICE, "amount": "80.00", "currency": "USD",
                    "due_date": due.to_string(), "name": "Ana", "timezone": "UTC",
                    "schedule": [{"offset": "-3d", "template": "upcoming"},
                                 {"offset": "0d", "template": "due_today"},
                                 {"offset": "+3d", "template": "past_due"}]}),
        )
        .await;
    assert_eq!(code, 201, "{plan}");
    let steps: Vec<(String, DateTime<Utc>)> = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["message_id"].as_str().unwrap().to_string(),
                time(&s["send_at"]),
            )
        })
        .collect();
    assert_eq!(steps.len(), 3);
    let (code, s) = r.get(&format!("/v1/dashboard/search?q={INVOICE}")).await;
    assert_eq!(code, 200, "{s}");
    let found: Vec<(String, DateTime<Utc>, u64)> = s["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["id"].as_str().unwrap().to_string(),
                time(&m["next_attempt_at"]),
                m["step"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        found,
        steps
            .iter()
            .enumerate()
            .map(|(i, (id, at))| (id.clone(), *at, i as u64))
            .collect::<Vec<_>>(),
        "{s:#}"
    );
    assert!(found[0].1 > Utc::now() + chrono::Duration::days(10));

    // A national number (with `default_region`), and international digits without their `+`,
    // are read as numbers, not as invoices.
    for q in ["(202)%20555-0143", "202-555-0143", "12025550143"] {
        let (code, s) = r.get(&format!("/v1/dashboard/search?q={q}")).await;
        assert_eq!(code, 200, "{s}");
        assert_eq!(
            (s["kind"].as_str(), s["number"].as_str()),
            (Some("number"), Some(STOPPER)),
            "{q}: {s:#}"
        );
        assert_eq!(s["opted_out"], true);
        let answered = s["messages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == second.as_str())
            .cloned()
            .expect("listed");
        assert_eq!(answered["stop"]["keyword"], "STOP");
    }

    r.stop().await;
    sim.shutdown().await;
}
