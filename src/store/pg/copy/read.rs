//! The tables read back as records of the embedded store's layout.

use chrono::{DateTime, Utc};

use super::super::body::{col, from_body};
use super::super::messages::message_of;
use super::super::{PgStore, db_error};
use super::{BATCH, RecordSink, tree};
use crate::store::audit::AuditEntry;
use crate::store::inbound::{Fragment, from_key};
use crate::store::optout::{ErasedOptOut, OptOut};
use crate::store::outbox::OutboxEntry;
use crate::store::plans::{Plan, StoredTemplate};
use crate::store::reports::UnmatchedReport;
use crate::store::{
    IdempotencyRecord, StoreError, due_key, encode, event_key, id_key, report_key, status_key,
    to_key,
};

/// The queries that read each table back, in this order.
pub(super) const READS: [(&str, &str); 16] = [
    ("messages", "SELECT id, body FROM messages ORDER BY id"),
    (
        "message_events",
        "SELECT message_id, seq, body::text FROM message_events ORDER BY message_id, seq",
    ),
    (
        "idempotency",
        "SELECT key_name, key, body FROM idempotency ORDER BY key_name, key",
    ),
    ("outbox", "SELECT seq, body FROM outbox ORDER BY seq"),
    (
        "inbound",
        "SELECT id, pending, body FROM inbound ORDER BY id",
    ),
    (
        "inbound_seen",
        "SELECT fingerprint, kind FROM inbound_seen ORDER BY fingerprint",
    ),
    (
        "fragments",
        "SELECT modem, sender, reference, total, part, body FROM fragments \
         ORDER BY modem, sender, reference, total, part",
    ),
    (
        "optouts",
        "SELECT number, body FROM optouts ORDER BY number",
    ),
    (
        "reports_awaited",
        "SELECT modem, mr, message_id, part, sent_at FROM reports_awaited \
         ORDER BY modem, mr, message_id, part",
    ),
    (
        "reports_unmatched",
        "SELECT id, body FROM reports_unmatched ORDER BY id",
    ),
    ("plans", "SELECT id, invoice, body FROM plans ORDER BY id"),
    (
        "templates",
        "SELECT name, body FROM templates ORDER BY name",
    ),
    (
        "hourly",
        "SELECT hour, modem, sent, delivered, failed FROM hourly ORDER BY hour, modem",
    ),
    (
        "tombstones",
        "SELECT day, seq, body::text FROM tombstones ORDER BY day, seq",
    ),
    ("audit", "SELECT id, body FROM audit ORDER BY id"),
    (
        "optouts_erased",
        "SELECT hash, body FROM optouts_erased ORDER BY hash",
    ),
];

/// A count read as `u64`.
fn unsigned<T: TryInto<u64>>(v: T, key: &str) -> Result<u64, StoreError> {
    v.try_into().map_err(|_| StoreError::Corrupt {
        key: key.to_string(),
        detail: "a negative or too large number".into(),
    })
}

fn small<T: TryInto<u8> + Copy + std::fmt::Display>(v: T, key: &str) -> Result<u8, StoreError> {
    v.try_into().map_err(|_| StoreError::Corrupt {
        key: key.to_string(),
        detail: format!("{v} is out of range"),
    })
}

impl PgStore {
    /// Every record of the store as the embedded store keeps it, the index entries included
    /// (but the `invoices` index, which an embedded store makes again when it is filled), given
    /// to `sink` table by table, from one snapshot: gateways may run meanwhile. `sink` is called
    /// between reads, never while a query runs.
    pub fn for_each_record(&self, sink: &mut RecordSink<'_>) -> Result<(), StoreError> {
        let client = self.run(self.client())?;
        self.run(client.batch_execute(
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; \
             DECLARE copy_meta NO SCROLL CURSOR FOR SELECT name, value FROM meta ORDER BY name",
        ))
        .map_err(db_error)?;
        let r = self.read_all(&client, sink);
        let _ = self.run(client.batch_execute("ROLLBACK"));
        r
    }

    fn read_all(
        &self,
        client: &tokio_postgres::Client,
        sink: &mut RecordSink<'_>,
    ) -> Result<(), StoreError> {
        for (i, (table, sql)) in READS.iter().enumerate() {
            let cursor = format!("copy_{i}");
            self.run(client.batch_execute(&format!("DECLARE {cursor} NO SCROLL CURSOR FOR {sql}")))
                .map_err(db_error)?;
            loop {
                let rows = self
                    .run(client.query(&format!("FETCH {BATCH} FROM {cursor}"), &[]))
                    .map_err(db_error)?;
                if rows.is_empty() {
                    break;
                }
                for row in &rows {
                    emit(table, row, sink)?;
                }
            }
        }
        loop {
            let rows = self
                .run(client.query(&format!("FETCH {BATCH} FROM copy_meta"), &[]))
                .map_err(db_error)?;
            if rows.is_empty() {
                break;
            }
            for row in &rows {
                let name: String = col(row, 0, "meta")?;
                let value: Vec<u8> = col(row, 1, &name)?;
                if name == super::super::audit::HEAD {
                    sink(tree("audit"), &crate::store::audit::HEAD, &value)?;
                } else {
                    sink(tree("meta"), name.as_bytes(), &value)?;
                }
            }
        }
        Ok(())
    }
}

fn key16(id: &str) -> Result<[u8; 16], StoreError> {
    id_key(id).ok_or_else(|| StoreError::Corrupt {
        key: id.to_string(),
        detail: "not a ULID".into(),
    })
}

/// The records of one row of `table` (read with its query in [`READS`]).
fn emit(
    table: &str,
    row: &tokio_postgres::Row,
    sink: &mut RecordSink<'_>,
) -> Result<(), StoreError> {
    match table {
        "messages" => {
            let m = message_of(row)?;
            let id = key16(&m.id)?;
            sink(tree("messages"), &id, &encode(&m)?)?;
            if m.status.is_waiting() {
                sink(tree("due"), &due_key(&m, &id), &[m.status.code()])?;
            } else {
                sink(tree("status"), &status_key(m.status, &id), &[])?;
            }
            sink(tree("to"), &to_key(&m.to, &id), &[])
        }
        "message_events" => {
            let id: String = col(row, 0, table)?;
            let seq: i32 = col(row, 1, &id)?;
            let body: String = col(row, 2, &id)?;
            let seq = unsigned(seq, &id)?;
            let seq = u32::try_from(seq).map_err(|_| StoreError::Corrupt {
                key: id.clone(),
                detail: format!("history sequence {seq} is out of range"),
            })?;
            sink(
                tree("events"),
                &event_key(&key16(&id)?, seq),
                body.as_bytes(),
            )
        }
        "idempotency" => {
            let name: String = col(row, 0, table)?;
            let key: String = col(row, 1, table)?;
            let r: IdempotencyRecord = from_body(&key, col(row, 2, &key)?)?;
            let k = if name.is_empty() {
                key
            } else {
                format!("{name}\0{key}")
            };
            sink(tree("idempotency"), k.as_bytes(), &encode(&r)?)
        }
        "outbox" => {
            let seq: i64 = col(row, 0, table)?;
            let key = format!("outbox/{seq}");
            let e: OutboxEntry = from_body(&key, col(row, 1, &key)?)?;
            sink(
                tree("outbox"),
                &unsigned(seq, &key)?.to_be_bytes(),
                &encode(&e)?,
            )
        }
        "inbound" => {
            let id: String = col(row, 0, table)?;
            let pending: bool = col(row, 1, &id)?;
            let m: crate::store::inbound::InboundMessage = from_body(&id, col(row, 2, &id)?)?;
            let k = key16(&id)?;
            sink(tree("inbound"), &k, &encode(&m)?)?;
            sink(tree("inbound_from"), &from_key(&m.from, &k), &[])?;
            if pending {
                sink(tree("inbound_pending"), &k, &[])?;
            }
            Ok(())
        }
        "inbound_seen" => {
            let fp: Vec<u8> = col(row, 0, table)?;
            let kind: String = col(row, 1, table)?;
            sink(tree("inbound_seen"), &fp, kind.as_bytes())
        }
        "fragments" => {
            let modem: String = col(row, 0, table)?;
            let sender: String = col(row, 1, table)?;
            let key = format!("fragments/{modem}/{sender}");
            let reference: i32 = col(row, 2, &key)?;
            let total: i16 = col(row, 3, &key)?;
            let part: i16 = col(row, 4, &key)?;
            let f: Fragment = from_body(&key, col(row, 5, &key)?)?;
            let reference = u16::try_from(reference).map_err(|_| StoreError::Corrupt {
                key: key.clone(),
                detail: format!("reference {reference} is out of range"),
            })?;
            let mut k = Vec::with_capacity(modem.len() + sender.len() + 6);
            k.extend_from_slice(modem.as_bytes());
            k.push(0);
            k.extend_from_slice(sender.as_bytes());
            k.push(0);
            k.extend_from_slice(&reference.to_be_bytes());
            k.push(small(total, &key)?);
            k.push(small(part, &key)?);
            sink(tree("fragments"), &k, &encode(&f)?)
        }
        "optouts" => {
            let number: String = col(row, 0, table)?;
            let o: OptOut = from_body(&number, col(row, 1, &number)?)?;
            sink(tree("optouts"), number.as_bytes(), &encode(&o)?)
        }
        "reports_awaited" => {
            let modem: String = col(row, 0, table)?;
            let mr: i16 = col(row, 1, &modem)?;
            let id: String = col(row, 2, &modem)?;
            let part: i16 = col(row, 3, &id)?;
            let sent: DateTime<Utc> = col(row, 4, &id)?;
            let k = report_key(&modem, small(mr, &id)?, &key16(&id)?, small(part, &id)?);
            let ms = sent.timestamp_millis().max(0) as u64;
            sink(tree("reports"), &k, &ms.to_be_bytes())
        }
        "reports_unmatched" => {
            let id: String = col(row, 0, table)?;
            let r: UnmatchedReport = from_body(&id, col(row, 1, &id)?)?;
            sink(tree("reports_unmatched"), &key16(&id)?, &encode(&r)?)
        }
        "plans" => {
            let id: String = col(row, 0, table)?;
            let invoice: String = col(row, 1, &id)?;
            let p: Plan = from_body(&id, col(row, 2, &id)?)?;
            let k = key16(&id)?;
            sink(tree("plans"), &k, &encode(&p)?)?;
            sink(tree("plan_invoices"), invoice.as_bytes(), &k)
        }
        "templates" => {
            let name: String = col(row, 0, table)?;
            let t: StoredTemplate = from_body(&name, col(row, 1, &name)?)?;
            sink(tree("templates"), name.as_bytes(), &encode(&t)?)
        }
        "hourly" => {
            let hour: i32 = col(row, 0, table)?;
            let modem: String = col(row, 1, table)?;
            let key = format!("hourly/{hour}/{modem}");
            let mut counts = [0u64; 3];
            for (i, c) in counts.iter_mut().enumerate() {
                *c = unsigned(col::<i64>(row, 2 + i, &key)?, &key)?;
            }
            let hour = u32::try_from(hour).map_err(|_| StoreError::Corrupt {
                key: key.clone(),
                detail: "a negative hour".into(),
            })?;
            sink(
                tree("hourly"),
                &crate::store::hourly::key(hour, &modem),
                &crate::store::hourly::encode_value(counts),
            )
        }
        "tombstones" => {
            let day: i32 = col(row, 0, table)?;
            let seq: i64 = col(row, 1, table)?;
            let key = format!("tombstones/{day}/{seq}");
            let body: String = col(row, 2, &key)?;
            let day = u32::try_from(day).map_err(|_| StoreError::Corrupt {
                key: key.clone(),
                detail: "a negative day".into(),
            })?;
            sink(
                tree("tombstones"),
                &crate::store::tombstones::tombstone_key(day, unsigned(seq, &key)?),
                body.as_bytes(),
            )
        }
        "audit" => {
            let id: String = col(row, 0, table)?;
            let e: AuditEntry = from_body(&id, col(row, 1, &id)?)?;
            sink(tree("audit"), &key16(&id)?, &encode(&e)?)
        }
        "optouts_erased" => {
            let hash: Vec<u8> = col(row, 0, table)?;
            let key = hex::encode(&hash);
            let o: ErasedOptOut = from_body(&key, col(row, 1, &key)?)?;
            sink(tree("optouts_erased"), &hash, &encode(&o)?)
        }
        _ => Err(StoreError::Io(format!("no table {table}"))),
    }
}
