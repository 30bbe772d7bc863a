//! Standard Webhooks signatures: `v1,<base64 of HMAC-SHA256 over "{id}.{timestamp}.{body}">`,
//! keyed with the base64-decoded part of a `whsec_<base64>` secret.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_PAD_INDIFFERENT};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The shortest key accepted, in bytes (the Standard Webhooks specification asks for 24 to 64).
pub const MIN_KEY_LEN: usize = 24;

/// Why a webhook secret cannot be used; the words never quote the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// No `whsec_` prefix.
    #[error(
        "the webhook secret must start with \"whsec_\" followed by the base64 \
         of the key (e.g. \"whsec_\" + `openssl rand -base64 32`)"
    )]
    Prefix,
    /// What follows `whsec_` is not base64.
    #[error("the webhook secret after \"whsec_\" is not valid base64: {0}")]
    Base64(#[source] base64::DecodeError),
    /// A key shorter than [`MIN_KEY_LEN`] bytes.
    #[error(
        "the webhook secret's key is {0} bytes; use at least {MIN_KEY_LEN} \
         (e.g. \"whsec_\" + `openssl rand -base64 32`)"
    )]
    Short(usize),
    /// HMAC-SHA256 refuses the key.
    #[error("the webhook secret cannot key HMAC-SHA256: {0}")]
    Key(#[source] hmac::digest::InvalidLength),
}

/// Signs webhook deliveries with one secret. Its `Debug` output shows no key material.
#[derive(Clone)]
pub struct Signer {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(..)")
    }
}

impl Signer {
    /// A new random secret (32 bytes from the operating system's cryptographic source), as
    /// `whsec_<base64>`.
    pub fn generate_secret() -> Result<String, getrandom::Error> {
        let key = crate::util::secret_bytes(32)?;
        Ok(format!("whsec_{}", STANDARD.encode(key)))
    }

    /// A signer from a `whsec_<base64>` secret; the error says what is wrong without quoting it.
    pub fn from_secret(secret: &str) -> Result<Signer, SecretError> {
        let Some(encoded) = secret.trim().strip_prefix("whsec_") else {
            return Err(SecretError::Prefix);
        };
        let key = STANDARD_PAD_INDIFFERENT
            .decode(encoded)
            .map_err(SecretError::Base64)?;
        if key.len() < MIN_KEY_LEN {
            return Err(SecretError::Short(key.len()));
        }
        let mac = Hmac::<Sha256>::new_from_slice(&key).map_err(SecretError::Key)?;
        Ok(Signer { mac })
    }

    fn mac(&self, id: &str, timestamp: i64, body: &str) -> Hmac<Sha256> {
        let mut mac = self.mac.clone();
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body.as_bytes());
        mac
    }

    /// The `webhook-signature` value for one attempt: `v1,<base64>`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &str) -> String {
        let tag = self.mac(id, timestamp, body).finalize().into_bytes();
        format!("v1,{}", STANDARD.encode(tag))
    }

    /// Whether a `webhook-signature` header (space-separated `version,signature` pairs) holds a
    /// valid `v1` signature of this attempt, compared in constant time.
    pub fn verify(&self, id: &str, timestamp: i64, body: &str, header: &str) -> bool {
        header.split(' ').any(|sig| {
            let Some(b64) = sig.strip_prefix("v1,") else {
                return false;
            };
            let Ok(tag) = STANDARD.decode(b64) else {
                return false;
            };
            self.mac(id, timestamp, body).verify_slice(&tag).is_ok()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS: i64 = 1614265330;
    const BODY: &str = r#"{"test": 2432232314}"#;
    const EXPECTED: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn standard_webhooks_reference_vector() {
        let s = Signer::from_secret(SECRET).unwrap();
        assert_eq!(s.sign(ID, TS, BODY), EXPECTED);
        assert!(s.verify(ID, TS, BODY, EXPECTED));
        assert!(s.verify(ID, TS, BODY, &format!("v1,bm9wZQ== {EXPECTED}")));
        assert!(!s.verify(ID, TS + 1, BODY, EXPECTED));
        assert!(!s.verify(ID, TS, r#"{"test": 2432232315}"#, EXPECTED));
        assert!(!s.verify(
            ID,
            TS,
            BODY,
            "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        ));
        assert_eq!(format!("{s:?}"), "Signer(..)");
    }

    #[test]
    fn bad_secrets_are_explained() {
        let e = Signer::from_secret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap_err();
        assert_eq!(e, SecretError::Prefix);
        assert!(e.to_string().contains("must start with \"whsec_\""), "{e}");
        assert!(!e.to_string().contains("  "), "one line: {e}");
        let e = Signer::from_secret("whsec_not base64!").unwrap_err();
        assert!(matches!(e, SecretError::Base64(_)), "{e:?}");
        assert!(e.to_string().contains("not valid base64"), "{e}");
        let e = Signer::from_secret("whsec_c2hvcnQ=").unwrap_err();
        assert_eq!(e, SecretError::Short(5));
        let e = e.to_string();
        assert!(e.contains("5 bytes"), "{e}");
        assert!(!e.contains("c2hvcnQ"), "the secret is not quoted: {e}");
    }
}
