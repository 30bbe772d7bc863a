//! The checks of a parsed file as a whole, each error naming the key and its line.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use toml::de::{DeTable, DeValue};

use super::api_keys::is_placeholder;
use super::{Config, env_name};

/// A value the checks of the whole file refuse: where it is (section, key, line) and what is
/// wrong, in words such as ``[sms] `max_parts` (line 12): must be 1 to 255``.
#[derive(Debug, thiserror::Error)]
#[error("{place}{line}: {problem}", line = .line.map(|l| format!(" (line {l})")).unwrap_or_default())]
pub struct CheckError {
    /// ``[section] `key` ``, ``[[section]] #N `key` `` or `[section]`.
    pub place: String,
    /// The section.
    pub section: String,
    /// The key; `None` for the section as a whole.
    pub key: Option<String>,
    /// The key's line in the file, when the file holds it.
    pub line: Option<usize>,
    /// What is wrong.
    pub problem: String,
    /// The error the problem was found by, if any.
    #[source]
    pub cause: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl CheckError {
    /// `key` of `[section]` (or of its `index`-th entry, for `[[section]]`), found in `src`.
    fn at(src: &str, section: &str, index: Option<usize>, key: &str, problem: String) -> Box<Self> {
        let place = match index {
            Some(i) => format!("[[{section}]] #{} `{key}`", i + 1),
            None => format!("[{section}] `{key}`"),
        };
        Box::new(CheckError {
            place,
            section: section.to_owned(),
            key: Some(key.to_owned()),
            line: locate(src, section, index, key),
            problem,
            cause: None,
        })
    }

    /// `[section]` as a whole.
    fn section(section: &str, problem: String) -> Box<Self> {
        Box::new(CheckError {
            place: format!("[{section}]"),
            section: section.to_owned(),
            key: None,
            line: None,
            problem,
            cause: None,
        })
    }

    /// With the error the problem was found by.
    fn because(
        mut self: Box<Self>,
        cause: impl std::error::Error + Send + Sync + 'static,
    ) -> Box<Self> {
        self.cause = Some(Box::new(cause));
        self
    }
}

impl Config {
    /// What is allowed but probably not meant, for `smsgate config check` to say: keys without
    /// `scopes` (they may do everything), keys past their `expires_at` (they no longer work), a
    /// database URL beside the embedded store (it is not used).
    pub fn warnings(&self, now: chrono::DateTime<chrono::Utc>) -> Vec<String> {
        let mut out = Vec::new();
        if self.storage.sled_path().is_some() && self.storage.url.is_some() {
            out.push(
                "[storage] has a `url` (or SMSGATE_STORAGE_URL is set), but the backend is \"sled\": \
                 the url is not used; set backend = \"postgres\" to use the database"
                    .into(),
            );
        }
        for (i, k) in self.api_keys.iter().enumerate() {
            if k.scopes.is_none() {
                out.push(format!(
                    "[[api_keys]] #{} ({:?}) has no `scopes`: it may do everything (admin included); \
                     give it only what it needs, e.g. scopes = [\"send\", \"read\"]",
                    i + 1,
                    k.name
                ));
            }
            if let Some(end) = k.expires_at.as_ref().and_then(|e| e.instant())
                && end <= now
            {
                out.push(format!(
                    "[[api_keys]] #{} ({:?}) expired at {}: it no longer works; remove it",
                    i + 1,
                    k.name,
                    end.to_rfc3339()
                ));
            }
        }
        out
    }

    /// Checks what the types alone cannot: ranges, uniqueness, URLs against the outbound
    /// policy and the other sections' own checks. `src` is the file, for line numbers.
    pub(super) fn check(&self, src: &str) -> Result<(), Box<CheckError>> {
        let at = |section: &str, index: Option<usize>, key: &str, msg: String| {
            CheckError::at(src, section, index, key, msg)
        };
        if let Some((key, problem)) = self.storage.problem() {
            return Err(at("storage", None, key, problem));
        }
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
        // A name may repeat only on entries with `expires_at`: the old tokens of a rotation,
        // working beside the current one under the same name (the same idempotency keys, the
        // same name in messages and history).
        let mut names = HashSet::new();
        for (i, k) in self.api_keys.iter().enumerate() {
            if k.name.trim().is_empty() {
                return Err(at(
                    "api_keys",
                    Some(i),
                    "name",
                    "must be non-empty and unique".into(),
                ));
            }
            if k.expires_at.is_none() && !names.insert(k.name.clone()) {
                return Err(at(
                    "api_keys",
                    Some(i),
                    "name",
                    "must be unique: only entries with `expires_at` (a rotated-out token) may repeat a name".into(),
                ));
            }
        }
        for (i, k) in self.api_keys.iter().enumerate() {
            if k.name == crate::domain::GATEWAY {
                return Err(at(
                    "api_keys",
                    Some(i),
                    "name",
                    format!(
                        "{:?} is reserved for the texts the gateway sends itself",
                        crate::domain::GATEWAY
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
        for (i, k) in self.api_keys.iter().enumerate() {
            if k.scopes.as_ref().is_some_and(|s| s.is_empty()) {
                return Err(at(
                    "api_keys",
                    Some(i),
                    "scopes",
                    "a key with no scope could do nothing: name at least one, or leave `scopes` out for every scope".into(),
                ));
            }
            if let Some(e) = &k.expires_at
                && e.instant().is_none()
            {
                return Err(at(
                    "api_keys",
                    Some(i),
                    "expires_at",
                    "must be a date and time with its offset, such as \"2026-12-31T00:00:00Z\""
                        .into(),
                ));
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
            return Err(at("sms", None, "national_languages", e.to_string()).because(e));
        }
        if let Err(e) = self.twilio.validate() {
            return Err(at("twilio", None, e.key(), e.to_string()).because(e));
        }
        if let Err(e) = self.webhooks.validate() {
            return Err(at("webhooks", None, e.key(), e.detail()).because(e));
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
            .map_err(|e| at("outbound", None, e.key, e.to_string()).because(e))?;
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
                )
                .because(why));
            }
        }
        if let Err(e) = self.replies.validate() {
            return Err(at("replies", None, e.key(), e.detail()).because(e));
        }
        if let Err(e) = self.optout.validate() {
            let found = match e.key() {
                Some(key) => at("optout", None, key, e.detail()),
                None => CheckError::section("optout", e.to_string()),
            };
            return Err(found.because(e));
        }
        if let Err(e) = self.reminders_policy() {
            let (section, key, what) = e.place();
            return Err(at(section, None, &key, what).because(e));
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
        let r = &self.retention;
        for (key, period) in [
            ("message_text_after", r.message_text_after),
            ("messages_after", r.messages_after),
            ("inbound_after", r.inbound_after),
            ("idempotency_after", r.idempotency_after),
            ("dead_webhooks_after", r.dead_webhooks_after),
            ("unmatched_after", r.unmatched_after),
        ] {
            // A period of a few seconds would remove records as they are written; leave the
            // key out to keep them.
            if period.is_some_and(|p| p < MIN_RETENTION) {
                return Err(at(
                    "retention",
                    None,
                    key,
                    "must be at least \"1h\" (leave the key out to keep everything)".into(),
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
}

/// The shortest `[retention]` period accepted.
const MIN_RETENTION: std::time::Duration = std::time::Duration::from_secs(3600);

/// The line (1-based) of `key` in `[section]` or in the `index`-th `[[section]]`, from the
/// spans the TOML parser keeps for every key; `None` when the file does not hold the key (a
/// required key left out, or one the check names for its section as a whole).
fn locate(src: &str, section: &str, index: Option<usize>, key: &str) -> Option<usize> {
    let document = DeTable::parse(src).ok()?;
    let table = match (document.get_ref().get(section)?.get_ref(), index) {
        (DeValue::Table(table), None) => table,
        (DeValue::Array(array), Some(i)) => match array.get(i)?.get_ref() {
            DeValue::Table(table) => table,
            _ => return None,
        },
        _ => return None,
    };
    let (found, _) = table.get_key_value(key)?;
    let before = src.get(..found.span().start)?;
    Some(before.matches('\n').count() + 1)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{GOOD, parse};
    use super::*;

    #[test]
    fn keys_are_found_by_the_spans_the_parser_keeps() {
        let src = "[http]\n# listen = \"x\"\nlisten = \"127.0.0.1:1\"\n\
                   [[modems]]\nname = \"a\"\n[[modems]]\nname = \"b\"\n\
                   port = \"\"\"\nport = 1\n\"\"\"\n";
        assert_eq!(locate(src, "http", None, "listen"), Some(3));
        assert_eq!(locate(src, "modems", Some(1), "port"), Some(8));
        assert_eq!(locate(src, "modems", Some(0), "port"), None);
        assert_eq!(locate(src, "modems", None, "name"), None);
        // Inline tables and dotted keys have lines too; a key left out has none.
        assert_eq!(
            locate("\nhttp = { listen = \"x\" }\n", "http", None, "listen"),
            Some(2)
        );
        assert_eq!(
            locate("http.listen = \"x\"\n", "http", None, "listen"),
            Some(1)
        );
        assert_eq!(
            locate("[reminders]\n\ntimezone = \"x\"\n", "reminders", None, ""),
            None
        );
        assert_eq!(locate("[http]\n", "http", None, "listen"), None);
    }

    #[test]
    fn retention_periods_are_an_hour_or_more() {
        let with = |retention: &str| {
            GOOD.replace(
                "[[modems]]\nname = \"office-sim\"",
                &format!("[retention]\n{retention}\n[[modems]]\nname = \"office-sim\""),
            )
        };
        let c = parse(&with(
            "message_text_after = \"90d\"\nmessages_after = \"730d\"",
        ))
        .unwrap();
        assert_eq!(
            c.retention.message_text_after,
            Some(std::time::Duration::from_secs(90 * 86_400))
        );
        assert_eq!(c.retention.inbound_after, None, "absent: kept");
        assert_eq!(
            c.retention.idempotency_after,
            Some(std::time::Duration::from_secs(86_400)),
            "a day unless set"
        );
        let e = parse(&with("messages_after = \"30s\""))
            .unwrap_err()
            .to_string();
        assert!(e.contains("[retention] `messages_after`"), "{e}");
        assert!(e.contains("at least"), "{e}");
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
        let e = parse(&no_token).unwrap_err();
        let super::super::ConfigProblem::Check(check) = &e.problem else {
            panic!("not a check: {e:?}");
        };
        assert_eq!(
            (check.section.as_str(), check.key.as_deref()),
            ("twilio", Some("auth_token"))
        );
        let cause = std::error::Error::source(check).and_then(|c| c.downcast_ref());
        assert_eq!(cause, Some(&crate::twilio::TwilioConfigError::NoAuthToken));
        let e = e.to_string();
        assert!(e.contains("[twilio] `auth_token`"), "{e}");
        let lonely = with("[twilio]\ninbound_url = \"https://example.com/in\"");
        let e = parse(&lonely).unwrap_err().to_string();
        assert!(e.contains("[twilio] `inbound_url`"), "{e}");
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
}
