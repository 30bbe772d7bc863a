//! Several modems, one gateway: three simulated modems on three PTYs. Work spreads over all of
//! them, each modem's limits and routing hold, a number's follow-ups stick to the modem that
//! texted it and move when that modem is unplugged or freezes, and a flapping modem rests.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};
use smsgate::dispatch::{ModemPolicy, Traffic};
use smsgate::server::Gateway;
use smsgate::sim::{SimConfig, SimHandle, Simulator};

use crate::{Running, modem_config, start};

const WAIT: Duration = Duration::from_secs(20);

/// `n` simulators, each behind a stable link in `dir` (a replug keeps the path, like a udev
/// rule's name).
async fn sims(dir: &std::path::Path, n: usize, latency: Duration) -> Vec<SimHandle> {
    let mut out = Vec::new();
    for i in 0..n {
        out.push(
            Simulator::start(SimConfig {
                status_reports: None,
                latency,
                link: Some(dir.join(format!("modem{i}"))),
                ..SimConfig::default()
            })
            .await
            .expect("simulator"),
        );
    }
    out
}

/// A gateway over `sims`, named sim0, sim1, …, with `policy(i)` for modem i.
async fn pool(
    dir: &std::path::Path,
    sims: &[SimHandle],
    policy: impl Fn(usize) -> ModemPolicy,
    tweak: impl FnOnce(&mut Gateway),
) -> Running {
    let configs: Vec<_> = sims
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut c = modem_config(s);
            c.name = format!("sim{i}");
            smsgate::fleet::ModemSetup {
                driver: c,
                policy: policy(i),
            }
        })
        .collect();
    let r = start(dir.join("store"), &sims[0], move |g| {
        g.modems = configs;
        tweak(g);
    })
    .await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_, v) = r.get("/v1/modems").await;
        let up = v["modems"]
            .as_array()
            .map_or(0, |a| a.iter().filter(|m| m["state"] == "up").count());
        if up == sims.len() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "modems never all up: {v}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    r
}

async fn send(r: &Running, to: &str, text: &str) -> String {
    let (code, v) = r
        .post("/v1/messages", &json!({"to": to, "text": text}))
        .await;
    assert_eq!(code, 201, "{v}");
    v["id"].as_str().unwrap().to_string()
}

async fn sent_via(r: &Running, id: &str) -> String {
    assert_eq!(r.wait_status(id, "sent", WAIT).await, "sent", "{id}");
    r.get(&format!("/v1/messages/{id}")).await.1["modem"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

async fn finish(r: Running, sims: Vec<SimHandle>) {
    r.stop().await;
    for s in sims {
        s.shutdown().await;
    }
}

/// Waits until modem `i` is up (or not).
async fn wait_up(r: &Running, i: usize, up: bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_, v) = r.get("/v1/modems").await;
        if (v["modems"][i]["state"] == "up") == up {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{v}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn number(i: usize) -> String {
    format!("+1202555{:04}", 1000 + i)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_spreads_over_every_modem_and_limits_hold() {
    let dir = tempfile::tempdir().unwrap();
    let sims = sims(dir.path(), 3, Duration::from_millis(150)).await;
    // sim2 may send two messages a minute; the others have no limit.
    let r = pool(
        dir.path(),
        &sims,
        |i| ModemPolicy {
            max_per_minute: (i == 2).then_some(2),
            ..ModemPolicy::default()
        },
        |_| {},
    )
    .await;
    let mut ids = Vec::new();
    for i in 0..18 {
        ids.push(send(&r, &number(i), &format!("spread {i}")).await);
    }
    let mut by_modem: HashMap<String, usize> = HashMap::new();
    for id in &ids {
        *by_modem.entry(sent_via(&r, id).await).or_default() += 1;
    }
    assert_eq!(by_modem.values().sum::<usize>(), 18);
    assert!(
        by_modem.get("sim0").copied().unwrap_or(0) >= 3,
        "{by_modem:?}"
    );
    assert!(
        by_modem.get("sim1").copied().unwrap_or(0) >= 3,
        "{by_modem:?}"
    );
    assert!(
        (1..=2).contains(&by_modem.get("sim2").copied().unwrap_or(0)),
        "sim2 keeps to two a minute: {by_modem:?}"
    );
    // What each simulated network received agrees, and nothing went out twice.
    let received: usize = sims.iter().map(|s| s.sent().len()).sum();
    assert_eq!(received, 18);
    assert_eq!(sims[2].sent().len(), by_modem["sim2"]);
    let (_, v) = r.get("/v1/modems").await;
    let m2 = v["modems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "sim2")
        .unwrap()
        .clone();
    assert_eq!(m2["pool"]["max_per_minute"], 2);
    assert_eq!(m2["pool"]["paused"], "minute_limit", "{m2}");
    finish(r, sims).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_by_prefix_and_traffic() {
    let dir = tempfile::tempdir().unwrap();
    let sims = sims(dir.path(), 2, Duration::ZERO).await;
    // sim1 takes UK numbers only; sim0 everything but reminders... and UK numbers come to it
    // only if sim1 cannot.
    let r = pool(
        dir.path(),
        &sims,
        |i| match i {
            1 => ModemPolicy {
                prefixes: vec!["+44".into()],
                ..ModemPolicy::default()
            },
            _ => ModemPolicy {
                prefixes: vec!["+1".into()],
                only_for: vec![Traffic::Messages, Traffic::Replies],
                ..ModemPolicy::default()
            },
        },
        |_| {},
    )
    .await;
    for i in 0..4 {
        let us = send(&r, &number(i), "to the US").await;
        assert_eq!(sent_via(&r, &us).await, "sim0");
        let uk = send(&r, &format!("+4420718387{i:02}"), "to the UK").await;
        assert_eq!(sent_via(&r, &uk).await, "sim1");
    }
    // No modem takes French numbers: refused at the door, not queued for ever.
    let (code, v) = r
        .post(
            "/v1/messages",
            &json!({"to": "+33142685300", "text": "bonjour"}),
        )
        .await;
    assert_eq!(code, 422, "{v}");
    assert!(
        v["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("no modem"),
        "{v}"
    );
    finish(r, sims).await;
}

async fn history(r: &Running, id: &str) -> Value {
    r.get(&format!("/v1/messages/{id}/history")).await.1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_ups_stick_to_their_modem_and_move_when_it_is_unplugged() {
    let dir = tempfile::tempdir().unwrap();
    let sims = sims(dir.path(), 3, Duration::from_millis(50)).await;
    let r = pool(dir.path(), &sims, |_| ModemPolicy::default(), |_| {}).await;
    let customer = number(1);
    let first = send(&r, &customer, "Invoice INV-1: $10 due Dec 1.").await;
    let owner = sent_via(&r, &first).await;
    // Many follow-ups, with other traffic keeping every modem busy: all through the owner.
    let mut follow = Vec::new();
    let mut other = Vec::new();
    for i in 0..6 {
        follow.push(send(&r, &customer, &format!("follow-up {i}")).await);
        other.push(send(&r, &number(100 + i), "other traffic").await);
        other.push(send(&r, &number(200 + i), "other traffic").await);
    }
    for id in &follow {
        assert_eq!(sent_via(&r, id).await, owner, "sticky sender");
    }
    let mut others_via = std::collections::HashSet::new();
    for id in &other {
        others_via.insert(sent_via(&r, id).await);
    }
    assert!(
        others_via.len() >= 2,
        "the other traffic spread: {others_via:?}"
    );
    // Unplug the owner: the next follow-up goes through another modem, and says why.
    let idx: usize = owner.trim_start_matches("sim").parse().unwrap();
    sims[idx].unplug();
    let moved = send(&r, &customer, "after the unplug").await;
    let via = sent_via(&r, &moved).await;
    assert_ne!(via, owner);
    let h = history(&r, &moved).await.to_string();
    assert!(h.contains(&format!("\"instead_of\":\"{owner}\"")), "{h}");
    // From now on the new modem is the number's modem, even with the old one back.
    sims[idx].replug().await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = send(&r, &customer, "back again").await;
    assert_eq!(sent_via(&r, &after).await, via);
    // Each message reached a network once.
    let total: usize = sims.iter().map(|s| s.sent().len()).sum();
    assert_eq!(total, 1 + 6 * 3 + 2);
    finish(r, sims).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_modems_numbers_move_to_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let sims = sims(dir.path(), 2, Duration::ZERO).await;
    let r = pool(dir.path(), &sims, |_| ModemPolicy::default(), |_| {}).await;
    let customer = number(7);
    let first = send(&r, &customer, "first").await;
    let owner = sent_via(&r, &first).await;
    let idx: usize = owner.trim_start_matches("sim").parse().unwrap();
    // The owner stops answering; its follow-up still goes out, through the other modem,
    // once the driver has given up on it (command timeout 2 s in these tests).
    sims[idx].freeze(true);
    let started = std::time::Instant::now();
    let next = send(&r, &customer, "while it is frozen").await;
    let via = sent_via(&r, &next).await;
    assert_ne!(via, owner);
    assert!(started.elapsed() < WAIT);
    assert_eq!(sims[1 - idx].sent().len(), 1);
    sims[idx].freeze(false);
    finish(r, sims).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flapping_modem_rests() {
    let dir = tempfile::tempdir().unwrap();
    let sims = sims(dir.path(), 2, Duration::ZERO).await;
    // sim0 never rests (`quarantine_after = 0`); sim1 rests after the default three falls.
    let policy = |i: usize| ModemPolicy {
        quarantine_after: (i == 0).then_some(0),
        ..ModemPolicy::default()
    };
    let r = pool(dir.path(), &sims, policy, |_| {}).await;
    for _ in 0..4 {
        sims[0].unplug();
        wait_up(&r, 0, false).await;
        sims[0].replug().await.unwrap();
        wait_up(&r, 0, true).await;
    }
    let (_, v) = r.get("/v1/modems").await;
    assert!(v["modems"][0]["pool"]["paused"].is_null(), "{v:#}");
    // Three falls within minutes: sim1 is quarantined and takes nothing.
    for _ in 0..3 {
        sims[1].unplug();
        wait_up(&r, 1, false).await;
        sims[1].replug().await.unwrap();
        wait_up(&r, 1, true).await;
    }
    let (_, v) = r.get("/v1/modems").await;
    assert_eq!(v["modems"][1]["pool"]["paused"], "quarantined", "{v:#}");
    assert!(v["modems"][1]["pool"]["quarantined_until"].is_string());
    for i in 0..6 {
        let id = send(&r, &number(300 + i), "while sim1 rests").await;
        assert_eq!(sent_via(&r, &id).await, "sim0");
    }
    assert!(sims[1].sent().is_empty());
    finish(r, sims).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_adds_and_removes_modems_under_load_without_losing_or_doubling() {
    use std::sync::{Arc, Mutex};
    let dir = tempfile::tempdir().unwrap();
    let sims = sims(dir.path(), 2, Duration::from_millis(100)).await;
    let config = |i: usize| {
        let mut c = modem_config(&sims[i]);
        c.name = format!("sim{i}");
        smsgate::fleet::ModemSetup::from(c)
    };
    // What the "configuration file" says now; a reload reads it.
    let file: Arc<Mutex<Result<Vec<smsgate::fleet::ModemSetup>, String>>> =
        Arc::new(Mutex::new(Ok(vec![config(0)])));
    let source = file.clone();
    let r = start(dir.path().join("store"), &sims[0], move |g| {
        g.modems = vec![config(0)];
        g.modem_source = Some(Arc::new(move || source.lock().unwrap().clone()));
    })
    .await;
    crate::wait_modem_up(&r).await;
    let mut ids = Vec::new();
    for i in 0..40 {
        ids.push(send(&r, &number(500 + i), &format!("load {i}")).await);
    }
    let wait_sent = |sim: &SimHandle, n: usize| {
        let sim = sim.clone();
        async move {
            let deadline = tokio::time::Instant::now() + WAIT;
            while sim.sent().len() < n {
                assert!(tokio::time::Instant::now() < deadline, "never {n} sent");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    wait_sent(&sims[0], 5).await;

    // Add sim1 while sim0 is busy.
    *file.lock().unwrap() = Ok(vec![config(0), config(1)]);
    let (code, v) = r.post("/v1/admin/reload", &json!({})).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["added"], json!(["sim1"]));
    assert_eq!(v["unchanged"], json!(["sim0"]));
    wait_sent(&sims[1], 3).await;

    // A broken file changes nothing.
    *file.lock().unwrap() = Err("[[modems]] #2 `port`: must name a device".into());
    let (code, v) = r.post("/v1/admin/reload", &json!({})).await;
    assert_eq!(code, 422, "{v}");
    let (_, m) = r.get("/v1/modems").await;
    assert_eq!(m["modems"].as_array().unwrap().len(), 2);

    // Remove sim0 (it may be mid-send: it finishes that message first) and give sim1 a
    // limit, which it takes without a restart.
    let mut limited = config(1);
    limited.policy.max_per_minute = Some(1000);
    *file.lock().unwrap() = Ok(vec![limited]);
    let (code, v) = r.post("/v1/admin/reload", &json!({})).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["removed"], json!(["sim0"]));
    assert_eq!(v["updated"], json!(["sim1"]));
    let (_, m) = r.get("/v1/modems").await;
    assert_eq!(m["modems"].as_array().unwrap().len(), 1);
    assert_eq!(m["modems"][0]["pool"]["max_per_minute"], 1000);
    let sent_by_sim0 = sims[0].sent().len();

    // Every message goes out exactly once, none is left unknown.
    for id in &ids {
        assert_eq!(r.wait_status(id, "sent", WAIT).await, "sent", "{id}");
    }
    assert_eq!(
        sims[0].sent().len(),
        sent_by_sim0,
        "nothing through a removed modem"
    );
    let mut texts: Vec<String> = sims
        .iter()
        .flat_map(|s| s.sent().into_iter().map(|m| m.text))
        .collect();
    texts.sort();
    texts.dedup();
    assert_eq!(texts.len(), 40, "each message reached the network once");
    assert_eq!(sims.iter().map(|s| s.sent().len()).sum::<usize>(), 40);
    let (_, stats) = r.get("/v1/stats").await;
    assert_eq!(stats["counts"]["unknown"], 0);
    finish(r, sims).await;
}

/// A Twilio `From` naming a modem (its configured number, or its name) binds the message to
/// it: all go through that modem while the others are free; a `From` naming none leaves the
/// choice to the pool.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_twilio_from_picks_the_modem() {
    let dir = tempfile::tempdir().unwrap();
    let sims = sims(dir.path(), 2, Duration::from_millis(50)).await;
    let (account, token) = (
        "AC0123456789abcdef0123456789abcdef",
        "pool-twilio-token-0123",
    );
    let r = pool(
        dir.path(),
        &sims,
        |_| ModemPolicy::default(),
        |g: &mut Gateway| {
            // sim1's SIM number as configured (`[[modems]] number`); both SIMs report the same.
            g.modems[1].driver.number = Some("+15550009999".into());
            g.twilio = smsgate::twilio::TwilioConfig {
                account_sid: Some(account.into()),
                auth_token: Some(token.into()),
                inbound_url: None,
            };
        },
    )
    .await;
    let url = format!("{}/2010-04-01/Accounts/{account}/Messages.json", r.base);
    let post = |to: String, from: &'static str| {
        let url = url.clone();
        async move {
            let resp = smsgate::tls::client_builder()
                .build()
                .unwrap()
                .post(url)
                .basic_auth(account, Some(token))
                .form(&[("To", to.as_str()), ("From", from), ("Body", "hello")])
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 201);
            let v: Value = resp.json().await.unwrap();
            smsgate::twilio::id_of(v["sid"].as_str().unwrap()).unwrap()
        }
    };
    let (_, modems) = r.get("/v1/modems").await;
    assert_eq!(
        modems["modems"][1]["own_number"], "+15550009999",
        "{modems}"
    );
    // By number and by name.
    let mut pinned = Vec::new();
    for i in 0..6 {
        let from = if i % 2 == 0 { "+15550009999" } else { "sim1" };
        pinned.push(post(number(400 + i), from).await);
    }
    for id in &pinned {
        assert_eq!(sent_via(&r, id).await, "sim1");
    }
    let mut unbound = Vec::new();
    for i in 0..8 {
        unbound.push(post(number(500 + i), "+19995550000").await);
    }
    let mut free = std::collections::HashSet::new();
    for id in &unbound {
        free.insert(sent_via(&r, id).await);
    }
    assert_eq!(free.len(), 2, "unbound ones spread over both: {free:?}");
    finish(r, sims).await;
}
