//! Instances of one module for the threads that call it: one per caller
//! at a time, kept between calls (the Python `Plugin` and `wasm-app serve`
//! both hand out instances this way).
//!
//! Invariants: the pool keeps only live instances (a call that failed and
//! dropped its instance, or never made one, gives nothing back), and at
//! most `keep` of them, so a burst of threads does not leave its peak of
//! instances (each up to `max-memory`) held for the plugin's lifetime.
//! Idle instances count toward the policy's `max-instances`: a call refused
//! by that limit frees the idle ones and tries once more.

use std::sync::{Mutex, PoisonError};

use crate::error::{Error, Limit};
use crate::module::Module;
use crate::plugin::Plugin;

/// Instances of one module, shared by threads (`Pool` is `Send + Sync`).
///
/// ```
/// use wasm_app::{Plugin, Policy, Pool, Runtime, EngineOptions};
///
/// let rt = Runtime::new(EngineOptions::default())?;
/// let wat = r#"(module (func (export "answer") (result i32) (i32.const 42)))"#;
/// let pool = Pool::new(rt.load_bytes("answer.wat", wat.as_bytes(), Policy::default())?);
/// let answers: Vec<i32> = std::thread::scope(|s| {
///     let calls: Vec<_> = (0..3).map(|_| s.spawn(|| pool.run(Plugin::answer))).collect();
///     calls.into_iter().map(|c| c.join().unwrap()).collect::<Result<_, _>>()
/// })?;
/// assert_eq!(answers, [42, 42, 42]);
/// # Ok::<(), wasm_app::Error>(())
/// ```
pub struct Pool {
    module: Module,
    idle: Mutex<Vec<Plugin>>,
    keep: usize,
}

impl Pool {
    /// An empty pool; keeps at most one idle instance per core.
    pub fn new(module: Module) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        Pool {
            module,
            idle: Mutex::new(Vec::new()),
            keep: cores.max(2),
        }
    }

    /// Runs `f` on an instance no other thread is using (made if none is
    /// idle). `f` may run twice, only if its first run was refused by
    /// `max-instances` before any guest code ran.
    pub fn run<R>(&self, mut f: impl FnMut(&mut Plugin) -> crate::Result<R>) -> crate::Result<R> {
        let taken = self.lock().pop();
        let mut plugin = taken.unwrap_or_else(|| Plugin::new(self.module.clone()));
        let mut result = f(&mut plugin);
        // The limit is checked when an instance is made, before any guest
        // code runs: trying again runs nothing twice.
        if matches!(result, Err(Error::LimitExceeded(Limit::Instances(_)))) && self.clear() > 0 {
            result = f(&mut plugin);
        }
        if plugin.has_instance() {
            let mut idle = self.lock();
            if idle.len() < self.keep {
                idle.push(plugin);
            }
        }
        result
    }

    /// Drops the idle instances (freeing their `max-instances` slots);
    /// returns how many there were.
    pub fn clear(&self) -> usize {
        let dropped = std::mem::take(&mut *self.lock());
        dropped.len()
    }

    /// The module the instances are of.
    pub fn module(&self) -> &Module {
        &self.module
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Plugin>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
