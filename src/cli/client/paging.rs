//! Paging of lists: the `--limit`, `--cursor` and `--all` options, fetching one page or every
//! page, and the hint that there is more.

use std::process::ExitCode;

use clap::Args;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::remote::{Answer, Api, Failure};
use super::show::{Table, out, print_raw};
use super::{Out, raw_field, view};

/// Paging of a list.
#[derive(Debug, Args)]
pub struct Paging {
    /// Page size, 1 to 1000 (the daemon's default: 50).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub limit: Option<u16>,
    /// Start after this cursor (a page's `next_cursor`).
    #[arg(long)]
    pub cursor: Option<String>,
    /// Every page, following `next_cursor` (pages of `--limit`, default 1000).
    #[arg(long)]
    pub all: bool,
}

/// Fetches a list: one page, or every page with `--all` (as one answer whose `next_cursor` is
/// null).
pub(super) async fn pages(
    api: &Api,
    path: &str,
    mut query: Vec<(&str, String)>,
    key: &str,
    p: &Paging,
) -> Result<Answer, Failure> {
    if let Some(l) = p.limit.or(p.all.then_some(1000)) {
        query.push(("limit", l.to_string()));
    }
    let mut cursor = p.cursor.clone();
    let mut items = Vec::new();
    let mut raw_items: Vec<Box<RawValue>> = Vec::new();
    loop {
        let mut q = query.clone();
        if let Some(c) = &cursor {
            q.push(("cursor", c.clone()));
        }
        let mut page = api.get(path, &q).await?;
        if !p.all {
            return Ok(page);
        }
        if let Some(a) = page.json[key].as_array_mut() {
            items.append(a);
        }
        if let Some(r) = raw_field(&page.raw, key)
            .and_then(|r| serde_json::from_str::<Vec<Box<RawValue>>>(&r).ok())
        {
            raw_items.extend(r);
        }
        let next = page.json["next_cursor"].as_str().map(String::from);
        if next.is_none() || next == cursor {
            let joined: Vec<&str> = raw_items.iter().map(|r| r.get()).collect();
            return Ok(Answer {
                status: page.status,
                raw: format!(
                    "{{{}:[{}],\"next_cursor\":null}}",
                    Value::from(key),
                    joined.join(",")
                ),
                json: json!({key: items, "next_cursor": null}),
            });
        }
        cursor = next;
    }
}

/// Prints a list fetched with [`pages`]: the API's own answer with `--json`, else the table
/// `table` makes of its typed view (`nothing` on standard error when it is empty), then the
/// hint that there is more.
#[allow(clippy::too_many_arguments)]
pub(super) async fn print_list<V: DeserializeOwned>(
    api: &Api,
    o: Out,
    path: &str,
    query: Vec<(&str, String)>,
    key: &str,
    paging: &Paging,
    nothing: &str,
    table: impl FnOnce(V) -> Table,
) -> Result<ExitCode, Failure> {
    let Answer {
        json: page, raw, ..
    } = pages(api, path, query, key, paging).await?;
    if o.json {
        print_raw(&raw);
        return Ok(ExitCode::SUCCESS);
    }
    let t = table(view(api, &page)?);
    if t.is_empty() {
        eprintln!("{nothing}");
    } else {
        out(&t.render(o.colour));
    }
    more_hint(&page);
    Ok(ExitCode::SUCCESS)
}

/// Tells people that there is more (on standard error, so that the table stays clean).
fn more_hint(page: &Value) {
    if let Some(c) = page["next_cursor"].as_str() {
        eprintln!("(more: --all for every page, or --cursor {c} for the next)");
    }
}
