//! The commands that talk to a running daemon over its HTTP API: `status`, `send`, `messages`,
//! `inbound`, `reminders`, `optout` and `tail`. People get aligned tables (coloured on a
//! terminal); `--json` prints the API's answers as they are, for scripts. Exit codes say what
//! went wrong: see [`remote`].

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

pub mod inbound;
pub mod messages;
pub mod paging;
pub mod parse;
pub mod remote;
pub mod send;
pub mod show;
pub mod status;
pub mod tail;

use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use self::messages::replies_table;
use self::paging::{more_hint, pages};
use self::parse::parse_pair;
use self::remote::{Answer, Api, Failure, REQUEST_TIMEOUT, Remote, path_segment};
use self::show::{Cell, Table, fields, out, print_raw, s, status_colour};
use self::show::{opt_str, opt_time};

pub use self::inbound::{InboundCommand, inbound};
pub use self::messages::{MessageId, MessageListArgs, MessagesCommand, messages};
pub use self::paging::Paging;
pub use self::send::{SendArgs, send};
pub use self::status::{StatusArgs, status};

/// Arguments of `smsgate reminders create`.
#[derive(Debug, Args)]
pub struct ReminderCreateArgs {
    /// Recipient: +E.164, or national digits with `[sms] default_region`.
    #[arg(long, value_name = "NUMBER", required_unless_present = "json_body")]
    pub to: Option<String>,
    /// The invoice reference (one plan per invoice).
    #[arg(long, required_unless_present = "json_body")]
    pub invoice: Option<String>,
    /// Amount due, a decimal such as 120.50.
    #[arg(long, required_unless_present = "json_body")]
    pub amount: Option<String>,
    /// ISO 4217 currency code, e.g. USD.
    #[arg(long, required_unless_present = "json_body")]
    pub currency: Option<String>,
    /// Due date in the recipient's calendar.
    #[arg(long, value_name = "YYYY-MM-DD", required_unless_present = "json_body")]
    pub due_date: Option<String>,
    /// The recipient's IANA time zone, e.g. America/New_York (default `[reminders] timezone`).
    #[arg(long, value_name = "TZ")]
    pub timezone: Option<String>,
    /// Locale of money and dates in the texts, e.g. en-US (default `[reminders] locale`).
    #[arg(long)]
    pub locale: Option<String>,
    /// The customer's name (`{{ name }}`).
    #[arg(long)]
    pub name: Option<String>,
    /// A payment link (`{{ pay_url }}`).
    #[arg(long, value_name = "URL")]
    pub pay_url: Option<String>,
    /// Unit (`{{ unit }}`).
    #[arg(long)]
    pub unit: Option<String>,
    /// Property (`{{ property }}`).
    #[arg(long)]
    pub property: Option<String>,
    /// Another template variable; repeat for each.
    #[arg(long = "var", value_name = "KEY=VALUE", value_parser = parse_pair)]
    pub vars: Vec<(String, String)>,
    /// The request body (JSON) from a file, or `-` for standard input: for a `schedule`, a
    /// `send_window`, `metadata` and anything else. The options above override its fields.
    #[arg(long, value_name = "FILE")]
    pub json_body: Option<String>,
    /// The daemon and the output.
    #[command(flatten)]
    pub remote: Remote,
}

/// A reminder plan's id or its invoice reference.
#[derive(Debug, Args)]
pub struct PlanId {
    /// The plan's id or its invoice reference.
    #[arg(value_name = "ID_OR_INVOICE")]
    pub id: String,
    /// The daemon and the output.
    #[command(flatten)]
    pub remote: Remote,
}

/// Arguments of `smsgate reminders patch`.
#[derive(Debug, Args)]
pub struct ReminderPatchArgs {
    /// The plan and daemon.
    #[command(flatten)]
    pub plan: PlanId,
    /// New due date.
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub due_date: Option<String>,
    /// New amount due.
    #[arg(long)]
    pub amount: Option<String>,
    /// New currency (ISO 4217).
    #[arg(long)]
    pub currency: Option<String>,
    /// New customer name.
    #[arg(long)]
    pub name: Option<String>,
    /// New payment link.
    #[arg(long, value_name = "URL")]
    pub pay_url: Option<String>,
    /// A template variable to set, e.g. `desk=Bo`; repeat for each.
    #[arg(long = "var", value_name = "KEY=VALUE", value_parser = parse_pair)]
    pub vars: Vec<(String, String)>,
}

/// The `PATCH /v1/reminders/{id}` body of `reminders patch`; `None` when nothing is changed.
fn patch_body(a: &ReminderPatchArgs) -> Option<Value> {
    let mut body = Map::new();
    for (k, v) in [
        ("due_date", &a.due_date),
        ("amount", &a.amount),
        ("currency", &a.currency),
        ("name", &a.name),
        ("pay_url", &a.pay_url),
    ] {
        if let Some(v) = v {
            body.insert(k.into(), json!(v));
        }
    }
    if !a.vars.is_empty() {
        let vars: Map<String, Value> = a.vars.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        body.insert("vars".into(), Value::Object(vars));
    }
    (!body.is_empty()).then_some(Value::Object(body))
}

/// `smsgate reminders …`
#[derive(Debug, Subcommand)]
pub enum RemindersCommand {
    /// Make an invoice's reminder plan (`POST /v1/reminders`).
    #[command(long_about = concat!("Make an invoice's reminder plan (`POST /v1/reminders`): its texts are rendered and scheduled at once, and every step is shown. The same request again shows the plan made the first time; other values for the same invoice are refused (exit 1).\n\n", about_remote!()))]
    Create(Box<ReminderCreateArgs>),
    /// List plans, newest first (`GET /v1/reminders`).
    #[command(long_about = concat!("List reminder plans, newest first (`GET /v1/reminders`).\n\n", about_remote!()))]
    List {
        /// Only plans to this number (any form).
        #[arg(long, value_name = "NUMBER")]
        to: Option<String>,
        /// Only plans in this status (active, paid, cancelled).
        #[arg(long, value_name = "STATUS")]
        status: Option<String>,
        /// Paging.
        #[command(flatten)]
        paging: Paging,
        /// The daemon and the output.
        #[command(flatten)]
        remote: Remote,
    },
    /// Change a plan: its unsent steps are made again, sent ones kept (`PATCH /v1/reminders/{id}`).
    #[command(long_about = concat!("Change a plan (`PATCH /v1/reminders/{id}`): a new due date, amount, name, payment link or variables; the steps not sent yet are made again with them, the sent ones are kept.\n\n", about_remote!()))]
    Patch(Box<ReminderPatchArgs>),
    /// Cancel a plan: its unsent steps are cancelled (`DELETE /v1/reminders/{id}`).
    #[command(long_about = concat!("Cancel a plan (`DELETE /v1/reminders/{id}`): the steps not sent yet are cancelled; nothing is sent to the customer.\n\n", about_remote!()))]
    Delete(PlanId),
    /// Show a plan: every step with its status, send time and text (`GET /v1/reminders/{id}`).
    #[command(long_about = concat!("Show a plan: every step with its template, status, send time and text, and the customer's replies (`GET /v1/reminders/{id}`).\n\n", about_remote!()))]
    Show(PlanId),
    /// Mark the invoice paid: pending steps are cancelled and the confirmation is sent once
    /// (`POST /v1/reminders/{id}/paid`).
    #[command(long_about = concat!("Mark the invoice paid (`POST /v1/reminders/{id}/paid`): pending steps are cancelled and the `payment_received` text is sent once. Again on a paid plan: nothing changes.\n\n", about_remote!()))]
    Paid {
        /// The plan and daemon.
        #[command(flatten)]
        plan: PlanId,
        /// The amount received (`{{ amount_paid }}`; default the amount due).
        #[arg(long, value_name = "AMOUNT")]
        amount_paid: Option<String>,
        /// Send no confirmation text.
        #[arg(long)]
        no_confirm: bool,
    },
}

/// `smsgate optout …`
#[derive(Debug, Subcommand)]
pub enum OptoutCommand {
    /// Opt a number out: it gets no messages, its waiting ones are cancelled; nothing is sent to
    /// it (`POST /v1/opt-outs`).
    #[command(long_about = concat!("Opt a number out (`POST /v1/opt-outs`): it gets no messages and its waiting ones are cancelled. Nothing is sent to it.\n\n", about_remote!()))]
    Add {
        /// The number (any form).
        #[arg(value_name = "NUMBER")]
        number: String,
        /// Why, for the record.
        #[arg(long)]
        note: Option<String>,
        /// The daemon and the output.
        #[command(flatten)]
        remote: Remote,
    },
    /// Let a number get messages again; nothing is sent to it (`DELETE /v1/opt-outs/{number}`).
    #[command(long_about = concat!("Let a number get messages again (`DELETE /v1/opt-outs/{number}`). Nothing is sent to it. Exit 3 when it was not opted out.\n\n", about_remote!()))]
    Remove {
        /// The number (any form).
        #[arg(value_name = "NUMBER")]
        number: String,
        /// The daemon and the output.
        #[command(flatten)]
        remote: Remote,
    },
    /// List opted-out numbers, in number order (`GET /v1/opt-outs`).
    #[command(long_about = concat!("List opted-out numbers, in number order (`GET /v1/opt-outs`).\n\n", about_remote!()))]
    List {
        /// Paging.
        #[command(flatten)]
        paging: Paging,
        /// The daemon and the output.
        #[command(flatten)]
        remote: Remote,
    },
}

/// Arguments of `smsgate tail`.
#[derive(Debug, Args)]
pub struct TailArgs {
    /// The daemon and the output (`--json`: each event's JSON on one line).
    #[command(flatten)]
    pub remote: Remote,
}

/// `--help` texts of the top-level commands (the exit codes are added to each).
pub mod long_about {
    /// `smsgate status`
    pub const STATUS: &str = concat!(
        "Show the daemon's modems (whether each sends: up, resting or at a limit until when, or down; operator, signal, messages sent and failed and customers' texts received today, the last error) and queue (messages per status, queue depth, oldest due), and webhook deliveries failing but not yet given up, with their last error and next attempt, on one screen (`GET /v1/modems`, `GET /v1/stats`, `GET /v1/webhooks/failed?state=retrying`). Exit 0 when at least one modem sends, 1 when none does (down, or up but resting or at its limit).\n\n",
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
fn show_one(remote: &Remote, path: String, render: fn(&Value, bool) -> String) -> ExitCode {
    run_remote(remote, Some(REQUEST_TIMEOUT), |api, o| async move {
        let r = api.get(&path, &[]).await?;
        if o.json {
            print_raw(&r.raw);
        } else {
            out(&render(&r.json, o.colour));
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

/// A field of a JSON object's text, as it is written there.
fn raw_field(raw: &str, key: &str) -> Option<String> {
    let m: std::collections::HashMap<String, Box<RawValue>> = serde_json::from_str(raw).ok()?;
    m.get(key).map(|v| v.get().to_string())
}

/// A JSON object from a file or standard input (`-`).
fn read_json_object(from: &str) -> Result<Map<String, Value>, Failure> {
    let (name, text) = if from == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).map_err(|e| {
            Failure::Input(format!(
                "cannot read the JSON body from standard input: {e}"
            ))
        })?;
        ("standard input".to_string(), s)
    } else {
        let p = PathBuf::from(from);
        let s = std::fs::read_to_string(&p)
            .map_err(|e| Failure::Input(format!("--json-body {}: {e}", p.display())))?;
        (p.display().to_string(), s)
    };
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(Failure::Input(format!(
            "--json-body {name}: must be a JSON object"
        ))),
        Err(e) => Err(Failure::Input(format!("--json-body {name}: not JSON: {e}"))),
    }
}

/// The body of `POST /v1/reminders`: `--json-body`, then the options over it.
fn plan_body(a: &ReminderCreateArgs) -> Result<Value, Failure> {
    let mut body = match &a.json_body {
        Some(f) => read_json_object(f)?,
        None => Map::new(),
    };
    for (k, v) in [
        ("to", &a.to),
        ("invoice", &a.invoice),
        ("amount", &a.amount),
        ("currency", &a.currency),
        ("due_date", &a.due_date),
        ("timezone", &a.timezone),
        ("locale", &a.locale),
        ("name", &a.name),
        ("pay_url", &a.pay_url),
        ("unit", &a.unit),
        ("property", &a.property),
    ] {
        if let Some(v) = v {
            body.insert(k.into(), json!(v));
        }
    }
    if !a.vars.is_empty() {
        let vars = body
            .entry("vars")
            .or_insert_with(|| Value::Object(Map::new()));
        let Some(vars) = vars.as_object_mut() else {
            return Err(Failure::Input(
                "--var: the JSON body's `vars` is not an object".into(),
            ));
        };
        for (k, v) in &a.vars {
            vars.insert(k.clone(), json!(v));
        }
    }
    Ok(Value::Object(body))
}

fn render_plan(p: &Value, colour: bool) -> String {
    let status = s(&p["status"]);
    let mut text = fields(
        &[
            ("plan", Some(s(&p["id"]))),
            ("invoice", opt_str(&p["invoice"])),
            ("status", Some(status.clone())),
            ("to", Some(s(&p["to"]))),
            (
                "amount",
                Some(show::clean(&format!(
                    "{} {}",
                    s(&p["amount"]),
                    s(&p["currency"])
                ))),
            ),
            ("due date", Some(s(&p["due_date"]))),
            ("time zone", opt_str(&p["timezone"])),
            ("locale", opt_str(&p["locale"])),
            ("paid", opt_time(&p["paid_at"])),
            ("created", opt_time(&p["created_at"])),
        ],
        |k| (k == "status").then(|| status_colour(&status)).flatten(),
        colour,
    );
    let mut t = Table::new(&["STEP", "TEMPLATE", "STATUS", "SEND AT", "TEXT"]);
    for st in p["steps"].as_array().into_iter().flatten() {
        t.row(vec![
            Cell::new(s(&st["index"])),
            Cell::new(s(&st["template"])),
            Cell::status(&s(&st["status"]), st["status_reason"].as_str()),
            Cell::new(show::time_as_given(&st["send_at"])),
            Cell::new(st["text"].as_str().unwrap_or("-")),
        ]);
    }
    text.push('\n');
    text.push_str(&t.render(colour));
    let replies = p["replies"].as_array().cloned().unwrap_or_default();
    if !replies.is_empty() {
        text.push_str("\nReplies\n");
        text.push_str(&replies_table(&replies, true).render(colour));
    }
    text
}

/// `smsgate reminders …`
pub fn reminders(cmd: RemindersCommand) -> ExitCode {
    match cmd {
        RemindersCommand::Create(a) => {
            let remote = a.remote.clone();
            run_remote(&remote, Some(REQUEST_TIMEOUT), |api, o| async move {
                let body = plan_body(&a)?;
                let Answer {
                    status: code,
                    json: p,
                    raw,
                } = api.post("/v1/reminders", Some(&body)).await?;
                if o.json {
                    print_raw(&raw);
                } else {
                    if code == 200 {
                        eprintln!(
                            "invoice {} already had this plan (the same request): nothing new was made",
                            show::clean(&s(&p["invoice"]))
                        );
                    }
                    out(&render_plan(&p, o.colour));
                }
                Ok(ExitCode::SUCCESS)
            })
        }
        RemindersCommand::List {
            to,
            status,
            paging,
            remote,
        } => run_remote(&remote, Some(REQUEST_TIMEOUT), |api, o| async move {
            let mut q = Vec::new();
            for (k, v) in [("to", &to), ("status", &status)] {
                if let Some(v) = v {
                    q.push((k, v.clone()));
                }
            }
            let Answer {
                json: page, raw, ..
            } = pages(&api, "/v1/reminders", q, "reminders", &paging).await?;
            if o.json {
                print_raw(&raw);
                return Ok(ExitCode::SUCCESS);
            }
            let mut t = Table::new(&["ID", "INVOICE", "TO", "STATUS", "DUE", "AMOUNT"]);
            for p in page["reminders"].as_array().into_iter().flatten() {
                t.row(vec![
                    Cell::new(s(&p["id"])),
                    Cell::new(show::clean(&s(&p["invoice"]))),
                    Cell::new(s(&p["to"])),
                    Cell::status(&s(&p["status"]), None),
                    Cell::new(s(&p["due_date"])),
                    Cell::new(format!("{} {}", s(&p["amount"]), s(&p["currency"]))),
                ]);
            }
            if t.is_empty() {
                eprintln!("no reminder plans");
            } else {
                out(&t.render(o.colour));
            }
            more_hint(&page);
            Ok(ExitCode::SUCCESS)
        }),
        RemindersCommand::Patch(a) => {
            let Some(body) = patch_body(&a) else {
                eprintln!(
                    "error: nothing to change: give --due-date, --amount, --currency, --name, --pay-url or --var"
                );
                return ExitCode::from(super::EXIT_BAD_INPUT);
            };
            let remote = a.plan.remote.clone();
            let path = format!("/v1/reminders/{}", path_segment(&a.plan.id));
            run_remote(&remote, Some(REQUEST_TIMEOUT), |api, o| async move {
                let p = api
                    .call(Method::PATCH, &path, &[], Some(&body), &[])
                    .await?;
                if o.json {
                    print_raw(&p.raw);
                } else {
                    out(&render_plan(&p.json, o.colour));
                }
                Ok(ExitCode::SUCCESS)
            })
        }
        RemindersCommand::Delete(a) => {
            run_remote(&a.remote, Some(REQUEST_TIMEOUT), |api, o| async move {
                let p = api
                    .call(
                        Method::DELETE,
                        &format!("/v1/reminders/{}", path_segment(&a.id)),
                        &[],
                        None,
                        &[],
                    )
                    .await?;
                if o.json {
                    print_raw(&p.raw);
                } else {
                    out(&render_plan(&p.json, o.colour));
                }
                Ok(ExitCode::SUCCESS)
            })
        }
        RemindersCommand::Show(a) => show_one(
            &a.remote,
            format!("/v1/reminders/{}", path_segment(&a.id)),
            render_plan,
        ),
        RemindersCommand::Paid {
            plan,
            amount_paid,
            no_confirm,
        } => run_remote(&plan.remote, Some(REQUEST_TIMEOUT), |api, o| async move {
            let mut body = Map::new();
            if let Some(a) = amount_paid {
                body.insert("amount_paid".into(), json!(a));
            }
            if no_confirm {
                body.insert("confirm".into(), json!(false));
            }
            let body = (!body.is_empty()).then_some(Value::Object(body));
            let p = api
                .post(
                    &format!("/v1/reminders/{}/paid", path_segment(&plan.id)),
                    body.as_ref(),
                )
                .await?;
            if o.json {
                print_raw(&p.raw);
            } else {
                out(&render_plan(&p.json, o.colour));
            }
            Ok(ExitCode::SUCCESS)
        }),
    }
}

fn optout_detail(o: &Value) -> String {
    let mut parts = Vec::new();
    if let Some(k) = o["keyword"].as_str() {
        parts.push(format!("texted {k}"));
    }
    if let Some(n) = o["note"].as_str() {
        parts.push(n.to_string());
    }
    show::clean(&parts.join("; "))
}

/// `smsgate optout …`
pub fn optout(cmd: OptoutCommand) -> ExitCode {
    match cmd {
        OptoutCommand::Add {
            number,
            note,
            remote,
        } => run_remote(&remote, Some(REQUEST_TIMEOUT), |api, o| async move {
            let mut body = json!({"number": number});
            if let Some(n) = note {
                body["note"] = json!(n);
            }
            let v = api.post("/v1/opt-outs", Some(&body)).await?;
            if o.json {
                print_raw(&v.raw);
            } else {
                let oo = &v.json["opt_outs"][0];
                if v.status == 201 {
                    out(&format!("{} opted out\n", s(&oo["number"])));
                } else {
                    out(&format!(
                        "{} was already opted out (since {}, {})\n",
                        s(&oo["number"]),
                        show::time(&oo["opted_out_at"]),
                        s(&oo["source"])
                    ));
                }
            }
            Ok(ExitCode::SUCCESS)
        }),
        OptoutCommand::Remove { number, remote } => {
            run_remote(&remote, Some(REQUEST_TIMEOUT), |api, o| async move {
                let v = api
                    .call(
                        Method::DELETE,
                        &format!("/v1/opt-outs/{}", path_segment(&number)),
                        &[],
                        None,
                        &[],
                    )
                    .await?;
                if o.json {
                    print_raw(&v.raw);
                } else {
                    out(&format!(
                        "{} is no longer opted out: it may get messages again\n",
                        s(&v.json["number"])
                    ));
                }
                Ok(ExitCode::SUCCESS)
            })
        }
        OptoutCommand::List { paging, remote } => {
            run_remote(&remote, Some(REQUEST_TIMEOUT), |api, o| async move {
                let Answer {
                    json: page, raw, ..
                } = pages(&api, "/v1/opt-outs", Vec::new(), "opt_outs", &paging).await?;
                if o.json {
                    print_raw(&raw);
                    return Ok(ExitCode::SUCCESS);
                }
                let mut t = Table::new(&["NUMBER", "SINCE", "SOURCE", "DETAIL"]);
                for oo in page["opt_outs"].as_array().into_iter().flatten() {
                    t.row(vec![
                        Cell::new(s(&oo["number"])),
                        Cell::new(show::time(&oo["opted_out_at"])),
                        Cell::new(s(&oo["source"])),
                        Cell::new(optout_detail(oo)),
                    ]);
                }
                if t.is_empty() {
                    eprintln!("no opted-out numbers");
                } else {
                    out(&t.render(o.colour));
                }
                more_hint(&page);
                Ok(ExitCode::SUCCESS)
            })
        }
    }
}

/// `smsgate tail`
pub fn tail(args: TailArgs) -> ExitCode {
    run_remote(&args.remote, None, |api, o| {
        tail::run(api, o.json, o.colour)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_override_the_json_body() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("plan.json");
        std::fs::write(
            &f,
            r#"{"to": "+1", "invoice": "INV-1", "vars": {"a": "1"}, "schedule": [{"offset": "0d", "template": "due_today"}]}"#,
        )
        .unwrap();
        let a = ReminderCreateArgs {
            to: Some("+12025550123".into()),
            invoice: None,
            amount: Some("10.00".into()),
            currency: None,
            due_date: None,
            timezone: None,
            locale: None,
            name: None,
            pay_url: None,
            unit: None,
            property: None,
            vars: vec![("b".into(), "2".into())],
            json_body: Some(f.display().to_string()),
            remote: Remote {
                url: None,
                token: None,
                config: None,
                json: false,
            },
        };
        let b = plan_body(&a).unwrap();
        assert_eq!(b["to"], "+12025550123");
        assert_eq!(b["invoice"], "INV-1");
        assert_eq!(b["amount"], "10.00");
        assert_eq!(b["vars"], json!({"a": "1", "b": "2"}));
        assert_eq!(b["schedule"][0]["template"], "due_today");
    }
}
