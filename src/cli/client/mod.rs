//! The commands that talk to a running daemon over its HTTP API: `status`, `send`, `messages`,
//! `inbound`, `reminders`, `optout`, `audit`, `tail` and `backup`. People get aligned tables (coloured on a
//! terminal); `--json` prints the API's answers as they are, for scripts. Exit codes say what
//! went wrong: see [`remote`].
//!
//! One file per command, each with its clap arguments and the code that runs it (`status.rs`,
//! `send.rs`, `messages.rs`, `inbound.rs`, `reminders.rs`, `optout.rs`, `audit.rs`, `tail.rs`,
//! `backup.rs`). Shared by
//! them: [`remote`] (finding the daemon, one request, exit codes), [`show`] (tables and text
//! for people), [`paging`] (`--limit`, `--cursor`, `--all`), [`parse`] (times, pairs and JSON
//! objects on the command line), and here the `--help` texts and `run_remote`, which runs a
//! command against the daemon.

/// The exit codes and where the URL and token come from, for each command's `--help`.
macro_rules! about_remote {
    () => {
        "Exit codes:
  0  done
  1  the daemon refused the request (e.g. 409: the message is past cancelling); `status`: no
     modem is up
  2  bad input: a wrong argument, or the API's 422 (each `field: detail` is printed)
  3  not found (404)
  4  the daemon cannot be reached (connection refused, timeout) or refused the token (401);
     the URL tried is printed
  5  the daemon failed (5xx; 503: its store cannot be written)

URL and token: --url and --token (or SMSGATE_URL and SMSGATE_TOKEN); otherwise they are read
from the daemon's configuration (--config, SMSGATE_CONFIG, or /etc/smsgate/smsgate.toml):
http:// + `[http] listen`, and the first `[[api_keys]]` entry with a plain `token`."
    };
}

pub mod audit;
pub mod backup;
pub mod inbound;
pub mod messages;
pub mod optout;
pub mod paging;
pub mod parse;
pub mod reminders;
pub mod remote;
pub mod send;
pub mod show;
pub mod status;
pub mod tail;

use std::future::Future;
use std::process::ExitCode;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_json::value::RawValue;

use self::remote::{Api, Failure, REQUEST_TIMEOUT, Remote};
use self::show::{out, print_raw};

pub use self::audit::{AuditArgs, audit};
pub use self::backup::{BackupArgs, backup};
pub use self::inbound::{InboundCommand, inbound};
pub use self::messages::{MessageId, MessageListArgs, MessagesCommand, messages};
pub use self::optout::{OptoutCommand, optout};
pub use self::paging::Paging;
pub use self::reminders::{
    PlanId, ReminderCreateArgs, ReminderPatchArgs, RemindersCommand, reminders,
};
pub use self::send::{SendArgs, send};
pub use self::status::{StatusArgs, status};
pub use self::tail::{TailArgs, tail};

/// `--help` texts of the top-level commands (the exit codes are added to each).
pub mod long_about {
    /// `smsgate status`
    pub const STATUS: &str = concat!(
        "Show the daemon's modems (whether each sends: up, resting or at a limit until when, or down; operator, signal, messages sent and failed and customers' texts received today, the last error), queue (messages per status, queue depth, oldest due), webhook deliveries failing but not yet given up, with their last error and next attempt, and (gateways sharing a PostgreSQL store) the modems this gateway stands by for, with the gateway driving each, on one screen (`GET /v1/modems`, `GET /v1/stats`, `GET /v1/webhooks/failed?state=retrying`). Exit 0 when at least one modem sends, 1 when none does (down, or up but resting or at its limit, or only stood by for).\n\n",
        about_remote!()
    );
    /// `smsgate send`
    pub const SEND: &str = concat!(
        "Send one SMS through the daemon (`POST /v1/messages`); prints the new message's id and status. The message is on the daemon's disk when this returns; follow it with `smsgate messages show ID`.\n\n",
        about_remote!()
    );
    /// `smsgate messages`
    pub const MESSAGES: &str = concat!(
        "List, show, cancel or requeue messages.\n\n",
        about_remote!()
    );
    /// `smsgate inbound`
    pub const INBOUND: &str = concat!("Messages customers sent.\n\n", about_remote!());
    /// `smsgate reminders`
    pub const REMINDERS: &str = concat!(
        "Reminder plans: an invoice's schedule of texts (see docs/reminders.md).\n\n",
        about_remote!()
    );
    /// `smsgate optout`
    pub const OPTOUT: &str = concat!(
        "Numbers that get no messages (they texted STOP, or were added here).\n\n",
        about_remote!()
    );
    /// `smsgate audit`
    pub const AUDIT: &str = concat!(
        "List who did what through the API that is not about one message, oldest first (`GET /v1/audit`): templates set or removed, numbers opted out or in, reloads, USSD codes, logins to the admin page, each with the API key's name. A message's own changes are in its history (`smsgate messages show ID`).\n\n",
        about_remote!()
    );
    /// `smsgate tail`
    pub const TAIL: &str = concat!(
        "Follow the daemon's events live (`GET /v1/events`, server-sent events): one line per message status change and per received text, or each event's JSON with --json. Reconnects with backoff when the connection drops; Ctrl-C stops it (exit 0). The first connection must succeed.\n\n",
        about_remote!()
    );
}

/// How to print.
#[derive(Debug, Clone, Copy)]
struct Out {
    json: bool,
    colour: bool,
}

/// GETs one resource and prints it: the API's JSON with `--json`, else `render`'s text.
fn show_one<T: DeserializeOwned>(
    remote: &Remote,
    path: String,
    render: fn(&T, bool) -> String,
) -> ExitCode {
    run_remote(remote, Some(REQUEST_TIMEOUT), |api, o| async move {
        let r = api.get(&path, &[]).await?;
        if o.json {
            print_raw(&r.raw);
        } else {
            out(&render(&view(&api, &r.json)?, o.colour));
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// Finds the daemon, then runs `f` on a small runtime; a failure is printed with its exit code.
fn run_remote<F, Fut>(remote: &Remote, timeout: Option<Duration>, f: F) -> ExitCode
where
    F: FnOnce(Api, Out) -> Fut,
    Fut: Future<Output = Result<ExitCode, Failure>>,
{
    let json = remote.json;
    let target = match remote::resolve(remote) {
        Ok(t) => t,
        Err(e) => return e.report(json),
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let o = Out {
        json,
        colour: show::colour_wanted(json),
    };
    let r = rt.block_on(async move {
        let api = Api::new(target, timeout)?;
        f(api, o).await
    });
    r.unwrap_or_else(|e| e.report(json))
}

/// A typed view of an answer's JSON: the fields a command prints. An answer that does not fit
/// did not come from smsgate.
fn view<T: DeserializeOwned>(api: &Api, json: &Value) -> Result<T, Failure> {
    T::deserialize(json).map_err(|e| Failure::NotSmsgate {
        url: api.target.url.clone(),
        why: format!("unexpected answer: {e}"),
    })
}

/// A field of a JSON object's text, as it is written there.
fn raw_field(raw: &str, key: &str) -> Option<String> {
    let m: std::collections::HashMap<String, Box<RawValue>> = serde_json::from_str(raw).ok()?;
    m.get(key).map(|v| v.get().to_string())
}
