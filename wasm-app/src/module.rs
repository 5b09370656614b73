//! A compiled module with its imports resolved, and the making of
//! instances.
//!
//! Invariants:
//! - a module's imports are resolved once, at load time ([`InstancePre`]),
//!   so instantiation only allocates;
//! - every store gets the policy's limiter, its fuel and its epoch behaviour
//!   ([`deadline::prepare_store`]) before any guest code runs;
//! - `max-instances` counts live instances of this module: a slot is taken
//!   before the store is made and given back when the instance drops.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use anyhow::Context;
use wasmtime::component::InstancePre as ComponentPre;
use wasmtime::{Engine, InstancePre, Linker, Store};

use crate::cache::CacheOutcome;
use crate::deadline;
use crate::epoch::Ticker;
use crate::error::{Error, Limit, Result};
use crate::host::ComponentState;
use crate::host::HostState;
use crate::hostfn::HostFunctions;
use crate::instance::{Instance, Slot};
use crate::policy::Policy;

/// A core module or a component, with its imports resolved.
pub(crate) enum Pre {
    Core(InstancePre<HostState>),
    Component(ComponentPre<ComponentState>),
}

struct Inner {
    name: String,
    sha256: String,
    cache: CacheOutcome,
    pre: Pre,
    policy: Policy,
    /// What the embedder offered at load time (relinking needs it again).
    functions: HostFunctions,
    engine: Engine,
    live: Arc<AtomicU32>,
    // Timeouts keep working as long as any module or instance of the
    // engine is alive, even after its `Runtime` is dropped.
    ticker: Arc<Ticker>,
}

/// A compiled module (core module or component) with its policy, ready to
/// be instantiated: cheap to clone and to share between threads, each of
/// which makes its own instances (see [`Plugin`](crate::Plugin)).
///
/// Made by [`Runtime::load`](crate::Runtime::load).
#[derive(Clone)]
pub struct Module {
    inner: Arc<Inner>,
}

impl Module {
    // Only `Runtime` makes modules, with everything it resolved at load.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        name: &str,
        sha256: String,
        cache: CacheOutcome,
        pre: Pre,
        policy: Policy,
        functions: HostFunctions,
        engine: Engine,
        ticker: Arc<Ticker>,
    ) -> Self {
        Module {
            inner: Arc::new(Inner {
                name: name.to_string(),
                sha256,
                cache,
                pre,
                policy,
                functions,
                engine,
                live: Arc::new(AtomicU32::new(0)),
                ticker,
            }),
        }
    }

    /// The name given at load time (the path, usually).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// SHA-256 of the module bytes, lowercase hex.
    pub fn sha256(&self) -> &str {
        &self.inner.sha256
    }

    /// Whether the compiled code came from the cache.
    pub fn cache_outcome(&self) -> CacheOutcome {
        self.inner.cache
    }

    /// The policy the module runs under.
    pub fn policy(&self) -> &Policy {
        &self.inner.policy
    }

    /// Whether this is a component (WIT worlds) rather than a core module.
    pub fn is_component(&self) -> bool {
        matches!(self.inner.pre, Pre::Component(_))
    }

    pub(crate) fn pre(&self) -> &Pre {
        &self.inner.pre
    }

    /// A fresh instance: new store, new WASI context, limits armed, reactor
    /// initialised (`_initialize`) if the module has one.
    pub(crate) fn instantiate(&self) -> Result<Instance> {
        self.instantiate_with(None)
    }

    /// As [`Module::instantiate`], but resolving the imports again instead
    /// of using the [`InstancePre`] made at load time: what an embedder
    /// without `InstancePre` pays. For benchmarks; components use their
    /// prepared instance either way.
    #[doc(hidden)]
    pub fn instantiate_relinked(&self) -> Result<()> {
        let relinked = match &self.inner.pre {
            Pre::Core(pre) => Some(prepare_core(
                &self.inner.engine,
                pre.module(),
                &self.inner.policy,
                &self.inner.functions,
            )?),
            Pre::Component(_) => None,
        };
        self.instantiate_with(relinked.as_ref()).map(drop)
    }

    fn instantiate_with(&self, relinked: Option<&InstancePre<HostState>>) -> Result<Instance> {
        let policy = &self.inner.policy;
        let slot = self.take_slot()?;
        match &self.inner.pre {
            Pre::Core(pre) => {
                let state = HostState::new(policy, &self.inner.name).map_err(Error::Other)?;
                let mut store = Store::new(&self.inner.engine, state);
                store.limiter(|s| &mut s.limiter);
                deadline::prepare_store(&mut store, &policy.limits)?;
                Instance::new_core(store, relinked.unwrap_or(pre), policy.limits.clone(), slot)
            }
            Pre::Component(pre) => {
                let state = ComponentState::new(policy).map_err(Error::Other)?;
                let mut store = Store::new(&self.inner.engine, state);
                store.limiter(|s| &mut s.limiter);
                deadline::prepare_store(&mut store, &policy.limits)?;
                Instance::new_component(store, pre, policy.limits.clone(), slot)
            }
        }
    }

    /// Counts one more live instance, or refuses past `max-instances`.
    fn take_slot(&self) -> Result<Slot> {
        let live = &self.inner.live;
        let prev = live.fetch_add(1, Ordering::AcqRel);
        // Made before the check, so an early return gives the count back.
        let slot = Slot::new(live.clone(), self.inner.ticker.clone());
        match self.inner.policy.limits.max_instances {
            Some(max) if prev >= max => Err(Error::LimitExceeded(Limit::Instances(max))),
            _ => Ok(slot),
        }
    }
}

/// Resolves a core module's imports against WASI preview 1 and the host
/// functions `policy` grants of those offered, once.
pub(crate) fn prepare_core(
    engine: &Engine,
    module: &wasmtime::Module,
    policy: &Policy,
    functions: &HostFunctions,
) -> Result<InstancePre<HostState>> {
    let mut linker: Linker<HostState> = Linker::new(engine);
    // Async: every guest call is a future under its deadline (`deadline.rs`),
    // so WASI's host calls can be cut off too.
    wasmtime_wasi::p1::add_to_linker_async(&mut linker, |s: &mut HostState| &mut s.wasi)
        .map_err(anyhow::Error::from)
        .context("cannot add WASI to the linker")?;
    crate::files::bound_core(&mut linker)?;
    crate::hostfn::link_core(&mut linker, module, policy, functions)?;
    linker
        .instantiate_pre(module)
        .map_err(|e| Error::Instantiate(crate::error::described(e)))
}
