//! The dispute export by invoice: read through the invoice index and written as it is read, at
//! most `MAX_EXPORTS` at once; a client that stops reading holds only its own export.

use std::time::Duration;

use serde_json::{Value, json};

use crate::{Running, sim, start};

async fn export(r: &Running, query: &str) -> reqwest::Response {
    r.http
        .get(format!("{}/v1/history/export?{query}", r.base))
        .bearer_auth(crate::TOKEN)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_by_invoice_stream_and_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let sim = sim().await;
    let r = start(dir.path().join("store"), &sim, |_| {}).await;
    // 3000 messages about one invoice (scheduled far ahead: nothing is sent), 10 about another.
    for batch in 0..3 {
        let msgs: Vec<Value> = (0..1000)
            .map(|i| {
                json!({"to": format!("+1202555{:04}", batch * 1000 + i),
                       "text": format!("Invoice INV-BIG: reminder {i} of a long dispute record"),
                       "send_at": "2099-01-01T00:00:00Z",
                       "metadata": {"invoice": "INV-BIG"}})
            })
            .collect();
        let (code, v) = r
            .post("/v1/messages/batch", &json!({ "messages": msgs }))
            .await;
        assert_eq!(code, 201, "{v}");
    }
    let small: Vec<Value> = (0..10)
        .map(|i| {
            json!({"to": "+12025559999", "text": format!("INV-SMALL {i}"),
                   "send_at": "2099-01-01T00:00:00Z", "metadata": {"invoice": "INV-SMALL"}})
        })
        .collect();
    let (code, _) = r
        .post("/v1/messages/batch", &json!({ "messages": small }))
        .await;
    assert_eq!(code, 201);

    // The small one comes whole, from the index: only its ten messages.
    let text = export(&r, "invoice=INV-SMALL").await.text().await.unwrap();
    assert_eq!(text.lines().count(), 10, "{text}");
    assert!(
        text.lines()
            .all(|l| l.contains("\"invoice\":\"INV-SMALL\""))
    );

    // Two big exports whose clients do not read hold the two places; a third waits its turn.
    let first = export(&r, "invoice=INV-BIG").await;
    let second = export(&r, "invoice=INV-BIG&format=csv").await;
    assert_eq!(
        (first.status().as_u16(), second.status().as_u16()),
        (200, 200)
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let third = export(&r, "invoice=INV-SMALL").await;
    assert_eq!(third.status(), 429);
    assert!(third.headers().contains_key("retry-after"));
    let problem: Value = third.json().await.unwrap();
    assert_eq!(
        problem["type"], "urn:smsgate:problem:exports_busy",
        "{problem}"
    );
    // Read to the end: every message, one accepted entry each, oldest first.
    let jsonl = first.text().await.unwrap();
    let rows: Vec<Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 3000);
    assert!(
        rows.windows(2)
            .all(|w| w[0]["message_id"].as_str() <= w[1]["message_id"].as_str())
    );
    let csv = second.text().await.unwrap();
    assert_eq!(csv.lines().count(), 3001);
    // Places free again.
    let mut freed = false;
    for _ in 0..50 {
        if export(&r, "invoice=INV-SMALL").await.status() == 200 {
            freed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(freed, "the export places were not given back");
    r.stop().await;
    sim.shutdown().await;
}
