//! Inbound messages: stored before they leave the SIM, reassembled, listed.
//!
//! A PDU from the modem is stored (as a message, or as one part of a concatenated message) and
//! remembered by its fingerprint (SHA-256 of modem name and PDU) in one transaction; only then
//! may the driver delete it from the SIM. A PDU seen again — the daemon stopped between storing
//! and deleting it, so the SIM offers it once more — is recognised and not stored twice. Parts
//! wait in the `fragments` tree, keyed by modem, sender, reference and total, so they may come
//! in any order, across a restart, interleaved with other senders' parts; the last one turns
//! them into a message. Parts that never complete are released as a partial message.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sled::Transactional;

use super::{SledStore, StoreError, SweepStep, Tx, abort, decode, encode, id_key, sweep_oldest};
pub use crate::domain::InboundMessage;
use crate::sms::{self, Pdu};

/// What [`Store::receive`] did with a PDU.
#[derive(Debug, Clone, PartialEq)]
pub enum Received {
    /// Already stored: only delete it from the SIM.
    Duplicate,
    /// One part of a message still incomplete, held.
    Held {
        /// This part's number.
        part: u8,
        /// Of how many.
        total: u8,
    },
    /// A message is complete (a single PDU, or the last missing part).
    Stored(Box<InboundMessage>),
}

/// One held part.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Fragment {
    /// The PDU, SMSC field first.
    pub(super) pdu: String,
    pub(super) received_at: DateTime<Utc>,
    /// The region a national-format sender is read in, as it was when the part arrived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) region: Option<String>,
}

/// What one PDU is, read: a whole message, or one part of a concatenated one.
pub(super) enum Reading {
    /// A whole message in one PDU (or one that cannot be read: kept as it came).
    Whole(Box<InboundMessage>),
    /// One part, to hold until the others come.
    Part {
        /// The sender as the PDU gives it (not normalised): part of the group's key.
        from: String,
        /// Which part of which message.
        concat: sms::Concat,
        /// The part to hold.
        fragment: Fragment,
    },
}

/// Reads a PDU that arrived on `modem` (SMSC field first) at `now`; a sender in national
/// format is read in `region`.
pub(super) fn read_pdu(
    modem: &str,
    pdu: &[u8],
    region: Option<&str>,
    now: DateTime<Utc>,
) -> Reading {
    let decoded = sms::decode_lenient(pdu, true).map(|(p, _)| p);
    let concat = match &decoded {
        Ok(Pdu::Deliver(d)) => d.user_data.concat().filter(|c| c.total > 1),
        _ => None,
    };
    let fragment = Fragment {
        pdu: sms::to_hex(pdu),
        received_at: now,
        region: region.map(str::to_string),
    };
    match (concat, &decoded) {
        (Some(concat), Ok(Pdu::Deliver(d))) => Reading::Part {
            from: d.from.to_string(),
            concat,
            fragment,
        },
        _ => {
            let mut m = assemble(modem, &[Some(fragment)], 1, now);
            match &decoded {
                Ok(Pdu::Deliver(_)) => {}
                Ok(_) => m.decode_error = Some("not an SMS-DELIVER".into()),
                Err(e) => m.decode_error = Some(e.to_string()),
            }
            Reading::Whole(Box::new(m))
        }
    }
}

/// The fingerprint of a modem's answer that could not be read as a message: marked apart
/// from PDU fingerprints (an answer is text, a PDU octets).
pub(super) fn answer_fingerprint(modem: &str, answer: &str) -> [u8; 32] {
    let mut keyed = b"answer\0".to_vec();
    keyed.extend_from_slice(answer.as_bytes());
    fingerprint(modem, &keyed)
}

/// The inbound message kept for an answer that could not be read (see
/// [`Store::receive_unreadable`]).
pub(super) fn unreadable_message(
    modem: &str,
    answer: &str,
    pdu: &[u8],
    reason: &str,
    now: DateTime<Utc>,
) -> InboundMessage {
    let mut m = assemble(modem, &[], 1, now);
    m.parts_received = 1;
    m.partial = false;
    if !pdu.is_empty() {
        m.pdus = vec![sms::to_hex(pdu)];
    }
    m.decode_error = Some(reason.to_string());
    m.raw_answer = Some(answer.to_string());
    m
}

/// Reads a held part back (for [`Store::check`]).
pub(super) fn decode_fragment(key: &[u8], v: &[u8]) -> Result<(), StoreError> {
    decode::<Fragment>(key, v).map(|_| ())
}

/// A held part with its key.
type HeldPart = (Vec<u8>, Fragment);

/// Filter for [`Store::list_inbound`].
#[derive(Debug, Clone, Default)]
pub struct InboundFilter {
    /// Only from this sender.
    pub from: Option<String>,
    /// Only those that could not be read (`decode_error` set): they have no sender, so they are
    /// the ones indexed under the empty sender.
    pub unreadable: bool,
    /// Only received at or after.
    pub since: Option<DateTime<Utc>>,
    /// Start after this id (the previous page's cursor).
    pub after: Option<String>,
    /// Page size.
    pub limit: usize,
}

/// SHA-256 of modem name · 0x00 · PDU: a PDU seen before on that modem (`inbound_seen`).
pub(super) fn fingerprint(modem: &str, pdu: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(modem.as_bytes());
    h.update([0]);
    h.update(pdu);
    h.finalize().into()
}

/// The key prefix shared by every part of one concatenated message.
fn group_prefix(modem: &str, from: &str, c: &sms::Concat) -> Vec<u8> {
    let mut k = Vec::with_capacity(modem.len() + from.len() + 5);
    k.extend_from_slice(modem.as_bytes());
    k.push(0);
    k.extend_from_slice(from.as_bytes());
    k.push(0);
    k.extend_from_slice(&c.reference.to_be_bytes());
    k.push(c.total);
    k
}

pub(super) fn from_key(from: &str, id: &[u8; 16]) -> Vec<u8> {
    let mut k = Vec::with_capacity(from.len() + 17);
    k.extend_from_slice(from.as_bytes());
    k.push(0xFF);
    k.extend_from_slice(id);
    k
}

fn encoding_name(e: sms::Encoding) -> &'static str {
    match e {
        sms::Encoding::Gsm7 => "gsm7",
        sms::Encoding::Ucs2 => "ucs2",
        sms::Encoding::EightBit => "8bit",
    }
}

/// Builds the message from its parts' PDUs, in part order (`None` for a part that never came).
pub(super) fn assemble(
    modem: &str,
    parts: &[Option<Fragment>],
    total: u8,
    now: DateTime<Utc>,
) -> InboundMessage {
    let mut text = String::new();
    let mut bodies: Vec<sms::Body> = Vec::new();
    let mut from = String::new();
    let mut from_raw = None;
    let mut smsc_timestamp = None;
    let mut received_at = now;
    let mut encoding = "undecodable";
    let mut pdus = Vec::new();
    let mut truncated = false;
    let flush = |bodies: &mut Vec<sms::Body>, text: &mut String| {
        text.push_str(&sms::join_text(bodies.iter()));
        bodies.clear();
    };
    for part in parts {
        match part {
            Some(f) => {
                received_at = received_at.min(f.received_at);
                pdus.push(f.pdu.clone());
                let decoded = sms::parse_hex(&f.pdu).and_then(|o| sms::decode_lenient(&o, true));
                if let Ok((Pdu::Deliver(d), _)) = decoded {
                    if from.is_empty() {
                        let raw = d.from.to_string();
                        from = crate::numbers::normalise_sender(&raw, f.region.as_deref())
                            .map_or_else(|| raw.clone(), String::from);
                        from_raw = (raw != from).then_some(raw);
                        smsc_timestamp = Some(d.timestamp);
                        encoding = encoding_name(d.user_data.body.encoding());
                    }
                    bodies.push(d.user_data.body);
                    if d.user_data.truncated {
                        // The PDU ended before its user data did: what was there, marked.
                        flush(&mut bodies, &mut text);
                        text.push_str("[…]");
                        truncated = true;
                    }
                }
            }
            None => {
                flush(&mut bodies, &mut text);
                text.push_str("[…]");
            }
        }
    }
    flush(&mut bodies, &mut text);
    let received = parts.iter().filter(|p| p.is_some()).count() as u8;
    InboundMessage {
        id: ulid::Ulid::from_parts(received_at.timestamp_millis().max(0) as u64, rand_bits())
            .to_string(),
        modem: modem.to_string(),
        from,
        from_raw,
        text,
        received_at,
        smsc_timestamp,
        encoding: encoding.to_string(),
        total_parts: total,
        parts_received: received,
        partial: received < total || truncated,
        pdus,
        decode_error: None,
        raw_answer: None,
        in_reply_to: None,
        handling: None,
    }
}

fn rand_bits() -> u128 {
    u128::from(fastrand::u64(..)) << 16 | u128::from(fastrand::u16(..))
}

impl SledStore {
    /// Stores a PDU that arrived on `modem` (SMSC field first); a sender in national format is
    /// read in `region` (see [`crate::numbers::normalise_sender`]). Call [`Store::durable`]
    /// before deleting it from the SIM.
    pub fn receive(
        &self,
        modem: &str,
        pdu: &[u8],
        region: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Received, StoreError> {
        let _w = self.writing();
        let i = &self.inner;
        let seen = fingerprint(modem, pdu);
        if i.inbound_seen.contains_key(seen)? {
            return Ok(Received::Duplicate);
        }
        let (from, c, fragment) = match read_pdu(modem, pdu, region, now) {
            Reading::Whole(m) => {
                self.put_inbound(&m, &[seen.to_vec()], &[])?;
                return Ok(Received::Stored(m));
            }
            Reading::Part {
                from,
                concat,
                fragment,
            } => (from, concat, fragment),
        };
        let prefix = group_prefix(modem, &from, &c);
        let part_key = |n: u8| {
            let mut k = prefix.clone();
            k.push(n);
            k
        };
        let fragment = encode(&fragment)?;
        let r = (
            &i.fragments,
            &i.inbound_seen,
            &i.inbound,
            &i.inbound_from,
            &i.inbound_pending,
        )
            .transaction(|(tf, ts, ti, tfrom, tp)| {
                ts.insert(&seen[..], &[])?;
                let key = part_key(c.part);
                if tf.get(&key)?.is_none() {
                    tf.insert(key, fragment.as_slice())?;
                }
                let mut parts = Vec::with_capacity(usize::from(c.total));
                for n in 1..=c.total {
                    match tf.get(part_key(n))? {
                        Some(v) => {
                            parts.push(Some(decode::<Fragment>(&part_key(n), &v).map_err(abort)?))
                        }
                        None => {
                            return Ok(Received::Held {
                                part: c.part,
                                total: c.total,
                            });
                        }
                    }
                }
                let m = assemble(modem, &parts, c.total, now);
                let id = id_key(&m.id).ok_or_else(|| {
                    abort(StoreError::Corrupt {
                        key: m.id.clone(),
                        detail: "not a ULID".into(),
                    })
                })?;
                ti.insert(&id[..], encode(&m).map_err(abort)?)?;
                tfrom.insert(from_key(&m.from, &id), &[])?;
                tp.insert(&id[..], &[])?;
                for n in 1..=c.total {
                    tf.remove(part_key(n))?;
                }
                Ok::<_, Tx>(Received::Stored(Box::new(m)))
            })?;
        Ok(r)
    }

    /// Stores a modem's answer that could not be read as a message (`answer`: header and lines
    /// as received; `pdu`: whatever octets it held; `reason`: why), as an inbound message with
    /// `decode_error` and `raw_answer` set, so that its slot can be freed. The same answer seen
    /// again on that modem (a crash before the slot was freed) is a duplicate. Call
    /// [`Store::durable`] before deleting it from the SIM.
    pub fn receive_unreadable(
        &self,
        modem: &str,
        answer: &str,
        pdu: &[u8],
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<Received, StoreError> {
        let _w = self.writing();
        let seen = answer_fingerprint(modem, answer);
        if self.inner.inbound_seen.contains_key(seen)? {
            return Ok(Received::Duplicate);
        }
        let m = unreadable_message(modem, answer, pdu, reason, now);
        self.put_inbound(&m, &[seen.to_vec()], &[])?;
        Ok(Received::Stored(Box::new(m)))
    }

    /// Writes a whole inbound message with its fingerprints, removing `fragments`.
    fn put_inbound(
        &self,
        m: &InboundMessage,
        seen: &[Vec<u8>],
        fragments: &[Vec<u8>],
    ) -> Result<(), StoreError> {
        let _w = self.writing();
        let i = &self.inner;
        let id = id_key(&m.id).ok_or_else(|| StoreError::Corrupt {
            key: m.id.clone(),
            detail: "not a ULID".into(),
        })?;
        let json = encode(m)?;
        (
            &i.inbound,
            &i.inbound_from,
            &i.inbound_seen,
            &i.fragments,
            &i.inbound_pending,
        )
            .transaction(|(ti, tfrom, ts, tf, tp)| {
                ti.insert(&id[..], json.as_slice())?;
                tfrom.insert(from_key(&m.from, &id), &[])?;
                tp.insert(&id[..], &[])?;
                for s in seen {
                    ts.insert(s.as_slice(), &[])?;
                }
                for f in fragments {
                    tf.remove(f.as_slice())?;
                }
                Ok::<_, Tx>(())
            })?;
        Ok(())
    }

    /// Releases, as partial messages, the concatenated messages whose first part arrived
    /// before `cutoff` and that are still incomplete.
    pub fn release_stale_fragments(
        &self,
        cutoff: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Vec<InboundMessage>, StoreError> {
        let _w = self.writing();
        // Group the held parts by message: the key up to (and with) the total octet.
        let mut groups: Vec<(Vec<u8>, Vec<HeldPart>)> = Vec::new();
        for r in self.inner.fragments.iter() {
            let (k, v) = r?;
            if k.len() < 5 {
                continue;
            }
            let prefix = k[..k.len() - 1].to_vec();
            let f: Fragment = decode(&k, &v)?;
            match groups.last_mut() {
                Some((p, parts)) if *p == prefix => parts.push((k.to_vec(), f)),
                _ => groups.push((prefix, vec![(k.to_vec(), f)])),
            }
        }
        let mut out = Vec::new();
        for (prefix, parts) in groups {
            if parts.iter().map(|(_, f)| f.received_at).min() >= Some(cutoff) {
                continue;
            }
            let Some(&total) = prefix.last() else {
                continue;
            };
            let modem_end = prefix.iter().position(|b| *b == 0).unwrap_or(0);
            let modem = String::from_utf8_lossy(&prefix[..modem_end]).into_owned();
            let mut slots: Vec<Option<Fragment>> = vec![None; usize::from(total)];
            for (k, f) in &parts {
                if let Some(n) = k.last().map(|n| usize::from(*n))
                    && (1..=slots.len()).contains(&n)
                {
                    slots[n - 1] = Some(f.clone());
                }
            }
            let m = assemble(&modem, &slots, total, now);
            let keys: Vec<Vec<u8>> = parts.into_iter().map(|(k, _)| k).collect();
            self.put_inbound(&m, &[], &keys)?;
            out.push(m);
        }
        Ok(out)
    }

    /// An inbound message by id.
    pub fn inbound(&self, id: &str) -> Result<Option<InboundMessage>, StoreError> {
        let Some(key) = id_key(id) else {
            return Ok(None);
        };
        match self.inner.inbound.get(key)? {
            Some(v) => Ok(Some(decode(&key, &v)?)),
            None => Ok(None),
        }
    }

    /// Inbound messages newest first, filtered, one page.
    pub fn list_inbound(&self, f: &InboundFilter) -> Result<Vec<InboundMessage>, StoreError> {
        let limit = f.limit.clamp(1, 1000);
        let after = f.after.as_deref().and_then(id_key);
        let since = f.since.map(|t| {
            ulid::Ulid::from_parts(t.timestamp_millis().max(0) as u64, 0)
                .0
                .to_be_bytes()
        });
        let from = match (&f.from, f.unreadable) {
            (_, true) => Some(""),
            (Some(from), false) => Some(from.as_str()),
            (None, false) => None,
        };
        let ids: Box<dyn Iterator<Item = Result<[u8; 16], StoreError>>> = match from {
            Some(from) => {
                let mut prefix = from.as_bytes().to_vec();
                prefix.push(0xFF);
                let n = prefix.len();
                Box::new(
                    self.inner
                        .inbound_from
                        .scan_prefix(prefix)
                        .rev()
                        .map(move |r| {
                            let (k, _) = r?;
                            let mut id = [0u8; 16];
                            if k.len() >= n + 16 {
                                id.copy_from_slice(&k[n..n + 16]);
                            }
                            Ok(id)
                        }),
                )
            }
            None => Box::new(self.inner.inbound.iter().keys().rev().map(|r| {
                let k = r?;
                let mut id = [0u8; 16];
                if k.len() == 16 {
                    id.copy_from_slice(&k);
                }
                Ok(id)
            })),
        };
        let mut out = Vec::new();
        for id in ids {
            let id = id?;
            if after.is_some_and(|a| id >= a) {
                continue;
            }
            if since.is_some_and(|s| id < s) {
                break;
            }
            if let Some(v) = self.inner.inbound.get(id)? {
                let m: InboundMessage = decode(&id, &v)?;
                if f.unreadable && m.decode_error.is_none() {
                    continue;
                }
                out.push(m);
                if out.len() == limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// One step of `[retention] inbound_after`: inbound messages received at or before
    /// `cutoff` and acted on are removed, oldest first; at most `limit` looked at.
    pub fn purge_inbound(
        &self,
        cutoff: DateTime<Utc>,
        limit: usize,
    ) -> Result<SweepStep, StoreError> {
        let _w = self.writing();
        sweep_oldest(&self.inner.inbound, cutoff, limit, |k, v| {
            if self.inner.inbound_pending.contains_key(k)? {
                // Not yet acted on (an opt-out, a reply): it stays until it is.
                return Ok(false);
            }
            self.remove_inbound(&decode::<InboundMessage>(k, v)?)
        })
    }

    /// Removes an inbound message and its index entries; `false` when it was gone already.
    fn remove_inbound(&self, m: &InboundMessage) -> Result<bool, StoreError> {
        let _w = self.writing();
        let Some(id) = id_key(&m.id) else {
            return Ok(false);
        };
        let i = &self.inner;
        let r =
            (&i.inbound, &i.inbound_from, &i.inbound_pending).transaction(|(ti, tfrom, tp)| {
                let gone = ti.remove(&id[..])?.is_none();
                tfrom.remove(from_key(&m.from, &id))?;
                tp.remove(&id[..])?;
                Ok::<_, Tx>(!gone)
            })?;
        Ok(r)
    }

    /// Removes every inbound message from `number` and the held parts of its unfinished ones
    /// (an erasure); how many messages.
    pub(super) fn erase_inbound_from(&self, number: &str) -> Result<usize, StoreError> {
        let _w = self.writing();
        let mut prefix = number.as_bytes().to_vec();
        prefix.push(0xFF);
        let n = prefix.len();
        let mut removed = 0;
        for r in self.inner.inbound_from.scan_prefix(&prefix) {
            let (k, _) = r?;
            let Some(id) = k.get(n..n + 16) else {
                continue;
            };
            match self.inner.inbound.get(id)? {
                Some(v) => {
                    let m: InboundMessage = decode(id, &v)?;
                    if self.remove_inbound(&m)? {
                        removed += 1;
                    }
                }
                None => {
                    self.inner.inbound_from.remove(&k)?;
                }
            }
        }
        // Held parts: modem · 0x00 · sender · 0x00 · …
        let mut sender = vec![0u8];
        sender.extend_from_slice(number.as_bytes());
        sender.push(0);
        for r in self.inner.fragments.iter() {
            let (k, _) = r?;
            if super::idempotency::contains(&k, &sender) {
                self.inner.fragments.remove(&k)?;
            }
        }
        Ok(removed)
    }

    /// Number of concatenated messages' parts held, waiting for the rest.
    pub fn fragments_held(&self) -> usize {
        self.inner.fragments.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The on-disk layouts of `inbound_from`, `inbound_seen` and `fragments` keys.
    #[test]
    fn key_layouts_are_pinned() {
        let id: [u8; 16] = std::array::from_fn(|i| 0xA0 + i as u8);
        assert_eq!(
            from_key("+447700900123", &id),
            [&b"+447700900123\xFF"[..], &id[..]].concat()
        );
        // SHA-256 of "sim0" · 0x00 · 0x01 0x02.
        assert_eq!(
            sms::to_hex(&fingerprint("sim0", &[1, 2])).to_lowercase(),
            crate::store::sha256_hex(b"sim0\x00\x01\x02")
        );
        let c = sms::Concat {
            reference: 0x1234,
            part: 2,
            total: 3,
            sixteen_bit: true,
        };
        assert_eq!(
            group_prefix("sim0", "+447700900123", &c),
            b"sim0\x00+447700900123\x00\x12\x34\x03"
        );
    }
}
