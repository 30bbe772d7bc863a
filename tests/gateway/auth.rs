//! Authentication and what must never leak: every route of the OpenAPI document but the
//! health checks refuses a missing, wrong or misplaced token; a wrong token that shares all but
//! one character with the real one takes no longer to refuse than a random one; callback URLs
//! that point at the gateway itself are refused; and the real binary, at trace level, never
//! writes the API token, the webhook secret, the SIM PIN or a callback URL's credentials to
//! its log, and at info level no full phone number (they are masked).

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use smsgate::sim::{SimConfig, Simulator};

use crate::crash::free_port;
use crate::replies::Receiver;
use crate::{TOKEN, sim, start};

/// A request to `path` by `method` with whatever `auth` adds; its status.
async fn status(
    http: &reqwest::Client,
    method: &str,
    url: &str,
    auth: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
) -> u16 {
    let m = reqwest::Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap();
    let req = http
        .request(m, url)
        .header("content-type", "application/json")
        .body("{}");
    auth(req).send().await.unwrap().status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_but_health_needs_the_token_in_its_header() {
    let dir = tempfile::tempdir().unwrap();
    let sim = sim().await;
    // Hundreds of wrong tokens from one address: no 429 here (abuse.rs tests the limit). With
    // the demo's simulated phone, so that its routes are there to be checked too.
    let phone = smsgate::api::demo::DemoPhone::new(sim.clone());
    let r = start(dir.path().join("store"), &sim, |g| {
        g.api.auth_failures.max = 0;
        g.phone = Some(std::sync::Arc::new(phone));
    })
    .await;
    let http = smsgate::tls::client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // The document itself is behind the token.
    assert_eq!(
        status(&http, "get", &format!("{}/openapi.json", r.base), |b| b).await,
        401
    );
    let (code, doc) = r.get("/openapi.json").await;
    assert_eq!(code, 200);
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let concrete = path
            .replace("{id}", "01ARZ3NDEKTSV4RRFFQ69G5FAV")
            .replace("{name}", "sim0")
            .replace("{number}", "%2B12025550123");
        let url = format!("{}{concrete}", r.base);
        for method in item.as_object().unwrap().keys() {
            let open = matches!(path.as_str(), "/healthz" | "/readyz");
            let expect = |code: u16, how: &str| {
                if open {
                    assert_ne!(code, 401, "{method} {path} is open ({how})");
                } else {
                    assert_eq!(code, 401, "{method} {path} {how}");
                }
            };
            expect(status(&http, method, &url, |b| b).await, "without a token");
            expect(
                status(&http, method, &url, |b| {
                    b.bearer_auth("not-the-token-0123456789")
                })
                .await,
                "with a wrong token",
            );
            expect(
                status(&http, method, &url, |b| b.header("authorization", TOKEN)).await,
                "with the token but no Bearer",
            );
            expect(
                status(&http, method, &url, |b| b.basic_auth("test", Some(TOKEN))).await,
                "with Basic",
            );
            // In the query string (it would land in proxies' and browsers' logs): refused.
            for key in ["token", "access_token", "api_key"] {
                let sep = if url.contains('?') { '&' } else { '?' };
                expect(
                    status(&http, method, &format!("{url}{sep}{key}={TOKEN}"), |b| b).await,
                    "with the token in the query string",
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 35, "only {checked} routes in the document");
    // The admin page sends strangers to its login form, and its API to 401.
    assert_eq!(
        status(&http, "get", &format!("{}/", r.base), |b| b).await,
        303
    );
    assert_eq!(
        status(&http, "get", &format!("{}/metrics", r.base), |b| b).await,
        401
    );
    r.stop().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nearly_right_token_is_refused_as_fast_as_a_random_one() {
    let dir = tempfile::tempdir().unwrap();
    let sim = sim().await;
    // Every failure is still counted (the limit is only out of reach).
    let r = start(dir.path().join("store"), &sim, |g| {
        g.api.auth_failures.max = u32::MAX;
    })
    .await;
    let http = smsgate::tls::client_builder().build().unwrap();
    let url = format!("{}/v1/stats", r.base);
    // All but the last character right, against nothing right; same length.
    let mut near = TOKEN.to_string();
    near.pop();
    near.push('X');
    let far: String = "Z".repeat(TOKEN.len());
    let mut t_near = Vec::new();
    let mut t_far = Vec::new();
    // Warm up, then interleave so drift hits both alike.
    for _ in 0..50 {
        status(&http, "get", &url, |b| b.bearer_auth(&far)).await;
    }
    for _ in 0..400 {
        for (token, times) in [(&near, &mut t_near), (&far, &mut t_far)] {
            let t = Instant::now();
            assert_eq!(
                status(&http, "get", &url, |b| b.bearer_auth(token)).await,
                401
            );
            times.push(t.elapsed());
        }
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (a, b) = (median(&mut t_near), median(&mut t_far));
    let diff = a.abs_diff(b);
    // Tokens are compared by their SHA-256, so a prefix match cannot show; what is left is
    // loopback noise, far below a millisecond.
    assert!(
        diff < Duration::from_micros(300).max(a.max(b) / 4),
        "near {a:?} vs far {b:?}"
    );
    r.stop().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callback_urls_at_the_gateway_itself_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let sim = sim().await;
    let r = start(dir.path().join("store"), &sim, |_| {}).await;
    let port = r.base.rsplit(':').next().unwrap().to_string();
    for url in [
        format!("{}/v1/messages", r.base),
        format!("http://localhost:{port}/hook"),
        format!("http://[::1]:{port}/hook"),
        format!("http://0.0.0.0:{port}/hook"),
    ] {
        let (code, v) = r
            .post(
                "/v1/messages",
                &json!({"to": "+12025550123", "text": "loop?", "callback_url": url}),
            )
            .await;
        assert_eq!(code, 422, "{url}: {v}");
        assert_eq!(v["errors"][0]["field"], "callback_url");
        assert!(v.to_string().contains("own API"), "{v}");
    }
    let (code, v) = r
        .post(
            "/v1/reminders",
            &json!({"to": "+12025550123", "invoice": "INV-LOOP", "amount": "1.00", "currency": "USD",
                    "due_date": "2099-01-10", "precheck_url": format!("{}/check", r.base)}),
        )
        .await;
    assert_eq!(code, 422, "{v}");
    assert!(v.to_string().contains("precheck_url"), "{v}");
    // Another port on the same host is somebody else: fine.
    let (code, v) = r
        .post(
            "/v1/messages",
            &json!({"to": "+12025550123", "text": "fine", "callback_url": "http://127.0.0.1:1/hook"}),
        )
        .await;
    assert_eq!(code, 201, "{v}");
    r.stop().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_the_log() {
    const PIN: &str = "73918264";
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const URL_PASSWORD: &str = "url-password-5521";
    const URL_QUERY_SECRET: &str = "query-secret-9934";
    let dir = tempfile::tempdir().unwrap();
    let sim = Simulator::start(SimConfig {
        status_reports: Some(Duration::from_millis(50)),
        pin: Some(PIN.into()),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let rx = Receiver::start().await;
    let port = free_port();
    let config = dir.path().join("smsgate.toml");
    std::fs::write(
        &config,
        format!(
            "[http]\nlisten = \"127.0.0.1:{port}\"\n{}[[api_keys]]\nname = \"test\"\ntoken = \"{TOKEN}\"\n\
             [outbound]\nallow_loopback = true\n[webhooks]\nurl = \"{}\"\nsecret = \"{SECRET}\"\n[[modems]]\nname = \"sim0\"\nport = \"{}\"\npin = \"{PIN}\"\n",
            crate::storage_toml(&dir.path().join("store")),
            rx.url("global"),
            sim.path().display()
        ),
    )
    .unwrap();
    let log = dir.path().join("daemon.log");
    let out = std::fs::File::create(&log).unwrap();
    let mut daemon = tokio::process::Command::new(env!("CARGO_BIN_EXE_smsgate"))
        .args(["serve", "--config"])
        .arg(&config)
        .env("RUST_LOG", "trace")
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let http = smsgate::tls::client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = http.get(format!("{base}/readyz")).send().await
            && r.status().is_success()
        {
            break;
        }
        assert!(Instant::now() < deadline, "daemon not ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Wrong and right tokens, a login, a message whose callback URL carries credentials.
    let _ = http
        .get(format!("{base}/v1/stats"))
        .bearer_auth("wrong-token-0000000000")
        .send()
        .await;
    let _ = http
        .post(format!("{base}/login"))
        .form(&[("token", TOKEN)])
        .send()
        .await;
    let _ = http
        .post(format!("{base}/login"))
        .form(&[("token", "nearly-the-token")])
        .send()
        .await;
    let callback = format!(
        "http://hook:{URL_PASSWORD}@{}/cb?key={URL_QUERY_SECRET}",
        rx.addr
    );
    let r = http
        .post(format!("{base}/v1/messages"))
        .bearer_auth(TOKEN)
        .json(&json!({"to": "+12025550123", "text": "secret test", "callback_url": callback}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    rx.wait_for("the delivered event", |g| {
        g.body["type"] == "message.delivered" && g.body["data"]["message_id"] == id
    })
    .await;
    crate::crash::signal(daemon.id().unwrap(), nix::sys::signal::Signal::SIGTERM);
    let _ = tokio::time::timeout(Duration::from_secs(15), daemon.wait()).await;
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.lines().filter(|l| l.contains("TRACE")).count() > 10,
        "a trace-level log was written ({} bytes)",
        text.len()
    );
    assert!(text.contains("sim0"), "the log is the daemon's");
    let secret_body = SECRET.trim_start_matches("whsec_");
    for (what, s) in [
        ("the API token", TOKEN),
        ("the webhook secret", secret_body),
        ("the SIM PIN", PIN),
        ("a callback URL's password", URL_PASSWORD),
        ("a callback URL's query", URL_QUERY_SECRET),
    ] {
        if let Some(at) = text.find(s) {
            let line = text[..at].rsplit('\n').next().unwrap_or("");
            panic!("{what} is in the log: …{line}{s}…");
        }
    }
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numbers_are_masked_in_the_log_at_info() {
    const CUSTOMER: &str = "+12025550123";
    let dir = tempfile::tempdir().unwrap();
    let sim = Simulator::start(SimConfig {
        status_reports: Some(Duration::from_millis(50)),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let port = free_port();
    let config = dir.path().join("smsgate.toml");
    std::fs::write(
        &config,
        format!(
            "[http]\nlisten = \"127.0.0.1:{port}\"\n{}[[api_keys]]\nname = \"test\"\ntoken = \"{TOKEN}\"\n\
             [[modems]]\nname = \"sim0\"\nport = \"{}\"\n",
            crate::storage_toml(&dir.path().join("store")),
            sim.path().display()
        ),
    )
    .unwrap();
    let log = dir.path().join("daemon.log");
    let out = std::fs::File::create(&log).unwrap();
    let mut daemon = tokio::process::Command::new(env!("CARGO_BIN_EXE_smsgate"))
        .args(["serve", "--config"])
        .arg(&config)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let http = smsgate::tls::client_builder().build().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = http.get(format!("{base}/readyz")).send().await
            && r.status().is_success()
        {
            break;
        }
        assert!(Instant::now() < deadline, "daemon not ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let get = |path: String| {
        let http = http.clone();
        async move {
            http.get(path)
                .bearer_auth(TOKEN)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    // A message to the customer, delivered; the customer's answer; an opt-out.
    let r = http
        .post(format!("{base}/v1/messages"))
        .bearer_auth(TOKEN)
        .json(&json!({"to": CUSTOMER, "text": "Invoice due.", "reply_options": {"1": "ok"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(15);
    while get(format!("{base}/v1/messages/{id}")).await["status"] != "delivered" {
        assert!(Instant::now() < deadline, "not delivered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sim.inject_inbound(CUSTOMER, "1", false).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while get(format!("{base}/v1/messages/{id}")).await["replies"]
        .as_array()
        .is_none_or(Vec::is_empty)
    {
        assert!(Instant::now() < deadline, "no reply");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = http
        .post(format!("{base}/v1/opt-outs"))
        .bearer_auth(TOKEN)
        .json(&json!({"number": CUSTOMER}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let _ = get(format!("{base}/v1/messages?to=%2B12025550123")).await;
    crate::crash::signal(daemon.id().unwrap(), nix::sys::signal::Signal::SIGTERM);
    let _ = tokio::time::timeout(Duration::from_secs(15), daemon.wait()).await;
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("message accepted"),
        "the log is the daemon's: {text}"
    );
    assert!(
        text.contains("+120255•••23"),
        "numbers are shown masked: {text}"
    );
    if let Some(at) = text.find("2025550123") {
        let line = text[..at].rsplit('\n').next().unwrap_or("");
        panic!("a full number is in the log at info: …{line}2025550123…");
    }
    sim.shutdown().await;
}
