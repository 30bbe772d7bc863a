//! USSD (3GPP TS 22.090, AT commands in TS 27.007 §7.15): a code such as `*100#` sent to the
//! operator, answered with a short text (the prepaid balance, the SIM's number, …).
//!
//! `AT+CUSD=1,"<code>",15` is answered `OK` at once; the operator's answer arrives later as
//! `+CUSD: <m>[,"<text>"[,<dcs>]]`. Modems disagree about the text's form: most give it as
//! text in the character set of `AT+CSCS`, some (Huawei) as GSM 7-bit packed into hex, and a
//! UCS-2 answer (`<dcs>` 72) as hex. [`decode`] recognises the three; some modems also want the
//! code itself packed, which the driver tries when the plain form is refused.

use serde::Serialize;

use crate::sms::{Charset, gsm7, parse_hex, to_hex};

/// The operator's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UssdAnswer {
    /// `<m>`: 0 done, 1 the network waits for a reply, 2 ended by the network, 3 answered by
    /// another client, 4 not supported, 5 the network timed out.
    pub status: u8,
    /// `status` in words.
    pub status_text: String,
    /// The answer's text, decoded.
    pub text: Option<String>,
    /// `<dcs>`, the data coding scheme (TS 23.038 §5).
    pub dcs: Option<u8>,
}

/// `status` in words.
pub fn status_words(status: u8) -> &'static str {
    match status {
        0 => "done",
        1 => "the network waits for a reply",
        2 => "ended by the network",
        3 => "answered by another client",
        4 => "not supported by the network",
        5 => "the network timed out",
        _ => "unknown",
    }
}

/// Parses the arguments of a `+CUSD:` line (after the prefix).
pub fn parse(args: &str) -> Option<UssdAnswer> {
    let args = args.trim();
    let (status, rest) = match args.split_once(',') {
        Some((s, r)) => (s.trim(), Some(r)),
        None => (args, None),
    };
    let status: u8 = status.parse().ok()?;
    let (raw, dcs) = match rest {
        None => (None, None),
        Some(r) => {
            let r = r.trim();
            // The text is quoted and may hold commas and quotes: up to the last quote.
            match (r.find('"'), r.rfind('"')) {
                (Some(a), Some(b)) if b > a => {
                    let text = &r[a + 1..b];
                    let dcs = r[b + 1..].trim_start_matches(',').trim().parse::<u8>().ok();
                    (Some(text.to_string()), dcs)
                }
                _ => (Some(r.to_string()), None),
            }
        }
    };
    Some(UssdAnswer {
        status,
        status_text: status_words(status).to_string(),
        text: raw.map(|t| decode(&t, dcs)),
        dcs,
    })
}

fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.len().is_multiple_of(2) && s.chars().all(|c| c.is_ascii_hexdigit())
}

/// Whether `dcs` says UCS-2 (TS 23.038 §5: general coding with the alphabet bits `10`, or the
/// language-indicated UCS-2 group `0x48`).
fn ucs2(dcs: u8) -> bool {
    dcs == 0x48
        || (dcs & 0xC0 == 0x40 && dcs & 0x0C == 0x08)
        || (dcs & 0xF0 == 0x10 && dcs & 0x01 == 1)
}

/// The answer's text, whatever form the modem gave it in. Hex is read as UCS-2 when `dcs` says
/// so, else as packed GSM 7-bit when it reads as text; an answer of plain digits ("1234") is
/// taken as it is.
pub fn decode(raw: &str, dcs: Option<u8>) -> String {
    if !is_hex(raw) || raw.chars().all(|c| c.is_ascii_digit()) {
        return raw.to_string();
    }
    if dcs.is_some_and(ucs2)
        && raw.len().is_multiple_of(4)
        && let Ok(bytes) = parse_hex(raw)
    {
        let units: Vec<u16> = bytes
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect();
        return String::from_utf16_lossy(&units);
    }
    unpack_hex(raw)
        .filter(|t| t.chars().all(|c| !c.is_control() || c == '\n' || c == '\r'))
        .unwrap_or_else(|| raw.to_string())
}

/// Hex of packed GSM 7-bit septets, as text (a trailing `@` from the padding dropped).
pub fn unpack_hex(raw: &str) -> Option<String> {
    let bytes = parse_hex(raw).ok()?;
    let septets = gsm7::unpack(&bytes, bytes.len() * 8 / 7, 0)?;
    let mut text = Charset::DEFAULT.decode(&septets);
    // 7 spare bits at the end of the last octet read as '@' (or CR, TS 23.038 §6.1.2.3.1).
    if bytes.len() * 8 % 7 == 0 && (text.ends_with('@') || text.ends_with('\r')) {
        text.pop();
    }
    Some(text)
}

/// A code packed into GSM 7-bit hex, for modems that want it so; `None` if it is not GSM text.
pub fn pack_code(code: &str) -> Option<String> {
    let mut septets = Charset::DEFAULT.encode(code)?;
    // A last octet with 7 spare bits would read as '@': pad with CR instead (§6.1.2.3.1).
    if septets.len() % 8 == 7 {
        septets.push(0x0D);
    }
    Some(to_hex(&gsm7::pack(&septets, 0)))
}

/// Whether a code is something to send: digits, `*`, `#` and `+`, 2 to 40 characters.
pub fn valid_code(code: &str) -> bool {
    (2..=40).contains(&code.len())
        && code
            .chars()
            .all(|c| c.is_ascii_digit() || "*#+".contains(c))
}

/// The first amount in an answer ("Balance: 12.34 USD" → 12.34; "Saldo 1.234,50 EUR" → 1234.5).
pub fn amount(text: &str) -> Option<f64> {
    let start = text.find(|c: char| c.is_ascii_digit())?;
    let negative = text[..start].trim_end().ends_with('-');
    let run: String = text[start..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ',')
        .collect();
    let run = run.trim_end_matches(['.', ',']);
    // The last separator followed by one or two digits is the decimal point; others group.
    let decimal = run
        .rfind(['.', ','])
        .filter(|&i| (1..=2).contains(&(run.len() - i - 1)));
    let mut n = String::new();
    for (i, c) in run.char_indices() {
        match c {
            '0'..='9' => n.push(c),
            _ if Some(i) == decimal => n.push('.'),
            _ => {}
        }
    }
    let v: f64 = n.parse().ok()?;
    Some(if negative { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_in_their_three_forms() {
        let a = parse(r#"0,"Balance: 12.34 USD, valid until 31.12.2027.",15"#).unwrap();
        assert_eq!(a.status, 0);
        assert_eq!(
            a.text.as_deref(),
            Some("Balance: 12.34 USD, valid until 31.12.2027.")
        );
        assert_eq!(a.dcs, Some(15));
        // Huawei: packed GSM 7-bit in hex.
        let packed = pack_code("Balance 5").unwrap();
        let a = parse(&format!("0,\"{packed}\",15")).unwrap();
        assert_eq!(a.text.as_deref(), Some("Balance 5"));
        // UCS-2 in hex.
        let a = parse(r#"0,"04110430043B0430043D0441",72"#).unwrap();
        assert_eq!(a.text.as_deref(), Some("Баланс"));
        // Nothing but a status.
        let a = parse("4").unwrap();
        assert_eq!((a.status, a.text), (4, None));
        assert_eq!(a.status_text, "not supported by the network");
        assert!(parse("x").is_none());
        // A plain answer of digits is not mistaken for hex.
        assert_eq!(
            parse(r#"0,"1234",15"#).unwrap().text.as_deref(),
            Some("1234")
        );
    }

    #[test]
    fn codes_and_amounts() {
        assert!(valid_code("*100#") && valid_code("*135*8#"));
        assert!(!valid_code("*100#\"; AT+CFUN=0") && !valid_code("#"));
        assert_eq!(unpack_hex(&pack_code("*100#").unwrap()).unwrap(), "*100#");
        assert_eq!(pack_code("*100#").unwrap(), "AA180C3602");
        assert_eq!(amount("Balance: 12.34 USD"), Some(12.34));
        assert_eq!(amount("Saldo 1.234,50 EUR"), Some(1234.5));
        assert_eq!(amount("You have 5 USD left"), Some(5.0));
        assert_eq!(amount("Balance: -3.10"), Some(-3.1));
        assert_eq!(amount("no numbers"), None);
    }
}
