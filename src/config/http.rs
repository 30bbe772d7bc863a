//! `[http]`: the API's listener and its bounds.

use serde::Deserialize;

use std::time::Duration;

/// `[http]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Address and port to listen on.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Largest request body accepted, in bytes (larger: 413).
    #[serde(default = "default_body_limit")]
    pub body_limit: usize,
    /// Time a client has to send a whole request header; then its connection is closed.
    #[serde(default = "default_header_timeout", with = "humantime_serde")]
    pub header_timeout: Duration,
    /// Time a client has to send a whole request body, from its header.
    #[serde(default = "default_body_timeout", with = "humantime_serde")]
    pub body_timeout: Duration,
    /// Most connections open at once.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Wrong credentials one address may present within `auth_failure_window` before its
    /// requests are answered 429; 0: no limit.
    #[serde(default = "default_auth_failure_limit")]
    pub auth_failure_limit: u32,
    /// The window of `auth_failure_limit`, from an address's first failure.
    #[serde(default = "default_auth_failure_window", with = "humantime_serde")]
    pub auth_failure_window: Duration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: default_listen(),
            body_limit: default_body_limit(),
            header_timeout: default_header_timeout(),
            body_timeout: default_body_timeout(),
            max_connections: default_max_connections(),
            auth_failure_limit: default_auth_failure_limit(),
            auth_failure_window: default_auth_failure_window(),
        }
    }
}

impl HttpConfig {
    /// The HTTP server's bounds.
    pub fn limits(&self) -> crate::connections::Limits {
        crate::connections::Limits {
            header_timeout: self.header_timeout,
            body_timeout: self.body_timeout,
            max_connections: self.max_connections,
        }
    }

    /// The limit of wrong credentials per address.
    pub fn auth_failures(&self) -> crate::api::throttle::FailureLimit {
        crate::api::throttle::FailureLimit {
            max: self.auth_failure_limit,
            window: self.auth_failure_window,
        }
    }
}

fn default_header_timeout() -> Duration {
    crate::connections::Limits::default().header_timeout
}

fn default_body_timeout() -> Duration {
    crate::connections::Limits::default().body_timeout
}

fn default_max_connections() -> usize {
    crate::connections::Limits::default().max_connections
}

fn default_auth_failure_limit() -> u32 {
    crate::api::throttle::FailureLimit::default().max
}

fn default_auth_failure_window() -> Duration {
    crate::api::throttle::FailureLimit::default().window
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}

fn default_body_limit() -> usize {
    4 * 1024 * 1024
}
