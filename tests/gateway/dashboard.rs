//! The admin page over HTTP: login, the session cookie and its flags, CSRF on changes, the
//! summary and search behind it, and the page's own security headers. `browser.rs` drives
//! the same page in a real headless Chromium.

use std::time::Duration;

use serde_json::{Value, json};
use smsgate::sim::SimHandle;

use crate::{Running, TOKEN, sim, start, wait_modem_up};

pub const CUSTOMER: &str = "+12025550123";
pub const OTHER: &str = "+12025550124";
pub const OPTED_OUT: &str = "+12025550125";
pub const INVOICE: &str = "INV-7731";

/// What [`populated`] made.
pub struct Fixture {
    pub sim: SimHandle,
    pub r: Running,
    /// Delivered, with the customer's reply "1".
    pub delivered: String,
    /// Failed (the modem answered a permanent error).
    pub failed: String,
    /// The reminder plan's first message.
    pub plan_message: String,
    pub _dir: tempfile::TempDir,
}

async fn wait_for(r: &Running, path: &str, what: &str, f: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (_, v) = r.get(path).await;
        if f(&v) {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what}: {v:#}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Posts a message and waits until it is `status`; its id.
async fn message_ending(r: &Running, body: Value, status: &str) -> String {
    let (code, v) = r.post("/v1/messages", &body).await;
    assert_eq!(code, 201, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    assert_eq!(
        r.wait_status(&id, status, Duration::from_secs(10)).await,
        status
    );
    id
}

/// A gateway with a bit of everything the page shows: a delivered message with a reply, a
/// failed one, an opt-out, a dead webhook delivery and a reminder plan.
pub async fn populated() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let sim = sim().await;
    sim.set_status_reports(Some(Duration::from_millis(50)), 0);
    let r = start(dir.path().join("store"), &sim, |g| {
        // Nothing listens on port 1: every event's delivery dies after 600 ms.
        g.webhooks = smsgate::webhook::WebhookConfig {
            url: Some("http://127.0.0.1:1/hook".into()),
            secret: Some("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into()),
            retry_backoff: Duration::from_millis(100),
            retry_backoff_max: Duration::from_millis(200),
            max_age: Duration::from_millis(600),
            ..Default::default()
        };
    })
    .await;
    wait_modem_up(&r).await;

    let delivered = message_ending(
        &r,
        json!({"to": CUSTOMER, "text": "Invoice INV-1042: $120.50 due Dec 1. Reply 1 for a call.",
               "reply_options": {"1": "call_me"}}),
        "delivered",
    )
    .await;
    sim.inject_inbound(CUSTOMER, "1", false).unwrap();
    wait_for(&r, &format!("/v1/messages/{delivered}"), "the reply", |m| {
        m["replies"].as_array().is_some_and(|a| !a.is_empty())
    })
    .await;

    sim.fail_next(1, 8);
    let failed = message_ending(
        &r,
        json!({"to": OTHER, "text": "Past due: invoice INV-0999."}),
        "failed",
    )
    .await;

    let (code, v) = r
        .post(
            "/v1/opt-outs",
            &json!({"number": OPTED_OUT, "note": "asked by phone"}),
        )
        .await;
    assert!(code == 200 || code == 201, "{code} {v}");

    let due = (chrono::Utc::now() + chrono::Duration::days(20)).date_naive();
    let (code, plan) = r
        .post(
            "/v1/reminders",
            &json!({"to": CUSTOMER, "invoice": INVOICE, "amount": "80.00", "currency": "USD",
                    "due_date": due.to_string(), "name": "Ana", "timezone": "UTC",
                    "schedule": [{"offset": "-3d", "template": "upcoming"},
                                 {"offset": "+3d", "template": "past_due"}]}),
        )
        .await;
    assert_eq!(code, 201, "{plan}");
    let plan_message = plan["steps"]
        .as_array()
        .and_then(|s| s.iter().find_map(|s| s["message_id"].as_str()))
        .expect("a step with a message")
        .to_string();

    wait_for(&r, "/v1/webhooks/failed", "a dead delivery", |v| {
        v["webhooks"].as_array().is_some_and(|a| !a.is_empty())
    })
    .await;
    Fixture {
        sim,
        r,
        delivered,
        failed,
        plan_message,
        _dir: dir,
    }
}

fn no_redirects() -> reqwest::Client {
    smsgate::tls::client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The session cookie's `name=value` from a Set-Cookie header, and the whole header.
pub(crate) fn session_cookie(resp: &reqwest::Response) -> (String, String) {
    let set = resp
        .headers()
        .get("set-cookie")
        .expect("a Set-Cookie header")
        .to_str()
        .unwrap()
        .to_string();
    let pair = set.split(';').next().unwrap().trim().to_string();
    assert!(pair.starts_with("smsgate_session="), "{set}");
    (pair, set)
}

/// The status of a GET of `path` with a cookie.
async fn status_with_cookie(http: &reqwest::Client, r: &Running, path: &str, cookie: &str) -> u16 {
    http.get(format!("{}{path}", r.base))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// The CSRF token the dashboard page carries.
pub(crate) fn csrf_of(page: &str) -> String {
    let at = page
        .find("name=\"csrf-token\" content=\"")
        .expect("the csrf meta tag");
    let rest = &page[at + "name=\"csrf-token\" content=\"".len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_session_cookie_and_csrf() {
    let f = populated().await;
    let r = &f.r;
    let http = no_redirects();

    // Anonymous: the page sends to the login form; the API says 401.
    let resp = http.get(format!("{}/", r.base)).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 303);
    assert_eq!(resp.headers()["location"], "/login");
    let resp = http.get(format!("{}/login", r.base)).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let csp = resp.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    let page = resp.text().await.unwrap();
    assert!(page.contains("<form id=\"login\""), "{page}");
    assert!(!page.contains("plain-http"), "no warning on loopback");

    // A wrong token: 401, the form again with a message, no cookie.
    let resp = http
        .post(format!("{}/login", r.base))
        .form(&[("token", "not-the-token-at-all")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    assert!(resp.headers().get("set-cookie").is_none());
    assert!(resp.text().await.unwrap().contains("login-error"));

    // The right token: a session cookie, HttpOnly, SameSite=Strict, Secure (loopback).
    let resp = http
        .post(format!("{}/login", r.base))
        .form(&[("token", TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 303);
    assert_eq!(resp.headers()["location"], "/");
    let (cookie, set) = session_cookie(&resp);
    for flag in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/"] {
        assert!(set.contains(flag), "{flag} missing: {set}");
    }

    // The page, with its CSRF token; the API answers the cookie.
    let resp = http
        .get(format!("{}/", r.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let csrf = csrf_of(&resp.text().await.unwrap());
    assert_eq!(csrf.len(), 64);
    assert_eq!(
        status_with_cookie(&http, r, "/v1/dashboard", &cookie).await,
        200
    );

    // A change with the cookie but without the token (what a forged cross-site form would
    // send), or with a wrong one: 403, and nothing changed.
    let cancel = format!("{}/v1/messages/{}/cancel", r.base, f.failed);
    for header in [None, Some("0".repeat(64))] {
        let mut req = http.post(&cancel).header("cookie", &cookie);
        if let Some(h) = &header {
            req = req.header("x-csrf-token", h);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 403);
        let p: Value = resp.json().await.unwrap();
        assert_eq!(p["type"], "urn:smsgate:problem:csrf");
    }
    assert_eq!(r.status_of(&f.failed).await, "failed");

    // With the token: done (a failed message can be closed).
    let resp = http
        .post(&cancel)
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(r.status_of(&f.failed).await, "cancelled");
    let (_, h) = r.get(&format!("/v1/messages/{}/history", f.failed)).await;
    assert!(h.to_string().contains("while failed"), "{h}");

    // A bearer token needs no CSRF token (no browser sends it on its own).
    let (code, _) = r
        .post(&format!("/v1/messages/{}/requeue", f.failed), &json!({}))
        .await;
    assert_eq!(code, 200);

    // Logging out ends the session for good.
    let resp = http
        .post(format!("{}/logout", r.base))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    assert!(
        resp.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    assert_eq!(
        status_with_cookie(&http, r, "/v1/dashboard", &cookie).await,
        401
    );

    // A bearer token opens the page too, and starts a session for its script.
    let resp = http
        .get(format!("{}/", r.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let (cookie, _) = session_cookie(&resp);
    assert_eq!(
        status_with_cookie(&http, r, "/v1/stats", &cookie).await,
        200
    );

    // Over plain HTTP on a network address the cookie cannot be Secure (the browser would
    // drop it) and the form says the token crosses the network in clear; behind a TLS proxy
    // it is Secure again.
    let lan = http
        .post(format!("{}/login", r.base))
        .header("host", "192.168.1.5:8080")
        .form(&[("token", TOKEN)])
        .send()
        .await
        .unwrap();
    let (_, set) = session_cookie(&lan);
    assert!(!set.contains("Secure"), "{set}");
    let page = http
        .get(format!("{}/login", r.base))
        .header("host", "192.168.1.5:8080")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("plain-http"), "{page}");
    let proxied = http
        .post(format!("{}/login", r.base))
        .header("host", "sms.example.org")
        .header("x-forwarded-proto", "https")
        .form(&[("token", TOKEN)])
        .send()
        .await
        .unwrap();
    assert!(session_cookie(&proxied).1.contains("Secure"));

    // The page's assets are embedded and typed.
    for (path, ct) in [
        ("/assets/dashboard.js", "text/javascript"),
        ("/assets/dashboard.css", "text/css"),
        ("/assets/icon.svg", "image/svg+xml"),
    ] {
        let resp = http.get(format!("{}{path}", r.base)).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200, "{path}");
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(ct),
            "{path}"
        );
    }
    assert_eq!(
        http.get(format!("{}/assets/../Cargo.toml", r.base))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        404
    );
    f.r.stop().await;
    f.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn summary_and_search_show_what_happened() {
    let f = populated().await;
    let r = &f.r;
    let (code, d) = r.get("/v1/dashboard").await;
    assert_eq!(code, 200, "{d}");
    assert_eq!(d["modems"][0]["name"], "sim0");
    assert_eq!(d["modems"][0]["state"], "up");
    assert_eq!(d["modems"][0]["operator"], "SimNet");
    // One message sent (and delivered); the other failed at the modem, so it was never sent.
    assert_eq!(d["modems"][0]["sent_today"], 1, "{d:#}");
    let hours = d["hourly"].as_array().unwrap();
    assert_eq!(hours.len(), 24);
    let now = &hours[23];
    assert_eq!(
        (
            now["sent"].as_u64(),
            now["delivered"].as_u64(),
            now["failed"].as_u64()
        ),
        (Some(1), Some(1), Some(1)),
        "{now}"
    );
    assert!(hours[..23].iter().all(|h| h["sent"] == 0));
    assert_eq!(d["counts"]["delivered"], 1);
    assert_eq!(d["counts"]["failed"], 1);
    let recent = d["recent"].as_array().unwrap();
    let shown = recent
        .iter()
        .find(|m| m["id"] == f.delivered.as_str())
        .expect("listed");
    assert_eq!(shown["replies"][0]["text"], "1");
    assert_eq!(shown["replies"][0]["action"], "call_me");
    let attention = d["attention"].as_array().unwrap();
    assert_eq!(attention.len(), 1, "{attention:#?}");
    assert_eq!(attention[0]["id"], f.failed.as_str());
    assert_eq!(attention[0]["actions"], json!(["requeue", "cancel"]));
    assert_eq!(d["opt_out_count"], 1);
    assert_eq!(d["opt_outs"][0]["number"], OPTED_OUT);
    let hooks = d["failed_webhooks"].as_array().unwrap();
    assert!(!hooks.is_empty());
    assert!(hooks[0]["url"].as_str().unwrap().ends_with("/hook"));

    // The counts are on disk: a restart keeps the chart.
    let store = f._dir.path().join("store");
    f.r.stop().await;
    let r = start(store, &f.sim, |_| {}).await;
    let (_, d2) = r.get("/v1/dashboard").await;
    assert_eq!(d2["hourly"][23], d["hourly"][23]);

    // Search by number (any common spelling) and by invoice.
    let (code, s) = r
        .get("/v1/dashboard/search?q=%2B1%20202%20555%200124")
        .await;
    assert_eq!(code, 200, "{s}");
    assert_eq!(s["kind"], "number");
    assert_eq!(s["number"], OTHER);
    assert_eq!(s["opted_out"], false);
    assert_eq!(s["messages"][0]["id"], f.failed.as_str());
    let (_, s) = r
        .get(&format!("/v1/dashboard/search?q={OPTED_OUT}").replace('+', "%2B"))
        .await;
    assert_eq!(s["opted_out"], true);
    let (code, s) = r.get(&format!("/v1/dashboard/search?q={INVOICE}")).await;
    assert_eq!(code, 200, "{s}");
    assert_eq!(s["kind"], "invoice");
    assert!(s["plan_id"].is_string());
    let ids: Vec<&str> = s["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    assert!(ids.contains(&f.plan_message.as_str()), "{s:#}");
    assert!(
        s["messages"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["invoice"] == INVOICE)
    );
    let (code, s) = r.get("/v1/dashboard/search?q=INV-NOPE").await;
    assert_eq!(
        (code, s["messages"].as_array().map(Vec::len)),
        (200, Some(0))
    );
    let (code, p) = r.get("/v1/dashboard/search?q=%20").await;
    assert_eq!(code, 422, "{p}");
    r.stop().await;
    f.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_can_be_turned_off() {
    let dir = tempfile::tempdir().unwrap();
    let sim = sim().await;
    let r = start(dir.path().join("store"), &sim, |g| {
        g.api.dashboard.enabled = false;
    })
    .await;
    let http = no_redirects();
    for path in ["/", "/login"] {
        let resp = http.get(format!("{}{path}", r.base)).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 404, "{path}");
    }
    let resp = http
        .post(format!("{}/login", r.base))
        .form(&[("token", TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);
    assert!(resp.headers().get("set-cookie").is_none());
    // The API itself is unchanged.
    assert_eq!(r.get("/v1/stats").await.0, 200);
    r.stop().await;
    sim.shutdown().await;
}
