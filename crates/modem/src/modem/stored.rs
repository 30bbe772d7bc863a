//! Stored messages as modems really print them: the answers to `AT+CMGR` and `AT+CMGL`.
//!
//! TS 27.005 §3.4.3 says a PDU-mode answer is `+CMGR: <stat>,[<alpha>],<length>` and a line of
//! hex, `<length>` being the TPDU's octets without the SMSC field. Devices in the field print
//! `+CMGR: 0,23` (no alpha field), a quoted alpha or number, an extra field (`+CMGR: 4,1,,151`),
//! `+CMGR: 0,,0` for an empty slot, the PDU with `FF` fill of the SIM record or a stray `"` after
//! it, a length that disagrees with the PDU, an answer in text mode, and SMS-SUBMITs a phone
//! stored in its inbox. As Gammu does, the PDU is read by its own structure (TS 23.040 §9.2) and
//! the header's length is used only where the line is ambiguous: whether the PDU starts with an
//! SMSC field, and whether the next line continues a wrapped PDU.
//!
//! Nothing here decides what to do with a slot; [`Content`] says what it holds, and the driver
//! hands a message or report over, keeps an unreadable answer raw, or leaves a phone's own texts
//! alone.

use crate::sms::{self, Pdu};

use super::info::fields;

/// One stored message as the modem printed it, read as far as it can be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAnswer {
    /// The storage index (`+CMGL` only; for `+CMGR` the caller knows it).
    pub index: Option<u32>,
    /// `<stat>`: 0 received unread, 1 received read, 2 stored unsent, 3 stored sent.
    pub stat: Option<u8>,
    /// The TPDU length the header declares.
    pub declared: Option<usize>,
    /// The lines of the answer as received (header first), joined by CR LF.
    pub answer: String,
    /// What the slot holds.
    pub content: Content,
}

/// What a stored slot holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// Nothing (`OK` alone, `+CMGR: 0,,0`, a record of `FF` fill).
    Empty,
    /// An SMS-DELIVER: a customer's text. The PDU with its SMSC field first, cut where its
    /// structure ends.
    Message(Vec<u8>),
    /// An SMS-STATUS-REPORT, SMSC field first, cut where its structure ends.
    Report(Vec<u8>),
    /// Not a customer's text: an SMS-SUBMIT or SMS-COMMAND a phone stored (its sent or draft
    /// texts). `what` names it.
    Foreign {
        /// `SMS-SUBMIT`, `SMS-COMMAND`, or `SMS-SUBMIT (text mode)`.
        what: &'static str,
    },
    /// Cannot be read: kept raw by the caller with `reason`.
    Unreadable {
        /// Why, in words.
        reason: String,
        /// The octets that could be taken from the answer (may be empty).
        pdu: Vec<u8>,
        /// The answer is in text mode (`AT+CMGF=1`): the modem left PDU mode.
        text_mode: bool,
    },
}

impl StoredAnswer {
    /// Whether the slot holds something the gateway must keep (a message, a report, or an
    /// unreadable answer kept raw).
    pub fn is_for_the_gateway(&self) -> bool {
        matches!(
            self.content,
            Content::Message(_) | Content::Report(_) | Content::Unreadable { .. }
        )
    }
}

/// Reads the lines of an `AT+CMGR=<n>` answer (final result excluded).
pub fn parse_cmgr(lines: &[String]) -> StoredAnswer {
    let header = lines.iter().position(|l| has_prefix(l, "+CMGR:"));
    match header {
        Some(h) => entry(&lines[h][6..], false, &lines[h..h + 1], &lines[h + 1..]),
        None if lines.is_empty() => StoredAnswer {
            index: None,
            stat: None,
            declared: None,
            answer: String::new(),
            content: Content::Empty,
        },
        // No header: a PDU line alone is still read; anything else is kept raw.
        None => {
            let mut a = entry("", false, &[], lines);
            if let Content::Unreadable { reason, .. } = &mut a.content {
                *reason = format!("no +CMGR header ({reason})");
            }
            a
        }
    }
}

/// Reads the lines of an `AT+CMGL=4` answer: one entry per `+CMGL:` header, with the lines up to
/// the next header as its body.
pub fn parse_cmgl(lines: &[String]) -> Vec<StoredAnswer> {
    let starts: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| has_prefix(l, "+CMGL:"))
        .map(|(i, _)| i)
        .collect();
    starts
        .iter()
        .enumerate()
        .map(|(n, &h)| {
            let end = starts.get(n + 1).copied().unwrap_or(lines.len());
            entry(&lines[h][6..], true, &lines[h..h + 1], &lines[h + 1..end])
        })
        .collect()
}

fn has_prefix(line: &str, prefix: &str) -> bool {
    line.get(..prefix.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
}

/// One entry: `args` of its header (after `+CMGR:`/`+CMGL:`), `listed` when it has an index.
fn entry(args: &str, listed: bool, header: &[String], body: &[String]) -> StoredAnswer {
    let answer = header
        .iter()
        .chain(body)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join("\r\n");
    let f = fields(args);
    let (index, rest) = if listed {
        (
            f.first().and_then(|s| s.parse().ok()),
            f.get(1..).unwrap_or_default(),
        )
    } else {
        (None, &f[..])
    };
    // `+CMGR: 24` (some phones): the length alone.
    let stat_field = match rest {
        [_] => "",
        _ => rest.first().map(String::as_str).unwrap_or(""),
    };
    let stat = stat_field.parse::<u8>().ok();
    // TS 27.005 §3.4.3 / §4.1: text mode names the state (`"REC UNREAD"`, `"STO SENT"`).
    let text_mode = stat.is_none()
        && !stat_field.is_empty()
        && stat_field
            .chars()
            .all(|c| c.is_ascii_alphabetic() || c == ' ');
    let declared = if text_mode {
        None
    } else {
        rest.last().and_then(|s| s.parse::<usize>().ok())
    };
    let content = if text_mode {
        if stat_field.to_ascii_uppercase().starts_with("STO") {
            Content::Foreign {
                what: "SMS-SUBMIT (text mode)",
            }
        } else {
            Content::Unreadable {
                reason: "an answer in text mode (AT+CMGF=1) although PDU mode was set".into(),
                pdu: Vec::new(),
                text_mode: true,
            }
        }
    } else {
        read_body(declared, stat, body)
    };
    StoredAnswer {
        index,
        stat,
        declared,
        answer,
        content,
    }
}

/// The hex at the start of a line, after white space and quotes; an odd last digit dropped.
fn hex_prefix(line: &str) -> &str {
    let t = line.trim().trim_start_matches('"');
    let n = t.bytes().take_while(u8::is_ascii_hexdigit).count();
    &t[..n & !1]
}

fn is_hex_line(line: &str) -> bool {
    let t = line.trim().trim_matches('"');
    !t.is_empty() && t.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The PDU lines after a header.
fn read_body(declared: Option<usize>, stat: Option<u8>, body: &[String]) -> Content {
    let Some(first) = body.first() else {
        return if declared.unwrap_or(0) == 0 {
            Content::Empty
        } else {
            unreadable(
                format!(
                    "the header declares {} octets but no PDU line follows",
                    declared.unwrap_or(0)
                ),
                Vec::new(),
            )
        };
    };
    let mut hex = hex_prefix(first).to_string();
    if hex.is_empty() {
        return unreadable("the line after the header is not a PDU".into(), Vec::new());
    }
    // A PDU some firmware wrapped over several lines: while shorter than the header says, a
    // following line of hex digits continues it.
    let wanted = |hex: &str| {
        let smsc = usize::from_str_radix(hex.get(..2).unwrap_or("00"), 16).unwrap_or(0);
        declared.map_or(0, |d| 2 * (1 + smsc + d))
    };
    for more in &body[1..] {
        if hex.len() >= wanted(&hex) || !is_hex_line(more) || !hex.len().is_multiple_of(2) {
            break;
        }
        hex.push_str(hex_prefix(more));
    }
    let octets = match sms::parse_hex(&hex) {
        Ok(o) => o,
        Err(e) => return unreadable(format!("the PDU is not hex: {e}"), Vec::new()),
    };
    // A free SIM record printed as its fill, or an SMSC field and nothing after it.
    let smsc_end = 1 + usize::from(octets.first().copied().unwrap_or(0));
    if octets.iter().all(|&b| b == 0xFF) || (declared == Some(0) && octets.len() <= smsc_end) {
        return Content::Empty;
    }
    read_octets(octets, declared, stat)
}

fn unreadable(reason: String, pdu: Vec<u8>) -> Content {
    Content::Unreadable {
        reason,
        pdu,
        text_mode: false,
    }
}

/// Reads the octets of one stored PDU. TP-MTI 10 is a status report when it reads as one
/// (phones store reports as "sent" too); written by the phone (`stat` 2 or 3) and not a
/// report, it is an SMS-COMMAND (TS 23.040 §9.2.3.1).
fn read_octets(octets: Vec<u8>, declared: Option<usize>, stat: Option<u8>) -> Content {
    let mobile_originated = matches!(stat, Some(2 | 3));
    let smsc_len = usize::from(octets[0]);
    let with_smsc = sms::decode_lenient(&octets, true);
    // Without an SMSC field (some phones print the TPDU alone): believed only when its
    // structure spans exactly the declared length and the usual reading does not.
    let tpdu_len = |end: usize| end.saturating_sub(1 + smsc_len);
    let usual_fits = matches!(&with_smsc, Ok((_, end)) if Some(tpdu_len(*end)) == declared);
    if !usual_fits
        && let Some(d) = declared
        && let Ok((pdu, end)) = sms::decode_lenient(&octets, false)
        && end == d
    {
        tracing::debug!(declared = d, "stored PDU without an SMSC field");
        let mut with_field = Vec::with_capacity(end + 1);
        with_field.push(0);
        with_field.extend_from_slice(&octets[..end]);
        return classify(pdu, with_field);
    }
    match with_smsc {
        Ok((pdu, end)) => {
            if declared.is_some_and(|d| d != tpdu_len(end)) {
                tracing::debug!(
                    declared = ?declared,
                    actual = tpdu_len(end),
                    trailing = octets.len() - end,
                    "the header's length disagrees with the PDU; read by its structure"
                );
            }
            let mut octets = octets;
            octets.truncate(end);
            classify(pdu, octets)
        }
        Err(_) if mobile_originated && octets.get(1 + smsc_len).map(|b| b & 0x03) == Some(0b10) => {
            Content::Foreign {
                what: "SMS-COMMAND",
            }
        }
        Err(e) => {
            let said = declared.map_or(String::new(), |d| {
                format!(
                    " (the header declares {d} octets, the line holds {})",
                    octets.len().saturating_sub(1 + smsc_len)
                )
            });
            unreadable(format!("cannot decode the PDU: {e}{said}"), octets)
        }
    }
}

fn classify(pdu: Pdu, octets: Vec<u8>) -> Content {
    match pdu {
        Pdu::Deliver(_) => Content::Message(octets),
        Pdu::StatusReport(_) => Content::Report(octets),
        Pdu::Submit(_) => Content::Foreign { what: "SMS-SUBMIT" },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// "How are you?" from +31641600986 (TS 27.005's example shape), TPDU of 30 octets.
    const PDU: &str =
        "07911326040000F0040B911346610089F60000208062917314080CC8F71D14969741F977FD07";

    fn lines(s: &[&str]) -> Vec<String> {
        s.iter().map(|l| l.to_string()).collect()
    }

    fn message(a: &StoredAnswer) -> Vec<u8> {
        match &a.content {
            Content::Message(p) => p.clone(),
            other => panic!("not a message: {other:?} in {:?}", a.answer),
        }
    }

    fn whole() -> Vec<u8> {
        sms::parse_hex(PDU).unwrap()
    }

    #[test]
    fn standard_and_alpha_variants_read_the_same() {
        for header in [
            "+CMGR: 0,,30",
            "+CMGR: 0,30",
            "+CMGR: 1,\"\",30",
            "+CMGR: 1,\"+31641600986\",30",
            "+CMGR: 1,\"Jan, at home\",30",
            "+CMGR: 4,1,,30",
            "+cmgr: 0,,30",
        ] {
            let a = parse_cmgr(&lines(&[header, PDU]));
            assert_eq!(message(&a), whole(), "{header}");
            assert_eq!(a.declared, Some(30), "{header}");
        }
        assert_eq!(parse_cmgr(&lines(&["+CMGR: 0,,30", PDU])).stat, Some(0));
        assert_eq!(parse_cmgr(&lines(&["+CMGR: 4,1,,30", PDU])).stat, Some(4));
    }

    #[test]
    fn a_length_that_disagrees_does_not_make_a_good_pdu_unreadable() {
        for declared in [0usize, 1, 23, 25, 37, 151] {
            let a = parse_cmgr(&lines(&[&format!("+CMGR: 0,,{declared}"), PDU]));
            assert_eq!(message(&a), whole(), "declared {declared}");
        }
    }

    #[test]
    fn padding_quotes_and_junk_after_the_pdu_are_cut() {
        for line in [
            format!("{PDU}FFFFFFFFFFFFFFFF"),
            format!("{PDU}\""),
            format!("\"{PDU}\""),
            format!("{PDU} junk"),
            format!("{PDU}00FF"),
            format!("{PDU}F"),
        ] {
            let a = parse_cmgr(&lines(&["+CMGR: 1,,30", &line]));
            assert_eq!(message(&a), whole(), "{line}");
        }
        // A quote on a line of its own.
        let a = parse_cmgr(&lines(&["+CMGR: 1,,30", PDU, "\""]));
        assert_eq!(message(&a), whole());
        assert!(a.answer.ends_with("\r\n\""));
    }

    #[test]
    fn empty_slots() {
        assert_eq!(parse_cmgr(&[]).content, Content::Empty);
        assert_eq!(parse_cmgr(&lines(&["+CMGR: 0,,0"])).content, Content::Empty);
        assert_eq!(
            parse_cmgr(&lines(&["+CMGR: 0,,0", "00"])).content,
            Content::Empty
        );
        assert_eq!(
            parse_cmgr(&lines(&["+CMGR: 0,,0", &"FF".repeat(176)])).content,
            Content::Empty
        );
    }

    #[test]
    fn a_wrapped_pdu_is_joined_by_the_declared_length() {
        let (a, b) = PDU.split_at(40);
        let got = parse_cmgr(&lines(&["+CMGR: 0,,30", a, b]));
        assert_eq!(message(&got), whole());
    }

    #[test]
    fn a_pdu_without_its_smsc_field_is_recognised_by_its_length() {
        let tpdu = &PDU[16..];
        let got = parse_cmgr(&lines(&["+CMGR: 0,,30", tpdu]));
        let mut want = vec![0u8];
        want.extend_from_slice(&whole()[8..]);
        assert_eq!(message(&got), want);
    }

    #[test]
    fn text_mode_answers() {
        let a = parse_cmgr(&lines(&[
            "+CMGR: \"REC UNREAD\",\"+31625044454\",,\"07/07/05,09:56:03+08\"",
            "Test message",
        ]));
        assert!(matches!(
            a.content,
            Content::Unreadable {
                text_mode: true,
                ..
            }
        ));
        assert!(a.answer.contains("Test message"));
        let a = parse_cmgr(&lines(&["+CMGR: \"STO SENT\",\"+31625044454\"", "Hi"]));
        assert!(matches!(a.content, Content::Foreign { .. }));
    }

    #[test]
    fn a_phones_own_texts_are_foreign() {
        // SMS-SUBMIT (TP-MTI 01) in the inbox, stat 3 "stored sent".
        let submit =
            sms::encode_submit("+31641600986", "sent from the phone", &Default::default()).unwrap();
        let hex = submit.parts[0].hex();
        let len = submit.parts[0].tpdu_length;
        let a = parse_cmgr(&lines(&[&format!("+CMGR: 3,,{len}"), &hex]));
        assert_eq!(a.content, Content::Foreign { what: "SMS-SUBMIT" });
        // Even when a phone marks it received.
        let a = parse_cmgr(&lines(&[&format!("+CMGR: 1,,{len}"), &hex]));
        assert_eq!(a.content, Content::Foreign { what: "SMS-SUBMIT" });
        // TP-MTI 10 written by the phone, not a report: an SMS-COMMAND (TP-MR 0, PID 0, CT 1,
        // MN 5, DA +1 555, CDL 0).
        let a = parse_cmgr(&lines(&["+CMGR: 2,,9", "000200000105039155F500"]));
        assert_eq!(
            a.content,
            Content::Foreign {
                what: "SMS-COMMAND"
            }
        );
    }

    #[test]
    fn reports_and_unreadable() {
        let report = "07911326040000F006E60B911326880736F4111011719551401110117195714000";
        let a = parse_cmgr(&lines(&["+CMGR: 0,,25", &format!("{report}FFFF")]));
        assert_eq!(a.content, Content::Report(sms::parse_hex(report).unwrap()));
        // Reserved TP-MTI 11.
        let a = parse_cmgr(&lines(&["+CMGR: 0,,3", "0003FFFF"]));
        assert!(matches!(a.content, Content::Unreadable { .. }), "{a:?}");
        // Garbage instead of a PDU.
        let a = parse_cmgr(&lines(&["+CMGR: 0,,23", "hello there"]));
        assert!(matches!(a.content, Content::Unreadable { .. }));
        // A header without its PDU line.
        let a = parse_cmgr(&lines(&["+CMGR: 0,,23"]));
        assert!(matches!(a.content, Content::Unreadable { .. }));
    }

    #[test]
    fn short_user_data_is_kept() {
        // UDL says 12 septets; only 5 octets of user data follow.
        let cut = &PDU[..PDU.len() - 12];
        let a = parse_cmgr(&lines(&["+CMGR: 0,,30", cut]));
        let Content::Message(p) = &a.content else {
            panic!("{a:?}")
        };
        let (Pdu::Deliver(d), _) = sms::decode_lenient(p, true).unwrap() else {
            panic!()
        };
        assert!(d.user_data.truncated);
        assert_eq!(d.user_data.text(), "How a");
    }

    #[test]
    fn listing() {
        let got = parse_cmgl(&lines(&[
            "+CMGL: 0,1,,30",
            PDU,
            "+CMGL: 3,0,,30",
            "+CMGL: 4,0,,23",
            &format!("{PDU}FF"),
            "\"",
            "+CMGL: 5,0,\"x\",0",
            "+CMGL: garbled",
            "zz",
        ]));
        assert_eq!(got.len(), 5);
        assert_eq!(got[0].index, Some(0));
        assert_eq!(message(&got[0]), whole());
        assert!(matches!(got[1].content, Content::Unreadable { .. }));
        assert_eq!(got[2].index, Some(4));
        assert_eq!(message(&got[2]), whole());
        assert!(got[2].answer.ends_with("\r\n\""));
        assert_eq!(got[3].content, Content::Empty);
        assert_eq!(got[4].index, None);
        assert!(matches!(got[4].content, Content::Unreadable { .. }));
    }

    proptest::proptest! {
        /// Whatever follows a `+CMGR:` header, reading it never panics and never leaves a slot
        /// unaccounted for: what is not a message, a report or a phone's own text is kept raw;
        /// "empty" only where nothing but fill or a bare SMSC field is there.
        #[test]
        fn any_answer_is_accounted_for(
            header in proptest::prop_oneof![
                proptest::strategy::Just(String::new()),
                "[0-9]{0,3}(,[0-9\"A-Z ]{0,6}){0,3}",
                proptest::strategy::Just("0,,23".to_string()),
            ],
            body in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..80), 0..4),
            hexed in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
        ) {
            let mut lines = vec![format!("+CMGR: {header}")];
            lines.push(sms::to_hex(&hexed));
            for b in &body {
                lines.push(String::from_utf8_lossy(b).trim().to_string());
            }
            lines.retain(|l| !l.is_empty());
            let a = parse_cmgr(&lines);
            if a.content == Content::Empty {
                let smsc_end = 1 + usize::from(hexed.first().copied().unwrap_or(0));
                proptest::prop_assert!(
                    hexed.iter().all(|&b| b == 0xFF) || hexed.len() <= smsc_end,
                    "a slot with content read as empty: {lines:?}"
                );
            }
            for l in [&lines[..], &lines[1..]] {
                let _ = parse_cmgl(l);
            }
        }
    }
}
