//! Bulk loading: records of the embedded store's layout written into the tables.

use chrono::{DateTime, TimeZone, Utc};
use tokio_postgres::types::ToSql;

use super::super::body::{col, to_body};
use super::super::{PgStore, db_error};
use super::{BATCH, DATA_TABLES};
use crate::store::audit::AuditEntry;
use crate::store::backup::TREES;
use crate::store::inbound::Fragment;
use crate::store::optout::{ErasedOptOut, OptOut};
use crate::store::outbox::OutboxEntry;
use crate::store::plans::{Plan, StoredTemplate};
use crate::store::reports::UnmatchedReport;
use crate::store::{IdempotencyRecord, StoreError, history, id_string};

/// A table the loader writes: its name and its columns, each with the cast of its parameter
/// (`json` columns take their exact text).
pub(super) struct Table {
    pub(super) name: &'static str,
    columns: &'static [(&'static str, &'static str)],
}

const MESSAGES: usize = 0;
const EVENTS: usize = 1;
const IDEMPOTENCY: usize = 2;
const OUTBOX: usize = 3;
const INBOUND: usize = 4;
const INBOUND_SEEN: usize = 5;
const FRAGMENTS: usize = 6;
const OPTOUTS: usize = 7;
const REPORTS: usize = 8;
const UNMATCHED: usize = 9;
const PLANS: usize = 10;
const TEMPLATES: usize = 11;
const HOURLY: usize = 12;
const TOMBSTONES: usize = 13;
const AUDIT: usize = 14;
const ERASED: usize = 15;
const META: usize = 16;

pub(super) const TABLES: [Table; 17] = [
    Table {
        name: "messages",
        columns: &[
            ("id", ""),
            ("status", ""),
            ("recipient", ""),
            ("priority", ""),
            ("due_at", ""),
            ("modem", ""),
            ("invoice", ""),
            ("created_at", ""),
            ("updated_at", ""),
            ("body", ""),
        ],
    },
    Table {
        name: "message_events",
        columns: &[("message_id", ""), ("seq", ""), ("body", "::text::json")],
    },
    Table {
        name: "idempotency",
        columns: &[("key_name", ""), ("key", ""), ("at", ""), ("body", "")],
    },
    Table {
        name: "outbox",
        columns: &[
            ("seq", ""),
            ("id", ""),
            ("url", ""),
            ("ordering_key", ""),
            ("state", ""),
            ("next_attempt_at", ""),
            ("created_at", ""),
            ("body", ""),
        ],
    },
    Table {
        name: "inbound",
        columns: &[
            ("id", ""),
            ("sender", ""),
            ("received_at", ""),
            ("body", ""),
        ],
    },
    Table {
        name: "inbound_seen",
        columns: &[("fingerprint", ""), ("kind", "")],
    },
    Table {
        name: "fragments",
        columns: &[
            ("modem", ""),
            ("sender", ""),
            ("reference", ""),
            ("total", ""),
            ("part", ""),
            ("received_at", ""),
            ("body", ""),
        ],
    },
    Table {
        name: "optouts",
        columns: &[("number", ""), ("body", "")],
    },
    Table {
        name: "reports_awaited",
        columns: &[
            ("modem", ""),
            ("mr", ""),
            ("message_id", ""),
            ("part", ""),
            ("sent_at", ""),
        ],
    },
    Table {
        name: "reports_unmatched",
        columns: &[("id", ""), ("body", "")],
    },
    Table {
        name: "plans",
        columns: &[("id", ""), ("invoice", ""), ("body", "")],
    },
    Table {
        name: "templates",
        columns: &[("name", ""), ("body", "")],
    },
    Table {
        name: "hourly",
        columns: &[
            ("hour", ""),
            ("modem", ""),
            ("sent", ""),
            ("delivered", ""),
            ("failed", ""),
        ],
    },
    Table {
        name: "tombstones",
        columns: &[
            ("day", ""),
            ("seq", ""),
            ("message_id", ""),
            ("body", "::text::json"),
        ],
    },
    Table {
        name: "audit",
        columns: &[
            ("id", ""),
            ("actor", ""),
            ("action", ""),
            ("at", ""),
            ("body", ""),
        ],
    },
    Table {
        name: "optouts_erased",
        columns: &[("hash", ""), ("body", "")],
    },
    Table {
        name: "meta",
        columns: &[("name", ""), ("value", "")],
    },
];

/// A parameter of a row to write.
type Param = Box<dyn ToSql + Sync + Send>;
/// A record that cannot be carried.
fn corrupt(tree: &str, key: &[u8], detail: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        key: format!("{tree} {}", hex::encode(key)),
        detail: detail.into(),
    }
}

/// A record's JSON read as `T`.
fn dec<T: serde::de::DeserializeOwned>(tree: &str, key: &[u8], v: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(v)
        .map_err(|e| corrupt(tree, key, format!("the record does not decode: {e}")))
}

fn id16(tree: &str, key: &[u8]) -> Result<[u8; 16], StoreError> {
    <[u8; 16]>::try_from(key).map_err(|_| corrupt(tree, key, "the key is not an id (16 bytes)"))
}

fn text<'a>(tree: &str, key: &[u8], bytes: &'a [u8]) -> Result<&'a str, StoreError> {
    std::str::from_utf8(bytes).map_err(|_| corrupt(tree, key, "not UTF-8 text"))
}

/// JSON text kept as it is (`json` columns): it must be JSON.
fn json_text(tree: &str, key: &[u8], v: &[u8]) -> Result<String, StoreError> {
    let s = text(tree, key, v)?;
    serde_json::from_str::<&serde_json::value::RawValue>(s)
        .map_err(|e| corrupt(tree, key, format!("not JSON: {e}")))?;
    Ok(s.to_string())
}

fn millis(ms: u64) -> Result<DateTime<Utc>, String> {
    i64::try_from(ms)
        .ok()
        .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
        .ok_or_else(|| format!("{ms} ms is not a time"))
}

/// Writes records of the embedded store's layout into an empty PostgreSQL store, in one
/// transaction: nothing shows (and nothing stays, if it fails or is dropped unfinished) until
/// [`PgLoader::finish`] commits.
pub struct PgLoader<'a> {
    store: &'a PgStore,
    client: deadpool_postgres::Object,
    rows: Vec<Vec<Vec<Param>>>,
    pending_inbound: Vec<String>,
    tree: Option<usize>,
    max_outbox: Option<i64>,
    max_tombstone: Option<i64>,
    done: bool,
}

impl PgStore {
    /// Starts a bulk load: a transaction on a connection of its own.
    pub fn loader(&self) -> Result<PgLoader<'_>, StoreError> {
        let client = self.run(self.client())?;
        self.run(client.batch_execute("BEGIN")).map_err(db_error)?;
        Ok(PgLoader {
            store: self,
            client,
            rows: TABLES.iter().map(|_| Vec::new()).collect(),
            pending_inbound: Vec::new(),
            tree: None,
            max_outbox: None,
            max_tombstone: None,
            done: false,
        })
    }

    /// The tables of [`DATA_TABLES`] that hold rows.
    pub fn tables_with_data(&self) -> Result<Vec<&'static str>, StoreError> {
        self.run(async {
            let c = self.client().await?;
            with_data(&c).await
        })
    }
}

async fn with_data(c: &tokio_postgres::Client) -> Result<Vec<&'static str>, StoreError> {
    let sql = DATA_TABLES
        .iter()
        .map(|t| format!("EXISTS (SELECT 1 FROM {t})"))
        .collect::<Vec<_>>()
        .join(", ");
    let row = c
        .query_one(&format!("SELECT {sql}"), &[])
        .await
        .map_err(db_error)?;
    let mut out = Vec::new();
    for (i, t) in DATA_TABLES.iter().enumerate() {
        if col::<bool>(&row, i, t)? {
            out.push(*t);
        }
    }
    Ok(out)
}

impl PgLoader<'_> {
    /// The tables that already hold rows, seen from inside the load's transaction.
    pub fn tables_with_data(&self) -> Result<Vec<&'static str>, StoreError> {
        self.store.run(with_data(&self.client))
    }

    fn push(&mut self, table: usize, row: Vec<Param>) -> Result<(), StoreError> {
        let full = match self.rows.get_mut(table) {
            Some(rows) => {
                rows.push(row);
                rows.len() >= BATCH
            }
            None => return Err(StoreError::Io(format!("no table number {table}"))),
        };
        if full { self.write(table) } else { Ok(()) }
    }

    /// Writes the rows held for `table`: one statement.
    fn write(&mut self, table: usize) -> Result<(), StoreError> {
        let (Some(t), Some(rows)) = (TABLES.get(table), self.rows.get_mut(table)) else {
            return Ok(());
        };
        if rows.is_empty() {
            return Ok(());
        }
        let rows = std::mem::take(rows);
        let names: Vec<&str> = t.columns.iter().map(|(n, _)| *n).collect();
        let mut sql = format!("INSERT INTO {} ({}) VALUES ", t.name, names.join(", "));
        let mut n = 0;
        for (i, _) in rows.iter().enumerate() {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push('(');
            for (j, (_, cast)) in t.columns.iter().enumerate() {
                n += 1;
                if j > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&format!("${n}{cast}"));
            }
            sql.push(')');
        }
        let params: Vec<&(dyn ToSql + Sync)> = rows
            .iter()
            .flatten()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect();
        self.store
            .run(self.client.execute(sql.as_str(), &params))
            .map_err(|e| StoreError::Io(format!("{} ({})", db_error(e), t.name)))?;
        Ok(())
    }

    /// Writes every row held (the inbound messages still pending last: their rows first).
    fn write_all(&mut self) -> Result<(), StoreError> {
        for t in 0..TABLES.len() {
            self.write(t)?;
        }
        if !self.pending_inbound.is_empty() {
            let ids = std::mem::take(&mut self.pending_inbound);
            let n = self
                .store
                .run(self.client.execute(
                    "UPDATE inbound SET pending = true WHERE id = ANY($1)",
                    &[&ids],
                ))
                .map_err(db_error)?;
            if n as usize != ids.len() {
                return Err(StoreError::Corrupt {
                    key: "inbound_pending".into(),
                    detail: format!(
                        "{} of {} entries name no inbound message",
                        ids.len() - n as usize,
                        ids.len()
                    ),
                });
            }
        }
        Ok(())
    }

    /// Adds one record of the tree `TREES[tree]` (`key`, `value` as the embedded store keeps
    /// them). Records of one message's history come after the message's record (trees in
    /// [`TREES`] order, as an export has them).
    pub fn put(&mut self, tree: usize, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        if self.tree != Some(tree) {
            // Rows of the trees before first: a history entry's message is written before it.
            self.write_all()?;
            self.tree = Some(tree);
        }
        let name = TREES.get(tree).copied().unwrap_or("");
        match name {
            "messages" => {
                let id = id16(name, key)?;
                let mut m: crate::store::Message = dec(name, key, value)?;
                m.id = id_string(&id);
                let invoice = history::invoice_of(&m)
                    .filter(|i| !i.is_empty())
                    .map(str::to_string);
                let body = to_body(&m)?;
                self.push(
                    MESSAGES,
                    vec![
                        Box::new(m.id),
                        Box::new(m.status.as_str()),
                        Box::new(m.to),
                        Box::new(i16::from(m.priority.code())),
                        Box::new(m.due_at),
                        Box::new(m.modem),
                        Box::new(invoice),
                        Box::new(m.created_at),
                        Box::new(m.updated_at),
                        Box::new(body),
                    ],
                )
            }
            "events" => {
                let (Some(id), Some(seq)) = (
                    key.get(..16).and_then(|k| <[u8; 16]>::try_from(k).ok()),
                    key.get(16..)
                        .and_then(|k| <[u8; 4]>::try_from(k).ok())
                        .map(u32::from_be_bytes),
                ) else {
                    return Err(corrupt(name, key, "the key is not id · sequence"));
                };
                let seq = i32::try_from(seq)
                    .map_err(|_| corrupt(name, key, "the sequence is out of range"))?;
                let body = json_text(name, key, value)?;
                self.push(
                    EVENTS,
                    vec![Box::new(id_string(&id)), Box::new(seq), Box::new(body)],
                )
            }
            "idempotency" => {
                let r: IdempotencyRecord = dec(name, key, value)?;
                let k = text(name, key, key)?;
                let (kn, k) = k.split_once('\0').unwrap_or(("", k));
                let body = to_body(&r)?;
                self.push(
                    IDEMPOTENCY,
                    vec![
                        Box::new(kn.to_string()),
                        Box::new(k.to_string()),
                        Box::new(r.at),
                        Box::new(body),
                    ],
                )
            }
            "outbox" => {
                let seq = <[u8; 8]>::try_from(key)
                    .ok()
                    .map(u64::from_be_bytes)
                    .and_then(|s| i64::try_from(s).ok())
                    .ok_or_else(|| corrupt(name, key, "the key is not a sequence number"))?;
                let e: OutboxEntry = dec(name, key, value)?;
                self.max_outbox = Some(self.max_outbox.map_or(seq, |m| m.max(seq)));
                let body = to_body(&e)?;
                self.push(
                    OUTBOX,
                    vec![
                        Box::new(seq),
                        Box::new(e.id),
                        Box::new(e.url),
                        Box::new(e.ordering_key),
                        Box::new(super::super::outbox::state_name(e.state)),
                        Box::new(e.next_attempt_at),
                        Box::new(e.created_at),
                        Box::new(body),
                    ],
                )
            }
            "inbound" => {
                let id = id16(name, key)?;
                let m: crate::store::inbound::InboundMessage = dec(name, key, value)?;
                let body = to_body(&m)?;
                self.push(
                    INBOUND,
                    vec![
                        Box::new(id_string(&id)),
                        Box::new(m.from),
                        Box::new(m.received_at),
                        Box::new(body),
                    ],
                )
            }
            "inbound_pending" => {
                let id = id16(name, key)?;
                self.pending_inbound.push(id_string(&id));
                if self.pending_inbound.len() >= BATCH {
                    self.write_all()?;
                }
                Ok(())
            }
            "inbound_seen" => {
                let kind = text(name, key, value)?.to_string();
                self.push(INBOUND_SEEN, vec![Box::new(key.to_vec()), Box::new(kind)])
            }
            "fragments" => {
                // modem · 0x00 · sender · 0x00 · reference (2) · total (1) · part (1)
                let n = key.len();
                let parsed = (n >= 6 && key[n - 5] == 0)
                    .then(|| {
                        let head = &key[..n - 5];
                        let z = head.iter().position(|b| *b == 0)?;
                        Some((&head[..z], &head[z + 1..]))
                    })
                    .flatten();
                let Some((modem, sender)) = parsed else {
                    return Err(corrupt(
                        name,
                        key,
                        "the key is not modem · sender · reference · total · part",
                    ));
                };
                let reference = i32::from(u16::from_be_bytes([key[n - 4], key[n - 3]]));
                let (total, part) = (i16::from(key[n - 2]), i16::from(key[n - 1]));
                let f: Fragment = dec(name, key, value)?;
                let body = to_body(&f)?;
                self.push(
                    FRAGMENTS,
                    vec![
                        Box::new(text(name, key, modem)?.to_string()),
                        Box::new(text(name, key, sender)?.to_string()),
                        Box::new(reference),
                        Box::new(total),
                        Box::new(part),
                        Box::new(f.received_at),
                        Box::new(body),
                    ],
                )
            }
            "optouts" => {
                let o: OptOut = dec(name, key, value)?;
                let body = to_body(&o)?;
                let number = text(name, key, key)?.to_string();
                self.push(OPTOUTS, vec![Box::new(number), Box::new(body)])
            }
            "reports" => {
                // modem · 0x00 · TP-MR (1) · id (16) · part (1)
                let n = key.len();
                if n < 19 || key[n - 19] != 0 {
                    return Err(corrupt(
                        name,
                        key,
                        "the key is not modem · TP-MR · id · part",
                    ));
                }
                let modem = text(name, key, &key[..n - 19])?.to_string();
                let id = id16(name, &key[n - 17..n - 1])?;
                let sent = <[u8; 8]>::try_from(value)
                    .map_err(|_| corrupt(name, key, "the value is not a time (8 bytes)"))
                    .and_then(|b| {
                        millis(u64::from_be_bytes(b)).map_err(|e| corrupt(name, key, e))
                    })?;
                self.push(
                    REPORTS,
                    vec![
                        Box::new(modem),
                        Box::new(i16::from(key[n - 18])),
                        Box::new(id_string(&id)),
                        Box::new(i16::from(key[n - 1])),
                        Box::new(sent),
                    ],
                )
            }
            "reports_unmatched" => {
                let id = id16(name, key)?;
                let r: UnmatchedReport = dec(name, key, value)?;
                let body = to_body(&r)?;
                self.push(UNMATCHED, vec![Box::new(id_string(&id)), Box::new(body)])
            }
            "plans" => {
                let id = id16(name, key)?;
                let p: Plan = dec(name, key, value)?;
                let body = to_body(&p)?;
                self.push(
                    PLANS,
                    vec![
                        Box::new(id_string(&id)),
                        Box::new(p.invoice),
                        Box::new(body),
                    ],
                )
            }
            "templates" => {
                let t: StoredTemplate = dec(name, key, value)?;
                let body = to_body(&t)?;
                let n = text(name, key, key)?.to_string();
                self.push(TEMPLATES, vec![Box::new(n), Box::new(body)])
            }
            "hourly" => {
                let Some(hour) = key
                    .get(..4)
                    .and_then(|h| <[u8; 4]>::try_from(h).ok())
                    .map(u32::from_be_bytes)
                    .and_then(|h| i32::try_from(h).ok())
                else {
                    return Err(corrupt(name, key, "the key is not hour · modem"));
                };
                let modem = text(name, key, &key[4..])?.to_string();
                let [s, d, f] = crate::store::hourly::decode_value(value)
                    .map(|n| i64::try_from(n).unwrap_or(i64::MAX));
                self.push(
                    HOURLY,
                    vec![
                        Box::new(hour),
                        Box::new(modem),
                        Box::new(s),
                        Box::new(d),
                        Box::new(f),
                    ],
                )
            }
            "tombstones" => {
                let (Some(day), Some(seq)) = (
                    key.get(..4)
                        .and_then(|k| <[u8; 4]>::try_from(k).ok())
                        .map(u32::from_be_bytes)
                        .and_then(|d| i32::try_from(d).ok()),
                    key.get(4..)
                        .and_then(|k| <[u8; 8]>::try_from(k).ok())
                        .map(u64::from_be_bytes)
                        .and_then(|s| i64::try_from(s).ok()),
                ) else {
                    return Err(corrupt(name, key, "the key is not day · sequence"));
                };
                let t: crate::store::tombstones::Tombstone = dec(name, key, value)?;
                let body = json_text(name, key, value)?;
                self.max_tombstone = Some(self.max_tombstone.map_or(seq, |m| m.max(seq)));
                self.push(
                    TOMBSTONES,
                    vec![
                        Box::new(day),
                        Box::new(seq),
                        Box::new(t.message_id),
                        Box::new(body),
                    ],
                )
            }
            "audit" => {
                if key == crate::store::audit::HEAD {
                    // The chain's head: in `meta` here.
                    return self.push(
                        META,
                        vec![
                            Box::new(super::super::audit::HEAD.to_string()),
                            Box::new(value.to_vec()),
                        ],
                    );
                }
                id16(name, key)?;
                let e: AuditEntry = dec(name, key, value)?;
                let body = to_body(&e)?;
                self.push(
                    AUDIT,
                    vec![
                        Box::new(e.id),
                        Box::new(e.actor),
                        Box::new(e.action),
                        Box::new(e.at),
                        Box::new(body),
                    ],
                )
            }
            "optouts_erased" => {
                let o: ErasedOptOut = dec(name, key, value)?;
                let body = to_body(&o)?;
                self.push(ERASED, vec![Box::new(key.to_vec()), Box::new(body)])
            }
            "meta" => {
                let n = text(name, key, key)?.to_string();
                if n == super::super::audit::HEAD {
                    return Err(corrupt(name, key, "a name the database keeps for itself"));
                }
                self.push(META, vec![Box::new(n), Box::new(value.to_vec())])
            }
            // Indexes: made from the records by each backend.
            "due" | "status" | "to" | "inbound_from" | "plan_invoices" | "invoices" => Ok(()),
            _ => Err(StoreError::Io(format!("no tree number {tree}"))),
        }
    }

    /// Writes what is left, moves the sequences past the numbers copied and commits.
    pub fn finish(mut self) -> Result<(), StoreError> {
        self.write_all()?;
        for (seq, value) in [
            ("outbox_seq", self.max_outbox),
            ("tombstones_seq", self.max_tombstone),
        ] {
            if let Some(v) = value.filter(|v| *v >= 1) {
                self.store
                    .run(
                        self.client
                            .execute("SELECT setval($1::text::regclass, $2)", &[&seq, &v]),
                    )
                    .map_err(db_error)?;
            }
        }
        self.store
            .run(self.client.batch_execute("COMMIT"))
            .map_err(db_error)?;
        self.done = true;
        Ok(())
    }
}

impl Drop for PgLoader<'_> {
    fn drop(&mut self) {
        if !self.done {
            // Unfinished: nothing of it stays. Should the rollback fail, the connection is
            // broken, and the server ends the transaction with it.
            let _ = self.store.run(self.client.batch_execute("ROLLBACK"));
        }
    }
}
