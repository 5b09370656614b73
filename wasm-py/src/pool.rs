//! The instances of one Python `Plugin`: one per calling thread, kept
//! between calls.
//!
//! Invariants: the pool keeps only live instances (a call that failed and
//! dropped its instance, or never made one, gives nothing back), and at
//! most `keep` of them, so a burst of threads does not leave its peak of
//! instances (each up to `max-memory`) held for the plugin's lifetime.
//! Idle instances count toward the policy's `max-instances`: a call refused
//! by that limit frees the idle ones and tries once more.

use std::sync::{Mutex, PoisonError};

use wasm_app::{Error, Limit, Module};

pub(crate) struct Pool {
    module: Module,
    idle: Mutex<Vec<wasm_app::Plugin>>,
    keep: usize,
}

impl Pool {
    pub(crate) fn new(module: Module) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        Pool {
            module,
            idle: Mutex::new(Vec::new()),
            keep: cores.max(2),
        }
    }

    /// Runs `f` on an instance no other thread is using. Call it without
    /// the GIL: `f` runs guest code.
    pub(crate) fn run<R>(
        &self,
        mut f: impl FnMut(&mut wasm_app::Plugin) -> wasm_app::Result<R>,
    ) -> wasm_app::Result<R> {
        let taken = self.lock().pop();
        let mut plugin = taken.unwrap_or_else(|| wasm_app::Plugin::new(self.module.clone()));
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
    pub(crate) fn clear(&self) -> usize {
        let dropped = std::mem::take(&mut *self.lock());
        dropped.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<wasm_app::Plugin>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
