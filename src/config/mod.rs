//! The configuration file: one typed struct, parsed from TOML with unknown keys rejected, then
//! checked as a whole. Every error names the file, the key and its line.
//!
//! Secrets may come from the environment instead of the file: `SMSGATE_API_KEY_<NAME>` (a key's
//! token), `SMSGATE_MODEM_<NAME>_PIN` (a modem's PIN), `SMSGATE_WEBHOOK_SECRET` (the webhook
//! signing secret), `SMSGATE_TWILIO_AUTH_TOKEN` (the `[twilio]` auth token), where `<NAME>` is the configured name in
//! upper case with every other character than A–Z and 0–9 turned into `_`.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::modem::ModemConfig;
use crate::sms::NationalLanguage;

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The HTTP API.
    #[serde(default)]
    pub http: HttpConfig,
    /// Where messages are kept.
    pub storage: StorageConfig,
    /// Who may call the API.
    #[serde(default)]
    pub api_keys: Vec<ApiKeyConfig>,
    /// Message defaults.
    #[serde(default)]
    pub sms: SmsConfig,
    /// Queue and retry policy.
    #[serde(default)]
    pub queue: QueueConfig,
    /// Received messages.
    #[serde(default)]
    pub inbound: InboundConfig,
    /// The modems.
    #[serde(default)]
    pub modems: Vec<ModemSection>,
    /// Where events are POSTed.
    #[serde(default)]
    pub webhooks: crate::webhook::WebhookConfig,
    /// How answers are matched to messages.
    #[serde(default)]
    pub replies: crate::replies::RepliesConfig,
    /// Opt-out keywords and confirmations.
    #[serde(default)]
    pub optout: crate::replies::OptOutConfig,
    /// Reminder plans: time zone, locale, schedule, precheck.
    #[serde(default)]
    pub reminders: crate::reminders::config::RemindersConfig,
    /// The hours of the recipient's day texts go out in.
    #[serde(default)]
    pub send_window: crate::reminders::config::SendWindowConfig,
    /// Per-recipient caps of reminder texts.
    #[serde(default)]
    pub caps: crate::reminders::config::CapsConfig,
    /// Templates by name (they override the shipped ones).
    #[serde(default)]
    pub templates: std::collections::BTreeMap<String, String>,
    /// The admin web page at `GET /`.
    #[serde(default)]
    pub dashboard: DashboardConfig,
    /// The Twilio-compatible Messages API, its callbacks and incoming-message webhooks.
    #[serde(default)]
    pub twilio: crate::twilio::TwilioConfig,
    /// Where the gateway's own HTTP requests may go.
    #[serde(default)]
    pub outbound: crate::outbound::OutboundConfig,
}

/// `[dashboard]`: the admin web page.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DashboardConfig {
    /// Serve the page at `GET /` (login with an API token).
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// How long a login lasts without being used.
    #[serde(default = "default_session_ttl", with = "humantime_serde")]
    pub session_ttl: std::time::Duration,
    /// How long a login lasts at most, however much it is used.
    #[serde(default = "default_session_max_age", with = "humantime_serde")]
    pub session_max_age: std::time::Duration,
    /// When the session cookie is marked `Secure`.
    #[serde(default)]
    pub cookie_secure: crate::dashboard::CookieSecure,
}

impl Default for DashboardConfig {
    fn default() -> Self {
        DashboardConfig {
            enabled: true,
            session_ttl: default_session_ttl(),
            session_max_age: default_session_max_age(),
            cookie_secure: crate::dashboard::CookieSecure::Auto,
        }
    }
}

fn default_session_ttl() -> std::time::Duration {
    std::time::Duration::from_secs(12 * 3600)
}

fn default_session_max_age() -> std::time::Duration {
    std::time::Duration::from_secs(7 * 24 * 3600)
}

/// `[inbound]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboundConfig {
    /// How long the parts of a concatenated message wait for the missing ones before the message
    /// is released as partial (e.g. "1h").
    #[serde(default = "default_reassembly_timeout", with = "humantime_serde")]
    pub reassembly_timeout: Duration,
    /// Delete the SMS-SUBMITs and SMS-COMMANDs a phone left in the SIM's inbox (its sent texts
    /// and drafts). By default they are left alone and counted in the modem's status.
    #[serde(default)]
    pub purge_foreign: bool,
}

impl Default for InboundConfig {
    fn default() -> Self {
        InboundConfig {
            reassembly_timeout: default_reassembly_timeout(),
            purge_foreign: false,
        }
    }
}

fn default_reassembly_timeout() -> Duration {
    Duration::from_secs(3600)
}

/// `[http]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Address and port to listen on.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Largest request body accepted, in bytes (larger: 413).
    #[serde(default = "default_body_limit")]
    pub body_limit: usize,
    /// Time a client has to send a whole request header; then its connection is closed.
    #[serde(default = "default_header_timeout", with = "humantime_serde")]
    pub header_timeout: Duration,
    /// Time a client has to send a whole request body, from its header.
    #[serde(default = "default_body_timeout", with = "humantime_serde")]
    pub body_timeout: Duration,
    /// Most connections open at once.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Wrong credentials one address may present within `auth_failure_window` before its
    /// requests are answered 429; 0: no limit.
    #[serde(default = "default_auth_failure_limit")]
    pub auth_failure_limit: u32,
    /// The window of `auth_failure_limit`, from an address's first failure.
    #[serde(default = "default_auth_failure_window", with = "humantime_serde")]
    pub auth_failure_window: Duration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: default_listen(),
            body_limit: default_body_limit(),
            header_timeout: default_header_timeout(),
            body_timeout: default_body_timeout(),
            max_connections: default_max_connections(),
            auth_failure_limit: default_auth_failure_limit(),
            auth_failure_window: default_auth_failure_window(),
        }
    }
}

impl HttpConfig {
    /// The HTTP server's bounds.
    pub fn limits(&self) -> crate::connections::Limits {
        crate::connections::Limits {
            header_timeout: self.header_timeout,
            body_timeout: self.body_timeout,
            max_connections: self.max_connections,
        }
    }

    /// The limit of wrong credentials per address.
    pub fn auth_failures(&self) -> crate::api::throttle::FailureLimit {
        crate::api::throttle::FailureLimit {
            max: self.auth_failure_limit,
            window: self.auth_failure_window,
        }
    }
}

fn default_header_timeout() -> Duration {
    crate::connections::Limits::default().header_timeout
}

fn default_body_timeout() -> Duration {
    crate::connections::Limits::default().body_timeout
}

fn default_max_connections() -> usize {
    crate::connections::Limits::default().max_connections
}

fn default_auth_failure_limit() -> u32 {
    crate::api::throttle::FailureLimit::default().max
}

fn default_auth_failure_window() -> Duration {
    crate::api::throttle::FailureLimit::default().window
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}

fn default_body_limit() -> usize {
    4 * 1024 * 1024
}

/// `[storage]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// Directory of the message store (created if missing).
    pub path: PathBuf,
    /// Memory the store may use as cache, in MiB.
    #[serde(default = "default_cache_mb")]
    pub cache_mb: u64,
}

fn default_cache_mb() -> u64 {
    32
}

/// `[[api_keys]]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    /// A name for logs ("billing").
    pub name: String,
    /// The bearer token, at least 16 characters.
    pub token: Option<String>,
    /// Or its SHA-256 in hex, so the file holds no secret.
    pub token_sha256: Option<String>,
}

/// `[sms]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsConfig {
    /// Region for numbers written without `+` (ISO 3166 code, e.g. "US", "GB").
    pub default_region: Option<String>,
    /// Most parts one text may take.
    #[serde(default = "default_max_parts")]
    pub max_parts: usize,
    /// Ask for delivery reports unless a message says otherwise.
    #[serde(default = "default_true")]
    pub status_report: bool,
    /// TP-VP validity period for sent messages (e.g. "3d"); the SMSC's default when absent.
    #[serde(default, with = "humantime_serde")]
    pub validity: Option<Duration>,
    /// National language tables the encoder may use ("turkish", "spanish", "portuguese").
    #[serde(default)]
    pub national_languages: Vec<String>,
}

impl Default for SmsConfig {
    fn default() -> Self {
        SmsConfig {
            default_region: None,
            max_parts: default_max_parts(),
            status_report: true,
            validity: None,
            national_languages: Vec::new(),
        }
    }
}

fn default_max_parts() -> usize {
    crate::sms::DEFAULT_MAX_PARTS
}

fn default_true() -> bool {
    true
}

/// `[queue]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    /// Attempts before a message that keeps failing with retryable errors is `failed`.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// First retry delay; doubles each attempt, with jitter.
    #[serde(default = "default_backoff", with = "humantime_serde")]
    pub retry_backoff: Duration,
    /// Longest retry delay.
    #[serde(default = "default_backoff_max", with = "humantime_serde")]
    pub retry_backoff_max: Duration,
    /// A message that could only go out later than this after its due time is `expired` with
    /// reason `too_late` instead (no stale bursts after an outage).
    #[serde(default = "default_max_lateness", with = "humantime_serde")]
    pub max_lateness: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            max_attempts: default_max_attempts(),
            retry_backoff: default_backoff(),
            retry_backoff_max: default_backoff_max(),
            max_lateness: default_max_lateness(),
        }
    }
}

fn default_max_attempts() -> u32 {
    5
}

fn default_backoff() -> Duration {
    Duration::from_secs(30)
}

fn default_backoff_max() -> Duration {
    Duration::from_secs(30 * 60)
}

fn default_max_lateness() -> Duration {
    Duration::from_secs(12 * 3600)
}

/// `[[modems]]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModemSection {
    /// A name for logs, metrics and the API.
    pub name: String,
    /// Serial device (`/dev/ttyUSB2`, `/dev/serial/by-id/…`), `tcp://host:port` or
    /// `rfc2217://host:port`.
    pub port: String,
    /// Baud rate.
    #[serde(default = "default_baud")]
    pub baud: u32,
    /// SIM PIN (or `SMSGATE_MODEM_<NAME>_PIN`).
    pub pin: Option<String>,
    /// SMSC number to set when the SIM has none.
    pub smsc: Option<String>,
    /// The SIM's own number (E.164), when `AT+CNUM` does not tell it.
    pub number: Option<String>,
    /// Timeout of ordinary AT commands.
    #[serde(default = "default_command_timeout", with = "humantime_serde")]
    pub command_timeout: Duration,
    /// Wait for the network to accept a part after the PDU.
    #[serde(default = "default_send_timeout", with = "humantime_serde")]
    pub send_timeout: Duration,
    /// Registration and signal polling interval.
    #[serde(default = "default_health_interval", with = "humantime_serde")]
    pub health_interval: Duration,
    /// Most messages in any 60 seconds (an operator's fair-use rule).
    pub max_per_minute: Option<u32>,
    /// Most messages per day (since midnight in `[reminders] timezone`).
    pub max_per_day: Option<u32>,
    /// Falls within ten minutes that make it rest (quarantine); 0: never. Absent: 3.
    pub quarantine_after: Option<u32>,
    /// Only numbers starting with one of these (`["+1"]`); empty or absent: any.
    #[serde(default)]
    pub prefixes: Vec<String>,
    /// Only this traffic: `reminders`, `messages`, `replies`; empty or absent: any.
    #[serde(default)]
    pub only_for: Vec<crate::dispatch::Traffic>,
    /// USSD code of a periodic prepaid balance check (`*100#`); absent: no check.
    pub balance_ussd: Option<String>,
    /// How often the balance is checked.
    #[serde(default = "default_balance_interval", with = "humantime_serde")]
    pub balance_interval: Duration,
    /// Below this balance, a `modem.balance_low` event (and a warning in the log).
    pub balance_low: Option<f64>,
}

fn default_balance_interval() -> Duration {
    Duration::from_secs(24 * 3600)
}

fn default_baud() -> u32 {
    115_200
}

fn default_command_timeout() -> Duration {
    Duration::from_secs(5)
}

fn default_send_timeout() -> Duration {
    Duration::from_secs(60)
}

fn default_health_interval() -> Duration {
    Duration::from_secs(30)
}

impl ModemSection {
    /// The driver configuration for this modem.
    pub fn driver_config(&self) -> ModemConfig {
        let mut c = ModemConfig::new(&self.name, &self.port);
        c.baud = self.baud;
        c.pin = self.pin.clone();
        c.smsc = self.smsc.clone();
        c.number = self.number.clone();
        c.command_timeout = self.command_timeout;
        c.send_timeout = self.send_timeout;
        c.health_interval = self.health_interval;
        c.policy = crate::dispatch::ModemPolicy {
            max_per_minute: self.max_per_minute,
            max_per_day: self.max_per_day,
            prefixes: self.prefixes.clone(),
            only_for: self.only_for.clone(),
            quarantine_after: self.quarantine_after,
        };
        c.balance = self
            .balance_ussd
            .as_ref()
            .map(|code| crate::modem::BalanceCheck {
                code: code.clone(),
                interval: self.balance_interval,
                low: self.balance_low,
            });
        c
    }
}

/// The token of `[[api_keys]]` in the shipped example: a daemon must never accept it.
pub const PLACEHOLDER_TOKEN: &str = "change-me-to-a-long-random-token";

/// Whether a token is the shipped example's placeholder (or an edit of it that keeps its
/// "change me").
fn is_placeholder(token: &str) -> bool {
    let t = token.trim().to_ascii_lowercase();
    t == PLACEHOLDER_TOKEN || t.starts_with("change-me") || t.starts_with("changeme")
}

/// A configuration error: what, where.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}")]
pub struct ConfigError {
    /// The file.
    pub file: String,
    /// The problem, with the key and line.
    pub message: String,
}

impl Config {
    /// The driver configuration of every modem, with the settings that apply to all of them.
    pub fn driver_configs(&self) -> Vec<ModemConfig> {
        self.modems
            .iter()
            .map(|m| {
                let mut c = m.driver_config();
                c.purge_foreign = self.inbound.purge_foreign;
                c
            })
            .collect()
    }

    /// Reads, parses and checks a configuration file, applying environment overrides.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let src = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.display().to_string(),
            message: format!("cannot read: {e}"),
        })?;
        Config::parse(&src, &path.display().to_string(), |k| std::env::var(k).ok())
    }

    /// Parses and checks configuration text. `env` looks up environment overrides.
    pub fn parse(
        src: &str,
        file: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let err = |message: String| ConfigError {
            file: file.to_string(),
            message,
        };
        let mut cfg: Config = toml::from_str(src).map_err(|e| err(one_line(&e.to_string())))?;
        for k in &mut cfg.api_keys {
            if let Some(t) = env(&format!("SMSGATE_API_KEY_{}", env_name(&k.name))) {
                k.token = Some(t);
                k.token_sha256 = None;
            }
        }
        for m in &mut cfg.modems {
            if let Some(p) = env(&format!("SMSGATE_MODEM_{}_PIN", env_name(&m.name))) {
                m.pin = Some(p);
            }
        }
        if let Some(s) = env("SMSGATE_WEBHOOK_SECRET") {
            cfg.webhooks.secret = Some(s);
        }
        if let Some(s) = env("SMSGATE_TWILIO_AUTH_TOKEN") {
            cfg.twilio.auth_token = Some(s);
        }
        cfg.check(src).map_err(err)?;
        Ok(cfg)
    }

    fn check(&self, src: &str) -> Result<(), String> {
        let at = |section: &str, index: Option<usize>, key: &str, msg: String| {
            let place = match index {
                Some(i) => format!("[[{section}]] #{} `{key}`", i + 1),
                None => format!("[{section}] `{key}`"),
            };
            match locate(src, section, index, key) {
                Some(line) => format!("{place} (line {line}): {msg}"),
                None => format!("{place}: {msg}"),
            }
        };
        if self.http.listen.parse::<SocketAddr>().is_err() {
            return Err(at(
                "http",
                None,
                "listen",
                format!(
                    "{:?} is not an address:port such as \"127.0.0.1:8080\"",
                    self.http.listen
                ),
            ));
        }
        let mut names = HashSet::new();
        for (i, k) in self.api_keys.iter().enumerate() {
            if k.name.trim().is_empty() || !names.insert(k.name.clone()) {
                return Err(at(
                    "api_keys",
                    Some(i),
                    "name",
                    "must be non-empty and unique".into(),
                ));
            }
            if k.name == crate::inbound::SYSTEM {
                return Err(at(
                    "api_keys",
                    Some(i),
                    "name",
                    format!(
                        "{:?} is reserved for the texts the gateway sends itself",
                        crate::inbound::SYSTEM
                    ),
                ));
            }
            match (&k.token, &k.token_sha256) {
                (Some(t), None) if t.chars().count() < 16 => {
                    return Err(at(
                        "api_keys",
                        Some(i),
                        "token",
                        "must be at least 16 characters (e.g. `openssl rand -hex 24`)".into(),
                    ));
                }
                (Some(t), None) if is_placeholder(t) => {
                    return Err(at(
                        "api_keys",
                        Some(i),
                        "token",
                        format!(
                            "is the shipped example's placeholder: anyone who read the example knows it. \
                             Set a token of your own (`openssl rand -hex 24`), or give it in {}",
                            format_args!("SMSGATE_API_KEY_{}", env_name(&k.name))
                        ),
                    ));
                }
                (Some(_), None) => {}
                (None, Some(h)) => {
                    if h.len() != 64 || !h.chars().all(|c| c.is_ascii_hexdigit()) {
                        return Err(at(
                            "api_keys",
                            Some(i),
                            "token_sha256",
                            "must be 64 hex digits (`printf %s TOKEN | sha256sum`)".into(),
                        ));
                    }
                }
                _ => {
                    return Err(at(
                        "api_keys",
                        Some(i),
                        "token",
                        "give exactly one of `token` and `token_sha256`".into(),
                    ));
                }
            }
        }
        if !(1..=255).contains(&self.sms.max_parts) {
            return Err(at("sms", None, "max_parts", "must be 1 to 255".into()));
        }
        if let Some(r) = &self.sms.default_region
            && (r.len() != 2 || !r.chars().all(|c| c.is_ascii_alphabetic()))
        {
            return Err(at(
                "sms",
                None,
                "default_region",
                format!("{r:?} is not a two-letter region code such as \"US\""),
            ));
        }
        if let Err(e) = self.national_languages() {
            return Err(at("sms", None, "national_languages", e));
        }
        if let Err(e) = self.twilio.validate() {
            let key = ["inbound_url", "auth_token", "account_sid"]
                .into_iter()
                .find(|k| e.contains(k))
                .unwrap_or("account_sid");
            return Err(at("twilio", None, key, e));
        }
        if let Err(e) = self.webhooks.validate() {
            let key = e
                .strip_prefix("webhooks.")
                .and_then(|r| r.split(':').next())
                .unwrap_or("url")
                .to_string();
            let msg = e
                .split_once(": ")
                .map_or(e.as_str(), |(_, m)| m)
                .to_string();
            return Err(at("webhooks", None, &key, msg));
        }
        if let Ok(listen) = self.http.listen.parse::<SocketAddr>() {
            for (section, url) in [
                ("webhooks", &self.webhooks.url),
                ("reminders", &self.reminders.precheck_url),
            ] {
                if let Some(u) = url
                    && crate::webhook::points_at(u, listen)
                {
                    let key = if section == "webhooks" {
                        "url"
                    } else {
                        "precheck_url"
                    };
                    return Err(at(
                        section,
                        None,
                        key,
                        format!(
                            "{u} points at this gateway's own API ([http] listen = {listen}): events would loop"
                        ),
                    ));
                }
            }
        }
        // The outbound policy, and the configured URLs against it: a URL it would refuse at
        // every attempt is refused at start instead.
        let outbound = self
            .outbound
            .policy()
            .map_err(|e| at("outbound", None, e.key, e.to_string()))?;
        for (section, key, url) in [
            ("webhooks", "url", &self.webhooks.url),
            ("reminders", "precheck_url", &self.reminders.precheck_url),
            ("twilio", "inbound_url", &self.twilio.inbound_url),
        ] {
            if let Some(u) = url
                && let Err(why) = outbound.check_url_str(u)
            {
                return Err(at(
                    section,
                    None,
                    key,
                    format!("{}: {why}", crate::outbound::REFUSED),
                ));
            }
        }
        for (section, r) in [
            ("replies", self.replies.validate()),
            ("optout", self.optout.validate()),
        ] {
            if let Err(e) = r {
                let (key, msg) = e.split_once(": ").unwrap_or(("", e.as_str()));
                let key = if key.contains(' ') { "" } else { key };
                return Err(if key.is_empty() {
                    format!("[{section}]: {e}")
                } else {
                    at(section, None, key, msg.to_string())
                });
            }
        }
        if let Err(e) = self.reminders_policy() {
            // "section: key: what" or "key: what" for [reminders].
            let (section, rest) = match e.split_once(": ") {
                Some((s @ ("send_window" | "caps" | "templates"), rest)) => (s, rest.to_string()),
                _ => ("reminders", e.clone()),
            };
            let (key, msg) = rest.split_once(": ").unwrap_or(("", rest.as_str()));
            return Err(at(section, None, key, msg.to_string()));
        }
        for (key, value) in [
            ("header_timeout", self.http.header_timeout),
            ("body_timeout", self.http.body_timeout),
            ("auth_failure_window", self.http.auth_failure_window),
        ] {
            if value < Duration::from_secs(1) {
                return Err(at("http", None, key, "must be at least 1s".into()));
            }
        }
        if self.http.max_connections == 0 {
            return Err(at(
                "http",
                None,
                "max_connections",
                "must be at least 1".into(),
            ));
        }
        if self.dashboard.session_max_age < std::time::Duration::from_secs(60) {
            return Err(at(
                "dashboard",
                None,
                "session_max_age",
                "must be at least 1m".into(),
            ));
        }
        if self.dashboard.session_ttl < std::time::Duration::from_secs(60) {
            return Err(at(
                "dashboard",
                None,
                "session_ttl",
                "must be at least 1m".into(),
            ));
        }
        if self.queue.max_attempts == 0 {
            return Err(at(
                "queue",
                None,
                "max_attempts",
                "must be at least 1".into(),
            ));
        }
        let mut names = HashSet::new();
        for (i, m) in self.modems.iter().enumerate() {
            if m.name.trim().is_empty() || !names.insert(m.name.clone()) {
                return Err(at(
                    "modems",
                    Some(i),
                    "name",
                    "must be non-empty and unique".into(),
                ));
            }
            if let Some(n) = &m.number
                && !(n.starts_with('+')
                    && (8..=16).contains(&n.len())
                    && n[1..].chars().all(|c| c.is_ascii_digit()))
            {
                return Err(at(
                    "modems",
                    Some(i),
                    "number",
                    format!("{n:?} must be E.164: + and the country code and number, digits only"),
                ));
            }
            if m.port.trim().is_empty() {
                return Err(at(
                    "modems",
                    Some(i),
                    "port",
                    "must name a device, tcp://host:port or rfc2217://host:port".into(),
                ));
            }
            if let Some(p) = &m.pin
                && (!(4..=8).contains(&p.len()) || !p.chars().all(|c| c.is_ascii_digit()))
            {
                return Err(at("modems", Some(i), "pin", "must be 4 to 8 digits".into()));
            }
            if m.send_timeout < Duration::from_secs(1)
                || m.command_timeout < Duration::from_millis(100)
            {
                return Err(at(
                    "modems",
                    Some(i),
                    "send_timeout",
                    "timeouts that short would cut real sends off".into(),
                ));
            }
            for (key, v) in [
                ("max_per_minute", m.max_per_minute),
                ("max_per_day", m.max_per_day),
            ] {
                if v == Some(0) {
                    return Err(at(
                        "modems",
                        Some(i),
                        key,
                        "must be at least 1 (leave it out for no limit)".into(),
                    ));
                }
            }
            if let Some(code) = &m.balance_ussd
                && !crate::modem::ussd::valid_code(code)
            {
                return Err(at(
                    "modems",
                    Some(i),
                    "balance_ussd",
                    format!("{code:?} is not a USSD code such as \"*100#\""),
                ));
            }
            if m.balance_interval < Duration::from_secs(60) {
                return Err(at(
                    "modems",
                    Some(i),
                    "balance_interval",
                    "must be at least 1m".into(),
                ));
            }
            if let Some(p) = m.prefixes.iter().find(|p| {
                p.len() < 2 || !p.starts_with('+') || !p[1..].chars().all(|c| c.is_ascii_digit())
            }) {
                return Err(at(
                    "modems",
                    Some(i),
                    "prefixes",
                    format!("{p:?} is not an international prefix such as \"+1\" or \"+4420\""),
                ));
            }
        }
        if !self.modems.is_empty() {
            for traffic in [
                crate::dispatch::Traffic::Reminders,
                crate::dispatch::Traffic::Messages,
                crate::dispatch::Traffic::Replies,
            ] {
                if !self
                    .modems
                    .iter()
                    .any(|m| m.only_for.is_empty() || m.only_for.contains(&traffic))
                {
                    return Err(at(
                        "modems",
                        None,
                        "only_for",
                        format!(
                            "no modem takes {} traffic: it would wait for ever",
                            traffic.as_str()
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The checked reminder policy of `[reminders]`, `[send_window]`, `[caps]` and
    /// `[templates]`.
    pub fn reminders_policy(&self) -> Result<crate::reminders::Policy, String> {
        crate::reminders::Policy::from_config(
            &self.reminders,
            &self.send_window,
            &self.caps,
            &self.templates,
        )
    }

    /// The national languages named in `[sms]`.
    pub fn national_languages(&self) -> Result<Vec<NationalLanguage>, String> {
        self.sms
            .national_languages
            .iter()
            .map(|l| match l.to_ascii_lowercase().as_str() {
                "turkish" => Ok(NationalLanguage::Turkish),
                "spanish" => Ok(NationalLanguage::Spanish),
                "portuguese" => Ok(NationalLanguage::Portuguese),
                other => Err(format!(
                    "unknown language {other:?} (turkish, spanish or portuguese)"
                )),
            })
            .collect()
    }
}

/// `billing-2` → `BILLING_2`.
pub fn env_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

fn one_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && *l != "|")
        .collect::<Vec<_>>()
        .join(" ")
}

/// The line (1-based) of `key` in `[section]` or in the `index`-th `[[section]]`.
fn locate(src: &str, section: &str, index: Option<usize>, key: &str) -> Option<usize> {
    let header = match index {
        Some(_) => format!("[[{section}]]"),
        None => format!("[{section}]"),
    };
    let mut seen = 0usize;
    let mut inside = false;
    for (n, line) in src.lines().enumerate() {
        let t = line.trim();
        if t.starts_with('[') {
            inside = false;
            if t.starts_with(&header) {
                if index.is_none_or(|i| i == seen) {
                    inside = true;
                }
                seen += 1;
            }
            continue;
        }
        if inside {
            let k = t.split('=').next().unwrap_or("").trim();
            if k == key {
                return Some(n + 1);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[http]
listen = "127.0.0.1:8080"
[storage]
path = "/tmp/x"
[[api_keys]]
name = "billing"
token = "0123456789abcdef0123"
[[modems]]
name = "office-sim"
port = "/dev/ttyUSB2"
pin = "1234"
[[modems]]
name = "second"
port = "tcp://127.0.0.1:7000"
"#;

    fn parse(s: &str) -> Result<Config, ConfigError> {
        Config::parse(s, "smsgate.toml", |_| None)
    }

    #[test]
    fn twilio_section_and_modem_numbers() {
        let with = |twilio: &str| {
            GOOD.replace(
                "[[modems]]\nname = \"office-sim\"",
                &format!("{twilio}\n[[modems]]\nname = \"office-sim\""),
            )
        };
        let ok = with(
            "[twilio]\naccount_sid = \"AC0123456789abcdef0123456789abcdef\"\nauth_token = \"tok-secret-abcdefghij\"",
        );
        let c = parse(&ok).unwrap();
        assert!(c.twilio.account().is_some());
        // The token may come from the environment instead.
        let no_token = with("[twilio]\naccount_sid = \"AC0123456789abcdef0123456789abcdef\"");
        let e = parse(&no_token).unwrap_err().to_string();
        assert!(e.contains("[twilio] `auth_token`"), "{e}");
        let env = Config::parse(&no_token, "smsgate.toml", |k| {
            (k == "SMSGATE_TWILIO_AUTH_TOKEN").then(|| "tok-secret-abcdefghij".to_string())
        })
        .unwrap();
        assert_eq!(
            env.twilio.account().map(|a| a.token),
            Some("tok-secret-abcdefghij".to_string())
        );
        let short = with("[twilio]\naccount_sid = \"AC01\"\nauth_token = \"short\"");
        assert!(parse(&short).unwrap_err().to_string().contains("16"));
        let lonely = with("[twilio]\ninbound_url = \"https://example.com/in\"");
        assert!(parse(&lonely).is_err());
        // Debug output never shows the token.
        assert!(!format!("{:?}", c.twilio).contains("tok-secret-abcdefghij"));
        // A modem's own number is E.164.
        let num = GOOD.replace(
            "pin = \"1234\"",
            "pin = \"1234\"\nnumber = \"+15550001234\"",
        );
        assert_eq!(
            parse(&num).unwrap().modems[0]
                .driver_config()
                .number
                .as_deref(),
            Some("+15550001234")
        );
        let bad = GOOD.replace("pin = \"1234\"", "pin = \"1234\"\nnumber = \"555-1234\"");
        assert!(parse(&bad).unwrap_err().to_string().contains("`number`"));
    }

    #[test]
    fn outbound_section_and_urls_it_refuses() {
        let with = |section: &str| {
            GOOD.replace(
                "[[modems]]\nname = \"office-sim\"",
                &format!("{section}\n[[modems]]\nname = \"office-sim\""),
            )
        };
        let c = parse(&with(
            "[outbound]\nallow = [\"10.0.0.0/8\", \"billing.example.com\"]\ndeny = [\"10.9.0.0/16\"]",
        ))
        .unwrap();
        let p = c.outbound.policy().unwrap();
        assert!(p.check_url_str("http://10.1.2.3/").is_ok());
        assert!(p.check_url_str("http://10.9.2.3/").is_err());
        assert!(p.check_url_str("http://192.168.1.1/").is_err());
        assert!(!p.allows_loopback());
        let e = parse(&with("[outbound]\ndeny = [\"10.0.0.0/99\"]"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("[outbound] `deny`") && e.contains("10.0.0.0/99"),
            "{e}"
        );
        let e = parse(&with("[outbound]\nallow_loopbak = true"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("allow_loopbak"), "{e}");
        // Configured URLs obey the policy too.
        for (section, key) in [
            (
                "[webhooks]\nurl = \"http://169.254.169.254/hook\"",
                "[webhooks] `url`",
            ),
            (
                "[reminders]\nprecheck_url = \"http://127.0.0.1:9000/check\"",
                "[reminders] `precheck_url`",
            ),
            (
                "[outbound]\nallow = [\"192.168.0.0/16\"]\n[webhooks]\nurl = \"http://10.1.2.3/hook\"",
                "[webhooks] `url`",
            ),
        ] {
            let e = parse(&with(section)).unwrap_err().to_string();
            assert!(
                e.contains(key) && e.contains("refused by outbound policy"),
                "{e}"
            );
        }
        // Loopback for tests and development.
        let c = parse(&with(
            "[outbound]\nallow_loopback = true\n[webhooks]\nurl = \"http://127.0.0.1:9000/hook\"",
        ))
        .unwrap();
        assert!(c.outbound.policy().unwrap().allows_loopback());
    }

    #[test]
    fn webhooks_at_the_gateway_itself_are_refused() {
        let own = GOOD.replace(
            "[[modems]]\nname = \"office-sim\"",
            "[webhooks]\nurl = \"http://localhost:8080/hook\"\n[[modems]]\nname = \"office-sim\"",
        );
        let e = parse(&own).unwrap_err().to_string();
        assert!(
            e.contains("[webhooks] `url`") && e.contains("own API"),
            "{e}"
        );
        // Another port on this machine is somebody else's; loopback needs allow_loopback.
        let other = own.replace("localhost:8080", "localhost:9090");
        assert!(parse(&other).is_err());
        let other = other.replace(
            "[webhooks]",
            "[outbound]\nallow_loopback = true\n[webhooks]",
        );
        assert!(parse(&other).is_ok());
        let precheck = GOOD.replace(
            "[[modems]]\nname = \"office-sim\"",
            "[reminders]\nprecheck_url = \"http://127.0.0.1:8080/check\"\n[[modems]]\nname = \"office-sim\"",
        );
        assert!(
            parse(&precheck)
                .unwrap_err()
                .to_string()
                .contains("precheck_url")
        );
    }

    #[test]
    fn parses_a_good_file() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.modems.len(), 2);
        assert_eq!(c.modems[0].baud, 115_200);
        assert_eq!(c.modems[1].send_timeout, Duration::from_secs(60));
        assert_eq!(c.sms.max_parts, 6);
        assert_eq!(c.queue.max_lateness, Duration::from_secs(12 * 3600));
    }

    #[test]
    fn unknown_keys_name_the_key_and_line() {
        let e = parse(
            &GOOD
                .replace("baud", "bauds")
                .replace("pin = \"1234\"", "pni = \"1234\""),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("pni") && e.contains("line 12"), "{e}");
    }

    #[test]
    fn semantic_errors_name_the_key_and_line() {
        let e = parse(&GOOD.replace("\"1234\"", "\"12\""))
            .unwrap_err()
            .to_string();
        assert!(e.contains("[[modems]] #1 `pin` (line 12)"), "{e}");
        let e = parse(&GOOD.replace("tcp://127.0.0.1:7000", ""))
            .unwrap_err()
            .to_string();
        assert!(e.contains("[[modems]] #2 `port` (line 15)"), "{e}");
        let e = parse(&GOOD.replace("0123456789abcdef0123", "short"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("`token` (line 8)"), "{e}");
        let e = parse(&GOOD.replace("127.0.0.1:8080", "localhost"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("[http] `listen` (line 3)"), "{e}");
        let e = parse(&GOOD.replace("name = \"second\"", "name = \"office-sim\""))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unique"), "{e}");
    }

    #[test]
    fn reminder_sections_are_checked_with_key_and_line() {
        let with = |extra: &str| parse(&format!("{GOOD}{extra}"));
        let c = with("[reminders]\ntimezone = \"Europe/Paris\"\nlocale = \"fr-FR\"\n[caps]\nmax_per_recipient = 2\n")
            .unwrap();
        let p = c.reminders_policy().unwrap();
        assert_eq!(p.timezone, chrono_tz::Tz::Europe__Paris);
        assert_eq!(p.cap, 2);
        assert_eq!(p.schedule.len(), 6, "the shipped schedule");
        let e = with("[send_window]\nstart = \"25:00\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("[send_window] `start` (line 17)"), "{e}");
        let e = with("[reminders]\ntimezone = \"Mars/Olympus\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("[reminders] `timezone` (line 17)"), "{e}");
        let e = with("[reminders]\nschedule = [{ offset = \"-3x\", template = \"upcoming\" }]\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("[reminders] `schedule`") && e.contains("-3x"),
            "{e}"
        );
        let e = with("[send_window]\nquiet_weekdays = [\"funday\"]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("funday"), "{e}");
        let e = with("[templates]\nupcoming = \"{{ amount | nosuchfilter }}\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("[templates] `upcoming` (line 17)"), "{e}");
    }

    #[test]
    fn environment_overrides_secrets() {
        let c = Config::parse(GOOD, "f", |k| match k {
            "SMSGATE_API_KEY_BILLING" => Some("from-the-environment-123".into()),
            "SMSGATE_MODEM_OFFICE_SIM_PIN" => Some("4321".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(
            c.api_keys[0].token.as_deref(),
            Some("from-the-environment-123")
        );
        assert_eq!(c.modems[0].pin.as_deref(), Some("4321"));
        assert_eq!(env_name("office-sim"), "OFFICE_SIM");
    }
}

#[cfg(test)]
mod shipped {
    use super::*;

    /// The example shipped in config/ must always parse and pass the checks once its
    /// placeholder token is replaced (here from the environment), and never with it.
    #[test]
    fn shipped_example_config_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/smsgate.toml");
        let src = std::fs::read_to_string(&path).unwrap();
        let e = Config::parse(&src, "smsgate.toml", |_| None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("[[api_keys]] #1 `token`") && e.contains("placeholder"),
            "{e}"
        );
        let cfg = Config::parse(&src, "smsgate.toml", |k| {
            (k == "SMSGATE_API_KEY_BILLING").then(|| "a-token-of-our-own-0123456789".to_string())
        })
        .unwrap();
        assert_eq!(cfg.api_keys.len(), 1);
        assert_eq!(cfg.modems.len(), 1);
        assert_eq!(cfg.http.listen, "127.0.0.1:8080");
        assert_eq!(cfg.queue.retry_backoff, Duration::from_secs(30));
        assert_eq!(cfg.http.header_timeout, Duration::from_secs(10));
        assert_eq!(cfg.http.max_connections, 512);
        assert_eq!(cfg.http.auth_failure_limit, 10);
        assert_eq!(
            cfg.dashboard.session_max_age,
            Duration::from_secs(7 * 24 * 3600)
        );
    }
}

#[cfg(test)]
mod reference {
    //! docs/config.md and config/smsgate.toml against the parser. The keys are asked of the
    //! parser itself: a table given an unknown key is refused with the list of the keys it
    //! accepts (`deny_unknown_fields`), so a key added to any section is found here without
    //! this test being touched.

    use std::collections::BTreeMap;

    use super::*;

    const PROBE: &str = "zz_probe_key";

    /// The keys a table accepts, when `src` (which puts `PROBE` into it) is refused for that
    /// key; `None` when it is refused for anything else or not at all (the table is a map, or
    /// not a table).
    fn expected(src: &str) -> Option<Vec<String>> {
        let e = toml::from_str::<Config>(src).err()?.to_string();
        let rest = e
            .lines()
            .find_map(|l| l.split_once(&format!("unknown field `{PROBE}`, expected ")))?
            .1;
        // "one of `a`, `b`", "`a` or `b`" or "`a`": the names are between backticks.
        Some(
            rest.split('`')
                .skip(1)
                .step_by(2)
                .map(String::from)
                .collect(),
        )
    }

    /// `expected` of a file with the one required table and then `body`.
    fn accepted_keys(body: &str) -> Option<Vec<String>> {
        expected(&format!("[storage]\npath = \"/tmp/x\"\n{body}"))
    }

    /// Every table the parser reads, by its TOML header (`[http]`, `[[modems]]`,
    /// `[[reminders.schedule]]`), with the keys it accepts; a table that takes any key (a map
    /// such as `[templates]`) has none.
    fn parser_tables() -> BTreeMap<String, Vec<String>> {
        let sections = expected(&format!("{PROBE} = 1\n[storage]\npath = \"/tmp/x\"\n"))
            .expect("the top level refuses unknown keys");
        let mut tables = BTreeMap::new();
        for section in sections {
            // `[storage]` is already open: its probe goes straight in.
            let as_table = if section == "storage" {
                format!("{PROBE} = 1\n")
            } else {
                format!("[{section}]\n{PROBE} = 1\n")
            };
            let (header, keys, opener) = if let Some(k) = accepted_keys(&as_table) {
                (format!("[{section}]"), k, String::new())
            } else if let Some(k) = accepted_keys(&format!("[[{section}]]\n{PROBE} = 1\n")) {
                (format!("[[{section}]]"), k, format!("[[{section}]]\n"))
            } else {
                (format!("[{section}]"), Vec::new(), String::new())
            };
            let mut leaves = Vec::new();
            for key in keys {
                // A key that is itself a table, or an array of tables, of known keys.
                let table = format!("[{section}.{key}]");
                let array = format!("[[{section}.{key}]]");
                if let Some(k) = accepted_keys(&format!("{opener}{table}\n{PROBE} = 1\n")) {
                    tables.insert(table, k);
                } else if let Some(k) = accepted_keys(&format!("{opener}{array}\n{PROBE} = 1\n")) {
                    tables.insert(array, k);
                } else {
                    leaves.push(key);
                }
            }
            tables.insert(header, leaves);
        }
        tables
    }

    fn read(path: &str) -> String {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    /// A TOML table header alone on a line (`[http]`, `[[modems]]`), as written.
    fn header(line: &str) -> Option<String> {
        let t = line.trim();
        let name = t.trim_start_matches('[').trim_end_matches(']');
        let ok = t.starts_with('[')
            && !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.');
        ok.then(|| t.to_string())
    }

    /// `key` of a line `key = value`.
    fn key_of(line: &str) -> Option<&str> {
        let (k, v) = line.split_once('=')?;
        let k = k.trim();
        let ok = k.starts_with(|c: char| c.is_ascii_lowercase())
            && k.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            && !v.trim().is_empty();
        ok.then_some(k)
    }

    /// docs/config.md: each table under a heading that names its header in backticks
    /// (`` ### `[http]` ``), each key as the first cell of a table row (`` | `listen` | ``).
    fn documented() -> BTreeMap<String, Vec<String>> {
        let mut doc: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut current: Option<String> = None;
        for line in read("docs/config.md").lines() {
            if line.starts_with('#') {
                current = line.split('`').skip(1).step_by(2).find_map(header);
                if let Some(h) = &current {
                    doc.entry(h.clone()).or_default();
                }
            } else if let (Some(h), Some(cell)) = (&current, line.strip_prefix("| `"))
                && let Some((key, _)) = cell.split_once('`')
            {
                doc.entry(h.clone()).or_default().push(key.to_string());
            }
        }
        doc
    }

    /// Every key the parser accepts is in docs/config.md, under its table's heading, and every
    /// key documented there for a table the parser reads is one it accepts.
    #[test]
    fn every_key_is_in_the_config_reference() {
        let doc = documented();
        let (mut missing, mut unknown) = (Vec::new(), Vec::new());
        for (table, keys) in parser_tables() {
            let Some(documented) = doc.get(&table) else {
                missing.push(format!("{table} (a heading naming `{table}`)"));
                continue;
            };
            missing.extend(
                keys.iter()
                    .filter(|k| !documented.contains(k))
                    .map(|k| format!("{table} {k}")),
            );
            if !keys.is_empty() {
                unknown.extend(
                    documented
                        .iter()
                        .filter(|k| !keys.contains(k))
                        .map(|k| format!("{table} {k}")),
                );
            }
        }
        assert!(
            missing.is_empty() && unknown.is_empty(),
            "docs/config.md lacks (a row | `key` | under the table's heading): {missing:#?}\n\
             and documents keys the parser does not accept: {unknown:#?}"
        );
    }

    /// The shipped example names every key too, set or commented out (`# key = value`), and
    /// it still parses with every commented-out key and header set.
    #[test]
    fn every_key_is_in_the_shipped_example() {
        let sample = read("config/smsgate.toml");
        let mut found: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut uncommented = String::new();
        let mut current = String::new();
        for line in sample.lines() {
            let (active, commented) = match line.strip_prefix('#') {
                Some(rest) => (false, rest.strip_prefix(' ').unwrap_or(rest)),
                None => (true, line),
            };
            if let Some(h) = header(commented) {
                current = h;
            } else if let Some(k) = key_of(commented) {
                found
                    .entry(current.clone())
                    .or_default()
                    .push(k.to_string());
            } else if !active {
                continue;
            }
            uncommented.push_str(commented);
            uncommented.push('\n');
        }
        if let Err(e) = toml::from_str::<Config>(&uncommented) {
            panic!("config/smsgate.toml with its commented-out keys set does not parse: {e}");
        }
        let mut missing = Vec::new();
        for (table, keys) in parser_tables() {
            if !found.contains_key(&table) {
                missing.push(table.clone());
            }
            for k in keys {
                if !found.get(&table).is_some_and(|f| f.contains(&k)) {
                    missing.push(format!("{table} {k}"));
                }
            }
        }
        assert!(
            missing.is_empty(),
            "config/smsgate.toml does not name (set, or as `# key = value`): {missing:#?}"
        );
    }

    #[test]
    fn the_parser_is_asked_for_its_keys() {
        let t = parser_tables();
        assert!(t["[http]"].contains(&"listen".to_string()));
        assert!(t["[[modems]]"].contains(&"port".to_string()));
        assert!(t["[[reminders.schedule]]"].contains(&"offset".to_string()));
        assert!(t["[templates]"].is_empty());
        assert!(t.values().map(Vec::len).sum::<usize>() > 60);
    }
}
