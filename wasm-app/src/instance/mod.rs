//! A live instance of a module: one layer over the two backends, core
//! modules ([`core`]) and components ([`component`]).
//!
//! Each backend implements [`Backend`]: the transport of each ABI (how bytes
//! get in and out). The ABIs themselves (`crate::abi`) are written once, on
//! [`Instance`], and every operation goes through [`Instance::run`]: one
//! deadline, and the one place where an error poisons the instance.

pub(crate) mod component;
mod core;
#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use arrow::buffer::Buffer;
use wasmtime::component::InstancePre as ComponentPre;
use wasmtime::{InstancePre, Store};

use self::core::CoreInstance;
use crate::buffer_pool::BufferPool;
use crate::deadline::{self, Deadline};
use crate::epoch::Ticker;
use crate::error::{Error, Result};
use crate::host::ComponentState;
use crate::host::HostState;
use crate::policy::Limits;
use crate::stderr_tail::StderrTail;
use crate::string_abi::StringAbi;
use component::ComponentInstance;

/// What a backend does for the ABIs; one implementation per kind of
/// module. Every method runs inside [`Instance::run`] (armed, under the
/// operation's deadline) except `arm`, `memory_size` and `abi_support`.
pub(crate) trait Backend {
    /// Sets the store's epoch deadline and fuel for one operation, and
    /// clears what host calls of an earlier one left.
    fn arm(&mut self, deadline: &Deadline) -> Result<()>;
    /// Ends the operation: stops what its host calls still run (a
    /// component's HTTP requests), and returns the policy's refusal of one
    /// of them (a host not granted, a response too large), if any.
    fn end(&mut self) -> Option<Error>;
    /// Hands back what the guest returned during the operation.
    async fn release(&mut self) -> Result<()>;
    /// `answer() -> i32`.
    async fn answer(&mut self) -> Result<i32>;
    /// The greeter; the greeting, unchecked beyond UTF-8 and its size cap.
    async fn greet(&mut self, abi: StringAbi, name: &str) -> Result<String>;
    /// One Arrow call: IPC stream bytes in (`data` as parts, `data_len`
    /// bytes in all), IPC stream bytes out, copied into `results`.
    async fn process<P: AsRef<[u8]>>(
        &mut self,
        meta: &[u8],
        data: &[P],
        data_len: u32,
        results: &BufferPool,
    ) -> Result<Buffer>;
    /// The generic call: bytes in, bytes out, at most the output limit.
    async fn call_bytes(&mut self, export: &str, input: &[u8]) -> Result<Vec<u8>>;
    /// The end of what the guest wrote to stderr.
    fn stderr(&self) -> &StderrTail;
    /// Size of the guest's (largest) linear memory, in bytes.
    fn memory_size(&self) -> usize;
    /// What the instance implements of the ABIs.
    fn abi_support(&self) -> AbiSupport;
}

/// The two backends. One per live instance, never in bulk: the core
/// variant stays inline so that its hot calls go through no other pointer.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Kind {
    Core(CoreInstance),
    Component(ComponentInstance),
}

/// Runs `$body` with `$b` bound to the backend, whichever it is.
macro_rules! backend {
    ($kind:expr, $b:ident => $body:expr) => {
        match $kind {
            $crate::instance::Kind::Core($b) => $body,
            $crate::instance::Kind::Component($b) => $body,
        }
    };
}
pub(crate) use backend;

/// What an instance implements of the ABIs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbiSupport {
    /// `answer() -> i32`.
    pub answer: bool,
    /// The C string greeter.
    pub greeter_c: bool,
    /// The (ptr, len) greeter.
    pub greeter_rust: bool,
    /// The Arrow processor.
    pub arrow: bool,
    /// `wasm_last_error` (messages for failures and panics).
    pub last_error: bool,
}

/// Counts a live instance against its module's `max-instances`, and keeps
/// the engine's epoch ticker running while the instance lives.
pub(crate) struct Slot {
    live: Arc<AtomicU32>,
    _ticker: Arc<Ticker>,
}

impl Slot {
    /// Takes over one count already added to `live`.
    pub(crate) fn new(live: Arc<AtomicU32>, ticker: Arc<Ticker>) -> Self {
        Slot {
            live,
            _ticker: ticker,
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.live.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A live instance of a core module or of a component. Not `Sync`: one
/// thread calls it at a time. After any error that
/// [poisons](Error::poisons_instance) it, it refuses further calls and its
/// owner ([`Plugin`](crate::Plugin)) makes a new one.
///
/// Invariant: every operation goes through [`Instance::run`], which gives
/// it one deadline and is the one place where errors poison.
pub(crate) struct Instance {
    pub(crate) kind: Kind,
    limits: Limits,
    poisoned: bool,
    /// Host allocations reused for the results copied out of this instance.
    pub(crate) results: BufferPool,
    _slot: Slot,
}

impl Instance {
    /// Instantiates `pre` in `store` and runs its `_initialize`, under one
    /// deadline.
    pub(crate) fn new_core(
        mut store: Store<HostState>,
        pre: &InstancePre<HostState>,
        limits: Limits,
        slot: Slot,
    ) -> Result<Self> {
        let deadline = Deadline::after(limits.timeout);
        deadline::arm(&mut store, &limits, &deadline)?;
        let core = deadline.block_on(CoreInstance::new(store, pre, limits.clone()))?;
        Ok(Instance::with_kind(Kind::Core(core), limits, slot))
    }

    /// A component instance: `pre` instantiated in `store`, under one
    /// deadline.
    pub(crate) fn new_component(
        mut store: Store<ComponentState>,
        pre: &ComponentPre<ComponentState>,
        limits: Limits,
        slot: Slot,
    ) -> Result<Self> {
        let deadline = Deadline::after(limits.timeout);
        deadline::arm(&mut store, &limits, &deadline)?;
        let c = deadline.block_on(ComponentInstance::new(store, pre, limits.clone()))?;
        Ok(Instance::with_kind(Kind::Component(c), limits, slot))
    }

    fn with_kind(kind: Kind, limits: Limits, slot: Slot) -> Self {
        Instance {
            kind,
            limits,
            poisoned: false,
            results: BufferPool::default(),
            _slot: slot,
        }
    }

    /// Whether an earlier error left this instance unusable.
    pub(crate) fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    /// The limits this instance runs under.
    pub(crate) fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Current size of the guest's (largest) linear memory, in bytes.
    pub(crate) fn memory_size(&self) -> usize {
        backend!(&self.kind, b => b.memory_size())
    }

    /// What this instance implements of the ABIs.
    pub(crate) fn abi_support(&self) -> AbiSupport {
        backend!(&self.kind, b => b.abi_support())
    }

    /// Runs one top-level operation under one deadline (the policy's
    /// timeout from now), for wasm code and host calls alike.
    ///
    /// The one place where errors poison: any error out of `op` (a trap, a
    /// limit, a bad pointer or string from the guest, an allocator that
    /// breaks its contract, the deadline) that
    /// [poisons](Error::poisons_instance) marks the instance unusable. When
    /// `op` ends otherwise, what the guest returned during it is handed
    /// back ([`Backend::release`]), within the same deadline.
    pub(crate) fn run<R>(&mut self, op: impl AsyncFnOnce(&mut Instance) -> Result<R>) -> Result<R> {
        if self.poisoned {
            return Err(Error::Other(anyhow::anyhow!(
                "instance is unusable after an earlier failure; create a new one"
            )));
        }
        let deadline = Deadline::after(self.limits.timeout);
        // A trap is explained by what the guest wrote in this operation only.
        backend!(&self.kind, b => b.stderr().clear());
        let armed = backend!(&mut self.kind, b => b.arm(&deadline));
        let result = armed.and_then(|()| {
            deadline.block_on(async {
                let result = op(&mut *self).await;
                match result {
                    Ok(r) => self.release().await.map(|()| r),
                    Err(e) if !e.poisons_instance() => {
                        // A guest that cannot free its own areas is broken,
                        // but the error it reported says more.
                        if self.release().await.is_err() {
                            self.poisoned = true;
                        }
                        Err(e)
                    }
                    Err(e) => Err(e),
                }
            })
        });
        if let Err(e) = &result {
            self.poisoned |= e.poisons_instance();
        }
        // A guest that fails after the policy refused it something failed
        // because of it: say so, whatever the guest made of the refusal.
        // Only the guest's own reported failures are relabelled: a timeout,
        // a limit or a bad pointer is the host's finding and stays what it
        // is.
        // A trap keeps its message (a Rust guest's panic message quotes
        // the host's refusal anyway).
        match (result, backend!(&mut self.kind, b => b.end())) {
            (Err(Error::GuestReported { .. }), Some(refusal)) => Err(refusal),
            (result, _) => result,
        }
    }

    /// Hands back what the guest returned so far in this operation.
    pub(crate) async fn release(&mut self) -> Result<()> {
        backend!(&mut self.kind, b => b.release().await)
    }
}
