//! Components' `wasi:sockets`: TCP connect and UDP through WASI's address
//! check, name lookups only of names some grant covers, and sockets
//! counted with open files against `max-open-files`.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wasmtime_wasi::sockets::SocketAddrUse;

use super::grant::{normal_name, NameMatch};
use super::Network;
use crate::error::Error;
use crate::hostfn::Refusal;

/// Names a component looked up that the grants allow, with how they
/// matched (the addresses a socket may then reach are theirs), and the
/// lookups of the current operation.
#[derive(Clone, Default)]
pub(crate) struct LookedUp(Arc<Mutex<Names>>);

#[derive(Default)]
struct Names {
    granted: Vec<(String, NameMatch)>,
    /// Lookups in this operation: each one holds a thread of the host's
    /// blocking pool (shared by every guest's file I/O) while it resolves.
    lookups: u32,
    /// What the check resolved lately, so a stream of datagrams does not
    /// send a DNS query each.
    resolved: Vec<(String, u16, Instant, Vec<IpAddr>)>,
}

/// Most granted names one instance keeps looked up.
const MAX_LOOKED_UP: usize = 16;
/// Most lookups in one operation.
const MAX_LOOKUPS: u32 = 64;
/// How long the check trusts what it resolved.
const RESOLVED_FOR: Duration = Duration::from_secs(10);

impl LookedUp {
    fn names(&self) -> std::sync::MutexGuard<'_, Names> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts the next operation's count of lookups.
    pub(crate) fn start(&self) {
        self.names().lookups = 0;
    }

    /// Checks a lookup of `name`: `Ok` if some grant names it (on any
    /// port), remembered for the address check.
    pub(crate) fn check(&self, net: Option<&Network>, name: &str) -> Result<(), Error> {
        let denied = |why: &str| {
            Error::PolicyDenied(format!(
                "name lookup of {}{why}",
                crate::text::guest_text(name.as_bytes())
            ))
        };
        let net = net.ok_or_else(|| denied(" (the policy grants no network)"))?;
        let name = normal_name(name).ok_or_else(|| denied(""))?;
        let how = net.grants.name_any_port(&name).ok_or_else(|| denied(""))?;
        let mut names = self.names();
        if names.lookups >= MAX_LOOKUPS {
            return Err(denied(&format!(" (more than {MAX_LOOKUPS} in one call)")));
        }
        names.lookups += 1;
        if !names.granted.iter().any(|(n, _)| *n == name) {
            if names.granted.len() >= MAX_LOOKED_UP {
                return Err(denied(&format!(" (more than {MAX_LOOKED_UP} names)")));
            }
            names.granted.push((name, how));
        }
        Ok(())
    }

    fn granted(&self) -> Vec<(String, NameMatch)> {
        self.names().granted.clone()
    }

    /// The addresses of `name` on `port`, resolved at most every
    /// [`RESOLVED_FOR`].
    async fn resolve(&self, name: &str, port: u16) -> Vec<IpAddr> {
        {
            let names = self.names();
            let fresh = names
                .resolved
                .iter()
                .find(|(n, p, at, _)| n == name && *p == port && at.elapsed() < RESOLVED_FOR);
            if let Some((.., ips)) = fresh {
                return ips.clone();
            }
        }
        let ips: Vec<IpAddr> = match tokio::net::lookup_host((name, port)).await {
            Ok(found) => found.map(|a| a.ip().to_canonical()).collect(),
            Err(_) => Vec::new(),
        };
        let mut names = self.names();
        names
            .resolved
            .retain(|(n, p, ..)| !(n == name && *p == port));
        names
            .resolved
            .push((name.to_string(), port, Instant::now(), ips.clone()));
        ips
    }
}

/// The `wasi:sockets` address check of one instance: a peer is an address
/// granted itself, or one that a granted name the guest looked up resolves
/// to now (by the rules of [`super::grant`]). Binds to a port, listening
/// and accepting, never; without a network grant, nothing (and WASI's
/// sockets are off then too, see `host.rs`).
pub(crate) fn socket_check(
    net: Option<Arc<Network>>,
    looked_up: LookedUp,
    refusal: Refusal,
) -> impl Fn(SocketAddr, SocketAddrUse) -> Pin<Box<dyn Future<Output = bool> + Send + Sync>>
       + Send
       + Sync
       + 'static {
    move |addr, use_| {
        let (net, looked_up, refusal) = (net.clone(), looked_up.clone(), refusal.clone());
        Box::pin(async move {
            let Some(net) = net else {
                return false;
            };
            // WASI checks an implicit bind to the wildcard address before
            // each connect or first send: that one is no grant of a port.
            let implicit_bind = matches!(use_, SocketAddrUse::TcpBind | SocketAddrUse::UdpBind)
                && addr.ip().is_unspecified()
                && addr.port() == 0;
            let peer = matches!(
                use_,
                SocketAddrUse::TcpConnect | SocketAddrUse::UdpSend | SocketAddrUse::UdpReceive
            );
            let allowed = implicit_bind
                || (peer
                    && (net.grants.allows(addr, None) || via_names(&net, &looked_up, addr).await));
            // A datagram from elsewhere is dropped silently: whoever sends
            // it must not be able to relabel the guest's next error.
            if !allowed && !matches!(use_, SocketAddrUse::UdpReceive) {
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
async fn via_names(net: &Network, looked_up: &LookedUp, addr: SocketAddr) -> bool {
    let ip = addr.ip().to_canonical();
    for (name, _) in looked_up.granted() {
        let Some(how) = net.grants.name(&name, addr.port()) else {
            continue;
        };
        if looked_up.resolve(&name, addr.port()).await.contains(&ip)
            && net.grants.allows(addr, Some(how))
        {
            return true;
        }
    }
    false
}

/// Where wasmtime-wasi defines what is shadowed below (the version it links).
const P2_LOOKUP: &str = "wasi:sockets/ip-name-lookup@0.2.12";
const P2_TCP_CREATE: &str = "wasi:sockets/tcp-create-socket@0.2.12";
const P2_UDP_CREATE: &str = "wasi:sockets/udp-create-socket@0.2.12";

/// Shadows three of WASI's functions in `linker`:
/// - `resolve-addresses`: a name no grant covers is refused
///   (`access-denied`) before it is resolved, so a guest cannot send what
///   it likes to the host's resolver (a DNS query is a message to whoever
///   serves that name); a granted one is remembered for [`socket_check`]
///   and resolved by WASI's own;
/// - `create-tcp-socket`, `create-udp-socket`: each socket is a file
///   descriptor of the host, counted with open files against
///   `max-open-files` (`new-socket-limit` past it).
pub(crate) fn bound_sockets(
    linker: &mut wasmtime::component::Linker<crate::host::ComponentState>,
) -> anyhow::Result<()> {
    use wasmtime::component::Resource;
    use wasmtime_wasi::p2::bindings::sockets::network::{ErrorCode, IpAddressFamily};
    use wasmtime_wasi::p2::bindings::sockets::{
        ip_name_lookup, tcp_create_socket, udp_create_socket,
    };
    use wasmtime_wasi::p2::{TcpSocket, UdpSocket};
    use wasmtime_wasi::sockets::WasiSocketsView;

    type Lookup = (Result<Resource<ip_name_lookup::ResolveAddressStream>, ErrorCode>,);
    linker.allow_shadowing(true);
    linker.instance(P2_LOOKUP)?.func_wrap(
        "resolve-addresses",
        |mut store,
         (network, name): (Resource<wasmtime_wasi::p2::Network>, String)|
         -> wasmtime::Result<Lookup> {
            let state: &mut crate::host::ComponentState = store.data_mut();
            if let Err(e) = state.looked_up.check(state.net.as_deref(), &name) {
                state.refusal.record(e);
                return Ok((Err(ErrorCode::AccessDenied),));
            }
            match ip_name_lookup::Host::resolve_addresses(&mut state.sockets(), network, name) {
                Ok(stream) => Ok((Ok(stream),)),
                Err(e) => Ok((Err(e.downcast()?),)),
            }
        },
    )?;
    linker.instance(P2_TCP_CREATE)?.func_wrap(
        "create-tcp-socket",
        |mut store,
         (family,): (IpAddressFamily,)|
         -> wasmtime::Result<(Result<Resource<TcpSocket>, ErrorCode>,)> {
            let state: &mut crate::host::ComponentState = store.data_mut();
            if crate::files::at_open_limit(state) {
                return Ok((Err(ErrorCode::NewSocketLimit),));
            }
            match tcp_create_socket::Host::create_tcp_socket(&mut state.sockets(), family) {
                Ok(socket) => Ok((Ok(socket),)),
                Err(e) => Ok((Err(e.downcast()?),)),
            }
        },
    )?;
    linker.instance(P2_UDP_CREATE)?.func_wrap_async(
        "create-udp-socket",
        |mut store, (family,): (IpAddressFamily,)| {
            Box::new(async move {
                let state: &mut crate::host::ComponentState = store.data_mut();
                if crate::files::at_open_limit(state) {
                    return Ok((Err(ErrorCode::NewSocketLimit),));
                }
                let created =
                    udp_create_socket::Host::create_udp_socket(&mut state.sockets(), family).await;
                let ret: (Result<Resource<UdpSocket>, ErrorCode>,) = match created {
                    Ok(socket) => (Ok(socket),),
                    Err(e) => (Err(e.downcast()?),),
                };
                Ok(ret)
            })
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}
