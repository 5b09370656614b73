//! Per-store host state: the WASI context a policy grants, and the limiter
//! that enforces the policy's memory and table caps.

use std::fmt;

use anyhow::Context;
use wasmtime::ResourceLimiter;
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use crate::error::Limit;
use crate::policy::Policy;

/// What every [`wasmtime::Store`] of this crate carries.
pub struct HostState {
    pub(crate) wasi: WasiP1Ctx,
    pub(crate) limiter: Limiter,
    /// `max-open-files`, enforced by [`crate::files`].
    pub(crate) max_open_files: usize,
}

impl HostState {
    /// Builds the state for one instance: only what `policy` grants.
    pub fn new(policy: &Policy) -> anyhow::Result<Self> {
        Ok(HostState {
            wasi: wasi_builder(policy)?.build_p1(),
            limiter: Limiter::new(policy),
            max_open_files: policy.limits.max_open_files as usize,
        })
    }
}

/// A WASI context builder with exactly the policy's grants: no args, no
/// stdio (unless inherited), only the listed env vars and directories, and
/// no sockets or name lookups.
pub(crate) fn wasi_builder(policy: &Policy) -> anyhow::Result<WasiCtxBuilder> {
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

/// Raised (as the error of the growing instruction) when a guest asks for
/// more than its policy allows; the call then fails with this exact limit.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LimitHit(pub Limit);

impl fmt::Display for LimitHit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "module exceeded its {}", self.0)
    }
}

impl std::error::Error for LimitHit {}

/// Enforces memory and table caps. Unlike `StoreLimits` it fails the growth
/// with a [`LimitHit`] error, so the host can name the limit instead of the
/// guest seeing `-1` and dying later with an unrelated trap.
pub(crate) struct Limiter {
    max_memory: u64,
    max_table_elements: u64,
    /// The largest linear memory granted so far, in bytes: a component's
    /// memories are not exported, so this is how the host sees their size.
    largest_memory: usize,
}

impl Limiter {
    pub(crate) fn new(policy: &Policy) -> Self {
        Limiter {
            max_memory: policy.limits.max_memory,
            max_table_elements: policy.limits.max_table_elements,
            largest_memory: 0,
        }
    }
}

impl Limiter {
    /// The size of the largest linear memory of the store, in bytes.
    pub(crate) fn largest_memory(&self) -> usize {
        self.largest_memory
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired as u64 > self.max_memory {
            return Err(wasmtime::Error::new(LimitHit(Limit::Memory(
                self.max_memory,
            ))));
        }
        self.largest_memory = self.largest_memory.max(desired);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired as u64 > self.max_table_elements {
            return Err(wasmtime::Error::new(LimitHit(Limit::TableElements(
                self.max_table_elements,
            ))));
        }
        Ok(true)
    }

    // A core module is one instance with at most a few memories and tables;
    // a component holds a handful of core instances.
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
