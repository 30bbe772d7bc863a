//! The `[webhooks]` section of the configuration file.

use std::time::Duration;

use serde::Deserialize;

use super::sign::{SecretError, Signer};
use super::urls::{UrlError, validate_url};

/// What is wrong with `[webhooks]`; the words name the key (`webhooks.timeout: …`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookConfigError {
    /// `url` is not an http(s) URL.
    #[error("webhooks.url: {0}")]
    Url(#[source] UrlError),
    /// `secret` is not a usable `whsec_` secret.
    #[error("webhooks.secret: {0}")]
    Secret(#[source] SecretError),
    /// A duration or a count out of its range.
    #[error("webhooks.{key}: {rule}")]
    Range {
        /// The key.
        key: &'static str,
        /// The range it must be in, in words.
        rule: String,
    },
}

impl WebhookConfigError {
    /// The key in `[webhooks]` that is wrong.
    pub fn key(&self) -> &'static str {
        match self {
            WebhookConfigError::Url(_) => "url",
            WebhookConfigError::Secret(_) => "secret",
            WebhookConfigError::Range { key, .. } => key,
        }
    }

    /// What is wrong, without the key.
    pub fn detail(&self) -> String {
        match self {
            WebhookConfigError::Url(e) => e.to_string(),
            WebhookConfigError::Secret(e) => e.to_string(),
            WebhookConfigError::Range { rule, .. } => rule.clone(),
        }
    }
}

/// `[webhooks]`: where events are POSTed, how they are signed, and how long they are retried.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// The global callback URL (`http://` or `https://`); none: only messages' own
    /// `callback_url`s get events.
    #[serde(default)]
    pub url: Option<String>,
    /// Whether the global URL gets every event; by default it gets the events of messages
    /// without their own `callback_url`, and the events that concern no message.
    #[serde(default)]
    pub all_events: bool,
    /// The signing secret, `whsec_` followed by the base64 of at least 24 random bytes; none:
    /// deliveries are sent without a `webhook-signature` header.
    #[serde(default)]
    pub secret: Option<String>,
    /// How long one attempt may take, connecting included (e.g. "10s").
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// How long an event is retried after it happened before it is marked dead (e.g. "24h").
    #[serde(default = "default_max_age", with = "humantime_serde")]
    pub max_age: Duration,
    /// How many deliveries may be in flight at once (to different messages).
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// Delay before the first retry (doubling with each failure, half of it random).
    #[serde(default = "default_retry_backoff", with = "humantime_serde")]
    pub retry_backoff: Duration,
    /// Longest delay between retries.
    #[serde(default = "default_retry_backoff_max", with = "humantime_serde")]
    pub retry_backoff_max: Duration,
}

impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("url", &self.url)
            .field("all_events", &self.all_events)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .field("max_age", &self.max_age)
            .field("max_in_flight", &self.max_in_flight)
            .field("retry_backoff", &self.retry_backoff)
            .field("retry_backoff_max", &self.retry_backoff_max)
            .finish()
    }
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            url: None,
            all_events: false,
            secret: None,
            timeout: default_timeout(),
            max_age: default_max_age(),
            max_in_flight: default_max_in_flight(),
            retry_backoff: default_retry_backoff(),
            retry_backoff_max: default_retry_backoff_max(),
        }
    }
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_max_age() -> Duration {
    Duration::from_secs(24 * 3600)
}

fn default_max_in_flight() -> usize {
    8
}

fn default_retry_backoff() -> Duration {
    Duration::from_secs(5)
}

fn default_retry_backoff_max() -> Duration {
    Duration::from_secs(3600)
}

/// The largest `max_in_flight` accepted.
const MAX_IN_FLIGHT: usize = 256;

impl WebhookConfig {
    /// Checks the section as a whole; the error names the key and what is wrong.
    pub fn validate(&self) -> Result<(), WebhookConfigError> {
        let range = |key: &'static str, rule: &str| {
            Err(WebhookConfigError::Range {
                key,
                rule: rule.to_owned(),
            })
        };
        if let Some(url) = &self.url {
            validate_url(url).map_err(WebhookConfigError::Url)?;
        }
        if let Some(secret) = &self.secret {
            Signer::from_secret(secret).map_err(WebhookConfigError::Secret)?;
        }
        if self.timeout.is_zero() {
            return range("timeout", "must be more than 0s");
        }
        if self.timeout > Duration::from_secs(300) {
            return range("timeout", "must be at most 5m");
        }
        if self.max_age.is_zero() {
            return range("max_age", "must be more than 0s");
        }
        if self.max_age > Duration::from_secs(30 * 24 * 3600) {
            return range("max_age", "must be at most 30 days");
        }
        if self.retry_backoff.is_zero() {
            return range("retry_backoff", "must be more than 0s");
        }
        if self.retry_backoff_max < self.retry_backoff {
            return range("retry_backoff_max", "must be at least retry_backoff");
        }
        if !(1..=MAX_IN_FLIGHT).contains(&self.max_in_flight) {
            return range(
                "max_in_flight",
                &format!("must be from 1 to {MAX_IN_FLIGHT}"),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<WebhookConfig, toml::de::Error> {
        toml::from_str(s)
    }

    #[test]
    fn defaults_and_parsing() {
        let c = parse("").unwrap();
        assert_eq!(c, WebhookConfig::default());
        assert_eq!(c.timeout, Duration::from_secs(10));
        assert_eq!(c.max_age, Duration::from_secs(86400));
        assert_eq!(c.max_in_flight, 8);
        assert!(!c.all_events);
        c.validate().unwrap();
        let c = parse(
            r#"
            url = "https://billing.example/hooks/sms"
            all_events = true
            secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
            timeout = "5s"
            max_age = "2h"
            max_in_flight = 4
            "#,
        )
        .unwrap();
        c.validate().unwrap();
        assert_eq!(c.max_age, Duration::from_secs(7200));
        assert!(!format!("{c:?}").contains("MfKQ"), "Debug hides the secret");
        assert!(
            parse("urls = \"http://x\"")
                .unwrap_err()
                .to_string()
                .contains("unknown field")
        );
    }

    #[test]
    fn validation_names_the_key() {
        let err = |c: WebhookConfig| c.validate().unwrap_err();
        let bad = |c: WebhookConfig| err(c).to_string();
        let e = err(WebhookConfig {
            url: Some("ftp://billing.example/".into()),
            ..Default::default()
        });
        assert_eq!(e, WebhookConfigError::Url(UrlError::Scheme("ftp".into())));
        assert_eq!(e.key(), "url");
        let e = e.to_string();
        assert!(e.starts_with("webhooks.url:") && e.contains("http"), "{e}");
        let e = err(WebhookConfig {
            secret: Some("hunter2hunter2hunter2hunter2".into()),
            ..Default::default()
        });
        assert_eq!(e, WebhookConfigError::Secret(SecretError::Prefix));
        let e = e.to_string();
        assert!(
            e.starts_with("webhooks.secret:") && e.contains("whsec_"),
            "{e}"
        );
        let e = bad(WebhookConfig {
            timeout: Duration::ZERO,
            ..Default::default()
        });
        assert!(e.starts_with("webhooks.timeout:"), "{e}");
        let e = err(WebhookConfig {
            max_in_flight: 0,
            ..Default::default()
        });
        assert_eq!(
            (e.key(), e.detail().as_str()),
            ("max_in_flight", "must be from 1 to 256")
        );
        let e = e.to_string();
        assert!(e.starts_with("webhooks.max_in_flight:"), "{e}");
        let e = bad(WebhookConfig {
            max_age: Duration::ZERO,
            ..Default::default()
        });
        assert!(e.starts_with("webhooks.max_age:"), "{e}");
    }
}
