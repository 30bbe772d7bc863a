//! The store's seam ([`super`]): messages, their history and what is left of removed ones
//! (tombstones), the hourly counts, idempotency records, and the lookups replies need.

use super::*;

impl Store {
    /// Changes a message in one transaction: see [`SledStore::update`].
    pub fn update<F, N>(&self, id: &str, f: F) -> Result<Option<(Message, bool)>, StoreError>
    where
        F: Fn(&mut Message) -> Option<N>,
        N: Into<Note>,
    {
        match &self.backend {
            Backend::Sled(db) => db.update(id, f),
            Backend::Postgres(db) => db.update(id, f),
        }
    }

    /// Every message to `to` (or about `invoice`) with its history: see
    /// [`SledStore::for_each_history`].
    pub fn for_each_history<E: From<StoreError>>(
        &self,
        to: Option<&str>,
        invoice: Option<&str>,
        f: impl FnMut(&Message, &History) -> Result<(), E>,
    ) -> Result<(), E> {
        match &self.backend {
            Backend::Sled(db) => db.for_each_history(to, invoice, f),
            Backend::Postgres(db) => db.for_each_history(to, invoice, f),
        }
    }

    /// The first due message `accept` takes: see [`SledStore::next_due_matching`].
    pub fn next_due_matching(
        &self,
        now: DateTime<Utc>,
        max_scan: usize,
        accept: &mut dyn FnMut(&Message) -> bool,
    ) -> Result<NextDue, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.next_due_matching(now, max_scan, accept),
            Backend::Postgres(db) => db.next_due_matching(now, max_scan, accept),
        }
    }

    /// A message's history with each entry's hash, checked; `None` when there is no such
    /// message.
    pub fn history(&self, id: &str) -> Result<Option<History>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.history(id),
            Backend::Postgres(db) => db.history(id),
        }
    }

    /// Checks every message's history, and the chains of tombstones of removed messages.
    pub fn verify_all_histories(&self) -> Result<VerifyReport, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.verify_all_histories(),
            Backend::Postgres(db) => db.verify_all_histories(),
        }
    }

    /// Every message to `to` and/or about `invoice`, with its history, oldest first (see
    /// [`Store::for_each_history`]).
    pub fn histories_for(
        &self,
        to: Option<&str>,
        invoice: Option<&str>,
    ) -> Result<Vec<(Message, History)>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.histories_for(to, invoice),
            Backend::Postgres(db) => db.histories_for(to, invoice),
        }
    }

    /// The counts of every hour from the one holding `from` to the one holding `to`, per modem,
    /// oldest first. Hours with nothing are left out.
    pub fn hourly(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<HourCount>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.hourly(from, to),
            Backend::Postgres(db) => db.hourly(from, to),
        }
    }

    /// The idempotency record for a key.
    pub fn idempotency(&self, key: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.idempotency(key),
            Backend::Postgres(db) => db.idempotency(key),
        }
    }

    /// Replaces the answer kept for an Idempotency-Key (call [`Store::durable`] after).
    pub fn put_idempotency(&self, key: &str, r: &IdempotencyRecord) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.put_idempotency(key, r),
            Backend::Postgres(db) => db.put_idempotency(key, r),
        }
    }

    /// One step of `[retention] idempotency_after`: records stored at or before `cutoff` are
    /// removed (a retry after that is a new request); at most `limit` looked at, from `after`.
    pub fn purge_idempotency(
        &self,
        cutoff: DateTime<Utc>,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<SweepStep, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.purge_idempotency(cutoff, after, limit),
            Backend::Postgres(db) => db.purge_idempotency(cutoff, after, limit),
        }
    }

    /// Messages whose `metadata.invoice` is `invoice`, newest first, at most `limit`.
    pub fn messages_about(&self, invoice: &str, limit: usize) -> Result<Vec<Message>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.messages_about(invoice, limit),
            Backend::Postgres(db) => db.messages_about(invoice, limit),
        }
    }

    /// The first waiting message due at or before `now`, by priority then due time. Also returns
    /// the earliest due time of all waiting messages when nothing is due yet.
    pub fn next_due(&self, now: DateTime<Utc>) -> Result<NextDue, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.next_due(now),
            Backend::Postgres(db) => db.next_due(now),
        }
    }

    /// Messages newest first, filtered, one page.
    pub fn list(&self, filter: &ListFilter) -> Result<Vec<Message>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.list(filter),
            Backend::Postgres(db) => db.list(filter),
        }
    }

    /// How many messages are in each status (kept in memory: O(1)).
    pub fn counts(&self) -> Result<Vec<(Status, u64)>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.counts(),
            Backend::Postgres(db) => db.counts(),
        }
    }

    /// Number of messages waiting in the queue.
    pub fn queue_depth(&self) -> usize {
        match &self.backend {
            Backend::Sled(db) => db.queue_depth(),
            Backend::Postgres(db) => db.queue_depth(),
        }
    }

    /// The oldest due time among waiting messages.
    pub fn oldest_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.oldest_due(),
            Backend::Postgres(db) => db.oldest_due(),
        }
    }

    /// Ids of messages in a status that is not waiting (for start-up recovery).
    pub fn ids_with_status(&self, s: Status) -> Result<Vec<String>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.ids_with_status(s),
            Backend::Postgres(db) => db.ids_with_status(s),
        }
    }

    /// Number of messages stored.
    pub fn len(&self) -> usize {
        match &self.backend {
            Backend::Sled(db) => db.len(),
            Backend::Postgres(db) => db.len(),
        }
    }

    /// Whether the store holds no message.
    pub fn is_empty(&self) -> bool {
        match &self.backend {
            Backend::Sled(db) => db.is_empty(),
            Backend::Postgres(db) => db.is_empty(),
        }
    }

    /// Inserts new messages (all or none) and the idempotency record when given. Call
    /// [`Store::durable`] before acknowledging.
    pub fn insert(
        &self,
        messages: &[Message],
        idempotency: Option<(&str, &IdempotencyRecord)>,
    ) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.insert(messages, idempotency),
            Backend::Postgres(db) => db.insert(messages, idempotency),
        }
    }

    /// Inserts one new message (and the idempotency record when given) unless its number
    /// opted out: `Ok(Some(opt-out))` when it did, and then nothing is written. Call
    /// [`Store::durable`] before acknowledging.
    pub async fn insert_unless_opted_out(
        &self,
        m: &Message,
        idempotency: Option<(&str, &IdempotencyRecord)>,
    ) -> Result<Option<OptOut>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => {
                if let Some(o) = db.optout(&m.to)? {
                    return Ok(Some(o));
                }
                db.insert(std::slice::from_ref(m), idempotency)?;
                Ok(None)
            }
            Backend::Postgres(db) => db.insert_unless_opted_out(m, idempotency).await,
        }
    }

    /// A message by id.
    pub fn get(&self, id: &str) -> Result<Option<Message>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.get(id),
            Backend::Postgres(db) => db.get(id),
        }
    }

    /// A message's history, oldest first. The first event (accepted) comes from the record.
    pub fn events(&self, id: &str) -> Result<Vec<Event>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.events(id),
            Backend::Postgres(db) => db.events(id),
        }
    }

    /// A message and its history as of the same moment: entries written after the record was
    /// read are left out.
    pub fn get_with_events(&self, id: &str) -> Result<Option<(Message, Vec<Event>)>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.get_with_events(id),
            Backend::Postgres(db) => db.get_with_events(id),
        }
    }

    /// Replaces a message's text by its SHA-256 (see [`crate::domain::Redaction`]) and records
    /// a `text_redacted` history entry saying `reason` (by `actor`, the API key that asked, if
    /// one did). The history still verifies: the chain
    /// starts from the hash the first entry had with the text. The record's `updated_at` stays
    /// (it is when the message last moved, which retention counts from).
    pub fn redact_text(
        &self,
        id: &str,
        reason: &str,
        actor: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Redacted, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.redact_text(id, reason, actor, now),
            Backend::Postgres(db) => db.redact_text(id, reason, actor, now),
        }
    }

    /// Removes a message whole: its record, history and index entries, in one transaction
    /// with a [`Tombstone`](super::tombstones::Tombstone) saying `reason` in the day's chain.
    /// Returns the message as it was, `None` when there is no such message.
    pub fn remove_message(
        &self,
        id: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Message>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.remove_message(id, reason, now),
            Backend::Postgres(db) => db.remove_message(id, reason, now),
        }
    }

    /// One step of `[retention] message_text_after`: the texts of finished messages whose last
    /// change is at or before `cutoff` are redacted ([`Store::redact_text`]); at most `limit`
    /// index entries are looked at, from `after`.
    pub fn redact_finished_texts(
        &self,
        cutoff: DateTime<Utc>,
        now: DateTime<Utc>,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<SweepStep, StoreError> {
        let (found, next) = self.finished_before(after, cutoff, limit, |m| m.redacted.is_none())?;
        let mut done = 0;
        for m in found {
            if let Redacted::Now(_) =
                self.redact_text(&m.id, "retention: message_text_after", None, now)?
            {
                done += 1;
            }
        }
        Ok(SweepStep { done, next })
    }

    /// One step of `[retention] messages_after`: finished messages whose last change is at or
    /// before `cutoff` are removed with a tombstone ([`Store::remove_message`]); at most
    /// `limit` index entries are looked at, from `after`.
    pub fn remove_finished_messages(
        &self,
        cutoff: DateTime<Utc>,
        now: DateTime<Utc>,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<SweepStep, StoreError> {
        let (found, next) = self.finished_before(after, cutoff, limit, |_| true)?;
        let mut done = 0;
        for m in found {
            if self.remove_message(&m.id, "retention", now)?.is_some() {
                done += 1;
            }
        }
        Ok(SweepStep { done, next })
    }

    /// Finished messages whose last change is at or before `cutoff` and that `keep` keeps,
    /// from the cursor `after`; at most `limit` entries are looked at. The cursor to go on
    /// from, `None` at the end.
    fn finished_before(
        &self,
        after: Option<&[u8]>,
        cutoff: DateTime<Utc>,
        limit: usize,
        keep: impl Fn(&Message) -> bool,
    ) -> Result<(Vec<Message>, Option<Vec<u8>>), StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.finished_before(after, cutoff, limit, keep),
            Backend::Postgres(db) => db.finished_before(after, cutoff, limit, keep),
        }
    }

    /// A number's messages, newest first, at most `limit`.
    pub fn messages_to(&self, to: &str, limit: usize) -> Result<Vec<Message>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.messages_to(to, limit),
            Backend::Postgres(db) => db.messages_to(to, limit),
        }
    }

    /// The numbers messages went to whose last `n` digits (at least 7) are those of `sender`, at
    /// most `max` of them. Reads the keys of the recipient index: for the rare sender that does
    /// not read as a number.
    pub fn numbers_ending_like(
        &self,
        sender: &str,
        n: usize,
        max: usize,
    ) -> Result<Vec<String>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.numbers_ending_like(sender, n, max),
            Backend::Postgres(db) => db.numbers_ending_like(sender, n, max),
        }
    }

    /// The message an answer from `to` at `now` belongs to: of the messages with
    /// `reply_options` that went out to it (sent or delivered) within `window` before `now`,
    /// the one sent last. With `unanswered`, only one without replies yet; `except` is left out.
    pub fn reply_target(
        &self,
        to: &str,
        now: DateTime<Utc>,
        window: chrono::Duration,
        unanswered: bool,
        except: Option<&str>,
    ) -> Result<Option<Message>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.reply_target(to, now, window, unanswered, except),
            Backend::Postgres(db) => db.reply_target(to, now, window, unanswered, except),
        }
    }

    /// The tombstones written on `day` (UTC), oldest first, with their chain checked.
    pub fn tombstones_on(&self, day: NaiveDate) -> Result<TombstoneDay, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.tombstones_on(day),
            Backend::Postgres(db) => db.tombstones_on(day),
        }
    }

    /// Checks every day's chain of tombstones: how many tombstones, and the days whose chain
    /// breaks (named `tombstones of <day>`), with where.
    pub fn verify_tombstones(&self) -> Result<(u64, Vec<(String, String)>), StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.verify_tombstones(),
            Backend::Postgres(db) => db.verify_tombstones(),
        }
    }

    /// How many tombstones are kept.
    pub fn tombstones_len(&self) -> usize {
        match &self.backend {
            Backend::Sled(db) => db.tombstones_len(),
            Backend::Postgres(db) => db.tombstones_len(),
        }
    }
}
