//! The `smsgate` binary: parse the command line, run it. Everything else is in the library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    smsgate::cli::run(smsgate::cli::Cli::parse())
}
