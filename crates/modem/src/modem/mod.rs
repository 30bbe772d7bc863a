//! The modem driver: one task owns one serial port and speaks AT commands to a GSM modem.
//!
//! - [`codec`]: bytes → lines and the `> ` prompt; line classification; URC parsing.
//! - [`at`]: one AT conversation (command → response, PDU send), URCs set aside.
//! - [`init`]: the init sequence as plain functions (shared by the task and the CLI tools).
//! - [`actor`]: the task that owns a port: sends, inbound, health, recovery (its handle, the
//!   session of one connection, and the messages stored on the SIM, one file each).
//! - [`info`]: status types and parsing of the modem's answers.
//! - [`stored`]: the answers to `AT+CMGR` / `AT+CMGL` as real devices print them, read by
//!   the PDU's own structure.
//! - [`probe`]: port discovery and friendly diagnoses for `smsgate modem probe`.
//! - [`error`]: driver errors and what each `+CMS ERROR` means (retryable or permanent).

pub mod actor;
pub mod at;
pub mod codec;
pub mod error;
pub mod info;
pub mod init;
pub mod mcc;
pub mod probe;
pub mod remote;
pub mod stored;
pub mod ussd;

pub use actor::{
    BalanceCheck, Inbound, ModemConfig, ModemEvent, ModemHandle, PartOutcome, SendTextError,
    Source, spawn,
};
pub use at::{AtPort, Response, SendFailure, UrcEvent};
pub use codec::{AtCodec, Frame, Urc};
pub use error::{CmsError, ModemError, Retry};
pub use info::{ModemInfo, ModemState, ModemStatus, Registration, Signal};
