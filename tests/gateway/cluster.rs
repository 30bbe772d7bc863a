//! Two real `smsgate serve` processes on one PostgreSQL database, end to end: they share one
//! queue, a modem configured on both (served over TCP by a real ser2net) is driven by one of
//! them and taken over by the other when the first is killed with SIGKILL, and both ride out
//! the database restarting under load.
//!
//! What is proven, counting what the simulated modems put on the network:
//!
//! - every accepted message, whichever gateway accepted it, goes out exactly once, through any
//!   gateway's modems; every reply is matched to its message; every webhook (sent, delivered,
//!   reply) arrives once per message; a gateway's `GET /v1/events` shows what the other
//!   accepted;
//! - after `kill -9` of a gateway, the messages it had in hand on a modem become `unknown` (at
//!   most one per modem, never sent again), the other gateway takes the shared modem over
//!   within the lease's time and a few seconds, and the rest of the queue drains;
//! - while the database is down the API answers 503 and acknowledges nothing; once it is back
//!   both gateways recover by themselves and nothing acknowledged is lost or sent twice.
//!
//! Without PostgreSQL (or ser2net, for the tests that use it) a test says so and passes, unless
//! `SMSGATE_REQUIRE_POSTGRES=1` (or `SMSGATE_REQUIRE_SER2NET=1`).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use smsgate::sim::{SimConfig, SimHandle, Simulator};

use crate::TOKEN;
use crate::crash::{free_port, signal};
use crate::replies::{Receiver, SECRET};

/// The lease of a modem (and of the one-gateway jobs): short, so that a take-over is quick.
const LEASE_TTL: Duration = Duration::from_secs(3);

/// One `smsgate serve` process.
struct Daemon {
    name: &'static str,
    base: String,
    config: PathBuf,
    log: PathBuf,
    child: tokio::process::Child,
}

/// A modem of a gateway's configuration: its name and port.
type ModemAt = (&'static str, String);

/// Writes `dir/<name>.toml`: a gateway on `port` whose store is the database `url`, with
/// `modems`, its webhooks signed and sent to `rx` (when given).
fn write_config(
    dir: &Path,
    name: &str,
    port: u16,
    url: &str,
    modems: &[ModemAt],
    rx: Option<&Receiver>,
) -> PathBuf {
    let mut text = format!(
        "[http]\nlisten = \"127.0.0.1:{port}\"\n\
         [storage]\nbackend = \"postgres\"\nurl = \"{url}\"\nlease_ttl = \"{}s\"\n\
         [[api_keys]]\nname = \"test\"\ntoken = \"{TOKEN}\"\n\
         [queue]\nretry_backoff = \"200ms\"\nretry_backoff_max = \"1s\"\n\
         [outbound]\nallow_loopback = true\n",
        LEASE_TTL.as_secs()
    );
    if let Some(rx) = rx {
        text.push_str(&format!(
            "[webhooks]\nurl = \"{}\"\nsecret = \"{SECRET}\"\nretry_backoff = \"100ms\"\n\
             retry_backoff_max = \"500ms\"\nmax_in_flight = 16\n",
            rx.url("global")
        ));
    }
    for (modem, at) in modems {
        text.push_str(&format!(
            "[[modems]]\nname = \"{modem}\"\nport = \"{at}\"\ncommand_timeout = \"2s\"\n\
             send_timeout = \"5s\"\nhealth_interval = \"2s\"\n"
        ));
    }
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

impl Daemon {
    /// Starts gateway `name` with `config` (listening on `port`), its log in `dir/<name>.log`,
    /// and waits until it answers `/healthz`.
    async fn start(
        http: &reqwest::Client,
        dir: &Path,
        name: &'static str,
        port: u16,
        config: PathBuf,
    ) -> Daemon {
        let log = dir.join(format!("{name}.log"));
        let mut d = Daemon {
            name,
            base: format!("http://127.0.0.1:{port}"),
            child: spawn(&config, &log),
            config,
            log,
        };
        d.wait_healthy(http).await;
        d
    }

    fn spawn_again(&mut self) {
        self.child = spawn(&self.config, &self.log);
    }

    async fn wait_healthy(&mut self, http: &reqwest::Client) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = http.get(format!("{}/healthz", self.base)).send().await
                && r.status().is_success()
            {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "gateway {} ended ({status}):\n{}",
                    self.name,
                    self.log_text()
                );
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "gateway {} not healthy within 60 s:\n{}",
                self.name,
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The gateway's modems and their states.
    async fn modems(&self, http: &reqwest::Client) -> Vec<(String, String)> {
        let v = get(http, &format!("{}/v1/modems", self.base)).await.1;
        v["modems"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|m| {
                        (
                            m["name"].as_str().unwrap_or("").to_string(),
                            m["state"].as_str().unwrap_or("").to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    async fn is_up(&self, http: &reqwest::Client, modem: &str) -> bool {
        self.modems(http)
            .await
            .iter()
            .any(|(n, s)| n == modem && s == "up")
    }

    async fn wait_up(&self, http: &reqwest::Client, modems: &[&str], within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let now = self.modems(http).await;
            if modems
                .iter()
                .all(|m| now.iter().any(|(n, s)| n == m && s == "up"))
            {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "gateway {}: {modems:?} not up within {within:?}: {now:?}\n{}",
                self.name,
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGTERM, then waits for the exit (SIGKILL after 20 s).
    async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            signal(pid, nix::sys::signal::Signal::SIGTERM);
        }
        if tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

fn spawn(config: &Path, log: &Path) -> tokio::process::Child {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    tokio::process::Command::new(env!("CARGO_BIN_EXE_smsgate"))
        .args(["serve", "--config"])
        .arg(config)
        .env_remove("SMSGATE_STORAGE_URL")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::from(out.try_clone().unwrap()))
        .stderr(Stdio::from(out))
        .kill_on_drop(true)
        .spawn()
        .expect("the daemon starts")
}

/// GET with the token: status and JSON (0 and null when the request failed).
async fn get(http: &reqwest::Client, url: &str) -> (u16, Value) {
    match http
        .get(url)
        .bearer_auth(TOKEN)
        .timeout(Duration::from_secs(15))
        .send()
        .await
    {
        Ok(r) => {
            let code = r.status().as_u16();
            (code, r.json().await.unwrap_or(Value::Null))
        }
        Err(_) => (0, Value::Null),
    }
}

/// POST with the token: status and JSON (0 and null when no answer came within 15 s).
async fn post(http: &reqwest::Client, url: &str, body: &Value) -> (u16, Value) {
    match http
        .post(url)
        .bearer_auth(TOKEN)
        .json(body)
        .timeout(Duration::from_secs(15))
        .send()
        .await
    {
        Ok(r) => {
            let code = r.status().as_u16();
            (code, r.json().await.unwrap_or(Value::Null))
        }
        Err(_) => (0, Value::Null),
    }
}

/// Posts `messages` as one batch to `gw`; the accepted (id, to, text), or the status and body.
async fn post_batch(
    http: &reqwest::Client,
    gw: &Daemon,
    messages: Vec<Value>,
) -> Result<Vec<Accepted>, (u16, Value)> {
    let (code, v) = post(
        http,
        &format!("{}/v1/messages/batch", gw.base),
        &json!({ "messages": messages }),
    )
    .await;
    if code != 201 {
        return Err((code, v));
    }
    Ok(v["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| Accepted {
            id: m["id"].as_str().unwrap_or("").to_string(),
            to: m["to"].as_str().unwrap_or("").to_string(),
            text: m["text"].as_str().unwrap_or("").to_string(),
        })
        .collect())
}

/// One `POST /v1/messages` as the client saw it.
struct Posted {
    started: tokio::time::Instant,
    answered: tokio::time::Instant,
    /// 0: no answer.
    code: u16,
    body: Value,
    to: String,
    text: String,
}

/// A message a gateway acknowledged (201).
#[derive(Debug, Clone)]
struct Accepted {
    id: String,
    to: String,
    text: String,
}

/// The recipient of message number `i` (one number per message, so that each reply has one
/// message to answer).
fn recipient(i: usize) -> String {
    format!("+1202555{:04}", 2000 + i % 8000)
}

/// A simulated modem whose device is also reachable as `link` (for ser2net).
async fn sim_at(link: Option<PathBuf>, latency: Duration) -> SimHandle {
    Simulator::start(SimConfig {
        link,
        latency,
        // Each message is also `delivered`, a moment later as on a real network.
        status_reports: Some(Duration::from_secs(2)),
        ..SimConfig::default()
    })
    .await
    .expect("simulator")
}

/// ser2net serving `device` as raw TCP on 127.0.0.1:`port`.
fn ser2net_raw(bin: &Path, dir: &Path, device: &Path, port: u16) -> tokio::process::Child {
    let cfg = dir.join("ser2net.yaml");
    std::fs::write(
        &cfg,
        format!(
            "connection: &raw\n  accepter: tcp,127.0.0.1,{port}\n  connector: serialdev,{},115200n81,local\n",
            device.display()
        ),
    )
    .unwrap();
    tokio::process::Command::new(bin)
        .arg("-n")
        .arg("-c")
        .arg(&cfg)
        .arg("-P")
        .arg(dir.join("ser2net.pid"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("ser2net starts")
}

/// ser2net 4, or `None` after saying the test is skipped (a failure when it is required).
fn ser2net_or_skip(test: &str) -> Option<PathBuf> {
    let bin = crate::remote::ser2net();
    if bin.is_none() {
        assert!(
            std::env::var("SMSGATE_REQUIRE_SER2NET").is_err(),
            "SMSGATE_REQUIRE_SER2NET is set but ser2net was not found"
        );
        crate::skipped(test, "no ser2net 4 (apt-get install ser2net)");
    }
    bin
}

/// A fresh database, or `None` after saying the test is skipped (a panic when required).
fn database_or_skip(test: &str) -> Option<String> {
    let url = smsgate::store::pg::testdb::database();
    if url.is_none() {
        crate::skipped(test, "no PostgreSQL server can be made here");
    }
    url
}

/// What the simulators put on the network: for each (recipient, text), the simulators (by
/// name) that sent it, once per copy.
fn on_network(sims: &[(&str, &SimHandle)]) -> HashMap<(String, String), Vec<String>> {
    let mut all: HashMap<(String, String), Vec<String>> = HashMap::new();
    for (name, sim) in sims {
        for m in sim.sent() {
            all.entry((m.to, m.text))
                .or_default()
                .push(name.to_string());
        }
    }
    all
}

fn sent_count(sims: &[(&str, &SimHandle)]) -> usize {
    sims.iter().map(|(_, s)| s.sent().len()).sum()
}

/// The counts of `GET /v1/stats` (`queued`, `sending`, ...), from one gateway.
async fn counts(http: &reqwest::Client, gw: &Daemon) -> Value {
    get(http, &format!("{}/v1/stats", gw.base)).await.1["counts"].clone()
}

/// Waits until no message is queued or scheduled and at most `sending` are being sent.
async fn wait_drained(http: &reqwest::Client, gw: &Daemon, sending: u64, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let c = counts(http, gw).await;
        if c["queued"] == 0 && c["scheduled"] == 0 && c["sending"].as_u64() <= Some(sending) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the queue did not drain within {within:?}: {c}\n{}",
            gw.log_text()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The messages `sending` on `modems` (id and modem), read through `gw`.
async fn sending_on(http: &reqwest::Client, gw: &Daemon, modems: &[&str]) -> Vec<(String, String)> {
    let (code, v) = get(
        http,
        &format!("{}/v1/messages?status=sending&limit=1000", gw.base),
    )
    .await;
    assert_eq!(code, 200, "{v}");
    v["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| {
            let modem = m["modem"].as_str()?;
            modems.contains(&modem).then(|| {
                (
                    m["id"].as_str().unwrap_or("").to_string(),
                    modem.to_string(),
                )
            })
        })
        .collect()
}

/// Each message's status and modem, read through the gateways in turn.
async fn statuses(
    http: &reqwest::Client,
    gws: &[&Daemon],
    accepted: &[Accepted],
) -> HashMap<String, (String, String)> {
    let mut out = HashMap::new();
    for (i, m) in accepted.iter().enumerate() {
        let gw = gws[i % gws.len()];
        let (code, v) = get(http, &format!("{}/v1/messages/{}", gw.base, m.id)).await;
        assert_eq!(code, 200, "{} acknowledged but not found: {v}", m.id);
        out.insert(
            m.id.clone(),
            (
                v["status"].as_str().unwrap_or("").to_string(),
                v["modem"].as_str().unwrap_or("").to_string(),
            ),
        );
    }
    out
}

/// Reads `GET /v1/events` of `gw` until the `accepted` event of message `id` arrives.
async fn wait_live_accepted(gw: &Daemon, mut events: reqwest::Response, id: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut text = String::new();
    loop {
        for line in text.lines() {
            if let Some(data) = line.strip_prefix("data:")
                && let Ok(e) = serde_json::from_str::<Value>(data.trim())
                && e["message_id"] == id
                && e["kind"] == "accepted"
            {
                return;
            }
        }
        let chunk = tokio::time::timeout_at(deadline, events.chunk()).await;
        match chunk {
            Ok(Ok(Some(bytes))) => text.push_str(&String::from_utf8_lossy(&bytes)),
            other => panic!(
                "gateway {}'s /v1/events never showed {id} accepted by the other ({other:?}): {text}\n{}",
                gw.name,
                gw.log_text()
            ),
        }
    }
}

/// Injects one reply "1" per message from its recipient into the simulator that sent it,
/// without overflowing what the simulated network holds back.
async fn inject_replies(
    sims: &[(&str, &SimHandle)],
    accepted: &[Accepted],
    sent_by: &HashMap<(String, String), Vec<String>>,
) {
    for m in accepted {
        let via = &sent_by[&(m.to.clone(), m.text.clone())][0];
        let sim = sims
            .iter()
            .find(|(n, _)| n == via)
            .map(|(_, s)| *s)
            .expect("a known simulator");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        while sim.held() > 200 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{via} holds {} inbound messages the gateway does not take",
                sim.held()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        sim.inject_inbound(&m.to, "1", false).expect("injected");
    }
}

/// The distinct webhook-ids of each (message id, event type) the receiver got.
fn webhooks_by_message(rx: &Receiver) -> HashMap<(String, String), HashSet<String>> {
    let mut out: HashMap<(String, String), HashSet<String>> = HashMap::new();
    for g in rx.got() {
        let id = g.body["data"]["message_id"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let kind = g.body["type"].as_str().unwrap_or("").to_string();
        out.entry((id, kind)).or_default().insert(g.webhook_id);
    }
    out
}

/// Four simulated modems and two gateways on one database: A drives sim0 and sim1 (reached
/// through ser2net), B drives sim2 and sim3 and is configured with sim1 too, standing by for it.
struct TwoGateways {
    dir: tempfile::TempDir,
    sims: [SimHandle; 4],
    ser2net: tokio::process::Child,
    a: Daemon,
    b: Daemon,
}

impl TwoGateways {
    /// Starts them (each send taking `latency`, webhooks to `rx`) and checks that B stands
    /// by for sim1 and says that A drives it.
    async fn start(
        http: &reqwest::Client,
        ser2net: &Path,
        url: &str,
        latency: Duration,
        rx: Option<&Receiver>,
    ) -> TwoGateways {
        let dir = tempfile::tempdir().unwrap();
        let sims = [
            sim_at(None, latency).await,
            sim_at(Some(dir.path().join("sim1")), latency).await,
            sim_at(None, latency).await,
            sim_at(None, latency).await,
        ];
        let tcp = free_port();
        let ser2net = ser2net_raw(ser2net, dir.path(), &dir.path().join("sim1"), tcp);
        let shared = ("sim1", format!("tcp://127.0.0.1:{tcp}"));
        let path = |i: usize| sims[i].path().display().to_string();
        let (pa, pb) = (free_port(), free_port());
        let ca = write_config(
            dir.path(),
            "a",
            pa,
            url,
            &[("sim0", path(0)), shared.clone()],
            rx,
        );
        let a = Daemon::start(http, dir.path(), "a", pa, ca).await;
        a.wait_up(http, &["sim0", "sim1"], Duration::from_secs(30))
            .await;
        let cb = write_config(
            dir.path(),
            "b",
            pb,
            url,
            &[("sim2", path(2)), ("sim3", path(3)), shared],
            rx,
        );
        let b = Daemon::start(http, dir.path(), "b", pb, cb).await;
        b.wait_up(http, &["sim2", "sim3"], Duration::from_secs(30))
            .await;
        // sim1 is A's: B stands by, and says which gateway drives it.
        assert!(!b.is_up(http, "sim1").await, "{:?}", b.modems(http).await);
        let listed = get(http, &format!("{}/v1/modems", b.base)).await.1;
        let standby = listed["standby"].as_array().cloned().unwrap_or_default();
        assert_eq!(standby.len(), 1, "{listed}");
        assert_eq!(standby[0]["name"], "sim1", "{listed}");
        let driver = standby[0]["driven_by"].as_str().unwrap_or_default();
        assert!(driver.ends_with(&format!(":{pa}")), "{listed}");
        assert!(standby[0]["lease_expires_at"].is_string(), "{listed}");
        TwoGateways {
            dir,
            sims,
            ser2net,
            a,
            b,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_share_one_queue() {
    const TEST: &str = "two_gateways_share_one_queue";
    if crate::ran_in_first_pass(TEST) {
        return;
    }
    const MESSAGES: usize = 2_000;
    const BATCH: usize = 100;
    let Some(bin) = ser2net_or_skip(TEST) else {
        return;
    };
    let Some(url) = database_or_skip(TEST) else {
        return;
    };
    let http = smsgate::tls::client_builder().build().unwrap();
    let rx = Receiver::start().await;
    let TwoGateways {
        dir: _dir,
        sims: [sim0, sim1, sim2, sim3],
        ser2net: _ser2net,
        a,
        b,
    } = TwoGateways::start(&http, &bin, &url, Duration::ZERO, Some(&rx)).await;
    let sims = [
        ("sim0", &sim0),
        ("sim1", &sim1),
        ("sim2", &sim2),
        ("sim3", &sim3),
    ];

    let message = |i: usize| {
        json!({"to": recipient(i), "text": format!("cluster {i}: reply 1 to confirm"),
               "reply_options": {"1": "confirm", "2": "decline"},
               "callback_url": rx.url("billing")})
    };
    // A's live events show a message B accepted.
    let events = http
        .get(format!("{}/v1/events", a.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("A's /v1/events answers");
    assert_eq!(events.status().as_u16(), 200);
    let mut accepted = post_batch(&http, &b, vec![message(0)])
        .await
        .expect("B accepts");
    wait_live_accepted(&a, events, &accepted[0].id).await;

    // The rest in batches, alternating between the gateways.
    let mut i = 1;
    let mut turn = 0;
    while i < MESSAGES {
        let n = BATCH.min(MESSAGES - i);
        let gw = if turn % 2 == 0 { &a } else { &b };
        let got = post_batch(&http, gw, (i..i + n).map(message).collect())
            .await
            .unwrap_or_else(|e| panic!("gateway {} refused a batch: {e:?}", gw.name));
        assert_eq!(got.len(), n);
        accepted.extend(got);
        i += n;
        turn += 1;
    }
    assert_eq!(accepted.len(), MESSAGES);

    // Every message goes out, once.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
    while sent_count(&sims) < MESSAGES {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} of {MESSAGES} sent after 600 s; stats {}\nA:\n{}\nB:\n{}",
            sent_count(&sims),
            counts(&http, &a).await,
            a.log_text(),
            b.log_text()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    wait_drained(&http, &a, 0, Duration::from_secs(60)).await;
    let sent_by = on_network(&sims);
    for m in &accepted {
        let via = sent_by
            .get(&(m.to.clone(), m.text.clone()))
            .cloned()
            .unwrap_or_default();
        assert_eq!(via.len(), 1, "{} ({}) went out {via:?}", m.id, m.text);
    }
    assert_eq!(sent_count(&sims), MESSAGES, "something else went out");
    for (name, sim) in &sims {
        assert!(!sim.sent().is_empty(), "nothing went through {name}");
    }
    let status = statuses(&http, &[&a, &b], &accepted).await;
    for m in &accepted {
        let (s, modem) = &status[&m.id];
        assert!(s == "sent" || s == "delivered", "{}: {s}", m.id);
        assert_eq!(
            &sent_by[&(m.to.clone(), m.text.clone())][0],
            modem,
            "{} went out through another modem than the one it names",
            m.id
        );
    }

    // One reply per message, from the simulator that sent it.
    inject_replies(&sims, &accepted, &sent_by).await;

    // Every webhook once per message: sent, delivered, reply.
    const KINDS: [&str; 3] = ["message.sent", "message.delivered", "message.reply"];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
    loop {
        let got = webhooks_by_message(&rx);
        let missing: Vec<(String, &str)> = accepted
            .iter()
            .flat_map(|m| KINDS.iter().map(move |k| (m.id.clone(), *k)))
            .filter(|(id, k)| !got.contains_key(&(id.clone(), k.to_string())))
            .collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} webhooks missing after 600 s, e.g. {:?}; held {:?}\nA:\n{}\nB:\n{}",
            missing.len(),
            &missing[..missing.len().min(5)],
            sims.iter().map(|(_, s)| s.held()).collect::<Vec<_>>(),
            a.log_text(),
            b.log_text()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // A moment for a second copy to show up, if one were coming.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let got = webhooks_by_message(&rx);
    for m in &accepted {
        for k in KINDS {
            let ids = &got[&(m.id.clone(), k.to_string())];
            assert_eq!(ids.len(), 1, "{} got {k} {} times", m.id, ids.len());
        }
    }
    let all = rx.got();
    assert!(all.iter().all(|g| g.verified), "a badly signed delivery");
    assert!(
        all.iter()
            .filter(|g| g.body["type"] == "message.reply")
            .all(|g| g.body["data"]["reply"]["choice"] == "1" && g.path == "billing"),
        "a reply not matched as choice 1"
    );
    let unmatched: Vec<&Value> = all
        .iter()
        .filter(|g| g.body["type"] == "inbound.unmatched")
        .map(|g| &g.body)
        .collect();
    assert!(unmatched.is_empty(), "replies not matched: {unmatched:?}");
    // The message itself lists its reply, read through either gateway.
    for (k, m) in accepted.iter().enumerate().step_by(97) {
        let gw = if k % 2 == 0 { &a } else { &b };
        let v = get(&http, &format!("{}/v1/messages/{}", gw.base, m.id))
            .await
            .1;
        let replies = v["replies"].as_array().cloned().unwrap_or_default();
        assert_eq!(replies.len(), 1, "{v}");
        assert_eq!(replies[0]["choice"], "1", "{v}");
    }
    // Nothing went out twice meanwhile.
    assert_eq!(sent_count(&sims), MESSAGES);

    keys_and_plans_hold_across_gateways(&http, &a, &b).await;

    a.stop().await;
    b.stop().await;
    for (_, s) in sims {
        s.shutdown().await;
    }
}

/// An Idempotency-Key and a plan's invoice posted to both gateways at once: one message and one
/// plan, and each gateway answers a retry with it.
async fn keys_and_plans_hold_across_gateways(http: &reqwest::Client, a: &Daemon, b: &Daemon) {
    let keyed = |gw: &Daemon| {
        http.post(format!("{}/v1/messages", gw.base))
            .bearer_auth(TOKEN)
            .header("Idempotency-Key", "cluster-once")
            .json(&json!({"to": "+12025559901", "text": "keyed once",
                          "send_at": "2099-01-01T00:00:00Z"}))
            .send()
    };
    let (ra, rb) = tokio::join!(keyed(a), keyed(b));
    let mut ids = Vec::new();
    for r in [ra, rb] {
        let r = r.expect("the gateway answers");
        let code = r.status().as_u16();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        match code {
            201 => ids.push(v["id"].as_str().unwrap_or_default().to_string()),
            // The other gateway's insert of the same key committed first: the retry replays it.
            409 => assert_eq!(v["type"], "urn:smsgate:problem:conflict", "{v}"),
            other => panic!("{other}: {v}"),
        }
    }
    assert!(!ids.is_empty(), "neither gateway took the key");
    // A retry through either gateway gives the message that was made.
    for gw in [a, b] {
        let r = keyed(gw).await.expect("the gateway answers");
        assert_eq!(r.status().as_u16(), 201);
        assert_eq!(
            r.headers()
                .get("idempotent-replayed")
                .and_then(|v| v.to_str().ok()),
            Some("true")
        );
        let v: Value = r.json().await.unwrap_or(Value::Null);
        ids.push(v["id"].as_str().unwrap_or_default().to_string());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "one key, several messages: {ids:?}");
    let listed = get(http, &format!("{}/v1/messages?to=%2B12025559901", a.base))
        .await
        .1;
    assert_eq!(
        listed["messages"].as_array().map(Vec::len),
        Some(1),
        "{listed}"
    );

    // The same plan posted to both at once: one plan; the other answer is that plan (200).
    let due = (chrono::Utc::now() + chrono::Duration::days(30))
        .format("%Y-%m-%d")
        .to_string();
    let plan = json!({"to": "+12025559902", "invoice": "INV-CLUSTER", "amount": "80.00",
        "currency": "USD", "due_date": due, "timezone": "America/New_York", "name": "Ana",
        "unit": "4B", "pay_url": "https://pay.example.com/i/77",
        "schedule": [{"offset": "-7d", "template": "upcoming"},
                     {"offset": "0d", "template": "due_today"}]});
    let post_plan = |gw: &Daemon| {
        http.post(format!("{}/v1/reminders", gw.base))
            .bearer_auth(TOKEN)
            .json(&plan)
            .send()
    };
    let (pa, pb) = tokio::join!(post_plan(a), post_plan(b));
    let mut codes = Vec::new();
    let mut plan_ids = Vec::new();
    for r in [pa, pb] {
        let r = r.expect("the gateway answers");
        codes.push(r.status().as_u16());
        let v: Value = r.json().await.unwrap_or(Value::Null);
        plan_ids.push(v["id"].as_str().unwrap_or_default().to_string());
    }
    codes.sort_unstable();
    assert_eq!(codes, [200, 201], "{plan_ids:?}");
    assert_eq!(plan_ids[0], plan_ids[1]);
    for gw in [a, b] {
        let v = get(http, &format!("{}/v1/reminders/INV-CLUSTER", gw.base))
            .await
            .1;
        assert_eq!(v["id"], plan_ids[0].as_str(), "{v}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_gateways_modem_is_taken_over() {
    const TEST: &str = "a_killed_gateways_modem_is_taken_over";
    if crate::ran_in_first_pass(TEST) {
        return;
    }
    const MESSAGES: usize = 600;
    const BATCH: usize = 50;
    let Some(bin) = ser2net_or_skip(TEST) else {
        return;
    };
    let Some(url) = database_or_skip(TEST) else {
        return;
    };
    let http = smsgate::tls::client_builder().build().unwrap();
    // Each send takes a while, so that the kill finds sends in flight.
    let latency = Duration::from_millis(150);
    let TwoGateways {
        dir: _dir,
        sims: [sim0, sim1, sim2, sim3],
        ser2net: _ser2net,
        mut a,
        b,
    } = TwoGateways::start(&http, &bin, &url, latency, None).await;
    let sims = [
        ("sim0", &sim0),
        ("sim1", &sim1),
        ("sim2", &sim2),
        ("sim3", &sim3),
    ];

    let message = |i: usize| json!({"to": recipient(i), "text": format!("takeover {i}")});
    let mut accepted: Vec<Accepted> = Vec::new();
    let mut killed_at = None;
    let mut in_flight = Vec::new();
    let mut turn = 0;
    let mut i = 0;
    while i < MESSAGES {
        let n = BATCH.min(MESSAGES - i);
        let gw = if killed_at.is_none() && turn % 2 == 0 {
            &a
        } else {
            &b
        };
        match post_batch(&http, gw, (i..i + n).map(message).collect()).await {
            Ok(got) => accepted.extend(got),
            Err(e) => panic!("gateway {} refused a batch: {e:?}", gw.name),
        }
        i += n;
        turn += 1;
        if killed_at.is_none() && i >= MESSAGES / 2 {
            // Until A has sent a fair share (its modems busy), then kill -9.
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            while sim0.sent().len() + sim1.sent().len() < 40 {
                assert!(tokio::time::Instant::now() < deadline, "A sends nothing");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            // Into the next sends (not at the end of one).
            tokio::time::sleep(latency / 2).await;
            a.child.start_kill().unwrap();
            let _ = a.child.wait().await;
            killed_at = Some(tokio::time::Instant::now());
            in_flight = sending_on(&http, &b, &["sim0", "sim1"]).await;
        }
    }
    let killed_at = killed_at.expect("A was killed");
    eprintln!("{TEST}: A had {in_flight:?} in flight");
    assert!(in_flight.len() <= 2, "{in_flight:?}");
    let before_kill = sim1.sent().len();

    // B takes sim1 over within the lease's time and 5 s.
    let within = LEASE_TTL + Duration::from_secs(5);
    loop {
        if b.is_up(&http, "sim1").await {
            break;
        }
        assert!(
            killed_at.elapsed() < within,
            "B did not take sim1 over within {within:?}: {:?}\n{}",
            b.modems(&http).await,
            b.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "{TEST}: B drove sim1 {:?} after the kill",
        killed_at.elapsed()
    );
    let listed = get(&http, &format!("{}/v1/modems", b.base)).await.1;
    assert_eq!(listed["standby"], json!([]), "{listed}");

    // The queue drains through B's modems; what A had in hand on sim0 stays `sending` until
    // a gateway configured with sim0 takes its lease.
    wait_drained(&http, &b, 1, Duration::from_secs(300)).await;
    assert!(
        sim1.sent().len() > before_kill,
        "B sent nothing through sim1"
    );
    // A comes back: it finds sim0's lease expired and turns what it left sending into unknown.
    a.spawn_again();
    a.wait_healthy(&http).await;
    a.wait_up(&http, &["sim0"], Duration::from_secs(30)).await;
    wait_drained(&http, &b, 0, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let network = on_network(&sims);
    let status = statuses(&http, &[&a, &b], &accepted).await;
    let mut unknown = Vec::new();
    for m in &accepted {
        let copies = network
            .get(&(m.to.clone(), m.text.clone()))
            .map_or(0, Vec::len);
        assert!(copies <= 1, "{} ({}) went out {copies} times", m.id, m.text);
        let (s, modem) = &status[&m.id];
        match s.as_str() {
            "sent" | "delivered" => assert_eq!(copies, 1, "{} is {s} but not on the network", m.id),
            "unknown" => unknown.push((m.id.clone(), modem.clone())),
            other => panic!("{} ended {other}", m.id),
        }
    }
    eprintln!("{TEST}: {} accepted, unknown: {unknown:?}", accepted.len());
    assert_eq!(accepted.len(), MESSAGES);
    // At most one per modem A drove (each sends one at a time), and only on those.
    assert!(unknown.len() <= 2, "{unknown:?}");
    for (id, modem) in &unknown {
        assert!(
            modem == "sim0" || modem == "sim1",
            "{id} unknown on {modem}"
        );
    }
    let mut modems: Vec<&String> = unknown.iter().map(|(_, m)| m).collect();
    modems.sort();
    modems.dedup();
    assert_eq!(modems.len(), unknown.len(), "two unknown on one modem");
    // Exactly what A had in flight became `unknown`: not sent again, not lost.
    let mut was = in_flight.clone();
    was.sort();
    let mut now = unknown.clone();
    now.sort();
    assert_eq!(was, now, "in flight at the kill vs unknown at the end");

    a.stop().await;
    b.stop().await;
    for (_, s) in sims {
        s.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_restarting_mid_load() {
    const TEST: &str = "the_database_restarting_mid_load";
    if crate::ran_in_first_pass(TEST) {
        return;
    }
    let server = match smsgate::store::pg::testdb::TestServer::start(&[]) {
        Ok(s) => s,
        Err(why) => {
            assert!(
                !smsgate::store::pg::testdb::required(),
                "SMSGATE_REQUIRE_POSTGRES is set but no server starts: {why}"
            );
            crate::skipped(TEST, &why);
            return;
        }
    };
    let url = server.create_database().expect("a database");
    let dir = tempfile::tempdir().unwrap();
    let http = smsgate::tls::client_builder().build().unwrap();
    let sim0 = sim_at(None, Duration::from_millis(10)).await;
    let sim1 = sim_at(None, Duration::from_millis(10)).await;
    let sims = [("sim0", &sim0), ("sim1", &sim1)];
    let (pa, pb) = (free_port(), free_port());
    let ca = write_config(
        dir.path(),
        "a",
        pa,
        &url,
        &[("sim0", sim0.path().display().to_string())],
        None,
    );
    let a = Daemon::start(&http, dir.path(), "a", pa, ca).await;
    let cb = write_config(
        dir.path(),
        "b",
        pb,
        &url,
        &[("sim1", sim1.path().display().to_string())],
        None,
    );
    let b = Daemon::start(&http, dir.path(), "b", pb, cb).await;
    a.wait_up(&http, &["sim0"], Duration::from_secs(30)).await;
    b.wait_up(&http, &["sim1"], Duration::from_secs(30)).await;
    let gws = [&a, &b];

    // Each gateway takes posts without pause from its own client, before, during and after
    // the outage.
    let stop_posting = Arc::new(AtomicBool::new(false));
    let posted: [Arc<Mutex<Vec<Posted>>>; 2] = Default::default();
    let mut posters = Vec::new();
    for (k, gw) in gws.iter().enumerate() {
        let (http, url) = (http.clone(), format!("{}/v1/messages", gw.base));
        let (stop, log) = (stop_posting.clone(), posted[k].clone());
        posters.push(tokio::spawn(async move {
            let mut j = 0;
            while !stop.load(Ordering::SeqCst) {
                let n = k + 2 * j;
                let body = json!({"to": recipient(n), "text": format!("restart {n}")});
                let started = tokio::time::Instant::now();
                let (code, v) = post(&http, &url, &body).await;
                log.lock().unwrap().push(Posted {
                    started,
                    answered: tokio::time::Instant::now(),
                    code,
                    body: v,
                    to: recipient(n),
                    text: format!("restart {n}"),
                });
                j += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }));
    }
    let acks_after = |k: usize, t: tokio::time::Instant| {
        posted[k]
            .lock()
            .unwrap()
            .iter()
            .filter(|p| p.code == 201 && p.started >= t)
            .count()
    };
    let wait_acks = async |what: &str, t: tokio::time::Instant, n: usize| {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while (0..2).any(|k| acks_after(k, t) < n) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{what}: acknowledged {:?} within 30 s\nA:\n{}\nB:\n{}",
                [acks_after(0, t), acks_after(1, t)],
                a.log_text(),
                b.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let began = tokio::time::Instant::now();
    wait_acks("before the outage", began, 30).await;

    // The server stops under the load, for longer than half the lease.
    let stopping = tokio::time::Instant::now();
    tokio::task::block_in_place(|| server.stop());
    assert!(!server.is_running());
    let stopped = tokio::time::Instant::now();
    tokio::time::sleep(LEASE_TTL * 2).await;
    let restarting = tokio::time::Instant::now();
    tokio::task::block_in_place(|| server.start_again()).expect("the server starts again");
    let back = tokio::time::Instant::now();

    // Both recover by themselves: posts succeed again within some seconds, and keep doing so.
    wait_acks("after the outage", back, 1).await;
    eprintln!(
        "{TEST}: both gateways acknowledged again within {:?} of the restart",
        back.elapsed()
    );
    wait_acks("after the outage", back, 30).await;
    stop_posting.store(true, Ordering::SeqCst);
    for p in posters {
        p.await.unwrap();
    }

    let mut accepted: Vec<Accepted> = Vec::new();
    // Requests the outage may have cut after their commit: what they carried may go out
    // without an acknowledgement.
    let mut unanswered: HashSet<(String, String)> = HashSet::new();
    for (k, log) in posted.iter().enumerate() {
        let gw = gws[k].name;
        let mut refused = 0;
        for p in log.lock().unwrap().iter() {
            if p.answered < stopping {
                assert_eq!(p.code, 201, "gateway {gw} before the outage: {}", p.body);
            }
            if p.started >= stopped && p.answered <= restarting {
                assert_ne!(
                    p.code, 201,
                    "gateway {gw} acknowledged {} with no database",
                    p.body
                );
                if p.code == 503 {
                    refused += 1;
                    assert_eq!(
                        p.body["type"], "urn:smsgate:problem:unavailable",
                        "gateway {gw}: {}",
                        p.body
                    );
                }
            }
            if p.code == 201 {
                accepted.push(Accepted {
                    id: p.body["id"].as_str().unwrap_or("").to_string(),
                    to: p.body["to"].as_str().unwrap_or("").to_string(),
                    text: p.body["text"].as_str().unwrap_or("").to_string(),
                });
            } else {
                unanswered.insert((p.to.clone(), p.text.clone()));
            }
        }
        assert!(
            refused > 0,
            "gateway {gw} never answered 503 while the database was down"
        );
        eprintln!("{TEST}: gateway {gw} answered 503 {refused} times during the outage");
    }
    // Both modems work again, and the queue drains.
    a.wait_up(&http, &["sim0"], Duration::from_secs(30)).await;
    b.wait_up(&http, &["sim1"], Duration::from_secs(30)).await;
    wait_drained(&http, &a, 0, Duration::from_secs(120)).await;

    let network = on_network(&sims);
    let status = statuses(&http, &gws, &accepted).await;
    let mut unknown = Vec::new();
    for m in &accepted {
        let copies = network
            .get(&(m.to.clone(), m.text.clone()))
            .map_or(0, Vec::len);
        // No gateway stopped mid-send: the send the outage caught was finished (only its
        // outcome could not be written), so every acknowledged message went out once.
        assert_eq!(copies, 1, "{} ({}) went out {copies} times", m.id, m.text);
        let (s, modem) = &status[&m.id];
        match s.as_str() {
            "sent" | "delivered" => {}
            "unknown" => unknown.push((m.id.clone(), modem.clone())),
            other => panic!("{} ended {other}", m.id),
        }
    }
    eprintln!(
        "{TEST}: {} acknowledged, unknown: {unknown:?}",
        accepted.len()
    );
    // A send caught by the outage may be `unknown`: at most one per modem.
    assert!(unknown.len() <= 2, "{unknown:?}");
    let mut modems: Vec<&String> = unknown.iter().map(|(_, m)| m).collect();
    modems.sort();
    modems.dedup();
    assert_eq!(modems.len(), unknown.len(), "two unknown on one modem");
    // Nothing went out that was refused: only what was acknowledged, or cut by the outage
    // after its commit.
    let acknowledged: HashSet<(String, String)> = accepted
        .iter()
        .map(|m| (m.to.clone(), m.text.clone()))
        .collect();
    for key in network.keys() {
        assert!(
            acknowledged.contains(key) || unanswered.contains(key),
            "{key:?} went out unacknowledged"
        );
    }

    a.stop().await;
    b.stop().await;
    for (_, s) in sims {
        s.shutdown().await;
    }
}
