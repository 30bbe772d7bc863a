//! `[retention]`: how long what the gateway keeps is kept (see docs/compliance.md).

use std::time::Duration;

use serde::Deserialize;

/// `[retention]`. Every period is a duration ("90d", "730d", "24h"); absent keeps forever,
/// except `idempotency_after` (a day by default).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// A finished message's text is replaced by its SHA-256 this long after its last change.
    #[serde(default, with = "humantime_serde")]
    pub message_text_after: Option<Duration>,
    /// A finished message is removed whole this long after its last change, leaving a
    /// tombstone in the day's chain.
    #[serde(default, with = "humantime_serde")]
    pub messages_after: Option<Duration>,
    /// An inbound message, once acted on, is removed this long after it arrived.
    #[serde(default, with = "humantime_serde")]
    pub inbound_after: Option<Duration>,
    /// The answer kept for an `Idempotency-Key` is removed this long after it was stored.
    #[serde(default = "default_idempotency_after", with = "humantime_serde")]
    pub idempotency_after: Option<Duration>,
    /// A dead webhook delivery is removed this long after its event.
    #[serde(default, with = "humantime_serde")]
    pub dead_webhooks_after: Option<Duration>,
    /// A delivery report that matched no message is removed this long after it arrived.
    #[serde(default, with = "humantime_serde")]
    pub unmatched_after: Option<Duration>,
    /// Records looked at, at most, per kind and per pass of the sweep (once a minute).
    #[serde(default = "default_max_per_pass")]
    pub max_per_pass: usize,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            message_text_after: None,
            messages_after: None,
            inbound_after: None,
            idempotency_after: default_idempotency_after(),
            dead_webhooks_after: None,
            unmatched_after: None,
            max_per_pass: default_max_per_pass(),
        }
    }
}

impl RetentionConfig {
    /// The sweep's policy.
    pub fn policy(&self) -> crate::retention::Policy {
        crate::retention::Policy {
            message_text_after: self.message_text_after,
            messages_after: self.messages_after,
            inbound_after: self.inbound_after,
            idempotency_after: self.idempotency_after,
            dead_webhooks_after: self.dead_webhooks_after,
            unmatched_after: self.unmatched_after,
            max_per_pass: self.max_per_pass.max(1),
        }
    }
}

fn default_idempotency_after() -> Option<Duration> {
    Some(Duration::from_secs(24 * 3600))
}

fn default_max_per_pass() -> usize {
    1000
}
