//! Output for people: aligned tables, times in local time, status words in colour (only on a
//! terminal, and never with `NO_COLOR` set), and no control characters from message texts.

use std::io::{IsTerminal, Write};

use chrono::{DateTime, FixedOffset, Local};
use serde_json::Value;

/// A colour for a word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Colour {
    /// Done well: sent, delivered, up, paid.
    Green,
    /// Waiting or under way.
    Yellow,
    /// Gone wrong.
    Red,
}

impl Colour {
    fn code(self) -> &'static str {
        match self {
            Colour::Green => "\x1b[32m",
            Colour::Yellow => "\x1b[33m",
            Colour::Red => "\x1b[31m",
        }
    }
}

/// The colour of a status word (a message's, a modem's state or a plan's), if it has one.
pub fn status_colour(word: &str) -> Option<Colour> {
    match word {
        "sent" | "delivered" | "up" | "paid" => Some(Colour::Green),
        "queued" | "scheduled" | "sending" | "connecting" | "initialising" | "recovering"
        | "resting" | "limited" => Some(Colour::Yellow),
        "failed" | "expired" | "unknown" | "down" | "stopped" => Some(Colour::Red),
        _ => None,
    }
}

/// Whether to colour: standard output is a terminal, `NO_COLOR` is not set, and no `--json`.
pub fn colour_wanted(json: bool) -> bool {
    !json && std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal()
}

/// `text` in `colour` when `on`.
pub fn paint(text: &str, colour: Option<Colour>, on: bool) -> String {
    match colour {
        Some(c) if on => format!("{}{text}\x1b[0m", c.code()),
        _ => text.to_string(),
    }
}

/// A text made safe to print on a terminal: line breaks and tabs become spaces, other control
/// characters (escape sequences from a received text) become `�`.
pub fn clean(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\n' | '\r' | '\t' => ' ',
            c if c.is_control() => '\u{FFFD}',
            c => c,
        })
        .collect()
}

/// Like [`clean`], but line breaks are kept (for a text shown on its own lines).
pub fn clean_multiline(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\n' | '\t' => c,
            '\r' => ' ',
            c if c.is_control() => '\u{FFFD}',
            c => c,
        })
        .collect()
}

/// At most `n` characters, `…` marking a cut.
pub fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        return s.to_string();
    }
    let mut out: String = s.chars().take(n.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// One cell of a table: its text (already clean) and colour.
#[derive(Debug, Clone)]
pub struct Cell {
    text: String,
    colour: Option<Colour>,
}

impl Cell {
    /// Plain text (cleaned).
    pub fn new(text: impl AsRef<str>) -> Cell {
        Cell {
            text: clean(text.as_ref()),
            colour: None,
        }
    }

    /// A status word, coloured by [`status_colour`]; `reason`, when there is one, follows in
    /// parentheses.
    pub fn status(word: &str, reason: Option<&str>) -> Cell {
        let text = match reason {
            Some(r) if !r.is_empty() => format!("{word} ({r})"),
            _ => word.to_string(),
        };
        Cell {
            text: clean(&text),
            colour: status_colour(word),
        }
    }
}

/// An aligned table: a header and rows, columns two spaces apart, the last one not padded.
#[derive(Debug, Clone)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<Cell>>,
}

impl Table {
    /// A table with these column names.
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row (missing cells are empty).
    pub fn row(&mut self, cells: Vec<Cell>) {
        self.rows.push(cells);
    }

    /// Whether it has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as lines, coloured when `colour`.
    pub fn render(&self, colour: bool) -> String {
        let cols = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for r in &self.rows {
            for (i, c) in r.iter().enumerate().take(cols) {
                widths[i] = widths[i].max(c.text.chars().count());
            }
        }
        let mut out = String::new();
        let line = |cells: Vec<(String, Option<Colour>)>, out: &mut String| {
            let mut l = String::new();
            for (i, (text, c)) in cells.iter().enumerate() {
                let last = i + 1 == cols;
                let pad = if last {
                    0
                } else {
                    widths[i].saturating_sub(text.chars().count()) + 2
                };
                l.push_str(&paint(text, *c, colour));
                l.push_str(&" ".repeat(pad));
            }
            out.push_str(l.trim_end());
            out.push('\n');
        };
        let header: Vec<(String, Option<Colour>)> =
            self.header.iter().map(|h| (h.clone(), None)).collect();
        line(header, &mut out);
        for r in &self.rows {
            let cells = (0..cols)
                .map(|i| {
                    r.get(i)
                        .map_or((String::new(), None), |c| (c.text.clone(), c.colour))
                })
                .collect();
            line(cells, &mut out);
        }
        out
    }
}

/// Writes to standard output; a closed pipe (`| head`) is not an error worth a panic.
pub fn out(s: &str) -> bool {
    let mut o = std::io::stdout().lock();
    o.write_all(s.as_bytes()).and_then(|()| o.flush()).is_ok()
}

/// Prints JSON text pretty, its keys in the order they came.
pub fn print_raw(raw: &str) {
    out(&format!("{}\n", pretty(raw)));
}

/// Indents JSON text the way `serde_json::to_string_pretty` does (two spaces), without
/// reordering anything: the daemon's answer as it came, readable. The text must be JSON.
pub fn pretty(raw: &str) -> String {
    let chars: Vec<char> = raw.chars().collect();
    let mut out = String::with_capacity(raw.len() * 2);
    let mut depth = 0usize;
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.push_str(&"  ".repeat(depth));
    };
    let (mut in_string, mut escaped) = (false, false);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '{' | '[' => {
                let close = if c == '{' { '}' } else { ']' };
                let mut j = i;
                while chars.get(j).is_some_and(|c| c.is_whitespace()) {
                    j += 1;
                }
                out.push(c);
                if chars.get(j) == Some(&close) {
                    out.push(close);
                    i = j + 1;
                } else {
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(',');
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_whitespace() => {}
            c => out.push(c),
        }
    }
    out
}

/// A string field, or `-`.
pub fn s(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A time from the API (RFC 3339) in local time, to the second; `-` when absent.
pub fn time(v: &Value) -> String {
    match v
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
    {
        Some(t) => t
            .with_timezone(&Local)
            .format("%Y-%m-%d %H:%M:%S")
            .to_string(),
        None => s(v),
    }
}

/// A time in local time with its offset, e.g. `2026-12-07 03:12:00 +00:00`: a time someone
/// waits for, where the zone matters.
pub fn time_zoned(v: &Value) -> String {
    match v
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
    {
        Some(t) => t
            .with_timezone(&Local)
            .format("%Y-%m-%d %H:%M:%S %:z")
            .to_string(),
        None => s(v),
    }
}

/// A time in the offset it was given in (a plan's time zone), to the minute, with the offset.
pub fn time_as_given(v: &Value) -> String {
    match v
        .as_str()
        .and_then(|t| DateTime::<FixedOffset>::parse_from_rfc3339(t).ok())
    {
        Some(t) => t.format("%Y-%m-%d %H:%M %:z").to_string(),
        None => s(v),
    }
}

/// Lines of `key  value`, keys aligned; rows whose value is `None` are left out.
pub fn fields(
    rows: &[(&str, Option<String>)],
    colour_of: impl Fn(&str) -> Option<Colour>,
    colour: bool,
) -> String {
    let w = rows
        .iter()
        .filter(|(_, v)| v.is_some())
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (k, v) in rows {
        let Some(v) = v else { continue };
        let pad = " ".repeat(w - k.chars().count() + 2);
        let mut lines = v.split('\n');
        let first = lines.next().unwrap_or_default();
        out.push_str(&format!("{k}{pad}{}\n", paint(first, colour_of(k), colour)));
        for more in lines {
            out.push_str(&format!("{}{more}\n", " ".repeat(w + 2)));
        }
    }
    out
}

/// A field of a typed view as [`s`] prints it: the value, or `-` when absent.
pub fn or_dash(v: Option<impl std::fmt::Display>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

/// A time of a typed view as [`time`] prints it: local time to the second, the text as it came
/// when it is not RFC 3339, `-` when absent.
pub fn time_text(t: Option<&str>) -> String {
    match t.and_then(|t| DateTime::parse_from_rfc3339(t).ok()) {
        Some(t) => t
            .with_timezone(&Local)
            .format("%Y-%m-%d %H:%M:%S")
            .to_string(),
        None => or_dash(t),
    }
}

/// A time of a typed view as [`time_zoned`] prints it: local time with its offset, the text as
/// it came when it is not RFC 3339.
pub fn time_zoned_text(t: &str) -> String {
    match DateTime::parse_from_rfc3339(t) {
        Ok(t) => t
            .with_timezone(&Local)
            .format("%Y-%m-%d %H:%M:%S %:z")
            .to_string(),
        Err(_) => t.to_string(),
    }
}

/// A time of a typed view as [`time_as_given`] prints it: in the offset it was given in, to the
/// minute, the text as it came when it is not RFC 3339, `-` when absent.
pub fn time_as_given_text(t: Option<&str>) -> String {
    match t.and_then(|t| DateTime::<FixedOffset>::parse_from_rfc3339(t).ok()) {
        Some(t) => t.format("%Y-%m-%d %H:%M %:z").to_string(),
        None => or_dash(t),
    }
}

/// A JSON value when it is present and not null.
pub fn present(v: &Value) -> Option<&Value> {
    (!v.is_null()).then_some(v)
}

/// A time for a `fields` row (see [`time_text`]): `None`, leaving the row out, when absent.
pub fn some_time(t: Option<&str>) -> Option<String> {
    t.map(|t| time_text(Some(t)))
}

/// A text for a `fields` row, made safe to print: `None`, leaving the row out, when absent.
pub fn some_clean(t: Option<&str>) -> Option<String> {
    t.map(clean)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_fields_print_as_their_json_values_do() {
        for t in [
            Some("2026-12-07T03:12:00Z"),
            Some("2026-12-07T03:12:00-05:00"),
            Some("not a time"),
            Some(""),
            None,
        ] {
            let v = t.map_or(Value::Null, Value::from);
            assert_eq!(time_text(t), time(&v), "{v}");
            assert_eq!(or_dash(t), s(&v), "{v}");
            assert_eq!(time_as_given_text(t), time_as_given(&v), "{v}");
            if let Some(t) = t {
                assert_eq!(time_zoned_text(t), time_zoned(&v), "{v}");
            }
        }
        assert_eq!(or_dash(Some(3u8)), s(&Value::from(3u8)));
        assert_eq!(or_dash(None::<u8>), s(&Value::Null));
    }

    #[test]
    fn tables_align_on_visible_width_and_colour_only_when_asked() {
        let mut t = Table::new(&["ID", "STATUS", "TEXT"]);
        t.row(vec![
            Cell::new("a"),
            Cell::status("sent", None),
            Cell::new("héllo"),
        ]);
        t.row(vec![
            Cell::new("abcdef"),
            Cell::status("failed", Some("+CMS ERROR 500")),
            Cell::new("x"),
        ]);
        let plain = t.render(false);
        let expected = [
            format!("{:<8}{:<25}{}", "ID", "STATUS", "TEXT"),
            format!("{:<8}{:<25}{}", "a", "sent", "héllo"),
            format!("{:<8}{:<25}{}", "abcdef", "failed (+CMS ERROR 500)", "x"),
        ]
        .map(|l| l + "\n")
        .concat();
        assert_eq!(plain, expected);
        assert!(!plain.contains('\x1b'));
        let coloured = t.render(true);
        assert!(coloured.contains("\x1b[32msent\x1b[0m"));
        assert!(coloured.contains("\x1b[31mfailed (+CMS ERROR 500)\x1b[0m"));
        // Colour codes do not change where columns start.
        assert_eq!(
            coloured
                .replace("\x1b[32m", "")
                .replace("\x1b[31m", "")
                .replace("\x1b[0m", ""),
            plain
        );
    }

    #[test]
    fn control_characters_never_reach_the_terminal() {
        assert_eq!(clean("a\x1b[2Jb\nc\td"), "a\u{FFFD}[2Jb c d");
        assert_eq!(clean_multiline("a\nb\x07"), "a\nb\u{FFFD}");
        assert_eq!(clean("\u{9b}31m"), "\u{FFFD}31m");
    }

    #[test]
    fn json_is_indented_like_serde_json_without_reordering() {
        let v = serde_json::json!({"a": [1, {"b": "x,{y}:\\\"z"}, [], {}], "c": null, "d": {"e": true}});
        let compact = v.to_string();
        assert_eq!(pretty(&compact), serde_json::to_string_pretty(&v).unwrap());
        let ordered = r#"{"z":1,"a":{"m":[ ],"b":"}"}}"#;
        assert_eq!(
            pretty(ordered),
            "{\n  \"z\": 1,\n  \"a\": {\n    \"m\": [],\n    \"b\": \"}\"\n  }\n}"
        );
        assert_eq!(pretty("[]"), "[]");
    }

    #[test]
    fn texts_are_cut_with_an_ellipsis() {
        assert_eq!(truncate("hello", 5), "hello");
        assert_eq!(truncate("hello world", 6), "hello…");
    }

    #[test]
    fn status_words_have_colours() {
        assert_eq!(status_colour("delivered"), Some(Colour::Green));
        assert_eq!(status_colour("scheduled"), Some(Colour::Yellow));
        assert_eq!(status_colour("expired"), Some(Colour::Red));
        assert_eq!(status_colour("cancelled"), None);
    }

    #[test]
    fn times_keep_their_offset_when_asked() {
        assert_eq!(
            time_as_given(&Value::from("2026-12-01T10:00:00-05:00")),
            "2026-12-01 10:00 -05:00"
        );
        assert_eq!(time(&Value::Null), "-");
        assert_eq!(time(&Value::from("not a time")), "not a time");
    }
}
