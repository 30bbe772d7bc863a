//! A cursor over PDU octets that turns every overrun into a [`DecodeError::Truncated`].

use super::error::DecodeError;

/// Parses a hex string (as printed by `AT+CMGR`, `+CMT`, `+CDS`) into octets. Whitespace around the
/// string is ignored; anything else that is not a hex digit is an error with its position.
pub fn parse_hex(hex: &str) -> Result<Vec<u8>, DecodeError> {
    let hex = hex.trim();
    ::hex::decode(hex).map_err(|e| match e {
        ::hex::FromHexError::InvalidHexCharacter { index, .. } => DecodeError::Hex {
            position: index,
            reason: "not a hex digit",
        },
        ::hex::FromHexError::OddLength | ::hex::FromHexError::InvalidStringLength => {
            DecodeError::Hex {
                position: hex.len(),
                reason: "odd number of hex digits",
            }
        }
    })
}

/// Formats octets as upper-case hex, the form modems expect after `AT+CMGS`.
pub fn to_hex(octets: &[u8]) -> String {
    ::hex::encode_upper(octets)
}

/// Reads octets front to back, remembering the position for error messages.
pub(crate) struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    /// Added to `pos` in errors, so that positions count from the start of the whole input.
    base: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(data: &'a [u8], base: usize) -> Self {
        Reader { data, pos: 0, base }
    }

    /// Absolute position of the next octet.
    pub(crate) fn offset(&self) -> usize {
        self.base + self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.take(1, field)?[0])
    }

    pub(crate) fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        if n > self.remaining() {
            return Err(DecodeError::Truncated {
                field,
                offset: self.offset(),
                needed: n,
                available: self.remaining(),
            });
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// What is left, without taking it.
    pub(crate) fn peek_rest(&self) -> &'a [u8] {
        &self.data[self.pos..]
    }

    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let s = &self.data[self.pos..];
        self.pos = self.data.len();
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_errors() {
        assert_eq!(parse_hex(" 00ff1A ").unwrap(), vec![0x00, 0xFF, 0x1A]);
        assert_eq!(to_hex(&[0x00, 0xFF, 0x1A]), "00FF1A");
        assert!(matches!(
            parse_hex("abc"),
            Err(DecodeError::Hex { position: 3, .. })
        ));
        assert!(matches!(
            parse_hex("0g"),
            Err(DecodeError::Hex { position: 1, .. })
        ));
        assert_eq!(parse_hex("").unwrap(), Vec::<u8>::new());
    }

    #[test]
    fn reader_reports_truncation_with_offset() {
        let mut r = Reader::new(&[1, 2, 3], 10);
        assert_eq!(r.u8("a").unwrap(), 1);
        let err = r.take(5, "field").unwrap_err();
        assert_eq!(
            err,
            DecodeError::Truncated {
                field: "field",
                offset: 11,
                needed: 5,
                available: 2
            }
        );
    }
}
