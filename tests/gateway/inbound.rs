//! What customers send: stored before it leaves the SIM, reassembled, listed.

use std::time::Duration;

use serde_json::Value;

use crate::{Running, sim, start, wait_modem_up};

const FROM: &str = "+12025550123";

async fn wait_inbound(r: &Running, n: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (code, page) = r.get("/v1/inbound?limit=100").await;
        assert_eq!(code, 200, "{page}");
        let msgs = page["messages"].as_array().cloned().unwrap_or_default();
        if msgs.len() >= n {
            return msgs;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} inbound messages, wanted {n}",
            msgs.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_are_stored_reassembled_and_deleted_from_the_sim() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let sim = sim().await;
    let r = start(store.clone(), &sim, |_| {}).await;
    wait_modem_up(&r).await;
    let long = "Merci! Je préfère payer le minimum ce mois-ci 🙏 ".repeat(4);
    sim.inject_inbound(FROM, " 1 ", false).unwrap();
    sim.inject_inbound("+12025550124", &long, true).unwrap();
    let msgs = wait_inbound(&r, 2).await;
    let by_text = |t: &str| msgs.iter().find(|m| m["text"] == t).cloned();
    let one = by_text(" 1 ").expect("the short reply");
    assert_eq!(one["from"], FROM);
    assert_eq!(one["modem"], "sim0");
    assert_eq!(one["partial"], false);
    let multi = by_text(&long).expect("the long reply, reassembled");
    assert_eq!(multi["encoding"], "ucs2");
    assert!(multi["total_parts"].as_u64().unwrap() >= 2);
    assert_eq!(multi["parts_received"], multi["total_parts"]);
    assert_eq!(
        multi["pdus"].as_array().unwrap().len() as u64,
        multi["total_parts"].as_u64().unwrap()
    );
    // Stored, then deleted from the SIM.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !sim.stored().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "left on the SIM: {:?}",
            sim.stored()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (code, got) = r
        .get(&format!("/v1/inbound/{}", one["id"].as_str().unwrap()))
        .await;
    assert_eq!((code, &got), (200, &one));
    let (code, page) = r.get("/v1/inbound?from=%2B1%20202%20555%200124").await;
    assert_eq!(code, 200);
    assert_eq!(page["messages"].as_array().unwrap().len(), 1);
    assert_eq!(r.get("/v1/inbound/01ARZ3NDEKTSV4RRFFQ69G5FAV").await.0, 404);
    assert_eq!(r.get("/v1/inbound?limit=0").await.0, 422);

    // A reply that arrives while the daemon is down waits on the SIM and is stored once.
    r.stop().await;
    sim.inject_inbound(FROM, "2", false).unwrap();
    assert_eq!(sim.stored().len(), 1);
    let r = start(store, &sim, |_| {}).await;
    let msgs = wait_inbound(&r, 3).await;
    assert_eq!(msgs.iter().filter(|m| m["text"] == "2").count(), 1);
    assert_eq!(msgs.len(), 3);
    r.stop().await;
    sim.shutdown().await;
}
