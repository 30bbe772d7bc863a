//! `[inbound]`: received messages (reassembly, foreign SIM entries).

use serde::Deserialize;

use std::time::Duration;

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
