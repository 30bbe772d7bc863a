//! `smsgate backup --to FILE` (the real binary) against a running gateway under load: API
//! writers (single and batch POSTs) and sends through the simulated modem go on while it runs;
//! the file imports into a fresh directory with `smsgate store import`, `smsgate store check`
//! passes, and every message acknowledged before the backup began is there with its history.
//! Also: an existing FILE is refused without --force, and a backup cut short, interrupted or
//! killed never leaves FILE.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{TOKEN, sim, start, wait_modem_up};

/// A key with the scope `read` only.
const READER: &str = "reader-token-0123456789";

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The binary with `args`, bounded in time.
async fn cli(args: &[&str]) -> Output {
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_smsgate"))
        .args(args)
        .env("RUST_LOG", "warn")
        .env_remove("SMSGATE_URL")
        .env_remove("SMSGATE_TOKEN")
        .env_remove("SMSGATE_CONFIG")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(Duration::from_secs(120), child)
        .await
        .expect("the command ends in time")
        .unwrap()
}

/// A writer: single POSTs and batches of 3, in turn, to numbers of its own; every id
/// acknowledged (201) with the moment its answer came. Half of them are due now (the modem
/// sends them while the backup runs), half in two days.
async fn writer(
    http: reqwest::Client,
    base: String,
    w: usize,
    stop: Arc<AtomicBool>,
    count: Arc<AtomicUsize>,
) -> Vec<(String, Instant)> {
    let mut acked = Vec::new();
    let later = (chrono::Utc::now() + chrono::Duration::days(2)).to_rfc3339();
    let mut n = 0usize;
    let deadline = Instant::now() + Duration::from_secs(90);
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        let one = |k: usize| {
            let mut m = json!({
                "to": format!("+1202555{w}{:03}", k % 1000),
                "text": format!("Invoice INV-{w}-{k} is due"),
                "metadata": {"invoice": format!("INV-{w}-{k}")},
            });
            if k % 2 == 1 {
                m["send_at"] = json!(later);
            }
            m
        };
        let (path, body) = if n.is_multiple_of(2) {
            ("/v1/messages", one(n))
        } else {
            (
                "/v1/messages/batch",
                json!({"messages": [one(n), one(n + 1), one(n + 2)]}),
            )
        };
        n += 3;
        let r = http
            .post(format!("{base}{path}"))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await
            .expect("request");
        let code = r.status().as_u16();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        let at = Instant::now();
        assert!(code == 201 || code == 200, "{path}: {code} {v}");
        if let Some(ms) = v["messages"].as_array() {
            for m in ms {
                acked.push((m["id"].as_str().unwrap().to_string(), at));
            }
        } else {
            acked.push((v["id"].as_str().unwrap().to_string(), at));
        }
        count.fetch_add(
            v["messages"].as_array().map_or(1, Vec::len),
            Ordering::Relaxed,
        );
    }
    acked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_under_load_restores_every_acknowledged_message() {
    if crate::sled_only(
        "backup_under_load_restores_every_acknowledged_message",
        "a database is backed up with its own tools",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let sim = sim().await;
    let r = start(store.clone(), &sim, |g| {
        g.keys.push(
            smsgate::api::ApiKey::from_token("reader", READER)
                .with_scopes([smsgate::api::Scope::Read]),
        );
    })
    .await;
    wait_modem_up(&r).await;

    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicUsize::new(0));
    let writers: Vec<_> = (0..3)
        .map(|w| {
            let (stop, count) = (stop.clone(), count.clone());
            tokio::spawn(writer(r.http.clone(), r.base.clone(), w, stop, count))
        })
        .collect();
    // Some load first (150 answers the writers have seen), and some messages sent.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, stats) = r.get("/v1/stats").await;
        let sent = stats["counts"]["sent"].as_u64().unwrap_or(0)
            + stats["counts"]["delivered"].as_u64().unwrap_or(0);
        if (count.load(Ordering::Relaxed) >= 150 && sent >= 3) || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let file = dir.path().join("backups").join("smsgate.jsonl");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    let began = Instant::now();
    let o = cli(&[
        "backup",
        "--to",
        s(&file),
        "--url",
        &r.base,
        "--token",
        TOKEN,
    ])
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(out.contains("records") && out.contains("paused"), "{out}");
    assert!(file.exists());
    assert!(!dir.path().join("backups/smsgate.jsonl.partial").exists());
    // Writes go on after the backup too.
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Again without --force: refused, the file untouched. With --force (and --json): replaced.
    let before = std::fs::read(&file).unwrap();
    let o = cli(&[
        "backup",
        "--to",
        s(&file),
        "--url",
        &r.base,
        "--token",
        TOKEN,
    ])
    .await;
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--force"), "{}", text(&o));
    assert_eq!(std::fs::read(&file).unwrap(), before);
    let second = dir.path().join("backups/second.jsonl");
    std::fs::write(&second, b"old").unwrap();
    let o = cli(&[
        "backup",
        "--to",
        s(&second),
        "--force",
        "--json",
        "--url",
        &r.base,
        "--token",
        TOKEN,
    ])
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let summary: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(summary["records"].as_u64().unwrap() > 0, "{summary}");
    assert!(summary["paused_ms"].as_u64().is_some(), "{summary}");
    assert_eq!(
        summary["bytes"].as_u64(),
        Some(std::fs::metadata(&second).unwrap().len())
    );

    // A key without the scope `admin`: refused (403, exit 4), no file.
    let denied = dir.path().join("backups/denied.jsonl");
    let o = cli(&[
        "backup",
        "--to",
        s(&denied),
        "--url",
        &r.base,
        "--token",
        READER,
    ])
    .await;
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert!(text(&o).contains("admin"), "{}", text(&o));
    assert!(!denied.exists());
    assert!(!dir.path().join("backups/denied.jsonl.partial").exists());
    // Each backup is in the audit log, with the key that took it.
    let (code, audit) = r.get("/v1/audit?actor=test").await;
    assert_eq!(code, 200, "{audit}");
    let backups: Vec<&Value> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "backup")
        .collect();
    assert_eq!(backups.len(), 2, "{audit}");
    assert_eq!(backups[1]["details"]["records"], summary["records"]);

    stop.store(true, Ordering::Relaxed);
    let mut acked = Vec::new();
    for w in writers {
        acked.extend(w.await.unwrap());
    }
    let (_, stats) = r.get("/v1/stats").await;
    let sent_by_now = stats["counts"]["sent"].as_u64().unwrap_or(0)
        + stats["counts"]["delivered"].as_u64().unwrap_or(0);
    r.stop().await;
    sim.shutdown().await;
    let before_backup: Vec<&String> = acked
        .iter()
        .filter(|(_, at)| *at < began)
        .map(|(id, _)| id)
        .collect();
    assert!(
        before_backup.len() >= 150,
        "{} acknowledged before",
        before_backup.len()
    );
    assert!(acked.len() > before_backup.len(), "writes went on");
    assert!(sent_by_now >= 3, "{stats}");

    // Restore into a fresh directory; the import checks it, and so does `store check`.
    let fresh = dir.path().join("restored");
    let o = cli(&["store", "import", "--input", s(&file), "--store", s(&fresh)]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = cli(&["store", "check", "--store", s(&fresh), "--json"]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["clean"], true, "{report}");

    // Every message acknowledged before the backup began is there, with its whole history.
    let restored = smsgate::store::Store::open(&fresh, 16).unwrap();
    let mut sending_or_sent = 0;
    for id in &before_backup {
        let m = restored
            .get(id)
            .unwrap()
            .unwrap_or_else(|| panic!("{id} acknowledged before the backup is missing"));
        let h = restored.history(id).unwrap().unwrap();
        assert!(h.verified, "{id}: {:?}", h.problem);
        assert!(!h.events.is_empty());
        if !matches!(
            m.status,
            smsgate::store::Status::Queued | smsgate::store::Status::Scheduled
        ) {
            sending_or_sent += 1;
        }
    }
    // The modem was sending while the backup ran: some have moved on, history and all.
    assert!(sending_or_sent > 0);
    let in_backup = acked
        .iter()
        .filter(|(id, _)| restored.get(id).unwrap().is_some())
        .count();
    assert!(in_backup <= acked.len());
}

/// A daemon that answers a backup with a header and half its body, then stalls (`hold`) or
/// hangs up (otherwise).
async fn half_answer(hold: bool) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let Ok(Ok((mut conn, _))) =
            tokio::time::timeout(Duration::from_secs(60), listener.accept()).await
        else {
            return;
        };
        let mut buf = vec![0u8; 4096];
        let _ = conn.read(&mut buf).await;
        let body = "{\"smsgate_export\":1,\"created_at\":\"2026-01-01T00:00:00.000Z\",\"version\":\"0\"}\n{\"tree\":\"messages\",\"key\":\"00\",\"value\":{}}\n";
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\ncontent-length: {}\r\nsmsgate-backup-records: 2\r\n\r\n",
            body.len() + 200
        );
        let _ = conn.write_all(head.as_bytes()).await;
        let _ = conn.write_all(body.as_bytes()).await;
        let _ = conn.flush().await;
        if hold {
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
    });
    (base, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_cut_short_or_killed_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let file: PathBuf = dir.path().join("b.jsonl");
    let partial = dir.path().join("b.jsonl.partial");

    // The answer ends before its length: refused, nothing left.
    let (base, task) = half_answer(false).await;
    let o = cli(&["backup", "--to", s(&file), "--url", &base, "--token", "t"]).await;
    assert_ne!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("cut short") || text(&o).contains("not whole"),
        "{}",
        text(&o)
    );
    assert!(!file.exists() && !partial.exists());
    task.await.unwrap();

    // Interrupted (SIGTERM) in the middle: the partial file is removed. Killed (SIGKILL): the
    // partial file may stay, FILE never appears.
    for (signal, partial_may_stay) in [("TERM", false), ("KILL", true)] {
        let (base, task) = half_answer(true).await;
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_smsgate"))
            .args(["backup", "--to", s(&file), "--url", &base, "--token", "t"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        // Until the answer is being written (the file is made once its header has come).
        let deadline = Instant::now() + Duration::from_secs(30);
        while !partial.exists() {
            assert!(
                Instant::now() < deadline,
                "the backup never started writing"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let pid = child.id().unwrap().to_string();
        let k = std::process::Command::new("kill")
            .args([format!("-{signal}").as_str(), pid.as_str()])
            .status()
            .unwrap();
        assert!(k.success());
        let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
            .await
            .expect("ends after the signal")
            .unwrap();
        assert!(!status.success());
        assert!(!file.exists(), "{signal}: FILE must not appear");
        if !partial_may_stay {
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .await
                .unwrap();
            assert!(!partial.exists(), "{signal}: {err}");
            assert!(err.contains("interrupted"), "{err}");
        }
        let _ = std::fs::remove_file(&partial);
        task.abort();
    }
}
