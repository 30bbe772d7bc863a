//! A modem that misbehaves: PIN, wrong PIN, unplugged mid-send, frozen, garbage on the line.

use std::time::{Duration, Instant};

use smsgate::modem::{ModemError, ModemState, PartOutcome};
use smsgate::sim::SimConfig;
use smsgate::sms::SubmitOptions;

use crate::{eventually, rig, rig_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pin_is_entered_once() {
    let r = rig_with(
        SimConfig {
            pin: Some("1234".into()),
            ..SimConfig::default()
        },
        |c| c.pin = Some("1234".into()),
    )
    .await;
    assert!(
        r.modem.wait_up(Duration::from_secs(10)).await,
        "{:?}",
        r.modem.status()
    );
    let pins = r
        .sim
        .commands()
        .iter()
        .filter(|c| c.to_ascii_uppercase().starts_with("AT+CPIN="))
        .count();
    assert_eq!(pins, 1);
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_pin_is_never_retried() {
    let r = rig_with(
        SimConfig {
            pin: Some("1234".into()),
            ..SimConfig::default()
        },
        |c| c.pin = Some("0000".into()),
    )
    .await;
    // Several reconnect cycles (backoff is capped at 500 ms in tests).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let st = r.modem.status();
    assert_eq!(st.state, ModemState::Down);
    assert!(
        st.last_error.as_deref().unwrap_or("").contains("PIN"),
        "{st:?}"
    );
    let tries: Vec<String> = r
        .sim
        .commands()
        .into_iter()
        .filter(|c| c.to_ascii_uppercase().starts_with("AT+CPIN="))
        .collect();
    assert_eq!(
        tries,
        vec!["AT+CPIN=\"0000\"".to_string()],
        "exactly one try"
    );
    // Sends are refused at once while down, not queued forever.
    let err = r
        .modem
        .send_text("+15551234567", "x", &SubmitOptions::default())
        .await;
    assert!(
        matches!(
            err,
            Err(smsgate::modem::SendTextError::Modem(ModemError::NotReady(
                _
            )))
        ),
        "{err:?}"
    );
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unplug_mid_send_is_reported_as_maybe_sent_and_the_modem_comes_back() {
    let r = rig().await;
    r.sim.set_latency(Duration::from_millis(800));
    let modem = r.modem.clone();
    let send = tokio::spawn(async move {
        modem
            .send_text("+15551234567", "in flight", &SubmitOptions::default())
            .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    r.sim.unplug();
    let out = send.await.unwrap().unwrap();
    match &out[0] {
        PartOutcome::Failed {
            error: ModemError::PortLost(_),
            maybe_sent: true,
        } => {}
        other => panic!("expected a maybe-sent port loss, got {other:?}"),
    }
    assert!(
        eventually(Duration::from_secs(3), || r.modem.status().state
            == ModemState::Down)
        .await
    );
    r.sim.set_latency(Duration::ZERO);
    r.sim.replug().await.unwrap();
    assert!(
        r.modem.wait_up(Duration::from_secs(10)).await,
        "{:?}",
        r.modem.status()
    );
    let out = r
        .modem
        .send_text("+15551234567", "after replug", &SubmitOptions::default())
        .await
        .unwrap();
    assert!(matches!(out[0], PartOutcome::Sent { .. }), "{out:?}");
    assert!(r.sim.sent().iter().any(|m| m.text == "after replug"));
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_modem_is_detected_within_its_timeout_and_recovers_when_it_thaws() {
    let r = rig().await;
    r.sim.freeze(true);
    let started = Instant::now();
    let out = r
        .modem
        .send_text("+15551234567", "into the void", &SubmitOptions::default())
        .await
        .unwrap();
    let took = started.elapsed();
    match &out[0] {
        PartOutcome::Failed {
            error: ModemError::Timeout { .. },
            maybe_sent: false,
        } => {}
        other => panic!("expected a prompt timeout, got {other:?}"),
    }
    // prompt_timeout is 2 s in the test config.
    assert!(took < Duration::from_secs(4), "took {took:?}");
    assert!(
        eventually(Duration::from_secs(10), || matches!(
            r.modem.status().state,
            ModemState::Down
                | ModemState::Recovering
                | ModemState::Connecting
                | ModemState::Initialising
        ))
        .await
    );
    r.sim.freeze(false);
    assert!(
        r.modem.wait_up(Duration::from_secs(15)).await,
        "{:?}",
        r.modem.status()
    );
    let out = r
        .modem
        .send_text("+15551234567", "thawed", &SubmitOptions::default())
        .await
        .unwrap();
    assert!(matches!(out[0], PartOutcome::Sent { .. }), "{out:?}");
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_the_line_is_survived() {
    let r = rig().await;
    r.sim
        .inject_raw(b"\xff\xfe\x00garbage\r\n^RSSI:12\r\n+CREG: \"\r\n\r\n>>>\r\n");
    let mut long = vec![b'Z'; 10_000];
    long.extend_from_slice(b"\r\n");
    r.sim.inject_raw(&long);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let out = r
        .modem
        .send_text("+15551234567", "still fine", &SubmitOptions::default())
        .await
        .unwrap();
    assert!(matches!(out[0], PartOutcome::Sent { .. }), "{out:?}");
    assert_eq!(r.modem.status().state, ModemState::Up);
    r.stop().await;
}
