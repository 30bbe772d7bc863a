//! The store's seam ([`super`]): inbound texts and the status reports matched to sent parts.

use super::*;

impl Store {
    /// Stores a PDU that arrived on `modem` (SMSC field first); a sender in national format is
    /// read in `region` (see [`crate::numbers::normalise_sender`]). Call [`Store::durable`]
    /// before deleting it from the SIM.
    pub fn receive(
        &self,
        modem: &str,
        pdu: &[u8],
        region: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Received, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.receive(modem, pdu, region, now),
            Backend::Postgres(db) => db.receive(modem, pdu, region, now),
        }
    }

    /// Stores a modem's answer that could not be read as a message (`answer`: header and lines
    /// as received; `pdu`: whatever octets it held; `reason`: why), as an inbound message with
    /// `decode_error` and `raw_answer` set, so that its slot can be freed. The same answer seen
    /// again on that modem (a crash before the slot was freed) is a duplicate. Call
    /// [`Store::durable`] before deleting it from the SIM.
    pub fn receive_unreadable(
        &self,
        modem: &str,
        answer: &str,
        pdu: &[u8],
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<Received, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.receive_unreadable(modem, answer, pdu, reason, now),
            Backend::Postgres(db) => db.receive_unreadable(modem, answer, pdu, reason, now),
        }
    }

    /// Releases, as partial messages, the concatenated messages whose first part arrived
    /// before `cutoff` and that are still incomplete.
    pub fn release_stale_fragments(
        &self,
        cutoff: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Vec<InboundMessage>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.release_stale_fragments(cutoff, now),
            Backend::Postgres(db) => db.release_stale_fragments(cutoff, now),
        }
    }

    /// An inbound message by id.
    pub fn inbound(&self, id: &str) -> Result<Option<InboundMessage>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.inbound(id),
            Backend::Postgres(db) => db.inbound(id),
        }
    }

    /// Inbound messages newest first, filtered, one page.
    pub fn list_inbound(&self, f: &InboundFilter) -> Result<Vec<InboundMessage>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.list_inbound(f),
            Backend::Postgres(db) => db.list_inbound(f),
        }
    }

    /// One step of `[retention] inbound_after`: inbound messages received at or before
    /// `cutoff` and acted on are removed, oldest first; at most `limit` looked at.
    pub fn purge_inbound(
        &self,
        cutoff: DateTime<Utc>,
        limit: usize,
    ) -> Result<SweepStep, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.purge_inbound(cutoff, limit),
            Backend::Postgres(db) => db.purge_inbound(cutoff, limit),
        }
    }

    /// Number of concatenated messages' parts held, waiting for the rest.
    pub fn fragments_held(&self) -> usize {
        match &self.backend {
            Backend::Sled(db) => db.fragments_held(),
            Backend::Postgres(db) => db.fragments_held(),
        }
    }

    /// Publishes a stored inbound message.
    pub fn publish_inbound(&self, m: &InboundMessage) {
        match &self.backend {
            Backend::Sled(db) => db.publish_inbound(m),
            Backend::Postgres(db) => db.publish_inbound(m),
        }
    }

    /// Inbound messages stored but not yet acted on, oldest first.
    pub fn pending_inbound(&self) -> Result<Vec<InboundMessage>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.pending_inbound(),
            Backend::Postgres(db) => db.pending_inbound(),
        }
    }

    /// Records what was done with an inbound message (see [`InboundMessage::handling`]) and
    /// the message it answers; it is no longer pending.
    pub fn inbound_handled(
        &self,
        id: &str,
        handling: &str,
        in_reply_to: Option<&str>,
    ) -> Result<Option<InboundMessage>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.inbound_handled(id, handling, in_reply_to),
            Backend::Postgres(db) => db.inbound_handled(id, handling, in_reply_to),
        }
    }

    /// Applies a status report that arrived on `modem` (`pdu`: the raw PDU, SMSC field first,
    /// for deduplication and for the unmatched record). Call [`Store::durable`] before deleting
    /// it from the SIM. See the [module](self) for the matching rules.
    pub fn apply_status_report(
        &self,
        modem: &str,
        report: &StatusReport,
        pdu: &[u8],
        now: DateTime<Utc>,
    ) -> Result<ReportOutcome, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.apply_status_report(modem, report, pdu, now),
            Backend::Postgres(db) => db.apply_status_report(modem, report, pdu, now),
        }
    }

    /// Whether a sent part awaits this report: [`Store::apply_status_report`] would match it
    /// now. Reads only.
    pub fn report_awaited(
        &self,
        modem: &str,
        report: &StatusReport,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.report_awaited(modem, report, now),
            Backend::Postgres(db) => db.report_awaited(modem, report, now),
        }
    }

    /// Keeps a PDU that arrived as a status report but cannot be read as one, with `reason`.
    /// Deduplicated like [`Store::apply_status_report`].
    pub fn keep_unreadable_report(
        &self,
        modem: &str,
        pdu: &[u8],
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<ReportOutcome, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.keep_unreadable_report(modem, pdu, reason, now),
            Backend::Postgres(db) => db.keep_unreadable_report(modem, pdu, reason, now),
        }
    }

    /// Removes the index entries of parts sent before `cutoff` (normally now minus
    /// [`REPORT_MAX_AGE`]): their reports will not come, or would no longer be matched.
    /// Returns how many were removed.
    pub fn sweep_reports(&self, cutoff: DateTime<Utc>) -> Result<usize, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.sweep_reports(cutoff),
            Backend::Postgres(db) => db.sweep_reports(cutoff),
        }
    }

    /// Unmatched reports newest first, one page: those stored before `after` (the previous
    /// page's last id) when given.
    pub fn unmatched_reports(
        &self,
        limit: usize,
        after: Option<&str>,
    ) -> Result<Vec<UnmatchedReport>, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.unmatched_reports(limit, after),
            Backend::Postgres(db) => db.unmatched_reports(limit, after),
        }
    }

    /// One step of `[retention] unmatched_after`: unmatched reports received at or before
    /// `cutoff` are removed, oldest first; at most `limit` looked at.
    pub fn purge_unmatched_reports(
        &self,
        cutoff: DateTime<Utc>,
        limit: usize,
    ) -> Result<SweepStep, StoreError> {
        match &self.backend {
            Backend::Sled(db) => db.purge_unmatched_reports(cutoff, limit),
            Backend::Postgres(db) => db.purge_unmatched_reports(cutoff, limit),
        }
    }

    /// How many unmatched reports are kept.
    pub fn unmatched_report_count(&self) -> usize {
        match &self.backend {
            Backend::Sled(db) => db.unmatched_report_count(),
            Backend::Postgres(db) => db.unmatched_report_count(),
        }
    }

    /// How many sent parts await a status report.
    pub fn reports_awaited(&self) -> usize {
        match &self.backend {
            Backend::Sled(db) => db.reports_awaited(),
            Backend::Postgres(db) => db.reports_awaited(),
        }
    }
}
