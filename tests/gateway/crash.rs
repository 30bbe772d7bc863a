//! kill -9 of the real daemon during a batch of 200: after a restart no accepted message is
//! lost and none reached the network twice; the ones caught mid-send are `unknown`.

use std::collections::HashMap;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use smsgate::sim::{SimConfig, Simulator};

use crate::TOKEN;

/// Sends `signal` to process `pid` (with nix, not the `kill` binary); whether it was delivered.
pub(crate) fn signal(pid: u32, signal: nix::sys::signal::Signal) -> bool {
    i32::try_from(pid)
        .ok()
        .is_some_and(|p| nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), signal).is_ok())
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn spawn_daemon(config: &std::path::Path) -> tokio::process::Child {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_smsgate"))
        .args(["serve", "--config"])
        .arg(config)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("daemon starts")
}

/// GET with the token, the answer as JSON.
async fn get_json(http: &reqwest::Client, url: String) -> Value {
    http.get(url)
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn wait_ready(http: &reqwest::Client, base: &str) {
    for _ in 0..300 {
        if let Ok(r) = http.get(format!("{base}/readyz")).send().await
            && r.status().is_success()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("daemon not ready");
}

/// Writes `dir/smsgate.toml`: a daemon on `port` with its store in `dir/store` and `sim` as its
/// modem, `extra` sections before the modem's.
pub(crate) fn write_config(
    dir: &std::path::Path,
    sim: &smsgate::sim::SimHandle,
    port: u16,
    extra: &str,
) -> std::path::PathBuf {
    let config = dir.join("smsgate.toml");
    std::fs::write(
        &config,
        format!(
            "[http]\nlisten = \"127.0.0.1:{port}\"\n{}[[api_keys]]\nname = \"test\"\ntoken = \"{TOKEN}\"\n{extra}[[modems]]\nname = \"sim0\"\nport = \"{}\"\n",
            crate::storage_toml(&dir.join("store")),
            sim.path().display()
        ),
    )
    .unwrap();
    config
}

/// Writes a config for a daemon on a free port with `sim` as its modem, starts it, waits until
/// it is ready. Returns the config path (to restart it), the base URL and the child.
pub(crate) async fn daemon_with(
    dir: &std::path::Path,
    sim: &smsgate::sim::SimHandle,
    extra: &str,
    http: &reqwest::Client,
) -> (std::path::PathBuf, String, tokio::process::Child) {
    let port = free_port();
    let config = write_config(dir, sim, port, extra);
    let base = format!("http://127.0.0.1:{port}");
    let daemon = spawn_daemon(&config);
    wait_ready(http, &base).await;
    (config, base, daemon)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_batch_loses_nothing_and_doubles_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Simulator::start(SimConfig {
        latency: Duration::from_millis(15),
        status_reports: None,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let http = smsgate::tls::client_builder().build().unwrap();
    let (config, base, mut daemon) = daemon_with(
        dir.path(),
        &sim,
        "[queue]\nretry_backoff = \"200ms\"\n",
        &http,
    )
    .await;

    // 200 messages in batches of 20 while the daemon sends them; SIGKILL in the middle.
    let mut accepted: Vec<(String, String)> = Vec::new();
    let mut killed = false;
    for b in 0..10 {
        let messages: Vec<Value> = (0..20)
            .map(|i| json!({"to": "+12025550123", "text": format!("crash-test {}", b * 20 + i)}))
            .collect();
        let resp = http
            .post(format!("{base}/v1/messages/batch"))
            .bearer_auth(TOKEN)
            .json(&json!({"messages": messages}))
            .send()
            .await;
        if let Ok(resp) = resp
            && resp.status().as_u16() == 201
        {
            let v: Value = resp.json().await.unwrap();
            for m in v["messages"].as_array().unwrap() {
                accepted.push((
                    m["id"].as_str().unwrap().into(),
                    m["text"].as_str().unwrap().into(),
                ));
            }
        }
        if b == 5 && !killed {
            // Let some go out, then kill -9 while sends are in flight.
            tokio::time::sleep(Duration::from_millis(300)).await;
            daemon.start_kill().unwrap();
            let _ = daemon.wait().await;
            killed = true;
            daemon = spawn_daemon(&config);
            wait_ready(&http, &base).await;
        }
    }
    assert!(killed);
    assert_eq!(
        accepted.len(),
        200,
        "every batch was accepted (before or after the restart)"
    );

    // Wait until nothing is waiting or sending.
    let mut settled = false;
    for _ in 0..400 {
        let v: Value = get_json(&http, format!("{base}/v1/stats")).await;
        let c = &v["counts"];
        if c["queued"] == 0 && c["scheduled"] == 0 && c["sending"] == 0 {
            settled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(settled, "queue drained");

    let mut on_network: HashMap<String, usize> = HashMap::new();
    for m in sim.sent() {
        *on_network.entry(m.text).or_default() += 1;
    }
    let mut unknown = 0;
    let mut sent = 0;
    for (id, text) in &accepted {
        let v: Value = get_json(&http, format!("{base}/v1/messages/{id}")).await;
        let status = v["status"].as_str().unwrap_or("missing");
        let copies = on_network.get(text).copied().unwrap_or(0);
        assert!(copies <= 1, "{text} reached the network {copies} times");
        match status {
            "sent" => {
                sent += 1;
                assert_eq!(copies, 1, "{text} is sent but not on the network");
            }
            "unknown" => unknown += 1,
            other => panic!("{id} ({text}) ended {other}"),
        }
    }
    eprintln!(
        "kill -9 test: {} accepted, {sent} sent, {unknown} unknown (caught mid-send)",
        accepted.len()
    );
    assert!(
        unknown <= 1,
        "one modem sends one message at a time: at most one can be caught mid-send"
    );
    daemon.start_kill().unwrap();
    let _ = daemon.wait().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_the_send_in_flight_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Simulator::start(SimConfig {
        latency: Duration::from_millis(1500),
        status_reports: None,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let http = smsgate::tls::client_builder().build().unwrap();
    let (config, base, mut daemon) = daemon_with(dir.path(), &sim, "", &http).await;
    let m: Value = http
        .post(format!("{base}/v1/messages"))
        .bearer_auth(TOKEN)
        .json(&json!({"to": "+12025550123", "text": "in flight at SIGTERM"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = m["id"].as_str().unwrap().to_string();
    // Wait until it is being sent (the simulator takes 1.5 s to answer).
    for _ in 0..100 {
        let v: Value = get_json(&http, format!("{base}/v1/messages/{id}")).await;
        if v["status"] == "sending" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pid = daemon.id().expect("running");
    assert!(signal(pid, nix::sys::signal::Signal::SIGTERM));
    let status = tokio::time::timeout(Duration::from_secs(15), daemon.wait())
        .await
        .expect("exits")
        .unwrap();
    assert_eq!(status.code(), Some(0), "clean exit");
    assert_eq!(sim.sent().len(), 1, "the send in flight was completed");
    // After a restart the message is `sent`, not `unknown`: the outcome was recorded before exit.
    let mut daemon = spawn_daemon(&config);
    wait_ready(&http, &base).await;
    let v: Value = get_json(&http, format!("{base}/v1/messages/{id}")).await;
    assert_eq!(v["status"], "sent", "{v}");
    daemon.start_kill().unwrap();
    let _ = daemon.wait().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_keeps_pending_callbacks_and_inbound_messages() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Simulator::start(SimConfig {
        status_reports: None,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let http = smsgate::tls::client_builder().build().unwrap();
    // The receiver is down at first: its port is free, nobody listens.
    let hook_port = free_port();
    let extra = format!(
        "[outbound]\nallow_loopback = true\n[webhooks]\nurl = \"http://127.0.0.1:{hook_port}/global\"\nsecret = \"{}\"\nretry_backoff = \"100ms\"\nretry_backoff_max = \"300ms\"\n",
        crate::replies::SECRET
    );
    let (config, base, mut daemon) = daemon_with(dir.path(), &sim, &extra, &http).await;
    let v: Value = http
        .post(format!("{base}/v1/messages"))
        .bearer_auth(TOKEN)
        .json(&json!({"to": "+12025550123", "text": "Invoice INV-7 is due."}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = v["id"].as_str().unwrap().to_string();
    sim.inject_inbound("+12025550124", "who is this?", false)
        .unwrap();
    // Sent and stored (so both events wait in the outbox), then kill -9.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let m: Value = get_json(&http, format!("{base}/v1/messages/{id}")).await;
        if m["status"] == "sent" && sim.stored().is_empty() {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{m}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    daemon.start_kill().unwrap();
    let _ = daemon.wait().await;
    // A message arrives while the daemon is down: it waits on the SIM.
    sim.inject_inbound("+12025550125", "hello", false).unwrap();
    let rx =
        crate::replies::Receiver::start_on(format!("127.0.0.1:{hook_port}").parse().unwrap()).await;
    let mut daemon = spawn_daemon(&config);
    wait_ready(&http, &base).await;
    rx.wait_for("message.sent", |g| g.body["type"] == "message.sent")
        .await;
    for text in ["who is this?", "hello"] {
        rx.wait_for(text, |g| {
            g.body["type"] == "inbound.unmatched" && g.body["data"]["text"] == text
        })
        .await;
    }
    assert!(rx.got().iter().all(|g| g.verified));
    let page: Value = get_json(&http, format!("{base}/v1/inbound")).await;
    let texts: Vec<&str> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert!(texts.contains(&"hello") && texts.contains(&"who is this?"));
    daemon.start_kill().unwrap();
    let _ = daemon.wait().await;
    sim.shutdown().await;
}

/// Under systemd (`Type=notify`, `WatchdogSec=`): the real binary says READY once it answers,
/// feeds the watchdog while its dispatcher is alive, and says STOPPING on SIGTERM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn systemd_hears_ready_then_the_watchdog_then_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Simulator::start(SimConfig {
        status_reports: None,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let socket_path = dir.path().join("notify.sock");
    let socket = tokio::net::UnixDatagram::bind(&socket_path).unwrap();
    let port = free_port();
    let config = write_config(dir.path(), &sim, port, "");
    let mut daemon = tokio::process::Command::new(env!("CARGO_BIN_EXE_smsgate"))
        .args(["serve", "--config"])
        .arg(&config)
        .env("RUST_LOG", "warn")
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "200000")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut heard = Vec::new();
    let mut buf = vec![0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while heard
        .iter()
        .filter(|m: &&String| m.contains("WATCHDOG=1"))
        .count()
        < 3
    {
        let n = tokio::time::timeout_at(deadline, socket.recv(&mut buf))
            .await
            .expect("notifications in time")
            .unwrap();
        heard.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    assert!(heard[0].contains("READY=1"), "READY first: {heard:?}");
    assert!(heard[0].contains("STATUS=listening on"), "{heard:?}");
    // READY came after the API answers.
    let http = smsgate::tls::client_builder().build().unwrap();
    let r = http
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    assert!(signal(
        daemon.id().unwrap(),
        nix::sys::signal::Signal::SIGTERM
    ));
    loop {
        let n = tokio::time::timeout_at(deadline, socket.recv(&mut buf))
            .await
            .expect("STOPPING in time")
            .unwrap();
        if String::from_utf8_lossy(&buf[..n]).contains("STOPPING=1") {
            break;
        }
    }
    let status = tokio::time::timeout(Duration::from_secs(15), daemon.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "clean exit after SIGTERM: {status}");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_modems_from_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let sim = |_| async {
        Simulator::start(SimConfig {
            status_reports: None,
            ..SimConfig::default()
        })
        .await
        .unwrap()
    };
    let (a, b) = (sim(0).await, sim(1).await);
    let http = smsgate::tls::client_builder().build().unwrap();
    let (config, base, mut daemon) = daemon_with(dir.path(), &a, "", &http).await;
    let modems = async |http: &reqwest::Client| {
        get_json(http, format!("{base}/v1/modems")).await["modems"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(modems(&http).await.len(), 1);
    let hup = |pid: u32| {
        assert!(signal(pid, nix::sys::signal::Signal::SIGHUP));
    };
    let pid = daemon.id().unwrap();

    // A second modem in the file, then SIGHUP: it starts, the first one keeps running.
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "[[modems]]\nname = \"sim1\"\nport = \"{}\"\n",
        b.path().display()
    ));
    std::fs::write(&config, &text).unwrap();
    hup(pid);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let m = modems(&http).await;
        if m.len() == 2 && m.iter().all(|m| m["state"] == "up") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{m:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A broken file: refused, nothing changes, the daemon stays up.
    std::fs::write(&config, text.replace("name = \"sim1\"", "name = \"sim0\"")).unwrap();
    hup(pid);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(daemon.try_wait().unwrap().is_none(), "still running");
    assert_eq!(modems(&http).await.len(), 2);
    let r = http
        .post(format!("{base}/v1/messages"))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"to": "+12025550123", "text": "after the reloads"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while a.sent().len() + b.sent().len() < 1 {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    signal(pid, nix::sys::signal::Signal::SIGTERM);
    let status = tokio::time::timeout(Duration::from_secs(15), daemon.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status}");
    a.shutdown().await;
    b.shutdown().await;
}

/// Under systemd (`JOURNAL_STREAM` naming the stream standard error is), log lines carry the
/// syslog priority the journal reads (`<6>` info, `<4>` warn …) and no timestamp of their own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_to_the_journal_carry_priorities_and_no_timestamps() {
    use std::io::Read;
    use std::os::fd::AsFd;
    let dir = tempfile::tempdir().unwrap();
    let sim = Simulator::start(SimConfig::default()).await.unwrap();
    let config = write_config(dir.path(), &sim, free_port(), "");
    let (read, write) = nix::unistd::pipe().unwrap();
    let st = nix::sys::stat::fstat(write.as_fd()).unwrap();
    let mut daemon = tokio::process::Command::new(env!("CARGO_BIN_EXE_smsgate"))
        .args(["serve", "--config"])
        .arg(&config)
        .env("RUST_LOG", "info")
        .env("JOURNAL_STREAM", format!("{}:{}", st.st_dev, st.st_ino))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(write))
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // Read until the "listening" line.
    let reader = std::thread::spawn(move || {
        let mut f = std::fs::File::from(read);
        let mut all = String::new();
        let mut buf = [0u8; 4096];
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !all.contains("listening") && std::time::Instant::now() < deadline {
            match f.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => all.push_str(&String::from_utf8_lossy(&buf[..n])),
            }
        }
        all
    });
    // A daemon that never says it listens is killed, which ends the reader's pipe.
    let pid = daemon.id().unwrap();
    let killer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(20)).await;
        signal(pid, nix::sys::signal::Signal::SIGKILL);
    });
    let all = tokio::task::spawn_blocking(move || reader.join().unwrap())
        .await
        .unwrap();
    killer.abort();
    let _ = daemon.kill().await;
    let line = all
        .lines()
        .find(|l| l.contains("listening"))
        .unwrap_or_else(|| panic!("no listening line: {all}"));
    assert!(line.starts_with("<6>"), "{line}");
    // No timestamp of its own: the line goes straight from the priority to the level.
    assert!(
        line.starts_with("<6> INFO") || line.starts_with("<6>INFO"),
        "{line}"
    );
    assert!(!all.contains('\x1b'), "colour in the journal: {all}");
    sim.shutdown().await;
}
