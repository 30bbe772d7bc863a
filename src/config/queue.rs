//! `[queue]`: attempts, retry backoff and lateness.

use serde::Deserialize;

use std::time::Duration;

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
