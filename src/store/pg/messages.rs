//! The message aggregate in PostgreSQL: a message, its history entry, the parts that await a
//! status report, the hourly counts and the webhook deliveries of a change commit together.
//! The change itself is worked out once for both backends ([`Change::work_out`]).

use chrono::{DateTime, Utc};
use tokio_postgres::Transaction;
use tokio_postgres::types::Json;

use super::notify::Signal;
use super::optout::not_opted_out;
use super::outbox::insert_outbox;
use super::{PgStore, db_error};
use crate::store::history::{History, chain_of};
use crate::store::live::LiveEvent;
use crate::store::messages::{Change, first_event_shown};
use crate::store::optout::OptOut;
use crate::store::{Event, IdempotencyRecord, Message, Note, Status, StoreError, history};

/// The columns a message row is read with, in this order.
pub(super) const MESSAGE_COLUMNS: &str = "id, body";

/// A message from a row read with [`MESSAGE_COLUMNS`].
pub(super) fn message_of(row: &tokio_postgres::Row) -> Result<Message, StoreError> {
    let id: String = row.try_get(0).map_err(db_error)?;
    let Json(mut m): Json<Message> = row.try_get(1).map_err(|e| StoreError::Corrupt {
        key: id.clone(),
        detail: e.to_string(),
    })?;
    m.id = id;
    Ok(m)
}

/// The head of an insert of message rows, their columns in the order they are given.
const INSERT_COLUMNS: &str = "INSERT INTO messages (id, status, recipient, priority, due_at, \
     modem, invoice, created_at, updated_at, body)";

/// An insert's error: a message id taken is a conflict.
fn insert_error(e: tokio_postgres::Error) -> StoreError {
    match e.code() {
        Some(c) if *c == tokio_postgres::error::SqlState::UNIQUE_VIOLATION => {
            StoreError::Conflict("a message with this id exists already".into())
        }
        _ => db_error(e),
    }
}

/// The error for an insert whose Idempotency-Key was taken.
fn key_taken() -> StoreError {
    StoreError::Conflict("this Idempotency-Key was used already".into())
}

/// The statuses a waiting message has, as SQL.
pub(super) const WAITING: &str = "('queued', 'scheduled')";

/// Writes a new message row.
pub(super) async fn insert_row(tx: &Transaction<'_>, m: &Message) -> Result<(), StoreError> {
    let invoice = history::invoice_of(m).filter(|i| !i.is_empty());
    tx.execute(
        "INSERT INTO messages (id, status, recipient, priority, due_at, modem, invoice, \
         created_at, updated_at, body) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        &[
            &m.id,
            &m.status.as_str(),
            &m.to,
            &i16::from(m.priority.code()),
            &m.due_at,
            &m.modem,
            &invoice,
            &m.created_at,
            &m.updated_at,
            &Json(m),
        ],
    )
    .await
    .map_err(|e| match e.code() {
        Some(c) if *c == tokio_postgres::error::SqlState::UNIQUE_VIOLATION => {
            StoreError::Conflict(format!("message {} exists already", m.id))
        }
        _ => db_error(e),
    })?;
    Ok(())
}

/// Keeps an Idempotency-Key's answer in `tx`; refused when the key is taken (a retry that
/// raced past the API's guard, or another gateway): one request, one message.
pub(super) async fn insert_idempotency(
    tx: &Transaction<'_>,
    key: &str,
    r: &IdempotencyRecord,
) -> Result<(), StoreError> {
    // The key is `API key name · NUL · Idempotency-Key`; text holds no NUL, so two columns.
    let (name, k) = key.split_once('\0').unwrap_or(("", key));
    let n = tx
        .execute(
            "INSERT INTO idempotency (key_name, key, at, body) VALUES ($1, $2, $3, $4) \
             ON CONFLICT DO NOTHING",
            &[&name, &k, &r.at, &Json(r)],
        )
        .await
        .map_err(db_error)?;
    if n == 0 {
        return Err(StoreError::Conflict(
            "this Idempotency-Key was used already".into(),
        ));
    }
    Ok(())
}

/// Writes a worked-out change in `tx`: the record, its history entry, the awaited reports,
/// the hourly counts.
pub(super) async fn write_change(tx: &Transaction<'_>, c: &Change) -> Result<(), StoreError> {
    let m = &c.new;
    tx.execute(
        "UPDATE messages SET status = $2, priority = $3, due_at = $4, modem = $5, \
         updated_at = $6, body = $7 WHERE id = $1",
        &[
            &m.id,
            &m.status.as_str(),
            &i16::from(m.priority.code()),
            &m.due_at,
            &m.modem,
            &m.updated_at,
            &Json(m),
        ],
    )
    .await
    .map_err(db_error)?;
    let json = std::str::from_utf8(&c.event_json).map_err(|e| StoreError::Corrupt {
        key: m.id.clone(),
        detail: e.to_string(),
    })?;
    tx.execute(
        "INSERT INTO message_events (message_id, seq, body) VALUES ($1, $2, ($3::text)::json)",
        &[&m.id, &(c.event.seq as i32), &json],
    )
    .await
    .map_err(db_error)?;
    for (modem, mr, part) in &c.awaiting {
        tx.execute(
            "INSERT INTO reports_awaited (modem, mr, message_id, part, sent_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            &[modem, &i16::from(*mr), &m.id, &i16::from(*part), &c.sent_at],
        )
        .await
        .map_err(db_error)?;
    }
    for (modem, mr, part) in &c.not_awaiting {
        tx.execute(
            "DELETE FROM reports_awaited WHERE modem = $1 AND mr = $2 AND message_id = $3 \
             AND part = $4",
            &[modem, &i16::from(*mr), &m.id, &i16::from(*part)],
        )
        .await
        .map_err(db_error)?;
    }
    let column = match m.status {
        Status::Sent => Some("sent"),
        Status::Delivered => Some("delivered"),
        Status::Failed => Some("failed"),
        _ => None,
    };
    if let Some(col) = column.filter(|_| c.old.status != m.status) {
        let hour = (m.updated_at.timestamp().max(0) / 3600) as i32;
        tx.execute(
            &format!(
                "INSERT INTO hourly (hour, modem, {col}) VALUES ($1, $2, 1) \
                 ON CONFLICT (hour, modem) DO UPDATE SET {col} = hourly.{col} + 1"
            ),
            &[&hour, &m.modem.as_deref().unwrap_or("")],
        )
        .await
        .map_err(db_error)?;
    }
    Ok(())
}

/// The live event of a message's entry.
pub(super) fn live_event(m: &Message, e: &Event) -> LiveEvent {
    LiveEvent::Message {
        message_id: m.id.clone(),
        seq: e.seq,
        at: e.at,
        status: e.status,
        kind: e.kind.clone(),
        reason: e.reason.clone(),
        to: m.to.clone(),
    }
}

impl PgStore {
    /// Inserts new messages (all or none) and the idempotency record when given, committed
    /// before it returns. One statement, so one round trip and PostgreSQL's own atomicity: the
    /// rows come as arrays, and the Idempotency-Key (when given) is written by the same
    /// statement, which inserts nothing when the key was taken.
    pub fn insert(
        &self,
        messages: &[Message],
        idempotency: Option<(&str, &IdempotencyRecord)>,
    ) -> Result<(), StoreError> {
        if messages.is_empty() {
            return Ok(());
        }
        let ids: Vec<&str> = messages.iter().map(|m| m.id.as_str()).collect();
        let statuses: Vec<&str> = messages.iter().map(|m| m.status.as_str()).collect();
        let to: Vec<&str> = messages.iter().map(|m| m.to.as_str()).collect();
        let priority: Vec<i16> = messages
            .iter()
            .map(|m| i16::from(m.priority.code()))
            .collect();
        let due: Vec<DateTime<Utc>> = messages.iter().map(|m| m.due_at).collect();
        let modem: Vec<Option<&str>> = messages.iter().map(|m| m.modem.as_deref()).collect();
        let invoice: Vec<Option<&str>> = messages
            .iter()
            .map(|m| history::invoice_of(m).filter(|i| !i.is_empty()))
            .collect();
        let created: Vec<DateTime<Utc>> = messages.iter().map(|m| m.created_at).collect();
        let updated: Vec<DateTime<Utc>> = messages.iter().map(|m| m.updated_at).collect();
        let bodies: Vec<Json<&Message>> = messages.iter().map(Json).collect();
        const ROWS: &str = "SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], \
             $4::int2[], $5::timestamptz[], $6::text[], $7::text[], $8::timestamptz[], \
             $9::timestamptz[], $10::jsonb[])";
        let inserted = self.run(async {
            let c = self.client().await?;
            let arrays: [&(dyn tokio_postgres::types::ToSql + Sync); 10] = [
                &ids, &statuses, &to, &priority, &due, &modem, &invoice, &created, &updated,
                &bodies,
            ];
            let n = match idempotency {
                // One message (a single POST, the common case): a plain row, cheaper for the
                // server to plan and run than arrays.
                None if messages.len() == 1 => {
                    let st = c
                        .prepare_cached(&format!(
                            "{INSERT_COLUMNS} VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
                        ))
                        .await
                        .map_err(db_error)?;
                    c.execute(
                        &st,
                        &[
                            &ids[0],
                            &statuses[0],
                            &to[0],
                            &priority[0],
                            &due[0],
                            &modem[0],
                            &invoice[0],
                            &created[0],
                            &updated[0],
                            &bodies[0],
                        ],
                    )
                    .await
                }
                None => {
                    let st = c
                        .prepare_cached(&format!("{INSERT_COLUMNS} {ROWS}"))
                        .await
                        .map_err(db_error)?;
                    c.execute(&st, &arrays).await
                }
                Some((key, r)) => {
                    // The key is `API key name · NUL · Idempotency-Key`; text holds no NUL.
                    let (name, k) = key.split_once('\0').unwrap_or(("", key));
                    let st = c
                        .prepare_cached(&format!(
                            "WITH k AS (INSERT INTO idempotency (key_name, key, at, body) \
                             VALUES ($11, $12, $13, $14) ON CONFLICT DO NOTHING RETURNING 1) \
                             {INSERT_COLUMNS} SELECT u.* FROM ({ROWS}) AS u WHERE EXISTS (SELECT 1 FROM k)"
                        ))
                        .await
                        .map_err(db_error)?;
                    let rec = Json(r);
                    let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
                        arrays.to_vec();
                    params.extend([
                        &name as &(dyn tokio_postgres::types::ToSql + Sync),
                        &k,
                        &r.at,
                        &rec,
                    ]);
                    c.execute(&st, &params).await
                }
            };
            n.map_err(insert_error)
        })?;
        if inserted == 0 {
            return Err(key_taken());
        }
        for m in messages {
            self.publish(live_event(m, &first_event_shown(m)));
        }
        self.tell(messages.iter().any(|m| m.status.is_waiting()), false);
        Ok(())
    }

    /// Inserts one message (and its idempotency record when given) unless its number opted
    /// out: `Ok(Some(opt-out))` when it did, and then nothing is written. The hot path of the
    /// API: one statement (the opt-out check, the key and the row together), run on the
    /// store's runtime while the caller's task awaits it.
    pub async fn insert_unless_opted_out(
        &self,
        m: &Message,
        idempotency: Option<(&str, &IdempotencyRecord)>,
    ) -> Result<Option<OptOut>, StoreError> {
        // A second round only when an opt-out went away between the statement and the look
        // at why it wrote nothing.
        for _ in 0..2 {
            let row = (
                m.id.clone(),
                m.status.as_str(),
                m.to.clone(),
                i16::from(m.priority.code()),
                m.due_at,
                m.modem.clone(),
                history::invoice_of(m)
                    .filter(|i| !i.is_empty())
                    .map(str::to_string),
                m.created_at,
                m.updated_at,
                Json(m.clone()),
            );
            let key = idempotency.map(|(key, r)| {
                // The key is `API key name · NUL · Idempotency-Key`; text holds no NUL.
                let (name, k) = key.split_once('\0').unwrap_or(("", key));
                (name.to_string(), k.to_string(), r.at, Json(r.clone()))
            });
            let pool = self.pool.clone();
            let inserted = self
                .spawn(async move {
                    let c = PgStore::client_of(&pool).await?;
                    let free = not_opted_out("$3");
                    const VALUES: &str = "SELECT $1::text, $2::text, $3::text, $4::int2, \
                         $5::timestamptz, $6::text, $7::text, $8::timestamptz, \
                         $9::timestamptz, $10::jsonb";
                    let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = vec![
                        &row.0, &row.1, &row.2, &row.3, &row.4, &row.5, &row.6, &row.7, &row.8,
                        &row.9,
                    ];
                    let sql = match &key {
                        None => format!("{INSERT_COLUMNS} {VALUES} WHERE {free}"),
                        Some((name, k, at, body)) => {
                            params.extend([
                                name as &(dyn tokio_postgres::types::ToSql + Sync),
                                k,
                                at,
                                body,
                            ]);
                            format!(
                                "WITH k AS (INSERT INTO idempotency (key_name, key, at, body) \
                                 SELECT $11::text, $12::text, $13::timestamptz, $14::jsonb \
                                 WHERE {free} ON CONFLICT DO NOTHING RETURNING 1) \
                                 {INSERT_COLUMNS} {VALUES} WHERE EXISTS (SELECT 1 FROM k)"
                            )
                        }
                    };
                    let st = c.prepare_cached(&sql).await.map_err(db_error)?;
                    c.execute(&st, &params).await.map_err(insert_error)
                })
                .await?;
            if inserted > 0 {
                self.publish(live_event(m, &first_event_shown(m)));
                self.tell(m.status.is_waiting(), false);
                return Ok(None);
            }
            // Nothing written: the number opted out, or the key was taken.
            if let Some(o) = self.optout(&m.to)? {
                return Ok(Some(o));
            }
            if let Some((key, _)) = idempotency
                && self.idempotency(key)?.is_some()
            {
                return Err(key_taken());
            }
        }
        Err(StoreError::Conflict(
            "the number's opt-out changed while the message was stored; send it again".into(),
        ))
    }

    /// A message by id.
    pub fn get(&self, id: &str) -> Result<Option<Message>, StoreError> {
        self.run(async {
            let c = self.client().await?;
            let row = c
                .query_opt(
                    &format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = $1"),
                    &[&id],
                )
                .await
                .map_err(db_error)?;
            row.as_ref().map(message_of).transpose()
        })
    }

    /// A message's history, oldest first.
    pub fn events(&self, id: &str) -> Result<Vec<Event>, StoreError> {
        Ok(self
            .get_with_events(id)?
            .map(|(_, events)| events)
            .unwrap_or_default())
    }

    /// A message and its history as of the same moment (one snapshot).
    pub fn get_with_events(&self, id: &str) -> Result<Option<(Message, Vec<Event>)>, StoreError> {
        let Some((m, entries)) = self.run(self.read_with_entries(id))? else {
            return Ok(None);
        };
        let h = chain_of(
            &m,
            entries
                .iter()
                .map(|(k, raw)| (k.as_bytes(), raw.as_bytes())),
        )?;
        Ok(Some((m, h.events.into_iter().map(|c| c.event).collect())))
    }

    /// A message and its raw history entries read in one snapshot.
    async fn read_with_entries(
        &self,
        id: &str,
    ) -> Result<Option<(Message, Vec<(String, String)>)>, StoreError> {
        let mut c = self.client().await?;
        let tx = c
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(db_error)?;
        let Some(row) = tx
            .query_opt(
                &format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = $1"),
                &[&id],
            )
            .await
            .map_err(db_error)?
        else {
            return Ok(None);
        };
        let m = message_of(&row)?;
        let rows = tx
            .query(
                "SELECT seq, body::text FROM message_events WHERE message_id = $1 ORDER BY seq",
                &[&id],
            )
            .await
            .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        let entries = rows
            .iter()
            .map(|r| {
                let seq: i32 = r.try_get(0).map_err(db_error)?;
                let body: String = r.try_get(1).map_err(db_error)?;
                Ok((format!("{id}/{seq}"), body))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Some((m, entries)))
    }

    /// A message's history with each entry's hash, checked.
    pub fn history(&self, id: &str) -> Result<Option<History>, StoreError> {
        let Some((m, entries)) = self.run(self.read_with_entries(id))? else {
            return Ok(None);
        };
        chain_of(
            &m,
            entries
                .iter()
                .map(|(k, raw)| (k.as_bytes(), raw.as_bytes())),
        )
        .map(Some)
    }

    /// Changes a message in one transaction (see [`crate::store::SledStore::update`]): the row
    /// is locked (`SELECT … FOR UPDATE`) while `f` decides, so two gateways changing one
    /// message take turns, and the second sees the first's change.
    pub fn update<F, N>(&self, id: &str, f: F) -> Result<Option<(Message, bool)>, StoreError>
    where
        F: Fn(&mut Message) -> Option<N>,
        N: Into<Note>,
    {
        let mut c = self.run(self.client())?;
        let tx = self.run(c.transaction()).map_err(db_error)?;
        let row = self
            .run(tx.query_opt(
                &format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = $1 FOR UPDATE"),
                &[&id],
            ))
            .map_err(db_error)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let old = message_of(&row)?;
        let Some(change) = Change::work_out(&old, &f)? else {
            return Ok(Some((old, false)));
        };
        let deliveries = self
            .notifier
            .as_ref()
            .map(|n| n.deliveries(&change.new, &change.event, old.status))
            .unwrap_or_default();
        self.run(async {
            write_change(&tx, &change).await?;
            insert_outbox(&tx, &deliveries).await?;
            tx.commit().await.map_err(db_error)
        })?;
        if !deliveries.is_empty()
            && let Some(n) = &self.notifier
        {
            n.wake();
        }
        self.tell(
            change.new.status.is_waiting() && change.moves_in_the_queue(),
            !deliveries.is_empty(),
        );
        self.publish(live_event(&change.new, &change.event));
        Ok(Some((change.new, true)))
    }

    /// Every message to `to` (or about `invoice`) with its history, oldest first.
    pub fn for_each_history<E: From<StoreError>>(
        &self,
        to: Option<&str>,
        invoice: Option<&str>,
        mut f: impl FnMut(&Message, &History) -> Result<(), E>,
    ) -> Result<(), E> {
        let ids: Vec<String> = match (to, invoice) {
            (Some(t), _) => self.ids_where("recipient = $1", t)?,
            (None, Some(inv)) => self.ids_where("invoice = $1", inv)?,
            (None, None) => return Ok(()),
        };
        for id in ids {
            if let Some(h) = self.history(&id)?
                && let Some(m) = self.get(&id)?
            {
                f(&m, &h)?;
            }
        }
        Ok(())
    }

    pub(super) fn ids_where(&self, cond: &str, value: &str) -> Result<Vec<String>, StoreError> {
        self.run(async {
            let c = self.client().await?;
            let rows = c
                .query(
                    &format!("SELECT id FROM messages WHERE {cond} ORDER BY id"),
                    &[&value],
                )
                .await
                .map_err(db_error)?;
            rows.iter()
                .map(|r| r.try_get(0).map_err(db_error))
                .collect()
        })
    }

    /// Every message to `to` and/or about `invoice`, with its history, oldest first.
    pub fn histories_for(
        &self,
        to: Option<&str>,
        invoice: Option<&str>,
    ) -> Result<Vec<(Message, History)>, StoreError> {
        let mut out = Vec::new();
        self.for_each_history::<StoreError>(to, invoice, |m, h| {
            out.push((m.clone(), h.clone()));
            Ok(())
        })?;
        Ok(out)
    }

    /// Publishes a live event to this gateway's subscribers and the other gateways'.
    pub(super) fn publish(&self, e: LiveEvent) {
        if self.live.receiver_count() > 0 {
            let _ = self.live.send(e.clone());
        }
        self.signals.send(Signal::Live(e));
    }

    /// Tells the other gateways that `new` deliveries are in the outbox and whether a message
    /// became due.
    pub(super) fn tell(&self, due: bool, deliveries: bool) {
        if due {
            self.signals.send(Signal::Due);
        }
        if deliveries {
            self.signals.send(Signal::Outbox);
        }
    }
}

#[cfg(test)]
mod tests;
