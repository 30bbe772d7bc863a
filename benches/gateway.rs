//! Gateway figures, printed: durable single POSTs with 64 concurrent clients, the batch
//! endpoint, the full path through a simulated modem, a queue of 1,000,000 messages, and a pool
//! of 1, 2, 4 and 8 modems at 1 s per send.
//! Run with `cargo bench --bench gateway [accept|single|batch] [path] [million] [footprint]
//! [cpu] [pool]` (loopback only; bounded in count and time). `footprint` is the `million` run
//! with 10,000 messages (a small office's queue); `cpu` is the daemon's CPU per message through
//! one simulated modem answering at once and after 500 ms. `SMSGATE_BENCH_NUMBERS` sets how many different recipients
//! the accept rounds use (10,000 by default); `SMSGATE_BENCH_CACHE_MB` the daemon's store cache
//! in `million` and `footprint` (the shipped default when unset).
//!
//! `SMSGATE_BENCH_BACKEND=postgres` keeps the data in PostgreSQL instead (`accept`, `path`,
//! `pool`): a server of the benchmark's own, made with the machine's `initdb`, on this host,
//! with its durable defaults (`fsync`, `synchronous_commit` on). `cluster` (PostgreSQL only)
//! splits 2, 4 and 8 simulated modems at 1 s per send over two daemons sharing one database,
//! and posts half of the messages to each.

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
use smsgate::store::Store;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "bench-token-0123456789";

/// Whether the data goes to PostgreSQL (`SMSGATE_BENCH_BACKEND=postgres`).
fn on_postgres() -> bool {
    std::env::var("SMSGATE_BENCH_BACKEND").is_ok_and(|v| v == "postgres")
}

/// The benchmark's own PostgreSQL server, with the durable defaults.
fn pg_server() -> &'static smsgate::store::pg::testdb::TestServer {
    static SERVER: std::sync::OnceLock<smsgate::store::pg::testdb::TestServer> =
        std::sync::OnceLock::new();
    SERVER.get_or_init(|| {
        smsgate::store::pg::testdb::TestServer::start(&["max_wal_size=4GB"])
            .expect("a PostgreSQL server (initdb from the postgresql package)")
    })
}

/// A new database's URL, with PostgreSQL.
fn pg_database() -> Option<String> {
    on_postgres().then(|| pg_server().create_database().expect("a database"))
}

/// The `[storage]` lines of a daemon's configuration: the database, or `dir`.
fn storage_lines(dir: &std::path::Path) -> String {
    match pg_database() {
        Some(url) => format!("[storage]\nbackend = \"postgres\"\nurl = \"{url}\"\n"),
        None => format!("[storage]\npath = \"{}\"\n", dir.display()),
    }
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
        store_url: pg_database(),
        lease_ttl: smsgate::store::lease::DEFAULT_TTL,
        cache_mb: 32,
        keys: vec![ApiKey::from_token("bench", TOKEN)],
        modems: modems.into_iter().map(Into::into).collect(),
        api: ApiConfig {
            messages: smsgate::domain::MessageRules {
                status_report: false,
                ..Default::default()
            },
            ..ApiConfig::default()
        },
        dispatch: DispatchConfig::default(),
        inbound: smsgate::server::InboundPolicy {
            reassembly_timeout: std::time::Duration::from_secs(3600),
            ..Default::default()
        },
        webhooks: smsgate::webhook::WebhookConfig::default(),
        reminders: Default::default(),
        clock: Clock::system(),
        modem_source: None,
        key_source: None,
        twilio: Default::default(),
        outbound: Default::default(),
        phone: None,
        retention: Default::default(),
    };
    let stop = CancellationToken::new();
    let (tx, rx) = oneshot::channel::<SocketAddr>();
    let task = tokio::spawn(gw.run(stop.clone(), Some(tx)));
    let addr = rx.await.expect("gateway up");
    (format!("http://{addr}"), stop, task)
}

/// The recipients: `SMSGATE_BENCH_NUMBERS` different numbers (10,000 by default), in turn.
fn number(i: usize) -> String {
    let n: usize = std::env::var("SMSGATE_BENCH_NUMBERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
        .clamp(1, 8_000_000);
    let k = i % n;
    // Valid US numbers: area codes 202..=209, exchanges 2xx.
    format!(
        "+1{}{:03}{:04}",
        202 + k / 1_000_000 % 8,
        200 + k / 10_000 % 100,
        k % 10_000
    )
}

async fn get_json(http: &reqwest::Client, url: &str) -> serde_json::Value {
    http.get(url)
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json")
}

async fn post_json(http: &reqwest::Client, url: &str, body: Vec<u8>) -> reqwest::Response {
    http.post(url)
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("post")
}

/// One round's figures: rate, p50 and p99 latency in ms.
type Round = (f64, f64, f64);

/// Prints the median of each figure over several rounds.
fn median(what: &str, rounds: &[Round]) {
    let med = |f: fn(&Round) -> f64| {
        let mut v: Vec<f64> = rounds.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "{what}, median of {} rounds: {:.0}/s; p50 {:.1} ms, p99 {:.1} ms",
        rounds.len(),
        med(|r| r.0),
        med(|r| r.1),
        med(|r| r.2)
    );
}

/// Waits until the simulators have received `total` messages between them (at most 3 s per
/// message a modem has to send, and a minute more).
async fn wait_sent(sims: &[smsgate::sim::SimHandle], total: usize, per_modem: usize) {
    let deadline = Instant::now() + Duration::from_secs(per_modem as u64 * 3 + 60);
    loop {
        let sent: usize = sims.iter().map(|s| s.sent().len()).sum();
        if sent >= total {
            return;
        }
        assert!(Instant::now() < deadline, "only {sent} of {total} sent");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn single_posts(base: &str, clients: usize, per_client: usize) -> Round {
    let http = smsgate::tls::client_builder()
        .pool_max_idle_per_host(clients)
        .build()
        .unwrap();
    // The bodies are made before the clock starts: the figure is the daemon's, and the load
    // generator shares its two cores.
    let bodies: Vec<Vec<Vec<u8>>> = (0..clients)
        .map(|c| {
            (0..per_client)
                .map(|i| {
                    json!({"to": number(c * per_client + i), "text": format!("Reminder {c}-{i}: invoice due Dec 1."), "send_at": "2099-01-01T00:00:00Z"})
                        .to_string()
                        .into_bytes()
                })
                .collect()
        })
        .collect();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for mine in bodies {
        let http = http.clone();
        let url = format!("{base}/v1/messages");
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(mine.len());
            for body in mine {
                let t = Instant::now();
                let r = post_json(&http, &url, body).await;
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
    let round = (
        all.len() as f64 / elapsed.as_secs_f64(),
        pct(&all, 0.5).as_secs_f64() * 1e3,
        pct(&all, 0.99).as_secs_f64() * 1e3,
    );
    println!(
        "single POST, {clients} clients: {} requests in {:.2} s = {:.0} durable POST/s; latency p50 {:.1} ms, p99 {:.1} ms",
        all.len(),
        elapsed.as_secs_f64(),
        round.0,
        round.1,
        round.2
    );
    round
}

async fn batches(base: &str, clients: usize, per_client: usize, size: usize) -> Round {
    let http = smsgate::tls::client_builder().build().unwrap();
    let bodies: Vec<Vec<Vec<u8>>> = (0..clients)
        .map(|c| {
            (0..per_client)
                .map(|b| {
                    let msgs: Vec<_> = (0..size)
                        .map(|i| json!({"to": number((c * per_client + b) * size + i), "text": format!("Batch {c}-{b}-{i}: invoice due Dec 1."), "send_at": "2099-01-01T00:00:00Z"}))
                        .collect();
                    json!({ "messages": msgs }).to_string().into_bytes()
                })
                .collect()
        })
        .collect();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for mine in bodies {
        let http = http.clone();
        let url = format!("{base}/v1/messages/batch");
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            for body in mine {
                let t = Instant::now();
                let r = post_json(&http, &url, body).await;
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
    let round = (
        n as f64 / elapsed.as_secs_f64(),
        pct(&all, 0.5).as_secs_f64() * 1e3,
        pct(&all, 0.99).as_secs_f64() * 1e3,
    );
    println!(
        "batch POST of {size}, {clients} clients: {n} messages in {:.2} s = {:.0} messages/s; request p50 {:.1} ms, p99 {:.1} ms",
        elapsed.as_secs_f64(),
        round.0,
        round.1,
        round.2
    );
    round
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
    let http = smsgate::tls::client_builder().build().unwrap();
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
        let v = get_json(&http, &format!("{base}/v1/stats")).await;
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

fn rss_of(pid: u32, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with(field)).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<f64>().ok())
            })
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Starts `smsgate serve` as its own process and waits until `/readyz` says ready.
async fn daemon(config: &std::path::Path, base: &str) -> (std::process::Child, Duration) {
    let started = Instant::now();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_smsgate"))
        .args(["serve", "--config"])
        .arg(config)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start smsgate");
    let http = smsgate::tls::client_builder().build().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = http.get(format!("{base}/readyz")).send().await
            && r.status().is_success()
        {
            break;
        }
        assert!(Instant::now() < deadline, "daemon not ready in 60 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    (child, started.elapsed())
}

fn stop(mut child: std::process::Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
    let _ = child.wait();
}

/// Writes `dir/smsgate.toml` for the real daemon on a free port with `sim` as its modem and
/// `storage` lines added to `[storage]`; the file and the base URL.
fn daemon_config(
    dir: &std::path::Path,
    sim: &smsgate::sim::SimHandle,
    storage: &str,
) -> (std::path::PathBuf, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.join("smsgate.toml");
    std::fs::write(
        &config,
        format!(
            "[http]\nlisten = \"127.0.0.1:{port}\"\n[storage]\npath = \"{}\"\n{storage}\
             [[api_keys]]\nname = \"bench\"\ntoken = \"{TOKEN}\"\n\
             [[modems]]\nname = \"sim0\"\nport = \"{}\"\n",
            dir.join("store").display(),
            sim.path().display()
        ),
    )
    .unwrap();
    (config, format!("http://127.0.0.1:{port}"))
}

/// A queue of `n` waiting messages in the real daemon (`smsgate serve`, its own process, the
/// shipped default cache size), filled through the batch endpoint: its RSS, then a restart.
async fn million(n: usize) {
    let dir = tempfile::tempdir().unwrap();
    let sim = Simulator::start(SimConfig::default()).await.unwrap();
    let cache = std::env::var("SMSGATE_BENCH_CACHE_MB")
        .map(|mb| format!("cache_mb = {mb}\n"))
        .unwrap_or_default();
    let (config, base) = daemon_config(dir.path(), &sim, &cache);
    let (child, _) = daemon(&config, &base).await;
    let pid = child.id();
    let started = Instant::now();
    let clients = 2;
    let mut tasks = Vec::new();
    for c in 0..clients {
        let url = format!("{base}/v1/messages/batch");
        tasks.push(tokio::spawn(async move {
            let http = smsgate::tls::client_builder().build().unwrap();
            for b in (c..n / 1000).step_by(clients) {
                let msgs: Vec<_> = (0..1000)
                    .map(|i| json!({"to": number(b * 1000 + i), "text": format!("Reminder {b}-{i}: invoice INV-{b}{i} for $120.50 is due Dec 1. Reply 1 for a call."), "send_at": "2099-01-01T00:00:00Z"}))
                    .collect();
                let r = http.post(&url).bearer_auth(TOKEN).json(&json!({"messages": msgs})).send().await.expect("post");
                assert_eq!(r.status().as_u16(), 201);
                let _ = r.bytes().await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    println!(
        "queue of {n}: filled through the batch endpoint in {:.1} s; daemon RSS {:.0} MB (peak {:.0} MB)",
        started.elapsed().as_secs_f64(),
        rss_of(pid, "VmRSS:"),
        rss_of(pid, "VmHWM:")
    );
    stop(child);
    let (child, ready) = daemon(&config, &base).await;
    let pid = child.id();
    let stats: serde_json::Value = smsgate::tls::client_builder()
        .build()
        .unwrap()
        .get(format!("{base}/v1/stats"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["queue_depth"].as_u64(), Some(n as u64), "{stats}");
    println!(
        "queue of {n}: restart to ready {:.2} s (process start, store open, modem up, /readyz 200); daemon RSS {:.0} MB (peak {:.0} MB); queue depth {}",
        ready.as_secs_f64(),
        rss_of(pid, "VmRSS:"),
        rss_of(pid, "VmHWM:"),
        stats["queue_depth"]
    );
    stop(child);
    sim.shutdown().await;
    // The next-due lookup, timed in-process on the same store.
    let store = Store::open(&dir.path().join("store"), 32).unwrap();
    let d = Dispatcher::new(store.clone(), DispatchConfig::default(), Clock::system());
    d.recover().await.unwrap();
    let reps = 10_000;
    let t = Instant::now();
    for _ in 0..reps {
        std::hint::black_box(store.next_due(chrono::Utc::now()).unwrap());
    }
    let per = t.elapsed() / reps;
    println!(
        "queue of {n}: next-due lookup {:.1} µs",
        per.as_secs_f64() * 1e6
    );
}

/// The real daemon (its own process, the shipped defaults) and one simulated modem answering
/// each `AT+CMGS` after `latency`: the daemon's CPU time per message for `n` messages posted
/// in one batch, from the batch to the last `sent`.
async fn cpu_per_message(latency: Duration, n: usize) {
    let dir = tempfile::tempdir().unwrap();
    let sim = Simulator::start(SimConfig {
        latency,
        status_reports: None,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let (config, base) = daemon_config(dir.path(), &sim, "");
    let (child, _) = daemon(&config, &base).await;
    let pid = child.id();
    let http = smsgate::tls::client_builder().build().unwrap();
    // One message first, not counted: the first number checked makes the phone-number library
    // build its regular expressions (about 0.1 s of CPU once per process), which is not a cost
    // per message.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle = cpu_seconds(pid);
    let r = http
        .post(format!("{base}/v1/messages"))
        .bearer_auth(TOKEN)
        .json(&json!({"to": number(n), "text": "warm-up"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let deadline = Instant::now() + Duration::from_secs(30);
    while sim.sent().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the warm-up message was not sent"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let first = cpu_seconds(pid) - idle;
    // The start-up settled.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let msgs: Vec<_> = (0..n)
        .map(|i| json!({"to": number(i), "text": format!("Reminder {i}: invoice INV-{i} for $120.50 is due Dec 1.")}))
        .collect();
    let before = cpu_seconds(pid);
    let started = Instant::now();
    let r = http
        .post(format!("{base}/v1/messages/batch"))
        .bearer_auth(TOKEN)
        .json(&json!({ "messages": msgs }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    // Waits on the simulator, not by asking the daemon: answering requests costs the daemon
    // CPU too.
    let deadline = Instant::now() + latency * (n as u32) * 2 + Duration::from_secs(60);
    while sim.sent().len() < n + 1 {
        assert!(Instant::now() < deadline, "only {} sent", sim.sent().len());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = started.elapsed();
    // The daemon writes the last `sent` right after the network's answer.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let cpu = cpu_seconds(pid) - before;
    let stats = get_json(&http, &format!("{base}/v1/stats")).await;
    assert_eq!(
        stats["counts"]["sent"].as_u64(),
        Some(n as u64 + 1),
        "{stats}"
    );
    println!(
        "cpu, {} ms per AT+CMGS: {n} messages in {:.1} s; daemon CPU {:.2} s, {:.2} ms per message (the first message of the process, not counted: {:.0} ms)",
        latency.as_millis(),
        took.as_secs_f64(),
        cpu,
        cpu * 1000.0 / n as f64,
        first * 1000.0
    );
    stop(child);
    sim.shutdown().await;
}

/// CPU seconds a process has used (user + system), from `/proc/<pid>/stat` (USER_HZ is 100 on
/// Linux).
fn cpu_seconds(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // Fields after the command name, which is in parentheses and may hold spaces.
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            let utime: f64 = f.get(11)?.parse().ok()?;
            let stime: f64 = f.get(12)?.parse().ok()?;
            Some((utime + stime) / 100.0)
        })
        .unwrap_or(0.0)
}

/// Several modems at 1 s per send: the real daemon (its own process) with `n` simulated modems,
/// `per_modem × n` messages posted in one batch. Aggregate throughput against the ideal of `n`
/// messages a second, and the daemon's CPU per message (accepting, storing, dispatching,
/// driving the modems).
async fn pool(counts: &[usize], per_modem: usize) {
    println!("modem pool: simulated modems at 1 s per AT+CMGS, {per_modem} messages per modem");
    println!(
        "| modems | messages | time | messages/s | of ideal | daemon CPU per message | spread |"
    );
    println!("|---|---|---|---|---|---|---|");
    for &n in counts {
        let dir = tempfile::tempdir().unwrap();
        let mut sims = Vec::new();
        let mut modems = String::new();
        for i in 0..n {
            let link = dir.path().join(format!("modem{i}"));
            let sim = Simulator::start(SimConfig {
                latency: Duration::from_secs(1),
                status_reports: None,
                link: Some(link.clone()),
                ..SimConfig::default()
            })
            .await
            .unwrap();
            modems.push_str(&format!(
                "[[modems]]\nname = \"sim{i}\"\nport = \"{}\"\n",
                link.display()
            ));
            sims.push(sim);
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.path().join("smsgate.toml");
        std::fs::write(
            &config,
            format!(
                "[http]\nlisten = \"127.0.0.1:{port}\"\n{}[[api_keys]]\nname = \"bench\"\ntoken = \"{TOKEN}\"\n[sms]\nstatus_report = false\n{modems}",
                storage_lines(&dir.path().join("store"))
            ),
        )
        .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let (child, _) = daemon(&config, &base).await;
        let http = smsgate::tls::client_builder().build().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let v = get_json(&http, &format!("{base}/v1/modems")).await;
            let up = v["modems"]
                .as_array()
                .map_or(0, |a| a.iter().filter(|m| m["state"] == "up").count());
            if up == n {
                break;
            }
            assert!(Instant::now() < deadline, "modems not up");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let total = n * per_modem;
        let msgs: Vec<_> = (0..total)
            .map(|i| json!({"to": number(i), "text": format!("Pool {i}: invoice due Dec 1.")}))
            .collect();
        let body = json!({ "messages": msgs }).to_string().into_bytes();
        let cpu0 = cpu_seconds(child.id());
        let started = Instant::now();
        let r = post_json(&http, &format!("{base}/v1/messages/batch"), body).await;
        assert_eq!(r.status().as_u16(), 201);
        wait_sent(&sims, total, per_modem).await;
        let elapsed = started.elapsed().as_secs_f64();
        let cpu = cpu_seconds(child.id()) - cpu0;
        let rate = total as f64 / elapsed;
        let spread: Vec<usize> = sims.iter().map(|s| s.sent().len()).collect();
        println!(
            "| {n} | {total} | {elapsed:.2} s | {rate:.2} | {:.1} % | {:.2} ms | {} |",
            rate / n as f64 * 100.0,
            cpu / total as f64 * 1e3,
            spread
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join("/")
        );
        stop(child);
        for s in sims {
            s.shutdown().await;
        }
    }
}

/// `n` simulated modems at 1 s per send split over two daemons on one PostgreSQL database,
/// `per_modem × n` messages posted in two batches, one to each daemon: aggregate throughput
/// against the ideal of `n` messages a second.
async fn cluster(counts: &[usize], per_modem: usize) {
    println!(
        "two daemons, one PostgreSQL database: simulated modems at 1 s per AT+CMGS, split over the two, {per_modem} messages per modem"
    );
    println!("| modems | messages | time | messages/s | of ideal | spread |");
    println!("|---|---|---|---|---|---|");
    for &n in counts {
        let dir = tempfile::tempdir().unwrap();
        let url = pg_server().create_database().expect("a database");
        let mut sims = Vec::new();
        let mut modems = [String::new(), String::new()];
        for i in 0..n {
            let link = dir.path().join(format!("modem{i}"));
            let sim = Simulator::start(SimConfig {
                latency: Duration::from_secs(1),
                status_reports: None,
                link: Some(link.clone()),
                ..SimConfig::default()
            })
            .await
            .unwrap();
            modems[i % 2].push_str(&format!(
                "[[modems]]\nname = \"sim{i}\"\nport = \"{}\"\n",
                link.display()
            ));
            sims.push(sim);
        }
        let mut children = Vec::new();
        let mut bases = Vec::new();
        for (g, modems) in modems.iter().enumerate() {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let config = dir.path().join(format!("gateway{g}.toml"));
            std::fs::write(
                &config,
                format!(
                    "[http]\nlisten = \"127.0.0.1:{port}\"\n[storage]\nbackend = \"postgres\"\nurl = \"{url}\"\n[[api_keys]]\nname = \"bench\"\ntoken = \"{TOKEN}\"\n[sms]\nstatus_report = false\n{modems}"
                ),
            )
            .unwrap();
            let base = format!("http://127.0.0.1:{port}");
            let (child, _) = daemon(&config, &base).await;
            children.push(child);
            bases.push(base);
        }
        let http = smsgate::tls::client_builder().build().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let mut up = 0;
            for base in &bases {
                let v = get_json(&http, &format!("{base}/v1/modems")).await;
                up += v["modems"]
                    .as_array()
                    .map_or(0, |a| a.iter().filter(|m| m["state"] == "up").count());
            }
            if up == n {
                break;
            }
            assert!(Instant::now() < deadline, "modems not up");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let total = n * per_modem;
        let started = Instant::now();
        for (g, base) in bases.iter().enumerate() {
            let msgs: Vec<_> = (0..total)
                .filter(|i| i % 2 == g)
                .map(|i| json!({"to": number(i), "text": format!("Cluster {i}: invoice due Dec 1.")}))
                .collect();
            let body = json!({ "messages": msgs }).to_string().into_bytes();
            let r = post_json(&http, &format!("{base}/v1/messages/batch"), body).await;
            assert_eq!(r.status().as_u16(), 201);
        }
        wait_sent(&sims, total, per_modem).await;
        let elapsed = started.elapsed().as_secs_f64();
        let rate = total as f64 / elapsed;
        let spread: Vec<usize> = sims.iter().map(|s| s.sent().len()).collect();
        assert_eq!(
            spread.iter().sum::<usize>(),
            total,
            "each message sent once"
        );
        println!(
            "| {n} | {total} | {elapsed:.2} s | {rate:.2} | {:.1} % | {} |",
            rate / n as f64 * 100.0,
            spread
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join("/")
        );
        for c in children {
            stop(c);
        }
        for s in sims {
            s.shutdown().await;
        }
    }
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
            "gateway benchmark ({} cores, store: {})",
            std::thread::available_parallelism().map_or(0, |n| n.get()),
            if on_postgres() {
                "PostgreSQL on this host"
            } else {
                "sled"
            }
        );
        if want("accept") || want("single") || want("batch") {
            let dir = tempfile::tempdir().unwrap();
            let (base, stop, task) = gateway(dir.path().join("store"), vec![]).await;
            const ROUNDS: usize = 5;
            if want("accept") || want("single") {
                let mut rounds = Vec::new();
                for _ in 0..ROUNDS {
                    rounds.push(single_posts(&base, 64, 300).await);
                }
                median("single POST, 64 clients", &rounds);
            }
            if want("accept") || want("batch") {
                let mut rounds = Vec::new();
                for _ in 0..ROUNDS {
                    rounds.push(batches(&base, 4, 25, 1000).await);
                }
                median("batch POST of 1000 (messages/s)", &rounds);
            }
            stop.cancel();
            let _ = task.await;
        }
        if want("path") {
            full_path(4000).await;
        }
        if want("million") {
            million(1_000_000).await;
        }
        if want("footprint") {
            million(10_000).await;
        }
        if want("cpu") {
            cpu_per_message(Duration::ZERO, 400).await;
            cpu_per_message(Duration::from_millis(500), 100).await;
        }
        if want("pool") {
            pool(&[1, 2, 4, 8], 20).await;
        }
        if what.iter().any(|w| w == "cluster") {
            cluster(&[2, 4, 8], 20).await;
        }
        let _ = Arc::new(());
    });
}
