//! The HTTP client's DNS resolver: it resolves with the system resolver and keeps only the
//! addresses the policy allows, so the connection can only go where the policy says. Checking
//! the name and then letting the client resolve it again would leave a gap a name that
//! changes its answer (DNS rebinding) walks through.

use std::net::SocketAddr;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::{OutboundPolicy, Refused};

/// A name the system resolver found no address for.
#[derive(Debug, thiserror::Error)]
#[error("{0} has no address")]
pub struct NoAddress(String);

/// A [`Resolve`] that filters what the system resolver answers through an [`OutboundPolicy`].
#[derive(Debug, Clone)]
pub struct PolicyResolver {
    policy: OutboundPolicy,
}

impl PolicyResolver {
    /// A resolver obeying `policy`.
    pub fn new(policy: OutboundPolicy) -> PolicyResolver {
        PolicyResolver { policy }
    }

    /// The addresses of `name` the policy allows (port 0: the client puts the URL's port);
    /// [`Refused`] when it has addresses but none is allowed.
    pub async fn lookup(
        &self,
        name: &str,
    ) -> Result<Vec<SocketAddr>, Box<dyn std::error::Error + Send + Sync>> {
        if let Err(why) = self.policy.check_name(name) {
            tracing::warn!(host = name, reason = %why, "outbound request refused");
            return Err(Box::new(Refused(why)));
        }
        let found: Vec<SocketAddr> = tokio::net::lookup_host((name, 0)).await?.collect();
        if found.is_empty() {
            return Err(Box::new(NoAddress(name.to_string())));
        }
        let mut refusal = None;
        let allowed: Vec<SocketAddr> = found
            .into_iter()
            .filter(|a| match self.policy.check_addr(Some(name), a.ip()) {
                Ok(()) => true,
                Err(why) => {
                    refusal.get_or_insert(why);
                    false
                }
            })
            .collect();
        match (allowed.is_empty(), refusal) {
            (true, Some(why)) => {
                tracing::warn!(host = name, reason = %why, "outbound request refused");
                Err(Box::new(Refused(why)))
            }
            _ => Ok(allowed),
        }
    }
}

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let this = self.clone();
        let name = name.as_str().to_string();
        Box::pin(async move {
            let addrs = this.lookup(&name).await?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}
