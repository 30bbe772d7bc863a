//! The driver task: one task owns one port for its whole life. Sends and commands come in through
//! a channel; inbound messages, status reports and state changes go out as [`ModemEvent`]s.

mod session;

pub use session::*;
