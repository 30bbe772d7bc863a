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
    Ok(secret_bytes(n)?
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_differ_and_have_their_length() {
        let a = secret_hex(24).unwrap();
        assert_eq!(a.len(), 48);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(a, secret_hex(24).unwrap());
        assert_eq!(secret_bytes(32).unwrap().len(), 32);
    }
}
