//! Scoped API keys: every operation of the OpenAPI document, called with a key of each scope,
//! answers 403 exactly when the key holds neither the scope the document names nor `admin`;
//! the admin page offers only what its key may do; keys are added, narrowed, revoked and
//! rotated (an old token working until its `expires_at`) by a reload, without a restart, by
//! `POST /v1/admin/reload` and by `SIGHUP`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use smsgate::api::{ApiKey, Scope};

use crate::dashboard::{csrf_of, session_cookie};
use crate::{TOKEN, sim, start};

/// The token of the key that holds only `scope`.
fn token_of(scope: Scope) -> String {
    format!("scoped-token-{}-0123456789", scope.as_str())
}

/// A request by `method` to `url` with a bearer `token` and an empty JSON object as body.
async fn call(http: &reqwest::Client, method: &str, url: &str, token: &str) -> (u16, Value) {
    let m = reqwest::Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap();
    let resp = tokio::time::timeout(
        Duration::from_secs(10),
        http.request(m, url)
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body("{}")
            .send(),
    )
    .await
    .unwrap_or_else(|_| panic!("{method} {url}: no answer in 10 s"))
    .unwrap();
    let code = resp.status().as_u16();
    // Long-lived answers (the event stream, an export) are judged by their status alone.
    let body = if code == 403 {
        resp.json().await.unwrap_or(Value::Null)
    } else {
        Value::Null
    };
    (code, body)
}

/// The one scope an operation of the document needs.
fn documented_scope(op: &Value) -> Option<Scope> {
    op["security"].as_array()?.iter().find_map(|r| {
        r["bearer"]
            .as_array()?
            .first()?
            .as_str()
            .and_then(Scope::parse)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_answers_403_exactly_without_its_documented_scope() {
    let dir = tempfile::tempdir().unwrap();
    let sim = sim().await;
    // With the demo's simulated phones, so that their routes exist to be checked too.
    let phone = smsgate::api::demo::DemoPhone::new(sim.clone());
    let r = start(dir.path().join("store"), &sim, |g| {
        g.phone = Some(Arc::new(phone));
        for s in Scope::ALL {
            g.keys
                .push(ApiKey::from_token(&format!("only-{s}"), &token_of(s)).with_scopes([s]));
        }
    })
    .await;
    // The document as the daemon serves it, read with the narrowest key there is.
    let (code, doc) = {
        let resp = r
            .http
            .get(format!("{}/openapi.json", r.base))
            .bearer_auth(token_of(Scope::Metrics))
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
    };
    assert_eq!(code, 200);
    let mut checked = 0;
    let mut refused = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let concrete = path
            .replace("{id}", "01ARZ3NDEKTSV4RRFFQ69G5FAV")
            .replace("{name}", "sim0")
            .replace("{number}", "%2B12025550123");
        let url = format!("{}{concrete}", r.base);
        for (method, op) in item.as_object().unwrap() {
            let Some(needed) = documented_scope(op) else {
                assert!(
                    path == "/healthz" || path == "/readyz",
                    "{method} {path} documents no scope"
                );
                continue;
            };
            for held in Scope::ALL {
                let (code, body) = call(&r.http, method, &url, &token_of(held)).await;
                if held == needed || held == Scope::Admin {
                    assert_ne!(code, 403, "{method} {path} with a `{held}` key: {body}");
                } else {
                    assert_eq!(
                        code, 403,
                        "{method} {path} (needs `{needed}`) with a `{held}` key"
                    );
                    assert_eq!(body["type"], "urn:smsgate:problem:forbidden");
                    let detail = body["detail"].as_str().unwrap_or("");
                    assert!(detail.contains(&format!("`{needed}`")), "{detail}");
                    refused += 1;
                }
                checked += 1;
            }
            // A key configured without scopes may do everything, as before.
            let (code, _) = call(&r.http, method, &url, TOKEN).await;
            assert_ne!(code, 403, "{method} {path} with a key without scopes");
        }
    }
    assert!(checked >= 38 * 7, "only {checked} calls");
    assert!(refused >= 38 * 5, "only {refused} refusals");
    r.stop().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_page_offers_only_what_its_key_may_do() {
    let dir = tempfile::tempdir().unwrap();
    let sim = sim().await;
    let reader = "reader-token-0123456789";
    let sender = "sender-token-0123456789";
    let r = start(dir.path().join("store"), &sim, |g| {
        g.keys
            .push(ApiKey::from_token("reader", reader).with_scopes([Scope::Read]));
        g.keys
            .push(ApiKey::from_token("sender", sender).with_scopes([Scope::Send, Scope::Read]));
    })
    .await;
    let (code, m) = r
        .post(
            "/v1/messages",
            &json!({"to": "+12025550123", "text": "later", "send_at": "2099-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(code, 201, "{m}");
    let id = m["id"].as_str().unwrap().to_string();
    let http = smsgate::tls::client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let actions = async |token: &str| {
        let v: Value = http
            .get(format!("{}/v1/dashboard", r.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let recent = v["recent"].as_array().cloned().unwrap_or_default();
        let m = recent
            .iter()
            .find(|m| m["id"] == id.as_str())
            .unwrap_or_else(|| panic!("{id} not in {v}"));
        m["actions"].clone()
    };
    assert_eq!(actions(sender).await, json!(["cancel"]));
    assert_eq!(actions(TOKEN).await, json!(["cancel"]));
    assert_eq!(actions(reader).await, json!([]));

    // Logged in on the page with the read-only key: it sees, and a change is refused 403
    // (with the session's CSRF token, so it is the scope that refuses).
    let login = async |token: &str| {
        let resp = http
            .post(format!("{}/login", r.base))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 303);
        let (cookie, _) = session_cookie(&resp);
        let page = http
            .get(format!("{}/", r.base))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        (cookie, csrf_of(&page))
    };
    let (cookie, csrf) = login(reader).await;
    let resp = http
        .get(format!("{}/v1/dashboard", r.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let cancel = format!("{}/v1/messages/{id}/cancel", r.base);
    let resp = http
        .post(&cancel)
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["type"], "urn:smsgate:problem:forbidden");
    assert_eq!(r.status_of(&id).await, "scheduled");

    // With the key that may send, the same click cancels.
    let (cookie, csrf) = login(sender).await;
    let resp = http
        .post(&cancel)
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(r.status_of(&id).await, "cancelled");
    r.stop().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_adds_narrows_rotates_and_revokes_keys() {
    let dir = tempfile::tempdir().unwrap();
    let sim = sim().await;
    let modems = vec![crate::modem_config(&sim).into()];
    let old = "rotating-old-token-0123456789";
    let new = "rotating-new-token-0123456789";
    let keys: Arc<Mutex<Result<Vec<ApiKey>, String>>> = Arc::new(Mutex::new(Ok(vec![
        ApiKey::from_token("test", TOKEN),
        ApiKey::from_token("billing", old),
    ])));
    let source = keys.clone();
    let r = start(dir.path().join("store"), &sim, |g| {
        g.keys = vec![
            ApiKey::from_token("test", TOKEN),
            ApiKey::from_token("billing", old),
        ];
        g.modem_source = Some(Arc::new(move || Ok(modems.clone())));
        g.key_source = Some(Arc::new(move || source.lock().unwrap().clone()));
    })
    .await;
    let http = &r.http;
    let code = async |token: &str, method: &str, path: &str| {
        call(http, method, &format!("{}{path}", r.base), token)
            .await
            .0
    };
    let reload = async || r.post("/v1/admin/reload", &json!({})).await;
    assert_eq!(code(old, "get", "/v1/messages").await, 200);
    assert_eq!(code(new, "get", "/v1/messages").await, 401);

    // Rotation: the new token under the key's name, and the old one beside it, same name,
    // until its `expires_at` (in 2 s); both narrowed to what billing does.
    let until = chrono::Utc::now() + chrono::Duration::seconds(2);
    *keys.lock().unwrap() = Ok(vec![
        ApiKey::from_token("test", TOKEN),
        ApiKey::from_token("billing", new).with_scopes([Scope::Send, Scope::Read]),
        ApiKey::from_token("billing", old)
            .with_scopes([Scope::Send, Scope::Read])
            .expiring(until),
        ApiKey::from_token("prometheus", "prometheus-token-0123456789")
            .with_scopes([Scope::Metrics]),
    ]);
    let (status, summary) = reload().await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(summary["api_keys"]["added"], json!(["prometheus"]));
    assert_eq!(summary["api_keys"]["updated"], json!(["billing"]));
    assert_eq!(summary["api_keys"]["removed"], json!([]));
    for token in [old, new] {
        assert_eq!(code(token, "get", "/v1/messages").await, 200);
        assert_eq!(code(token, "post", "/v1/messages").await, 422);
        assert_eq!(code(token, "post", "/v1/admin/reload").await, 403);
    }
    // Both tokens are the same caller: a retry with the other token is the same request.
    let body = json!({"to": "+12025550123", "text": "once", "send_at": "2099-01-01T00:00:00Z"});
    let mut ids = Vec::new();
    for token in [old, new] {
        let resp = http
            .post(format!("{}/v1/messages", r.base))
            .bearer_auth(token)
            .header("idempotency-key", "rotation-1")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{}", resp.status());
        let v: Value = resp.json().await.unwrap();
        ids.push(v["id"].as_str().unwrap_or("").to_string());
    }
    assert_eq!(ids[0], ids[1]);
    assert!(!ids[0].is_empty());
    assert_eq!(
        code("prometheus-token-0123456789", "get", "/metrics").await,
        200
    );
    // Past its end the old token is refused like an unknown one; the new one goes on.
    let wait = (until - chrono::Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(wait + Duration::from_millis(300)).await;
    assert_eq!(code(old, "get", "/v1/messages").await, 401);
    assert_eq!(code(new, "get", "/v1/messages").await, 200);

    // An invalid file changes nothing.
    *keys.lock().unwrap() = Err("[[api_keys]] #2 `scopes` (line 9): unknown variant".into());
    let (status, problem) = reload().await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(code(new, "get", "/v1/messages").await, 200);

    // Revoked: the key is gone from the file, its token no longer works.
    *keys.lock().unwrap() = Ok(vec![ApiKey::from_token("test", TOKEN)]);
    let (status, summary) = reload().await;
    assert_eq!(status, 200, "{summary}");
    let mut removed: Vec<String> =
        serde_json::from_value(summary["api_keys"]["removed"].clone()).unwrap();
    removed.sort();
    assert_eq!(removed, vec!["billing", "prometheus"]);
    assert_eq!(code(new, "get", "/v1/messages").await, 401);
    assert_eq!(code(TOKEN, "get", "/v1/messages").await, 200);
    r.stop().await;
    sim.shutdown().await;
}

/// A session of the admin page ends when its key is revoked by a reload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_key_ends_its_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let sim = sim().await;
    let modems = vec![crate::modem_config(&sim).into()];
    let other = "other-admin-token-0123456789";
    let keys: Arc<Mutex<Vec<ApiKey>>> = Arc::new(Mutex::new(vec![
        ApiKey::from_token("test", TOKEN),
        ApiKey::from_token("other", other),
    ]));
    let source = keys.clone();
    let r = start(dir.path().join("store"), &sim, |g| {
        g.keys = keys.lock().unwrap().clone();
        g.modem_source = Some(Arc::new(move || Ok(modems.clone())));
        g.key_source = Some(Arc::new(move || Ok(source.lock().unwrap().clone())));
    })
    .await;
    let http = smsgate::tls::client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = http
        .post(format!("{}/login", r.base))
        .form(&[("token", other)])
        .send()
        .await
        .unwrap();
    let (cookie, _) = session_cookie(&resp);
    let dashboard = async || {
        http.get(format!("{}/v1/dashboard", r.base))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(dashboard().await, 200);
    *keys.lock().unwrap() = vec![ApiKey::from_token("test", TOKEN)];
    let (status, _) = r.post("/v1/admin/reload", &json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(dashboard().await, 401);
    r.stop().await;
    sim.shutdown().await;
}

/// The real daemon: a key added to the file works after `SIGHUP`, without a restart; a key
/// with a scope it lacks gets 403.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_puts_the_files_keys_in_force() {
    let dir = tempfile::tempdir().unwrap();
    let sim = sim().await;
    let http = smsgate::tls::client_builder().build().unwrap();
    let (config, base, mut daemon) = crate::crash::daemon_with(dir.path(), &sim, "", &http).await;
    let pid = daemon.id().unwrap();
    let added = "added-by-sighup-0123456789";
    let code = async |token: &str, method: reqwest::Method, path: &str| {
        http.request(method, format!("{base}{path}"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(code(added, reqwest::Method::GET, "/metrics").await, 401);
    let text = std::fs::read_to_string(&config).unwrap();
    let text = text.replacen(
        "[[modems]]",
        &format!("[[api_keys]]\nname = \"prometheus\"\ntoken = \"{added}\"\nscopes = [\"metrics\"]\n[[modems]]"),
        1,
    );
    std::fs::write(&config, text).unwrap();
    assert!(crate::crash::signal(pid, nix::sys::signal::Signal::SIGHUP));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while code(added, reqwest::Method::GET, "/metrics").await != 200 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the key never worked"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(code(added, reqwest::Method::GET, "/v1/messages").await, 403);
    assert_eq!(code(TOKEN, reqwest::Method::GET, "/v1/messages").await, 200);
    crate::crash::signal(pid, nix::sys::signal::Signal::SIGTERM);
    let status = tokio::time::timeout(Duration::from_secs(15), daemon.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status}");
    sim.shutdown().await;
}
