//! Network access for guests, deny by default: the grants (`allowed-hosts`)
//! and everything that enforces them.
//!
//! - [`grant`]: parsing and matching `HOST[:PORT]` grants, names and
//!   addresses (non-public addresses need an exact grant);
//! - [`connect`]: name resolution by the host and connection to checked
//!   addresses only;
//! - [`client`]: HTTP/1.1 (and TLS) over such a connection;
//! - [`fetch`]: the core modules' `wasm_host.http_request`;
//! - [`http`] and [`sockets`]: components' `wasi:http` and `wasi:sockets`,
//!   through the same checks.

pub(crate) mod client;
pub(crate) mod connect;
pub(crate) mod fetch;
pub(crate) mod grant;
pub(crate) mod http;
pub(crate) mod sockets;

use std::time::Duration;

use crate::error::{Error, Limit};
use crate::policy::Policy;
use grant::Grants;

/// What the network grants of one module come to.
#[derive(Debug, Clone)]
pub(crate) struct Network {
    pub(crate) grants: Grants,
    /// Bytes of one response body.
    pub(crate) max_response: u64,
    /// Time for one request, redirects included (the call's own timeout
    /// bounds it too).
    pub(crate) timeout: Duration,
}

impl Network {
    /// The network `policy` grants; `None` when it grants none.
    pub(crate) fn of(policy: &Policy) -> Result<Option<Self>, Error> {
        let grants = Grants::parse(&policy.allowed_hosts).map_err(Error::InvalidPolicy)?;
        Ok((!grants.is_empty()).then_some(Network {
            grants,
            max_response: policy.limits.max_http_response,
            timeout: policy.limits.http_timeout,
        }))
    }
}

/// Why a guest's request did not get a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The grants refuse it (the message names the host and port).
    Denied(String),
    /// The response is larger than `max-http-response`.
    TooLarge(u64),
    /// The request took longer than `http-timeout`.
    TimedOut(Duration),
    /// Anything else: a bad URL, a refused connection, a broken response.
    Failed(String),
}

impl Failure {
    /// What the guest is told.
    pub(crate) fn message(&self) -> String {
        match self {
            Failure::Denied(m) => format!("policy denied: {m}"),
            Failure::TooLarge(max) => format!(
                "the response is larger than max-http-response ({})",
                crate::text::format_size(*max)
            ),
            Failure::TimedOut(t) => format!("no response within http-timeout ({t:?})"),
            Failure::Failed(m) => m.clone(),
        }
    }

    /// The error the guest's call fails with if the guest then fails: the
    /// policy's refusals, not what the guest made of them.
    pub(crate) fn refusal(&self) -> Option<Error> {
        match self {
            Failure::Denied(m) => Some(Error::PolicyDenied(format!("network access to {m}"))),
            Failure::TooLarge(max) => Some(Error::LimitExceeded(Limit::HttpResponse(*max))),
            Failure::TimedOut(t) => Some(Error::LimitExceeded(Limit::HttpTime(*t))),
            Failure::Failed(_) => None,
        }
    }
}
