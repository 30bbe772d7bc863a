//! Key layouts of the message trees (the table in [`crate::store`] says which tree holds
//! which), and the JSON encoding of records.

use serde::{Deserialize, Serialize};

use super::{Message, Status, StoreError, history};

/// Parses a ULID string into its 16 key bytes.
pub fn id_key(id: &str) -> Option<[u8; 16]> {
    ulid::Ulid::from_string(id).ok().map(|u| u.0.to_be_bytes())
}

pub(super) fn id_string(key: &[u8]) -> String {
    let mut b = [0u8; 16];
    let n = key.len().min(16);
    b[..n].copy_from_slice(&key[..n]);
    ulid::Ulid(u128::from_be_bytes(b)).to_string()
}

pub(super) fn due_key(m: &Message, id: &[u8; 16]) -> Vec<u8> {
    let mut k = Vec::with_capacity(25);
    k.push(m.priority.code());
    k.extend_from_slice(&(m.due_at.timestamp_millis().max(0) as u64).to_be_bytes());
    k.extend_from_slice(id);
    k
}

pub(super) fn status_key(s: Status, id: &[u8; 16]) -> Vec<u8> {
    let mut k = Vec::with_capacity(17);
    k.push(s.code());
    k.extend_from_slice(id);
    k
}

pub(super) fn to_key(to: &str, id: &[u8; 16]) -> Vec<u8> {
    let mut k = Vec::with_capacity(to.len() + 17);
    k.extend_from_slice(to.as_bytes());
    k.push(0xFF);
    k.extend_from_slice(id);
    k
}

/// `invoice · 0xFF · id`, for a message whose `metadata.invoice` names one.
pub(super) fn invoice_key(m: &Message, id: &[u8; 16]) -> Option<Vec<u8>> {
    let invoice = history::invoice_of(m).filter(|i| !i.is_empty())?;
    let mut k = Vec::with_capacity(invoice.len() + 17);
    k.extend_from_slice(invoice.as_bytes());
    k.push(0xFF);
    k.extend_from_slice(id);
    Some(k)
}

pub(super) fn event_key(id: &[u8; 16], seq: u32) -> Vec<u8> {
    let mut k = Vec::with_capacity(20);
    k.extend_from_slice(id);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

pub(super) fn decode<T: for<'de> Deserialize<'de>>(key: &[u8], v: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(v).map_err(|e| StoreError::Corrupt {
        key: id_string(key),
        detail: e.to_string(),
    })
}

/// A message record: its id is the key, not part of the stored JSON.
pub(super) fn decode_message(key: &[u8], v: &[u8]) -> Result<Message, StoreError> {
    let mut m: Message = decode(key, v)?;
    m.id = id_string(key);
    Ok(m)
}

pub(super) fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(v).map_err(|e| StoreError::Io(e.to_string()))
}

/// The `reports` key of a sent part: modem · 0x00 · TP-MR · id · part.
pub(crate) fn report_key(modem: &str, mr: u8, id: &[u8; 16], part: u8) -> Vec<u8> {
    let mut k = Vec::with_capacity(modem.len() + 19);
    k.extend_from_slice(modem.as_bytes());
    k.push(0);
    k.push(mr);
    k.extend_from_slice(id);
    k.push(part);
    k
}

/// SHA-256 in lower-case hex.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}
