//! Feeds arbitrary modem output to the AT line codec in arbitrary chunk sizes, and every line
//! it frames to the classifier and the URC parser. Any panic is a bug: a modem that sends
//! garbage must not take the driver down.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use smsgate::modem::codec::{self, AtCodec, Frame};
use tokio_util::codec::Decoder;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the chunk size, so splits land everywhere.
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(first % 64) + 1;
    let mut codec = AtCodec::new();
    let mut buf = BytesMut::new();
    let mut lines = Vec::new();
    for piece in rest.chunks(chunk) {
        buf.extend_from_slice(piece);
        while let Ok(Some(frame)) = codec.decode(&mut buf) {
            lines.push(frame);
        }
    }
    while let Ok(Some(frame)) = codec.decode_eof(&mut buf) {
        lines.push(frame);
    }
    for f in lines {
        if let Frame::Line(l) = f {
            assert!(l.len() <= codec::MAX_LINE);
            let _ = codec::classify(&l, Some("+CMGS:"));
            let _ = codec::classify(&l, None);
            let _ = codec::parse_urc(&l);
            let _ = codec::parse_registration(&l, true);
            let _ = smsgate::modem::stored::parse_cmgl(&[l.clone(), l.clone()]);
            let _ = smsgate::modem::stored::parse_cmgr(&[l.clone(), l.clone()]);
        }
    }
});
