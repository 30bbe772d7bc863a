//! `smsgate optout`: add, remove and list the numbers that get no messages.

use std::process::ExitCode;

use clap::Subcommand;
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use super::paging::{Paging, print_list};
use super::remote::{REQUEST_TIMEOUT, Remote, path_segment};
use super::show::{self, Cell, Table, or_dash, out, print_raw, time_text};
use super::{run_remote, view};

/// `smsgate optout …`
#[derive(Debug, Subcommand)]
pub enum OptoutCommand {
    /// Opt a number out: it gets no messages, its waiting ones are cancelled; nothing is sent to
    /// it (`POST /v1/opt-outs`).
    #[command(long_about = concat!("Opt a number out (`POST /v1/opt-outs`): it gets no messages and its waiting ones are cancelled. Nothing is sent to it.\n\n", about_remote!()))]
    Add {
        /// The number (any form).
        #[arg(value_name = "NUMBER")]
        number: String,
        /// Why, for the record.
        #[arg(long)]
        note: Option<String>,
        /// The daemon and the output.
        #[command(flatten)]
        remote: Remote,
    },
    /// Let a number get messages again; nothing is sent to it (`DELETE /v1/opt-outs/{number}`).
    #[command(long_about = concat!("Let a number get messages again (`DELETE /v1/opt-outs/{number}`). Nothing is sent to it. Exit 3 when it was not opted out.\n\n", about_remote!()))]
    Remove {
        /// The number (any form).
        #[arg(value_name = "NUMBER")]
        number: String,
        /// The daemon and the output.
        #[command(flatten)]
        remote: Remote,
    },
    /// List opted-out numbers, in number order (`GET /v1/opt-outs`).
    #[command(long_about = concat!("List opted-out numbers, in number order (`GET /v1/opt-outs`).\n\n", about_remote!()))]
    List {
        /// Paging.
        #[command(flatten)]
        paging: Paging,
        /// The daemon and the output.
        #[command(flatten)]
        remote: Remote,
    },
}

/// An opted-out number, with what `optout` prints of it.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct OptOut {
    number: Option<String>,
    opted_out_at: Option<String>,
    source: Option<String>,
    keyword: Option<String>,
    note: Option<String>,
}

/// A page of `GET /v1/opt-outs`, or the answer of `POST /v1/opt-outs` (the number added).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct OptOuts {
    opt_outs: Option<Vec<OptOut>>,
}

/// The answer of `DELETE /v1/opt-outs/{number}`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Removed {
    number: Option<String>,
}

fn optout_detail(o: &OptOut) -> String {
    let mut parts = Vec::new();
    if let Some(k) = &o.keyword {
        parts.push(format!("texted {k}"));
    }
    if let Some(n) = &o.note {
        parts.push(n.to_string());
    }
    show::clean(&parts.join("; "))
}

/// The table of `optout list`.
fn optout_table(list: &[OptOut]) -> Table {
    let mut t = Table::new(&["NUMBER", "SINCE", "SOURCE", "DETAIL"]);
    for oo in list {
        t.row(vec![
            Cell::new(or_dash(oo.number.as_deref())),
            Cell::new(time_text(oo.opted_out_at.as_deref())),
            Cell::new(or_dash(oo.source.as_deref())),
            Cell::new(optout_detail(oo)),
        ]);
    }
    t
}

/// `smsgate optout …`
pub fn optout(cmd: OptoutCommand) -> ExitCode {
    match cmd {
        OptoutCommand::Add {
            number,
            note,
            remote,
        } => run_remote(&remote, Some(REQUEST_TIMEOUT), |api, o| async move {
            let mut body = json!({"number": number});
            if let Some(n) = note {
                body["note"] = json!(n);
            }
            let v = api.post("/v1/opt-outs", Some(&body)).await?;
            if o.json {
                print_raw(&v.raw);
            } else {
                let added: OptOuts = view(&api, &v.json)?;
                let oo = added
                    .opt_outs
                    .unwrap_or_default()
                    .into_iter()
                    .next()
                    .unwrap_or_default();
                if v.status == 201 {
                    out(&format!("{} opted out\n", or_dash(oo.number.as_deref())));
                } else {
                    out(&format!(
                        "{} was already opted out (since {}, {})\n",
                        or_dash(oo.number.as_deref()),
                        time_text(oo.opted_out_at.as_deref()),
                        or_dash(oo.source.as_deref())
                    ));
                }
            }
            Ok(ExitCode::SUCCESS)
        }),
        OptoutCommand::Remove { number, remote } => {
            run_remote(&remote, Some(REQUEST_TIMEOUT), |api, o| async move {
                let v = api
                    .call(
                        Method::DELETE,
                        &format!("/v1/opt-outs/{}", path_segment(&number)),
                        &[],
                        None,
                        &[],
                    )
                    .await?;
                if o.json {
                    print_raw(&v.raw);
                } else {
                    let removed: Removed = view(&api, &v.json)?;
                    out(&format!(
                        "{} is no longer opted out: it may get messages again\n",
                        or_dash(removed.number.as_deref())
                    ));
                }
                Ok(ExitCode::SUCCESS)
            })
        }
        OptoutCommand::List { paging, remote } => {
            run_remote(&remote, Some(REQUEST_TIMEOUT), |api, o| async move {
                print_list(
                    &api,
                    o,
                    "/v1/opt-outs",
                    Vec::new(),
                    "opt_outs",
                    &paging,
                    "no opted-out numbers",
                    |list: OptOuts| optout_table(&list.opt_outs.unwrap_or_default()),
                )
                .await
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::cli::client::show::s;

    #[test]
    fn the_typed_table_prints_what_the_json_did() {
        let page = json!({"opt_outs": [
            {"number": "+12025550188", "opted_out_at": "2026-12-06T10:00:00Z", "source": "api",
             "note": "asked\tby phone"},
            {"number": "+12025550199", "opted_out_at": "2026-12-06T11:00:00+01:00",
             "source": "sms", "keyword": "STOP", "note": null},
            {"number": "+12025550111"}
        ], "next_cursor": null});
        // What the list printed when it read the page as JSON values.
        let mut was = Table::new(&["NUMBER", "SINCE", "SOURCE", "DETAIL"]);
        for oo in page["opt_outs"].as_array().into_iter().flatten() {
            let mut parts = Vec::new();
            if let Some(k) = oo["keyword"].as_str() {
                parts.push(format!("texted {k}"));
            }
            if let Some(n) = oo["note"].as_str() {
                parts.push(n.to_string());
            }
            was.row(vec![
                Cell::new(s(&oo["number"])),
                Cell::new(show::time(&oo["opted_out_at"])),
                Cell::new(s(&oo["source"])),
                Cell::new(show::clean(&parts.join("; "))),
            ]);
        }
        let list: OptOuts = serde_json::from_value(page).unwrap();
        let now = optout_table(&list.opt_outs.unwrap());
        assert_eq!(now.render(false), was.render(false));
        assert_eq!(now.render(true), was.render(true));
        assert!(now.render(false).contains("texted STOP"));
        // An answer without the list: an empty table, as before.
        let empty: OptOuts = serde_json::from_value(Value::Object(Default::default())).unwrap();
        assert!(optout_table(&empty.opt_outs.unwrap_or_default()).is_empty());
    }
}
