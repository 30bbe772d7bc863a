//! Known PDUs from public examples and the specs, decoded and (where they are SUBMITs) re-encoded
//! byte for byte.

use std::time::Duration;

use smsgate::sms::{
    self, Address, Body, Charset, Encoding, NationalLanguage, Pdu, StatusCategory, SubmitOptions,
    TypeOfNumber,
};

fn deliver(hex: &str) -> sms::Deliver {
    match sms::decode_hex(hex, true).expect("decodes") {
        Pdu::Deliver(d) => d,
        other => panic!("not a deliver: {other:?}"),
    }
}

#[test]
fn submit_hellohello_both_directions() {
    // The classic SMS-SUBMIT example: "hellohello" to +46708251358, TP-VP 4 days (0xAA).
    let hex = "0011000B916407281553F80000AA0AE8329BFD4697D9EC37";
    let opts = SubmitOptions {
        validity: Some(Duration::from_secs(4 * 86_400)),
        ..SubmitOptions::default()
    };
    let msg = sms::encode_submit("+46708251358", "hellohello", &opts).unwrap();
    assert_eq!(msg.parts.len(), 1);
    assert_eq!(msg.parts[0].hex(), hex);
    assert_eq!(msg.parts[0].tpdu_length, 23);
    let Pdu::Submit(s) = sms::decode_hex(hex, true).unwrap() else {
        panic!("not a submit")
    };
    assert_eq!(s.to.to_string(), "+46708251358");
    assert_eq!(s.user_data.text(), "hellohello");
    assert_eq!(s.validity, Some(sms::Validity::Relative(4 * 86_400)));
    assert!(!s.status_report_requested);
}

#[test]
fn deliver_how_are_you() {
    // The classic SMS-DELIVER example (SMSC +31624000000).
    let d = deliver("07911326040000F0040B911346610089F60000208062917314080CC8F71D14969741F977FD07");
    assert_eq!(d.smsc.unwrap().to_string(), "+31624000000");
    assert_eq!(d.from.to_string(), "+31641600986");
    assert_eq!(d.user_data.text(), "How are you?");
    assert_eq!(d.data_coding.encoding, Encoding::Gsm7);
    // TZ octet 08: sign bit set, zero quarters (TS 23.040 §9.2.3.11).
    assert_eq!(d.timestamp.to_rfc3339(), "2002-08-26T19:37:41+00:00");
}

#[test]
fn status_report_delivered() {
    // +CDS example (no SMSC field): TP-MR 0, delivered.
    let hex = "06000B910221815716F2709021510121807090215101718000";
    let Pdu::StatusReport(r) = sms::decode_hex(hex, false).unwrap() else {
        panic!("not a status report")
    };
    assert_eq!(r.message_reference, 0);
    assert_eq!(r.recipient.to_string(), "+20121875612");
    assert_eq!(r.timestamp.to_rfc3339(), "2007-09-12T15:10:12+02:00");
    assert_eq!(r.discharge_time.to_rfc3339(), "2007-09-12T15:10:17+02:00");
    assert_eq!(r.status.category(), StatusCategory::Delivered);
}

#[test]
fn status_report_failures_and_pending() {
    let ts = chrono::DateTime::parse_from_rfc3339("2026-11-23T10:00:00-05:00").unwrap();
    let to = Address::parse_number("to", "+15551234567").unwrap();
    for (code, cat) in [
        (0x00, StatusCategory::Delivered),
        (0x21, StatusCategory::Pending),
        (0x46, StatusCategory::Failed),
        (0x62, StatusCategory::Failed),
        (0x90, StatusCategory::Unknown),
    ] {
        let pdu = sms::encode_status_report(None, 200, &to, &ts, &ts, code);
        let Pdu::StatusReport(r) = sms::decode(&pdu, true).unwrap() else {
            panic!("not a status report")
        };
        assert_eq!((r.message_reference, r.status.code), (200, code));
        assert_eq!(r.status.category(), cat);
        assert_eq!(r.recipient, to);
        assert_eq!(r.timestamp, ts);
    }
}

#[test]
fn multipart_gsm7_header_and_fill_bits() {
    // 161 characters: two parts of 153 + 8 septets, UDH 05 00 03 <ref> 02 0n, one fill bit.
    let text: String = "0123456789".repeat(17).chars().take(161).collect();
    let opts = SubmitOptions {
        concat_reference: 0x7A,
        ..SubmitOptions::default()
    };
    let msg = sms::encode_submit("+15551234567", &text, &opts).unwrap();
    assert_eq!(msg.parts.len(), 2);
    let mut bodies = Vec::new();
    for (i, part) in msg.parts.iter().enumerate() {
        let Pdu::Submit(s) = sms::decode(&part.pdu, true).unwrap() else {
            panic!()
        };
        let c = s.user_data.concat().unwrap();
        assert_eq!((c.reference, c.part, c.total), (0x7A, i as u8 + 1, 2));
        // first octet: SUBMIT with UDHI
        assert_eq!(part.pdu[1], 0x41);
        bodies.push(s.user_data.body);
    }
    // UDL of part 1 is 160 septets (7 for the header + 153), 140 octets of UD.
    assert_eq!(*msg.parts[0].pdu.iter().rev().nth(140).unwrap(), 160);
    assert_eq!(sms::join_text(&bodies), text);
    // The first text septet '0' (0x30) follows one fill bit: 0x30 << 1 = 0x60.
    let ud_start = msg.parts[0].pdu.len() - 140;
    assert_eq!(
        &msg.parts[0].pdu[ud_start..ud_start + 7],
        &[5, 0, 3, 0x7A, 2, 1, 0x60]
    );
}

#[test]
fn ucs2_deliver_with_emoji_round_trip() {
    let ts = chrono::DateTime::parse_from_rfc3339("2026-11-23T21:05:09+01:00").unwrap();
    let from = Address::parse_number("from", "+447700900123").unwrap();
    let text = "Zahlung erhalten ✅ 😀 Спасибо";
    let pdus = sms::encode_deliver(None, &from, text, &ts, false, 0).unwrap();
    assert_eq!(pdus.len(), 1);
    let d = deliver(&sms::to_hex(&pdus[0]));
    assert_eq!(d.user_data.text(), text);
    assert_eq!(d.data_coding.encoding, Encoding::Ucs2);
    assert_eq!(d.timestamp, ts);
    assert_eq!(d.from.to_string(), "+447700900123");
}

#[test]
fn forced_ucs2_deliver_of_plain_text() {
    let ts = chrono::DateTime::parse_from_rfc3339("2026-11-23T21:05:09+00:00").unwrap();
    let from = Address::parse_number("from", "+15551234567").unwrap();
    let text = "1".repeat(71);
    let pdus = sms::encode_deliver(None, &from, &text, &ts, true, 9).unwrap();
    assert_eq!(pdus.len(), 2);
    let bodies: Vec<Body> = pdus
        .iter()
        .map(|p| deliver(&sms::to_hex(p)).user_data.body)
        .collect();
    assert!(bodies.iter().all(|b| b.encoding() == Encoding::Ucs2));
    assert_eq!(sms::join_text(&bodies), text);
    // A one-character forced UCS-2 text is one part.
    let one = sms::encode_deliver(None, &from, "1", &ts, true, 0).unwrap();
    assert_eq!(deliver(&sms::to_hex(&one[0])).user_data.text(), "1");
}

#[test]
fn alphanumeric_originator() {
    // SMS-DELIVER from "Info" (TON 101), default alphabet, text "hi".
    // OA: length 7 semi-octets (4 septets = 28 bits), D0, packed "Info" = 49 B7 F9 0D
    let hex = "0004".to_string() + "07D049B7F90D" + "0000" + "62113201000000" + "02E834";
    let d = deliver(&hex);
    assert_eq!(d.from.ton, TypeOfNumber::Alphanumeric);
    assert_eq!(d.from.to_string(), "Info");
    assert_eq!(d.user_data.text(), "hi");
}

#[test]
fn sixteen_bit_concat_reference_and_class0() {
    // DCS 0x10: GSM 7-bit, class 0 ("flash"); UDH 06 08 04 12 34 02 01 (16-bit reference).
    // UDL = 8 septets for the 7-octet header (56 bits, no fill) + 2 for "hi".
    let hex = "0044".to_string()
        + "0B915155214365F7"
        + "0010"
        + "62113201000000"
        + "0A"
        + "06080412340201"
        + "E834";
    let d = deliver(&hex);
    let c = d.user_data.concat().unwrap();
    assert_eq!(
        (c.reference, c.part, c.total, c.sixteen_bit),
        (0x1234, 1, 2, true)
    );
    assert_eq!(d.data_coding.class, Some(0));
    assert_eq!(d.user_data.text(), "hi");
}

#[test]
fn eight_bit_data() {
    let hex = "0004".to_string() + "0B915155214365F7" + "0004" + "62113201000000" + "03" + "C0FFEE";
    let d = deliver(&hex);
    assert_eq!(d.data_coding.encoding, Encoding::EightBit);
    assert_eq!(d.user_data.body, Body::Binary(vec![0xC0, 0xFF, 0xEE]));
}

#[test]
fn national_language_saves_parts() {
    // Turkish text with ş/ğ/ı: UCS-2 by default, GSM 7-bit with the Turkish tables.
    let text = "Sayın müşterimiz, ödemeniz için teşekkür ederiz. Bir sorunuz olursa bizi arayın.";
    let plain = sms::encode_submit("+905551234567", text, &SubmitOptions::default()).unwrap();
    assert_eq!(plain.encoding, Encoding::Ucs2);
    assert_eq!(plain.parts.len(), 2);
    let opts = SubmitOptions {
        national_languages: vec![NationalLanguage::Turkish],
        ..SubmitOptions::default()
    };
    let tr = sms::encode_submit("+905551234567", text, &opts).unwrap();
    assert_eq!(tr.encoding, Encoding::Gsm7);
    assert_eq!(tr.parts.len(), 1);
    assert!(tr.national_language.0.is_some() || tr.national_language.1.is_some());
    let Pdu::Submit(s) = sms::decode(&tr.parts[0].pdu, true).unwrap() else {
        panic!()
    };
    assert_eq!(s.user_data.text(), text);
    // Texts that fit the default alphabet never pay for a national language header.
    let ascii = sms::encode_submit("+905551234567", "Hello", &opts).unwrap();
    assert_eq!(ascii.national_language, (None, None));
}

#[test]
fn spanish_single_shift() {
    let text = "Señora García: su próxima cuota vence el miércoles. ¿Dudas? Llámenos.";
    let opts = SubmitOptions {
        national_languages: vec![NationalLanguage::Spanish],
        ..SubmitOptions::default()
    };
    let m = sms::encode_submit("+34600123456", text, &opts).unwrap();
    assert_eq!(m.encoding, Encoding::Gsm7);
    assert_eq!(m.national_language, (None, Some(NationalLanguage::Spanish)));
    let Pdu::Submit(s) = sms::decode(&m.parts[0].pdu, true).unwrap() else {
        panic!()
    };
    assert_eq!(s.user_data.text(), text);
}

#[test]
fn smsc_and_status_report_flags() {
    let opts = SubmitOptions {
        smsc: Some("+31624000000".into()),
        status_report: true,
        message_reference: 42,
        ..SubmitOptions::default()
    };
    let m = sms::encode_submit("0612345678", "x", &opts).unwrap();
    let p = &m.parts[0];
    assert_eq!(
        &p.pdu[..8],
        &[0x07, 0x91, 0x13, 0x26, 0x04, 0x00, 0x00, 0xF0]
    );
    assert_eq!(p.tpdu_length, p.pdu.len() - 8);
    let Pdu::Submit(s) = sms::decode(&p.pdu, true).unwrap() else {
        panic!()
    };
    assert!(s.status_report_requested);
    assert_eq!(s.message_reference, 42);
    assert_eq!(s.to.to_string(), "0612345678");
    assert_eq!(s.smsc.unwrap().to_string(), "+31624000000");
}

#[test]
fn malformed_inputs_are_typed_errors() {
    let cases = [
        ("", "truncated"),
        ("0", "odd number of hex digits"),
        ("zz", "not a hex digit"),
        ("00", "truncated"),
        ("0003", "reserved"),                                        // TP-MTI 11
        ("0004FF91", "bad length"),                                  // OA length 255
        ("00040B915155214365F700006211320100000005E8", "truncated"), // UDL 5 septets, 1 octet
        ("00040B915155214365F7000062113201000000A1", "bad length"),  // UDL 161
        (
            "00440B915155214365F700086211320100000003050003",
            "bad length",
        ), // UDH overruns
        (
            "00040B915155214365F70008621132010000000300410A",
            "not a whole number",
        ), // odd UCS-2
        ("00040B915155214365F70000621332010000000100", "no such date"), // day 33
        ("FF00", "did you mean --no-smsc"),
    ];
    for (hex, needle) in cases {
        let err = sms::decode_hex(hex, true).expect_err(hex).to_string();
        assert!(err.contains(needle), "{hex}: {err:?} lacks {needle:?}");
    }
}

#[test]
fn default_charset_knows_every_gsm_character() {
    let all = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà\u{c}^{}\\[~]|€";
    let septets = Charset::DEFAULT.encode(all).unwrap();
    assert_eq!(septets.len(), 127 + 2 * 10);
    assert_eq!(Charset::DEFAULT.decode(&septets), all);
}
