//! What the PostgreSQL backend does not do yet: each of these answers that it is not
//! available. Each moves to its aggregate's file as it is written.

#![allow(missing_docs, clippy::too_many_arguments)]

use chrono::{DateTime, NaiveDate, Utc};

use super::PgStore;
use crate::store::history::*;
use crate::store::tombstones::*;
use crate::store::*;

fn not_yet(what: &str) -> StoreError {
    StoreError::Io(format!("{what}: not available with PostgreSQL yet"))
}

impl PgStore {
    pub fn erase_number(&self, _number: &str, _now: DateTime<Utc>) -> Result<Erased, StoreError> {
        Err(not_yet("erase_number"))
    }

    pub fn verify_all_histories(&self) -> Result<VerifyReport, StoreError> {
        Err(not_yet("verify_all_histories"))
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

    pub fn tombstones_on(&self, _day: NaiveDate) -> Result<TombstoneDay, StoreError> {
        Err(not_yet("tombstones_on"))
    }

    pub fn verify_tombstones(&self) -> Result<(u64, Vec<(String, String)>), StoreError> {
        Err(not_yet("verify_tombstones"))
    }

    pub fn tombstones_len(&self) -> usize {
        0
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
}
