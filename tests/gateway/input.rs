//! Bad requests get the right 4xx as problem details, and nothing is written.

use serde_json::{Value, json};

use crate::{TOKEN, sim, start};

async fn total(r: &crate::Running) -> u64 {
    let (_, s) = r.get("/v1/stats").await;
    s["counts"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_are_refused_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let sim = sim().await;
    let r = start(dir.path().join("store"), &sim, |g| {
        g.api.body_limit = 64 * 1024
    })
    .await;
    let url = format!("{}/v1/messages", r.base);
    let raw = |body: &'static str, ctype: Option<&'static str>| {
        let mut req = r.http.post(&url).bearer_auth(TOKEN).body(body);
        if let Some(c) = ctype {
            req = req.header("content-type", c);
        }
        req.send()
    };
    let json_ct = Some("application/json");
    let cases: Vec<(u16, &str, reqwest::Response)> = vec![
        (400, "bad_request", raw("{\"to\": ", json_ct).await.unwrap()),
        (
            415,
            "unsupported_media_type",
            raw("{\"to\":\"+12025550123\",\"text\":\"x\"}", None)
                .await
                .unwrap(),
        ),
        (
            415,
            "unsupported_media_type",
            raw("{}", Some("text/plain")).await.unwrap(),
        ),
        (
            422,
            "validation",
            raw(
                "{\"to\":\"+12025550123\",\"text\":\"x\",\"extra\":1}",
                json_ct,
            )
            .await
            .unwrap(),
        ),
        (
            422,
            "validation",
            raw("{\"to\":\"+12025550123\"}", json_ct).await.unwrap(),
        ),
        (
            422,
            "validation",
            raw("{\"to\":12025550123,\"text\":\"x\"}", json_ct)
                .await
                .unwrap(),
        ),
        (422, "validation", raw("[1,2,3]", json_ct).await.unwrap()),
    ];
    for (want, kind, resp) in cases {
        assert_eq!(resp.status().as_u16(), want);
        assert_eq!(resp.headers()["content-type"], "application/problem+json");
        let p: Value = resp.json().await.unwrap();
        assert_eq!(p["type"], format!("urn:smsgate:problem:{kind}"), "{p}");
        assert_eq!(p["status"], want);
        assert!(p["detail"].as_str().is_some_and(|d| !d.is_empty()));
    }
    // Field-level validation names the field.
    for (body, field) in [
        (json!({"to": "12345", "text": "x"}), "to"),
        (json!({"to": "+15551234567", "text": "x"}), "to"),
        (json!({"to": "+12025550123", "text": ""}), "text"),
        (
            json!({"to": "+12025550123", "text": "x".repeat(2000)}),
            "text",
        ),
        (
            json!({"to": "+12025550123", "text": "x", "expires_at": "2001-01-01T00:00:00Z"}),
            "expires_at",
        ),
        (
            json!({"to": "+12025550123", "text": "x", "send_at": "tomorrow"}),
            "send_at",
        ),
        (
            json!({"to": "+12025550123", "text": "x", "callback_url": "ftp://x"}),
            "callback_url",
        ),
        (
            json!({"to": "+12025550123", "text": "x", "priority": "urgent"}),
            "priority",
        ),
        (
            json!({"to": "+12025550123", "text": "x", "metadata": [1]}),
            "metadata",
        ),
        (
            json!({"to": "+12025550123", "text": "x", "max_lateness": "soon"}),
            "max_lateness",
        ),
    ] {
        let (code, p) = r.post("/v1/messages", &body).await;
        assert_eq!(code, 422, "{body}: {p}");
        assert_eq!(p["field"], field, "{body}: {p}");
    }
    // Too large.
    let big = json!({"to": "+12025550123", "text": "x", "metadata": {"pad": "y".repeat(100_000)}});
    let resp = r
        .http
        .post(&url)
        .bearer_auth(TOKEN)
        .json(&big)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 413);
    // A batch with one bad item stores nothing and names the item.
    let (code, p) = r
        .post(
            "/v1/messages/batch",
            &json!({"messages": [
                {"to": "+12025550123", "text": "fine"},
                {"to": "nope", "text": "bad"},
            ]}),
        )
        .await;
    assert_eq!(code, 422);
    assert_eq!(p["field"], "messages[1].to", "{p}");
    // Auth.
    let resp = r
        .http
        .get(format!("{}/v1/messages", r.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    assert_eq!(resp.headers()["www-authenticate"], "Bearer");
    let resp = r
        .http
        .get(format!("{}/v1/messages", r.base))
        .bearer_auth("wrong-token-000000000")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let resp = r
        .http
        .get(format!("{}/v1/messages?token={TOKEN}", r.base))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status().as_u16(),
        401,
        "tokens in the query string are not accepted"
    );
    let resp = r
        .http
        .get(format!("{}/healthz", r.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    // Unknown ids and bad queries.
    let (code, _) = r.get("/v1/messages/01ARZ3NDEKTSV4RRFFQ69G5FAV").await;
    assert_eq!(code, 404);
    let (code, p) = r.get("/v1/messages?status=lost").await;
    assert_eq!((code, p["field"].as_str()), (422, Some("status")));
    let (code, _) = r.get("/v1/messages?limit=0").await;
    assert_eq!(code, 422);
    assert_eq!(total(&r).await, 0, "nothing was written");
    assert!(sim.sent().is_empty());
    r.stop().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_is_all_or_nothing_and_lists_page() {
    let dir = tempfile::tempdir().unwrap();
    let sim = sim().await;
    let r = start(dir.path().join("store"), &sim, |_| {}).await;
    let messages: Vec<Value> = (0..25)
        .map(|i| json!({"to": "+12025550123", "text": format!("batch {i}"), "send_at": "2099-01-01T00:00:00Z"}))
        .collect();
    let (code, out) = r
        .post("/v1/messages/batch", &json!({"messages": messages}))
        .await;
    assert_eq!(code, 201, "{out}");
    assert_eq!(out["messages"].as_array().unwrap().len(), 25);
    let mut seen = std::collections::HashSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = match &cursor {
            Some(c) => format!("/v1/messages?status=scheduled&limit=10&cursor={c}"),
            None => "/v1/messages?status=scheduled&limit=10".into(),
        };
        let (code, page) = r.get(&q).await;
        assert_eq!(code, 200);
        for m in page["messages"].as_array().unwrap() {
            assert!(
                seen.insert(m["id"].as_str().unwrap().to_string()),
                "no duplicates across pages"
            );
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 25);
    let (_, by_to) = r.get("/v1/messages?to=%2B12025550123&limit=100").await;
    assert_eq!(by_to["messages"].as_array().unwrap().len(), 25);
    let (code, p) = r.post("/v1/messages/batch", &json!({"messages": []})).await;
    assert_eq!((code, p["field"].as_str()), (422, Some("messages")));
    r.stop().await;
    sim.shutdown().await;
}
