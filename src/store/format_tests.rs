//! Tests pinning the on-disk format: the byte of each status, every tree name and key layout,
//! and a store written by release 0.1.0 (`tests/fixtures/store-0.1.0/`) that must open and
//! read the same with this code.
//!
//! The fixture is written once, by an older release, and never again: `SMSGATE_WRITE_FIXTURE=1
//! cargo test --lib store::format_tests::write_store_fixture -- --ignored` writes it into an
//! empty `tests/fixtures/store-<version>/` (it refuses a directory that exists).
//!
//! Longer than 800 lines, on purpose: the fixture's writer and its reader must stay side by
//! side (what one release writes, the next must read back the same), and most of the length is
//! literal bytes and records that are the pinned format itself.

use std::path::{Path, PathBuf};

use chrono::{DateTime, TimeZone, Utc};

use super::backup::TREES;
use super::inbound::{InboundFilter, Received};
use super::optout::OptOut;
use super::outbox::NewWebhook;
use super::plans::{Plan, PlanStatus, PlanStep, StoredTemplate};
use super::*;
use crate::sms::{Address, Pdu};

/// The fixture this code must read.
const FIXTURE: &str = "tests/fixtures/store-0.1.0";

/// Recipients of the fixture's messages, one per message.
const QUEUED: &str = "+12025550101";
const SCHEDULED: &str = "+12025550102";
const UNKNOWN: &str = "+12025550103";
const SENT: &str = "+12025550104";
const DELIVERED: &str = "+12025550105";
const FAILED: &str = "+12025550106";
const CANCELLED: &str = "+12025550107";
const EXPIRED: &str = "+12025550108";
const PLANNED: &str = "+12025550109";
const STRANGER: &str = "+12025550120";
const OPTED_OUT: &str = "+12025550150";
/// The idempotency key of the queued message's request.
const IDEM_KEY: &str = "billing\0k-queued";

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURE)
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn to(s: &SledStore, m: &Message, status: Status, note: Note) {
    s.update(&m.id, |m| {
        m.status = status;
        Some(note.clone())
    })
    .unwrap()
    .unwrap();
}

fn message(to: &str, text: &str) -> Message {
    let mut m = test_message(to);
    m.text = text.into();
    m.created_by = "billing".into();
    m
}

/// Moves `m` through `sending` to `sent` on `sim0`, its parts with these TP-MRs.
fn send(s: &SledStore, m: &Message, mrs: &[u8]) {
    to(s, m, Status::Sending, Note::from("dispatched".to_string()));
    let mrs = mrs.to_vec();
    s.update(&m.id, |m| {
        m.status = Status::Sent;
        m.modem = Some("sim0".into());
        m.sent_at = Some(Utc::now());
        m.attempts.push(Attempt {
            at: Utc::now(),
            modem: "sim0".into(),
            result: crate::store::AttemptResult::Sent,
            error: None,
            message_references: mrs.clone(),
        });
        m.part_status = mrs
            .iter()
            .enumerate()
            .map(|(i, mr)| Part {
                part: i as u8 + 1,
                message_reference: Some(*mr),
                status: crate::store::PartStatus::Sent,
            })
            .collect();
        Some("sent")
    })
    .unwrap()
    .unwrap();
}

/// A status report for TP-MR `mr` to `to`, as a modem gives it, and its decoding.
fn report(mr: u8, to: &str, code: u8) -> (Vec<u8>, crate::sms::StatusReport) {
    let ra = Address::parse_number("to", to).unwrap();
    let smsc = Address::parse_number("smsc", "+15550000000").unwrap();
    let scts = DateTime::parse_from_rfc3339("2026-03-02T10:00:00+01:00").unwrap();
    let pdu = crate::sms::encode_status_report(Some(&smsc), mr, &ra, &scts, &scts, code);
    let Ok(Pdu::StatusReport(r)) = crate::sms::decode(&pdu, true) else {
        panic!("not a status report")
    };
    (pdu, r)
}

/// An inbound text from `from`, stored as `sim0` received it.
fn receive(s: &SledStore, from: &str, text: &str, reference: u8) -> String {
    let from = Address::parse_number("from", from).unwrap();
    let ts = at("2026-03-02T10:05:00Z").fixed_offset();
    let pdu = crate::sms::encode_deliver(None, &from, text, &ts, false, reference).unwrap();
    match s.receive("sim0", &pdu[0], None, Utc::now()).unwrap() {
        Received::Stored(m) => m.id,
        other => panic!("not stored: {other:?}"),
    }
}

/// Writes the fixture's store into `dir` through the store's own API.
async fn write_fixture(dir: &Path) {
    let s = SledStore::open(dir, 16).unwrap();

    let mut queued = message(QUEUED, "Invoice INV-1001: 120.50 USD due on 15 Jan");
    queued.metadata = Some(serde_json::json!({"invoice": "INV-1001"}));
    let idem = IdempotencyRecord {
        fingerprint: "c0ffee".into(),
        status: 201,
        body: serde_json::json!({"id": queued.id, "status": "queued"}),
        at: at("2026-03-02T09:00:00Z"),
    };
    s.insert(std::slice::from_ref(&queued), Some((IDEM_KEY, &idem)))
        .unwrap();

    let mut scheduled = message(SCHEDULED, "Your invoice is due tomorrow");
    scheduled.status = Status::Scheduled;
    scheduled.accepted_as = Status::Scheduled;
    scheduled.send_at = Some(at("2030-01-14T10:00:00Z"));
    scheduled.due_at = at("2030-01-14T10:00:00Z");
    scheduled.priority = Priority::High;

    let unknown = message(UNKNOWN, "Interrupted while sending");
    let mut sent = message(SENT, "Reply 1 to be called, 2 to pay the minimum");
    sent.status_report = true;
    sent.reply_options = Some(
        [("1", "call_me"), ("2", "pay_minimum")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
    let mut delivered = message(DELIVERED, &"A long reminder in two parts. ".repeat(6));
    delivered.parts = 2;
    delivered.status_report = true;
    let failed = message(FAILED, "Refused by the network");
    let cancelled = message(CANCELLED, "Cancelled by the caller");
    let mut expired = message(EXPIRED, "Too late to send");
    expired.expires_at = Some(at("2026-03-02T12:00:00Z"));
    expired.priority = Priority::Low;
    s.insert(
        &[
            scheduled,
            unknown.clone(),
            sent.clone(),
            delivered.clone(),
            failed.clone(),
            cancelled.clone(),
            expired.clone(),
        ],
        None,
    )
    .unwrap();

    to(
        &s,
        &unknown,
        Status::Sending,
        Note::from("dispatched".to_string()),
    );
    to(
        &s,
        &unknown,
        Status::Unknown,
        Note::new(
            "status",
            "was sending when the daemon stopped",
            serde_json::json!({"modem": "sim0"}),
        ),
    );
    send(&s, &sent, &[10]);
    send(&s, &delivered, &[11, 12]);
    for mr in [11, 12] {
        let (pdu, r) = report(mr, DELIVERED, 0x00);
        let out = s.apply_status_report("sim0", &r, &pdu, Utc::now()).unwrap();
        assert!(
            matches!(out, reports::ReportOutcome::Matched { .. }),
            "{out:?}"
        );
    }
    let (pdu, r) = report(99, "+12025550199", 0x00);
    let out = s.apply_status_report("sim0", &r, &pdu, Utc::now()).unwrap();
    assert!(
        matches!(out, reports::ReportOutcome::Unmatched { .. }),
        "{out:?}"
    );
    to(
        &s,
        &failed,
        Status::Sending,
        Note::from("dispatched".to_string()),
    );
    to(
        &s,
        &failed,
        Status::Failed,
        Note::new(
            "status",
            "+CMS ERROR: 500",
            serde_json::json!({"error": "+CMS ERROR: 500"}),
        ),
    );
    to(
        &s,
        &cancelled,
        Status::Cancelled,
        Note::from("cancelled".to_string()),
    );
    to(
        &s,
        &expired,
        Status::Expired,
        Note::from("expired".to_string()),
    );

    // A reminder plan with one step's message, scheduled.
    let mut step = message(PLANNED, "New invoice INV-77: 120.50 USD due on 15 Jan");
    step.status = Status::Scheduled;
    step.accepted_as = Status::Scheduled;
    step.due_at = at("2030-01-12T15:00:00Z");
    // As the reminders module builds a step's message.
    let plan_id = ulid::Ulid::generate().to_string();
    step.metadata = Some(serde_json::json!({
        "invoice": "INV-77",
        "plan_id": plan_id,
        "step": "due_soon",
    }));
    let now = at("2026-03-02T09:00:00Z");
    let plan = Plan {
        id: plan_id,
        invoice: "INV-77".into(),
        to: PLANNED.into(),
        amount: "120.50".into(),
        currency: "USD".into(),
        due_date: chrono::NaiveDate::from_ymd_opt(2030, 1, 15).unwrap(),
        timezone: "America/New_York".into(),
        locale: "en-US".into(),
        vars: serde_json::Map::new(),
        callback_url: None,
        precheck_url: None,
        send_window: crate::domain::WindowSpec {
            start: "09:00".into(),
            end: "18:00".into(),
            timezone: "America/New_York".into(),
        },
        metadata: None,
        status: PlanStatus::Active,
        paid_at: None,
        created_at: now,
        updated_at: now,
        created_by: "billing".into(),
        steps: vec![PlanStep {
            kind: StepKind::Reminder,
            template: "due_soon".into(),
            offset: Some("-3d".into()),
            time: Some("10:00".into()),
            reply_options: None,
            planned_at: step.due_at,
            message_id: Some(step.id.clone()),
            skipped: None,
            replaced: Vec::new(),
        }],
        fingerprint: "ab12".into(),
        revision: 0,
    };
    s.create_plan(&plan, &[step], None).unwrap();

    // Inbound: a reply to the sent message, a text that answers nothing, one unreadable.
    let answer = receive(&s, SENT, "1", 1);
    let reply = Reply {
        choice: Some("1".into()),
        action: "call_me".into(),
        text: "1".into(),
        at: Utc::now(),
        inbound_id: answer.clone(),
        matched_by: "the last message sent to this number with reply options".into(),
    };
    let data = serde_json::to_value(&reply).unwrap();
    s.update(&sent.id, |m| {
        m.replies.push(reply.clone());
        Some(Note::new("reply", "reply \"1\" (call_me)", data.clone()))
    })
    .unwrap()
    .unwrap();
    s.inbound_handled(&answer, "reply", Some(&sent.id)).unwrap();
    let stray = receive(&s, STRANGER, "Who is this?", 2);
    s.inbound_handled(&stray, "unmatched", None).unwrap();
    s.receive_unreadable(
        "sim0",
        "+CMGR: 0,,7\r\nZZ",
        &[],
        "not a hexadecimal PDU",
        Utc::now(),
    )
    .unwrap();

    s.opt_out(&OptOut {
        number: OPTED_OUT.into(),
        opted_out_at: now,
        source: "keyword".into(),
        keyword: Some("STOP".into()),
        inbound_id: None,
        note: None,
    })
    .unwrap();
    s.put_template(
        "due_soon",
        &StoredTemplate {
            text: "Invoice {{ invoice }} is due on {{ due_date }}".into(),
            updated_at: now,
            updated_by: "billing".into(),
        },
    )
    .unwrap();

    // The outbox: one delivery pending, one given up (dead).
    let hook = |n: u32| NewWebhook {
        id: format!("evt_fixture_{n}"),
        url: "https://billing.example.com/hooks/sms".into(),
        event_type: "message.sent".into(),
        body: format!("{{\"n\":{n}}}"),
        ordering_key: SENT.into(),
        created_at: now,
    };
    let entries = s.enqueue_webhooks(&[hook(1), hook(2)]).unwrap();
    s.webhook_failed(entries[1].seq, Some(500), "HTTP 500", None)
        .unwrap();
    s.durable().await.unwrap();
}

/// Writes the fixture; run once, by the release that writes it (see the module's doc).
#[tokio::test]
#[ignore = "writes tests/fixtures/store-<version>/ when SMSGATE_WRITE_FIXTURE=1"]
async fn write_store_fixture() {
    if std::env::var_os("SMSGATE_WRITE_FIXTURE").is_none() {
        return;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(format!("store-{}", env!("CARGO_PKG_VERSION")));
    assert!(!dir.exists(), "{} exists: remove it first", dir.display());
    write_fixture(&dir).await;
    let s = SledStore::open_offline(&dir).unwrap();
    println!("{:#?}", s.check().unwrap());
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// The fixture, copied to a temporary directory (opening a store writes to it).
fn fixture_copy() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&fixture_dir(), tmp.path());
    tmp
}

fn only_to(s: &SledStore, number: &str) -> Message {
    let ms = s.messages_to(number, 10).unwrap();
    assert_eq!(ms.len(), 1, "messages to {number}: {ms:?}");
    ms.into_iter().next().unwrap()
}

fn history(s: &SledStore, m: &Message) -> Vec<(String, Status)> {
    s.events(&m.id)
        .unwrap()
        .into_iter()
        .map(|e| (e.kind.to_string(), e.status))
        .collect()
}

#[test]
fn the_offline_check_of_the_fixture_finds_only_what_0_1_0_leaves() {
    let tmp = fixture_copy();
    let s = SledStore::open_offline(tmp.path()).unwrap();
    let report = s.check().unwrap();
    // 0.1.0 wrote no `invoices` entry for a plan's messages and marked its index built with the
    // empty key; opening the store makes the index again (the plan's message is in it now, and
    // the new mark), so nothing is left to report.
    let problems: Vec<(&str, &str)> = report
        .problems
        .iter()
        .map(|f| (f.tree.as_str(), f.problem.as_str()))
        .collect();
    assert!(problems.is_empty(), "{problems:?}");
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    assert_eq!(report.messages, 9);
    let records: Vec<(&str, u64)> = report
        .trees
        .iter()
        .map(|t| (t.tree.as_str(), t.records))
        .collect();
    assert_eq!(
        records,
        [
            ("messages", 9),
            ("due", 3),
            ("status", 6),
            ("to", 9),
            ("events", 13),
            ("idempotency", 1),
            ("outbox", 2),
            ("inbound", 3),
            ("inbound_from", 3),
            ("inbound_seen", 6),
            ("fragments", 0),
            ("optouts", 1),
            ("inbound_pending", 1),
            ("reports", 1),
            ("reports_unmatched", 1),
            ("plans", 1),
            ("plan_invoices", 1),
            ("templates", 1),
            ("hourly", 2),
            ("invoices", 3),
            // 0.1.0 kept no audit log; an empty one verifies.
            ("audit", 0),
            ("tombstones", 0),
            ("optouts_erased", 0),
            // The opt-out salt, made at the first open of this version.
            ("meta", 1),
        ]
    );
    assert_eq!(report.history_entries, 9 + 13);
}

#[tokio::test]
async fn a_store_written_by_0_1_0_opens_and_reads_the_same() {
    let tmp = fixture_copy();
    let s = SledStore::open(tmp.path(), 16).unwrap();

    let counts: std::collections::BTreeMap<Status, u64> = s.counts().unwrap().into_iter().collect();
    let expected: std::collections::BTreeMap<Status, u64> = [
        (Status::Queued, 1),
        (Status::Scheduled, 2),
        (Status::Sending, 0),
        (Status::Sent, 1),
        (Status::Delivered, 1),
        (Status::Failed, 1),
        (Status::Expired, 1),
        (Status::Cancelled, 1),
        (Status::Unknown, 1),
    ]
    .into_iter()
    .collect();
    assert_eq!(counts, expected);
    assert_eq!(s.len(), 9);
    assert_eq!(s.queue_depth(), 3);

    // The queued message, its idempotency record and its invoice.
    let queued = only_to(&s, QUEUED);
    assert_eq!(queued.status, Status::Queued);
    assert_eq!(queued.text, "Invoice INV-1001: 120.50 USD due on 15 Jan");
    assert_eq!(queued.created_by, "billing");
    assert_eq!(history(&s, &queued), [("accepted".into(), Status::Queued)]);
    let idem = s.idempotency(IDEM_KEY).unwrap().unwrap();
    assert_eq!(
        (idem.fingerprint.as_str(), idem.status, &idem.body["id"]),
        ("c0ffee", 201, &serde_json::json!(queued.id))
    );
    assert_eq!(idem.at, at("2026-03-02T09:00:00Z"));
    let about: Vec<String> = s
        .messages_about("INV-1001", 10)
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(about, std::slice::from_ref(&queued.id));

    // Waiting messages come out in dispatch order: the high-priority one first once due.
    let scheduled = only_to(&s, SCHEDULED);
    assert_eq!(
        (scheduled.status, scheduled.priority, scheduled.due_at),
        (
            Status::Scheduled,
            Priority::High,
            at("2030-01-14T10:00:00Z")
        )
    );
    assert_eq!(
        s.next_due(at("2027-01-01T00:00:00Z")).unwrap(),
        NextDue::Ready(queued.id.clone())
    );
    assert_eq!(
        s.next_due_matching(at("2030-02-01T00:00:00Z"), 10, &mut |m| m.to != QUEUED)
            .unwrap(),
        NextDue::Ready(scheduled.id.clone())
    );

    let unknown = only_to(&s, UNKNOWN);
    assert_eq!(
        history(&s, &unknown),
        [
            ("accepted".into(), Status::Queued),
            ("status".into(), Status::Sending),
            ("status".into(), Status::Unknown),
        ]
    );
    assert_eq!(
        s.ids_with_status(Status::Unknown).unwrap(),
        std::slice::from_ref(&unknown.id)
    );

    // Sent, awaiting its report, answered by the inbound "1".
    let sent = only_to(&s, SENT);
    assert_eq!(sent.status, Status::Sent);
    assert_eq!(sent.modem.as_deref(), Some("sim0"));
    assert_eq!(sent.part_status[0].message_reference, Some(10));
    assert_eq!(sent.replies.len(), 1);
    assert_eq!(
        (
            sent.replies[0].choice.as_deref(),
            sent.replies[0].action.as_str()
        ),
        (Some("1"), "call_me")
    );
    assert_eq!(
        history(&s, &sent).last(),
        Some(&("reply".into(), Status::Sent))
    );
    assert_eq!(s.reports_awaited(), 1);

    // Two parts, each delivered by its own report.
    let delivered = only_to(&s, DELIVERED);
    assert_eq!(delivered.status, Status::Delivered);
    assert_eq!(delivered.parts, 2);
    let parts: Vec<(u8, Option<u8>, &str)> = delivered
        .part_status
        .iter()
        .map(|p| (p.part, p.message_reference, p.status.as_str()))
        .collect();
    assert_eq!(
        parts,
        [(1, Some(11), "delivered"), (2, Some(12), "delivered")]
    );
    assert_eq!(
        history(&s, &delivered),
        [
            ("accepted".into(), Status::Queued),
            ("status".into(), Status::Sending),
            ("status".into(), Status::Sent),
            ("delivery_report".into(), Status::Sent),
            ("delivery_report".into(), Status::Delivered),
        ]
    );
    let unmatched = s.unmatched_reports(10, None).unwrap();
    assert_eq!(unmatched.len(), 1);
    assert_eq!(s.unmatched_report_count(), 1);

    let failed = only_to(&s, FAILED);
    assert_eq!(failed.status, Status::Failed);
    let last = s.events(&failed.id).unwrap().pop().unwrap();
    assert_eq!(last.reason.as_deref(), Some("+CMS ERROR: 500"));
    assert_eq!(only_to(&s, CANCELLED).status, Status::Cancelled);
    assert_eq!(only_to(&s, EXPIRED).status, Status::Expired);

    // Every history's hash chain is whole.
    let verified = s.verify_all_histories().unwrap();
    assert!(verified.broken.is_empty(), "{:?}", verified.broken);
    assert_eq!(verified.messages, 9);

    // The plan and its step's message.
    let plan = s.plan_by_invoice("INV-77").unwrap().unwrap();
    assert_eq!(
        (plan.to.as_str(), plan.amount.as_str(), plan.status),
        (PLANNED, "120.50", PlanStatus::Active)
    );
    assert_eq!(plan.steps.len(), 1);
    let step = only_to(&s, PLANNED);
    assert_eq!(plan.steps[0].message_id.as_deref(), Some(step.id.as_str()));
    assert_eq!(plan.steps[0].template, "due_soon");
    assert_eq!(step.status, Status::Scheduled);
    assert_eq!(s.plan(&plan.id).unwrap().unwrap().invoice, "INV-77");
    // 0.1.0 left the plan's messages out of the `invoices` index; the open made it again.
    let about: Vec<String> = s
        .messages_about("INV-77", 10)
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(about, std::slice::from_ref(&step.id));

    // Inbound: the reply, the stray text, the unreadable answer (still pending).
    let inbound = s
        .list_inbound(&InboundFilter {
            limit: 10,
            ..InboundFilter::default()
        })
        .unwrap();
    assert_eq!(inbound.len(), 3);
    let by_from = |from: &str| inbound.iter().find(|m| m.from == from).unwrap();
    let answer = by_from(SENT);
    assert_eq!(
        (
            answer.text.as_str(),
            answer.handling.as_deref(),
            answer.in_reply_to.as_deref()
        ),
        ("1", Some("reply"), Some(sent.id.as_str()))
    );
    assert_eq!(sent.replies[0].inbound_id, answer.id);
    let stray = by_from(STRANGER);
    assert_eq!(
        (stray.text.as_str(), stray.handling.as_deref()),
        ("Who is this?", Some("unmatched"))
    );
    let unreadable: Vec<_> = inbound
        .iter()
        .filter(|m| m.decode_error.is_some())
        .collect();
    assert_eq!(unreadable.len(), 1);
    assert_eq!(
        unreadable[0].raw_answer.as_deref(),
        Some("+CMGR: 0,,7\r\nZZ")
    );
    let pending: Vec<String> = s
        .pending_inbound()
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(pending, [unreadable[0].id.clone()]);

    // Opt-out, template, outbox.
    assert!(s.is_opted_out(OPTED_OUT).unwrap());
    assert!(!s.is_opted_out(QUEUED).unwrap());
    assert_eq!(
        s.optout(OPTED_OUT).unwrap().unwrap().keyword.as_deref(),
        Some("STOP")
    );
    assert_eq!(
        s.template("due_soon").unwrap().unwrap().text,
        "Invoice {{ invoice }} is due on {{ due_date }}"
    );
    assert_eq!(s.outbox_counts().unwrap(), (1, 1));
    // Keys written inline: the outbox's sequence (8, BE), the idempotency key as the API
    // composed it, numbers, names and invoices as they are.
    let keys =
        |t: &sled::Tree| -> Vec<Vec<u8>> { t.iter().keys().map(|k| k.unwrap().to_vec()).collect() };
    let i = &s.inner;
    assert_eq!(keys(&i.idempotency), [IDEM_KEY.as_bytes().to_vec()]);
    assert_eq!(keys(&i.optouts), [OPTED_OUT.as_bytes().to_vec()]);
    assert_eq!(keys(&i.templates), [b"due_soon".to_vec()]);
    assert_eq!(keys(&i.plan_invoices), [b"INV-77".to_vec()]);
    assert_eq!(keys(&i.plans), [id_key(&plan.id).unwrap().to_vec()]);
    assert_eq!(
        i.plan_invoices.get("INV-77").unwrap().unwrap().as_ref(),
        &id_key(&plan.id).unwrap()[..]
    );
    let mut message_keys = keys(&i.messages);
    message_keys.retain(|k| k.as_slice() == id_key(&queued.id).unwrap());
    assert_eq!(message_keys.len(), 1);
    let dead = s.dead_webhooks(10, None).unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(
        (dead[0].id.as_str(), dead[0].last_status, dead[0].attempts),
        ("evt_fixture_2", Some(500), 1)
    );
    assert_eq!(
        s.webhook("evt_fixture_1").unwrap().unwrap().url,
        "https://billing.example.com/hooks/sms"
    );

    let first = s.webhook("evt_fixture_1").unwrap().unwrap();
    assert_eq!(
        keys(&i.outbox),
        [first.seq, dead[0].seq].map(|n| n.to_be_bytes().to_vec())
    );

    // Hourly counts: two sent and one delivered on sim0, one failed with no modem.
    let hours = s
        .hourly(at("2020-01-01T00:00:00Z"), at("2100-01-01T00:00:00Z"))
        .unwrap();
    let totals = hours.iter().fold((0, 0, 0), |t, h| {
        (t.0 + h.sent, t.1 + h.delivered, t.2 + h.failed)
    });
    assert_eq!(totals, (2, 1, 1));
    let modems: Vec<&str> = hours.iter().map(|h| h.modem.as_str()).collect();
    assert_eq!(modems, ["", "sim0"]);

    // New writes still work on the old store: new outbox entries number after the old ones.
    let more = s
        .enqueue_webhooks(&[NewWebhook {
            id: "evt_after".into(),
            url: "https://billing.example.com/hooks/sms".into(),
            event_type: "message.sent".into(),
            body: "{}".into(),
            ordering_key: String::new(),
            created_at: Utc::now(),
        }])
        .unwrap();
    assert!(more[0].seq > dead[0].seq);
    s.durable().await.unwrap();
}

/// The byte each status and priority has in the `due` and `status` trees.
#[test]
fn status_and_priority_codes_are_pinned() {
    let codes: Vec<(&str, u8)> = Status::ALL.iter().map(|s| (s.as_str(), s.code())).collect();
    assert_eq!(
        codes,
        [
            ("queued", 0),
            ("scheduled", 1),
            ("sending", 2),
            ("sent", 3),
            ("delivered", 4),
            ("failed", 5),
            ("expired", 6),
            ("cancelled", 7),
            ("unknown", 8),
        ]
    );
    assert_eq!(
        [Priority::High, Priority::Normal, Priority::Low].map(Priority::code),
        [0, 1, 2]
    );
}

#[test]
fn tree_names_are_pinned() {
    assert_eq!(
        TREES,
        [
            "messages",
            "due",
            "status",
            "to",
            "events",
            "idempotency",
            "outbox",
            "inbound",
            "inbound_from",
            "inbound_seen",
            "fragments",
            "optouts",
            "inbound_pending",
            "reports",
            "reports_unmatched",
            "plans",
            "plan_invoices",
            "templates",
            "hourly",
            "invoices",
            "audit",
            "tombstones",
            "optouts_erased",
            "meta",
        ]
    );
}

/// A fixed id for the key layouts: `01J0000000000000000000000Z` would do, but one whose bytes
/// are all different shows a reordering.
fn pinned_id() -> [u8; 16] {
    std::array::from_fn(|i| 0xA0 + i as u8)
}

#[test]
fn message_key_layouts_are_pinned() {
    let id = pinned_id();
    let ulid = ulid::Ulid(u128::from_be_bytes(id)).to_string();
    assert_eq!(id_key(&ulid), Some(id));
    assert_eq!(id_string(&id), ulid);

    let mut m = test_message("+447700900123");
    m.priority = Priority::Low;
    m.due_at = Utc.timestamp_millis_opt(0x0102_0304_0506).unwrap();
    m.metadata = Some(serde_json::json!({"invoice": "INV-9"}));
    let with_id = |head: &[u8]| [head, &id[..]].concat();

    assert_eq!(
        due_key(&m, &id),
        with_id(&[2, 0, 0, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06])
    );
    assert_eq!(status_key(Status::Cancelled, &id), with_id(&[7]));
    assert_eq!(to_key(&m.to, &id), with_id(b"+447700900123\xFF"));
    assert_eq!(invoice_key(&m, &id), Some(with_id(b"INV-9\xFF")));
    m.metadata = None;
    assert_eq!(invoice_key(&m, &id), None);
    assert_eq!(
        event_key(&id, 0x0A0B_0C0D),
        [&id[..], &[0x0A, 0x0B, 0x0C, 0x0D]].concat()
    );
    assert_eq!(
        report_key("sim0", 42, &id, 3),
        [&b"sim0\x00\x2A"[..], &id[..], &[3]].concat()
    );
}
