//! What the PostgreSQL backend does not do yet: each of these answers that it is not
//! available. Each moves to its aggregate's file as it is written.

#![allow(missing_docs, clippy::too_many_arguments)]

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};

use crate::sms::StatusReport;

use super::PgStore;
use crate::store::history::*;
use crate::store::hourly::*;
use crate::store::inbound::*;
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

    pub fn publish_inbound(&self, _m: &InboundMessage) {}

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
