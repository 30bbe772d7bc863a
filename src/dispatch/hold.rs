//! Why a waiting message is not going out, in words, and when it is looked at again: the
//! answer to "why isn't it sending?" for one message, shown by `GET /v1/messages/{id}`, the
//! admin page and `smsgate messages show`.
//!
//! A rule that holds a message (`rules.rs`, the reply ambiguity check, a modem that could not
//! take it) leaves its code in `status_reason` and the time to look again in the due time. A
//! message that is due but that no modem takes (all resting, at a limit, or down) has no such
//! record: the pool's [`Gate`] says why at the moment of asking.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::pool::{Gate, Sending};
pub use crate::domain::HoldReason;
use crate::store::{Message, Status};

/// Why a waiting message does not go out now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Hold {
    /// `send_window`, `cap`, `precheck_unavailable`, `awaiting_reply`, `modem_unavailable`,
    /// `retry` (after a modem's error), `modem_resting`, `modem_limit` or `no_modem_up`.
    pub reason: HoldReason,
    /// The same, in words.
    pub text: String,
    /// When it is looked at again; `null` when that waits for a modem to come back up.
    pub until: Option<DateTime<Utc>>,
}

/// The words for a hold reason recorded in `status_reason`; `None` for a code that is not a
/// hold (a message's other reasons: `requeued`, `opted_out`…).
fn stored(reason: &str) -> Option<(HoldReason, &'static str)> {
    let why = HoldReason::stored(reason)?;
    Some((why, words(why)?))
}

/// The words for a hold a rule records; `None` for the holds worded where they are found.
fn words(why: HoldReason) -> Option<&'static str> {
    Some(match why {
        HoldReason::SendWindow => {
            "outside its send window (quiet hours or a quiet day in the recipient's time zone); it goes when the window opens"
        }
        HoldReason::Cap => {
            "the recipient already got the most reminder texts the per-recipient cap allows in its period; it may go when the oldest of them leaves the period"
        }
        HoldReason::PrecheckUnavailable => {
            "the billing system's precheck did not answer; it is asked again then"
        }
        HoldReason::AwaitingReply => {
            "an earlier question to the same number awaits its answer (a \"1\" could not tell which it answers); it goes when that is answered or its reply window closes"
        }
        HoldReason::ModemUnavailable => {
            "the modem that took it could not send (down or restarting); it is tried again then"
        }
        HoldReason::Retry
        | HoldReason::ModemResting
        | HoldReason::ModemLimit
        | HoldReason::NoModemUp => return None,
    })
}

/// Why `m` does not go out at `now`, or `None` when it is not waiting or goes out now.
/// `gate` is the pool's state at `now` (`None`: not known, only the stored rule is read).
pub fn explain(m: &Message, now: DateTime<Utc>, gate: Option<&Gate>) -> Option<Hold> {
    if !m.status.is_waiting() {
        return None;
    }
    if m.due_at > now {
        let reason = m.status_reason.as_deref().unwrap_or("");
        if let Some((code, text)) = stored(reason) {
            return Some(Hold {
                reason: code,
                text: text.into(),
                until: Some(m.due_at),
            });
        }
        // Accepted outside its send window: due when the window opens, with no reason
        // recorded (the window moved it before it was ever looked at).
        if reason.is_empty()
            && m.send_window.is_some()
            && m.due_at > m.send_at.unwrap_or(m.created_at)
        {
            return Some(Hold {
                reason: HoldReason::SendWindow,
                text: words(HoldReason::SendWindow)?.into(),
                until: Some(m.due_at),
            });
        }
        if m.status == Status::Queued && !m.attempts.is_empty() && !reason.is_empty() {
            return Some(Hold {
                reason: HoldReason::Retry,
                text: format!("the last attempt failed ({reason}); it is tried again then"),
                until: Some(m.due_at),
            });
        }
        // Scheduled for later by its sender: not held.
        return None;
    }
    let (why, until) = gate?.blocked()?;
    let (reason, text) = match why {
        Sending::Resting => (
            HoldReason::ModemResting,
            "due, but every modem is resting after going down too often; it goes when a rest ends",
        ),
        Sending::Limited => (
            HoldReason::ModemLimit,
            "due, but every modem is at its per-minute or daily limit; it goes when one frees up",
        ),
        Sending::Down | Sending::Up => (
            HoldReason::NoModemUp,
            "due, but no modem is up; it goes when one comes back",
        ),
    };
    Some(Hold {
        reason,
        text: text.into(),
        until,
    })
}

/// When a waiting message is looked at next: the hold's end, else its due time, never before
/// `now` (a due message goes as soon as a modem is free).
pub fn next_look(m: &Message, now: DateTime<Utc>, hold: Option<&Hold>) -> Option<DateTime<Utc>> {
    if !m.status.is_waiting() {
        return None;
    }
    match hold {
        Some(h) => h.until.map(|t| t.max(now)),
        None => Some(m.due_at.max(now)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn waiting(reason: Option<&str>, due_in: i64) -> (Message, DateTime<Utc>) {
        let now = Utc.with_ymd_and_hms(2026, 12, 7, 3, 0, 0).unwrap();
        let mut m = crate::store::test_message("+12025550123");
        m.status = Status::Queued;
        m.status_reason = reason.map(str::to_string);
        m.due_at = now + chrono::Duration::seconds(due_in);
        (m, now)
    }

    fn gate(modems: &[(Sending, Option<i64>)], now: DateTime<Utc>) -> Gate {
        Gate {
            modems: modems
                .iter()
                .enumerate()
                .map(|(i, (s, t))| {
                    (
                        format!("sim{i}"),
                        *s,
                        t.map(|t| now + chrono::Duration::seconds(t)),
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn a_rule_hold_says_why_in_words_and_until_when() {
        let (m, now) = waiting(Some("send_window"), 600);
        let h = explain(&m, now, None).unwrap();
        assert_eq!(h.reason, HoldReason::SendWindow);
        assert!(h.text.contains("send window"), "{}", h.text);
        assert_eq!(h.until, Some(m.due_at));
        assert_eq!(next_look(&m, now, Some(&h)), Some(m.due_at));
        let (m, now) = waiting(Some("awaiting_reply"), 60);
        assert_eq!(
            explain(&m, now, None).unwrap().reason,
            HoldReason::AwaitingReply
        );
        // A reason that is not a hold, and a message that is simply scheduled: no hold.
        let (m, now) = waiting(Some("requeued"), 60);
        assert_eq!(explain(&m, now, None), None);
        let (m, now) = waiting(None, 60);
        assert_eq!(explain(&m, now, None), None);
    }

    #[test]
    fn a_retry_after_an_error_is_a_hold() {
        let (mut m, now) = waiting(Some("+CMS ERROR 331: no network service"), 30);
        m.attempts.push(crate::store::Attempt {
            at: now,
            modem: "sim0".into(),
            result: crate::store::AttemptResult::Failed,
            error: m.status_reason.clone(),
            message_references: Vec::new(),
        });
        let h = explain(&m, now, None).unwrap();
        assert_eq!(h.reason, HoldReason::Retry);
        assert!(h.text.contains("no network service"), "{}", h.text);
    }

    #[test]
    fn a_due_message_waits_for_the_modems() {
        // Its rule's time has passed: the stored reason is stale, the gate decides.
        let (m, now) = waiting(Some("send_window"), -30);
        let free = gate(&[(Sending::Up, None), (Sending::Resting, Some(60))], now);
        assert_eq!(explain(&m, now, Some(&free)), None);
        assert_eq!(next_look(&m, now, None), Some(now), "never in the past");
        let resting = gate(&[(Sending::Resting, Some(120)), (Sending::Down, None)], now);
        let h = explain(&m, now, Some(&resting)).unwrap();
        assert_eq!(h.reason, HoldReason::ModemResting);
        assert_eq!(h.until, Some(now + chrono::Duration::seconds(120)));
        assert_eq!(next_look(&m, now, Some(&h)), h.until);
        let limited = gate(
            &[(Sending::Resting, Some(120)), (Sending::Limited, Some(30))],
            now,
        );
        let h = explain(&m, now, Some(&limited)).unwrap();
        assert_eq!(h.until, Some(now + chrono::Duration::seconds(30)));
        let down = gate(&[(Sending::Down, None)], now);
        let h = explain(&m, now, Some(&down)).unwrap();
        assert_eq!((h.reason, h.until), (HoldReason::NoModemUp, None));
        assert_eq!(next_look(&m, now, Some(&h)), None);
        // Not waiting: nothing to explain.
        let mut sent = m.clone();
        sent.status = Status::Sent;
        assert_eq!(explain(&sent, now, Some(&down)), None);
    }
}
