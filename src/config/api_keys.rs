//! `[[api_keys]]`: who may call the API, what each key may do, until when; and the shipped
//! example's placeholder token.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::api::{ApiKey, Scope};

/// `[[api_keys]]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    /// A name for logs ("billing").
    pub name: String,
    /// The bearer token, at least 16 characters.
    pub token: Option<String>,
    /// Or its SHA-256 in hex, so the file holds no secret.
    pub token_sha256: Option<String>,
    /// What the key may do; left out: everything (as before scopes existed).
    pub scopes: Option<Vec<Scope>>,
    /// When the key stops working (RFC 3339, with its offset): the old key of a rotation.
    pub expires_at: Option<ExpiresAt>,
}

/// `expires_at`, written as a TOML date-time (`2026-12-31T00:00:00Z`) or as a string.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ExpiresAt {
    /// A TOML date-time.
    Toml(toml::value::Datetime),
    /// A string.
    Text(String),
}

impl ExpiresAt {
    /// The instant; `None` unless it is a full date and time with its offset.
    pub fn instant(&self) -> Option<DateTime<Utc>> {
        let text = match self {
            ExpiresAt::Toml(d) => d.to_string(),
            ExpiresAt::Text(s) => s.clone(),
        };
        DateTime::parse_from_rfc3339(text.trim())
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }
}

impl ApiKeyConfig {
    /// The key as the API keeps it; `None` without a token or with a bad hash or date (which
    /// [`super::Config::load`] has refused already).
    pub fn api_key(&self) -> Option<ApiKey> {
        let key = match (&self.token, &self.token_sha256) {
            (Some(t), _) => ApiKey::from_token(&self.name, t),
            (None, Some(h)) => ApiKey::from_sha256_hex(&self.name, h)?,
            (None, None) => return None,
        };
        let key = match &self.scopes {
            Some(s) => key.with_scopes(s.iter().copied()),
            None => key,
        };
        Some(match &self.expires_at {
            Some(e) => key.expiring(e.instant()?),
            None => key,
        })
    }
}

/// The token of `[[api_keys]]` in the shipped example: a daemon must never accept it.
pub const PLACEHOLDER_TOKEN: &str = "change-me-to-a-long-random-token";

/// Whether a token is the shipped example's placeholder (or an edit of it that keeps its
/// "change me").
pub(super) fn is_placeholder(token: &str) -> bool {
    let t = token.trim().to_ascii_lowercase();
    t == PLACEHOLDER_TOKEN || t.starts_with("change-me") || t.starts_with("changeme")
}
