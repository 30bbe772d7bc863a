//! `smsgate modem probe` and `smsgate modem send` against the simulator, as a user runs them.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use smsgate::sim::{SimConfig, Simulator};

async fn smsgate(args: &[&str]) -> std::process::Output {
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_smsgate"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("run smsgate");
    tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("finishes in time")
        .expect("output")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_reports_the_modem() {
    let sim = Simulator::start(SimConfig::default()).await.unwrap();
    let path = sim.path().display().to_string();
    let out = smsgate(&["modem", "probe", &path, "--json"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let p = &v["ports"][0];
    assert_eq!(p["answers_at"], true);
    assert_eq!(p["info"]["sim"], "READY");
    assert!(p["info"]["imei"].is_string());
    assert!(p["info"]["signal"]["dbm"].is_number());
    assert!(p["info"]["operator"].is_string());
    // The human form names the same facts.
    let out = smsgate(&["modem", "probe", &path]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    for word in ["IMEI", "operator", "signal", "dBm", "smsgate modem send"] {
        assert!(text.contains(word), "{word} in {text}");
    }
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_explains_a_missing_port() {
    let out = smsgate(&["modem", "probe", "/dev/ttyUSB-does-not-exist", "--json"]).await;
    assert!(!out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ports"][0]["answers_at"], false);
    assert!(
        v["ports"][0]["problem"]
            .as_str()
            .unwrap()
            .contains("plugged in")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_prints_message_references() {
    let sim = Simulator::start(SimConfig::default()).await.unwrap();
    let path = sim.path().display().to_string();
    let text = "Hello from smsgate. ".repeat(10); // 200 chars → 2 parts
    let out = smsgate(&[
        "modem",
        "send",
        &path,
        "--to",
        "+15551234567",
        "--text",
        &text,
        "--json",
    ])
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let parts = v["parts"].as_array().unwrap();
    assert_eq!(parts.len(), 2);
    let sent = sim.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].text, text);
    let refs: Vec<u64> = parts
        .iter()
        .map(|p| p["message_reference"].as_u64().unwrap())
        .collect();
    let sim_refs: Vec<u64> = sent[0]
        .message_references
        .iter()
        .map(|&r| u64::from(r))
        .collect();
    assert_eq!(refs, sim_refs);

    // A modem error: non-zero exit, the reason in the output.
    sim.fail_next(1, 331);
    let out = smsgate(&[
        "modem",
        "send",
        &path,
        "--to",
        "+15551234567",
        "--text",
        "x",
        "--json",
    ])
    .await;
    assert!(!out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["parts"][0]["error"].as_str().unwrap().contains("331"));
    assert_eq!(v["parts"][0]["retryable"], true);

    // Bad input: exit 2 before the modem is touched.
    let before = sim.commands().len();
    let out = smsgate(&[
        "modem",
        "send",
        &path,
        "--to",
        "not-a-number",
        "--text",
        "x",
    ])
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(sim.commands().len(), before);
    sim.shutdown().await;
}
