//! The modem driver against the simulator over a real pseudo-terminal: the driver opens the PTY's
//! device path with tokio-serial, exactly as it opens /dev/ttyUSB2. One test binary, modules below.

mod corpus;
mod driver;
mod faults;
mod inbound;
mod tools;

use std::time::Duration;

use smsgate::modem::{self, ModemConfig, ModemEvent, ModemHandle};
use smsgate::sim::{SimConfig, SimHandle, Simulator};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// A simulator and a driver talking to it.
pub struct Rig {
    pub sim: SimHandle,
    pub modem: ModemHandle,
    pub events: mpsc::Receiver<ModemEvent>,
    pub cancel: CancellationToken,
    pub task: tokio::task::JoinHandle<()>,
}

/// Short timeouts so fault tests finish fast; still far above the simulator's answer time.
pub fn fast_config(port: &str) -> ModemConfig {
    let mut c = ModemConfig::new("sim0", port);
    c.command_timeout = Duration::from_secs(2);
    c.prompt_timeout = Duration::from_secs(2);
    c.send_timeout = Duration::from_secs(5);
    c.ready_timeout = Duration::from_secs(5);
    c.health_interval = Duration::from_secs(60);
    c.max_backoff = Duration::from_millis(500);
    c
}

pub async fn rig_with(sim_cfg: SimConfig, tweak: impl FnOnce(&mut ModemConfig)) -> Rig {
    let sim = Simulator::start(sim_cfg).await.expect("simulator starts");
    let mut cfg = fast_config(&sim.path().display().to_string());
    tweak(&mut cfg);
    let (tx, events) = mpsc::channel(64);
    let cancel = CancellationToken::new();
    let (modem, task) = modem::spawn(cfg, tx, cancel.clone());
    Rig {
        sim,
        modem,
        events,
        cancel,
        task,
    }
}

pub async fn rig() -> Rig {
    let r = rig_with(SimConfig::default(), |_| {}).await;
    assert!(
        r.modem.wait_up(Duration::from_secs(10)).await,
        "modem up: {:?}",
        r.modem.status()
    );
    r
}

impl Rig {
    pub async fn stop(self) {
        self.cancel.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.task).await;
        self.sim.shutdown().await;
    }

    /// The next inbound message or status report (state events are skipped).
    pub async fn next_inbound(&mut self, within: Duration) -> Option<ModemEvent> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(ModemEvent::State { .. })) => continue,
                Ok(Some(ev)) => return Some(ev),
                _ => return None,
            }
        }
    }
}

/// Polls `f` until it is true or `within` passes.
pub async fn eventually(within: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    f()
}
