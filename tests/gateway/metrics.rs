//! `GET /metrics`: the Prometheus text exposition, behind the token, with the send, queue and
//! modem series after a real send through the simulated modem.

use std::time::Duration;

use serde_json::json;

use crate::{TOKEN, sim, start, wait_modem_up};

/// The value of the first sample line of `series` (exact name and labels).
pub(crate) fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// GET `path`: 401 without the token; 200 of `content_type` with it.
pub(crate) async fn get_with_token(
    r: &crate::Running,
    path: &str,
    content_type: &str,
) -> reqwest::Response {
    let anon = r
        .http
        .get(format!("{}{path}", r.base))
        .send()
        .await
        .unwrap();
    assert_eq!(anon.status().as_u16(), 401, "{path} needs the token");
    let resp = r
        .http
        .get(format!("{}{path}", r.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with(content_type), "{path}: {ct}");
    resp
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_sends_the_queue_and_the_modem() {
    let dir = tempfile::tempdir().unwrap();
    let sim = sim().await;
    let r = start(dir.path().join("store"), &sim, |_| {}).await;
    wait_modem_up(&r).await;
    let (code, m) = r
        .post(
            "/v1/messages",
            &json!({"to": "+12025550123", "text": "metrics"}),
        )
        .await;
    assert_eq!(code, 201, "{m}");
    let id = m["id"].as_str().unwrap();
    assert_eq!(
        r.wait_status(id, "sent", Duration::from_secs(5)).await,
        "sent"
    );
    // A scheduled one keeps the queue non-empty.
    let (code, _) = r
        .post(
            "/v1/messages",
            &json!({"to": "+12025550123", "text": "later", "send_at": "2099-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(code, 201);

    let resp = get_with_token(&r, "/metrics", "text/plain; version=0.0.4").await;
    let text = resp.text().await.unwrap();
    // Counters are per process (tests share one), so at least this test's own events.
    assert!(
        sample(
            &text,
            r#"smsgate_send_attempts_total{modem="sim0",result="sent"}"#
        )
        .unwrap()
            >= 1.0,
        "{text}"
    );
    assert!(
        sample(&text, "smsgate_messages_accepted_total").unwrap() >= 2.0,
        "{text}"
    );
    assert_eq!(
        sample(&text, r#"smsgate_modem_up{modem="sim0"}"#),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, r#"smsgate_modem_registered{modem="sim0"}"#),
        Some(1.0)
    );
    assert!(
        sample(&text, r#"smsgate_modem_signal_dbm{modem="sim0"}"#).is_some(),
        "{text}"
    );
    // Gauges read from this gateway's store.
    assert_eq!(
        sample(&text, r#"smsgate_messages{status="sent"}"#),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, r#"smsgate_messages{status="scheduled"}"#),
        Some(1.0)
    );
    assert_eq!(sample(&text, "smsgate_queue_depth"), Some(1.0));
    assert_eq!(
        sample(&text, "smsgate_queue_oldest_due_age_seconds"),
        Some(0.0)
    );
    assert!(
        text.contains("# HELP smsgate_send_duration_seconds"),
        "{text}"
    );
    assert!(text.contains(r#"smsgate_send_duration_seconds_bucket{modem="sim0",le="1"}"#));
    // Every sample line is `name{labels} value`.
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, value) = line.rsplit_once(' ').unwrap();
        assert!(value.parse::<f64>().is_ok(), "{line}");
        assert!(series.starts_with("smsgate_"), "{line}");
    }
    r.stop().await;
    sim.shutdown().await;
}

/// `GET /v1/events` streams each history entry as it happens, and ends when the daemon stops
/// (an open stream does not hold the shutdown up).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_events_stream_history_entries_and_end_at_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let sim = sim().await;
    let r = start(dir.path().join("store"), &sim, |_| {}).await;
    wait_modem_up(&r).await;
    let resp = get_with_token(&r, "/v1/events", "text/event-stream").await;
    let mut body = resp;
    let (code, m) = r
        .post(
            "/v1/messages",
            &json!({"to": "+12025550123", "text": "live"}),
        )
        .await;
    assert_eq!(code, 201, "{m}");
    let id = m["id"].as_str().unwrap().to_string();
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let kinds = |text: &str| -> Vec<String> {
        text.lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .filter_map(|d| serde_json::from_str::<serde_json::Value>(d).ok())
            .filter(|v| v["message_id"] == id.as_str())
            .map(|v| format!("{}:{}", v["seq"], v["status"].as_str().unwrap_or("")))
            .collect()
    };
    while !kinds(&text).iter().any(|k| k.ends_with(":sent")) {
        let chunk = tokio::time::timeout_at(deadline, body.chunk())
            .await
            .expect("events in time")
            .unwrap()
            .expect("stream open");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(text.contains("event: message"), "{text}");
    assert_eq!(kinds(&text), ["0:queued", "1:sending", "2:sent"], "{text}");
    // Stopping the daemon ends the stream; the stop is not held up by it.
    let stop = tokio::spawn(r.stop());
    let end = tokio::time::timeout(Duration::from_secs(10), async {
        while let Ok(Some(_)) = body.chunk().await {}
    })
    .await;
    assert!(end.is_ok(), "the stream ends at shutdown");
    stop.await.unwrap();
    sim.shutdown().await;
}
