//! Crash and fault campaigns: the real daemon binary under a steady load (messages accepted
//! through the API, sent through the simulated modem on a PTY, customers' replies coming in,
//! webhook events going out to a receiver that sometimes fails), while
//!
//! - the kill campaign SIGKILLs it at random moments and restarts it, cycle after cycle;
//! - the fault campaign keeps it running and makes the modem misbehave: unplug and replug, a
//!   freeze, random `+CMS ERROR`s, a URC storm, garbage bytes, a slow line, a full SIM store,
//!   a reboot that asks for the PIN again.
//!
//! Afterwards everything is checked from the outside: the API (every acknowledged message is
//! there, in a final state, under its Idempotency-Key), the simulator's JSONL log (nothing
//! reached the network twice, nothing unknown to the API reached it), the inbound list (every
//! customer text stored exactly once) and the receiver (every event of every message and every
//! inbound text acknowledged at least once, every signature valid).
//!
//! The default test run does a short campaign of each; `bash bench/reliability.sh` runs the long
//! ones (`SMSGATE_CAMPAIGN_CYCLES`, `SMSGATE_CAMPAIGN_ROUNDS`) and writes `docs/reliability.md`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use serde_json::{Value, json};
use smsgate::sim::{SimConfig, SimHandle, Simulator};
use tokio_util::sync::CancellationToken;

use crate::TOKEN;
use crate::crash::free_port;

/// Customers that get plain messages.
const CUSTOMERS: [&str; 3] = ["+12025550123", "+12025550124", "+12025550125"];
/// The SIM's PIN in the fault campaign.
const PIN: &str = "1234";
/// How long a campaign may take to settle after the load stops.
const SETTLE: Duration = Duration::from_secs(120);

/// One webhook delivery as the receiver saw it.
#[derive(Debug, Clone)]
struct Delivery {
    webhook_id: String,
    event_type: String,
    message_id: Option<String>,
    inbound_id: Option<String>,
    acked: bool,
    verified: bool,
}

/// The billing system: takes webhook deliveries, checks their signatures, fails one in
/// `fail_one_in` at random with a 503 (so retries happen too).
#[derive(Clone)]
struct Hooks {
    got: Arc<Mutex<Vec<Delivery>>>,
    url: String,
}

impl Hooks {
    async fn start(fail_one_in: u64, seed: u64) -> Hooks {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/events", listener.local_addr().unwrap());
        let got: Arc<Mutex<Vec<Delivery>>> = Arc::default();
        let rng = Arc::new(Mutex::new(fastrand::Rng::with_seed(seed)));
        let verifier = Arc::new(standardwebhooks::Webhook::new(crate::replies::SECRET).unwrap());
        let state = Arc::clone(&got);
        let app = axum::Router::new().route(
            "/events",
            axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
                let verified = verifier.verify(&body, &headers).is_ok();
                let fail = rng.lock().unwrap().u64(0..fail_one_in) == 0;
                let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let text = |p: &str| v.pointer(p).and_then(Value::as_str).map(str::to_string);
                state.lock().unwrap().push(Delivery {
                    webhook_id: headers
                        .get("webhook-id")
                        .and_then(|h| h.to_str().ok())
                        .unwrap_or_default()
                        .to_string(),
                    event_type: text("/type").unwrap_or_default(),
                    message_id: text("/data/message_id"),
                    inbound_id: text("/data/inbound_id").or_else(|| text("/data/reply/inbound_id")),
                    acked: !fail,
                    verified,
                });
                async move {
                    if fail {
                        axum::http::StatusCode::SERVICE_UNAVAILABLE
                    } else {
                        axum::http::StatusCode::NO_CONTENT
                    }
                }
            }),
        );
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Hooks { got, url }
    }

    fn deliveries(&self) -> Vec<Delivery> {
        self.got.lock().unwrap().clone()
    }
}

/// What the load generators did, as the client saw it.
#[derive(Debug, Default)]
struct Ledger {
    /// Idempotency-Key → (message id, text), for every acknowledged message.
    acked: BTreeMap<String, Vec<(String, String)>>,
    /// Requests that got no answer or a 5xx (retried with the same key).
    api_failures: usize,
    /// The slowest acknowledged request.
    max_latency: Duration,
    /// When each failure happened (for the fault report).
    failure_times: Vec<Instant>,
    /// Slowest request per moment, for the fault report: (when it ended, how long it took).
    latencies: Vec<(Instant, Duration)>,
    /// (from, text) of every inbound message handed to the simulator.
    injected: Vec<(String, String)>,
    /// Messages with reply options, by the customer number that will answer.
    to_answer: Vec<String>,
}

/// The daemon, its modem, its receiver and the load.
struct Rig {
    dir: tempfile::TempDir,
    sim: SimHandle,
    hooks: Hooks,
    config: PathBuf,
    base: String,
    http: reqwest::Client,
    daemon: Option<tokio::process::Child>,
    ledger: Arc<Mutex<Ledger>>,
}

impl Rig {
    async fn start(pin: Option<&str>, seed: u64) -> Rig {
        // SMSGATE_CAMPAIGN_KEEP=1 keeps the directory (daemon.log, network.jsonl, the store).
        let keep = std::env::var_os("SMSGATE_CAMPAIGN_KEEP").is_some();
        let dir = tempfile::Builder::new()
            .prefix("smsgate-campaign-")
            .disable_cleanup(keep)
            .tempdir()
            .unwrap();
        if keep {
            eprintln!("campaign directory: {}", dir.path().display());
        }
        let sim = Simulator::start(SimConfig {
            link: Some(dir.path().join("modem")),
            log: Some(dir.path().join("network.jsonl")),
            latency: Duration::from_millis(20),
            status_reports: Some(Duration::from_millis(50)),
            pin: pin.map(str::to_string),
            storage_capacity: 20,
            seed,
            ..SimConfig::default()
        })
        .await
        .unwrap();
        let hooks = Hooks::start(10, seed).await;
        let port = free_port();
        let config = dir.path().join("smsgate.toml");
        // Faults come back to back here: the modem must not rest between them
        // (`quarantine_after = 0`; the rest itself is tested in pool.rs).
        let pin_line = pin.map(|p| format!("pin = \"{p}\"\n")).unwrap_or_default();
        std::fs::write(
            &config,
            format!(
                "[http]\nlisten = \"127.0.0.1:{port}\"\n\
                 {storage}\
                 [[api_keys]]\nname = \"test\"\ntoken = \"{TOKEN}\"\n\
                 [queue]\nmax_attempts = 12\nretry_backoff = \"200ms\"\nretry_backoff_max = \"1s\"\n\
                 [outbound]\nallow_loopback = true\n\
                 [webhooks]\nurl = \"{url}\"\nsecret = \"{secret}\"\nretry_backoff = \"100ms\"\n\
                 retry_backoff_max = \"500ms\"\n\
                 [[modems]]\nname = \"sim0\"\nport = \"{modem}\"\ncommand_timeout = \"2s\"\n\
                 send_timeout = \"5s\"\nhealth_interval = \"1s\"\nquarantine_after = 0\n{pin_line}",
                storage = crate::storage_toml(&dir.path().join("store")),
                url = hooks.url,
                secret = crate::replies::SECRET,
                modem = dir.path().join("modem").display(),
            ),
        )
        .unwrap();
        let mut rig = Rig {
            dir,
            sim,
            hooks,
            config,
            base: format!("http://127.0.0.1:{port}"),
            http: smsgate::tls::client_builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
            daemon: None,
            ledger: Arc::default(),
        };
        rig.spawn().await;
        rig
    }

    /// Starts the daemon and waits until it is ready; returns how long that took.
    async fn spawn(&mut self) -> Duration {
        let t = Instant::now();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("daemon.log"))
            .unwrap();
        self.daemon = Some(
            tokio::process::Command::new(env!("CARGO_BIN_EXE_smsgate"))
                .args(["serve", "--config"])
                .arg(&self.config)
                .env(
                    "RUST_LOG",
                    std::env::var("SMSGATE_CAMPAIGN_LOG").unwrap_or_else(|_| "warn".into()),
                )
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .kill_on_drop(true)
                .spawn()
                .expect("daemon starts"),
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = self.http.get(format!("{}/readyz", self.base)).send().await
                && r.status().is_success()
            {
                return t.elapsed();
            }
            assert!(Instant::now() < deadline, "daemon not ready in 30 s");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    async fn kill9(&mut self) {
        if let Some(mut d) = self.daemon.take() {
            d.start_kill().unwrap();
            let _ = d.wait().await;
        }
    }

    fn pid(&self) -> Option<u32> {
        self.daemon.as_ref().and_then(tokio::process::Child::id)
    }

    async fn get(&self, path: &str) -> Value {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "GET {path}: {}", r.status());
        r.json().await.unwrap()
    }

    /// Every page of a list endpoint (`messages` items, `next_cursor`).
    async fn all(&self, path: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let url = match &cursor {
                Some(c) => format!("{path}?limit=1000&cursor={c}"),
                None => format!("{path}?limit=1000"),
            };
            let page = self.get(&url).await;
            out.extend(page["messages"].as_array().cloned().unwrap_or_default());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => return out,
            }
        }
    }

    /// Starts the load: messages through the API (one in five with reply options to a number
    /// of its own, answered later; one request in eight a batch), inbound texts from customers.
    fn load(&self, stop: CancellationToken, seed: u64) -> Vec<tokio::task::JoinHandle<()>> {
        let submit = tokio::spawn(submitter(
            self.http.clone(),
            self.base.clone(),
            Arc::clone(&self.ledger),
            stop.clone(),
            seed,
        ));
        let inbound = tokio::spawn(injector(self.sim.clone(), Arc::clone(&self.ledger), stop));
        vec![submit, inbound]
    }

    /// Waits until nothing is waiting or sending, every inbound text is off the SIM and every
    /// webhook was acknowledged; returns how long it took.
    async fn settle(&self) -> Duration {
        let t = Instant::now();
        loop {
            let s = self.get("/v1/stats").await;
            let c = &s["counts"];
            let busy = ["queued", "scheduled", "sending"]
                .iter()
                .map(|k| c[k].as_u64().unwrap_or(0))
                .sum::<u64>();
            let injected = self.ledger.lock().unwrap().injected.len();
            let inbound = self.all("/v1/inbound").await;
            let stored = inbound.len();
            // Stored but not acted on yet: its event is still to be written.
            let unhandled = inbound.iter().filter(|m| m["handling"].is_null()).count();
            if busy == 0
                && s["webhooks_pending"] == 0
                && self.sim.stored().is_empty()
                && self.sim.held() == 0
                && unhandled == 0
                && stored >= injected
            {
                return t.elapsed();
            }
            if t.elapsed() >= SETTLE {
                let have: HashSet<(String, String)> = inbound
                    .iter()
                    .map(|m| {
                        (
                            m["from"].as_str().unwrap_or("").to_string(),
                            m["text"].as_str().unwrap_or("").to_string(),
                        )
                    })
                    .collect();
                let missing: Vec<_> = self
                    .ledger
                    .lock()
                    .unwrap()
                    .injected
                    .iter()
                    .filter(|k| !have.contains(*k))
                    .take(20)
                    .cloned()
                    .collect();
                let _ = std::fs::write(
                    self.dir.path().join("commands.txt"),
                    self.sim.commands().join("\n"),
                );
                panic!(
                    "not settled in {SETTLE:?}: {s}, {stored}/{injected} inbound stored (missing: {missing:?}), {} on the SIM, {} held by the network",
                    self.sim.stored().len(),
                    self.sim.held()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The messages the simulated network delivered, from its JSONL log.
    fn network_log(&self) -> Vec<Value> {
        let text =
            std::fs::read_to_string(self.dir.path().join("network.jsonl")).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Checks every invariant from the outside and counts what it saw.
    async fn verify(&self) -> Verdict {
        let mut v = Verdict::default();
        let ledger = std::mem::take(&mut *self.ledger.lock().unwrap());
        v.api_failures = ledger.api_failures;
        v.max_latency = ledger.max_latency;

        // The network's side: how often each text went out.
        let mut copies: HashMap<String, usize> = HashMap::new();
        for m in self.network_log() {
            *copies
                .entry(m["text"].as_str().unwrap_or("").to_string())
                .or_default() += 1;
        }
        // The API's side: every acknowledged message, and nothing else.
        let stored = self.all("/v1/messages").await;
        let by_id: HashMap<String, Value> = stored
            .iter()
            .map(|m| (m["id"].as_str().unwrap_or("").to_string(), m.clone()))
            .collect();
        let mut known_texts = HashSet::new();
        let mut expected_events: Vec<(String, &'static str)> = Vec::new();
        for (key, msgs) in &ledger.acked {
            v.requests += 1;
            for (id, text) in msgs {
                v.acked += 1;
                known_texts.insert(text.clone());
                let n = copies.get(text).copied().unwrap_or(0);
                if n > 1 {
                    v.problems
                        .push(format!("{text} ({id}) reached the network {n} times"));
                    v.doubled += 1;
                }
                let Some(m) = by_id.get(id) else {
                    v.problems
                        .push(format!("{key}: acknowledged {id} is missing"));
                    v.lost += 1;
                    continue;
                };
                match m["status"].as_str().unwrap_or("") {
                    "sent" => {
                        v.sent += 1;
                        expected_events.push((id.clone(), "message.sent"));
                    }
                    "delivered" => {
                        v.delivered += 1;
                        expected_events.push((id.clone(), "message.sent"));
                        expected_events.push((id.clone(), "message.delivered"));
                    }
                    "unknown" => {
                        v.unknown += 1;
                        expected_events.push((id.clone(), "message.unknown"));
                    }
                    "failed" => {
                        v.failed += 1;
                        expected_events.push((id.clone(), "message.failed"));
                    }
                    other => {
                        v.problems.push(format!("{id} ({text}) ended {other}"));
                        v.lost += 1;
                    }
                }
                let status = m["status"].as_str().unwrap_or("");
                if matches!(status, "sent" | "delivered") && n != 1 {
                    v.problems
                        .push(format!("{id} ({text}) is {status} but went out {n} times"));
                    v.lost += 1;
                }
                if status == "failed" && n != 0 {
                    v.problems
                        .push(format!("{id} ({text}) is failed but went out {n} times"));
                }
            }
        }
        v.stored_messages = stored.len();
        if stored.len() != v.acked {
            v.problems.push(format!(
                "{} messages stored for {} acknowledged: a retried request made a second one",
                stored.len(),
                v.acked
            ));
        }
        for text in copies.keys() {
            if !known_texts.contains(text) && !text.starts_with("Reply STOP") {
                v.problems.push(format!(
                    "{text:?} went out but no request was acknowledged for it"
                ));
                v.doubled += 1;
            }
        }
        // The same keys again: the same messages, not new ones (idempotency across crashes).
        for (key, msgs) in ledger.acked.iter().take(200) {
            let ids = post_once(&self.http, &self.base, key, msgs.len(), &msgs[0].1).await;
            if ids
                .as_ref()
                .map(|ids| ids.iter().map(|(i, _)| i).collect::<Vec<_>>())
                != Some(msgs.iter().map(|(i, _)| i).collect())
            {
                v.problems
                    .push(format!("{key}: replay gave {ids:?}, not {msgs:?}"));
            }
        }

        // Inbound: every text handed to the modem is stored once.
        let inbound = self.all("/v1/inbound").await;
        let mut seen: HashMap<(String, String), usize> = HashMap::new();
        let mut inbound_ids = Vec::new();
        for m in &inbound {
            let k = (
                m["from"].as_str().unwrap_or("").to_string(),
                m["text"].as_str().unwrap_or("").to_string(),
            );
            *seen.entry(k).or_default() += 1;
            inbound_ids.push(m["id"].as_str().unwrap_or("").to_string());
        }
        v.inbound_injected = ledger.injected.len();
        for k in &ledger.injected {
            match seen.get(k).copied().unwrap_or(0) {
                1 => v.inbound_once += 1,
                0 => {
                    v.problems.push(format!("inbound {k:?} was not stored"));
                    v.inbound_missing += 1;
                }
                n => {
                    v.problems
                        .push(format!("inbound {k:?} was stored {n} times"));
                    v.inbound_doubled += 1;
                }
            }
        }
        if inbound.len() != ledger.injected.len() {
            v.problems.push(format!(
                "{} inbound stored for {} sent by customers",
                inbound.len(),
                ledger.injected.len()
            ));
        }

        // Webhooks: each event acknowledged at least once, every signature valid.
        let deliveries = self.hooks.deliveries();
        let mut acked_ids = HashSet::new();
        let mut per_id: HashMap<&str, usize> = HashMap::new();
        for d in &deliveries {
            if !d.verified {
                v.bad_signatures += 1;
            }
            *per_id.entry(&d.webhook_id).or_default() += 1;
            if d.acked {
                if !acked_ids.insert(d.webhook_id.clone()) {
                    v.events_redelivered += 1;
                }
            } else {
                v.events_refused += 1;
            }
        }
        let acked: Vec<&Delivery> = deliveries.iter().filter(|d| d.acked).collect();
        let has = |f: &dyn Fn(&Delivery) -> bool| acked.iter().any(|d| f(d));
        for (id, ty) in &expected_events {
            v.events_expected += 1;
            if has(&|d| d.event_type == *ty && d.message_id.as_deref() == Some(id)) {
                v.events_acked += 1;
            } else {
                v.problems.push(format!("no acknowledged {ty} for {id}"));
            }
        }
        for id in &inbound_ids {
            v.events_expected += 1;
            if has(&|d| d.inbound_id.as_deref() == Some(id)) {
                v.events_acked += 1;
            } else {
                v.problems
                    .push(format!("no acknowledged event for inbound {id}"));
            }
        }
        v.deliveries = deliveries.len();
        v.events = acked_ids.len();
        let s = self.get("/v1/stats").await;
        if s["webhooks_pending"] != 0 || s["webhooks_dead"] != 0 {
            v.problems.push(format!("webhooks left in the outbox: {s}"));
        }
        if v.bad_signatures > 0 {
            v.problems
                .push(format!("{} bad signatures", v.bad_signatures));
        }
        v
    }

    async fn stop(mut self) {
        self.kill9().await;
        self.sim.shutdown().await;
    }
}

/// POSTs one request (a single message, or a batch of `n` from `text`'s request number) with
/// this key; the acknowledged (id, text) pairs, `None` without a 2xx.
async fn post_once(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    n: usize,
    text: &str,
) -> Option<Vec<(String, String)>> {
    let (url, body) = request_body(key, n, text);
    let r = http
        .post(format!("{base}{url}"))
        .bearer_auth(TOKEN)
        .header("Idempotency-Key", key)
        .json(&body)
        .send()
        .await
        .ok()?;
    if !r.status().is_success() {
        return None;
    }
    let v: Value = r.json().await.ok()?;
    let list = if n == 1 {
        vec![v]
    } else {
        v["messages"].as_array().cloned()?
    };
    list.iter()
        .map(|m| {
            Some((
                m["id"].as_str()?.to_string(),
                m["text"].as_str()?.to_string(),
            ))
        })
        .collect()
}

/// The request a key stands for: `camp-<n>` is a single message (to a customer, or with reply
/// options to a number of its own when `n` is a multiple of 5), `camp-<n>-batch` a batch.
fn request_body(key: &str, n: usize, first_text: &str) -> (&'static str, Value) {
    let num: usize = key
        .trim_start_matches("camp-")
        .trim_end_matches("-batch")
        .parse()
        .unwrap_or(0);
    if n > 1 {
        let messages: Vec<Value> = (0..n)
            .map(|i| {
                json!({"to": CUSTOMERS[(num + i) % CUSTOMERS.len()], "text": format!("camp {num}.{i}")})
            })
            .collect();
        return ("/v1/messages/batch", json!({"messages": messages}));
    }
    let mut body = json!({"to": CUSTOMERS[num % CUSTOMERS.len()], "text": first_text});
    if num.is_multiple_of(5) {
        body = json!({
            "to": answering_number(num),
            "text": first_text,
            "reply_options": {"1": "call_me", "2": "pay_minimum"},
        });
    }
    ("/v1/messages", body)
}

/// A number of its own for the request `num` (a multiple of 5), so its answer matches it alone.
fn answering_number(num: usize) -> String {
    format!("+1202556{:04}", (num / 5) % 10_000)
}

/// Posts messages until `stop`, each request retried with the same Idempotency-Key until it is
/// acknowledged (the daemon may be down for a moment).
async fn submitter(
    http: reqwest::Client,
    base: String,
    ledger: Arc<Mutex<Ledger>>,
    stop: CancellationToken,
    seed: u64,
) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut num = 1usize;
    while !stop.is_cancelled() {
        let batch = num % 8 == 3;
        let (key, n) = if batch {
            (format!("camp-{num}-batch"), 4)
        } else {
            (format!("camp-{num}"), 1)
        };
        let text = if batch {
            format!("camp {num}.0")
        } else {
            format!("camp {num}")
        };
        loop {
            let t = Instant::now();
            let got = post_once(&http, &base, &key, n, &text).await;
            let took = t.elapsed();
            let done = {
                let mut l = ledger.lock().unwrap();
                match got {
                    Some(msgs) => {
                        l.max_latency = l.max_latency.max(took);
                        l.latencies.push((Instant::now(), took));
                        if num.is_multiple_of(5) && !batch {
                            l.to_answer.push(answering_number(num));
                        }
                        l.acked.insert(key.clone(), msgs);
                        true
                    }
                    None => {
                        l.api_failures += 1;
                        l.failure_times.push(Instant::now());
                        false
                    }
                }
            };
            if done {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        num += 1;
        // About 20 messages a second: below what the simulated modem sends (about 35 a
        // second at 20 ms a part), so the queue drains, and scores of times what a real modem
        // sends.
        tokio::time::sleep(Duration::from_millis(rng.u64(40..80))).await;
    }
}

/// Customers write: an answer to a message with reply options, or a text of their own.
async fn injector(sim: SimHandle, ledger: Arc<Mutex<Ledger>>, stop: CancellationToken) {
    let mut k = 0usize;
    while !stop.is_cancelled() {
        tokio::time::sleep(Duration::from_millis(120)).await;
        k += 1;
        let answer = {
            let mut l = ledger.lock().unwrap();
            if k.is_multiple_of(2) {
                l.to_answer.pop()
            } else {
                None
            }
        };
        let (from, text) = match answer {
            Some(number) => (number, "1".to_string()),
            None => (
                format!("+1202557{:04}", k % 10_000),
                format!("question {k}"),
            ),
        };
        if sim.inject_inbound(&from, &text, false).is_ok() {
            ledger.lock().unwrap().injected.push((from, text));
        }
    }
}

/// What a campaign found.
#[derive(Debug, Default)]
struct Verdict {
    requests: usize,
    acked: usize,
    stored_messages: usize,
    api_failures: usize,
    max_latency: Duration,
    sent: usize,
    delivered: usize,
    unknown: usize,
    failed: usize,
    lost: usize,
    doubled: usize,
    inbound_injected: usize,
    inbound_once: usize,
    inbound_missing: usize,
    inbound_doubled: usize,
    events_expected: usize,
    events_acked: usize,
    events: usize,
    deliveries: usize,
    events_refused: usize,
    events_redelivered: usize,
    bad_signatures: usize,
    problems: Vec<String>,
}

impl Verdict {
    fn assert_clean(&self) {
        assert!(
            self.problems.is_empty(),
            "{} problems:\n{}",
            self.problems.len(),
            self.problems
                .iter()
                .take(40)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n")
        );
        assert!(self.acked > 0 && self.inbound_injected > 0, "{self:?}");
    }

    /// The counts as a Markdown table.
    fn table(&self) -> String {
        let rows = [
            (
                "Requests acknowledged (single and batch)",
                self.requests.to_string(),
            ),
            ("Messages acknowledged", self.acked.to_string()),
            ("Messages in the store", self.stored_messages.to_string()),
            (
                "… sent / delivered",
                format!("{} / {}", self.sent, self.delivered),
            ),
            (
                "… `unknown` (caught mid-send, not re-sent)",
                self.unknown.to_string(),
            ),
            ("… failed (attempts exhausted)", self.failed.to_string()),
            ("Acknowledged but missing (lost)", self.lost.to_string()),
            (
                "Reached the network twice, or unasked",
                self.doubled.to_string(),
            ),
            (
                "Requests that failed and were retried with the same key",
                self.api_failures.to_string(),
            ),
            (
                "Slowest acknowledged request",
                format!("{:.0} ms", self.max_latency.as_secs_f64() * 1000.0),
            ),
            (
                "Inbound texts sent by customers",
                self.inbound_injected.to_string(),
            ),
            ("… stored exactly once", self.inbound_once.to_string()),
            (
                "… missing / stored twice",
                format!("{} / {}", self.inbound_missing, self.inbound_doubled),
            ),
            (
                "Webhook events expected (per message and inbound text)",
                self.events_expected.to_string(),
            ),
            (
                "… acknowledged by the receiver",
                self.events_acked.to_string(),
            ),
            ("Webhook deliveries (attempts)", self.deliveries.to_string()),
            (
                "… refused by the receiver (503, retried)",
                self.events_refused.to_string(),
            ),
            (
                "… acknowledged again after a crash (at least once)",
                self.events_redelivered.to_string(),
            ),
            ("Invalid signatures", self.bad_signatures.to_string()),
        ];
        let mut s = String::from("| | |\n|---|---:|\n");
        for (k, v) in rows {
            let _ = writeln!(s, "| {k} | {v} |");
        }
        s
    }
}

/// Where the long campaigns write their Markdown (set by `bench/reliability.sh`).
fn report(name: &str, text: &str) {
    eprintln!("{text}");
    if let Ok(dir) = std::env::var("SMSGATE_RELIABILITY_OUT") {
        let dir = Path::new(&dir);
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join(format!("{name}.md")), text).unwrap();
    }
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

// ---- kill -9 ---------------------------------------------------------------------------------

/// `cycles` SIGKILLs at random moments (0.1 to 1.5 s apart) under load, each followed by a
/// restart; then the checks.
async fn kill_campaign(cycles: usize, seed: u64) -> String {
    let started = Instant::now();
    let mut rig = Rig::start(None, seed).await;
    let stop = CancellationToken::new();
    let load = rig.load(stop.clone(), seed);
    let mut rng = fastrand::Rng::with_seed(seed ^ 0x9E37);
    let mut restarts = Vec::new();
    for _ in 0..cycles {
        tokio::time::sleep(Duration::from_millis(rng.u64(100..1500))).await;
        rig.kill9().await;
        restarts.push(rig.spawn().await);
    }
    // Some calm for the last requests, then stop the load and let everything settle.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.cancel();
    for t in load {
        t.await.unwrap();
    }
    let settle = rig.settle().await;
    let v = rig.verify().await;
    restarts.sort();
    let median = restarts
        .get(restarts.len() / 2)
        .copied()
        .unwrap_or_default();
    let text = format!(
        "{cycles} kill -9 cycles in {:.0} s (seed {seed}); restart to ready: median {:.0} ms, \
         slowest {:.0} ms; settled {:.1} s after the load stopped.\n\n{}",
        started.elapsed().as_secs_f64(),
        median.as_secs_f64() * 1000.0,
        restarts.last().copied().unwrap_or_default().as_secs_f64() * 1000.0,
        settle.as_secs_f64(),
        v.table()
    );
    report("kill", &text);
    v.assert_clean();
    assert!(
        v.unknown <= cycles,
        "at most one message caught per kill: {v:?}"
    );
    rig.stop().await;
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_campaign_loses_nothing_and_doubles_nothing() {
    kill_campaign(5, 1).await;
}

/// The long run: `bash bench/reliability.sh` (60 cycles unless `SMSGATE_CAMPAIGN_CYCLES`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long; run by bench/reliability.sh"]
async fn kill_9_campaign_long() {
    kill_campaign(env_number("SMSGATE_CAMPAIGN_CYCLES", 60), 7).await;
}

// ---- faults ----------------------------------------------------------------------------------

/// One fault the modem shows for a while.
#[derive(Debug, Clone, Copy)]
enum Fault {
    Unplug,
    Freeze,
    CmsErrors,
    UrcStorm,
    Garbage,
    SlowLine,
    StorageFull,
    RebootPin,
}

impl Fault {
    const ALL: [Fault; 8] = [
        Fault::Unplug,
        Fault::Freeze,
        Fault::CmsErrors,
        Fault::UrcStorm,
        Fault::Garbage,
        Fault::SlowLine,
        Fault::StorageFull,
        Fault::RebootPin,
    ];

    fn name(self) -> &'static str {
        match self {
            Fault::Unplug => "unplugged, then plugged back in (the PIN asked again)",
            Fault::Freeze => "frozen: answers nothing",
            Fault::CmsErrors => "30 % of sends get a `+CMS ERROR` (500, 38, 42, 332)",
            Fault::UrcStorm => {
                "URC storm (`^RSSI`, `+CREG`, `RING`, `^HCSQ`, `+CIEV`, 50 lines per 20 ms)"
            }
            Fault::Garbage => "garbage bytes on the line (1 to 48 random bytes every 30 ms)",
            Fault::SlowLine => "slow line: 1 byte per ms each way",
            Fault::StorageFull => "SIM message store full (inbound held by the network)",
            Fault::RebootPin => "reboot on the same port, the SIM asks for its PIN again",
        }
    }

    /// Starts the fault; a task that keeps it going, if it needs one.
    fn apply(
        self,
        sim: &SimHandle,
        round: usize,
        stop: CancellationToken,
    ) -> Option<tokio::task::JoinHandle<()>> {
        match self {
            Fault::Unplug => sim.unplug(),
            Fault::Freeze => sim.freeze(true),
            Fault::CmsErrors => sim.set_error_rate(0.3, [500, 38, 42, 332][round % 4]),
            Fault::SlowLine => sim.set_byte_time(Duration::from_millis(1)),
            Fault::StorageFull => sim.set_storage_full(true),
            Fault::RebootPin => sim.reboot(),
            Fault::UrcStorm => {
                sim.set_noise(true);
                let sim = sim.clone();
                return Some(tokio::spawn(async move {
                    const URCS: [&str; 6] = [
                        "\r\n^RSSI: 17\r\n",
                        "\r\n+CREG: 1\r\n",
                        "\r\nRING\r\n",
                        "\r\n^HCSQ: \"LTE\",50,40,120,20\r\n",
                        "\r\n+CIEV: 2,3\r\n",
                        "\r\n^MODE: 5,4\r\n",
                    ];
                    let mut i = 0;
                    while !stop.is_cancelled() {
                        let mut burst = Vec::new();
                        for _ in 0..50 {
                            burst.extend_from_slice(URCS[i % URCS.len()].as_bytes());
                            i += 1;
                        }
                        sim.inject_raw(&burst);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }));
            }
            Fault::Garbage => {
                let sim = sim.clone();
                return Some(tokio::spawn(async move {
                    let mut rng = fastrand::Rng::with_seed(round as u64);
                    while !stop.is_cancelled() {
                        let n = rng.usize(1..=48);
                        let bytes: Vec<u8> = (0..n).map(|_| rng.u8(..)).collect();
                        sim.inject_raw(&bytes);
                        tokio::time::sleep(Duration::from_millis(30)).await;
                    }
                }));
            }
        }
        None
    }

    async fn clear(self, sim: &SimHandle) {
        match self {
            Fault::Unplug => sim.replug().await.unwrap(),
            Fault::Freeze => sim.freeze(false),
            Fault::CmsErrors => sim.set_error_rate(0.0, 500),
            Fault::UrcStorm => sim.set_noise(false),
            Fault::Garbage | Fault::RebootPin => {}
            Fault::SlowLine => sim.set_byte_time(Duration::ZERO),
            Fault::StorageFull => sim.set_storage_full(false),
        }
    }
}

/// Per fault: how it went while it lasted and after.
#[derive(Debug, Default, Clone)]
struct FaultStats {
    times: usize,
    sent_during: usize,
    api_failures: usize,
    max_latency: Duration,
    /// From clearing the fault to the next message on the network, slowest of the rounds.
    recovery: Duration,
}

/// Every fault `rounds` times for `hold` each, under load, with the daemon never restarted.
async fn fault_campaign(rounds: usize, hold: Duration, seed: u64) -> String {
    let started = Instant::now();
    let rig = Rig::start(Some(PIN), seed).await;
    let pid = rig.pid();
    let stop = CancellationToken::new();
    let load = rig.load(stop.clone(), seed);
    let mut stats: BTreeMap<usize, FaultStats> = BTreeMap::new();
    tokio::time::sleep(Duration::from_secs(1)).await;
    for round in 0..rounds {
        for (i, fault) in Fault::ALL.iter().enumerate() {
            // `SMSGATE_CAMPAIGN_FAULTS=Freeze,Unplug` runs only those (to chase one).
            if let Ok(only) = std::env::var("SMSGATE_CAMPAIGN_FAULTS")
                && !only.split(',').any(|f| f.trim() == format!("{fault:?}"))
            {
                continue;
            }
            let sent_before = rig.sim.sent().len();
            let from = Instant::now();
            let fault_stop = CancellationToken::new();
            let task = fault.apply(&rig.sim, round, fault_stop.clone());
            tokio::time::sleep(hold).await;
            fault_stop.cancel();
            if let Some(t) = task {
                t.await.unwrap();
            }
            fault.clear(&rig.sim).await;
            let cleared = Instant::now();
            let sent_during = rig.sim.sent().len() - sent_before;
            // Recovery: the next message the network takes after the fault is gone.
            let base = rig.sim.sent().len();
            let deadline = cleared + Duration::from_secs(30);
            while rig.sim.sent().len() == base {
                assert!(
                    Instant::now() < deadline,
                    "nothing sent within 30 s after {}",
                    fault.name()
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let recovery = cleared.elapsed();
            let (failures, latency) = {
                let l = rig.ledger.lock().unwrap();
                let failures = l.failure_times.iter().filter(|t| **t >= from).count();
                let latency = l
                    .latencies
                    .iter()
                    .filter(|(t, _)| *t >= from)
                    .map(|(_, d)| *d)
                    .max()
                    .unwrap_or_default();
                (failures, latency)
            };
            let s = stats.entry(i).or_default();
            s.times += 1;
            s.sent_during += sent_during;
            s.api_failures += failures;
            s.max_latency = s.max_latency.max(latency);
            s.recovery = s.recovery.max(recovery);
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    stop.cancel();
    for t in load {
        t.await.unwrap();
    }
    let settle = rig.settle().await;
    assert_eq!(rig.pid(), pid, "the daemon was never restarted");
    let alive = rig.http.get(format!("{}/healthz", rig.base)).send().await;
    assert!(
        alive.is_ok_and(|r| r.status().is_success()),
        "the daemon stays up"
    );
    let v = rig.verify().await;
    let mut text = format!(
        "{rounds} round(s) of {} faults, {:.0} s each, in {:.0} s (seed {seed}); the daemon \
         (one process throughout) settled {:.1} s after the load stopped.\n\n\
         | Fault | Times | Sent while it lasted | API failures | Slowest request | Next send after it ended (worst) |\n\
         |---|---:|---:|---:|---:|---:|\n",
        Fault::ALL.len(),
        hold.as_secs_f64(),
        started.elapsed().as_secs_f64(),
        settle.as_secs_f64(),
    );
    for (i, s) in &stats {
        let _ = writeln!(
            text,
            "| {} | {} | {} | {} | {:.0} ms | {:.2} s |",
            Fault::ALL[*i].name(),
            s.times,
            s.sent_during,
            s.api_failures,
            s.max_latency.as_secs_f64() * 1000.0,
            s.recovery.as_secs_f64()
        );
    }
    text.push('\n');
    text.push_str(&v.table());
    report("faults", &text);
    v.assert_clean();
    assert_eq!(v.api_failures, 0, "the API answered every request: {v:?}");
    rig.stop().await;
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_campaign_keeps_the_daemon_up_and_loses_nothing() {
    fault_campaign(1, Duration::from_millis(1500), 3).await;
}

/// The long run: `bash bench/reliability.sh` (3 rounds of 5 s unless `SMSGATE_CAMPAIGN_ROUNDS`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long; run by bench/reliability.sh"]
async fn fault_campaign_long() {
    fault_campaign(
        env_number("SMSGATE_CAMPAIGN_ROUNDS", 3),
        Duration::from_secs(5),
        11,
    )
    .await;
}
