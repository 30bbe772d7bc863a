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
//!
//! One noun per file: `shipped.rs` (the shipped texts), `render.rs` (the engine, the capped
//! writer, errors in words), `lint.rs` (a template checked when it is saved), `filters.rs` (the
//! `money` and `date` filters), `format.rs` (money and dates for a locale, behind the filters)
//! and `whitespace.rs` (the tidying of what a rendering gives).

mod filters;
mod format;
mod lint;
mod render;
mod shipped;
mod whitespace;

pub use format::{
    DateError, FormatError, LocaleError, MoneyError, check_currency, check_locale, format_date,
    format_money, normalise_amount,
};
pub use lint::check;
pub use render::{MAX_RENDERED, render};
pub use shipped::{DEFAULT_NAMES, default_template};

/// A template name that is not 1–64 characters of a-z, 0-9, `_` and `-` starting with a letter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateNameError {
    /// Empty, or longer than 64 characters.
    #[error("a template name has 1 to 64 characters, {name:?} has {len}")]
    Length {
        /// The name.
        name: String,
        /// Its length in characters.
        len: usize,
    },
    /// A character outside a-z, 0-9, `_` and `-`.
    #[error("template name {name:?} has {found:?}: only a-z, 0-9, _ and - are allowed")]
    Character {
        /// The name.
        name: String,
        /// The first such character.
        found: char,
    },
    /// Starts with something other than a letter a-z.
    #[error("template name {0:?} must start with a letter a-z")]
    Start(String),
}

/// Checks a template name: 1–64 characters of a-z, 0-9, `_` and `-`, starting with a letter.
pub fn check_name(name: &str) -> Result<(), TemplateNameError> {
    let len = name.chars().count();
    if !(1..=64).contains(&len) {
        return Err(TemplateNameError::Length {
            name: name.to_owned(),
            len,
        });
    }
    if let Some(found) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-'))
    {
        return Err(TemplateNameError::Character {
            name: name.to_owned(),
            found,
        });
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err(TemplateNameError::Start(name.to_owned()));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_names() {
        for good in ["a", "past_due", "x-1", &"a".repeat(64)] {
            assert_eq!(check_name(good), Ok(()), "{good}");
        }
        for bad in ["", "1a", "_a", "A", "pay due", "naïve", &"a".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        assert!(matches!(
            check_name("pay due"),
            Err(TemplateNameError::Character { found: ' ', .. })
        ));
        assert_eq!(check_name("1a"), Err(TemplateNameError::Start("1a".into())));
        assert_eq!(
            check_name("").map_err(|e| e.to_string()),
            Err("a template name has 1 to 64 characters, \"\" has 0".into())
        );
    }
}
