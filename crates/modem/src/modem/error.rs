//! Errors of the modem driver, and what each `+CMS ERROR` / `+CME ERROR` means for a message:
//! try again later, or give up (TS 27.005 §3.2.5, TS 27.007 §9.2, TS 24.011 Annex E).

use std::time::Duration;

use thiserror::Error;

/// Whether an error is worth another attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Retry {
    /// Temporary: network, congestion, a busy SIM or modem. Try again after a backoff.
    Retryable,
    /// The message itself can never go out this way (bad number, barred, bad PDU).
    Permanent,
}

/// An SMS error code with its meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CmsError {
    /// The numeric code.
    pub code: u16,
}

impl CmsError {
    /// The meaning TS 27.005 §3.2.5 / TS 24.011 Annex E gives the code.
    pub fn description(self) -> &'static str {
        match self.code {
            1 => "unassigned (unallocated) number",
            8 => "operator determined barring",
            10 => "call barred",
            17 => "network failure",
            21 => "short message transfer rejected",
            22 => "memory capacity exceeded",
            27 => "destination out of service",
            28 => "unidentified subscriber",
            29 => "facility rejected",
            30 => "unknown subscriber",
            38 => "network out of order",
            41 => "temporary failure",
            42 => "congestion",
            47 => "resources unavailable",
            50 => "requested facility not subscribed",
            69 => "requested facility not implemented",
            81 => "invalid short message transfer reference value",
            95 => "invalid message, unspecified",
            96 => "invalid mandatory information",
            97 => "message type non-existent or not implemented",
            98 => "message not compatible with short message protocol state",
            99 => "information element non-existent or not implemented",
            111 => "protocol error, unspecified",
            127 => "interworking, unspecified",
            128 => "telematic interworking not supported",
            129 => "short message type 0 not supported",
            130 => "cannot replace short message",
            143 => "unspecified TP-PID error",
            144 => "data coding scheme (alphabet) not supported",
            145 => "message class not supported",
            159 => "unspecified TP-DCS error",
            160 => "command cannot be actioned",
            161 => "command unsupported",
            175 => "unspecified TP-Command error",
            176 => "TPDU not supported",
            192 => "SC busy",
            193 => "no SC subscription",
            194 => "SC system failure",
            195 => "invalid SME address",
            196 => "destination SME barred",
            197 => "SM rejected, duplicate SM",
            198 => "TP-VPF not supported",
            199 => "TP-VP not supported",
            208 => "SIM SMS storage full",
            209 => "no SMS storage capability in SIM",
            210 => "error in MS",
            211 => "memory capacity exceeded",
            212 => "SIM application toolkit busy",
            213 => "SIM data download error",
            255 => "unspecified error cause",
            300 => "ME failure",
            301 => "SMS service of ME reserved",
            302 => "operation not allowed",
            303 => "operation not supported",
            304 => "invalid PDU mode parameter",
            305 => "invalid text mode parameter",
            310 => "SIM not inserted",
            311 => "SIM PIN required",
            312 => "PH-SIM PIN required",
            313 => "SIM failure",
            314 => "SIM busy",
            315 => "SIM wrong",
            316 => "SIM PUK required",
            317 => "SIM PIN2 required",
            318 => "SIM PUK2 required",
            320 => "memory failure",
            321 => "invalid memory index",
            322 => "memory full",
            330 => "SMSC address unknown",
            331 => "no network service",
            332 => "network timeout",
            340 => "no +CNMA acknowledgement expected",
            500 => "unknown error",
            512..=u16::MAX => "manufacturer specific error",
            _ => "reserved or unknown cause",
        }
    }

    /// Whether a message that got this error may be tried again.
    ///
    /// Network trouble, congestion, a busy SIM or SMSC, ME/memory failures and the catch-all 500
    /// (which cheap modems return for passing radio trouble) are retryable; errors that say the
    /// destination or the message itself is wrong are permanent. A permanent error fails the
    /// message at once; a retryable one goes back to the queue until its attempts run out.
    pub fn retry(self) -> Retry {
        match self.code {
            // Destination or subscription problems: resending does not help.
            1 | 8 | 10 | 21 | 28 | 29 | 30 | 50 | 69 | 128 | 129 | 130 | 193 | 195 | 196 => {
                Retry::Permanent
            }
            // The PDU itself is refused.
            81 | 95..=99 | 143..=145 | 159..=161 | 175 | 176 | 197..=199 | 304 | 305 => {
                Retry::Permanent
            }
            // SIM state: an operator must act (insert SIM, enter PIN/PUK).
            310 | 311 | 312 | 315 | 316 | 317 | 318 => Retry::Permanent,
            _ => Retry::Retryable,
        }
    }
}

/// An equipment (`+CME ERROR`) code with its meaning (TS 27.007 §9.2.1).
pub fn cme_description(code: u16) -> &'static str {
    match code {
        0 => "phone failure",
        3 => "operation not allowed",
        4 => "operation not supported",
        10 => "SIM not inserted",
        11 => "SIM PIN required",
        12 => "SIM PUK required",
        13 => "SIM failure",
        14 => "SIM busy",
        15 => "SIM wrong",
        16 => "incorrect password",
        17 => "SIM PIN2 required",
        18 => "SIM PUK2 required",
        20 => "memory full",
        21 => "invalid index",
        22 => "not found",
        23 => "memory failure",
        30 => "no network service",
        31 => "network timeout",
        50 => "incorrect parameters",
        100 => "unknown",
        515 => "device busy, retry",
        _ => "equipment error",
    }
}

/// What went wrong talking to a modem.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ModemError {
    /// The modem did not finish answering within the command's timeout.
    #[error("modem did not answer {command:?} within {timeout:?}")]
    Timeout {
        /// The command.
        command: String,
        /// The timeout.
        timeout: Duration,
    },
    /// The port closed or failed (USB unplugged, hangup).
    #[error("serial port lost: {0}")]
    PortLost(String),
    /// The port could not be opened.
    #[error("cannot open {port}: {reason}")]
    Open {
        /// The port.
        port: String,
        /// Why.
        reason: String,
    },
    /// `ERROR` with no detail.
    #[error("modem answered ERROR to {command:?}")]
    Error {
        /// The command.
        command: String,
    },
    /// `+CMS ERROR: n`.
    #[error("+CMS ERROR {code}: {}", CmsError { code: *.code }.description())]
    Cms {
        /// The code.
        code: u16,
    },
    /// `+CME ERROR: n`.
    #[error("+CME ERROR {code}: {}", cme_description(*.code))]
    Cme {
        /// The code.
        code: u16,
    },
    /// The modem does not support the command.
    #[error("modem does not support {command:?}")]
    NotSupported {
        /// The command.
        command: String,
    },
    /// The modem answered something the driver cannot use.
    #[error("unexpected answer to {command:?}: {detail}")]
    Unexpected {
        /// The command.
        command: String,
        /// What came back.
        detail: String,
    },
    /// The SIM needs a PIN and none is configured, or the configured one was refused.
    #[error("SIM locked: {0}")]
    SimLocked(String),
    /// The modem is down (initialising, recovering, or given up on).
    #[error("modem is not ready: {0}")]
    NotReady(String),
    /// The driver is shutting down.
    #[error("modem driver stopped")]
    Stopped,
}

impl ModemError {
    /// Whether a send that failed with this error may be tried again.
    pub fn retry(&self) -> Retry {
        match self {
            ModemError::Cms { code } => CmsError { code: *code }.retry(),
            ModemError::Cme {
                code: 10 | 11 | 12 | 15 | 16 | 17 | 18,
            } => Retry::Permanent,
            _ => Retry::Retryable,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        let r = |code| CmsError { code }.retry();
        for code in [38, 41, 42, 300, 314, 320, 322, 331, 332, 500, 512, 17, 27] {
            assert_eq!(r(code), Retry::Retryable, "{code}");
        }
        for code in [1, 8, 21, 96, 195, 196, 304, 310, 311] {
            assert_eq!(r(code), Retry::Permanent, "{code}");
        }
        assert_eq!(CmsError { code: 332 }.description(), "network timeout");
        assert_eq!(
            ModemError::Cms { code: 331 }.to_string(),
            "+CMS ERROR 331: no network service"
        );
        assert_eq!(ModemError::Cme { code: 16 }.retry(), Retry::Permanent);
    }
}
