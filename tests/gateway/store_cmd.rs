//! `smsgate store check|export|import|compact`, the real binary on a store the gateway wrote:
//! the export imports into a store that a gateway serves with the same messages and histories,
//! compaction swaps in a checked copy and keeps the old store, and a store the daemon holds is
//! refused with exit 4.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use chrono::Utc;
use serde_json::{Value, json};

use crate::{Running, sim, start, wait_modem_up};

const TO: &str = "+12025550123";

fn cli(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_smsgate"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Each message as the API shows it, and its history.
async fn snapshot(r: &Running, ids: &[String]) -> Vec<(Value, Value)> {
    let mut out = Vec::new();
    for id in ids {
        let (code, m) = r.get(&format!("/v1/messages/{id}")).await;
        assert_eq!(code, 200, "{m}");
        let (code, h) = r.get(&format!("/v1/messages/{id}/history")).await;
        assert_eq!(code, 200, "{h}");
        assert_eq!(h["verified"], true, "{h}");
        out.push((m, h));
    }
    out
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_cmd_export_import_compact_and_a_running_daemon() {
    if crate::sled_only(
        "store_cmd_export_import_compact_and_a_running_daemon",
        "the store commands work on the embedded store's directory",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let sim = sim().await;
    let r = start(store.clone(), &sim, |_| {}).await;
    wait_modem_up(&r).await;
    let mut ids = Vec::new();
    let (code, sent) = r
        .post(
            "/v1/messages",
            &json!({"to": TO, "text": "Invoice INV-3 is due: 12,50 € « merci »", "metadata": {"invoice": "INV-3"}}),
        )
        .await;
    assert_eq!(code, 201, "{sent}");
    ids.push(sent["id"].as_str().unwrap().to_string());
    let later = (Utc::now() + chrono::Duration::days(2)).to_rfc3339();
    for text in ["scheduled", "to cancel"] {
        let (code, m) = r
            .post(
                "/v1/messages",
                &json!({"to": TO, "text": text, "send_at": later}),
            )
            .await;
        assert_eq!(code, 201, "{m}");
        ids.push(m["id"].as_str().unwrap().to_string());
    }
    let (code, c) = r
        .post(&format!("/v1/messages/{}/cancel", ids[2]), &json!({}))
        .await;
    assert_eq!(code, 200, "{c}");
    assert_eq!(
        r.wait_status(&ids[0], "sent", Duration::from_secs(10))
            .await,
        "sent"
    );
    let before = snapshot(&r, &ids).await;
    r.stop().await;

    // Check, export, import.
    let o = cli(&["store", "check", "--store", s(&store)]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("3 message(s)"), "{}", text(&o));
    let o = cli(&["store", "check", "--store", s(&store), "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["clean"], true);
    assert_eq!(report["messages"], 3);
    let export = dir.path().join("export.jsonl");
    let o = cli(&[
        "store",
        "export",
        "--format",
        "jsonl",
        "--store",
        s(&store),
        "--output",
        s(&export),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let dump = std::fs::read_to_string(&export).unwrap();
    let lines: Vec<&str> = dump.lines().collect();
    let header: Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(header["smsgate_export"], 1);
    assert!(lines.last().unwrap().starts_with("{\"end\":true"));
    assert!(
        lines
            .iter()
            .filter(|l| l.starts_with("{\"tree\":\"messages\""))
            .count()
            == 3
    );

    let copy = dir.path().join("copy");
    let o = cli(&[
        "store",
        "import",
        "--input",
        s(&export),
        "--store",
        s(&copy),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("clean"), "{}", text(&o));
    // Never into a store that is there already.
    let o = cli(&[
        "store",
        "import",
        "--input",
        s(&export),
        "--store",
        s(&copy),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("not empty"), "{}", text(&o));
    // A cut export: refused with its line, nothing left behind.
    let cut = dir.path().join("cut.jsonl");
    std::fs::write(&cut, &dump[..dump.len() - 30]).unwrap();
    let nothing = dir.path().join("nothing");
    let o = cli(&[
        "store",
        "import",
        "--input",
        s(&cut),
        "--store",
        s(&nothing),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    // The end line is gone, and the last record is cut in the middle.
    assert!(
        text(&o).contains(&format!("line {}: not a record", lines.len() - 1)),
        "{}",
        text(&o)
    );
    assert!(!nothing.exists());
    assert_eq!(
        std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| e
                .as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains(".import-"))
            .count(),
        0
    );

    // The copy serves the same messages with the same histories.
    let r = start(copy.clone(), &sim, |_| {}).await;
    let after = snapshot(&r, &ids).await;
    assert_eq!(before.len(), after.len());
    for ((m0, h0), (m1, h1)) in before.iter().zip(&after) {
        assert_eq!(h0, h1);
        assert_eq!(m0, m1);
    }
    let (_, list) = r.get("/v1/messages?limit=10").await;
    assert_eq!(list["messages"].as_array().map(Vec::len), Some(3), "{list}");
    // While a daemon holds it, the store is left alone: exit 4.
    let o = cli(&["store", "check", "--store", s(&copy)]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert!(
        text(&o).contains("daemon seems to be running"),
        "{}",
        text(&o)
    );
    let o = cli(&["store", "compact", "--store", s(&copy)]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    r.stop().await;

    // Compaction: sizes reported, old store kept, the new one checks clean.
    let o = cli(&["store", "compact", "--store", s(&store)]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        out.contains("bytes on disk before") || out.contains("on disk before"),
        "{out}"
    );
    let old: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("store.old-"))
        .collect();
    assert_eq!(old.len(), 1, "{out}");
    assert!(out.contains(&old[0].display().to_string()), "{out}");
    assert!(old[0].join("db").exists());
    let o = cli(&["store", "check", "--store", s(&store)]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r = start(store.clone(), &sim, |_| {}).await;
    assert_eq!(snapshot(&r, &ids).await, before);
    r.stop().await;
    sim.shutdown().await;
}
