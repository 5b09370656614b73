//! The runtime: one engine per configuration, its epoch ticker, its cache
//! of compiled modules, and the loading of modules.
//!
//! Invariants:
//! - every store of the engine has an epoch deadline, so no guest code runs
//!   unbounded ([`crate::epoch`], [`crate::deadline`]);
//! - a module is checked against its policy (SHA-256, size, grants) *before*
//!   compilation, and compilation is bounded in time ([`crate::compile`]).

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::cache::{Artifact, CacheOutcome, ModuleCache};
use crate::compile;
use crate::epoch::Ticker;
use crate::error::{Error, Result};
use crate::hostfn::HostFunctions;
use crate::instance::component;
use crate::module::{self, Module, Pre};
use crate::policy::Policy;
use crate::text::guest_text;

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

/// The host runtime: an engine, its ticker and its module cache. One per
/// process is enough; [`Plugin::from_file`](crate::Plugin::from_file) uses
/// a shared one.
///
/// ```
/// use wasm_app::{CacheOutcome, EngineOptions, Plugin, Policy, Runtime};
///
/// let rt = Runtime::new(EngineOptions::default())?; // no cache
/// let wat = r#"(module (func (export "answer") (result i32) (i32.const 42)))"#;
/// let module = rt.load_bytes("answer.wat", wat.as_bytes(), Policy::default())?;
/// assert_eq!(module.cache_outcome(), CacheOutcome::Compiled);
///
/// // A module is shared by threads, each with its own instance.
/// let answers: Vec<i32> = std::thread::scope(|s| {
///     let handles: Vec<_> = (0..2)
///         .map(|_| {
///             let m = module.clone();
///             s.spawn(move || Plugin::new(m).answer())
///         })
///         .collect();
///     handles.into_iter().map(|h| h.join().unwrap()).collect::<Result<_, _>>()
/// })?;
/// assert_eq!(answers, [42, 42]);
/// # Ok::<(), wasm_app::Error>(())
/// ```
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
    pub fn new(options: EngineOptions) -> Result<Self> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        config.consume_fuel(options.fuel);
        if let Some(n) = options.pool_instances {
            // A component instance holds several core instances (its
            // program, the WASI adapter, shims), memories and tables: size
            // the pool for components; `max-instances` itself is enforced
            // per module when an instance is made.
            let slots = |per: u32| n.saturating_mul(per);
            let mut pool = PoolingAllocationConfig::default();
            pool.total_component_instances(n)
                .total_core_instances(slots(CORE_INSTANCES_PER_COMPONENT))
                .total_memories(slots(MEMORIES_PER_COMPONENT))
                .total_tables(slots(TABLES_PER_COMPONENT))
                // One async stack per instance that may run at once; the
                // default (1000, each with a guard page) costs ~2000 memory
                // mappings per engine, and a process runs out at ~32 engines.
                .total_stacks(n)
                .max_memory_size(options.pool_max_memory as usize);
            config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        }
        let engine = Engine::new(&config).map_err(|e| {
            Error::Other(anyhow::Error::from(e).context("cannot create the wasm engine"))
        })?;
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

    /// A process-wide runtime fit for `policy` (fuel metering if it sets
    /// fuel), with the default cache: what [`Plugin::from_file`](crate::Plugin::from_file)
    /// uses. Made on first use and never dropped.
    pub(crate) fn shared(policy: &Policy) -> Result<&'static Runtime> {
        static PLAIN: OnceLock<std::result::Result<Runtime, String>> = OnceLock::new();
        static FUEL: OnceLock<std::result::Result<Runtime, String>> = OnceLock::new();
        let fuel = policy.limits.fuel.is_some();
        let cell = if fuel { &FUEL } else { &PLAIN };
        cell.get_or_init(|| {
            Runtime::new(EngineOptions {
                cache_dir: ModuleCache::default_dir(),
                fuel,
                ..EngineOptions::default()
            })
            .map_err(|e| format!("{e:#}"))
        })
        .as_ref()
        .map_err(|e| Error::Other(anyhow::anyhow!("{e}")))
    }

    /// The underlying engine.
    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The options the engine was built with.
    pub fn options(&self) -> &EngineOptions {
        &self.options
    }

    /// Reads, verifies and compiles (or loads from cache) a `.wasm` or `.wat`
    /// file, and resolves its imports against what `policy` grants.
    pub fn load(&self, path: impl AsRef<Path>, policy: Policy) -> Result<Module> {
        self.load_with(path, policy, &HostFunctions::new())
    }

    /// As [`Runtime::load`], offering the embedder's `functions` to the
    /// module (each usable only where `policy` grants it).
    pub fn load_with(
        &self,
        path: impl AsRef<Path>,
        policy: Policy,
        functions: &HostFunctions,
    ) -> Result<Module> {
        let path = path.as_ref();
        let bytes = compile::read_module(path, &policy.limits)?;
        self.load_bytes_with(&path.display().to_string(), &bytes, policy, functions)
    }

    /// As [`Runtime::load`], from bytes; `name` is used in messages.
    pub fn load_bytes(&self, name: &str, bytes: &[u8], policy: Policy) -> Result<Module> {
        self.load_bytes_with(name, bytes, policy, &HostFunctions::new())
    }

    /// As [`Runtime::load_with`], from bytes.
    pub fn load_bytes_with(
        &self,
        name: &str,
        bytes: &[u8],
        policy: Policy,
        functions: &HostFunctions,
    ) -> Result<Module> {
        let load_err = |reason: String| Error::Load {
            path: name.to_string(),
            reason,
        };
        if bytes.is_empty() {
            return Err(load_err("the file is empty".into()));
        }
        policy.validate()?;
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
        // Validation errors may quote the module's names: capped, escaped.
        let compile_err =
            |e| compile::into_error(e, |e| load_err(guest_text(format!("{e:#}").as_bytes())));
        if component::is_component(bytes) {
            let (c, cache) = self
                .compile_cached(&sha256, bytes, timeout, |e, b| Component::new(e, b))
                .map_err(compile_err)?;
            let pre = component::prepare(&self.engine, &c)?;
            let pre = Pre::Component(pre);
            return Ok(self.loaded(name, hex_sha, cache, pre, policy, functions));
        }
        let (module, cache) = self
            .compile_cached(&sha256, bytes, timeout, |e, b| wasmtime::Module::new(e, b))
            .map_err(compile_err)?;
        let pre = module::prepare_core(&self.engine, &module, &policy, functions)?;
        Ok(self.loaded(name, hex_sha, cache, Pre::Core(pre), policy, functions))
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
        functions: &HostFunctions,
    ) -> Module {
        Module::new(
            name,
            sha256,
            cache,
            pre,
            policy,
            functions.clone(),
            self.engine.clone(),
            self.ticker.clone(),
        )
    }
}
