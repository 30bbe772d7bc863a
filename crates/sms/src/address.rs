//! Address fields: TP-OA / TP-DA / TP-RA (TS 23.040 §9.1.2.5) and the SMSC address that
//! precedes the TPDU in PDU mode (TS 24.011 §8.2.5.1, TS 27.005 §3.1 `<pdu>`).

use std::fmt;

use super::error::{DecodeError, EncodeError};
use super::gsm7::{self, Charset};
use super::reader::Reader;

/// Type of number, bits 6..4 of the type-of-address octet (TS 23.040 §9.1.2.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TypeOfNumber {
    /// 000: unknown (what phones use for national numbers typed without a `+`).
    Unknown,
    /// 001: international: the digits start with the country code.
    International,
    /// 010: national number.
    National,
    /// 011: network specific (short codes of some operators).
    NetworkSpecific,
    /// 100: subscriber number.
    Subscriber,
    /// 101: alphanumeric, GSM 7-bit packed (a sender name such as "MyBank").
    Alphanumeric,
    /// 110: abbreviated number.
    Abbreviated,
    /// 111: reserved for extension.
    Reserved,
}

impl TypeOfNumber {
    fn from_bits(b: u8) -> Self {
        match (b >> 4) & 0x07 {
            0 => TypeOfNumber::Unknown,
            1 => TypeOfNumber::International,
            2 => TypeOfNumber::National,
            3 => TypeOfNumber::NetworkSpecific,
            4 => TypeOfNumber::Subscriber,
            5 => TypeOfNumber::Alphanumeric,
            6 => TypeOfNumber::Abbreviated,
            _ => TypeOfNumber::Reserved,
        }
    }
}

/// A decoded or to-be-encoded address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Address {
    /// Type of number.
    pub ton: TypeOfNumber,
    /// Numbering plan identification, bits 3..0 of the type-of-address octet (1 = E.164).
    pub npi: u8,
    /// Digits (with `*`, `#`, `a`, `b`, `c` where the semi-octets say so) or, for
    /// alphanumeric addresses, the decoded text. No `+`: see [`Address`]'s `Display`.
    pub value: String,
}

impl fmt::Display for Address {
    /// E.164 with `+` when international, the bare digits otherwise, the text when alphanumeric.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ton == TypeOfNumber::International {
            write!(f, "+{}", self.value)
        } else {
            f.write_str(&self.value)
        }
    }
}

/// Longest number a TP address holds: 10 octets of semi-octets (TS 23.040 §9.1.2.5).
const MAX_DIGITS: usize = 20;

impl Address {
    /// Parses a phone number as a user writes it: `+` and digits is international, digits alone
    /// are national/unknown. Spaces, dashes, dots and parentheses are ignored.
    pub fn parse_number(field: &'static str, s: &str) -> Result<Address, EncodeError> {
        let err = |detail| EncodeError::Number {
            field,
            value: s.to_string(),
            detail,
        };
        let trimmed = s.trim();
        let (international, rest) = match trimmed.strip_prefix('+') {
            Some(r) => (true, r),
            None => (false, trimmed),
        };
        let mut digits = String::with_capacity(rest.len());
        for c in rest.chars() {
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '-' | '.' | '(' | ')' => {}
                _ => return Err(err("only digits may follow an optional leading '+'")),
            }
        }
        if digits.is_empty() {
            return Err(err("no digits"));
        }
        if digits.len() > MAX_DIGITS {
            return Err(err("more than 20 digits"));
        }
        if international && digits.len() > 15 {
            return Err(err("an international (E.164) number has at most 15 digits"));
        }
        Ok(Address {
            ton: if international {
                TypeOfNumber::International
            } else {
                TypeOfNumber::Unknown
            },
            npi: 1,
            value: digits,
        })
    }

    fn toa(&self) -> u8 {
        let ton = match self.ton {
            TypeOfNumber::Unknown => 0,
            TypeOfNumber::International => 1,
            TypeOfNumber::National => 2,
            TypeOfNumber::NetworkSpecific => 3,
            TypeOfNumber::Subscriber => 4,
            TypeOfNumber::Alphanumeric => 5,
            TypeOfNumber::Abbreviated => 6,
            TypeOfNumber::Reserved => 7,
        };
        0x80 | (ton << 4) | (self.npi & 0x0F)
    }

    /// Writes a TP-DA style address: digit count, type of address, swapped semi-octets.
    pub(crate) fn write_tp(&self, out: &mut Vec<u8>) {
        let semi = semi_octets(&self.value);
        out.push(self.value.len() as u8);
        out.push(self.toa());
        out.extend_from_slice(&semi);
    }

    /// Writes the SMSC field: octet count (type octet included), type of address, semi-octets.
    pub(crate) fn write_smsc(&self, out: &mut Vec<u8>) {
        let semi = semi_octets(&self.value);
        out.push(semi.len() as u8 + 1);
        out.push(self.toa());
        out.extend_from_slice(&semi);
    }

    /// Reads a TP-OA / TP-DA / TP-RA field (length in semi-octets).
    pub(crate) fn read_tp(r: &mut Reader<'_>, field: &'static str) -> Result<Address, DecodeError> {
        let at = r.offset();
        let len = usize::from(r.u8(field)?);
        if len > MAX_DIGITS {
            return Err(DecodeError::Length {
                field,
                offset: at,
                detail: format!("{len} semi-octets, the most an address holds is {MAX_DIGITS}"),
            });
        }
        let toa = r.u8(field)?;
        let octets = r.take(len.div_ceil(2), field)?;
        let ton = TypeOfNumber::from_bits(toa);
        let value = if ton == TypeOfNumber::Alphanumeric {
            // TS 23.040 §9.1.2.5: the length counts the semi-octets the packed septets use.
            let count = len * 4 / 7;
            let septets = gsm7::unpack(octets, count, 0).ok_or_else(|| DecodeError::Length {
                field,
                offset: at,
                detail: "alphanumeric address shorter than its length".into(),
            })?;
            Charset::DEFAULT.decode(&septets)
        } else {
            read_semi_octets(octets, len, field, at + 2)?
        };
        Ok(Address {
            ton,
            npi: toa & 0x0F,
            value,
        })
    }

    /// Reads the SMSC field that starts a PDU from the modem. `None` when its length is 0
    /// ("the SIM's SMSC").
    pub(crate) fn read_smsc(r: &mut Reader<'_>) -> Result<Option<Address>, DecodeError> {
        const FIELD: &str = "SMSC address";
        let at = r.offset();
        let len = usize::from(r.u8(FIELD)?);
        if len == 0 {
            return Ok(None);
        }
        if len > 1 + MAX_DIGITS / 2 {
            return Err(DecodeError::Length {
                field: FIELD,
                offset: at,
                detail: format!(
                    "{len} octets, the most an SMSC address holds is {} (did you mean --no-smsc?)",
                    1 + MAX_DIGITS / 2
                ),
            });
        }
        let toa = r.u8(FIELD)?;
        let octets = r.take(len - 1, FIELD)?;
        let ton = TypeOfNumber::from_bits(toa);
        // The count of digits is not given: a trailing F fills an odd number.
        let digits = read_semi_octets(octets, octets.len() * 2, FIELD, at + 2)?;
        Ok(Some(Address {
            ton,
            npi: toa & 0x0F,
            value: digits,
        }))
    }
}

fn semi_octets(digits: &str) -> Vec<u8> {
    let code = |c: u8| match c {
        b'0'..=b'9' => c - b'0',
        b'*' => 0xA,
        b'#' => 0xB,
        b'a' => 0xC,
        b'b' => 0xD,
        b'c' => 0xE,
        _ => 0xF,
    };
    digits
        .as_bytes()
        .chunks(2)
        .map(|pair| {
            let lo = code(pair[0]);
            let hi = pair.get(1).map_or(0xF, |&c| code(c));
            hi << 4 | lo
        })
        .collect()
}

/// TS 23.040 §9.1.2.3: semi-octets, low nibble first; 0xF is the filler of an odd count.
fn read_semi_octets(
    octets: &[u8],
    max_digits: usize,
    field: &'static str,
    offset: usize,
) -> Result<String, DecodeError> {
    let mut s = String::with_capacity(max_digits);
    for (i, &b) in octets.iter().enumerate() {
        for (j, n) in [b & 0x0F, b >> 4].into_iter().enumerate() {
            if s.len() == max_digits {
                break;
            }
            let c = match n {
                0..=9 => char::from(b'0' + n),
                0xA => '*',
                0xB => '#',
                0xC => 'a',
                0xD => 'b',
                0xE => 'c',
                _ => {
                    // Filler: only allowed as the last semi-octet.
                    if i + 1 == octets.len() && j == 1 {
                        break;
                    }
                    return Err(DecodeError::Invalid {
                        field,
                        offset: offset + i,
                        detail: "filler semi-octet F inside the number".into(),
                    });
                }
            };
            s.push(c);
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip_tp(a: &Address) -> Address {
        let mut out = Vec::new();
        a.write_tp(&mut out);
        Address::read_tp(&mut Reader::new(&out, 0), "address").unwrap()
    }

    #[test]
    fn international_number() {
        let a = Address::parse_number("to", "+46 708-251358").unwrap();
        assert_eq!(a.to_string(), "+46708251358");
        let mut out = Vec::new();
        a.write_tp(&mut out);
        assert_eq!(out, vec![0x0B, 0x91, 0x64, 0x07, 0x28, 0x15, 0x53, 0xF8]);
        assert_eq!(roundtrip_tp(&a), a);
    }

    #[test]
    fn national_number_uses_unknown_type() {
        let a = Address::parse_number("to", "0612345678").unwrap();
        let mut out = Vec::new();
        a.write_tp(&mut out);
        assert_eq!(out[1], 0x81);
        assert_eq!(roundtrip_tp(&a).to_string(), "0612345678");
    }

    #[test]
    fn rejects_bad_numbers() {
        assert!(Address::parse_number("to", "").is_err());
        assert!(Address::parse_number("to", "+").is_err());
        assert!(Address::parse_number("to", "+1555abc").is_err());
        assert!(Address::parse_number("to", "+1234567890123456").is_err());
        assert!(Address::parse_number("to", "123456789012345678901").is_err());
    }

    #[test]
    fn alphanumeric_sender() {
        // "MyBank": TON 5, 6 septets = 42 bits = 11 semi-octets.
        let septets = Charset::DEFAULT.encode("MyBank").unwrap();
        let packed = gsm7::pack(&septets, 0);
        let mut pdu = vec![11, 0xD0];
        pdu.extend_from_slice(&packed);
        let a = Address::read_tp(&mut Reader::new(&pdu, 0), "TP-OA").unwrap();
        assert_eq!(a.ton, TypeOfNumber::Alphanumeric);
        assert_eq!(a.to_string(), "MyBank");
    }

    #[test]
    fn smsc_field() {
        let a = Address::parse_number("smsc", "+31624000000").unwrap();
        let mut out = Vec::new();
        a.write_smsc(&mut out);
        assert_eq!(out, vec![0x07, 0x91, 0x13, 0x26, 0x04, 0x00, 0x00, 0xF0]);
        let b = Address::read_smsc(&mut Reader::new(&out, 0))
            .unwrap()
            .unwrap();
        assert_eq!(b.to_string(), "+31624000000");
        assert_eq!(Address::read_smsc(&mut Reader::new(&[0], 0)).unwrap(), None);
        assert!(Address::read_smsc(&mut Reader::new(&[0x40, 0x91], 0)).is_err());
    }

    #[test]
    fn filler_inside_number_is_an_error() {
        let pdu = [0x04, 0x91, 0xF1, 0x21];
        assert!(matches!(
            Address::read_tp(&mut Reader::new(&pdu, 0), "TP-OA"),
            Err(DecodeError::Invalid { .. })
        ));
    }
}
