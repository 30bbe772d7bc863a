//! `[dashboard]`: the admin web page and its logins.

use serde::Deserialize;

/// `[dashboard]`: the admin web page.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DashboardConfig {
    /// Serve the page at `GET /` (login with an API token).
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    /// How long a login lasts without being used.
    #[serde(default = "default_session_ttl", with = "humantime_serde")]
    pub session_ttl: std::time::Duration,
    /// How long a login lasts at most, however much it is used.
    #[serde(default = "default_session_max_age", with = "humantime_serde")]
    pub session_max_age: std::time::Duration,
    /// When the session cookie is marked `Secure`.
    #[serde(default)]
    pub cookie_secure: super::CookieSecure,
}

impl Default for DashboardConfig {
    fn default() -> Self {
        DashboardConfig {
            enabled: true,
            session_ttl: default_session_ttl(),
            session_max_age: default_session_max_age(),
            cookie_secure: super::CookieSecure::Auto,
        }
    }
}

fn default_session_ttl() -> std::time::Duration {
    std::time::Duration::from_secs(12 * 3600)
}

fn default_session_max_age() -> std::time::Duration {
    std::time::Duration::from_secs(7 * 24 * 3600)
}

fn enabled_by_default() -> bool {
    true
}
