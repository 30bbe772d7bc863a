//! Real PostgreSQL servers for tests and benchmarks: made with the machine's own `initdb` in a
//! temporary directory, listening on 127.0.0.1 only, stopped when the process that started
//! them ends (`setpriv --pdeathsig`), as the `postgres` user when run as root (the server
//! refuses to run as root).
//!
//! `SMSGATE_TEST_PG_URL` (a URL whose user may create databases) uses a server already
//! running instead. Without either, [`database`] gives `None` and the tests that need one skip,
//! unless `SMSGATE_REQUIRE_POSTGRES=1` (CI) makes that a failure.

#![allow(missing_docs)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// A server of the tests' own.
pub struct TestServer {
    bindir: PathBuf,
    dir: PathBuf,
    port: u16,
    as_postgres: bool,
    /// Whether the server runs (set by its keeper thread when it ends).
    running: Arc<Mutex<Option<u32>>>,
    /// Extra `-c name=value` settings.
    settings: Vec<String>,
}

fn bindir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("SMSGATE_PG_BINDIR") {
        return Some(PathBuf::from(d));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, b)| b)
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

fn free_port() -> Result<u16, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    l.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

/// Whether a process with this id is alive.
fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Removes the directories of servers whose test process is gone.
fn remove_stale(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for e in entries.filter_map(|e| e.ok()) {
        let name = e.file_name().to_string_lossy().to_string();
        if let Some(pid) = name
            .strip_prefix("smsgate-pg-")
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
            && !alive(pid)
        {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

impl TestServer {
    /// Makes a new cluster and starts it. `settings` are extra `name=value` server settings.
    pub fn start(settings: &[&str]) -> Result<TestServer, String> {
        static N: AtomicU32 = AtomicU32::new(0);
        let bindir = bindir().ok_or("no PostgreSQL server binaries (initdb) found")?;
        let parent = std::env::temp_dir();
        remove_stale(&parent);
        let dir = parent.join(format!(
            "smsgate-pg-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let as_postgres = is_root();
        if as_postgres {
            let ok = Command::new("chown")
                .args(["-R", "postgres:"])
                .arg(&dir)
                .status()
                .map_err(|e| e.to_string())?
                .success();
            if !ok {
                return Err(
                    "running as root, and there is no user `postgres` to run the server".into(),
                );
            }
        }
        let mut s = TestServer {
            bindir,
            dir,
            port: free_port()?,
            as_postgres,
            running: Arc::default(),
            settings: settings.iter().map(|s| s.to_string()).collect(),
        };
        let out = s
            .command("initdb")
            .args([
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
                "-D",
            ])
            .arg(s.data())
            .stdout(Stdio::null())
            .output()
            .map_err(|e| format!("initdb: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "initdb failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        s.start_again()?;
        // A port taken meanwhile by someone else: once more on another.
        if !s.is_running() {
            s.port = free_port()?;
            s.start_again()?;
        }
        Ok(s)
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bindir.join(program);
        if self.as_postgres {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=postgres", "--regid=postgres", "--init-groups"])
                .arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    /// Starts the server (again, after [`TestServer::stop`]) on the same port and data, and
    /// waits until it takes connections.
    pub fn start_again(&self) -> Result<(), String> {
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=postgres", "--regid=postgres", "--init-groups"]);
            c
        } else {
            Command::new("setpriv")
        };
        cmd.args(["--pdeathsig", "KILL"])
            .arg(self.bindir.join("postgres"))
            .arg("-D")
            .arg(self.data())
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-k")
            .arg(&self.dir)
            .args(["-c", "listen_addresses=127.0.0.1"])
            .args(["-c", "max_connections=300"])
            .args(["-c", "shared_buffers=32MB"]);
        for s in &self.settings {
            cmd.arg("-c").arg(s);
        }
        let log = std::fs::File::create(self.dir.join("server.log")).map_err(|e| e.to_string())?;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log));
        // The server is stopped when the thread that started it ends (`--pdeathsig`): this
        // one lives as long as the server.
        let running = self.running.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("smsgate-test-pg".into())
            .spawn(move || match cmd.spawn() {
                Ok(mut child) => {
                    *running.lock().unwrap_or_else(|e| e.into_inner()) = Some(child.id());
                    let _ = tx.send(Ok(()));
                    let _ = child.wait();
                    *running.lock().unwrap_or_else(|e| e.into_inner()) = None;
                }
                Err(e) => {
                    let _ = tx.send(Err(format!("postgres: {e}")));
                }
            })
            .map_err(|e| e.to_string())?;
        rx.recv().map_err(|e| e.to_string())??;
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if !self.is_running() {
                return Ok(());
            }
            let ready = Command::new(self.bindir.join("pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-p", &self.port.to_string()])
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ready {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!(
            "postgres did not start in 60 s: {}",
            std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
        ))
    }

    /// Whether the server process runs.
    pub fn is_running(&self) -> bool {
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    /// Stops the server at once (SIGINT: the "fast" shutdown, which ends every session) and
    /// waits for it to end.
    pub fn stop(&self) {
        let pid = *self.running.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(pid) = pid {
            let _ = Command::new("kill")
                .args(["-INT", &pid.to_string()])
                .status();
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.is_running() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of database `db` as the superuser `postgres`.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Makes a new, empty database and gives its URL.
    pub fn create_database(&self) -> Result<String, String> {
        create_database(&self.bindir, &self.url("postgres"))
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Makes a new database through the server at `admin_url` with `psql`; its URL.
fn create_database(bindir: &Path, admin_url: &str) -> Result<String, String> {
    static N: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "smsgate_t{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let psql = if bindir.join("psql").is_file() {
        bindir.join("psql")
    } else {
        PathBuf::from("psql")
    };
    let out = Command::new(psql)
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", admin_url, "-c"])
        .arg(format!("CREATE DATABASE {name}"))
        .output()
        .map_err(|e| format!("psql: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "CREATE DATABASE failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let mut u = url::Url::parse(admin_url).map_err(|e| e.to_string())?;
    u.set_path(&name);
    Ok(u.to_string())
}

/// The process's shared server (started at the first call), or why there is none.
pub fn shared() -> Result<&'static TestServer, String> {
    static SERVER: OnceLock<Result<TestServer, String>> = OnceLock::new();
    SERVER
        .get_or_init(|| TestServer::start(&["fsync=off", "full_page_writes=off"]))
        .as_ref()
        .map_err(|e| e.clone())
}

/// Whether a missing PostgreSQL fails the tests that need one (`SMSGATE_REQUIRE_POSTGRES=1`).
pub fn required() -> bool {
    std::env::var("SMSGATE_REQUIRE_POSTGRES").is_ok_and(|v| v == "1")
}

/// A new, empty database: on `SMSGATE_TEST_PG_URL`'s server, or on the shared server of the
/// tests' own. `None` (with the reason printed) when there is no PostgreSQL here; panics
/// instead when [`required`].
pub fn database() -> Option<String> {
    let made = match std::env::var("SMSGATE_TEST_PG_URL") {
        Ok(admin) => create_database(&bindir().unwrap_or_default(), &admin),
        Err(_) => shared().and_then(|s| s.create_database()),
    };
    match made {
        Ok(url) => Some(url),
        Err(e) if required() => panic!("PostgreSQL is required here: {e}"),
        Err(e) => {
            eprintln!("skipped: no PostgreSQL ({e})");
            None
        }
    }
}
