//! Gateway figures, printed: durable single POSTs with 64 concurrent clients, the batch
//! endpoint, the full path through a simulated modem, and a queue of 1,000,000 messages.
//! Run with `cargo bench --bench gateway` (loopback only; bounded in count and time).

/// The daemon's allocator (see src/main.rs), so the figures are the daemon's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use smsgate::api::{ApiConfig, ApiKey};
use smsgate::dispatch::{Clock, DispatchConfig, Dispatcher};
use smsgate::modem::ModemConfig;
use smsgate::server::Gateway;
use smsgate::sim::{SimConfig, Simulator};
use smsgate::store::{Message, Priority, Status, Store};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "bench-token-0123456789";

fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<f64>().ok())
            })
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn gateway(
    store: std::path::PathBuf,
    modems: Vec<ModemConfig>,
) -> (
    String,
    CancellationToken,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    let gw = Gateway {
        listen: "127.0.0.1:0".parse().unwrap(),
        store_path: store,
        cache_mb: 256,
        keys: vec![ApiKey::from_token("bench", TOKEN)],
        modems,
        api: ApiConfig {
            status_report: false,
            ..ApiConfig::default()
        },
        dispatch: DispatchConfig::default(),
        clock: Clock::system(),
    };
    let stop = CancellationToken::new();
    let (tx, rx) = oneshot::channel::<SocketAddr>();
    let task = tokio::spawn(gw.run(stop.clone(), Some(tx)));
    let addr = rx.await.expect("gateway up");
    (format!("http://{addr}"), stop, task)
}

async fn single_posts(base: &str, clients: usize, per_client: usize) {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()
        .unwrap();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let http = http.clone();
        let url = format!("{base}/v1/messages");
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(per_client);
            for i in 0..per_client {
                let body = json!({"to": "+12025550123", "text": format!("Reminder {c}-{i}: invoice due Dec 1."), "send_at": "2099-01-01T00:00:00Z"});
                let t = Instant::now();
                let r = http.post(&url).bearer_auth(TOKEN).json(&body).send().await.expect("post");
                assert_eq!(r.status().as_u16(), 201);
                let _ = r.bytes().await;
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let elapsed = started.elapsed();
    all.sort();
    println!(
        "single POST, {clients} clients: {} requests in {:.2} s = {:.0} durable POST/s; latency p50 {:.1} ms, p99 {:.1} ms",
        all.len(),
        elapsed.as_secs_f64(),
        all.len() as f64 / elapsed.as_secs_f64(),
        pct(&all, 0.5).as_secs_f64() * 1e3,
        pct(&all, 0.99).as_secs_f64() * 1e3
    );
}

async fn batches(base: &str, clients: usize, per_client: usize, size: usize) {
    let http = reqwest::Client::new();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let http = http.clone();
        let url = format!("{base}/v1/messages/batch");
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            for b in 0..per_client {
                let msgs: Vec<_> = (0..size)
                    .map(|i| json!({"to": "+12025550123", "text": format!("Batch {c}-{b}-{i}: invoice due Dec 1."), "send_at": "2099-01-01T00:00:00Z"}))
                    .collect();
                let body = json!({"messages": msgs});
                let t = Instant::now();
                let r = http.post(&url).bearer_auth(TOKEN).json(&body).send().await.expect("post");
                assert_eq!(r.status().as_u16(), 201);
                let _ = r.bytes().await;
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let elapsed = started.elapsed();
    all.sort();
    let n = clients * per_client * size;
    println!(
        "batch POST of {size}, {clients} clients: {n} messages in {:.2} s = {:.0} messages/s; request p50 {:.1} ms, p99 {:.1} ms",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64(),
        pct(&all, 0.5).as_secs_f64() * 1e3,
        pct(&all, 0.99).as_secs_f64() * 1e3
    );
}

async fn full_path(n: usize) {
    let dir = tempfile::tempdir().unwrap();
    let sim = Simulator::start(SimConfig {
        status_reports: None,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let (base, stop, task) = gateway(
        dir.path().join("store"),
        vec![ModemConfig::new("sim0", sim.path().display().to_string())],
    )
    .await;
    let http = reqwest::Client::new();
    for _ in 0..200 {
        let v: serde_json::Value = http
            .get(format!("{base}/readyz"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if v["status"] == "ready" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let started = Instant::now();
    for chunk in 0..(n / 500) {
        let msgs: Vec<_> = (0..500)
            .map(|i| json!({"to": "+12025550123", "text": format!("Full path {chunk}-{i}")}))
            .collect();
        let r = http
            .post(format!("{base}/v1/messages/batch"))
            .bearer_auth(TOKEN)
            .json(&json!({"messages": msgs}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201);
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let v: serde_json::Value = http
            .get(format!("{base}/v1/stats"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if v["counts"]["sent"].as_u64() == Some(n as u64) || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed();
    assert_eq!(sim.sent().len(), n, "all reached the simulator");
    println!(
        "full path (API → disk → modem → sent on disk), zero modem latency, one port: {n} messages in {:.2} s = {:.0} messages/s",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64()
    );
    stop.cancel();
    let _ = task.await;
    sim.shutdown().await;
}

fn record(i: usize, now: chrono::DateTime<chrono::Utc>) -> Message {
    Message {
        id: ulid::Ulid::generate().to_string(),
        to: format!("+1202555{:04}", i % 10_000),
        text: format!(
            "Reminder {i}: invoice INV-{i} for $120.50 is due Dec 1. Reply 1 for a call."
        ),
        encoding: "gsm7".into(),
        parts: 1,
        status: Status::Scheduled,
        status_reason: None,
        priority: Priority::Normal,
        created_at: now,
        updated_at: now,
        send_at: Some(now + chrono::Duration::seconds((i % 86_400) as i64 + 3600)),
        expires_at: None,
        max_lateness_secs: 43_200,
        due_at: now + chrono::Duration::seconds((i % 86_400) as i64 + 3600),
        reply_options: None,
        callback_url: None,
        metadata: None,
        status_report: true,
        attempts: vec![],
        part_status: vec![],
        modem: None,
        sent_at: None,
        delivered_at: None,
        created_by: "bench".into(),
        history_len: 0,
        requeued_at: None,
    }
}

async fn million(n: usize) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let before = rss_mb();
    let started = Instant::now();
    {
        let store = Store::open(&path, 64).unwrap();
        let now = chrono::Utc::now();
        for b in 0..(n / 1000) {
            let batch: Vec<Message> = (0..1000).map(|i| record(b * 1000 + i, now)).collect();
            store.insert(&batch, None).unwrap();
            if b % 50 == 0 {
                store.durable().await.unwrap();
            }
        }
        store.durable().await.unwrap();
        println!(
            "queue of {n}: filled in {:.1} s; RSS {:.0} MB (process at start {:.0} MB)",
            started.elapsed().as_secs_f64(),
            rss_mb(),
            before
        );
    }
    // Restart to ready: open, recover `sending`, find the next due message.
    let t = Instant::now();
    let store = Store::open(&path, 64).unwrap();
    let d = Dispatcher::new(store.clone(), DispatchConfig::default(), Clock::system());
    d.recover().await.unwrap();
    let next = store.next_due(chrono::Utc::now()).unwrap();
    let restart = t.elapsed();
    let reps = 10_000;
    let t = Instant::now();
    for _ in 0..reps {
        std::hint::black_box(store.next_due(chrono::Utc::now()).unwrap());
    }
    let per = t.elapsed() / reps;
    println!(
        "queue of {n}: restart to ready {:.2} s (next: {next:?}); next-due lookup {:.1} µs; RSS after reopen {:.0} MB; {} messages stored",
        restart.as_secs_f64(),
        per.as_secs_f64() * 1e6,
        rss_mb(),
        store.len()
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let what: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let want = |k: &str| what.is_empty() || what.iter().any(|w| w == k);
    rt.block_on(async {
        println!(
            "gateway benchmark ({} cores)",
            std::thread::available_parallelism().map_or(0, |n| n.get())
        );
        if want("accept") {
            let dir = tempfile::tempdir().unwrap();
            let (base, stop, task) = gateway(dir.path().join("store"), vec![]).await;
            single_posts(&base, 64, 300).await;
            batches(&base, 4, 25, 1000).await;
            stop.cancel();
            let _ = task.await;
        }
        if want("path") {
            full_path(4000).await;
        }
        if want("million") {
            million(1_000_000).await;
        }
        let _ = Arc::new(());
    });
}
