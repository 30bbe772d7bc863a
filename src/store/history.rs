//! The tamper-evident history of a message: checking its hash chain, and exporting it.
//!
//! Entry 0 (accepted) is implied by the record; every stored entry carries `prev`, the
//! SHA-256 of the entry before it as stored (of entry 0 as it is serialised), and the record
//! keeps the hash of the last one (`history_hash`). An entry changed, removed, inserted or
//! reordered after the fact breaks the chain at that point; a history cut short no longer ends
//! at the record's head.
//!
//! A message whose text was redacted ([`crate::domain::Redaction`]) shows `text_sha256` in its
//! first entry instead of the text, and its chain starts from the hash that entry had with the
//! text (kept in the redaction), so it still verifies.

use serde::Serialize;

use super::{
    Event, Message, SledStore, StoreError, decode, decode_message, first_event_hash,
    first_event_shown, id_key, sha256_hex,
};

/// One history entry with its own hash.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ChainedEvent {
    /// The entry.
    #[serde(flatten)]
    pub event: Event,
    /// SHA-256 (hex) of the entry as stored: the next entry's `prev`.
    pub hash: String,
}

/// A message's history and whether its chain holds.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct History {
    /// The message.
    pub message_id: String,
    /// Whether every entry links to the one before and the last is the record's head.
    pub verified: bool,
    /// Where the chain breaks, when it does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// Oldest first.
    pub events: Vec<ChainedEvent>,
}

/// What [`Store::verify_all_histories`] found.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct VerifyReport {
    /// Messages checked.
    pub messages: u64,
    /// History entries checked.
    pub entries: u64,
    /// Messages whose chain breaks, with where; and days whose chain of tombstones breaks
    /// (`tombstones of <day>`).
    pub broken: Vec<(String, String)>,
    /// Tombstones of removed messages checked.
    pub tombstones: u64,
}

impl SledStore {
    /// A message's history with each entry's hash, checked; `None` when there is no such
    /// message.
    pub fn history(&self, id: &str) -> Result<Option<History>, StoreError> {
        let Some(key) = id_key(id) else {
            return Ok(None);
        };
        let Some(v) = self.inner.messages.get(key)? else {
            return Ok(None);
        };
        let m = decode_message(&key, &v)?;
        let h = self.history_of(&m, &key)?;
        if h.verified {
            return Ok(Some(h));
        }
        // An entry appended between reading the record and its entries looks like a break:
        // read both again before saying so.
        match self.inner.messages.get(key)? {
            Some(v) => {
                let m = decode_message(&key, &v)?;
                Ok(Some(self.history_of(&m, &key)?))
            }
            None => Ok(Some(h)),
        }
    }

    fn history_of(&self, m: &Message, key: &[u8; 16]) -> Result<History, StoreError> {
        let mut raws = Vec::with_capacity(m.history_len as usize);
        for r in self.inner.events.scan_prefix(key) {
            let (k, raw) = r?;
            raws.push((k.to_vec(), raw.to_vec()));
        }
        chain_of(
            m,
            raws.iter().map(|(k, raw)| (k.as_slice(), raw.as_slice())),
        )
    }

    /// Checks every message's history, and the chains of tombstones of removed messages.
    pub fn verify_all_histories(&self) -> Result<VerifyReport, StoreError> {
        let mut report = VerifyReport::default();
        let (tombstones, broken) = self.verify_tombstones()?;
        report.tombstones = tombstones;
        report.broken.extend(broken);
        for r in self.inner.messages.iter() {
            let (k, v) = r?;
            let Ok(key) = <[u8; 16]>::try_from(&k[..]) else {
                continue;
            };
            let m = match decode_message(&key, &v) {
                Ok(m) => m,
                Err(e) => {
                    report
                        .broken
                        .push((super::id_string(&key), format!("unreadable record: {e}")));
                    continue;
                }
            };
            let h = match self.history_of(&m, &key) {
                Ok(h) => h,
                Err(e) => {
                    // One unreadable entry must not stop the check of every other chain.
                    report.messages += 1;
                    report
                        .broken
                        .push((m.id, format!("unreadable history entry: {e}")));
                    continue;
                }
            };
            report.messages += 1;
            report.entries += h.events.len() as u64;
            if let Some(p) = h.problem {
                report.broken.push((m.id, p));
            }
        }
        Ok(report)
    }

    /// Calls `f` with every message to `to` and/or about `invoice` (`metadata.invoice`) and its
    /// history, oldest first, one at a time: an export of any size holds one message in memory.
    /// Reads the recipient index, or the invoice index: never every message.
    pub fn for_each_history<E: From<StoreError>>(
        &self,
        to: Option<&str>,
        invoice: Option<&str>,
        mut f: impl FnMut(&Message, &History) -> Result<(), E>,
    ) -> Result<(), E> {
        let (tree, prefix) = match (to, invoice) {
            (Some(t), _) => (&self.inner.to, t),
            (None, Some(inv)) => (&self.inner.invoices, inv),
            (None, None) => return Ok(()),
        };
        let mut prefix = prefix.as_bytes().to_vec();
        prefix.push(0xFF);
        let n = prefix.len();
        for r in tree.scan_prefix(prefix) {
            let (k, _) = r.map_err(StoreError::from)?;
            let Some(key) = k
                .get(n..n + 16)
                .and_then(|id| <[u8; 16]>::try_from(id).ok())
            else {
                continue;
            };
            let Some(v) = self.inner.messages.get(key).map_err(StoreError::from)? else {
                continue;
            };
            let m = decode_message(&key, &v)?;
            if invoice.is_some() && invoice_of(&m) != invoice {
                continue;
            }
            let h = self.history_of(&m, &key)?;
            f(&m, &h)?;
        }
        Ok(())
    }

    /// Every message to `to` and/or about `invoice`, with its history, oldest first (see
    /// [`Store::for_each_history`]).
    pub fn histories_for(
        &self,
        to: Option<&str>,
        invoice: Option<&str>,
    ) -> Result<Vec<(Message, History)>, StoreError> {
        let mut out = Vec::new();
        self.for_each_history::<StoreError>(to, invoice, |m, h| {
            out.push((m.clone(), h.clone()));
            Ok(())
        })?;
        Ok(out)
    }
}

/// A message's history from its stored entries (key, JSON as stored), oldest first: each
/// entry's hash, and whether the chain holds. Shared by both backends.
pub(crate) fn chain_of<'a>(
    m: &Message,
    entries: impl Iterator<Item = (&'a [u8], &'a [u8])>,
) -> Result<History, StoreError> {
    // The chain starts from the implied entry as it always hashed: without its actor, which
    // `created_by` in its facts names already (and with its text, for a redacted message:
    // the hash kept in the redaction).
    let first_hash = first_event_hash(m)?;
    let mut events = vec![ChainedEvent {
        event: first_event_shown(m),
        hash: first_hash.clone(),
    }];
    let mut problem = None;
    let mut prev = first_hash;
    let mut expected_seq = 1u32;
    for (k, raw) in entries {
        let e: Event = decode(k, raw)?;
        let hash = sha256_hex(raw);
        if problem.is_none() {
            if e.seq != expected_seq {
                problem = Some(format!(
                    "entry {} found where entry {expected_seq} was expected",
                    e.seq
                ));
            } else if e.prev.as_deref() != Some(prev.as_str()) {
                problem = Some(format!(
                    "entry {} does not link to entry {}: changed, removed or inserted after the fact",
                    e.seq,
                    e.seq.saturating_sub(1)
                ));
            }
        }
        expected_seq = e.seq.saturating_add(1);
        prev = hash.clone();
        events.push(ChainedEvent { event: e, hash });
    }
    if problem.is_none() {
        let last = expected_seq - 1;
        if last != m.history_len {
            problem = Some(format!(
                "the record says {} entries after the first, the history has {last}",
                m.history_len
            ));
        } else if m.history_len > 0 && m.history_hash.as_deref() != Some(prev.as_str()) {
            problem = Some(
                "the last entry is not the one the record points to: the history was changed at its end"
                    .into(),
            );
        }
    }
    Ok(History {
        message_id: m.id.clone(),
        verified: problem.is_none(),
        problem,
        events,
    })
}

/// The invoice reference a message carries in `metadata.invoice`.
pub fn invoice_of(m: &Message) -> Option<&str> {
    m.metadata.as_ref()?.get("invoice")?.as_str()
}

/// One exported row: a history entry with its message's number and invoice.
#[derive(Debug, Clone, Serialize)]
pub struct ExportRow<'a> {
    /// The message.
    pub message_id: &'a str,
    /// Its recipient.
    pub to: &'a str,
    /// Its `metadata.invoice`.
    pub invoice: Option<&'a str>,
    /// Whether the message's chain holds.
    pub chain_verified: bool,
    /// The entry.
    #[serde(flatten)]
    pub event: &'a ChainedEvent,
}

/// The export as JSON Lines: one entry per line, messages oldest first.
pub fn export_jsonl(rows: &[(Message, History)]) -> Result<String, StoreError> {
    let mut out = String::new();
    for (m, h) in rows {
        out.push_str(&jsonl_rows(m, h)?);
    }
    Ok(out)
}

/// One message's entries as JSON Lines.
pub fn jsonl_rows(m: &Message, h: &History) -> Result<String, StoreError> {
    let mut out = String::new();
    for e in &h.events {
        let row = ExportRow {
            message_id: &m.id,
            to: &m.to,
            invoice: invoice_of(m),
            chain_verified: h.verified,
            event: e,
        };
        out.push_str(&serde_json::to_string(&row).map_err(|e| StoreError::Io(e.to_string()))?);
        out.push('\n');
    }
    Ok(out)
}

/// The header line of the CSV export.
pub const CSV_HEADER: &str =
    "message_id,to,invoice,seq,at,kind,status,reason,data,prev,hash,chain_verified,actor\n";

/// The export as CSV with a header line; `data` is the entry's facts as JSON.
pub fn export_csv(rows: &[(Message, History)]) -> Result<String, StoreError> {
    let mut out = CSV_HEADER.to_string();
    for (m, h) in rows {
        out.push_str(&csv_rows(m, h)?);
    }
    Ok(out)
}

/// One message's entries as CSV lines (no header).
pub fn csv_rows(m: &Message, h: &History) -> Result<String, StoreError> {
    let io = |e: csv::Error| StoreError::Io(e.to_string());
    let mut w = csv::Writer::from_writer(Vec::new());
    for c in &h.events {
        let e = &c.event;
        w.write_record([
            m.id.as_str(),
            m.to.as_str(),
            invoice_of(m).unwrap_or(""),
            &e.seq.to_string(),
            &e.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            &e.kind,
            e.status.as_str(),
            e.reason.as_deref().unwrap_or(""),
            &e.data.as_ref().map(|d| d.to_string()).unwrap_or_default(),
            e.prev.as_deref().unwrap_or(""),
            &c.hash,
            if h.verified { "true" } else { "false" },
            e.actor.as_deref().unwrap_or(""),
        ])
        .map_err(io)?;
    }
    let bytes = w.into_inner().map_err(|e| StoreError::Io(e.to_string()))?;
    String::from_utf8(bytes).map_err(|e| StoreError::Io(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Note, Status, encode};

    fn msg(to: &str, invoice: Option<&str>) -> Message {
        let mut m = crate::store::test_message(to);
        m.text = "Invoice due".into();
        m.metadata = invoice.map(|i| serde_json::json!({ "invoice": i }));
        m
    }

    #[tokio::test]
    async fn chains_verify_and_tampering_shows() {
        let dir = tempfile::tempdir().unwrap();
        let s = SledStore::open(dir.path(), 16).unwrap();
        let a = msg("+12025550123", Some("INV-1"));
        let b = msg("+12025550124", Some("INV-2"));
        s.insert(&[a.clone(), b.clone()], None).unwrap();
        for st in [Status::Sending, Status::Sent, Status::Delivered] {
            for id in [&a.id, &b.id] {
                s.update(id, |m| {
                    m.status = st;
                    Some(Note::new(
                        "status",
                        st.as_str(),
                        serde_json::json!({"x": 1}),
                    ))
                })
                .unwrap();
            }
        }
        let h = s.history(&a.id).unwrap().unwrap();
        assert!(h.verified, "{h:?}");
        assert_eq!(h.events.len(), 4);
        assert_eq!(
            h.events[1].event.prev.as_deref(),
            Some(h.events[0].hash.as_str())
        );
        let r = s.verify_all_histories().unwrap();
        assert_eq!((r.messages, r.entries, r.broken.len()), (2, 8, 0));

        // Change a stored entry's reason: the next entry no longer links to it.
        let key = id_key(&a.id).unwrap();
        let k = super::super::event_key(&key, 2);
        let raw = s.inner.events.get(&k).unwrap().unwrap();
        let mut e: Event = serde_json::from_slice(&raw).unwrap();
        e.reason = Some("edited".into());
        s.inner
            .events
            .insert(&k, serde_json::to_vec(&e).unwrap())
            .unwrap();
        let h = s.history(&a.id).unwrap().unwrap();
        assert!(!h.verified);
        assert!(h.problem.unwrap().contains("entry 3"));

        // Remove the last entry of the other message: the record's head no longer matches.
        let keyb = id_key(&b.id).unwrap();
        s.inner
            .events
            .remove(super::super::event_key(&keyb, 3))
            .unwrap();
        let h = s.history(&b.id).unwrap().unwrap();
        assert!(!h.verified);
        let r = s.verify_all_histories().unwrap();
        assert_eq!(r.broken.len(), 2);

        // The accepted text itself is covered: changing the record's text breaks entry 1.
        let c = msg("+12025550125", None);
        s.insert(std::slice::from_ref(&c), None).unwrap();
        s.update(&c.id, |m| {
            m.status = Status::Cancelled;
            Some("cancelled")
        })
        .unwrap();
        assert!(s.history(&c.id).unwrap().unwrap().verified);
        let keyc = id_key(&c.id).unwrap();
        let mut rec = s.get(&c.id).unwrap().unwrap();
        rec.text = "Different text".into();
        s.inner
            .messages
            .insert(keyc, encode(&rec).unwrap())
            .unwrap();
        assert!(!s.history(&c.id).unwrap().unwrap().verified);
    }

    #[tokio::test]
    async fn exports_by_number_and_invoice() {
        let dir = tempfile::tempdir().unwrap();
        let s = SledStore::open(dir.path(), 16).unwrap();
        let a = msg("+12025550123", Some("INV-1"));
        let b = msg("+12025550123", Some("INV-2"));
        let c = msg("+12025550124", Some("INV-1"));
        s.insert(&[a.clone(), b.clone(), c.clone()], None).unwrap();
        s.update(&a.id, |m| {
            m.status = Status::Cancelled;
            Some("cancelled, with a \"quote\", and a comma")
        })
        .unwrap();
        let by_to = s.histories_for(Some("+12025550123"), None).unwrap();
        assert_eq!(by_to.len(), 2);
        let by_inv = s.histories_for(None, Some("INV-1")).unwrap();
        let ids: Vec<_> = by_inv.iter().map(|(m, _)| m.id.clone()).collect();
        let mut want = vec![a.id.clone(), c.id.clone()];
        want.sort();
        assert_eq!(ids, want);
        let jsonl = export_jsonl(&by_inv).unwrap();
        let lines: Vec<serde_json::Value> = jsonl
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3, "{jsonl}");
        assert!(lines.iter().all(|l| l["invoice"] == "INV-1"));
        assert!(
            lines
                .iter()
                .any(|l| l["kind"] == "accepted" && l["data"]["text"] == "Invoice due")
        );
        let csv_text = export_csv(&by_inv).unwrap();
        let mut rd = csv::Reader::from_reader(csv_text.as_bytes());
        let rows: Vec<csv::StringRecord> = rd.records().map(|r| r.unwrap()).collect();
        assert_eq!(rows.len(), 3);
        assert!(
            rows.iter()
                .any(|r| &r[7] == "cancelled, with a \"quote\", and a comma")
        );
    }
}
