//! `smsgate serve`, `smsgate demo`, `smsgate config check`.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use tokio::sync::oneshot;

use crate::api::{ApiConfig, ApiKey};
use crate::config::Config;
use crate::dispatch::{Clock, DispatchConfig};
use crate::modem::ModemConfig;
use crate::server::{Gateway, shutdown_signal};
use crate::sim::{SimConfig, Simulator};

/// Log output.
#[derive(Debug, Clone, Copy, ValueEnum, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Human,
    /// One JSON object per line (for journald/Loki).
    Json,
}

/// Starts tracing: `RUST_LOG` filters (default `info`), human or JSON lines on stderr.
pub fn init_tracing(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sled=warn,axum=info"));
    let journal = stderr_is_journal();
    // https://no-color.org: any non-empty NO_COLOR turns colour off.
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour && !journal)
        .with_writer(std::io::stderr);
    let _ = match (format, journal) {
        (LogFormat::Json, _) => builder.json().flatten_event(true).try_init(),
        // The journal stamps each line itself and reads a `<N>` prefix as its priority.
        (LogFormat::Human, true) => builder
            .event_format(JournalFormat(
                tracing_subscriber::fmt::format().without_time(),
            ))
            .try_init(),
        (LogFormat::Human, false) => builder.try_init(),
    };
}

/// Whether standard error is the journal's stream: systemd sets `JOURNAL_STREAM` to its
/// `device:inode` (a child whose stderr was redirected elsewhere inherits the variable, so the
/// stream itself is compared).
fn stderr_is_journal() -> bool {
    let Some(v) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = v.to_str().and_then(|v| v.split_once(':')) else {
        return false;
    };
    let Ok(st) = nix::sys::stat::fstat(std::io::stderr()) else {
        return false;
    };
    dev.parse::<u64>().is_ok_and(|d| d == st.st_dev)
        && ino.parse::<u64>().is_ok_and(|i| i == st.st_ino)
}

/// The human format with the syslog priority in front (`<3>` error … `<7>` debug), which the
/// journal turns into the entry's priority (`journalctl -p warning`).
struct JournalFormat<F>(F);

impl<S, N, F> tracing_subscriber::fmt::FormatEvent<S, N> for JournalFormat<F>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
    F: tracing_subscriber::fmt::FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        write!(writer, "<{}>", journal_priority(*event.metadata().level()))?;
        self.0.format_event(ctx, writer, event)
    }
}

/// syslog priorities (RFC 5424) of tracing's levels.
fn journal_priority(level: tracing::Level) -> u8 {
    match level {
        tracing::Level::ERROR => 3,
        tracing::Level::WARN => 4,
        tracing::Level::INFO => 6,
        _ => 7,
    }
}

/// Arguments of `smsgate serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The configuration file.
    #[arg(long, short, default_value = "/etc/smsgate/smsgate.toml")]
    pub config: PathBuf,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
}

/// Arguments of `smsgate demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Keep the store here instead of a temporary directory (kept across runs).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// API token to use (default: a new random one).
    #[arg(long, env = "SMSGATE_DEMO_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Where to POST events (message.sent, message.reply, …), e.g. a local receiver.
    #[arg(long)]
    pub webhook_url: Option<String>,
    /// Webhook signing secret (`whsec_…`; default: a new random one, printed).
    #[arg(long, env = "SMSGATE_WEBHOOK_SECRET", hide_env_values = true)]
    pub webhook_secret: Option<String>,
    /// Simulated network time per message.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub latency: std::time::Duration,
    /// Wrong credentials one client address may send within a minute before it gets 429 (as
    /// `[http] auth_failure_limit`; 0: no limit, for tools that send wrong tokens on purpose).
    #[arg(long, default_value_t = 10)]
    pub auth_failure_limit: u32,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
}

/// `smsgate config …`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check a configuration file: every key, type and value; prints what is wrong and where.
    Check {
        /// The file.
        path: PathBuf,
    },
}

fn runtime() -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => Some(rt),
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            None
        }
    }
}

/// `smsgate serve --config PATH`
pub fn serve(args: ServeArgs) -> ExitCode {
    init_tracing(args.log_format);
    let cfg = match Config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(super::EXIT_BAD_INPUT);
        }
    };
    if cfg.api_keys.is_empty() {
        eprintln!(
            "error: {}: no [[api_keys]]: nobody could use the API. Add one with a token of at least 16 characters",
            args.config.display()
        );
        return ExitCode::from(super::EXIT_BAD_INPUT);
    }
    // Every connection is a file descriptor: the soft limit (often 1024) goes up to the hard
    // one (systemd's LimitNOFILE=) so that `max_connections`, the store and the modems fit.
    match crate::connections::raise_open_files_limit() {
        Ok(n) if n < cfg.http.max_connections as u64 + 256 => tracing::warn!(
            open_files = n,
            max_connections = cfg.http.max_connections,
            "the open files limit is low for [http] max_connections: raise LimitNOFILE= or lower max_connections"
        ),
        Ok(n) => tracing::debug!(open_files = n, "open files limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open files limit"),
    }
    let mut gw = match Gateway::from_config(&cfg) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("error: {}: {e}", args.config.display());
            return ExitCode::from(super::EXIT_BAD_INPUT);
        }
    };
    // SIGHUP and POST /v1/admin/reload read the file again (all of it is checked; only the
    // modems change).
    let path = args.config.clone();
    gw.modem_source = Some(std::sync::Arc::new(move || {
        let c = Config::load(&path).map_err(|e| e.to_string())?;
        Ok(c.driver_configs())
    }));
    let Some(rt) = runtime() else {
        return ExitCode::FAILURE;
    };
    rt.block_on(async {
        let shutdown = shutdown_signal();
        match gw.run(shutdown, None).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!(error = %e, "smsgate stopped");
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        }
    })
}

/// `smsgate config check PATH`
pub fn config(cmd: ConfigCommand) -> ExitCode {
    match cmd {
        ConfigCommand::Check { path } => match Config::load(&path) {
            Ok(c) => {
                println!(
                    "{}: OK ({} API key(s), {} modem(s), store in {})",
                    path.display(),
                    c.api_keys.len(),
                    c.modems.len(),
                    c.storage.path.display()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(super::EXIT_BAD_INPUT)
            }
        },
    }
}

/// `smsgate demo`: the whole gateway with the built-in simulated modem, no hardware, no config.
pub fn demo(args: DemoArgs) -> ExitCode {
    init_tracing(args.log_format);
    let Some(rt) = runtime() else {
        return ExitCode::FAILURE;
    };
    rt.block_on(async {
        let tmp;
        let data = match &args.data {
            Some(d) => d.clone(),
            None => match tempfile::Builder::new().prefix("smsgate-demo-").tempdir() {
                Ok(t) => {
                    tmp = t;
                    tmp.path().to_path_buf()
                }
                Err(e) => {
                    eprintln!("error: cannot create a temporary directory: {e}");
                    return ExitCode::FAILURE;
                }
            },
        };
        let log = data.join("simulator-sent.jsonl");
        let sim = match Simulator::start(SimConfig {
            latency: args.latency,
            log: Some(log.clone()),
            status_reports: Some(std::time::Duration::from_secs(2)),
            ..SimConfig::default()
        })
        .await
        {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: cannot start the simulated modem: {e}");
                return ExitCode::FAILURE;
            }
        };
        let secrets = (
            args.token.clone().map_or_else(|| crate::util::secret_hex(24), Ok),
            args.webhook_secret
                .clone()
                .map_or_else(crate::webhook::Signer::generate_secret, Ok),
        );
        let (token, webhook_secret) = match secrets {
            (Ok(t), Ok(w)) => (t, w),
            (Err(e), _) | (_, Err(e)) => {
                eprintln!("error: the system's random source failed: {e}");
                return ExitCode::FAILURE;
            }
        };
        let webhooks = crate::webhook::WebhookConfig {
            url: args.webhook_url.clone(),
            secret: Some(webhook_secret.clone()),
            ..crate::webhook::WebhookConfig::default()
        };
        if let Err(e) = webhooks.validate() {
            eprintln!("error: {e}");
            return ExitCode::from(super::EXIT_BAD_INPUT);
        }
        let gw = Gateway {
            listen: args.listen,
            store_path: data.join("store"),
            cache_mb: 32,
            keys: vec![ApiKey::from_token("demo", &token)],
            modems: vec![ModemConfig::new("simulated", sim.path().display().to_string())],
            api: ApiConfig {
                auth_failures: crate::api::throttle::FailureLimit {
                    max: args.auth_failure_limit,
                    ..Default::default()
                },
                ..ApiConfig::default()
            },
            dispatch: DispatchConfig::default(),
            inbound: crate::server::InboundPolicy {
                reassembly_timeout: std::time::Duration::from_secs(3600),
                ..Default::default()
            },
            webhooks,
            reminders: crate::reminders::Policy::default(),
            clock: Clock::system(),
            modem_source: None,
            twilio: Default::default(),
            // The demo runs on one machine: its receivers listen on 127.0.0.1.
            outbound: crate::outbound::OutboundPolicy::allowing_loopback(),
        };
        let reminders_tz = gw.reminders.timezone.name().to_string();
        let shutdown = shutdown_signal();
        let (tx, rx) = oneshot::channel();
        let run = tokio::spawn(gw.run(shutdown.clone(), Some(tx)));
        let Ok(addr) = rx.await else {
            return match run.await {
                Ok(Err(e)) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
                _ => ExitCode::FAILURE,
            };
        };
        let base = format!("http://{addr}");
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "smsgate demo: the gateway with a simulated modem on {}\n\
             API: {base}/v1\n\
             admin page: {base}/ (log in with the token)\n\
             token: {token}\n\
             webhook secret: {webhook_secret}{hook}\n\
             data: {} (messages the simulated network delivered: {})\n\n\
             Try it:\n\
             curl -s -X POST {base}/v1/messages \\\n  -H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' \\\n  -d '{{\"to\": \"+12025550123\", \"text\": \"Invoice INV-1042: $120.50 due Dec 1. Reply 1 for a call.\"}}'\n\
             curl -s {base}/v1/messages -H 'Authorization: Bearer {token}'\n\n\
             A reminder plan (texts between 08:00 and 21:00, {tz} time; see docs/reminders.md):\n\
             curl -s -X POST {base}/v1/reminders \\\n  -H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' \\\n  -d '{{\"to\": \"+12025550123\", \"invoice\": \"INV-1042\", \"amount\": \"120.50\", \"currency\": \"USD\", \"due_date\": \"{due}\", \"name\": \"Ana\"}}'\n\n\
             Ctrl-C stops it.",
            sim.path().display(),
            data.display(),
            log.display(),
            tz = reminders_tz,
            due = (chrono::Utc::now().date_naive() + chrono::Duration::days(10)),
            hook = args
                .webhook_url
                .as_deref()
                .map(|u| format!(" (events to {u})"))
                .unwrap_or_default(),
        );
        drop(out);
        let code = match run.await {
            Ok(Ok(())) => ExitCode::SUCCESS,
            Ok(Err(e)) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
            Err(_) => ExitCode::FAILURE,
        };
        sim.shutdown().await;
        code
    })
}
