//! Messages sent, delivered and failed per hour and modem: the dashboard's 24-hour chart and
//! each modem's "sent today", kept as counters written in the same transaction as the status
//! change they count, so they survive restarts and never drift from the messages.
//!
//! Key: hour since the epoch (4, BE) · modem name (empty when no modem took the message).
//! Value: sent (8, BE) · delivered (8, BE) · failed (8, BE).

use chrono::{DateTime, TimeZone, Utc};
use sled::transaction::TransactionalTree;

use super::{SledStore, Status, StoreError, Tx};

/// One hour's counts for one modem.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HourCount {
    /// The start of the hour.
    pub hour: DateTime<Utc>,
    /// The modem (empty: none took the message).
    pub modem: String,
    /// Messages that became `sent`.
    pub sent: u64,
    /// Messages that became `delivered`.
    pub delivered: u64,
    /// Messages that became `failed`.
    pub failed: u64,
}

/// Which counter a new status bumps.
fn slot(s: Status) -> Option<usize> {
    match s {
        Status::Sent => Some(0),
        Status::Delivered => Some(1),
        Status::Failed => Some(2),
        _ => None,
    }
}

fn hour_of(t: DateTime<Utc>) -> u32 {
    u32::try_from(t.timestamp().max(0) / 3600).unwrap_or(u32::MAX)
}

pub(super) fn key(hour: u32, modem: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(4 + modem.len());
    k.extend_from_slice(&hour.to_be_bytes());
    k.extend_from_slice(modem.as_bytes());
    k
}

/// The three counters of a value (missing or short values count as zero).
pub(crate) fn decode_value(v: &[u8]) -> [u64; 3] {
    let mut out = [0u64; 3];
    for (i, c) in v.chunks_exact(8).take(3).enumerate() {
        let mut b = [0u8; 8];
        b.copy_from_slice(c);
        out[i] = u64::from_be_bytes(b);
    }
    out
}

pub(super) fn encode_value(c: [u64; 3]) -> Vec<u8> {
    c.iter().flat_map(|n| n.to_be_bytes()).collect()
}

/// Counts a status change, inside the transaction that makes it.
pub(crate) fn count_in(
    t: &TransactionalTree,
    old: Status,
    new: Status,
    at: DateTime<Utc>,
    modem: Option<&str>,
) -> Result<(), Tx> {
    let Some(i) = slot(new).filter(|_| old != new) else {
        return Ok(());
    };
    let k = key(hour_of(at), modem.unwrap_or(""));
    let mut c = t.get(&k)?.map(|v| decode_value(&v)).unwrap_or_default();
    c[i] = c[i].saturating_add(1);
    t.insert(k, encode_value(c))?;
    Ok(())
}

/// Whether a key is well formed (for `smsgate store check`).
pub(crate) fn valid(k: &[u8], v: &[u8]) -> bool {
    k.len() >= 4 && std::str::from_utf8(&k[4..]).is_ok() && v.len() == 24
}

impl SledStore {
    /// The counts of every hour from the one holding `from` to the one holding `to`, per modem,
    /// oldest first. Hours with nothing are left out.
    pub fn hourly(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<HourCount>, StoreError> {
        let start = hour_of(from).to_be_bytes();
        let end = hour_of(to).saturating_add(1).to_be_bytes();
        let mut out = Vec::new();
        for r in self.inner.hourly.range(start..end) {
            let (k, v) = r?;
            if k.len() < 4 {
                continue;
            }
            let mut h = [0u8; 4];
            h.copy_from_slice(&k[..4]);
            let [sent, delivered, failed] = decode_value(&v);
            out.push(HourCount {
                hour: Utc
                    .timestamp_opt(i64::from(u32::from_be_bytes(h)) * 3600, 0)
                    .single()
                    .unwrap_or(from),
                modem: String::from_utf8_lossy(&k[4..]).into_owned(),
                sent,
                delivered,
                failed,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_short_ones_are_zero() {
        assert_eq!(decode_value(&encode_value([1, 2, 3])), [1, 2, 3]);
        assert_eq!(decode_value(&[]), [0, 0, 0]);
        assert_eq!(hour_of(Utc.timestamp_opt(7200 + 59, 0).unwrap()), 2);
        assert!(valid(&key(5, "sim0"), &encode_value([0, 0, 0])));
        assert!(!valid(&[0, 1], &encode_value([0, 0, 0])));
        assert_eq!(slot(Status::Queued), None);
    }

    /// The on-disk layout: hour since the epoch (4, BE) · modem; sent · delivered · failed
    /// (3 × 8, BE), in that order.
    #[test]
    fn the_key_and_value_layouts_are_pinned() {
        assert_eq!(key(0x0102_0304, "sim0"), b"\x01\x02\x03\x04sim0");
        assert_eq!(
            encode_value([1, 2, 3]),
            [[0u8; 7].as_slice(), &[1], &[0; 7], &[2], &[0; 7], &[3]].concat()
        );
        assert_eq!(
            [Status::Sent, Status::Delivered, Status::Failed].map(slot),
            [Some(0), Some(1), Some(2)]
        );
    }
}
