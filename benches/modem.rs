//! How much time the driver adds per message on top of the modem's own latency, through a real
//! PTY to the simulator. Prints its figures; run with `cargo bench --bench modem`.
//!
//! 1. Simulator at zero latency: messages per second through one port (driver + PTY + simulator
//!    overhead, all of it counted against the driver).
//! 2. Simulator at 500 ms per AT+CMGS: a batch of N single-part messages against the ideal
//!    N × 0.5 s; the difference per message is the driver's overhead, and ideal / real is how busy
//!    the port is kept.

/// The daemon's allocator (see src/main.rs), so the figures are the daemon's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::{Duration, Instant};

use smsgate::modem::{self, ModemConfig, PartOutcome};
use smsgate::sim::{SimConfig, Simulator};
use smsgate::sms::{self, SubmitOptions};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

async fn run(latency: Duration, count: usize) -> (Duration, usize) {
    let sim = Simulator::start(SimConfig {
        latency,
        status_reports: None,
        ..SimConfig::default()
    })
    .await
    .expect("simulator");
    let cfg = ModemConfig::new("bench", sim.path().display().to_string());
    let (tx, mut rx) = mpsc::channel(1024);
    tokio::spawn(async move { while rx.recv().await.is_some() {} });
    let cancel = CancellationToken::new();
    let (handle, task) = modem::spawn(cfg, tx, cancel.clone());
    assert!(handle.wait_up(Duration::from_secs(10)).await, "modem up");
    // Encode first: the codec is measured on its own (benches/codec.rs).
    let texts: Vec<_> = (0..count)
        .map(|i| {
            let opts = SubmitOptions {
                concat_reference: i as u8,
                ..SubmitOptions::default()
            };
            sms::encode_submit(
                "+15551234567",
                &format!("Reminder {i}: invoice due Dec 1."),
                &opts,
            )
            .expect("encodes")
            .parts
        })
        .collect();
    let start = Instant::now();
    let mut ok = 0;
    for parts in texts {
        let out = handle.send_parts(parts).await.expect("sends");
        ok += out
            .iter()
            .filter(|o| matches!(o, PartOutcome::Sent { .. }))
            .count();
    }
    let elapsed = start.elapsed();
    cancel.cancel();
    let _ = task.await;
    assert_eq!(
        sim.sent().len(),
        count,
        "every message reached the simulator"
    );
    sim.shutdown().await;
    (elapsed, ok)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        println!("modem driver benchmark (one port, simulator on a PTY)");
        let n = 2000;
        let mut rates = Vec::new();
        for _ in 0..3 {
            let (t, ok) = run(Duration::ZERO, n).await;
            assert_eq!(ok, n);
            rates.push(n as f64 / t.as_secs_f64());
        }
        rates.sort_by(f64::total_cmp);
        let median = rates[1];
        println!(
            "zero latency: {n} messages, median of 3 runs {median:.0} msg/s ({:.3} ms per message, all overhead)",
            1000.0 / median
        );
        let n = 40;
        let latency = Duration::from_millis(500);
        let (t, ok) = run(latency, n).await;
        assert_eq!(ok, n);
        let ideal = latency * n as u32;
        let overhead = (t.saturating_sub(ideal)).as_secs_f64() * 1000.0 / n as f64;
        println!(
            "500 ms latency: {n} messages in {:.3} s, ideal {:.3} s, efficiency {:.2}%, overhead {overhead:.3} ms per message",
            t.as_secs_f64(),
            ideal.as_secs_f64(),
            100.0 * ideal.as_secs_f64() / t.as_secs_f64(),
        );
    });
}
