//! The Python examples of docs/integrating.md against the real gateway: `send_reminder.py`
//! sends a message, makes a reminder plan, marks it paid and reads them back;
//! `webhook_receiver.py` gets the daemon's signed events, prints each verified one once, and
//! refuses deliveries that are tampered with, stale, unsigned or signed with another secret.
//! Skipped, with a message, where there is no `python3`.
//!
//! And the docs as a reader pastes them: every shell and Python block of README.md and
//! docs/*.md, in order, against a running `smsgate demo`, except the blocks a
//! `<!-- not-run: why -->` comment marks (listed when the test runs); a
//! `<!-- file: PATH -->` comment marks a block the reader saves as PATH.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use smsgate::webhook::{Signer, WebhookConfig};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStderr, ChildStdout, Command};

use crate::replies::SECRET;
use crate::{Running, TOKEN, sim, start, wait_modem_up};

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("docs/examples")
        .join(name)
}

async fn have_python() -> bool {
    let probe = Command::new("python3")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .status();
    matches!(
        tokio::time::timeout(Duration::from_secs(10), probe).await,
        Ok(Ok(s)) if s.success()
    )
}

/// `webhook_receiver.py` on a free port of 127.0.0.1, and what it prints.
struct PyReceiver {
    _child: Child,
    url: String,
    stdout: Lines<BufReader<ChildStdout>>,
    stderr: Lines<BufReader<ChildStderr>>,
    /// Every event printed so far.
    events: Vec<Value>,
}

impl PyReceiver {
    async fn start() -> PyReceiver {
        let mut child = Command::new("python3")
            .arg(script("webhook_receiver.py"))
            .args(["--host", "127.0.0.1", "--port", "0"])
            .env("SMSGATE_WEBHOOK_SECRET", SECRET)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 runs");
        let stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut stderr = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let first = tokio::time::timeout(Duration::from_secs(10), stderr.next_line())
            .await
            .expect("the receiver starts within 10 s")
            .expect("its standard error")
            .unwrap_or_default();
        let url = first
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("the receiver said {first:?}"))
            .to_string();
        PyReceiver {
            _child: child,
            url,
            stdout,
            stderr,
            events: Vec::new(),
        }
    }

    /// The first event printed that matches `f`, waiting at most 20 s for it.
    async fn wait_for(&mut self, what: &str, f: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(e) = self.events.iter().find(|e| f(e)) {
                return e.clone();
            }
            let line = tokio::time::timeout_at(deadline, self.stdout.next_line())
                .await
                .unwrap_or_else(|_| panic!("no {what} within 20 s; got {:#?}", self.events))
                .expect("the receiver's output")
                .unwrap_or_else(|| panic!("the receiver stopped; got {:#?}", self.events));
            let event: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("the receiver printed {line:?}: {e}"));
            self.events.push(event);
        }
    }

    /// The next line the receiver logs on standard error, within 10 s.
    async fn next_log(&mut self) -> String {
        tokio::time::timeout(Duration::from_secs(10), self.stderr.next_line())
            .await
            .expect("a log line within 10 s")
            .expect("the receiver's standard error")
            .unwrap_or_default()
    }
}

/// `send_reminder.py ARGS` against the gateway: exit code and the JSON it printed.
async fn client(r: &Running, args: &[&str]) -> (i32, Value) {
    let run = Command::new("python3")
        .arg(script("send_reminder.py"))
        .args(args)
        .env("SMSGATE_URL", &r.base)
        .env("SMSGATE_TOKEN", TOKEN)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("send_reminder.py finishes within 30 s")
        .expect("python3 runs");
    let json = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code().unwrap_or(-1), json)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_examples_work_against_the_daemon() {
    if !have_python().await {
        crate::skipped(
            "examples",
            "no python3; the Python examples of the docs were not run",
        );
        return;
    }
    let mut rx = PyReceiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let sim = sim().await;
    let hooks = WebhookConfig {
        url: Some(format!("{}/smsgate/events", rx.url)),
        secret: Some(SECRET.into()),
        retry_backoff: Duration::from_millis(100),
        retry_backoff_max: Duration::from_millis(400),
        ..WebhookConfig::default()
    };
    let r = start(dir.path().join("store"), &sim, |g| g.webhooks = hooks).await;
    wait_modem_up(&r).await;

    // A message, its signed event, and its status read back.
    let (code, m) = client(
        &r,
        &[
            "message",
            "--to",
            "+12025550123",
            "--text",
            "Invoice INV-1042 is due Dec 1.",
            "--invoice",
            "INV-1042",
        ],
    )
    .await;
    assert_eq!(code, 0, "{m}");
    let id = m["id"].as_str().expect("a message id").to_string();
    let sent = rx
        .wait_for("message.sent", |e| {
            e["type"] == "message.sent" && e["data"]["message_id"] == id
        })
        .await;
    assert_eq!(sent["verified"], true);
    assert_eq!(sent["data"]["metadata"]["invoice"], "INV-1042");
    let (code, m) = client(&r, &["status", &id]).await;
    assert_eq!((code, &m["status"]), (0, &json!("sent")), "{m}");

    // A reminder plan, paid, read back by its invoice.
    let due = (chrono::Utc::now() + chrono::Duration::days(40))
        .format("%Y-%m-%d")
        .to_string();
    let plan_args = [
        "plan",
        "--to",
        "+12025550124",
        "--invoice",
        "INV-2001",
        "--amount",
        "120.50",
        "--currency",
        "USD",
        "--due-date",
        &due,
        "--timezone",
        "UTC",
        "--name",
        "Ana",
    ];
    let (code, p) = client(&r, &plan_args).await;
    assert_eq!((code, &p["status"]), (0, &json!("active")), "{p}");
    assert_eq!(p["steps"].as_array().map(Vec::len), Some(6), "{p}");
    // The same request again is the same plan.
    let (code, again) = client(&r, &plan_args).await;
    assert_eq!((code, &again["id"]), (0, &p["id"]), "{again}");
    let (code, paid) = client(&r, &["paid", "INV-2001"]).await;
    assert_eq!((code, &paid["status"]), (0, &json!("paid")), "{paid}");
    assert!(
        paid["steps"]
            .as_array()
            .is_some_and(|s| s.iter().any(|s| s["template"] == "payment_received")),
        "{paid}"
    );
    let (code, shown) = client(&r, &["plan-status", "INV-2001"]).await;
    assert_eq!((code, &shown["status"]), (0, &json!("paid")), "{shown}");
    // Refused input: exit 1, nothing printed on standard output.
    let (code, refused) = client(&r, &["message", "--to", "123", "--text", "x"]).await;
    assert_eq!((code, refused), (1, Value::Null));

    // Deliveries the receiver must refuse, then one it takes, once.
    let http = smsgate::tls::client_builder().build().unwrap();
    let signer = Signer::from_secret(SECRET).unwrap();
    let other = Signer::from_secret(&Signer::generate_secret().unwrap()).unwrap();
    let now = chrono::Utc::now().timestamp();
    let body = |id: &str| {
        json!({"id": id, "type": "message.sent", "created_at": "2026-11-23T15:04:05.123Z",
               "data": {"message_id": "01TEST"}})
        .to_string()
    };
    let events_url = format!("{}/smsgate/events", rx.url);
    let post = |id: String, ts: i64, body: String, signature: Option<String>| {
        let mut req = http
            .post(&events_url)
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", ts.to_string())
            .body(body);
        if let Some(s) = signature {
            req = req.header("webhook-signature", s);
        }
        async move {
            req.send()
                .await
                .expect("the receiver answers")
                .status()
                .as_u16()
        }
    };
    let good = body("evt_good");
    let tampered = good.replace("01TEST", "01OTHER");
    let cases = [
        (
            "a changed body",
            now,
            tampered,
            Some(signer.sign("evt_good", now, &good)),
        ),
        (
            "a stale timestamp",
            now - 600,
            good.clone(),
            Some(signer.sign("evt_good", now - 600, &good)),
        ),
        ("no signature", now, good.clone(), None),
        (
            "another secret",
            now,
            good.clone(),
            Some(other.sign("evt_good", now, &good)),
        ),
    ];
    for (what, ts, body, signature) in cases {
        let status = post("evt_good".into(), ts, body, signature).await;
        assert_eq!(status, 401, "{what} is refused");
        let log = rx.next_log().await;
        assert!(log.starts_with("refused a delivery (401)"), "{what}: {log}");
    }
    // Signed right: taken; again with the same webhook-id: acknowledged, handled once.
    for _ in 0..2 {
        let sig = signer.sign("evt_good", now, &good);
        assert_eq!(
            post("evt_good".into(), now, good.clone(), Some(sig)).await,
            204
        );
    }
    let last = body("evt_last");
    let sig = signer.sign("evt_last", now, &last);
    assert_eq!(post("evt_last".into(), now, last, Some(sig)).await, 204);
    rx.wait_for("evt_last", |e| e["id"] == "evt_last").await;
    let handled = rx.events.iter().filter(|e| e["id"] == "evt_good").count();
    assert_eq!(handled, 1, "a repeated delivery is handled once");
    assert!(
        rx.events.iter().all(|e| e["verified"] == true),
        "{:#?}",
        rx.events
    );

    r.stop().await;
}

/// docs/integrating.md shows each script whole, as it is in docs/examples/.
#[test]
fn integrating_md_shows_the_scripts_as_they_are() {
    let doc = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/integrating.md"),
    )
    .unwrap();
    for name in ["send_reminder.py", "webhook_receiver.py"] {
        let code = std::fs::read_to_string(script(name)).unwrap();
        assert!(
            doc.contains(&format!("```python\n{code}```\n")),
            "docs/integrating.md does not show docs/examples/{name} as it is"
        );
    }
}

/// One fenced block of a page that a reader may paste into a shell or run with Python.
#[derive(Debug)]
struct DocBlock {
    /// `README.md:47`: the page and the line of the opening fence.
    place: String,
    /// `sh` or `python`.
    lang: &'static str,
    body: String,
    mark: Mark,
}

/// What the comment right before a block says about it.
#[derive(Debug, PartialEq)]
enum Mark {
    /// No comment: the block is run.
    Run,
    /// `<!-- not-run: why -->`: shown to the reader, not run by the test.
    NotRun(String),
    /// `<!-- file: PATH -->`: the page shows a file to save as PATH (relative to the
    /// repository's root); the test saves it there for the blocks after it.
    File(String),
}

/// The runnable blocks of one page, in order. A marker comment must stand on the line right
/// before a block (blank lines aside) and give its reason or path.
fn doc_blocks(page: &str, text: &str) -> Vec<DocBlock> {
    let mut out = Vec::new();
    let mut mark: Option<(usize, Mark)> = None;
    let mut lines = text.lines().enumerate();
    while let Some((i, line)) = lines.next() {
        let trimmed = line.trim();
        if let Some(comment) = trimmed
            .strip_prefix("<!--")
            .and_then(|c| c.strip_suffix("-->"))
            .map(str::trim)
        {
            if let Some(why) = comment.strip_prefix("not-run:") {
                assert!(
                    !why.trim().is_empty(),
                    "{page}:{}: a not-run mark says why",
                    i + 1
                );
                mark = Some((i + 1, Mark::NotRun(why.trim().to_string())));
            } else if let Some(path) = comment.strip_prefix("file:") {
                mark = Some((i + 1, Mark::File(path.trim().to_string())));
            }
            continue;
        }
        let Some(info) = trimmed.strip_prefix("```") else {
            if !trimmed.is_empty()
                && let Some((at, _)) = mark.take()
            {
                panic!("{page}:{at}: a mark that is not right before a shell or Python block");
            }
            continue;
        };
        let indent = line.len() - line.trim_start().len();
        let opened = i + 1;
        let mut body = Vec::new();
        for (_, l) in lines.by_ref() {
            if l.trim() == "```" {
                break;
            }
            body.push(l.get(indent..).unwrap_or(l.trim_start()));
        }
        let lang = match info.split_whitespace().next().unwrap_or("") {
            "sh" | "bash" | "shell" => "sh",
            "console" => "console",
            "python" | "py" => "python",
            _ => {
                if let Some((at, _)) = mark.take() {
                    panic!("{page}:{at}: a mark before a block that is neither shell nor Python");
                }
                continue;
            }
        };
        let body = if lang == "console" {
            // Commands after a `$ ` prompt; the rest is what they print.
            body.iter()
                .filter_map(|l| l.strip_prefix("$ "))
                .collect::<Vec<_>>()
                .join("\n")
        } else {
            body.join("\n")
        };
        out.push(DocBlock {
            place: format!("{page}:{opened}"),
            lang: if lang == "python" { "python" } else { "sh" },
            body: body + "\n",
            mark: mark.take().map_or(Mark::Run, |(_, m)| m),
        });
    }
    out
}

/// README.md, then docs/*.md by name.
fn doc_pages() -> Vec<(String, String)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut pages: Vec<String> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".md"))
        .map(|n| format!("docs/{n}"))
        .collect();
    pages.sort();
    pages.insert(0, "README.md".into());
    pages
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(root.join(&p)).unwrap();
            (p, text)
        })
        .collect()
}

/// Kills, at the end of a page (or of the test, however it ends), every process a block left
/// running in the background: each block runs in a process group of its own.
struct Groups(Vec<i32>);

impl Groups {
    fn kill_all(&mut self) {
        for pgid in self.0.drain(..) {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pgid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

impl Drop for Groups {
    fn drop(&mut self) {
        self.kill_all();
    }
}

fn have(program: &str) -> bool {
    std::process::Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Every shell and Python block of README.md and docs/*.md that is not marked `not-run`, in
/// the order of the pages, against a running `smsgate demo` (the real binary, on a free port
/// of 127.0.0.1): each must exit 0 within a minute. The blocks of one page share their shell
/// variables and directory, as in one terminal; every page starts from `SMSGATE_URL`,
/// `SMSGATE_TOKEN` and `SMSGATE_WEBHOOK_SECRET` set to the demo's, in a directory holding
/// copies of `docs/examples/` and `config/`. The blocks not run are listed with their reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_docs_run_in_order_against_the_demo() {
    let missing: Vec<&str> = ["bash", "curl", "jq", "openssl", "python3"]
        .into_iter()
        .filter(|p| !have(p))
        .collect();
    if !missing.is_empty() {
        crate::skipped(
            "docs",
            &format!(
                "no {}; the docs' shell blocks were not run",
                missing.join(", ")
            ),
        );
        return;
    }
    // The receivers of docs/webhooks.md and docs/integrating.md listen on 127.0.0.1:9000.
    assert!(
        std::net::TcpListener::bind("127.0.0.1:9000").is_ok(),
        "127.0.0.1:9000 is taken: the docs' webhook receivers listen there"
    );
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let tmp = tempfile::tempdir().unwrap();
    let port = crate::crash::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let token = "docs-test-token-0123456789abcdef";
    let secret = Signer::generate_secret().unwrap();
    let demo_log = tmp.path().join("demo.log");
    std::fs::create_dir_all(tmp.path().join("demo")).unwrap();
    let _demo = Command::new(env!("CARGO_BIN_EXE_smsgate"))
        .args(["demo", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--data")
        .arg(tmp.path().join("demo"))
        .args(["--latency", "200ms"])
        .env("SMSGATE_DEMO_TOKEN", token)
        .env("SMSGATE_WEBHOOK_SECRET", &secret)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&demo_log).unwrap())
        .stderr(std::fs::File::create(tmp.path().join("demo.err")).unwrap())
        .kill_on_drop(true)
        .spawn()
        .expect("smsgate demo starts");
    let http = smsgate::tls::client_builder().build().unwrap();
    let mut up = false;
    for _ in 0..200 {
        let modems = http
            .get(format!("{base}/v1/modems"))
            .bearer_auth(token)
            .send()
            .await;
        if let Ok(r) = modems
            && let Ok(v) = r.json::<Value>().await
            && v["modems"][0]["state"] == "up"
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        up,
        "the demo's modem is not up within 20 s: {}",
        std::fs::read_to_string(tmp.path().join("demo.err")).unwrap_or_default()
    );

    let bin_dir = PathBuf::from(env!("CARGO_BIN_EXE_smsgate"))
        .parent()
        .unwrap()
        .to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut not_run = Vec::new();
    let mut ran = 0;
    let mut groups = Groups(Vec::new());
    for (page, text) in doc_pages() {
        // A fresh directory and shell for each page, as a reader who starts on that page.
        let work = tmp.path().join(page.replace('/', "_"));
        std::fs::create_dir_all(work.join("docs/examples")).unwrap();
        std::fs::create_dir_all(work.join("config")).unwrap();
        for (from, to) in ["docs/examples", "config"]
            .iter()
            .map(|d| (root.join(d), work.join(d)))
        {
            for entry in std::fs::read_dir(from).unwrap() {
                let entry = entry.unwrap();
                std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
            }
        }
        let state = tmp.path().join(format!("{}.state", page.replace('/', "_")));
        std::fs::write(&state, format!("cd '{}'\n", work.display())).unwrap();
        for (n, block) in doc_blocks(&page, &text).into_iter().enumerate() {
            let run = match &block.mark {
                Mark::NotRun(why) => {
                    not_run.push(format!("{}: {why}", block.place));
                    continue;
                }
                Mark::File(file) => {
                    let file = work.join(file);
                    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
                    std::fs::write(&file, &block.body).unwrap();
                    continue;
                }
                Mark::Run if block.lang == "python" => {
                    let file = tmp.path().join(format!("block-{n}.py"));
                    std::fs::write(&file, &block.body).unwrap();
                    format!("python3 '{}'\n", file.display())
                }
                Mark::Run => block.body.clone(),
            };
            let script = format!(
                "set -eo pipefail\nsource '{state}'\n{run}\n{{ export -p; printf 'cd %q\\n' \"$PWD\"; }} > '{state}'\n",
                state = state.display()
            );
            let log = tmp.path().join(format!("block-{n}.log"));
            let out = std::fs::File::create(&log).unwrap();
            let mut child = Command::new("bash")
                .args(["-c", &script])
                .current_dir(&work)
                .env("PATH", &path)
                .env("SMSGATE_URL", &base)
                .env("SMSGATE_TOKEN", token)
                .env("SMSGATE_WEBHOOK_SECRET", &secret)
                .env_remove("SMSGATE_CONFIG")
                .stdin(Stdio::null())
                .stdout(out.try_clone().unwrap())
                .stderr(out)
                .process_group(0)
                .kill_on_drop(true)
                .spawn()
                .expect("bash runs");
            if let Some(pid) = child.id() {
                groups.0.push(pid as i32);
            }
            let status = tokio::time::timeout(Duration::from_secs(60), child.wait()).await;
            let output = std::fs::read_to_string(&log).unwrap_or_default();
            match status {
                Ok(Ok(s)) if s.success() => ran += 1,
                Ok(Ok(s)) => panic!(
                    "{} ({}) exited with {s}:\n{}\n--- it printed:\n{output}",
                    block.place, block.lang, block.body
                ),
                Ok(Err(e)) => panic!("{}: {e}", block.place),
                Err(_) => panic!(
                    "{} did not finish within 60 s:\n{}\n--- it printed:\n{output}",
                    block.place, block.body
                ),
            }
        }
        groups.kill_all();
    }

    // Each example has a number and an invoice of its own: no question waits behind another
    // page's, and nothing the docs sent failed.
    let (held, failed) = {
        let v: Value = http
            .get(format!("{base}/v1/messages?limit=500"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let messages = v["messages"].as_array().cloned().unwrap_or_default();
        assert!(!messages.is_empty(), "the docs sent nothing: {v}");
        let of = |f: &dyn Fn(&Value) -> bool| -> Vec<Value> {
            messages.iter().filter(|m| f(m)).cloned().collect()
        };
        (
            of(&|m| m["status_reason"] == "awaiting_reply"),
            of(&|m| m["status"] == "failed"),
        )
    };
    assert!(
        held.is_empty(),
        "held behind an earlier question: {held:#?}"
    );
    assert!(failed.is_empty(), "failed: {failed:#?}");

    use std::io::Write;
    let mut err = std::io::stderr();
    let _ = writeln!(
        err,
        "docs: {ran} block(s) run against the demo; {} not run:",
        not_run.len()
    );
    for line in &not_run {
        let _ = writeln!(err, "  not run: {line}");
    }
    assert!(ran >= 10, "only {ran} blocks ran");
}

/// The marks are read as the docs mean them.
#[test]
fn doc_blocks_are_found_with_their_marks() {
    let page = "Intro\n\n```sh\necho one\n```\n\n<!-- not-run: needs a real modem -->\n```sh\nsmsgate modem probe\n```\n\n1. Step:\n   <!-- file: receiver.py -->\n   ```python\n   print('hi')\n   ```\n```toml\n[http]\n```\n```console\n$ echo two\ntwo\n```\n";
    let blocks = doc_blocks("p.md", page);
    let got: Vec<(&str, &str, &Mark)> = blocks
        .iter()
        .map(|b| (b.place.as_str(), b.body.as_str(), &b.mark))
        .collect();
    assert_eq!(
        got,
        vec![
            ("p.md:3", "echo one\n", &Mark::Run),
            (
                "p.md:8",
                "smsgate modem probe\n",
                &Mark::NotRun("needs a real modem".into())
            ),
            (
                "p.md:14",
                "print('hi')\n",
                &Mark::File("receiver.py".into())
            ),
            ("p.md:20", "echo two\n", &Mark::Run),
        ]
    );
}
