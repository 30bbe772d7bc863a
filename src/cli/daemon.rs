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
    // The PostgreSQL driver logs every statement's parameters at `debug`: texts, numbers and
    // callback URLs with their passwords. Never, whatever RUST_LOG says (its `info` is the
    // server's notices, noise: warnings and errors only).
    let filter = match "tokio_postgres=warn".parse() {
        Ok(d) => filter.add_directive(d),
        Err(_) => filter,
    };
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
    /// Check a configuration file: every key, type and value; prints what is wrong and where,
    /// and warns about API keys without `scopes` or past their `expires_at`.
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
    if gw.outbound.allows_loopback() {
        tracing::warn!(
            "outbound.allow_loopback is on: callbacks and prechecks may reach services on this machine; it is meant for tests and development"
        );
    }
    for w in cfg.warnings(chrono::Utc::now()) {
        tracing::warn!("{w}");
    }
    // SIGHUP and POST /v1/admin/reload read the file again (all of it is checked; the modems
    // and the API keys change).
    let path = args.config.clone();
    gw.modem_source = Some(std::sync::Arc::new(move || {
        let c = Config::load(&path).map_err(|e| e.to_string())?;
        Ok(c.modem_setups())
    }));
    let path = args.config.clone();
    gw.key_source = Some(std::sync::Arc::new(move || {
        let c = Config::load(&path).map_err(|e| e.to_string())?;
        if c.api_keys.is_empty() {
            return Err(
                "no [[api_keys]]: nobody could use the API (the keys in force are kept)".into(),
            );
        }
        crate::server::api_keys_of(&c).map_err(|e| e.to_string())
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
                eprintln!("error: {}", one_line(&e));
                ExitCode::FAILURE
            }
        }
    })
}

/// An error and its causes on one line, each said once: the messages of the crate's errors
/// already hold the words of the error they come from (`cannot listen on …: Address in use`),
/// which `{:#}` would repeat.
fn one_line(e: &anyhow::Error) -> String {
    let mut line = e.to_string();
    for cause in e.chain().skip(1) {
        let words = cause.to_string();
        if !line.contains(&words) {
            line.push_str(": ");
            line.push_str(&words);
        }
    }
    line
}

/// `smsgate config check PATH`
pub fn config(cmd: ConfigCommand) -> ExitCode {
    match cmd {
        ConfigCommand::Check { path } => match Config::load(&path) {
            Ok(c) => {
                for w in c.warnings(chrono::Utc::now()) {
                    eprintln!("warning: {w}");
                }
                println!(
                    "{}: OK ({} API key(s), {} modem(s), store in {})",
                    path.display(),
                    c.api_keys.len(),
                    c.modems.len(),
                    c.storage.describe()
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
/// It reads the simulator's commands on standard input (as `smsgate simulate` does), and its
/// admin page has a panel of the simulated customers' phones.
pub fn demo(args: DemoArgs) -> ExitCode {
    init_tracing(args.log_format);
    let Some(rt) = runtime() else {
        return ExitCode::FAILURE;
    };
    let code = rt.block_on(run_demo(args));
    // The standard input reader sits in a blocking read that only a new line ends: do not
    // wait for it.
    rt.shutdown_timeout(std::time::Duration::from_millis(100));
    code
}

/// The numbers, invoices and amounts of the banner's examples: each example its own customer
/// and invoice, so that none waits behind another (a second question to a number waits for
/// the first's answer) or is refused (one plan per invoice).
mod examples {
    pub const QUESTION: (&str, &str) = ("+12025550123", "INV-1041");
    pub const PLAN: (&str, &str) = ("+12025550124", "INV-1042");
    pub const CLI: (&str, &str) = ("+12025550125", "INV-1043");
    pub const PYTHON: (&str, &str) = ("+12025550126", "INV-1044");
    pub const TWILIO: (&str, &str) = ("+12025550127", "INV-1045");
}

/// The demo's reminder policy: the shipped one in this machine's time zone (UTC, with a note
/// saying so, when the zone cannot be told).
fn demo_reminders() -> (crate::reminders::Policy, Option<String>) {
    let (timezone, note) = match crate::reminders::window::local_timezone() {
        Ok(tz) => (tz, None),
        Err(e) => (
            chrono_tz::Tz::UTC,
            Some(format!(
                "this machine's time zone cannot be told ({e}): UTC is used; set TZ, e.g. TZ=Europe/Paris"
            )),
        ),
    };
    (
        crate::reminders::Policy {
            timezone,
            ..crate::reminders::Policy::default()
        },
        note,
    )
}

/// When a reminder plan made now sends its first text: at once inside the send window, else
/// when it opens.
fn first_text(policy: &crate::reminders::Policy, now: chrono::DateTime<chrono::Utc>) -> String {
    use crate::reminders::window::Window;
    let tz = policy.timezone;
    let local_now = now.with_timezone(&tz);
    let Ok(window) = Window::from_spec(&policy.window_in(tz.name())) else {
        return "its first text goes at once".into();
    };
    let open = window.next_open(now, &policy.quiet);
    if open <= now {
        return format!(
            "it is {} there, inside the window: its first text goes at once",
            local_now.format("%H:%M")
        );
    }
    let local = open.with_timezone(&tz);
    let date = local.format("%a %-d %b");
    let day = match (local.date_naive() - local_now.date_naive()).num_days() {
        0 => "today".to_string(),
        1 => format!("tomorrow ({date})"),
        _ => date.to_string(),
    };
    format!(
        "it is {} there, outside the window: its first text goes when the window opens, at {} {day}",
        local_now.format("%H:%M"),
        local.format("%H:%M")
    )
}

/// The Twilio-compatible door of the demo: an account SID (`AC` and 32 hex digits) and a token.
fn demo_twilio() -> Result<crate::twilio::TwilioConfig, getrandom::Error> {
    Ok(crate::twilio::TwilioConfig {
        account_sid: Some(format!("AC{}", crate::util::secret_hex(16)?)),
        auth_token: Some(crate::util::secret_hex(24)?),
        inbound_url: None,
    })
}

/// How this program was started, for the banner's command-line examples
/// (`target/release/smsgate` under `cargo run`).
fn program_name() -> String {
    std::env::args()
        .next()
        .filter(|a| a.contains('/') && !a.contains(char::is_whitespace))
        .unwrap_or_else(|| "smsgate".into())
}

async fn run_demo(args: DemoArgs) -> ExitCode {
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
    if let Err(e) = std::fs::create_dir_all(&data) {
        eprintln!("error: cannot create {}: {e}", data.display());
        return ExitCode::FAILURE;
    }
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
        args.token
            .clone()
            .map_or_else(|| crate::util::secret_hex(24), Ok),
        args.webhook_secret
            .clone()
            .map_or_else(crate::webhook::Signer::generate_secret, Ok),
        demo_twilio(),
    );
    let (token, webhook_secret, twilio) = match secrets {
        (Ok(t), Ok(w), Ok(tw)) => (t, w, tw),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
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
    let (reminders, tz_note) = demo_reminders();
    if let Some(note) = &tz_note {
        tracing::warn!("{note}");
    }
    // The demo runs on one machine: its receivers listen on 127.0.0.1 by design, so this is
    // no news worth a warning here (`serve` warns when a config file turns it on).
    tracing::debug!("outbound requests may reach 127.0.0.1 (demo)");
    let gw = Gateway {
        listen: args.listen,
        store_path: data.join("store"),
        store_url: None,
        lease_ttl: crate::store::lease::DEFAULT_TTL,
        cache_mb: 32,
        keys: vec![ApiKey::from_token("demo", &token)],
        modems: vec![ModemConfig::new("simulated", sim.path().display().to_string()).into()],
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
        reminders,
        clock: Clock::system(),
        modem_source: None,
        key_source: None,
        twilio: twilio.clone(),
        outbound: crate::outbound::OutboundPolicy::allowing_loopback(),
        phone: Some(std::sync::Arc::new(crate::api::demo::DemoPhone::new(
            sim.clone(),
        ))),
        retention: crate::config::RetentionConfig::default().policy(),
    };
    let policy = gw.reminders.clone();
    let shutdown = shutdown_signal();
    let (tx, rx) = oneshot::channel();
    let run = tokio::spawn(gw.run(shutdown.clone(), Some(tx)));
    let Ok(addr) = rx.await else {
        return match run.await {
            Ok(Err(e)) => {
                eprintln!("error: {}", one_line(&e));
                ExitCode::FAILURE
            }
            _ => ExitCode::FAILURE,
        };
    };
    let banner = Banner {
        base: format!("http://{addr}"),
        token: &token,
        webhook_secret: &webhook_secret,
        webhook_url: args.webhook_url.as_deref(),
        device: sim.path().display().to_string(),
        data: &data,
        log: &log,
        policy: &policy,
        tz_note: tz_note.as_deref(),
        twilio: &twilio,
        now: chrono::Utc::now(),
        program: program_name(),
    };
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", banner.text());
        let _ = out.flush();
    }
    // The simulator's commands (`inbound <from> <text>`, `unplug`, …), as `smsgate simulate`
    // reads them; a closed or redirected standard input just ends the reader.
    let commands = tokio::spawn(super::simulate::read_commands(sim.clone()));
    let code = match run.await {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::FAILURE
        }
        Err(_) => ExitCode::FAILURE,
    };
    commands.abort();
    sim.shutdown().await;
    code
}

/// What `smsgate demo` prints once it listens.
struct Banner<'a> {
    base: String,
    token: &'a str,
    webhook_secret: &'a str,
    webhook_url: Option<&'a str>,
    device: String,
    data: &'a std::path::Path,
    log: &'a std::path::Path,
    policy: &'a crate::reminders::Policy,
    tz_note: Option<&'a str>,
    twilio: &'a crate::twilio::TwilioConfig,
    now: chrono::DateTime<chrono::Utc>,
    program: String,
}

impl Banner<'_> {
    fn text(&self) -> String {
        use examples::{CLI, PLAN, PYTHON, QUESTION, TWILIO};
        let Banner {
            base, token, now, ..
        } = self;
        let tz = self.policy.timezone;
        let due = (now.with_timezone(&tz).date_naive() + chrono::Duration::days(10)).to_string();
        let due_words = (now.with_timezone(&tz).date_naive() + chrono::Duration::days(10))
            .format("%b %-d")
            .to_string();
        let hook = self
            .webhook_url
            .map(|u| format!(" (events to {u})"))
            .unwrap_or_default();
        let tz_note = self.tz_note.map(|n| format!(" ({n})")).unwrap_or_default();
        let auth =
            format!("-H 'Authorization: Bearer {token}' -H 'Content-Type: application/json'");
        let sid = self.twilio.account_sid.as_deref().unwrap_or_default();
        let twilio_token = self.twilio.auth_token.as_deref().unwrap_or_default();
        let program = &self.program;
        let mut t = String::new();
        t += &format!(
            "smsgate demo: the gateway with a simulated modem on {device}\n\
             API: {base}/v1\n\
             admin page: {base}/ (log in with the token; its \"Simulated phone\" panel shows what each customer received and answers as them)\n\
             token: {token}\n\
             webhook secret: {secret}{hook}\n\
             data: {data} (messages the simulated network delivered: {log})\n\n",
            device = self.device,
            secret = self.webhook_secret,
            data = self.data.display(),
            log = self.log.display(),
        );
        t += &format!(
            "For the command line and the Python examples, in another terminal:\n\
             export SMSGATE_URL={base} SMSGATE_TOKEN={token}\n\n"
        );
        t += &format!(
            "Ask a customer a question (their answer \"1\" or \"2\" is matched to it):\n\
             curl -s -X POST {base}/v1/messages \\\n  {auth} \\\n  \
             -d '{{\"to\": \"{to}\", \"text\": \"Invoice {inv}: $120.50 due {due_words}. Reply 1 for a call back, 2 to pay the minimum.\", \"reply_options\": {{\"1\": \"call_me\", \"2\": \"pay_minimum\"}}, \"metadata\": {{\"invoice\": \"{inv}\"}}}}'\n\
             Answer as that customer: in the admin page's \"Simulated phone\" panel, or type here\n\
             (the simulator's commands on standard input; \"help\" lists them):\n\
             inbound {to} 1\n\
             The answer shows under the message (\"replies\"):\n\
             curl -s '{base}/v1/messages?limit=1' -H 'Authorization: Bearer {token}'\n\n",
            to = QUESTION.0,
            inv = QUESTION.1,
        );
        t += &format!(
            "A reminder plan (see docs/reminders.md): its texts go out between {start} and {end}, \
             {tz} time{tz_note}; {first}:\n\
             curl -s -X POST {base}/v1/reminders \\\n  {auth} \\\n  \
             -d '{{\"to\": \"{to}\", \"invoice\": \"{inv}\", \"amount\": \"120.50\", \"currency\": \"USD\", \"due_date\": \"{due}\", \"name\": \"Ana\"}}'\n\n",
            start = self.policy.window_start,
            end = self.policy.window_end,
            first = first_text(self.policy, *now),
            to = PLAN.0,
            inv = PLAN.1,
        );
        t += &format!(
            "The command line, and Python from the source tree (after the export above):\n\
             {program} status\n\
             {program} send --to {cli_to} --text 'Invoice {cli_inv}: $80.00 due {due_words}.'\n\
             python3 docs/examples/send_reminder.py plan --to {py_to} --invoice {py_inv} \\\n  \
             --amount 75.00 --currency USD --due-date {due} --name Ben\n\n",
            cli_to = CLI.0,
            cli_inv = CLI.1,
            py_to = PYTHON.0,
            py_inv = PYTHON.1,
        );
        t += &format!(
            "The Twilio-compatible API (docs/twilio.md): account SID {sid}, auth token {twilio_token}\n\
             curl -s -u {sid}:{twilio_token} {base}/2010-04-01/Accounts/{sid}/Messages.json \\\n  \
             --data-urlencode To={to} --data-urlencode Body='Invoice {inv}: $45.00 due {due_words}.'\n\n\
             Ctrl-C stops it.",
            to = TWILIO.0,
            inv = TWILIO.1,
        );
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_and_its_causes_are_said_once() {
        use crate::webhook::{UrlError, WebhookConfigError, WebhookError};
        let e = anyhow::Error::new(WebhookError::Config(WebhookConfigError::Url(
            UrlError::NoHost,
        )));
        assert_eq!(format!("{e:#}").matches("has no host").count(), 3);
        assert_eq!(one_line(&e), "webhooks: webhooks.url: has no host");
        let e = anyhow::Error::new(std::io::Error::other("disk on fire")).context("cannot start");
        assert_eq!(one_line(&e), "cannot start: disk on fire");
    }

    fn banner_at(now: &str, tz: chrono_tz::Tz) -> String {
        let policy = crate::reminders::Policy {
            timezone: tz,
            ..crate::reminders::Policy::default()
        };
        let twilio = crate::twilio::TwilioConfig {
            account_sid: Some("AC0123456789abcdef0123456789abcdef".into()),
            auth_token: Some("twilio-token-0123456789".into()),
            inbound_url: None,
        };
        Banner {
            base: "http://127.0.0.1:8080".into(),
            token: "demo-token-0123456789",
            webhook_secret: "whsec_AAAA",
            webhook_url: None,
            device: "/dev/pts/9".into(),
            data: std::path::Path::new("/tmp/d"),
            log: std::path::Path::new("/tmp/d/simulator-sent.jsonl"),
            policy: &policy,
            tz_note: None,
            twilio: &twilio,
            now: chrono::DateTime::parse_from_rfc3339(now).unwrap().to_utc(),
            program: "smsgate".into(),
        }
        .text()
    }

    #[test]
    fn the_banner_asks_a_question_first_and_gives_each_example_its_own_customer() {
        let b = banner_at("2026-12-07T12:00:00Z", chrono_tz::Tz::Europe__Paris);
        let first_curl = b.find("curl -s -X POST").unwrap();
        assert!(b[first_curl..].starts_with("curl -s -X POST http://127.0.0.1:8080/v1/messages"));
        let question = &b[first_curl..b[first_curl..].find("\n\n").unwrap() + first_curl];
        assert!(question.contains(r#""reply_options": {"1": "call_me", "2": "pay_minimum"}"#));
        // The question's body is JSON the API takes.
        let body = question
            .split("-d '")
            .nth(1)
            .unwrap()
            .split("'\n")
            .next()
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["to"], examples::QUESTION.0);
        assert!(b.contains(
            "export SMSGATE_URL=http://127.0.0.1:8080 SMSGATE_TOKEN=demo-token-0123456789"
        ));
        assert!(b.contains("inbound +12025550123 1"));
        assert!(b.contains("Simulated phone"));
        assert!(b.contains("account SID AC0123456789abcdef0123456789abcdef"));
        assert!(b.contains("Europe/Paris"));
        assert!(
            b.contains("08:00 and 21:00, Europe/Paris time; it is 13:00 there, inside the window: its first text goes at once"),
            "{b}"
        );
        for (to, inv) in [
            examples::QUESTION,
            examples::PLAN,
            examples::CLI,
            examples::PYTHON,
            examples::TWILIO,
        ] {
            assert_eq!(
                b.matches(to).count(),
                if to == examples::QUESTION.0 { 2 } else { 1 },
                "{to}"
            );
            assert_eq!(
                b.matches(inv).count(),
                if inv == examples::QUESTION.1 { 2 } else { 1 },
                "{inv}"
            );
        }
    }

    #[test]
    fn the_banner_says_when_a_closed_window_opens() {
        // 23:30 in Paris: closed until 08:00 there tomorrow.
        let b = banner_at("2026-12-07T22:30:00Z", chrono_tz::Tz::Europe__Paris);
        assert!(
            b.contains("it is 23:30 there, outside the window: its first text goes when the window opens, at 08:00 tomorrow (Tue 8 Dec)"),
            "{b}"
        );
        // 05:00 in New York: closed until 08:00 the same day.
        let b = banner_at("2026-12-07T10:00:00Z", chrono_tz::Tz::America__New_York);
        assert!(
            b.contains("America/New_York time; it is 05:00 there, outside the window: its first text goes when the window opens, at 08:00 today"),
            "{b}"
        );
    }
}
