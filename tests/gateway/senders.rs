//! Senders as careless networks and customers send them: a national-format STOP and answer
//! against the real binary, a sender matched by its last digits, automatic answers in a loop.

use std::time::Duration;

use serde_json::{Value, json};

use crate::{Running, TOKEN, start, wait_modem_up};

async fn post(http: &reqwest::Client, base: &str, path: &str, body: &Value) -> (u16, Value) {
    let r = http
        .post(format!("{base}{path}"))
        .bearer_auth(TOKEN)
        .json(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn get(http: &reqwest::Client, base: &str, path: &str) -> Value {
    http.get(format!("{base}{path}"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap_or(Value::Null)
}

/// Waits until an inbound message with `text` is acted on; returns it.
async fn handled(http: &reqwest::Client, base: &str, text: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let page = get(http, base, "/v1/inbound?limit=100").await;
        if let Some(m) = page["messages"].as_array().and_then(|a| {
            a.iter()
                .find(|m| m["text"] == text && m["handling"].is_string())
        }) {
            return m.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{text:?} never handled: {page}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_sent(http: &reqwest::Client, base: &str, id: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while get(http, base, &format!("/v1/messages/{id}")).await["status"] != "sent" {
        assert!(tokio::time::Instant::now() < deadline, "{id} not sent");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The real binary with `[sms] default_region = "GB"`: a STOP from `07911123456` (national
/// format, TOA 0x81) after a text to `+447911123456` opts that number out, and an answer from
/// `447911123457` (international digits without `+`) is matched to the question it answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_national_format_stop_is_honoured_by_the_real_binary() {
    let dir = tempfile::tempdir().unwrap();
    let sim = crate::sim().await;
    let http = smsgate::tls::client_builder().build().unwrap();
    let (_, base, mut daemon) =
        crate::crash::daemon_with(dir.path(), &sim, "[sms]\ndefault_region = \"GB\"\n", &http)
            .await;
    let ask = |to: &str| {
        json!({"to": to, "text": "Invoice INV-7: reply 1 to be called, 2 to pay the minimum",
               "reply_options": {"1": "call_me", "2": "pay_minimum"}})
    };
    let (code, first) = post(&http, &base, "/v1/messages", &ask("+447911123456")).await;
    assert_eq!(code, 201, "{first}");
    let (code, second) = post(&http, &base, "/v1/messages", &ask("+447911123457")).await;
    assert_eq!(code, 201, "{second}");
    for m in [&first, &second] {
        wait_sent(&http, &base, m["id"].as_str().unwrap()).await;
    }
    sim.inject_inbound("07911123456", "STOP", false).unwrap();
    sim.inject_inbound("447911123457", "1", false).unwrap();
    let stop = handled(&http, &base, "STOP").await;
    assert_eq!(stop["from"], "+447911123456", "{stop}");
    assert_eq!(stop["from_raw"], "07911123456", "{stop}");
    assert_eq!(stop["handling"], "opt_out", "{stop}");
    let answer = handled(&http, &base, "1").await;
    assert_eq!(answer["from"], "+447911123457", "{answer}");
    assert_eq!(answer["handling"], "reply", "{answer}");
    assert_eq!(answer["in_reply_to"], second["id"], "{answer}");
    // The opt-out holds for the number as the billing system writes it, and as a national one.
    for to in ["+447911123456", "07911123456"] {
        let (code, refused) = post(
            &http,
            &base,
            "/v1/messages",
            &json!({"to": to, "text": "Reminder: INV-7 is due"}),
        )
        .await;
        assert_eq!(code, 422, "{to}: {refused}");
    }
    let _ = daemon.kill().await;
    sim.shutdown().await;
}

/// Without a region (and a SIM whose IMSI names no country), a national-format sender is
/// matched by its last digits to the number that was texted: the STOP still holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_that_reads_as_no_number_is_matched_by_its_last_digits() {
    let dir = tempfile::tempdir().unwrap();
    let sim = crate::sim().await;
    let r = start(dir.path().join("store"), &sim, |_| {}).await;
    wait_modem_up(&r).await;
    let (code, m) = r
        .post(
            "/v1/messages",
            &json!({"to": "+447911123458", "text": "Invoice INV-8 is due"}),
        )
        .await;
    assert_eq!(code, 201, "{m}");
    let id = m["id"].as_str().unwrap();
    assert_eq!(
        r.wait_status(id, "sent", Duration::from_secs(10)).await,
        "sent"
    );
    sim.inject_inbound("07911123458", "stop", false).unwrap();
    let stop = handled(&r.http, &r.base, "stop").await;
    assert_eq!(stop["from"], "07911123458", "{stop}");
    assert_eq!(stop["handling"], "opt_out", "{stop}");
    let (code, opt) = r.get("/v1/opt-outs/%2B447911123458").await;
    assert_eq!(
        (code, &opt["number"]),
        (200, &json!("+447911123458")),
        "{opt}"
    );
    let (code, _) = r
        .post(
            "/v1/messages",
            &json!({"to": "+447911123458", "text": "again"}),
        )
        .await;
    assert_eq!(code, 422);
    r.stop().await;
    sim.shutdown().await;
}

/// A customer texting HELP, STOP and START in a loop gets at most one automatic answer of each
/// kind per `auto_reply_interval`, every keyword is still obeyed, and reminders keep going out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn automatic_answers_are_bounded_per_number() {
    const WHO: &str = "+12025550177";
    let dir = tempfile::tempdir().unwrap();
    let sim = crate::sim().await;
    let r = start(dir.path().join("store"), &sim, |_| {}).await;
    wait_modem_up(&r).await;
    let rounds = 6;
    let mut sent = 0;
    for round in 0..rounds {
        for word in ["HELP", "STOP", "START"] {
            // Each round spells it differently: the same text from the same sender within a
            // second is one PDU, which the gateway stores once.
            let spelled: String = word
                .chars()
                .enumerate()
                .map(|(i, c)| {
                    if (round >> i) & 1 == 1 {
                        c.to_ascii_lowercase()
                    } else {
                        c
                    }
                })
                .collect();
            sim.inject_inbound(WHO, &spelled, false).unwrap();
            sent += 1;
            // Each acted on before the next, as a customer's texts arrive.
            wait_handled_count(&r, sent).await;
        }
    }
    // Opted back in at the end: a reminder goes out.
    let (code, m) = r
        .post(
            "/v1/messages",
            &json!({"to": WHO, "text": "Invoice INV-9 is due"}),
        )
        .await;
    assert_eq!(code, 201, "{m}");
    let id = m["id"].as_str().unwrap().to_string();
    assert_eq!(
        r.wait_status(&id, "sent", Duration::from_secs(10)).await,
        "sent"
    );
    let (_, page) = r.get("/v1/messages?to=%2B12025550177&limit=100").await;
    let automatic: Vec<&Value> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["id"] != id.as_str())
        .collect();
    assert_eq!(
        automatic.len(),
        3,
        "one help, one STOP and one START answer: {automatic:?}"
    );
    r.stop().await;
    sim.shutdown().await;
}

async fn wait_handled_count(r: &Running, n: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (_, page) = r.get("/v1/inbound?limit=100").await;
        let done = page["messages"].as_array().map_or(0, |a| {
            a.iter().filter(|m| m["handling"].is_string()).count()
        });
        if done >= n {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{done} of {n} handled"
        );
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}
