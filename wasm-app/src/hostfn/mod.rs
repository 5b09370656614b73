//! Functions the host offers to core modules (import module `wasm_host`,
//! see [`wasm_abi::host`]): the built-in `http_request` and `log`, and
//! whatever an embedder registers in [`HostFunctions`] (`kv_get` among
//! them).
//!
//! Invariants:
//! - a function is linked only if the module imports it *and* the policy
//!   grants it: a module importing an ungranted or unknown function fails
//!   to load, naming it ([`link`]);
//! - a host function never calls into the guest: results wait in the
//!   store ([`HostCalls::pending`]) until the guest `take`s them into memory
//!   it allocated itself;
//! - every pointer and length a guest passes is checked against its memory.

mod link;
mod log;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};

pub(crate) use link::link_core;
pub(crate) use log::LogLimiter;
pub use log::TARGET as GUEST_LOG_TARGET;

/// An embedder's function: bytes in, bytes out, or a message for the guest.
type BytesFn = dyn Fn(&[u8]) -> std::result::Result<Vec<u8>, String> + Send + Sync;

/// Functions an embedder offers to guests, by name, as bytes in and bytes
/// out. Offering is not granting: a module may import one only if its
/// [`Policy::host_functions`](crate::Policy::host_functions) names it.
///
/// ```
/// use wasm_app::{HostFunctions, Policy, Runtime, EngineOptions};
///
/// let functions = HostFunctions::new()
///     .with_function("upper", |input| Ok(input.to_ascii_uppercase()))?
///     .with_kv(|key| (key == b"lang").then(|| b"en".to_vec()));
/// assert_eq!(functions.names().collect::<Vec<_>>(), ["kv_get", "upper"]);
///
/// // A module importing `wasm_host.upper` loads only where it is granted.
/// let wat = r#"(module (import "wasm_host" "upper" (func (param i32 i32) (result i64))))"#;
/// let rt = Runtime::new(EngineOptions::default())?;
/// let denied = rt.load_bytes_with("m.wat", wat.as_bytes(), Policy::default(), &functions);
/// let message = denied.err().map(|e| e.to_string()).unwrap_or_default();
/// assert!(message.contains("wasm_host.upper"), "{message}");
/// let granted = Policy::default().with_host_function("upper");
/// rt.load_bytes_with("m.wat", wat.as_bytes(), granted, &functions)?;
/// # Ok::<(), wasm_app::Error>(())
/// ```
#[derive(Clone, Default)]
pub struct HostFunctions {
    fns: BTreeMap<String, Arc<BytesFn>>,
}

impl fmt::Debug for HostFunctions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.fns.keys()).finish()
    }
}

impl HostFunctions {
    /// No embedder functions: what [`Runtime::load`](crate::Runtime::load)
    /// uses (the built-ins `http_request` and `log` are always offered).
    pub fn new() -> Self {
        Self::default()
    }

    /// Offers `f` as `wasm_host.<name>`: the guest's bytes in, `Ok` bytes
    /// out or `Err` with a message for the guest. Runs on the calling
    /// thread, within the call's timeout only as far as it returns: keep it
    /// short. A name is 1 to 64 ASCII letters, digits and `_`, and not one
    /// of the built-ins.
    pub fn with_function(
        mut self,
        name: &str,
        f: impl Fn(&[u8]) -> std::result::Result<Vec<u8>, String> + Send + Sync + 'static,
    ) -> Result<Self> {
        if !is_valid_name(name) || BUILT_IN.contains(&name) {
            return Err(Error::InvalidArgument(format!(
                "host function name {:?}: use 1 to 64 letters, digits and '_', other than {}",
                crate::text::escape_controls(name),
                BUILT_IN.join(", ")
            )));
        }
        self.fns.insert(name.to_string(), Arc::new(f));
        Ok(self)
    }

    /// Offers a read-only key-value lookup as `wasm_host.kv_get`: the guest
    /// gets `lookup(key)`'s value, or learns that there is none.
    pub fn with_kv(
        mut self,
        lookup: impl Fn(&[u8]) -> Option<Vec<u8>> + Send + Sync + 'static,
    ) -> Self {
        let f = move |key: &[u8]| {
            Ok(match lookup(key) {
                Some(mut v) => {
                    v.insert(0, wasm_abi::host::KV_FOUND);
                    v
                }
                None => vec![wasm_abi::host::KV_MISSING],
            })
        };
        self.fns
            .insert(wasm_abi::host::KV_GET.to_string(), Arc::new(f));
        self
    }

    /// The embedder's functions offered, by name (not the built-ins).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.fns.keys().map(String::as_str)
    }

    fn get(&self, name: &str) -> Option<Arc<BytesFn>> {
        self.fns.get(name).cloned()
    }
}

/// The functions the host itself provides; an embedder cannot replace them.
const BUILT_IN: [&str; 3] = [
    wasm_abi::host::HTTP_REQUEST,
    wasm_abi::host::LOG,
    wasm_abi::host::TAKE,
];

/// Whether `name` may name a host function.
pub(crate) fn is_valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// A refusal of the policy seen during the current operation, shared with
/// tasks that outlive a host call (wasi:http's requests run in their own).
///
/// Operations are numbered: a task records for the operation that started
/// it, and a record for an earlier one is dropped, so a request still
/// running from a past call cannot relabel the error of the next.
#[derive(Clone, Default)]
pub(crate) struct Refusal(Arc<Mutex<RefusalSlot>>);

#[derive(Default)]
struct RefusalSlot {
    op: u64,
    refusal: Option<Error>,
}

impl Refusal {
    fn slot(&self) -> std::sync::MutexGuard<'_, RefusalSlot> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts the next operation: earlier refusals are forgotten.
    pub(crate) fn start(&self) {
        let mut slot = self.slot();
        slot.op += 1;
        slot.refusal = None;
    }

    /// The current operation's number, for [`Refusal::record_for`].
    pub(crate) fn op(&self) -> u64 {
        self.slot().op
    }

    /// Records `e` for the current operation (the first refusal wins).
    pub(crate) fn record(&self, e: Error) {
        let op = self.op();
        self.record_for(op, e);
    }

    /// Records `e` if operation `op` is still the current one.
    pub(crate) fn record_for(&self, op: u64, e: Error) {
        let mut slot = self.slot();
        if slot.op == op {
            slot.refusal.get_or_insert(e);
        }
    }

    /// The refusal of this operation, cleared.
    pub(crate) fn take(&self) -> Option<Error> {
        self.slot().refusal.take()
    }
}

/// Per-store state of the host functions.
pub(crate) struct HostCalls {
    /// The result (or error message) the guest has yet to `take`.
    pending: Option<Vec<u8>>,
    pub(crate) refusal: Refusal,
    pub(crate) log: LogLimiter,
}

impl HostCalls {
    pub(crate) fn new(module: &str) -> Self {
        HostCalls {
            pending: None,
            refusal: Refusal::default(),
            log: LogLimiter::new(module),
        }
    }

    /// Forgets what an earlier operation left: each call starts clean.
    pub(crate) fn reset(&mut self) {
        self.pending = None;
        self.refusal.start();
    }

    /// Keeps `result` for `take` and returns what the bytes function
    /// returns for it ([`wasm_abi::host`]).
    fn hold(&mut self, result: std::result::Result<Vec<u8>, String>) -> i64 {
        match result {
            Ok(bytes) => {
                let n = bytes.len() as i64;
                self.pending = Some(bytes);
                n
            }
            Err(message) => {
                let bytes = message.into_bytes();
                let ret = wasm_abi::host::error_ret(bytes.len());
                self.pending = Some(bytes);
                ret
            }
        }
    }
}
