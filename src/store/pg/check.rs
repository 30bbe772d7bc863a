//! The check of a whole PostgreSQL store (`smsgate store check` with `[storage] backend =
//! "postgres"`): the same report as the embedded store's ([`CheckReport`]), with the tables
//! in place of the trees. Every record's body reads as its type, the columns records are
//! found by agree with their bodies, every history chain, every day's chain of tombstones and
//! the audit chain hold, the parts awaiting a status report and the plans' steps name stored
//! messages, and the sequences are past the numbers in use. Reads a batch at a time, each
//! table from one snapshot; gateways may run meanwhile.

use serde::de::DeserializeOwned;

use super::body::col;
use super::copy::DATA_TABLES;
use super::{PgStore, db_error};
use crate::store::audit::AuditEntry;
use crate::store::backup::{CheckReport, Finding, TreeCount};
use crate::store::inbound::{Fragment, InboundMessage};
use crate::store::optout::{ErasedOptOut, OptOut};
use crate::store::outbox::OutboxEntry;
use crate::store::plans::{Plan, StoredTemplate};
use crate::store::reports::UnmatchedReport;
use crate::store::tombstones::Tombstone;
use crate::store::{Event, IdempotencyRecord, Message, StoreError, history};

/// Rows read per round trip.
const BATCH: usize = 1000;

/// Whether a body reads as its type: `None` when it does, else why not.
type Reads = fn(&str) -> Option<String>;

fn reads<T: DeserializeOwned>(json: &str) -> Option<String> {
    serde_json::from_str::<T>(json).err().map(|e| e.to_string())
}

/// Each table with a body: its key (as text) and its body (as text), and the type it reads as.
const BODIES: [(&str, &str, Reads); 13] = [
    (
        "message_events",
        "message_id || '/' || seq, body::text",
        reads::<Event>,
    ),
    (
        "idempotency",
        "key_name || '/' || key, body::text",
        reads::<IdempotencyRecord>,
    ),
    ("outbox", "seq::text, body::text", reads::<OutboxEntry>),
    (
        "fragments",
        "modem || '/' || sender || '/' || reference || '/' || total || '/' || part, body::text",
        reads::<Fragment>,
    ),
    ("optouts", "number, body::text", reads::<OptOut>),
    (
        "reports_unmatched",
        "id, body::text",
        reads::<UnmatchedReport>,
    ),
    ("plans", "id, body::text", reads::<Plan>),
    ("templates", "name, body::text", reads::<StoredTemplate>),
    (
        "tombstones",
        "day || '/' || seq, body::text",
        reads::<Tombstone>,
    ),
    ("audit", "id, body::text", reads::<AuditEntry>),
    (
        "optouts_erased",
        "encode(hash, 'hex'), body::text",
        reads::<ErasedOptOut>,
    ),
    ("inbound", "id, body::text", reads::<InboundMessage>),
    ("messages", "id, body::text", reads::<Message>),
];

/// Disagreements between records that the tables' constraints do not rule out: each query
/// answers (key, what is wrong) rows.
const RULES: [(&str, &str); 7] = [
    (
        "messages",
        "SELECT id, 'the status column says ' || status || ', the record ' || \
         coalesce(body->>'status', 'nothing') FROM messages \
         WHERE status IS DISTINCT FROM body->>'status'",
    ),
    (
        "messages",
        "SELECT id, 'the recipient column says ' || recipient || ', the record ' || \
         coalesce(body->>'to', 'nothing') FROM messages WHERE recipient IS DISTINCT FROM body->>'to'",
    ),
    (
        "inbound",
        "SELECT id, 'the sender column says ' || sender || ', the record ' || \
         coalesce(body->>'from', 'nothing') FROM inbound WHERE sender IS DISTINCT FROM body->>'from'",
    ),
    (
        "plans",
        "SELECT id, 'the invoice column says ' || invoice || ', the record ' || \
         coalesce(body->>'invoice', 'nothing') FROM plans WHERE invoice IS DISTINCT FROM body->>'invoice'",
    ),
    (
        "reports_awaited",
        "SELECT r.modem || '/' || r.mr || '/' || r.message_id || '/' || r.part, \
         'awaits a status report for message ' || r.message_id || ', which is not stored' \
         FROM reports_awaited r WHERE NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = r.message_id)",
    ),
    (
        "plans",
        "SELECT p.id, 'plan ' || p.id || ' (invoice ' || p.invoice || '): step ' || s.n || \
         ' names message ' || s.mid || ', which is not stored' \
         FROM plans p CROSS JOIN LATERAL ( \
             SELECT st.n, st.step->>'message_id' AS mid \
               FROM jsonb_array_elements(CASE jsonb_typeof(p.body->'steps') WHEN 'array' \
                    THEN p.body->'steps' ELSE '[]' END) WITH ORDINALITY AS st(step, n) \
             UNION ALL \
             SELECT st.n, r.mid \
               FROM jsonb_array_elements(CASE jsonb_typeof(p.body->'steps') WHEN 'array' \
                    THEN p.body->'steps' ELSE '[]' END) WITH ORDINALITY AS st(step, n) \
               CROSS JOIN LATERAL jsonb_array_elements_text(CASE jsonb_typeof(st.step->'replaced') \
                    WHEN 'array' THEN st.step->'replaced' ELSE '[]' END) AS r(mid) \
         ) s \
         WHERE s.mid IS NOT NULL \
           AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = s.mid) \
           AND NOT EXISTS (SELECT 1 FROM tombstones t WHERE t.message_id = s.mid)",
    ),
    (
        "outbox",
        "SELECT max(seq)::text, 'the outbox sequence is at ' || \
         (SELECT last_value FROM outbox_seq) || ', not past deliveries numbered up to ' || max(seq) \
         FROM outbox HAVING max(seq) >= (SELECT CASE WHEN is_called THEN last_value + 1 ELSE last_value END FROM outbox_seq)",
    ),
];

impl PgStore {
    /// Checks the whole store (see the module's documentation); `trees` counts the rows of
    /// each table that holds data.
    pub fn check(&self) -> Result<CheckReport, StoreError> {
        let mut report = CheckReport::default();
        let mut problems: Vec<Finding> = Vec::new();
        let problem = |tree: &str, key: &str, what: String| Finding {
            tree: tree.to_string(),
            key: key.to_string(),
            problem: what,
        };
        let counts = DATA_TABLES
            .iter()
            .map(|t| format!("(SELECT count(*) FROM {t})"))
            .collect::<Vec<_>>()
            .join(", ");
        let row = self.run(async {
            let c = self.client().await?;
            c.query_one(&format!("SELECT {counts}"), &[])
                .await
                .map_err(db_error)
        })?;
        for (i, t) in DATA_TABLES.iter().enumerate() {
            let n: i64 = col(&row, i, t)?;
            report.trees.push(TreeCount {
                tree: (*t).to_string(),
                records: u64::try_from(n).unwrap_or(0),
            });
        }
        let mut readable_messages = true;
        for (table, columns, check) in BODIES {
            let mut bad = 0usize;
            self.scan(&format!("SELECT {columns} FROM {table}"), |key, body| {
                if let Some(e) = check(body) {
                    bad += 1;
                    problems.push(problem(
                        table,
                        key,
                        format!("the record does not decode: {e}"),
                    ));
                }
            })?;
            if table == "messages" && bad > 0 {
                readable_messages = false;
            }
        }
        // The invoice a message is found by.
        self.scan(
            "SELECT id || chr(31) || coalesce(invoice, ''), body::text FROM messages",
            |key, body| {
                let (id, invoice) = key.split_once('\u{1f}').unwrap_or((key, ""));
                if let Ok(m) = serde_json::from_str::<Message>(body) {
                    let of = history::invoice_of(&m).unwrap_or("");
                    if of != invoice {
                        problems.push(problem(
                            "messages",
                            id,
                            format!("the invoice column says {invoice:?}, the record {of:?}"),
                        ));
                    }
                }
            },
        )?;
        for (table, sql) in RULES {
            self.scan(sql, |key, what| {
                problems.push(problem(table, key, what.to_string()));
            })?;
        }
        // A sequence behind the numbers in use: the next number is taken already.
        self.scan(
            "SELECT max(seq)::text, 'the tombstones sequence is at ' || \
             (SELECT last_value FROM tombstones_seq) || ', not past tombstones numbered up to ' || max(seq) \
             FROM tombstones HAVING max(seq) >= (SELECT CASE WHEN is_called THEN last_value + 1 ELSE last_value END FROM tombstones_seq)",
            |key, what| problems.push(problem("tombstones", key, what.to_string())),
        )?;
        if readable_messages {
            let v = self.verify_all_histories()?;
            report.messages = v.messages;
            report.history_entries = v.entries;
            for (id, what) in v.broken {
                let tree = if id.starts_with("tombstones") {
                    "tombstones"
                } else {
                    "message_events"
                };
                problems.push(problem(
                    tree,
                    &id,
                    format!("{id}: the chain is broken: {what}"),
                ));
            }
        }
        let audit = self.verify_audit()?;
        if let Some(p) = audit.problem {
            problems.push(problem(
                "audit",
                "",
                format!("the audit chain is broken: {p}"),
            ));
        }
        report.problems = problems;
        Ok(report)
    }

    /// Runs `sql` (two text columns) through a cursor in one snapshot, giving each row to
    /// `each` between reads.
    fn scan(&self, sql: &str, mut each: impl FnMut(&str, &str)) -> Result<(), StoreError> {
        let client = self.run(self.client())?;
        self.run(client.batch_execute(&format!(
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; \
             DECLARE check_rows NO SCROLL CURSOR FOR {sql}"
        )))
        .map_err(db_error)?;
        let r = loop {
            let rows = match self.run(client.query(&format!("FETCH {BATCH} FROM check_rows"), &[]))
            {
                Ok(rows) => rows,
                Err(e) => break Err(db_error(e)),
            };
            if rows.is_empty() {
                break Ok(());
            }
            for row in &rows {
                let key: Option<String> = row.try_get(0).ok().flatten();
                let value: Option<String> = row.try_get(1).ok().flatten();
                each(key.as_deref().unwrap_or(""), value.as_deref().unwrap_or(""));
            }
        };
        let _ = self.run(client.batch_execute("ROLLBACK"));
        r
    }
}

#[cfg(test)]
mod tests {
    use crate::store::PgStore;
    use crate::store::backup::testing::populated;
    use crate::store::pg::testdb;

    #[tokio::test(flavor = "multi_thread")]
    async fn the_check_names_what_is_wrong() {
        let Some(url) = testdb::database() else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let (s, ms) = populated(dir.path());
        let pg = PgStore::connect(&url, Vec::new()).unwrap();
        s.copy_to_postgres(&pg).unwrap();
        let r = pg.check().unwrap();
        assert!(r.is_clean(), "{r:#?}");
        assert_eq!(r.messages, 6);
        assert!(
            r.trees
                .iter()
                .any(|t| t.tree == "messages" && t.records == 6)
        );

        let sql = |q: &str| {
            pg.run(async {
                let c = pg.client().await.unwrap();
                c.batch_execute(q).await.unwrap();
            })
        };
        let queued = &ms[0].id;
        let delivered = &ms[2].id;
        sql(&format!(
            "UPDATE messages SET status = 'sent' WHERE id = '{queued}';
             INSERT INTO reports_awaited (modem, mr, message_id, part, sent_at)
                 VALUES ('sim0', 7, '01ARZ3NDEKTSV4RRFFQ69G5FAV', 1, now());
             UPDATE message_events SET body = (replace(body::text, 'test', 'TEST'))::json
                 WHERE message_id = '{delivered}' AND seq = 2;
             UPDATE audit SET body = jsonb_set(body, '{{actor}}', '\"mallory\"');
             SELECT setval('outbox_seq', 1);
             UPDATE templates SET body = '{{\"x\": 1}}';
             UPDATE inbound SET sender = '+19999999999'"
        ));
        let r = pg.check().unwrap();
        let found = |tree: &str, what: &str| {
            r.problems
                .iter()
                .any(|p| p.tree == tree && p.problem.contains(what))
        };
        assert!(found("messages", "the status column says sent"), "{r:#?}");
        assert!(found("reports_awaited", "which is not stored"), "{r:#?}");
        assert!(found("message_events", delivered), "{r:#?}");
        assert!(found("audit", "the audit chain is broken"), "{r:#?}");
        assert!(found("outbox", "the outbox sequence is at 1"), "{r:#?}");
        assert!(found("templates", "does not decode"), "{r:#?}");
        assert!(found("inbound", "the sender column says"), "{r:#?}");
        assert_eq!(r.problems.len(), 7, "{r:#?}");
    }
}
