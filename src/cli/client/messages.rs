//! `smsgate messages`: list, show, cancel and requeue the daemon's messages.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde::Deserialize;
use serde_json::Value;

use super::paging::{Paging, more_hint, pages};
use super::parse::parse_since;
use super::remote::{Answer, REQUEST_TIMEOUT, Remote, path_segment};
use super::send::id_and_status;
use super::show::{
    self, Cell, Table, fields, opt_str, opt_time, or_dash, out, present, print_raw, s,
    status_colour, time_text,
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
    /// Cancel a queued or scheduled message (`POST /v1/messages/{id}/cancel`).
    #[command(long_about = concat!("Cancel a queued or scheduled message (`POST /v1/messages/{id}/cancel`). A message already sending or sent cannot be cancelled: exit 1 with the daemon's reason.\n\n", about_remote!()))]
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
                let Answer {
                    json: page, raw, ..
                } = pages(&api, "/v1/messages", q, "messages", &a.paging).await?;
                if o.json {
                    print_raw(&raw);
                    return Ok(ExitCode::SUCCESS);
                }
                let list: MessagePage = view(&api, &page)?;
                let t = messages_table(&list.messages.unwrap_or_default());
                if t.is_empty() {
                    eprintln!("no messages");
                } else {
                    out(&t.render(o.colour));
                }
                more_hint(&page);
                Ok(ExitCode::SUCCESS)
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

fn compact(v: &Value) -> Option<String> {
    present(v).map(|v| show::clean(&v.to_string()))
}

fn options(v: &Value) -> Option<String> {
    v.as_object().map(|o| {
        o.iter()
            .map(|(k, a)| show::clean(&format!("{k}={}", s(a))))
            .collect::<Vec<_>>()
            .join(", ")
    })
}

/// A held message's reason in words and when it is looked at again.
fn hold_line(h: &Value) -> Option<String> {
    let text = present(&h["text"])?;
    Some(match present(&h["until"]) {
        Some(t) => format!(
            "{}; looked at again {}",
            show::clean(&s(text)),
            show::time_zoned(t)
        ),
        None => format!(
            "{}; looked at again when a modem is up",
            show::clean(&s(text))
        ),
    })
}

fn render_message(m: &Value, colour: bool) -> String {
    let status = s(&m["status"]);
    // A held message's reason is told in words on its own line (`held`), not as a code here.
    let status_line = match m["status_reason"].as_str() {
        _ if present(&m["hold"]).is_some() => format!("{status} (held)"),
        Some(r) => format!("{status} ({})", show::clean(r)),
        None => status.clone(),
    };
    let reminder = present(&m["reminder"]).map(|r| {
        format!(
            "plan {}, invoice {}, step {} ({})",
            s(&r["plan_id"]),
            show::clean(&s(&r["invoice"])),
            s(&r["step"]),
            s(&r["template"])
        )
    });
    let mut text = fields(
        &[
            ("id", Some(s(&m["id"]))),
            ("to", Some(s(&m["to"]))),
            ("status", Some(status_line)),
            ("text", Some(show::clean_multiline(&s(&m["text"])))),
            (
                "parts",
                Some(format!("{} ({})", s(&m["parts"]), s(&m["encoding"]))),
            ),
            ("priority", opt_str(&m["priority"])),
            ("created", opt_time(&m["created_at"])),
            ("updated", opt_time(&m["updated_at"])),
            ("send at", opt_time(&m["send_at"])),
            ("expires at", opt_time(&m["expires_at"])),
            ("held", hold_line(&m["hold"])),
            ("next attempt", opt_time(&m["next_attempt_at"])),
            ("modem", opt_str(&m["modem"])),
            ("sent", opt_time(&m["sent_at"])),
            ("delivered", opt_time(&m["delivered_at"])),
            ("reply options", options(&m["reply_options"])),
            ("reminder", reminder),
            ("callback url", opt_str(&m["callback_url"])),
            ("metadata", compact(&m["metadata"])),
        ],
        |k| (k == "status").then(|| status_colour(&status)).flatten(),
        colour,
    );
    let attempts = m["attempts"].as_array().cloned().unwrap_or_default();
    if !attempts.is_empty() {
        let mut t = Table::new(&["AT", "MODEM", "RESULT", "ERROR"]);
        for a in &attempts {
            t.row(vec![
                Cell::new(show::time(&a["at"])),
                Cell::new(s(&a["modem"])),
                Cell::status(&s(&a["result"]), None),
                Cell::new(s(&a["error"])),
            ]);
        }
        text.push_str("\nAttempts\n");
        text.push_str(&t.render(colour));
    }
    let replies = m["replies"].as_array().cloned().unwrap_or_default();
    if !replies.is_empty() {
        text.push_str("\nReplies\n");
        text.push_str(&replies_table(&replies, false).render(colour));
    }
    let events = m["events"].as_array().cloned().unwrap_or_default();
    if !events.is_empty() {
        let mut t = Table::new(&["SEQ", "AT", "KIND", "STATUS", "REASON"]);
        for e in &events {
            t.row(vec![
                Cell::new(s(&e["seq"])),
                Cell::new(show::time(&e["at"])),
                Cell::new(s(&e["kind"])),
                Cell::status(&s(&e["status"]), None),
                Cell::new(e["reason"].as_str().unwrap_or("")),
            ]);
        }
        text.push_str("\nHistory\n");
        text.push_str(&t.render(colour));
    }
    text
}

pub(super) fn replies_table(replies: &[Value], with_step: bool) -> Table {
    let mut t = if with_step {
        Table::new(&["STEP", "AT", "CHOICE", "ACTION", "TEXT"])
    } else {
        Table::new(&["AT", "CHOICE", "ACTION", "TEXT"])
    };
    for r in replies {
        let mut row = Vec::new();
        if with_step {
            row.push(Cell::new(s(&r["step"])));
        }
        row.extend([
            Cell::new(show::time(&r["at"])),
            Cell::new(s(&r["choice"])),
            Cell::new(s(&r["action"])),
            Cell::new(s(&r["text"])),
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
