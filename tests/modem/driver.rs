//! Sending through the driver: single and multi-part, GSM 7-bit and UCS-2, CMS errors, noise, echo.

use std::time::Duration;

use smsgate::modem::{ModemError, ModemState, PartOutcome, Retry};
use smsgate::sim::SimConfig;
use smsgate::sms::SubmitOptions;

use crate::{eventually, rig, rig_with};

fn sent_refs(outcomes: &[PartOutcome]) -> Vec<u8> {
    outcomes
        .iter()
        .map(|o| match o {
            PartOutcome::Sent { message_reference } => *message_reference,
            other => panic!("part not sent: {other:?}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_reads_identity_and_network() {
    let r = rig().await;
    let st = r.modem.status();
    assert_eq!(st.state, ModemState::Up);
    assert_eq!(st.info.sim.as_deref(), Some("READY"));
    assert!(st.info.manufacturer.is_some());
    assert!(st.info.imei.is_some());
    assert!(st.info.operator.is_some());
    assert!(st.info.signal.is_some_and(|s| s.dbm.is_some()));
    assert!(st.info.registration.is_some_and(|r| r.is_registered()));
    assert!(st.info.cnmi.is_some(), "an AT+CNMI setting was accepted");
    let cmds = r.sim.commands();
    for needed in ["ATE0", "AT+CMEE=1", "AT+CPIN?", "AT+CMGF=0"] {
        assert!(
            cmds.iter().any(|c| c.eq_ignore_ascii_case(needed)),
            "{needed} in {cmds:?}"
        );
    }
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_single_and_multipart_gsm7_and_ucs2() {
    let r = rig().await;
    let opts = SubmitOptions::default();
    let gsm = "Invoice INV-1042: $120.50 due Dec 1. Reply 1 for a call, 2 to pay the minimum. €";
    let long_gsm: String = "Past due notice. ".repeat(20); // 340 chars → 3 parts
    let ucs2 =
        "Счёт 1042: 120,50 ₽ до 1 декабря. Ответьте 1 — перезвоним, 2 — минимальный платёж 😀";
    let mut all_refs = Vec::new();
    for (text, parts) in [(gsm, 1), (long_gsm.as_str(), 3), (ucs2, 2)] {
        let out = r
            .modem
            .send_text("+15551234567", text, &opts)
            .await
            .expect("send");
        assert_eq!(out.len(), parts, "{text}");
        all_refs.extend(sent_refs(&out));
    }
    let sent = r.sim.sent();
    assert_eq!(sent.len(), 3);
    assert_eq!(sent[0].text, gsm);
    assert_eq!(sent[0].encoding, "gsm7");
    assert_eq!(sent[1].text, long_gsm);
    assert_eq!(sent[1].parts, 3);
    assert_eq!(sent[2].text, ucs2);
    assert_eq!(sent[2].encoding, "ucs2");
    assert!(sent.iter().all(|m| m.to == "+15551234567"));
    let sim_refs: Vec<u8> = sent
        .iter()
        .flat_map(|m| m.message_references.clone())
        .collect();
    assert_eq!(all_refs, sim_refs, "the driver reports the modem's TP-MRs");
    assert_eq!(r.modem.status().sent_parts, 6);
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cms_errors_are_classified_and_the_queue_moves_on() {
    let r = rig().await;
    let opts = SubmitOptions::default();
    r.sim.fail_next(1, 332);
    let out = r
        .modem
        .send_text("+15551234567", "first", &opts)
        .await
        .unwrap();
    match &out[0] {
        PartOutcome::Failed { error, maybe_sent } => {
            assert_eq!(*error, ModemError::Cms { code: 332 });
            assert_eq!(error.retry(), Retry::Retryable);
            assert!(!maybe_sent, "a CMS error means the network did not take it");
            assert!(error.to_string().contains("network timeout"), "{error}");
        }
        other => panic!("{other:?}"),
    }
    // The retry goes through.
    let out = r
        .modem
        .send_text("+15551234567", "first", &opts)
        .await
        .unwrap();
    assert_eq!(sent_refs(&out).len(), 1);
    // A permanent error.
    r.sim.fail_next(1, 8);
    let out = r
        .modem
        .send_text("+15551234567", "barred", &opts)
        .await
        .unwrap();
    assert!(
        matches!(&out[0], PartOutcome::Failed { error, .. } if error.retry() == Retry::Permanent)
    );
    // Multi-part: when a part fails, the parts after it are not attempted.
    let ok = r
        .modem
        .send_text("+15551234567", "ok", &opts)
        .await
        .unwrap();
    assert_eq!(sent_refs(&ok).len(), 1);
    r.sim.fail_next(1, 42);
    let out = r
        .modem
        .send_text("+15551234567", &"x".repeat(400), &opts)
        .await
        .unwrap();
    assert_eq!(out.len(), 3);
    assert!(matches!(out[0], PartOutcome::Failed { .. }));
    assert!(out[1..].iter().all(|o| *o == PartOutcome::NotAttempted));
    assert_eq!(
        r.modem.status().state,
        ModemState::Up,
        "errors do not take the modem down"
    );
    let texts: Vec<String> = r.sim.sent().iter().map(|m| m.text.clone()).collect();
    assert_eq!(texts, vec!["first", "ok"]);
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn urc_noise_inside_responses_does_not_confuse_the_driver() {
    let r = rig_with(
        SimConfig {
            noise: true,
            ..SimConfig::default()
        },
        |_| {},
    )
    .await;
    assert!(
        r.modem.wait_up(Duration::from_secs(10)).await,
        "{:?}",
        r.modem.status()
    );
    let opts = SubmitOptions::default();
    for i in 0..30 {
        let text = format!("reminder {i}: {}", "é".repeat(i % 7));
        let out = r
            .modem
            .send_text("+15551234567", &text, &opts)
            .await
            .unwrap();
        assert_eq!(sent_refs(&out).len(), 1, "message {i}");
        let st = r
            .modem
            .command("AT+CSQ", Duration::from_secs(2))
            .await
            .unwrap();
        assert!(
            st.value("+CSQ:").is_some(),
            "CSQ answer among noise: {st:?}"
        );
    }
    let sent = r.sim.sent();
    assert_eq!(sent.len(), 30);
    for (i, m) in sent.iter().enumerate() {
        assert_eq!(m.text, format!("reminder {i}: {}", "é".repeat(i % 7)));
    }
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huawei_line_endings_and_echo_after_reset() {
    let r = rig_with(
        SimConfig {
            line_ending: "\r\r\n",
            echo: true,
            ..SimConfig::default()
        },
        |_| {},
    )
    .await;
    assert!(
        r.modem.wait_up(Duration::from_secs(10)).await,
        "{:?}",
        r.modem.status()
    );
    // ATZ brings echo back on: the driver must not take the echo for an answer.
    r.modem
        .command("ATZ", Duration::from_secs(2))
        .await
        .unwrap();
    let resp = r
        .modem
        .command("AT+CGMI", Duration::from_secs(2))
        .await
        .unwrap();
    assert!(
        resp.lines
            .iter()
            .all(|l| !l.eq_ignore_ascii_case("AT+CGMI")),
        "{resp:?}"
    );
    assert!(!resp.lines.is_empty());
    let out = r
        .modem
        .send_text("+15551234567", "after reset", &SubmitOptions::default())
        .await
        .unwrap();
    assert_eq!(sent_refs(&out).len(), 1);
    assert!(eventually(Duration::from_secs(2), || r.sim.sent().len() == 1).await);
    r.stop().await;
}
