//! Feeds arbitrary bytes to the PDU decoder (with and without the SMSC field) and to the hex
//! parser. Any panic is a bug: the decoder must return Ok or a typed error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smsgate::sms;

fuzz_target!(|data: &[u8]| {
    let _ = sms::decode(data, true);
    let _ = sms::decode(data, false);
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = sms::decode_hex(s, true);
    }
    // Whatever decodes must survive being shown as text and joined.
    if let Ok(sms::Pdu::Deliver(d)) = sms::decode(data, true) {
        let _ = sms::join_text([&d.user_data.body, &d.user_data.body]);
    }
});
