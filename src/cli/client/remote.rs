//! Reaching a running daemon: where it is and which token to send (flags, environment or the
//! configuration file), one request, and what an error answer means as an exit code.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use reqwest::{Method, StatusCode, Url};
use serde_json::Value;

use crate::cli::EXIT_BAD_INPUT;
use crate::config::{ApiKeyConfig, Config};

/// Exit code when the daemon refused what was asked (a 4xx other than 401, 404 and 422), or
/// `status` found no modem up.
pub const EXIT_REFUSED: u8 = 1;
/// Exit code when the message, plan, opt-out or endpoint does not exist (404).
pub const EXIT_NOT_FOUND: u8 = 3;
/// Exit code when the daemon cannot be reached or refused the token (401).
pub const EXIT_UNREACHABLE: u8 = 4;
/// Exit code when the daemon answered with a 5xx (503: its store cannot be written).
pub const EXIT_DAEMON_FAILED: u8 = 5;

/// The configuration file read when neither `--config` nor `SMSGATE_CONFIG` names one.
pub const DEFAULT_CONFIG: &str = "/etc/smsgate/smsgate.toml";

/// How long one request may take (`tail`'s stream has no such limit).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How to reach the daemon, and how to print its answers.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Daemon and output")]
pub struct Remote {
    /// The daemon's base URL, e.g. http://127.0.0.1:8080 (default: `http://` + the
    /// configuration's `[http] listen`).
    #[arg(long, env = "SMSGATE_URL", hide_env_values = true, value_name = "URL")]
    pub url: Option<String>,
    /// API token (default: the first `[[api_keys]]` of the configuration with a plain `token`).
    #[arg(
        long,
        env = "SMSGATE_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<String>,
    /// Configuration file to take the URL and token from, when they are not given (default:
    /// /etc/smsgate/smsgate.toml, when it exists).
    #[arg(
        long,
        env = "SMSGATE_CONFIG",
        hide_env_values = true,
        value_name = "PATH"
    )]
    pub config: Option<PathBuf>,
    /// Print the API's JSON answer as it is (pretty-printed), for scripts; never coloured.
    #[arg(long)]
    pub json: bool,
}

/// Where a setting came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `--url`/`--token` or `SMSGATE_URL`/`SMSGATE_TOKEN`.
    Given,
    /// This configuration file.
    Config(PathBuf),
}

/// The daemon to talk to.
#[derive(Debug, Clone)]
pub struct Target {
    /// Base URL without a trailing `/` (`http://127.0.0.1:8080`).
    pub url: String,
    /// Where the URL came from.
    pub url_from: Source,
    /// The bearer token.
    pub token: String,
    /// Where the token came from.
    pub token_from: Source,
}

/// Why a command could not do what it was asked.
#[derive(Debug)]
pub enum Failure {
    /// Bad input found before asking the daemon (exit 2).
    Input(String),
    /// Nothing answered at the URL, or not in time (exit 4).
    Unreachable {
        /// The URL tried.
        url: String,
        /// What went wrong, in words.
        why: String,
    },
    /// Something answered, but not as smsgate does (exit 4).
    NotSmsgate {
        /// The URL tried.
        url: String,
        /// What was wrong with the answer.
        why: String,
    },
    /// The daemon refused the token (401 or 403; exit 4).
    Auth {
        /// The URL tried.
        url: String,
        /// The daemon's words.
        detail: String,
        /// Where the token came from.
        token_from: Source,
    },
    /// The daemon answered with another error status.
    Api {
        /// The HTTP status.
        status: u16,
        /// The problem details (RFC 9457), or `Null` when the body was not JSON.
        problem: Value,
        /// The problem details as they came (printed with `--json`).
        raw: String,
        /// The body when it was not JSON (a proxy's page), shortened.
        text: String,
    },
    /// The command's own check failed (`status` with no modem up): a message, exit 1.
    Refused(String),
}

impl Failure {
    /// The exit code this failure means.
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Input(_) => EXIT_BAD_INPUT,
            Failure::Unreachable { .. } | Failure::NotSmsgate { .. } | Failure::Auth { .. } => {
                EXIT_UNREACHABLE
            }
            Failure::Refused(_) => EXIT_REFUSED,
            Failure::Api { status, .. } => match *status {
                404 => EXIT_NOT_FOUND,
                422 => EXIT_BAD_INPUT,
                500..=599 => EXIT_DAEMON_FAILED,
                _ => EXIT_REFUSED,
            },
        }
    }

    /// Prints the failure on standard error (with `json`, an API problem also goes to standard
    /// output as it came) and returns its exit code.
    pub fn report(&self, json: bool) -> ExitCode {
        if json
            && let Failure::Api { problem, raw, .. } = self
            && !problem.is_null()
        {
            super::show::print_raw(raw);
        }
        eprint!("{}", self.message());
        ExitCode::from(self.exit_code())
    }

    /// The text printed for this failure: `error: …` and, where it helps, what to check.
    pub fn message(&self) -> String {
        match self {
            Failure::Input(m) | Failure::Refused(m) => format!("error: {m}\n"),
            Failure::Unreachable { url, why } => format!(
                "error: cannot reach the daemon at {url}: {why}\n\
                 Check that smsgate is running (systemctl status smsgate) and that the URL matches \
                 its [http] listen; give another with --url or SMSGATE_URL.\n"
            ),
            Failure::NotSmsgate { url, why } => format!(
                "error: {url} did not answer like smsgate: {why}\n\
                 Check the URL (--url or SMSGATE_URL): it is the daemon's [http] listen address.\n"
            ),
            Failure::Auth {
                url,
                detail,
                token_from,
            } => {
                let check = match token_from {
                    Source::Given => "the token given with --token or SMSGATE_TOKEN".to_string(),
                    Source::Config(p) => {
                        format!(
                            "the [[api_keys]] token of {} (or give one with --token)",
                            p.display()
                        )
                    }
                };
                format!(
                    "error: the daemon at {url} refused the token: {detail}\nCheck {check}: it must be one of the daemon's [[api_keys]].\n"
                )
            }
            Failure::Api {
                status,
                problem,
                text,
                ..
            } => api_message(*status, problem, text),
        }
    }
}

/// The words for an error answer: the problem's `detail` and kind, every `field: detail` of a
/// validation error.
fn api_message(status: u16, problem: &Value, text: &str) -> String {
    let detail = problem["detail"].as_str().unwrap_or_default();
    let kind = problem["type"]
        .as_str()
        .map(|t| t.strip_prefix("urn:smsgate:problem:").unwrap_or(t))
        .unwrap_or_default();
    let reason = StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("error");
    let mut out = String::new();
    if problem.is_null() {
        out.push_str(&format!("error: the daemon answered {status} {reason}"));
        if !text.is_empty() {
            out.push_str(&format!(": {text}"));
        }
        out.push('\n');
        return out;
    }
    let fields: Vec<(&str, &str)> = problem["errors"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| {
                    (
                        e["field"].as_str().unwrap_or("?"),
                        e["detail"].as_str().unwrap_or(""),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    match status {
        422 if !fields.is_empty() => {
            let title = problem["title"].as_str().unwrap_or("Invalid request");
            out.push_str(&format!("error: {title} ({kind}):\n"));
            for (f, d) in fields {
                out.push_str(&format!("  {f}: {d}\n"));
            }
        }
        404 if detail == "no such endpoint" => out.push_str(
            "error: the daemon has no such endpoint (is it an older version than this command?)\n",
        ),
        404 => out.push_str(&format!("error: not found: {detail}\n")),
        500..=599 => out.push_str(&format!(
            "error: the daemon failed ({status} {reason}, {kind}): {detail}\n"
        )),
        _ => out.push_str(&format!("error: {detail} ({status} {kind})\n")),
    }
    out
}

/// Finds the daemon and the token: flags and environment first, then the configuration file
/// (`--config`, `SMSGATE_CONFIG`, or [`DEFAULT_CONFIG`] when it exists).
pub fn resolve(remote: &Remote) -> Result<Target, Failure> {
    resolve_with(remote, Path::new(DEFAULT_CONFIG))
}

fn given(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// [`resolve`] with another default configuration path (for tests).
pub fn resolve_with(remote: &Remote, default_config: &Path) -> Result<Target, Failure> {
    let url = given(&remote.url);
    let token = given(&remote.token);
    let config = if url.is_none() || token.is_none() {
        let missing = match (url, token) {
            (None, None) => "--url and --token",
            (None, Some(_)) => "--url",
            _ => "--token",
        };
        let path = match &remote.config {
            Some(p) => p.clone(),
            None if default_config.exists() => default_config.to_path_buf(),
            None => {
                return Err(Failure::Input(format!(
                    "no {missing} given and no configuration file at {}: give {missing} (or \
                     SMSGATE_URL and SMSGATE_TOKEN), or the daemon's configuration with --config",
                    default_config.display()
                )));
            }
        };
        let cfg = Config::load(&path).map_err(|e| {
            Failure::Input(format!(
                "{e}\n(the URL and token are read from it because no {missing} was given)"
            ))
        })?;
        Some((path, cfg))
    } else {
        None
    };
    let (url, url_from) = match (url, &config) {
        (Some(u), _) => (
            normalise_url(u).map_err(|e| Failure::Input(e.to_string()))?,
            Source::Given,
        ),
        (None, Some((path, cfg))) => (
            url_from_listen(&cfg.http.listen)
                .map_err(|e| Failure::Input(format!("{}: {e}", path.display())))?,
            Source::Config(path.clone()),
        ),
        (None, None) => return Err(Failure::Input("no URL".into())),
    };
    let (token, token_from) = match (token, &config) {
        (Some(t), _) => (t.to_string(), Source::Given),
        (None, Some((path, cfg))) => (
            token_from_keys(&cfg.api_keys)
                .map_err(|e| Failure::Input(format!("{}: {e}", path.display())))?,
            Source::Config(path.clone()),
        ),
        (None, None) => return Err(Failure::Input("no token".into())),
    };
    Ok(Target {
        url,
        url_from,
        token,
        token_from,
    })
}

/// Why the daemon to talk to, or the token to show it, cannot be told.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// `--url` with another scheme than http(s), or no host.
    #[error("--url {0:?}: give an http:// or https:// URL, e.g. http://127.0.0.1:8080")]
    Scheme(String),
    /// `--url` that is no URL.
    #[error("--url {url:?} is not a URL: {source}")]
    Url {
        /// The URL, as completed.
        url: String,
        /// Why.
        source: url::ParseError,
    },
    /// `[http] listen` is not an address and port.
    #[error("[http] listen {listen:?} is not an address:port")]
    Listen {
        /// The value.
        listen: String,
        /// Why.
        source: std::net::AddrParseError,
    },
    /// No `[[api_keys]]` at all.
    #[error("no [[api_keys]]: give the token with --token or SMSGATE_TOKEN")]
    NoKeys,
    /// Only hashed tokens, whose tokens cannot be read.
    #[error(
        "the [[api_keys]] ({}) hold only token_sha256, a hash the token cannot be read from: \
         give the token with --token or SMSGATE_TOKEN",
        .0.join(", ")
    )]
    OnlyHashes(Vec<String>),
}

/// A base URL as given: `http://` added when there is no scheme, trailing `/` removed.
pub fn normalise_url(u: &str) -> Result<String, TargetError> {
    let u = u.trim();
    let u = if u.contains("://") {
        u.trim_end_matches('/').to_string()
    } else {
        format!("http://{}", u.trim_end_matches('/'))
    };
    match Url::parse(&u) {
        Ok(p) if matches!(p.scheme(), "http" | "https") && p.host().is_some() => Ok(u),
        Ok(_) => Err(TargetError::Scheme(u)),
        Err(source) => Err(TargetError::Url { url: u, source }),
    }
}

/// The URL of a daemon listening on `listen`: a wildcard address (`0.0.0.0`, `[::]`) is reached
/// on the loopback address of its family.
pub fn url_from_listen(listen: &str) -> Result<String, TargetError> {
    let mut addr: SocketAddr = listen.parse().map_err(|source| TargetError::Listen {
        listen: listen.to_owned(),
        source,
    })?;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        });
    }
    Ok(format!("http://{addr}"))
}

/// The first `[[api_keys]]` token written in plain of a key that may do everything (no
/// `scopes`, or `admin`), else the first of any key; keys past their `expires_at` are passed
/// over, and a key kept only as `token_sha256` cannot be sent.
pub fn token_from_keys(keys: &[ApiKeyConfig]) -> Result<String, TargetError> {
    let now = chrono::Utc::now();
    let live = |k: &&ApiKeyConfig| {
        k.token.is_some()
            && k.expires_at
                .as_ref()
                .and_then(|e| e.instant())
                .is_none_or(|end| now < end)
    };
    let full = |k: &&ApiKeyConfig| {
        k.scopes
            .as_ref()
            .is_none_or(|s| s.contains(&crate::api::Scope::Admin))
    };
    let chosen = keys
        .iter()
        .filter(live)
        .find(full)
        .or_else(|| keys.iter().find(live));
    if let Some(t) = chosen.and_then(|k| k.token.clone()) {
        return Ok(t);
    }
    if keys.is_empty() {
        return Err(TargetError::NoKeys);
    }
    Err(TargetError::OnlyHashes(
        keys.iter().map(|k| k.name.clone()).collect(),
    ))
}

/// Percent-encodes one path segment (everything but unreserved characters, so `+` is `%2B`).
pub fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The innermost cause of an error, which is where the useful words are ("Connection refused").
fn cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut last = e;
    while let Some(s) = last.source() {
        last = s;
    }
    last.to_string()
}

/// A request that went nowhere, in words.
pub fn unreachable(url: &Url, e: &reqwest::Error, timeout: Option<Duration>) -> Failure {
    let why = if e.is_timeout() {
        match timeout {
            Some(t) => format!("no answer within {} s", t.as_secs()),
            None => "timed out".into(),
        }
    } else {
        cause(e)
    };
    Failure::Unreachable {
        url: url.to_string(),
        why,
    }
}

/// A successful answer.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The HTTP status (200, 201).
    pub status: u16,
    /// The body, parsed.
    pub json: Value,
    /// The body as it came (printed with `--json`, keys in the daemon's order).
    pub raw: String,
}

/// A client of the daemon's API.
#[derive(Debug, Clone)]
pub struct Api {
    /// Where it is, and the token.
    pub target: Target,
    http: reqwest::Client,
    timeout: Option<Duration>,
}

impl Api {
    /// A client whose requests time out after `timeout` (none: only connecting is limited, to
    /// [`REQUEST_TIMEOUT`]).
    pub fn new(target: Target, timeout: Option<Duration>) -> Result<Api, Failure> {
        let mut b = crate::tls::client_builder()
            .connect_timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("smsgate-cli/", env!("CARGO_PKG_VERSION")));
        if let Some(t) = timeout {
            b = b.timeout(t);
        }
        let http = b
            .build()
            .map_err(|e| Failure::Input(format!("cannot set up the HTTP client: {e}")))?;
        Ok(Api {
            target,
            http,
            timeout,
        })
    }

    /// The full URL of an API path (`/v1/messages`) with a query string.
    pub fn url(&self, path: &str, query: &[(&str, String)]) -> Result<Url, Failure> {
        let mut u = Url::parse(&format!("{}{path}", self.target.url))
            .map_err(|e| Failure::Input(format!("{}{path}: {e}", self.target.url)))?;
        if !query.is_empty() {
            let mut q = u.query_pairs_mut();
            for (k, v) in query {
                q.append_pair(k, v);
            }
        }
        Ok(u)
    }

    /// A request with the token, ready to send.
    pub fn request(&self, method: Method, url: Url) -> reqwest::RequestBuilder {
        self.http
            .request(method, url)
            .bearer_auth(&self.target.token)
    }

    /// Sends a request, returns the answer; an error status is a [`Failure`].
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        headers: &[(&str, String)],
    ) -> Result<Answer, Failure> {
        let url = self.url(path, query)?;
        let mut req = self.request(method, url.clone());
        if let Some(b) = body {
            req = req.json(b);
        }
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| unreachable(&url, &e, self.timeout))?;
        let status = resp.status().as_u16();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| unreachable(&url, &e, self.timeout))?;
        let json: Option<Value> = serde_json::from_slice(&bytes).ok();
        if (200..300).contains(&status) {
            let raw = String::from_utf8_lossy(&bytes).into_owned();
            return json
                .map(|json| Answer { status, json, raw })
                .ok_or_else(|| Failure::NotSmsgate {
                    url: url.to_string(),
                    why: format!("answer {status} is not JSON"),
                });
        }
        Err(self.error_answer(&url, status, json, &bytes))
    }

    /// The failure an error status means.
    pub fn error_answer(
        &self,
        url: &Url,
        status: u16,
        json: Option<Value>,
        body: &[u8],
    ) -> Failure {
        let problem = json.filter(Value::is_object).unwrap_or(Value::Null);
        if status == 401 || status == 403 {
            return Failure::Auth {
                url: url.to_string(),
                detail: problem["detail"]
                    .as_str()
                    .unwrap_or("no detail")
                    .to_string(),
                token_from: self.target.token_from.clone(),
            };
        }
        let body = String::from_utf8_lossy(body);
        let (text, raw) = if problem.is_null() {
            (
                super::show::truncate(&super::show::clean(body.trim()), 200),
                String::new(),
            )
        } else {
            (String::new(), body.into_owned())
        };
        Failure::Api {
            status,
            problem,
            raw,
            text,
        }
    }

    /// `GET` a path.
    pub async fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Answer, Failure> {
        self.call(Method::GET, path, query, None, &[]).await
    }

    /// `POST` a JSON body (or none).
    pub async fn post(&self, path: &str, body: Option<&Value>) -> Result<Answer, Failure> {
        self.call(Method::POST, path, &[], body, &[]).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remote(url: Option<&str>, token: Option<&str>, config: Option<&Path>) -> Remote {
        Remote {
            url: url.map(String::from),
            token: token.map(String::from),
            config: config.map(Path::to_path_buf),
            json: false,
        }
    }

    #[test]
    fn wildcard_listen_addresses_mean_loopback() {
        assert_eq!(
            url_from_listen("0.0.0.0:8080").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(url_from_listen("[::]:9000").unwrap(), "http://[::1]:9000");
        assert_eq!(
            url_from_listen("192.168.1.5:80").unwrap(),
            "http://192.168.1.5:80"
        );
        assert!(url_from_listen("localhost").is_err());
    }

    #[test]
    fn urls_are_normalised() {
        assert_eq!(
            normalise_url("http://127.0.0.1:8080/").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            normalise_url("127.0.0.1:8080").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            normalise_url("https://sms.example.com/gw").unwrap(),
            "https://sms.example.com/gw"
        );
        assert_eq!(
            normalise_url("ftp://x"),
            Err(TargetError::Scheme("ftp://x".into()))
        );
        assert!(matches!(
            normalise_url("http://"),
            Err(TargetError::Url { .. })
        ));
    }

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(path_segment("+12025550123"), "%2B12025550123");
        assert_eq!(path_segment("INV 1/2"), "INV%201%2F2");
        assert_eq!(path_segment("01KAR6V1T4"), "01KAR6V1T4");
    }

    #[test]
    fn the_first_plain_token_is_taken() {
        let key = |name: &str, token: Option<&str>, hash: Option<&str>| ApiKeyConfig {
            name: name.into(),
            token: token.map(String::from),
            token_sha256: hash.map(String::from),
            scopes: None,
            expires_at: None,
        };
        let hash = "a".repeat(64);
        assert_eq!(
            token_from_keys(&[
                key("h", None, Some(&hash)),
                key("b", Some("billing-token-0123456789"), None)
            ])
            .unwrap(),
            "billing-token-0123456789"
        );
        let e = token_from_keys(&[key("h", None, Some(&hash))]).unwrap_err();
        assert_eq!(e, TargetError::OnlyHashes(vec!["h".into()]));
        let e = e.to_string();
        assert!(e.contains("token_sha256") && e.contains("--token"), "{e}");
        assert!(e.contains("(h) hold only"), "{e}");
        assert_eq!(token_from_keys(&[]), Err(TargetError::NoKeys));
        assert!(TargetError::NoKeys.to_string().contains("--token"));
    }

    #[test]
    fn url_and_token_come_from_flags_or_the_configuration() {
        let dir = tempfile::tempdir().unwrap();
        let none = dir.path().join("absent.toml");
        // Both given: no configuration needed.
        let t = resolve_with(
            &remote(Some("127.0.0.1:1/"), Some("tok-0123456789abcdef"), None),
            &none,
        )
        .unwrap();
        assert_eq!(t.url, "http://127.0.0.1:1");
        assert_eq!(t.token_from, Source::Given);
        // Neither, and no configuration: a message naming what to give.
        let e = resolve_with(&remote(None, None, None), &none).unwrap_err();
        assert_eq!(e.exit_code(), EXIT_BAD_INPUT);
        assert!(e.message().contains("--url and --token"), "{}", e.message());

        let cfg = dir.path().join("smsgate.toml");
        std::fs::write(
            &cfg,
            format!(
                "[http]\nlisten = \"0.0.0.0:8181\"\n[storage]\npath = \"{}\"\n\
                 [[api_keys]]\nname = \"hashed\"\ntoken_sha256 = \"{}\"\n\
                 [[api_keys]]\nname = \"ops\"\ntoken = \"ops-token-0123456789\"\n",
                dir.path().join("store").display(),
                "b".repeat(64)
            ),
        )
        .unwrap();
        // The default path, when it exists.
        let t = resolve_with(&remote(None, None, None), &cfg).unwrap();
        assert_eq!(t.url, "http://127.0.0.1:8181");
        assert_eq!(t.token, "ops-token-0123456789");
        assert_eq!(t.token_from, Source::Config(cfg.clone()));
        // A flag wins over the file.
        let t = resolve_with(&remote(Some("http://10.0.0.2:80"), None, Some(&cfg)), &none).unwrap();
        assert_eq!(t.url, "http://10.0.0.2:80");
        assert_eq!(t.url_from, Source::Given);
        assert_eq!(t.token, "ops-token-0123456789");
        // A file that cannot be read.
        let e = resolve_with(&remote(None, None, Some(&none)), &cfg).unwrap_err();
        assert!(e.message().contains("absent.toml"), "{}", e.message());
    }

    #[test]
    fn statuses_map_to_exit_codes() {
        let api = |status: u16| Failure::Api {
            status,
            problem: Value::Null,
            raw: String::new(),
            text: String::new(),
        };
        assert_eq!(api(409).exit_code(), 1);
        assert_eq!(api(400).exit_code(), 1);
        assert_eq!(api(422).exit_code(), 2);
        assert_eq!(api(404).exit_code(), 3);
        assert_eq!(api(503).exit_code(), 5);
        assert_eq!(api(500).exit_code(), 5);
        let auth = Failure::Auth {
            url: "u".into(),
            detail: "unknown token".into(),
            token_from: Source::Given,
        };
        assert_eq!(auth.exit_code(), 4);
        assert!(auth.message().contains("--token"));
    }

    #[test]
    fn validation_errors_name_each_field() {
        let p = serde_json::json!({
            "type": "urn:smsgate:problem:validation", "title": "Invalid request", "status": 422,
            "detail": "to: bad; text: empty",
            "errors": [{"field": "to", "detail": "bad"}, {"field": "text", "detail": "empty"}]
        });
        let m = api_message(422, &p, "");
        assert!(
            m.contains("  to: bad\n") && m.contains("  text: empty\n"),
            "{m}"
        );
        let p = serde_json::json!({"type": "urn:smsgate:problem:not_cancellable",
            "detail": "the message is sent; only queued, scheduled, unknown or failed messages can be cancelled"});
        let m = api_message(409, &p, "");
        assert!(
            m.contains("the message is sent") && m.contains("not_cancellable"),
            "{m}"
        );
        assert!(api_message(502, &Value::Null, "Bad gateway page").contains("502 Bad Gateway"));
    }
}
