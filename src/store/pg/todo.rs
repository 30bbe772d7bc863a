//! What the PostgreSQL backend does not do yet: each of these answers that it is not
//! available. Each moves to its aggregate's file as it is written.

#![allow(missing_docs, clippy::too_many_arguments)]

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};

use crate::sms::StatusReport;

use super::PgStore;
use crate::store::audit::*;
use crate::store::history::*;
use crate::store::hourly::*;
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
    pub fn update<F, N>(&self, _id: &str, _f: F) -> Result<Option<(Message, bool)>, StoreError>
    where
        F: Fn(&mut Message) -> Option<N>,
        N: Into<Note>,
    {
        Err(not_yet("update"))
    }

    pub fn for_each_history<E: From<StoreError>>(
        &self,
        _to: Option<&str>,
        _invoice: Option<&str>,
        _f: impl FnMut(&Message, &History) -> Result<(), E>,
    ) -> Result<(), E> {
        Err(not_yet("for_each_history").into())
    }

    pub fn change_plan<R>(
        &self,
        _id: &str,
        _decide: impl Fn(&Plan, &BTreeMap<String, Message>) -> Decision<R>,
        _idempotency: Option<(&str, &IdempotencyRecord)>,
        _actor: Option<&str>,
    ) -> Result<Option<(Plan, R)>, StoreError> {
        Err(not_yet("change_plan"))
    }

    pub fn next_due_matching(
        &self,
        _now: DateTime<Utc>,
        _max_scan: usize,
        _accept: &mut dyn FnMut(&Message) -> bool,
    ) -> Result<NextDue, StoreError> {
        Err(not_yet("next_due_matching"))
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

    pub fn history(&self, _id: &str) -> Result<Option<History>, StoreError> {
        Err(not_yet("history"))
    }

    pub fn verify_all_histories(&self) -> Result<VerifyReport, StoreError> {
        Err(not_yet("verify_all_histories"))
    }

    pub fn histories_for(
        &self,
        _to: Option<&str>,
        _invoice: Option<&str>,
    ) -> Result<Vec<(Message, History)>, StoreError> {
        Err(not_yet("histories_for"))
    }

    pub fn hourly(
        &self,
        _from: DateTime<Utc>,
        _to: DateTime<Utc>,
    ) -> Result<Vec<HourCount>, StoreError> {
        Err(not_yet("hourly"))
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

    pub fn messages_about(
        &self,
        _invoice: &str,
        _limit: usize,
    ) -> Result<Vec<Message>, StoreError> {
        Err(not_yet("messages_about"))
    }

    pub fn next_due(&self, _now: DateTime<Utc>) -> Result<NextDue, StoreError> {
        Err(not_yet("next_due"))
    }

    pub fn list(&self, _filter: &ListFilter) -> Result<Vec<Message>, StoreError> {
        Err(not_yet("list"))
    }

    pub fn counts(&self) -> Result<Vec<(Status, u64)>, StoreError> {
        Err(not_yet("counts"))
    }

    pub fn queue_depth(&self) -> usize {
        0
    }

    pub fn oldest_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        Err(not_yet("oldest_due"))
    }

    pub fn ids_with_status(&self, _s: Status) -> Result<Vec<String>, StoreError> {
        Err(not_yet("ids_with_status"))
    }

    pub fn len(&self) -> usize {
        0
    }

    pub fn is_empty(&self) -> bool {
        true
    }

    pub fn insert(
        &self,
        _messages: &[Message],
        _idempotency: Option<(&str, &IdempotencyRecord)>,
    ) -> Result<(), StoreError> {
        Err(not_yet("insert"))
    }

    pub fn get(&self, _id: &str) -> Result<Option<Message>, StoreError> {
        Err(not_yet("get"))
    }

    pub fn events(&self, _id: &str) -> Result<Vec<Event>, StoreError> {
        Err(not_yet("events"))
    }

    pub fn get_with_events(&self, _id: &str) -> Result<Option<(Message, Vec<Event>)>, StoreError> {
        Err(not_yet("get_with_events"))
    }

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

    pub fn messages_to(&self, _to: &str, _limit: usize) -> Result<Vec<Message>, StoreError> {
        Err(not_yet("messages_to"))
    }

    pub fn numbers_ending_like(
        &self,
        _sender: &str,
        _n: usize,
        _max: usize,
    ) -> Result<Vec<String>, StoreError> {
        Err(not_yet("numbers_ending_like"))
    }

    pub fn reply_target(
        &self,
        _to: &str,
        _now: DateTime<Utc>,
        _window: chrono::Duration,
        _unanswered: bool,
        _except: Option<&str>,
    ) -> Result<Option<Message>, StoreError> {
        Err(not_yet("reply_target"))
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

    pub fn sweep_reports(&self, _cutoff: DateTime<Utc>) -> Result<usize, StoreError> {
        Err(not_yet("sweep_reports"))
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
