//! Schemas of the values the API checks the same way wherever they appear (phone numbers, time
//! zones, currencies, local times, durations, reply options, ids), so that the OpenAPI document
//! states each rule once and a client generator or a fuzzer knows what the server accepts.
//!
//! Each is a name in `components/schemas` that request fields and parameters refer to with
//! `value_type`. A rule JSON Schema cannot state (a number valid in its country's numbering
//! plan, a window that opens before it closes) is said in the description.

use std::borrow::Cow;

use iso_currency::IntoEnumIterator;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::{PartialSchema, ToSchema};

/// What a phone number may look like: an optional `+`, then digits, spaces, dots, dashes and
/// parentheses (the server ignores the separators), at least one digit.
pub const PHONE_PATTERN: &str = r"^\+?[0-9() .-]*[0-9][0-9() .-]*$";

/// A ULID as this API writes ids and cursors: 26 characters of Crockford's base 32, the first
/// at most `7` (128 bits).
pub const ULID_PATTERN: &str = "^[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}$";

/// A humantime duration (`6h`, `90min`, `1h 30m`): whole numbers, each with a unit.
const DURATION_PATTERN: &str = "^ *([0-9]{1,9} *(nanos|nsec|ns|usec|us|millis|msec|ms|seconds|second|secs|sec|s|minutes|minute|mins|min|m|hours|hour|hrs|hr|h|days|day|d|weeks|week|wks|wk|w|months|month|M|years|year|yrs|yr|y) *)+$";

/// The longest callback URL the gateway keeps (`webhook::MAX_URL_LEN`, checked by a test).
const MAX_URL_LEN: usize = 2048;

/// A local time of day, `HH:MM` (or `HH:MM:SS`).
const LOCAL_TIME_PATTERN: &str = "^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$";

/// A schema-only type: its name in `components/schemas` and the schema built by `$build`.
macro_rules! named_schema {
    ($(#[$doc:meta])* $ty:ident, $build:expr) => {
        $(#[$doc])*
        pub struct $ty;

        impl PartialSchema for $ty {
            fn schema() -> RefOr<Schema> {
                $build.into()
            }
        }

        impl ToSchema for $ty {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($ty))
            }
        }
    };
}

fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

named_schema!(
    /// A phone number: E.164 (`+12025550123`), or, where `[sms] default_region` is set, a national
    /// number of that region.
    PhoneNumberInput,
    string()
        .description(Some(
            "A phone number: E.164 (`+12025550123`), or, only where the gateway's \
             `[sms] default_region` is set, a national number of that region \
             (`020 7946 0018`). Spaces, dots, dashes and parentheses are ignored. The \
             number must also be a valid number of its country's numbering plan.",
        ))
        .format(Some(SchemaFormat::Custom("phone".into())))
        .pattern(Some(PHONE_PATTERN))
        .min_length(Some(1))
        .max_length(Some(crate::numbers::MAX_NUMBER_INPUT))
        .examples(["+12025550123"])
);

named_schema!(
    /// An IANA time zone name.
    TimeZone,
    string()
        .description(Some(
            "An IANA time zone name (`America/New_York`), spelled as in the tz database.",
        ))
        .enum_values(Some(chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name())))
        .examples(["America/New_York"])
);

named_schema!(
    /// An ISO 4217 currency that has a minor unit.
    Currency,
    {
        let mut codes: Vec<&'static str> = iso_currency::Currency::iter()
            .filter(|c| c.exponent().is_some())
            .map(|c| c.code())
            .collect();
        codes.sort_unstable();
        string()
            .description(Some(
                "An ISO 4217 currency code (`USD`) of a currency with a minor unit (metals, \
                 funds and testing codes cannot be billed in). Lower case is accepted too.",
            ))
            .enum_values(Some(codes))
            .examples(["USD"])
    }
);

named_schema!(
    /// A local time of day.
    LocalTime,
    string()
        .description(Some(
            "A local time of day, `HH:MM` (24 hours; `HH:MM:SS` also).",
        ))
        .pattern(Some(LOCAL_TIME_PATTERN))
        .examples(["09:00"])
);

named_schema!(
    /// A duration in words.
    DurationText,
    string()
        .description(Some(
            "A duration: whole numbers with units, `6h`, `90min`, `1h 30m` (units `ms`, `s`, \
             `min`/`m`, `h`, `d`, `w`, `M` for months, `y`, and their long forms).",
        ))
        .pattern(Some(DURATION_PATTERN))
        .max_length(Some(64))
        .examples(["6h"])
);

named_schema!(
    /// The reply choices a text offers.
    ReplyOptions,
    {
        let key = string()
            .min_length(Some(1))
            .max_length(Some(20))
            .pattern(Some("[0-9A-Za-z]"));
        let action = string()
            .min_length(Some(1))
            .max_length(Some(64))
            .pattern(Some(r"\S"));
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some(
                "Reply choices the text offers, answer → action, e.g. \
                 `{\"1\": \"call_me\", \"2\": \"pay_minimum\"}`: 1 to 10 entries; keys of 1 to 20 \
                 characters with a letter or digit, no two the same once case, spaces and \
                 punctuation around them are ignored; actions of 1 to 64 characters, not blank.",
            ))
            .property_names(Some(key))
            .additional_properties(Some(action))
            .min_properties(Some(1))
            .max_properties(Some(10))
            .examples([serde_json::json!({"1": "call_me", "2": "pay_minimum"})])
    }
);

named_schema!(
    /// A page cursor that is a message or plan id.
    IdCursor,
    string()
        .description(Some(
            "The previous page's `next_cursor` (an id, a ULID of 26 characters).",
        ))
        .pattern(Some(ULID_PATTERN))
);

named_schema!(
    /// An `http` or `https` URL the gateway calls.
    CallbackUrl,
    string()
        .description(Some(
            "An `http` or `https` URL the gateway calls. Refused: URLs at the gateway's own \
             API, and hosts `[outbound]` does not allow (loopback, link-local and cloud \
             metadata addresses always).",
        ))
        .format(Some(SchemaFormat::Custom("uri".into())))
        .pattern(Some("^[Hh][Tt][Tt][Pp][Ss]?://"))
        .max_length(Some(MAX_URL_LEN))
        .examples(["https://billing.example.com/sms-events"])
);

named_schema!(
    /// An amount of money written as a decimal string.
    AmountText,
    string()
        .description(Some(
            "A decimal amount, `120.50`: digits, and a point with at most as many decimals as \
             the currency has (2 for USD, 0 for JPY, 3 for BHD). Not negative.",
        ))
        .pattern(Some(r"^[0-9]{1,15}(\.[0-9]{1,4})?$"))
        .examples(["120.50"])
);

named_schema!(
    /// An amount of money written as a JSON number.
    AmountNumber,
    ObjectBuilder::new()
        .schema_type(Type::Number)
        .description(Some(
            "A decimal amount as a JSON number, `120.5`, with at most as many decimals as the \
             currency has. Not negative.",
        ))
        .minimum(Some(0))
        .examples([120.5])
);

named_schema!(
    /// A reminder step's offset from the due date.
    DayOffset,
    string()
        .description(Some(
            "Days from the due date, at most a year away: `-7d`, `0d`, `+3d`, weeks `-1w`; or \
             `now` (when the plan is made).",
        ))
        .pattern(Some(
            "^([Nn][Oo][Ww]|[+-]?([0-2]?[0-9]?[0-9]|3[0-5][0-9]|36[0-6])[dD]|[+-]?([0-4]?[0-9]|5[0-2])[wW])$"
        ))
        .examples(["-7d"])
);

named_schema!(
    /// A template name.
    TemplateName,
    string()
        .description(Some(
            "A template name: 1 to 64 characters, `a-z`, `0-9`, `_` and `-`, starting with a letter.",
        ))
        .pattern(Some("^[a-z][a-z0-9_-]{0,63}$"))
        .examples(["upcoming"])
);

named_schema!(
    /// A USSD code.
    UssdCode,
    string()
        .description(Some("A USSD code: 2 to 40 digits, `*`, `#` and `+`, such as `*100#`."))
        .pattern(Some("^[0-9*#+]{2,40}$"))
        .examples(["*100#"])
);

named_schema!(
    /// A locale.
    Locale,
    string()
        .description(Some(
            "A locale whose money and dates the gateway can write: a BCP 47 tag (`en-US`, \
             `de`, `sr-Latn`) or its glibc spelling (`de_DE.UTF-8`, `sr_RS@latin`). A language \
             without a region takes its most likely one (`fr` is `fr-FR`).",
        ))
        .pattern(Some(r"^[A-Za-z]{2,3}([_-][A-Za-z0-9]{2,8})*(\.[A-Za-z0-9-]+)?(@[A-Za-z]+)?$"))
        .examples(["en-US"])
);

/// The names a plan sets itself, which `vars` may not use (`reminders::plan::RESERVED_VARS`,
/// checked by a test).
const RESERVED_VARS: &str = "name, invoice, amount, currency, due_date, pay_url, unit, property, \
     locale, opt_out_hint, days_until_due, days_overdue, amount_paid, failure_reason";

named_schema!(
    /// More template variables of a plan.
    TemplateVars,
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some(format!(
            "More template variables: names of letters, digits and `_`, not starting with a \
             digit, other than the ones a plan sets itself ({RESERVED_VARS}); values strings, \
             numbers or booleans; at most 4 KiB as JSON."
        )))
        .property_names(Some(string().pattern(Some("^[A-Za-z_][A-Za-z0-9_]*$"))))
        .additional_properties(Some(ObjectBuilder::new().schema_type(
            utoipa::openapi::schema::SchemaType::from_iter([Type::String, Type::Number, Type::Boolean]),
        )))
);

#[cfg(test)]
mod tests {
    use super::*;

    fn enum_values(schema: RefOr<Schema>) -> Vec<String> {
        let v = serde_json::to_value(schema).unwrap();
        v["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect()
    }

    /// The limits the document states are the ones the server applies.
    #[test]
    fn stated_limits_are_the_enforced_ones() {
        assert_eq!(MAX_URL_LEN, crate::webhook::MAX_URL_LEN);
        assert_eq!(
            RESERVED_VARS.split(", ").collect::<Vec<_>>(),
            crate::reminders::plan::RESERVED_VARS
        );
        let zones = enum_values(TimeZone::schema());
        assert!(zones.len() > 400);
        for z in &zones {
            assert!(crate::reminders::window::timezone(z).is_ok(), "{z}");
        }
        let codes = enum_values(Currency::schema());
        assert!(codes.contains(&"USD".to_string()) && codes.contains(&"JPY".to_string()));
        assert!(
            !codes.contains(&"XAU".to_string()),
            "gold has no minor unit"
        );
        for c in &codes {
            assert!(
                crate::reminders::templates::check_currency(c).is_ok(),
                "{c}"
            );
        }
    }
}
