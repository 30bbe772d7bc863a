//! `smsgate simulate`: run the modem simulator on a PTY, for demos and trying the gateway out
//! without hardware.
//!
//! Prints the device path (and the link) on stdout, then runs until Ctrl-C or SIGTERM. While
//! stdin is open it takes one command per line (`help` lists them) and acknowledges each with
//! one line.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::sim::{SimConfig, SimHandle, Simulator};

/// Arguments of `smsgate simulate`.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Create this symlink to the PTY device (e.g. `/tmp/modem0`); it follows replugs and is
    /// removed on exit.
    #[arg(long)]
    pub link: Option<PathBuf>,
    /// Append one JSON line per message the simulated network delivered to this file.
    #[arg(long)]
    pub log: Option<PathBuf>,
    /// Append one JSON line per AT command line received (`{"at": …, "line": "AT+CMGS=23"}`)
    /// to this file.
    #[arg(long)]
    pub command_log: Option<PathBuf>,
    /// Network time of each `AT+CMGS`, e.g. `500ms`, `3s`.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "0s")]
    pub latency: Duration,
    /// Probability (0 to 1) that an `AT+CMGS` fails.
    #[arg(long, value_parser = parse_rate, default_value_t = 0.0)]
    pub error_rate: f64,
    /// The `+CMS ERROR` code of those failures.
    #[arg(long, default_value_t = 500)]
    pub error_code: u16,
    /// Emit unsolicited noise (`^RSSI`, `^HCSQ`, `^MODE`, `^BOOT`, `RING`, `+CREG: 1`).
    #[arg(long)]
    pub noise: bool,
    /// Start with echo off (real modems start with it on).
    #[arg(long)]
    pub no_echo: bool,
    /// Delay of status reports after a send that asks for one, or `off`.
    #[arg(long, value_parser = parse_reports, default_value = "0s")]
    pub status_reports: ReportDelay,
    /// TP-ST of the status reports (0 delivered, 70 = 0x46 validity expired).
    #[arg(long, default_value_t = 0)]
    pub status_code: u8,
    /// The SIM asks for this PIN at start and after every replug.
    #[arg(long)]
    pub pin: Option<String>,
    /// End lines with `\r\r\n` like some Huawei firmwares.
    #[arg(long)]
    pub huawei_line_endings: bool,
    /// Send `RDY`, `+CFUN: 1`, `+CPIN: READY`, `SMS Ready` when a client first connects.
    #[arg(long)]
    pub boot_urcs: bool,
    /// Slots in the SIM's message store.
    #[arg(long, default_value_t = 30)]
    pub storage: usize,
    /// The first message index (some modems count from 0).
    #[arg(long, default_value_t = 1)]
    pub first_index: u32,
    /// How long the modem waits after the `> ` prompt for the PDU's Ctrl-Z or ESC before it
    /// answers `+CMS ERROR: 500` and takes commands again, or `off`.
    #[arg(long, value_parser = parse_reports, default_value = "60s")]
    pub prompt_timeout: ReportDelay,
    /// Time per byte on the line, each way: `1ms` is a 9600-baud serial link.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "0s")]
    pub byte_time: Duration,
    /// Seed of the random choices (errors, noise).
    #[arg(long, default_value_t = 0x5EED)]
    pub seed: u64,
}

/// `--status-reports` and `--prompt-timeout`: a delay, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportDelay(pub Option<Duration>);

fn parse_reports(s: &str) -> Result<ReportDelay, String> {
    if s.eq_ignore_ascii_case("off") || s.eq_ignore_ascii_case("none") {
        return Ok(ReportDelay(None));
    }
    humantime::parse_duration(s)
        .map(|d| ReportDelay(Some(d)))
        .map_err(|e| format!("{e} (a duration such as 2s, or off)"))
}

fn parse_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err("a probability between 0 and 1".into()),
    }
}

impl SimulateArgs {
    /// The simulator configuration these arguments describe.
    pub fn config(&self) -> SimConfig {
        SimConfig {
            link: self.link.clone(),
            log: self.log.clone(),
            command_log: self.command_log.clone(),
            latency: self.latency,
            error_rate: self.error_rate,
            error_code: self.error_code,
            echo: !self.no_echo,
            noise: self.noise,
            status_reports: self.status_reports.0,
            status_code: self.status_code,
            pin: self.pin.clone(),
            storage_capacity: self.storage,
            first_index: self.first_index,
            line_ending: if self.huawei_line_endings {
                "\r\r\n"
            } else {
                "\r\n"
            },
            boot_urcs: self.boot_urcs,
            prompt_timeout: self.prompt_timeout.0,
            byte_time: self.byte_time,
            seed: self.seed,
            ..SimConfig::default()
        }
    }
}

/// Runs the simulator until Ctrl-C or SIGTERM.
pub fn run(args: SimulateArgs) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = rt.block_on(serve(args));
    // The stdin reader sits in a blocking read that only a new line ends: do not wait for it.
    rt.shutdown_timeout(Duration::from_millis(100));
    code
}

async fn serve(args: SimulateArgs) -> ExitCode {
    let sim = match Simulator::start(args.config()).await {
        Ok(sim) => sim,
        Err(e) => {
            eprintln!("error: cannot start the simulator: {e}");
            return ExitCode::FAILURE;
        }
    };
    print_device(&sim, args.link.as_ref());
    let stdin_task = tokio::spawn(read_commands(sim.clone()));
    let stopped = stop_signal().await;
    stdin_task.abort();
    sim.shutdown().await;
    match stopped {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: waiting for a signal failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn print_device(sim: &SimHandle, link: Option<&PathBuf>) {
    let device = sim
        .slave_path()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    println!("device: {device}");
    if let Some(link) = link {
        println!("link: {}", link.display());
    }
}

async fn stop_signal() -> std::io::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r,
        _ = term.recv() => Ok(()),
    }
}

/// Reads commands from stdin until it closes; the simulator keeps running after that (also
/// what `smsgate demo` reads on its standard input).
pub(crate) async fn read_commands(sim: SimHandle) {
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        println!("{}", command(&sim, line).await);
    }
}

/// Executes one stdin command and returns its acknowledgement.
async fn command(sim: &SimHandle, line: &str) -> String {
    let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
    match word {
        "inbound" | "inbound-ucs2" => {
            let (from, text) = rest.trim().split_once(' ').unwrap_or((rest.trim(), ""));
            if from.is_empty() {
                return format!("error: usage: {word} <from> <text>");
            }
            match sim.inject_inbound(from, text, word == "inbound-ucs2") {
                Ok(()) => format!("ok: inbound from {from} injected"),
                Err(e) => format!("error: {e}"),
            }
        }
        "unplug" => {
            sim.unplug();
            "ok: unplugged".into()
        }
        "replug" => match sim.replug().await {
            Ok(()) => format!(
                "ok: replugged at {}",
                sim.slave_path()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            ),
            Err(e) => format!("error: {e}"),
        },
        "freeze" => {
            sim.freeze(true);
            "ok: frozen".into()
        }
        "thaw" => {
            sim.freeze(false);
            "ok: thawed".into()
        }
        "full" => {
            sim.set_storage_full(true);
            "ok: storage full".into()
        }
        "notfull" => {
            sim.set_storage_full(false);
            "ok: storage not full".into()
        }
        "reboot" => {
            sim.reboot();
            "ok: rebooted".into()
        }
        "slow" => {
            let arg = rest.trim();
            let arg = if arg.is_empty() { "1ms" } else { arg };
            match humantime::parse_duration(arg) {
                Ok(d) => {
                    sim.set_byte_time(d);
                    format!("ok: {} per byte", humantime::format_duration(d))
                }
                Err(e) => format!("error: {e} (usage: slow [1ms])"),
            }
        }
        "fast" => {
            sim.set_byte_time(Duration::ZERO);
            "ok: full speed".into()
        }
        "pin" => {
            let pin = rest.trim();
            sim.require_pin((!pin.is_empty()).then(|| pin.to_string()));
            if pin.is_empty() {
                "ok: no PIN".into()
            } else {
                "ok: the SIM asks for its PIN".into()
            }
        }
        "stored" => match unescape(rest.trim_start()) {
            Ok(answer) if !answer.is_empty() => match sim.inject_verbatim(&answer) {
                Ok(index) => format!("ok: stored verbatim at index {index}"),
                Err(e) => format!("error: {e}"),
            },
            Ok(_) => {
                "error: usage: stored <answer>, e.g. stored +CMGR: 0,,23\\r\\n0791…\\r\\n".into()
            }
            Err(e) => format!("error: {e}"),
        },
        "sent" => format!("ok: {} messages delivered", sim.sent().len()),
        "help" => "ok: commands: inbound <from> <text> | inbound-ucs2 <from> <text> | \
                   stored <answer> | unplug | replug | reboot | freeze | thaw | full | notfull | \
                   slow [1ms] | fast | pin [<pin>] | sent | help"
            .into(),
        _ => format!("error: unknown command {word:?} (try help)"),
    }
}

/// An escape [`unescape`] does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum EscapeError {
    /// `\x` without two hex digits of an ASCII character.
    #[error("bad escape \\x{0}: two hex digits, 00 to 7F")]
    Hex(String),
    /// A backslash before another character (or at the end).
    #[error("unknown escape \\{0}")]
    Unknown(String),
}

/// `\r`, `\n`, `\t`, `\"`, `\\` and `\xHH` escapes, so that a device's answer fits on one line.
fn unescape(s: &str) -> Result<String, EscapeError> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('r') => out.push('\r'),
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('"') => out.push('"'),
            Some('\\') => out.push('\\'),
            Some('x') => {
                let hex: String = chars.by_ref().take(2).collect();
                let b = u8::from_str_radix(&hex, 16)
                    .ok()
                    .filter(u8::is_ascii)
                    .ok_or(EscapeError::Hex(hex))?;
                out.push(char::from(b));
            }
            other => {
                return Err(EscapeError::Unknown(
                    other.map(String::from).unwrap_or_default(),
                ));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: SimulateArgs,
    }

    #[test]
    fn arguments_map_to_the_config() {
        let cli = Cli::try_parse_from([
            "simulate",
            "--link",
            "/tmp/m0",
            "--latency",
            "500ms",
            "--error-rate",
            "0.1",
            "--error-code",
            "331",
            "--status-reports",
            "off",
            "--no-echo",
            "--huawei-line-endings",
            "--pin",
            "1234",
        ])
        .unwrap();
        let cfg = cli.args.config();
        assert_eq!(cfg.latency, Duration::from_millis(500));
        assert_eq!(cfg.error_code, 331);
        assert_eq!(cfg.status_reports, None);
        assert!(!cfg.echo);
        assert_eq!(cfg.line_ending, "\r\r\n");
        assert_eq!(cfg.pin.as_deref(), Some("1234"));
        let cli = Cli::try_parse_from(["simulate", "--status-reports", "2s"]).unwrap();
        assert_eq!(
            cli.args.config().status_reports,
            Some(Duration::from_secs(2))
        );
        assert!(Cli::try_parse_from(["simulate", "--error-rate", "2"]).is_err());
    }

    #[test]
    fn escapes_are_read_or_named() {
        assert_eq!(unescape(r"a\r\n\x41\\").unwrap(), "a\r\nA\\");
        assert_eq!(unescape(r"\xG1"), Err(EscapeError::Hex("G1".into())));
        assert_eq!(unescape(r"\x80"), Err(EscapeError::Hex("80".into())));
        let e = unescape(r"\q").unwrap_err();
        assert_eq!(e, EscapeError::Unknown("q".into()));
        assert_eq!(e.to_string(), r"unknown escape \q");
        assert_eq!(unescape("\\"), Err(EscapeError::Unknown(String::new())));
    }

    #[tokio::test]
    async fn stdin_commands_acknowledge() {
        let sim = Simulator::start(SimConfig::default()).await.unwrap();
        assert!(
            command(&sim, "inbound +15551234567 hello there")
                .await
                .starts_with("ok:")
        );
        assert!(command(&sim, "inbound").await.starts_with("error:"));
        assert_eq!(command(&sim, "freeze").await, "ok: frozen");
        assert_eq!(command(&sim, "thaw").await, "ok: thawed");
        assert_eq!(command(&sim, "unplug").await, "ok: unplugged");
        assert!(
            command(&sim, "replug")
                .await
                .starts_with("ok: replugged at /dev/")
        );
        assert_eq!(command(&sim, "slow").await, "ok: 1ms per byte");
        assert!(command(&sim, "slow soon").await.starts_with("error:"));
        assert_eq!(command(&sim, "fast").await, "ok: full speed");
        assert_eq!(
            command(&sim, "pin 1234").await,
            "ok: the SIM asks for its PIN"
        );
        assert_eq!(
            // Slot 1 holds the inbound text above.
            command(&sim, r"stored +CMGR: 0,,0\r\n00\r\n").await,
            "ok: stored verbatim at index 2"
        );
        assert!(command(&sim, "stored").await.starts_with("error: usage"));
        assert!(
            command(&sim, r"stored \q")
                .await
                .starts_with("error: unknown escape")
        );
        assert!(
            command(&sim, r"stored \xFF")
                .await
                .starts_with("error: bad escape")
        );
        assert_eq!(command(&sim, "reboot").await, "ok: rebooted");
        assert!(command(&sim, "bogus").await.starts_with("error:"));
        sim.shutdown().await;
    }
}
