//! Checking a template before it is used: unknown filters and tests anywhere in it, with their
//! line, and a sample rendering with a plausible value for every variable the caller lacks.

use std::collections::{BTreeMap, BTreeSet};

use minijinja::ErrorKind;
use minijinja::value::{Serde, Value};
use serde_json::{Map, Value as Json};

use super::TemplateError;
use super::render::{ENV, describe, render_capped, vars_object};
use super::whitespace::tidy;

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Callable {
    Filter,
    Test,
}

/// One filter or test named in a template, with the line it is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct CallableUse {
    what: Callable,
    name: String,
    line: usize,
}

/// Fails on the first filter or test the template names that the environment does not have:
/// the engine would only notice one when the rendering reaches it.
pub(super) fn check_callables(source: &str) -> Result<Vec<CallableUse>, TemplateError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reminders::templates::{DEFAULT_NAMES, default_template, render};
    use serde_json::json;

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
}
