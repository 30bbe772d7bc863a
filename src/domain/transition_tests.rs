//! Each move of a message's life: from which statuses it is allowed, from which refused (and
//! then that nothing changed), and which fields it sets.

use chrono::{DateTime, Duration, TimeZone, Utc};

use super::transition::{
    Canceller, HoldReason, NotAllowed, RetryPolicy, SendFailure, SendOutcome, Unsent,
};
use super::{
    AttemptResult, GATEWAY, Message, Note, Origin, Part, PartStatus, Priority, ReminderLink,
    Status, StepKind, TwilioLink,
};
use crate::sms::{Address, StatusReport};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 7, 9, 0, 0).unwrap()
}

fn message(status: Status) -> Message {
    let now = t0();
    Message {
        id: "01JAAAAAAAAAAAAAAAAAAAAAAA".into(),
        to: "+12025550123".into(),
        text: "Your invoice is due".into(),
        encoding: "gsm7".into(),
        parts: 1,
        status,
        status_reason: None,
        priority: Priority::Normal,
        created_at: now,
        updated_at: now,
        send_at: None,
        expires_at: None,
        max_lateness_secs: 3600,
        due_at: now,
        reply_options: None,
        callback_url: None,
        metadata: None,
        status_report: true,
        attempts: Vec::new(),
        part_status: Vec::new(),
        modem: None,
        sent_at: None,
        delivered_at: None,
        created_by: "billing".into(),
        history_len: 0,
        requeued_at: None,
        accepted_as: Status::Queued,
        replies: Vec::new(),
        history_hash: None,
        redacted: None,
        send_window: None,
        reminder: None,
        twilio: None,
    }
}

/// Runs `f` on a message in each status; the statuses it allowed. A refused move must leave
/// the message exactly as it was.
fn allowed_from(f: impl Fn(&mut Message) -> Result<Note, NotAllowed>) -> Vec<Status> {
    let mut ok = Vec::new();
    for st in Status::ALL {
        let before = message(st);
        let mut m = before.clone();
        match f(&mut m) {
            Ok(_) => ok.push(st),
            Err(e) => {
                assert_eq!(m, before, "a refused move changed a {st:?} message");
                assert_eq!(e, NotAllowed::From(st), "refused from {st:?}");
            }
        }
    }
    ok
}

use Status::*;

#[test]
fn a_person_cancels_waiting_unknown_and_failed_messages_through_any_door() {
    for by in [Canceller::Api, Canceller::Twilio] {
        assert_eq!(
            allowed_from(|m| m.cancel(by)),
            [Queued, Scheduled, Failed, Unknown],
            "{by:?}"
        );
    }
    for st in Status::ALL {
        assert_eq!(
            message(st).cancellable(),
            matches!(st, Queued | Scheduled | Failed | Unknown)
        );
    }
    let mut m = message(Queued);
    let note = m.cancel(Canceller::Api).unwrap();
    assert_eq!(m.status, Cancelled);
    assert_eq!(m.status_reason.as_deref(), Some("cancelled"));
    assert_eq!(note, Note::from("cancelled through the API"));
    let mut m = message(Scheduled);
    let note = m.cancel(Canceller::Twilio).unwrap();
    assert_eq!(note.reason, "cancelled through the Twilio-compatible API");
    let mut m = message(Unknown);
    let note = m.cancel(Canceller::Twilio).unwrap();
    assert_eq!(m.status, Cancelled);
    assert_eq!(note.kind, "cancelled");
    assert_eq!(
        note.reason,
        "closed through the Twilio-compatible API while unknown: not to be sent again"
    );
    assert_eq!(note.data, Some(serde_json::json!({ "was": "unknown" })));
    // Cancelling twice is refused the second time: the caller answers from the status.
    assert_eq!(
        m.cancel(Canceller::Api).unwrap_err(),
        NotAllowed::From(Cancelled)
    );
}

#[test]
fn an_opt_out_cancels_only_waiting_messages() {
    assert_eq!(allowed_from(|m| m.cancel_opted_out()), [Queued, Scheduled]);
    let mut m = message(Scheduled);
    let note = m.cancel_opted_out().unwrap();
    assert_eq!(m.status, Cancelled);
    assert_eq!(m.status_reason.as_deref(), Some("opted_out"));
    assert_eq!(note.kind, "cancelled");
    assert_eq!(note.reason, "cancelled: +12025550123 opted out");
}

#[test]
fn a_rule_ends_only_waiting_messages_as_expired_or_cancelled() {
    let note = || Note::new("expired", "outside the window", serde_json::json!({}));
    assert_eq!(
        allowed_from(|m| m.end_unsent(Unsent::Expired, "send_window", note())),
        [Queued, Scheduled]
    );
    let mut m = message(Queued);
    assert_eq!(
        m.end_unsent(Unsent::Expired, "send_window", note()),
        Ok(note())
    );
    assert_eq!(
        (m.status, m.status_reason.as_deref()),
        (Expired, Some("send_window"))
    );
    let mut m = message(Scheduled);
    m.end_unsent(Unsent::Cancelled, "plan_cancelled", note())
        .unwrap();
    assert_eq!(
        (m.status, m.status_reason.as_deref()),
        (Cancelled, Some("plan_cancelled"))
    );
}

#[test]
fn a_hold_moves_a_due_waiting_message_later() {
    let now = t0();
    let until = now + Duration::hours(8);
    let note = || Note::from("held");
    assert_eq!(
        allowed_from(|m| m.hold(until, HoldReason::SendWindow, note(), now)),
        [Queued, Scheduled]
    );
    let mut m = message(Queued);
    m.hold(until, HoldReason::Cap, note(), now).unwrap();
    assert_eq!(m.status, Queued, "still waiting");
    assert_eq!(m.due_at, until);
    assert_eq!(m.requeued_at, Some(until), "lateness counts from then");
    assert_eq!(m.status_reason.as_deref(), Some("cap"));
    // Not due yet: another worker held or rescheduled it already.
    let before = m.clone();
    assert_eq!(
        m.hold(until, HoldReason::Cap, note(), now),
        Err(NotAllowed::NotDue(until))
    );
    assert_eq!(m, before);
}

#[test]
fn a_held_message_is_released_when_the_earlier_question_is_answered() {
    let now = t0();
    let later = now + Duration::days(2);
    let mut m = message(Queued);
    m.hold(later, HoldReason::AwaitingReply, Note::from("held"), now)
        .unwrap();
    let at = now + Duration::minutes(5);
    let note = m.release("01JBBB", at).unwrap();
    assert_eq!(note.kind, "released");
    assert_eq!((m.due_at, m.requeued_at), (at, Some(at)));
    assert_eq!(m.status_reason, None);
    // Held for another reason, or not held: nothing to release.
    let mut w = message(Queued);
    w.status_reason = Some("send_window".into());
    assert_eq!(w.release("01JBBB", at), Err(NotAllowed::NoChange));
    let mut s = message(Sent);
    s.status_reason = Some("awaiting_reply".into());
    assert_eq!(s.release("01JBBB", at), Err(NotAllowed::From(Sent)));
}

#[test]
fn an_admin_requeues_finished_messages_that_did_not_arrive() {
    let now = t0() + Duration::hours(1);
    assert_eq!(
        allowed_from(|m| m.requeue(now)),
        [Failed, Expired, Cancelled, Unknown]
    );
    let mut m = message(Unknown);
    m.status_reason = Some("no_answer_after_submit".into());
    let note = m.requeue(now).unwrap();
    assert_eq!(m.status, Queued);
    assert_eq!(m.status_reason.as_deref(), Some("requeued"));
    assert_eq!((m.due_at, m.requeued_at), (now, Some(now)));
    assert_eq!(note.reason, "requeued through the API (was unknown)");
    // Past its expires_at: refused, unchanged.
    let mut m = message(Failed);
    m.expires_at = Some(now);
    let before = m.clone();
    assert_eq!(m.requeue(now), Err(NotAllowed::PastExpiry));
    assert_eq!(m, before);
}

#[test]
fn a_claim_takes_a_due_waiting_message_or_expires_it() {
    let now = t0() + Duration::minutes(1);
    assert_eq!(
        allowed_from(|m| m.claim("sim0", None, now)),
        [Queued, Scheduled]
    );
    let mut m = message(Queued);
    m.status_reason = Some("modem_unavailable".into());
    let note = m.claim("sim0", None, now).unwrap();
    assert_eq!(m.status, Sending);
    assert_eq!(m.modem.as_deref(), Some("sim0"));
    assert_eq!(m.status_reason, None);
    assert_eq!(note, Note::from("sending via sim0"));
    let mut m = message(Queued);
    let note = m.claim("sim1", Some("sim0"), now).unwrap();
    assert_eq!(note.kind, "sending");
    assert_eq!(
        note.data,
        Some(serde_json::json!({ "modem": "sim1", "instead_of": "sim0" }))
    );
    // Not due yet.
    let mut m = message(Scheduled);
    m.due_at = now + Duration::seconds(1);
    assert_eq!(
        m.claim("sim0", None, now),
        Err(NotAllowed::NotDue(m.due_at))
    );
    assert_eq!(m.status, Scheduled);
    // Past expires_at.
    let mut m = message(Queued);
    m.expires_at = Some(now);
    m.claim("sim0", None, now).unwrap();
    assert_eq!(
        (m.status, m.status_reason.as_deref(), m.modem.as_deref()),
        (Expired, Some("expires_at"), None)
    );
    // Later than max_lateness after its due time, counted from a requeue when there was one.
    let late = t0() + Duration::seconds(3601);
    let mut m = message(Queued);
    m.claim("sim0", None, late).unwrap();
    assert_eq!(
        (m.status, m.status_reason.as_deref()),
        (Expired, Some("too_late"))
    );
    let mut m = message(Queued);
    m.requeued_at = Some(late - Duration::seconds(10));
    m.claim("sim0", None, late).unwrap();
    assert_eq!(m.status, Sending);
}

#[test]
fn a_message_sending_when_the_daemon_stopped_becomes_unknown() {
    assert_eq!(allowed_from(|m| m.interrupted()), [Sending]);
    let mut m = message(Sending);
    m.interrupted().unwrap();
    assert_eq!(
        (m.status, m.status_reason.as_deref()),
        (Unknown, Some("daemon_stopped_while_sending"))
    );
}

fn part(n: u8, mr: Option<u8>, status: PartStatus) -> Part {
    Part {
        part: n,
        message_reference: mr,
        status,
    }
}

fn tried(parts: Vec<Part>, failure: Option<SendFailure>) -> SendOutcome {
    SendOutcome::Tried {
        at: t0(),
        modem: "sim0".into(),
        parts,
        failure,
        facts: serde_json::json!({ "modem": "sim0" }),
    }
}

fn failure(maybe_sent: bool, permanent: bool) -> Option<SendFailure> {
    Some(SendFailure {
        error: "+CMS ERROR 331: no network service".into(),
        maybe_sent,
        permanent,
    })
}

const BACKOFF: &(dyn Fn(u32) -> Duration + Send + Sync) = &|n| Duration::seconds(30 * i64::from(n));

fn policy(max_attempts: u32) -> RetryPolicy<'static> {
    RetryPolicy {
        max_attempts,
        backoff: BACKOFF,
    }
}

#[test]
fn a_send_outcome_applies_only_to_a_sending_message() {
    let now = t0();
    let o = tried(vec![part(1, Some(7), PartStatus::Sent)], None);
    assert_eq!(
        allowed_from(|m| m.apply_send_outcome(&o, policy(5), now)),
        [Sending]
    );
}

#[test]
fn every_part_accepted_is_sent() {
    let now = t0() + Duration::seconds(2);
    let mut m = message(Sending);
    m.parts = 2;
    let parts = vec![
        part(1, Some(7), PartStatus::Sent),
        part(2, Some(8), PartStatus::Sent),
    ];
    let note = m
        .apply_send_outcome(&tried(parts.clone(), None), policy(5), now)
        .unwrap();
    assert_eq!(m.status, Sent);
    assert_eq!(m.sent_at, Some(now));
    assert_eq!(m.part_status, parts);
    assert_eq!(m.attempts.len(), 1);
    assert_eq!(m.attempts[0].result, AttemptResult::Sent);
    assert_eq!(m.attempts[0].message_references, [7, 8]);
    assert_eq!(m.attempts[0].error, None);
    assert_eq!(note.kind, "sent");
    assert_eq!(note.reason, "sent via sim0, TP-MR [7, 8]");
}

#[test]
fn no_answer_after_submit_is_unknown_and_not_retried() {
    let mut m = message(Sending);
    let parts = vec![part(1, None, PartStatus::Unknown)];
    m.apply_send_outcome(&tried(parts, failure(true, false)), policy(5), t0())
        .unwrap();
    assert_eq!(
        (m.status, m.status_reason.as_deref()),
        (Unknown, Some("no_answer_after_submit"))
    );
    assert_eq!(m.attempts[0].result, AttemptResult::MaybeSent);
    assert_eq!(m.part_status[0].status, PartStatus::Unknown);
    assert_eq!(m.sent_at, None);
}

#[test]
fn a_temporary_failure_is_retried_until_the_attempts_run_out() {
    let now = t0();
    let parts = || {
        vec![
            part(1, Some(3), PartStatus::Sent),
            part(2, None, PartStatus::Failed),
            part(3, None, PartStatus::NotSent),
        ]
    };
    let mut m = message(Sending);
    let note = m
        .apply_send_outcome(&tried(parts(), failure(false, false)), policy(2), now)
        .unwrap();
    assert_eq!(m.status, Queued);
    assert_eq!(
        m.due_at,
        now + Duration::seconds(30),
        "backoff after attempt 1"
    );
    assert_eq!(
        m.status_reason.as_deref(),
        Some("+CMS ERROR 331: no network service")
    );
    assert_eq!(m.attempts[0].result, AttemptResult::Failed);
    assert_eq!(m.attempts[0].message_references, [3]);
    assert!(
        note.reason.starts_with("retry 1/2 after"),
        "{}",
        note.reason
    );
    // Second try, the last one allowed.
    m.status = Sending;
    let note = m
        .apply_send_outcome(&tried(parts(), failure(false, false)), policy(2), now)
        .unwrap();
    assert_eq!(m.status, Failed);
    assert_eq!(m.attempts.len(), 2);
    assert!(
        note.reason.starts_with("failed after 2 attempts"),
        "{}",
        note.reason
    );
}

#[test]
fn a_permanent_failure_fails_at_once() {
    let mut m = message(Sending);
    let note = m
        .apply_send_outcome(
            &tried(
                vec![part(1, None, PartStatus::Failed)],
                failure(false, true),
            ),
            policy(5),
            t0(),
        )
        .unwrap();
    assert_eq!(m.status, Failed);
    assert_eq!(note.reason, "failed: +CMS ERROR 331: no network service");
}

#[test]
fn a_modem_that_could_not_take_it_requeues_it_without_an_attempt() {
    let at = t0() + Duration::seconds(2);
    let mut m = message(Sending);
    let o = SendOutcome::ModemUnavailable {
        error: "modem down".into(),
        retry_at: at,
    };
    m.apply_send_outcome(&o, policy(5), t0()).unwrap();
    assert_eq!(
        (m.status, m.status_reason.as_deref(), m.due_at),
        (Queued, Some("modem_unavailable"), at)
    );
    assert!(m.attempts.is_empty());
    let mut m = message(Sending);
    let o = SendOutcome::Unencodable {
        error: "too long".into(),
    };
    m.apply_send_outcome(&o, policy(5), t0()).unwrap();
    assert_eq!(
        (m.status, m.status_reason.as_deref()),
        (Failed, Some("encoding: too long"))
    );
}

fn report(mr: u8, tp_st: u8) -> StatusReport {
    let scts = DateTime::parse_from_rfc3339("2026-12-07T10:00:00+01:00").unwrap();
    StatusReport {
        smsc: None,
        message_reference: mr,
        recipient: Address::parse_number("to", "+12025550123").unwrap(),
        timestamp: scts,
        discharge_time: scts,
        status: crate::sms::Status::from_code(tp_st),
        status_report_qualifier: false,
    }
}

fn sent(mrs: &[u8]) -> Message {
    let mut m = message(Sent);
    m.parts = mrs.len() as u8;
    m.part_status = mrs
        .iter()
        .enumerate()
        .map(|(i, mr)| part(i as u8 + 1, Some(*mr), PartStatus::Sent))
        .collect();
    m
}

#[test]
fn a_message_is_delivered_when_its_last_part_is() {
    let now = t0() + Duration::minutes(1);
    let mut m = sent(&[11, 12]);
    let note = m.apply_report(1, &report(11, 0x00), now).unwrap();
    assert_eq!(note.kind, "delivery_report");
    assert_eq!(m.status, Sent, "one part of two");
    assert_eq!(m.part_status[0].status, PartStatus::Delivered);
    assert_eq!(m.delivered_at, None);
    m.apply_report(2, &report(12, 0x00), now).unwrap();
    assert_eq!(m.status, Delivered);
    assert_eq!(m.delivered_at, Some(now));
    // A report again changes nothing.
    assert_eq!(m.apply_report(2, &report(12, 0x00), now), None);
}

#[test]
fn a_failed_part_fails_the_message_and_a_late_report_is_history_only() {
    let now = t0();
    let mut m = sent(&[21, 22]);
    let note = m.apply_report(2, &report(22, 0x46), now).unwrap();
    assert_eq!(m.status, Failed);
    assert_eq!(m.part_status[1].status, PartStatus::Failed);
    assert!(
        m.status_reason
            .as_deref()
            .is_some_and(|r| r.starts_with("delivery failed") && r.ends_with("(TP-ST 0x46)")),
        "{:?}",
        m.status_reason
    );
    assert!(note.reason.starts_with("part 2/2: "), "{}", note.reason);
    // The other part's delivery comes later: noted, the message stays failed.
    let note = m.apply_report(1, &report(21, 0x00), now).unwrap();
    assert_eq!(m.status, Failed);
    assert_eq!(m.part_status[0].status, PartStatus::Delivered);
    assert!(
        note.reason
            .contains("reported after the message became failed")
    );
    // A final part does not move again.
    assert_eq!(m.apply_report(1, &report(21, 0x46), now), None);
    assert_eq!(m.part_status[0].status, PartStatus::Delivered);
}

#[test]
fn a_pending_report_or_an_unknown_part_leaves_the_status() {
    let mut m = sent(&[31]);
    let note = m.apply_report(1, &report(31, 0x20), t0()).unwrap();
    assert!(note.reason.contains("delivery pending"), "{}", note.reason);
    assert_eq!(m.status, Sent);
    assert_eq!(m.part_status[0].status, PartStatus::Sent);
    // Wrong TP-MR for the part, or no such part.
    assert_eq!(m.apply_report(1, &report(32, 0x00), t0()), None);
    assert_eq!(m.apply_report(2, &report(31, 0x00), t0()), None);
    assert_eq!(m.status, Sent);
}

#[test]
fn typed_results_and_part_statuses_keep_their_names_on_disk() {
    for (r, s) in [
        (AttemptResult::Sent, "sent"),
        (AttemptResult::Failed, "failed"),
        (AttemptResult::MaybeSent, "maybe_sent"),
    ] {
        assert_eq!(serde_json::to_value(r).unwrap(), s);
        assert_eq!(r.as_str(), s);
    }
    for (p, s) in [
        (PartStatus::Pending, "pending"),
        (PartStatus::Sent, "sent"),
        (PartStatus::Delivered, "delivered"),
        (PartStatus::Failed, "failed"),
        (PartStatus::Unknown, "unknown"),
        (PartStatus::NotSent, "not_sent"),
    ] {
        assert_eq!(serde_json::to_value(p).unwrap(), s);
        assert_eq!(serde_json::from_value::<PartStatus>(s.into()).unwrap(), p);
        assert_eq!(p.as_str(), s);
    }
    for h in [
        HoldReason::SendWindow,
        HoldReason::Cap,
        HoldReason::PrecheckUnavailable,
        HoldReason::AwaitingReply,
        HoldReason::ModemUnavailable,
    ] {
        assert_eq!(HoldReason::stored(h.as_str()), Some(h));
        assert_eq!(serde_json::to_value(h).unwrap(), h.as_str());
    }
    assert_eq!(HoldReason::stored("retry"), None, "computed, never stored");
    assert_eq!(HoldReason::stored("requeued"), None);
}

#[test]
fn the_origin_is_read_from_what_a_message_keeps() {
    let mut m = message(Status::Queued);
    assert_eq!(m.origin(), Origin::Api("billing"));
    assert!(!m.is_from_gateway());
    m.twilio = Some(TwilioLink {
        account_sid: "AC1".into(),
        from: None,
        messaging_service_sid: None,
        status_callback: None,
        direction: "outbound-api".into(),
        modem: None,
    });
    assert_eq!(m.origin(), Origin::Twilio("billing"));
    m.twilio = None;
    m.reminder = Some(ReminderLink {
        plan_id: "01JBBBBBBBBBBBBBBBBBBBBBBB".into(),
        invoice: "INV-1".into(),
        step: 0,
        kind: StepKind::Reminder,
        template: "due_soon".into(),
    });
    assert_eq!(m.origin(), Origin::Plan("billing"));
    // The gateway's own texts are the gateway's whatever else they keep.
    m.created_by = GATEWAY.into();
    assert_eq!(m.origin(), Origin::Gateway);
    assert!(m.is_from_gateway());
}
