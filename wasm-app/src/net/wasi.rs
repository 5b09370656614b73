//! Components' network: `wasi:http` outgoing requests sent by the host's
//! own client ([`super::client`]) under the grants, and `wasi:sockets`
//! connections through WASI's address check, with name lookups allowed
//! only for granted names.

use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::{Arc, Mutex};
use std::task::Poll;

use http_body_util::{BodyExt, LengthLimitError, Limited};
use wasmtime_wasi::sockets::SocketAddrUse;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use super::client::{open, Endpoint};
use super::grant::{normal_name, NameMatch};
use super::{Failure, Network};
use crate::error::{Error, Limit};
use crate::hostfn::Refusal;

type IoFuture = Box<dyn Future<Output = Result<(), HttpError>> + Send>;
type SendFuture =
    Box<dyn Future<Output = Result<(http::Response<WasiBody>, IoFuture), HttpError>> + Send>;

/// The `wasi:http` hooks of one component instance.
pub(crate) struct HttpHooks {
    pub(crate) net: Option<Arc<Network>>,
    pub(crate) refusal: Refusal,
}

impl WasiHttpHooks for HttpHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        _options: Option<RequestOptions>,
        _fut: IoFuture,
    ) -> SendFuture {
        let (net, refusal) = (self.net.clone(), self.refusal.clone());
        Box::new(async move {
            let refused = |f: Failure| {
                if let Some(e) = f.refusal() {
                    refusal.record(e);
                }
                http_error(f)
            };
            let Some(net) = net else {
                let to = request
                    .uri()
                    .authority()
                    .map(|a| a.to_string())
                    .unwrap_or_default();
                return Err(refused(Failure::Denied(format!(
                    "{} (the policy grants no network)",
                    crate::text::guest_text(to.as_bytes())
                ))));
            };
            let url = url::Url::parse(&request.uri().to_string())
                .map_err(|_| HttpError::HttpRequestUriInvalid)?;
            let to = Endpoint::of(&url).map_err(refused)?;
            let timeout = net.timeout;
            let head = tokio::time::timeout(timeout, send(&net, &to, request))
                .await
                .map_err(|_| refused(Failure::TimedOut(timeout)))?;
            let (response, conn) = head.map_err(refused)?;
            let max = net.max_response;
            let limit = usize::try_from(max).unwrap_or(usize::MAX);
            let body = response.map(|incoming| {
                Limited::new(incoming, limit)
                    .map_err(move |e| {
                        if e.is::<LengthLimitError>() {
                            refusal.record(Error::LimitExceeded(Limit::HttpResponse(max)));
                            HttpError::HttpResponseBodySize(Some(max))
                        } else {
                            match e.downcast::<hyper::Error>() {
                                Ok(h) => HttpError::Hyper(*h),
                                Err(e) => HttpError::InternalError(Some(e.to_string())),
                            }
                        }
                    })
                    .boxed_unsync()
            });
            Ok((body, conn))
        })
    }
}

/// Sends `request` to `to` and waits for the response head, driving the
/// connection meanwhile; the connection's future is returned to be driven
/// while the body is read.
async fn send(
    net: &Network,
    to: &Endpoint,
    mut request: http::Request<WasiBody>,
) -> Result<(http::Response<hyper::body::Incoming>, IoFuture), Failure> {
    let (mut sender, conn) = open::<WasiBody>(&net.grants, to, net.timeout).await?;
    // Only the path goes on the wire (no proxy); wasi:http set `Host`.
    let path = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    *request.uri_mut() = path
        .parse()
        .map_err(|_| Failure::Failed("bad request path".into()))?;
    let mut conn = Some(conn);
    let mut sent = pin!(sender.send_request(request));
    let response = std::future::poll_fn(|cx| {
        if let Poll::Ready(r) = sent.as_mut().poll(cx) {
            return Poll::Ready(r);
        }
        if let Some(c) = conn.as_mut() {
            if let Poll::Ready(done) = c.as_mut().poll(cx) {
                conn = None;
                if let Err(e) = done {
                    return Poll::Ready(Err(e));
                }
                return sent.as_mut().poll(cx);
            }
        }
        Poll::Pending
    })
    .await
    .map_err(|e| Failure::Failed(format!("HTTP with {}: {e}", to.target)))?;
    let io: IoFuture = Box::new(async move {
        match conn {
            Some(c) => c.await.map_err(HttpError::Hyper),
            None => Ok(()),
        }
    });
    Ok((response, io))
}

/// What the component is told for a failure.
fn http_error(f: Failure) -> HttpError {
    match f {
        Failure::Denied(_) => HttpError::HttpRequestDenied,
        Failure::TooLarge(max) => HttpError::HttpResponseBodySize(Some(max)),
        Failure::TimedOut(_) => HttpError::ConnectionTimeout,
        Failure::Failed(m) => HttpError::InternalError(Some(m)),
    }
}

/// Names a component looked up that the grants allow, with how they
/// matched: the addresses a socket may then connect to are theirs.
#[derive(Clone, Default)]
pub(crate) struct LookedUp(Arc<Mutex<Vec<(String, NameMatch)>>>);

/// Most granted names one instance keeps looked up (each connect resolves
/// them again to check the address).
const MAX_LOOKED_UP: usize = 16;

impl LookedUp {
    /// Checks a lookup of `name`: `Ok` if some grant names it (on any
    /// port), remembered for the address check.
    pub(crate) fn check(&self, net: Option<&Network>, name: &str) -> Result<(), Error> {
        let denied = || {
            Error::PolicyDenied(format!(
                "name lookup of {}",
                crate::text::guest_text(name.as_bytes())
            ))
        };
        let net = net.ok_or_else(denied)?;
        let name = normal_name(name).ok_or_else(denied)?;
        let how = net.grants.name_any_port(&name).ok_or_else(denied)?;
        let mut names = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if !names.iter().any(|(n, _)| *n == name) {
            if names.len() >= MAX_LOOKED_UP {
                return Err(denied());
            }
            names.push((name, how));
        }
        Ok(())
    }

    fn names(&self) -> Vec<(String, NameMatch)> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The `wasi:sockets` address check of one instance: an address granted
/// itself, or one that a granted name looked up by the guest resolves to
/// now (by the rules of [`super::grant`]); binds to a port, listening and
/// accepting, never.
pub(crate) fn socket_check(
    net: Option<Arc<Network>>,
    looked_up: LookedUp,
    refusal: Refusal,
) -> impl Fn(std::net::SocketAddr, SocketAddrUse) -> Pin<Box<dyn Future<Output = bool> + Send + Sync>>
       + Send
       + Sync
       + 'static {
    move |addr, use_| {
        let (net, looked_up, refusal) = (net.clone(), looked_up.clone(), refusal.clone());
        Box::pin(async move {
            // WASI checks an implicit bind to the wildcard address before
            // each connect or first send: that one is no grant of a port.
            let implicit_bind = matches!(use_, SocketAddrUse::TcpBind | SocketAddrUse::UdpBind)
                && addr.ip().is_unspecified()
                && addr.port() == 0;
            let connecting = matches!(use_, SocketAddrUse::TcpConnect | SocketAddrUse::UdpSend);
            let allowed = match &net {
                _ if implicit_bind => true,
                Some(net) if connecting => {
                    net.grants.allows(addr, None) || via_names(net, &looked_up, addr).await
                }
                _ => false,
            };
            if !allowed {
                refusal.record(Error::PolicyDenied(format!(
                    "network access to {addr} ({use_:?}) is not in allowed-hosts"
                )));
            }
            allowed
        })
    }
}

/// Whether a name the guest looked up, granted on `addr`'s port, resolves
/// to `addr` now.
async fn via_names(net: &Network, looked_up: &LookedUp, addr: std::net::SocketAddr) -> bool {
    for (name, _) in looked_up.names() {
        let Some(how) = net.grants.name(&name, addr.port()) else {
            continue;
        };
        let Ok(found) = tokio::net::lookup_host((name.as_str(), addr.port())).await else {
            continue;
        };
        let ip = addr.ip().to_canonical();
        if found.into_iter().any(|a| a.ip().to_canonical() == ip)
            && net.grants.allows(addr, Some(how))
        {
            return true;
        }
    }
    false
}

/// Where wasmtime-wasi defines `resolve-addresses` (the version it links).
const P2_LOOKUP: &str = "wasi:sockets/ip-name-lookup@0.2.12";

/// Shadows WASI's `resolve-addresses` in `linker`: a name no grant covers is
/// refused (`access-denied`) before it is resolved, so a guest cannot send
/// what it likes to the host's resolver (a DNS query is a message to
/// whoever serves that name); a granted one is remembered for
/// [`socket_check`] and resolved by WASI's own.
pub(crate) fn bound_lookups(
    linker: &mut wasmtime::component::Linker<crate::host::ComponentState>,
) -> anyhow::Result<()> {
    use wasmtime::component::Resource;
    use wasmtime_wasi::p2::bindings::sockets::ip_name_lookup::{Host, ResolveAddressStream};
    use wasmtime_wasi::p2::bindings::sockets::network::ErrorCode;
    use wasmtime_wasi::sockets::WasiSocketsView;

    type Ret = (Result<Resource<ResolveAddressStream>, ErrorCode>,);
    linker.allow_shadowing(true);
    let mut lookup = linker.instance(P2_LOOKUP)?;
    lookup.func_wrap(
        "resolve-addresses",
        |mut store,
         (network, name): (Resource<wasmtime_wasi::p2::Network>, String)|
         -> wasmtime::Result<Ret> {
            let state: &mut crate::host::ComponentState = store.data_mut();
            if let Err(e) = state.looked_up.check(state.net.as_deref(), &name) {
                state.refusal.record(e);
                return Ok((Err(ErrorCode::AccessDenied),));
            }
            match Host::resolve_addresses(&mut state.sockets(), network, name) {
                Ok(stream) => Ok((Ok(stream),)),
                Err(e) => Ok((Err(e.downcast()?),)),
            }
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}
