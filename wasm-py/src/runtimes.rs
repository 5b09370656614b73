//! The engines behind Python `Plugin`s.
//!
//! An engine comes with an epoch-ticker thread, so plugins share one per
//! kind of options instead of starting one each. Not pooled engines,
//! though: a pooling allocator's slots are sized for one module's
//! `max_instances`, and plugins sharing it would take each other's slots.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use wasm_app::{EngineOptions, Policy, Result, Runtime};

/// What makes two engines interchangeable (pooling aside).
#[derive(Hash, PartialEq, Eq)]
struct Key {
    cache_dir: Option<PathBuf>,
    fuel: bool,
}

/// An engine fit for `policy`; `cache = false` compiles without the
/// on-disk cache.
pub(crate) fn for_policy(policy: &Policy, cache: bool) -> Result<Arc<Runtime>> {
    let mut options = EngineOptions::for_policy(policy);
    if !cache {
        options.cache_dir = None;
    }
    if options.pool_instances.is_some() {
        return Runtime::new(options).map(Arc::new);
    }
    static SHARED: Mutex<Option<HashMap<Key, Arc<Runtime>>>> = Mutex::new(None);
    let key = Key {
        cache_dir: options.cache_dir.clone(),
        fuel: options.fuel,
    };
    // Made under the lock: at most one engine per key, ever.
    let mut shared = SHARED.lock().unwrap_or_else(PoisonError::into_inner);
    let map = shared.get_or_insert_with(HashMap::new);
    if let Some(rt) = map.get(&key) {
        return Ok(rt.clone());
    }
    let rt = Arc::new(Runtime::new(options)?);
    map.insert(key, rt.clone());
    Ok(rt)
}
