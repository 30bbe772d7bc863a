//! Feeds arbitrary bytes to what the API does with a request body before it stores anything:
//! JSON into the request types (`POST /v1/messages`, `/v1/messages/batch`, `/v1/reminders`,
//! `PATCH /v1/reminders/{id}`), then the checks and the planning they go through — numbers,
//! text splitting, a whole reminder plan built from its schedule, templates rendered, amounts,
//! currencies, locales, time zones, send windows. Any panic (or a hang: templates run with fuel)
//! is a bug: bad input must come back as a 4xx, never crash the daemon.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use smsgate::api::ApiConfig;
use smsgate::api::messages::{Batch, NewMessage, normalise_number};
use smsgate::reminders::plan::{self, Ctx, NewPlan, PlanPatch};
use smsgate::reminders::{Policy, templates, window};
use smsgate::sms::TextPlan;
use smsgate::store::Store;

fn store() -> &'static Store {
    static STORE: OnceLock<Store> = OnceLock::new();
    STORE.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("smsgate-fuzz-{}", std::process::id()));
        Store::open(&dir, 8).expect("a store for the fuzz run")
    })
}

fn message(m: &NewMessage) {
    let _ = normalise_number(&m.to, Some("US"));
    let _ = normalise_number(&m.to, None);
    let _ = TextPlan::new(&m.text, &[], 6);
}

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        // Any text as a template, an offset, a time, a zone, an amount, a currency, a locale.
        let vars = serde_json::json!({"name": "Ana", "amount": "12.50", "currency": "USD",
            "due_date": "2026-12-01", "invoice": "INV-1", "opt_out_hint": "STOP to end"});
        let _ = templates::check(s, &vars);
        let _ = window::parse_offset(s);
        let _ = window::parse_time(s);
        let _ = window::parse_timezone(s);
        let _ = templates::normalise_amount(s, "EUR");
        let _ = templates::check_currency(s);
        let _ = templates::check_locale(s);
    }
    let Ok(v) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    if let Ok(m) = serde_json::from_value::<NewMessage>(v.clone()) {
        message(&m);
    }
    if let Ok(b) = serde_json::from_value::<Batch>(v.clone()) {
        for m in b.messages.iter().take(50) {
            message(m);
        }
    }
    if let Ok(p) = serde_json::from_value::<NewPlan>(v.clone()) {
        let policy = Policy::default();
        let api = ApiConfig::default();
        let ctx = Ctx {
            policy: &policy,
            api: &api,
            store: store(),
            now: chrono::DateTime::from_timestamp(1_795_000_000, 0).unwrap_or_default(),
            caller: "fuzz",
        };
        let _ = plan::build(&ctx, &p);
    }
    let _ = serde_json::from_value::<PlanPatch>(v);
});
