//! The `smsgate` command line. `main.rs` only parses and calls [`run`]; each command lives in its
//! own module so tests can call the same code.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod pdu;

/// smsgate: a self-hosted SMS gateway that drives a USB GSM/LTE modem.
#[derive(Debug, Parser)]
#[command(name = "smsgate", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Encode a text into SMS-SUBMIT PDUs, or decode a PDU read off a modem.
    #[command(subcommand)]
    Pdu(pdu::PduCommand),
}

/// Exit code for bad input (unparseable PDU, invalid number, text too long): the same code clap
/// uses for bad arguments.
pub const EXIT_BAD_INPUT: u8 = 2;

/// Runs a parsed command line and returns the process exit code.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Pdu(cmd) => pdu::run(cmd),
    }
}
