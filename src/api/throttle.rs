//! Wrong credentials, counted per client address: after `[http] auth_failure_limit` wrong
//! bearer tokens, Twilio Basic credentials or admin logins within `auth_failure_window`, every
//! request from that address that presents credentials is answered 429 (with `Retry-After`)
//! until the window ends. Other addresses are not affected, so a stranger cannot lock out
//! the billing system or the admins by failing on purpose.
//!
//! The address is the TCP peer's: nothing a client writes in a header (`X-Forwarded-For`)
//! counts, since anyone can write anything there. IPv6 addresses count by their /64, the
//! block one host usually holds. The table is bounded ([`MAX_ADDRESSES`]): when full, entries
//! whose window ended go first, then the oldest; an attacker with many addresses gets a few
//! guesses per address, never an unbounded table.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Most addresses remembered at once.
pub const MAX_ADDRESSES: usize = 8192;

/// `[http] auth_failure_limit` and `auth_failure_window`.
#[derive(Debug, Clone, Copy)]
pub struct FailureLimit {
    /// Wrong credentials allowed per address within `window`; 0: no limit.
    pub max: u32,
    /// The window, counted from an address's first failure.
    pub window: Duration,
}

impl Default for FailureLimit {
    fn default() -> Self {
        FailureLimit {
            max: 10,
            window: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    since: Instant,
    count: u32,
}

/// Failures per address.
#[derive(Debug)]
pub struct Failures {
    limit: FailureLimit,
    capacity: usize,
    table: Mutex<HashMap<IpAddr, Entry>>,
}

/// The client's address as failures are counted: the TCP peer's (IPv6 by its /64);
/// `None` when the request did not come over a connection (a test calling the router).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| key(c.0.ip())),
        ))
    }
}

/// The address a failure is counted against.
fn key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

impl Failures {
    /// An empty table.
    pub fn new(limit: FailureLimit) -> Failures {
        Failures::with_capacity(limit, MAX_ADDRESSES)
    }

    fn with_capacity(limit: FailureLimit, capacity: usize) -> Failures {
        Failures {
            limit,
            capacity: capacity.max(1),
            table: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Entry>> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `Some(wait)` when `addr` has used up its failures: how long until it may try again.
    pub fn blocked(&self, addr: ClientAddr) -> Option<Duration> {
        self.blocked_at(addr, Instant::now())
    }

    fn blocked_at(&self, addr: ClientAddr, now: Instant) -> Option<Duration> {
        let ip = addr.0?;
        if self.limit.max == 0 {
            return None;
        }
        let mut t = self.lock();
        let e = *t.get(&ip)?;
        let end = e.since + self.limit.window;
        if now >= end {
            t.remove(&ip);
            return None;
        }
        (e.count >= self.limit.max).then(|| end - now)
    }

    /// Counts a wrong credential from `addr`.
    pub fn record(&self, addr: ClientAddr) {
        self.record_at(addr, Instant::now());
    }

    fn record_at(&self, addr: ClientAddr, now: Instant) {
        let Some(ip) = addr.0 else { return };
        if self.limit.max == 0 {
            return;
        }
        let window = self.limit.window;
        let mut t = self.lock();
        if !t.contains_key(&ip) && t.len() >= self.capacity {
            t.retain(|_, e| now < e.since + window);
            if t.len() >= self.capacity
                && let Some(oldest) = t.iter().min_by_key(|(_, e)| e.since).map(|(k, _)| *k)
            {
                t.remove(&oldest);
            }
        }
        let e = t.entry(ip).or_insert(Entry {
            since: now,
            count: 0,
        });
        if now >= e.since + window {
            *e = Entry {
                since: now,
                count: 0,
            };
        }
        e.count = e.count.saturating_add(1);
    }

    /// Addresses remembered now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no address is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Whole seconds to wait, at least 1 (`Retry-After` has no fractions).
pub fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

/// The 429 answer of `/v1` and the documentation routes: problem details with `Retry-After`.
pub fn too_many(wait: Duration) -> Response {
    metrics::counter!(crate::metrics::AUTH_THROTTLED).increment(1);
    let secs = retry_after_secs(wait);
    let mut r = super::ApiError::other(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_failures",
        "Too many failed authentications",
        format!(
            "too many wrong credentials from this address: try again in {secs} s (a right token is refused too until then)"
        ),
    )
    .into_response();
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> ClientAddr {
        ClientAddr(Some(key(s.parse().unwrap())))
    }

    #[test]
    fn an_address_is_blocked_after_its_failures_and_others_are_not() {
        let f = Failures::new(FailureLimit {
            max: 3,
            window: Duration::from_secs(60),
        });
        let t0 = Instant::now();
        let a = at("192.0.2.1");
        for _ in 0..2 {
            f.record_at(a, t0);
            assert!(f.blocked_at(a, t0).is_none());
        }
        f.record_at(a, t0);
        let wait = f.blocked_at(a, t0 + Duration::from_secs(10)).unwrap();
        assert_eq!(wait, Duration::from_secs(50));
        assert_eq!(retry_after_secs(Duration::from_millis(1500)), 2);
        assert!(f.blocked_at(at("192.0.2.2"), t0).is_none());
        // The window ends: the address may try again.
        assert!(f.blocked_at(a, t0 + Duration::from_secs(60)).is_none());
        // No address (not over a connection) and a limit of 0 never block.
        f.record_at(ClientAddr(None), t0);
        assert!(f.blocked_at(ClientAddr(None), t0).is_none());
    }

    #[test]
    fn ipv6_counts_by_its_64_and_mapped_v4_as_v4() {
        assert_eq!(at("2001:db8:1:2:aaaa::1").0, at("2001:db8:1:2:bbbb::9").0);
        assert_ne!(at("2001:db8:1:2::1").0, at("2001:db8:1:3::1").0);
        assert_eq!(at("::ffff:192.0.2.7").0, at("192.0.2.7").0);
    }

    #[test]
    fn the_table_is_bounded() {
        let f = Failures::with_capacity(
            FailureLimit {
                max: 2,
                window: Duration::from_secs(60),
            },
            100,
        );
        let t0 = Instant::now();
        for i in 0..10_000u32 {
            let ip = std::net::Ipv4Addr::from(0x0A00_0000 + i);
            f.record_at(ClientAddr(Some(IpAddr::V4(ip))), t0);
        }
        assert!(f.len() <= 100, "{}", f.len());
        // The newest addresses are kept.
        let last = ClientAddr(Some(IpAddr::V4(std::net::Ipv4Addr::from(
            0x0A00_0000 + 9_999u32,
        ))));
        f.record_at(last, t0);
        assert!(f.blocked_at(last, t0).is_some());
    }
}
