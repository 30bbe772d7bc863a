//! Rendering: the MiniJinja environment, the capped writer a rendering writes into, and the
//! engine's errors put into words with the names it leaves out.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use minijinja::syntax::SyntaxConfig;
use minijinja::value::{Serde, Value};
use minijinja::{AutoEscape, Environment, Error, ErrorKind, UndefinedBehavior};
use serde_json::{Map, Value as Json};

use super::TemplateError;
use super::filters::{date_filter, money_filter};
use super::lint::check_callables;
use super::whitespace::tidy;

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
pub(super) fn render_capped(
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

pub(super) static ENV: LazyLock<Environment<'static>> = LazyLock::new(|| {
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

pub(super) fn vars_object(vars: &Json) -> Result<&Map<String, Json>, TemplateError> {
    match vars {
        Json::Object(map) => Ok(map),
        _ => Err(TemplateError::new(
            "template variables must be a JSON object",
        )),
    }
}

/// Words for an engine error, with the names the engine leaves out filled in from the template.
pub(super) fn describe(err: &Error, source: &str, given: &Map<String, Json>) -> TemplateError {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reminders::templates::check;
    use serde_json::json;

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
    fn syntax_error_has_a_line() {
        let err = render("Hello\n{{ name ", &json!({"name": "x"})).unwrap_err();
        assert!(err.message.starts_with("syntax error"), "{err}");
        assert!(err.message.contains("(line 2)"), "{err}");
        assert!(render("{% if x %}", &json!({"x": 1})).is_err());
    }

    #[test]
    fn vars_must_be_an_object() {
        assert!(render("x", &json!([1])).is_err());
        assert!(check("x", &json!("s")).is_err());
    }
}
