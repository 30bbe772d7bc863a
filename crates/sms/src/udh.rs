//! The data coding scheme (TS 23.038 §4) and the user data header (TS 23.040 §9.2.3.24).

use super::error::DecodeError;
use super::nls::NationalLanguage;

/// The character set of the user data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// GSM 7-bit default alphabet (possibly with national language shift tables).
    Gsm7,
    /// UCS-2, carried as UTF-16 (surrogate pairs for characters outside the BMP).
    Ucs2,
    /// 8-bit data.
    EightBit,
}

impl Encoding {
    /// The name used in JSON and the API: `gsm7`, `ucs2` or `8bit`.
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Gsm7 => "gsm7",
            Encoding::Ucs2 => "ucs2",
            Encoding::EightBit => "8bit",
        }
    }
}

/// A decoded TP-DCS octet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataCoding {
    /// The raw octet.
    pub raw: u8,
    /// The alphabet the user data is in.
    pub encoding: Encoding,
    /// Message class 0–3 when the DCS gives one (0 = "flash", shown and not stored).
    pub class: Option<u8>,
    /// The text is compressed (TS 23.042). Rare in practice; the data is kept, not expanded.
    pub compressed: bool,
    /// A message-waiting-indication group that asks the phone to discard the message.
    pub discard: bool,
}

impl DataCoding {
    /// TS 23.038 §4: every coding group. Reserved codings are read as the GSM 7-bit default
    /// alphabet, as the spec asks of a receiver.
    pub fn decode(raw: u8) -> DataCoding {
        let alphabet = |bits: u8| match (bits >> 2) & 0x03 {
            1 => Encoding::EightBit,
            2 => Encoding::Ucs2,
            _ => Encoding::Gsm7, // 0, and 3 (reserved)
        };
        let mut dc = DataCoding {
            raw,
            encoding: Encoding::Gsm7,
            class: None,
            compressed: false,
            discard: false,
        };
        match raw >> 4 {
            // 00xx: general data coding; 01xx: the same, marked for automatic deletion.
            0x0..=0x7 => {
                dc.compressed = raw & 0x20 != 0;
                dc.encoding = alphabet(raw);
                if raw & 0x10 != 0 {
                    dc.class = Some(raw & 0x03);
                }
            }
            // 1000..1011: reserved.
            0x8..=0xB => {}
            // 1100: message waiting indication, discard message.
            0xC => dc.discard = true,
            // 1101: message waiting indication, store message (GSM 7-bit).
            0xD => {}
            // 1110: message waiting indication, store message (UCS-2).
            0xE => dc.encoding = Encoding::Ucs2,
            // 1111: data coding / message class.
            _ => {
                dc.encoding = if raw & 0x04 != 0 {
                    Encoding::EightBit
                } else {
                    Encoding::Gsm7
                };
                dc.class = Some(raw & 0x03);
            }
        }
        dc
    }

    /// The DCS octet this crate sends: general data coding, no class, uncompressed.
    pub fn for_encoding(encoding: Encoding) -> u8 {
        match encoding {
            Encoding::Gsm7 => 0x00,
            Encoding::EightBit => 0x04,
            Encoding::Ucs2 => 0x08,
        }
    }
}

/// Concatenation information of one part (TS 23.040 §9.2.3.24.1 and §9.2.3.24.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Concat {
    /// The reference shared by every part of one message.
    pub reference: u16,
    /// This part's number, from 1.
    pub part: u8,
    /// How many parts the message has.
    pub total: u8,
    /// The header used the 16-bit reference element (IEI 0x08).
    pub sixteen_bit: bool,
}

/// One information element of a user data header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InformationElement {
    /// IEI 0x00 or 0x08: concatenated short message.
    Concat(Concat),
    /// IEI 0x24: national language single shift table.
    SingleShift(NationalLanguage),
    /// IEI 0x25: national language locking shift table.
    LockingShift(NationalLanguage),
    /// Anything else (ports, special SMS indication, …), kept as it came.
    Other {
        /// The IEI.
        iei: u8,
        /// Its data.
        data: Vec<u8>,
    },
}

/// A parsed user data header.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserDataHeader {
    /// The elements in the order they came.
    pub elements: Vec<InformationElement>,
}

impl UserDataHeader {
    /// The concatenation element, if any.
    pub fn concat(&self) -> Option<Concat> {
        self.elements.iter().find_map(|e| match e {
            InformationElement::Concat(c) => Some(*c),
            _ => None,
        })
    }

    /// The national language shift tables the header selects: (locking, single).
    pub fn national_languages(&self) -> (Option<NationalLanguage>, Option<NationalLanguage>) {
        let mut locking = None;
        let mut single = None;
        for e in &self.elements {
            match e {
                InformationElement::LockingShift(l) => locking = Some(*l),
                InformationElement::SingleShift(l) => single = Some(*l),
                _ => {}
            }
        }
        (locking, single)
    }

    /// Serialises the header including its leading UDHL octet.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut body = Vec::new();
        for e in &self.elements {
            match e {
                InformationElement::Concat(c) if c.sixteen_bit => {
                    let [hi, lo] = c.reference.to_be_bytes();
                    body.extend_from_slice(&[0x08, 4, hi, lo, c.total, c.part]);
                }
                InformationElement::Concat(c) => {
                    body.extend_from_slice(&[0x00, 3, c.reference as u8, c.total, c.part]);
                }
                InformationElement::SingleShift(l) => body.extend_from_slice(&[0x24, 1, l.id()]),
                InformationElement::LockingShift(l) => body.extend_from_slice(&[0x25, 1, l.id()]),
                InformationElement::Other { iei, data } => {
                    body.push(*iei);
                    body.push(data.len() as u8);
                    body.extend_from_slice(data);
                }
            }
        }
        let mut out = Vec::with_capacity(body.len() + 1);
        out.push(body.len() as u8);
        out.extend_from_slice(&body);
        out
    }

    /// Parses the header at the start of the user data. `offset` is the UD's position in the
    /// input, for error messages. Returns the header and its total size in octets (UDHL included).
    pub fn parse(ud: &[u8], offset: usize) -> Result<(UserDataHeader, usize), DecodeError> {
        const FIELD: &str = "user data header";
        let udhl = usize::from(*ud.first().ok_or(DecodeError::Truncated {
            field: FIELD,
            offset,
            needed: 1,
            available: 0,
        })?);
        if udhl + 1 > ud.len() {
            return Err(DecodeError::Length {
                field: FIELD,
                offset,
                detail: format!(
                    "UDHL says {udhl} octets, the user data has {} after it",
                    ud.len() - 1
                ),
            });
        }
        let body = &ud[1..=udhl];
        let mut elements = Vec::new();
        let mut i = 0;
        while i < body.len() {
            let at = offset + 1 + i;
            let iei = body[i];
            let len = usize::from(*body.get(i + 1).ok_or_else(|| DecodeError::Length {
                field: FIELD,
                offset: at,
                detail: format!("element {iei:#04x} has no length octet"),
            })?);
            let data = body
                .get(i + 2..i + 2 + len)
                .ok_or_else(|| DecodeError::Length {
                    field: FIELD,
                    offset: at,
                    detail: format!("element {iei:#04x} of {len} octets overruns the header"),
                })?;
            elements.push(parse_element(iei, data, at)?);
            i += 2 + len;
        }
        Ok((UserDataHeader { elements }, udhl + 1))
    }
}

fn parse_element(iei: u8, data: &[u8], at: usize) -> Result<InformationElement, DecodeError> {
    let bad_len = |expected: usize| DecodeError::Length {
        field: "user data header",
        offset: at,
        detail: format!(
            "element {iei:#04x} has {} octets, expected {expected}",
            data.len()
        ),
    };
    let other = || InformationElement::Other {
        iei,
        data: data.to_vec(),
    };
    Ok(match iei {
        0x00 | 0x08 => {
            let (reference, total, part) = match (iei, data) {
                (0x00, &[r, t, p]) => (u16::from(r), t, p),
                (0x08, &[hi, lo, t, p]) => (u16::from_be_bytes([hi, lo]), t, p),
                (0x00, _) => return Err(bad_len(3)),
                _ => return Err(bad_len(4)),
            };
            // TS 23.040 §9.2.3.24.1: a total of 0, or a part of 0 or beyond the total, means the
            // receiver ignores the whole element (the part is shown as a message of its own).
            if total == 0 || part == 0 || part > total {
                other()
            } else {
                InformationElement::Concat(Concat {
                    reference,
                    part,
                    total,
                    sixteen_bit: iei == 0x08,
                })
            }
        }
        0x24 | 0x25 => {
            let &[id] = data else { return Err(bad_len(1)) };
            match NationalLanguage::from_id(id) {
                Some(l) if iei == 0x24 => InformationElement::SingleShift(l),
                Some(l) => InformationElement::LockingShift(l),
                // A language this crate has no table for: the default tables are used, which is
                // what the spec asks of a receiver that does not support the language.
                None => other(),
            }
        }
        _ => other(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dcs_groups() {
        assert_eq!(DataCoding::decode(0x00).encoding, Encoding::Gsm7);
        assert_eq!(DataCoding::decode(0x08).encoding, Encoding::Ucs2);
        assert_eq!(DataCoding::decode(0x04).encoding, Encoding::EightBit);
        assert_eq!(DataCoding::decode(0x0C).encoding, Encoding::Gsm7); // reserved alphabet
        let flash = DataCoding::decode(0x10);
        assert_eq!((flash.encoding, flash.class), (Encoding::Gsm7, Some(0)));
        assert_eq!(DataCoding::decode(0x18).class, Some(0));
        assert!(DataCoding::decode(0x20).compressed);
        assert_eq!(DataCoding::decode(0x48).encoding, Encoding::Ucs2);
        assert_eq!(DataCoding::decode(0x90).encoding, Encoding::Gsm7);
        assert!(DataCoding::decode(0xC0).discard);
        assert_eq!(DataCoding::decode(0xE0).encoding, Encoding::Ucs2);
        let f = DataCoding::decode(0xF6);
        assert_eq!((f.encoding, f.class), (Encoding::EightBit, Some(2)));
        assert_eq!(DataCoding::decode(0xF1).encoding, Encoding::Gsm7);
    }

    #[test]
    fn header_round_trip() {
        let h = UserDataHeader {
            elements: vec![
                InformationElement::Concat(Concat {
                    reference: 0x42,
                    part: 2,
                    total: 3,
                    sixteen_bit: false,
                }),
                InformationElement::SingleShift(NationalLanguage::Turkish),
            ],
        };
        let bytes = h.to_bytes();
        assert_eq!(bytes, vec![8, 0x00, 3, 0x42, 3, 2, 0x24, 1, 1]);
        let (parsed, len) = UserDataHeader::parse(&bytes, 0).unwrap();
        assert_eq!((parsed, len), (h, 9));
    }

    #[test]
    fn sixteen_bit_reference() {
        let (h, len) = UserDataHeader::parse(&[6, 0x08, 4, 0x12, 0x34, 2, 1], 0).unwrap();
        assert_eq!(len, 7);
        let c = h.concat().unwrap();
        assert_eq!(
            (c.reference, c.part, c.total, c.sixteen_bit),
            (0x1234, 1, 2, true)
        );
    }

    #[test]
    fn invalid_concat_numbers_are_ignored() {
        let (h, _) = UserDataHeader::parse(&[5, 0x00, 3, 1, 2, 3], 0).unwrap();
        assert_eq!(h.concat(), None);
        let (h, _) = UserDataHeader::parse(&[5, 0x00, 3, 1, 0, 0], 0).unwrap();
        assert_eq!(h.concat(), None);
    }

    #[test]
    fn lying_lengths_are_errors() {
        assert!(UserDataHeader::parse(&[9, 0x00, 3, 1, 2, 1], 0).is_err());
        assert!(UserDataHeader::parse(&[3, 0x00, 3, 1], 0).is_err());
        assert!(UserDataHeader::parse(&[1, 0x00], 0).is_err());
        assert!(UserDataHeader::parse(&[4, 0x00, 2, 1, 2], 0).is_err());
        assert!(UserDataHeader::parse(&[], 0).is_err());
    }
}
