//! A read-only disk and a full one, for real: the store lives on a small tmpfs, mounted
//! read-only when the gateway starts, then filled up while it runs. The API answers 503 with a
//! clear message instead of acknowledging what it could not store, `/readyz` says the store is
//! failing, every message acknowledged before is still there afterwards, and the gateway
//! recovers by itself (it opens or reopens the store) once the disk takes writes again.
//!
//! Mounting needs root (CAP_SYS_ADMIN); without it the test says so and passes, unless
//! `SMSGATE_REQUIRE_MOUNT=1` (set by `.ci/run` when it runs as root).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::{Running, sim, start, wait_modem_up};

const WAIT: Duration = Duration::from_secs(40);

fn mount(args: &[&str]) -> bool {
    Command::new("mount")
        .args(args)
        .status()
        .is_ok_and(|s| s.success())
}

/// Unmounts the tmpfs however the test ends.
struct Mounted<'a>(&'a Path);

impl Drop for Mounted<'_> {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.0).status();
    }
}

/// A GET without the token (health and readiness).
async fn get_open(r: &Running, path: &str) -> reqwest::Response {
    r.http
        .get(format!("{}{path}", r.base))
        .send()
        .await
        .unwrap()
}

async fn post_batch(r: &Running, i: usize) -> (u16, Value) {
    let msgs: Vec<Value> = (0..20)
        .map(|j| {
            json!({"to": "+12025550123", "text": format!("fill {i}-{j}: invoice INV-{i} due Dec 1."),
                   "send_at": "2099-01-01T00:00:00Z"})
        })
        .collect();
    // Each batch with its own key: the one refused is retried with it.
    let resp = r
        .http
        .post(format!("{}/v1/messages/batch", r.base))
        .bearer_auth(crate::TOKEN)
        .header("Idempotency-Key", format!("fill-{i}"))
        .json(&json!({ "messages": msgs }))
        .send()
        .await
        .unwrap();
    (
        resp.status().as_u16(),
        resp.json().await.unwrap_or(Value::Null),
    )
}

/// Posts batches until one is refused; the ids of the acknowledged ones.
async fn fill_until_refused(r: &Running, acked: &mut Vec<String>) -> Value {
    for i in 0..5000 {
        let (code, v) = post_batch(r, i).await;
        match code {
            201 => acked.extend(
                v["messages"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|m| m["id"].as_str().unwrap().to_string()),
            ),
            503 => {
                // Its retry is not acknowledged from memory: the batch is not on disk.
                for attempt in 0..3 {
                    let (code, again) = post_batch(r, i).await;
                    assert_eq!(
                        code, 503,
                        "retry {attempt} of a refused batch: {}",
                        again["type"]
                    );
                }
                return v;
            }
            other => panic!("unexpected {other}: {v}"),
        }
    }
    panic!("the disk never filled up");
}

async fn wait_accepting(r: &Running) {
    let deadline = Instant::now() + WAIT;
    loop {
        // While the gateway reopens its store it serves anew: a kept-alive connection it
        // closes may take a request with it (the client's to retry), so an error is "not yet".
        let answer = r
            .http
            .post(format!("{}/v1/messages", r.base))
            .bearer_auth(crate::TOKEN)
            .json(&json!({"to": "+12025550124", "text": "are you back?", "send_at": "2099-01-01T00:00:00Z"}))
            .send()
            .await;
        let seen = match answer {
            Ok(a) if a.status().as_u16() == 201 => return,
            Ok(a) => format!("{} {}", a.status(), a.text().await.unwrap_or_default()),
            Err(e) => e.to_string(),
        };
        assert!(Instant::now() < deadline, "never recovered: {seen}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_then_full_disk_503_then_recovery() {
    if crate::sled_only(
        "read_only_then_full_disk_503_then_recovery",
        "the disk that fills is the embedded store's",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let fs = dir.path().join("fs");
    std::fs::create_dir_all(&fs).unwrap();
    if !mount(&[
        "-t",
        "tmpfs",
        "-o",
        "size=16m",
        "tmpfs",
        fs.to_str().unwrap(),
    ]) {
        assert!(
            std::env::var("SMSGATE_REQUIRE_MOUNT").is_err(),
            "SMSGATE_REQUIRE_MOUNT is set but tmpfs cannot be mounted"
        );
        crate::skipped(
            "diskfull",
            "cannot mount a tmpfs (needs root); a full and a read-only disk were not tried",
        );
        return;
    }
    let _mounted = Mounted(&fs);
    let sim = sim().await;

    // Read-only from the start: the gateway listens, answers 503 saying why, and opens its
    // store as soon as the disk is writable.
    std::fs::create_dir_all(fs.join("store")).unwrap();
    assert!(mount(&["-o", "remount,ro", fs.to_str().unwrap()]));
    let r = start(fs.join("store"), &sim, |_| {}).await;
    let (code, v) = r
        .post(
            "/v1/messages",
            &json!({"to": "+12025550123", "text": "no store yet"}),
        )
        .await;
    assert_eq!(code, 503, "{v}");
    assert!(
        v["detail"].as_str().unwrap().contains("cannot be opened"),
        "{v}"
    );
    let ready = get_open(&r, "/readyz").await;
    assert_eq!(ready.status().as_u16(), 503);
    let health = get_open(&r, "/healthz").await;
    assert_eq!(health.status().as_u16(), 200);
    assert!(mount(&["-o", "remount,rw", fs.to_str().unwrap()]));
    wait_accepting(&r).await;
    wait_modem_up(&r).await;

    // Full: leave about 1.5 MB, then write until the store refuses.
    let filler = fs.join("filler");
    let free = fs2_free(&fs);
    // tmpfs allocates on write: written, not just sized, so the space is really taken.
    std::fs::write(&filler, vec![1u8; free.saturating_sub(1_500_000) as usize]).unwrap();
    let mut acked = Vec::new();
    let refused = fill_until_refused(&r, &mut acked).await;
    assert_eq!(refused["type"], "urn:smsgate:problem:unavailable");
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .contains("cannot be written"),
        "{refused}"
    );
    assert!(
        !acked.is_empty(),
        "some batches went in before the disk filled"
    );
    let ready = get_open(&r, "/readyz").await;
    assert_eq!(ready.status().as_u16(), 503);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["store"], "failing", "{body}");

    // A retry with the same Idempotency-Key is not acknowledged from memory while the disk
    // cannot take what it acknowledges.
    let keyed = || {
        r.http
            .post(format!("{}/v1/messages", r.base))
            .bearer_auth(crate::TOKEN)
            .header("Idempotency-Key", "while-full-1")
            .json(&json!({"to": "+12025550126", "text": "keyed while full", "send_at": "2099-01-01T00:00:00Z"}))
            .send()
    };
    for attempt in 0..3 {
        let code = keyed().await.unwrap().status().as_u16();
        assert_eq!(
            code, 503,
            "attempt {attempt} acknowledged while the disk is full"
        );
    }

    // Space again: the gateway reopens its store by itself and takes messages.
    std::fs::remove_file(&filler).unwrap();
    wait_accepting(&r).await;
    for id in &acked {
        let (code, m) = r.get(&format!("/v1/messages/{id}")).await;
        assert_eq!(code, 200, "acknowledged message {id} lost: {m}");
    }
    // Once the disk takes writes, the same key gives one message, and its replay the same one.
    let first: Value = keyed().await.unwrap().json().await.unwrap();
    let again = keyed().await.unwrap();
    assert_eq!(again.status().as_u16(), 201);
    let again: Value = again.json().await.unwrap();
    assert_eq!(first["id"], again["id"], "{first} {again}");
    let (_, to) = r.get("/v1/messages?to=%2B12025550126").await;
    assert_eq!(to["messages"].as_array().map(Vec::len), Some(1), "{to}");
    wait_modem_up(&r).await;
    let (code, v) = r
        .post(
            "/v1/messages",
            &json!({"to": "+12025550125", "text": "sent after the disk filled"}),
        )
        .await;
    assert_eq!(code, 201, "{v}");
    let id = v["id"].as_str().unwrap();
    assert_eq!(r.wait_status(id, "sent", WAIT).await, "sent");

    let (code, stats) = r.get("/v1/stats").await;
    assert_eq!(code, 200);
    assert!(stats["counts"]["scheduled"].as_u64().unwrap() >= acked.len() as u64);
    let (_, ready) = r.get("/readyz").await;
    assert_eq!(ready["store"], "ok", "{ready}");
    r.stop().await;
    sim.shutdown().await;
}

/// Free bytes of the filesystem holding `p`.
fn fs2_free(p: &Path) -> u64 {
    let out = Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(p)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0)
}
