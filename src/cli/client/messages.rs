//! `smsgate messages`: list, show, cancel and requeue the daemon's messages.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::paging::{Paging, print_list};
use super::parse::parse_since;
use super::remote::{REQUEST_TIMEOUT, Remote, path_segment};
use super::send::id_and_status;
use super::show::{
    self, Cell, Table, fields, or_dash, out, print_raw, s, some_clean, some_time, status_colour,
    time_text, time_zoned_text,
};
use super::{run_remote, show_one, view};

/// One message id.
#[derive(Debug, Args)]
pub struct MessageId {
    /// The message id.
    #[arg(value_name = "ID")]
    pub id: String,
    /// The daemon and the output.
    #[command(flatten)]
    pub remote: Remote,
}

/// Arguments of `smsgate messages list`.
#[derive(Debug, Args)]
pub struct MessageListArgs {
    /// Only messages in this status (queued, scheduled, sending, sent, delivered, failed,
    /// expired, cancelled, unknown).
    #[arg(long, value_name = "STATUS")]
    pub status: Option<String>,
    /// Only messages to this number (any form).
    #[arg(long, value_name = "NUMBER")]
    pub to: Option<String>,
    /// Only messages created at or after this time: RFC 3339, a date (`2026-12-06`, midnight
    /// here), a local date and time (`2026-12-06 15:00`), or how long ago (`1h`, `2d`).
    #[arg(long, value_name = "WHEN", value_parser = parse_since)]
    pub since: Option<String>,
    /// Paging.
    #[command(flatten)]
    pub paging: Paging,
    /// The daemon and the output.
    #[command(flatten)]
    pub remote: Remote,
}

/// `smsgate messages …`
#[derive(Debug, Subcommand)]
pub enum MessagesCommand {
    /// List messages, newest first (`GET /v1/messages`).
    #[command(long_about = concat!("List messages, newest first (`GET /v1/messages`).\n\n", about_remote!()))]
    List(MessageListArgs),
    /// Show one message with its history (`GET /v1/messages/{id}`).
    #[command(long_about = concat!("Show one message: its fields, attempts, replies and history (`GET /v1/messages/{id}`).\n\n", about_remote!()))]
    Show(MessageId),
    /// Cancel a queued or scheduled message, or close an unknown or failed one (`POST /v1/messages/{id}/cancel`).
    #[command(long_about = concat!("Cancel a queued or scheduled message (`POST /v1/messages/{id}/cancel`), or close an `unknown` or `failed` one that is not to be sent again. A message sending, sent or delivered cannot be cancelled: exit 1 with the daemon's reason.\n\n", about_remote!()))]
    Cancel(MessageId),
    /// Send an unknown, failed, expired or cancelled message again
    /// (`POST /v1/messages/{id}/requeue`).
    #[command(long_about = concat!("Send an unknown, failed, expired or cancelled message again (`POST /v1/messages/{id}/requeue`). An `unknown` message may already be on the phone: decide first.\n\n", about_remote!()))]
    Requeue(MessageId),
}

/// A message, with what `messages list` prints of it.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct MessageRow {
    id: Option<String>,
    created_at: Option<String>,
    to: Option<String>,
    status: Option<String>,
    parts: Option<u64>,
    text: Option<String>,
}

/// A page of `GET /v1/messages`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct MessagePage {
    messages: Option<Vec<MessageRow>>,
}

/// The table of `messages list`.
fn messages_table(list: &[MessageRow]) -> Table {
    let mut t = Table::new(&["ID", "CREATED", "TO", "STATUS", "PARTS", "TEXT"]);
    for m in list {
        t.row(vec![
            Cell::new(or_dash(m.id.as_deref())),
            Cell::new(time_text(m.created_at.as_deref())),
            Cell::new(or_dash(m.to.as_deref())),
            Cell::status(&or_dash(m.status.as_deref()), None),
            Cell::new(or_dash(m.parts)),
            Cell::new(show::truncate(
                &show::clean(&or_dash(m.text.as_deref())),
                40,
            )),
        ]);
    }
    t
}

/// `smsgate messages …`
pub fn messages(cmd: MessagesCommand) -> ExitCode {
    match cmd {
        MessagesCommand::List(a) => {
            run_remote(&a.remote, Some(REQUEST_TIMEOUT), |api, o| async move {
                let mut q = Vec::new();
                for (k, v) in [("status", &a.status), ("to", &a.to), ("since", &a.since)] {
                    if let Some(v) = v {
                        q.push((k, v.clone()));
                    }
                }
                print_list(
                    &api,
                    o,
                    "/v1/messages",
                    q,
                    "messages",
                    &a.paging,
                    "no messages",
                    |list: MessagePage| messages_table(&list.messages.unwrap_or_default()),
                )
                .await
            })
        }
        MessagesCommand::Show(a) => show_one(
            &a.remote,
            format!("/v1/messages/{}", path_segment(&a.id)),
            render_message,
        ),
        MessagesCommand::Cancel(a) => message_action(a, "cancel"),
        MessagesCommand::Requeue(a) => message_action(a, "requeue"),
    }
}

fn message_action(a: MessageId, action: &'static str) -> ExitCode {
    run_remote(&a.remote, Some(REQUEST_TIMEOUT), |api, o| async move {
        let m = api
            .post(
                &format!("/v1/messages/{}/{action}", path_segment(&a.id)),
                None,
            )
            .await?;
        if o.json {
            print_raw(&m.raw);
        } else {
            out(&id_and_status(&view(&api, &m.json)?, o.colour));
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// A message of `GET /v1/messages/{id}`, with what `messages show` prints of it.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct MessageShown {
    id: Option<String>,
    to: Option<String>,
    status: Option<String>,
    status_reason: Option<String>,
    text: Option<String>,
    parts: Option<u64>,
    encoding: Option<String>,
    priority: Option<String>,
    created_at: Option<String>,
    updated_at: Option<String>,
    send_at: Option<String>,
    expires_at: Option<String>,
    hold: Option<Hold>,
    next_attempt_at: Option<String>,
    modem: Option<String>,
    sent_at: Option<String>,
    delivered_at: Option<String>,
    reply_options: Option<Map<String, Value>>,
    reminder: Option<ReminderLink>,
    callback_url: Option<String>,
    /// The caller's data: any JSON, printed on one line.
    metadata: Option<Value>,
    attempts: Option<Vec<Attempt>>,
    replies: Option<Vec<Reply>>,
    events: Option<Vec<Event>>,
}

/// Why a message waits, in words, and until when.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Hold {
    text: Option<String>,
    until: Option<String>,
}

/// The reminder plan step a message belongs to.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ReminderLink {
    plan_id: Option<String>,
    invoice: Option<String>,
    step: Option<u64>,
    template: Option<String>,
}

/// One try at sending a message.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Attempt {
    at: Option<String>,
    modem: Option<String>,
    result: Option<String>,
    error: Option<String>,
}

/// A customer's answer to a message (or, in a plan, to one of its steps).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Reply {
    step: Option<u64>,
    at: Option<String>,
    choice: Option<String>,
    action: Option<String>,
    text: Option<String>,
}

/// One entry of a message's history.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Event {
    seq: Option<u64>,
    at: Option<String>,
    kind: Option<String>,
    status: Option<String>,
    reason: Option<String>,
}

/// A held message's reason in words and when it is looked at again.
fn hold_line(h: &Hold) -> Option<String> {
    let text = h.text.as_deref()?;
    Some(match h.until.as_deref() {
        Some(t) => format!(
            "{}; looked at again {}",
            show::clean(text),
            time_zoned_text(t)
        ),
        None => format!("{}; looked at again when a modem is up", show::clean(text)),
    })
}

fn render_message(m: &MessageShown, colour: bool) -> String {
    let status = or_dash(m.status.as_deref());
    // A held message's reason is told in words on its own line (`held`), not as a code here.
    let status_line = match &m.status_reason {
        _ if m.hold.is_some() => format!("{status} (held)"),
        Some(r) => format!("{status} ({})", show::clean(r)),
        None => status.clone(),
    };
    let reminder = m.reminder.as_ref().map(|r| {
        format!(
            "plan {}, invoice {}, step {} ({})",
            or_dash(r.plan_id.as_deref()),
            show::clean(&or_dash(r.invoice.as_deref())),
            or_dash(r.step),
            or_dash(r.template.as_deref())
        )
    });
    let options = m.reply_options.as_ref().map(|o| {
        o.iter()
            .map(|(k, a)| show::clean(&format!("{k}={}", s(a))))
            .collect::<Vec<_>>()
            .join(", ")
    });
    let mut text = fields(
        &[
            ("id", Some(or_dash(m.id.as_deref()))),
            ("to", Some(or_dash(m.to.as_deref()))),
            ("status", Some(status_line)),
            (
                "text",
                Some(show::clean_multiline(&or_dash(m.text.as_deref()))),
            ),
            (
                "parts",
                Some(format!(
                    "{} ({})",
                    or_dash(m.parts),
                    or_dash(m.encoding.as_deref())
                )),
            ),
            ("priority", some_clean(m.priority.as_deref())),
            ("created", some_time(m.created_at.as_deref())),
            ("updated", some_time(m.updated_at.as_deref())),
            ("send at", some_time(m.send_at.as_deref())),
            ("expires at", some_time(m.expires_at.as_deref())),
            ("held", m.hold.as_ref().and_then(hold_line)),
            ("next attempt", some_time(m.next_attempt_at.as_deref())),
            ("modem", some_clean(m.modem.as_deref())),
            ("sent", some_time(m.sent_at.as_deref())),
            ("delivered", some_time(m.delivered_at.as_deref())),
            ("reply options", options),
            ("reminder", reminder),
            ("callback url", some_clean(m.callback_url.as_deref())),
            (
                "metadata",
                m.metadata.as_ref().map(|v| show::clean(&v.to_string())),
            ),
        ],
        |k| (k == "status").then(|| status_colour(&status)).flatten(),
        colour,
    );
    let attempts = m.attempts.as_deref().unwrap_or_default();
    if !attempts.is_empty() {
        let mut t = Table::new(&["AT", "MODEM", "RESULT", "ERROR"]);
        for a in attempts {
            t.row(vec![
                Cell::new(time_text(a.at.as_deref())),
                Cell::new(or_dash(a.modem.as_deref())),
                Cell::status(&or_dash(a.result.as_deref()), None),
                Cell::new(or_dash(a.error.as_deref())),
            ]);
        }
        text.push_str("\nAttempts\n");
        text.push_str(&t.render(colour));
    }
    let replies = m.replies.as_deref().unwrap_or_default();
    if !replies.is_empty() {
        text.push_str("\nReplies\n");
        text.push_str(&replies_table(replies, false).render(colour));
    }
    let events = m.events.as_deref().unwrap_or_default();
    if !events.is_empty() {
        let mut t = Table::new(&["SEQ", "AT", "KIND", "STATUS", "REASON"]);
        for e in events {
            t.row(vec![
                Cell::new(or_dash(e.seq)),
                Cell::new(time_text(e.at.as_deref())),
                Cell::new(or_dash(e.kind.as_deref())),
                Cell::status(&or_dash(e.status.as_deref()), None),
                Cell::new(e.reason.as_deref().unwrap_or("")),
            ]);
        }
        text.push_str("\nHistory\n");
        text.push_str(&t.render(colour));
    }
    text
}

pub(super) fn replies_table(replies: &[Reply], with_step: bool) -> Table {
    let mut t = if with_step {
        Table::new(&["STEP", "AT", "CHOICE", "ACTION", "TEXT"])
    } else {
        Table::new(&["AT", "CHOICE", "ACTION", "TEXT"])
    };
    for r in replies {
        let mut row = Vec::new();
        if with_step {
            row.push(Cell::new(or_dash(r.step)));
        }
        row.extend([
            Cell::new(time_text(r.at.as_deref())),
            Cell::new(or_dash(r.choice.as_deref())),
            Cell::new(or_dash(r.action.as_deref())),
            Cell::new(or_dash(r.text.as_deref())),
        ]);
        t.row(row);
    }
    t
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_typed_table_prints_what_the_json_did() {
        let page = json!({"messages": [
            {"id": "01KAR6V1T4Y1Q0ZBC5Z2W3M6XD", "created_at": "2026-12-06T10:00:00Z",
             "to": "+12025550123", "status": "delivered", "parts": 2,
             "text": "Your invoice INV-1042 of $120.50 is due on 6 December.\nPay at https://pay.example/x"},
            {"id": "01KAR6V1T4Y1Q0ZBC5Z2W3M6XE", "created_at": "2026-12-06T10:01:00-05:00",
             "to": "+12025550124", "status": "failed", "parts": 1, "text": null},
            {"id": "01KAR6V1T4Y1Q0ZBC5Z2W3M6XF"}
        ], "next_cursor": "abc"});
        // What the list printed when it read the page as JSON values.
        let mut was = Table::new(&["ID", "CREATED", "TO", "STATUS", "PARTS", "TEXT"]);
        for m in page["messages"].as_array().into_iter().flatten() {
            was.row(vec![
                Cell::new(s(&m["id"])),
                Cell::new(show::time(&m["created_at"])),
                Cell::new(s(&m["to"])),
                Cell::status(&s(&m["status"]), None),
                Cell::new(s(&m["parts"])),
                Cell::new(show::truncate(&show::clean(&s(&m["text"])), 40)),
            ]);
        }
        let list: MessagePage = serde_json::from_value(page).unwrap();
        let now = messages_table(&list.messages.unwrap());
        assert_eq!(now.render(false), was.render(false));
        assert_eq!(now.render(true), was.render(true));
    }
}
