//! A whole store at once. While the daemon is stopped: [`Store::check`] (every record readable,
//! every history chain whole, the indexes in agreement with the records), an export of every
//! tree as JSON Lines ([`Store::export_jsonl`]), its import into a new directory
//! ([`Store::import_jsonl`]), and a copy into a new directory ([`Store::copy_into`]), which is
//! how a store is compacted; a copy into PostgreSQL ([`SledStore::copy_to_postgres`](crate::store::SledStore::copy_to_postgres)) and from it
//! into a new directory ([`SledStore::import_postgres`](crate::store::SledStore::import_postgres)). `smsgate store
//! check|export|import|compact|copy` drives them. While it runs: a consistent
//! export of every tree ([`Store::snapshot`]), which `POST /v1/admin/backup` streams to
//! `smsgate backup --to FILE`.
//!
//! - [`offline`]: opening a stopped store, and telling whether the daemon holds it;
//! - [`check`]: the check of a whole store;
//! - [`format`]: the export format (JSON Lines), written and read line by line;
//! - [`transfer`]: export, import and copy (also to and from PostgreSQL);
//! - [`gate`]: the write gate every change passes, closed by a hot backup while it reads;
//! - [`snapshot`]: the hot backup of the running store ([`Store::snapshot`]).

pub mod check;
pub mod format;
pub(crate) mod gate;
pub mod offline;
pub mod snapshot;
pub mod transfer;

use serde::Serialize;

pub use check::{CheckReport, Finding};
pub use format::EXPORT_FORMAT;
pub use offline::{OpenError, in_use};
pub use snapshot::{Snapshot, SnapshotError};
pub use transfer::{CopyError, ImportError, TransferSummary};

/// Every tree of the store, in export order (see the table in [`crate::store`]).
pub const TREES: [&str; 24] = [
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
];

/// How many records a tree holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TreeCount {
    /// The tree.
    pub tree: String,
    /// Its records.
    pub records: u64,
}

/// A store with something in most trees, for the tests of every piece.
#[cfg(test)]
pub(super) mod testing {
    use std::path::Path;

    use chrono::Utc;

    use super::TREES;
    use crate::store::optout::OptOut;
    use crate::store::outbox::NewWebhook;
    use crate::store::plans::{Plan, StoredTemplate};
    use crate::store::{IdempotencyRecord, Message, Note, SledStore, Status, test_message};

    pub(crate) fn open(dir: &Path) -> SledStore {
        SledStore::open(dir, 16).unwrap()
    }

    pub(crate) fn moved(s: &SledStore, m: &Message, to: Status) {
        s.update(&m.id, |m| {
            m.status = to;
            Some(Note::new(
                "status",
                to.as_str(),
                serde_json::json!({"by": "test"}),
            ))
        })
        .unwrap()
        .unwrap();
    }

    pub(crate) fn webhook(n: u32) -> NewWebhook {
        NewWebhook {
            id: format!("evt_{n}"),
            url: "http://127.0.0.1:9/hook".into(),
            event_type: "message.sent".into(),
            body: format!("{{\"n\":{n}}}"),
            ordering_key: String::new(),
            created_at: Utc::now(),
        }
    }

    /// A store with something in most trees: messages in several statuses with histories, a
    /// plan, inbound messages (one pending), an opt-out, an erased number (a tombstone and a
    /// hashed opt-out), an outbox entry, a template.
    pub(crate) fn populated(dir: &Path) -> (SledStore, Vec<Message>) {
        let s = open(dir);
        let mut ms: Vec<Message> = (0..6)
            .map(|n| {
                let mut m = test_message(&format!("+1202555010{n}"));
                m.text = format!("Invoice {n}: été \"due\"\\ ✓");
                m.metadata = Some(serde_json::json!({"invoice": format!("INV-{n}"), "f": 1.50}));
                m
            })
            .collect();
        ms[5].status = Status::Scheduled;
        ms[5].accepted_as = Status::Scheduled;
        ms[5].due_at = Utc::now() + chrono::Duration::days(3);
        s.insert(&ms[..4], None).unwrap();
        let idem = IdempotencyRecord {
            fingerprint: "cafe".into(),
            status: 201,
            body: serde_json::json!({"id": ms[5].id}),
            at: Utc::now(),
        };
        s.insert(&ms[5..], Some(("test\0step-5", &idem))).unwrap();
        // 0 stays queued, 5 scheduled; 1 sent (awaiting its report); 2 delivered; 3 cancelled.
        moved(&s, &ms[1], Status::Sending);
        s.update(&ms[1].id, |m| {
            m.status = Status::Sent;
            m.status_report = true;
            m.modem = Some("sim0".into());
            m.part_status = vec![crate::store::Part {
                part: 1,
                message_reference: Some(42),
                status: crate::store::PartStatus::Sent,
            }];
            Some("sent")
        })
        .unwrap();
        s.keep_unreadable_report("sim0", &[0x00, 0x06], "too short", Utc::now())
            .unwrap();
        for st in [Status::Sending, Status::Sent, Status::Delivered] {
            moved(&s, &ms[2], st);
        }
        moved(&s, &ms[3], Status::Cancelled);

        // A plan with one step's message (4, scheduled).
        let mut step = test_message("+12025550199");
        step.status = Status::Scheduled;
        step.accepted_as = Status::Scheduled;
        step.due_at = Utc::now() + chrono::Duration::days(10);
        // As plans write it: the step's message names the invoice, so it is in `invoices`.
        step.metadata = Some(serde_json::json!({"invoice": "INV-77", "plan_id": "p"}));
        ms[4] = step.clone();
        let now = Utc::now();
        let plan = Plan {
            id: ulid::Ulid::generate().to_string(),
            invoice: "INV-77".into(),
            to: "+12025550199".into(),
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
            status: crate::store::plans::PlanStatus::Active,
            paid_at: None,
            created_at: now,
            updated_at: now,
            created_by: "test".into(),
            steps: vec![crate::store::plans::PlanStep {
                kind: crate::store::StepKind::Reminder,
                template: "due_soon".into(),
                offset: Some("-3d".into()),
                time: Some("10:00".into()),
                reply_options: None,
                planned_at: step.due_at,
                message_id: Some(step.id.clone()),
                skipped: None,
                replaced: Vec::new(),
            }],
            fingerprint: "ab".into(),
            revision: 0,
        };
        s.create_plan(&plan, &[step], None).unwrap();

        // Inbound: a whole message (pending) and a held part of a long one.
        let from = crate::sms::Address::parse_number("from", "+12025550100").unwrap();
        let ts = now.fixed_offset();
        let one = crate::sms::encode_deliver(None, &from, "1", &ts, false, 1).unwrap();
        s.receive("sim0", &one[0], None, now).unwrap();
        let long =
            crate::sms::encode_deliver(None, &from, &"long ".repeat(60), &ts, false, 9).unwrap();
        s.receive("sim0", &long[0], None, now).unwrap();
        s.opt_out(&OptOut {
            number: "+12025550150".into(),
            opted_out_at: Utc::now(),
            source: "api".into(),
            keyword: None,
            inbound_id: None,
            note: Some("asked by phone".into()),
        })
        .unwrap();
        // A number erased: its opt-out kept under the salted hash, its message a tombstone.
        s.opt_out(&OptOut {
            number: "+12025550151".into(),
            opted_out_at: Utc::now(),
            source: "keyword".into(),
            keyword: Some("STOP".into()),
            inbound_id: None,
            note: None,
        })
        .unwrap();
        let mut gone = test_message("+12025550151");
        gone.status = Status::Cancelled;
        s.insert(std::slice::from_ref(&gone), None).unwrap();
        s.erase_number("+12025550151", Utc::now()).unwrap();
        s.enqueue_webhooks(&[webhook(1), webhook(2)]).unwrap();
        s.put_template(
            "due_soon",
            &StoredTemplate {
                text: "Hi {{ name }}".into(),
                updated_at: Utc::now(),
                updated_by: "test".into(),
            },
        )
        .unwrap();
        s.append_audit(&crate::store::audit::NewAudit {
            actor: "test",
            action: "template.put",
            target: Some("due_soon"),
            details: Some(serde_json::json!({"text": "Hi {{ name }}"})),
            at: Utc::now(),
        })
        .unwrap();
        (s, ms)
    }

    pub(crate) type Records = Vec<(Vec<u8>, Vec<u8>)>;

    pub(crate) fn dump(s: &SledStore) -> Vec<(String, Records)> {
        TREES
            .iter()
            .map(|name| {
                let t = s.tree(name).unwrap();
                (
                    name.to_string(),
                    t.iter()
                        .map(|r| {
                            let (k, v) = r.unwrap();
                            (k.to_vec(), v.to_vec())
                        })
                        .collect(),
                )
            })
            .collect()
    }
}
