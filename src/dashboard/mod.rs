//! The admin web page: `GET /` (the dashboard), `GET|POST /login`, `POST /logout` and the
//! page's own script and style sheet, all embedded in the binary (no CDN, works offline).
//!
//! Login takes an API token, checked like a bearer token, and starts a session: a random id
//! in an `HttpOnly`, `SameSite=Strict` cookie (also `Secure`, see [`CookieSecure`]), kept in
//! memory only, so a restart of the daemon logs everyone out. A session ends after
//! `session_ttl` unused, and `session_max_age` after the login however much it is used (a
//! stolen cookie does not live for ever). Wrong tokens count against the client's address
//! (the same count as wrong bearer tokens, [`crate::api::throttle`]): one address failing
//! locks out that address only. The page then calls the
//! ordinary `/v1` API with that cookie; a call that changes something must also carry the
//! session's CSRF token in `X-CSRF-Token`, which only a page the daemon served can know.

mod config;
pub use config::DashboardConfig;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::api::AppState;
use crate::api::throttle::ClientAddr;

/// The session cookie's name.
pub const COOKIE: &str = "smsgate_session";
/// The header that carries the CSRF token on calls that change something.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Most sessions kept at once; the one closest to expiry makes room for a new one.
const MAX_SESSIONS: usize = 256;

const DASHBOARD_HTML: &str = include_str!("assets/dashboard.html");
const LOGIN_HTML: &str = include_str!("assets/login.html");
const SCRIPT: &str = include_str!("assets/dashboard.js");
const STYLE: &str = include_str!("assets/dashboard.css");
const ICON: &str = include_str!("assets/icon.svg");
/// The demo's simulated phone panel, put into the page by `smsgate demo` only.
const DEMO_PHONE_HTML: &str = include_str!("assets/demo-phone.html");
const DEMO_PHONE_SCRIPT: &str = include_str!("assets/demo-phone.js");
const DEMO_PHONE_STYLE: &str = include_str!("assets/demo-phone.css");

/// Content-Security-Policy of the pages: nothing from anywhere but the daemon itself.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// `[dashboard] cookie_secure`: when the session cookie carries `Secure`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CookieSecure {
    /// When the browser reached the daemon over HTTPS (a reverse proxy says so with
    /// `X-Forwarded-Proto: https`) or on a loopback address, where browsers keep `Secure`
    /// cookies over plain HTTP. Over plain HTTP on a network address a `Secure` cookie would
    /// be dropped by the browser, so it is left off there and the login page warns.
    #[default]
    Auto,
    /// Always (the daemon is only ever reached over HTTPS).
    Always,
    /// Never.
    Never,
}

#[derive(Debug, Clone)]
struct Session {
    caller: String,
    /// The SHA-256 of the token it logged in with.
    key: [u8; 32],
    csrf: String,
    /// Unused until then, it ends (pushed back by each use).
    expires: Instant,
    /// It ends then, used or not.
    ends: Instant,
}

/// A logged-in browser, as the API's authentication sees it.
#[derive(Debug, Clone)]
pub struct SessionAuth {
    /// The API key the session was started with.
    pub caller: String,
    /// The SHA-256 of that key's token (a session ends when its key is revoked or rotated).
    pub key: [u8; 32],
    /// Its CSRF token.
    pub csrf: String,
}

/// Sessions of the admin page, in memory.
#[derive(Debug)]
pub struct Sessions {
    ttl: Duration,
    max_age: Duration,
    secure: CookieSecure,
    enabled: bool,
    inner: Mutex<SessionsInner>,
}

#[derive(Debug, Default)]
struct SessionsInner {
    /// By SHA-256 of the cookie value.
    by_hash: HashMap<[u8; 32], Session>,
}

fn random_hex(bytes: usize) -> Option<String> {
    crate::util::secret_hex(bytes).ok()
}

fn digest(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

impl Sessions {
    /// From `[dashboard]`.
    pub fn new(cfg: &DashboardConfig) -> Sessions {
        Sessions {
            ttl: cfg.session_ttl,
            max_age: cfg.session_max_age,
            secure: cfg.cookie_secure,
            enabled: cfg.enabled,
            inner: Mutex::new(SessionsInner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SessionsInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts a session for the key `caller`: the cookie value and the CSRF token, `None` when
    /// the system has no randomness to give.
    fn start(&self, caller: &crate::api::ApiKey) -> Option<(String, String)> {
        let id = random_hex(32)?;
        let csrf = random_hex(32)?;
        let now = Instant::now();
        let mut g = self.lock();
        g.by_hash.retain(|_, s| s.expires > now && s.ends > now);
        if g.by_hash.len() >= MAX_SESSIONS
            && let Some(k) = g
                .by_hash
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(k, _)| *k)
        {
            g.by_hash.remove(&k);
        }
        g.by_hash.insert(
            digest(&id),
            Session {
                caller: caller.name.clone(),
                key: caller.sha256,
                csrf: csrf.clone(),
                expires: now + self.ttl.min(self.max_age),
                ends: now + self.max_age,
            },
        );
        Some((id, csrf))
    }

    /// The session of a request's cookie, if it is live; using it keeps it alive.
    pub fn from_headers(&self, headers: &HeaderMap) -> Option<SessionAuth> {
        if !self.enabled {
            return None;
        }
        let id = cookie_value(headers)?;
        let now = Instant::now();
        let mut g = self.lock();
        let key = digest(&id);
        let s = g.by_hash.get_mut(&key)?;
        if s.expires <= now || s.ends <= now {
            g.by_hash.remove(&key);
            return None;
        }
        s.expires = (now + self.ttl).min(s.ends);
        Some(SessionAuth {
            caller: s.caller.clone(),
            key: s.key,
            csrf: s.csrf.clone(),
        })
    }

    fn end(&self, headers: &HeaderMap) {
        if let Some(id) = cookie_value(headers) {
            self.lock().by_hash.remove(&digest(&id));
        }
    }

    /// Whether the cookie gets `Secure` for this request.
    fn secure_for(&self, headers: &HeaderMap) -> bool {
        match self.secure {
            CookieSecure::Always => true,
            CookieSecure::Never => false,
            CookieSecure::Auto => over_https(headers) || on_loopback(headers),
        }
    }

    fn set_cookie(&self, headers: &HeaderMap, id: &str) -> String {
        let max_age = i64::try_from(self.ttl.min(self.max_age).as_secs()).unwrap_or(i64::MAX);
        session_cookie(id, max_age, self.secure_for(headers))
    }

    fn clear_cookie(&self, headers: &HeaderMap) -> String {
        session_cookie("", 0, self.secure_for(headers))
    }
}

/// A `Set-Cookie` value for the session cookie (RFC 6265 §4.1). `value` is an id this module
/// made (hex) or empty, so it needs no quoting or escaping; `Max-Age=0` removes the cookie.
fn session_cookie(value: &str, max_age: i64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE}={value}; HttpOnly; SameSite=Strict{secure}; Path=/; Max-Age={max_age}")
}

/// The session id a request carries: the first `smsgate_session` pair of its `Cookie` headers
/// (RFC 6265 §5.4: `name=value` pairs separated by `;`, spaces around them ignored), or `None`
/// when there is none or it is empty. Values are taken as they are, not percent-decoded.
fn cookie_value(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| {
            let (name, value) = pair.split_once('=')?;
            Some((name.trim(), value.trim()))
        })
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_string())
        .filter(|v| !v.is_empty())
}

fn over_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"))
}

/// Whether the browser addressed the daemon by a loopback name or address.
fn on_loopback(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn html(status: StatusCode, body: String, extra: Option<(header::HeaderName, String)>) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if let Some((name, value)) = extra
        && let Ok(v) = HeaderValue::from_str(&value)
    {
        h.append(name, v);
    }
    r
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn login_page(status: StatusCode, headers: &HeaderMap, error: Option<&str>) -> Response {
    let warning = if over_https(headers) || on_loopback(headers) {
        String::new()
    } else {
        "<p class=\"warn\" id=\"plain-http\">This page is not served over HTTPS: the token \
         crosses the network in clear. Put smsgate behind a reverse proxy with TLS \
         (see docs/operations.md).</p>"
            .to_string()
    };
    let error = error
        .map(|e| {
            format!(
                "<p class=\"error\" id=\"login-error\" role=\"alert\">{}</p>",
                escape(e)
            )
        })
        .unwrap_or_default();
    let body = LOGIN_HTML
        .replace("{{warning}}", &warning)
        .replace("{{error}}", &error)
        .replace("{{version}}", env!("CARGO_PKG_VERSION"));
    html(status, body, None)
}

fn disabled() -> Response {
    crate::api::ApiError::not_found("the admin page is turned off ([dashboard] enabled = false)")
        .into_response()
}

/// `GET /`: the dashboard for a logged-in browser (or a caller with a bearer token, who
/// gets a session too), the login page's address for anyone else.
pub async fn index(
    State(state): State<AppState>,
    client: ClientAddr,
    headers: HeaderMap,
) -> Response {
    let sessions = &state.sessions;
    if !sessions.enabled {
        return disabled();
    }
    let demo = state.phone.is_some();
    if let Some(s) = sessions.from_headers(&headers) {
        return dashboard_page(&s.csrf, None, demo);
    }
    let bearer = headers.contains_key(header::AUTHORIZATION);
    if bearer && let Some(wait) = state.failures.blocked(client) {
        return crate::api::throttle::too_many(wait);
    }
    let caller = crate::api::bearer_caller(&state.keys.current(), &headers, state.clock.now());
    if bearer && caller.is_none() {
        state.failures.record(client);
    }
    if let Some(caller) = caller {
        let Some((id, csrf)) = sessions.start(&caller) else {
            return crate::api::ApiError::internal("no randomness for a session id")
                .into_response();
        };
        let cookie = sessions.set_cookie(&headers, &id);
        return dashboard_page(&csrf, Some(cookie), demo);
    }
    Redirect::to("/login").into_response()
}

/// The page; with the simulated phone panel when `demo` (`smsgate demo`).
fn dashboard_page(csrf: &str, cookie: Option<String>, demo: bool) -> Response {
    let body = DASHBOARD_HTML
        .replace("{{demo_phone}}", if demo { DEMO_PHONE_HTML } else { "" })
        .replace("{{csrf}}", &escape(csrf))
        .replace("{{version}}", env!("CARGO_PKG_VERSION"));
    html(
        StatusCode::OK,
        body,
        cookie.map(|c| (header::SET_COOKIE, c)),
    )
}

/// `GET /login`
pub async fn login_form(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if !state.sessions.enabled {
        return disabled();
    }
    if state.sessions.from_headers(&headers).is_some() {
        return Redirect::to("/").into_response();
    }
    login_page(StatusCode::OK, &headers, None)
}

/// The login form's fields.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    /// An API token.
    #[serde(default)]
    pub token: String,
}

/// `POST /login`: a valid token starts a session and goes to the dashboard.
pub async fn login(
    State(state): State<AppState>,
    client: ClientAddr,
    headers: HeaderMap,
    form: Result<axum::Form<LoginForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let sessions = &state.sessions;
    if !sessions.enabled {
        return disabled();
    }
    if let Some(wait) = state.failures.blocked(client) {
        metrics::counter!(crate::metrics::AUTH_THROTTLED).increment(1);
        let secs = crate::api::throttle::retry_after_secs(wait);
        let mut r = login_page(
            StatusCode::TOO_MANY_REQUESTS,
            &headers,
            Some(&format!(
                "Too many wrong tokens from this address; try again in {secs} s."
            )),
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        return r;
    }
    let token = match form {
        Ok(axum::Form(f)) => f.token,
        Err(_) => String::new(),
    };
    let token = token.trim();
    let Some(caller) = (!token.is_empty())
        .then(|| crate::api::authenticate(&state.keys.current(), token, state.clock.now()))
        .flatten()
    else {
        state.failures.record(client);
        tracing::warn!(client = ?client.0, "dashboard login with an unknown token");
        return login_page(
            StatusCode::UNAUTHORIZED,
            &headers,
            Some("That token is not one of the gateway's API keys."),
        );
    };
    // The key's use by the admin page is in the audit log before the session starts.
    let details = serde_json::json!({ "client": client.0.map(|a| a.to_string()) });
    if let Err(e) =
        crate::api::audit::record(&state, &caller.name, "dashboard.login", None, Some(details))
            .await
    {
        return e.into_response();
    }
    let Some((id, _)) = sessions.start(&caller) else {
        return crate::api::ApiError::internal("no randomness for a session id").into_response();
    };
    tracing::info!(key = %caller.name, "dashboard login");
    let mut r = Redirect::to("/").into_response();
    if let Ok(v) = HeaderValue::from_str(&sessions.set_cookie(&headers, &id)) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// `POST /logout`: ends the session (the page sends its CSRF token).
pub async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let sessions = &state.sessions;
    if let Some(s) = sessions.from_headers(&headers) {
        let presented = headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !crate::util::same(presented, &s.csrf) {
            return crate::api::ApiError::csrf().into_response();
        }
        sessions.end(&headers);
        if let Err(e) =
            crate::api::audit::record(&state, &s.caller, "dashboard.logout", None, None).await
        {
            return e.into_response();
        }
    }
    let mut r = StatusCode::NO_CONTENT.into_response();
    if let Ok(v) = HeaderValue::from_str(&sessions.clear_cookie(&headers)) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// `GET /assets/{name}`: the page's script, style sheet and icon.
pub async fn asset(Path(name): Path<String>) -> Response {
    let (body, kind) = match name.as_str() {
        "dashboard.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        "dashboard.css" => (STYLE, "text/css; charset=utf-8"),
        "icon.svg" => (ICON, "image/svg+xml"),
        "demo-phone.js" => (DEMO_PHONE_SCRIPT, "text/javascript; charset=utf-8"),
        "demo-phone.css" => (DEMO_PHONE_STYLE, "text/css; charset=utf-8"),
        _ => return crate::api::ApiError::not_found("no such asset").into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn loopback_hosts_and_https_get_secure_cookies() {
        assert!(on_loopback(&headers(&[("host", "127.0.0.1:8080")])));
        assert!(on_loopback(&headers(&[("host", "localhost")])));
        assert!(on_loopback(&headers(&[("host", "[::1]:8080")])));
        assert!(!on_loopback(&headers(&[("host", "192.168.1.5:8080")])));
        assert!(!on_loopback(&headers(&[("host", "gateway.example")])));
        assert!(over_https(&headers(&[("x-forwarded-proto", "HTTPS")])));
        let s = Sessions::new(&DashboardConfig::default());
        let lan = headers(&[("host", "192.168.1.5:8080")]);
        assert!(!s.set_cookie(&lan, "x").contains("Secure"));
        let local = headers(&[("host", "127.0.0.1:8080")]);
        let c = s.set_cookie(&local, "x");
        assert!(c.contains("Secure") && c.contains("HttpOnly") && c.contains("SameSite=Strict"));
    }

    #[test]
    fn session_cookies_are_written_and_read_as_browsers_do() {
        let s = Sessions::new(&DashboardConfig {
            session_ttl: Duration::from_secs(600),
            session_max_age: Duration::from_secs(3600),
            ..Default::default()
        });
        let local = headers(&[("host", "127.0.0.1:8080")]);
        assert_eq!(
            s.set_cookie(&local, "ab12"),
            "smsgate_session=ab12; HttpOnly; SameSite=Strict; Secure; Path=/; Max-Age=600"
        );
        let lan = headers(&[("host", "192.168.1.5:8080")]);
        assert_eq!(
            s.clear_cookie(&lan),
            "smsgate_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"
        );
        for (header, found) in [
            ("smsgate_session=ab12", Some("ab12")),
            ("  a=1 ;; smsgate_session = ab12 ; b=2", Some("ab12")),
            (
                "a=1; smsgate_session=ab12; smsgate_session=cd34",
                Some("ab12"),
            ),
            ("smsgate_session=; smsgate_session=cd34", None),
            ("smsgate_session", None),
            ("xsmsgate_session=ab12; =ab12", None),
            ("a=%20; smsgate_session=a%20b", Some("a%20b")),
            ("", None),
        ] {
            let got = cookie_value(&headers(&[("cookie", header)]));
            assert_eq!(got.as_deref(), found, "{header:?}");
        }
        let two = headers(&[("cookie", "a=1"), ("cookie", "smsgate_session=ef56")]);
        assert_eq!(cookie_value(&two).as_deref(), Some("ef56"));
    }

    #[test]
    fn sessions_are_found_by_cookie_and_end() {
        let s = Sessions::new(&DashboardConfig::default());
        let (id, csrf) = s
            .start(&crate::api::ApiKey::from_token(
                "admin",
                "token-of-the-admin-key",
            ))
            .unwrap();
        let h = headers(&[("cookie", &format!("other=1; {COOKIE}={id}"))]);
        let got = s.from_headers(&h).unwrap();
        assert_eq!(got.caller, "admin");
        assert!(crate::util::same(&got.csrf, &csrf));
        assert!(!crate::util::same(&got.csrf, "nope"));
        s.end(&h);
        assert!(s.from_headers(&h).is_none());
        assert!(
            s.from_headers(&headers(&[("cookie", &format!("{COOKIE}=forged"))]))
                .is_none()
        );
    }

    #[test]
    fn a_session_ends_at_its_max_age_however_much_it_is_used() {
        let s = Sessions::new(&DashboardConfig {
            session_ttl: Duration::from_secs(3600),
            session_max_age: Duration::from_millis(300),
            ..Default::default()
        });
        let (id, _) = s
            .start(&crate::api::ApiKey::from_token(
                "admin",
                "token-of-the-admin-key",
            ))
            .unwrap();
        let h = headers(&[("cookie", &format!("{COOKIE}={id}"))]);
        for _ in 0..5 {
            assert!(s.from_headers(&h).is_some());
            std::thread::sleep(Duration::from_millis(40));
        }
        std::thread::sleep(Duration::from_millis(150));
        assert!(s.from_headers(&h).is_none());
        // The cookie does not outlive the session either.
        assert!(s.set_cookie(&h, "x").contains("Max-Age=0"));
    }

    #[test]
    fn text_in_pages_is_escaped() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
