//! The gateway end to end: HTTP on 127.0.0.1, a sled store on disk, the simulated modem on a
//! PTY. In-process for most tests; `crash.rs` runs the real binary and kills it with SIGKILL.
//!
//! `SMSGATE_TEST_BACKEND=postgres` runs the same suite on PostgreSQL: every gateway [`start`]
//! makes keeps its data in a fresh database of a test server (one per store directory, so a
//! restart on the same directory finds its data), and the tests about the embedded store's
//! files say they are skipped ([`sled_only`]).

mod abuse;
mod audit;
mod auth;
mod backup;
mod browser;
mod campaign;
mod cli;
mod cluster;
mod crash;
mod dashboard;
mod demo;
mod diskfull;
mod examples;
mod export;
mod flows;
mod inbound;
mod input;
mod metrics;
mod outbound;
mod pool;
mod reminders;
mod remote;
mod replies;
mod reports;
mod retention;
mod scopes;
mod senders;
mod storage;
mod store_cmd;
mod store_copy;
mod twilio;
mod ussd;
mod why;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use serde_json::Value;
use smsgate::api::{ApiConfig, ApiKey};
use smsgate::dispatch::{Clock, DispatchConfig};
use smsgate::modem::ModemConfig;
use smsgate::server::Gateway;
use smsgate::sim::{SimConfig, SimHandle, Simulator};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

pub const TOKEN: &str = "test-token-0123456789";

pub struct Running {
    pub base: String,
    pub shutdown: CancellationToken,
    pub task: tokio::task::JoinHandle<anyhow::Result<()>>,
    pub http: reqwest::Client,
}

pub fn modem_config(sim: &SimHandle) -> ModemConfig {
    let mut m = ModemConfig::new("sim0", sim.path().display().to_string());
    m.command_timeout = Duration::from_secs(2);
    m.send_timeout = Duration::from_secs(5);
    m.max_backoff = Duration::from_millis(500);
    m
}

/// Whether this run keeps the gateways' data in PostgreSQL (`SMSGATE_TEST_BACKEND=postgres`)
/// rather than in the embedded store.
pub fn on_postgres() -> bool {
    std::env::var("SMSGATE_TEST_BACKEND").is_ok_and(|v| v == "postgres")
}

/// On PostgreSQL, says that `test` (or the rest of it) is skipped because it is about the
/// embedded store's files (`why`), and gives `true`: the caller returns.
pub fn sled_only(test: &str, why: &str) -> bool {
    if on_postgres() {
        skipped(test, &format!("on PostgreSQL: {why}"));
    }
    on_postgres()
}

/// In the PostgreSQL pass, says that `test` ran in the first pass already (it uses a
/// PostgreSQL of its own whatever the backend) and gives `true`: the caller returns.
pub fn ran_in_first_pass(test: &str) -> bool {
    if on_postgres() {
        skipped(
            test,
            "it uses PostgreSQL whatever the backend and ran in the first pass",
        );
    }
    on_postgres()
}

/// The test database standing for the store directory `store`: made at the first call, the
/// same one afterwards (a gateway restarted on the same directory finds its data).
pub fn database_for(store: &Path) -> String {
    static DATABASES: OnceLock<Mutex<HashMap<PathBuf, String>>> = OnceLock::new();
    let mut made = DATABASES
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    made.entry(store.to_path_buf())
        .or_insert_with(|| {
            smsgate::store::pg::testdb::database()
                .expect("SMSGATE_TEST_BACKEND=postgres, but no PostgreSQL server can be made here")
        })
        .clone()
}

/// The store of the test's gateway on this run's backend: the directory's embedded store, or
/// its database. Open it once the gateway has stopped (the embedded store is locked while it
/// runs).
pub fn open_store(store: &Path) -> smsgate::store::Store {
    if on_postgres() {
        smsgate::store::Store::connect(&database_for(store), Vec::new()).expect("database opens")
    } else {
        smsgate::store::Store::open(store, 16).expect("store opens")
    }
}

/// The `[storage]` section of a configuration file for a daemon (the real binary) whose store
/// directory is `store`: the directory, or on PostgreSQL the directory's database.
pub fn storage_toml(store: &Path) -> String {
    if on_postgres() {
        format!(
            "[storage]\nbackend = \"postgres\"\nurl = \"{}\"\n",
            database_for(store)
        )
    } else {
        format!("[storage]\npath = \"{}\"\n", store.display())
    }
}

pub async fn start(store: PathBuf, sim: &SimHandle, tweak: impl FnOnce(&mut Gateway)) -> Running {
    let store_url = on_postgres().then(|| database_for(&store));
    let mut gw = Gateway {
        listen: "127.0.0.1:0".parse().unwrap(),
        store_path: store,
        store_url,
        cache_mb: 16,
        // Short, so that a gateway started after another's crash takes the modem soon.
        lease_ttl: Duration::from_secs(3),
        keys: vec![ApiKey::from_token("test", TOKEN)],
        modems: vec![modem_config(sim).into()],
        api: ApiConfig::default(),
        dispatch: DispatchConfig {
            backoff: Duration::from_millis(200),
            backoff_max: Duration::from_secs(1),
            modem_wait: Duration::from_millis(200),
            ..DispatchConfig::default()
        },
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
        // The receivers of these tests listen on 127.0.0.1; tests of the policy set their own.
        outbound: smsgate::outbound::OutboundPolicy::allowing_loopback(),
        phone: None,
        retention: Default::default(),
    };
    tweak(&mut gw);
    let shutdown = CancellationToken::new();
    let (tx, rx) = oneshot::channel::<SocketAddr>();
    let task = tokio::spawn(gw.run(shutdown.clone(), Some(tx)));
    let addr = match tokio::time::timeout(Duration::from_secs(10), rx)
        .await
        .expect("listening in time")
    {
        Ok(addr) => addr,
        // It stopped before listening: say why (a store that does not open, a busy port).
        Err(_) => {
            let why = match tokio::time::timeout(Duration::from_secs(10), task).await {
                Ok(Ok(Err(e))) => format!("{e:#}"),
                other => format!("{other:?}"),
            };
            panic!("the gateway did not start: {why}");
        }
    };
    Running {
        base: format!("http://{addr}"),
        shutdown,
        task,
        http: smsgate::tls::client_builder().build().unwrap(),
    }
}

impl Running {
    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .json(body)
            .send()
            .await
            .expect("request");
        let code = r.status().as_u16();
        (code, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("request");
        let code = r.status().as_u16();
        (code, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn status_of(&self, id: &str) -> String {
        self.get(&format!("/v1/messages/{id}")).await.1["status"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    /// Waits until the message reaches `status` (or `within` passes); returns the last status.
    pub async fn wait_status(&self, id: &str, status: &str, within: Duration) -> String {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let s = self.status_of(id).await;
            if s == status || tokio::time::Instant::now() >= deadline {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        let r = tokio::time::timeout(Duration::from_secs(15), self.task)
            .await
            .expect("stops in time");
        r.expect("task").expect("clean stop");
    }
}

pub async fn sim() -> SimHandle {
    Simulator::start(SimConfig {
        status_reports: None,
        ..SimConfig::default()
    })
    .await
    .expect("simulator")
}

pub async fn wait_modem_up(r: &Running) {
    for _ in 0..200 {
        let (_, v) = r.get("/v1/modems").await;
        if v["modems"][0]["state"] == "up" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("modem never came up");
}

/// Says that a test did not run, and why, where a person running `cargo test` sees it: straight
/// to standard error, past the test harness's capture of `eprintln!` (which shows a passing
/// test's output only with `--nocapture`).
pub fn skipped(test: &str, why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
}

/// The first line of `program --version` (or the given flag), when it runs and succeeds within
/// 10 seconds: a program found on the PATH may be a stub (Ubuntu's `chromium-browser` asks for
/// a snap and exits 1).
pub fn version_of(program: &std::path::Path, flag: &str) -> Option<String> {
    let mut child = std::process::Command::new(program)
        .arg(flag)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .ok()?;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20))
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
    let out = child.wait_with_output().ok()?;
    if !out.status.success() {
        return None;
    }
    // Some print it on standard error.
    let text = [out.stdout, out.stderr].concat();
    String::from_utf8_lossy(&text)
        .lines()
        .find(|l| !l.trim().is_empty())
        .map(|l| l.trim().to_string())
}
