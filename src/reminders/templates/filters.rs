//! The `money` and `date` filters templates call, reading the currency and locale from the
//! render context.

use minijinja::value::{Kwargs, Value, ValueKind};
use minijinja::{Error, ErrorKind, State};
use pure_rust_locales::Locale;

use super::format::{
    MoneyStyle, currency, date_text, money_text, parse_amount, parse_date, resolve_locale,
};

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
pub(super) fn money_filter(
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
pub(super) fn date_filter(
    state: &State,
    value: Value,
    style: Option<String>,
) -> Result<String, Error> {
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
    use crate::reminders::templates::render;
    use serde_json::json;

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
}
