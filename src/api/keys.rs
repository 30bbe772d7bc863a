//! API keys: a token's hash, what the key may do (its scopes) and until when it works; and the
//! ring of keys in force, which a reload (`SIGHUP`, `POST /v1/admin/reload`) replaces whole.
//!
//! Each route needs one scope ([`required_scope`]); `admin` holds every scope. A key
//! configured without `scopes` holds them all, as keys did before scopes existed.

use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::ApiError;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Messages (send, cancel, requeue), reminder plans, paid / payment failed.
    Send,
    /// Messages, plans, inbound, history, events, stats, modems' state, the admin page's view.
    Read,
    /// Message templates.
    Templates,
    /// Adding and removing opt-outs.
    Optout,
    /// USSD and reloading the configuration.
    Modems,
    /// Everything, whatever scope a route needs.
    Admin,
    /// `GET /metrics` only.
    Metrics,
}

impl Scope {
    /// Every scope, in the order the documentation lists them.
    pub const ALL: [Scope; 7] = [
        Scope::Send,
        Scope::Read,
        Scope::Templates,
        Scope::Optout,
        Scope::Modems,
        Scope::Admin,
        Scope::Metrics,
    ];

    /// The scope's name in the configuration and the OpenAPI document.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Send => "send",
            Scope::Read => "read",
            Scope::Templates => "templates",
            Scope::Optout => "optout",
            Scope::Modems => "modems",
            Scope::Admin => "admin",
            Scope::Metrics => "metrics",
        }
    }

    /// The scope of a name; `None` for a name that is not one.
    pub fn parse(name: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.as_str() == name)
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The scopes a caller holds: a request extension set by the authentication, next to
/// [`super::Caller`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scopes(u8);

impl Scopes {
    /// Every scope: a key configured without `scopes`.
    pub fn all() -> Scopes {
        Scopes::from_iter(Scope::ALL)
    }

    /// Whether a route that needs `scope` is allowed: the scope itself, or `admin`.
    pub fn allows(self, scope: Scope) -> bool {
        self.0 & (scope.bit() | Scope::Admin.bit()) != 0
    }

    /// The scopes held, in [`Scope::ALL`]'s order.
    pub fn list(self) -> Vec<Scope> {
        Scope::ALL
            .into_iter()
            .filter(|s| self.0 & s.bit() != 0)
            .collect()
    }

    /// `Ok` when `scope` is allowed; else the 403 naming it.
    pub fn require(self, scope: Scope) -> Result<(), ApiError> {
        if self.allows(scope) {
            Ok(())
        } else {
            Err(ApiError::forbidden(scope))
        }
    }

    /// `Ok` for a caller holding `admin`; else the 403 naming it.
    pub fn require_admin(self) -> Result<(), ApiError> {
        self.require(Scope::Admin)
    }
}

impl FromIterator<Scope> for Scopes {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        Scopes(iter.into_iter().fold(0, |acc, s| acc | s.bit()))
    }
}

/// The scope each route needs: method, route as the router writes it, scope. A route missing
/// here needs `admin`; a test keeps this table and the OpenAPI document's `security` the same.
const ROUTE_SCOPES: &[(&str, &str, Scope)] = &[
    ("POST", "/v1/messages", Scope::Send),
    ("GET", "/v1/messages", Scope::Read),
    ("POST", "/v1/messages/batch", Scope::Send),
    ("GET", "/v1/messages/{id}", Scope::Read),
    ("POST", "/v1/messages/{id}/cancel", Scope::Send),
    ("POST", "/v1/messages/{id}/requeue", Scope::Send),
    ("GET", "/v1/messages/{id}/history", Scope::Read),
    ("GET", "/v1/history/export", Scope::Read),
    ("GET", "/v1/opt-outs", Scope::Read),
    ("POST", "/v1/opt-outs", Scope::Optout),
    ("GET", "/v1/opt-outs/{number}", Scope::Read),
    ("DELETE", "/v1/opt-outs/{number}", Scope::Optout),
    ("POST", "/v1/reminders", Scope::Send),
    ("GET", "/v1/reminders", Scope::Read),
    ("GET", "/v1/reminders/{id}", Scope::Read),
    ("PATCH", "/v1/reminders/{id}", Scope::Send),
    ("DELETE", "/v1/reminders/{id}", Scope::Send),
    ("POST", "/v1/reminders/{id}/paid", Scope::Send),
    ("POST", "/v1/reminders/{id}/payment-failed", Scope::Send),
    ("GET", "/v1/templates", Scope::Templates),
    ("GET", "/v1/templates/{name}", Scope::Templates),
    ("PUT", "/v1/templates/{name}", Scope::Templates),
    ("DELETE", "/v1/templates/{name}", Scope::Templates),
    ("GET", "/v1/inbound", Scope::Read),
    ("GET", "/v1/inbound/{id}", Scope::Read),
    ("GET", "/v1/reports/unmatched", Scope::Read),
    ("GET", "/v1/modems", Scope::Read),
    ("POST", "/v1/modems/{name}/ussd", Scope::Modems),
    ("GET", "/v1/stats", Scope::Read),
    ("GET", "/v1/events", Scope::Read),
    ("GET", "/v1/webhooks/failed", Scope::Read),
    ("POST", "/v1/webhooks/{id}/retry", Scope::Admin),
    ("POST", "/v1/admin/reload", Scope::Modems),
    ("GET", "/v1/audit", Scope::Admin),
    ("POST", "/v1/admin/backup", Scope::Admin),
    ("POST", "/v1/erasure", Scope::Admin),
    ("GET", "/v1/dashboard", Scope::Read),
    ("GET", "/v1/dashboard/search", Scope::Read),
    ("GET", "/v1/demo/phone", Scope::Read),
    ("POST", "/v1/demo/phone/reply", Scope::Send),
    ("GET", "/metrics", Scope::Metrics),
];

/// Routes every valid key may call, whatever its scopes: the API's own description.
const ANY_KEY: &[&str] = &["/openapi.json"];

/// The scope a route needs (`route` as the router matched it, `/v1/messages/{id}`): `None`
/// for a route any key may call, `admin` for a route the table does not name. `HEAD` needs
/// what `GET` needs.
pub fn required_scope(method: &axum::http::Method, route: &str) -> Option<Scope> {
    if ANY_KEY.contains(&route) {
        return None;
    }
    let method = if method == axum::http::Method::HEAD {
        "GET"
    } else {
        method.as_str()
    };
    Some(
        ROUTE_SCOPES
            .iter()
            .find(|(m, r, _)| *m == method && *r == route)
            .map_or(Scope::Admin, |(_, _, s)| *s),
    )
}

/// The scope every route of the table needs, for the documentation's test.
#[cfg(test)]
pub(crate) fn route_scopes() -> &'static [(&'static str, &'static str, Scope)] {
    ROUTE_SCOPES
}

/// An API key as kept in memory: its name, the SHA-256 of its token, its scopes and the end of
/// its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// The key's name.
    pub name: String,
    /// SHA-256 of the token.
    pub sha256: [u8; 32],
    /// What it may do (every scope when the configuration names none).
    pub scopes: Scopes,
    /// When it stops working (`expires_at`): the old key of a rotation.
    pub expires_at: Option<DateTime<Utc>>,
}

impl ApiKey {
    /// From a plain token, with every scope and no end.
    pub fn from_token(name: &str, token: &str) -> ApiKey {
        ApiKey {
            name: name.to_string(),
            sha256: Sha256::digest(token.as_bytes()).into(),
            scopes: Scopes::all(),
            expires_at: None,
        }
    }

    /// From a hex SHA-256, with every scope and no end; `None` when it is not 64 hex digits.
    pub fn from_sha256_hex(name: &str, hex: &str) -> Option<ApiKey> {
        let bytes = crate::sms::parse_hex(hex).ok()?;
        Some(ApiKey {
            name: name.to_string(),
            sha256: bytes.try_into().ok()?,
            scopes: Scopes::all(),
            expires_at: None,
        })
    }

    /// The same key, limited to `scopes`.
    pub fn with_scopes(self, scopes: impl IntoIterator<Item = Scope>) -> ApiKey {
        ApiKey {
            scopes: Scopes::from_iter(scopes),
            ..self
        }
    }

    /// The same key, working until `at` only.
    pub fn expiring(self, at: DateTime<Utc>) -> ApiKey {
        ApiKey {
            expires_at: Some(at),
            ..self
        }
    }

    /// Whether the key works at `now`.
    pub fn live(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_none_or(|end| now < end)
    }
}

/// Compares the presented token's hash with every key, in constant time per key and without
/// stopping at the first match, so timing tells nothing about which key or how much matched.
/// A key past its `expires_at` matches nothing.
pub fn authenticate(keys: &[ApiKey], token: &str, now: DateTime<Utc>) -> Option<ApiKey> {
    let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    let mut found = None;
    for k in keys {
        if crate::util::same_bytes(&k.sha256, &digest) && found.is_none() {
            found = Some(k);
        }
    }
    found.filter(|k| k.live(now)).cloned()
}

/// The keys in force: read by every request, replaced whole by a reload.
#[derive(Debug, Default)]
pub struct KeyRing {
    keys: RwLock<Arc<Vec<ApiKey>>>,
}

/// What a reload did to the keys, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct KeyChanges {
    /// Keys that work from now on.
    pub added: Vec<String>,
    /// Keys that no longer work.
    pub removed: Vec<String>,
    /// Keys whose token, scopes or end changed.
    pub updated: Vec<String>,
}

impl KeyRing {
    /// A ring holding `keys`.
    pub fn new(keys: Vec<ApiKey>) -> KeyRing {
        KeyRing {
            keys: RwLock::new(Arc::new(keys)),
        }
    }

    /// The keys now.
    pub fn current(&self) -> Arc<Vec<ApiKey>> {
        self.keys.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The key named `name` with the token hash `sha256`, if it is still in force at `now`: a
    /// session of the admin page is checked against it on each request, so revoking, rotating
    /// or narrowing the key applies to its sessions at once.
    pub fn still(&self, name: &str, sha256: &[u8; 32], now: DateTime<Utc>) -> Option<ApiKey> {
        self.current()
            .iter()
            .find(|k| k.name == name && crate::util::same_bytes(&k.sha256, sha256) && k.live(now))
            .cloned()
    }

    /// Puts `keys` in force; says what changed, by name (a name may have several entries: a
    /// rotation's old tokens beside the current one).
    pub fn replace(&self, keys: Vec<ApiKey>) -> KeyChanges {
        let mut slot = self.keys.write().unwrap_or_else(|e| e.into_inner());
        let old = slot.clone();
        let of = |list: &[ApiKey], name: &str| -> Vec<ApiKey> {
            list.iter().filter(|k| k.name == name).cloned().collect()
        };
        let mut changes = KeyChanges::default();
        let mut seen = Vec::new();
        for k in &keys {
            if seen.contains(&k.name) {
                continue;
            }
            seen.push(k.name.clone());
            let before = of(&old, &k.name);
            if before.is_empty() {
                changes.added.push(k.name.clone());
            } else if before != of(&keys, &k.name) {
                changes.updated.push(k.name.clone());
            }
        }
        for o in old.iter() {
            if !keys.iter().any(|k| k.name == o.name) && !changes.removed.contains(&o.name) {
                changes.removed.push(o.name.clone());
            }
        }
        *slot = Arc::new(keys);
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_match_by_hash_and_only_while_live() {
        let now = Utc::now();
        let keys = vec![
            ApiKey::from_token("a", "token-number-one-1234"),
            ApiKey::from_token("b", "token-number-two-1234"),
            ApiKey::from_token("old", "token-number-old-1234")
                .expiring(now - chrono::Duration::seconds(1)),
            ApiKey::from_token("next", "token-number-new-1234")
                .expiring(now + chrono::Duration::hours(1)),
        ];
        let name = |t: &str| authenticate(&keys, t, now).map(|k| k.name);
        assert_eq!(name("token-number-two-1234").as_deref(), Some("b"));
        assert_eq!(name("token-number-two-123"), None);
        assert_eq!(name(""), None);
        assert_eq!(name("token-number-old-1234"), None);
        assert_eq!(name("token-number-new-1234").as_deref(), Some("next"));
        let hex = "a".repeat(64);
        assert!(ApiKey::from_sha256_hex("h", &hex).is_some());
        assert!(ApiKey::from_sha256_hex("h", "abc").is_none());
    }

    #[test]
    fn admin_allows_every_scope_and_others_only_their_own() {
        let send = Scopes::from_iter([Scope::Send]);
        assert!(send.allows(Scope::Send));
        assert!(!send.allows(Scope::Read));
        assert!(!send.allows(Scope::Admin));
        let admin = Scopes::from_iter([Scope::Admin]);
        assert!(Scope::ALL.iter().all(|s| admin.allows(*s)));
        assert!(Scope::ALL.iter().all(|s| Scopes::all().allows(*s)));
        let e = send.require(Scope::Metrics).unwrap_err();
        assert_eq!(e.status, axum::http::StatusCode::FORBIDDEN);
        assert!(e.detail.contains("`metrics`"), "{}", e.detail);
        assert!(send.require_admin().is_err());
        assert_eq!(send.list(), vec![Scope::Send]);
        for s in Scope::ALL {
            assert_eq!(Scope::parse(s.as_str()), Some(s));
        }
    }

    #[test]
    fn routes_not_in_the_table_need_admin() {
        use axum::http::Method;
        assert_eq!(
            required_scope(&Method::POST, "/v1/messages"),
            Some(Scope::Send)
        );
        assert_eq!(
            required_scope(&Method::HEAD, "/v1/messages"),
            Some(Scope::Read)
        );
        assert_eq!(
            required_scope(&Method::POST, "/v1/unknown"),
            Some(Scope::Admin)
        );
        assert_eq!(required_scope(&Method::GET, "/openapi.json"), None);
    }

    #[test]
    fn a_replaced_ring_says_what_changed() {
        let ring = KeyRing::new(vec![
            ApiKey::from_token("a", "token-number-one-1234"),
            ApiKey::from_token("b", "token-number-two-1234"),
        ]);
        let changes = ring.replace(vec![
            ApiKey::from_token("a", "token-number-one-1234"),
            ApiKey::from_token("b", "token-number-two-1234").with_scopes([Scope::Read]),
            ApiKey::from_token("c", "token-number-three-1234"),
        ]);
        assert_eq!(changes.added, vec!["c"]);
        assert_eq!(changes.updated, vec!["b"]);
        assert!(changes.removed.is_empty());
        // The old token of a rotation, beside the new one under the same name.
        let changes = ring.replace(vec![
            ApiKey::from_token("c", "token-number-three-1234"),
            ApiKey::from_token("c", "token-number-four-1234").expiring(Utc::now()),
        ]);
        assert_eq!(changes.removed, vec!["a", "b"]);
        assert_eq!(changes.updated, vec!["c"]);
        assert!(changes.added.is_empty());
        let a = ApiKey::from_token("a", "token-number-one-1234");
        assert!(ring.still("a", &a.sha256, Utc::now()).is_none());
        let c = ApiKey::from_token("c", "token-number-three-1234");
        assert!(ring.still("c", &c.sha256, Utc::now()).is_some());
        assert!(ring.still("c", &a.sha256, Utc::now()).is_none());
    }
}
