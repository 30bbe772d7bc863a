//! `[[api_keys]]`: who may call the API, and the shipped example's placeholder token.

use serde::Deserialize;

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
}

/// The token of `[[api_keys]]` in the shipped example: a daemon must never accept it.
pub const PLACEHOLDER_TOKEN: &str = "change-me-to-a-long-random-token";

/// Whether a token is the shipped example's placeholder (or an edit of it that keeps its
/// "change me").
pub(super) fn is_placeholder(token: &str) -> bool {
    let t = token.trim().to_ascii_lowercase();
    t == PLACEHOLDER_TOKEN || t.starts_with("change-me") || t.starts_with("changeme")
}
