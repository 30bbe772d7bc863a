//! Message templates for reminders: the shipped texts, rendering with MiniJinja, and the `money`
//! and `date` filters that format amounts and dates for a locale.
//!
//! Everything here is written for SMS: the output of the filters never holds a non-breaking or
//! narrow no-break space (one such character would switch the whole message to UCS-2 and halve
//! what a part can carry), a currency symbol is only used when it is in the GSM 7-bit alphabet
//! and says unambiguously which currency is meant, and rendered text has its whitespace tidied.
//!
//! Locale facts come from glibc's locale data (`pure-rust-locales`, the data behind chrono's
//! localised formatting): decimal point, grouping, where the symbol goes, month names and the
//! order of day and month. Currency facts (symbol, minor digits) come from ISO 4217
//! (`iso_currency`). A bare language (`fr`) is completed to its most likely region with CLDR's
//! likely-subtags data (`icu_locale`).

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::LazyLock;

use chrono::NaiveDate;
use chrono::format::StrftimeItems;
use icu_locale::{LanguageIdentifier, LocaleExpander};
use iso_currency::{Currency, IntoEnumIterator};
use minijinja::syntax::SyntaxConfig;
use minijinja::value::{Kwargs, Serde, Value, ValueKind};
use minijinja::{AutoEscape, Environment, Error, ErrorKind, State, UndefinedBehavior};
use pure_rust_locales::{Locale, locale_match};
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{Map, Value as Json};

use crate::sms::Charset;

/// Names of the shipped templates, in the order of a dunning cycle.
pub const DEFAULT_NAMES: [&str; 8] = [
    "invoice_issued",
    "upcoming",
    "due_today",
    "past_due",
    "second_notice",
    "final_notice",
    "payment_received",
    "payment_failed",
];

// Every shipped template stays one GSM 7-bit part (160 characters) with the default opt-out
// hint and realistic values (a 20-character name, a 40-character pay link, an amount like
// $1,234.56): the test `every_shipped_template_with_the_hint_is_one_part` checks it.

const INVOICE_ISSUED: &str = "{% if name %}Hi {{ name }}, new{% else %}New{% endif %} invoice\
{% if invoice %} {{ invoice }}{% endif %} for {{ amount | money }} is due \
{{ due_date | date }}.{% if pay_url %} Pay at {{ pay_url }}{% endif %} {{ opt_out_hint }}";

const UPCOMING: &str = "{% if name %}Hi {{ name }}, r{% else %}R{% endif %}eminder: invoice\
{% if invoice %} {{ invoice }}{% endif %} for {{ amount | money }} is due \
{{ due_date | date }}.{% if pay_url %} Pay at {{ pay_url }}{% endif %} {{ opt_out_hint }}";

const DUE_TODAY: &str = "{% if name %}Hi {{ name }}, invoice{% else %}Invoice{% endif %}\
{% if invoice %} {{ invoice }}{% endif %} for {{ amount | money }} is due today.\
{% if pay_url %} Pay at {{ pay_url }}{% endif %} {{ opt_out_hint }}";

const PAST_DUE: &str = "{% if name %}{{ name }}, invoice{% else %}Invoice{% endif %}\
{% if invoice %} {{ invoice }}{% endif %} for {{ amount | money }} was due \
{{ due_date | date }}{% if days_overdue == 1 %} (1 day ago){% elif days_overdue > 1 %} \
({{ days_overdue }} days ago){% endif %}.{% if pay_url %} Pay at {{ pay_url }}\
{% else %} Please pay as soon as you can.{% endif %} {{ opt_out_hint }}";

const SECOND_NOTICE: &str = "Invoice{% if invoice %} {{ invoice }}{% endif %} for \
{{ amount | money }} is \
{% if days_overdue == 1 %}1 day {% elif days_overdue > 1 %}{{ days_overdue }} days {% endif %}\
overdue.{% if pay_url %} Pay at {{ pay_url }}{% endif %} \
Reply 1: call me, 2: pay minimum. {{ opt_out_hint }}";

const FINAL_NOTICE: &str = "Final notice: invoice{% if invoice %} {{ invoice }}{% endif %} for \
{{ amount | money }} is \
{% if days_overdue == 1 %}1 day {% elif days_overdue > 1 %}{{ days_overdue }} days {% endif %}\
overdue. Please pay now{% if pay_url %} at {{ pay_url }}{% else %}.{% endif %} {{ opt_out_hint }}";

const PAYMENT_RECEIVED: &str = "Thank you{% if name %}, {{ name }}{% endif %}! We received your \
payment of {{ amount_paid | money }}{% if invoice %} for invoice {{ invoice }}{% endif %}. \
{{ opt_out_hint }}";

const PAYMENT_FAILED: &str = "Your payment of {{ amount | money }}\
{% if invoice %} for invoice {{ invoice }}{% endif %} failed\
{% if failure_reason %} ({{ failure_reason }}){% endif %}.{% if pay_url %} Please try again at \
{{ pay_url }}{% else %} Please try again.{% endif %} {{ opt_out_hint }}";

/// The shipped text of a template, if `name` is one of DEFAULT_NAMES.
pub fn default_template(name: &str) -> Option<&'static str> {
    Some(match name {
        "invoice_issued" => INVOICE_ISSUED,
        "upcoming" => UPCOMING,
        "due_today" => DUE_TODAY,
        "past_due" => PAST_DUE,
        "second_notice" => SECOND_NOTICE,
        "final_notice" => FINAL_NOTICE,
        "payment_received" => PAYMENT_RECEIVED,
        "payment_failed" => PAYMENT_FAILED,
        _ => return None,
    })
}

/// Checks a template name: 1–64 characters of a-z, 0-9, `_` and `-`, starting with a letter.
pub fn check_name(name: &str) -> Result<(), String> {
    let len = name.chars().count();
    if !(1..=64).contains(&len) {
        return Err(format!(
            "a template name has 1 to 64 characters, {name:?} has {len}"
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-'))
    {
        return Err(format!(
            "template name {name:?} has {c:?}: only a-z, 0-9, _ and - are allowed"
        ));
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err(format!(
            "template name {name:?} must start with a letter a-z"
        ));
    }
    Ok(())
}

/// A template that cannot be compiled or rendered.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct TemplateError {
    /// What is wrong, in words, with the line number when the engine gives one (e.g.
    /// `undefined variable "pay_url" (line 1)`).
    pub message: String,
}

impl TemplateError {
    fn new(message: impl Into<String>) -> TemplateError {
        TemplateError {
            message: message.into(),
        }
    }
}

/// Work one rendering may do: far more than any SMS needs, few enough that a template with
/// runaway loops fails instead of holding a worker. minijinja charges one fuel per instruction
/// and one per 64 bytes of every string, list or output it makes (checked before a large
/// allocation), so this also bounds what a rendering can allocate: about 6 MB.
const FUEL: u64 = 100_000;

/// The longest text a template may render, in bytes: a text is at most `max_parts` SMS (6 of
/// 153 GSM characters, 918, or of 67 UCS-2 characters in up to 4 bytes each); the rest is room.
pub const MAX_RENDERED: usize = 8 * 1024;

/// Takes at most [`MAX_RENDERED`] bytes, then refuses: a template cannot make a text (or the
/// memory behind it) larger than any SMS could carry.
struct Capped(Vec<u8>);

impl std::io::Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.0.len() + buf.len() > MAX_RENDERED {
            return Err(std::io::Error::other(format!(
                "the rendered text is longer than {MAX_RENDERED} bytes"
            )));
        }
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Renders into a [`Capped`] buffer.
fn render_capped(
    template: &minijinja::Template<'_, '_>,
    ctx: Value,
    source: &str,
    given: &Map<String, Json>,
) -> Result<String, TemplateError> {
    let mut out = Capped(Vec::new());
    template
        .render_captured_to(ctx, &mut out)
        .map_err(|e| describe(&e, source, given))?;
    String::from_utf8(out.0).map_err(|_| TemplateError::new("the rendered text is not UTF-8"))
}

static ENV: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.set_fuel(Some(FUEL));
    // Block tags on lines of their own leave no empty lines or indentation behind.
    if let Ok(syntax) = SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .build()
    {
        env.set_syntax(syntax);
    }
    env.add_filter("money", money_filter);
    env.add_filter("date", date_filter);
    env
});

/// Renders `source` with the variables in `vars` (a JSON object). Strict: a variable the template
/// uses that `vars` lacks is an error, so is an unknown filter or a syntax error. Whitespace is
/// tidied: runs of spaces/tabs become one space, each line is trimmed, empty lines at the start and
/// end are dropped.
///
/// Any other Unicode space also becomes a plain space, and a full stop doubled by an abbreviation
/// that ends a sentence (`1 déc..`) is written once.
pub fn render(source: &str, vars: &Json) -> Result<String, TemplateError> {
    let given = vars_object(vars)?;
    let template = ENV
        .template_from_str(source)
        .map_err(|e| describe(&e, source, given))?;
    check_callables(source)?;
    let text = render_capped(&template, Value::from(Serde(vars)), source, given)?;
    Ok(tidy(&text))
}

/// Checks a template for use: compiles it, then renders it with `vars` plus a sample value for
/// every variable the template uses that `vars` lacks (the names in the second element of the
/// result), so a syntax error or an unknown filter or a filter given a bad argument is found when
/// the template is saved, not when a reminder goes out. Returns the sample rendering and the names
/// that were filled in.
///
/// Unknown filters and tests are found anywhere in the template, also in a branch the sample
/// values do not take; a bad filter argument only where the sample rendering goes.
pub fn check(source: &str, vars: &Json) -> Result<(String, Vec<String>), TemplateError> {
    let given = vars_object(vars)?;
    let template = ENV
        .template_from_str(source)
        .map_err(|e| describe(&e, source, given))?;
    let uses = check_callables(source)?;

    // Paths such as `customer.name` tell which missing variables must be objects.
    let globals: BTreeSet<&str> = ENV.globals().map(|(name, _)| name).collect();
    let mut missing: BTreeMap<String, Vec<Vec<String>>> = BTreeMap::new();
    for path in template.undeclared_variables(true) {
        let segments: Vec<String> = path.split('.').map(str::to_owned).collect();
        let Some(top) = segments.first() else {
            continue;
        };
        if given.contains_key(top) || globals.contains(top.as_str()) {
            continue;
        }
        missing.entry(top.clone()).or_default().push(segments);
    }
    // The filters read these from the context without the template naming them.
    let uses_filter = |name: &str| {
        uses.iter()
            .any(|u| u.what == Callable::Filter && u.name == name)
    };
    let mut implicit = Vec::new();
    if uses_filter("money") {
        implicit.push("currency");
    }
    if uses_filter("money") || uses_filter("date") {
        implicit.push("locale");
    }
    for name in implicit {
        if !given.contains_key(name) {
            missing
                .entry(name.to_owned())
                .or_default()
                .push(vec![name.to_owned()]);
        }
    }
    let mut filled = given.clone();
    for (top, paths) in &missing {
        let mut value = Json::Null;
        for path in paths {
            insert_sample(&mut value, path);
        }
        filled.insert(top.clone(), value);
    }
    let filled = Json::Object(filled);
    let text = render_capped(&template, Value::from(Serde(&filled)), source, given)?;
    Ok((tidy(&text), missing.into_keys().collect()))
}

fn vars_object(vars: &Json) -> Result<&Map<String, Json>, TemplateError> {
    match vars {
        Json::Object(map) => Ok(map),
        _ => Err(TemplateError::new(
            "template variables must be a JSON object",
        )),
    }
}

/// Puts a sample for `path` (its first segment already chosen) into `value`, making objects of the
/// segments before the last.
fn insert_sample(value: &mut Json, path: &[String]) {
    let Some((last, _)) = path.split_last() else {
        return;
    };
    if path.len() == 1 {
        if value.is_null() {
            *value = sample_value(last);
        }
        return;
    }
    if !value.is_object() {
        *value = Json::Object(Map::new());
    }
    if let Json::Object(map) = value {
        let child = map.entry(path[1].clone()).or_insert(Json::Null);
        insert_sample(child, &path[1..]);
    }
}

/// A plausible value for a variable, chosen by its name so the filters it is likely given accept
/// it.
fn sample_value(name: &str) -> Json {
    let text = |s: &str| Json::String(s.to_owned());
    match name {
        "name" => text("Ana"),
        "invoice" => text("INV-1042"),
        "amount" | "amount_paid" => text("120.50"),
        "currency" => text("USD"),
        "due_date" => text("2026-12-01"),
        "pay_url" => text("https://pay.example/x"),
        "unit" => text("4B"),
        "property" => text("Elm Court"),
        "locale" => text("en-US"),
        "opt_out_hint" => text("Reply STOP to opt out."),
        "days_until_due" => Json::from(3),
        "days_overdue" => Json::from(3),
        "failure_reason" => text("card declined"),
        _ => {
            let name = name.to_ascii_lowercase();
            let has = |words: &[&str]| words.iter().any(|w| name.contains(w));
            if name.ends_with("date") || name.ends_with("_on") {
                text("2026-12-01")
            } else if name.starts_with("days") || name.ends_with("_days") || has(&["count"]) {
                Json::from(3)
            } else if has(&[
                "amount", "balance", "total", "fee", "price", "minimum", "paid", "owed", "cost",
            ]) {
                text("120.50")
            } else if has(&["url", "link"]) {
                text("https://pay.example/x")
            } else {
                text("sample")
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Errors

/// Words for an engine error, with the names the engine leaves out filled in from the template.
fn describe(err: &Error, source: &str, given: &Map<String, Json>) -> TemplateError {
    let line = err.line();
    let what = match err.kind() {
        ErrorKind::UndefinedError => match undefined_names(source, given, line) {
            names if names.is_empty() => "undefined value".to_owned(),
            names if names.len() == 1 => format!("undefined variable {}", names.join(", ")),
            names => format!("undefined variables {}", names.join(", ")),
        },
        // The filters' own errors say what is wrong in full.
        ErrorKind::InvalidOperation => match err.detail() {
            Some(detail) => detail.to_owned(),
            None => err.kind().to_string(),
        },
        ErrorKind::OutOfFuel => "the template runs too long".to_owned(),
        kind => match err.detail() {
            Some(detail) => format!("{kind}: {detail}"),
            None => kind.to_string(),
        },
    };
    TemplateError::new(match line {
        Some(n) => format!("{what} (line {n})"),
        None => what,
    })
}

/// The variables (or attribute paths) the template uses that `given` lacks, quoted; those that
/// appear on `line` when any do.
fn undefined_names(source: &str, given: &Map<String, Json>, line: Option<usize>) -> Vec<String> {
    let Ok(template) = ENV.template_from_str(source) else {
        return Vec::new();
    };
    let globals: BTreeSet<&str> = ENV.globals().map(|(name, _)| name).collect();
    let mut missing = BTreeSet::new();
    for path in template.undeclared_variables(true) {
        let segments: Vec<&str> = path.split('.').collect();
        if segments.first().is_some_and(|top| globals.contains(top)) {
            continue;
        }
        let mut current: Option<&Json> = None;
        for (i, segment) in segments.iter().enumerate() {
            let next = match current {
                None => given.get(*segment),
                Some(Json::Object(map)) => map.get(*segment),
                // Not an object: what the attribute gives is up to the engine, not a variable.
                Some(_) => break,
            };
            match next {
                Some(value) => current = Some(value),
                None => {
                    missing.insert(segments[..=i].join("."));
                    break;
                }
            }
        }
    }
    let text_of_line = line.and_then(|n| source.lines().nth(n.saturating_sub(1)));
    let on_line: Vec<&String> = match text_of_line {
        Some(text) => missing.iter().filter(|name| has_word(text, name)).collect(),
        None => Vec::new(),
    };
    let chosen: Vec<&String> = if on_line.is_empty() {
        missing.iter().collect()
    } else {
        on_line
    };
    chosen.into_iter().map(|name| format!("{name:?}")).collect()
}

/// Whether `word` occurs in `text` with no identifier character right before or after it.
fn has_word(text: &str, word: &str) -> bool {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.match_indices(word).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        !before.is_some_and(is_ident) && !after.is_some_and(is_ident)
    })
}

// ---------------------------------------------------------------------------------------------
// Filters and tests named by the template

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Callable {
    Filter,
    Test,
}

/// One filter or test named in a template, with the line it is on.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CallableUse {
    what: Callable,
    name: String,
    line: usize,
}

/// Fails on the first filter or test the template names that the environment does not have:
/// the engine would only notice one when the rendering reaches it.
fn check_callables(source: &str) -> Result<Vec<CallableUse>, TemplateError> {
    let uses = callables(source);
    if uses.is_empty() {
        return Ok(uses);
    }
    let probe = ENV
        .template_from_str("")
        .map_err(|e| TemplateError::new(e.to_string()))?;
    let mut state = probe.new_state();
    for CallableUse { what, name, line } in &uses {
        let (what, line) = (*what, *line);
        // A known filter or test given no arguments fails for want of them, not as unknown.
        let unknown = match what {
            Callable::Filter => state
                .apply_filter(name, &[])
                .is_err_and(|e| e.kind() == ErrorKind::UnknownFilter),
            Callable::Test => state
                .perform_test(name, &[])
                .is_err_and(|e| e.kind() == ErrorKind::UnknownTest),
        };
        if unknown {
            let what = match what {
                Callable::Filter => "filter",
                Callable::Test => "test",
            };
            return Err(TemplateError::new(format!(
                "unknown {what} {name:?} (line {line})"
            )));
        }
    }
    Ok(uses)
}

/// The filters (`x | name`, `{% filter name %}`) and tests (`x is name`, `x is not name`) named in
/// the expressions of a template that compiles, outside comments, string literals and raw blocks.
fn callables(source: &str) -> Vec<CallableUse> {
    let bytes = source.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(offset) = source[i..].find('{') {
        let start = i + offset;
        match bytes.get(start + 1) {
            Some(b'#') => {
                i = source[start + 2..]
                    .find("#}")
                    .map_or(bytes.len(), |end| start + 2 + end + 2);
            }
            Some(b'{') => {
                let end = expression_end(source, start + 2, "}}");
                scan_expression(source, start + 2, end, &mut out);
                i = (end + 2).min(bytes.len());
            }
            Some(b'%') => {
                let end = expression_end(source, start + 2, "%}");
                let inner = &source[start + 2..end];
                let body = inner.trim_start_matches(['-', '+']).trim_start();
                let keyword_end = body
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(body.len());
                let keyword = &body[..keyword_end];
                let body_start = end - inner.len() + (inner.len() - body.len());
                i = (end + 2).min(bytes.len());
                match keyword {
                    "raw" => i = raw_block_end(source, i),
                    "filter" => {
                        // `{% filter name %}`: the first name is a filter without a `|`.
                        let after = body_start + keyword_end;
                        let rest = &source[after..end];
                        let name_start = after + (rest.len() - rest.trim_start().len());
                        let name = identifier_at(source, name_start, end);
                        if !name.is_empty() {
                            out.push(CallableUse {
                                what: Callable::Filter,
                                name: name.to_owned(),
                                line: line_of(source, name_start),
                            });
                        }
                        scan_expression(source, name_start + name.len(), end, &mut out);
                    }
                    _ => scan_expression(source, body_start + keyword_end, end, &mut out),
                }
            }
            _ => i = start + 1,
        }
    }
    out
}

/// Where the delimiter `close` ends an expression starting at `from`, skipping string literals;
/// the end of the source when it is missing.
fn expression_end(source: &str, from: usize, close: &str) -> usize {
    let bytes = source.as_bytes();
    let mut i = from;
    while i < bytes.len() {
        match bytes[i] {
            b'"' | b'\'' => i = string_end(bytes, i),
            _ if bytes[i..].starts_with(close.as_bytes()) => return i,
            _ => i += 1,
        }
    }
    bytes.len()
}

/// The index after the string literal whose opening quote is at `start`.
fn string_end(bytes: &[u8], start: usize) -> usize {
    let quote = bytes[start];
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            c if c == quote => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

/// The index after the `{% endraw %}` tag that closes a raw block whose body starts at `from`.
fn raw_block_end(source: &str, from: usize) -> usize {
    let mut i = from;
    while let Some(offset) = source[i..].find("{%") {
        let start = i + offset;
        let end = expression_end(source, start + 2, "%}");
        let body = source[start + 2..end].trim_matches(['-', '+']).trim();
        i = (end + 2).min(source.len());
        if body == "endraw" {
            return i;
        }
    }
    source.len()
}

fn identifier_at(source: &str, from: usize, to: usize) -> &str {
    let text = &source[from..to];
    if !text.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        return "";
    }
    let len = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    &text[..len]
}

fn line_of(source: &str, at: usize) -> usize {
    source[..at].bytes().filter(|&b| b == b'\n').count() + 1
}

/// Collects the filters and tests named in `source[from..to]`, an expression.
fn scan_expression(source: &str, from: usize, to: usize, out: &mut Vec<CallableUse>) {
    let bytes = source.as_bytes();
    let skip_space = |mut i: usize| {
        while i < to && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    };
    let mut i = from;
    while i < to {
        let c = bytes[i];
        if c == b'"' || c == b'\'' {
            i = string_end(bytes, i).min(to);
        } else if c == b'|' {
            let at = skip_space(i + 1);
            let name = identifier_at(source, at, to);
            if !name.is_empty() {
                out.push(CallableUse {
                    what: Callable::Filter,
                    name: name.to_owned(),
                    line: line_of(source, at),
                });
            }
            i = at + name.len();
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let word = identifier_at(source, i, to);
            let after_dot = i > 0 && bytes[i - 1] == b'.';
            i += word.len();
            if word == "is" && !after_dot {
                let mut at = skip_space(i);
                let mut name = identifier_at(source, at, to);
                if name == "not" {
                    at = skip_space(at + name.len());
                    name = identifier_at(source, at, to);
                }
                if !name.is_empty() {
                    out.push(CallableUse {
                        what: Callable::Test,
                        name: name.to_owned(),
                        line: line_of(source, at),
                    });
                }
                i = at + name.len();
            }
        } else if c.is_ascii_digit() {
            // A number such as `1e5` holds no name.
            while i < to && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'.') {
                i += 1;
            }
        } else {
            i += 1;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Whitespace

/// Every Unicode space (no-break, narrow no-break, thin, ideographic, …) as a plain space: one
/// character outside the GSM 7-bit alphabet makes the whole SMS UCS-2.
fn plain_spaces(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_whitespace() { ' ' } else { c })
        .collect()
}

/// One line with every run of whitespace as one plain space, trimmed.
fn collapse_spaces(line: &str) -> String {
    line.split(char::is_whitespace)
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `..` after a letter and before a space or the end of the line (an abbreviation such as `déc.`
/// ending a sentence) as one full stop; an ellipsis is left alone.
fn single_full_stops(line: &str) -> String {
    let chars: Vec<char> = line.chars().collect();
    let mut out = String::with_capacity(line.len());
    for (i, &c) in chars.iter().enumerate() {
        let doubled = c == '.'
            && i >= 2
            && chars[i - 1] == '.'
            && chars[i - 2].is_alphabetic()
            && chars.get(i + 1).is_none_or(|n| n.is_whitespace());
        if !doubled {
            out.push(c);
        }
    }
    out
}

fn tidy(text: &str) -> String {
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let lines: Vec<String> = text
        .split('\n')
        .map(|line| single_full_stops(&collapse_spaces(line)))
        .collect();
    let first = lines.iter().position(|l| !l.is_empty());
    let last = lines.iter().rposition(|l| !l.is_empty());
    match (first, last) {
        (Some(first), Some(last)) => lines[first..=last].join("\n"),
        _ => String::new(),
    }
}

// ---------------------------------------------------------------------------------------------
// Locales

/// A locale name resolved to glibc's data.
#[derive(Debug, Clone)]
struct ResolvedLocale {
    /// BCP 47 language and region (`fr-FR`), with glibc's modifier when one was asked for and
    /// exists (`sr-RS@latin`): what `check_locale` returns.
    name: String,
    data: Locale,
}

/// Checks a locale name (`en-US`, `en_GB`, `fr-FR`, `de`, …) and returns it in the form the
/// formatters accept.
pub fn check_locale(locale: &str) -> Result<String, String> {
    resolve_locale(locale).map(|l| l.name)
}

fn resolve_locale(input: &str) -> Result<ResolvedLocale, String> {
    let unknown = || format!("unknown locale {input:?}");
    let raw = input.trim();
    if raw.is_empty() {
        return Err("no locale given".to_owned());
    }
    // glibc spelling: `de_DE.UTF-8`, `sr_RS@latin`.
    let (base, modifier) = match raw.split_once('@') {
        Some((base, modifier)) => (base, Some(modifier)),
        None => (raw, None),
    };
    let base = base.split('.').next().unwrap_or(base);
    let mut id =
        LanguageIdentifier::try_from_str(&base.replace('_', "-")).map_err(|_| unknown())?;
    if id.language.is_unknown() {
        return Err(unknown());
    }
    if id.region.is_none() {
        // `fr` → `fr-FR`, `en` → `en-US`, `ja` → `ja-JP`: CLDR's likely subtags.
        LocaleExpander::new_extended().maximize(&mut id);
    }
    let region = id.region.ok_or_else(unknown)?;
    let name = format!("{}-{}", id.language, region);
    let glibc = format!("{}_{}", id.language, region);
    // glibc names a script by a modifier: `sr-Latn` is `sr_RS@latin`.
    let modifier = modifier.or(match id.script.as_ref().map(|s| s.as_str()) {
        Some("Latn") => Some("latin"),
        Some("Cyrl") => Some("cyrillic"),
        _ => None,
    });
    if let Some(modifier) = modifier
        && let Ok(data) = Locale::try_from(format!("{glibc}@{modifier}").as_str())
    {
        return Ok(ResolvedLocale {
            name: format!("{name}@{modifier}"),
            data,
        });
    }
    let data = Locale::try_from(glibc.as_str()).map_err(|_| unknown())?;
    Ok(ResolvedLocale { name, data })
}

// ---------------------------------------------------------------------------------------------
// Money

/// Checks an ISO 4217 currency code and returns it upper-cased.
pub fn check_currency(code: &str) -> Result<String, String> {
    currency(code).map(|c| c.code().to_owned())
}

fn currency(code: &str) -> Result<Currency, String> {
    let upper = code.trim().to_ascii_uppercase();
    let found = Currency::from_code(&upper).ok_or_else(|| format!("unknown currency {code:?}"))?;
    if found.exponent().is_none() {
        return Err(format!(
            "{upper} has no minor unit in ISO 4217 (a metal, fund or testing code), it cannot be billed in"
        ));
    }
    Ok(found)
}

fn minor_digits(currency: Currency) -> u32 {
    currency.exponent().map_or(0, u32::from)
}

/// Parses a plain decimal (`120`, `120.5`, `-3.10`): digits, at most one point with digits after
/// it, and a leading minus only when `negative_ok`.
fn parse_amount(amount: &str, negative_ok: bool) -> Result<Decimal, String> {
    let text = amount.trim();
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = match digits.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (digits, None),
    };
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(whole) || fraction.is_some_and(|f| !all_digits(f)) {
        return Err(format!("{amount:?} is not an amount (write it as 1234.50)"));
    }
    if negative && !negative_ok {
        return Err(format!("{amount:?} is negative"));
    }
    Decimal::from_str_exact(text).map_err(|_| format!("{amount:?} is too large or too precise"))
}

/// Parses an amount given as a decimal string ("120.5", "120.50", "1200") and returns it
/// normalised to the currency's minor digits ("120.50"); negative, non-numeric, or too many
/// decimals for the currency is an error.
pub fn normalise_amount(amount: &str, currency_code: &str) -> Result<String, String> {
    let currency = currency(currency_code)?;
    let value = parse_amount(amount, false)?;
    let digits = minor_digits(currency);
    if value.normalize().scale() > digits {
        return Err(format!(
            "{amount:?} has more decimals than {} allows ({digits})",
            currency.code()
        ));
    }
    let mut value = value;
    value.rescale(digits);
    Ok(value.to_string())
}

/// Formats an amount of money for a locale: `format_money("1234.5", "USD", "en-US") ==
/// "$1,234.50"`.
pub fn format_money(amount: &str, currency_code: &str, locale: &str) -> Result<String, String> {
    let value = parse_amount(amount, true)?;
    let currency = currency(currency_code)?;
    let locale = resolve_locale(locale)?;
    Ok(money_text(value, currency, locale.data, MoneyStyle::Symbol))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MoneyStyle {
    /// The currency's symbol where it is unambiguous and GSM-safe (`$120.50`), else the code.
    Symbol,
    /// The ISO code (`USD 120.50`).
    Code,
}

/// glibc's LC_MONETARY facts for one locale.
struct Monetary {
    decimal_point: String,
    thousands_sep: String,
    grouping: &'static [i64],
    p_cs_precedes: bool,
    p_sep_by_space: bool,
    n_cs_precedes: bool,
    n_sep_by_space: bool,
    n_sign_posn: i64,
    int_p_cs_precedes: bool,
    int_n_cs_precedes: bool,
    negative_sign: &'static str,
    /// The currency of the locale's country (`USD` for en_US).
    own_currency: Option<Currency>,
}

/// One glibc fact of a locale per function, each a single `match` over the ~340 locales, kept
/// out of its callers: with thirteen of these matches in one function, LLVM spent more than
/// twenty minutes of a release build optimising that function (measured alone, in a crate of
/// its own); a function with one match compiles to a table look-up in a fraction of a second.
macro_rules! locale_facts {
    ($($name:ident: $ty:ty = $category:ident::$item:ident;)*) => {$(
        #[inline(never)]
        fn $name(locale: Locale) -> $ty {
            locale_match!(locale => $category::$item)
        }
    )*};
}

locale_facts! {
    mon_decimal_point: &'static str = LC_MONETARY::MON_DECIMAL_POINT;
    decimal_point: &'static str = LC_NUMERIC::DECIMAL_POINT;
    mon_thousands_sep: &'static str = LC_MONETARY::MON_THOUSANDS_SEP;
    p_cs_precedes: i64 = LC_MONETARY::P_CS_PRECEDES;
    n_cs_precedes: i64 = LC_MONETARY::N_CS_PRECEDES;
    int_p_cs_precedes: Option<i64> = LC_MONETARY::INT_P_CS_PRECEDES;
    int_n_cs_precedes: Option<i64> = LC_MONETARY::INT_N_CS_PRECEDES;
    p_sep_by_space: i64 = LC_MONETARY::P_SEP_BY_SPACE;
    n_sep_by_space: i64 = LC_MONETARY::N_SEP_BY_SPACE;
    int_curr_symbol: &'static str = LC_MONETARY::INT_CURR_SYMBOL;
    mon_grouping: &'static [i64] = LC_MONETARY::MON_GROUPING;
    n_sign_posn: i64 = LC_MONETARY::N_SIGN_POSN;
    negative_sign: &'static str = LC_MONETARY::NEGATIVE_SIGN;
    d_fmt: &'static str = LC_TIME::D_FMT;
}

impl Monetary {
    fn of(locale: Locale) -> Monetary {
        let mut decimal_point_text = mon_decimal_point(locale);
        if decimal_point_text.is_empty() {
            decimal_point_text = decimal_point(locale);
        }
        if decimal_point_text.is_empty() {
            decimal_point_text = ".";
        }
        let p_cs = p_cs_precedes(locale);
        let n_cs = n_cs_precedes(locale);
        Monetary {
            decimal_point: sms_separator(decimal_point_text).unwrap_or_else(|| ".".to_owned()),
            thousands_sep: sms_separator(mon_thousands_sep(locale)).unwrap_or_default(),
            grouping: mon_grouping(locale),
            p_cs_precedes: p_cs == 1,
            p_sep_by_space: p_sep_by_space(locale) == 1,
            n_cs_precedes: n_cs == 1,
            n_sep_by_space: n_sep_by_space(locale) == 1,
            n_sign_posn: n_sign_posn(locale),
            int_p_cs_precedes: int_p_cs_precedes(locale).unwrap_or(p_cs) == 1,
            int_n_cs_precedes: int_n_cs_precedes(locale).unwrap_or(n_cs) == 1,
            negative_sign: negative_sign(locale),
            own_currency: int_curr_symbol(locale)
                .get(..3)
                .and_then(Currency::from_code),
        }
    }
}

fn is_gsm(c: char) -> bool {
    Charset::DEFAULT.encode_char(c).is_some()
}

/// A separator as it can go in an SMS: spaces as plain spaces, the few others outside the GSM
/// alphabet (`’` in de_CH, Arabic separators) as their ASCII look-alikes, `None` when no such
/// form is known.
fn sms_separator(separator: &str) -> Option<String> {
    let text: String = plain_spaces(separator)
        .chars()
        .map(|c| match c {
            '\u{2019}' | '\u{2018}' | '\u{02BC}' => '\'',
            '\u{066C}' => ',',
            '\u{066B}' => '.',
            other => other,
        })
        .collect();
    text.chars().all(is_gsm).then_some(text)
}

/// Digits grouped from the right as glibc's `grouping` says: each entry a group size, the last one
/// repeated, -1 (or a size past any number) ending the grouping.
fn group_digits(digits: &str, separator: &str, grouping: &[i64]) -> String {
    if separator.is_empty() || grouping.is_empty() {
        return digits.to_owned();
    }
    let mut groups: Vec<&str> = Vec::new();
    let mut end = digits.len();
    let mut size = grouping[0];
    for step in 0.. {
        if let Some(&next) = grouping.get(step) {
            size = next;
        }
        let Ok(width) = usize::try_from(size) else {
            break;
        };
        if width == 0 || width >= end {
            break;
        }
        groups.push(&digits[end - width..end]);
        end -= width;
    }
    groups.push(&digits[..end]);
    groups.reverse();
    groups.join(separator)
}

/// The symbol to print for `currency` in a locale whose own currency is `own`: the ISO 4217
/// symbol when every character is in the GSM alphabet and no other current currency has the same
/// symbol (or this is the locale's own currency: `$` means USD in en-US, not in en-GB).
fn shown_symbol(currency: Currency, own: Option<Currency>) -> Option<String> {
    let symbol = currency.symbol().symbol;
    if symbol.is_empty() || symbol == "¤" || !symbol.chars().all(is_gsm) {
        return None;
    }
    if own == Some(currency) {
        return Some(symbol);
    }
    let shared = Currency::iter().any(|other| {
        other != currency && other.flags().is_empty() && other.symbol().symbol == symbol
    });
    (!shared).then_some(symbol)
}

/// `amount` rounded to the currency's minor digits (half away from zero) and written as the
/// locale writes money.
fn money_text(amount: Decimal, currency: Currency, locale: Locale, style: MoneyStyle) -> String {
    let digits = minor_digits(currency);
    let mut rounded = amount.round_dp_with_strategy(digits, RoundingStrategy::MidpointAwayFromZero);
    rounded.rescale(digits);
    let negative = rounded.is_sign_negative() && !rounded.is_zero();
    let plain = rounded.abs().to_string();
    let (whole, fraction) = plain.split_once('.').unwrap_or((plain.as_str(), ""));
    let m = Monetary::of(locale);
    let mut number = group_digits(whole, &m.thousands_sep, m.grouping);
    if digits > 0 {
        number.push_str(&m.decimal_point);
        number.push_str(fraction);
    }

    let symbol = match style {
        MoneyStyle::Symbol => shown_symbol(currency, m.own_currency),
        MoneyStyle::Code => None,
    };
    let (mark, is_code) = match symbol {
        Some(symbol) => (symbol, false),
        None => (currency.code().to_owned(), true),
    };
    let (precedes, spaced) = match (style, negative) {
        (MoneyStyle::Code, false) => (m.int_p_cs_precedes, true),
        (MoneyStyle::Code, true) => (m.int_n_cs_precedes, true),
        (MoneyStyle::Symbol, false) => (m.p_cs_precedes, is_code || m.p_sep_by_space),
        (MoneyStyle::Symbol, true) => (m.n_cs_precedes, is_code || m.n_sep_by_space),
    };
    let sign = if m.negative_sign.is_empty() {
        "-"
    } else {
        m.negative_sign
    };
    let posn = if negative { m.n_sign_posn } else { -1 };
    let mark = match posn {
        3 => format!("{sign}{mark}"),
        4 => format!("{mark}{sign}"),
        _ => mark,
    };
    let space = if spaced { " " } else { "" };
    let body = if precedes {
        format!("{mark}{space}{number}")
    } else {
        format!("{number}{space}{mark}")
    };
    let text = match posn {
        0 => format!("({body})"),
        1 => format!("{sign}{body}"),
        2 => format!("{body}{sign}"),
        // 3 and 4 put the sign at the symbol; a locale that says nothing gets it in front.
        3 | 4 => body,
        _ if negative => format!("{sign}{body}"),
        _ => body,
    };
    plain_spaces(&text)
}

// ---------------------------------------------------------------------------------------------
// Dates

/// What a locale's date format (glibc's `d_fmt`) says about writing a date.
struct DateOrder {
    /// In words, the day goes before the month (`1 Dec`, not `Dec 1`).
    day_before_month: bool,
    /// The year goes first (`2026/12/01`, as in ja_JP).
    year_first: bool,
    /// The numeric pattern: the locale's order and separator with two-digit day and month and a
    /// four-digit year (`%m/%d/%Y`, `%d.%m.%Y`).
    numeric: String,
}

impl DateOrder {
    fn of(locale: Locale) -> DateOrder {
        let d_fmt = d_fmt(locale);
        // The date fields in order, each with the literal text before it.
        let mut fields: Vec<(char, String)> = Vec::new();
        let mut literal = String::new();
        let mut chars = d_fmt.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                literal.push(c);
                continue;
            }
            // Flags (`-`, `_`, `0`, `^`, `#`) and modifiers (`E`, `O`) change no field.
            let mut conversion = chars.next();
            while matches!(conversion, Some('-' | '_' | '0' | '^' | '#' | 'E' | 'O')) {
                conversion = chars.next();
            }
            let mut field = |f: char, literal: &mut String| {
                if !fields.iter().any(|(seen, _)| *seen == f) {
                    fields.push((f, std::mem::take(literal)));
                }
                literal.clear();
            };
            match conversion {
                Some('d' | 'e') => field('d', &mut literal),
                Some('m' | 'b' | 'B' | 'h') => field('m', &mut literal),
                Some('y' | 'Y' | 'C') => field('y', &mut literal),
                Some('D') => {
                    for f in ['m', 'd', 'y'] {
                        literal.push('/');
                        field(f, &mut literal);
                    }
                }
                Some('F') => {
                    for f in ['y', 'm', 'd'] {
                        literal.push('-');
                        field(f, &mut literal);
                    }
                }
                // A weekday or anything else is no part of the numeric date.
                _ => literal.clear(),
            }
        }
        let at = |f: char| fields.iter().position(|(seen, _)| *seen == f);
        let (Some(d), Some(m), Some(y)) = (at('d'), at('m'), at('y')) else {
            return DateOrder {
                day_before_month: true,
                year_first: false,
                numeric: "%Y-%m-%d".to_owned(),
            };
        };
        // The separator between the first two fields, if it is punctuation (`/`, `.`, `-`);
        // `年`/`월` and the like are words, not separators.
        let between = fields[1].1.replace(' ', "");
        let separator = if !between.is_empty() && between.chars().all(|c| c.is_ascii_punctuation())
        {
            between
        } else {
            "/".to_owned()
        };
        let numeric = fields
            .iter()
            .map(|(f, _)| match f {
                'd' => "%d",
                'm' => "%m",
                _ => "%Y",
            })
            .collect::<Vec<_>>()
            .join(&separator);
        // An ISO numeric date (`%Y-%m-%d`: sv_SE, fr_CA) says nothing about the order in words;
        // those languages put the day first.
        let iso = y == 0 && m == 1 && d == 2 && separator == "-";
        DateOrder {
            day_before_month: d < m || iso,
            year_first: y == 0,
            numeric,
        }
    }
}

/// Formats a date (`YYYY-MM-DD`) for a locale and style.
///
/// Styles: `short` (`Dec 1`, `1 déc.`), `numeric` (`12/01/2026`, `01.12.2026`), `long`
/// (`December 1, 2026`, `1 décembre 2026`), or any other text as a strftime pattern.
pub fn format_date(date: &str, style: &str, locale: &str) -> Result<String, String> {
    let day = parse_date(date)?;
    let locale = resolve_locale(locale)?;
    date_text(day, style, locale.data)
}

fn parse_date(date: &str) -> Result<NaiveDate, String> {
    let text = date.trim();
    let shaped = text.len() == 10
        && text.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            _ => b.is_ascii_digit(),
        });
    let parsed = shaped
        .then(|| NaiveDate::parse_from_str(text, "%Y-%m-%d").ok())
        .flatten();
    parsed.ok_or_else(|| format!("{date:?} is not a date (write it as YYYY-MM-DD)"))
}

fn date_text(day: NaiveDate, style: &str, locale: Locale) -> Result<String, String> {
    let order = DateOrder::of(locale);
    let pattern: Cow<'_, str> = match style {
        "short" if order.day_before_month => "%-d %b".into(),
        "short" => "%b %-d".into(),
        "numeric" => order.numeric.into(),
        "long" if order.year_first && !order.day_before_month => "%Y %B %-d".into(),
        "long" if order.day_before_month => "%-d %B %Y".into(),
        "long" => "%B %-d, %Y".into(),
        "" => return Err("no date style given".to_owned()),
        pattern => pattern.into(),
    };
    let items = StrftimeItems::new_with_locale(&pattern, locale)
        .parse()
        .map_err(|_| format!("{pattern:?} is not a date pattern"))?;
    let mut text = String::new();
    write!(
        text,
        "{}",
        day.format_localized_with_items(items.iter(), locale)
    )
    .map_err(|_| format!("{pattern:?} asks for more than a date has"))?;
    Ok(collapse_spaces(&text))
}

// ---------------------------------------------------------------------------------------------
// The filters

fn invalid(message: String) -> Error {
    Error::new(ErrorKind::InvalidOperation, message)
}

/// A string variable from the render context; `None` when it is missing, none or empty.
fn context_string(state: &State, name: &str) -> Result<Option<String>, Error> {
    let Some(value) = state.lookup(name) else {
        return Ok(None);
    };
    if value.is_undefined() || value.is_none() {
        return Ok(None);
    }
    match value.as_str() {
        Some("") => Ok(None),
        Some(text) => Ok(Some(text.to_owned())),
        None => Err(invalid(format!(
            "the {name} variable must be a string, not {value}"
        ))),
    }
}

/// The locale from the render context, `en-US` when it is empty.
fn context_locale(state: &State, filter: &str) -> Result<Locale, Error> {
    let name = context_string(state, "locale")?.unwrap_or_else(|| "en-US".to_owned());
    resolve_locale(&name)
        .map(|l| l.data)
        .map_err(|e| invalid(format!("{filter}: {e}")))
}

/// The amount a `money` filter was given, as decimal text: a string as it is, an integer in full,
/// a float in its shortest exact form.
fn amount_text(value: &Value) -> Result<String, Error> {
    if let Some(text) = value.as_str() {
        return Ok(text.to_owned());
    }
    if value.kind() == ValueKind::Number {
        if let Ok(whole) = i128::try_from(value.clone()) {
            return Ok(whole.to_string());
        }
        if let Ok(float) = f64::try_from(value.clone())
            && float.is_finite()
        {
            return Ok(float.to_string());
        }
    }
    Err(invalid(format!("money: {value} is not an amount")))
}

/// `{{ amount | money }}`, `{{ amount | money("EUR") }}`, `{{ amount | money(style="code") }}`.
fn money_filter(
    state: &State,
    value: Value,
    currency_code: Option<String>,
    kwargs: Kwargs,
) -> Result<String, Error> {
    let style: Option<String> = kwargs.get("style")?;
    kwargs.assert_all_used()?;
    let style = match style.as_deref() {
        None | Some("symbol") => MoneyStyle::Symbol,
        Some("code") => MoneyStyle::Code,
        Some(other) => {
            return Err(invalid(format!(
                "money: unknown style {other:?} (use \"symbol\" or \"code\")"
            )));
        }
    };
    let code = match currency_code.filter(|c| !c.is_empty()) {
        Some(code) => code,
        None => context_string(state, "currency")?.ok_or_else(|| {
            invalid(
                "money: no currency: give one, as in money(\"EUR\"), or set the currency variable"
                    .to_owned(),
            )
        })?,
    };
    let currency = currency(&code).map_err(|e| invalid(format!("money: {e}")))?;
    let locale = context_locale(state, "money")?;
    let amount =
        parse_amount(&amount_text(&value)?, true).map_err(|e| invalid(format!("money: {e}")))?;
    Ok(money_text(amount, currency, locale, style))
}

/// `{{ due_date | date }}` (style `short`), `{{ due_date | date("long") }}`,
/// `{{ due_date | date("%d.%m.%Y") }}`.
fn date_filter(state: &State, value: Value, style: Option<String>) -> Result<String, Error> {
    let Some(text) = value.as_str() else {
        return Err(invalid(format!(
            "date: {value} is not a date (write it as YYYY-MM-DD)"
        )));
    };
    let day = parse_date(text).map_err(|e| invalid(format!("date: {e}")))?;
    let locale = context_locale(state, "date")?;
    date_text(day, style.as_deref().unwrap_or("short"), locale)
        .map_err(|e| invalid(format!("date: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn context(locale: &str, currency: &str) -> Json {
        json!({
            "name": "Ana",
            "invoice": "INV-1042",
            "amount": "120.50",
            "currency": currency,
            "due_date": "2026-12-01",
            "pay_url": "https://pay.example/x",
            "unit": "",
            "property": "",
            "locale": locale,
            "opt_out_hint": "Reply STOP to opt out.",
            "days_until_due": -10,
            "days_overdue": 10,
            "amount_paid": "120.50",
            "failure_reason": "",
        })
    }

    #[test]
    fn no_template_makes_more_than_a_few_kilobytes() {
        let vars = json!({"name": "Ann"});
        for source in [
            // String repetition, one huge allocation.
            "{{ 'x' * 99999999 }}",
            "{% set a = 'x' * 99999999 %}ok",
            // Output growing in a loop.
            "{% for i in range(10000) %}{{ 'xxxxxxxxxx' ~ i }}{% endfor %}",
            // A string doubled again and again, never written out.
            "{% set ns = namespace(s='xxxxxxxxxxxxxxxx') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s | length }}",
            "{% set a = 'x' * 1000 %}{% set b = a ~ a ~ a ~ a %}{% set c = b ~ b ~ b ~ b %}{% set d = c ~ c ~ c ~ c %}{% set e = d ~ d ~ d ~ d %}{% set f = e ~ e ~ e ~ e %}{% set g = f ~ f ~ f ~ f %}{% set h = g ~ g ~ g ~ g %}{{ h | length }}",
            "{{ 'xxxxxxxx' | replace('x', 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx') | replace('x', 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx') | replace('x', 'xxxxxxxxxxxxxxxxxxxxxxxx') }}",
        ] {
            let started = std::time::Instant::now();
            assert!(render(source, &vars).is_err(), "{source} rendered");
            assert!(check(source, &vars).is_err(), "{source} passed the check");
            assert!(
                started.elapsed() < std::time::Duration::from_secs(5),
                "{source}"
            );
        }
        // Right below the cap is fine.
        let long = format!("{{{{ 'x' * {} }}}}", MAX_RENDERED);
        assert_eq!(render(&long, &vars).unwrap().len(), MAX_RENDERED);
    }

    fn rendered(name: &str, vars: &Json) -> String {
        render(default_template(name).unwrap(), vars).unwrap()
    }

    #[test]
    fn default_names_all_have_texts() {
        for name in DEFAULT_NAMES {
            assert!(default_template(name).is_some(), "{name}");
            check_name(name).unwrap();
        }
        assert_eq!(default_template("nope"), None);
    }

    #[test]
    fn defaults_render_in_english_dollars() {
        let vars = context("en-US", "USD");
        let expected = [
            (
                "invoice_issued",
                "Hi Ana, new invoice INV-1042 for $120.50 is due Dec 1. Pay at https://pay.example/x Reply STOP to opt out.",
            ),
            (
                "upcoming",
                "Hi Ana, reminder: invoice INV-1042 for $120.50 is due Dec 1. Pay at https://pay.example/x Reply STOP to opt out.",
            ),
            (
                "due_today",
                "Hi Ana, invoice INV-1042 for $120.50 is due today. Pay at https://pay.example/x Reply STOP to opt out.",
            ),
            (
                "past_due",
                "Ana, invoice INV-1042 for $120.50 was due Dec 1 (10 days ago). Pay at https://pay.example/x Reply STOP to opt out.",
            ),
            (
                "second_notice",
                "Invoice INV-1042 for $120.50 is 10 days overdue. Pay at https://pay.example/x Reply 1: call me, 2: pay minimum. Reply STOP to opt out.",
            ),
            (
                "final_notice",
                "Final notice: invoice INV-1042 for $120.50 is 10 days overdue. Please pay now at https://pay.example/x Reply STOP to opt out.",
            ),
            (
                "payment_received",
                "Thank you, Ana! We received your payment of $120.50 for invoice INV-1042. Reply STOP to opt out.",
            ),
            (
                "payment_failed",
                "Your payment of $120.50 for invoice INV-1042 failed. Please try again at https://pay.example/x Reply STOP to opt out.",
            ),
        ];
        for (name, text) in expected {
            assert_eq!(rendered(name, &vars), text, "{name}");
        }
    }

    #[test]
    fn defaults_render_in_french_and_german_euros() {
        let fr = context("fr-FR", "EUR");
        assert_eq!(
            rendered("upcoming", &fr),
            "Hi Ana, reminder: invoice INV-1042 for 120,50 € is due 1 déc. Pay at https://pay.example/x Reply STOP to opt out."
        );
        assert_eq!(
            rendered("payment_received", &fr),
            "Thank you, Ana! We received your payment of 120,50 € for invoice INV-1042. Reply STOP to opt out."
        );
        let de = context("de-DE", "EUR");
        assert_eq!(
            rendered("past_due", &de),
            "Ana, invoice INV-1042 for 120,50 € was due 1 Dez (10 days ago). Pay at https://pay.example/x Reply STOP to opt out."
        );
        assert_eq!(
            rendered("second_notice", &de),
            "Invoice INV-1042 for 120,50 € is 10 days overdue. Pay at https://pay.example/x Reply 1: call me, 2: pay minimum. Reply STOP to opt out."
        );
    }

    #[test]
    fn every_default_is_one_gsm_part() {
        for (locale, currency) in [("en-US", "USD"), ("fr-FR", "EUR"), ("de-DE", "EUR")] {
            let vars = context(locale, currency);
            for name in DEFAULT_NAMES {
                let text = rendered(name, &vars);
                let plan = crate::sms::TextPlan::new(&text, &[], 6).unwrap();
                assert_eq!(plan.encoding.as_str(), "gsm7", "{name} {locale}: {text}");
                assert_eq!(plan.parts.len(), 1, "{name} {locale}: {text}");
            }
        }
    }

    #[test]
    fn every_shipped_template_with_the_hint_is_one_part() {
        // The default hint and realistic values: a 20-character name, a 40-character pay
        // link, an amount in the thousands, a month overdue.
        let hint = crate::reminders::config::RemindersConfig::default().opt_out_hint;
        assert_eq!(hint, crate::reminders::config::DEFAULT_OPT_OUT_HINT);
        for (locale, currency) in [
            ("en-US", "USD"),
            ("en-GB", "GBP"),
            ("fr-FR", "EUR"),
            ("de-DE", "EUR"),
        ] {
            let mut vars = context(locale, currency);
            vars["name"] = json!("Maximilian Johansson");
            vars["invoice"] = json!("INV-104223");
            vars["amount"] = json!("1234.56");
            vars["amount_paid"] = json!("1234.56");
            vars["pay_url"] = json!("https://pay.example.com/i/2026-0042/abcd");
            vars["failure_reason"] = json!("card declined");
            vars["opt_out_hint"] = json!(hint);
            vars["days_overdue"] = json!(30);
            vars["days_until_due"] = json!(-30);
            assert_eq!(vars["name"].as_str().map(str::len), Some(20));
            assert_eq!(vars["pay_url"].as_str().map(str::len), Some(40));
            for name in DEFAULT_NAMES {
                let text = rendered(name, &vars);
                assert!(text.ends_with(&hint), "{name} {locale}: {text}");
                let plan = crate::sms::TextPlan::new(&text, &[], 6).unwrap();
                assert_eq!(plan.encoding.as_str(), "gsm7", "{name} {locale}: {text}");
                assert_eq!(plan.parts.len(), 1, "{name} {locale}: {text}");
            }
        }
    }

    #[test]
    fn defaults_read_well_without_optional_values() {
        let mut vars = context("en-US", "USD");
        for key in ["name", "invoice", "pay_url", "opt_out_hint"] {
            vars[key] = json!("");
        }
        vars["days_overdue"] = json!(1);
        assert_eq!(
            rendered("upcoming", &vars),
            "Reminder: invoice for $120.50 is due Dec 1."
        );
        assert_eq!(
            rendered("past_due", &vars),
            "Invoice for $120.50 was due Dec 1 (1 day ago). Please pay as soon as you can."
        );
        assert_eq!(
            rendered("payment_received", &vars),
            "Thank you! We received your payment of $120.50."
        );
        vars["failure_reason"] = json!("card declined");
        assert_eq!(
            rendered("payment_failed", &vars),
            "Your payment of $120.50 failed (card declined). Please try again."
        );
    }

    #[test]
    fn second_notice_offers_the_reply_options() {
        assert!(SECOND_NOTICE.contains("Reply 1: call me, 2: pay minimum."));
    }

    #[test]
    fn missing_variable_is_named() {
        let err = render("Pay at {{ pay_url }}", &json!({})).unwrap_err();
        assert!(err.message.contains("\"pay_url\""), "{err}");
        assert!(err.message.contains("line 1"), "{err}");
        let err = render(
            "Hi {{ name }}\n{% if late %}late{% endif %}",
            &json!({"name": "Ana"}),
        )
        .unwrap_err();
        assert_eq!(err.message, "undefined variable \"late\" (line 2)");
    }

    #[test]
    fn is_defined_works_for_a_missing_variable() {
        let text = render(
            "Hi{% if nick is defined %} {{ nick }}{% endif %}!",
            &json!({}),
        )
        .unwrap();
        assert_eq!(text, "Hi!");
    }

    #[test]
    fn unknown_filter_is_an_error_even_in_a_branch_not_taken() {
        let err = render("{{ amount | moneyy }}", &json!({"amount": "1"})).unwrap_err();
        assert_eq!(err.message, "unknown filter \"moneyy\" (line 1)");
        let err = render(
            "ok\n{% if false %}{{ x | nope }}{% endif %}",
            &json!({"x": 1}),
        )
        .unwrap_err();
        assert_eq!(err.message, "unknown filter \"nope\" (line 2)");
        let err = render("{% if x is nonsense %}y{% endif %}", &json!({"x": 1})).unwrap_err();
        assert_eq!(err.message, "unknown test \"nonsense\" (line 1)");
        // Names in strings, comments and raw blocks are not filters.
        let text = render(
            "{{ \"a | b\" }}{# x | nope #}{% raw %}{{ y | nope }}{% endraw %}{{ 'x' | upper }}",
            &json!({}),
        )
        .unwrap();
        assert_eq!(text, "a | b{{ y | nope }}X");
        // Text outside ASCII, in and between expressions.
        let text = render(
            "é{{ 'ü}}' ~ name | upper }}ß{% if name is string %}ok{% endif %}",
            &json!({"name": "ñ"}),
        )
        .unwrap();
        assert_eq!(text, "éü}}Ñßok");
    }

    #[test]
    fn syntax_error_has_a_line() {
        let err = render("Hello\n{{ name ", &json!({"name": "x"})).unwrap_err();
        assert!(err.message.starts_with("syntax error"), "{err}");
        assert!(err.message.contains("(line 2)"), "{err}");
        assert!(render("{% if x %}", &json!({"x": 1})).is_err());
    }

    #[test]
    fn whitespace_is_tidied() {
        let text = render(
            "\n\n  Hi \t {{ name }},  \n\n  bye\u{a0}now  \n\n",
            &json!({"name": "Ana"}),
        )
        .unwrap();
        assert_eq!(text, "Hi Ana,\n\nbye now");
        let text = render("{% if a %}\n  A\n{% endif %}\nB", &json!({"a": true})).unwrap();
        assert_eq!(text, "A\nB");
        assert_eq!(tidy("1 déc.. Wait... ok.."), "1 déc. Wait... ok.");
    }

    #[test]
    fn vars_must_be_an_object() {
        assert!(render("x", &json!([1])).is_err());
        assert!(check("x", &json!("s")).is_err());
    }

    #[test]
    fn check_fills_samples() {
        let (text, filled) = check(
            "{{ name }} owes {{ amount | money }} by {{ due_date | date }}; {{ customer.tier }}",
            &json!({"currency": "EUR", "locale": "de-DE"}),
        )
        .unwrap();
        assert_eq!(filled, ["amount", "customer", "due_date", "name"]);
        assert_eq!(text, "Ana owes 120,50 € by 1 Dez; sample");
        let (text, filled) =
            check("{{ 5 | money }} on {{ '2026-12-01' | date }}", &json!({})).unwrap();
        assert_eq!(filled, ["currency", "locale"]);
        assert_eq!(text, "$5.00 on Dec 1");
        for name in DEFAULT_NAMES {
            let (text, filled) = check(default_template(name).unwrap(), &json!({})).unwrap();
            assert!(!text.is_empty());
            assert!(
                filled.contains(&"amount".to_owned()) || filled.contains(&"amount_paid".to_owned())
            );
        }
    }

    #[test]
    fn check_reports_unknown_filters_and_bad_arguments() {
        let err = check("{{ amount | monee }}", &json!({})).unwrap_err();
        assert_eq!(err.message, "unknown filter \"monee\" (line 1)");
        let err = check("{% if false %}{{ amount | monee }}{% endif %}", &json!({})).unwrap_err();
        assert!(err.message.contains("monee"), "{err}");
        let err = check("{{ amount | money(\"XYZ\") }}", &json!({})).unwrap_err();
        assert!(err.message.contains("unknown currency \"XYZ\""), "{err}");
        let err = check("{{ due_date | date(\"%H:%M\") }}", &json!({})).unwrap_err();
        assert!(err.message.starts_with("date:"), "{err}");
        let err = check("{{ amount | money(style=\"fancy\") }}", &json!({})).unwrap_err();
        assert!(err.message.contains("fancy"), "{err}");
        let err = check("{{ x }", &json!({})).unwrap_err();
        assert!(err.message.starts_with("syntax error"), "{err}");
    }

    #[test]
    fn check_names() {
        for good in ["a", "past_due", "x-1", &"a".repeat(64)] {
            assert_eq!(check_name(good), Ok(()), "{good}");
        }
        for bad in ["", "1a", "_a", "A", "pay due", "naïve", &"a".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    fn money(amount: &str, currency: &str, locale: &str) -> String {
        format_money(amount, currency, locale).unwrap()
    }

    #[test]
    fn money_for_locales() {
        assert_eq!(money("1234.5", "USD", "en-US"), "$1,234.50");
        assert_eq!(money("1234.5", "EUR", "de-DE"), "1.234,50 €");
        assert_eq!(money("1234.5", "EUR", "fr-FR"), "1 234,50 €");
        assert_eq!(money("1234.5", "GBP", "en-GB"), "£1,234.50");
        assert_eq!(money("1234.5", "JPY", "ja-JP"), "¥1,235");
        assert_eq!(money("1234.5", "KWD", "en-US"), "KWD 1,234.500");
        assert_eq!(money("12", "CHF", "en-US"), "CHF 12.00");
        assert_eq!(money("12", "EUR", "en-US"), "€12.00");
        // `$` is the dollar of the locale's country only.
        assert_eq!(money("12", "CAD", "en-US"), "CAD 12.00");
        assert_eq!(money("12", "CAD", "en-CA"), "$12.00");
        assert_eq!(money("12", "USD", "en-CA"), "USD 12.00");
    }

    #[test]
    fn money_rounds_half_away_from_zero_and_groups() {
        assert_eq!(money("0.005", "USD", "en-US"), "$0.01");
        assert_eq!(money("0.015", "USD", "en-US"), "$0.02");
        assert_eq!(money("0.004", "USD", "en-US"), "$0.00");
        assert_eq!(money("1234567.891", "USD", "en-US"), "$1,234,567.89");
        assert_eq!(money("1234567.891", "EUR", "de-DE"), "1.234.567,89 €");
        assert_eq!(money("1234567", "EUR", "fr-FR"), "1 234 567,00 €");
        assert_eq!(money("999", "USD", "en-US"), "$999.00");
        assert_eq!(money("-5", "USD", "en-US"), "-$5.00");
        assert_eq!(money("-5", "EUR", "de-DE"), "-5,00 €");
    }

    #[test]
    fn money_rejects_bad_input() {
        assert!(format_money("abc", "USD", "en-US").is_err());
        assert!(format_money("1e5", "USD", "en-US").is_err());
        assert!(format_money("1", "XYZ", "en-US").is_err());
        assert!(format_money("1", "USD", "xx-YY").is_err());
    }

    #[test]
    fn money_filter_styles_and_values() {
        let vars =
            json!({"amount": "120.5", "n": 120.5, "i": 1200, "currency": "USD", "locale": "en-US"});
        let r = |source: &str| render(source, &vars).unwrap();
        assert_eq!(r("{{ amount | money }}"), "$120.50");
        assert_eq!(r("{{ amount | money(\"EUR\") }}"), "€120.50");
        assert_eq!(
            r("{{ amount | money(\"USD\", style=\"code\") }}"),
            "USD 120.50"
        );
        assert_eq!(r("{{ amount | money(style=\"code\") }}"), "USD 120.50");
        assert_eq!(r("{{ n | money }}"), "$120.50");
        assert_eq!(r("{{ i | money }}"), "$1,200.00");
        let de = json!({"amount": "120.5", "currency": "EUR", "locale": "de-DE"});
        assert_eq!(
            render("{{ amount | money(style=\"code\") }}", &de).unwrap(),
            "120,50 EUR"
        );
        let err = render(
            "{{ amount | money }}",
            &json!({"amount": "x", "currency": "USD", "locale": "en-US"}),
        )
        .unwrap_err();
        assert!(err.message.starts_with("money: "), "{err}");
    }

    #[test]
    fn french_money_is_gsm_text() {
        let text = money("1234567.5", "EUR", "fr-FR");
        assert_eq!(text, "1 234 567,50 €");
        let plan = crate::sms::TextPlan::new(&text, &[], 6).unwrap();
        assert_eq!(plan.encoding.as_str(), "gsm7");
        // Only the default alphabet (and € from its extension table): no no-break spaces.
        assert!(
            text.chars().all(|c| c == '€'
                || matches!(
                    Charset::DEFAULT.encode_char(c),
                    Some(crate::sms::gsm7::Septets::One(_))
                )),
            "{text:?}"
        );
    }

    #[test]
    fn dates_for_locales() {
        let d = |style: &str, locale: &str| format_date("2026-12-01", style, locale).unwrap();
        assert_eq!(d("short", "en-US"), "Dec 1");
        assert_eq!(d("short", "en-GB"), "1 Dec");
        assert_eq!(d("short", "fr-FR"), "1 déc.");
        assert_eq!(d("short", "de-DE"), "1 Dez");
        assert_eq!(d("numeric", "en-US"), "12/01/2026");
        assert_eq!(d("numeric", "en-GB"), "01/12/2026");
        assert_eq!(d("numeric", "fr-FR"), "01/12/2026");
        assert_eq!(d("numeric", "de-DE"), "01.12.2026");
        // Year first, and `年`/`月` are words, not separators.
        assert_eq!(d("numeric", "ja-JP"), "2026/12/01");
        // An ISO numeric date puts the day first in words.
        assert_eq!(d("short", "sv-SE"), "1 dec");
        assert_eq!(d("long", "en-US"), "December 1, 2026");
        assert_eq!(d("long", "en-GB"), "1 December 2026");
        assert_eq!(d("long", "fr-FR"), "1 décembre 2026");
        assert_eq!(d("long", "de-DE"), "1 Dezember 2026");
        assert_eq!(d("%d.%m.%Y", "en-US"), "01.12.2026");
        assert_eq!(d("%A %-d %B", "fr-FR"), "mardi 1 décembre");
    }

    #[test]
    fn date_errors() {
        assert!(format_date("2026-13-01", "short", "en-US").is_err());
        assert!(format_date("1/12/2026", "short", "en-US").is_err());
        assert!(format_date("2026-12-01", "%H:%M", "en-US").is_err());
        assert!(format_date("2026-12-01", "", "en-US").is_err());
        assert!(format_date("2026-12-01", "short", "xx-YY").is_err());
    }

    #[test]
    fn date_filter_uses_the_locale_variable() {
        let vars = json!({"d": "2026-12-01", "locale": "fr-FR"});
        assert_eq!(render("{{ d | date }}", &vars).unwrap(), "1 déc.");
        assert_eq!(
            render("{{ d | date(\"long\") }}", &vars).unwrap(),
            "1 décembre 2026"
        );
        assert_eq!(
            render(
                "{{ d | date(\"numeric\") }}",
                &json!({"d": "2026-12-01", "locale": "de"})
            )
            .unwrap(),
            "01.12.2026"
        );
    }

    #[test]
    fn normalise_amounts() {
        assert_eq!(normalise_amount("120.5", "USD").unwrap(), "120.50");
        assert_eq!(normalise_amount("120.50", "usd").unwrap(), "120.50");
        assert_eq!(normalise_amount("1200", "USD").unwrap(), "1200.00");
        assert_eq!(normalise_amount("1.230", "USD").unwrap(), "1.23");
        assert_eq!(normalise_amount("1200", "JPY").unwrap(), "1200");
        assert_eq!(normalise_amount("1.5", "KWD").unwrap(), "1.500");
        assert!(normalise_amount("-1", "USD").is_err());
        assert!(normalise_amount("abc", "USD").is_err());
        assert!(normalise_amount("1.234", "USD").is_err());
        assert!(normalise_amount("1.5", "JPY").is_err());
        assert!(normalise_amount("", "USD").is_err());
        assert!(normalise_amount(".5", "USD").is_err());
        assert!(normalise_amount("1,5", "USD").is_err());
        assert!(normalise_amount("1", "XAU").is_err());
    }

    #[test]
    fn locales() {
        assert_eq!(check_locale("en-US").unwrap(), "en-US");
        assert_eq!(check_locale("en_GB").unwrap(), "en-GB");
        assert_eq!(check_locale("fr").unwrap(), "fr-FR");
        assert_eq!(check_locale("de").unwrap(), "de-DE");
        assert_eq!(check_locale("en").unwrap(), "en-US");
        assert_eq!(check_locale("ja").unwrap(), "ja-JP");
        assert_eq!(check_locale("de_DE.UTF-8").unwrap(), "de-DE");
        let err = check_locale("xx-YY").unwrap_err();
        assert!(err.contains("xx-YY"), "{err}");
        assert!(check_locale("").is_err());
        assert!(check_locale("not a locale").is_err());
    }

    #[test]
    fn currencies() {
        assert_eq!(check_currency("usd").unwrap(), "USD");
        assert_eq!(check_currency("EUR").unwrap(), "EUR");
        assert!(check_currency("XYZ").is_err());
        assert!(check_currency("US").is_err());
    }

    proptest::proptest! {
        #[test]
        fn money_parses_back(cents in 0u64..100_000_000_000) {
            let amount = format!("{}.{:02}", cents / 100, cents % 100);
            let expected: Decimal = amount.parse().unwrap();
            let us = format_money(&amount, "USD", "en-US").unwrap();
            let us: Decimal = us.trim_start_matches('$').replace(',', "").parse().unwrap();
            proptest::prop_assert_eq!(us, expected);
            let de = format_money(&amount, "EUR", "de-DE").unwrap();
            let de: Decimal = de
                .trim_end_matches('€')
                .trim_end()
                .replace('.', "")
                .replace(',', ".")
                .parse()
                .unwrap();
            proptest::prop_assert_eq!(de, expected);
        }
    }
}
