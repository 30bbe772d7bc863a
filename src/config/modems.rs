//! `[[modems]]`: each modem, and the driver configuration made from it.

use serde::Deserialize;

use std::time::Duration;

use crate::modem::ModemConfig;

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
    /// This modem's routing and limits in the pool.
    pub fn policy(&self) -> crate::dispatch::ModemPolicy {
        crate::dispatch::ModemPolicy {
            max_per_minute: self.max_per_minute,
            max_per_day: self.max_per_day,
            prefixes: self.prefixes.clone(),
            only_for: self.only_for.clone(),
            quarantine_after: self.quarantine_after,
        }
    }

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
