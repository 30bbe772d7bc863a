//! Reading messages on PostgreSQL: a number's or an invoice's messages, listings, the
//! dispatch order (`FOR UPDATE SKIP LOCKED`), counts and the hourly figures. The writes are in
//! [`super::messages`].

use chrono::{DateTime, Utc};

use super::messages::{MESSAGE_COLUMNS, WAITING, message_of};
use super::{PgStore, db_error};
use crate::store::hourly::HourCount;
use crate::store::replies::{SCAN_PER_NUMBER, reply_target_among};
use crate::store::{ListFilter, Message, NextDue, Status, StoreError};

impl PgStore {
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
}
