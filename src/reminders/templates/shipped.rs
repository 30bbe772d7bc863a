//! The shipped templates: their names, in the order of a dunning cycle, and their texts.

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reminders::templates::{check_name, render};
    use serde_json::{Value as Json, json};

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
}
