//! The `smsgate` command line. `main.rs` only parses and calls [`run`]; each command lives in its
//! own module so tests can call the same code.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod client;
pub mod daemon;
pub mod docs;
pub mod history;
pub mod migrate;
pub mod modem;
pub mod pdu;
pub mod simulate;
pub mod store;

/// smsgate: a self-hosted SMS gateway that drives a USB GSM/LTE modem.
#[derive(Debug, Parser)]
#[command(
    name = "smsgate",
    version,
    about,
    long_about = None,
    after_help = "status, send, messages, inbound, reminders, optout, audit, tail and backup talk to a running daemon over its HTTP API (--url and --token, or its configuration file); `smsgate <COMMAND> --help` lists their exit codes."
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway with a configuration file.
    Serve(daemon::ServeArgs),
    /// Run the whole gateway with the built-in simulated modem: no hardware, no configuration.
    ///
    /// It prints the API address, a token, examples to paste (curl, the command line, Python)
    /// and the credentials of the Twilio-compatible API it opens. Standard input takes the
    /// simulator's commands, one per line: `inbound <from> <text>` answers as a customer,
    /// `help` lists the others. The admin page has a "Simulated phone" panel that shows what
    /// each customer received and answers as them.
    Demo(daemon::DemoArgs),
    /// Check a configuration file.
    #[command(subcommand)]
    Config(daemon::ConfigCommand),
    /// Encode a text into SMS-SUBMIT PDUs, or decode a PDU read off a modem.
    #[command(subcommand)]
    Pdu(pdu::PduCommand),
    /// Talk to a modem directly, without the daemon: find it, send a test message.
    #[command(subcommand)]
    Modem(modem::ModemCommand),
    /// Check or export the tamper-evident message history (on the store, daemon stopped).
    #[command(subcommand)]
    History(history::HistoryCommand),
    /// Check, export, import or compact the whole store (daemon stopped), copy it between the
    /// embedded store and PostgreSQL, or migrate a PostgreSQL store's schema.
    #[command(subcommand)]
    Store(store::StoreCommand),
    /// Run the built-in modem simulator on a pseudo-terminal (for tests, demos and trying things out).
    Simulate(simulate::SimulateArgs),
    /// Show a running daemon's modems and queue; exit 1 when no modem is up.
    #[command(long_about = client::long_about::STATUS)]
    Status(client::StatusArgs),
    /// Send one SMS through a running daemon.
    #[command(long_about = client::long_about::SEND)]
    Send(client::SendArgs),
    /// List, show, cancel or requeue a running daemon's messages.
    #[command(subcommand, long_about = client::long_about::MESSAGES)]
    Messages(client::MessagesCommand),
    /// List the messages customers sent.
    #[command(subcommand, long_about = client::long_about::INBOUND)]
    Inbound(client::InboundCommand),
    /// Reminder plans: make one, show one, mark one paid.
    #[command(subcommand, long_about = client::long_about::REMINDERS)]
    Reminders(client::RemindersCommand),
    /// Add, remove or list opted-out numbers.
    #[command(subcommand, long_about = client::long_about::OPTOUT)]
    Optout(client::OptoutCommand),
    /// List who did what: a running daemon's audit log (templates, opt-outs, reloads, USSD).
    #[command(long_about = client::long_about::AUDIT)]
    Audit(client::AuditArgs),
    /// Back up a running daemon's store into a file, for `smsgate store import`.
    #[command(long_about = client::backup::LONG_ABOUT)]
    Backup(client::BackupArgs),
    /// Follow a running daemon's events live (message status changes, received texts).
    #[command(long_about = client::long_about::TAIL)]
    Tail(client::TailArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) to standard output,
    /// e.g. `smsgate completions bash > /etc/bash_completion.d/smsgate`.
    Completions(docs::CompletionsArgs),
    /// Print the manual page (roff) to standard output: `smsgate man | man -l -`.
    Man,
}

/// Exit code for bad input (unparseable PDU, invalid number, text too long): the same code clap
/// uses for bad arguments.
pub const EXIT_BAD_INPUT: u8 = 2;

/// Standard input could not be read for a `-` argument.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the text from standard input: {0}")]
pub struct StdinError(#[source] pub std::io::Error);

/// The text of a `--text` argument: as given, or standard input for `-` (one trailing newline,
/// `\n` or `\r\n`, is dropped so that `echo … |` works as expected).
pub fn read_text(arg: &str) -> Result<String, StdinError> {
    if arg != "-" {
        return Ok(arg.to_string());
    }
    let mut s = String::new();
    std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).map_err(StdinError)?;
    if s.ends_with('\n') {
        s.pop();
        if s.ends_with('\r') {
            s.pop();
        }
    }
    Ok(s)
}

/// Runs a parsed command line and returns the process exit code.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Serve(args) => daemon::serve(args),
        Command::Demo(args) => daemon::demo(args),
        Command::Config(cmd) => daemon::config(cmd),
        Command::Pdu(cmd) => pdu::run(cmd),
        Command::Modem(cmd) => modem::run(cmd),
        Command::Simulate(args) => simulate::run(args),
        Command::History(cmd) => history::run(cmd),
        Command::Status(args) => client::status(args),
        Command::Send(args) => client::send(args),
        Command::Messages(cmd) => client::messages(cmd),
        Command::Inbound(cmd) => client::inbound(cmd),
        Command::Reminders(cmd) => client::reminders(cmd),
        Command::Optout(cmd) => client::optout(cmd),
        Command::Audit(args) => client::audit(args),
        Command::Tail(args) => client::tail(args),
        Command::Backup(args) => client::backup(args),
        Command::Completions(args) => docs::completions(&args),
        Command::Man => docs::man(),
        Command::Store(cmd) => store::run(cmd),
    }
}
