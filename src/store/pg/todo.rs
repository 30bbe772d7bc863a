//! What the PostgreSQL backend does not do yet: each of these answers that it is not
//! available. Each moves to its aggregate's file as it is written.

#![allow(missing_docs, clippy::too_many_arguments)]

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::sms::StatusReport;

use super::PgStore;
use crate::store::plans::*;
use crate::store::reports::*;
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
}
