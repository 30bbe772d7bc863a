//! Running under systemd (`Type=notify`): `READY=1` once requests are accepted, `STOPPING=1`
//! on shutdown, and the watchdog (`WatchdogSec=`), fed only while the dispatcher is alive.
//!
//! Each dispatcher worker beats a [`Heartbeat`] at least once a minute (its longest sleep),
//! and around every send. A worker stuck for longer than [`STALL`] (a hung serial write, a
//! deadlock) stops the feeding, systemd kills the daemon and `Restart=on-failure` starts it
//! again; a message caught mid-send becomes `unknown`, as after any unclean stop. Outside
//! systemd (no `NOTIFY_SOCKET`) all of this does nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sd_notify::NotifyState;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How long the dispatcher may go without a beat before it counts as stuck: longer than any
/// legitimate send (six parts of up to a minute each); prechecks are asked off the workers.
pub const STALL: Duration = Duration::from_secs(10 * 60);

/// When the dispatcher last showed it was alive. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Heartbeat {
    start: Instant,
    last_ms: Arc<AtomicU64>,
}

impl Default for Heartbeat {
    fn default() -> Self {
        Heartbeat {
            start: Instant::now(),
            last_ms: Arc::new(AtomicU64::new(0)),
        }
    }
}

impl Heartbeat {
    /// Alive now.
    pub fn beat(&self) {
        let ms = self.start.elapsed().as_millis() as u64;
        self.last_ms.fetch_max(ms, Ordering::Relaxed);
    }

    /// Time since the last beat.
    pub fn age(&self) -> Duration {
        let now = self.start.elapsed().as_millis() as u64;
        Duration::from_millis(now.saturating_sub(self.last_ms.load(Ordering::Relaxed)))
    }
}

/// Tells systemd the daemon is ready, with a status line.
pub fn ready(status: &str) {
    if let Err(e) = sd_notify::notify(&[NotifyState::Ready, NotifyState::Status(status)]) {
        tracing::warn!(error = %e, "cannot tell systemd the daemon is ready");
    }
}

/// Tells systemd a reload began (`READY=1` follows when it is done).
pub fn reloading() {
    let _ = sd_notify::notify(&[
        NotifyState::Reloading,
        NotifyState::Status("reloading the modems"),
    ]);
}

/// Tells systemd the daemon is stopping.
pub fn stopping() {
    let _ = sd_notify::notify(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

/// Feeds the watchdog at half its period while `alive` says the dispatcher is not stuck (a
/// gateway with no modem has no dispatcher to watch). `None` when systemd asked for no
/// watchdog.
pub fn spawn_watchdog(
    heartbeat: Heartbeat,
    watched: bool,
    cancel: CancellationToken,
) -> Option<JoinHandle<()>> {
    let period = sd_notify::watchdog_enabled()?;
    let every = (period / 2).max(Duration::from_millis(50));
    tracing::info!(period = ?period, "feeding the systemd watchdog");
    Some(tokio::spawn(async move {
        let mut warned = false;
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
            let age = heartbeat.age();
            if watched && age > STALL {
                if !warned {
                    tracing::error!(stuck_for = ?age, "the dispatcher is stuck; no longer feeding the watchdog, systemd will restart the daemon");
                    warned = true;
                }
                continue;
            }
            warned = false;
            let _ = sd_notify::notify(&[NotifyState::Watchdog]);
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_beat_resets_the_age() {
        let h = Heartbeat::default();
        std::thread::sleep(Duration::from_millis(30));
        assert!(h.age() >= Duration::from_millis(30));
        h.clone().beat();
        assert!(h.age() < Duration::from_millis(30), "clones share the beat");
    }
}

#[cfg(test)]
mod packaging {
    use std::path::Path;

    /// The Debian package's files (`[package.metadata.deb]`) exist, the unit it installs is the
    /// one in systemd/, and its ExecStart is where the package puts the binary.
    #[test]
    fn deb_metadata_names_files_that_exist() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let manifest: toml::Value =
            toml::from_str(&std::fs::read_to_string(root.join("Cargo.toml")).unwrap()).unwrap();
        let deb = &manifest["package"]["metadata"]["deb"];
        let assets = deb["assets"].as_array().unwrap();
        assert!(assets.len() >= 5);
        let mut dests = Vec::new();
        for a in assets {
            let src = a[0].as_str().unwrap();
            dests.push(a[1].as_str().unwrap().to_string());
            if src.starts_with("target/") {
                continue;
            }
            match src.split_once('*') {
                Some((dir, ext)) => {
                    let n = std::fs::read_dir(root.join(dir))
                        .unwrap()
                        .filter(|e| {
                            e.as_ref()
                                .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(ext))
                        })
                        .count();
                    assert!(n > 0, "{src} matches nothing");
                }
                None => assert!(root.join(src).is_file(), "{src} is missing"),
            }
        }
        assert!(dests.iter().any(|d| d == "usr/bin/"));
        let scripts = deb["maintainer-scripts"].as_str().unwrap();
        assert!(root.join(scripts).join("postinst").is_file());
        let units = deb["systemd-units"]["unit-scripts"].as_str().unwrap();
        let unit = std::fs::read_to_string(root.join(units).join("smsgate.service")).unwrap();
        assert!(
            unit.contains("ExecStart=/usr/bin/smsgate serve --config /etc/smsgate/smsgate.toml")
        );
        let conf = deb["conf-files"][0].as_str().unwrap();
        assert_eq!(conf, "/etc/smsgate/smsgate.toml");
    }
}
