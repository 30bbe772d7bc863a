//! The store's seam ([`super`]): the webhook outbox.

use super::*;

impl Store {
    /// Adds deliveries to the outbox (all or none), due at once, and returns them with their
    /// sequence numbers; call [`Store::durable`] before relying on them.
    pub fn enqueue_webhooks(&self, new: &[NewWebhook]) -> Result<Vec<OutboxEntry>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.enqueue_webhooks(new),
            Backend::Postgres(db) => db.enqueue_webhooks(new),
        }
    }

    /// Up to `limit` pending entries due at `now`, oldest first, none waiting behind an earlier
    /// pending entry with the same URL and ordering key; entries for which `busy` is true (being
    /// attempted) are not returned but still hold back later entries of their key.
    pub fn due_webhooks(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        busy: impl Fn(u64) -> bool,
    ) -> Result<DueWebhooks, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.due_webhooks(now, limit, busy),
            Backend::Postgres(db) => db.due_webhooks(now, limit, busy),
        }
    }

    /// The earliest next attempt time among pending entries not waiting behind another one.
    pub fn next_webhook_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.next_webhook_at(),
            Backend::Postgres(db) => db.next_webhook_at(),
        }
    }

    /// How many deliveries are pending (waiting for an attempt or a retry) and how many dead.
    pub fn outbox_counts(&self) -> Result<(usize, usize), StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.outbox_counts(),
            Backend::Postgres(db) => db.outbox_counts(),
        }
    }

    /// Removes a delivered entry; returns whether it was there.
    pub fn webhook_delivered(&self, seq: u64) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.webhook_delivered(seq),
            Backend::Postgres(db) => db.webhook_delivered(seq),
        }
    }

    /// Records a failed attempt: one more attempt, its error and HTTP status, and either the
    /// time of the next attempt or, with `None`, the entry is dead. Returns the entry after.
    pub fn webhook_failed(
        &self,
        seq: u64,
        status: Option<u16>,
        error: &str,
        next_attempt_at: Option<DateTime<Utc>>,
    ) -> Result<Option<OutboxEntry>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.webhook_failed(seq, status, error, next_attempt_at),
            Backend::Postgres(db) => db.webhook_failed(seq, status, error, next_attempt_at),
        }
    }

    /// Dead entries in sequence order, starting after sequence `after` (the previous page's
    /// last), at most `limit` (1 to 1000).
    pub fn dead_webhooks(
        &self,
        limit: usize,
        after: Option<u64>,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.dead_webhooks(limit, after),
            Backend::Postgres(db) => db.dead_webhooks(limit, after),
        }
    }

    /// Pending entries that have failed at least once (the receiver answered an error or could
    /// not be reached) and wait for their next attempt, in sequence order after sequence
    /// `after`, at most `limit` (1 to 1000): deliveries failing but not yet given up.
    pub fn retrying_webhooks(
        &self,
        limit: usize,
        after: Option<u64>,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.retrying_webhooks(limit, after),
            Backend::Postgres(db) => db.retrying_webhooks(limit, after),
        }
    }

    /// The entry with this `webhook-id`, pending or dead (delivered entries are gone).
    pub fn webhook(&self, id: &str) -> Result<Option<OutboxEntry>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.webhook(id),
            Backend::Postgres(db) => db.webhook(id),
        }
    }

    /// Makes the entry with this `webhook-id` pending and due now, keeping its attempts;
    /// returns it after, or `None` when there is no such entry.
    pub fn retry_webhook(
        &self,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<OutboxEntry>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.retry_webhook(id, now),
            Backend::Postgres(db) => db.retry_webhook(id, now),
        }
    }

    /// One step of `[retention] dead_webhooks_after`: dead deliveries whose event was made at
    /// or before `cutoff` are removed; at most `limit` entries looked at, from `after`.
    pub fn purge_dead_webhooks(
        &self,
        cutoff: DateTime<Utc>,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<SweepStep, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.purge_dead_webhooks(cutoff, after, limit),
            Backend::Postgres(db) => db.purge_dead_webhooks(cutoff, after, limit),
        }
    }
}
