//! Where the gateway's own HTTP requests may go: webhook deliveries, Twilio status callbacks
//! and incoming-message posts, and reminder prechecks all pass one [`OutboundPolicy`].
//!
//! A callback URL is chosen by whoever calls the API, so without a policy the gateway would be
//! a way to reach what only it can reach: services on its own machine, the cloud metadata
//! service that hands out credentials, a neighbour's link-local address. The policy is checked
//! twice:
//!
//! - **On the URL** ([`OutboundPolicy::check_url`]) when it is given (API, configuration) and
//!   again just before each request: an IP literal is decided there and then (no resolver is
//!   asked for one), a host name by its name (`localhost`, the `allow`/`deny` names).
//! - **On the addresses a name resolves to** ([`resolve::PolicyResolver`], the HTTP client's
//!   DNS resolver): only addresses that pass are connected to, so a name that resolves (or
//!   rebinds) to a refused address is never reached.
//!
//! Always refused, whatever the configuration: loopback, link-local and cloud metadata
//! addresses, unspecified, multicast, broadcast and reserved addresses, in any spelling (an
//! IPv4 address inside IPv6, `2130706433`, `0x7f.1`). Private ranges are allowed by default:
//! the billing system usually sits on the office LAN. `[outbound] allow`/`deny` narrow it.
//! The one way back in for loopback is `allow_loopback`, for tests and development.

pub mod resolve;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use ipnet::IpNet;
use serde::Deserialize;

pub use resolve::PolicyResolver;

/// The words every caller sees when the policy stopped a request: the webhook's `last_error`,
/// the precheck's outcome, the API's problem. Never the target's own error text.
pub const REFUSED: &str = "refused by outbound policy";

/// `[outbound]`: where the gateway's own HTTP requests may go.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboundConfig {
    /// CIDR blocks, addresses and host names requests may go to; empty: anywhere not refused.
    /// A name may start with `*.` for its subdomains.
    #[serde(default)]
    pub allow: Vec<String>,
    /// CIDR blocks, addresses and host names requests never go to; wins over `allow`.
    #[serde(default)]
    pub deny: Vec<String>,
    /// Lets requests reach loopback addresses (`127.0.0.0/8`, `::1`, `localhost`): for tests
    /// and development on one machine only. The gateway's own port stays refused.
    #[serde(default)]
    pub allow_loopback: bool,
}

/// An `[outbound]` entry that is neither a CIDR block, an address nor a host name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {value:?} is not a CIDR block (10.0.0.0/8), an IP address or a host name")]
pub struct OutboundConfigError {
    /// `allow` or `deny`.
    pub key: &'static str,
    /// The entry.
    pub value: String,
}

impl OutboundConfig {
    /// The policy this section describes.
    pub fn policy(&self) -> Result<OutboundPolicy, OutboundConfigError> {
        let rules = |key: &'static str, list: &[String]| {
            list.iter()
                .map(|v| {
                    Rule::parse(v).ok_or_else(|| OutboundConfigError {
                        key,
                        value: v.clone(),
                    })
                })
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(OutboundPolicy {
            inner: Arc::new(Inner {
                allow: rules("allow", &self.allow)?,
                deny: rules("deny", &self.deny)?,
                allow_loopback: self.allow_loopback,
            }),
        })
    }
}

/// What kind of address an IP is, as far as the policy cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrClass {
    /// `127.0.0.0/8`, `::1`: this machine.
    Loopback,
    /// `169.254.0.0/16`, `fe80::/10`: the local link (cloud metadata lives here).
    LinkLocal,
    /// A cloud metadata service outside the link-local range (`fd00:ec2::254`,
    /// `100.100.100.200`).
    Metadata,
    /// `0.0.0.0/8`, `::`: no address (connecting to it reaches this machine).
    Unspecified,
    /// `224.0.0.0/4`, `ff00::/8`.
    Multicast,
    /// `255.255.255.255`.
    Broadcast,
    /// `240.0.0.0/4`, `fec0::/10`: not to be routed.
    Reserved,
    /// `10.0.0.0/8`, `172.16.0.0/12`, `192.168.0.0/16`, `100.64.0.0/10`, `fc00::/7`.
    Private,
    /// Anything else.
    Public,
}

impl AddrClass {
    /// Whether no configuration may allow it (loopback only through `allow_loopback`).
    pub fn always_refused(self) -> bool {
        !matches!(self, AddrClass::Private | AddrClass::Public)
    }

    fn describe(self) -> &'static str {
        match self {
            AddrClass::Loopback => "a loopback address (this machine)",
            AddrClass::LinkLocal => "a link-local address (where cloud metadata services live)",
            AddrClass::Metadata => "a cloud metadata address",
            AddrClass::Unspecified => "the unspecified address",
            AddrClass::Multicast => "a multicast address",
            AddrClass::Broadcast => "the broadcast address",
            AddrClass::Reserved => "a reserved address",
            AddrClass::Private => "a private address",
            AddrClass::Public => "a public address",
        }
    }
}

/// The IPv4 address an IPv6 address carries, when it is one of the forms that reach it:
/// IPv4-mapped (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`), NAT64 (`64:ff9b::/96`,
/// RFC 6052) and 6to4 (`2002::/16`, RFC 3056). A check on the IPv6 text alone would let
/// `[::ffff:127.0.0.1]` through.
pub fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let low = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if s[..5] == [0; 5] && (s[5] == 0xffff || (s[5] == 0 && u32::from(low) > 1)) {
        return Some(low);
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(low);
    }
    if s[0] == 0x2002 {
        return Some(Ipv4Addr::new(
            (s[1] >> 8) as u8,
            s[1] as u8,
            (s[2] >> 8) as u8,
            s[2] as u8,
        ));
    }
    None
}

/// The class of an address, an IPv4 address inside IPv6 judged as itself.
pub fn classify(ip: IpAddr) -> AddrClass {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => classify_v4(v4),
            None => classify_v6(v6),
        },
    }
}

fn classify_v4(ip: Ipv4Addr) -> AddrClass {
    let [a, b, ..] = ip.octets();
    if a == 0 {
        // RFC 1122 "this network": Linux connects 0.0.0.0 to this machine.
        AddrClass::Unspecified
    } else if a == 127 {
        AddrClass::Loopback
    } else if ip == Ipv4Addr::new(100, 100, 100, 200) {
        // Alibaba Cloud's metadata service, inside the shared address space.
        AddrClass::Metadata
    } else if a == 169 && b == 254 {
        AddrClass::LinkLocal
    } else if ip.is_broadcast() {
        AddrClass::Broadcast
    } else if ip.is_multicast() {
        AddrClass::Multicast
    } else if a >= 240 {
        AddrClass::Reserved
    } else if ip.is_private() || (a == 100 && (64..128).contains(&b)) {
        AddrClass::Private
    } else {
        AddrClass::Public
    }
}

fn classify_v6(ip: Ipv6Addr) -> AddrClass {
    let first = ip.segments()[0];
    if ip.is_unspecified() {
        AddrClass::Unspecified
    } else if ip.is_loopback() {
        AddrClass::Loopback
    } else if ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
        // AWS's IPv6 metadata service, inside the unique-local range.
        AddrClass::Metadata
    } else if first & 0xffc0 == 0xfe80 {
        AddrClass::LinkLocal
    } else if first & 0xffc0 == 0xfec0 {
        AddrClass::Reserved
    } else if first & 0xff00 == 0xff00 {
        AddrClass::Multicast
    } else if first & 0xfe00 == 0xfc00 {
        AddrClass::Private
    } else {
        AddrClass::Public
    }
}

/// Why the policy refused a destination.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// An address of a class that is always refused.
    #[error("{} is {}", .addr, .class.describe())]
    Class {
        /// The address.
        addr: IpAddr,
        /// Its class.
        class: AddrClass,
    },
    /// `localhost` or a name under it (RFC 6761: always loopback).
    #[error("{0} is this machine")]
    LocalName(String),
    /// Matched by `[outbound] deny`.
    #[error("{0} is in [outbound] deny")]
    Denied(String),
    /// Not matched by a non-empty `[outbound] allow`.
    #[error("{0} is not in [outbound] allow")]
    NotAllowed(String),
    /// The URL has no host.
    #[error("the URL has no host")]
    NoHost,
}

/// One `allow`/`deny` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Rule {
    /// A block of addresses (a single address is a /32 or /128).
    Net(IpNet),
    /// A host name, lowercase, without a trailing dot.
    Name(String),
    /// `*.example.com`: every name under `example.com` (stored as `.example.com`).
    Suffix(String),
}

impl Rule {
    fn parse(s: &str) -> Option<Rule> {
        let s = s.trim();
        if let Ok(net) = s.parse::<IpNet>() {
            return Some(Rule::Net(net.trunc()));
        }
        if let Ok(ip) = s
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            return Some(Rule::Net(IpNet::from(ip)));
        }
        let name = normalize(s);
        let (suffix, bare) = match name.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, name.as_str()),
        };
        let valid = !bare.is_empty()
            && bare.len() <= 253
            && bare.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            });
        if !valid {
            return None;
        }
        Some(if suffix {
            Rule::Suffix(format!(".{bare}"))
        } else {
            Rule::Name(bare.to_string())
        })
    }

    fn matches_name(&self, name: &str) -> bool {
        match self {
            Rule::Name(n) => n == name,
            Rule::Suffix(s) => name.ends_with(s.as_str()),
            Rule::Net(_) => false,
        }
    }

    fn matches_addr(&self, ip: IpAddr) -> bool {
        let Rule::Net(net) = self else {
            return false;
        };
        // `10.0.0.0/8` also covers `::ffff:10.1.2.3`.
        net.contains(&ip)
            || match ip {
                IpAddr::V6(v6) => embedded_v4(v6).is_some_and(|v4| net.contains(&IpAddr::V4(v4))),
                IpAddr::V4(_) => false,
            }
    }
}

/// A host name as compared: lowercase, without the trailing dot of a fully qualified name.
fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// Whether a name is `localhost` or under it (RFC 6761 §6.3: resolves to loopback).
fn is_local_name(name: &str) -> bool {
    name == "localhost" || name.ends_with(".localhost")
}

/// The outbound policy (see the module documentation). Cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundPolicy {
    inner: Arc<Inner>,
}

#[derive(Debug, PartialEq, Eq)]
struct Inner {
    allow: Vec<Rule>,
    deny: Vec<Rule>,
    allow_loopback: bool,
}

impl Default for OutboundPolicy {
    /// Anywhere but the always-refused addresses.
    fn default() -> Self {
        OutboundPolicy {
            inner: Arc::new(Inner {
                allow: Vec::new(),
                deny: Vec::new(),
                allow_loopback: false,
            }),
        }
    }
}

impl OutboundPolicy {
    /// The default policy with loopback allowed: for tests and development, whose receivers
    /// listen on 127.0.0.1.
    pub fn allowing_loopback() -> OutboundPolicy {
        OutboundPolicy {
            inner: Arc::new(Inner {
                allow: Vec::new(),
                deny: Vec::new(),
                allow_loopback: true,
            }),
        }
    }

    /// Whether loopback addresses are allowed (`allow_loopback`).
    pub fn allows_loopback(&self) -> bool {
        self.inner.allow_loopback
    }

    /// Whether a request may go to `ip`, reached by the name `name` when there is one.
    pub fn check_addr(&self, name: Option<&str>, ip: IpAddr) -> Result<(), Refusal> {
        let class = classify(ip);
        let loopback_ok = class == AddrClass::Loopback && self.inner.allow_loopback;
        if class.always_refused() && !loopback_ok {
            return Err(Refusal::Class { addr: ip, class });
        }
        let name = name.map(normalize);
        let hit =
            |r: &Rule| r.matches_addr(ip) || name.as_deref().is_some_and(|n| r.matches_name(n));
        let shown = || name.clone().unwrap_or_else(|| ip.to_string());
        if self.inner.deny.iter().any(hit) {
            return Err(Refusal::Denied(shown()));
        }
        if !self.inner.allow.is_empty() && !self.inner.allow.iter().any(hit) {
            return Err(Refusal::NotAllowed(shown()));
        }
        Ok(())
    }

    /// What can be said of a host name before it is resolved: `localhost` is refused, a
    /// denied name is refused, and with a non-empty `allow` of names only, a name not in it.
    /// A name that passes is decided again on each address it resolves to.
    pub fn check_name(&self, name: &str) -> Result<(), Refusal> {
        let name = normalize(name);
        if is_local_name(&name) && !self.inner.allow_loopback {
            return Err(Refusal::LocalName(name));
        }
        if self.inner.deny.iter().any(|r| r.matches_name(&name)) {
            return Err(Refusal::Denied(name));
        }
        let allow = &self.inner.allow;
        let by_address_later = allow.iter().any(|r| matches!(r, Rule::Net(_)));
        if !allow.is_empty() && !by_address_later && !allow.iter().any(|r| r.matches_name(&name)) {
            return Err(Refusal::NotAllowed(name));
        }
        Ok(())
    }

    /// The check of a URL's host: an IP literal is decided here (whatever its spelling: the
    /// URL parser has turned `2130706433` and `[::ffff:7f00:1]` into addresses), a name as
    /// far as [`check_name`](Self::check_name) can.
    pub fn check_url(&self, url: &reqwest::Url) -> Result<(), Refusal> {
        match url.host() {
            Some(url::Host::Ipv4(ip)) => self.check_addr(None, IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => self.check_addr(None, IpAddr::V6(ip)),
            Some(url::Host::Domain(d)) => {
                // A name that is an address in another spelling, e.g. a trailing dot.
                match normalize(d).parse::<IpAddr>() {
                    Ok(ip) => self.check_addr(None, ip),
                    Err(_) => self.check_name(d),
                }
            }
            None => Err(Refusal::NoHost),
        }
    }

    /// [`check_url`](Self::check_url) on a URL's text (one that does not parse has no host).
    pub fn check_url_str(&self, url: &str) -> Result<(), Refusal> {
        reqwest::Url::parse(url)
            .map_err(|_| Refusal::NoHost)
            .and_then(|u| self.check_url(&u))
    }

    /// An HTTP client builder that obeys the policy: its resolver connects only to addresses
    /// that pass; no proxy (a proxy would resolve and connect on its own, out of the policy's
    /// sight) and no redirects (a redirect could lead anywhere after the URL was checked).
    /// Requests to IP literals must still be checked with [`check_url`](Self::check_url).
    pub fn client_builder(&self) -> reqwest::ClientBuilder {
        crate::tls::client_builder()
            .dns_resolver(Arc::new(PolicyResolver::new(self.clone())))
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
    }
}

/// The error a request stopped by the policy fails with (the resolver's, or a check before
/// sending). Its text is [`REFUSED`]; why is kept for the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("refused by outbound policy")]
pub struct Refused(pub Refusal);

/// Whether an error, or one of its causes, is the policy's refusal.
pub fn is_refused(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if e.downcast_ref::<Refused>().is_some() {
            return true;
        }
        cur = e.source();
    }
    false
}

#[cfg(test)]
mod tests;
