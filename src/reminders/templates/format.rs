//! Formatting money and dates for a locale: locale names resolved to glibc's data, ISO 4217
//! currencies and amounts, `Monetary::of` and the `locale_facts!` look-ups, and date orders.

use std::borrow::Cow;
use std::fmt::Write as _;

use chrono::NaiveDate;
use chrono::format::StrftimeItems;
use icu_locale::{LanguageIdentifier, LocaleExpander};
use iso_currency::{Currency, IntoEnumIterator};
use pure_rust_locales::{Locale, locale_match};
use rust_decimal::{Decimal, RoundingStrategy};

use super::whitespace::{collapse_spaces, plain_spaces};
use crate::sms::Charset;

// ---------------------------------------------------------------------------------------------
// Errors

/// A locale name that does not resolve to glibc's data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocaleError {
    /// The name is empty.
    #[error("no locale given")]
    Missing,
    /// Not a language and region glibc has data for.
    #[error("unknown locale {0:?}")]
    Unknown(String),
}

/// A currency or an amount that cannot be billed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// Not an ISO 4217 code.
    #[error("unknown currency {0:?}")]
    UnknownCurrency(String),
    /// An ISO 4217 code with no minor unit (a metal, a fund, a testing code).
    #[error(
        "{0} has no minor unit in ISO 4217 (a metal, fund or testing code), it cannot be billed in"
    )]
    NoMinorUnit(String),
    /// Not plain decimal text.
    #[error("{0:?} is not an amount (write it as 1234.50)")]
    NotAnAmount(String),
    /// Negative where only zero or more is accepted.
    #[error("{0:?} is negative")]
    Negative(String),
    /// More digits than a decimal holds.
    #[error("{0:?} is too large or too precise")]
    OutOfRange(String),
    /// More decimals than the currency's minor unit.
    #[error("{amount:?} has more decimals than {currency} allows ({digits})")]
    TooManyDecimals {
        /// The amount as given.
        amount: String,
        /// The currency's code.
        currency: String,
        /// Its minor digits.
        digits: u32,
    },
}

/// A date, or a date style, that cannot be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DateError {
    /// Not `YYYY-MM-DD`, or no such day.
    #[error("{0:?} is not a date (write it as YYYY-MM-DD)")]
    NotADate(String),
    /// The style is empty.
    #[error("no date style given")]
    NoStyle,
    /// Not a strftime pattern.
    #[error("{0:?} is not a date pattern")]
    BadPattern(String),
    /// A pattern asking for a time of day or another thing a date does not have.
    #[error("{0:?} asks for more than a date has")]
    MoreThanADate(String),
}

/// Why an amount or a date cannot be formatted for a locale.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// The locale.
    #[error(transparent)]
    Locale(#[from] LocaleError),
    /// The amount or its currency.
    #[error(transparent)]
    Money(#[from] MoneyError),
    /// The date or its style.
    #[error(transparent)]
    Date(#[from] DateError),
}

// ---------------------------------------------------------------------------------------------
// Locales

/// A locale name resolved to glibc's data.
#[derive(Debug, Clone)]
pub(super) struct ResolvedLocale {
    /// BCP 47 language and region (`fr-FR`), with glibc's modifier when one was asked for and
    /// exists (`sr-RS@latin`): what `check_locale` returns.
    name: String,
    pub(super) data: Locale,
}

/// Checks a locale name (`en-US`, `en_GB`, `fr-FR`, `de`, …) and returns it in the form the
/// formatters accept.
pub fn check_locale(locale: &str) -> Result<String, LocaleError> {
    resolve_locale(locale).map(|l| l.name)
}

pub(super) fn resolve_locale(input: &str) -> Result<ResolvedLocale, LocaleError> {
    let unknown = || LocaleError::Unknown(input.to_owned());
    let raw = input.trim();
    if raw.is_empty() {
        return Err(LocaleError::Missing);
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
pub fn check_currency(code: &str) -> Result<String, MoneyError> {
    currency(code).map(|c| c.code().to_owned())
}

pub(super) fn currency(code: &str) -> Result<Currency, MoneyError> {
    let upper = code.trim().to_ascii_uppercase();
    let found =
        Currency::from_code(&upper).ok_or_else(|| MoneyError::UnknownCurrency(code.to_owned()))?;
    if found.exponent().is_none() {
        return Err(MoneyError::NoMinorUnit(upper));
    }
    Ok(found)
}

fn minor_digits(currency: Currency) -> u32 {
    currency.exponent().map_or(0, u32::from)
}

/// Parses a plain decimal (`120`, `120.5`, `-3.10`): digits, at most one point with digits after
/// it, and a leading minus only when `negative_ok`.
pub(super) fn parse_amount(amount: &str, negative_ok: bool) -> Result<Decimal, MoneyError> {
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
        return Err(MoneyError::NotAnAmount(amount.to_owned()));
    }
    if negative && !negative_ok {
        return Err(MoneyError::Negative(amount.to_owned()));
    }
    Decimal::from_str_exact(text).map_err(|_| MoneyError::OutOfRange(amount.to_owned()))
}

/// Parses an amount given as a decimal string ("120.5", "120.50", "1200") and returns it
/// normalised to the currency's minor digits ("120.50"); negative, non-numeric, or too many
/// decimals for the currency is an error.
pub fn normalise_amount(amount: &str, currency_code: &str) -> Result<String, MoneyError> {
    let currency = currency(currency_code)?;
    let value = parse_amount(amount, false)?;
    let digits = minor_digits(currency);
    if value.normalize().scale() > digits {
        return Err(MoneyError::TooManyDecimals {
            amount: amount.to_owned(),
            currency: currency.code().to_owned(),
            digits,
        });
    }
    let mut value = value;
    value.rescale(digits);
    Ok(value.to_string())
}

/// Formats an amount of money for a locale: `format_money("1234.5", "USD", "en-US") ==
/// "$1,234.50"`.
pub fn format_money(
    amount: &str,
    currency_code: &str,
    locale: &str,
) -> Result<String, FormatError> {
    let value = parse_amount(amount, true)?;
    let currency = currency(currency_code)?;
    let locale = resolve_locale(locale)?;
    Ok(money_text(value, currency, locale.data, MoneyStyle::Symbol))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum MoneyStyle {
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
pub(super) fn money_text(
    amount: Decimal,
    currency: Currency,
    locale: Locale,
    style: MoneyStyle,
) -> String {
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
pub fn format_date(date: &str, style: &str, locale: &str) -> Result<String, FormatError> {
    let day = parse_date(date)?;
    let locale = resolve_locale(locale)?;
    Ok(date_text(day, style, locale.data)?)
}

pub(super) fn parse_date(date: &str) -> Result<NaiveDate, DateError> {
    let text = date.trim();
    let shaped = text.len() == 10
        && text.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            _ => b.is_ascii_digit(),
        });
    let parsed = shaped
        .then(|| NaiveDate::parse_from_str(text, "%Y-%m-%d").ok())
        .flatten();
    parsed.ok_or_else(|| DateError::NotADate(date.to_owned()))
}

pub(super) fn date_text(day: NaiveDate, style: &str, locale: Locale) -> Result<String, DateError> {
    let order = DateOrder::of(locale);
    let pattern: Cow<'_, str> = match style {
        "short" if order.day_before_month => "%-d %b".into(),
        "short" => "%b %-d".into(),
        "numeric" => order.numeric.into(),
        "long" if order.year_first && !order.day_before_month => "%Y %B %-d".into(),
        "long" if order.day_before_month => "%-d %B %Y".into(),
        "long" => "%B %-d, %Y".into(),
        "" => return Err(DateError::NoStyle),
        pattern => pattern.into(),
    };
    let items = StrftimeItems::new_with_locale(&pattern, locale)
        .parse()
        .map_err(|_| DateError::BadPattern(pattern.to_string()))?;
    let mut text = String::new();
    write!(
        text,
        "{}",
        day.format_localized_with_items(items.iter(), locale)
    )
    .map_err(|_| DateError::MoreThanADate(pattern.to_string()))?;
    Ok(collapse_spaces(&text))
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(
            format_date("2026-12-01", "%H:%M", "en-US"),
            Err(FormatError::Date(DateError::MoreThanADate("%H:%M".into())))
        );
        assert_eq!(
            format_date("2026-12-01", "", "en-US"),
            Err(FormatError::Date(DateError::NoStyle))
        );
        assert!(format_date("2026-12-01", "short", "xx-YY").is_err());
    }

    #[test]
    fn normalise_amounts() {
        assert_eq!(normalise_amount("120.5", "USD").unwrap(), "120.50");
        assert_eq!(normalise_amount("120.50", "usd").unwrap(), "120.50");
        assert_eq!(normalise_amount("1200", "USD").unwrap(), "1200.00");
        assert_eq!(normalise_amount("1.230", "USD").unwrap(), "1.23");
        assert_eq!(normalise_amount("1200", "JPY").unwrap(), "1200");
        assert_eq!(normalise_amount("1.5", "KWD").unwrap(), "1.500");
        assert_eq!(
            normalise_amount("-1", "USD"),
            Err(MoneyError::Negative("-1".into()))
        );
        assert!(normalise_amount("abc", "USD").is_err());
        let e = normalise_amount("1.234", "USD").unwrap_err();
        assert!(
            matches!(e, MoneyError::TooManyDecimals { digits: 2, .. }),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            "\"1.234\" has more decimals than USD allows (2)"
        );
        assert!(normalise_amount("1.5", "JPY").is_err());
        assert!(normalise_amount("", "USD").is_err());
        assert!(normalise_amount(".5", "USD").is_err());
        assert!(normalise_amount("1,5", "USD").is_err());
        assert_eq!(
            normalise_amount("1", "XAU"),
            Err(MoneyError::NoMinorUnit("XAU".into()))
        );
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
        assert_eq!(err, LocaleError::Unknown("xx-YY".into()));
        assert_eq!(err.to_string(), "unknown locale \"xx-YY\"");
        assert_eq!(check_locale(""), Err(LocaleError::Missing));
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
