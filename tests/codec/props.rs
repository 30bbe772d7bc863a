//! Property tests: every text round-trips through encode → decode, no part is ever over
//! 140 octets of user data, and the decoder never panics on any bytes.

use proptest::prelude::*;
use smsgate::sms::{self, Address, Body, NationalLanguage, Pdu, SubmitOptions};

/// Characters that exercise every path: GSM default, extension (two septets), national-table
/// letters, other BMP characters, and characters outside the BMP (surrogate pairs).
fn interesting_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => prop::sample::select("abcXYZ019 .,!?@£$¥èéΔ_ΣÆß\n\r".chars().collect::<Vec<_>>()),
        2 => prop::sample::select("€[]{}\\^~|\u{c}".chars().collect::<Vec<_>>()),
        1 => prop::sample::select("şğıİçêâõáíóúÁ".chars().collect::<Vec<_>>()),
        1 => prop::sample::select("жЖ中文ü✅".chars().collect::<Vec<_>>()),
        1 => prop::sample::select("😀🎉👍🏽🇺🇸".chars().collect::<Vec<_>>()),
        1 => any::<char>(),
    ]
}

fn text_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        // Mostly-GSM texts around the part boundaries.
        prop::collection::vec(interesting_char(), 1..700).prop_map(|v| v.into_iter().collect()),
        // Pure GSM texts (no UCS-2 fallback) of any length up to 6 parts.
        prop::collection::vec(
            prop::sample::select("aZ0 @€[^".chars().collect::<Vec<_>>()),
            1..920
        )
        .prop_map(|v| v.into_iter().collect()),
        // Anything at all.
        any::<String>().prop_filter("non-empty", |s| !s.is_empty()),
    ]
}

fn languages() -> impl Strategy<Value = Vec<NationalLanguage>> {
    prop::sample::subsequence(NationalLanguage::ALL.to_vec(), 0..=3)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn submit_round_trips(text in text_strategy(), langs in languages(), reference: u8, srr: bool) {
        let opts = SubmitOptions {
            concat_reference: reference,
            status_report: srr,
            max_parts: 255,
            national_languages: langs,
            ..SubmitOptions::default()
        };
        let msg = sms::encode_submit("+15551234567", &text, &opts).unwrap();
        let total = msg.parts.len();
        let mut bodies: Vec<Body> = Vec::new();
        for (i, part) in msg.parts.iter().enumerate() {
            // The SMSC field is one octet ("use the SIM's SMSC").
            prop_assert_eq!(part.tpdu_length, part.pdu.len() - 1);
            let Pdu::Submit(s) = sms::decode(&part.pdu, true).unwrap() else {
                panic!("not a submit");
            };
            // TP-UD never over 140 octets: the TPDU minus the fixed fields.
            let fixed = 1 + 1 + 2 + 6 + 1 + 1 + 1; // first, MR, DA header+digits, PID, DCS, UDL
            prop_assert!(part.tpdu_length - fixed <= 140, "UD of {} octets", part.tpdu_length - fixed);
            prop_assert_eq!(s.to.to_string(), "+15551234567");
            prop_assert_eq!(s.status_report_requested, srr);
            prop_assert_eq!(s.user_data.body.encoding(), msg.encoding);
            match s.user_data.concat() {
                Some(c) => {
                    prop_assert!(total > 1);
                    prop_assert_eq!((c.reference, c.part as usize, c.total as usize),
                                    (u16::from(reference), i + 1, total));
                }
                None => prop_assert_eq!(total, 1),
            }
            // Every part decodes on its own: no escape or surrogate pair is split.
            let own = s.user_data.text();
            let split = own.contains(char::REPLACEMENT_CHARACTER) && !text.contains(char::REPLACEMENT_CHARACTER);
            prop_assert!(!split, "part {} decodes with a broken character", i + 1);
            bodies.push(s.user_data.body);
        }
        prop_assert_eq!(sms::join_text(&bodies), text);
    }

    #[test]
    fn deliver_round_trips(text in text_strategy(), ucs2: bool, reference: u8) {
        let ts = chrono::DateTime::parse_from_rfc3339("2026-11-23T08:00:00-05:00").unwrap();
        let from = Address::parse_number("from", "+15557654321").unwrap();
        let pdus = sms::encode_deliver(None, &from, &text, &ts, ucs2, reference).unwrap();
        let mut bodies = Vec::new();
        for pdu in &pdus {
            let Pdu::Deliver(d) = sms::decode(pdu, true).unwrap() else { panic!() };
            prop_assert_eq!(d.timestamp, ts);
            prop_assert_eq!(&d.from, &from);
            bodies.push(d.user_data.body);
        }
        prop_assert_eq!(sms::join_text(&bodies), text);
    }

    #[test]
    fn decoder_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200), smsc: bool) {
        let _ = sms::decode(&bytes, smsc);
    }

    #[test]
    fn decoder_never_panics_on_mutated_pdus(
        text in text_strategy(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
    ) {
        let opts = SubmitOptions { max_parts: 255, ..SubmitOptions::default() };
        let msg = sms::encode_submit("+15551234567", &text, &opts).unwrap();
        let mut pdu = msg.parts[0].pdu.clone();
        for (i, v) in flips {
            let at = i.index(pdu.len());
            pdu[at] = v;
        }
        let _ = sms::decode(&pdu, true);
        pdu.truncate(cut.index(pdu.len() + 1));
        let _ = sms::decode(&pdu, true);
        let _ = sms::decode_hex(&sms::to_hex(&pdu), false);
    }

    #[test]
    fn hex_parser_never_panics(s in ".{0,80}") {
        let _ = sms::decode_hex(&s, true);
    }
}
