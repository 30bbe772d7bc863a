//! The simulator driven the way the driver drives it: a real client on the PTY slave, raw AT.
//!
//! One file, longer than 800 lines, on purpose: every test here is a scenario that drives the
//! whole simulator through its PTY with the same `Client`, and most of them cross several of
//! the task's parts at once (a send is input framing, a command, the network and the output).
//! Cut along those parts, each scenario would land in one file by an arbitrary choice and the
//! shared client would move away from every test that reads it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{Instant, timeout};
use tokio_serial::{SerialPortBuilderExt, SerialStream};

use super::*;
use crate::sms::{Pdu, StatusCategory, SubmitOptions, decode_hex, encode_submit, join_text};

const STEP: Duration = Duration::from_secs(3);

/// A client on the slave side, with a buffer of what arrived and not yet checked.
struct Client {
    port: SerialStream,
    buf: Vec<u8>,
}

impl Client {
    async fn open(path: &Path) -> Client {
        let deadline = Instant::now() + STEP;
        loop {
            match tokio_serial::new(path.to_string_lossy(), 115_200).open_native_async() {
                Ok(port) => {
                    return Client {
                        port,
                        buf: Vec::new(),
                    };
                }
                Err(e) if Instant::now() > deadline => panic!("open {}: {e}", path.display()),
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    async fn send(&mut self, bytes: impl AsRef<[u8]>) {
        AsyncWriteExt::write_all(&mut self.port, bytes.as_ref())
            .await
            .unwrap();
    }

    async fn fill(&mut self, deadline: Instant) -> bool {
        let mut tmp = [0u8; 1024];
        match tokio::time::timeout_at(deadline, AsyncReadExt::read(&mut self.port, &mut tmp)).await
        {
            Ok(Ok(n)) if n > 0 => {
                self.buf.extend_from_slice(&tmp[..n]);
                true
            }
            Ok(Ok(_)) => panic!("port closed; had {:?}", self.text()),
            Ok(Err(e)) => panic!("read error {e}; had {:?}", self.text()),
            Err(_) => false,
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.buf).into_owned()
    }

    /// The next bytes are exactly `expected`.
    async fn expect(&mut self, expected: &str) {
        let deadline = Instant::now() + STEP;
        while self.buf.len() < expected.len() {
            if !self.fill(deadline).await {
                break;
            }
        }
        let n = expected.len().min(self.buf.len());
        let got = String::from_utf8_lossy(&self.buf[..n]).into_owned();
        assert_eq!(got, expected, "(buffer: {:?})", self.text());
        self.buf.drain(..n);
    }

    /// Everything up to and including `needle`.
    async fn until(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + STEP;
        loop {
            if let Some(pos) = find(&self.buf, needle.as_bytes()) {
                let end = pos + needle.len();
                let got = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                self.buf.drain(..end);
                return got;
            }
            if !self.fill(deadline).await {
                panic!("no {needle:?} in time; got {:?}", self.text());
            }
        }
    }

    /// Nothing arrives for `d`.
    async fn quiet(&mut self, d: Duration) {
        let _ = self.fill(Instant::now() + d).await;
        assert!(self.buf.is_empty(), "unexpected {:?}", self.text());
    }

    /// Sends a command line and returns the response up to the final result.
    async fn at(&mut self, cmd: &str) -> String {
        self.send(format!("{cmd}\r")).await;
        let deadline = Instant::now() + STEP;
        loop {
            let t = self.text();
            if let Some(end) = final_result_end(&t) {
                self.buf.drain(..end);
                return t[..end].to_string();
            }
            if !self.fill(deadline).await {
                panic!("no final result for {cmd}; got {t:?}");
            }
        }
    }
}

/// Where the first final result line (`OK`, `ERROR`, `+CMS ERROR: …`, `+CME ERROR: …`) ends.
fn final_result_end(t: &str) -> Option<usize> {
    let mut pos = 0;
    for line in t.split_inclusive("\r\n") {
        pos += line.len();
        if !line.ends_with("\r\n") {
            return None;
        }
        let l = line.trim_end();
        if l == "OK" || l == "ERROR" || l.starts_with("+CMS ERROR:") || l.starts_with("+CME ERROR:")
        {
            return Some(pos);
        }
    }
    None
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn temp_path(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("smsgate-sim-{}-{n}-{name}", std::process::id()))
}

/// A simulator and a client with echo off and numeric errors, ready for SMS.
async fn quiet_modem(cfg: SimConfig) -> (SimHandle, Client) {
    let sim = Simulator::start(cfg).await.unwrap();
    let mut c = Client::open(&sim.path()).await;
    c.send("ATE0\r").await;
    c.expect("ATE0\r\r\nOK\r\n").await;
    assert_eq!(c.at("AT+CMEE=1").await, "\r\nOK\r\n");
    (sim, c)
}

/// Sends one PDU part with `AT+CMGS` and returns the full answer.
async fn cmgs(c: &mut Client, len: usize, hex: &str) -> String {
    c.send(format!("AT+CMGS={len}\r")).await;
    c.expect("\r\n> ").await;
    c.send(format!("{hex}\x1a")).await;
    c.until("\r\n").await; // the blank before the result
    let line = c.until("\r\n").await;
    if line.starts_with("+CMGS:") {
        let ok = c.until("\r\n").await;
        let ok2 = c.until("\r\n").await;
        format!("{line}{ok}{ok2}")
    } else {
        line
    }
}

#[tokio::test]
async fn echo_is_on_by_default_and_ate0_turns_it_off() {
    let sim = Simulator::start(SimConfig::default()).await.unwrap();
    let mut c = Client::open(&sim.path()).await;
    c.send("AT\r").await;
    c.expect("AT\r\r\nOK\r\n").await;
    // CR LF: the LF is part of the terminator, not echoed.
    c.send("at\r\n").await;
    c.expect("at\r\r\nOK\r\n").await;
    c.send("ATE0\r").await;
    c.expect("ATE0\r\r\nOK\r\n").await;
    c.send("AT\r").await;
    c.expect("\r\nOK\r\n").await;
    c.send("AT+NOSUCH\r").await;
    c.expect("\r\nERROR\r\n").await;
    // Several commands on one line (V.250): one final result.
    c.send("ATV1+CMEE=1;+CREG?\r").await;
    c.expect("\r\n+CREG: 0,1\r\n\r\nOK\r\n").await;
    c.send("ATE1\r").await;
    c.expect("\r\nOK\r\n").await;
    c.send("AT+CSQ\r").await;
    c.expect("AT+CSQ\r\r\n+CSQ: 20,99\r\n\r\nOK\r\n").await;
    // A/ repeats the last line without a CR.
    c.send("A/").await;
    c.expect("A/\r\n+CSQ: 20,99\r\n\r\nOK\r\n").await;
    assert_eq!(
        sim.commands(),
        vec![
            "AT",
            "at",
            "ATE0",
            "AT",
            "AT+NOSUCH",
            "ATV1+CMEE=1;+CREG?",
            "ATE1",
            "AT+CSQ",
            "AT+CSQ"
        ]
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn bytes_cross_the_pty_unchanged_both_ways() {
    let sim = Simulator::start(SimConfig::default()).await.unwrap();
    let mut c = Client::open(&sim.path()).await;
    c.send("AT\r").await;
    c.expect("AT\r\r\nOK\r\n").await;
    // Modem → client: every byte value, CR, LF, XON/XOFF, Ctrl-C, Ctrl-Z included.
    let all: Vec<u8> = (0..=255u8).collect();
    sim.inject_raw(&all);
    let deadline = Instant::now() + STEP;
    while c.buf.len() < all.len() && c.fill(deadline).await {}
    assert_eq!(c.buf, all);
    c.buf.clear();
    // Client → modem: the echo gives back exactly what was typed (no CR→LF, no ^C signal).
    let typed = b"X\x03\x11\x13\x7f\x1a\x1b\x04\xc3\xa9\r";
    c.send(typed).await;
    let deadline = Instant::now() + STEP;
    while c.buf.len() < typed.len() && c.fill(deadline).await {}
    assert_eq!(c.buf, typed);
    sim.shutdown().await;
}

#[tokio::test]
async fn identity_and_status_queries() {
    let (sim, mut c) = quiet_modem(SimConfig::default()).await;
    assert_eq!(c.at("AT+CGMI").await, "\r\nsmsgate\r\n\r\nOK\r\n");
    assert_eq!(c.at("AT+CGSN").await, "\r\n356938035643809\r\n\r\nOK\r\n");
    assert_eq!(c.at("AT+CPIN?").await, "\r\n+CPIN: READY\r\n\r\nOK\r\n");
    assert_eq!(
        c.at("AT+COPS?").await,
        "\r\n+COPS: 0,0,\"SimNet\",7\r\n\r\nOK\r\n"
    );
    assert_eq!(
        c.at("AT+CSCA?").await,
        "\r\n+CSCA: \"+15550000000\",145\r\n\r\nOK\r\n"
    );
    assert_eq!(
        c.at("AT+CPMS=\"SM\",\"SM\",\"SM\"").await,
        "\r\n+CPMS: 0,30,0,30,0,30\r\n\r\nOK\r\n"
    );
    assert_eq!(
        c.at("AT+CNMI=?").await,
        "\r\n+CNMI: (0-3),(0-3),(0,2),(0-2),(0,1)\r\n\r\nOK\r\n"
    );
    assert_eq!(c.at("AT+CMGF=0").await, "\r\nOK\r\n");
    assert_eq!(c.at("AT+CMGF?").await, "\r\n+CMGF: 0\r\n\r\nOK\r\n");
    assert_eq!(c.at("AT+CMMS=2").await, "\r\nOK\r\n");
    assert_eq!(
        c.at("AT+CNUM").await,
        "\r\n+CNUM: \"\",\"+15550001234\",145\r\n\r\nOK\r\n"
    );
    assert_eq!(c.at("AT+CFUN=0").await, "\r\nOK\r\n");
    assert_eq!(c.at("AT+CREG?").await, "\r\n+CREG: 0,0\r\n\r\nOK\r\n");
    assert_eq!(c.at("AT+CFUN=1").await, "\r\nOK\r\n");
    // USSD: OK at once, the operator's answer later as a URC.
    assert_eq!(c.at("AT+CUSD=1,\"*100#\",15").await, "\r\nOK\r\n");
    sim.shutdown().await;
}

#[tokio::test]
async fn cmgs_single_part_with_echo_on() {
    let sim = Simulator::start(SimConfig::default()).await.unwrap();
    let mut c = Client::open(&sim.path()).await;
    let msg = encode_submit("+15551234567", "hello", &SubmitOptions::default()).unwrap();
    let part = &msg.parts[0];
    c.send(format!("AT+CMGS={}\r", part.tpdu_length)).await;
    c.expect(&format!("AT+CMGS={}\r\r\n> ", part.tpdu_length))
        .await;
    c.send(format!("{}\x1a", part.hex())).await;
    // The typed PDU is echoed too; Ctrl-Z is not.
    c.expect(&format!("{}\r\n+CMGS: 0\r\n\r\nOK\r\n", part.hex()))
        .await;
    let sent = sim.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].to, "+15551234567");
    assert_eq!(sent[0].text, "hello");
    assert_eq!(sent[0].encoding, "gsm7");
    assert_eq!(sent[0].parts, 1);
    assert_eq!(sent[0].message_references, vec![0]);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cmgs_multipart_gsm7_and_ucs2_are_joined() {
    let (sim, mut c) = quiet_modem(SimConfig::default()).await;
    let long7 = "Payment reminder: ".repeat(12);
    let long_ucs2 = "Напоминание об оплате — спасибо! ".repeat(3);
    for (i, text) in [long7.as_str(), long_ucs2.as_str()].into_iter().enumerate() {
        let opts = SubmitOptions {
            concat_reference: 40 + i as u8,
            ..SubmitOptions::default()
        };
        let msg = encode_submit("+15557654321", text, &opts).unwrap();
        assert_eq!(msg.parts.len(), 2, "{text}");
        for (j, part) in msg.parts.iter().enumerate() {
            let mr = i * 2 + j;
            assert_eq!(
                cmgs(&mut c, part.tpdu_length, &part.hex()).await,
                format!("+CMGS: {mr}\r\n\r\nOK\r\n")
            );
        }
    }
    let sent = sim.sent();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0].text, long7);
    assert_eq!(sent[0].encoding, "gsm7");
    assert_eq!(sent[0].parts, 2);
    assert_eq!(sent[0].message_references, vec![0, 1]);
    assert_eq!(sent[1].text, long_ucs2);
    assert_eq!(sent[1].encoding, "ucs2");
    assert_eq!(sent[1].message_references, vec![2, 3]);
    sim.shutdown().await;
}

#[tokio::test]
async fn cmgs_rejects_a_wrong_length_and_follows_cmee() {
    let (sim, mut c) = quiet_modem(SimConfig::default()).await;
    let msg = encode_submit("+15551234567", "hi", &SubmitOptions::default()).unwrap();
    let part = &msg.parts[0];
    assert_eq!(
        cmgs(&mut c, part.tpdu_length + 1, &part.hex()).await,
        "+CMS ERROR: 304\r\n"
    );
    // Not hex, or not a SUBMIT.
    assert_eq!(cmgs(&mut c, 3, "00ZZ0102").await, "+CMS ERROR: 304\r\n");
    assert_eq!(c.at("AT+CMEE=2").await, "\r\nOK\r\n");
    assert_eq!(
        cmgs(&mut c, part.tpdu_length - 1, &part.hex()).await,
        "+CMS ERROR: invalid PDU mode parameter\r\n"
    );
    assert_eq!(c.at("AT+CMEE=0").await, "\r\nOK\r\n");
    assert_eq!(
        cmgs(&mut c, part.tpdu_length - 1, &part.hex()).await,
        "ERROR\r\n"
    );
    // ESC abandons the message.
    c.send(format!("AT+CMGS={}\r", part.tpdu_length)).await;
    c.expect("\r\n> ").await;
    c.send(format!("{}\x1b", part.hex())).await;
    c.expect("\r\nOK\r\n").await;
    assert!(sim.sent().is_empty());
    sim.shutdown().await;
}

#[tokio::test]
async fn fail_next_and_latency() {
    let (sim, mut c) = quiet_modem(SimConfig::default()).await;
    let msg = encode_submit("+15551234567", "retry me", &SubmitOptions::default()).unwrap();
    let part = &msg.parts[0];
    sim.fail_next(2, 331);
    for _ in 0..2 {
        assert_eq!(
            cmgs(&mut c, part.tpdu_length, &part.hex()).await,
            "+CMS ERROR: 331\r\n"
        );
    }
    sim.set_latency(Duration::from_millis(300));
    let started = Instant::now();
    c.send(format!("AT+CMGS={}\r", part.tpdu_length)).await;
    c.expect("\r\n> ").await;
    c.send(format!("{}\x1a", part.hex())).await;
    // A command typed while the send runs waits for it.
    c.send("AT\r").await;
    c.expect("\r\n+CMGS: 0\r\n\r\nOK\r\n\r\nOK\r\n").await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(sim.sent().len(), 1);
    sim.set_error_rate(1.0, 38);
    assert_eq!(
        cmgs(&mut c, part.tpdu_length, &part.hex()).await,
        "+CMS ERROR: 38\r\n"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn a_verbatim_answer_is_replayed_byte_for_byte_and_listed() {
    let (sim, mut c) = quiet_modem(SimConfig::default()).await;
    assert_eq!(c.at("AT+CNMI=2,1,0,1,0").await, "\r\nOK\r\n");
    // Gammu's capture: a header without the alpha field and a length that disagrees.
    let answer =
        "+CMGR: 0,23\r\n07912374151616F6040B912374786468F300002010701280334009D4E2940A6A01002D\r\n";
    assert_eq!(sim.inject_verbatim(answer).unwrap(), 1);
    c.expect("\r\n+CMTI: \"SM\",1\r\n").await;
    assert_eq!(c.at("AT+CMGR=1").await, format!("\r\n{answer}\r\nOK\r\n"));
    assert_eq!(
        c.at("AT+CMGL=4").await,
        format!(
            "\r\n+CMGL: 1,0,23\r\n07912374151616F6040B912374786468F300002010701280334009D4E2940A6A01002D\r\n\r\nOK\r\n"
        )
    );
    // One captured from AT+CMGL is stored in its +CMGR form.
    let listed = "+CMGL: 0,3,,18\r\n0011000B817044763185F60000AD044D76F80C\r\n";
    assert_eq!(sim.inject_verbatim(listed).unwrap(), 2);
    c.expect("\r\n+CMTI: \"SM\",2\r\n").await;
    assert_eq!(
        c.at("AT+CMGR=2").await,
        "\r\n+CMGR: 3,,18\r\n0011000B817044763185F60000AD044D76F80C\r\n\r\nOK\r\n"
    );
    assert_eq!(c.at("AT+CMGD=1").await, "\r\nOK\r\n");
    assert_eq!(sim.stored().len(), 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn inbound_is_stored_indicated_read_and_deleted() {
    let (sim, mut c) = quiet_modem(SimConfig::default()).await;
    assert_eq!(c.at("AT+CNMI=2,1,0,1,0").await, "\r\nOK\r\n");
    sim.inject_inbound("+15551230000", "PAID, thanks @ 5€", false)
        .unwrap();
    c.expect("\r\n+CMTI: \"SM\",1\r\n").await;
    assert_eq!(sim.stored().len(), 1);
    let r = c.at("AT+CMGR=1").await;
    let lines: Vec<&str> = r.split("\r\n").collect();
    // "", "+CMGR: 0,,<len>", "<pdu>", "", "OK", ""
    assert_eq!(lines[0], "");
    let len: usize = lines[1]
        .strip_prefix("+CMGR: 0,,")
        .unwrap()
        .parse()
        .unwrap();
    let pdu = lines[2];
    assert_eq!(pdu, sim.stored()[0].1);
    assert_eq!(&lines[3..], ["", "OK", ""]);
    let octets = crate::sms::parse_hex(pdu).unwrap();
    assert_eq!(len, octets.len() - 1 - usize::from(octets[0]));
    let Pdu::Deliver(d) = decode_hex(pdu, true).unwrap() else {
        panic!("not a DELIVER")
    };
    assert_eq!(d.from.to_string(), "+15551230000");
    assert_eq!(d.user_data.text(), "PAID, thanks @ 5€");
    // Read now: stat 1.
    assert!(c.at("AT+CMGR=1").await.starts_with("\r\n+CMGR: 1,,"));
    assert!(c.at("AT+CMGL=4").await.starts_with("\r\n+CMGL: 1,1,,"));
    assert_eq!(c.at("AT+CMGD=1").await, "\r\nOK\r\n");
    assert!(sim.stored().is_empty());
    assert_eq!(c.at("AT+CMGR=1").await, "\r\nOK\r\n");
    assert_eq!(c.at("AT+CMGR=31").await, "\r\n+CMS ERROR: 321\r\n");
    assert_eq!(c.at("AT+CMGL=4").await, "\r\nOK\r\n");
    sim.shutdown().await;
}

#[tokio::test]
async fn inbound_multipart_ucs2_and_direct_delivery() {
    let (sim, mut c) = quiet_modem(SimConfig::default()).await;
    assert_eq!(c.at("AT+CNMI=2,1,0,1,0").await, "\r\nOK\r\n");
    let text = "Когда можно оплатить? ".repeat(4);
    sim.inject_inbound("+15551230000", &text, true).unwrap();
    c.expect("\r\n+CMTI: \"SM\",1\r\n\r\n+CMTI: \"SM\",2\r\n")
        .await;
    let r = c.at("AT+CMGL=4").await;
    let bodies: Vec<_> = r
        .split("\r\n")
        .filter(|l| !l.is_empty() && !l.starts_with('+') && *l != "OK")
        .map(|hex| match decode_hex(hex, true).unwrap() {
            Pdu::Deliver(d) => d.user_data.body,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(bodies.len(), 2);
    assert_eq!(join_text(&bodies), text);
    assert_eq!(c.at("AT+CMGD=0,4").await, "\r\nOK\r\n");
    assert!(sim.stored().is_empty());

    // mt=2: routed to the client, not stored.
    assert_eq!(c.at("AT+CNMI=2,2,0,1,0").await, "\r\nOK\r\n");
    sim.inject_inbound("15551230000", "direct", false).unwrap();
    let header = c.until("\r\n").await;
    assert_eq!(header, "\r\n");
    let header = c.until("\r\n").await;
    let len: usize = header
        .strip_prefix("+CMT: ,")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let pdu = c.until("\r\n").await;
    let Pdu::Deliver(d) = decode_hex(pdu.trim(), true).unwrap() else {
        panic!()
    };
    assert_eq!(d.user_data.text(), "direct");
    assert_eq!(d.from.to_string(), "15551230000");
    assert_eq!(len, pdu.trim().len() / 2 - 8); // SMSC field: 1 + 7 octets for +15550000000
    assert!(sim.stored().is_empty());
    // Phase 2: nothing to acknowledge.
    assert_eq!(c.at("AT+CNMA").await, "\r\n+CMS ERROR: 340\r\n");
    sim.shutdown().await;
}

#[tokio::test]
async fn status_report_follows_a_send_that_asked() {
    let (sim, mut c) = quiet_modem(SimConfig::default()).await;
    assert_eq!(c.at("AT+CNMI=2,1,0,1,0").await, "\r\nOK\r\n");
    let opts = SubmitOptions {
        status_report: true,
        ..SubmitOptions::default()
    };
    let msg = encode_submit("+15551234567", "report please", &opts).unwrap();
    let part = &msg.parts[0];
    assert_eq!(
        cmgs(&mut c, part.tpdu_length, &part.hex()).await,
        "+CMGS: 0\r\n\r\nOK\r\n"
    );
    c.expect("\r\n+CDS: ").await;
    let len: usize = c.until("\r\n").await.trim().parse().unwrap();
    let pdu = c.until("\r\n").await;
    let pdu = pdu.trim();
    let Pdu::StatusReport(r) = decode_hex(pdu, true).unwrap() else {
        panic!("not a status report")
    };
    assert_eq!(r.message_reference, 0);
    assert_eq!(r.recipient.to_string(), "+15551234567");
    assert_eq!(r.status.category(), StatusCategory::Delivered);
    assert_eq!(len, pdu.len() / 2 - 8);

    // ds=2: stored in "SR" and indicated; a failure code this time.
    sim.set_status_reports(Some(Duration::from_millis(50)), 0x46);
    assert_eq!(c.at("AT+CNMI=2,1,0,2,0").await, "\r\nOK\r\n");
    assert_eq!(
        cmgs(&mut c, part.tpdu_length, &part.hex()).await,
        "+CMGS: 1\r\n\r\nOK\r\n"
    );
    c.expect("\r\n+CDSI: \"SR\",1\r\n").await;
    assert_eq!(
        c.at("AT+CPMS=\"SR\"").await,
        "\r\n+CPMS: 1,30,0,30,0,30\r\n\r\nOK\r\n"
    );
    let r = c.at("AT+CMGR=1").await;
    let hex = r.split("\r\n").nth(2).unwrap();
    let Pdu::StatusReport(r) = decode_hex(hex, true).unwrap() else {
        panic!()
    };
    assert_eq!(r.message_reference, 1);
    assert_eq!(r.status.category(), StatusCategory::Failed);

    // No report when the PDU did not ask.
    sim.set_status_reports(Some(Duration::ZERO), 0);
    let plain = encode_submit("+15551234567", "no report", &SubmitOptions::default()).unwrap();
    let p = &plain.parts[0];
    assert_eq!(
        cmgs(&mut c, p.tpdu_length, &p.hex()).await,
        "+CMGS: 2\r\n\r\nOK\r\n"
    );
    c.quiet(Duration::from_millis(200)).await;
    sim.shutdown().await;
}

#[tokio::test]
async fn pin_flow_wrong_pin_and_puk() {
    let cfg = SimConfig {
        pin: Some("1234".into()),
        ..SimConfig::default()
    };
    let (sim, mut c) = quiet_modem(cfg).await;
    assert_eq!(c.at("AT+CPIN?").await, "\r\n+CPIN: SIM PIN\r\n\r\nOK\r\n");
    assert_eq!(c.at("AT+CMGL=4").await, "\r\n+CMS ERROR: 311\r\n");
    assert_eq!(c.at("AT+CIMI").await, "\r\n+CME ERROR: 11\r\n");
    assert_eq!(c.at("AT+CREG?").await, "\r\n+CREG: 0,0\r\n\r\nOK\r\n");
    assert_eq!(c.at("AT+CPIN=\"0000\"").await, "\r\n+CME ERROR: 16\r\n");
    assert_eq!(c.at("AT+CPIN=\"1234\"").await, "\r\nOK\r\n");
    assert_eq!(c.at("AT+CPIN?").await, "\r\n+CPIN: READY\r\n\r\nOK\r\n");
    assert_eq!(c.at("AT+CIMI").await, "\r\n001010123456789\r\n\r\nOK\r\n");
    assert_eq!(c.at("AT+CPIN=\"1234\"").await, "\r\n+CME ERROR: 3\r\n");

    // The modem rebooted behind our back and asks again; three wrong PINs lock it.
    sim.require_pin(Some("1234".into()));
    assert_eq!(c.at("AT+CPIN?").await, "\r\n+CPIN: SIM PIN\r\n\r\nOK\r\n");
    for _ in 0..3 {
        assert_eq!(c.at("AT+CPIN=\"9999\"").await, "\r\n+CME ERROR: 16\r\n");
    }
    assert_eq!(c.at("AT+CPIN?").await, "\r\n+CPIN: SIM PUK\r\n\r\nOK\r\n");
    assert_eq!(c.at("AT+CPIN=\"1234\"").await, "\r\n+CME ERROR: 12\r\n");
    assert_eq!(c.at("AT+CMGL=4").await, "\r\n+CMS ERROR: 316\r\n");
    assert_eq!(c.at("AT+CPIN=\"12345678\",\"4321\"").await, "\r\nOK\r\n");
    assert_eq!(c.at("AT+CPIN?").await, "\r\n+CPIN: READY\r\n\r\nOK\r\n");
    sim.shutdown().await;
}

#[tokio::test]
async fn unplug_closes_the_port_and_replug_brings_a_fresh_modem() {
    let link = temp_path("modem");
    let cfg = SimConfig {
        link: Some(link.clone()),
        ..SimConfig::default()
    };
    let (sim, mut c) = quiet_modem(cfg).await;
    assert_eq!(sim.path(), link);
    let first = sim.slave_path().unwrap();
    assert_eq!(std::fs::read_link(&link).unwrap(), first);
    assert_eq!(c.at("AT+CNMI=2,1,0,0,0").await, "\r\nOK\r\n");
    sim.inject_inbound("+15551230000", "keep me", false)
        .unwrap();
    c.expect("\r\n+CMTI: \"SM\",1\r\n").await;

    sim.unplug();
    let mut tmp = [0u8; 16];
    let r = timeout(STEP, AsyncReadExt::read(&mut c.port, &mut tmp))
        .await
        .expect("the read must end");
    assert!(matches!(r, Ok(0) | Err(_)), "{r:?}");
    drop(c);
    assert!(std::fs::symlink_metadata(&link).is_err());
    assert_eq!(sim.slave_path(), None);

    sim.replug().await.unwrap();
    assert!(std::fs::read_link(&link).is_ok());
    let mut c = Client::open(&link).await;
    // Reset: echo is back on, CNMI back to defaults; the SIM kept the message.
    c.send("AT\r").await;
    c.expect("AT\r\r\nOK\r\n").await;
    c.send("AT+CNMI?\r").await;
    c.expect("AT+CNMI?\r\r\n+CNMI: 0,0,0,0,0\r\n\r\nOK\r\n")
        .await;
    assert_eq!(sim.stored().len(), 1);
    sim.shutdown().await;
    assert!(std::fs::symlink_metadata(&link).is_err());
}

#[tokio::test]
async fn a_client_may_close_and_reopen_without_seeing_stale_output() {
    let sim = Simulator::start(SimConfig::default()).await.unwrap();
    let mut c = Client::open(&sim.path()).await;
    c.send("AT+CNMI=2,1,0,0,0\r").await;
    // Close without reading the answer.
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(c);
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Output while nobody listens is lost, like on a real port.
    sim.inject_inbound("+15551230000", "while away", false)
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut c = Client::open(&sim.path()).await;
    c.quiet(Duration::from_millis(200)).await;
    c.send("AT\r").await;
    c.expect("AT\r\r\nOK\r\n").await;
    assert_eq!(sim.stored().len(), 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn freeze_stops_all_answers_until_thawed() {
    let (sim, mut c) = quiet_modem(SimConfig::default()).await;
    sim.freeze(true);
    c.send("AT\r").await;
    c.quiet(Duration::from_millis(500)).await;
    sim.freeze(false);
    assert_eq!(c.at("AT").await, "\r\nOK\r\n");
    sim.shutdown().await;
}

#[tokio::test]
async fn jsonl_log_lines_parse() {
    let log = temp_path("sent.jsonl");
    let cfg = SimConfig {
        log: Some(log.clone()),
        ..SimConfig::default()
    };
    let (sim, mut c) = quiet_modem(cfg).await;
    for text in ["first", "second ✓"] {
        let msg = encode_submit("+15551234567", text, &SubmitOptions::default()).unwrap();
        let p = &msg.parts[0];
        assert!(
            cmgs(&mut c, p.tpdu_length, &p.hex())
                .await
                .starts_with("+CMGS:")
        );
    }
    sim.shutdown().await;
    let content = std::fs::read_to_string(&log).unwrap();
    let parsed: Vec<SentMessage> = content
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(parsed, sim.sent());
    assert_eq!(parsed[1].text, "second ✓");
    assert_eq!(parsed[1].encoding, "ucs2");
    let raw: serde_json::Value = serde_json::from_str(content.lines().next().unwrap()).unwrap();
    for key in [
        "to",
        "text",
        "encoding",
        "parts",
        "message_references",
        "at",
    ] {
        assert!(raw.get(key).is_some(), "{key} missing in {raw}");
    }
    let _ = std::fs::remove_file(&log);
}

#[tokio::test]
async fn full_storage_holds_inbound_back() {
    let cfg = SimConfig {
        storage_capacity: 2,
        first_index: 0,
        memfull_urc: true,
        ..SimConfig::default()
    };
    let (sim, mut c) = quiet_modem(cfg).await;
    assert_eq!(c.at("AT+CNMI=2,1,0,0,0").await, "\r\nOK\r\n");
    for i in 0..3 {
        sim.inject_inbound("+15551230000", &format!("msg {i}"), false)
            .unwrap();
    }
    c.expect("\r\n+CMTI: \"SM\",0\r\n\r\n+CMTI: \"SM\",1\r\n\r\n^SMMEMFULL: \"SM\"\r\n")
        .await;
    assert_eq!(
        c.at("AT+CPMS?").await,
        "\r\n+CPMS: \"SM\",2,2,\"SM\",2,2,\"SM\",2,2\r\n\r\nOK\r\n"
    );
    // Deleting makes room: the held message comes in.
    c.send("AT+CMGD=0\r").await;
    c.expect("\r\nOK\r\n\r\n+CMTI: \"SM\",0\r\n").await;

    sim.set_storage_full(true);
    sim.inject_inbound("+15551230000", "later", false).unwrap();
    c.expect("\r\n^SMMEMFULL: \"SM\"\r\n").await;
    let msg = encode_submit("+15551234567", "x", &SubmitOptions::default()).unwrap();
    let p = &msg.parts[0];
    c.send(format!("AT+CMGW={}\r", p.tpdu_length)).await;
    c.expect("\r\n> ").await;
    c.send(format!("{}\x1a", p.hex())).await;
    c.expect("\r\n+CMS ERROR: 322\r\n").await;
    assert_eq!(c.at("AT+CMGD=0,4").await, "\r\nOK\r\n");
    sim.set_storage_full(false);
    c.expect("\r\n+CMTI: \"SM\",0\r\n").await;
    sim.shutdown().await;
}

#[tokio::test]
async fn huawei_line_endings_and_noise() {
    let cfg = SimConfig {
        line_ending: "\r\r\n",
        ..SimConfig::default()
    };
    let sim = Simulator::start(cfg).await.unwrap();
    let mut c = Client::open(&sim.path()).await;
    c.send("ATE0\r").await;
    c.expect("ATE0\r\r\nOK\r\r\n").await;
    sim.set_noise(true);
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut seen = String::new();
    while Instant::now() < deadline && !seen.contains('^') {
        c.send("AT+CSQ\r").await;
        seen.push_str(&c.until("OK\r\r\n").await);
    }
    assert!(seen.contains('^') || seen.contains("RING") || seen.contains("+CREG: 1"));
    assert!(seen.contains("+CSQ: 20,99\r\r\n"));
    sim.shutdown().await;
}

#[tokio::test]
async fn boot_urcs_gate_sms_commands() {
    let cfg = SimConfig {
        boot_urcs: true,
        boot_delay: Duration::from_millis(200),
        ..SimConfig::default()
    };
    let sim = Simulator::start(cfg).await.unwrap();
    let mut c = Client::open(&sim.path()).await;
    c.expect("\r\nRDY\r\n\r\n+CFUN: 1\r\n\r\n+CPIN: READY\r\n")
        .await;
    c.send("ATE0+CMEE=1;+CMGL=4\r").await;
    c.expect("ATE0+CMEE=1;+CMGL=4\r\r\n+CMS ERROR: 314\r\n")
        .await;
    c.expect("\r\nSMS Ready\r\n").await;
    assert_eq!(c.at("AT+CMGL=4").await, "\r\nOK\r\n");
    sim.shutdown().await;
}

#[tokio::test]
async fn csms_1_wants_cnma_and_redelivers_without_it() {
    /// A two-line URC: the header and the PDU line, without the leading blank.
    async fn urc2(c: &mut Client) -> String {
        c.expect("\r\n").await;
        format!("{}{}", c.until("\r\n").await, c.until("\r\n").await)
    }
    let cfg = SimConfig {
        cnma_timeout: Some(Duration::from_millis(200)),
        ..SimConfig::default()
    };
    let (sim, mut c) = quiet_modem(cfg).await;
    assert_eq!(c.at("AT+CSMS=1").await, "\r\n+CSMS: 1,1,1\r\n\r\nOK\r\n");
    assert_eq!(c.at("AT+CNMI=2,2,0,0,0").await, "\r\nOK\r\n");
    sim.inject_inbound("+15551230000", "ack me", false).unwrap();
    assert!(urc2(&mut c).await.starts_with("+CMT: ,"));
    assert_eq!(c.at("AT+CNMA").await, "\r\nOK\r\n");
    c.quiet(Duration::from_millis(400)).await;
    // Not acknowledged: the network delivers the same message again.
    sim.inject_inbound("+15551230000", "ignore me", false)
        .unwrap();
    let first = urc2(&mut c).await;
    assert_eq!(urc2(&mut c).await, first);
    c.quiet(Duration::from_millis(400)).await;
    sim.shutdown().await;
}

#[tokio::test]
async fn inbound_is_on_the_sim_when_inject_returns_and_waits_while_unplugged() {
    let sim = Simulator::start(SimConfig::default()).await.unwrap();
    // No client yet: stored at once, no indication needed.
    sim.inject_inbound("+15551230000", "early", false).unwrap();
    assert_eq!(sim.stored().len(), 1);
    sim.unplug();
    sim.inject_inbound("+15551230000", "while unplugged", false)
        .unwrap();
    assert_eq!(sim.stored().len(), 1);
    sim.replug().await.unwrap();
    assert_eq!(sim.stored().len(), 2);
    let mut c = Client::open(&sim.path()).await;
    let r = c.at("AT+CMGL=4").await;
    assert_eq!(r.matches("+CMGL: ").count(), 2, "{r}");
    sim.shutdown().await;
}

/// Gammu's start-up: `AT+CUSD=1` only turns the result codes on (TS 27.007 §7.15). An earlier
/// simulator answered it with `+CUSD: 4` as if a request had been made, which gammu-smsd
/// stored as an empty received message.
#[tokio::test]
async fn cusd_without_a_string_asks_the_network_nothing() {
    let (sim, mut c) = quiet_modem(SimConfig::default()).await;
    assert_eq!(c.at("AT+CUSD=1").await, "\r\nOK\r\n");
    c.quiet(Duration::from_millis(300)).await;
    // With a string: the operator's answer follows.
    assert_eq!(c.at("AT+CUSD=1,\"*100#\",15").await, "\r\nOK\r\n");
    assert!(
        c.until("\r\n+CUSD: 0,\"Balance:")
            .await
            .contains("+CUSD: 0")
    );
    sim.shutdown().await;
}

/// `AT+CSCS=?` lists the character sets (TS 27.007 §5.5), and the set one is read back; Gammu
/// asks for the list at every connection.
#[tokio::test]
async fn cscs_lists_sets_and_keeps_the_chosen_one() {
    let (sim, mut c) = quiet_modem(SimConfig::default()).await;
    assert_eq!(
        c.at("AT+CSCS=?").await,
        "\r\n+CSCS: (\"GSM\",\"IRA\",\"UCS2\")\r\n\r\nOK\r\n"
    );
    assert_eq!(c.at("AT+CSCS?").await, "\r\n+CSCS: \"GSM\"\r\n\r\nOK\r\n");
    assert_eq!(c.at("AT+CSCS=\"UCS2\"").await, "\r\nOK\r\n");
    assert_eq!(c.at("AT+CSCS?").await, "\r\n+CSCS: \"UCS2\"\r\n\r\nOK\r\n");
    assert_eq!(c.at("AT+CSCS=\"KOI8\"").await, "\r\n+CME ERROR: 4\r\n");
    // A reset brings the default back.
    assert_eq!(c.at("ATZ").await, "\r\nOK\r\n");
    assert_eq!(
        c.at("AT+CSCS?").await,
        "AT+CSCS?\r\r\n+CSCS: \"GSM\"\r\n\r\nOK\r\n"
    );
    sim.shutdown().await;
}

/// `AT+CGREG` (TS 27.007 §10.1.20): Gammu reads the network state through it and fails the
/// whole query when it is missing.
#[tokio::test]
async fn cgreg_reports_packet_domain_registration() {
    let (sim, mut c) = quiet_modem(SimConfig::default()).await;
    assert_eq!(c.at("AT+CGREG=?").await, "\r\n+CGREG: (0-2)\r\n\r\nOK\r\n");
    assert_eq!(c.at("AT+CGREG?").await, "\r\n+CGREG: 0,1\r\n\r\nOK\r\n");
    assert_eq!(c.at("AT+CGREG=2").await, "\r\nOK\r\n");
    assert_eq!(
        c.at("AT+CGREG?").await,
        "\r\n+CGREG: 2,1,\"00C3\",\"0000A1B2\",7\r\n\r\nOK\r\n"
    );
    assert_eq!(c.at("AT+CFUN=0").await, "\r\nOK\r\n");
    assert_eq!(c.at("AT+CGREG?").await, "\r\n+CGREG: 2,0\r\n\r\nOK\r\n");
    assert_eq!(c.at("AT+CGREG=3").await, "\r\n+CME ERROR: 50\r\n");
    sim.shutdown().await;
}

/// `SimConfig::command_log`: one JSON line per command line, with its time.
#[tokio::test]
async fn command_log_has_one_line_per_command() {
    let path = temp_path("commands.jsonl");
    let (sim, mut c) = quiet_modem(SimConfig {
        command_log: Some(path.clone()),
        ..SimConfig::default()
    })
    .await;
    assert_eq!(c.at("AT+CSQ").await, "\r\n+CSQ: 20,99\r\n\r\nOK\r\n");
    sim.shutdown().await;
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let commands: Vec<&str> = lines.iter().map(|l| l["line"].as_str().unwrap()).collect();
    assert_eq!(commands, vec!["ATE0", "AT+CMEE=1", "AT+CSQ"]);
    for l in &lines {
        assert!(
            l["at"]
                .as_str()
                .unwrap()
                .parse::<chrono::DateTime<chrono::Utc>>()
                .is_ok()
        );
    }
    let _ = std::fs::remove_file(&path);
}

/// Kannel killed between the prompt and its Ctrl-Z, started again: its `ATZ` went into the PDU
/// for ever. Real modems time the input out (`SimConfig::prompt_timeout`).
#[tokio::test]
async fn the_prompt_times_out_and_commands_work_again() {
    let (sim, mut c) = quiet_modem(SimConfig {
        prompt_timeout: Some(Duration::from_millis(300)),
        ..SimConfig::default()
    })
    .await;
    c.send("AT+CMGS=20\r").await;
    c.expect("\r\n> ").await;
    // The client dies here; the next one starts with a reset.
    drop(c);
    let mut c = Client::open(&sim.path()).await;
    c.send("ATZ\r").await;
    c.quiet(Duration::from_millis(100)).await;
    let started = Instant::now();
    assert_eq!(
        c.until("\r\n+CMS ERROR: 500\r\n").await,
        "\r\n+CMS ERROR: 500\r\n"
    );
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(c.at("ATZ").await, "\r\nOK\r\n");
    assert!(sim.sent().is_empty());
    // A PDU that ends in time is not cut short by the timer of its prompt.
    let msg = encode_submit("+15551234567", "on time", &SubmitOptions::default()).unwrap();
    assert_eq!(c.at("ATE0").await, "ATE0\r\r\nOK\r\n");
    let part = &msg.parts[0];
    assert_eq!(
        cmgs(&mut c, part.tpdu_length, &part.hex()).await,
        "+CMGS: 0\r\n\r\nOK\r\n"
    );
    c.quiet(Duration::from_millis(400)).await;
    assert_eq!(sim.sent().len(), 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_slow_line_moves_one_byte_per_byte_time_each_way() {
    let (sim, mut c) = quiet_modem(SimConfig::default()).await;
    // Full speed: a 40-byte answer takes far less than 40 ms.
    let t = Instant::now();
    let fast = c.at("AT+CGMR").await;
    let fast_time = t.elapsed();
    sim.set_byte_time(Duration::from_millis(2));
    let t = Instant::now();
    let slow = c.at("AT+CGMR").await;
    let slow_time = t.elapsed();
    assert_eq!(slow, fast, "the same bytes, only slower");
    // "AT+CGMR\r" in (8 bytes) and the answer out, 2 ms each.
    let bytes = u32::try_from(8 + slow.len()).unwrap();
    assert!(
        slow_time >= Duration::from_millis(2) * bytes,
        "{bytes} bytes took {slow_time:?}"
    );
    assert!(fast_time < slow_time / 4, "{fast_time:?} vs {slow_time:?}");
    sim.set_byte_time(Duration::ZERO);
    assert_eq!(c.at("AT").await, "\r\nOK\r\n");
    sim.shutdown().await;
}

#[tokio::test]
async fn reboot_in_place_resets_the_modem_and_asks_for_the_pin_again() {
    let cfg = SimConfig {
        pin: Some("1234".into()),
        ..SimConfig::default()
    };
    let (sim, mut c) = quiet_modem(cfg).await;
    assert_eq!(c.at("AT+CPIN=\"1234\"").await, "\r\nOK\r\n");
    assert_eq!(c.at("AT+CNMI=2,1,0,0,0").await, "\r\nOK\r\n");
    sim.inject_inbound("+12025550123", "kept on the SIM", false)
        .unwrap();
    c.until("+CMTI: \"SM\",1\r\n").await;
    sim.reboot();
    // The same port: boot URCs, then a modem at power-on state (echo on again).
    let boot = c.until("+CPIN: SIM PIN\r\n").await;
    assert!(boot.contains("RDY"), "{boot:?}");
    c.send("ATE0\r").await;
    c.expect("ATE0\r\r\nOK\r\n").await;
    assert_eq!(c.at("AT+CPIN?").await, "\r\n+CPIN: SIM PIN\r\n\r\nOK\r\n");
    assert_eq!(c.at("AT+CNMI?").await, "\r\n+CNMI: 0,0,0,0,0\r\n\r\nOK\r\n");
    assert_eq!(c.at("AT+CPIN=\"1234\"").await, "\r\nOK\r\n");
    // The SIM kept its message.
    assert_eq!(sim.stored().len(), 1);
    sim.shutdown().await;
}
