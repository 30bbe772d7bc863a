//! Small helpers every layer may use.

/// `n` bytes from the operating system's cryptographic source (`getrandom`): for secrets
/// (tokens, webhook keys, session ids), never a fast generator.
pub fn secret_bytes(n: usize) -> Result<Vec<u8>, getrandom::Error> {
    let mut b = vec![0u8; n];
    getrandom::fill(&mut b)?;
    Ok(b)
}

/// `n` random bytes from the operating system's source, as lower-case hex.
pub fn secret_hex(n: usize) -> Result<String, getrandom::Error> {
    Ok(hex::encode(secret_bytes(n)?))
}

/// Whether two byte strings are equal, in time that depends on their lengths only (for
/// secrets: tokens, CSRF values, credentials, digests).
pub fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// [`same_bytes`] for strings.
pub fn same(a: &str, b: &str) -> bool {
    same_bytes(a.as_bytes(), b.as_bytes())
}

/// The message of a panic payload (`&str` or `String`; empty for anything else).
pub use smsgate_modem::panic_text;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_compares_whole_values() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "ab"));
        assert!(same_bytes(&[], &[]));
        assert!(!same_bytes(&[1, 2], &[1, 3]));
    }

    #[test]
    fn secrets_differ_and_have_their_length() {
        let a = secret_hex(24).unwrap();
        assert_eq!(a.len(), 48);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(a, secret_hex(24).unwrap());
        assert_eq!(secret_bytes(32).unwrap().len(), 32);
    }
}
