//! Typed errors of the SMS codec.

use thiserror::Error;

/// Why a PDU could not be decoded. Every variant says what is wrong and where: `offset` is the
/// octet position in the input (SMSC octets included, when present).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// The input is not an even number of hexadecimal digits.
    #[error("invalid hex at character {position}: {reason}")]
    Hex {
        /// Character index in the hex string.
        position: usize,
        /// What is wrong there.
        reason: &'static str,
    },
    /// The input ends before a field does.
    #[error("truncated PDU: {field} needs {needed} octet(s) at octet {offset}, {available} left")]
    Truncated {
        /// The field being read.
        field: &'static str,
        /// Its position.
        offset: usize,
        /// Octets it needs.
        needed: usize,
        /// Octets that were left.
        available: usize,
    },
    /// A length field says more (or something other) than is possible.
    #[error("bad length in {field} at octet {offset}: {detail}")]
    Length {
        /// The field whose length lies.
        field: &'static str,
        /// Its position.
        offset: usize,
        /// What is wrong with it.
        detail: String,
    },
    /// A field holds a reserved or impossible value.
    #[error("reserved or invalid value in {field} at octet {offset}: {detail}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// Its position.
        offset: usize,
        /// What is wrong with it.
        detail: String,
    },
}

/// Why a text could not be encoded into SMS-SUBMIT PDUs.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EncodeError {
    /// The text is empty.
    #[error("the text is empty")]
    EmptyText,
    /// The text needs more parts than allowed.
    #[error("the text needs {parts} parts ({encoding}), more than the maximum of {max}")]
    TooManyParts {
        /// Parts the text would need.
        parts: usize,
        /// The configured cap.
        max: usize,
        /// The encoding that was chosen.
        encoding: &'static str,
    },
    /// The destination or SMSC number is not a phone number.
    #[error("invalid {field} number {value:?}: {detail}")]
    Number {
        /// `to` or `smsc`.
        field: &'static str,
        /// The number as given.
        value: String,
        /// What is wrong with it.
        detail: &'static str,
    },
    /// The validity period cannot be expressed in TP-VP.
    #[error("validity period {seconds}s is out of range (5 minutes to 63 weeks)")]
    Validity {
        /// The requested validity in seconds.
        seconds: u64,
    },
}
