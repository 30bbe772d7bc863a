//! Receiving: +CMTI → AT+CMGR → event → ack → AT+CMGD; multi-part; status reports; the start-up
//! sweep; nothing deleted before the ack.

use std::time::Duration;

use smsgate::modem::{Inbound, ModemEvent, PartOutcome, Source};
use smsgate::sim::SimConfig;
use smsgate::sms::{self, Pdu, SubmitOptions};

use crate::{eventually, rig, rig_with};

fn deliver_of(i: &Inbound) -> &sms::Deliver {
    match &i.decoded {
        Ok(Pdu::Deliver(d)) => d,
        other => panic!("not a deliver: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_is_read_and_deleted_only_after_ack() {
    let mut r = rig().await;
    r.sim.inject_inbound("+15557654321", "1", false).unwrap();
    let Some(ModemEvent::Message(m)) = r.next_inbound(Duration::from_secs(5)).await else {
        panic!("no inbound event")
    };
    let d = deliver_of(&m);
    assert_eq!(d.from.to_string(), "+15557654321");
    assert_eq!(d.user_data.text(), "1");
    assert!(matches!(m.source, Source::Stored { .. }));
    // Not acknowledged yet: still on the SIM.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(r.sim.stored().len(), 1, "kept until stored by the consumer");
    m.ack();
    assert!(eventually(Duration::from_secs(3), || r.sim.stored().is_empty()).await);
    assert!(
        r.sim
            .commands()
            .iter()
            .any(|c| c.to_ascii_uppercase().starts_with("AT+CMGD="))
    );
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_ucs2_reply_arrives_whole() {
    let mut r = rig().await;
    let text = "Да, позвоните мне завтра после обеда, пожалуйста. Номер счёта INV-1042 😀 спасибо!";
    r.sim.inject_inbound("+15557654321", text, true).unwrap();
    let mut bodies = Vec::new();
    let mut concat = Vec::new();
    while bodies.len() < 2 {
        let Some(ModemEvent::Message(m)) = r.next_inbound(Duration::from_secs(5)).await else {
            panic!("missing part")
        };
        let d = deliver_of(&m).clone();
        concat.push(d.user_data.concat().expect("concatenated"));
        bodies.push((d.user_data.concat().map(|c| c.part), d.user_data.body));
        m.ack();
    }
    bodies.sort_by_key(|(p, _)| *p);
    let joined = sms::join_text(bodies.iter().map(|(_, b)| b));
    assert_eq!(joined, text);
    assert_eq!(concat[0].reference, concat[1].reference);
    assert!(eventually(Duration::from_secs(3), || r.sim.stored().is_empty()).await);
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_during_a_send_in_flight() {
    let mut r = rig().await;
    r.sim.set_latency(Duration::from_millis(600));
    let modem = r.modem.clone();
    let send = tokio::spawn(async move {
        modem
            .send_text(
                "+15551234567",
                "sending while a reply comes in",
                &SubmitOptions::default(),
            )
            .await
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    r.sim.inject_inbound("+15557654321", "2", false).unwrap();
    let out = send.await.unwrap().unwrap();
    assert!(matches!(out[0], PartOutcome::Sent { .. }), "{out:?}");
    let Some(ModemEvent::Message(m)) = r.next_inbound(Duration::from_secs(5)).await else {
        panic!("inbound lost while sending")
    };
    assert_eq!(deliver_of(&m).user_data.text(), "2");
    m.ack();
    assert_eq!(r.sim.sent().len(), 1);
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_waiting_on_the_sim_are_read_at_start_and_again_after_a_crash() {
    let sim = smsgate::sim::Simulator::start(SimConfig::default())
        .await
        .unwrap();
    // Arrived while no driver was running.
    sim.inject_inbound("+15550001111", "STOP", false).unwrap();
    sim.inject_inbound("+15550002222", "1", false).unwrap();
    let path = sim.path().display().to_string();
    for round in 0..2 {
        let (tx, mut events) = tokio::sync::mpsc::channel(16);
        let cancel = tokio_util::sync::CancellationToken::new();
        let (modem, task) = smsgate::modem::spawn(crate::fast_config(&path), tx, cancel.clone());
        assert!(
            modem.wait_up(Duration::from_secs(10)).await,
            "{:?}",
            modem.status()
        );
        let mut texts = Vec::new();
        let mut held = Vec::new();
        while texts.len() < 2 {
            match tokio::time::timeout(Duration::from_secs(5), events.recv()).await {
                Ok(Some(ModemEvent::Message(m))) => {
                    texts.push(deliver_of(&m).user_data.text());
                    held.push(m);
                }
                Ok(Some(_)) => {}
                _ => panic!("round {round}: stored messages not offered ({texts:?})"),
            }
        }
        texts.sort();
        assert_eq!(texts, vec!["1", "STOP"]);
        if round == 0 {
            // The consumer "crashes" before storing: nothing may be deleted.
            drop(held);
            cancel.cancel();
            let _ = task.await;
            assert_eq!(
                sim.stored().len(),
                2,
                "unacknowledged messages stay on the SIM"
            );
        } else {
            for m in held {
                m.ack();
            }
            assert!(eventually(Duration::from_secs(3), || sim.stored().is_empty()).await);
            cancel.cancel();
            let _ = task.await;
        }
    }
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reports_come_back_with_the_message_reference() {
    let mut r = rig_with(
        SimConfig {
            status_reports: Some(Duration::from_millis(100)),
            ..SimConfig::default()
        },
        |_| {},
    )
    .await;
    assert!(r.modem.wait_up(Duration::from_secs(10)).await);
    let opts = SubmitOptions {
        status_report: true,
        ..SubmitOptions::default()
    };
    let out = r
        .modem
        .send_text("+15551234567", "with a report", &opts)
        .await
        .unwrap();
    let PartOutcome::Sent { message_reference } = out[0] else {
        panic!("{out:?}")
    };
    let Some(ModemEvent::StatusReport(rep)) = r.next_inbound(Duration::from_secs(5)).await else {
        panic!("no status report")
    };
    let Ok(Pdu::StatusReport(sr)) = &rep.decoded else {
        panic!("{:?}", rep.decoded)
    };
    assert_eq!(sr.message_reference, message_reference);
    assert_eq!(sr.recipient.to_string(), "+15551234567");
    assert_eq!(sr.status.category(), sms::StatusCategory::Delivered);
    rep.ack();
    r.stop().await;
}
