//! Phone numbers: what the API accepts (E.164, or national with `[sms] default_region`) and
//! what the network delivers as a sender (international, national, or international digits
//! without `+`), read into one E.164 form so that opt-outs, reply matching and the indexes agree.

use std::str::FromStr;

/// Results of recent number checks: validating a number against the numbering plan costs
/// about 10 µs, and a billing system texts the same customers again and again.
static NUMBERS: std::sync::LazyLock<NumberCache> =
    std::sync::LazyLock::new(|| quick_cache::sync::Cache::new(16_384));

/// (input, default region) → E.164. Only numbers that passed are kept: a refused input is not
/// worth memory an outsider chooses.
type NumberCache = quick_cache::sync::Cache<(String, Option<String>), String>;

/// The longest input checked as a phone number: E.164 has at most 15 digits, and spaces, dashes,
/// dots and parentheses rarely double that.
pub const MAX_NUMBER_INPUT: usize = 32;

/// Normalises a phone number to E.164 (`+` and digits), with `region` for national input.
pub fn normalise_number(input: &str, region: Option<&str>) -> Result<String, String> {
    if input.len() > MAX_NUMBER_INPUT {
        return Err(format!(
            "is {} characters long; a phone number has at most {MAX_NUMBER_INPUT}",
            input.len()
        ));
    }
    let key = (input.to_string(), region.map(str::to_string));
    if let Some(hit) = NUMBERS.get(&key) {
        return Ok(hit);
    }
    let r = check_number(input, region)?;
    NUMBERS.insert(key, r.clone());
    Ok(r)
}

fn check_number(input: &str, region: Option<&str>) -> Result<String, String> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err("is empty".into());
    }
    if trimmed
        .chars()
        .any(|c| !(c.is_ascii_digit() || " +-().".contains(c)))
    {
        return Err(format!("{trimmed:?} is not a phone number"));
    }
    let country = match region {
        Some(r) => Some(
            phonenumber::country::Id::from_str(&r.to_ascii_uppercase())
                .map_err(|_| format!("unknown default region {r:?}"))?,
        ),
        None => None,
    };
    if !trimmed.starts_with('+') && country.is_none() {
        return Err(format!(
            "{trimmed:?} has no country code: write it as +<country><number> (E.164), or set [sms] default_region"
        ));
    }
    // A number written with `+` carries its country: parsing it with a region as well makes the
    // phonenumber crate strip that region's trunk prefix after the country code
    // ("+4915…" with region US became "+495…").
    let country = if trimmed.starts_with('+') {
        None
    } else {
        country
    };
    let n = phonenumber::parse(country, trimmed)
        .map_err(|e| format!("{trimmed:?} is not a phone number ({e})"))?;
    if !n.is_valid() {
        return Err(format!("{trimmed:?} is not a valid number for its country"));
    }
    Ok(n.format().mode(phonenumber::Mode::E164).to_string())
}

/// A received sender in E.164 when it reads as a valid number: international (`+…`) as it is;
/// national or unknown-type digits read in `region` (`07700900123` in GB), or as international
/// digits without `+` (`447700900123`). `None` for alphanumeric senders, short codes and digits
/// that are no valid number: they are kept as the network gave them.
pub fn normalise_sender(raw: &str, region: Option<&str>) -> Option<String> {
    let raw = raw.trim();
    if raw.starts_with('+') {
        return normalise_number(raw, None).ok();
    }
    if raw.is_empty() || raw.len() > MAX_NUMBER_INPUT || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // International digits carry their country code; a national number its trunk prefix. The
    // numbering plan tells which reading is valid; the national one is tried first, since that
    // is what TOA 0x81/0xA1 senders mostly are.
    region
        .and_then(|r| normalise_number(raw, Some(r)).ok())
        .or_else(|| normalise_number(&format!("+{raw}"), None).ok())
}

/// Whether two numbers end in the same `n` digits or more (`n` at least 7): how a sender that
/// does not read as a number is matched to one that was texted.
pub fn same_trailing_digits(a: &str, b: &str, n: usize) -> bool {
    let digits = |s: &str| {
        s.bytes()
            .filter(u8::is_ascii_digit)
            .rev()
            .collect::<Vec<u8>>()
    };
    let (a, b) = (digits(a), digits(b));
    let n = n.max(7);
    a.len() >= n && b.len() >= n && a[..n] == b[..n]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn senders_in_every_format_read_as_one_number() {
        let gb = Some("GB");
        assert_eq!(
            normalise_sender("07911123456", gb).as_deref(),
            Some("+447911123456")
        );
        assert_eq!(
            normalise_sender("447911123456", gb).as_deref(),
            Some("+447911123456")
        );
        assert_eq!(
            normalise_sender("447911123456", None).as_deref(),
            Some("+447911123456")
        );
        assert_eq!(
            normalise_sender("+447911123456", Some("US")).as_deref(),
            Some("+447911123456")
        );
        assert_eq!(
            normalise_sender("2025550123", Some("US")).as_deref(),
            Some("+12025550123")
        );
        // No region: a national number cannot be read.
        assert_eq!(normalise_sender("07911123456", None), None);
        // Short codes, names, junk.
        assert_eq!(normalise_sender("4603", gb), None);
        assert_eq!(normalise_sender("SKENSNPD", gb), None);
        assert_eq!(normalise_sender("", gb), None);
        assert_eq!(normalise_sender(&"1".repeat(40), gb), None);
    }

    #[test]
    fn long_input_is_refused_before_parsing_and_refusals_are_not_cached() {
        let long = "1".repeat(MAX_NUMBER_INPUT + 1);
        assert!(
            normalise_number(&long, Some("US"))
                .unwrap_err()
                .contains("at most")
        );
        assert!(normalise_number("+9901234", None).is_err());
        assert!(
            NUMBERS.get(&("+9901234".to_string(), None)).is_none(),
            "a refusal was cached"
        );
        assert!(normalise_number("+12025550123", None).is_ok());
        assert!(NUMBERS.get(&("+12025550123".to_string(), None)).is_some());
    }

    #[test]
    fn trailing_digits() {
        assert!(same_trailing_digits("07911123456", "+447911123456", 7));
        assert!(!same_trailing_digits("07911123457", "+447911123456", 7));
        assert!(
            !same_trailing_digits("123456", "+44123456", 6),
            "at least 7"
        );
    }
}
