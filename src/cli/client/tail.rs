//! `smsgate tail`: the daemon's events as they happen, read from the server-sent-events stream
//! `GET /v1/events`, one line each; reconnects with backoff when the connection drops.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use reqwest::Method;
use serde_json::Value;

use super::remote::{Api, Failure, Remote};
use super::run_remote;
use super::show::{self, Colour, clean, paint, status_colour};

/// One line of an event stream, read as the SSE format (WHATWG HTML, "server-sent events") says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line<'a> {
    /// An empty line: the event read so far is complete.
    End,
    /// A line starting with `:`, a comment (the daemon's keep-alive).
    Comment(&'a str),
    /// `name: value` (one space after the colon is dropped; a line without a colon is a name
    /// with an empty value).
    Field(&'a str, &'a str),
}

/// Reads one line (without its line break).
pub fn parse_line(line: &str) -> Line<'_> {
    if line.is_empty() {
        return Line::End;
    }
    if let Some(c) = line.strip_prefix(':') {
        return Line::Comment(c.strip_prefix(' ').unwrap_or(c));
    }
    match line.split_once(':') {
        Some((name, value)) => Line::Field(name, value.strip_prefix(' ').unwrap_or(value)),
        None => Line::Field(line, ""),
    }
}

/// A complete event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The `event:` name (`message` when none was given).
    pub event: String,
    /// The `data:` lines, joined with `\n`.
    pub data: String,
    /// The last `id:` seen on the stream, if any.
    pub id: Option<String>,
}

/// Longest line kept; a longer one is dropped (a stream gone wrong must not fill memory).
const MAX_LINE: usize = 1 << 20;

/// Turns the bytes of a stream, in chunks cut anywhere, into events.
#[derive(Debug, Default)]
pub struct Parser {
    line: Vec<u8>,
    overlong: bool,
    after_cr: bool,
    event: String,
    data: String,
    has_data: bool,
    last_id: Option<String>,
    /// The reconnection delay the server asked for with `retry:`.
    pub retry: Option<Duration>,
}

impl Parser {
    /// A parser at the start of a stream.
    pub fn new() -> Parser {
        Parser::default()
    }

    /// The last event id seen (sent back as `Last-Event-ID` when reconnecting).
    pub fn last_id(&self) -> Option<&str> {
        self.last_id.as_deref()
    }

    /// Reads a chunk; returns the events it completes. Lines end with `\n`, `\r\n` or `\r`.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Event> {
        let mut events = Vec::new();
        for &b in bytes {
            if std::mem::take(&mut self.after_cr) && b == b'\n' {
                continue;
            }
            match b {
                b'\n' | b'\r' => {
                    self.after_cr = b == b'\r';
                    let line = std::mem::take(&mut self.line);
                    if std::mem::take(&mut self.overlong) {
                        continue;
                    }
                    let text = String::from_utf8_lossy(&line);
                    if let Some(e) = self.take_line(&text) {
                        events.push(e);
                    }
                }
                _ if self.overlong => {}
                _ if self.line.len() >= MAX_LINE => {
                    self.line.clear();
                    self.overlong = true;
                }
                _ => self.line.push(b),
            }
        }
        events
    }

    /// Starts afresh after a reconnection (the last id is kept).
    pub fn reset(&mut self) {
        let last_id = self.last_id.take();
        let retry = self.retry;
        *self = Parser::default();
        self.last_id = last_id;
        self.retry = retry;
    }

    fn take_line(&mut self, line: &str) -> Option<Event> {
        match parse_line(line) {
            Line::Comment(_) => None,
            Line::End => {
                let event = std::mem::take(&mut self.event);
                let data = std::mem::take(&mut self.data);
                if !std::mem::take(&mut self.has_data) {
                    return None;
                }
                Some(Event {
                    event: if event.is_empty() {
                        "message".into()
                    } else {
                        event
                    },
                    data,
                    id: self.last_id.clone(),
                })
            }
            Line::Field("event", v) => {
                self.event = v.to_string();
                None
            }
            Line::Field("data", v) => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(v);
                self.has_data = true;
                None
            }
            Line::Field("id", v) => {
                if !v.contains('\0') {
                    self.last_id = Some(v.to_string());
                }
                None
            }
            Line::Field("retry", v) => {
                if let Ok(ms) = v.parse::<u64>() {
                    self.retry = Some(Duration::from_millis(ms));
                }
                None
            }
            Line::Field(..) => None,
        }
    }
}

/// One event as a line for people: time, id, number, status, what happened.
pub fn format_event(e: &Event, colour: bool) -> String {
    let Ok(v) = serde_json::from_str::<Value>(&e.data) else {
        return format!("{}: {}", clean(&e.event), clean(&e.data));
    };
    let f = |k: &str| match &v[k] {
        Value::Null => String::new(),
        other => clean(&show::s(other)),
    };
    match e.event.as_str() {
        "message" => {
            let status = f("status");
            let word = paint(&format!("{status:<9}"), status_colour(&status), colour);
            let mut line = format!(
                "{}  {}  {:<16}  {word}  {}",
                show::time(&v["at"]),
                f("message_id"),
                f("to"),
                f("kind")
            );
            // A reason that only repeats the kind ("accepted: accepted") says nothing more.
            let reason = f("reason");
            if !reason.is_empty() && reason != f("kind") {
                line.push_str(&format!(": {reason}"));
            }
            line.trim_end().to_string()
        }
        "inbound" => format!(
            "{}  {}  {:<16}  {}  {}",
            show::time(&v["at"]),
            f("inbound_id"),
            f("from"),
            paint(&format!("{:<9}", "inbound"), Some(Colour::Yellow), colour),
            f("text")
        ),
        other => format!("{}: {}", clean(other), clean(&e.data)),
    }
}

/// Shortest and longest wait before reconnecting.
const BACKOFF_MIN: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// A stream that brings nothing (not even a keep-alive) for this long is taken as dead.
const SILENCE: Duration = Duration::from_secs(90);

enum Ended {
    /// Ctrl-C, or standard output closed: stop.
    Stop,
    /// The connection dropped: reconnect.
    Dropped(String),
}

/// Arguments of `smsgate tail`.
#[derive(Debug, Args)]
pub struct TailArgs {
    /// The daemon and the output (`--json`: each event's JSON on one line).
    #[command(flatten)]
    pub remote: Remote,
}

/// `smsgate tail`
pub fn tail(args: TailArgs) -> ExitCode {
    run_remote(&args.remote, None, |api, o| run(api, o.json, o.colour))
}

/// Follows `GET /v1/events` until Ctrl-C. The first connection must succeed (otherwise the
/// failure is reported as usual); later drops are retried with backoff for as long as it runs.
pub async fn run(api: Api, json: bool, colour: bool) -> Result<ExitCode, Failure> {
    let mut parser = Parser::new();
    let mut connected_once = false;
    let mut delay = BACKOFF_MIN;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        let attempt = async {
            let url = api.url("/v1/events", &[])?;
            let mut req = api
                .request(Method::GET, url.clone())
                .header("Accept", "text/event-stream");
            if let Some(id) = parser.last_id() {
                req = req.header("Last-Event-ID", id);
            }
            let resp = tokio::time::timeout(super::remote::REQUEST_TIMEOUT, req.send())
                .await
                .map_err(|_| Failure::Unreachable {
                    url: url.to_string(),
                    why: "no answer within 10 s".into(),
                })?
                .map_err(|e| super::remote::unreachable(&url, &e, None))?;
            let status = resp.status().as_u16();
            if !resp.status().is_success() {
                let body = resp.bytes().await.unwrap_or_default();
                let j = serde_json::from_slice(&body).ok();
                return Err(api.error_answer(&url, status, j, &body));
            }
            let is_stream = resp
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("text/event-stream"));
            if !is_stream {
                return Err(Failure::NotSmsgate {
                    url: url.to_string(),
                    why: "/v1/events did not answer with an event stream (text/event-stream)"
                        .into(),
                });
            }
            Ok(resp)
        };
        let resp = tokio::select! {
            _ = &mut ctrl_c => return Ok(ExitCode::SUCCESS),
            r = attempt => r,
        };
        let why = match resp {
            Ok(mut resp) => {
                connected_once = true;
                parser.reset();
                let ended = loop {
                    let chunk = tokio::select! {
                        _ = &mut ctrl_c => break Ended::Stop,
                        c = tokio::time::timeout(SILENCE, resp.chunk()) => c,
                    };
                    match chunk {
                        Err(_) => {
                            break Ended::Dropped(format!(
                                "nothing received for {} s",
                                SILENCE.as_secs()
                            ));
                        }
                        Ok(Ok(None)) => {
                            break Ended::Dropped("the daemon closed the stream".into());
                        }
                        Ok(Err(e)) => break Ended::Dropped(format!("connection lost: {e}")),
                        Ok(Ok(Some(bytes))) => {
                            let mut text = String::new();
                            for e in parser.feed(&bytes) {
                                // Events flow: the next drop starts the backoff afresh.
                                delay = BACKOFF_MIN;
                                if json {
                                    text.push_str(e.data.trim_end());
                                } else {
                                    text.push_str(&format_event(&e, colour));
                                }
                                text.push('\n');
                            }
                            if !text.is_empty() && !show::out(&text) {
                                break Ended::Stop;
                            }
                        }
                    }
                };
                match ended {
                    Ended::Stop => return Ok(ExitCode::SUCCESS),
                    Ended::Dropped(why) => why,
                }
            }
            Err(f) => {
                let transient = matches!(f, Failure::Unreachable { .. })
                    || matches!(f, Failure::Api { status, .. } if status >= 500);
                if !connected_once || !transient {
                    return Err(f);
                }
                f.message()
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .trim_start_matches("error: ")
                    .to_string()
            }
        };
        let wait = parser.retry.map_or(delay, |r| r.max(delay));
        eprintln!(
            "smsgate tail: {why}; reconnecting in {:.1} s",
            wait.as_secs_f32()
        );
        tokio::select! {
            _ = &mut ctrl_c => return Ok(ExitCode::SUCCESS),
            () = tokio::time::sleep(wait) => {}
        }
        delay = (delay * 2).min(BACKOFF_MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_read_as_the_format_says() {
        assert_eq!(parse_line(""), Line::End);
        assert_eq!(parse_line(": keep-alive"), Line::Comment("keep-alive"));
        assert_eq!(parse_line(":"), Line::Comment(""));
        assert_eq!(
            parse_line("event: message"),
            Line::Field("event", "message")
        );
        assert_eq!(
            parse_line("data:{\"a\":1}"),
            Line::Field("data", "{\"a\":1}")
        );
        assert_eq!(parse_line("data:  two"), Line::Field("data", " two"));
        assert_eq!(parse_line("data: a: b"), Line::Field("data", "a: b"));
        assert_eq!(parse_line("data"), Line::Field("data", ""));
    }

    #[test]
    fn events_are_assembled_across_chunks() {
        let stream = concat!(
            ": hello\n\n",
            "event: message\n",
            "data: {\"message_id\":\"01A\",\"seq\":2,\"status\":\"sent\"}\n\n",
            ": keep-alive\r\n",
            "event: inbound\r\n",
            "data: {\"inbound_id\":\"01B\",\"text\":\"1\"}\r\n\r\n",
        );
        // Whole, and cut at every byte.
        for step in [stream.len(), 1, 7] {
            let mut p = Parser::new();
            let mut got = Vec::new();
            for chunk in stream.as_bytes().chunks(step) {
                got.extend(p.feed(chunk));
            }
            assert_eq!(got.len(), 2, "step {step}: {got:?}");
            assert_eq!(got[0].event, "message");
            assert_eq!(
                got[0].data,
                "{\"message_id\":\"01A\",\"seq\":2,\"status\":\"sent\"}"
            );
            assert_eq!(got[1].event, "inbound");
            assert_eq!(got[1].data, "{\"inbound_id\":\"01B\",\"text\":\"1\"}");
        }
    }

    #[test]
    fn multi_line_data_ids_retry_and_bare_cr() {
        let mut p = Parser::new();
        let got = p.feed(b"id: 7\rretry: 2500\rdata: a\rdata: b\r\rdata: c\n");
        assert_eq!(
            got,
            vec![Event {
                event: "message".into(),
                data: "a\nb".into(),
                id: Some("7".into())
            }]
        );
        assert_eq!(p.retry, Some(Duration::from_millis(2500)));
        assert_eq!(p.last_id(), Some("7"));
        // The blank line completes the pending `data: c`; an event without data is not
        // dispatched, and its name does not leak into the next.
        let got = p.feed(b"\nevent: inbound\n\ndata: x\n\n");
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0].data, "c");
        assert_eq!(got[1].event, "message");
        assert_eq!(got[1].data, "x");
        // A reset (reconnection) forgets the half-read event but keeps the id.
        p.feed(b"data: half");
        p.reset();
        assert_eq!(p.last_id(), Some("7"));
        assert_eq!(p.feed(b"\n\n"), vec![]);
    }

    #[test]
    fn overlong_lines_are_dropped() {
        let mut p = Parser::new();
        let mut big = b"data: ".to_vec();
        big.extend(std::iter::repeat_n(b'x', MAX_LINE + 10));
        big.extend(b"\n\ndata: ok\n\n");
        let got = p.feed(&big);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].data, "ok");
    }

    #[test]
    fn events_print_as_one_line() {
        let e = Event {
            event: "message".into(),
            data: r#"{"message_id":"01KAR6V1T4Y1Q0ZBC5Z2W3M6XD","seq":3,"at":"2026-11-23T15:04:05Z","status":"failed","kind":"status","reason":"+CMS ERROR 8","to":"+12025550123"}"#.into(),
            id: None,
        };
        let line = format_event(&e, false);
        assert!(
            line.contains("01KAR6V1T4Y1Q0ZBC5Z2W3M6XD  +12025550123"),
            "{line}"
        );
        assert!(line.contains("failed     status: +CMS ERROR 8"), "{line}");
        assert!(!line.contains('\x1b'));
        assert!(format_event(&e, true).contains("\x1b[31mfailed"));
        let e = Event {
            event: "inbound".into(),
            data: r#"{"inbound_id":"01B","from":"+12025550123","text":"STOP\u001b[2J","at":"2026-11-23T15:04:05Z"}"#.into(),
            id: None,
        };
        let line = format_event(&e, false);
        assert!(line.ends_with("inbound    STOP\u{FFFD}[2J"), "{line}");
        let e = Event {
            event: "message".into(),
            data: "not json".into(),
            id: None,
        };
        assert_eq!(format_event(&e, false), "message: not json");
        let e = Event {
            event: "message".into(),
            data: r#"{"message_id":"01C","at":"2026-11-23T15:04:05Z","status":"queued","kind":"accepted","reason":"accepted","to":"+12025550123"}"#.into(),
            id: None,
        };
        let line = format_event(&e, false);
        assert!(line.ends_with("queued     accepted"), "{line}");
    }
}
