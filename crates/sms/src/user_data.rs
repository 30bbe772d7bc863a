//! User data: choosing an encoding, splitting a text into parts, and reading TP-UDL / TP-UD back
//! (TS 23.040 §9.2.3.16, §9.2.3.24; TS 23.038 §6.1.2).

use super::error::{DecodeError, EncodeError};
use super::gsm7::{self, Charset, Septets};
use super::nls::NationalLanguage;
use super::reader::Reader;
use super::udh::{Concat, DataCoding, Encoding, InformationElement, UserDataHeader};

/// The longest user data of one SMS: 140 octets (TS 23.040 §9.2.3.16).
pub const MAX_UD_OCTETS: usize = 140;
/// The most septets 140 octets hold.
pub const MAX_UD_SEPTETS: usize = 160;

/// The text of one part, in the units of its encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// Septets of the GSM 7-bit alphabet (escapes included), read with the given tables.
    Gsm7 {
        /// Septet values, each < 0x80.
        septets: Vec<u8>,
        /// The tables that give them meaning.
        charset: Charset,
    },
    /// UTF-16 code units. A part may end in half a surrogate pair when a sender split one;
    /// joining the parts' units before decoding repairs that.
    Ucs2(Vec<u16>),
    /// 8-bit data (or compressed text), as it came.
    Binary(Vec<u8>),
}

impl Body {
    /// The encoding of this body.
    pub fn encoding(&self) -> Encoding {
        match self {
            Body::Gsm7 { .. } => Encoding::Gsm7,
            Body::Ucs2(_) => Encoding::Ucs2,
            Body::Binary(_) => Encoding::EightBit,
        }
    }

    /// The body as text. Unpaired surrogates become U+FFFD; 8-bit data is read as UTF-8 when it
    /// is valid UTF-8, else as ISO-8859-1.
    pub fn text(&self) -> String {
        match self {
            Body::Gsm7 { septets, charset } => charset.decode(septets),
            Body::Ucs2(units) => char::decode_utf16(units.iter().copied())
                .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
                .collect(),
            Body::Binary(bytes) => match std::str::from_utf8(bytes) {
                Ok(s) => s.to_string(),
                Err(_) => bytes.iter().map(|&b| char::from(b)).collect(),
            },
        }
    }
}

/// TP-UD of one message: the optional header and the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserData {
    /// The user data header, when TP-UDHI is set.
    pub header: Option<UserDataHeader>,
    /// The text or data after the header.
    pub body: Body,
    /// The PDU ended before the length TP-UDL declares: `body` holds what was there (only
    /// when read leniently, see [`crate::decode_lenient`]).
    pub truncated: bool,
}

impl UserData {
    /// The body as text (see [`Body::text`]).
    pub fn text(&self) -> String {
        self.body.text()
    }

    /// The concatenation information, if this is one part of several.
    pub fn concat(&self) -> Option<Concat> {
        self.header.as_ref().and_then(UserDataHeader::concat)
    }

    /// Reads TP-UDL and TP-UD. `udhi` is the TP-UDHI bit of the first octet. `lenient`: user
    /// data shorter than TP-UDL declares is read as far as it goes (`truncated` set) instead of
    /// being refused; a header cut short is still an error.
    pub(crate) fn read(
        r: &mut Reader<'_>,
        dcs: &DataCoding,
        udhi: bool,
        lenient: bool,
    ) -> Result<UserData, DecodeError> {
        const FIELD: &str = "TP-UD";
        let udl_at = r.offset();
        let udl = usize::from(r.u8("TP-UDL")?);
        let septets = dcs.encoding == Encoding::Gsm7 && !dcs.compressed;
        let (octets, max) = if septets {
            ((udl * 7).div_ceil(8), MAX_UD_SEPTETS)
        } else {
            (udl, MAX_UD_OCTETS)
        };
        if udl > max {
            return Err(DecodeError::Length {
                field: "TP-UDL",
                offset: udl_at,
                detail: format!("{udl} is more than the maximum of {max}"),
            });
        }
        let ud_at = r.offset();
        // Trailing octets after the declared length are junk some modems append: ignored.
        let truncated = lenient && r.remaining() < octets;
        let ud = if truncated {
            r.rest()
        } else {
            r.take(octets, FIELD)?
        };
        // The septets (or octets) really present.
        let udl = if truncated && septets {
            udl.min(ud.len() * 8 / 7)
        } else {
            udl
        };
        let (header, header_len) = if udhi {
            let (h, n) = UserDataHeader::parse(ud, ud_at)?;
            (Some(h), n)
        } else {
            (None, 0)
        };
        let body = if septets {
            let skip = gsm7::udh_septets(header_len);
            if skip > udl {
                return Err(DecodeError::Length {
                    field: "TP-UDL",
                    offset: udl_at,
                    detail: format!("{udl} septets cannot hold a {header_len}-octet header"),
                });
            }
            let all = gsm7::unpack(ud, udl, 0).ok_or(DecodeError::Truncated {
                field: FIELD,
                offset: ud_at,
                needed: octets,
                available: ud.len(),
            })?;
            let (locking, single) = header
                .as_ref()
                .map(UserDataHeader::national_languages)
                .unwrap_or_default();
            Body::Gsm7 {
                septets: all[skip..].to_vec(),
                charset: Charset { locking, single },
            }
        } else {
            let mut data = &ud[header_len..];
            if truncated && data.len() % 2 != 0 && dcs.encoding == Encoding::Ucs2 {
                // Half a character at the cut.
                data = &data[..data.len() - 1];
            }
            if dcs.encoding == Encoding::Ucs2 && !dcs.compressed {
                if data.len() % 2 != 0 {
                    return Err(DecodeError::Length {
                        field: FIELD,
                        offset: ud_at + header_len,
                        detail: format!(
                            "UCS-2 text of {} octets, not a whole number of characters",
                            data.len()
                        ),
                    });
                }
                Body::Ucs2(
                    data.chunks_exact(2)
                        .map(|p| u16::from_be_bytes([p[0], p[1]]))
                        .collect(),
                )
            } else {
                Body::Binary(data.to_vec())
            }
        };
        Ok(UserData {
            header,
            body,
            truncated,
        })
    }
}

/// Joins the bodies of a concatenated message's parts (given in part order) into its text.
/// Units are joined before decoding, so a surrogate pair or an escape that a sender split across
/// two parts still decodes to the right character.
pub fn join_text<'a>(parts: impl IntoIterator<Item = &'a Body>) -> String {
    let mut out = String::new();
    let mut pending: Option<Body> = None;
    for body in parts {
        pending = match (pending.take(), body) {
            (
                Some(Body::Gsm7 {
                    mut septets,
                    charset,
                }),
                Body::Gsm7 {
                    septets: more,
                    charset: c2,
                },
            ) if charset == *c2 => {
                septets.extend_from_slice(more);
                Some(Body::Gsm7 { septets, charset })
            }
            (Some(Body::Ucs2(mut units)), Body::Ucs2(more)) => {
                units.extend_from_slice(more);
                Some(Body::Ucs2(units))
            }
            (Some(Body::Binary(mut bytes)), Body::Binary(more)) => {
                bytes.extend_from_slice(more);
                Some(Body::Binary(bytes))
            }
            (prev, next) => {
                if let Some(p) = prev {
                    out.push_str(&p.text());
                }
                Some(next.clone())
            }
        };
    }
    if let Some(p) = pending {
        out.push_str(&p.text());
    }
    out
}

/// A text split into the parts it will be sent as: the encoding decision of TS 23.038 plus
/// TS 23.040 segmentation, before any address or header is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextPlan {
    /// The encoding every part uses.
    pub encoding: Encoding,
    /// For GSM 7-bit: the shift tables (default unless a national language was allowed and saves
    /// parts).
    pub charset: Charset,
    /// Each part's body. More than one means a concatenation header goes in front of each.
    pub parts: Vec<Body>,
}

impl TextPlan {
    /// Splits `text` into parts: GSM 7-bit when every character fits (trying the allowed national
    /// language tables when the default alphabet does not fit or needs more parts), else UCS-2.
    /// Escapes and surrogate pairs are never split across parts.
    pub fn new(
        text: &str,
        national_languages: &[NationalLanguage],
        max_parts: usize,
    ) -> Result<TextPlan, EncodeError> {
        if text.is_empty() {
            return Err(EncodeError::EmptyText);
        }
        let mut best: Option<TextPlan> = None;
        for charset in candidate_charsets(national_languages) {
            let Some(chars) = text
                .chars()
                .map(|c| charset.encode_char(c))
                .collect::<Option<Vec<Septets>>>()
            else {
                continue;
            };
            let ie = nls_header_octets(&charset);
            let split = split_units(
                &chars,
                |s: &Septets| s.septet_count(),
                gsm7_capacity(ie),
                gsm7_capacity(ie + CONCAT_IE_OCTETS),
            );
            let parts = split
                .into_iter()
                .map(|group| Body::Gsm7 {
                    septets: group
                        .iter()
                        .flat_map(|s| match *s {
                            Septets::One(x) => vec![x],
                            Septets::Two(x) => vec![gsm7::ESCAPE, x],
                        })
                        .collect(),
                    charset,
                })
                .collect::<Vec<_>>();
            // Fewer parts wins; on a tie the earlier candidate (fewer header octets) stays.
            if best.as_ref().is_none_or(|b| parts.len() < b.parts.len()) {
                best = Some(TextPlan {
                    encoding: Encoding::Gsm7,
                    charset,
                    parts,
                });
            }
        }
        let plan = match best {
            Some(p) => p,
            None => {
                let chars: Vec<Vec<u16>> = text
                    .chars()
                    .map(|c| {
                        let mut buf = [0u16; 2];
                        c.encode_utf16(&mut buf).to_vec()
                    })
                    .collect();
                let split = split_units(
                    &chars,
                    Vec::len,
                    MAX_UD_OCTETS / 2,
                    (MAX_UD_OCTETS - 1 - CONCAT_IE_OCTETS) / 2,
                );
                TextPlan {
                    encoding: Encoding::Ucs2,
                    charset: Charset::DEFAULT,
                    parts: split
                        .into_iter()
                        .map(|g| Body::Ucs2(g.into_iter().flatten().collect()))
                        .collect(),
                }
            }
        };
        if plan.parts.len() > max_parts || plan.parts.len() > 255 {
            return Err(EncodeError::TooManyParts {
                parts: plan.parts.len(),
                max: max_parts.min(255),
                encoding: plan.encoding.as_str(),
            });
        }
        Ok(plan)
    }

    /// Builds each part's user data (header included) with the given concatenation reference.
    /// Returns (TP-UDHI, TP-UDL, TP-UD) per part.
    pub(crate) fn user_data(&self, concat_reference: u8) -> Vec<(bool, u8, Vec<u8>)> {
        let total = self.parts.len();
        self.parts
            .iter()
            .enumerate()
            .map(|(i, body)| {
                let mut elements = Vec::new();
                if total > 1 {
                    // TS 23.040 §9.2.3.24.1: concatenation, 8-bit reference.
                    elements.push(InformationElement::Concat(Concat {
                        reference: u16::from(concat_reference),
                        part: (i + 1) as u8,
                        total: total as u8,
                        sixteen_bit: false,
                    }));
                }
                if let Some(l) = self.charset.locking {
                    elements.push(InformationElement::LockingShift(l));
                }
                if let Some(l) = self.charset.single {
                    elements.push(InformationElement::SingleShift(l));
                }
                let header = if elements.is_empty() {
                    Vec::new()
                } else {
                    UserDataHeader { elements }.to_bytes()
                };
                let udhi = !header.is_empty();
                match body {
                    Body::Gsm7 { septets, .. } => {
                        let mut ud = header.clone();
                        ud.extend(gsm7::pack(septets, gsm7::fill_bits(header.len())));
                        let udl = gsm7::udh_septets(header.len()) + septets.len();
                        (udhi, udl as u8, ud)
                    }
                    Body::Ucs2(units) => {
                        let mut ud = header;
                        ud.extend(units.iter().flat_map(|u| u.to_be_bytes()));
                        let udl = ud.len();
                        (udhi, udl as u8, ud)
                    }
                    Body::Binary(bytes) => {
                        let mut ud = header;
                        ud.extend_from_slice(bytes);
                        let udl = ud.len();
                        (udhi, udl as u8, ud)
                    }
                }
            })
            .collect()
    }
}

/// Octets of the 8-bit concatenation element: IEI, length, reference, total, part.
const CONCAT_IE_OCTETS: usize = 5;

/// Octets of the national language elements a charset needs (3 each, without UDHL).
fn nls_header_octets(c: &Charset) -> usize {
    3 * (usize::from(c.locking.is_some()) + usize::from(c.single.is_some()))
}

/// Septets left for text when the header's elements take `ie_octets` (0 = no header at all).
fn gsm7_capacity(ie_octets: usize) -> usize {
    if ie_octets == 0 {
        MAX_UD_SEPTETS
    } else {
        MAX_UD_SEPTETS - gsm7::udh_septets(ie_octets + 1)
    }
}

/// The default tables first, then for each allowed language: single shift only, locking only,
/// both (TS 23.038 §6.2.1.2.4; Spanish has no locking table).
fn candidate_charsets(languages: &[NationalLanguage]) -> Vec<Charset> {
    let mut out = vec![Charset::DEFAULT];
    for &l in languages {
        out.push(Charset {
            locking: None,
            single: Some(l),
        });
        if super::nls::locking_table(l).is_some() {
            out.push(Charset {
                locking: Some(l),
                single: None,
            });
            out.push(Charset {
                locking: Some(l),
                single: Some(l),
            });
        }
    }
    out
}

/// Greedy split of per-character unit groups: everything in one part when it fits `single`,
/// else parts of at most `multi` units, never cutting a character.
fn split_units<T: Clone>(
    chars: &[T],
    cost: impl Fn(&T) -> usize,
    single: usize,
    multi: usize,
) -> Vec<Vec<T>> {
    let total: usize = chars.iter().map(&cost).sum();
    if total <= single {
        return vec![chars.to_vec()];
    }
    let mut parts = Vec::new();
    let mut current = Vec::new();
    let mut used = 0;
    for c in chars {
        let n = cost(c);
        if used + n > multi {
            parts.push(std::mem::take(&mut current));
            used = 0;
        }
        current.push(c.clone());
        used += n;
    }
    if !current.is_empty() {
        parts.push(current);
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lens(p: &TextPlan) -> Vec<usize> {
        p.parts
            .iter()
            .map(|b| match b {
                Body::Gsm7 { septets, .. } => septets.len(),
                Body::Ucs2(u) => u.len(),
                Body::Binary(b) => b.len(),
            })
            .collect()
    }

    #[test]
    fn gsm7_boundaries() {
        let p = TextPlan::new(&"a".repeat(160), &[], 6).unwrap();
        assert_eq!((p.encoding, lens(&p)), (Encoding::Gsm7, vec![160]));
        let p = TextPlan::new(&"a".repeat(161), &[], 6).unwrap();
        assert_eq!(lens(&p), vec![153, 8]);
        let p = TextPlan::new(&"a".repeat(306), &[], 6).unwrap();
        assert_eq!(lens(&p), vec![153, 153]);
    }

    #[test]
    fn escape_is_not_split() {
        // 152 'a' then '€' (2 septets): the euro moves whole to part 2.
        let text = format!("{}€{}", "a".repeat(152), "b".repeat(10));
        let p = TextPlan::new(&text, &[], 6).unwrap();
        assert_eq!(lens(&p), vec![152, 12]);
        assert_eq!(join_text(&p.parts), text);
    }

    #[test]
    fn ucs2_boundaries_and_surrogates() {
        let p = TextPlan::new(&"ж".repeat(70), &[], 6).unwrap();
        assert_eq!((p.encoding, lens(&p)), (Encoding::Ucs2, vec![70]));
        let p = TextPlan::new(&"ж".repeat(71), &[], 6).unwrap();
        assert_eq!(lens(&p), vec![67, 4]);
        // 66 units then an emoji (2 units): the pair is not split.
        let text = format!("{}😀жжж", "ж".repeat(66));
        let p = TextPlan::new(&text, &[], 6).unwrap();
        assert_eq!(lens(&p), vec![66, 5]);
        assert_eq!(join_text(&p.parts), text);
    }

    #[test]
    fn parts_cap() {
        let err = TextPlan::new(&"a".repeat(153 * 6 + 1), &[], 6).unwrap_err();
        assert_eq!(
            err,
            EncodeError::TooManyParts {
                parts: 7,
                max: 6,
                encoding: "gsm7"
            }
        );
        assert!(TextPlan::new(&"a".repeat(153 * 6), &[], 6).is_ok());
        assert_eq!(
            TextPlan::new("", &[], 6).unwrap_err(),
            EncodeError::EmptyText
        );
    }

    #[test]
    fn join_repairs_a_split_surrogate_pair() {
        let a = Body::Ucs2(vec![0x0041, 0xD83D]);
        let b = Body::Ucs2(vec![0xDE00]);
        assert_eq!(join_text([&a, &b]), "A😀");
        assert_eq!(a.text(), "A\u{FFFD}");
    }

    #[test]
    fn user_data_lengths() {
        let p = TextPlan::new(&"a".repeat(161), &[], 6).unwrap();
        let ud = p.user_data(7);
        assert_eq!(ud.len(), 2);
        let (udhi, udl, bytes) = &ud[0];
        assert!(*udhi);
        assert_eq!(*udl, 160);
        assert_eq!(bytes.len(), 140);
        assert_eq!(&bytes[..6], &[5, 0x00, 3, 7, 2, 1]);
    }
}
