//! The message aggregate: a message and its index entries and history change together, in
//! one transaction ([`Store::insert`], [`Store::update`]).

use std::sync::atomic::Ordering;

use chrono::{DateTime, Utc};
use sled::Transactional;
use sled::transaction::{TransactionError, TransactionalTree};

use super::{
    Event, IdempotencyRecord, Message, Note, Notifier, SledStore, Status, StoreError, Tx, abort,
    decode, decode_message, due_key, encode, event_key, hourly, id_key, idempotency_row,
    invoice_key, outbox, report_key, sha256_hex, status_key, to_key,
};

impl SledStore {
    /// Inserts new messages (all or none) and the idempotency record when given. Call
    /// [`Store::durable`] before acknowledging.
    pub fn insert(
        &self,
        messages: &[Message],
        idempotency: Option<(&str, &IdempotencyRecord)>,
    ) -> Result<(), StoreError> {
        let _w = self.writing();
        let i = &self.inner;
        let rows = message_rows(messages)?;
        if idempotency.is_none() {
            // Nothing else to keep atomic with the messages: write the index entries one by
            // one, then the records in one atomic step, the commit point. Cheaper than a
            // transaction (no per-key reads, no global lock held over the index writes), and
            // as safe: readers never see a record without its index entries, and an insert cut
            // short by a crash leaves at most index entries without a record (nothing was
            // acknowledged), which readers skip and `next_due` removes.
            for (m, (id, _)) in messages.iter().zip(&rows) {
                if m.status.is_waiting() {
                    i.due.insert(due_key(m, id), &[m.status.code()])?;
                } else {
                    i.status.insert(status_key(m.status, id), &[])?;
                }
                i.to.insert(to_key(&m.to, id), &[])?;
                if let Some(k) = invoice_key(m, id) {
                    i.invoices.insert(k, &[])?;
                }
            }
            if let [(id, json)] = rows.as_slice() {
                i.messages.insert(&id[..], json.as_slice())?;
            } else {
                let mut recs = sled::Batch::default();
                for (id, json) in rows {
                    recs.insert(&id[..], json);
                }
                i.messages.apply_batch(recs)?;
            }
            for m in messages {
                self.count(m.status, 1);
                self.publish(m);
            }
            return Ok(());
        }
        let idem = idempotency_row(idempotency)?;
        (
            &i.messages,
            &i.due,
            &i.status,
            &i.to,
            &i.idempotency,
            &i.invoices,
        )
            .transaction(|(tm, td, ts, tt, ti, tinv)| {
                if let Some((k, v)) = &idem {
                    // A key already written (a retry that raced past the API's guard, or a
                    // second process) is refused, never overwritten: one request, one message.
                    if ti.get(k.as_slice())?.is_some() {
                        return Err(abort(StoreError::Conflict(
                            "this Idempotency-Key was used already".into(),
                        )));
                    }
                    ti.insert(k.as_slice(), v.as_slice())?;
                }
                insert_in(tm, td, ts, tt, tinv, messages, &rows)?;
                Ok::<_, Tx>(())
            })?;
        for m in messages {
            self.count(m.status, 1);
            self.publish(m);
        }
        Ok(())
    }

    pub(super) fn count(&self, s: Status, delta: i64) {
        if let Some(c) = self.inner.counts.get(usize::from(s.code())) {
            c.fetch_add(delta, Ordering::Relaxed);
        }
    }

    /// A message by id.
    pub fn get(&self, id: &str) -> Result<Option<Message>, StoreError> {
        let Some(key) = id_key(id) else {
            return Ok(None);
        };
        match self.inner.messages.get(key)? {
            Some(v) => Ok(Some(decode_message(&key, &v)?)),
            None => Ok(None),
        }
    }

    /// A message's history, oldest first. The first event (accepted) comes from the record.
    pub fn events(&self, id: &str) -> Result<Vec<Event>, StoreError> {
        Ok(self
            .get_with_events(id)?
            .map(|(_, events)| events)
            .unwrap_or_default())
    }

    /// A message and its history as of the same moment: entries written after the record was
    /// read are left out.
    pub fn get_with_events(&self, id: &str) -> Result<Option<(Message, Vec<Event>)>, StoreError> {
        let Some(m) = self.get(id)? else {
            return Ok(None);
        };
        let Some(key) = id_key(id) else {
            return Ok(None);
        };
        let mut out = vec![first_event_shown(&m)];
        for r in self.inner.events.scan_prefix(key) {
            let (k, v) = r?;
            let e: Event = decode(&k, &v)?;
            if e.seq > m.history_len {
                break;
            }
            if e.seq == 0 {
                // Stores written before the first event was implied hold it explicitly.
                out[0] = e;
            } else {
                out.push(e);
            }
        }
        Ok(Some((m, out)))
    }

    /// Changes a message in one transaction: `f` gets the current record and returns what to
    /// record in its history (a reason, or a [`Note`]), or `None` to leave it unchanged.
    /// Indexes, the history's hash chain and the webhook deliveries of the [`Notifier`] follow
    /// in the same transaction. Returns the message after the change (or unchanged) and whether
    /// it changed, `None` when there is no such id.
    pub fn update<F, N>(&self, id: &str, f: F) -> Result<Option<(Message, bool)>, StoreError>
    where
        F: Fn(&mut Message) -> Option<N>,
        N: Into<Note>,
    {
        let _w = self.writing();
        let Some(key) = id_key(id) else {
            return Ok(None);
        };
        let i = &self.inner;
        let notifier = self.notifier();
        let trees = Trees {
            messages: &i.messages,
            due: &i.due,
            status: &i.status,
            events: &i.events,
            outbox: &i.outbox,
            reports: &i.reports,
            hourly: &i.hourly,
        };
        let r = trees.transaction(|tx| update_in(tx, &key, &f, notifier.as_deref()))?;
        Ok(r.map(|(old, new, changed)| {
            if old != new.status {
                self.count(old, -1);
                self.count(new.status, 1);
            }
            if changed {
                self.publish(&new);
            }
            (new, changed)
        }))
    }
}

/// What one bounded step of a retention pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepStep {
    /// Records changed or removed.
    pub done: usize,
    /// Where the next step starts (the last key looked at); `None` when the tree was read to
    /// its end, so the next pass starts from the beginning again.
    pub next: Option<Vec<u8>>,
}

/// What [`Store::redact_text`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Redacted {
    /// No such message.
    NotFound,
    /// Its text was removed now.
    Now(Box<Message>),
    /// Its text was removed before.
    Already(Box<Message>),
}

/// The ULID time (ms) of a 16-byte id.
pub(super) fn id_millis(id: &[u8]) -> u64 {
    let mut b = [0u8; 16];
    let n = id.len().min(16);
    b[..n].copy_from_slice(&id[..n]);
    (u128::from_be_bytes(b) >> 80) as u64
}

impl SledStore {
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
        let _w = self.writing();
        let Some(key) = id_key(id) else {
            return Ok(Redacted::NotFound);
        };
        let i = &self.inner;
        let r = (&i.messages, &i.events).transaction(|(tm, te)| {
            let Some(v) = tm.get(key)? else {
                return Ok(Redacted::NotFound);
            };
            let m = decode_message(&key, &v).map_err(abort)?;
            if m.redacted.is_some() {
                return Ok(Redacted::Already(Box::new(m)));
            }
            let c = redaction(&m, reason, actor, now).map_err(abort)?;
            te.insert(event_key(&key, c.event.seq), c.event_json.as_slice())?;
            tm.insert(&key[..], encode(&c.new).map_err(abort)?)?;
            Ok::<_, Tx>(Redacted::Now(Box::new(c.new)))
        })?;
        Ok(r)
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
        let _w = self.writing();
        let Some(key) = id_key(id) else {
            return Ok(None);
        };
        let i = &self.inner;
        let _one_writer = self.tombstone_lock();
        for _ in 0..REMOVE_TRIES {
            let Some(seen) = i.messages.get(key)? else {
                return Ok(None);
            };
            let m = decode_message(&key, &seen)?;
            let tomb = self.next_tombstone(super::tombstones::Tombstone::of(&m, reason, now))?;
            let r = (
                &i.messages,
                &i.due,
                &i.status,
                &i.to,
                &i.events,
                &i.invoices,
                &i.reports,
                &i.tombstones,
            )
                .transaction(|(tm, td, ts, tt, te, tinv, tr, ttomb)| {
                    match tm.get(key)? {
                        Some(v) if v == seen => {}
                        // Changed in between (or gone): read again.
                        _ => return Ok(false),
                    }
                    tm.remove(&key[..])?;
                    if m.status.is_waiting() {
                        td.remove(due_key(&m, &key))?;
                    } else {
                        ts.remove(status_key(m.status, &key))?;
                    }
                    tt.remove(to_key(&m.to, &key))?;
                    for seq in 0..=m.history_len {
                        te.remove(event_key(&key, seq))?;
                    }
                    if let Some(k) = invoice_key(&m, &key) {
                        tinv.remove(k)?;
                    }
                    if let Some(modem) = &m.modem {
                        for p in &m.part_status {
                            if let Some(mr) = p.message_reference {
                                tr.remove(report_key(modem, mr, &key, p.part))?;
                            }
                        }
                    }
                    tomb.write_in(ttomb)?;
                    Ok::<_, Tx>(true)
                })?;
            if r {
                self.count(m.status, -1);
                return Ok(Some(m));
            }
        }
        Err(StoreError::Conflict(format!(
            "message {id} kept changing while it was being removed"
        )))
    }

    /// Finished messages (see [`Status::is_finished`]) whose last change is at or before
    /// `cutoff`, from the `status` index after the key `after`; at most `limit` index entries
    /// are looked at.
    pub(crate) fn finished_before(
        &self,
        after: Option<&[u8]>,
        cutoff: DateTime<Utc>,
        limit: usize,
        keep: impl Fn(&Message) -> bool,
    ) -> Result<(Vec<Message>, Option<Vec<u8>>), StoreError> {
        let cutoff_ms = cutoff.timestamp_millis().max(0) as u64;
        let iter = match after {
            Some(a) => self.inner.status.range((
                std::ops::Bound::Excluded(a.to_vec()),
                std::ops::Bound::Unbounded,
            )),
            None => self.inner.status.iter(),
        };
        let mut out = Vec::new();
        let mut looked = 0;
        for r in iter {
            let (k, _) = r?;
            looked += 1;
            let finished = Status::ALL
                .iter()
                .any(|s| s.is_finished() && Some(&s.code()) == k.first());
            // Ids sort by creation: one created after the cutoff finished after it too.
            if finished && k.len() == 17 && id_millis(&k[1..]) <= cutoff_ms {
                let mut id = [0u8; 16];
                id.copy_from_slice(&k[1..]);
                if let Some(v) = self.inner.messages.get(id)? {
                    let m = decode_message(&id, &v)?;
                    if m.status.is_finished() && m.updated_at <= cutoff && keep(&m) {
                        out.push(m);
                    }
                }
            }
            if looked >= limit {
                return Ok((out, Some(k.to_vec())));
            }
        }
        Ok((out, None))
    }
}

/// The redaction of `m`'s text at `now` (see [`SledStore::redact_text`]), worked out once for
/// both backends: the text replaced by its SHA-256, and a `text_redacted` entry chained to the
/// history's head. The status and `updated_at` stay.
pub(crate) fn redaction(
    m: &Message,
    reason: &str,
    actor: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Change, StoreError> {
    let mut new = m.clone();
    let accepted_hash = first_event_hash(m)?;
    let prev = match m.history_len {
        0 => Some(accepted_hash.clone()),
        _ => m.history_hash.clone(),
    };
    let text_sha256 = sha256_hex(m.text.as_bytes());
    new.text = String::new();
    new.redacted = Some(crate::domain::Redaction {
        at: now,
        text_sha256: text_sha256.clone(),
        accepted_hash,
    });
    new.history_len += 1;
    let event = Event {
        seq: new.history_len,
        at: now,
        status: new.status,
        reason: Some(reason.to_string()),
        kind: "text_redacted".into(),
        data: Some(serde_json::json!({ "text_sha256": text_sha256 })),
        prev,
        actor: actor.map(str::to_string),
    };
    let event_json = encode(&event)?;
    new.history_hash = Some(sha256_hex(&event_json));
    Ok(Change {
        old: m.clone(),
        new,
        event,
        event_json,
        awaiting: Vec::new(),
        sent_at: now,
        not_awaiting: Vec::new(),
    })
}

/// Attempts at removing a message that keeps changing under the removal.
const REMOVE_TRIES: usize = 5;

/// The trees a change to a message touches.
pub(super) struct Trees<'a> {
    messages: &'a sled::Tree,
    due: &'a sled::Tree,
    status: &'a sled::Tree,
    events: &'a sled::Tree,
    outbox: &'a sled::Tree,
    reports: &'a sled::Tree,
    hourly: &'a sled::Tree,
}

impl Trees<'_> {
    pub(super) fn transaction<A>(
        &self,
        f: impl Fn(&TxTrees<'_>) -> Result<A, Tx>,
    ) -> Result<A, TransactionError<StoreError>> {
        (
            self.messages,
            self.due,
            self.status,
            self.events,
            self.outbox,
            self.reports,
            self.hourly,
        )
            .transaction(|(messages, due, status, events, outbox, reports, hourly)| {
                f(&TxTrees {
                    messages,
                    due,
                    status,
                    events,
                    outbox,
                    reports,
                    hourly,
                })
            })
    }
}

pub(super) struct TxTrees<'a> {
    pub(super) messages: &'a TransactionalTree,
    pub(super) due: &'a TransactionalTree,
    pub(super) status: &'a TransactionalTree,
    pub(super) events: &'a TransactionalTree,
    pub(super) outbox: &'a TransactionalTree,
    pub(super) reports: &'a TransactionalTree,
    pub(super) hourly: &'a TransactionalTree,
}

/// The first history entry, implied by the record: what was accepted. Built only from fields
/// that never change after acceptance (the chain starts with its hash); a later change of
/// anything else is an entry of its own.
pub(super) fn first_event(m: &Message) -> Event {
    Event {
        seq: 0,
        at: m.created_at,
        status: m.accepted_as,
        reason: Some("accepted".into()),
        kind: "accepted".into(),
        data: Some(match &m.redacted {
            // The text is gone: its hash stands in its place, and the chain starts from the
            // hash the entry had with the text (kept in the redaction).
            Some(r) => serde_json::json!({
                "to": m.to,
                "text": null,
                "text_sha256": r.text_sha256,
                "encoding": m.encoding,
                "parts": m.parts,
                "reply_options": m.reply_options,
                "created_by": m.created_by,
            }),
            None => serde_json::json!({
                "to": m.to,
                "text": m.text,
                "encoding": m.encoding,
                "parts": m.parts,
                "reply_options": m.reply_options,
                "created_by": m.created_by,
            }),
        }),
        prev: None,
        actor: None,
    }
}

/// The implied first entry as shown: with its actor, the key that made the message. The chain
/// starts from the hash of [`first_event`], without it (`created_by` in its facts already
/// names the key), so stores written before the actor was shown verify as they did.
pub(super) fn first_event_shown(m: &Message) -> Event {
    Event {
        actor: m.creator().map(str::to_string),
        ..first_event(m)
    }
}

/// The hash of the implied first entry: the start of the chain. For a message whose text was
/// redacted, the hash the entry had with its text, kept in the redaction.
pub(super) fn first_event_hash(m: &Message) -> Result<String, StoreError> {
    if let Some(r) = &m.redacted {
        return Ok(r.accepted_hash.clone());
    }
    Ok(sha256_hex(&encode(&first_event(m))?))
}

/// A change of a message worked out, before either backend writes it: the record before and
/// after, the history entry (hash-chained to the one before), and which parts now await a
/// status report or no longer do.
pub(crate) struct Change {
    /// The record before.
    pub(crate) old: Message,
    /// The record after (with the new chain head in `history_hash`).
    pub(crate) new: Message,
    /// The new history entry.
    pub(crate) event: Event,
    /// Its JSON, as stored (its SHA-256 is `new.history_hash`).
    pub(crate) event_json: Vec<u8>,
    /// Parts that now await a status report: (modem, TP-MR, part), and when they were sent.
    pub(crate) awaiting: Vec<(String, u8, u8)>,
    /// When the awaiting parts were sent.
    pub(crate) sent_at: DateTime<Utc>,
    /// Parts whose awaited reports no longer apply (a requeue): (modem, TP-MR, part).
    pub(crate) not_awaiting: Vec<(String, u8, u8)>,
}

impl Change {
    /// Works out what `f` does to `old`: `Ok(None)` when it leaves it unchanged.
    pub(crate) fn work_out<F, N>(old: &Message, f: &F) -> Result<Option<Change>, StoreError>
    where
        F: Fn(&mut Message) -> Option<N>,
        N: Into<Note>,
    {
        let mut new = old.clone();
        let Some(note) = f(&mut new).map(Into::into) else {
            return Ok(None);
        };
        new.updated_at = Utc::now();
        new.history_len = old.history_len + 1;
        let prev = match (&old.history_hash, old.history_len) {
            (_, 0) => Some(first_event_hash(old)?),
            (h, _) => h.clone(),
        };
        let event = Event {
            seq: new.history_len,
            at: new.updated_at,
            status: new.status,
            reason: Some(note.reason),
            kind: note.kind.to_string(),
            data: note.data,
            prev,
            actor: note.actor,
        };
        let parts = |m: &Message, modem: &str| -> Vec<(String, u8, u8)> {
            m.part_status
                .iter()
                .filter_map(|p| {
                    p.message_reference
                        .map(|mr| (modem.to_string(), mr, p.part))
                })
                .collect()
        };
        let mut awaiting = Vec::new();
        if new.status == Status::Sent
            && old.status != Status::Sent
            && new.status_report
            && let Some(modem) = &new.modem
        {
            // The parts wait for their status reports, found by modem and TP-MR.
            awaiting = parts(&new, modem);
        }
        let mut not_awaiting = Vec::new();
        if old.status != new.status
            && matches!(
                old.status,
                Status::Sent | Status::Delivered | Status::Failed
            )
            && !matches!(
                new.status,
                Status::Sent | Status::Delivered | Status::Failed
            )
            && let Some(modem) = &old.modem
        {
            // A new attempt (requeue): reports on the old parts no longer apply. A message that
            // became delivered or failed keeps its remaining entries, so the other parts' late
            // reports are still recorded in its history (see `reports`).
            not_awaiting = parts(old, modem);
        }
        let event_json = encode(&event)?;
        new.history_hash = Some(sha256_hex(&event_json));
        Ok(Some(Change {
            old: old.clone(),
            sent_at: new.sent_at.unwrap_or(new.updated_at),
            new,
            event,
            event_json,
            awaiting,
            not_awaiting,
        }))
    }

    /// Whether the message's place in the dispatch order (or its status index) moves.
    pub(crate) fn moves_in_the_queue(&self) -> bool {
        self.old.status != self.new.status
            || self.old.due_at != self.new.due_at
            || self.old.priority != self.new.priority
    }
}

pub(super) fn update_in<F, N>(
    t: &TxTrees<'_>,
    key: &[u8; 16],
    f: &F,
    notifier: Option<&dyn Notifier>,
) -> Result<Option<(Status, Message, bool)>, Tx>
where
    F: Fn(&mut Message) -> Option<N>,
    N: Into<Note>,
{
    let Some(v) = t.messages.get(key)? else {
        return Ok(None);
    };
    let old = decode_message(key, &v).map_err(abort)?;
    let Some(c) = Change::work_out(&old, f).map_err(abort)? else {
        return Ok(Some((old.status, old, false)));
    };
    if c.moves_in_the_queue() {
        if old.status.is_waiting() {
            t.due.remove(due_key(&old, key))?;
        } else {
            t.status.remove(status_key(old.status, key))?;
        }
        index_status(t.due, t.status, &c.new, key)?;
    }
    let sent = c.sent_at.timestamp_millis().max(0) as u64;
    for (modem, mr, part) in &c.awaiting {
        t.reports
            .insert(report_key(modem, *mr, key, *part), &sent.to_be_bytes())?;
    }
    for (modem, mr, part) in &c.not_awaiting {
        t.reports.remove(report_key(modem, *mr, key, *part))?;
    }
    hourly::count_in(
        t.hourly,
        old.status,
        c.new.status,
        c.new.updated_at,
        c.new.modem.as_deref(),
    )?;
    t.events
        .insert(event_key(key, c.event.seq), c.event_json.as_slice())?;
    t.messages
        .insert(&key[..], encode(&c.new).map_err(abort)?)?;
    if let Some(n) = notifier {
        for w in n.deliveries(&c.new, &c.event, old.status) {
            let seq = t.outbox.generate_id()?;
            let entry = outbox::new_entry(seq, &w);
            t.outbox
                .insert(&seq.to_be_bytes(), encode(&entry).map_err(abort)?)?;
        }
    }
    Ok(Some((old.status, c.new, true)))
}

/// A record ready to write: its key and its JSON.
pub(super) type Row<K> = (K, Vec<u8>);

/// New messages as (key, JSON) rows.
pub(super) fn message_rows(messages: &[Message]) -> Result<Vec<Row<[u8; 16]>>, StoreError> {
    messages
        .iter()
        .map(|m| {
            let id = id_key(&m.id).ok_or_else(|| StoreError::Corrupt {
                key: m.id.clone(),
                detail: "not a ULID".into(),
            })?;
            Ok((id, encode(m)?))
        })
        .collect()
}

/// Writes new messages (`rows` from [`message_rows`]) and their index entries in a
/// transaction.
pub(super) fn insert_in(
    tm: &TransactionalTree,
    td: &TransactionalTree,
    ts: &TransactionalTree,
    tt: &TransactionalTree,
    tinv: &TransactionalTree,
    messages: &[Message],
    rows: &[Row<[u8; 16]>],
) -> Result<(), Tx> {
    for (m, (id, json)) in messages.iter().zip(rows) {
        tm.insert(&id[..], json.as_slice())?;
        index_status(td, ts, m, id)?;
        tt.insert(to_key(&m.to, id), &[])?;
        if let Some(k) = invoice_key(m, id) {
            tinv.insert(k, &[])?;
        }
    }
    Ok(())
}

/// Adds a message's status entry: in `due` while it waits, in `status` otherwise.
pub(super) fn index_status(
    td: &TransactionalTree,
    ts: &TransactionalTree,
    m: &Message,
    id: &[u8; 16],
) -> Result<(), Tx> {
    if m.status.is_waiting() {
        td.insert(due_key(m, id), &[m.status.code()])?;
    } else {
        ts.insert(status_key(m.status, id), &[])?;
    }
    Ok(())
}

/// A queued one-part message to `to`, for tests to adjust.
#[cfg(test)]
pub(crate) fn test_message(to: &str) -> Message {
    let now = Utc::now();
    Message {
        id: ulid::Ulid::generate().to_string(),
        to: to.into(),
        text: "hello".into(),
        encoding: "gsm7".into(),
        parts: 1,
        status: Status::Queued,
        status_reason: None,
        priority: super::Priority::Normal,
        created_at: now,
        updated_at: now,
        send_at: None,
        expires_at: None,
        max_lateness_secs: 3600,
        due_at: now,
        reply_options: None,
        callback_url: None,
        metadata: None,
        status_report: false,
        attempts: Vec::new(),
        part_status: Vec::new(),
        modem: None,
        sent_at: None,
        delivered_at: None,
        created_by: "test".into(),
        history_len: 0,
        requeued_at: None,
        accepted_as: Status::Queued,
        replies: Vec::new(),
        history_hash: None,
        redacted: None,
        send_window: None,
        reminder: None,
        twilio: None,
    }
}
