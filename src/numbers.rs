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
type NumberCache = quick_cache::sync::Cache<(String, Option<String>), PhoneNumber>;

/// The longest input checked as a phone number: E.164 has at most 15 digits, and spaces, dashes,
/// dots and parentheses rarely double that.
pub const MAX_NUMBER_INPUT: usize = 32;

/// Why a text is not a phone number that can be texted.
#[derive(Debug, Clone, thiserror::Error)]
pub enum NumberError {
    /// Longer than [`MAX_NUMBER_INPUT`].
    #[error("is {0} characters long; a phone number has at most {MAX_NUMBER_INPUT}")]
    TooLong(usize),
    /// Nothing but spaces.
    #[error("is empty")]
    Empty,
    /// Characters other than digits, spaces, `+`, `-`, `(`, `)` and `.`.
    #[error("{0:?} is not a phone number")]
    Characters(String),
    /// The default region is not a region code.
    #[error("unknown default region {0:?}")]
    Region(String),
    /// A national number and no default region.
    #[error(
        "{0:?} has no country code: write it as +<country><number> (E.164), or set [sms] default_region"
    )]
    NoCountry(String),
    /// The numbering plan cannot read it.
    #[error("{input:?} is not a phone number ({source})")]
    Parse {
        /// The number, trimmed.
        input: String,
        /// Why.
        source: phonenumber::ParseError,
    },
    /// A number its country does not have.
    #[error("{0:?} is not a valid number for its country")]
    Invalid(String),
}

/// A phone number in E.164 (`+` and up to 15 digits): read once, where it enters (the API, a
/// received text's sender), and kept and compared in this form everywhere after.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// Reads a number a person or a system wrote (see [`to_e164`]).
    pub fn parse(input: &str, region: Option<&str>) -> Result<PhoneNumber, NumberError> {
        to_e164(input, region)
    }

    /// The E.164 text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The E.164 text, owned.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl std::ops::Deref for PhoneNumber {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for PhoneNumber {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for PhoneNumber {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for PhoneNumber {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<String> for PhoneNumber {
    fn eq(&self, other: &String) -> bool {
        &self.0 == other
    }
}

/// For tests, which write numbers they know to be E.164.
#[cfg(test)]
impl From<&str> for PhoneNumber {
    fn from(s: &str) -> PhoneNumber {
        PhoneNumber(s.to_string())
    }
}

impl From<PhoneNumber> for String {
    fn from(n: PhoneNumber) -> String {
        n.0
    }
}

/// Normalises a phone number to E.164 (`+` and digits), with `region` for national input.
pub fn to_e164(input: &str, region: Option<&str>) -> Result<PhoneNumber, NumberError> {
    if input.len() > MAX_NUMBER_INPUT {
        return Err(NumberError::TooLong(input.len()));
    }
    let key = (input.to_string(), region.map(str::to_string));
    if let Some(hit) = NUMBERS.get(&key) {
        return Ok(hit);
    }
    let r = check_number(input, region)?;
    NUMBERS.insert(key, r.clone());
    Ok(r)
}

fn check_number(input: &str, region: Option<&str>) -> Result<PhoneNumber, NumberError> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err(NumberError::Empty);
    }
    if trimmed
        .chars()
        .any(|c| !(c.is_ascii_digit() || " +-().".contains(c)))
    {
        return Err(NumberError::Characters(trimmed.to_owned()));
    }
    let country = match region {
        Some(r) => Some(
            phonenumber::country::Id::from_str(&r.to_ascii_uppercase())
                .map_err(|_| NumberError::Region(r.to_owned()))?,
        ),
        None => None,
    };
    if !trimmed.starts_with('+') && country.is_none() {
        return Err(NumberError::NoCountry(trimmed.to_owned()));
    }
    // A number written with `+` carries its country: parsing it with a region as well makes the
    // phonenumber crate strip that region's trunk prefix after the country code
    // ("+4915…" with region US became "+495…").
    let country = if trimmed.starts_with('+') {
        None
    } else {
        country
    };
    let n = phonenumber::parse(country, trimmed).map_err(|source| NumberError::Parse {
        input: trimmed.to_owned(),
        source,
    })?;
    if !n.is_valid() {
        return Err(NumberError::Invalid(trimmed.to_owned()));
    }
    Ok(PhoneNumber(
        n.format().mode(phonenumber::Mode::E164).to_string(),
    ))
}

/// A received sender in E.164 when it reads as a valid number: international (`+…`) as it is;
/// national or unknown-type digits read in `region` (`07700900123` in GB), or as international
/// digits without `+` (`447700900123`). `None` for alphanumeric senders, short codes and digits
/// that are no valid number: they are kept as the network gave them.
pub fn normalise_sender(raw: &str, region: Option<&str>) -> Option<PhoneNumber> {
    let raw = raw.trim();
    if raw.starts_with('+') {
        return to_e164(raw, None).ok();
    }
    if raw.is_empty() || raw.len() > MAX_NUMBER_INPUT || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // International digits carry their country code; a national number its trunk prefix. The
    // numbering plan tells which reading is valid; the national one is tried first, since that
    // is what TOA 0x81/0xA1 senders mostly are.
    region
        .and_then(|r| to_e164(raw, Some(r)).ok())
        .or_else(|| to_e164(&format!("+{raw}"), None).ok())
}

/// A phone number as logs at `info` and above show it: the last two digits and the three
/// before them hidden behind `•••` (`+447700900123` → `+4477009•••23`), a short number (six
/// characters or fewer, a short code) all but its last two. Enough to tell numbers apart
/// in a log, not to text one; the full number is logged at `debug` only.
pub fn masked(number: &str) -> Masked<'_> {
    Masked(number)
}

/// [`masked`]: a number that prints masked.
#[derive(Debug, Clone, Copy)]
pub struct Masked<'a>(&'a str);

impl std::fmt::Display for Masked<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let chars: Vec<char> = self.0.chars().collect();
        let n = chars.len();
        let tail: String = chars[n.saturating_sub(2)..].iter().collect();
        if n <= 6 {
            return write!(f, "•••{tail}");
        }
        let head: String = chars[..n - 5].iter().collect();
        write!(f, "{head}•••{tail}")
    }
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
    #[test]
    fn masked_numbers_hide_five_digits_but_tell_numbers_apart() {
        assert_eq!(super::masked("+447700900123").to_string(), "+4477009•••23");
        assert_eq!(super::masked("+12025550123").to_string(), "+120255•••23");
        assert_eq!(super::masked("72345").to_string(), "•••45");
        assert_eq!(super::masked("").to_string(), "•••");
        assert!(
            !super::masked("+12025550123")
                .to_string()
                .contains("2025550123")
        );
    }

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
        let e = to_e164(&long, Some("US")).unwrap_err();
        assert!(matches!(e, NumberError::TooLong(33)), "{e:?}");
        assert!(
            to_e164(&long, Some("US"))
                .unwrap_err()
                .to_string()
                .contains("at most")
        );
        assert!(to_e164("+9901234", None).is_err());
        assert!(
            NUMBERS.get(&("+9901234".to_string(), None)).is_none(),
            "a refusal was cached"
        );
        assert!(to_e164("+12025550123", None).is_ok());
        assert!(NUMBERS.get(&("+12025550123".to_string(), None)).is_some());
    }

    #[test]
    fn refusals_say_why() {
        assert!(matches!(to_e164(" ", None), Err(NumberError::Empty)));
        assert!(matches!(
            to_e164("+1202555012a", None),
            Err(NumberError::Characters(_))
        ));
        assert!(matches!(
            to_e164("2025550123", None),
            Err(NumberError::NoCountry(n)) if n == "2025550123"
        ));
        assert!(matches!(
            to_e164("2025550123", Some("QQ")),
            Err(NumberError::Region(r)) if r == "QQ"
        ));
        assert!(matches!(
            to_e164("+15551234567", None),
            Err(NumberError::Invalid(_))
        ));
        let e = to_e164("+", None).unwrap_err();
        assert!(matches!(e, NumberError::Parse { .. }), "{e:?}");
        assert!(std::error::Error::source(&e).is_some());
    }

    #[test]
    fn a_phone_number_is_its_e164_text_on_the_wire_and_on_disk() {
        let n = PhoneNumber::parse("(202) 555-0123", Some("US")).unwrap();
        assert_eq!(n, "+12025550123");
        assert_eq!(n.as_str(), "+12025550123");
        assert_eq!(n.to_string(), "+12025550123");
        // Stored and served as a plain JSON string, as before it had a type.
        assert_eq!(serde_json::to_string(&n).unwrap(), "\"+12025550123\"");
        let back: PhoneNumber = serde_json::from_str("\"+12025550123\"").unwrap();
        assert_eq!(back, n);
        assert!(PhoneNumber::parse("2025550123", None).is_err());
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
