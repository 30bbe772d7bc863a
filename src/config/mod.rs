//! The configuration file: one typed struct, parsed from TOML with unknown keys rejected, then
//! checked as a whole. Every error names the file, the key and its line.
//!
//! Secrets may come from the environment instead of the file: `SMSGATE_API_KEY_<NAME>` (a key's
//! token), `SMSGATE_MODEM_<NAME>_PIN` (a modem's PIN), `SMSGATE_WEBHOOK_SECRET` (the webhook
//! signing secret), `SMSGATE_TWILIO_AUTH_TOKEN` (the `[twilio]` auth token), `SMSGATE_STORAGE_URL`
//! (`[storage] url`, the database's URL with its password), where `<NAME>` is the configured name in
//! upper case with every other character than A–Z and 0–9 turned into `_`.
//!
//! One file per section of the file (`http.rs`, `storage.rs`, `api_keys.rs`, `sms.rs`,
//! `queue.rs`, `inbound.rs`, `modems.rs`, `retention.rs`; the sections of other subsystems, `[dashboard]`,
//! `[webhooks]`, `[replies]`, `[optout]`, `[reminders]`, `[twilio]`, `[outbound]`, live with
//! them), `check.rs` for the checks of the whole; this file holds [`Config`], loading and
//! [`ConfigError`].

use std::path::Path;

use serde::Deserialize;

use crate::sms::NationalLanguage;

mod api_keys;
mod check;
mod http;
mod inbound;
mod modems;
mod queue;
mod retention;
mod sms;
mod storage;

pub use crate::dashboard::DashboardConfig;
pub use api_keys::{ApiKeyConfig, ExpiresAt, PLACEHOLDER_TOKEN};
pub use http::HttpConfig;
pub use inbound::InboundConfig;
pub use modems::ModemSection;
pub use queue::QueueConfig;
pub use retention::RetentionConfig;
pub use sms::SmsConfig;
pub use storage::{STORAGE_URL_ENV, StorageBackend, StorageConfig, redacted_url};

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
    /// How long messages, inbound texts and other records are kept.
    #[serde(default)]
    pub retention: RetentionConfig,
}

fn default_true() -> bool {
    true
}

/// A configuration error: what, where.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {problem}")]
pub struct ConfigError {
    /// The file.
    pub file: String,
    /// The problem, with the key and line.
    #[source]
    pub problem: ConfigProblem,
}

/// What is wrong with a configuration file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigProblem {
    /// The file cannot be read.
    #[error("cannot read: {0}")]
    Read(#[source] std::io::Error),
    /// Not TOML, or keys the types do not have: the parser's words on one line.
    #[error("{message}")]
    Syntax {
        /// The parser's message on one line, with the key and line.
        message: String,
        /// The parser's error.
        #[source]
        source: Box<toml::de::Error>,
    },
    /// A value the checks of the whole refuse.
    #[error(transparent)]
    Check(#[from] Box<CheckError>),
}

pub use check::CheckError;

/// A `[sms] national_languages` entry that is not one of the tables.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown language {0:?} (turkish, spanish or portuguese)")]
pub struct LanguageError(pub String);

impl Config {
    /// Every modem: its driver's settings (with those that apply to all of them) and its
    /// routing and limits.
    pub fn modem_setups(&self) -> Vec<crate::fleet::ModemSetup> {
        self.modems
            .iter()
            .map(|m| {
                let mut c = m.driver_config();
                c.purge_foreign = self.inbound.purge_foreign;
                crate::fleet::ModemSetup {
                    driver: c,
                    policy: m.policy(),
                }
            })
            .collect()
    }

    /// Reads, parses and checks a configuration file, applying environment overrides.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let src = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.display().to_string(),
            problem: ConfigProblem::Read(e),
        })?;
        Config::parse(&src, &path.display().to_string(), |k| std::env::var(k).ok())
    }

    /// Parses and checks configuration text. `env` looks up environment overrides.
    pub fn parse(
        src: &str,
        file: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let err = |problem: ConfigProblem| ConfigError {
            file: file.to_string(),
            problem,
        };
        let mut cfg: Config = toml::from_str(src).map_err(|source: toml::de::Error| {
            err(ConfigProblem::Syntax {
                message: one_line(&source.to_string()),
                source: Box::new(source),
            })
        })?;
        // The variable is the current token: it replaces the entry without `expires_at` (a
        // rotated-out token of the same name keeps its own), or every entry of a name that has
        // only ending ones.
        let current: Vec<String> = cfg
            .api_keys
            .iter()
            .filter(|k| k.expires_at.is_none())
            .map(|k| k.name.clone())
            .collect();
        for k in &mut cfg.api_keys {
            if k.expires_at.is_some() && current.contains(&k.name) {
                continue;
            }
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
        if let Some(u) = env(storage::STORAGE_URL_ENV) {
            cfg.storage.url = Some(u);
        }
        cfg.check(src).map_err(|e| err(e.into()))?;
        Ok(cfg)
    }

    /// The checked reminder policy of `[reminders]`, `[send_window]`, `[caps]` and
    /// `[templates]`.
    pub fn reminders_policy(
        &self,
    ) -> Result<crate::reminders::Policy, crate::reminders::config::PolicyError> {
        crate::reminders::Policy::from_config(
            &self.reminders,
            &self.send_window,
            &self.caps,
            &self.templates,
        )
    }

    /// The national languages named in `[sms]`.
    pub fn national_languages(&self) -> Result<Vec<NationalLanguage>, LanguageError> {
        self.sms
            .national_languages
            .iter()
            .map(|l| match l.to_ascii_lowercase().as_str() {
                "turkish" => Ok(NationalLanguage::Turkish),
                "spanish" => Ok(NationalLanguage::Spanish),
                "portuguese" => Ok(NationalLanguage::Portuguese),
                other => Err(LanguageError(other.to_owned())),
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    pub(super) const GOOD: &str = r#"
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

    pub(super) fn parse(s: &str) -> Result<Config, ConfigError> {
        Config::parse(s, "smsgate.toml", |_| None)
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
        .unwrap_err();
        assert!(matches!(e.problem, ConfigProblem::Syntax { .. }), "{e:?}");
        let e = e.to_string();
        assert!(e.contains("pni") && e.contains("line 12"), "{e}");
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

    /// A rotation: the old token repeats the name with `expires_at` and keeps its token when
    /// the variable gives the current one; scopes and the end are read.
    #[test]
    fn a_rotated_out_token_repeats_the_name_and_keeps_its_token() {
        let rotating = GOOD.replace(
            "[[modems]]\nname = \"office-sim\"",
            "scopes = [\"send\", \"read\"]\n[[api_keys]]\nname = \"billing\"\ntoken = \"the-old-token-0123456789\"\nscopes = [\"send\", \"read\"]\nexpires_at = 2026-12-31T00:00:00Z\n[[modems]]\nname = \"office-sim\"",
        );
        let c = Config::parse(&rotating, "f", |k| {
            (k == "SMSGATE_API_KEY_BILLING").then(|| "from-the-environment-123".to_string())
        })
        .unwrap();
        assert_eq!(c.api_keys.len(), 2);
        assert_eq!(
            c.api_keys[0].token.as_deref(),
            Some("from-the-environment-123")
        );
        assert_eq!(
            c.api_keys[1].token.as_deref(),
            Some("the-old-token-0123456789")
        );
        let old = c.api_keys[1].api_key().unwrap();
        assert_eq!(
            old.expires_at.map(|t| t.to_rfc3339()).as_deref(),
            Some("2026-12-31T00:00:00+00:00")
        );
        assert!(old.scopes.allows(crate::api::Scope::Send));
        assert!(!old.scopes.allows(crate::api::Scope::Templates));
        // Two current entries of one name are refused.
        let e = parse(&rotating.replace("expires_at = 2026-12-31T00:00:00Z\n", ""))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("[[api_keys]] #2 `name`") && e.contains("unique"),
            "{e}"
        );
    }
}

#[cfg(test)]
mod storage_tests {
    use super::tests::{GOOD, parse};
    use super::*;

    fn with_storage(storage: &str) -> String {
        GOOD.replace("[storage]\npath = \"/tmp/x\"\n", storage)
    }

    #[test]
    fn sled_is_the_default_and_needs_a_path() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.storage.backend, StorageBackend::Sled);
        assert_eq!(c.storage.sled_path(), Some(Path::new("/tmp/x")));
        assert_eq!(c.storage.postgres_url(), None);
        let e = parse(&with_storage("[storage]\ncache_mb = 8\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("[storage] `path`") && e.contains("sled"), "{e}");
    }

    #[test]
    fn postgres_needs_a_url_that_parses_and_never_shows_its_password() {
        let pg = with_storage("[storage]\nbackend = \"postgres\"\n");
        let e = parse(&pg).unwrap_err().to_string();
        assert!(
            e.contains("[storage] `url`") && e.contains("SMSGATE_STORAGE_URL"),
            "{e}"
        );
        // The variable gives the URL (and overrides the file's): no path needed.
        let url = "postgres://gw:hunter2@db.example:5432/smsgate";
        let c = Config::parse(&pg, "f", |k| {
            (k == "SMSGATE_STORAGE_URL").then(|| url.to_string())
        })
        .unwrap();
        assert_eq!(c.storage.backend, StorageBackend::Postgres);
        assert_eq!(c.storage.postgres_url(), Some(url));
        assert_eq!(c.storage.sled_path(), None);
        assert!(!c.storage.describe().contains("hunter2"));
        assert!(c.storage.describe().contains("db.example"));
        let in_file =
            with_storage("[storage]\nbackend = \"postgres\"\nurl = \"postgres://a@b/c\"\n");
        let c = Config::parse(&in_file, "f", |k| {
            (k == "SMSGATE_STORAGE_URL").then(|| url.to_string())
        })
        .unwrap();
        assert_eq!(c.storage.url.as_deref(), Some(url));
        assert!(
            c.warnings(chrono::Utc::now())
                .iter()
                .all(|w| !w.contains("[storage]"))
        );
        // A URL beside the embedded store is not used: said, not refused.
        let c = Config::parse(GOOD, "f", |k| {
            (k == "SMSGATE_STORAGE_URL").then(|| url.to_string())
        })
        .unwrap();
        assert_eq!(c.storage.postgres_url(), None);
        let warnings = c.warnings(chrono::Utc::now());
        assert!(
            warnings
                .iter()
                .any(|w| w.contains("[storage]") && w.contains("not used")),
            "{warnings:?}"
        );
        // A URL that does not parse is named, without its password.
        let bad = with_storage(
            "[storage]\nbackend = \"postgres\"\nurl = \"postgres://gw:hunter2@db:notaport/x\"\n",
        );
        let e = parse(&bad).unwrap_err().to_string();
        assert!(
            e.contains("[storage] `url` (line") && e.contains("not a PostgreSQL URL"),
            "{e}"
        );
        assert!(!e.contains("hunter2"), "{e}");
        let e = parse(&with_storage(
            "[storage]\nbackend = \"mysql\"\npath = \"/x\"\n",
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("backend"), "{e}");
    }
}

#[cfg(test)]
mod shipped {
    use std::time::Duration;

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
mod reference;
