//! The admin page in a real browser: Debian's Chromium, headless, driven over the DevTools
//! protocol (a WebSocket on 127.0.0.1), against the running daemon with the simulated modem.
//! It logs in through the form, reads what the page shows on a phone-sized screen, sends a
//! failed message again with the page's own buttons, searches, and saves screenshots to
//! `target/ci-artifacts/` (or `$SMSGATE_ARTIFACTS`).
//!
//! Without Chromium the test says so and passes, unless `SMSGATE_REQUIRE_BROWSER=1` (set by
//! `.ci/run`, which installs it).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as Ws;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::TOKEN;
use crate::dashboard::{CUSTOMER, INVOICE, OPTED_OUT, populated};

/// How long any one wait in the browser may take.
const WAIT: Duration = Duration::from_secs(20);

pub(crate) fn chromium() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("SMSGATE_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ]
    .iter()
    .flat_map(|name| {
        std::env::var_os("PATH")
            .map(|paths| {
                std::env::split_paths(&paths)
                    .map(|d| d.join(name))
                    .filter(|p| p.is_file())
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    })
    // A browser that says what it is, not a stub that asks for a snap.
    .find(|p| crate::version_of(p, "--version").is_some_and(|v| v.contains("Chrom")))
}

pub(crate) fn artifacts() -> PathBuf {
    std::env::var_os("SMSGATE_ARTIFACTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/ci-artifacts"))
}

/// A headless Chromium and its one page, spoken to over the DevTools protocol.
pub(crate) struct Browser {
    child: tokio::process::Child,
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub(crate) async fn launch(binary: &Path) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let child = tokio::process::Command::new(binary)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromium starts");
        // Chromium writes the port it chose to DevToolsActivePort in the profile.
        let file = profile.path().join("DevToolsActivePort");
        let deadline = tokio::time::Instant::now() + WAIT;
        let port = loop {
            if let Ok(s) = std::fs::read_to_string(&file)
                && let Some(p) = s.lines().next().and_then(|l| l.trim().parse::<u16>().ok())
            {
                break p;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "chromium never opened its port"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let targets: Value = smsgate::tls::client_builder()
            .build()
            .unwrap()
            .get(format!("http://127.0.0.1:{port}/json/list"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let url = targets
            .as_array()
            .and_then(|t| t.iter().find(|t| t["type"] == "page"))
            .and_then(|t| t["webSocketDebuggerUrl"].as_str())
            .expect("a page target")
            .to_string();
        let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let mut b = Browser {
            child,
            ws,
            next_id: 0,
            _profile: profile,
        };
        b.call("Page.enable", json!({})).await;
        b.call("Runtime.enable", json!({})).await;
        b
    }

    /// One DevTools command; its result (events in between are skipped).
    pub(crate) async fn call(&mut self, method: &str, params: Value) -> Value {
        match self.try_call(method, params).await {
            Ok(v) => v,
            Err(e) => panic!("{method}: {e}"),
        }
    }

    /// One DevTools command; its result, or the error the browser answered.
    async fn try_call(&mut self, method: &str, params: Value) -> Result<Value, Value> {
        self.next_id += 1;
        let id = self.next_id;
        let msg = json!({"id": id, "method": method, "params": params}).to_string();
        self.ws.send(Ws::text(msg)).await.unwrap();
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let next = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("{method}: no answer"));
            let Some(Ok(Ws::Text(t))) = next else {
                continue;
            };
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["id"] == id {
                return match v.get("error") {
                    Some(_) => Err(v),
                    None => Ok(v["result"].clone()),
                };
            }
        }
    }

    /// Evaluates `expr` in the page (promises awaited), by value.
    pub(crate) async fn eval(&mut self, expr: &str) -> Value {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expr, "returnByValue": true, "awaitPromise": true}),
            )
            .await;
        assert!(r.get("exceptionDetails").is_none(), "{expr}: {r}");
        r["result"]["value"].clone()
    }

    /// Waits until `expr` is truthy in the page; returns its value.
    pub(crate) async fn wait(&mut self, what: &str, expr: &str) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let r = self
                .try_call(
                    "Runtime.evaluate",
                    json!({"expression": expr, "returnByValue": true, "awaitPromise": true}),
                )
                .await;
            // A page that navigates while it is asked (a form posted, a redirect) answers
            // "Inspected target navigated or closed": ask the new page.
            let r = match r {
                Ok(r) => r,
                Err(e) if e.to_string().contains("navigated or closed") => Value::Null,
                Err(e) => panic!("{what}: {e}"),
            };
            let v = r["result"]["value"].clone();
            let truthy =
                !matches!(&v, Value::Null | Value::Bool(false)) && v != json!(0) && v != json!("");
            if truthy {
                return v;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{what}: still {v} after {WAIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub(crate) async fn viewport(&mut self, width: u32, height: u32, mobile: bool) {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": if mobile { 2 } else { 1 },
                   "mobile": mobile}),
        )
        .await;
    }

    pub(crate) async fn goto(&mut self, url: &str) {
        self.call("Page.navigate", json!({"url": url})).await;
    }

    /// A PNG of the whole page.
    pub(crate) async fn screenshot(&mut self, path: &Path) {
        let r = self
            .call(
                "Page.captureScreenshot",
                json!({"format": "png", "captureBeyondViewport": true}),
            )
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().unwrap())
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, png).unwrap();
        println!("screenshot: {}", path.display());
    }

    pub(crate) async fn close(mut self) {
        let _ = self.call("Browser.close", json!({})).await;
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_in_headless_chromium_on_a_phone() {
    let Some(binary) = chromium() else {
        assert!(
            std::env::var("SMSGATE_REQUIRE_BROWSER").is_err(),
            "SMSGATE_REQUIRE_BROWSER is set but no Chromium was found"
        );
        crate::skipped(
            "browser",
            "no Chromium that runs (apt-get install chromium); the admin page was not tried in a browser",
        );
        return;
    };
    let f = populated().await;
    let base = f.r.base.clone();
    let mut b = Browser::launch(&binary).await;
    b.viewport(390, 844, true).await;

    // Anonymous: the login form. A wrong token keeps it, with a message.
    b.goto(&format!("{base}/")).await;
    b.wait(
        "the login form",
        "location.pathname === '/login' && !!document.getElementById('token')",
    )
    .await;
    b.eval("document.getElementById('token').value = 'wrong-token-wrong-token'; document.getElementById('login').submit(); true")
        .await;
    b.wait("the error", "!!document.getElementById('login-error')")
        .await;
    b.eval(&format!(
        "document.getElementById('token').value = '{TOKEN}'; document.getElementById('login').submit(); true"
    ))
    .await;
    b.wait("the dashboard", "document.body.dataset.ready === '1'")
        .await;
    assert_eq!(b.eval("location.pathname").await, "/");
    // The session cookie is out of the page's reach (HttpOnly).
    assert_eq!(b.eval("document.cookie").await, "");

    // What it shows.
    assert_eq!(
        b.eval("document.querySelector('[data-modem=\"sim0\"] [data-state]').dataset.state")
            .await,
        "up"
    );
    assert_eq!(
        b.eval("document.getElementById('overall').textContent")
            .await,
        "modem up"
    );
    assert_eq!(
        b.eval("document.querySelectorAll('[data-modem=\"sim0\"] .bars i.on').length > 0")
            .await,
        true
    );
    let delivered = b
        .eval("document.querySelector('#queue [data-status=\"delivered\"] b').textContent")
        .await;
    assert_eq!(delivered, "1");
    assert_eq!(
        b.eval("document.querySelectorAll('#chart rect.sent').length")
            .await,
        1,
        "one hour with a sent message"
    );
    let reply = b
        .eval(&format!(
            "document.querySelector('#recent li[data-id=\"{}\"] [data-reply=\"1\"]')?.textContent",
            f.delivered
        ))
        .await;
    assert!(reply.as_str().unwrap_or("").contains("“1”"), "{reply}");
    assert_eq!(
        b.eval(&format!(
            "document.querySelector('#attention li[data-id=\"{}\"]')?.dataset.status",
            f.failed
        ))
        .await,
        "failed"
    );
    assert_eq!(
        b.eval("document.querySelectorAll('#webhooks li[data-webhook]').length > 0")
            .await,
        true
    );
    assert_eq!(
        b.eval(&format!(
            "!!document.querySelector('#optouts [data-optout=\"{OPTED_OUT}\"]')"
        ))
        .await,
        true
    );
    // Readable on a phone: nothing wider than the screen, text not shrunk.
    assert_eq!(
        b.eval("document.documentElement.scrollWidth <= window.innerWidth")
            .await,
        true,
        "the page scrolls sideways on a 390 px screen"
    );
    assert_eq!(b.eval("innerWidth").await, 390);
    let font = b
        .eval("parseFloat(getComputedStyle(document.querySelector('.msg-text')).fontSize)")
        .await;
    assert!(font.as_f64().unwrap() >= 14.0, "{font}");
    b.screenshot(&artifacts().join("dashboard-phone.png")).await;

    // A change without the CSRF token is refused, even from the page's own origin.
    let code = b
        .eval(&format!(
            "fetch('/v1/messages/{}/cancel', {{method: 'POST', credentials: 'same-origin'}}).then(r => r.status)",
            f.failed
        ))
        .await;
    assert_eq!(code, 403);

    // Send the failed message again with the page's buttons: ask, confirm.
    b.eval(&format!(
        "document.querySelector('#attention li[data-id=\"{}\"] button[data-action=\"requeue\"]').click(); true",
        f.failed
    ))
    .await;
    b.wait(
        "the question",
        "!!document.querySelector('#attention [data-confirm=\"requeue\"]')",
    )
    .await;
    assert_eq!(
        f.r.status_of(&f.failed).await,
        "failed",
        "nothing before the confirmation"
    );
    b.eval("document.querySelector('#attention [data-confirm=\"requeue\"]').click(); true")
        .await;
    let status = f.r.wait_status(&f.failed, "delivered", WAIT).await;
    assert_eq!(status, "delivered", "sent again and delivered");
    b.wait(
        "the list without it",
        &format!(
            "!document.querySelector('#attention li[data-id=\"{}\"]')",
            f.failed
        ),
    )
    .await;

    // Search by invoice, then by number.
    b.eval(&format!(
        "document.getElementById('q').value = '{INVOICE}'; document.getElementById('search').requestSubmit(); true"
    ))
    .await;
    let summary = b
        .wait(
            "invoice results",
            "document.getElementById('found-summary')?.textContent",
        )
        .await;
    assert!(summary.as_str().unwrap().contains(INVOICE), "{summary}");
    assert_eq!(
        b.eval(&format!(
            "!!document.querySelector('#found li[data-id=\"{}\"]')",
            f.plan_message
        ))
        .await,
        true
    );
    b.eval(&format!(
        "document.getElementById('q').value = '{CUSTOMER}'; document.getElementById('search').requestSubmit(); true"
    ))
    .await;
    b.wait(
        "number results",
        &format!("document.getElementById('found-summary')?.textContent.includes('{CUSTOMER}')"),
    )
    .await;

    // The page refreshes itself: a message sent meanwhile shows up without a reload.
    let (code, m) =
        f.r.post(
            "/v1/messages",
            &json!({"to": CUSTOMER, "text": "Arrives while the page is open."}),
        )
        .await;
    assert_eq!(code, 201, "{m}");
    let id = m["id"].as_str().unwrap();
    b.wait(
        "the new message",
        &format!("!!document.querySelector('#recent li[data-id=\"{id}\"]')"),
    )
    .await;

    // A desktop-sized screenshot too.
    b.viewport(1280, 900, false).await;
    b.eval("window.scrollTo(0, 0); true").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    b.screenshot(&artifacts().join("dashboard-desktop.png"))
        .await;

    // Log out: back to the form, and the API no longer answers the browser.
    b.eval("document.getElementById('logout').click(); true")
        .await;
    b.wait("the login form again", "location.pathname === '/login'")
        .await;
    assert_eq!(
        b.eval("fetch('/v1/dashboard', {credentials: 'same-origin'}).then(r => r.status)")
            .await,
        401
    );
    b.close().await;
    f.r.stop().await;
    f.sim.shutdown().await;
}

/// Logs in through the form with the API token and waits for the dashboard's first render.
async fn log_in(b: &mut Browser, base: &str) {
    b.goto(&format!("{base}/login")).await;
    b.wait("the login form", "!!document.getElementById('token')")
        .await;
    b.eval(&format!(
        "document.getElementById('token').value = '{TOKEN}'; document.getElementById('login').submit(); true"
    ))
    .await;
    b.wait("the dashboard", "document.body.dataset.ready === '1'")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn why_it_is_not_sending_in_headless_chromium() {
    let Some(binary) = chromium() else {
        assert!(
            std::env::var("SMSGATE_REQUIRE_BROWSER").is_err(),
            "SMSGATE_REQUIRE_BROWSER is set but no Chromium was found"
        );
        crate::skipped(
            "browser why",
            "no Chromium that runs (apt-get install chromium); the admin page was not tried in a browser",
        );
        return;
    };
    let f = crate::why::resting_gateway().await;
    let mut b = Browser::launch(&binary).await;
    b.viewport(390, 844, true).await;
    log_in(&mut b, &f.r.base).await;

    // The header and the modem: resting, until when; not "up".
    let overall = b
        .wait(
            "the header says resting",
            "document.getElementById('overall').textContent.startsWith('modem resting until') && document.getElementById('overall').textContent",
        )
        .await;
    assert!(!overall.as_str().unwrap().contains("modem up"), "{overall}");
    assert_eq!(
        b.eval("document.querySelector('[data-modem=\"sim0\"] [data-sending]').dataset.sending")
            .await,
        "resting"
    );
    // Its stale error is gone once a probe answered.
    b.wait(
        "no stale last error",
        "!document.querySelector('[data-modem=\"sim0\"] [data-last-error]')",
    )
    .await;
    let note = b
        .eval("document.getElementById('queue-note').textContent")
        .await;
    assert!(
        note.as_str().unwrap().contains("no modem sends now"),
        "{note}"
    );

    // The held messages: why, in words, and when they are looked at again, with a zone.
    let held = b
        .eval(&format!(
            "document.querySelector('#recent li[data-id=\"{}\"] [data-hold]')?.dataset.hold + ' ' + document.querySelector('#recent li[data-id=\"{}\"] [data-hold]')?.textContent",
            f.stuck, f.stuck
        ))
        .await;
    let held = held.as_str().unwrap();
    assert!(
        held.starts_with("modem_resting Held: due, but every modem is resting"),
        "{held}"
    );
    assert!(held.contains("Looked at again"), "{held}");
    let goes = b
        .eval(&format!(
            "document.querySelector('#recent li[data-id=\"{}\"] [data-time]').textContent",
            f.windowed
        ))
        .await;
    let goes = goes.as_str().unwrap();
    assert!(goes.starts_with("goes "), "{goes}");
    assert!(
        goes.contains("UTC")
            || goes.contains("GMT")
            || goes.chars().filter(char::is_ascii_uppercase).count() >= 3,
        "a time with its zone: {goes}"
    );

    // The failing webhook, with its error and next attempt; the text to read.
    let hook = b
        .eval("document.querySelector('#webhooks li[data-webhook-state=\"pending\"]')?.textContent")
        .await;
    let hook = hook.as_str().unwrap_or("");
    assert!(
        hook.contains("failing, retried")
            && hook.contains("HTTP 500")
            && hook.contains("Next attempt"),
        "{hook}"
    );
    let unmatched = b
        .eval("document.querySelector('#unmatched [data-unmatched]')?.textContent")
        .await;
    assert!(
        unmatched.as_str().unwrap_or("").contains("Who is this?"),
        "{unmatched}"
    );
    assert_eq!(
        b.eval("document.documentElement.scrollWidth <= window.innerWidth")
            .await,
        true,
        "the page scrolls sideways on a 390 px screen"
    );
    b.screenshot(&artifacts().join("dashboard-resting.png"))
        .await;
    b.close().await;
    f.r.stop().await;
    f.sim.shutdown().await;
}
