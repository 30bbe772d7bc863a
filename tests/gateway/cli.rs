//! The command-line client (`smsgate status|send|messages|optout|reminders …`): the real binary
//! against the in-process gateway over HTTP on 127.0.0.1, checking what it prints and its exit
//! codes.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::AsyncWriteExt;

use crate::{Running, TOKEN, sim, start, wait_modem_up};

/// What a run printed and how it ended.
pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Run {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }

    /// No escape codes anywhere: the output is piped, not a terminal.
    fn assert_plain(&self) {
        assert!(
            !self.stdout.contains('\x1b') && !self.stderr.contains('\x1b'),
            "escape codes in piped output: {:?}",
            self.stdout
        );
    }
}

/// Runs `smsgate ARGS` with only the `env` given of the client's variables, `stdin` as its
/// standard input; at most 20 s.
async fn smsgate_with(args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Run {
    let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_smsgate"));
    c.args(args)
        .env_remove("SMSGATE_URL")
        .env_remove("SMSGATE_TOKEN")
        .env_remove("SMSGATE_CONFIG")
        .env_remove("NO_COLOR")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in env {
        c.env(k, v);
    }
    let mut child = c.spawn().expect("the binary runs");
    if let Some(text) = stdin {
        let mut i = child.stdin.take().unwrap();
        i.write_all(text.as_bytes()).await.unwrap();
        drop(i);
    }
    let out = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("smsgate {args:?} did not finish in 20 s"))
        .unwrap();
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    run.assert_plain();
    run
}

/// `smsgate ARGS --url <the gateway> --token <TOKEN>`.
pub(crate) async fn cli(r: &Running, args: &[&str]) -> Run {
    let mut all = args.to_vec();
    all.extend(["--url", &r.base, "--token", TOKEN]);
    smsgate_with(&all, &[], None).await
}

async fn gateway() -> (Running, smsgate::sim::SimHandle, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let sim = sim().await;
    let r = start(dir.path().join("store"), &sim, |_| {}).await;
    wait_modem_up(&r).await;
    (r, sim, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_status_send_show_list_cancel_and_exit_codes() {
    let (r, sim, _dir) = gateway().await;

    let st = cli(&r, &["status"]).await;
    assert_eq!(st.code, 0, "{}{}", st.stdout, st.stderr);
    assert!(st.stdout.contains("sim0"), "{}", st.stdout);
    assert!(st.stdout.contains("up"), "{}", st.stdout);
    assert!(st.stdout.contains("QUEUED"), "{}", st.stdout);
    let st = cli(&r, &["status", "--json"]).await;
    assert_eq!(st.code, 0);
    assert_eq!(st.json()["modems"][0]["name"], "sim0");
    assert!(st.json()["stats"]["counts"].is_object());

    // send: the id and the status.
    let sent = cli(
        &r,
        &[
            "send",
            "--to",
            "+12025550123",
            "--text",
            "Invoice INV-1: $10 due Dec 1",
            "--reply-option",
            "1=call_me",
            "--metadata",
            r#"{"invoice":"INV-1"}"#,
        ],
    )
    .await;
    assert_eq!(sent.code, 0, "{}", sent.stderr);
    let mut words = sent.stdout.split_whitespace();
    let id = words.next().unwrap().to_string();
    assert_eq!(id.len(), 26, "{}", sent.stdout);
    assert_eq!(words.next(), Some("queued"), "{}", sent.stdout);
    assert_eq!(
        r.wait_status(&id, "sent", Duration::from_secs(10)).await,
        "sent"
    );

    // show: the message, its status and its history.
    let show = cli(&r, &["messages", "show", &id]).await;
    assert_eq!(show.code, 0, "{}", show.stderr);
    assert!(
        show.stdout.contains("Invoice INV-1: $10 due Dec 1"),
        "{}",
        show.stdout
    );
    assert!(show.stdout.contains("sent"), "{}", show.stdout);
    assert!(show.stdout.contains("1=call_me"), "{}", show.stdout);
    assert!(show.stdout.contains("History"), "{}", show.stdout);
    assert!(show.stdout.contains("accepted"), "{}", show.stdout);
    let show = cli(&r, &["messages", "show", &id, "--json"]).await;
    assert_eq!(show.json()["id"], id.as_str());
    assert!(!show.json()["events"].as_array().unwrap().is_empty());

    // The text from standard input.
    let piped = smsgate_with(
        &[
            "send",
            "--to",
            "+12025550123",
            "--text",
            "-",
            "--json",
            "--url",
            &r.base,
            "--token",
            TOKEN,
        ],
        &[],
        Some("from stdin\n"),
    )
    .await;
    assert_eq!(piped.code, 0, "{}", piped.stderr);
    assert_eq!(piped.json()["text"], "from stdin");

    // list --json: the API's page, with the message.
    let list = cli(&r, &["messages", "list", "--json"]).await;
    assert_eq!(list.code, 0, "{}", list.stderr);
    let v = list.json();
    assert!(
        v["messages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["id"] == id.as_str()),
        "{v}"
    );
    let all = cli(&r, &["messages", "list", "--all", "--limit", "1", "--json"]).await;
    assert_eq!(all.code, 0, "{}", all.stderr);
    assert_eq!(all.json()["messages"].as_array().unwrap().len(), 2);
    assert!(all.json()["next_cursor"].is_null());
    let table = cli(&r, &["messages", "list", "--to", "+12025550123"]).await;
    assert_eq!(table.code, 0);
    assert!(table.stdout.starts_with("ID "), "{}", table.stdout);
    assert!(table.stdout.contains(&id), "{}", table.stdout);

    // cancel of a sent message: refused, with the API's reason.
    let c = cli(&r, &["messages", "cancel", &id]).await;
    assert_eq!(c.code, 1, "{}{}", c.stdout, c.stderr);
    assert!(
        c.stderr
            .contains("only queued, scheduled, unknown or failed"),
        "{}",
        c.stderr
    );
    assert!(c.stderr.contains("not_cancellable"), "{}", c.stderr);

    // An unknown id: 3.
    let nf = cli(&r, &["messages", "show", "01KAR6V1T4Y1Q0ZBC5Z2W3M6XD"]).await;
    assert_eq!(nf.code, 3, "{}{}", nf.stdout, nf.stderr);
    assert!(nf.stderr.contains("not found"), "{}", nf.stderr);

    // An invalid number: 2, naming the field.
    let bad = cli(&r, &["send", "--to", "12345", "--text", "hi"]).await;
    assert_eq!(bad.code, 2, "{}{}", bad.stdout, bad.stderr);
    assert!(bad.stderr.contains("to: "), "{}", bad.stderr);
    assert!(bad.stdout.is_empty());
    // Bad arguments are clap's 2 as well.
    let bad = cli(
        &r,
        &[
            "send",
            "--to",
            "+12025550123",
            "--text",
            "x",
            "--send-at",
            "soon",
        ],
    )
    .await;
    assert_eq!(bad.code, 2, "{}", bad.stderr);

    // A wrong token: 4, with what to check.
    let auth = smsgate_with(
        &[
            "status",
            "--url",
            &r.base,
            "--token",
            "wrong-token-0123456789",
        ],
        &[],
        None,
    )
    .await;
    assert_eq!(auth.code, 4, "{}{}", auth.stdout, auth.stderr);
    assert!(auth.stderr.contains(&r.base), "{}", auth.stderr);
    assert!(auth.stderr.contains("--token"), "{}", auth.stderr);

    assert!(sim.sent().len() >= 2);
    r.stop().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_nothing_listening_exits_4_with_the_url() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // Nothing listens there any more.
    let url = format!("http://127.0.0.1:{port}");
    let run = smsgate_with(
        &["messages", "list", "--url", &url, "--token", TOKEN],
        &[],
        None,
    )
    .await;
    assert_eq!(run.code, 4, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains(&url), "{}", run.stderr);
    assert!(run.stderr.contains("cannot reach"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_optout_add_list_remove() {
    let (r, sim, _dir) = gateway().await;
    let add = cli(
        &r,
        &[
            "optout",
            "add",
            "+1 202 555 0188",
            "--note",
            "asked by phone",
        ],
    )
    .await;
    assert_eq!(add.code, 0, "{}", add.stderr);
    assert!(
        add.stdout.contains("+12025550188 opted out"),
        "{}",
        add.stdout
    );
    let again = cli(&r, &["optout", "add", "+12025550188"]).await;
    assert_eq!(again.code, 0);
    assert!(again.stdout.contains("already"), "{}", again.stdout);

    let list = cli(&r, &["optout", "list"]).await;
    assert_eq!(list.code, 0, "{}", list.stderr);
    assert!(list.stdout.contains("+12025550188"), "{}", list.stdout);
    assert!(list.stdout.contains("asked by phone"), "{}", list.stdout);
    let list = cli(&r, &["optout", "list", "--json"]).await;
    assert_eq!(list.json()["opt_outs"][0]["number"], "+12025550188");

    // A message to it is refused by the daemon: 422, exit 2.
    let refused = cli(&r, &["send", "--to", "+12025550188", "--text", "hi"]).await;
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(refused.stderr.contains("opted_out"), "{}", refused.stderr);

    let rm = cli(&r, &["optout", "remove", "+12025550188"]).await;
    assert_eq!(rm.code, 0, "{}", rm.stderr);
    assert!(rm.stdout.contains("+12025550188"), "{}", rm.stdout);
    let list = cli(&r, &["optout", "list", "--json"]).await;
    assert!(list.json()["opt_outs"].as_array().unwrap().is_empty());
    let rm = cli(&r, &["optout", "remove", "+12025550188"]).await;
    assert_eq!(rm.code, 3, "{}", rm.stderr);

    r.stop().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_reminders_create_show_paid() {
    let (r, sim, _dir) = gateway().await;
    let due = (chrono::Utc::now() + chrono::Duration::days(20))
        .format("%Y-%m-%d")
        .to_string();
    let create = cli(
        &r,
        &[
            "reminders",
            "create",
            "--to",
            "+12025550123",
            "--invoice",
            "INV-CLI-1",
            "--amount",
            "120.50",
            "--currency",
            "USD",
            "--due-date",
            &due,
            "--timezone",
            "America/New_York",
            "--name",
            "Ana",
            "--var",
            "extra=1",
        ],
    )
    .await;
    assert_eq!(create.code, 0, "{}{}", create.stdout, create.stderr);
    assert!(create.stdout.contains("INV-CLI-1"), "{}", create.stdout);
    assert!(create.stdout.contains("upcoming"), "{}", create.stdout);

    let show = cli(&r, &["reminders", "show", "INV-CLI-1"]).await;
    assert_eq!(show.code, 0, "{}", show.stderr);
    for word in [
        "STEP",
        "TEMPLATE",
        "STATUS",
        "SEND AT",
        "TEXT",
        "due_today",
        "scheduled",
        "Ana",
    ] {
        assert!(show.stdout.contains(word), "{word}: {}", show.stdout);
    }
    let steps = cli(&r, &["reminders", "show", "INV-CLI-1", "--json"])
        .await
        .json();
    assert_eq!(steps["status"], "active");

    let paid = cli(&r, &["reminders", "paid", "INV-CLI-1"]).await;
    assert_eq!(paid.code, 0, "{}", paid.stderr);
    assert!(paid.stdout.contains("paid"), "{}", paid.stdout);
    assert!(paid.stdout.contains("payment_received"), "{}", paid.stdout);
    let (code, plan) = r.get("/v1/reminders/INV-CLI-1").await;
    assert_eq!(code, 200);
    assert_eq!(plan["status"], "paid");

    let nf = cli(&r, &["reminders", "show", "INV-NOPE"]).await;
    assert_eq!(nf.code, 3, "{}", nf.stderr);

    // A second plan: listed, changed, cancelled.
    let create = cli(
        &r,
        &[
            "reminders",
            "create",
            "--to",
            "+12025550124",
            "--invoice",
            "INV-CLI-2",
            "--amount",
            "80",
            "--currency",
            "USD",
            "--due-date",
            &due,
        ],
    )
    .await;
    assert_eq!(create.code, 0, "{}{}", create.stdout, create.stderr);
    let list = cli(&r, &["reminders", "list"]).await;
    assert_eq!(list.code, 0, "{}", list.stderr);
    for word in ["INVOICE", "INV-CLI-1", "INV-CLI-2", "paid", "active"] {
        assert!(list.stdout.contains(word), "{word}: {}", list.stdout);
    }
    let only = cli(&r, &["reminders", "list", "--status", "active", "--json"])
        .await
        .json();
    assert_eq!(
        only["reminders"].as_array().map(Vec::len),
        Some(1),
        "{only}"
    );
    let nothing = cli(&r, &["reminders", "patch", "INV-CLI-2"]).await;
    assert_eq!(nothing.code, 2, "{}", nothing.stderr);
    let patched = cli(
        &r,
        &[
            "reminders",
            "patch",
            "INV-CLI-2",
            "--amount",
            "95.25",
            "--var",
            "desk=Bo",
        ],
    )
    .await;
    assert_eq!(patched.code, 0, "{}", patched.stderr);
    let (_, plan) = r.get("/v1/reminders/INV-CLI-2").await;
    assert_eq!(plan["amount"], "95.25", "{plan}");
    assert_eq!(plan["vars"]["desk"], "Bo", "{plan}");
    let deleted = cli(&r, &["reminders", "delete", "INV-CLI-2"]).await;
    assert_eq!(deleted.code, 0, "{}", deleted.stderr);
    let (_, plan) = r.get("/v1/reminders/INV-CLI-2").await;
    assert_eq!(plan["status"], "cancelled", "{plan}");

    r.stop().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_url_and_token_from_environment_or_configuration() {
    let (r, sim, dir) = gateway().await;

    let env = smsgate_with(
        &["status"],
        &[("SMSGATE_URL", &r.base), ("SMSGATE_TOKEN", TOKEN)],
        None,
    )
    .await;
    assert_eq!(env.code, 0, "{}{}", env.stdout, env.stderr);
    assert!(env.stdout.contains("sim0"));

    // A configuration like the daemon's: a wildcard listen address and a hashed key before
    // the plain one.
    let port = r.base.rsplit(':').next().unwrap();
    let config = dir.path().join("smsgate.toml");
    std::fs::write(
        &config,
        format!(
            "[http]\nlisten = \"0.0.0.0:{port}\"\n[storage]\npath = \"{}\"\n\
             [[api_keys]]\nname = \"hashed\"\ntoken_sha256 = \"{}\"\n\
             [[api_keys]]\nname = \"ops\"\ntoken = \"{TOKEN}\"\n",
            dir.path().join("unused-store").display(),
            "c".repeat(64)
        ),
    )
    .unwrap();
    let cfg = config.display().to_string();
    let run = smsgate_with(&["messages", "list", "--json", "--config", &cfg], &[], None).await;
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.json()["messages"].is_array());
    let run = smsgate_with(&["status"], &[("SMSGATE_CONFIG", &cfg)], None).await;
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);

    // A configuration whose keys are all hashed: asks for --token.
    let hashed = dir.path().join("hashed.toml");
    std::fs::write(
        &hashed,
        format!(
            "[http]\nlisten = \"127.0.0.1:{port}\"\n[storage]\npath = \"/tmp/x\"\n\
             [[api_keys]]\nname = \"hashed\"\ntoken_sha256 = \"{}\"\n",
            "c".repeat(64)
        ),
    )
    .unwrap();
    let run = smsgate_with(
        &["status", "--config", &hashed.display().to_string()],
        &[],
        None,
    )
    .await;
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("token_sha256"), "{}", run.stderr);
    assert!(run.stderr.contains("--token"), "{}", run.stderr);

    r.stop().await;
    sim.shutdown().await;
}

/// `smsgate tail --json` follows `GET /v1/events`: a posted message's history entries appear
/// as they happen, one JSON object per line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_tail_follows_live_events() {
    use tokio::io::AsyncBufReadExt;
    let (r, sim, _dir) = gateway().await;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_smsgate"))
        .args(["tail", "--json", "--url", &r.base, "--token", TOKEN])
        .env_remove("SMSGATE_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    // Until tail shows something, it may not be connected yet: post probes until it does.
    let mut connected = false;
    for _ in 0..20 {
        let (code, _) = r
            .post(
                "/v1/messages",
                &serde_json::json!({"to": "+12025550124", "text": "probe"}),
            )
            .await;
        assert_eq!(code, 201);
        if let Ok(Ok(Some(_))) =
            tokio::time::timeout(Duration::from_millis(500), lines.next_line()).await
        {
            connected = true;
            break;
        }
    }
    assert!(connected, "tail printed nothing");
    let (code, m) = r
        .post(
            "/v1/messages",
            &serde_json::json!({"to": "+12025550123", "text": "tail me"}),
        )
        .await;
    assert_eq!(code, 201, "{m}");
    let id = m["id"].as_str().unwrap();
    let mut statuses = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !statuses.contains(&"sent".to_string()) {
        let line = tokio::time::timeout_at(deadline, lines.next_line())
            .await
            .expect("tail prints in time")
            .unwrap()
            .expect("tail still running");
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        if v["message_id"] == id {
            statuses.push(v["status"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(statuses, ["queued", "sending", "sent"]);
    child.kill().await.unwrap();
    r.stop().await;
    sim.shutdown().await;
}

/// `smsgate modem probe` on the port a running daemon drives: it says the port is held and that
/// the daemon may be the one holding it, and exits non-zero.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probing_the_port_a_daemon_drives_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let sim = sim().await;
    let r = start(dir.path().join("store"), &sim, |_| {}).await;
    wait_modem_up(&r).await;
    let port = sim.path().display().to_string();
    let run = smsgate_with(&["modem", "probe", &port, "--timeout", "2s"], &[], None).await;
    let all = format!("{}{}", run.stdout, run.stderr);
    assert_ne!(run.code, 0, "{all}");
    assert!(all.contains("held by another program"), "{all}");
    assert!(all.contains("smsgate daemon"), "{all}");
    r.stop().await;
    sim.shutdown().await;
}

/// `serve` on a port another socket holds: one error line naming the address, with the
/// system's reason said once, and exit code 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_on_a_taken_port_says_why_once() {
    let dir = tempfile::tempdir().unwrap();
    let sim = sim().await;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let config = crate::crash::write_config(dir.path(), &sim, port, "");
    let run = smsgate_with(&["serve", "--config", config.to_str().unwrap()], &[], None).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    let line = run
        .stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line: {}", run.stderr));
    assert!(
        line.starts_with(&format!("error: cannot listen on 127.0.0.1:{port}: ")),
        "{line}"
    );
    assert_eq!(line.matches("in use").count(), 1, "{line}");
    drop(taken);
}

/// `config check` on keys: one without `scopes` passes with a warning naming it, one past its
/// `expires_at` too; scoped keys pass silently; an unknown scope, an empty list or an
/// `expires_at` without an offset are refused with the key's line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_check_warns_about_keys_without_scopes_and_refuses_bad_ones() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let check = async |keys: &str| {
        let path = dir.path().join("smsgate.toml");
        std::fs::write(
            &path,
            format!(
                "[http]\nlisten = \"127.0.0.1:8080\"\n[storage]\npath = \"{}\"\n{keys}",
                store.display()
            ),
        )
        .unwrap();
        smsgate_with(&["config", "check", path.to_str().unwrap()], &[], None).await
    };
    let full = "[[api_keys]]\nname = \"billing\"\ntoken = \"billing-token-0123456789\"\n";
    let run = check(full).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("warning:"), "{}", run.stderr);
    assert!(
        run.stderr.contains("(\"billing\") has no `scopes`"),
        "{}",
        run.stderr
    );

    let scoped = "[[api_keys]]\nname = \"billing\"\ntoken = \"billing-token-0123456789\"\nscopes = [\"send\", \"read\"]\n\
                  [[api_keys]]\nname = \"billing\"\ntoken = \"billing-token-old-0123456789\"\nscopes = [\"send\", \"read\"]\nexpires_at = 2099-12-31T00:00:00Z\n";
    let run = check(scoped).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.stderr.contains("warning"), "{}", run.stderr);

    let expired = "[[api_keys]]\nname = \"old\"\ntoken = \"billing-token-0123456789\"\nscopes = [\"read\"]\nexpires_at = \"2020-01-01T00:00:00Z\"\n";
    let run = check(expired).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("(\"old\") expired at 2020-01-01"),
        "{}",
        run.stderr
    );

    for (bad, words) in [
        ("scopes = [\"sned\"]\n", "sned"),
        ("scopes = []\n", "`scopes` (line 8)"),
        ("expires_at = \"2026-12-31\"\n", "`expires_at` (line 8)"),
        (
            "[[api_keys]]\nname = \"billing\"\ntoken = \"billing-token-two-0123456789\"\n",
            "[[api_keys]] #2 `name` (line 9): must be unique",
        ),
    ] {
        let run = check(&format!("{full}{bad}")).await;
        assert_eq!(run.code, 2, "{bad}: {}", run.stderr);
        assert!(run.stderr.contains(words), "{bad}: {}", run.stderr);
    }
}
