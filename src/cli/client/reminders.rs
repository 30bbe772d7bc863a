//! `smsgate reminders`: make, list, change, cancel, show and mark paid an invoice's reminder
//! plan.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::messages::{Reply, replies_table};
use super::paging::{Paging, print_list};
use super::parse::parse_pair;
use super::remote::{Answer, Failure, REQUEST_TIMEOUT, Remote, path_segment};
use super::show::{
    self, Cell, Table, fields, or_dash, out, print_raw, some_clean, some_time, status_colour,
    time_as_given_text,
};
use super::{run_remote, show_one, view};

/// Arguments of `smsgate reminders create`.
#[derive(Debug, Args)]
pub struct ReminderCreateArgs {
    /// Recipient: +E.164, or national digits with `[sms] default_region`.
    #[arg(long, value_name = "NUMBER", required_unless_present = "json_body")]
    pub to: Option<String>,
    /// The invoice reference (one plan per invoice).
    #[arg(long, required_unless_present = "json_body")]
    pub invoice: Option<String>,
    /// Amount due, a decimal such as 120.50.
    #[arg(long, required_unless_present = "json_body")]
    pub amount: Option<String>,
    /// ISO 4217 currency code, e.g. USD.
    #[arg(long, required_unless_present = "json_body")]
    pub currency: Option<String>,
    /// Due date in the recipient's calendar.
    #[arg(long, value_name = "YYYY-MM-DD", required_unless_present = "json_body")]
    pub due_date: Option<String>,
    /// The recipient's IANA time zone, e.g. America/New_York (default `[reminders] timezone`).
    #[arg(long, value_name = "TZ")]
    pub timezone: Option<String>,
    /// Locale of money and dates in the texts, e.g. en-US (default `[reminders] locale`).
    #[arg(long)]
    pub locale: Option<String>,
    /// The customer's name (`{{ name }}`).
    #[arg(long)]
    pub name: Option<String>,
    /// A payment link (`{{ pay_url }}`).
    #[arg(long, value_name = "URL")]
    pub pay_url: Option<String>,
    /// Unit (`{{ unit }}`).
    #[arg(long)]
    pub unit: Option<String>,
    /// Property (`{{ property }}`).
    #[arg(long)]
    pub property: Option<String>,
    /// Another template variable; repeat for each.
    #[arg(long = "var", value_name = "KEY=VALUE", value_parser = parse_pair)]
    pub vars: Vec<(String, String)>,
    /// The request body (JSON) from a file, or `-` for standard input: for a `schedule`, a
    /// `send_window`, `metadata` and anything else. The options above override its fields.
    #[arg(long, value_name = "FILE")]
    pub json_body: Option<String>,
    /// The daemon and the output.
    #[command(flatten)]
    pub remote: Remote,
}

/// A reminder plan's id or its invoice reference.
#[derive(Debug, Args)]
pub struct PlanId {
    /// The plan's id or its invoice reference.
    #[arg(value_name = "ID_OR_INVOICE")]
    pub id: String,
    /// The daemon and the output.
    #[command(flatten)]
    pub remote: Remote,
}

/// Arguments of `smsgate reminders patch`.
#[derive(Debug, Args)]
pub struct ReminderPatchArgs {
    /// The plan and daemon.
    #[command(flatten)]
    pub plan: PlanId,
    /// New due date.
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub due_date: Option<String>,
    /// New amount due.
    #[arg(long)]
    pub amount: Option<String>,
    /// New currency (ISO 4217).
    #[arg(long)]
    pub currency: Option<String>,
    /// New customer name.
    #[arg(long)]
    pub name: Option<String>,
    /// New payment link.
    #[arg(long, value_name = "URL")]
    pub pay_url: Option<String>,
    /// A template variable to set, e.g. `desk=Bo`; repeat for each.
    #[arg(long = "var", value_name = "KEY=VALUE", value_parser = parse_pair)]
    pub vars: Vec<(String, String)>,
}

/// The `PATCH /v1/reminders/{id}` body of `reminders patch`; `None` when nothing is changed.
fn patch_body(a: &ReminderPatchArgs) -> Option<Value> {
    let mut body = Map::new();
    for (k, v) in [
        ("due_date", &a.due_date),
        ("amount", &a.amount),
        ("currency", &a.currency),
        ("name", &a.name),
        ("pay_url", &a.pay_url),
    ] {
        if let Some(v) = v {
            body.insert(k.into(), json!(v));
        }
    }
    if !a.vars.is_empty() {
        let vars: Map<String, Value> = a.vars.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        body.insert("vars".into(), Value::Object(vars));
    }
    (!body.is_empty()).then_some(Value::Object(body))
}

/// `smsgate reminders …`
#[derive(Debug, Subcommand)]
pub enum RemindersCommand {
    /// Make an invoice's reminder plan (`POST /v1/reminders`).
    #[command(long_about = concat!("Make an invoice's reminder plan (`POST /v1/reminders`): its texts are rendered and scheduled at once, and every step is shown. The same request again shows the plan made the first time; other values for the same invoice are refused (exit 1).\n\n", about_remote!()))]
    Create(Box<ReminderCreateArgs>),
    /// List plans, newest first (`GET /v1/reminders`).
    #[command(long_about = concat!("List reminder plans, newest first (`GET /v1/reminders`).\n\n", about_remote!()))]
    List {
        /// Only plans to this number (any form).
        #[arg(long, value_name = "NUMBER")]
        to: Option<String>,
        /// Only plans in this status (active, paid, cancelled).
        #[arg(long, value_name = "STATUS")]
        status: Option<String>,
        /// Paging.
        #[command(flatten)]
        paging: Paging,
        /// The daemon and the output.
        #[command(flatten)]
        remote: Remote,
    },
    /// Change a plan: its unsent steps are made again, sent ones kept (`PATCH /v1/reminders/{id}`).
    #[command(long_about = concat!("Change a plan (`PATCH /v1/reminders/{id}`): a new due date, amount, name, payment link or variables; the steps not sent yet are made again with them, the sent ones are kept.\n\n", about_remote!()))]
    Patch(Box<ReminderPatchArgs>),
    /// Cancel a plan: its unsent steps are cancelled (`DELETE /v1/reminders/{id}`).
    #[command(long_about = concat!("Cancel a plan (`DELETE /v1/reminders/{id}`): the steps not sent yet are cancelled; nothing is sent to the customer.\n\n", about_remote!()))]
    Delete(PlanId),
    /// Show a plan: every step with its status, send time and text (`GET /v1/reminders/{id}`).
    #[command(long_about = concat!("Show a plan: every step with its template, status, send time and text, and the customer's replies (`GET /v1/reminders/{id}`).\n\n", about_remote!()))]
    Show(PlanId),
    /// Mark the invoice paid: pending steps are cancelled and the confirmation is sent once
    /// (`POST /v1/reminders/{id}/paid`).
    #[command(long_about = concat!("Mark the invoice paid (`POST /v1/reminders/{id}/paid`): pending steps are cancelled and the `payment_received` text is sent once. Again on a paid plan: nothing changes.\n\n", about_remote!()))]
    Paid {
        /// The plan and daemon.
        #[command(flatten)]
        plan: PlanId,
        /// The amount received (`{{ amount_paid }}`; default the amount due).
        #[arg(long, value_name = "AMOUNT")]
        amount_paid: Option<String>,
        /// Send no confirmation text.
        #[arg(long)]
        no_confirm: bool,
    },
}

/// A JSON object from a file or standard input (`-`).
fn read_json_object(from: &str) -> Result<Map<String, Value>, Failure> {
    let (name, text) = if from == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).map_err(|e| {
            Failure::Input(format!(
                "cannot read the JSON body from standard input: {e}"
            ))
        })?;
        ("standard input".to_string(), s)
    } else {
        let p = PathBuf::from(from);
        let s = std::fs::read_to_string(&p)
            .map_err(|e| Failure::Input(format!("--json-body {}: {e}", p.display())))?;
        (p.display().to_string(), s)
    };
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(Failure::Input(format!(
            "--json-body {name}: must be a JSON object"
        ))),
        Err(e) => Err(Failure::Input(format!("--json-body {name}: not JSON: {e}"))),
    }
}

/// The body of `POST /v1/reminders`: `--json-body`, then the options over it.
fn plan_body(a: &ReminderCreateArgs) -> Result<Value, Failure> {
    let mut body = match &a.json_body {
        Some(f) => read_json_object(f)?,
        None => Map::new(),
    };
    for (k, v) in [
        ("to", &a.to),
        ("invoice", &a.invoice),
        ("amount", &a.amount),
        ("currency", &a.currency),
        ("due_date", &a.due_date),
        ("timezone", &a.timezone),
        ("locale", &a.locale),
        ("name", &a.name),
        ("pay_url", &a.pay_url),
        ("unit", &a.unit),
        ("property", &a.property),
    ] {
        if let Some(v) = v {
            body.insert(k.into(), json!(v));
        }
    }
    if !a.vars.is_empty() {
        let vars = body
            .entry("vars")
            .or_insert_with(|| Value::Object(Map::new()));
        let Some(vars) = vars.as_object_mut() else {
            return Err(Failure::Input(
                "--var: the JSON body's `vars` is not an object".into(),
            ));
        };
        for (k, v) in &a.vars {
            vars.insert(k.clone(), json!(v));
        }
    }
    Ok(Value::Object(body))
}

/// A plan as `GET /v1/reminders/{id}` (and each change to it) answers, with what is printed
/// of it.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PlanShown {
    id: Option<String>,
    invoice: Option<String>,
    status: Option<String>,
    to: Option<String>,
    amount: Option<String>,
    currency: Option<String>,
    due_date: Option<String>,
    timezone: Option<String>,
    locale: Option<String>,
    paid_at: Option<String>,
    created_at: Option<String>,
    steps: Option<Vec<Step>>,
    replies: Option<Vec<Reply>>,
}

/// One text of a plan.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Step {
    index: Option<u64>,
    template: Option<String>,
    status: Option<String>,
    status_reason: Option<String>,
    /// In the recipient's time zone.
    send_at: Option<String>,
    text: Option<String>,
}

fn render_plan(p: &PlanShown, colour: bool) -> String {
    let status = or_dash(p.status.as_deref());
    let mut text = fields(
        &[
            ("plan", Some(or_dash(p.id.as_deref()))),
            ("invoice", some_clean(p.invoice.as_deref())),
            ("status", Some(status.clone())),
            ("to", Some(or_dash(p.to.as_deref()))),
            (
                "amount",
                Some(show::clean(&format!(
                    "{} {}",
                    or_dash(p.amount.as_deref()),
                    or_dash(p.currency.as_deref())
                ))),
            ),
            ("due date", Some(or_dash(p.due_date.as_deref()))),
            ("time zone", some_clean(p.timezone.as_deref())),
            ("locale", some_clean(p.locale.as_deref())),
            ("paid", some_time(p.paid_at.as_deref())),
            ("created", some_time(p.created_at.as_deref())),
        ],
        |k| (k == "status").then(|| status_colour(&status)).flatten(),
        colour,
    );
    let mut t = Table::new(&["STEP", "TEMPLATE", "STATUS", "SEND AT", "TEXT"]);
    for st in p.steps.as_deref().unwrap_or_default() {
        t.row(vec![
            Cell::new(or_dash(st.index)),
            Cell::new(or_dash(st.template.as_deref())),
            Cell::status(&or_dash(st.status.as_deref()), st.status_reason.as_deref()),
            Cell::new(time_as_given_text(st.send_at.as_deref())),
            Cell::new(st.text.as_deref().unwrap_or("-")),
        ]);
    }
    text.push('\n');
    text.push_str(&t.render(colour));
    let replies = p.replies.as_deref().unwrap_or_default();
    if !replies.is_empty() {
        text.push_str("\nReplies\n");
        text.push_str(&replies_table(replies, true).render(colour));
    }
    text
}

/// A plan, with what `reminders list` prints of it.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PlanRow {
    id: Option<String>,
    invoice: Option<String>,
    to: Option<String>,
    status: Option<String>,
    due_date: Option<String>,
    amount: Option<String>,
    currency: Option<String>,
}

/// A page of `GET /v1/reminders`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PlanPage {
    reminders: Option<Vec<PlanRow>>,
}

/// The table of `reminders list`.
fn plans_table(list: &[PlanRow]) -> Table {
    let mut t = Table::new(&["ID", "INVOICE", "TO", "STATUS", "DUE", "AMOUNT"]);
    for p in list {
        t.row(vec![
            Cell::new(or_dash(p.id.as_deref())),
            Cell::new(show::clean(&or_dash(p.invoice.as_deref()))),
            Cell::new(or_dash(p.to.as_deref())),
            Cell::status(&or_dash(p.status.as_deref()), None),
            Cell::new(or_dash(p.due_date.as_deref())),
            Cell::new(format!(
                "{} {}",
                or_dash(p.amount.as_deref()),
                or_dash(p.currency.as_deref())
            )),
        ]);
    }
    t
}

/// `smsgate reminders …`
pub fn reminders(cmd: RemindersCommand) -> ExitCode {
    match cmd {
        RemindersCommand::Create(a) => {
            let remote = a.remote.clone();
            run_remote(&remote, Some(REQUEST_TIMEOUT), |api, o| async move {
                let body = plan_body(&a)?;
                let Answer {
                    status: code,
                    json: p,
                    raw,
                } = api.post("/v1/reminders", Some(&body)).await?;
                if o.json {
                    print_raw(&raw);
                } else {
                    let p: PlanShown = view(&api, &p)?;
                    if code == 200 {
                        eprintln!(
                            "invoice {} already had this plan (the same request): nothing new was made",
                            show::clean(&or_dash(p.invoice.as_deref()))
                        );
                    }
                    out(&render_plan(&p, o.colour));
                }
                Ok(ExitCode::SUCCESS)
            })
        }
        RemindersCommand::List {
            to,
            status,
            paging,
            remote,
        } => run_remote(&remote, Some(REQUEST_TIMEOUT), |api, o| async move {
            let mut q = Vec::new();
            for (k, v) in [("to", &to), ("status", &status)] {
                if let Some(v) = v {
                    q.push((k, v.clone()));
                }
            }
            print_list(
                &api,
                o,
                "/v1/reminders",
                q,
                "reminders",
                &paging,
                "no reminder plans",
                |list: PlanPage| plans_table(&list.reminders.unwrap_or_default()),
            )
            .await
        }),
        RemindersCommand::Patch(a) => {
            let Some(body) = patch_body(&a) else {
                eprintln!(
                    "error: nothing to change: give --due-date, --amount, --currency, --name, --pay-url or --var"
                );
                return ExitCode::from(crate::cli::EXIT_BAD_INPUT);
            };
            let remote = a.plan.remote.clone();
            let path = format!("/v1/reminders/{}", path_segment(&a.plan.id));
            run_remote(&remote, Some(REQUEST_TIMEOUT), |api, o| async move {
                let p = api
                    .call(Method::PATCH, &path, &[], Some(&body), &[])
                    .await?;
                if o.json {
                    print_raw(&p.raw);
                } else {
                    out(&render_plan(&view(&api, &p.json)?, o.colour));
                }
                Ok(ExitCode::SUCCESS)
            })
        }
        RemindersCommand::Delete(a) => {
            run_remote(&a.remote, Some(REQUEST_TIMEOUT), |api, o| async move {
                let p = api
                    .call(
                        Method::DELETE,
                        &format!("/v1/reminders/{}", path_segment(&a.id)),
                        &[],
                        None,
                        &[],
                    )
                    .await?;
                if o.json {
                    print_raw(&p.raw);
                } else {
                    out(&render_plan(&view(&api, &p.json)?, o.colour));
                }
                Ok(ExitCode::SUCCESS)
            })
        }
        RemindersCommand::Show(a) => show_one(
            &a.remote,
            format!("/v1/reminders/{}", path_segment(&a.id)),
            render_plan,
        ),
        RemindersCommand::Paid {
            plan,
            amount_paid,
            no_confirm,
        } => run_remote(&plan.remote, Some(REQUEST_TIMEOUT), |api, o| async move {
            let mut body = Map::new();
            if let Some(a) = amount_paid {
                body.insert("amount_paid".into(), json!(a));
            }
            if no_confirm {
                body.insert("confirm".into(), json!(false));
            }
            let body = (!body.is_empty()).then_some(Value::Object(body));
            let p = api
                .post(
                    &format!("/v1/reminders/{}/paid", path_segment(&plan.id)),
                    body.as_ref(),
                )
                .await?;
            if o.json {
                print_raw(&p.raw);
            } else {
                out(&render_plan(&view(&api, &p.json)?, o.colour));
            }
            Ok(ExitCode::SUCCESS)
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::client::show::s;

    #[test]
    fn the_typed_table_prints_what_the_json_did() {
        let page = json!({"reminders": [
            {"id": "01KAR6V1T4Y1Q0ZBC5Z2W3M6XD", "invoice": "INV-1042\u{1b}[2J", "to": "+12025550123",
             "status": "active", "due_date": "2026-12-06", "amount": "120.50", "currency": "USD"},
            {"id": "01KAR6V1T4Y1Q0ZBC5Z2W3M6XE", "invoice": "INV-1043", "to": "+12025550124",
             "status": "paid", "due_date": "2026-12-07", "amount": "9.00", "currency": "EUR",
             "paid_at": "2026-12-06T10:00:00Z"},
            {"id": "01KAR6V1T4Y1Q0ZBC5Z2W3M6XF"}
        ], "next_cursor": null});
        // What the list printed when it read the page as JSON values.
        let mut was = Table::new(&["ID", "INVOICE", "TO", "STATUS", "DUE", "AMOUNT"]);
        for p in page["reminders"].as_array().into_iter().flatten() {
            was.row(vec![
                Cell::new(s(&p["id"])),
                Cell::new(show::clean(&s(&p["invoice"]))),
                Cell::new(s(&p["to"])),
                Cell::status(&s(&p["status"]), None),
                Cell::new(s(&p["due_date"])),
                Cell::new(format!("{} {}", s(&p["amount"]), s(&p["currency"]))),
            ]);
        }
        let list: PlanPage = serde_json::from_value(page).unwrap();
        let now = plans_table(&list.reminders.unwrap());
        assert_eq!(now.render(false), was.render(false));
        assert_eq!(now.render(true), was.render(true));
    }

    #[test]
    fn options_override_the_json_body() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("plan.json");
        std::fs::write(
            &f,
            r#"{"to": "+1", "invoice": "INV-1", "vars": {"a": "1"}, "schedule": [{"offset": "0d", "template": "due_today"}]}"#,
        )
        .unwrap();
        let a = ReminderCreateArgs {
            to: Some("+12025550123".into()),
            invoice: None,
            amount: Some("10.00".into()),
            currency: None,
            due_date: None,
            timezone: None,
            locale: None,
            name: None,
            pay_url: None,
            unit: None,
            property: None,
            vars: vec![("b".into(), "2".into())],
            json_body: Some(f.display().to_string()),
            remote: Remote {
                url: None,
                token: None,
                config: None,
                json: false,
            },
        };
        let b = plan_body(&a).unwrap();
        assert_eq!(b["to"], "+12025550123");
        assert_eq!(b["invoice"], "INV-1");
        assert_eq!(b["amount"], "10.00");
        assert_eq!(b["vars"], json!({"a": "1", "b": "2"}));
        assert_eq!(b["schedule"][0]["template"], "due_today");
    }
}
