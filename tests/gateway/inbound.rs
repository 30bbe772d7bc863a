//! What customers send: stored before it leaves the SIM, reassembled, listed.

use std::time::Duration;

use serde_json::Value;

use crate::{Running, sim, start, wait_modem_up};

const FROM: &str = "+12025550123";

async fn wait_inbound(r: &Running, n: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (code, page) = r.get("/v1/inbound?limit=1000").await;
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

#[path = "../fixtures/corpus.rs"]
mod corpus_data;

/// What real phones and modems answered to `AT+CMGR` (tests/fixtures/modem-answers.toml, each
/// with its source), replayed byte for byte by the simulator: every ordinary text is stored with
/// its text, every unreadable answer is stored raw with its reason, reports go to the unmatched
/// reports, the SIM keeps nothing but a phone's own texts (counted), and the daemon goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_device_answers_are_stored_and_the_sim_is_freed() {
    let corpus: Vec<_> = corpus_data::corpus()
        .into_iter()
        .filter(|a| a.kind != "empty")
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let sim = smsgate::sim::Simulator::start(smsgate::sim::SimConfig {
        status_reports: None,
        storage_capacity: 60,
        ..smsgate::sim::SimConfig::default()
    })
    .await
    .unwrap();
    let r = start(dir.path().join("store"), &sim, |_| {}).await;
    wait_modem_up(&r).await;
    for a in &corpus {
        sim.inject_verbatim(&a.answer)
            .unwrap_or_else(|e| panic!("{}: {e}", a.source));
    }
    let foreign: Vec<_> = corpus
        .iter()
        .filter(|a| a.kind == "submit" || a.kind == "command")
        .collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while sim.stored().len() > foreign.len() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} slots left on the SIM, {} foreign: {:?}",
            sim.stored().len(),
            foreign.len(),
            sim.stored()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // What is left is exactly the phones' own texts.
    let left: Vec<String> = sim.stored().into_iter().map(|(_, hex)| hex).collect();
    for f in &foreign {
        let pdu_line = f.answer.split("\r\n").nth(1).unwrap_or("");
        assert!(
            left.iter().any(|hex| pdu_line.starts_with(hex.as_str())),
            "{} not left on the SIM",
            f.source
        );
    }
    // Every ordinary text, stored with its sender and text.
    let singles: Vec<_> = corpus
        .iter()
        .filter(|a| a.kind == "deliver" && a.single())
        .collect();
    let unreadable: Vec<_> = corpus
        .iter()
        .filter(|a| a.kind == "unreadable" || a.kind == "text-mode")
        .collect();
    let msgs = wait_inbound(&r, singles.len() + unreadable.len()).await;
    for a in &singles {
        assert!(
            // The sender as the PDU has it: `from`, or `from_raw` where it was read into E.164.
            msgs.iter().any(|m| (m["from"].as_str() == a.from.as_deref()
                || m["from_raw"].as_str() == a.from.as_deref())
                && m["text"].as_str() == a.text.as_deref()
                && m.get("decode_error").is_none()),
            "{} not stored as {:?} from {:?}",
            a.source,
            a.text,
            a.from
        );
    }
    // Every unreadable answer, kept raw with its reason.
    let (code, page) = r.get("/v1/inbound?unreadable=true&limit=100").await;
    assert_eq!(code, 200);
    let kept = page["messages"].as_array().cloned().unwrap_or_default();
    assert_eq!(kept.len(), unreadable.len(), "{kept:?}");
    for a in &unreadable {
        // The header, after any URC the device printed first (the driver sets those aside).
        let header = a
            .answer
            .split("\r\n")
            .find(|l| l.starts_with("+CM"))
            .unwrap_or("");
        assert!(
            kept.iter().any(|m| m["raw_answer"]
                .as_str()
                .is_some_and(|raw| raw.starts_with(header))
                && m["decode_error"].as_str().is_some_and(|e| !e.is_empty())),
            "{} not kept raw: {kept:?}",
            a.source
        );
    }
    // Reports from the SIM (a previous owner's sends among them) are kept as unmatched.
    let reports = corpus.iter().filter(|a| a.kind == "report").count();
    let (_, page) = r.get("/v1/reports/unmatched?limit=100").await;
    assert_eq!(
        page["reports"].as_array().map(Vec::len),
        Some(reports),
        "{page}"
    );
    // The modem's status counts what the SIM still holds.
    let (_, modems) = r.get("/v1/modems").await;
    assert_eq!(
        modems["modems"][0]["foreign_messages"],
        foreign.len(),
        "{modems}"
    );
    let metrics = crate::metrics::get_with_token(&r, "/metrics", "text/plain")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(
        crate::metrics::sample(&metrics, "smsgate_modem_sim_foreign{modem=\"sim0\"}"),
        Some(foreign.len() as f64),
        "{metrics}"
    );
    // A counter of the process: other tests' gateways in it may add to it.
    assert!(
        crate::metrics::sample(&metrics, "smsgate_inbound_unreadable_total{modem=\"sim0\"}")
            .is_some_and(|n| n >= unreadable.len() as f64),
        "{metrics}"
    );
    // And the daemon goes on: a customer's next text and a send.
    sim.inject_inbound(FROM, "still here", false).unwrap();
    let msgs = wait_inbound(&r, singles.len() + unreadable.len() + 1).await;
    assert!(msgs.iter().any(|m| m["text"] == "still here"));
    let (code, m) = r
        .post(
            "/v1/messages",
            &serde_json::json!({"to": "+12025550199", "text": "after the corpus"}),
        )
        .await;
    assert_eq!(code, 201, "{m}");
    let id = m["id"].as_str().unwrap();
    assert_eq!(
        r.wait_status(id, "sent", Duration::from_secs(10)).await,
        "sent"
    );
    r.stop().await;
    sim.shutdown().await;
}

/// `purge_foreign`: a phone's own texts are deleted; nothing else changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_foreign_deletes_a_phones_own_texts() {
    let corpus = corpus_data::corpus();
    let submits: Vec<_> = corpus.iter().filter(|a| a.kind == "submit").collect();
    let deliver = corpus
        .iter()
        .find(|a| a.kind == "deliver" && a.single())
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sim = sim().await;
    let r = start(dir.path().join("store"), &sim, |g| {
        g.modems[0].driver.purge_foreign = true;
    })
    .await;
    wait_modem_up(&r).await;
    for a in submits.iter().chain([&deliver]) {
        sim.inject_verbatim(&a.answer).unwrap();
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !sim.stored().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "left: {:?}",
            sim.stored()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let msgs = wait_inbound(&r, 1).await;
    assert_eq!(
        msgs.len(),
        1,
        "only the customer's text is a message: {msgs:?}"
    );
    assert_eq!(msgs[0]["text"].as_str(), deliver.text.as_deref());
    let (_, modems) = r.get("/v1/modems").await;
    assert_eq!(modems["modems"][0]["foreign_messages"], 0);
    r.stop().await;
    sim.shutdown().await;
}
