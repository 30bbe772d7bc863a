//! The store's seam ([`super`]): opt-outs, and a number's erasure from every aggregate.

use super::*;

impl Store {
    /// Erases `number` (E.164) from the store: its plans, its messages (with their history and
    /// replies; a tombstone without the number stays per message), its inbound messages, the
    /// deliveries and idempotency answers that name it and the unmatched reports to it; its
    /// opt-out stays as a salted hash. Each removal is atomic on its own: an erasure cut short
    /// by a crash is completed by running it again.
    pub fn erase_number(&self, number: &str, now: DateTime<Utc>) -> Result<Erased, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.erase_number(number, now),
            Backend::Postgres(db) => db.erase_number(number, now),
        }
    }

    /// Records an opt-out; `false` when the number was already opted out (the first record
    /// stays).
    pub fn opt_out(&self, o: &OptOut) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.opt_out(o),
            Backend::Postgres(db) => db.opt_out(o),
        }
    }

    /// Removes an opt-out (an erased number's too); the record removed, `None` when the
    /// number was not opted out.
    pub fn opt_in(&self, number: &str) -> Result<Option<OptOut>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.opt_in(number),
            Backend::Postgres(db) => db.opt_in(number),
        }
    }

    /// The opt-out of a number, if it is opted out; for an erased number, what is kept of it
    /// (see [`ErasedOptOut`]).
    pub fn optout(&self, number: &str) -> Result<Option<OptOut>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.optout(number),
            Backend::Postgres(db) => db.optout(number),
        }
    }

    /// Whether a number is opted out: two point lookups, the number and (for an erased number)
    /// its salted hash.
    pub fn is_opted_out(&self, number: &str) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.is_opted_out(number),
            Backend::Postgres(db) => db.is_opted_out(number),
        }
    }

    /// What is kept of an erased number's opt-out, if `number` is one.
    pub fn erased_optout(&self, number: &str) -> Result<Option<ErasedOptOut>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.erased_optout(number),
            Backend::Postgres(db) => db.erased_optout(number),
        }
    }

    /// Erases a number's opt-out: the entry under the number goes, one under its salted hash
    /// stays, so the number is still refused. `true` when the number was opted out.
    pub fn erase_optout(&self, number: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.erase_optout(number, now),
            Backend::Postgres(db) => db.erase_optout(number, now),
        }
    }

    /// Opted-out numbers in number order, after `after`, at most `limit` (1 to 1000).
    pub fn list_optouts(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<OptOut>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.list_optouts(after, limit),
            Backend::Postgres(db) => db.list_optouts(after, limit),
        }
    }

    /// Number of opted-out numbers.
    pub fn optouts_len(&self) -> usize {
        match &self.backend {
            Backend::Sled(db) => db.optouts_len(),
            Backend::Postgres(db) => db.optouts_len(),
        }
    }
}
