//! `smsgate demo`, the real binary: its banner, the simulated phone (`/v1/demo/phone`, and its
//! panel on the admin page driven in headless Chromium), the simulator's commands on its
//! standard input, the Twilio-compatible door it opens; and none of the phone in `serve`.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};

use crate::browser::{Browser, artifacts, chromium};

const DEMO_TOKEN: &str = "demo-test-token-0123456789";
/// The customer the banner's first example asks.
const CUSTOMER: &str = "+12025550123";
/// How long any one wait may take.
const WAIT: Duration = Duration::from_secs(20);

/// A running `smsgate demo` and what it printed.
struct Demo {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
    banner: String,
    base: String,
    log: PathBuf,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Demo {
    async fn start() -> Demo {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("demo.log");
        let err = std::fs::File::create(&log).unwrap();
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_smsgate"))
            .args([
                "demo",
                "--listen",
                "127.0.0.1:0",
                "--latency",
                "0s",
                "--data",
            ])
            .arg(dir.path().join("data"))
            .env("SMSGATE_DEMO_TOKEN", DEMO_TOKEN)
            .env_remove("SMSGATE_WEBHOOK_SECRET")
            .env("RUST_LOG", "info")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(err)
            .kill_on_drop(true)
            .spawn()
            .expect("smsgate demo starts");
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut banner = String::new();
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let line = tokio::time::timeout_at(deadline, stdout.next_line())
                .await
                .unwrap_or_else(|_| panic!("no whole banner in time: {banner}"))
                .unwrap()
                .unwrap_or_else(|| {
                    panic!(
                        "the demo stopped: {banner}\n{}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    )
                });
            banner.push_str(&line);
            banner.push('\n');
            if line == "Ctrl-C stops it." {
                break;
            }
        }
        let api = banner
            .lines()
            .find_map(|l| l.strip_prefix("API: "))
            .unwrap_or_else(|| panic!("no API line: {banner}"));
        let base = api.strip_suffix("/v1").unwrap().to_string();
        let demo = Demo {
            child,
            stdin,
            stdout,
            banner,
            base,
            log,
            http: smsgate::tls::client_builder().build().unwrap(),
            _dir: dir,
        };
        // The simulated modem is up.
        let deadline = tokio::time::Instant::now() + WAIT;
        while demo.get("/v1/modems").await.1["modems"][0]["state"] != "up" {
            assert!(tokio::time::Instant::now() < deadline, "modem never up");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        demo
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(DEMO_TOKEN)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(DEMO_TOKEN)
            .json(body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    /// The banner's first `curl` example: its JSON body, as printed.
    fn first_example(&self) -> Value {
        let at = self.banner.find("curl -s -X POST").expect("a curl example");
        let rest = &self.banner[at..];
        assert!(
            rest.starts_with(&format!("curl -s -X POST {}/v1/messages", self.base)),
            "{rest}"
        );
        let body = rest
            .split("-d '")
            .nth(1)
            .and_then(|b| b.split("'\n").next())
            .unwrap();
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
    }

    /// Posts the banner's first example, waits until the network delivered it; its id.
    async fn ask(&self) -> String {
        let body = self.first_example();
        assert_eq!(body["to"], CUSTOMER);
        assert_eq!(body["reply_options"]["1"], "call_me");
        let (code, m) = self.post("/v1/messages", &body).await;
        assert_eq!(code, 201, "{m}");
        let id = m["id"].as_str().unwrap().to_string();
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let (_, m) = self.get(&format!("/v1/messages/{id}")).await;
            if m["status"] == "sent" || m["status"] == "delivered" {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "never sent: {m}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        id
    }

    /// The message's answer, once it has one.
    async fn wait_reply(&self, id: &str) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let (_, m) = self.get(&format!("/v1/messages/{id}")).await;
            if let Some(r) = m["replies"].as_array().and_then(|r| r.first()) {
                return r.clone();
            }
            assert!(tokio::time::Instant::now() < deadline, "no reply: {m}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGTERM; it stops in time with success even though its standard input is still open.
    async fn stop(mut self) -> String {
        crate::crash::signal(self.child.id().unwrap(), nix::sys::signal::Signal::SIGTERM);
        let status = tokio::time::timeout(Duration::from_secs(15), self.child.wait())
            .await
            .expect("the demo stops within 15 s of SIGTERM, its standard input open")
            .unwrap();
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        assert!(status.success(), "{status}: {log}");
        drop(self.stdin);
        log
    }
}

/// The phone's endpoints answer in the demo (with the banner's promises kept: a question first,
/// the exports, the Twilio door, stdin commands) and do not exist in `serve`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_phone_answers_in_the_demo_only() {
    let mut d = Demo::start().await;
    let b = d.banner.clone();
    assert!(
        b.contains(&format!(
            "export SMSGATE_URL={} SMSGATE_TOKEN={DEMO_TOKEN}",
            d.base
        )),
        "{b}"
    );
    assert!(b.contains(&format!("inbound {CUSTOMER} 1")), "{b}");
    assert!(b.contains("Simulated phone"), "{b}");

    let id = d.ask().await;
    let (code, v) = d.get("/v1/demo/phone").await;
    assert_eq!(code, 200, "{v}");
    let phone = v["numbers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["number"] == CUSTOMER)
        .unwrap_or_else(|| panic!("{v}"))
        .clone();
    let question = d.first_example()["text"].clone();
    assert_eq!(phone["received"][0]["text"], question);

    // Refused answers: a bad number, an empty text, an unknown field.
    let (code, v) = d
        .post(
            "/v1/demo/phone/reply",
            &json!({"from": "not a number", "text": "1"}),
        )
        .await;
    assert_eq!(code, 422, "{v}");
    assert_eq!(v["errors"][0]["field"], "from", "{v}");
    let (code, _) = d
        .post(
            "/v1/demo/phone/reply",
            &json!({"from": CUSTOMER, "text": " "}),
        )
        .await;
    assert_eq!(code, 422);
    let (code, _) = d
        .post(
            "/v1/demo/phone/reply",
            &json!({"from": CUSTOMER, "text": "1", "to": "x"}),
        )
        .await;
    assert_eq!(code, 422);
    // Without a token: 401, like the rest of the API.
    let r = d
        .http
        .get(format!("{}/v1/demo/phone", d.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);

    // The answer reaches the gateway and is matched to the question.
    let (code, v) = d
        .post(
            "/v1/demo/phone/reply",
            &json!({"from": CUSTOMER, "text": "1"}),
        )
        .await;
    assert_eq!(code, 202, "{v}");
    assert_eq!(v["from"], CUSTOMER);
    let reply = d.wait_reply(&id).await;
    assert_eq!(reply["choice"], "1", "{reply}");
    assert_eq!(reply["action"], "call_me", "{reply}");
    let (_, v) = d.get("/v1/demo/phone").await;
    let phone = v["numbers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["number"] == CUSTOMER)
        .unwrap()
        .clone();
    assert_eq!(phone["replied"][0]["text"], "1", "{phone}");

    // The simulator's commands on standard input, acknowledged on standard output.
    d.stdin
        .write_all(b"inbound +12025550199 hello from stdin\n")
        .await
        .unwrap();
    d.stdin.flush().await.unwrap();
    let ack = tokio::time::timeout(WAIT, d.stdout.next_line())
        .await
        .expect("an acknowledgement in time")
        .unwrap()
        .unwrap_or_default();
    assert_eq!(ack, "ok: inbound from +12025550199 injected");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_, v) = d.get("/v1/inbound").await;
        if v.to_string().contains("hello from stdin") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "not received: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The Twilio-compatible door is open with the printed credentials.
    let line = b
        .lines()
        .find(|l| l.contains("account SID"))
        .unwrap_or_else(|| panic!("{b}"));
    let sid = line
        .split("account SID ")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .unwrap();
    let token = line.split("auth token ").nth(1).unwrap().trim();
    let r = d
        .http
        .get(format!(
            "{}/2010-04-01/Accounts/{sid}/Messages.json",
            d.base
        ))
        .basic_auth(sid, Some(token))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{sid} {token}");

    // The admin page has the panel.
    let page = d
        .http
        .get(format!("{}/", d.base))
        .bearer_auth(DEMO_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("id=\"demo-phone\""));
    let log = d.stop().await;
    // Loopback is the demo's design, not news.
    assert!(!log.contains("allow_loopback"), "{log}");
    assert!(log.contains("listening"), "the log is the demo's: {log}");

    // `serve` (a gateway without the simulated phone): no such routes, no panel.
    let dir = tempfile::tempdir().unwrap();
    let sim = crate::sim().await;
    let r = crate::start(dir.path().join("store"), &sim, |_| {}).await;
    let (code, v) = r.get("/v1/demo/phone").await;
    assert_eq!(code, 404, "{v}");
    let (code, _) = r
        .post(
            "/v1/demo/phone/reply",
            &json!({"from": CUSTOMER, "text": "1"}),
        )
        .await;
    assert_eq!(code, 404);
    let page = r
        .http
        .get(format!("{}/", r.base))
        .bearer_auth(crate::TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("id=\"recent\""), "the admin page");
    assert!(!page.contains("demo-phone"), "no panel outside the demo");
    r.stop().await;
    sim.shutdown().await;
}

/// The customer's answer typed in the admin page's panel, in headless Chromium: the question
/// shows on the simulated phone, "1" is sent from there, and the answer appears under the
/// message on the page and in the API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_phone_answers_from_the_admin_page_in_chromium() {
    let Some(binary) = chromium() else {
        assert!(
            std::env::var("SMSGATE_REQUIRE_BROWSER").is_err(),
            "SMSGATE_REQUIRE_BROWSER is set but no Chromium was found"
        );
        crate::skipped(
            "browser",
            "no Chromium that runs (apt-get install chromium); the demo's phone was not tried in a browser",
        );
        return;
    };
    let d = Demo::start().await;
    let id = d.ask().await;
    let question = d.first_example()["text"].as_str().unwrap().to_string();
    let mut b = Browser::launch(&binary).await;
    b.viewport(1280, 900, false).await;
    b.goto(&format!("{}/", d.base)).await;
    b.wait(
        "the login form",
        "location.pathname === '/login' && !!document.getElementById('token')",
    )
    .await;
    b.eval(&format!(
        "document.getElementById('token').value = '{DEMO_TOKEN}'; document.getElementById('login').submit(); true"
    ))
    .await;
    b.wait("the dashboard", "document.body.dataset.ready === '1'")
        .await;
    let phone = format!("#demo-phone li[data-number=\"{CUSTOMER}\"]");
    let shown = b
        .wait(
            "the question on the simulated phone",
            &format!("document.querySelector('{phone} .bubble[data-dir=\"in\"]')?.firstChild?.textContent"),
        )
        .await;
    assert_eq!(shown, question.as_str());
    b.eval(&format!(
        "document.querySelector('{phone} input[name=\"text\"]').value = '1'; \
         document.querySelector('{phone} button[data-action=\"reply\"]').click(); true"
    ))
    .await;
    b.wait(
        "the answer sent",
        &format!("document.querySelector('{phone} .phone-status')?.dataset.sent === '1'"),
    )
    .await;
    b.wait(
        "the answer on the phone",
        &format!("!!document.querySelector('{phone} .bubble[data-dir=\"out\"]')"),
    )
    .await;
    // Under the message, on the page (it refreshes itself) and in the API.
    let under = b
        .wait(
            "the answer under the message",
            &format!(
                "document.querySelector('#recent li[data-id=\"{id}\"] [data-reply=\"1\"]')?.textContent"
            ),
        )
        .await;
    assert!(under.as_str().unwrap().contains("“1”"), "{under}");
    assert!(under.as_str().unwrap().contains("call_me"), "{under}");
    let reply = d.wait_reply(&id).await;
    assert_eq!(reply["choice"], "1", "{reply}");
    assert_eq!(
        b.eval("document.documentElement.scrollWidth <= window.innerWidth")
            .await,
        true,
        "the page scrolls sideways"
    );
    // The panel is at the top, under the search.
    b.eval("window.scrollTo(0, 0); true").await;
    b.screenshot(&artifacts().join("demo-phone.png")).await;
    b.viewport(390, 844, true).await;
    b.eval("window.scrollTo(0, 0); true").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        b.eval("document.documentElement.scrollWidth <= window.innerWidth")
            .await,
        true,
        "the page scrolls sideways on a 390 px screen"
    );
    b.screenshot(&artifacts().join("demo-phone-small.png"))
        .await;
    b.close().await;
    d.stop().await;
}
