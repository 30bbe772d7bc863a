//! `smsgate optout`: add, remove and list the numbers that get no messages.

use std::process::ExitCode;

use clap::Subcommand;
use reqwest::Method;
use serde_json::{Value, json};

use super::paging::{Paging, more_hint, pages};
use super::remote::{Answer, REQUEST_TIMEOUT, Remote, path_segment};
use super::run_remote;
use super::show::{self, Cell, Table, out, print_raw, s};

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

fn optout_detail(o: &Value) -> String {
    let mut parts = Vec::new();
    if let Some(k) = o["keyword"].as_str() {
        parts.push(format!("texted {k}"));
    }
    if let Some(n) = o["note"].as_str() {
        parts.push(n.to_string());
    }
    show::clean(&parts.join("; "))
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
                let oo = &v.json["opt_outs"][0];
                if v.status == 201 {
                    out(&format!("{} opted out\n", s(&oo["number"])));
                } else {
                    out(&format!(
                        "{} was already opted out (since {}, {})\n",
                        s(&oo["number"]),
                        show::time(&oo["opted_out_at"]),
                        s(&oo["source"])
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
                    out(&format!(
                        "{} is no longer opted out: it may get messages again\n",
                        s(&v.json["number"])
                    ));
                }
                Ok(ExitCode::SUCCESS)
            })
        }
        OptoutCommand::List { paging, remote } => {
            run_remote(&remote, Some(REQUEST_TIMEOUT), |api, o| async move {
                let Answer {
                    json: page, raw, ..
                } = pages(&api, "/v1/opt-outs", Vec::new(), "opt_outs", &paging).await?;
                if o.json {
                    print_raw(&raw);
                    return Ok(ExitCode::SUCCESS);
                }
                let mut t = Table::new(&["NUMBER", "SINCE", "SOURCE", "DETAIL"]);
                for oo in page["opt_outs"].as_array().into_iter().flatten() {
                    t.row(vec![
                        Cell::new(s(&oo["number"])),
                        Cell::new(show::time(&oo["opted_out_at"])),
                        Cell::new(s(&oo["source"])),
                        Cell::new(optout_detail(oo)),
                    ]);
                }
                if t.is_empty() {
                    eprintln!("no opted-out numbers");
                } else {
                    out(&t.render(o.colour));
                }
                more_hint(&page);
                Ok(ExitCode::SUCCESS)
            })
        }
    }
}
