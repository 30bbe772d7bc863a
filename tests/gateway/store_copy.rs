//! `smsgate store copy` and `smsgate store check --url`, the real binary: a store a gateway
//! wrote (and the store release 0.1.0 wrote) goes to PostgreSQL, checks clean there with every
//! history whole, comes back into a new directory, and exports exactly as the original did.
//! A database that holds data and a store the daemon holds are refused.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use chrono::Utc;
use serde_json::{Value, json};

use crate::{sim, start, wait_modem_up};

const TO: &str = "+12025550124";

/// The binary with `args`, given two minutes at most.
fn cli(args: &[&str]) -> Output {
    use std::process::Stdio;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_smsgate"))
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("smsgate {args:?} did not end within 120 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

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

/// The record lines of `smsgate store export` of the store in `dir` (the header, which
/// carries the time of the export, left out).
fn export(dir: &Path, out: &Path) -> Vec<String> {
    let o = cli(&["store", "export", "--store", s(dir), "--output", s(out)]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let all = std::fs::read_to_string(out).unwrap();
    all.lines().skip(1).map(str::to_string).collect()
}

/// Copies the stopped store in `store` to the empty database `url`, checks it there, copies
/// it back into `back`, and holds the two exports equal. The messages the database holds.
fn there_and_back(store: &Path, url: &str, back: &Path, work: &Path) -> u64 {
    let o = cli(&["store", "copy", "--from", s(store), "--to", url]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("copied "), "{out}");
    assert!(
        out.contains(&format!("source {}", store.display())),
        "{out}"
    );
    assert!(out.contains("message_events"), "{out}");
    assert!(out.contains("clean:"), "{out}");

    let o = cli(&["store", "check", "--url", url, "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["clean"], true, "{report:#}");
    assert_eq!(report["problems"], json!([]), "{report:#}");
    let messages = report["messages"].as_u64().unwrap();

    // Every history verifies in the database.
    let db = smsgate::store::Store::connect(url, vec![]).unwrap();
    let v = db.verify_all_histories().unwrap();
    assert!(v.broken.is_empty(), "{v:?}");
    assert_eq!(v.messages, messages);
    assert!(db.verify_audit().unwrap().verified);
    drop(db);

    // Into a database that holds data: refused, exit 2.
    let o = cli(&["store", "copy", "--from", s(store), "--to", url]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("holds smsgate data already"),
        "{}",
        text(&o)
    );

    let o = cli(&["store", "copy", "--from", url, "--to", s(back), "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let done: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(done["clean"], true, "{done:#}");
    assert_eq!(done["target"]["messages"], messages, "{done:#}");
    // Never into a directory that holds something.
    let o = cli(&["store", "copy", "--from", url, "--to", s(back)]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("not empty"), "{}", text(&o));

    let a = export(store, &work.join("a.jsonl"));
    let b = export(back, &work.join("b.jsonl"));
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x, y);
    }
    messages
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_copy_to_postgres_and_back_loses_nothing() {
    if crate::sled_only(
        "store_copy_to_postgres_and_back_loses_nothing",
        "it copies the embedded store's directory",
    ) {
        return;
    }
    let (Some(url), Some(fixture_url)) = (
        smsgate::store::pg::testdb::database(),
        smsgate::store::pg::testdb::database(),
    ) else {
        crate::skipped(
            "store_copy_to_postgres_and_back_loses_nothing",
            "no PostgreSQL server can be made here",
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let sim = sim().await;
    let r = start(store.clone(), &sim, |_| {}).await;
    wait_modem_up(&r).await;
    let (code, sent) = r
        .post(
            "/v1/messages",
            &json!({"to": TO, "text": "Invoice INV-9 is due: 12,50 € « merci »", "metadata": {"invoice": "INV-9"}}),
        )
        .await;
    assert_eq!(code, 201, "{sent}");
    let later = (Utc::now() + chrono::Duration::days(2)).to_rfc3339();
    let mut ids = vec![sent["id"].as_str().unwrap().to_string()];
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
    let (code, o) = r
        .post("/v1/opt-outs", &json!({"number": "+12025550177"}))
        .await;
    assert_eq!(code, 201, "{o}");
    let resp = r
        .http
        .put(format!("{}/v1/templates/copied", r.base))
        .bearer_auth(crate::TOKEN)
        .json(&json!({"text": "Hello {{ name }}"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        r.wait_status(&ids[0], "sent", Duration::from_secs(10))
            .await,
        "sent"
    );
    // While the daemon holds the store: refused, exit 4, nothing written.
    let o = cli(&["store", "copy", "--from", s(&store), "--to", &url]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    r.stop().await;
    sim.shutdown().await;

    let messages = there_and_back(&store, &url, &dir.path().join("back"), dir.path());
    assert_eq!(messages, 3);

    // The check through a configuration whose backend is PostgreSQL, and a problem found.
    let config = dir.path().join("smsgate.toml");
    std::fs::write(
        &config,
        format!(
            "[http]\nlisten = \"127.0.0.1:8080\"\n[storage]\nbackend = \"postgres\"\nurl = \"{url}\"\n"
        ),
    )
    .unwrap();
    let o = cli(&["store", "check", "--config", s(&config)]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("3 message(s)"), "{}", text(&o));
    let (db, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let conn = tokio::spawn(conn);
    db.execute(
        "UPDATE messages SET status = 'failed' WHERE id = $1",
        &[&ids[1]],
    )
    .await
    .unwrap();
    drop(db);
    let _ = conn.await;
    let o = cli(&["store", "check", "--config", s(&config)]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("PROBLEM messages {}", ids[1])),
        "{}",
        text(&o)
    );

    // The store release 0.1.0 wrote, too.
    let fixture = dir.path().join("fixture");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/store-0.1.0"),
        &fixture,
    );
    let messages = there_and_back(
        &fixture,
        &fixture_url,
        &dir.path().join("fixture-back"),
        dir.path(),
    );
    assert!(messages >= 9, "{messages}");

    // Between two directories or two databases: not what copy does, exit 2.
    let o = cli(&["store", "copy", "--from", s(&store), "--to", s(&fixture)]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = cli(&["store", "copy", "--from", &url, "--to", &fixture_url]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}
