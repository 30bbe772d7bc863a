//! The GSM 7-bit default alphabet, its extension table, the national language shift tables, and
//! septet packing (3GPP TS 23.038 §6.1.2.1 and §6.2.1).

use super::nls::{self, NationalLanguage, UNDEF};

/// The escape septet that selects the (single shift) extension table (TS 23.038 §6.2.1.1).
pub(crate) const ESCAPE: u8 = 0x1B;

/// TS 23.038 §6.2.1: GSM 7 bit default alphabet, indexed by septet.
static DEFAULT: [char; 128] = [
    // 0x00..0x0F
    '@', '£', '$', '¥', 'è', 'é', 'ù', 'ì', 'ò', 'Ç', '\n', 'Ø', 'ø', '\r', 'Å', 'å',
    // 0x10..0x1F (0x1B is the escape to the extension table)
    'Δ', '_', 'Φ', 'Γ', 'Λ', 'Ω', 'Π', 'Ψ', 'Σ', 'Θ', 'Ξ', UNDEF, 'Æ', 'æ', 'ß', 'É',
    // 0x20..0x2F
    ' ', '!', '"', '#', '¤', '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/',
    // 0x30..0x3F
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?',
    // 0x40..0x4F
    '¡', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O',
    // 0x50..0x5F
    'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'Ä', 'Ö', 'Ñ', 'Ü', '§',
    // 0x60..0x6F
    '¿', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o',
    // 0x70..0x7F
    'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 'ä', 'ö', 'ñ', 'ü', 'à',
];

/// TS 23.038 §6.2.1.1: the default extension table, reached through the 0x1B escape.
static DEFAULT_EXTENSION: [char; 128] = {
    let mut t = [UNDEF; 128];
    t[0x0A] = '\u{000C}'; // form feed (page break)
    t[0x14] = '^';
    t[0x28] = '{';
    t[0x29] = '}';
    t[0x2F] = '\\';
    t[0x3C] = '[';
    t[0x3D] = '~';
    t[0x3E] = ']';
    t[0x40] = '|';
    t[0x65] = '€';
    t
};

/// Which GSM 7-bit tables a text uses: the locking shift table (the "base" 128 characters) and the
/// single shift table (reached through the escape). `None` means the default table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Charset {
    /// National locking shift table (UDH IEI 0x25), or the default alphabet.
    pub locking: Option<NationalLanguage>,
    /// National single shift table (UDH IEI 0x24), or the default extension table.
    pub single: Option<NationalLanguage>,
}

impl Charset {
    /// The default alphabet with the default extension table.
    pub const DEFAULT: Charset = Charset {
        locking: None,
        single: None,
    };

    fn base(&self) -> &'static [char; 128] {
        self.locking
            .and_then(nls::locking_table)
            .unwrap_or(&DEFAULT)
    }

    fn extension(&self) -> &'static [char; 128] {
        match self.single {
            Some(lang) => nls::single_shift_table(lang),
            None => &DEFAULT_EXTENSION,
        }
    }

    /// The septets for one character: one from the base table, two (escape + code) from the
    /// extension table, or `None` when the character is in neither.
    pub fn encode_char(&self, c: char) -> Option<Septets> {
        if c == UNDEF {
            return None;
        }
        if let Some(i) = position(self.base(), c) {
            return Some(Septets::One(i));
        }
        position(self.extension(), c).map(Septets::Two)
    }

    /// Encodes a whole text into septets, or `None` if a character does not fit these tables.
    pub fn encode(&self, text: &str) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(text.len());
        for c in text.chars() {
            match self.encode_char(c)? {
                Septets::One(s) => out.push(s),
                Septets::Two(s) => out.extend_from_slice(&[ESCAPE, s]),
            }
        }
        Some(out)
    }

    /// Decodes septets into text. Never fails: TS 23.038 §6.2.1.1 says an escape followed by a code
    /// the extension table does not define shows the base table's character for that code, and a
    /// trailing lone escape (a sender's bug) is shown as a space.
    pub fn decode(&self, septets: &[u8]) -> String {
        let base = self.base();
        let ext = self.extension();
        let mut out = String::with_capacity(septets.len());
        let mut it = septets.iter().map(|s| usize::from(s & 0x7F));
        while let Some(s) = it.next() {
            if s == usize::from(ESCAPE) {
                match it.next() {
                    Some(e) if ext[e] != UNDEF => out.push(ext[e]),
                    Some(e) if base[e] != UNDEF => out.push(base[e]),
                    Some(_) | None => out.push(' '),
                }
            } else if base[s] != UNDEF {
                out.push(base[s]);
            } else {
                out.push(' ');
            }
        }
        out
    }
}

/// One character's septets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Septets {
    /// A character of the base table.
    One(u8),
    /// A character of the extension table: written as the escape followed by this code.
    Two(u8),
}

impl Septets {
    /// How many septets the character costs.
    pub fn septet_count(self) -> usize {
        match self {
            Septets::One(_) => 1,
            Septets::Two(_) => 2,
        }
    }
}

fn position(table: &[char; 128], c: char) -> Option<u8> {
    // The tables are small and hot only in the sense of "once per character of a reminder":
    // a linear scan over 128 chars is a few dozen nanoseconds, cheaper than building a map.
    table
        .iter()
        .position(|&t| t == c)
        .and_then(|i| u8::try_from(i).ok())
}

/// Packs septets into octets, least significant bit first (TS 23.038 §6.1.2.1.1), starting after
/// `fill_bits` zero bits (the fill that aligns text after a user data header, TS 23.040 §9.2.3.24).
pub fn pack(septets: &[u8], fill_bits: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity((septets.len() * 7 + usize::from(fill_bits)).div_ceil(8));
    let mut acc: u32 = 0;
    let mut nbits = u32::from(fill_bits % 8);
    for &s in septets {
        acc |= u32::from(s & 0x7F) << nbits;
        nbits += 7;
        while nbits >= 8 {
            out.push((acc & 0xFF) as u8);
            acc >>= 8;
            nbits -= 8;
        }
    }
    if nbits > 0 {
        out.push((acc & 0xFF) as u8);
    }
    out
}

/// Unpacks `count` septets from `octets`, skipping the first `skip_bits` bits. Returns `None` when
/// the octets hold fewer than `skip_bits + 7 * count` bits.
pub fn unpack(octets: &[u8], count: usize, skip_bits: usize) -> Option<Vec<u8>> {
    let needed_bits = count.checked_mul(7)?.checked_add(skip_bits)?;
    if needed_bits.div_ceil(8) > octets.len() {
        return None;
    }
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let bit = skip_bits + i * 7;
        let byte = bit / 8;
        let shift = bit % 8;
        let lo = u16::from(*octets.get(byte)?);
        let hi = u16::from(octets.get(byte + 1).copied().unwrap_or(0));
        let word = lo | (hi << 8);
        out.push(((word >> shift) & 0x7F) as u8);
    }
    Some(out)
}

/// Number of septets a user data header of `udh_octets` octets (including its length octet)
/// occupies, fill bits included (TS 23.040 §9.2.3.24: the text starts on a septet boundary).
pub fn udh_septets(udh_octets: usize) -> usize {
    (udh_octets * 8).div_ceil(7)
}

/// Fill bits between a user data header of `udh_octets` octets and the first septet.
pub fn fill_bits(udh_octets: usize) -> u8 {
    ((7 - (udh_octets * 8) % 7) % 7) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_table_has_the_known_positions() {
        let c = Charset::DEFAULT;
        assert_eq!(c.encode_char('@'), Some(Septets::One(0x00)));
        assert_eq!(c.encode_char('$'), Some(Septets::One(0x02)));
        assert_eq!(c.encode_char('Δ'), Some(Septets::One(0x10)));
        assert_eq!(c.encode_char('¤'), Some(Septets::One(0x24)));
        assert_eq!(c.encode_char('§'), Some(Septets::One(0x5F)));
        assert_eq!(c.encode_char('à'), Some(Septets::One(0x7F)));
        assert_eq!(c.encode_char('€'), Some(Septets::Two(0x65)));
        assert_eq!(c.encode_char('\u{000C}'), Some(Septets::Two(0x0A)));
        assert_eq!(c.encode_char('`'), None);
        assert_eq!(c.encode_char('ç'), None);
        assert_eq!(c.encode_char('ê'), None);
        assert_eq!(c.encode_char(UNDEF), None);
    }

    #[test]
    fn every_default_character_round_trips() {
        let c = Charset::DEFAULT;
        for (i, &ch) in DEFAULT.iter().enumerate() {
            if ch == UNDEF {
                continue;
            }
            let s = c.encode(&ch.to_string()).unwrap();
            assert_eq!(s, vec![i as u8]);
            assert_eq!(c.decode(&s), ch.to_string());
        }
        for (i, &ch) in DEFAULT_EXTENSION.iter().enumerate() {
            if ch == UNDEF {
                continue;
            }
            let s = c.encode(&ch.to_string()).unwrap();
            assert_eq!(s, vec![ESCAPE, i as u8]);
            assert_eq!(c.decode(&s), ch.to_string());
        }
    }

    #[test]
    fn undefined_escape_falls_back_to_the_base_character() {
        // 0x1B 0x41: no extension character at 0x41, so show 'A' (TS 23.038 §6.2.1.1).
        assert_eq!(Charset::DEFAULT.decode(&[ESCAPE, 0x41]), "A");
        assert_eq!(Charset::DEFAULT.decode(&[0x41, ESCAPE]), "A ");
    }

    #[test]
    fn packs_the_spec_example() {
        // "hellohello" → E8329BFD4697D9EC37 (a widely published SMS-SUBMIT example).
        let s = Charset::DEFAULT.encode("hellohello").unwrap();
        assert_eq!(
            pack(&s, 0),
            vec![0xE8, 0x32, 0x9B, 0xFD, 0x46, 0x97, 0xD9, 0xEC, 0x37]
        );
        assert_eq!(unpack(&pack(&s, 0), s.len(), 0).unwrap(), s);
    }

    #[test]
    fn fill_bits_align_after_a_concatenation_header() {
        // 6-octet UDH = 48 bits → 7 septets (49 bits) → 1 fill bit, 153 septets left.
        assert_eq!(udh_septets(6), 7);
        assert_eq!(fill_bits(6), 1);
        assert_eq!(udh_septets(7), 8);
        assert_eq!(fill_bits(7), 0);
        let s = Charset::DEFAULT.encode("abc").unwrap();
        let packed = pack(&s, 1);
        assert_eq!(unpack(&packed, 3, 1).unwrap(), s);
    }

    #[test]
    fn unpack_rejects_short_input() {
        assert!(unpack(&[0xE8], 2, 0).is_none());
        assert!(unpack(&[], 1, 0).is_none());
        assert_eq!(unpack(&[], 0, 0), Some(vec![]));
    }
}
