//! # smsgate-modem
//!
//! The modem side of smsgate: the driver that owns a serial port and speaks AT commands to a
//! GSM/LTE modem ([`modem`]), and the AT-speaking modem simulator on a pseudo-terminal that the
//! tests, the benchmarks and `smsgate demo` drive it against ([`sim`]). Both use the codec,
//! [`sms`]. Nothing here knows about messages, queues or HTTP: the gateway (the `smsgate`
//! crate) decides what to send and when.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod modem;
pub mod sim;

/// The SMS codec, under the path the driver and the simulator use.
pub use smsgate_sms as sms;

/// The message of a panic payload (`&str` or `String`; empty for anything else).
pub fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}
