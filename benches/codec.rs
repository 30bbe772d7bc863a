//! Codec speed: encoding and decoding a 153-character GSM 7-bit text and a 6-part UCS-2 text.
//! Run with `cargo bench --bench codec`; figures are recorded in docs/benchmarks.md.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use smsgate::sms::{self, SubmitOptions};

fn texts() -> (String, String) {
    let gsm: String = "Reminder: invoice INV-1042 for $120.50 is due on Dec 1. Pay at example.com/p/1042 or reply 1 for a call, 2 to pay the minimum. Reply STOP to opt out of texts."
        .chars()
        .cycle()
        .take(153)
        .collect();
    assert_eq!(gsm.chars().count(), 153);
    // 6 parts of UCS-2: 6 × 67 = 402 units, with a few emoji (surrogate pairs).
    let mut ucs2 = String::new();
    while ucs2.encode_utf16().count() < 6 * 67 - 2 {
        ucs2.push_str("Счёт №1042: 120,50 ₽ до 1 декабря 😀 ");
    }
    let ucs2: String = {
        let mut s = String::new();
        for c in ucs2.chars() {
            if s.encode_utf16().count() + c.len_utf16() > 6 * 67 {
                break;
            }
            s.push(c);
        }
        s
    };
    (gsm, ucs2)
}

fn bench(c: &mut Criterion) {
    let (gsm, ucs2) = texts();
    let opts = SubmitOptions::default();
    let gsm_msg = sms::encode_submit("+15551234567", &gsm, &opts).expect("encodes");
    let ucs2_msg = sms::encode_submit("+15551234567", &ucs2, &opts).expect("encodes");
    assert_eq!(gsm_msg.parts.len(), 1);
    assert_eq!(ucs2_msg.parts.len(), 6);

    c.bench_function("encode gsm7 153 chars (1 part)", |b| {
        b.iter(|| sms::encode_submit(black_box("+15551234567"), black_box(&gsm), &opts))
    });
    c.bench_function("encode ucs2 6 parts", |b| {
        b.iter(|| sms::encode_submit(black_box("+15551234567"), black_box(&ucs2), &opts))
    });
    c.bench_function("decode gsm7 153 chars (1 part)", |b| {
        b.iter(|| sms::decode(black_box(&gsm_msg.parts[0].pdu), true))
    });
    c.bench_function("decode+join ucs2 6 parts", |b| {
        b.iter(|| {
            let bodies: Vec<_> = ucs2_msg
                .parts
                .iter()
                .filter_map(|p| match sms::decode(black_box(&p.pdu), true) {
                    Ok(sms::Pdu::Submit(s)) => Some(s.user_data.body),
                    _ => None,
                })
                .collect();
            sms::join_text(&bodies)
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
