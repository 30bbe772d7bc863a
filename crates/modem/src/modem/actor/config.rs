//! How to reach and drive one modem: [`ModemConfig`] and its balance check.

use std::time::Duration;

/// How to reach and drive one modem.
#[derive(Debug, Clone, PartialEq)]
pub struct ModemConfig {
    /// A name for logs, metrics and the API.
    pub name: String,
    /// A serial device path (`/dev/ttyUSB2`, `/dev/serial/by-id/…`) or `tcp://host:port` for a
    /// modem behind a raw TCP serial server.
    pub port: String,
    /// Baud rate (USB modems ignore it).
    pub baud: u32,
    /// SIM PIN, entered once when the SIM asks; never retried after the SIM refuses it.
    pub pin: Option<String>,
    /// SMSC to set when the SIM has none (`+CMS ERROR 330` otherwise).
    pub smsc: Option<String>,
    /// The SIM's own number, as configured (it wins over `AT+CNUM`, which many SIMs leave
    /// empty).
    pub number: Option<String>,
    /// Timeout of ordinary commands.
    pub command_timeout: Duration,
    /// Wait for the `> ` prompt after `AT+CMGS`.
    pub prompt_timeout: Duration,
    /// Wait for `+CMGS:` after the PDU: the network's time, seconds on real modems.
    pub send_timeout: Duration,
    /// How long to wait for the SIM and the SMS service after power-up.
    pub ready_timeout: Duration,
    /// Registration and signal polling while idle.
    pub health_interval: Duration,
    /// A full `AT+CMGL` sweep of the SIM store, to catch messages whose `+CMTI` was missed.
    pub sweep_interval: Duration,
    /// Longest wait between reconnection attempts.
    pub max_backoff: Duration,
    /// A periodic prepaid balance check by USSD.
    pub balance: Option<BalanceCheck>,
    /// Delete SMS-SUBMITs and SMS-COMMANDs a phone left in the SIM (`[inbound] purge_foreign`);
    /// by default they are left alone and counted in [`crate::modem::ModemStatus::foreign_messages`].
    pub purge_foreign: bool,
}

/// `balance_ussd`, `balance_interval`, `balance_low` of a modem.
#[derive(Debug, Clone, PartialEq)]
pub struct BalanceCheck {
    /// The USSD code (`*100#`).
    pub code: String,
    /// How often.
    pub interval: Duration,
    /// Below this amount, a `modem.balance_low` event.
    pub low: Option<f64>,
}

impl ModemConfig {
    /// Defaults for a modem on `port`.
    pub fn new(name: impl Into<String>, port: impl Into<String>) -> Self {
        ModemConfig {
            name: name.into(),
            port: port.into(),
            baud: 115_200,
            pin: None,
            smsc: None,
            number: None,
            command_timeout: Duration::from_secs(5),
            prompt_timeout: Duration::from_secs(5),
            send_timeout: Duration::from_secs(60),
            ready_timeout: Duration::from_secs(60),
            health_interval: Duration::from_secs(30),
            sweep_interval: Duration::from_secs(600),
            max_backoff: Duration::from_secs(30),
            balance: None,
            purge_foreign: false,
        }
    }
}
