//! The moves of a message's life, in one place. Each checks the status it starts from, makes
//! the change (status, `status_reason`, due time, modem, times, parts) and returns the history
//! note that records it: the closure given to `Store::update` returns that note, so a refused
//! move changes nothing. Whoever asks (the API, the admin page, the Twilio-compatible door,
//! the dispatcher, reports, plans, opt-outs) only chooses the move.
//!
//! Every move is pure: a store transaction may run it more than once.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::message::{Attempt, AttemptResult, Message, Note, Part, PartStatus, Status};
use crate::sms::{StatusCategory, StatusReport};

/// Why a move was refused. The message is left as it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NotAllowed {
    /// The move does not start from this status.
    #[error("the message is {}", .0.as_str())]
    From(Status),
    /// It is waiting, but not due before this time.
    #[error("the message is not due before {0}")]
    NotDue(DateTime<Utc>),
    /// Its `expires_at` has passed: it may not go out any more.
    #[error("its expires_at has passed")]
    PastExpiry,
    /// The move was made already, or the facts change nothing.
    #[error("nothing changes")]
    NoChange,
}

/// Who decided to cancel a message: a person, through one of the doors. Each door cancels by
/// the same rule ([`Message::cancellable`]); only the words in the history differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Canceller {
    /// `POST /v1/messages/{id}/cancel`, which the admin page uses too.
    Api,
    /// The Twilio-compatible door (`Status=canceled`).
    Twilio,
}

impl Canceller {
    fn door(self) -> &'static str {
        match self {
            Canceller::Api => "the API",
            Canceller::Twilio => "the Twilio-compatible API",
        }
    }
}

/// How a waiting message ends without going out, when a rule (send window, cap, precheck,
/// plan) decides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unsent {
    /// It could only go out too late.
    Expired,
    /// It is not wanted any more.
    Cancelled,
}

/// Why a waiting message is not going out now: the code kept in `status_reason` while it is
/// held by a rule, and the codes `GET /v1/messages/{id}` explains a wait with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HoldReason {
    /// Outside its send window, or on a quiet day.
    SendWindow,
    /// The per-recipient cap of reminder texts is reached.
    Cap,
    /// The billing system's precheck did not answer.
    PrecheckUnavailable,
    /// An earlier question to the same number awaits its answer.
    AwaitingReply,
    /// The modem that took it could not send.
    ModemUnavailable,
    /// The last attempt failed; it is tried again later.
    Retry,
    /// Due, but every modem rests after going down too often.
    ModemResting,
    /// Due, but every modem is at a limit.
    ModemLimit,
    /// Due, but no modem is up.
    NoModemUp,
}

impl HoldReason {
    /// The name used in JSON and in `status_reason`.
    pub fn as_str(self) -> &'static str {
        match self {
            HoldReason::SendWindow => "send_window",
            HoldReason::Cap => "cap",
            HoldReason::PrecheckUnavailable => "precheck_unavailable",
            HoldReason::AwaitingReply => "awaiting_reply",
            HoldReason::ModemUnavailable => "modem_unavailable",
            HoldReason::Retry => "retry",
            HoldReason::ModemResting => "modem_resting",
            HoldReason::ModemLimit => "modem_limit",
            HoldReason::NoModemUp => "no_modem_up",
        }
    }

    /// The hold a `status_reason` records, for the reasons a rule stores (`None` for any other
    /// code: `requeued`, `opted_out`, a modem's error…).
    pub fn stored(reason: &str) -> Option<HoldReason> {
        [
            HoldReason::SendWindow,
            HoldReason::Cap,
            HoldReason::PrecheckUnavailable,
            HoldReason::AwaitingReply,
            HoldReason::ModemUnavailable,
        ]
        .into_iter()
        .find(|h| h.as_str() == reason)
    }
}

/// How a modem's failure on a part is to be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendFailure {
    /// The modem's error, in words.
    pub error: String,
    /// The failure came after the text was handed over: the network may have it.
    pub maybe_sent: bool,
    /// The text can never go out this way (bad number, barred): no retry.
    pub permanent: bool,
}

/// What a modem did with a message in `sending`.
#[derive(Debug, Clone, PartialEq)]
pub enum SendOutcome {
    /// Nothing went out (the modem was down or restarting): back to the queue, due at
    /// `retry_at`, no attempt used.
    ModemUnavailable {
        /// The modem's error, in words.
        error: String,
        /// When it may be taken again.
        retry_at: DateTime<Utc>,
    },
    /// The text no longer encodes: it fails for good.
    Unencodable {
        /// The encoder's error, in words.
        error: String,
    },
    /// The modem tried.
    Tried {
        /// When the try started.
        at: DateTime<Utc>,
        /// Through which modem.
        modem: String,
        /// Each part as the modem left it.
        parts: Vec<Part>,
        /// The first part's failure, if one failed.
        failure: Option<SendFailure>,
        /// What went out and through which SIM: the history's facts of the try.
        facts: serde_json::Value,
    },
}

/// How often a message with temporary failures is tried, and how long it waits between tries.
#[derive(Clone, Copy)]
pub struct RetryPolicy<'a> {
    /// Attempts before it fails.
    pub max_attempts: u32,
    /// The wait after attempt `n` (from 1).
    pub backoff: &'a (dyn Fn(u32) -> chrono::Duration + Send + Sync),
}

fn refuse_unless(ok: bool, status: Status) -> Result<(), NotAllowed> {
    if ok {
        Ok(())
    } else {
        Err(NotAllowed::From(status))
    }
}

/// `0x61`.
fn hex_code(code: u8) -> String {
    format!("0x{code:02X}")
}

impl Message {
    /// Whether a person may cancel it, through any door: while it waits, and when it is
    /// `unknown` or `failed` and someone decides it is not to be sent again.
    pub fn cancellable(&self) -> bool {
        self.status.is_waiting() || matches!(self.status, Status::Unknown | Status::Failed)
    }

    /// Whether it may be sent again by hand: `unknown`, `failed`, `expired` or `cancelled`, and
    /// its `expires_at` (if any) not passed at `now`.
    pub fn requeueable(&self, now: DateTime<Utc>) -> Result<(), NotAllowed> {
        refuse_unless(
            matches!(
                self.status,
                Status::Unknown | Status::Failed | Status::Expired | Status::Cancelled
            ),
            self.status,
        )?;
        if self.expires_at.is_some_and(|e| e <= now) {
            return Err(NotAllowed::PastExpiry);
        }
        Ok(())
    }

    /// A person cancels it (see [`Message::cancellable`]) → `cancelled`, `status_reason`
    /// `cancelled`.
    pub fn cancel(&mut self, by: Canceller) -> Result<Note, NotAllowed> {
        refuse_unless(self.cancellable(), self.status)?;
        let was = self.status;
        self.status = Status::Cancelled;
        self.status_reason = Some("cancelled".into());
        let door = by.door();
        Ok(if was.is_waiting() {
            Note::from(format!("cancelled through {door}"))
        } else {
            Note::new(
                "cancelled",
                format!(
                    "closed through {door} while {}: not to be sent again",
                    was.as_str()
                ),
                json!({ "was": was.as_str() }),
            )
        })
    }

    /// Its number opted out while it waited → `cancelled`, `status_reason` `opted_out`.
    pub fn cancel_opted_out(&mut self) -> Result<Note, NotAllowed> {
        refuse_unless(self.status.is_waiting(), self.status)?;
        self.status = Status::Cancelled;
        self.status_reason = Some("opted_out".into());
        Ok(Note::new(
            "cancelled",
            format!("cancelled: {} opted out", self.to),
            json!({ "reason": "opted_out" }),
        ))
    }

    /// A rule (send window, cap, precheck, its plan) ends it while it waits → `expired` or
    /// `cancelled` with `reason` in `status_reason`; `note` says why in words.
    pub fn end_unsent(
        &mut self,
        how: Unsent,
        reason: &str,
        note: Note,
    ) -> Result<Note, NotAllowed> {
        refuse_unless(self.status.is_waiting(), self.status)?;
        self.status = match how {
            Unsent::Expired => Status::Expired,
            Unsent::Cancelled => Status::Cancelled,
        };
        self.status_reason = Some(reason.to_string());
        Ok(note)
    }

    /// A rule holds it, waiting and due at `now`, until `until`: it stays waiting, due then,
    /// with the hold's code in `status_reason`. Lateness counts from `until`.
    pub fn hold(
        &mut self,
        until: DateTime<Utc>,
        why: HoldReason,
        note: Note,
        now: DateTime<Utc>,
    ) -> Result<Note, NotAllowed> {
        refuse_unless(self.status.is_waiting(), self.status)?;
        if self.due_at > now {
            return Err(NotAllowed::NotDue(self.due_at));
        }
        self.due_at = until;
        self.requeued_at = Some(until);
        self.status_reason = Some(why.as_str().to_string());
        Ok(note)
    }

    /// A message held until `answered` got its answer goes now.
    pub fn release(&mut self, answered: &str, now: DateTime<Utc>) -> Result<Note, NotAllowed> {
        refuse_unless(self.status.is_waiting(), self.status)?;
        if self.status_reason.as_deref() != Some(HoldReason::AwaitingReply.as_str()) {
            return Err(NotAllowed::NoChange);
        }
        self.status_reason = None;
        self.due_at = now;
        self.requeued_at = Some(now);
        Ok(Note::new(
            "released",
            format!("released: message {answered} to the same number was answered"),
            json!({ "answered": answered }),
        ))
    }

    /// An admin sends it again (see [`Message::requeueable`]) → `queued`, due `now`,
    /// `status_reason` `requeued`; lateness counts from `now`.
    pub fn requeue(&mut self, now: DateTime<Utc>) -> Result<Note, NotAllowed> {
        self.requeueable(now)?;
        let was = self.status.as_str();
        self.status = Status::Queued;
        self.status_reason = Some("requeued".into());
        self.due_at = now;
        self.requeued_at = Some(now);
        Ok(Note::from(format!("requeued through the API (was {was})")))
    }

    /// A modem's worker takes it, waiting and due at `now` → `sending` on `modem`
    /// (`instead_of`: the modem that last texted the number, when it could not). One past its
    /// `expires_at`, or that could only go out more than `max_lateness` after its due time,
    /// becomes `expired` instead (`status_reason` `expires_at` or `too_late`).
    pub fn claim(
        &mut self,
        modem: &str,
        instead_of: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Note, NotAllowed> {
        refuse_unless(self.status.is_waiting(), self.status)?;
        if self.due_at > now {
            return Err(NotAllowed::NotDue(self.due_at));
        }
        if let Some(exp) = self.expires_at
            && exp <= now
        {
            self.status = Status::Expired;
            self.status_reason = Some("expires_at".into());
            return Ok(Note::from(format!(
                "not sent: expired at {}",
                exp.to_rfc3339()
            )));
        }
        let due = self.requeued_at.or(self.send_at).unwrap_or(self.created_at);
        if (now - due).num_seconds() > self.max_lateness_secs as i64 {
            self.status = Status::Expired;
            self.status_reason = Some("too_late".into());
            return Ok(Note::from(format!(
                "not sent: it could only go out {} s after its due time, more than max_lateness",
                (now - due).num_seconds()
            )));
        }
        self.status = Status::Sending;
        self.status_reason = None;
        self.modem = Some(modem.to_string());
        Ok(match instead_of {
            Some(other) => Note::new(
                "sending",
                format!(
                    "sending via {modem}: {other}, which last texted this number, is not available"
                ),
                json!({ "modem": modem, "instead_of": other }),
            ),
            None => Note::from(format!("sending via {modem}")),
        })
    }

    /// The daemon stopped abruptly while it was `sending`: it may be on the phone already →
    /// `unknown` (`daemon_stopped_while_sending`), never re-sent automatically.
    pub fn interrupted(&mut self) -> Result<Note, NotAllowed> {
        refuse_unless(self.status == Status::Sending, self.status)?;
        self.status = Status::Unknown;
        self.status_reason = Some("daemon_stopped_while_sending".into());
        Ok(Note::from(
            "the daemon stopped while this message was being sent; it may have been delivered",
        ))
    }

    /// What the modem did with it, while `sending`: `sent` (every part accepted), `unknown`
    /// (no answer after the text was handed over: `no_answer_after_submit`), `queued` again
    /// after a temporary failure while attempts remain (due after the backoff) or when the
    /// modem could not take it (`modem_unavailable`, no attempt used), else `failed`.
    pub fn apply_send_outcome(
        &mut self,
        outcome: &SendOutcome,
        retry: RetryPolicy<'_>,
        now: DateTime<Utc>,
    ) -> Result<Note, NotAllowed> {
        refuse_unless(self.status == Status::Sending, self.status)?;
        let (at, modem, parts, failure, facts) = match outcome {
            SendOutcome::ModemUnavailable { error, retry_at } => {
                self.status = Status::Queued;
                self.status_reason = Some(HoldReason::ModemUnavailable.as_str().into());
                self.due_at = *retry_at;
                return Ok(Note::from(format!("requeued: {error}")));
            }
            SendOutcome::Unencodable { error } => {
                self.status = Status::Failed;
                self.status_reason = Some(format!("encoding: {error}"));
                return Ok(Note::from(format!("failed: {error}")));
            }
            SendOutcome::Tried {
                at,
                modem,
                parts,
                failure,
                facts,
            } => (at, modem, parts, failure, facts),
        };
        let refs: Vec<u8> = parts
            .iter()
            .filter(|p| p.status == PartStatus::Sent)
            .filter_map(|p| p.message_reference)
            .collect();
        self.attempts.push(Attempt {
            at: *at,
            modem: modem.clone(),
            result: match failure {
                None => AttemptResult::Sent,
                Some(f) if f.maybe_sent => AttemptResult::MaybeSent,
                Some(_) => AttemptResult::Failed,
            },
            error: failure.as_ref().map(|f| f.error.clone()),
            message_references: refs.clone(),
        });
        self.part_status = parts.clone();
        let Some(f) = failure else {
            self.status = Status::Sent;
            self.status_reason = None;
            self.sent_at = Some(now);
            return Ok(Note::new(
                "sent",
                format!("sent via {modem}, TP-MR {refs:?}"),
                facts.clone(),
            ));
        };
        let e = &f.error;
        if f.maybe_sent {
            self.status = Status::Unknown;
            self.status_reason = Some("no_answer_after_submit".into());
            return Ok(Note::new(
                "attempt",
                format!(
                    "unknown: {e}; the network may have it, so it is not re-sent automatically"
                ),
                facts.clone(),
            ));
        }
        let attempts = self.attempts.len() as u32;
        let max = retry.max_attempts;
        self.status_reason = Some(e.clone());
        if !f.permanent && attempts < max {
            self.status = Status::Queued;
            self.due_at = now + (retry.backoff)(attempts);
            return Ok(Note::new(
                "attempt",
                format!(
                    "retry {attempts}/{max} after {e}, next at {}",
                    self.due_at.to_rfc3339()
                ),
                facts.clone(),
            ));
        }
        self.status = Status::Failed;
        Ok(Note::new(
            "attempt",
            if f.permanent {
                format!("failed: {e}")
            } else {
                format!("failed after {attempts} attempts: {e}")
            },
            facts.clone(),
        ))
    }

    /// A status report for part `part` (matched by its TP-MR), received at `now`. While the
    /// message is `sent`: the part becomes `delivered` or `failed`; the message becomes
    /// `delivered` when every part is, `failed` when one fails. Once the message is past `sent`
    /// a report is history only, and only when it tells something new about its part: the
    /// status never moves back. `None` when it changes nothing (no such part, or nothing new).
    pub fn apply_report(&mut self, part: u8, r: &StatusReport, now: DateTime<Utc>) -> Option<Note> {
        let total = self.part_status.len();
        let p = self
            .part_status
            .iter_mut()
            .find(|p| p.part == part && p.message_reference == Some(r.message_reference))?;
        let code = r.status.code;
        let category = r.status.category();
        let description = r.status.description();
        let data = json!({
            "part": part,
            "message_reference": r.message_reference,
            "tp_st": code,
            "category": category,
            "description": description,
            "discharge_time": r.discharge_time,
            "smsc_timestamp": r.timestamp,
        });
        let new_part = match category {
            StatusCategory::Delivered if !p.status.is_final() => PartStatus::Delivered,
            StatusCategory::Failed if !p.status.is_final() => PartStatus::Failed,
            _ => p.status,
        };
        let of = if total > 1 {
            format!("part {part}/{total}: ")
        } else {
            String::new()
        };
        let failure = format!("delivery failed: {description} (TP-ST {})", hex_code(code));
        if self.status != Status::Sent {
            if new_part == p.status {
                return None;
            }
            p.status = new_part;
            let what = if category == StatusCategory::Delivered {
                "delivered".to_string()
            } else {
                failure
            };
            let reason = format!(
                "{of}{what}, reported after the message became {}",
                self.status.as_str()
            );
            return Some(Note::new("delivery_report", reason, data));
        }
        p.status = new_part;
        let reason = match category {
            StatusCategory::Delivered => {
                if self
                    .part_status
                    .iter()
                    .all(|p| p.status == PartStatus::Delivered)
                {
                    self.status = Status::Delivered;
                    self.status_reason = None;
                    self.delivered_at = Some(now);
                }
                format!("{of}delivered ({description}, TP-ST {})", hex_code(code))
            }
            StatusCategory::Failed => {
                self.status = Status::Failed;
                self.status_reason = Some(failure.clone());
                format!("{of}{failure}")
            }
            StatusCategory::Pending => format!(
                "{of}delivery pending: {description} (TP-ST {}); the network keeps trying",
                hex_code(code)
            ),
            StatusCategory::Unknown => format!(
                "{of}status report with a reserved TP-ST {}; the part stays sent",
                hex_code(code)
            ),
        };
        Some(Note::new("delivery_report", reason, data))
    }
}
