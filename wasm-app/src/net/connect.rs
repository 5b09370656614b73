//! Resolving and connecting under the grants: the one way the host opens a
//! connection for a guest.
//!
//! The name is checked, resolved by the host, every address checked, and
//! the connection made to a checked address: the guest never supplies an
//! address the check did not see, so a name that resolves to one address at
//! check time and another at connect time (DNS rebinding) gains nothing.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpStream;

use super::grant::{normal_name, Grants};
use super::Failure;

/// Where a guest asked to connect, as its URL says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    Name(String),
    Addr(std::net::IpAddr),
}

impl Target {
    /// The host of `url`.
    pub(crate) fn of(url: &url::Url) -> Result<Self, Failure> {
        match url.host() {
            Some(url::Host::Domain(d)) => normal_name(d)
                .map(Target::Name)
                .ok_or_else(|| Failure::Failed(format!("{d:?} is not a host name"))),
            Some(url::Host::Ipv4(a)) => Ok(Target::Addr(a.into())),
            Some(url::Host::Ipv6(a)) => Ok(Target::Addr(a.into())),
            None => Err(Failure::Failed(format!("{url} has no host"))),
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Name(n) => write!(f, "{n}"),
            Target::Addr(std::net::IpAddr::V6(a)) => write!(f, "[{a}]"),
            Target::Addr(a) => write!(f, "{a}"),
        }
    }
}

/// The addresses of `target` on `port` the grants allow, resolved by the
/// host; a refusal names what was asked for and what it resolved to.
pub(crate) async fn checked_addrs(
    grants: &Grants,
    target: &Target,
    port: u16,
) -> Result<Vec<SocketAddr>, Failure> {
    let denied = |why: String| Failure::Denied(format!("{target}:{port} {why}"));
    match target {
        Target::Addr(ip) => {
            let addr = SocketAddr::new(*ip, port);
            if grants.allows(addr, None) {
                Ok(vec![addr])
            } else {
                Err(denied("is not in allowed-hosts".into()))
            }
        }
        Target::Name(name) => {
            let Some(how) = grants.name(name, port) else {
                return Err(denied("is not in allowed-hosts".into()));
            };
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), port))
                .await
                .map_err(|e| Failure::Failed(format!("cannot resolve {name}: {e}")))?
                .map(|a| SocketAddr::new(a.ip().to_canonical(), a.port()))
                .collect();
            let allowed: Vec<SocketAddr> = resolved
                .iter()
                .copied()
                .filter(|a| grants.allows(*a, Some(how)))
                .collect();
            match (allowed.is_empty(), resolved.first()) {
                (false, _) => Ok(allowed),
                (true, Some(first)) => Err(denied(format!(
                    "resolves to {}, which is not a public address: grant {first} or the \
                     name {name}:{port} itself",
                    first.ip()
                ))),
                (true, None) => Err(Failure::Failed(format!("{name} has no address"))),
            }
        }
    }
}

/// A TCP connection to the first of `addrs` that answers within `timeout`.
pub(crate) async fn connect(addrs: &[SocketAddr], timeout: Duration) -> Result<TcpStream, Failure> {
    let mut last = None;
    for addr in addrs {
        match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                // Requests are small and answered at once: no delayed ACKs.
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Ok(Err(e)) => last = Some(format!("cannot connect to {addr}: {e}")),
            Err(_) => last = Some(format!("no answer from {addr} within {timeout:?}")),
        }
    }
    Err(Failure::Failed(
        last.unwrap_or_else(|| "no address to connect to".into()),
    ))
}
