//! `smsgate modem probe|send`: the first two commands a new user runs, straight on the modem
//! without the daemon.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::json;

use super::EXIT_BAD_INPUT;
use crate::modem::at::AtPort;
use crate::modem::error::{ModemError, Retry};
use crate::modem::init::{self, PinGuard};
use crate::modem::probe::{self, ProbeReport};
use crate::sms::{self, SubmitOptions};

/// `smsgate modem …`
#[derive(Debug, Subcommand)]
pub enum ModemCommand {
    /// Find modems: try each port (or every /dev/ttyUSB*, /dev/ttyACM*, /dev/serial/by-id/*) and
    /// show what answers AT: maker, model, IMEI, SIM, operator, registration, signal, SMSC, storage.
    Probe(ProbeArgs),
    /// Send one SMS straight through a modem, without the daemon.
    Send(SendArgs),
}

/// Arguments of `smsgate modem probe`.
#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// Ports to probe (default: every serial port that looks like a modem).
    pub ports: Vec<String>,
    /// Baud rate (USB modems ignore it).
    #[arg(long, default_value_t = 115_200)]
    pub baud: u32,
    /// Time allowed per port.
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `smsgate modem send`.
#[derive(Debug, Args)]
pub struct SendArgs {
    /// The modem's AT port (e.g. /dev/ttyUSB2, /dev/serial/by-id/…, tcp://host:port).
    pub port: String,
    /// Destination: +E.164, or national digits.
    #[arg(long)]
    pub to: String,
    /// The text; `-` reads it from standard input (one trailing newline is dropped).
    #[arg(long)]
    pub text: String,
    /// SIM PIN, when the SIM asks for one (entered once; never retried if refused).
    #[arg(long, env = "SMSGATE_PIN", hide_env_values = true)]
    pub pin: Option<String>,
    /// Baud rate (USB modems ignore it).
    #[arg(long, default_value_t = 115_200)]
    pub baud: u32,
    /// Ask the network for a delivery report.
    #[arg(long)]
    pub status_report: bool,
    /// Relative validity period, e.g. `12h`, `3d`.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub validity: Option<Duration>,
    /// Most parts the text may take.
    #[arg(long, default_value_t = sms::DEFAULT_MAX_PARTS)]
    pub max_parts: usize,
    /// How long to wait for the network to accept each part.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Print JSON: {"parts":[{"message_reference":n}]} (failed parts carry "error").
    #[arg(long)]
    pub json: bool,
}

/// Runs a `modem` subcommand.
pub fn run(cmd: ModemCommand) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cmd {
        ModemCommand::Probe(args) => rt.block_on(probe_cmd(args)),
        ModemCommand::Send(args) => rt.block_on(send_cmd(args)),
    }
}

async fn probe_cmd(args: ProbeArgs) -> ExitCode {
    let ports: Vec<String> = if args.ports.is_empty() {
        probe::candidate_ports()
            .into_iter()
            .map(|(p, _)| p)
            .collect()
    } else {
        args.ports.clone()
    };
    let mut reports: Vec<ProbeReport> = Vec::new();
    for p in &ports {
        if !args.json {
            eprint!("probing {p} … ");
        }
        let r = probe::probe_port(p, args.baud, args.timeout).await;
        if !args.json {
            eprintln!("{}", if r.answers_at { "answers AT" } else { "no" });
        }
        reports.push(r);
    }
    let hints = if reports.iter().any(|r| r.answers_at) {
        Vec::new()
    } else {
        probe::usb_hints()
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        let _ = writeln!(out, "{}", json!({"ports": reports, "hints": hints}));
    } else {
        if ports.is_empty() {
            let _ = writeln!(
                out,
                "No serial ports found (/dev/ttyUSB*, /dev/ttyACM*, /dev/serial/by-id/*). Is the modem plugged in? `lsusb` shows USB devices; `dmesg | tail` shows what the kernel made of it."
            );
        }
        for r in &reports {
            let _ = write!(out, "{}", render(r));
        }
        for h in &hints {
            let _ = writeln!(out, "hint: {h}");
        }
        if let Some(r) = reports.iter().find(|r| r.answers_at) {
            let _ = writeln!(
                out,
                "\nNext: send a test message with\n  smsgate modem send {} --to +1XXXXXXXXXX --text \"hello from smsgate\"",
                r.port
            );
        }
    }
    if reports.iter().any(|r| r.answers_at) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn render(r: &ProbeReport) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = write!(s, "\n{}", r.port);
    if let Some(d) = &r.device {
        let _ = write!(s, " → {d}");
    }
    let _ = writeln!(s);
    let row = |s: &mut String, k: &str, v: Option<String>| {
        if let Some(v) = v {
            let _ = writeln!(s, "  {k:<13}{v}");
        }
    };
    if let Some(i) = &r.info {
        let maker = match (&i.manufacturer, &i.model) {
            (Some(a), Some(b)) => Some(format!("{a} {b}")),
            (a, b) => a.clone().or(b.clone()),
        };
        row(&mut s, "modem", maker);
        row(&mut s, "firmware", i.revision.clone());
        row(&mut s, "IMEI", i.imei.clone());
        row(&mut s, "SIM", i.sim.clone());
        row(&mut s, "IMSI", i.imsi.clone());
        row(&mut s, "number", i.own_number.clone());
        row(&mut s, "operator", i.operator.clone());
        row(
            &mut s,
            "registration",
            i.registration.map(|r| r.as_str().to_string()),
        );
        row(
            &mut s,
            "signal",
            i.signal.map(|sig| match sig.dbm {
                Some(d) => format!(
                    "{d} dBm {}{} ({}/5)",
                    "▮".repeat(sig.bars.into()),
                    "▯".repeat((5 - sig.bars).into()),
                    sig.bars
                ),
                None => "unknown".into(),
            }),
        );
        row(&mut s, "SMSC", i.smsc.clone().or(Some("not set".into())));
        row(
            &mut s,
            "storage",
            i.storage.as_ref().map(|st| {
                format!(
                    "{}/{} used{}",
                    st.used,
                    st.total,
                    st.memory
                        .as_ref()
                        .map(|m| format!(" ({m})"))
                        .unwrap_or_default()
                )
            }),
        );
    }
    if let Some(p) = &r.problem {
        let _ = writeln!(
            s,
            "  {:<13}{p}",
            if r.answers_at { "note" } else { "problem" }
        );
    }
    s
}

async fn send_cmd(args: SendArgs) -> ExitCode {
    let text = match super::read_text(&args.text) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let opts = SubmitOptions {
        status_report: args.status_report,
        validity: args.validity,
        concat_reference: fastrand::u8(..),
        max_parts: args.max_parts,
        ..SubmitOptions::default()
    };
    // Bad input is found before the modem is touched.
    let msg = match sms::encode_submit(&args.to, &text, &opts) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let stream = match crate::modem::actor::open_port(&args.port, args.baud).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut at = AtPort::new(stream);
    let t = Duration::from_secs(5);
    let setup = async {
        init::sync(&mut at, t).await?;
        init::basic_settings(&mut at, t).await?;
        init::unlock_sim(
            &mut at,
            args.pin.as_deref(),
            &mut PinGuard::default(),
            t,
            Duration::from_secs(30),
        )
        .await?;
        init::wait_sms_ready(&mut at, t, Duration::from_secs(30)).await?;
        at.command("AT+CMGF=0", t).await?;
        // Keep the link up between the parts of a long text where the modem supports it.
        let _ = at.command("AT+CMMS=2", t).await;
        Ok::<_, ModemError>(())
    };
    if let Err(e) = setup.await {
        eprintln!("error: {} is not ready to send: {e}", args.port);
        return ExitCode::FAILURE;
    }
    let mut parts = Vec::new();
    let mut failed = false;
    for (i, part) in msg.parts.iter().enumerate() {
        if failed {
            parts.push(json!({"part": i + 1, "error": "not attempted: an earlier part failed"}));
            continue;
        }
        match at
            .send_pdu(part.tpdu_length, &part.hex(), t, args.timeout)
            .await
        {
            Ok(mr) => {
                if !args.json {
                    println!(
                        "part {}/{}: sent, message reference {mr}",
                        i + 1,
                        msg.parts.len()
                    );
                }
                parts.push(json!({"part": i + 1, "message_reference": mr}));
            }
            Err(f) => {
                failed = true;
                let retryable = f.error.retry() == Retry::Retryable;
                if !args.json {
                    println!(
                        "part {}/{}: FAILED: {}{}{}",
                        i + 1,
                        msg.parts.len(),
                        f.error,
                        if retryable {
                            " (temporary: try again later)"
                        } else {
                            " (permanent)"
                        },
                        if f.maybe_sent {
                            "; the network may have it anyway"
                        } else {
                            ""
                        }
                    );
                }
                parts.push(json!({"part": i + 1, "error": f.error.to_string(),
                                  "retryable": retryable, "maybe_sent": f.maybe_sent}));
            }
        }
    }
    if args.json {
        println!(
            "{}",
            json!({"encoding": msg.encoding.as_str(), "parts": parts})
        );
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
