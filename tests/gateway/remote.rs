//! Remote modems: two simulated modems served over TCP by a real ser2net (Debian's package) on
//! 127.0.0.1, one raw (`tcp://`), one with RFC 2217 (`rfc2217://`), beside a local one on a PTY.
//! All three send; when the serial server goes away the remote modems fall and the local one
//! carries on; when it comes back they reconnect by themselves, like a replugged USB modem.
//!
//! Without ser2net the test says so and passes, unless `SMSGATE_REQUIRE_SER2NET=1` (set by
//! `.ci/run`, which installs it).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::json;
use smsgate::modem::ModemConfig;
use smsgate::sim::{SimConfig, SimHandle, Simulator};

use crate::crash::free_port;
use crate::{Running, modem_config, start};

const WAIT: Duration = Duration::from_secs(30);

pub(crate) fn ser2net() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from));
    dirs.into_iter()
        .map(|d| d.join("ser2net"))
        .filter(|p| p.is_file())
        // The YAML configuration needs ser2net 4 ("ser2net version 4.3.11"); 3.x reads another.
        .find(|p| {
            crate::version_of(p, "-v").is_some_and(|v| {
                v.split_whitespace()
                    .find_map(|w| w.split('.').next()?.parse::<u32>().ok())
                    .is_some_and(|major| major >= 4)
            })
        })
}

/// ser2net serving `raw` as plain TCP on `p1` and `telnet` with RFC 2217 on `p2`.
fn serve(
    bin: &Path,
    dir: &Path,
    raw: &Path,
    p1: u16,
    telnet: &Path,
    p2: u16,
) -> tokio::process::Child {
    let cfg = dir.join("ser2net.yaml");
    std::fs::write(
        &cfg,
        format!(
            "connection: &raw\n  accepter: tcp,127.0.0.1,{p1}\n  connector: serialdev,{},115200n81,local\n\
             connection: &rfc2217\n  accepter: telnet(rfc2217),tcp,127.0.0.1,{p2}\n  connector: serialdev,{},115200n81,local\n",
            raw.display(),
            telnet.display()
        ),
    )
    .unwrap();
    tokio::process::Command::new(bin)
        .arg("-n")
        .arg("-c")
        .arg(&cfg)
        .arg("-P")
        .arg(dir.join("ser2net.pid"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("ser2net starts")
}

async fn states(r: &Running) -> Vec<(String, String)> {
    let (_, v) = r.get("/v1/modems").await;
    v["modems"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|m| {
                    (
                        m["name"].as_str().unwrap_or("").to_string(),
                        m["state"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

async fn wait_states(r: &Running, what: &str, f: impl Fn(&[(String, String)]) -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let s = states(r).await;
        if f(&s) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what}: {s:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn up(s: &[(String, String)], name: &str) -> bool {
    s.iter().any(|(n, st)| n == name && st == "up")
}

async fn sim_at(link: PathBuf) -> SimHandle {
    Simulator::start(SimConfig {
        status_reports: None,
        link: Some(link),
        ..SimConfig::default()
    })
    .await
    .expect("simulator")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modems_behind_ser2net_raw_and_rfc2217() {
    let Some(bin) = ser2net() else {
        assert!(
            std::env::var("SMSGATE_REQUIRE_SER2NET").is_err(),
            "SMSGATE_REQUIRE_SER2NET is set but ser2net was not found"
        );
        crate::skipped(
            "remote",
            "no ser2net 4 (apt-get install ser2net); modems over TCP and RFC 2217 were not tried",
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let local = sim_at(dir.path().join("local")).await;
    let raw = sim_at(dir.path().join("raw")).await;
    let telnet = sim_at(dir.path().join("telnet")).await;
    let (p1, p2) = (free_port(), free_port());
    let mut server = serve(&bin, dir.path(), &raw.path(), p1, &telnet.path(), p2);

    let remote = |name: &str, port: String| {
        let mut c = ModemConfig::new(name, port);
        c.command_timeout = Duration::from_secs(2);
        c.send_timeout = Duration::from_secs(5);
        c.max_backoff = Duration::from_millis(500);
        c
    };
    let modems = vec![
        modem_config(&local),
        remote("remote-raw", format!("tcp://127.0.0.1:{p1}")),
        remote("remote-2217", format!("rfc2217://127.0.0.1:{p2}")),
    ];
    let r = start(dir.path().join("store"), &local, move |g| {
        g.modems = modems.into_iter().map(Into::into).collect()
    })
    .await;
    wait_states(&r, "all three up", |s| {
        s.iter().filter(|(_, st)| st == "up").count() == 3
    })
    .await;

    // Every modem sends: a stream of messages to different numbers spreads over all three.
    let mut ids = Vec::new();
    for i in 0..30 {
        let (code, v) = r
            .post(
                "/v1/messages",
                &json!({"to": format!("+1202555{:04}", 2000 + i), "text": format!("remote {i}")}),
            )
            .await;
        assert_eq!(code, 201, "{v}");
        ids.push(v["id"].as_str().unwrap().to_string());
    }
    for id in &ids {
        assert_eq!(r.wait_status(id, "sent", WAIT).await, "sent");
    }
    assert_eq!(
        local.sent().len() + raw.sent().len() + telnet.sent().len(),
        30
    );
    assert!(
        !raw.sent().is_empty(),
        "nothing went through the raw TCP modem"
    );
    assert!(
        !telnet.sent().is_empty(),
        "nothing went through the RFC 2217 modem"
    );
    // The texts arrived whole through the Telnet layer (no byte lost or doubled).
    assert!(telnet.sent().iter().all(|m| m.text.starts_with("remote ")));

    // The serial server goes away: the remote modems fall, the local one carries on.
    let _ = server.kill().await;
    wait_states(&r, "the remote modems down", |s| {
        !up(s, "remote-raw") && !up(s, "remote-2217") && up(s, "sim0")
    })
    .await;
    let (_, v) = r
        .post(
            "/v1/messages",
            &json!({"to": "+12025553000", "text": "while they are away"}),
        )
        .await;
    let id = v["id"].as_str().unwrap().to_string();
    assert_eq!(r.wait_status(&id, "sent", WAIT).await, "sent");
    assert_eq!(
        r.get(&format!("/v1/messages/{id}")).await.1["modem"],
        "sim0"
    );

    // It comes back: both reconnect by themselves.
    let _server = serve(&bin, dir.path(), &raw.path(), p1, &telnet.path(), p2);
    wait_states(&r, "the remote modems back", |s| {
        up(s, "remote-raw") && up(s, "remote-2217")
    })
    .await;
    r.stop().await;
    for s in [local, raw, telnet] {
        s.shutdown().await;
    }
}
