//! Per-store host state, for core modules ([`HostState`]) and components
//! ([`ComponentState`]): the WASI context a policy grants, the limiter that
//! enforces its memory and table caps, and the guest's stderr tail.

use anyhow::Context;
use wasmtime::component::ResourceTable;
use wasmtime::ResourceLimiter;
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use std::sync::Arc;

use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::error::{Limit, LimitHit};
use crate::hostfn::HostCalls;
use crate::hostfn::Refusal;
use crate::net::http::HttpHooks;
use crate::net::sockets::{socket_check, LookedUp};
use crate::net::Network;
use crate::policy::Policy;
use crate::stderr_tail::StderrTail;

/// What the store of a core module carries.
pub(crate) struct HostState {
    pub(crate) wasi: WasiP1Ctx,
    pub(crate) limiter: Limiter,
    /// `max-open-files`, enforced by [`crate::files`].
    pub(crate) max_open_files: usize,
    /// The end of what the guest wrote to stderr ([`crate::stderr_tail`]).
    pub(crate) stderr: StderrTail,
    /// The host functions' pending result, refusals and log bucket.
    pub(crate) calls: HostCalls,
}

impl HostState {
    /// Builds the state for one instance of module `name`: only what
    /// `policy` grants.
    pub(crate) fn new(policy: &Policy, name: &str) -> anyhow::Result<Self> {
        let stderr = StderrTail::default();
        Ok(HostState {
            wasi: wasi_builder(policy, &stderr)?.build_p1(),
            limiter: Limiter::new(policy),
            max_open_files: policy.limits.max_open_files as usize,
            stderr,
            calls: HostCalls::new(name),
        })
    }
}

/// Resources (handles: files, sockets, streams, pollables, HTTP fields, ...)
/// a component instance may hold at once; wasmtime's own cap is a million.
pub(crate) const MAX_RESOURCES: usize = 10_000;

/// Per-store state of a component instance: its WASI 0.2 context and
/// resource table, its network (wasi:http, wasi:sockets) under the
/// policy's grants, and the policy's limiter.
pub(crate) struct ComponentState {
    ctx: WasiCtx,
    table: ResourceTable,
    http: WasiHttpCtx,
    hooks: HttpHooks,
    /// The network the policy grants, if any.
    pub(crate) net: Option<Arc<Network>>,
    /// Granted names the guest looked up ([`crate::net::sockets`]).
    pub(crate) looked_up: LookedUp,
    /// A refusal of the grants in the current operation.
    pub(crate) refusal: Refusal,
    pub(crate) limiter: Limiter,
    /// `max-open-files`, enforced by [`crate::files`].
    pub(crate) max_open_files: usize,
    /// The end of what the guest wrote to stderr ([`crate::stderr_tail`]).
    pub(crate) stderr: StderrTail,
}

impl ComponentState {
    pub(crate) fn new(policy: &Policy) -> anyhow::Result<Self> {
        let stderr = StderrTail::default();
        let net = Network::of(policy)?.map(Arc::new);
        let (looked_up, refusal) = (LookedUp::default(), Refusal::default());
        let mut wasi = wasi_builder(policy, &stderr)?;
        // With a network grant WASI lets every use through to the checks,
        // which decide (and record what they refuse); without one a
        // component gets no socket at all (not even one it cannot use: each
        // is a file descriptor of the host).
        let granted = net.is_some();
        wasi.allow_tcp(granted)
            .allow_udp(granted)
            .allow_ip_name_lookup(granted)
            .socket_addr_check(socket_check(
                net.clone(),
                looked_up.clone(),
                refusal.clone(),
            ));
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_RESOURCES);
        Ok(ComponentState {
            ctx: wasi.build(),
            table,
            http: WasiHttpCtx::new(),
            hooks: HttpHooks::new(net.clone(), refusal.clone()),
            net,
            looked_up,
            refusal,
            limiter: Limiter::new(policy),
            max_open_files: policy.limits.max_open_files as usize,
            stderr,
        })
    }
}

impl ComponentState {
    /// Stops the HTTP requests the operation that ends now still runs: no
    /// connection of a guest stays open while it is not running.
    pub(crate) fn end_operation(&self) {
        self.hooks.end_operation();
    }
}

impl WasiHttpView for ComponentState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

impl WasiView for ComponentState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.ctx,
            table: &mut self.table,
        }
    }
}

/// A WASI context builder with exactly the policy's grants: no args, no
/// stdio (unless inherited) but a stderr kept in `stderr`'s bounded tail,
/// only the listed env vars and directories, and no sockets or name lookups.
pub(crate) fn wasi_builder(policy: &Policy, stderr: &StderrTail) -> anyhow::Result<WasiCtxBuilder> {
    let mut b = WasiCtxBuilder::new();
    b.allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        // File I/O goes to tokio's blocking pool, never the calling thread:
        // a call's future then stays cancellable at its deadline
        // (`deadline.rs`), even in an `open(2)` that never returns.
        .allow_blocking_current_thread(false);
    if policy.inherit_stdio {
        b.inherit_stdio();
    } else {
        b.stderr(stderr.clone());
    }
    for (k, v) in &policy.env {
        b.env(k, v);
    }
    for d in &policy.dirs {
        let perms = if d.writable {
            FsPerms::ReadWrite
        } else {
            FsPerms::ReadOnly
        };
        b.preopened_dir(&d.host, d.guest_path(), perms)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("cannot grant directory {}", d.host.display()))?;
    }
    Ok(b)
}

/// Enforces memory and table caps for a whole store: the sum of every
/// linear memory (and, separately, of every table) of the instance, so nine
/// memories of 15 MiB do not pass a 16 MiB limit, and a component's core
/// instances share one budget. Unlike `StoreLimits` it fails the growth with
/// a [`LimitHit`] error, so the host can name the limit instead of the guest
/// seeing `-1` and dying later with an unrelated trap.
///
/// wasmtime asks the limiter for every memory and table a store creates
/// (growing from 0 to the initial size) and for every growth after, so the
/// running totals below cover everything the store holds. A growth the
/// limiter allowed but the OS then refused stays counted: the budget errs on
/// the side of the host.
pub(crate) struct Limiter {
    max_memory: u64,
    max_table_elements: u64,
    /// Bytes of linear memory granted so far, over all memories.
    memory_total: u64,
    /// Elements granted so far, over all tables.
    table_total: u64,
    /// The largest linear memory granted so far, in bytes: a component's
    /// memories are not exported, so this is how the host sees their size.
    largest_memory: usize,
}

impl Limiter {
    pub(crate) fn new(policy: &Policy) -> Self {
        Limiter {
            max_memory: policy.limits.max_memory,
            max_table_elements: policy.limits.max_table_elements,
            memory_total: 0,
            table_total: 0,
            largest_memory: 0,
        }
    }

    /// The size of the largest linear memory of the store, in bytes.
    pub(crate) fn largest_memory(&self) -> usize {
        self.largest_memory
    }
}

/// `total` with one item grown from `current` to `desired`, or `None` if
/// that passes `max` (overflow included).
fn grown_total(total: u64, current: usize, desired: usize, max: u64) -> Option<u64> {
    let extra = (desired as u64).saturating_sub(current as u64);
    total.checked_add(extra).filter(|t| *t <= max)
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let Some(total) = grown_total(self.memory_total, current, desired, self.max_memory) else {
            return Err(wasmtime::Error::new(LimitHit(Limit::Memory(
                self.max_memory,
            ))));
        };
        self.memory_total = total;
        self.largest_memory = self.largest_memory.max(desired);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let Some(total) = grown_total(self.table_total, current, desired, self.max_table_elements)
        else {
            return Err(wasmtime::Error::new(LimitHit(Limit::TableElements(
                self.max_table_elements,
            ))));
        };
        self.table_total = total;
        Ok(true)
    }

    // A core module is one instance with at most a few memories and tables;
    // a component holds a handful of core instances. The byte and element
    // budgets above bound what they hold; these bound the bookkeeping.
    fn instances(&self) -> usize {
        64
    }

    fn memories(&self) -> usize {
        64
    }

    fn tables(&self) -> usize {
        64
    }
}

#[cfg(test)]
mod tests {
    use super::grown_total;

    #[test]
    fn totals_add_growth_and_refuse_past_the_limit() {
        assert_eq!(grown_total(0, 0, 10, 16), Some(10));
        assert_eq!(grown_total(10, 0, 6, 16), Some(16));
        assert_eq!(grown_total(10, 0, 7, 16), None);
        // Growing an existing item counts only the difference.
        assert_eq!(grown_total(10, 10, 16, 16), Some(16));
        assert_eq!(grown_total(u64::MAX - 1, 0, usize::MAX, u64::MAX), None);
    }
}
