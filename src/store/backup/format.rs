//! The export format (version 1), written and read one line at a time.
//!
//! JSON Lines (UTF-8, one object per line, lines end with `\n`):
//!
//! 1. a header: `{"smsgate_export":1,"created_at":"<RFC 3339>","version":"<smsgate version>"}`;
//! 2. one line per record: `{"tree":"<name>","key":"<hex>","value":<value>}`, the trees in the
//!    order of [`TREES`](super::TREES), each tree's records together and in key order. `key` is
//!    the key's bytes in lower-case hex. `value` is the stored bytes themselves when they are JSON on one line,
//!    written exactly as stored (the history's hash chain is over those bytes), or else
//!    `{"hex":"<the bytes in hex>"}` (index entries, binary values; an empty value is
//!    `{"hex":""}`). A stored JSON value that is itself an object whose only member is a `hex`
//!    string is written in the hex form, so the two forms never mix up;
//! 3. a last line `{"end":true,"records":<number of record lines>}`: an export without it was
//!    cut short.
//!
//! Keys and values come back byte for byte. sled's id generator, which numbers the outbox, is
//! not exported: an import moves the new store's generator past the highest outbox key, so new
//! deliveries are numbered after the imported ones.

use serde::Deserialize;
use serde_json::value::RawValue;

/// The export format this version writes and reads.
pub const EXPORT_FORMAT: u64 = 1;

/// The bytes in lower-case hex, appended to `out`.
pub(super) fn hex_into(out: &mut Vec<u8>, bytes: &[u8]) {
    let start = out.len();
    out.resize(start + bytes.len() * 2, 0);
    // The slice is exactly twice as long as the bytes: this cannot fail.
    let _ = ::hex::encode_to_slice(bytes, &mut out[start..]);
}

/// The bytes in lower-case hex.
pub(super) fn hex(bytes: &[u8]) -> String {
    ::hex::encode(bytes)
}

/// Hex (either case) back to bytes.
pub(super) fn unhex(s: &str) -> Result<Vec<u8>, String> {
    ::hex::decode(s).map_err(|e| match e {
        ::hex::FromHexError::InvalidHexCharacter { c, .. } => {
            format!("{c:?} is not a hex digit")
        }
        ::hex::FromHexError::OddLength | ::hex::FromHexError::InvalidStringLength => {
            format!("odd number of hex digits ({})", s.len())
        }
    })
}

/// The hex form of a value: an object whose only member is `hex`, a string.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HexValue {
    hex: String,
}

/// The hex string when `json` (no surrounding whitespace) is the hex form of a value.
pub(super) fn hex_form(json: &str) -> Option<String> {
    // serde also reads a struct from an array: only an object is the hex form.
    if !json.starts_with('{') {
        return None;
    }
    serde_json::from_str::<HexValue>(json).ok().map(|h| h.hex)
}

/// The stored bytes as text to write verbatim as an export's `value`: JSON on one line, with
/// nothing around it, that does not look like the hex form.
pub(super) fn verbatim_json(v: &[u8]) -> Option<&str> {
    let s = std::str::from_utf8(v).ok()?;
    if s.bytes().any(|b| b == b'\n' || b == b'\r') {
        return None;
    }
    let raw: &RawValue = serde_json::from_str(s).ok()?;
    if raw.get().len() != s.len() || hex_form(s).is_some() {
        return None;
    }
    Some(s)
}

/// Writes the export line of one record (with its `\n`) into `line`. The value is written as it
/// is stored when it is JSON that an import reads back to the same bytes (checked on the line
/// itself: the export never writes a line that the import would read otherwise), in the hex form
/// otherwise.
pub(super) fn record_line(line: &mut Vec<u8>, tree: &str, key: &[u8], value: &[u8]) {
    let start = |line: &mut Vec<u8>| {
        line.clear();
        line.extend_from_slice(b"{\"tree\":\"");
        line.extend_from_slice(tree.as_bytes());
        line.extend_from_slice(b"\",\"key\":\"");
        hex_into(line, key);
        line.extend_from_slice(b"\",\"value\":");
    };
    if let Some(json) = verbatim_json(value) {
        start(line);
        line.extend_from_slice(json.as_bytes());
        line.push(b'}');
        let reads_back = std::str::from_utf8(line)
            .ok()
            .and_then(|l| serde_json::from_str::<RecordLine<'_>>(l).ok())
            .is_some_and(|r| {
                r.value.get().as_bytes() == value && hex_form(r.value.get()).is_none()
            });
        if reads_back {
            line.push(b'\n');
            return;
        }
    }
    start(line);
    line.extend_from_slice(b"{\"hex\":\"");
    hex_into(line, value);
    line.extend_from_slice(b"\"}}\n");
}

/// A record line of an export.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RecordLine<'a> {
    pub(super) tree: String,
    pub(super) key: String,
    #[serde(borrow)]
    pub(super) value: &'a RawValue,
}

/// The last line of an export.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EndLine {
    pub(super) end: bool,
    pub(super) records: u64,
}

/// The first line of an export.
#[derive(Deserialize)]
pub(super) struct Header {
    pub(super) smsgate_export: u64,
    #[serde(default)]
    pub(super) version: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips() {
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(unhex(&hex(&bytes)).unwrap(), bytes);
        assert_eq!(unhex("ABcd").unwrap(), vec![0xAB, 0xCD]);
        assert!(unhex("abc").unwrap_err().contains("odd"));
        assert!(unhex("zz").unwrap_err().contains("not a hex digit"));
    }

    #[test]
    fn values_that_are_not_verbatim_json() {
        assert_eq!(verbatim_json(br#"{"a":1}"#), Some(r#"{"a":1}"#));
        assert_eq!(verbatim_json(b"null"), Some("null"));
        for v in [
            &b""[..],
            b"\x00",
            b" 1",
            b"1 ",
            b"{\"a\":\n1}",
            br#"{"hex":"00"}"#,
            b"\xff\xfe",
        ] {
            assert_eq!(verbatim_json(v), None, "{v:?}");
        }
        // Not the hex form: kept as JSON.
        assert!(verbatim_json(br#"["00"]"#).is_some());
        assert!(verbatim_json(br#"{"hex":"00","x":1}"#).is_some());
        assert!(verbatim_json(br#"{"hex":1}"#).is_some());
    }
}
