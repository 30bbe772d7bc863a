//! Erasure of a phone number (`POST /v1/erasure`): everything the store keeps about it goes,
//! except the fact that it opted out (kept under a salted hash, see [`super::optout`]).

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{SledStore, StoreError, decode, id_string};
use crate::domain::Plan;

/// What an erasure removed, by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Erased {
    /// Messages to the number, removed whole (each leaves a tombstone without the number).
    pub messages: usize,
    /// The number's replies those messages held.
    pub replies: usize,
    /// Inbound messages from the number.
    pub inbound: usize,
    /// Reminder plans to the number.
    pub plans: usize,
    /// The number's opt-out, turned into its salted hash (0 or 1): a STOP outlives the erasure.
    pub optouts: usize,
    /// Idempotency records whose kept answer named the number.
    pub idempotency: usize,
    /// Webhook deliveries, pending or dead, whose body named the number.
    pub webhooks: usize,
    /// Delivery reports that matched no message and named the number.
    pub unmatched_reports: usize,
}

impl SledStore {
    /// Erases `number` (E.164) from the store: its plans, its messages (with their history and
    /// replies; a tombstone without the number stays per message), its inbound messages, the
    /// deliveries and idempotency answers that name it and the unmatched reports to it; its
    /// opt-out stays as a salted hash. Each removal is atomic on its own: an erasure cut short
    /// by a crash is completed by running it again.
    pub fn erase_number(&self, number: &str, now: DateTime<Utc>) -> Result<Erased, StoreError> {
        let mut out = Erased {
            plans: self.erase_plans_to(number)?,
            ..Erased::default()
        };
        let mut prefix = number.as_bytes().to_vec();
        prefix.push(0xFF);
        let n = prefix.len();
        let ids: Vec<String> = self
            .inner
            .to
            .scan_prefix(&prefix)
            .keys()
            .filter_map(|k| k.ok().and_then(|k| k.get(n..n + 16).map(id_string)))
            .collect();
        for id in ids {
            match self.remove_message(&id, "erasure", now)? {
                Some(m) => {
                    out.messages += 1;
                    out.replies += m.replies.len();
                }
                None => {
                    // An index entry without its record (an insert cut short by a crash).
                    if let Some(key) = super::id_key(&id) {
                        let _w = self.writing();
                        self.inner.to.remove(super::to_key(number, &key))?;
                    }
                }
            }
        }
        out.inbound = self.erase_inbound_from(number)?;
        out.optouts = usize::from(self.erase_optout(number, now)?);
        out.idempotency = self.erase_idempotency_of(number)?;
        out.webhooks = self.erase_webhooks_of(number)?;
        out.unmatched_reports = self.erase_unmatched_of(number)?;
        Ok(out)
    }

    /// Removes the reminder plans to `number` and their invoices' entries; how many.
    fn erase_plans_to(&self, number: &str) -> Result<usize, StoreError> {
        let _w = self.writing();
        let mut n = 0;
        for r in self.inner.plans.iter() {
            let (k, v) = r?;
            let p: Plan = decode(&k, &v)?;
            if p.to.as_str() != number {
                continue;
            }
            use sled::Transactional;
            (&self.inner.plans, &self.inner.plan_invoices).transaction(|(tp, ti)| {
                tp.remove(&k)?;
                if ti.get(p.invoice.as_bytes())?.as_deref() == Some(&k[..]) {
                    ti.remove(p.invoice.as_bytes())?;
                }
                Ok::<_, super::Tx>(())
            })?;
            n += 1;
        }
        Ok(n)
    }
}
