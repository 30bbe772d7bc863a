//! What a careless network, a customer or a stranger on the LAN can do, against the real
//! daemon over HTTP on loopback: a flood of half-sent request headers neither starves a real
//! client nor stays open past `[http] header_timeout`; a body that stops half-way fails at
//! `body_timeout`; wrong credentials lock out their own
//! address only (another loopback address, 127.0.0.2, stands for another machine), with 429
//! and `Retry-After`; an admin session ends at `session_max_age` however much it is used; the
//! shipped example's placeholder token is refused by `config check` and by `serve`.

use std::net::{IpAddr, Ipv4Addr};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::crash::free_port;
use crate::{TOKEN, sim, start};

/// Half-sent requests held open at once: more than the usual soft limit of open files (1024),
/// which is what stopped the daemon from accepting before connections were bounded.
const SLOW_CLIENTS: usize = 1_100;

/// The test opens a socket per slow client: its own soft limit of open files goes up to the
/// hard limit (the daemon raises its own at start).
fn raise_open_files_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).expect("setrlimit");
    }
    let (soft, _) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    assert!(
        soft >= SLOW_CLIENTS as u64 + 200,
        "this test needs {} open files; the hard limit is {soft}",
        SLOW_CLIENTS + 200
    );
}

/// A running `smsgate serve` that is killed when dropped.
struct Daemon {
    child: tokio::process::Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Daemon {
    /// `smsgate serve` with `[http]` set to `http` (plus `listen`), no modem; once it answers.
    async fn start(http: &str) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let config = dir.path().join("smsgate.toml");
        std::fs::write(
            &config,
            format!(
                "[http]\nlisten = \"127.0.0.1:{port}\"\n{http}\n{}\
                 [[api_keys]]\nname = \"test\"\ntoken = \"{TOKEN}\"\n",
                crate::storage_toml(&dir.path().join("store"))
            ),
        )
        .unwrap();
        // Started with the soft limit of open files most systems give (1024), below the
        // number of slow clients: the daemon must raise it itself.
        let child = tokio::process::Command::new("sh")
            .args(["-c", "ulimit -Sn 1024 && exec \"$0\" serve --config \"$1\""])
            .arg(env!("CARGO_BIN_EXE_smsgate"))
            .arg(&config)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let http = smsgate::tls::client_builder().build().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = http.get(format!("{base}/healthz")).send().await
                && r.status().is_success()
            {
                break;
            }
            assert!(Instant::now() < deadline, "the daemon did not answer");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Daemon {
            child,
            base,
            _dir: dir,
        }
    }

    /// SIGTERM, and it stops in time with success.
    async fn stop(mut self) {
        let pid = self.child.id().expect("running");
        crate::crash::signal(pid, nix::sys::signal::Signal::SIGTERM);
        let status = tokio::time::timeout(Duration::from_secs(15), self.child.wait())
            .await
            .expect("stops in time")
            .unwrap();
        assert!(status.success(), "{status}");
    }
}

/// A POST of one message on a fresh connection: its status and how long the answer took.
async fn post_message(base: &str) -> (u16, Duration) {
    let http = smsgate::tls::client_builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let t = Instant::now();
    let r = http
        .post(format!("{base}/v1/messages"))
        .bearer_auth(TOKEN)
        .json(&json!({"to": "+12025550123", "text": "served under a flood"}))
        .send()
        .await;
    let code = match r {
        Ok(r) => r.status().as_u16(),
        Err(e) => panic!("no answer after {:?}: {e}", t.elapsed()),
    };
    (code, t.elapsed())
}

/// Without a header timeout and a connection limit (as `axum::serve` ran), the 1,100
/// half-requests took every file descriptor the daemon had: the client's connection waited in
/// the kernel's backlog and got no answer (the reqwest timeout of 10 s panics `post_message`),
/// and the half-requests stayed open for good (the EOF wait below fails).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_headers_neither_starve_a_client_nor_stay_open() {
    raise_open_files_limit();
    let header_timeout = Duration::from_secs(2);
    // max_connections as shipped (512): more slow clients than that, so the limit is met too.
    let d = Daemon::start("header_timeout = \"2s\"\nmax_connections = 512").await;
    let addr = d.base.trim_start_matches("http://").to_string();

    let (code, _) = post_message(&d.base).await;
    assert_eq!(code, 201, "before the flood");

    // Each slow client sends half a header, then waits for the server to close: the time from
    // its connecting to its EOF (or reset), or None if it was not closed in 15 s.
    let mut slow = Vec::with_capacity(SLOW_CLIENTS);
    for _ in 0..SLOW_CLIENTS {
        let mut s = tokio::net::TcpStream::connect(&addr)
            .await
            .expect("connect");
        let opened = Instant::now();
        s.write_all(b"POST /v1/messages HTTP/1.1\r\nHost: gateway\r\nContent-Type: applic")
            .await
            .expect("half a header");
        slow.push(tokio::spawn(async move {
            let mut buf = [0u8; 1024];
            let wait = async {
                loop {
                    match s.read(&mut buf).await {
                        // hyper may answer 408 before closing: read on to the end.
                        Ok(n) if n > 0 => continue,
                        _ => return opened.elapsed(),
                    }
                }
            };
            tokio::time::timeout(Duration::from_secs(15), wait)
                .await
                .ok()
        }));
    }

    // While the slow clients hold their half-requests, a real client is served at once.
    let (code, took) = post_message(&d.base).await;
    assert_eq!(code, 201, "during the flood");
    assert!(
        took < Duration::from_secs(2),
        "answered in {took:?} during the flood"
    );

    // Every half-request is closed by the server: the ones beyond max_connections as newer
    // connections came, the rest after header_timeout.
    let mut closed_by_timeout = 0;
    let mut latest = Duration::ZERO;
    for (i, h) in slow.into_iter().enumerate() {
        let closed = h.await.unwrap();
        let Some(after) = closed else {
            panic!("slow client {i} was still open 15 s after it connected");
        };
        if after >= header_timeout - Duration::from_millis(100) {
            closed_by_timeout += 1;
        }
        latest = latest.max(after);
    }
    eprintln!(
        "abuse: {SLOW_CLIENTS} half-sent headers; POST during the flood answered 201 in {took:?}; \
         {} closed to make room, {closed_by_timeout} at header_timeout; the last closed {latest:?} after connecting",
        SLOW_CLIENTS - closed_by_timeout
    );
    // The last 511 or so (the real client took a slot) were within the limit: closed by the
    // timeout, not before it.
    assert!(
        closed_by_timeout >= 400,
        "only {closed_by_timeout} half-requests lasted until header_timeout"
    );

    let (code, took) = post_message(&d.base).await;
    assert_eq!(code, 201, "after the flood");
    assert!(took < Duration::from_secs(2), "{took:?}");
    d.stop().await;
}

/// A client whose requests come from `ip` (a loopback address).
fn client_from(ip: Ipv4Addr) -> reqwest::Client {
    smsgate::tls::client_builder()
        .local_address(IpAddr::V4(ip))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

const LAN_STRANGER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
const BILLING: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_bearer_tokens_lock_out_their_address_only() {
    let dir = tempfile::tempdir().unwrap();
    let sim = sim().await;
    // The shipped defaults: 10 failures a minute.
    let r = start(dir.path().join("store"), &sim, |_| {}).await;
    let stranger = client_from(LAN_STRANGER);
    let billing = client_from(BILLING);
    let send = |c: &reqwest::Client, token: &str| {
        c.post(format!("{}/v1/messages", r.base))
            .bearer_auth(token)
            .json(&json!({"to": "+12025550123", "text": "hello"}))
            .send()
    };
    for i in 0..10 {
        let resp = send(&stranger, &format!("guess-{i:020}")).await.unwrap();
        assert_eq!(resp.status().as_u16(), 401, "guess {i}");
    }
    let resp = send(&stranger, "guess-number-eleven-000").await.unwrap();
    assert_eq!(resp.status().as_u16(), 429);
    assert_eq!(
        resp.headers()["content-type"],
        "application/problem+json",
        "problem details"
    );
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .expect("Retry-After in seconds");
    assert!((1..=60).contains(&retry), "Retry-After: {retry}");
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["type"], "urn:smsgate:problem:too_many_failures", "{v}");
    assert_eq!(v["status"], 429);
    // Locked out: a right token from that address is refused too (else the answer would
    // still tell a right guess from a wrong one)...
    assert_eq!(send(&stranger, TOKEN).await.unwrap().status().as_u16(), 429);
    // ...and so is a wrong admin login.
    let resp = stranger
        .post(format!("{}/login", r.base))
        .form(&[("token", TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 429);
    assert!(resp.headers().contains_key("retry-after"));
    // The billing system, on another address, is served as ever.
    for _ in 0..3 {
        let resp = send(&billing, TOKEN).await.unwrap();
        assert_eq!(resp.status().as_u16(), 201);
    }
    // Health checks carry no credentials: not affected.
    let resp = stranger
        .get(format!("{}/healthz", r.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    r.stop().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_lock_out_their_address_only() {
    let dir = tempfile::tempdir().unwrap();
    let sim = sim().await;
    let r = start(dir.path().join("store"), &sim, |_| {}).await;
    let stranger = client_from(LAN_STRANGER);
    let admin = client_from(BILLING);
    let login = |c: &reqwest::Client, token: &str| {
        c.post(format!("{}/login", r.base))
            .form(&[("token", token)])
            .send()
    };
    for i in 0..10 {
        let resp = login(&stranger, &format!("guess-{i:020}")).await.unwrap();
        assert_eq!(resp.status().as_u16(), 401, "guess {i}");
    }
    let resp = login(&stranger, TOKEN).await.unwrap();
    assert_eq!(resp.status().as_u16(), 429);
    assert!(resp.headers().contains_key("retry-after"));
    assert!(!resp.headers().contains_key("set-cookie"), "no session");
    let page = resp.text().await.unwrap();
    assert!(page.contains("Too many wrong tokens"), "{page}");
    // The admin, elsewhere, logs in and uses the page.
    let resp = login(&admin, TOKEN).await.unwrap();
    assert_eq!(resp.status().as_u16(), 303);
    let cookie = resp.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let resp = admin
        .get(format!("{}/v1/dashboard", r.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    r.stop().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_ends_at_its_max_age_however_much_it_is_used() {
    let dir = tempfile::tempdir().unwrap();
    let sim = sim().await;
    let max_age = Duration::from_millis(1500);
    let r = start(dir.path().join("store"), &sim, |g| {
        g.api.dashboard.session_ttl = Duration::from_secs(3600);
        g.api.dashboard.session_max_age = max_age;
    })
    .await;
    let http = client_from(LAN_STRANGER);
    let resp = http
        .post(format!("{}/login", r.base))
        .form(&[("token", TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 303);
    let logged_in = Instant::now();
    let cookie = resp.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let dashboard = || {
        http.get(format!("{}/v1/dashboard", r.base))
            .header("cookie", &cookie)
            .send()
    };
    // Used all along, well within the idle timeout...
    let mut uses = 0;
    while logged_in.elapsed() < max_age - Duration::from_millis(400) {
        assert_eq!(dashboard().await.unwrap().status().as_u16(), 200);
        uses += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(uses >= 5, "{uses}");
    // ...it still ends at its max age.
    tokio::time::sleep(max_age.saturating_sub(logged_in.elapsed()) + Duration::from_millis(200))
        .await;
    assert_eq!(dashboard().await.unwrap().status().as_u16(), 401);
    r.stop().await;
    sim.shutdown().await;
}

/// `smsgate ARGS` with `env`: exit code and standard error, at most 20 s.
async fn smsgate(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_smsgate"));
    c.args(args)
        .env_remove("SMSGATE_API_KEY_BILLING")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in env {
        c.env(k, v);
    }
    let out = tokio::time::timeout(Duration::from_secs(20), c.output())
        .await
        .unwrap_or_else(|_| panic!("smsgate {args:?} did not finish in 20 s"))
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_placeholder_token_is_refused_by_config_check_and_serve() {
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/config/smsgate.toml");
    let (code, err) = smsgate(&["config", "check", shipped], &[]).await;
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("[[api_keys]] #1 `token`") && err.contains("placeholder"),
        "{err}"
    );
    // With a token of its own (here from the environment) the same file is fine.
    let own = [("SMSGATE_API_KEY_BILLING", "a-token-of-our-own-0123456789")];
    let (code, err) = smsgate(&["config", "check", shipped], &own).await;
    assert_eq!(code, 0, "{err}");

    // `serve` refuses to start with it, before listening or opening the store.
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = dir.path().join("smsgate.toml");
    let store = dir.path().join("store");
    std::fs::write(
        &config,
        format!(
            "[http]\nlisten = \"127.0.0.1:{port}\"\n[storage]\npath = \"{}\"\n\
             [[api_keys]]\nname = \"billing\"\ntoken = \"change-me-to-a-long-random-token\"\n",
            store.display()
        ),
    )
    .unwrap();
    let (code, err) = smsgate(&["serve", "--config", config.to_str().unwrap()], &[]).await;
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("[[api_keys]] #1 `token` (line 7)") && err.contains("placeholder"),
        "{err}"
    );
    assert!(!store.exists(), "the store was not opened");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "nothing listens"
    );
}

/// A body that stops half-way fails its request at `[http] body_timeout`, instead of holding a
/// handler (and its connection) for ever; nothing is stored. Without the deadline the handler
/// waits for the rest of the body as long as the client keeps the connection: no answer in
/// 10 s, and the test fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_stops_half_way_fails_at_the_body_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let sim = sim().await;
    let body_timeout = Duration::from_secs(1);
    let r = start(dir.path().join("store"), &sim, |g| {
        g.api.connections.body_timeout = body_timeout;
    })
    .await;
    let addr = r.base.trim_start_matches("http://").to_string();
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let t = Instant::now();
    s.write_all(
        format!(
            "POST /v1/messages HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer {TOKEN}\r\n\
             Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"to\": \"+1202"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    answer.extend_from_slice(&buf[..n]);
                    if answer.windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
            }
        }
    })
    .await;
    assert!(read.is_ok(), "no answer in 10 s");
    let took = t.elapsed();
    let head = String::from_utf8_lossy(&answer).to_string();
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    assert!(
        took >= body_timeout - Duration::from_millis(50) && took < Duration::from_secs(4),
        "answered after {took:?}"
    );
    let (code, v) = r.get("/v1/messages").await;
    assert_eq!(code, 200);
    assert_eq!(v["messages"].as_array().map(Vec::len), Some(0), "{v}");
    r.stop().await;
    sim.shutdown().await;
}
