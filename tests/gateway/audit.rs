//! Who did what: the API key behind every change, in the message's history, in the webhook
//! event a real receiver gets, and in the audit log (`GET /v1/audit`), with named keys.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde_json::{Value, json};
use smsgate::api::ApiKey;

use crate::replies::{Receiver, hooks};
use crate::{Running, TOKEN, modem_config, sim, start, wait_modem_up};

const OPS: &str = "ops-token-0123456789abcdef";
const BILLING: &str = "billing-token-0123456789ab";
const NUMBER: &str = "+12025550177";

async fn call(
    r: &Running,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let url = format!("{}{path}", r.base);
    let req = match method {
        "GET" => r.http.get(url),
        "POST" => r.http.post(url),
        "PUT" => r.http.put(url),
        "DELETE" => r.http.delete(url),
        other => panic!("no method {other}"),
    };
    let req = req.bearer_auth(token);
    let req = match body {
        Some(b) => req.json(&b),
        None => req,
    };
    let resp = tokio::time::timeout(Duration::from_secs(30), req.send())
        .await
        .expect("answered in time")
        .expect("request");
    let code = resp.status().as_u16();
    (code, resp.json().await.unwrap_or(Value::Null))
}

/// A message scheduled an hour ahead, made by `token`'s key.
async fn scheduled(r: &Running, token: &str, to: &str) -> String {
    let at = (Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let (code, v) = call(
        r,
        "POST",
        "/v1/messages",
        token,
        Some(json!({"to": to, "text": "Invoice due", "send_at": at})),
    )
    .await;
    assert_eq!(code, 201, "{v}");
    v["id"].as_str().unwrap().to_string()
}

async fn history(r: &Running, id: &str) -> Value {
    let (code, h) = call(r, "GET", &format!("/v1/messages/{id}/history"), TOKEN, None).await;
    assert_eq!(code, 200, "{h}");
    assert_eq!(h["verified"], true, "{h:#}");
    h
}

fn last_event(h: &Value) -> &Value {
    h["events"].as_array().unwrap().last().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_names_its_key_in_history_events_and_audit() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let sim = sim().await;
    let rx = Receiver::start().await;
    let cfg = hooks(&rx);
    let same = modem_config(&sim);
    let r = start(store.clone(), &sim, move |g| {
        g.keys = vec![
            ApiKey::from_token("test", TOKEN),
            ApiKey::from_token("ops", OPS),
            ApiKey::from_token("billing", BILLING),
        ];
        g.webhooks = cfg;
        // What a reload reads: the same modem, so it changes nothing.
        g.modem_source = Some(Arc::new(move || Ok(vec![same.clone().into()])));
    })
    .await;
    wait_modem_up(&r).await;
    let since = Utc::now() - chrono::Duration::seconds(1);

    // Made by billing: the implied first entry names it.
    let a = scheduled(&r, BILLING, "+12025550171").await;
    let h = history(&r, &a).await;
    assert_eq!(h["events"][0]["kind"], "accepted");
    assert_eq!(h["events"][0]["actor"], "billing", "{h:#}");

    // Cancelled by ops: the entry and the event say so.
    let (code, v) = call(&r, "POST", &format!("/v1/messages/{a}/cancel"), OPS, None).await;
    assert_eq!(code, 200, "{v}");
    let h = history(&r, &a).await;
    assert_eq!(last_event(&h)["status"], "cancelled");
    assert_eq!(last_event(&h)["actor"], "ops", "{h:#}");
    let ev = rx
        .wait_for("message.cancelled", |g| {
            g.body["type"] == "message.cancelled" && g.body["data"]["message_id"] == a.as_str()
        })
        .await;
    assert!(ev.verified);
    assert_eq!(ev.body["data"]["actor"], "ops", "{:#}", ev.body);

    // Requeued by billing.
    let (code, v) = call(
        &r,
        "POST",
        &format!("/v1/messages/{a}/requeue"),
        BILLING,
        None,
    )
    .await;
    assert_eq!(code, 200, "{v}");
    let h = history(&r, &a).await;
    let requeued = h["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["status"] == "queued" && e["seq"].as_u64() > Some(0))
        .unwrap_or_else(|| panic!("no requeue entry: {h:#}"));
    assert_eq!(requeued["actor"], "billing", "{h:#}");

    // Opted out by ops: the waiting message to the number is cancelled in ops' name, and the
    // event names ops; opted back in by billing.
    let b = scheduled(&r, TOKEN, NUMBER).await;
    let (code, v) = call(
        &r,
        "POST",
        "/v1/opt-outs",
        OPS,
        Some(json!({"number": NUMBER})),
    )
    .await;
    assert_eq!(code, 201, "{v}");
    let h = history(&r, &b).await;
    assert_eq!(h["events"][0]["actor"], "test");
    assert_eq!(last_event(&h)["status"], "cancelled");
    assert_eq!(last_event(&h)["actor"], "ops", "{h:#}");
    let out = rx
        .wait_for("optout.changed (out)", |g| {
            g.body["type"] == "optout.changed" && g.body["data"]["opted_out"] == true
        })
        .await;
    assert!(out.verified);
    assert_eq!(out.body["data"]["actor"], "ops", "{:#}", out.body);
    assert_eq!(out.body["data"]["cancelled_messages"], json!([b]));
    let cancelled = rx
        .wait_for("message.cancelled of the opted-out number", |g| {
            g.body["type"] == "message.cancelled" && g.body["data"]["message_id"] == b.as_str()
        })
        .await;
    assert_eq!(cancelled.body["data"]["actor"], "ops");
    let path = format!("/v1/opt-outs/{}", NUMBER.replace('+', "%2B"));
    let (code, v) = call(&r, "DELETE", &path, BILLING, None).await;
    assert_eq!(code, 200, "{v}");
    let back = rx
        .wait_for("optout.changed (in)", |g| {
            g.body["type"] == "optout.changed" && g.body["data"]["opted_out"] == false
        })
        .await;
    assert_eq!(back.body["data"]["actor"], "billing", "{:#}", back.body);

    // A template by ops, a reload by ops, a USSD code by billing, a login to the admin page
    // with ops' token.
    let (code, v) = call(
        &r,
        "PUT",
        "/v1/templates/friendly",
        OPS,
        Some(json!({"text": "Hello {{ name }}! {{ invoice }} is due."})),
    )
    .await;
    assert_eq!(code, 200, "{v}");
    let (code, v) = call(&r, "POST", "/v1/admin/reload", OPS, Some(json!({}))).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["unchanged"], json!(["sim0"]));
    let (code, v) = call(
        &r,
        "POST",
        "/v1/modems/sim0/ussd",
        BILLING,
        Some(json!({"code": "*100#"})),
    )
    .await;
    assert_eq!(code, 200, "{v}");
    let login = r
        .http
        .post(format!("{}/login", r.base))
        .form(&[("token", OPS)])
        .send()
        .await
        .unwrap();
    assert!(login.status().is_success() || login.status().is_redirection());

    // The audit log: ops' actions, in order, and billing's; the chain links them all.
    let q = |actor: &str| {
        format!(
            "/v1/audit?actor={actor}&since={}",
            since.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        )
    };
    let (code, ops) = call(&r, "GET", &q("ops"), TOKEN, None).await;
    assert_eq!(code, 200, "{ops}");
    let actions = |page: &Value| -> Vec<(String, String)> {
        page["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["action"].as_str().unwrap().to_string(),
                    e["target"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    };
    let pair = |a: &str, t: &str| (a.to_string(), t.to_string());
    assert_eq!(
        actions(&ops),
        vec![
            pair("optout.add", NUMBER),
            pair("template.put", "friendly"),
            pair("reload", ""),
            pair("dashboard.login", ""),
        ],
        "{ops:#}"
    );
    assert!(
        ops["entries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["actor"] == "ops")
    );
    let (_, billing) = call(&r, "GET", &q("billing"), OPS, None).await;
    assert_eq!(
        actions(&billing),
        vec![pair("optout.remove", NUMBER), pair("ussd", "sim0")],
        "{billing:#}"
    );
    assert_eq!(billing["entries"][1]["details"]["code"], "*100#");
    let (_, all) = call(&r, "GET", "/v1/audit", TOKEN, None).await;
    let all = all["entries"].as_array().unwrap().clone();
    assert_eq!(all.len(), 6);
    assert!(all[0]["prev_hash"].is_null());
    for w in all.windows(2) {
        assert_eq!(w[1]["prev_hash"], w[0]["hash"], "{w:#?}");
    }
    // Paged: two at a time, the cursor goes on after the last.
    let (_, p1) = call(&r, "GET", "/v1/audit?limit=2", TOKEN, None).await;
    let cursor = p1["next_cursor"].as_str().unwrap().to_string();
    let (_, p2) = call(
        &r,
        "GET",
        &format!("/v1/audit?limit=2&cursor={cursor}"),
        TOKEN,
        None,
    )
    .await;
    assert_eq!(p2["entries"][0]["id"], all[2]["id"]);
    // Nothing since an hour ahead; a bad cursor is refused.
    let later = (Utc::now() + chrono::Duration::hours(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let (code, none) = call(&r, "GET", &format!("/v1/audit?since={later}"), TOKEN, None).await;
    assert_eq!(code, 200, "{none}");
    assert_eq!(none["entries"], json!([]));
    let (code, _) = call(&r, "GET", "/v1/audit?cursor=nope", TOKEN, None).await;
    assert_eq!(code, 422);
    // `smsgate audit`: the same list for people, and as the API gave it with --json.
    let run = crate::cli::cli(&r, &["audit", "--actor", "billing", "--since", "1h"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", run.stdout);
    assert!(lines[1].contains("billing") && lines[1].contains("optout.remove"));
    assert!(lines[2].contains("ussd") && lines[2].contains("sim0"));
    let run = crate::cli::cli(&r, &["audit", "--json", "--all"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["entries"].as_array().map(Vec::len), Some(6));
    r.stop().await;
    sim.shutdown().await;
    if crate::sled_only(
        "every_change_names_its_key_in_history_events_and_audit (history verify)",
        "`history verify --store` reads the embedded store's directory",
    ) {
        return;
    }

    // The daemon stopped: `smsgate history verify` checks the audit chain with the histories.
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_smsgate"))
            .args([
                "history",
                "verify",
                "--store",
                store.to_str().unwrap(),
                "--json",
            ])
            .env("RUST_LOG", "warn")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let v: Value = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(v["audit"]["entries"], 6, "{v}");
    assert_eq!(v["audit"]["verified"], true, "{v}");
}
