//! What the PostgreSQL backend does not do yet: each of these answers that it is not
//! available. Each moves to its aggregate's file as it is written.

#![allow(missing_docs, clippy::too_many_arguments)]

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};

use crate::sms::StatusReport;

use super::PgStore;
use crate::store::audit::*;
use crate::store::history::*;
use crate::store::inbound::*;
use crate::store::optout::*;
use crate::store::outbox::*;
use crate::store::plans::*;
use crate::store::reports::*;
use crate::store::tombstones::*;
use crate::store::*;

fn not_yet(what: &str) -> StoreError {
    StoreError::Io(format!("{what}: not available with PostgreSQL yet"))
}

impl PgStore {
    pub fn change_plan<R>(
        &self,
        _id: &str,
        _decide: impl Fn(&Plan, &BTreeMap<String, Message>) -> Decision<R>,
        _idempotency: Option<(&str, &IdempotencyRecord)>,
        _actor: Option<&str>,
    ) -> Result<Option<(Plan, R)>, StoreError> {
        Err(not_yet("change_plan"))
    }

    pub fn append_audit(&self, _a: &NewAudit<'_>) -> Result<AuditEntry, StoreError> {
        Err(not_yet("append_audit"))
    }

    pub fn audit_entries(
        &self,
        _filter: &AuditFilter<'_>,
        _limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        Err(not_yet("audit_entries"))
    }

    pub fn verify_audit(&self) -> Result<AuditVerify, StoreError> {
        Err(not_yet("verify_audit"))
    }

    pub fn erase_number(&self, _number: &str, _now: DateTime<Utc>) -> Result<Erased, StoreError> {
        Err(not_yet("erase_number"))
    }

    pub fn verify_all_histories(&self) -> Result<VerifyReport, StoreError> {
        Err(not_yet("verify_all_histories"))
    }

    pub fn idempotency(&self, _key: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        Err(not_yet("idempotency"))
    }

    pub fn put_idempotency(&self, _key: &str, _r: &IdempotencyRecord) -> Result<(), StoreError> {
        Err(not_yet("put_idempotency"))
    }

    pub fn purge_idempotency(
        &self,
        _cutoff: DateTime<Utc>,
        _after: Option<&[u8]>,
        _limit: usize,
    ) -> Result<SweepStep, StoreError> {
        Err(not_yet("purge_idempotency"))
    }

    pub fn receive(
        &self,
        _modem: &str,
        _pdu: &[u8],
        _region: Option<&str>,
        _now: DateTime<Utc>,
    ) -> Result<Received, StoreError> {
        Err(not_yet("receive"))
    }

    pub fn receive_unreadable(
        &self,
        _modem: &str,
        _answer: &str,
        _pdu: &[u8],
        _reason: &str,
        _now: DateTime<Utc>,
    ) -> Result<Received, StoreError> {
        Err(not_yet("receive_unreadable"))
    }

    pub fn release_stale_fragments(
        &self,
        _cutoff: DateTime<Utc>,
        _now: DateTime<Utc>,
    ) -> Result<Vec<InboundMessage>, StoreError> {
        Err(not_yet("release_stale_fragments"))
    }

    pub fn inbound(&self, _id: &str) -> Result<Option<InboundMessage>, StoreError> {
        Err(not_yet("inbound"))
    }

    pub fn list_inbound(&self, _f: &InboundFilter) -> Result<Vec<InboundMessage>, StoreError> {
        Err(not_yet("list_inbound"))
    }

    pub fn purge_inbound(
        &self,
        _cutoff: DateTime<Utc>,
        _limit: usize,
    ) -> Result<SweepStep, StoreError> {
        Err(not_yet("purge_inbound"))
    }

    pub fn fragments_held(&self) -> usize {
        0
    }

    pub fn publish_inbound(&self, _m: &InboundMessage) {}

    pub fn redact_text(
        &self,
        _id: &str,
        _reason: &str,
        _actor: Option<&str>,
        _now: DateTime<Utc>,
    ) -> Result<Redacted, StoreError> {
        Err(not_yet("redact_text"))
    }

    pub fn remove_message(
        &self,
        _id: &str,
        _reason: &str,
        _now: DateTime<Utc>,
    ) -> Result<Option<Message>, StoreError> {
        Err(not_yet("remove_message"))
    }

    pub fn redact_finished_texts(
        &self,
        _cutoff: DateTime<Utc>,
        _now: DateTime<Utc>,
        _after: Option<&[u8]>,
        _limit: usize,
    ) -> Result<SweepStep, StoreError> {
        Err(not_yet("redact_finished_texts"))
    }

    pub fn remove_finished_messages(
        &self,
        _cutoff: DateTime<Utc>,
        _now: DateTime<Utc>,
        _after: Option<&[u8]>,
        _limit: usize,
    ) -> Result<SweepStep, StoreError> {
        Err(not_yet("remove_finished_messages"))
    }

    pub fn opt_out(&self, _o: &OptOut) -> Result<bool, StoreError> {
        Err(not_yet("opt_out"))
    }

    pub fn opt_in(&self, _number: &str) -> Result<Option<OptOut>, StoreError> {
        Err(not_yet("opt_in"))
    }

    pub fn optout(&self, _number: &str) -> Result<Option<OptOut>, StoreError> {
        Err(not_yet("optout"))
    }

    pub fn is_opted_out(&self, _number: &str) -> Result<bool, StoreError> {
        Err(not_yet("is_opted_out"))
    }

    pub fn erased_optout(&self, _number: &str) -> Result<Option<ErasedOptOut>, StoreError> {
        Err(not_yet("erased_optout"))
    }

    pub fn erase_optout(&self, _number: &str, _now: DateTime<Utc>) -> Result<bool, StoreError> {
        Err(not_yet("erase_optout"))
    }

    pub fn list_optouts(
        &self,
        _after: Option<&str>,
        _limit: usize,
    ) -> Result<Vec<OptOut>, StoreError> {
        Err(not_yet("list_optouts"))
    }

    pub fn optouts_len(&self) -> usize {
        0
    }

    pub fn enqueue_webhooks(&self, _new: &[NewWebhook]) -> Result<Vec<OutboxEntry>, StoreError> {
        Err(not_yet("enqueue_webhooks"))
    }

    pub fn due_webhooks(
        &self,
        _now: DateTime<Utc>,
        _limit: usize,
        _busy: impl Fn(u64) -> bool,
    ) -> Result<DueWebhooks, StoreError> {
        Err(not_yet("due_webhooks"))
    }

    pub fn next_webhook_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        Err(not_yet("next_webhook_at"))
    }

    pub fn outbox_counts(&self) -> Result<(usize, usize), StoreError> {
        Err(not_yet("outbox_counts"))
    }

    pub fn webhook_delivered(&self, _seq: u64) -> Result<bool, StoreError> {
        Err(not_yet("webhook_delivered"))
    }

    pub fn webhook_failed(
        &self,
        _seq: u64,
        _status: Option<u16>,
        _error: &str,
        _next_attempt_at: Option<DateTime<Utc>>,
    ) -> Result<Option<OutboxEntry>, StoreError> {
        Err(not_yet("webhook_failed"))
    }

    pub fn dead_webhooks(
        &self,
        _limit: usize,
        _after: Option<u64>,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        Err(not_yet("dead_webhooks"))
    }

    pub fn retrying_webhooks(
        &self,
        _limit: usize,
        _after: Option<u64>,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        Err(not_yet("retrying_webhooks"))
    }

    pub fn webhook(&self, _id: &str) -> Result<Option<OutboxEntry>, StoreError> {
        Err(not_yet("webhook"))
    }

    pub fn retry_webhook(
        &self,
        _id: &str,
        _now: DateTime<Utc>,
    ) -> Result<Option<OutboxEntry>, StoreError> {
        Err(not_yet("retry_webhook"))
    }

    pub fn purge_dead_webhooks(
        &self,
        _cutoff: DateTime<Utc>,
        _after: Option<&[u8]>,
        _limit: usize,
    ) -> Result<SweepStep, StoreError> {
        Err(not_yet("purge_dead_webhooks"))
    }

    pub fn create_plan(
        &self,
        _plan: &Plan,
        _messages: &[Message],
        _idempotency: Option<(&str, &IdempotencyRecord)>,
    ) -> Result<Created, StoreError> {
        Err(not_yet("create_plan"))
    }

    pub fn plan(&self, _id: &str) -> Result<Option<Plan>, StoreError> {
        Err(not_yet("plan"))
    }

    pub fn plan_by_invoice(&self, _invoice: &str) -> Result<Option<Plan>, StoreError> {
        Err(not_yet("plan_by_invoice"))
    }

    pub fn list_plans(
        &self,
        _after: Option<&str>,
        _limit: usize,
        _keep: impl Fn(&Plan) -> bool,
    ) -> Result<Vec<Plan>, StoreError> {
        Err(not_yet("list_plans"))
    }

    pub fn template(&self, _name: &str) -> Result<Option<StoredTemplate>, StoreError> {
        Err(not_yet("template"))
    }

    pub fn put_template(&self, _name: &str, _t: &StoredTemplate) -> Result<(), StoreError> {
        Err(not_yet("put_template"))
    }

    pub fn delete_template(&self, _name: &str) -> Result<bool, StoreError> {
        Err(not_yet("delete_template"))
    }

    pub fn templates(&self) -> Result<Vec<(String, StoredTemplate)>, StoreError> {
        Err(not_yet("templates"))
    }

    pub fn pending_inbound(&self) -> Result<Vec<InboundMessage>, StoreError> {
        Err(not_yet("pending_inbound"))
    }

    pub fn inbound_handled(
        &self,
        _id: &str,
        _handling: &str,
        _in_reply_to: Option<&str>,
    ) -> Result<Option<InboundMessage>, StoreError> {
        Err(not_yet("inbound_handled"))
    }

    pub fn apply_status_report(
        &self,
        _modem: &str,
        _report: &StatusReport,
        _pdu: &[u8],
        _now: DateTime<Utc>,
    ) -> Result<ReportOutcome, StoreError> {
        Err(not_yet("apply_status_report"))
    }

    pub fn keep_unreadable_report(
        &self,
        _modem: &str,
        _pdu: &[u8],
        _reason: &str,
        _now: DateTime<Utc>,
    ) -> Result<ReportOutcome, StoreError> {
        Err(not_yet("keep_unreadable_report"))
    }

    pub fn sweep_reports(&self, _cutoff: DateTime<Utc>) -> Result<usize, StoreError> {
        Err(not_yet("sweep_reports"))
    }

    pub fn unmatched_reports(
        &self,
        _limit: usize,
        _after: Option<&str>,
    ) -> Result<Vec<UnmatchedReport>, StoreError> {
        Err(not_yet("unmatched_reports"))
    }

    pub fn purge_unmatched_reports(
        &self,
        _cutoff: DateTime<Utc>,
        _limit: usize,
    ) -> Result<SweepStep, StoreError> {
        Err(not_yet("purge_unmatched_reports"))
    }

    pub fn unmatched_report_count(&self) -> usize {
        0
    }

    pub fn reports_awaited(&self) -> usize {
        0
    }

    pub fn tombstones_on(&self, _day: NaiveDate) -> Result<TombstoneDay, StoreError> {
        Err(not_yet("tombstones_on"))
    }

    pub fn verify_tombstones(&self) -> Result<(u64, Vec<(String, String)>), StoreError> {
        Err(not_yet("verify_tombstones"))
    }

    pub fn tombstones_len(&self) -> usize {
        0
    }
}
