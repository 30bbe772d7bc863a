//! Delivery reports (TS 23.040 §9.2.2.3 SMS-STATUS-REPORT) matched to the parts they report on.
//!
//! When a message becomes `sent`, each part that asked for a report is indexed in the `reports`
//! tree under modem · 0x00 · TP-MR · message id · part, with its sent time. A report names only
//! its TP-MR (one octet: it wraps after 256 sends) and its recipient, so it is matched by
//! (modem, TP-MR) in the index, then by recipient, then to the most recently sent part among
//! those left, ignoring parts sent more than [`REPORT_MAX_AGE`] ago. The part's status and the
//! message's history change in the same transaction as the PDU's fingerprint is recorded, so a
//! report offered again after a crash (stored, not yet deleted from the SIM) changes nothing
//! twice. A report that matches nothing, or cannot be read, is kept in `reports_unmatched`.
//!
//! A message is `delivered` once every part is; one part's final failure (TP-ST 0x40–0x7F) makes
//! it `failed` with the network's reason. The other parts' index entries stay until their own
//! final report or [`REPORT_MAX_AGE`], so their reports are still recorded in the message's
//! history (a late report never moves a message's status back).
//!
//! Longer than 800 lines, and kept whole: it holds one noun, the status report, whether it
//! matches a sent part or is kept unmatched (both outcomes of one matching rule, sharing the
//! same deduplication); more than 400 of its lines are the tests of that rule.

use chrono::{DateTime, FixedOffset, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use sled::Transactional;

use super::inbound::fingerprint;
use super::{
    Message, SledStore, Status, StoreError, SweepStep, Tx, TxTrees, decode, encode, id_key,
    report_key, sweep_oldest, update_in,
};
use crate::sms::{self, StatusCategory, StatusReport};

/// How long a sent part waits for its report. Older index entries are ignored when matching
/// and removed by [`Store::sweep_reports`]: an SMSC retries for at most the validity period
/// (commonly 1–7 days), and beyond a week a TP-MR has surely been reused.
pub const REPORT_MAX_AGE: TimeDelta = TimeDelta::days(7);

/// The fewest trailing digits two numbers must share to be taken as the same recipient when
/// the network gives one of them in national or unknown format.
const MIN_SHARED_DIGITS: usize = 7;

/// What [`Store::apply_status_report`] did with a report.
#[derive(Debug, Clone, PartialEq)]
pub enum ReportOutcome {
    /// The same PDU from the same modem was handled before: only delete it from the SIM.
    Duplicate,
    /// The report was matched to a part of a message.
    Matched {
        /// The message.
        message_id: String,
        /// The part (from 1).
        part: u8,
        /// The message's status after the report.
        status: Status,
        /// Whether the message changed (a late report that changes nothing is not recorded).
        changed: bool,
        /// The report was final for the part (delivered or failed): its index entry is gone.
        final_for_part: bool,
    },
    /// Nothing matched, or the PDU could not be read: kept in `reports_unmatched`.
    Unmatched {
        /// The stored record's id.
        id: String,
        /// Why it did not match.
        reason: String,
    },
}

/// A status report that matched no sent part, as kept for an admin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UnmatchedReport {
    /// ULID: sorts by arrival.
    pub id: String,
    /// The modem (SIM) it came in on.
    pub modem: String,
    /// When the gateway stored it.
    pub received_at: DateTime<Utc>,
    /// TP-MR of the message it reports on, when the PDU could be read.
    pub message_reference: Option<u8>,
    /// TP-RA, the recipient: E.164 with `+` when international, else as the network gave it.
    pub recipient: Option<String>,
    /// TP-ST, the status value.
    pub tp_st: Option<u8>,
    /// `delivered`, `pending`, `failed` or `unknown` (reserved TP-ST values).
    pub category: Option<String>,
    /// What TS 23.040 says the TP-ST means.
    pub description: Option<String>,
    /// TP-DT: when the SMSC reached that status, with the SMSC's offset.
    #[schema(value_type = Option<String>)]
    pub discharge_time: Option<DateTime<FixedOffset>>,
    /// TP-SCTS: when the SMSC received the message, with the SMSC's offset.
    #[schema(value_type = Option<String>)]
    pub smsc_timestamp: Option<DateTime<FixedOffset>>,
    /// The raw PDU (SMSC field first), hex.
    pub pdu: String,
    /// Why it matched nothing.
    pub reason: String,
}

/// A sent part that awaits a report with the report's (modem, TP-MR).
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    /// Its message's id (ULID bytes).
    pub(crate) id: [u8; 16],
    /// The part (from 1).
    pub(crate) part: u8,
    /// When it was sent, in milliseconds since 1970.
    pub(crate) sent_ms: u64,
}

/// The choice of the part a report is about, among the parts awaiting a report with its
/// (modem, TP-MR), whichever store holds them: parts sent more than [`REPORT_MAX_AGE`] ago
/// are ignored, then parts whose message is gone or says otherwise, then parts sent to
/// another recipient; the most recent send among those left wins (the TP-MR wrapped since
/// any older one), ties going to the greater (message id, part).
pub(crate) struct Choice<'a> {
    modem: &'a str,
    report: &'a StatusReport,
    recipient: String,
    oldest: u64,
    best: Option<Candidate>,
    recent: usize,
    other_recipient: usize,
}

impl<'a> Choice<'a> {
    /// A choice for `report`, which came in on `modem` at `now`.
    pub(crate) fn new(modem: &'a str, report: &'a StatusReport, now: DateTime<Utc>) -> Self {
        Choice {
            modem,
            report,
            recipient: report.recipient.to_string(),
            oldest: (now - REPORT_MAX_AGE).timestamp_millis().max(0) as u64,
            best: None,
            recent: 0,
            other_recipient: 0,
        }
    }

    /// Weighs one awaiting part; `message` reads its message (`None`: gone), only when the
    /// part is recent enough to count.
    pub(crate) fn consider(
        &mut self,
        c: Candidate,
        message: impl FnOnce() -> Result<Option<Message>, StoreError>,
    ) -> Result<(), StoreError> {
        if c.sent_ms < self.oldest {
            return Ok(());
        }
        self.recent += 1;
        let Some(m) = message()? else {
            return Ok(());
        };
        let consistent = m.modem.as_deref() == Some(self.modem)
            && matches!(m.status, Status::Sent | Status::Delivered | Status::Failed)
            && m.part_status.iter().any(|p| {
                p.part == c.part && p.message_reference == Some(self.report.message_reference)
            });
        if !consistent {
            return Ok(());
        }
        if !same_recipient(&m.to, &self.recipient) {
            self.other_recipient += 1;
            return Ok(());
        }
        if self
            .best
            .as_ref()
            .is_none_or(|b| (c.sent_ms, c.id, c.part) > (b.sent_ms, b.id, b.part))
        {
            self.best = Some(c);
        }
        Ok(())
    }

    /// The part chosen, or why there is none.
    pub(crate) fn chosen(self) -> Result<Candidate, NoMatch> {
        let (modem, mr, recipient) = (
            self.modem.to_string(),
            self.report.message_reference,
            self.recipient,
        );
        self.best.ok_or(if self.other_recipient > 0 {
            NoMatch::OtherRecipient {
                modem,
                mr,
                recipient,
            }
        } else if self.recent > 0 {
            NoMatch::NotAwaited {
                modem,
                mr,
                recipient,
            }
        } else {
            NoMatch::NothingSent { modem, mr }
        })
    }
}

/// Whether `report` (the network's TP-RA, as [`sms::Address`] prints it) names `to` (E.164
/// with `+`). Equal digits match. When either is not international, the network may have
/// dropped the country code or a trunk prefix: the shorter number's digits, at least
/// [`MIN_SHARED_DIGITS`] of them, must end the longer one.
pub(crate) fn same_recipient(to: &str, report: &str) -> bool {
    let digits = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>();
    let (a, b) = (digits(to), digits(report));
    if a.is_empty() || b.is_empty() {
        return false;
    }
    if a == b {
        return true;
    }
    if to.starts_with('+') && report.starts_with('+') {
        // Both international and different: two different numbers.
        return false;
    }
    // A national number may carry a trunk prefix (`0` in most countries) that the E.164
    // form does not have.
    let national = |s: &str, d: String| {
        if s.starts_with('+') {
            d
        } else {
            d.trim_start_matches('0').to_string()
        }
    };
    let (a, b) = (national(to, a), national(report, b));
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    short.len() >= MIN_SHARED_DIGITS && long.ends_with(&short)
}

fn category_name(c: StatusCategory) -> &'static str {
    match c {
        StatusCategory::Delivered => "delivered",
        StatusCategory::Pending => "pending",
        StatusCategory::Failed => "failed",
        StatusCategory::Unknown => "unknown",
    }
}

/// What the report transaction found.
enum Applied {
    Duplicate,
    /// The index entry went away since it was chosen (swept, or the message requeued).
    Gone,
    Done {
        old: Status,
        message: Box<Message>,
        changed: bool,
    },
}

/// Why a status report matched no sent part: the `reason` its unmatched record keeps.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum NoMatch {
    /// Parts with this TP-MR were sent on this modem, to other numbers only.
    #[error("TP-MR {mr} on {modem} belongs to parts sent to another recipient than {recipient}")]
    OtherRecipient {
        modem: String,
        mr: u8,
        recipient: String,
    },
    /// Parts were sent recently, none with this TP-MR to this number awaiting a report.
    #[error("TP-MR {mr} on {modem}: no sent part awaits a report from {recipient}")]
    NotAwaited {
        modem: String,
        mr: u8,
        recipient: String,
    },
    /// Nothing sent on this modem within the report window carries this TP-MR.
    #[error("no part sent on {modem} in the last {days} days awaits a report with TP-MR {mr}", days = REPORT_MAX_AGE.num_days())]
    NothingSent { modem: String, mr: u8 },
}

impl SledStore {
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
        let _w = self.writing();
        let seen = fingerprint(modem, pdu);
        if self.inner.inbound_seen.contains_key(seen)? {
            return Ok(ReportOutcome::Duplicate);
        }
        if report.status_report_qualifier {
            return self.keep_unmatched(
                modem,
                Some(report),
                pdu,
                "reports on an SMS-COMMAND, which this gateway never sends",
                now,
            );
        }
        // The index may change between the choice and the transaction (a sweep, a requeue):
        // then choose again. Two rounds are plenty; the third gives up matching.
        for _ in 0..3 {
            let chosen = match self.choose_candidate(modem, report, now)? {
                Ok(c) => c,
                Err(why) => {
                    return self.keep_unmatched(modem, Some(report), pdu, &why.to_string(), now);
                }
            };
            let key = report_key(modem, report.message_reference, &chosen.id, chosen.part);
            let category = report.status.category();
            let final_for_part =
                matches!(category, StatusCategory::Delivered | StatusCategory::Failed);
            let i = &self.inner;
            let notifier = self.notifier();
            // How the report changes the message: see [`Message::apply_report`]. Pure: the
            // transaction may run it more than once.
            let f = |m: &mut Message| m.apply_report(chosen.part, report, now);
            let r = (
                &i.messages,
                &i.due,
                &i.status,
                &i.events,
                &i.outbox,
                &i.reports,
                &i.inbound_seen,
                &i.hourly,
            )
                .transaction(
                    |(messages, due, status, events, outbox, reports, tseen, hourly)| {
                        if tseen.get(&seen[..])?.is_some() {
                            return Ok(Applied::Duplicate);
                        }
                        if reports.get(&key)?.is_none() {
                            return Ok(Applied::Gone);
                        }
                        let t = TxTrees {
                            messages,
                            due,
                            status,
                            events,
                            outbox,
                            reports,
                            hourly,
                        };
                        let Some((old, message, changed)) =
                            update_in(&t, &chosen.id, &f, notifier.as_deref())?
                        else {
                            return Ok(Applied::Gone);
                        };
                        if final_for_part {
                            reports.remove(key.as_slice())?;
                        }
                        tseen.insert(&seen[..], b"report".as_slice())?;
                        Ok::<_, Tx>(Applied::Done {
                            old,
                            message: Box::new(message),
                            changed,
                        })
                    },
                )?;
            match r {
                Applied::Duplicate => return Ok(ReportOutcome::Duplicate),
                Applied::Gone => continue,
                Applied::Done {
                    old,
                    message,
                    changed,
                } => {
                    if old != message.status {
                        self.count(old, -1);
                        self.count(message.status, 1);
                    }
                    if changed {
                        self.publish(&message);
                    }
                    return Ok(ReportOutcome::Matched {
                        message_id: message.id,
                        part: chosen.part,
                        status: message.status,
                        changed,
                        final_for_part,
                    });
                }
            }
        }
        self.keep_unmatched(
            modem,
            Some(report),
            pdu,
            "the matching sent part changed while the report was applied",
            now,
        )
    }

    /// Whether a sent part awaits this report: [`SledStore::apply_status_report`] would match
    /// it now. Reads only.
    pub fn report_awaited(
        &self,
        modem: &str,
        report: &StatusReport,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        Ok(self.choose_candidate(modem, report, now)?.is_ok())
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
        let _w = self.writing();
        if self
            .inner
            .inbound_seen
            .contains_key(fingerprint(modem, pdu))?
        {
            return Ok(ReportOutcome::Duplicate);
        }
        self.keep_unmatched(modem, None, pdu, reason, now)
    }

    /// The sent part this report is about, or why there is none (see [`Choice`]).
    fn choose_candidate(
        &self,
        modem: &str,
        report: &StatusReport,
        now: DateTime<Utc>,
    ) -> Result<Result<Candidate, NoMatch>, StoreError> {
        let mut prefix = Vec::with_capacity(modem.len() + 2);
        prefix.extend_from_slice(modem.as_bytes());
        prefix.push(0);
        prefix.push(report.message_reference);
        let mut choice = Choice::new(modem, report, now);
        for r in self.inner.reports.scan_prefix(&prefix) {
            let (k, v) = r?;
            let (Some(rest), Ok(sent)) = (k.get(prefix.len()..), <[u8; 8]>::try_from(&v[..]))
            else {
                continue;
            };
            if rest.len() != 17 {
                continue;
            }
            let mut id = [0u8; 16];
            id.copy_from_slice(&rest[..16]);
            let c = Candidate {
                id,
                part: rest[16],
                sent_ms: u64::from_be_bytes(sent),
            };
            choice.consider(c, || {
                self.inner
                    .messages
                    .get(id)?
                    .map(|v| decode::<Message>(&id, &v))
                    .transpose()
            })?;
        }
        Ok(choice.chosen())
    }

    /// Stores an unmatched report with its fingerprint, once.
    fn keep_unmatched(
        &self,
        modem: &str,
        report: Option<&StatusReport>,
        pdu: &[u8],
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<ReportOutcome, StoreError> {
        let _w = self.writing();
        let seen = fingerprint(modem, pdu);
        // Ids sort by arrival, also within one millisecond (reports come from one task).
        let last = match self.inner.reports_unmatched.last()? {
            Some((last, _)) => <[u8; 16]>::try_from(&last[..])
                .ok()
                .map(u128::from_be_bytes),
            None => None,
        };
        let id = unmatched_id(now, last);
        let record = unmatched_record(&id, modem, report, pdu, reason, now);
        let json = encode(&record)?;
        let key = id.0.to_be_bytes();
        let i = &self.inner;
        let stored = (&i.inbound_seen, &i.reports_unmatched).transaction(|(ts, tu)| {
            if ts.get(&seen[..])?.is_some() {
                return Ok(false);
            }
            ts.insert(&seen[..], b"report".as_slice())?;
            tu.insert(&key[..], json.as_slice())?;
            Ok::<_, Tx>(true)
        })?;
        Ok(if stored {
            ReportOutcome::Unmatched {
                id: record.id,
                reason: record.reason,
            }
        } else {
            ReportOutcome::Duplicate
        })
    }

    /// Removes the index entries of parts sent before `cutoff` (normally now minus
    /// [`REPORT_MAX_AGE`]): their reports will not come, or would no longer be matched.
    /// Returns how many were removed.
    pub fn sweep_reports(&self, cutoff: DateTime<Utc>) -> Result<usize, StoreError> {
        let _w = self.writing();
        let cutoff = cutoff.timestamp_millis().max(0) as u64;
        let mut removed = 0;
        for r in self.inner.reports.iter() {
            let (k, v) = r?;
            let stale =
                <[u8; 8]>::try_from(&v[..]).map_or(true, |b| u64::from_be_bytes(b) < cutoff);
            if stale && self.inner.reports.remove(&k)?.is_some() {
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Unmatched reports newest first, one page: those stored before `after` (the previous
    /// page's last id) when given.
    pub fn unmatched_reports(
        &self,
        limit: usize,
        after: Option<&str>,
    ) -> Result<Vec<UnmatchedReport>, StoreError> {
        let limit = limit.clamp(1, 1000);
        let tree = &self.inner.reports_unmatched;
        let iter = match after.and_then(id_key) {
            Some(a) => tree.range(..a),
            None => tree.range::<&[u8], _>(..),
        };
        let mut out = Vec::new();
        for r in iter.rev() {
            let (k, v) = r?;
            out.push(decode(&k, &v)?);
            if out.len() == limit {
                break;
            }
        }
        Ok(out)
    }

    /// One step of `[retention] unmatched_after`: unmatched reports received at or before
    /// `cutoff` are removed, oldest first; at most `limit` looked at.
    pub fn purge_unmatched_reports(
        &self,
        cutoff: DateTime<Utc>,
        limit: usize,
    ) -> Result<SweepStep, StoreError> {
        let _w = self.writing();
        let tree = &self.inner.reports_unmatched;
        sweep_oldest(tree, cutoff, limit, |k, _| Ok(tree.remove(k)?.is_some()))
    }

    /// Removes the unmatched reports whose recipient is `number` (an erasure); how many.
    pub(super) fn erase_unmatched_of(&self, number: &str) -> Result<usize, StoreError> {
        let _w = self.writing();
        let mut n = 0;
        for r in self.inner.reports_unmatched.iter() {
            let (k, v) = r?;
            let u: UnmatchedReport = decode(&k, &v)?;
            let same = u
                .recipient
                .as_deref()
                .is_some_and(|r| r == number || same_recipient(number, r));
            if same && self.inner.reports_unmatched.remove(&k)?.is_some() {
                n += 1;
            }
        }
        Ok(n)
    }

    /// How many unmatched reports are kept.
    pub fn unmatched_report_count(&self) -> usize {
        self.inner.reports_unmatched.len()
    }

    /// How many sent parts await a status report.
    pub fn reports_awaited(&self) -> usize {
        self.inner.reports.len()
    }
}

/// A new unmatched report's id: from `now`, after `last` (the newest one's) if there is one.
pub(super) fn unmatched_id(now: DateTime<Utc>, last: Option<u128>) -> ulid::Ulid {
    let id = ulid::Ulid::from_parts(now.timestamp_millis().max(0) as u64, rand_bits());
    match last {
        Some(last) if id.0 <= last => ulid::Ulid(last.saturating_add(1)),
        _ => id,
    }
}

/// The record kept for a report (`None`: unreadable) that matched nothing.
pub(super) fn unmatched_record(
    id: &ulid::Ulid,
    modem: &str,
    report: Option<&StatusReport>,
    pdu: &[u8],
    reason: &str,
    now: DateTime<Utc>,
) -> UnmatchedReport {
    UnmatchedReport {
        id: id.to_string(),
        modem: modem.to_string(),
        received_at: now,
        message_reference: report.map(|r| r.message_reference),
        recipient: report.map(|r| r.recipient.to_string()),
        tp_st: report.map(|r| r.status.code),
        category: report.map(|r| category_name(r.status.category()).to_string()),
        description: report.map(|r| r.status.description().to_string()),
        discharge_time: report.map(|r| r.discharge_time),
        smsc_timestamp: report.map(|r| r.timestamp),
        pdu: sms::to_hex(pdu),
        reason: reason.to_string(),
    }
}

fn rand_bits() -> u128 {
    u128::from(fastrand::u64(..)) << 16 | u128::from(fastrand::u16(..))
}
