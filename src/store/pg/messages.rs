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
use crate::store::hourly::HourCount;
use crate::store::live::LiveEvent;
use crate::store::messages::{Change, first_event_shown};
use crate::store::optout::OptOut;
use crate::store::replies::{SCAN_PER_NUMBER, reply_target_among};
use crate::store::{
    Event, IdempotencyRecord, ListFilter, Message, NextDue, Note, Status, StoreError, history,
};

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

    /// Messages whose `metadata.invoice` is `invoice`, newest first, at most `limit`.
    pub fn messages_about(&self, invoice: &str, limit: usize) -> Result<Vec<Message>, StoreError> {
        self.messages_query(
            &format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages WHERE invoice = $1 ORDER BY id DESC LIMIT $2"
            ),
            &[&invoice, &(limit.min(i64::MAX as usize) as i64)],
        )
    }

    pub(super) fn messages_query(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<Message>, StoreError> {
        self.run(async {
            let c = self.client().await?;
            let rows = c.query(sql, params).await.map_err(db_error)?;
            rows.iter().map(message_of).collect()
        })
    }

    /// The first waiting message due at or before `now`, by priority then due time; else the
    /// earliest due time.
    pub fn next_due(&self, now: DateTime<Utc>) -> Result<NextDue, StoreError> {
        self.next_due_matching(now, 1, &mut |_| true)
    }

    /// Like [`PgStore::next_due`], but only a message `accept` takes: at most `max_scan` due
    /// messages are looked at. Messages another gateway is claiming right now (their rows
    /// locked) are skipped (`FOR UPDATE SKIP LOCKED`) rather than waited for.
    pub fn next_due_matching(
        &self,
        now: DateTime<Utc>,
        max_scan: usize,
        accept: &mut dyn FnMut(&Message) -> bool,
    ) -> Result<NextDue, StoreError> {
        let limit = max_scan.clamp(1, 10_000) as i64;
        let due = self.messages_query(
            &format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages WHERE status IN {WAITING} AND due_at <= $1 \
                 ORDER BY priority, due_at, id LIMIT $2 FOR UPDATE SKIP LOCKED"
            ),
            &[&now, &limit],
        )?;
        if let Some(m) = due.iter().find(|m| accept(m)) {
            return Ok(NextDue::Ready(m.id.clone()));
        }
        let earliest: Option<DateTime<Utc>> = self.run(async {
            let c = self.client().await?;
            c.query_one(
                &format!(
                    "SELECT min(due_at) FROM messages WHERE status IN {WAITING} AND due_at > $1"
                ),
                &[&now],
            )
            .await
            .map_err(db_error)?
            .try_get(0)
            .map_err(db_error)
        })?;
        Ok(match earliest {
            Some(t) => NextDue::At(t),
            None => NextDue::Empty,
        })
    }

    /// Messages newest first, filtered, one page.
    pub fn list(&self, filter: &ListFilter) -> Result<Vec<Message>, StoreError> {
        let limit = filter.limit.clamp(1, 1000) as i64;
        let since = filter
            .since
            .map(|t| ulid::Ulid::from_parts(t.timestamp_millis().max(0) as u64, 0).to_string());
        let status = filter.status.map(Status::as_str);
        self.messages_query(
            &format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages \
                 WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR recipient = $2) \
                 AND ($3::text IS NULL OR id < $3) AND ($4::text IS NULL OR id >= $4) \
                 ORDER BY id DESC LIMIT $5"
            ),
            &[&status, &filter.to, &filter.after, &since, &limit],
        )
    }

    /// How many messages are in each status.
    pub fn counts(&self) -> Result<Vec<(Status, u64)>, StoreError> {
        let rows = self.run(async {
            let c = self.client().await?;
            c.query("SELECT status, count(*) FROM messages GROUP BY status", &[])
                .await
                .map_err(db_error)
        })?;
        let mut counts = [0u64; 9];
        for r in &rows {
            let s: String = r.try_get(0).map_err(db_error)?;
            let n: i64 = r.try_get(1).map_err(db_error)?;
            if let Some(st) = Status::parse(&s) {
                counts[usize::from(st.code())] = n.max(0) as u64;
            }
        }
        Ok(Status::ALL
            .into_iter()
            .map(|s| (s, counts[usize::from(s.code())]))
            .collect())
    }

    fn count_where(&self, cond: &str) -> usize {
        self.run(async {
            let c = self.client().await?;
            c.query_one(&format!("SELECT count(*) FROM messages {cond}"), &[])
                .await
                .map_err(db_error)?
                .try_get::<_, i64>(0)
                .map_err(db_error)
        })
        .map_or(0, |n| n.max(0) as usize)
    }

    /// Number of messages waiting in the queue (0 while the database does not answer).
    pub fn queue_depth(&self) -> usize {
        self.count_where(&format!("WHERE status IN {WAITING}"))
    }

    /// The oldest due time among waiting messages.
    pub fn oldest_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.run(async {
            let c = self.client().await?;
            c.query_one(
                &format!("SELECT min(due_at) FROM messages WHERE status IN {WAITING}"),
                &[],
            )
            .await
            .map_err(db_error)?
            .try_get(0)
            .map_err(db_error)
        })
    }

    /// Ids of messages in a status that is not waiting.
    pub fn ids_with_status(&self, s: Status) -> Result<Vec<String>, StoreError> {
        self.ids_where("status = $1", s.as_str())
    }

    /// Number of messages stored (0 while the database does not answer).
    pub fn len(&self) -> usize {
        self.count_where("")
    }

    /// Whether the store holds no message.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The counts of every hour from the one holding `from` to the one holding `to`, per
    /// modem, oldest first.
    pub fn hourly(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<HourCount>, StoreError> {
        let start = (from.timestamp().max(0) / 3600) as i32;
        let end = (to.timestamp().max(0) / 3600) as i32;
        let rows = self.run(async {
            let c = self.client().await?;
            c.query(
                "SELECT hour, modem, sent, delivered, failed FROM hourly \
                 WHERE hour >= $1 AND hour <= $2 ORDER BY hour, modem",
                &[&start, &end],
            )
            .await
            .map_err(db_error)
        })?;
        rows.iter()
            .map(|r| {
                let hour: i32 = r.try_get(0).map_err(db_error)?;
                let n = |i: usize| -> Result<u64, StoreError> {
                    Ok(r.try_get::<_, i64>(i).map_err(db_error)?.max(0) as u64)
                };
                Ok(HourCount {
                    hour: DateTime::<Utc>::from_timestamp(i64::from(hour) * 3600, 0)
                        .unwrap_or(from),
                    modem: r.try_get(1).map_err(db_error)?,
                    sent: n(2)?,
                    delivered: n(3)?,
                    failed: n(4)?,
                })
            })
            .collect()
    }

    /// A number's messages, newest first, at most `limit`.
    pub fn messages_to(&self, to: &str, limit: usize) -> Result<Vec<Message>, StoreError> {
        self.messages_query(
            &format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages WHERE recipient = $1 ORDER BY id DESC LIMIT $2"
            ),
            &[&to, &(limit.min(i64::MAX as usize) as i64)],
        )
    }

    /// The numbers messages went to whose last `n` digits (at least 7) are those of `sender`,
    /// at most `max` of them, in order.
    pub fn numbers_ending_like(
        &self,
        sender: &str,
        n: usize,
        max: usize,
    ) -> Result<Vec<String>, StoreError> {
        let numbers: Vec<String> = self.run(async {
            let c = self.client().await?;
            let rows = c
                .query(
                    "SELECT DISTINCT recipient FROM messages ORDER BY recipient",
                    &[],
                )
                .await
                .map_err(db_error)?;
            rows.iter()
                .map(|r| r.try_get(0).map_err(db_error))
                .collect::<Result<Vec<String>, StoreError>>()
        })?;
        Ok(numbers
            .into_iter()
            .filter(|number| crate::numbers::same_trailing_digits(number, sender, n))
            .take(max)
            .collect())
    }

    /// The message an answer from `to` at `now` belongs to (see
    /// [`crate::store::SledStore::reply_target`]).
    pub fn reply_target(
        &self,
        to: &str,
        now: DateTime<Utc>,
        window: chrono::Duration,
        unanswered: bool,
        except: Option<&str>,
    ) -> Result<Option<Message>, StoreError> {
        let recent = self.messages_to(to, SCAN_PER_NUMBER)?;
        Ok(reply_target_among(recent, now, window, unanswered, except))
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
mod tests {
    use std::collections::HashMap;

    use chrono::Duration;

    use tokio::sync::broadcast;

    use crate::store::pg::testdb;
    use crate::store::{Priority, Status, Store, test_message, test_record};

    use super::*;

    fn msg(to: &str, status: Status, due: DateTime<Utc>, prio: Priority) -> Message {
        let mut m = test_message(to);
        m.status = status;
        m.accepted_as = status;
        m.due_at = due;
        m.priority = prio;
        m
    }

    /// Runs `scenario` on an embedded store and on a PostgreSQL one (when there is a server).
    fn on_both(scenario: impl Fn(&Store)) {
        let dir = tempfile::tempdir().unwrap();
        scenario(&Store::open(dir.path(), 16).unwrap());
        if let Some(url) = testdb::database() {
            scenario(&Store::connect(&url, Vec::new()).unwrap());
        }
    }

    #[test]
    fn insert_update_history_and_dispatch_order() {
        on_both(|store| {
            let now = Utc::now();
            let later = now + Duration::hours(1);
            let low = msg(
                "+15550000001",
                Status::Queued,
                now - Duration::seconds(10),
                Priority::Low,
            );
            let mut normal = msg(
                "+15550000002",
                Status::Queued,
                now - Duration::seconds(5),
                Priority::Normal,
            );
            normal.metadata = Some(serde_json::json!({"invoice": "INV-7"}));
            let high_later = msg("+15550000003", Status::Scheduled, later, Priority::High);
            store
                .insert(&[low.clone(), normal.clone(), high_later.clone()], None)
                .unwrap();
            assert_eq!(store.get(&normal.id).unwrap().unwrap(), normal);
            assert_eq!(store.get("01ARZ3NDEKTSV4RRFFQ69G5FAV").unwrap(), None);
            // A high-priority message not yet due does not block a due normal one.
            assert_eq!(
                store.next_due(now).unwrap(),
                NextDue::Ready(normal.id.clone())
            );
            let (m, changed) = store
                .update(&normal.id, |m| {
                    m.status = Status::Sending;
                    Some("dispatched")
                })
                .unwrap()
                .unwrap();
            assert!(changed);
            assert_eq!(m.status, Status::Sending);
            assert_eq!(store.get(&normal.id).unwrap().unwrap(), m);
            assert_eq!(store.next_due(now).unwrap(), NextDue::Ready(low.id.clone()));
            store
                .update(&low.id, |m| {
                    m.status = Status::Cancelled;
                    Some("cancelled")
                })
                .unwrap();
            match store.next_due(now).unwrap() {
                // Milliseconds (sled) or microseconds (PostgreSQL): the same moment.
                NextDue::At(t) => assert!((t - later).num_milliseconds().abs() <= 1, "{t}"),
                other => panic!("{other:?}"),
            }
            assert_eq!(
                store.next_due(later).unwrap(),
                NextDue::Ready(high_later.id.clone())
            );
            // A refusing `accept` passes over what is due.
            assert_eq!(
                store.next_due_matching(later, 10, &mut |_| false).unwrap(),
                NextDue::Empty
            );
            let events = store.events(&normal.id).unwrap();
            assert_eq!(events.len(), 2);
            assert_eq!(events[1].status, Status::Sending);
            let h = store.history(&normal.id).unwrap().unwrap();
            assert!(h.verified, "{:?}", h.problem);
            assert_eq!(h.events.len(), 2);
            let counts: HashMap<_, _> = store.counts().unwrap().into_iter().collect();
            assert_eq!(counts[&Status::Sending], 1);
            assert_eq!(counts[&Status::Cancelled], 1);
            assert_eq!(counts[&Status::Scheduled], 1);
            assert_eq!(store.queue_depth(), 1);
            assert_eq!(store.len(), 3);
            assert_eq!(
                store.oldest_due().unwrap().map(|t| t.timestamp()),
                Some(later.timestamp())
            );
            assert_eq!(
                store.ids_with_status(Status::Sending).unwrap(),
                vec![normal.id.clone()]
            );
            // Unchanged update writes nothing.
            let (_, changed) = store.update(&normal.id, |_| None::<Note>).unwrap().unwrap();
            assert!(!changed);
            assert_eq!(store.events(&normal.id).unwrap().len(), 2);
            // Listings: newest first, by status, by recipient, by page.
            let all = store
                .list(&ListFilter {
                    limit: 10,
                    ..Default::default()
                })
                .unwrap();
            let ids: Vec<&str> = all.iter().map(|m| m.id.as_str()).collect();
            let mut newest_first = [&high_later.id, &normal.id, &low.id];
            newest_first.sort_by(|a, b| b.cmp(a));
            assert_eq!(ids, newest_first);
            let page = store
                .list(&ListFilter {
                    limit: 10,
                    after: Some(ids[1].to_string()),
                    ..Default::default()
                })
                .unwrap();
            assert_eq!(page.len(), 1);
            assert_eq!(page[0].id, ids[2]);
            let to = store
                .list(&ListFilter {
                    limit: 10,
                    to: Some("+15550000003".into()),
                    ..Default::default()
                })
                .unwrap();
            assert_eq!(to.len(), 1);
            let cancelled = store
                .list(&ListFilter {
                    limit: 10,
                    status: Some(Status::Cancelled),
                    ..Default::default()
                })
                .unwrap();
            assert_eq!(cancelled.len(), 1);
            assert_eq!(cancelled[0].id, low.id);
            assert_eq!(store.messages_about("INV-7", 10).unwrap().len(), 1);
            assert_eq!(store.histories_for(None, Some("INV-7")).unwrap().len(), 1);
            assert_eq!(
                store
                    .histories_for(Some("+15550000001"), None)
                    .unwrap()
                    .len(),
                1
            );
            // An Idempotency-Key is used once: the second insert with it stores nothing.
            let rec = test_record(serde_json::json!({"id": "x"}));
            let a = test_message("+15550000009");
            let b = test_message("+15550000009");
            store.insert(&[a], Some(("billing\0k1", &rec))).unwrap();
            let e = store
                .insert(std::slice::from_ref(&b), Some(("billing\0k1", &rec)))
                .unwrap_err();
            assert!(matches!(e, StoreError::Conflict(_)), "{e}");
            assert_eq!(store.get(&b.id).unwrap(), None);
        });
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_message_to_an_opted_out_number_is_refused_and_nothing_written() {
        let dir = tempfile::tempdir().unwrap();
        let mut stores = vec![Store::open(dir.path(), 16).unwrap()];
        if let Some(url) = testdb::database() {
            stores.push(Store::connect(&url, Vec::new()).unwrap());
        }
        for store in stores {
            eprintln!("backend: {}", store.backend_name());
            let tag = ulid::Ulid::generate().to_string();
            let (a, b) = (format!("+1555{}", &tag[20..]), "+15550001111".to_string());
            let first = test_message(&a);
            assert_eq!(
                store.insert_unless_opted_out(&first, None).await.unwrap(),
                None
            );
            assert_eq!(store.get(&first.id).unwrap().unwrap(), first);
            store
                .opt_out(&OptOut {
                    number: a.clone(),
                    opted_out_at: Utc::now(),
                    source: "api".into(),
                    keyword: None,
                    inbound_id: None,
                    note: None,
                })
                .unwrap();
            // Refused with the opt-out, and neither the message nor its key is written.
            let refused = test_message(&a);
            let key = format!("k\0{tag}-1");
            let rec = test_record(serde_json::json!({"id": refused.id}));
            let o = store
                .insert_unless_opted_out(&refused, Some((&key, &rec)))
                .await
                .unwrap()
                .unwrap();
            assert_eq!((o.number.as_str(), o.source.as_str()), (a.as_str(), "api"));
            assert_eq!(store.get(&refused.id).unwrap(), None);
            assert_eq!(store.idempotency(&key).unwrap(), None);
            // Another number with that key goes in; the key used again is a conflict.
            let other = test_message(&b);
            assert_eq!(
                store
                    .insert_unless_opted_out(&other, Some((&key, &rec)))
                    .await
                    .unwrap(),
                None
            );
            assert!(store.idempotency(&key).unwrap().is_some());
            let again = test_message(&b);
            assert!(matches!(
                store
                    .insert_unless_opted_out(&again, Some((&key, &rec)))
                    .await,
                Err(StoreError::Conflict(_))
            ));
            assert_eq!(store.get(&again.id).unwrap(), None);
            // An erased number stays refused.
            assert!(store.erase_optout(&a, Utc::now()).unwrap());
            let after = test_message(&a);
            assert!(
                store
                    .insert_unless_opted_out(&after, None)
                    .await
                    .unwrap()
                    .is_some()
            );
            assert_eq!(store.get(&after.id).unwrap(), None);
        }
    }

    #[test]
    fn replies_find_the_question_they_answer() {
        on_both(|store| {
            let now = Utc::now();
            let mut asked = msg("+447700900123", Status::Sent, now, Priority::Normal);
            asked.reply_options = Some([("1".to_string(), "call_me".to_string())].into());
            asked.sent_at = Some(now - Duration::minutes(5));
            let plain = msg("+447700900123", Status::Sent, now, Priority::Normal);
            store.insert(&[asked.clone(), plain], None).unwrap();
            assert_eq!(store.messages_to("+447700900123", 10).unwrap().len(), 2);
            let hit = store
                .reply_target("+447700900123", now, Duration::hours(1), true, None)
                .unwrap();
            assert_eq!(hit.map(|m| m.id), Some(asked.id.clone()));
            // Outside the window, or left out: none.
            assert_eq!(
                store
                    .reply_target("+447700900123", now, Duration::minutes(1), true, None)
                    .unwrap(),
                None
            );
            assert_eq!(
                store
                    .reply_target(
                        "+447700900123",
                        now,
                        Duration::hours(1),
                        true,
                        Some(&asked.id)
                    )
                    .unwrap(),
                None
            );
            assert_eq!(
                store.numbers_ending_like("07700900123", 9, 5).unwrap(),
                vec!["+447700900123".to_string()]
            );
        });
    }

    /// What one gateway does shows live on another, and wakes its dispatcher.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn another_gateways_changes_show_live_and_wake_the_dispatcher() {
        let Some(url) = testdb::database() else {
            return;
        };
        let a = Store::connect(&url, Vec::new()).unwrap();
        let b = Store::connect(&url, Vec::new()).unwrap();
        let mut live = a.subscribe();
        let due = a.due_elsewhere().unwrap();
        let m = test_message("+15550001234");
        // The listener connects in the background: insert until the wake-up arrives.
        let woken = async {
            loop {
                let notified = due.notified();
                b.insert(&[test_message("+15550001234")], None).unwrap();
                if tokio::time::timeout(std::time::Duration::from_millis(500), notified)
                    .await
                    .is_ok()
                {
                    return;
                }
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(20), woken)
            .await
            .expect("a's dispatcher is woken by b's new message");
        b.insert(std::slice::from_ref(&m), None).unwrap();
        let seen = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            loop {
                match live.recv().await {
                    Ok(LiveEvent::Message {
                        message_id, kind, ..
                    }) if message_id == m.id => {
                        return kind;
                    }
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(e) => panic!("{e}"),
                }
            }
        })
        .await
        .expect("b's new message shows on a's live events");
        assert_eq!(seen, "accepted");
        // A's own change reaches its subscribers once, not again through the database.
        a.update(&m.id, |m| {
            m.status = Status::Cancelled;
            Some("cancelled")
        })
        .unwrap();
        let mut own = 0;
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), async {
            while let Ok(e) = live.recv().await {
                if matches!(&e, LiveEvent::Message { message_id, seq: 1, .. } if *message_id == m.id) {
                    own += 1;
                }
            }
        })
        .await;
        assert_eq!(own, 1);
    }

    /// Two gateways on one database try to claim the same messages at once: each message is
    /// taken by exactly one of them.
    #[test]
    fn two_gateways_never_claim_the_same_message() {
        let Some(url) = testdb::database() else {
            return;
        };
        let a = Store::connect(&url, Vec::new()).unwrap();
        let b = Store::connect(&url, Vec::new()).unwrap();
        let now = Utc::now();
        let ms: Vec<Message> = (0..40)
            .map(|i| {
                msg(
                    &format!("+1555000{i:04}"),
                    Status::Queued,
                    now,
                    Priority::Normal,
                )
            })
            .collect();
        a.insert(&ms, None).unwrap();
        let claim = |store: Store, who: &'static str| {
            std::thread::spawn(move || {
                let mut mine = Vec::new();
                loop {
                    let NextDue::Ready(id) = store.next_due(Utc::now()).unwrap() else {
                        return mine;
                    };
                    let r = store
                        .update(&id, |m| {
                            (m.status == Status::Queued).then(|| {
                                m.status = Status::Sending;
                                m.modem = Some(who.into());
                                "claimed"
                            })
                        })
                        .unwrap();
                    if let Some((_, true)) = r {
                        mine.push(id);
                    }
                }
            })
        };
        let ta = claim(a.clone(), "a");
        let tb = claim(b, "b");
        let (ma, mb) = (ta.join().unwrap(), tb.join().unwrap());
        assert_eq!(ma.len() + mb.len(), 40, "{} + {}", ma.len(), mb.len());
        let mut all: Vec<&String> = ma.iter().chain(&mb).collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 40, "a message was claimed twice");
        for m in &ms {
            let h = a.history(&m.id).unwrap().unwrap();
            assert!(h.verified);
            assert_eq!(h.events.len(), 2, "one claim each");
        }
    }
}
