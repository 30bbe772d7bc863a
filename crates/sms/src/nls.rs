//! National language shift tables (3GPP TS 23.038 §6.2.1.2.4, Annex A.2 and A.3).
//!
//! A GSM 7-bit message may replace the default alphabet with a national *locking shift* table
//! (UDH IEI 0x25) and/or replace the default extension table with a national *single shift* table
//! (UDH IEI 0x24, reached through the 0x1B escape). This module holds the tables for the three
//! languages that share the Latin script with the default alphabet: Turkish, Spanish and
//! Portuguese.
//!
//! The tables were transcribed from Android's `GsmAlphabet.java` (`sLanguageTables` and
//! `sLanguageShiftTables`, which follow TS 23.038 V9.1.1) and cross-checked against Mozilla's
//! `ril_consts.js` and CyberChef's `Gsm7.mjs` (TS 23.038 V16.0.0). Conventions:
//!
//! * the escape position 0x1B holds `UNDEF` in every table;
//! * positions that have no character hold `UNDEF`;
//! * in single shift tables 0x0A is FORM FEED (the spec's "page break") and 0x0D (reserved by the
//!   spec for the CR2 control character) is `UNDEF`, as in the default extension table.

/// Marks a table position that has no character (and the 0x1B escape position).
pub(crate) const UNDEF: char = '\u{FFFF}';

/// A national language that has GSM 7-bit shift tables in this crate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NationalLanguage {
    /// Turkish (language id 1): locking shift table A.3.1, single shift table A.2.1.
    Turkish,
    /// Spanish (language id 2): single shift table A.2.2 only (A.3.2 is void).
    Spanish,
    /// Portuguese (language id 3): locking shift table A.3.3, single shift table A.2.3.
    Portuguese,
}

impl NationalLanguage {
    /// All languages, in id order.
    pub const ALL: [NationalLanguage; 3] = [
        NationalLanguage::Turkish,
        NationalLanguage::Spanish,
        NationalLanguage::Portuguese,
    ];

    /// The language identifier used in the UDH national language IEs (IEI 0x24 / 0x25).
    pub const fn id(self) -> u8 {
        match self {
            NationalLanguage::Turkish => 1,
            NationalLanguage::Spanish => 2,
            NationalLanguage::Portuguese => 3,
        }
    }

    /// Inverse of `id`; None for any other identifier.
    pub const fn from_id(id: u8) -> Option<Self> {
        match id {
            1 => Some(NationalLanguage::Turkish),
            2 => Some(NationalLanguage::Spanish),
            3 => Some(NationalLanguage::Portuguese),
            _ => None,
        }
    }
}

/// Locking shift table for `lang`: 128 characters indexed by septet, or None when the language
/// has no locking shift table (Spanish). Undefined positions and 0x1B hold `UNDEF`.
pub(crate) fn locking_table(lang: NationalLanguage) -> Option<&'static [char; 128]> {
    match lang {
        NationalLanguage::Turkish => Some(&TURKISH_LOCKING),
        // TS 23.038 A.3.2 is void: Spanish uses the default alphabet as its locking table.
        NationalLanguage::Spanish => None,
        NationalLanguage::Portuguese => Some(&PORTUGUESE_LOCKING),
    }
}

/// Single shift table for `lang`: 128 characters indexed by the septet that follows the 0x1B escape.
/// Undefined positions and 0x1B hold `UNDEF`.
pub(crate) fn single_shift_table(lang: NationalLanguage) -> &'static [char; 128] {
    match lang {
        NationalLanguage::Turkish => &TURKISH_SINGLE_SHIFT,
        NationalLanguage::Spanish => &SPANISH_SINGLE_SHIFT,
        NationalLanguage::Portuguese => &PORTUGUESE_SINGLE_SHIFT,
    }
}

// Tables: sixteen septets per `// 0xN0..0xNF` comment, eight septets per
// line; the trailing comment on each line shows the glyphs (SP space, LF line feed, CR carriage
// return, FF form feed, ESC the 0x1B escape, `-` no character).

/// TS 23.038 Annex A.3.1: Turkish National Language Locking Shift Table.
#[rustfmt::skip]
static TURKISH_LOCKING: [char; 128] = [
    // 0x00..0x0F
    '@', '\u{00A3}', '$', '\u{00A5}', '\u{20AC}', '\u{00E9}', '\u{00F9}', '\u{0131}', // @ £ $ ¥ € é ù ı
    '\u{00F2}', '\u{00C7}', '\u{000A}', '\u{011E}', '\u{011F}', '\u{000D}', '\u{00C5}', '\u{00E5}', // ò Ç LF Ğ ğ CR Å å
    // 0x10..0x1F
    '\u{0394}', '_', '\u{03A6}', '\u{0393}', '\u{039B}', '\u{03A9}', '\u{03A0}', '\u{03A8}', // Δ _ Φ Γ Λ Ω Π Ψ
    '\u{03A3}', '\u{0398}', '\u{039E}', UNDEF, '\u{015E}', '\u{015F}', '\u{00DF}', '\u{00C9}', // Σ Θ Ξ ESC Ş ş ß É
    // 0x20..0x2F
    ' ', '!', '"', '#', '\u{00A4}', '%', '&', '\'', // SP ! " # ¤ % & '
    '(', ')', '*', '+', ',', '-', '.', '/', // ( ) * + , - . /
    // 0x30..0x3F
    '0', '1', '2', '3', '4', '5', '6', '7', // 0 1 2 3 4 5 6 7
    '8', '9', ':', ';', '<', '=', '>', '?', // 8 9 : ; < = > ?
    // 0x40..0x4F
    '\u{0130}', 'A', 'B', 'C', 'D', 'E', 'F', 'G', // İ A B C D E F G
    'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O', // H I J K L M N O
    // 0x50..0x5F
    'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', // P Q R S T U V W
    'X', 'Y', 'Z', '\u{00C4}', '\u{00D6}', '\u{00D1}', '\u{00DC}', '\u{00A7}', // X Y Z Ä Ö Ñ Ü §
    // 0x60..0x6F
    '\u{00E7}', 'a', 'b', 'c', 'd', 'e', 'f', 'g', // ç a b c d e f g
    'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', // h i j k l m n o
    // 0x70..0x7F
    'p', 'q', 'r', 's', 't', 'u', 'v', 'w', // p q r s t u v w
    'x', 'y', 'z', '\u{00E4}', '\u{00F6}', '\u{00F1}', '\u{00FC}', '\u{00E0}', // x y z ä ö ñ ü à
];

/// TS 23.038 Annex A.3.3: Portuguese National Language Locking Shift Table.
#[rustfmt::skip]
static PORTUGUESE_LOCKING: [char; 128] = [
    // 0x00..0x0F
    '@', '\u{00A3}', '$', '\u{00A5}', '\u{00EA}', '\u{00E9}', '\u{00FA}', '\u{00ED}', // @ £ $ ¥ ê é ú í
    '\u{00F3}', '\u{00E7}', '\u{000A}', '\u{00D4}', '\u{00F4}', '\u{000D}', '\u{00C1}', '\u{00E1}', // ó ç LF Ô ô CR Á á
    // 0x10..0x1F
    '\u{0394}', '_', '\u{00AA}', '\u{00C7}', '\u{00C0}', '\u{221E}', '^', '\\', // Δ _ ª Ç À ∞ ^ \
    '\u{20AC}', '\u{00D3}', '|', UNDEF, '\u{00C2}', '\u{00E2}', '\u{00CA}', '\u{00C9}', // € Ó | ESC Â â Ê É
    // 0x20..0x2F
    ' ', '!', '"', '#', '\u{00BA}', '%', '&', '\'', // SP ! " # º % & '
    '(', ')', '*', '+', ',', '-', '.', '/', // ( ) * + , - . /
    // 0x30..0x3F
    '0', '1', '2', '3', '4', '5', '6', '7', // 0 1 2 3 4 5 6 7
    '8', '9', ':', ';', '<', '=', '>', '?', // 8 9 : ; < = > ?
    // 0x40..0x4F
    '\u{00CD}', 'A', 'B', 'C', 'D', 'E', 'F', 'G', // Í A B C D E F G
    'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O', // H I J K L M N O
    // 0x50..0x5F
    'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', // P Q R S T U V W
    'X', 'Y', 'Z', '\u{00C3}', '\u{00D5}', '\u{00DA}', '\u{00DC}', '\u{00A7}', // X Y Z Ã Õ Ú Ü §
    // 0x60..0x6F
    '~', 'a', 'b', 'c', 'd', 'e', 'f', 'g', // ~ a b c d e f g
    'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', // h i j k l m n o
    // 0x70..0x7F
    'p', 'q', 'r', 's', 't', 'u', 'v', 'w', // p q r s t u v w
    'x', 'y', 'z', '\u{00E3}', '\u{00F5}', '`', '\u{00FC}', '\u{00E0}', // x y z ã õ ` ü à
];

/// TS 23.038 Annex A.2.1: Turkish National Language Single Shift Table.
#[rustfmt::skip]
static TURKISH_SINGLE_SHIFT: [char; 128] = [
    // 0x00..0x0F
    UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, // - - - - - - - -
    UNDEF, UNDEF, '\u{000C}', UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, // - - FF - - - - -
    // 0x10..0x1F
    UNDEF, UNDEF, UNDEF, UNDEF, '^', UNDEF, UNDEF, UNDEF, // - - - - ^ - - -
    UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, // - - - ESC - - - -
    // 0x20..0x2F
    UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, // - - - - - - - -
    '{', '}', UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, '\\', // { } - - - - - \
    // 0x30..0x3F
    UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, // - - - - - - - -
    UNDEF, UNDEF, UNDEF, UNDEF, '[', '~', ']', UNDEF, // - - - - [ ~ ] -
    // 0x40..0x4F
    '|', UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, '\u{011E}', // | - - - - - - Ğ
    UNDEF, '\u{0130}', UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, // - İ - - - - - -
    // 0x50..0x5F
    UNDEF, UNDEF, UNDEF, '\u{015E}', UNDEF, UNDEF, UNDEF, UNDEF, // - - - Ş - - - -
    UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, // - - - - - - - -
    // 0x60..0x6F
    UNDEF, UNDEF, UNDEF, '\u{00E7}', UNDEF, '\u{20AC}', UNDEF, '\u{011F}', // - - - ç - € - ğ
    UNDEF, '\u{0131}', UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, // - ı - - - - - -
    // 0x70..0x7F
    UNDEF, UNDEF, UNDEF, '\u{015F}', UNDEF, UNDEF, UNDEF, UNDEF, // - - - ş - - - -
    UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, // - - - - - - - -
];

/// TS 23.038 Annex A.2.2: Spanish National Language Single Shift Table.
#[rustfmt::skip]
static SPANISH_SINGLE_SHIFT: [char; 128] = [
    // 0x00..0x0F
    UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, // - - - - - - - -
    UNDEF, '\u{00E7}', '\u{000C}', UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, // - ç FF - - - - -
    // 0x10..0x1F
    UNDEF, UNDEF, UNDEF, UNDEF, '^', UNDEF, UNDEF, UNDEF, // - - - - ^ - - -
    UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, // - - - ESC - - - -
    // 0x20..0x2F
    UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, // - - - - - - - -
    '{', '}', UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, '\\', // { } - - - - - \
    // 0x30..0x3F
    UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, // - - - - - - - -
    UNDEF, UNDEF, UNDEF, UNDEF, '[', '~', ']', UNDEF, // - - - - [ ~ ] -
    // 0x40..0x4F
    '|', '\u{00C1}', UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, // | Á - - - - - -
    UNDEF, '\u{00CD}', UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, '\u{00D3}', // - Í - - - - - Ó
    // 0x50..0x5F
    UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, '\u{00DA}', UNDEF, UNDEF, // - - - - - Ú - -
    UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, // - - - - - - - -
    // 0x60..0x6F
    UNDEF, '\u{00E1}', UNDEF, UNDEF, UNDEF, '\u{20AC}', UNDEF, UNDEF, // - á - - - € - -
    UNDEF, '\u{00ED}', UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, '\u{00F3}', // - í - - - - - ó
    // 0x70..0x7F
    UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, '\u{00FA}', UNDEF, UNDEF, // - - - - - ú - -
    UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, // - - - - - - - -
];

/// TS 23.038 Annex A.2.3: Portuguese National Language Single Shift Table.
#[rustfmt::skip]
static PORTUGUESE_SINGLE_SHIFT: [char; 128] = [
    // 0x00..0x0F
    UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, '\u{00EA}', UNDEF, UNDEF, // - - - - - ê - -
    UNDEF, '\u{00E7}', '\u{000C}', '\u{00D4}', '\u{00F4}', UNDEF, '\u{00C1}', '\u{00E1}', // - ç FF Ô ô - Á á
    // 0x10..0x1F
    UNDEF, UNDEF, '\u{03A6}', '\u{0393}', '^', '\u{03A9}', '\u{03A0}', '\u{03A8}', // - - Φ Γ ^ Ω Π Ψ
    '\u{03A3}', '\u{0398}', UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, '\u{00CA}', // Σ Θ - ESC - - - Ê
    // 0x20..0x2F
    UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, // - - - - - - - -
    '{', '}', UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, '\\', // { } - - - - - \
    // 0x30..0x3F
    UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, // - - - - - - - -
    UNDEF, UNDEF, UNDEF, UNDEF, '[', '~', ']', UNDEF, // - - - - [ ~ ] -
    // 0x40..0x4F
    '|', '\u{00C0}', UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, // | À - - - - - -
    UNDEF, '\u{00CD}', UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, '\u{00D3}', // - Í - - - - - Ó
    // 0x50..0x5F
    UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, '\u{00DA}', UNDEF, UNDEF, // - - - - - Ú - -
    UNDEF, UNDEF, UNDEF, '\u{00C3}', '\u{00D5}', UNDEF, UNDEF, UNDEF, // - - - Ã Õ - - -
    // 0x60..0x6F
    UNDEF, '\u{00C2}', UNDEF, UNDEF, UNDEF, '\u{20AC}', UNDEF, UNDEF, // - Â - - - € - -
    UNDEF, '\u{00ED}', UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, '\u{00F3}', // - í - - - - - ó
    // 0x70..0x7F
    UNDEF, UNDEF, UNDEF, UNDEF, UNDEF, '\u{00FA}', UNDEF, UNDEF, // - - - - - ú - -
    UNDEF, UNDEF, UNDEF, '\u{00E3}', '\u{00F5}', UNDEF, UNDEF, '\u{00E2}', // - - - ã õ - - â
];

#[cfg(test)]
mod tests {
    use super::*;

    /// TS 23.038 §6.2.1 default alphabet (0x1B = UNDEF), used to express the locking shift tables
    /// as differences from it.
    const DEFAULT_ALPHABET: &str = concat!(
        "@\u{00A3}$\u{00A5}\u{00E8}\u{00E9}\u{00F9}\u{00EC}\u{00F2}\u{00C7}\n\u{00D8}\u{00F8}\r\u{00C5}\u{00E5}",
        "\u{0394}_\u{03A6}\u{0393}\u{039B}\u{03A9}\u{03A0}\u{03A8}\u{03A3}\u{0398}\u{039E}\u{FFFF}\u{00C6}\u{00E6}\u{00DF}\u{00C9}",
        " !\"#\u{00A4}%&'()*+,-./",
        "0123456789:;<=>?",
        "\u{00A1}ABCDEFGHIJKLMNO",
        "PQRSTUVWXYZ\u{00C4}\u{00D6}\u{00D1}\u{00DC}\u{00A7}",
        "\u{00BF}abcdefghijklmno",
        "pqrstuvwxyz\u{00E4}\u{00F6}\u{00F1}\u{00FC}\u{00E0}",
    );

    /// The characters common to every Latin single shift table (the §6.2.1.1 extension table).
    const EXTENSION_COMMON: [(usize, char); 10] = [
        (0x0A, '\u{000C}'), // FF (page break)
        (0x14, '^'),
        (0x28, '{'),
        (0x29, '}'),
        (0x2F, '\\'),
        (0x3C, '['),
        (0x3D, '~'),
        (0x3E, ']'),
        (0x40, '|'),
        (0x65, '\u{20AC}'), // €
    ];

    /// A.2.1 positions beyond the common extension characters.
    const TURKISH_SINGLE_EXTRA: [(usize, char); 7] = [
        (0x47, '\u{011E}'), // Ğ
        (0x49, '\u{0130}'), // İ
        (0x53, '\u{015E}'), // Ş
        (0x63, '\u{00E7}'), // ç
        (0x67, '\u{011F}'), // ğ
        (0x69, '\u{0131}'), // ı
        (0x73, '\u{015F}'), // ş
    ];

    /// A.2.2 positions beyond the common extension characters.
    const SPANISH_SINGLE_EXTRA: [(usize, char); 9] = [
        (0x09, '\u{00E7}'), // ç
        (0x41, '\u{00C1}'), // Á
        (0x49, '\u{00CD}'), // Í
        (0x4F, '\u{00D3}'), // Ó
        (0x55, '\u{00DA}'), // Ú
        (0x61, '\u{00E1}'), // á
        (0x69, '\u{00ED}'), // í
        (0x6F, '\u{00F3}'), // ó
        (0x75, '\u{00FA}'), // ú
    ];

    /// A.2.3 positions beyond the common extension characters.
    const PORTUGUESE_SINGLE_EXTRA: [(usize, char); 27] = [
        (0x05, '\u{00EA}'), // ê
        (0x09, '\u{00E7}'), // ç
        (0x0B, '\u{00D4}'), // Ô
        (0x0C, '\u{00F4}'), // ô
        (0x0E, '\u{00C1}'), // Á
        (0x0F, '\u{00E1}'), // á
        (0x12, '\u{03A6}'), // Φ
        (0x13, '\u{0393}'), // Γ
        (0x15, '\u{03A9}'), // Ω
        (0x16, '\u{03A0}'), // Π
        (0x17, '\u{03A8}'), // Ψ
        (0x18, '\u{03A3}'), // Σ
        (0x19, '\u{0398}'), // Θ
        (0x1F, '\u{00CA}'), // Ê
        (0x41, '\u{00C0}'), // À
        (0x49, '\u{00CD}'), // Í
        (0x4F, '\u{00D3}'), // Ó
        (0x55, '\u{00DA}'), // Ú
        (0x5B, '\u{00C3}'), // Ã
        (0x5C, '\u{00D5}'), // Õ
        (0x61, '\u{00C2}'), // Â
        (0x69, '\u{00ED}'), // í
        (0x6F, '\u{00F3}'), // ó
        (0x75, '\u{00FA}'), // ú
        (0x7B, '\u{00E3}'), // ã
        (0x7C, '\u{00F5}'), // õ
        (0x7F, '\u{00E2}'), // â
    ];

    /// A.3.1: the positions where the Turkish locking table differs from the default alphabet.
    const TURKISH_LOCKING_DIFF: [(usize, char); 8] = [
        (0x04, '\u{20AC}'), // € (default: è)
        (0x07, '\u{0131}'), // ı (default: ì)
        (0x0B, '\u{011E}'), // Ğ (default: Ø)
        (0x0C, '\u{011F}'), // ğ (default: ø)
        (0x1C, '\u{015E}'), // Ş (default: Æ)
        (0x1D, '\u{015F}'), // ş (default: æ)
        (0x40, '\u{0130}'), // İ (default: ¡)
        (0x60, '\u{00E7}'), // ç (default: ¿)
    ];

    /// A.3.3: the positions where the Portuguese locking table differs from the default alphabet.
    const PORTUGUESE_LOCKING_DIFF: [(usize, char); 30] = [
        (0x04, '\u{00EA}'), // ê
        (0x06, '\u{00FA}'), // ú
        (0x07, '\u{00ED}'), // í
        (0x08, '\u{00F3}'), // ó
        (0x09, '\u{00E7}'), // ç
        (0x0B, '\u{00D4}'), // Ô
        (0x0C, '\u{00F4}'), // ô
        (0x0E, '\u{00C1}'), // Á
        (0x0F, '\u{00E1}'), // á
        (0x12, '\u{00AA}'), // ª
        (0x13, '\u{00C7}'), // Ç
        (0x14, '\u{00C0}'), // À
        (0x15, '\u{221E}'), // ∞
        (0x16, '^'),
        (0x17, '\\'),
        (0x18, '\u{20AC}'), // €
        (0x19, '\u{00D3}'), // Ó
        (0x1A, '|'),
        (0x1C, '\u{00C2}'), // Â
        (0x1D, '\u{00E2}'), // â
        (0x1E, '\u{00CA}'), // Ê
        (0x24, '\u{00BA}'), // º
        (0x40, '\u{00CD}'), // Í
        (0x5B, '\u{00C3}'), // Ã
        (0x5C, '\u{00D5}'), // Õ
        (0x5D, '\u{00DA}'), // Ú
        (0x60, '~'),
        (0x7B, '\u{00E3}'), // ã
        (0x7C, '\u{00F5}'), // õ
        (0x7D, '`'),
    ];

    fn default_alphabet() -> Vec<char> {
        let v: Vec<char> = DEFAULT_ALPHABET.chars().collect();
        assert_eq!(v.len(), 128);
        v
    }

    fn all_tables() -> Vec<(&'static str, &'static [char; 128])> {
        let mut v = Vec::new();
        for lang in NationalLanguage::ALL {
            if let Some(t) = locking_table(lang) {
                v.push(("locking", t));
            }
            v.push(("single shift", single_shift_table(lang)));
        }
        v
    }

    #[test]
    fn escape_position_is_undef_in_every_table() {
        for (kind, t) in all_tables() {
            assert_eq!(t[0x1B], UNDEF, "{kind} table");
        }
    }

    #[test]
    fn no_character_appears_twice_in_a_table() {
        for (kind, t) in all_tables() {
            let mut seen = std::collections::HashMap::new();
            for (pos, &c) in t.iter().enumerate() {
                if c == UNDEF {
                    continue;
                }
                if let Some(prev) = seen.insert(c, pos) {
                    panic!("{kind} table: {c:?} at both {prev:#04X} and {pos:#04X}");
                }
            }
        }
    }

    fn check_single_shift(lang: NationalLanguage, extra: &[(usize, char)]) {
        let t = single_shift_table(lang);
        let mut expected = [UNDEF; 128];
        for &(pos, c) in EXTENSION_COMMON.iter().chain(extra) {
            assert_eq!(expected[pos], UNDEF, "test data repeats {pos:#04X}");
            expected[pos] = c;
        }
        for pos in 0..128 {
            assert_eq!(t[pos], expected[pos], "{lang:?} single shift at {pos:#04X}");
        }
    }

    fn check_locking(lang: NationalLanguage, diff: &[(usize, char)]) {
        let Some(t) = locking_table(lang) else {
            panic!("{lang:?} has a locking shift table");
        };
        let mut expected = default_alphabet();
        for &(pos, c) in diff {
            assert_ne!(
                expected[pos], c,
                "test data: {pos:#04X} is not a difference"
            );
            expected[pos] = c;
        }
        for pos in 0..128 {
            assert_eq!(t[pos], expected[pos], "{lang:?} locking at {pos:#04X}");
        }
    }

    #[test]
    fn turkish_single_shift_matches_a_2_1() {
        let t = single_shift_table(NationalLanguage::Turkish);
        assert_eq!(t[0x65], '\u{20AC}'); // €
        assert_eq!(t[0x63], '\u{00E7}'); // ç
        assert_eq!(t[0x67], '\u{011F}'); // ğ
        assert_eq!(t[0x47], '\u{011E}'); // Ğ
        check_single_shift(NationalLanguage::Turkish, &TURKISH_SINGLE_EXTRA);
    }

    #[test]
    fn spanish_single_shift_matches_a_2_2() {
        let t = single_shift_table(NationalLanguage::Spanish);
        assert_eq!(t[0x61], '\u{00E1}'); // á
        assert_eq!(t[0x69], '\u{00ED}'); // í
        assert_eq!(t[0x6F], '\u{00F3}'); // ó
        assert_eq!(t[0x75], '\u{00FA}'); // ú
        assert_eq!(t[0x41], '\u{00C1}'); // Á
        assert_eq!(t[0x09], '\u{00E7}'); // ç
        // Spanish é is not in the single shift table: it is 0x05 of the default alphabet.
        assert!(!t.contains(&'\u{00E9}'));
        check_single_shift(NationalLanguage::Spanish, &SPANISH_SINGLE_EXTRA);
    }

    #[test]
    fn portuguese_single_shift_matches_a_2_3() {
        let t = single_shift_table(NationalLanguage::Portuguese);
        assert_eq!(t[0x05], '\u{00EA}'); // ê
        assert_eq!(t[0x1F], '\u{00CA}'); // Ê
        assert_eq!(t[0x7F], '\u{00E2}'); // â
        check_single_shift(NationalLanguage::Portuguese, &PORTUGUESE_SINGLE_EXTRA);
    }

    #[test]
    fn single_shift_control_positions() {
        for lang in NationalLanguage::ALL {
            let t = single_shift_table(lang);
            assert_eq!(t[0x0A], '\u{000C}', "{lang:?}: 0x0A is form feed");
            assert_eq!(t[0x0D], UNDEF, "{lang:?}: 0x0D is reserved (CR2)");
            assert!(!t.contains(&'\r') && !t.contains(&'\n'), "{lang:?}");
        }
    }

    #[test]
    fn turkish_locking_matches_a_3_1() {
        let t = locking_table(NationalLanguage::Turkish).expect("Turkish locking table");
        assert_eq!(t[0x1C], '\u{015E}'); // Ş
        assert_eq!(t[0x1D], '\u{015F}'); // ş
        assert_eq!(t[0x40], '\u{0130}'); // İ
        assert_eq!(t[0x07], '\u{0131}'); // ı
        assert_eq!(t[0x0C], '\u{011F}'); // ğ
        assert_eq!(t[0x0B], '\u{011E}'); // Ğ
        assert_eq!(t[0x0A], '\n');
        assert_eq!(t[0x0D], '\r');
        check_locking(NationalLanguage::Turkish, &TURKISH_LOCKING_DIFF);
    }

    #[test]
    fn portuguese_locking_matches_a_3_3() {
        let t = locking_table(NationalLanguage::Portuguese).expect("Portuguese locking table");
        assert_eq!(t[0x04], '\u{00EA}'); // ê
        assert_eq!(t[0x0C], '\u{00F4}'); // ô
        assert_eq!(t[0x7C], '\u{00F5}'); // õ
        assert_eq!(t[0x1D], '\u{00E2}'); // â
        assert_eq!(t[0x1E], '\u{00CA}'); // Ê
        assert_eq!(t[0x0A], '\n');
        assert_eq!(t[0x0D], '\r');
        check_locking(NationalLanguage::Portuguese, &PORTUGUESE_LOCKING_DIFF);
    }

    #[test]
    fn spanish_has_no_locking_table() {
        assert!(locking_table(NationalLanguage::Spanish).is_none());
    }

    #[test]
    fn locking_tables_define_every_position_but_the_escape() {
        for lang in [NationalLanguage::Turkish, NationalLanguage::Portuguese] {
            let t = locking_table(lang).expect("locking table");
            let undefined: Vec<usize> = (0..128).filter(|&p| t[p] == UNDEF).collect();
            assert_eq!(undefined, vec![0x1B], "{lang:?}");
        }
    }

    #[test]
    fn language_ids_round_trip() {
        for lang in NationalLanguage::ALL {
            assert_eq!(NationalLanguage::from_id(lang.id()), Some(lang));
        }
        let ids: Vec<u8> = NationalLanguage::ALL.iter().map(|l| l.id()).collect();
        assert_eq!(ids, vec![1, 2, 3]);
        assert_eq!(NationalLanguage::from_id(0), None);
        for id in 4..=u8::MAX {
            assert_eq!(NationalLanguage::from_id(id), None);
        }
    }
}
