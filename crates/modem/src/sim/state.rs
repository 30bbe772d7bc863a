//! The simulated modem's state: volatile settings (lost on reset), the message stores (kept on
//! the SIM), and the assembly of multipart messages on the "network" side.

use std::collections::{BTreeMap, HashMap, VecDeque};

use crate::sms::{Body, join_text, to_hex};

/// `<stat>` in PDU mode (TS 27.005 §3.1).
pub(crate) const REC_UNREAD: u8 = 0;
/// Received and read.
pub(crate) const REC_READ: u8 = 1;
/// Stored, not sent.
pub(crate) const STO_UNSENT: u8 = 2;
/// Stored and sent.
pub(crate) const STO_SENT: u8 = 3;
/// `AT+CMGL=4`: all.
pub(crate) const ALL: u8 = 4;

/// One stored message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Slot {
    /// `<stat>`.
    pub(crate) stat: u8,
    /// The PDU with its SMSC field.
    pub(crate) pdu: Vec<u8>,
    /// An answer to `AT+CMGR` replayed byte for byte instead of one made from `pdu` (a real
    /// device's answer, with its header, padding and length as it printed them).
    pub(crate) verbatim: Option<String>,
}

impl Slot {
    /// `<length>`: TPDU octets, without the SMSC field (TS 27.005 §3.1).
    pub(crate) fn tpdu_len(&self) -> usize {
        tpdu_len(&self.pdu)
    }
}

/// The TPDU length of a PDU that starts with its SMSC field.
pub(crate) fn tpdu_len(pdu: &[u8]) -> usize {
    let smsc = pdu.first().map_or(0, |&l| usize::from(l) + 1);
    pdu.len().saturating_sub(smsc)
}

/// A message store ("SM", "ME" or "SR") with fixed capacity and indexes from `first_index`.
#[derive(Debug, Clone)]
pub(crate) struct Store {
    capacity: usize,
    first_index: u32,
    slots: BTreeMap<u32, Slot>,
}

impl Store {
    fn new(capacity: usize, first_index: u32) -> Self {
        Store {
            capacity,
            first_index,
            slots: BTreeMap::new(),
        }
    }

    /// Slots in use.
    pub(crate) fn used(&self) -> usize {
        self.slots.len()
    }

    /// Slots in all.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Whether `index` names a slot of this store (used or not).
    pub(crate) fn in_range(&self, index: u32) -> bool {
        index >= self.first_index && u64::from(index - self.first_index) < self.capacity as u64
    }

    /// Stores a message in the lowest free slot; `None` when full.
    pub(crate) fn insert(&mut self, stat: u8, pdu: Vec<u8>) -> Option<u32> {
        self.insert_slot(Slot {
            stat,
            pdu,
            verbatim: None,
        })
    }

    /// Stores a slot in the lowest free place; `None` when full.
    pub(crate) fn insert_slot(&mut self, slot: Slot) -> Option<u32> {
        let index = (0..self.capacity)
            .filter_map(|i| u32::try_from(i).ok())
            .map(|i| self.first_index.saturating_add(i))
            .find(|i| !self.slots.contains_key(i))?;
        self.slots.insert(index, slot);
        Some(index)
    }

    /// The message at `index`.
    pub(crate) fn get_mut(&mut self, index: u32) -> Option<&mut Slot> {
        self.slots.get_mut(&index)
    }

    /// Deletes per `AT+CMGD=<index>,<flag>` (TS 27.005 §3.5.4): 0 that index, 1 all read,
    /// 2 read and sent, 3 read, sent and unsent, 4 all.
    pub(crate) fn delete(&mut self, index: u32, flag: u32) {
        match flag {
            0 => {
                self.slots.remove(&index);
            }
            1 => self.slots.retain(|_, s| s.stat != REC_READ),
            2 => self
                .slots
                .retain(|_, s| s.stat != REC_READ && s.stat != STO_SENT),
            3 => self.slots.retain(|_, s| s.stat == REC_UNREAD),
            _ => self.slots.clear(),
        }
    }

    /// The slots whose stat matches (4 = all), by index.
    pub(crate) fn list_mut(&mut self, stat: u8) -> impl Iterator<Item = (&u32, &mut Slot)> {
        self.slots
            .iter_mut()
            .filter(move |(_, s)| stat == ALL || s.stat == stat)
    }

    /// (index, PDU hex), by index.
    pub(crate) fn hex_list(&self) -> Vec<(u32, String)> {
        self.slots
            .iter()
            .map(|(i, s)| (*i, to_hex(&s.pdu)))
            .collect()
    }
}

/// The names of the message stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mem {
    /// The SIM.
    Sm,
    /// The modem's own memory.
    Me,
    /// Status reports.
    Sr,
}

impl Mem {
    /// Parses `"SM"`, `"ME"`, `"SR"` (case-insensitive).
    pub(crate) fn parse(s: &str) -> Option<Mem> {
        match s.to_ascii_uppercase().as_str() {
            "SM" => Some(Mem::Sm),
            "ME" => Some(Mem::Me),
            "SR" => Some(Mem::Sr),
            _ => None,
        }
    }

    /// `SM`, `ME`, `SR`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Mem::Sm => "SM",
            Mem::Me => "ME",
            Mem::Sr => "SR",
        }
    }
}

/// All message stores; they survive a reset and a replug, like a SIM does.
#[derive(Debug, Clone)]
pub(crate) struct Stores {
    /// The SIM store.
    pub(crate) sm: Store,
    /// The modem's own store.
    pub(crate) me: Store,
    /// The status report store.
    pub(crate) sr: Store,
    /// The next TP-MR the modem gives a sent message (TS 23.040 §9.2.3.6; wraps at 256).
    pub(crate) next_mr: u8,
    /// The SMSC stored on the SIM (`AT+CSCA`).
    pub(crate) smsc: String,
}

impl Stores {
    /// Empty stores of `capacity` slots each.
    pub(crate) fn new(capacity: usize, first_index: u32) -> Self {
        Stores {
            sm: Store::new(capacity, first_index),
            me: Store::new(capacity, first_index),
            sr: Store::new(capacity, first_index),
            next_mr: 0,
            smsc: String::new(),
        }
    }

    /// The store named `mem`.
    pub(crate) fn get_mut(&mut self, mem: Mem) -> &mut Store {
        match mem {
            Mem::Sm => &mut self.sm,
            Mem::Me => &mut self.me,
            Mem::Sr => &mut self.sr,
        }
    }
}

/// The SIM's lock state (TS 27.007 §8.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SimLock {
    /// `+CPIN: READY`.
    Ready,
    /// `+CPIN: SIM PIN`, with the tries left.
    Pin {
        /// Wrong PINs still allowed before the PUK is needed.
        tries: u8,
    },
    /// `+CPIN: SIM PUK`.
    Puk,
}

/// `AT+CNMI=<mode>,<mt>,<bm>,<ds>,<bfr>` (TS 27.005 §3.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Cnmi {
    pub(crate) mode: u8,
    pub(crate) mt: u8,
    pub(crate) bm: u8,
    pub(crate) ds: u8,
    pub(crate) bfr: u8,
}

/// Settings that a reset (`ATZ`, `AT&F`, `AT+CFUN=1,1`, replug) puts back to their defaults.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) echo: bool,
    pub(crate) cmee: u8,
    pub(crate) cnmi: Cnmi,
    /// `AT+CPMS`: read/delete, write/send, receive.
    pub(crate) mem: [Mem; 3],
    pub(crate) csms: u8,
    pub(crate) cmgf: u8,
    pub(crate) creg: u8,
    /// `AT+CGREG`: packet-domain registration URCs (TS 27.007 §10.1.20).
    pub(crate) cgreg: u8,
    /// `AT+CSCS`: the TE character set (TS 27.007 §5.5); PDU mode does not use it.
    pub(crate) cscs: &'static str,
    pub(crate) cmms: u8,
}

impl Settings {
    /// Power-on defaults (TS 27.005 defaults: `+CNMI: 0,0,0,0,0`, `+CSMS: 0`, PDU mode).
    pub(crate) fn defaults(echo: bool) -> Self {
        Settings {
            echo,
            cmee: 0,
            cnmi: Cnmi::default(),
            mem: [Mem::Sm; 3],
            csms: 0,
            cmgf: 0,
            creg: 0,
            cgreg: 0,
            cscs: "GSM",
            cmms: 0,
        }
    }
}

/// One accepted SMS-SUBMIT part waiting for its siblings.
#[derive(Debug, Clone)]
pub(crate) struct AcceptedPart {
    pub(crate) body: Body,
    pub(crate) mr: u8,
}

/// A complete message: all its parts arrived.
#[derive(Debug, Clone)]
pub(crate) struct Assembled {
    pub(crate) to: String,
    pub(crate) text: String,
    pub(crate) encoding: &'static str,
    pub(crate) parts: usize,
    pub(crate) message_references: Vec<u8>,
}

/// How many incomplete multipart messages the network keeps (the oldest are dropped).
const MAX_INCOMPLETE: usize = 256;

/// Joins the parts of concatenated messages, keyed by destination and reference (TS 23.040
/// §9.2.3.24.1).
#[derive(Debug, Default)]
pub(crate) struct Assembler {
    incomplete: HashMap<(String, u16, u8), BTreeMap<u8, AcceptedPart>>,
    order: VecDeque<(String, u16, u8)>,
}

impl Assembler {
    /// Adds a part; returns the message when it is complete. `concat`: (reference, part, total).
    pub(crate) fn add(
        &mut self,
        to: String,
        concat: Option<(u16, u8, u8)>,
        part: AcceptedPart,
    ) -> Option<Assembled> {
        let (reference, number, total) = match concat {
            Some(c) if c.2 > 1 => c,
            _ => return Some(finish(to, vec![part])),
        };
        let key = (to, reference, total);
        if !self.incomplete.contains_key(&key) {
            if self.order.len() >= MAX_INCOMPLETE
                && let Some(oldest) = self.order.pop_front()
            {
                self.incomplete.remove(&oldest);
            }
            self.order.push_back(key.clone());
        }
        let parts = self.incomplete.entry(key.clone()).or_default();
        parts.insert(number, part);
        if parts.len() < usize::from(total) {
            return None;
        }
        let parts = self.incomplete.remove(&key)?;
        self.order.retain(|k| k != &key);
        Some(finish(key.0, parts.into_values().collect()))
    }
}

fn finish(to: String, parts: Vec<AcceptedPart>) -> Assembled {
    let encoding = parts.first().map_or("gsm7", |p| p.body.encoding().as_str());
    Assembled {
        to,
        text: join_text(parts.iter().map(|p| &p.body)),
        encoding,
        parts: parts.len(),
        message_references: parts.iter().map(|p| p.mr).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_allocates_lowest_free_index_and_honours_capacity() {
        let mut s = Store::new(2, 0);
        assert_eq!(s.insert(REC_UNREAD, vec![0, 1]), Some(0));
        assert_eq!(s.insert(REC_UNREAD, vec![0, 2]), Some(1));
        assert_eq!(s.insert(REC_UNREAD, vec![0, 3]), None);
        s.delete(0, 0);
        assert_eq!(s.insert(REC_READ, vec![0, 4]), Some(0));
        assert!(s.in_range(1) && !s.in_range(2));
        s.delete(0, 1);
        assert_eq!(s.used(), 1);
        s.delete(0, 4);
        assert_eq!(s.used(), 0);
    }

    #[test]
    fn assembler_waits_for_all_parts() {
        let mut a = Assembler::default();
        let part = |s: &str, mr| AcceptedPart {
            body: Body::Ucs2(s.encode_utf16().collect()),
            mr,
        };
        assert!(
            a.add("+1".into(), Some((7, 2, 2)), part("world", 5))
                .is_none()
        );
        let m = a
            .add("+1".into(), Some((7, 1, 2)), part("hello ", 4))
            .unwrap();
        assert_eq!(m.text, "hello world");
        assert_eq!(m.message_references, vec![4, 5]);
        assert_eq!(m.encoding, "ucs2");
        assert_eq!(tpdu_len(&[0x07, 1, 2, 3, 4, 5, 6, 7, 0xAA, 0xBB]), 2);
    }
}
