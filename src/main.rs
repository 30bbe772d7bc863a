//! The `smsgate` binary: parse the command line, run it. Everything else is in the library.

use std::process::ExitCode;

use clap::Parser;

/// mimalloc instead of the system allocator: the store's write path (sled copies tree nodes on
/// every insert) is allocation-bound, and mimalloc makes durable inserts ~1.6× faster.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    smsgate::cli::run(smsgate::cli::Cli::parse())
}
