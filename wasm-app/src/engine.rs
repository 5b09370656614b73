//! One engine per process, its epoch ticker, and loading modules from disk.
//!
//! Invariants:
//! - every store of this engine has an epoch deadline, so no guest code runs
//!   unbounded: a ticker thread advances the epoch every [`TICK`]; host
//!   calls are bounded by the same deadline ([`crate::deadline`]);
//! - a module is checked against its policy's SHA-256 *before* compilation,
//!   and its imports are resolved once ([`InstancePre`]), so instantiation
//!   only allocates.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use sha2::{Digest, Sha256};
use wasmtime::component::{Component, InstancePre as ComponentPre};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, InstancePre, Linker, Module,
    PoolingAllocationConfig, Store,
};

use crate::cache::{Artifact, CacheOutcome, ModuleCache};
use crate::compile;
use crate::component::{self, ComponentState};
use crate::error::{Error, Limit, Result};
use crate::guest::Guest;
use crate::host::HostState;
use crate::policy::Policy;

/// Epoch period: the granularity of timeouts.
pub const TICK: Duration = Duration::from_millis(5);

/// Pool slots per instance under `max-instances`, enough for a component
/// made by `tools/componentize` (a core module needs one of each).
const CORE_INSTANCES_PER_COMPONENT: u32 = 8;
const MEMORIES_PER_COMPONENT: u32 = 2;
const TABLES_PER_COMPONENT: u32 = 4;

/// Engine-wide settings (those that cannot change per module).
#[derive(Debug, Clone, Default)]
pub struct EngineOptions {
    /// Compiled-module cache; `None` disables it.
    pub cache_dir: Option<PathBuf>,
    /// Use the pooling allocator with this many instance slots of
    /// `pool_max_memory` bytes each (fast instantiation, bounded footprint).
    pub pool_instances: Option<u32>,
    /// Memory per pooled slot; ignored without `pool_instances`.
    pub pool_max_memory: u64,
    /// Meter fuel (needed for any policy that sets `fuel`).
    pub fuel: bool,
}

impl EngineOptions {
    /// Options fitting `policy`: fuel metering if it sets fuel, pooling if it
    /// caps instances.
    pub fn for_policy(policy: &Policy) -> Self {
        EngineOptions {
            cache_dir: ModuleCache::default_dir(),
            pool_instances: policy.limits.max_instances,
            pool_max_memory: policy.limits.max_memory,
            fuel: policy.limits.fuel.is_some(),
        }
    }
}

/// Advances the engine's epoch until dropped.
struct Ticker {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Ticker {
    fn start(engine: Engine) -> anyhow::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::Builder::new()
            .name("wasm-epoch".into())
            .spawn(move || {
                // The epoch follows the wall clock, not the number of
                // sleeps: a sleep that overruns (a busy machine) is caught
                // up at once, so deadlines in ticks stay deadlines in time.
                let start = Instant::now();
                let mut ticks: u128 = 0;
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(TICK);
                    let due = start.elapsed().as_nanos() / TICK.as_nanos();
                    while ticks < due {
                        engine.increment_epoch();
                        ticks += 1;
                    }
                }
            })
            .context("cannot start the epoch ticker thread")?;
        Ok(Ticker {
            stop,
            handle: Some(handle),
        })
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// The host runtime: an engine, its ticker and its module cache.
pub struct Runtime {
    engine: Engine,
    cache: Option<ModuleCache>,
    options: EngineOptions,
    // Shared with every loaded module: timeouts keep working as long as any
    // module of this engine is alive, even after the `Runtime` is dropped.
    ticker: Arc<Ticker>,
}

impl Runtime {
    /// Builds the engine for `options`.
    pub fn new(options: EngineOptions) -> anyhow::Result<Self> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        config.consume_fuel(options.fuel);
        if let Some(n) = options.pool_instances {
            // A component instance holds several core instances (its
            // program, the WASI adapter, shims), memories and tables: size
            // the pool for components; `max-instances` itself is enforced
            // per module by `LoadedModule::instantiate`.
            let slots = |per: u32| n.saturating_mul(per);
            let mut pool = PoolingAllocationConfig::default();
            pool.total_component_instances(n)
                .total_core_instances(slots(CORE_INSTANCES_PER_COMPONENT))
                .total_memories(slots(MEMORIES_PER_COMPONENT))
                .total_tables(slots(TABLES_PER_COMPONENT))
                .max_memory_size(options.pool_max_memory as usize);
            config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        }
        let engine = Engine::new(&config)
            .map_err(anyhow::Error::from)
            .context("cannot create the wasm engine")?;
        // A cache that cannot be created only costs speed: run without it.
        let cache = options
            .cache_dir
            .as_ref()
            .and_then(|dir| ModuleCache::open_or_warn(dir));
        Ok(Runtime {
            ticker: Arc::new(Ticker::start(engine.clone())?),
            engine,
            cache,
            options,
        })
    }

    /// The underlying engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The options the engine was built with.
    pub fn options(&self) -> &EngineOptions {
        &self.options
    }

    /// Reads, verifies and compiles (or loads from cache) a `.wasm` or `.wat`
    /// file, and resolves its imports against what `policy` grants.
    pub fn load(&self, path: &Path, policy: Policy) -> Result<LoadedModule> {
        let bytes = compile::read_module(path, &policy.limits)?;
        self.load_bytes(&path.display().to_string(), &bytes, policy)
    }

    /// As [`Runtime::load`], from bytes; `name` is used in messages.
    pub fn load_bytes(&self, name: &str, bytes: &[u8], policy: Policy) -> Result<LoadedModule> {
        let load_err = |reason: String| Error::Load {
            path: name.to_string(),
            reason,
        };
        if bytes.is_empty() {
            return Err(load_err("the file is empty".into()));
        }
        policy
            .validate()
            .map_err(|e| Error::PolicyDenied(format!("{e:#}")))?;
        crate::cache::check_grants(&policy, self.cache.as_ref())?;
        crate::grants::check_nesting(&policy)?;
        compile::check_size(bytes, &policy.limits)?;
        if policy.limits.fuel.is_some() && !self.options.fuel {
            return Err(Error::PolicyDenied(
                "the policy sets fuel but the engine was built without fuel metering".into(),
            ));
        }
        let sha256: [u8; 32] = Sha256::digest(bytes).into();
        let hex_sha = hex::encode(sha256);
        if let Some(want) = &policy.sha256 {
            if *want != hex_sha {
                return Err(Error::PolicyDenied(format!(
                    "module {name} has SHA-256 {hex_sha}, but its policy requires {want}"
                )));
            }
        }
        let timeout = policy.limits.compile_timeout;
        if component::is_component(bytes) {
            let (c, cache) = self
                .compile_cached(&sha256, bytes, timeout, |e, b| Component::new(e, b))
                .map_err(|e| compile::into_error(e, |e| load_err(format!("{e:#}"))))?;
            let pre = component::prepare(&self.engine, &c)?;
            return Ok(self.loaded(name, hex_sha, cache, Pre::Component(pre), policy));
        }
        let (module, cache) = self
            .compile_cached(&sha256, bytes, timeout, |e, b| Module::new(e, b))
            .map_err(|e| compile::into_error(e, |e| load_err(format!("{e:#}"))))?;
        let pre = prepare_core(&self.engine, &module)?;
        Ok(self.loaded(name, hex_sha, cache, Pre::Core(pre), policy))
    }

    /// `new(engine, bytes)` under the compile timeout, through the cache if
    /// there is one: a core module or a component, each under its kind.
    fn compile_cached<T: Artifact + Send + 'static>(
        &self,
        sha256: &[u8; 32],
        bytes: &[u8],
        timeout: Duration,
        new: fn(&Engine, &[u8]) -> wasmtime::Result<T>,
    ) -> anyhow::Result<(T, CacheOutcome)> {
        let compile = || {
            let (engine, owned) = (self.engine.clone(), bytes.to_vec());
            compile::bounded(timeout, move || {
                new(&engine, &owned).map_err(anyhow::Error::from)
            })
        };
        match &self.cache {
            Some(c) => c.load_or_compile(&self.engine, sha256, compile),
            None => compile().map(|m| (m, CacheOutcome::Compiled)),
        }
    }

    fn loaded(
        &self,
        name: &str,
        sha256: String,
        cache: CacheOutcome,
        pre: Pre,
        policy: Policy,
    ) -> LoadedModule {
        LoadedModule {
            inner: Arc::new(Inner {
                name: name.to_string(),
                sha256,
                cache,
                pre,
                policy,
                engine: self.engine.clone(),
                live: AtomicU32::new(0),
                _ticker: self.ticker.clone(),
            }),
        }
    }
}

/// A core module or a component, with its imports resolved.
enum Pre {
    Core(InstancePre<HostState>),
    Component(ComponentPre<ComponentState>),
}

struct Inner {
    name: String,
    sha256: String,
    cache: CacheOutcome,
    pre: Pre,
    policy: Policy,
    engine: Engine,
    live: AtomicU32,
    _ticker: Arc<Ticker>,
}

/// A compiled module with resolved imports and its policy; cheap to clone
/// and to share between threads, each of which makes its own instances.
#[derive(Clone)]
pub struct LoadedModule {
    inner: Arc<Inner>,
}

/// Counts a live instance against `max-instances`; released on drop.
pub(crate) struct InstanceSlot(Arc<Inner>);

impl Drop for InstanceSlot {
    fn drop(&mut self) {
        self.0.live.fetch_sub(1, Ordering::AcqRel);
    }
}

impl LoadedModule {
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

    /// The compiled core module; `None` for a component.
    pub fn module(&self) -> Option<&Module> {
        match &self.inner.pre {
            Pre::Core(pre) => Some(pre.module()),
            Pre::Component(_) => None,
        }
    }

    /// The compiled component; `None` for a core module.
    pub fn component(&self) -> Option<&Component> {
        match &self.inner.pre {
            Pre::Core(_) => None,
            Pre::Component(pre) => Some(pre.component()),
        }
    }

    /// Whether this is a component (WIT worlds) rather than a core module.
    pub fn is_component(&self) -> bool {
        matches!(self.inner.pre, Pre::Component(_))
    }

    /// A fresh instance: new store, new WASI context, limits armed, reactor
    /// initialised (`_initialize`) if the module has one.
    pub fn instantiate(&self) -> Result<Guest> {
        self.instantiate_with(None)
    }

    /// As [`LoadedModule::instantiate`], but resolving the imports again
    /// instead of using the [`InstancePre`] made at load time: what an
    /// embedder without `InstancePre` pays. For benchmarks; components use
    /// their prepared instance either way.
    pub fn instantiate_relinked(&self) -> Result<Guest> {
        match &self.inner.pre {
            Pre::Core(pre) => {
                let relinked = prepare_core(&self.inner.engine, pre.module())?;
                self.instantiate_with(Some(&relinked))
            }
            Pre::Component(_) => self.instantiate_with(None),
        }
    }

    fn instantiate_with(&self, relinked: Option<&InstancePre<HostState>>) -> Result<Guest> {
        let limits = &self.inner.policy.limits;
        if let Some(max) = limits.max_instances {
            let prev = self.inner.live.fetch_add(1, Ordering::AcqRel);
            if prev >= max {
                self.inner.live.fetch_sub(1, Ordering::AcqRel);
                return Err(Error::LimitExceeded(Limit::Instances(max)));
            }
        } else {
            self.inner.live.fetch_add(1, Ordering::AcqRel);
        }
        let slot = InstanceSlot(self.inner.clone());
        match &self.inner.pre {
            Pre::Core(pre) => {
                let pre = relinked.unwrap_or(pre);
                let state = HostState::new(&self.inner.policy).map_err(Error::Other)?;
                let mut store = Store::new(&self.inner.engine, state);
                store.limiter(|s| &mut s.limiter);
                yield_at_epoch_deadline(&mut store);
                Guest::new(store, pre, limits.clone(), slot)
            }
            Pre::Component(pre) => {
                let state = ComponentState::new(&self.inner.policy).map_err(Error::Other)?;
                let mut store = Store::new(&self.inner.engine, state);
                store.limiter(|s| &mut s.limiter);
                yield_at_epoch_deadline(&mut store);
                Guest::new_component(store, pre, limits.clone(), slot)
            }
        }
    }
}

/// Resolves a core module's imports against WASI preview 1, once.
fn prepare_core(engine: &Engine, module: &Module) -> Result<InstancePre<HostState>> {
    let mut linker: Linker<HostState> = Linker::new(engine);
    // Async: every guest call is a future under its deadline (`deadline.rs`),
    // so WASI's host calls can be cut off too.
    wasmtime_wasi::p1::add_to_linker_async(&mut linker, |s: &mut HostState| &mut s.wasi)
        .map_err(anyhow::Error::from)
        .context("cannot add WASI to the linker")?;
    crate::files::bound_core(&mut linker)?;
    linker
        .instantiate_pre(module)
        .map_err(|e| Error::Instantiate(format!("{:#}", anyhow::Error::from(e))))
}

/// At its epoch deadline a store yields to the executor instead of
/// trapping: the operation's wall-clock deadline (`deadline.rs`, tokio's
/// `timeout_at`) then decides, so a timeout never fires early when the
/// ticker catches up after oversleeping, and late by at most one tick. The
/// guest resumes if time is left, and yields again at every later tick.
fn yield_at_epoch_deadline<T: 'static>(store: &mut Store<T>) {
    store.epoch_deadline_callback(|_| Ok(wasmtime::UpdateDeadline::Yield(1)));
}
