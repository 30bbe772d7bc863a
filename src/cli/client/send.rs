//! `smsgate send`: one SMS through the daemon.

use std::process::ExitCode;

use clap::Args;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::parse::{parse_object, parse_pair, parse_rfc3339};
use super::remote::{Failure, REQUEST_TIMEOUT, Remote};
use super::show::{self, or_dash, out, print_raw, status_colour};
use super::{run_remote, view};

/// Arguments of `smsgate send`.
#[derive(Debug, Args)]
pub struct SendArgs {
    /// Destination: +E.164, or national digits with the daemon's `[sms] default_region`.
    #[arg(long, value_name = "NUMBER")]
    pub to: String,
    /// The text; `-` reads it from standard input (one trailing newline is dropped).
    #[arg(long)]
    pub text: String,
    /// Not before this time (RFC 3339, e.g. 2026-11-28T15:00:00-05:00).
    #[arg(long, value_name = "RFC3339", value_parser = parse_rfc3339)]
    pub send_at: Option<String>,
    /// A reply choice the text offers, e.g. `1=call_me`; repeat for each.
    #[arg(long = "reply-option", value_name = "KEY=ACTION", value_parser = parse_pair)]
    pub reply_options: Vec<(String, String)>,
    /// A JSON object kept with the message and returned as given, e.g. '{"invoice":"INV-1042"}'.
    #[arg(long, value_name = "JSON", value_parser = parse_object)]
    pub metadata: Option<Value>,
    /// Idempotency-Key: the same key and text again returns the first message instead of a
    /// second one (safe retries from scripts).
    #[arg(long, value_name = "KEY")]
    pub idempotency_key: Option<String>,
    /// The daemon and the output.
    #[command(flatten)]
    pub remote: Remote,
}

/// `smsgate send`
pub fn send(args: SendArgs) -> ExitCode {
    let remote = args.remote.clone();
    run_remote(&remote, Some(REQUEST_TIMEOUT), |api, o| async move {
        let text = crate::cli::read_text(&args.text).map_err(|e| Failure::Input(e.to_string()))?;
        let mut body = json!({"to": args.to, "text": text});
        if let Some(t) = &args.send_at {
            body["send_at"] = json!(t);
        }
        if !args.reply_options.is_empty() {
            let mut m = Map::new();
            for (k, v) in &args.reply_options {
                if m.insert(k.clone(), json!(v)).is_some() {
                    return Err(Failure::Input(format!(
                        "--reply-option {k}=…: the key {k:?} is given twice"
                    )));
                }
            }
            body["reply_options"] = Value::Object(m);
        }
        if let Some(m) = &args.metadata {
            body["metadata"] = m.clone();
        }
        let headers: Vec<(&str, String)> = args
            .idempotency_key
            .iter()
            .map(|k| ("Idempotency-Key", k.clone()))
            .collect();
        let m = api
            .call(Method::POST, "/v1/messages", &[], Some(&body), &headers)
            .await?;
        if o.json {
            print_raw(&m.raw);
        } else {
            out(&id_and_status(&view(&api, &m.json)?, o.colour));
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// A message as `send`, `cancel` and `requeue` print it.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct IdAndStatus {
    id: Option<String>,
    status: Option<String>,
    status_reason: Option<String>,
}

/// `ID  status (reason)`: what `send`, `cancel` and `requeue` print.
pub(super) fn id_and_status(m: &IdAndStatus, colour: bool) -> String {
    let status = or_dash(m.status.as_deref());
    let word = match &m.status_reason {
        Some(r) => format!("{status} ({})", show::clean(r)),
        None => status.clone(),
    };
    format!(
        "{}  {}\n",
        or_dash(m.id.as_deref()),
        show::paint(&word, status_colour(&status), colour)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::client::show::s;

    #[test]
    fn the_typed_line_prints_what_the_json_did() {
        for m in [
            json!({"id": "01KAR6V1T4Y1Q0ZBC5Z2W3M6XD", "status": "queued"}),
            json!({"id": "01KAR6V1T4Y1Q0ZBC5Z2W3M6XD", "status": "failed",
                "status_reason": "cms_error\u{1b}[31m", "to": "+12025550123"}),
            json!({"id": "01KAR6V1T4Y1Q0ZBC5Z2W3M6XD", "status": "sent", "status_reason": null}),
            json!({}),
        ] {
            // What it printed when it read the message as JSON values.
            let status = s(&m["status"]);
            let word = match m["status_reason"].as_str() {
                Some(r) => format!("{status} ({})", show::clean(r)),
                None => status.clone(),
            };
            for colour in [false, true] {
                let was = format!(
                    "{}  {}\n",
                    s(&m["id"]),
                    show::paint(&word, status_colour(&status), colour)
                );
                let typed: IdAndStatus = serde_json::from_value(m.clone()).unwrap();
                assert_eq!(id_and_status(&typed, colour), was, "{m}");
            }
        }
    }
}
