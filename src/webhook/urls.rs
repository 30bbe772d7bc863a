//! Callback URLs: which are accepted, which would reach the daemon itself, and how one is
//! logged.

use crate::outbound::OutboundPolicy;

/// The longest callback URL accepted, in bytes.
pub const MAX_URL_LEN: usize = 2048;

/// Why a URL is not an absolute `http://` or `https://` URL with a host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Longer than [`MAX_URL_LEN`].
    #[error("longer than {MAX_URL_LEN} bytes")]
    TooLong,
    /// Not a URL at all.
    #[error("not a URL ({0})")]
    Parse(#[source] url::ParseError),
    /// Another scheme than `http` or `https`.
    #[error("scheme {0:?} is not allowed: use http:// or https://")]
    Scheme(String),
    /// No host.
    #[error("has no host")]
    NoHost,
}

/// Checks that a callback URL is an absolute `http://` or `https://` URL with a host.
pub fn validate_url(url: &str) -> Result<(), UrlError> {
    if url.len() > MAX_URL_LEN {
        return Err(UrlError::TooLong);
    }
    let parsed = reqwest::Url::parse(url).map_err(UrlError::Parse)?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(UrlError::Scheme(parsed.scheme().to_owned()));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(UrlError::NoHost);
    }
    Ok(())
}

/// Whether `url` would reach the daemon itself, listening on `own`: the same port on a
/// loopback or unspecified address, `localhost`, or the listening address. An event posted to
/// itself would loop or pile up.
pub fn points_at(url: &str, own: std::net::SocketAddr) -> bool {
    let Ok(u) = reqwest::Url::parse(url) else {
        return false;
    };
    if u.port_or_known_default() != Some(own.port()) {
        return false;
    }
    let host = u.host_str().unwrap_or("");
    match host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<std::net::IpAddr>()
    {
        Ok(ip) => ip.is_loopback() || ip.is_unspecified() || ip == own.ip(),
        Err(_) => {
            let d = host.trim_end_matches('.').to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost")
        }
    }
}

/// Why a callback URL given through the API is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallbackUrlError {
    /// Not an absolute `http://` or `https://` URL with a host.
    #[error("must be an http:// or https:// URL: {0}")]
    Invalid(#[source] UrlError),
    /// It would reach this gateway's own API.
    #[error("points at this gateway's own API: events would loop")]
    OwnApi,
    /// The outbound policy refuses its host.
    #[error("refused by outbound policy: {0}")]
    Refused(crate::outbound::Refusal),
}

/// [`validate_url`], not the daemon's own address (`own`, when known), and a host the
/// outbound policy does not refuse (as far as can be told before the name is resolved).
pub fn validate_callback(
    url: &str,
    own: Option<std::net::SocketAddr>,
    policy: &OutboundPolicy,
) -> Result<(), CallbackUrlError> {
    validate_url(url).map_err(CallbackUrlError::Invalid)?;
    if own.is_some_and(|a| points_at(url, a)) {
        return Err(CallbackUrlError::OwnApi);
    }
    policy.check_url_str(url).map_err(CallbackUrlError::Refused)
}

/// The URL as logged: scheme, host, port and path, without credentials or query.
pub fn log_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => format!(
            "{}://{}{}{}",
            u.scheme(),
            u.host_str().unwrap_or(""),
            u.port().map(|p| format!(":{p}")).unwrap_or_default(),
            u.path()
        ),
        Err(_) => "<invalid URL>".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The policy that lets loopback addresses through.
    fn loopback() -> OutboundPolicy {
        OutboundPolicy::allowing_loopback()
    }

    #[test]
    fn urls_at_the_gateway_itself() {
        let own: std::net::SocketAddr = "127.0.0.1:8080".parse().unwrap();
        for url in [
            "http://127.0.0.1:8080/hook",
            "http://localhost:8080/",
            "http://LOCALHOST.:8080/x",
            "http://[::1]:8080/",
            "http://0.0.0.0:8080/",
            "http://127.0.0.2:8080/",
        ] {
            assert!(points_at(url, own), "{url}");
            assert_eq!(
                validate_callback(url, Some(own), &loopback()),
                Err(CallbackUrlError::OwnApi),
                "{url}"
            );
        }
        for url in [
            "http://127.0.0.1:8081/hook",
            "http://billing.example:8080/hook",
            "https://127.0.0.1/hook",
            "not a url",
        ] {
            assert!(!points_at(url, own), "{url}");
        }
        assert_eq!(
            validate_callback("ftp://billing.example/", None, &loopback()),
            Err(CallbackUrlError::Invalid(UrlError::Scheme("ftp".into())))
        );
        assert!(matches!(
            validate_url("not a url"),
            Err(UrlError::Parse(url::ParseError::RelativeUrlWithoutBase))
        ));
        assert_eq!(
            validate_url(&format!("https://x/{}", "a".repeat(MAX_URL_LEN))),
            Err(UrlError::TooLong)
        );
        assert!(validate_callback("http://127.0.0.1:8080/", None, &loopback()).is_ok());
        assert!(matches!(
            validate_callback("http://127.0.0.1:8080/", None, &OutboundPolicy::default()),
            Err(CallbackUrlError::Refused(_))
        ));
        // Listening on a LAN address: that address and loopback on its port.
        let lan: std::net::SocketAddr = "192.168.1.5:80".parse().unwrap();
        assert!(points_at("http://192.168.1.5/hook", lan));
        assert!(!points_at("http://192.168.1.6/hook", lan));
    }
}
