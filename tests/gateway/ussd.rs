//! USSD through a modem: `POST /v1/modems/{name}/ussd` against the simulator's operator, and
//! the periodic balance check that reports a low prepaid balance once, signed, to the billing
//! system's receiver.

use std::time::Duration;

use serde_json::json;
use smsgate::modem::BalanceCheck;

use crate::replies::{Receiver, hooks};
use crate::{sim, start, wait_modem_up};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ussd_codes_and_the_low_balance_event() {
    let dir = tempfile::tempdir().unwrap();
    let sim = sim().await;
    sim.set_balance("3.10");
    let rx = Receiver::start().await;
    let cfg = hooks(&rx);
    let r = start(dir.path().join("store"), &sim, |g| {
        g.webhooks = cfg;
        g.modems[0].driver.balance = Some(BalanceCheck {
            code: "*100#".into(),
            interval: Duration::from_millis(300),
            low: Some(5.0),
        });
    })
    .await;
    wait_modem_up(&r).await;

    // Asked by hand.
    let (code, v) = r
        .post("/v1/modems/sim0/ussd", &json!({"code": "*100#"}))
        .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["status"], 0);
    assert!(
        v["text"].as_str().unwrap().contains("Balance: 3.10 USD"),
        "{v}"
    );
    assert_eq!(v["amount"], 3.1);
    let (code, v) = r
        .post("/v1/modems/sim0/ussd", &json!({"code": "*123#"}))
        .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["status"], 4, "not supported: {v}");
    let (code, v) = r
        .post(
            "/v1/modems/sim0/ussd",
            &json!({"code": "*100#\"; AT+CFUN=0"}),
        )
        .await;
    assert_eq!(code, 422, "{v}");
    assert_eq!(v["errors"][0]["field"], "code");
    let (code, _) = r
        .post("/v1/modems/nope/ussd", &json!({"code": "*100#"}))
        .await;
    assert_eq!(code, 404);

    // The periodic check: one event when it falls below 5.00, however many checks follow.
    let low = rx
        .wait_for("modem.balance_low", |g| {
            g.body["type"] == "modem.balance_low"
        })
        .await;
    assert!(low.verified, "signed like every event");
    assert_eq!(low.body["data"]["modem"], "sim0");
    assert_eq!(low.body["data"]["amount"], 3.1);
    assert_eq!(low.body["data"]["threshold"], 5.0);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let count = |rx: &Receiver| {
        rx.got()
            .iter()
            .filter(|g| g.body["type"] == "modem.balance_low")
            .map(|g| g.webhook_id.clone())
            .collect::<std::collections::HashSet<_>>()
            .len()
    };
    assert_eq!(count(&rx), 1);
    let (_, m) = r.get("/v1/modems").await;
    let b = &m["modems"][0]["pool"]["balance"];
    assert_eq!(
        (b["amount"].as_f64(), b["low"].as_bool()),
        (Some(3.1), Some(true)),
        "{m}"
    );
    let metrics = crate::metrics::get_with_token(&r, "/metrics", "text/plain")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("smsgate_modem_balance{modem=\"sim0\"} 3.1"),
        "{metrics}"
    );

    // Topped up, then low again: a second event.
    sim.set_balance("20.00");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, m) = r.get("/v1/modems").await;
        if m["modems"][0]["pool"]["balance"]["low"] == false {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{m}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sim.set_balance("1.00");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while count(&rx) < 2 {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    r.stop().await;
    sim.shutdown().await;
}
