//! The check of a whole store ([`Store::check`]): every record readable, every history chain
//! whole, the indexes in agreement with the records.
//!
//! Longer than 800 lines: one rule per tree and index, each a few dozen lines, read best in
//! one place next to the table of trees in [`crate::store`].

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use super::TreeCount;
use super::format::hex;
use crate::store::inbound::InboundMessage;
use crate::store::optout::OptOut;
use crate::store::plans::{Plan, StoredTemplate};
use crate::store::reports::UnmatchedReport;
use crate::store::{
    Event, IdempotencyRecord, SledStore, Status, StoreError, decode, decode_message, due_key,
    id_key, id_string, status_key, to_key,
};

/// Something [`Store::check`] found, at one key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The tree.
    pub tree: String,
    /// The key's bytes in hex, as in an export.
    pub key: String,
    /// What is wrong, naming the message, plan or inbound message concerned.
    pub problem: String,
}

/// What [`Store::check`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    /// Records per tree, in [`TREES`](super::TREES) order.
    pub trees: Vec<TreeCount>,
    /// Messages whose history was checked.
    pub messages: u64,
    /// History entries checked (the implied first entry of each message included).
    pub history_entries: u64,
    /// What is wrong: a record that cannot be read, a broken history chain, an index that
    /// disagrees with its record.
    pub problems: Vec<Finding>,
    /// What is harmless but worth knowing: index entries of a message that was never stored
    /// (left by an insert cut short by a crash, skipped by readers), trees this version does
    /// not use.
    pub warnings: Vec<Finding>,
}

impl CheckReport {
    /// No problems (warnings allowed).
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Collects what a check finds.
#[derive(Default)]
struct Findings {
    problems: Vec<Finding>,
    warnings: Vec<Finding>,
}

impl Findings {
    fn problem(&mut self, tree: &str, key: &[u8], problem: impl Into<String>) {
        self.problems.push(Finding {
            tree: tree.to_string(),
            key: hex(key),
            problem: problem.into(),
        });
    }

    fn warning(&mut self, tree: &str, key: &[u8], problem: impl Into<String>) {
        self.warnings.push(Finding {
            tree: tree.to_string(),
            key: hex(key),
            problem: problem.into(),
        });
    }
}

/// What a check keeps of a message to compare the indexes with.
struct Indexed {
    status: Status,
    due: Vec<u8>,
    to: String,
    /// `metadata.invoice`, when it names one.
    invoice: Option<Vec<u8>>,
    /// Matching entries found in `due` or `status`, in `to`, and in `invoices`.
    status_entries: u32,
    to_entries: u32,
    invoice_entries: u32,
}

/// Why an index entry was left by an insert cut short.
const NEVER_STORED: &str =
    "which is not stored: left by an insert cut short by a crash, harmless (readers skip it)";

/// The messages read (by id), and the ids whose record does not decode.
type Messages = (HashMap<[u8; 16], Indexed>, HashSet<[u8; 16]>);

fn status_of_code(code: u8) -> Option<Status> {
    Status::ALL.get(usize::from(code)).copied()
}

fn id16(bytes: &[u8]) -> Option<[u8; 16]> {
    <[u8; 16]>::try_from(bytes).ok()
}

impl SledStore {
    /// Checks the whole store: every record decodes, every message's history chain holds
    /// ([`Store::verify_all_histories`]), and the indexes agree with the records (a waiting
    /// message has exactly one `due` entry and any other exactly one `status` entry, each
    /// matching the record; every message has its `to` entry and every `to` entry names a
    /// stored message to that number; plans and their invoices point at each other and at
    /// stored messages; inbound indexes point at stored inbound messages). Reads everything
    /// once; keeps a few dozen bytes per message in memory.
    pub fn check(&self) -> Result<CheckReport, StoreError> {
        let mut f = Findings::default();
        let mut report = CheckReport {
            trees: self
                .named_trees()
                .map(|(name, t)| TreeCount {
                    tree: name.to_string(),
                    records: t.len() as u64,
                })
                .collect(),
            ..CheckReport::default()
        };
        for t in self.other_trees()? {
            f.warning(
                &t.tree,
                &[],
                format!(
                    "{} record(s) in a tree this version does not use; an export leaves them out",
                    t.records
                ),
            );
        }
        let (msgs, unreadable) = self.check_messages(&mut f)?;
        self.check_histories(&mut f, &msgs, &unreadable, &mut report)?;
        self.check_other_records(&mut f, &msgs, &unreadable)?;
        report.problems = f.problems;
        report.warnings = f.warnings;
        Ok(report)
    }

    /// Messages and their `due`, `status` and `to` entries.
    fn check_messages(&self, f: &mut Findings) -> Result<Messages, StoreError> {
        let i = &self.inner;
        let mut msgs: HashMap<[u8; 16], Indexed> = HashMap::new();
        let mut unreadable = HashSet::new();
        for r in i.messages.iter() {
            let (k, v) = r?;
            let Some(id) = id16(&k) else {
                f.problem("messages", &k, "the key is not a message id (16 bytes)");
                continue;
            };
            match decode_message(&id, &v) {
                Ok(m) => {
                    msgs.insert(
                        id,
                        Indexed {
                            status: m.status,
                            due: due_key(&m, &id),
                            to: m.to.clone(),
                            invoice: crate::store::invoice_key(&m, &id),
                            status_entries: 0,
                            to_entries: 0,
                            invoice_entries: 0,
                        },
                    );
                }
                Err(e) => {
                    unreadable.insert(id);
                    f.problem(
                        "messages",
                        &k,
                        format!(
                            "message {}: the record does not decode: {e}",
                            id_string(&id)
                        ),
                    );
                }
            }
        }
        for r in i.due.iter() {
            let (k, v) = r?;
            let Some(id) = (k.len() == 25).then(|| id16(&k[9..25])).flatten() else {
                f.problem(
                    "due",
                    &k,
                    "the key is not priority · due time · id (25 bytes)",
                );
                continue;
            };
            let sid = id_string(&id);
            let waiting = match v.as_ref() {
                [c] => status_of_code(*c).filter(|s| s.is_waiting()),
                _ => None,
            };
            let Some(status) = waiting else {
                f.problem(
                    "due",
                    &k,
                    format!(
                        "message {sid}: the value {} is not a waiting status",
                        hex(&v)
                    ),
                );
                continue;
            };
            match msgs.get_mut(&id) {
                None if unreadable.contains(&id) => {}
                None => f.warning(
                    "due",
                    &k,
                    format!("queue entry of message {sid}, {NEVER_STORED}"),
                ),
                Some(m) if !m.status.is_waiting() => f.problem(
                    "due",
                    &k,
                    format!(
                        "message {sid} is {} but has a queue entry (as {})",
                        m.status.as_str(),
                        status.as_str()
                    ),
                ),
                Some(m) if m.due[..] != k[..] => f.problem(
                    "due",
                    &k,
                    format!(
                        "message {sid}: the queue entry's priority or due time is not the record's"
                    ),
                ),
                Some(m) if m.status != status => f.problem(
                    "due",
                    &k,
                    format!(
                        "message {sid}: the queue entry says {}, the record {}",
                        status.as_str(),
                        m.status.as_str()
                    ),
                ),
                Some(m) => m.status_entries += 1,
            }
        }

        for r in i.status.iter() {
            let (k, v) = r?;
            let Some(id) = (k.len() == 17).then(|| id16(&k[1..17])).flatten() else {
                f.problem("status", &k, "the key is not status · id (17 bytes)");
                continue;
            };
            let sid = id_string(&id);
            let Some(status) = status_of_code(k[0]).filter(|s| !s.is_waiting()) else {
                f.problem(
                    "status",
                    &k,
                    format!(
                        "message {sid}: {:#04x} is not a status kept in this index",
                        k[0]
                    ),
                );
                continue;
            };
            if !v.is_empty() {
                f.problem(
                    "status",
                    &k,
                    format!("message {sid}: the entry has a value ({})", hex(&v)),
                );
            }
            match msgs.get_mut(&id) {
                None if unreadable.contains(&id) => {}
                None => f.warning(
                    "status",
                    &k,
                    format!("status entry of message {sid}, {NEVER_STORED}"),
                ),
                Some(m) if m.status != status => f.problem(
                    "status",
                    &k,
                    format!(
                        "message {sid}: the status entry says {}, the record {}",
                        status.as_str(),
                        m.status.as_str()
                    ),
                ),
                Some(m) => m.status_entries += 1,
            }
        }

        for r in i.to.iter() {
            let (k, v) = r?;
            let n = k.len();
            let Some(id) = (n >= 17 && k[n - 17] == 0xFF)
                .then(|| id16(&k[n - 16..]))
                .flatten()
            else {
                f.problem("to", &k, "the key is not number · 0xFF · id");
                continue;
            };
            let sid = id_string(&id);
            let number = String::from_utf8_lossy(&k[..n - 17]);
            if !v.is_empty() {
                f.problem(
                    "to",
                    &k,
                    format!("message {sid}: the entry has a value ({})", hex(&v)),
                );
            }
            match msgs.get_mut(&id) {
                None if unreadable.contains(&id) => {}
                None => f.warning(
                    "to",
                    &k,
                    format!("recipient entry ({number}) of message {sid}, {NEVER_STORED}"),
                ),
                Some(m) if m.to.as_bytes() != &k[..n - 17] => f.problem(
                    "to",
                    &k,
                    format!(
                        "message {sid}: the recipient entry says {number}, the record {}",
                        m.to
                    ),
                ),
                Some(m) => m.to_entries += 1,
            }
        }

        // A store marked by 0.1.0 (the empty key) has its index made again at the next open.
        let built = i.invoices.contains_key(crate::store::INVOICES_BUILT)?;
        for r in i.invoices.iter() {
            let (k, _) = r?;
            if k.is_empty() || k.as_ref() == crate::store::INVOICES_BUILT {
                continue;
            }
            let n = k.len();
            let Some(id) = (n >= 17 && k[n - 17] == 0xFF)
                .then(|| id16(&k[n - 16..]))
                .flatten()
            else {
                f.problem("invoices", &k, "the key is not invoice · 0xFF · id");
                continue;
            };
            let sid = id_string(&id);
            match msgs.get_mut(&id) {
                None if unreadable.contains(&id) => {}
                None => f.warning(
                    "invoices",
                    &k,
                    format!("invoice entry of message {sid}, {NEVER_STORED}"),
                ),
                Some(m) if m.invoice.as_deref() != Some(&k[..]) => f.problem(
                    "invoices",
                    &k,
                    format!("message {sid}: the invoice entry does not match the record"),
                ),
                Some(m) => m.invoice_entries += 1,
            }
        }

        let mut ids: Vec<&[u8; 16]> = msgs.keys().collect();
        ids.sort_unstable();
        for id in ids {
            let Some(m) = msgs.get(id) else { continue };
            let sid = id_string(id);
            if built
                && m.invoice_entries == 0
                && let Some(k) = &m.invoice
            {
                f.problem(
                    "invoices",
                    k,
                    format!("message {sid} has no invoice entry: the export by invoice misses it"),
                );
            }
            if m.status_entries == 0 {
                if m.status.is_waiting() {
                    f.problem(
                        "due",
                        &m.due,
                        format!(
                            "message {sid} is {} but has no queue entry matching its record: it will not be sent",
                            m.status.as_str()
                        ),
                    );
                } else {
                    f.problem(
                        "status",
                        &status_key(m.status, id),
                        format!(
                            "message {sid} is {} but has no status entry: listing by status misses it",
                            m.status.as_str()
                        ),
                    );
                }
            }
            if m.to_entries == 0 {
                f.problem(
                    "to",
                    &to_key(&m.to, id),
                    format!(
                        "message {sid} has no recipient entry: listing by number ({}) misses it",
                        m.to
                    ),
                );
            }
        }
        Ok((msgs, unreadable))
    }

    /// History entries readable, none without a message, every chain whole.
    fn check_histories(
        &self,
        f: &mut Findings,
        msgs: &HashMap<[u8; 16], Indexed>,
        unreadable: &HashSet<[u8; 16]>,
        report: &mut CheckReport,
    ) -> Result<(), StoreError> {
        let mut orphan: Option<[u8; 16]> = None;
        for r in self.inner.events.iter() {
            let (k, v) = r?;
            let Some(id) = (k.len() == 20).then(|| id16(&k[..16])).flatten() else {
                f.problem("events", &k, "the key is not id · sequence (20 bytes)");
                continue;
            };
            if let Err(e) = decode::<Event>(&k, &v) {
                f.problem(
                    "events",
                    &k,
                    format!(
                        "message {}: a history entry does not decode: {e}",
                        id_string(&id)
                    ),
                );
            }
            if !msgs.contains_key(&id) && !unreadable.contains(&id) && orphan != Some(id) {
                orphan = Some(id);
                f.problem(
                    "events",
                    &k,
                    format!(
                        "history entries of message {}, which is not stored",
                        id_string(&id)
                    ),
                );
            }
        }
        let v = self.verify_all_histories()?;
        report.messages = v.messages;
        report.history_entries = v.entries;
        for (id, problem) in v.broken {
            let key = id_key(&id);
            if key.is_some_and(|k| unreadable.contains(&k)) {
                continue; // reported with the record
            }
            f.problem(
                "events",
                key.as_ref().map_or(&[][..], |k| &k[..]),
                format!("message {id}: the history chain is broken: {problem}"),
            );
        }
        Ok(())
    }

    /// Every other tree: records decode, inbound and plan indexes point where they should.
    fn check_other_records(
        &self,
        f: &mut Findings,
        msgs: &HashMap<[u8; 16], Indexed>,
        unreadable: &HashSet<[u8; 16]>,
    ) -> Result<(), StoreError> {
        let i = &self.inner;
        let message_known = |id: &[u8; 16]| msgs.contains_key(id) || unreadable.contains(id);

        for r in i.idempotency.iter() {
            let (k, v) = r?;
            if let Err(e) = decode::<IdempotencyRecord>(&k, &v) {
                f.problem(
                    "idempotency",
                    &k,
                    format!("the record does not decode: {e}"),
                );
            }
        }
        for r in i.hourly.iter() {
            let (k, v) = r?;
            if !crate::store::hourly::valid(&k, &v) {
                f.problem(
                    "hourly",
                    &k,
                    "not an hour (4 bytes) and a modem name with three 8-byte counters",
                );
            }
        }
        for r in i.outbox.iter() {
            let (k, v) = r?;
            let Ok(seq) = <[u8; 8]>::try_from(&k[..]).map(u64::from_be_bytes) else {
                f.problem("outbox", &k, "the key is not a sequence number (8 bytes)");
                continue;
            };
            if let Err(e) = crate::store::outbox::decode_entry(seq, &v) {
                f.problem("outbox", &k, format!("delivery {seq} does not decode: {e}"));
            }
        }

        // Inbound messages and their indexes.
        let mut inbound: HashMap<[u8; 16], String> = HashMap::new();
        let mut inbound_unreadable = HashSet::new();
        for r in i.inbound.iter() {
            let (k, v) = r?;
            let Some(id) = id16(&k) else {
                f.problem("inbound", &k, "the key is not an id (16 bytes)");
                continue;
            };
            match decode::<InboundMessage>(&k, &v) {
                Ok(m) => {
                    if m.id != id_string(&id) {
                        f.problem(
                            "inbound",
                            &k,
                            format!(
                                "inbound message {}: the record says its id is {}",
                                id_string(&id),
                                m.id
                            ),
                        );
                    }
                    inbound.insert(id, m.from);
                }
                Err(e) => {
                    inbound_unreadable.insert(id);
                    f.problem(
                        "inbound",
                        &k,
                        format!(
                            "inbound message {}: the record does not decode: {e}",
                            id_string(&id)
                        ),
                    );
                }
            }
        }
        for r in i.inbound_from.iter() {
            let (k, _) = r?;
            let n = k.len();
            let Some(id) = (n >= 17 && k[n - 17] == 0xFF)
                .then(|| id16(&k[n - 16..]))
                .flatten()
            else {
                f.problem("inbound_from", &k, "the key is not sender · 0xFF · id");
                continue;
            };
            let sender = String::from_utf8_lossy(&k[..n - 17]);
            match inbound.get(&id) {
                Some(from) if from.as_bytes() == &k[..n - 17] => {}
                Some(from) => f.problem(
                    "inbound_from",
                    &k,
                    format!(
                        "inbound message {}: the sender entry says {sender}, the record {from}",
                        id_string(&id)
                    ),
                ),
                None if inbound_unreadable.contains(&id) => {}
                None => f.problem(
                    "inbound_from",
                    &k,
                    format!(
                        "sender entry ({sender}) of inbound message {}, which is not stored",
                        id_string(&id)
                    ),
                ),
            }
        }
        for r in i.inbound_pending.iter() {
            let (k, _) = r?;
            match id16(&k) {
                None => f.problem("inbound_pending", &k, "the key is not an id (16 bytes)"),
                Some(id) if inbound.contains_key(&id) || inbound_unreadable.contains(&id) => {}
                Some(id) => f.warning(
                    "inbound_pending",
                    &k,
                    format!(
                        "pending entry of inbound message {}, which is not stored (the daemon drops it)",
                        id_string(&id)
                    ),
                ),
            }
        }
        for r in i.inbound_seen.iter() {
            let (k, v) = r?;
            if k.len() != 32 {
                f.problem("inbound_seen", &k, "the key is not a SHA-256 (32 bytes)");
            } else if !v.is_empty() && &v[..] != b"report" {
                f.problem("inbound_seen", &k, format!("unexpected value {}", hex(&v)));
            }
        }
        for r in i.fragments.iter() {
            let (k, v) = r?;
            if let Err(e) = crate::store::inbound::decode_fragment(&k, &v) {
                f.problem(
                    "fragments",
                    &k,
                    format!("the held part does not decode: {e}"),
                );
            }
        }
        for r in i.optouts.iter() {
            let (k, v) = r?;
            match decode::<OptOut>(&k, &v) {
                Ok(o) if o.number.as_bytes() == &k[..] => {}
                Ok(o) => f.problem(
                    "optouts",
                    &k,
                    format!(
                        "the opt-out of {} is stored under {}",
                        o.number,
                        String::from_utf8_lossy(&k)
                    ),
                ),
                Err(e) => f.problem("optouts", &k, format!("the record does not decode: {e}")),
            }
        }
        for r in i.reports.iter() {
            let (k, v) = r?;
            let n = k.len();
            let Some(id) = (n >= 20 && k[n - 19] == 0)
                .then(|| id16(&k[n - 17..n - 1]))
                .flatten()
            else {
                f.problem(
                    "reports",
                    &k,
                    "the key is not modem · 0x00 · TP-MR · id · part",
                );
                continue;
            };
            if v.len() != 8 {
                f.problem(
                    "reports",
                    &k,
                    format!(
                        "message {}: the value is not a sent time (8 bytes)",
                        id_string(&id)
                    ),
                );
            }
            if !message_known(&id) {
                f.problem(
                    "reports",
                    &k,
                    format!(
                        "a part of message {} awaits a status report, but the message is not stored",
                        id_string(&id)
                    ),
                );
            }
        }
        for r in i.reports_unmatched.iter() {
            let (k, v) = r?;
            if let Err(e) = decode::<UnmatchedReport>(&k, &v) {
                f.problem(
                    "reports_unmatched",
                    &k,
                    format!("the record does not decode: {e}"),
                );
            }
        }
        for r in i.templates.iter() {
            let (k, v) = r?;
            if let Err(e) = decode::<StoredTemplate>(&k, &v) {
                f.problem("templates", &k, format!("the record does not decode: {e}"));
            }
        }
        // The audit log: its entries are checked with their chain.
        let audit = self.verify_audit()?;
        if let Some(p) = audit.problem {
            f.problem("audit", &[], format!("the audit chain is broken: {p}"));
        }

        // Plans, their invoices, the messages of their steps. A step's message may have been
        // removed by retention, leaving a tombstone.
        let mut removed = HashSet::new();
        for r in i.tombstones.iter().values() {
            if let Ok(t) = serde_json::from_slice::<crate::store::tombstones::Tombstone>(&r?) {
                removed.insert(t.message_id);
            }
        }
        let mut plans: HashMap<[u8; 16], String> = HashMap::new();
        let mut plans_unreadable = HashSet::new();
        for r in i.plans.iter() {
            let (k, v) = r?;
            let Some(pid) = id16(&k) else {
                f.problem("plans", &k, "the key is not a plan id (16 bytes)");
                continue;
            };
            let spid = id_string(&pid);
            let plan: Plan = match decode(&k, &v) {
                Ok(p) => p,
                Err(e) => {
                    plans_unreadable.insert(pid);
                    f.problem(
                        "plans",
                        &k,
                        format!("plan {spid}: the record does not decode: {e}"),
                    );
                    continue;
                }
            };
            for (n, step) in plan.steps.iter().enumerate() {
                for mid in step.message_id.iter().chain(&step.replaced) {
                    match id_key(mid) {
                        Some(m) if message_known(&m) => {}
                        // Removed by `[retention] messages_after`: its tombstone says so.
                        Some(_) if removed.contains(mid.as_str()) => {}
                        Some(_) => f.problem(
                            "plans",
                            &k,
                            format!("plan {spid}, step {}: message {mid} is not stored", n + 1),
                        ),
                        None => f.problem(
                            "plans",
                            &k,
                            format!("plan {spid}, step {}: {mid:?} is not a message id", n + 1),
                        ),
                    }
                }
            }
            plans.insert(pid, plan.invoice);
        }
        let mut indexed_plans = HashSet::new();
        for r in i.plan_invoices.iter() {
            let (k, v) = r?;
            let invoice = String::from_utf8_lossy(&k);
            let Some(pid) = id16(&v) else {
                f.problem(
                    "plan_invoices",
                    &k,
                    format!(
                        "invoice {invoice}: the value is not a plan id ({})",
                        hex(&v)
                    ),
                );
                continue;
            };
            match plans.get(&pid) {
                Some(inv) if inv.as_bytes() == &k[..] => {
                    indexed_plans.insert(pid);
                }
                Some(inv) => f.problem(
                    "plan_invoices",
                    &k,
                    format!(
                        "invoice {invoice} points at plan {}, which is the plan of invoice {inv}",
                        id_string(&pid)
                    ),
                ),
                None if plans_unreadable.contains(&pid) => {}
                None => f.problem(
                    "plan_invoices",
                    &k,
                    format!(
                        "invoice {invoice} points at plan {}, which is not stored",
                        id_string(&pid)
                    ),
                ),
            }
        }
        let mut pids: Vec<(&[u8; 16], &String)> = plans.iter().collect();
        pids.sort_unstable();
        for (pid, invoice) in pids {
            if !indexed_plans.contains(pid) {
                f.problem(
                    "plan_invoices",
                    invoice.as_bytes(),
                    format!(
                        "plan {} (invoice {invoice}) has no invoice entry pointing at it",
                        id_string(pid)
                    ),
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::backup::testing::*;

    #[tokio::test]
    async fn check_names_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let (s, ms) = populated(dir.path());
        let queued = &ms[0];
        let id = id_key(&queued.id).unwrap();
        let m = s.get(&queued.id).unwrap().unwrap();
        // The dispatcher would never see it.
        let due = due_key(&m, &id);
        assert!(s.inner.due.remove(&due).unwrap().is_some());
        // A record that no longer decodes.
        let cancelled = id_key(&ms[3].id).unwrap();
        s.inner
            .messages
            .insert(cancelled, &b"{\"to\":"[..])
            .unwrap();
        // A sent message also listed as delivered.
        let sent = id_key(&ms[1].id).unwrap();
        s.inner
            .status
            .insert(status_key(Status::Delivered, &sent), &[])
            .unwrap();
        // A history entry edited after the fact.
        let delivered = id_key(&ms[2].id).unwrap();
        let k = crate::store::event_key(&delivered, 1);
        let raw = s.inner.events.get(&k).unwrap().unwrap();
        let mut e: Event = serde_json::from_slice(&raw).unwrap();
        e.reason = Some("edited".into());
        s.inner
            .events
            .insert(&k, serde_json::to_vec(&e).unwrap())
            .unwrap();
        // The plan's invoice entry is gone.
        s.inner.plan_invoices.remove(b"INV-77").unwrap();
        // Left by an insert cut short: a warning, not a problem.
        let ghost = ulid::Ulid::generate().0.to_be_bytes();
        s.inner
            .to
            .insert(to_key("+12025550111", &ghost), &[])
            .unwrap();

        let r = s.check().unwrap();
        assert!(!r.is_clean());
        let find = |tree: &str, key: &[u8]| {
            r.problems
                .iter()
                .find(|p| p.tree == tree && p.key == hex(key))
                .unwrap_or_else(|| panic!("no problem at {tree}/{}: {r:#?}", hex(key)))
        };
        let p = find("due", &due);
        assert!(
            p.problem.contains(&queued.id) && p.problem.contains("no queue entry"),
            "{p:?}"
        );
        let p = find("messages", &cancelled);
        assert!(p.problem.contains("does not decode"), "{p:?}");
        let p = find("status", &status_key(Status::Delivered, &sent));
        assert!(
            p.problem.contains("says delivered, the record sent"),
            "{p:?}"
        );
        let p = find("events", &delivered);
        assert!(p.problem.contains("chain is broken"), "{p:?}");
        let p = find("plan_invoices", b"INV-77");
        assert!(p.problem.contains("no invoice entry"), "{p:?}");
        assert_eq!(r.problems.len(), 5, "{r:#?}");
        assert_eq!(r.warnings.len(), 1, "{r:#?}");
        assert_eq!(r.warnings[0].tree, "to");
        assert!(r.warnings[0].problem.contains("not stored"));
    }

    #[tokio::test]
    async fn an_unreadable_history_entry_does_not_stop_the_check() {
        let dir = tempfile::tempdir().unwrap();
        let (s, ms) = populated(dir.path());
        let delivered = id_key(&ms[2].id).unwrap();
        let k = crate::store::event_key(&delivered, 2);
        s.inner.events.insert(&k, &b"not json"[..]).unwrap();
        // And another message's chain is broken too: both are found.
        let sent = id_key(&ms[1].id).unwrap();
        s.inner
            .events
            .remove(crate::store::event_key(&sent, 2))
            .unwrap();
        let r = s.check().unwrap();
        assert!(
            r.problems.iter().any(|p| p.tree == "events"
                && p.key == hex(&k)
                && p.problem.contains("does not decode")),
            "{r:#?}"
        );
        for id in [&ms[2].id, &ms[1].id] {
            assert!(
                r.problems
                    .iter()
                    .any(|p| p.key == hex(&id_key(id).unwrap())
                        && p.problem.contains("chain is broken")),
                "{id}: {r:#?}"
            );
        }
        assert_eq!(r.messages, 6);
    }
}
