//! One live instance of a module: its store, its exports (looked up once),
//! and the mapping of everything that can go wrong in a call to [`Error`].

use wasmtime::component::InstancePre as ComponentPre;
use wasmtime::{Instance, InstancePre, Memory, Store, TypedFunc, WasmParams, WasmResults};

use crate::component::{ComponentGuest, ComponentState};
use crate::deadline::Deadline;
use crate::engine::InstanceSlot;
use crate::error::{Error, Result};
use crate::host::HostState;
use crate::memory::{self, Lent};
use crate::policy::Limits;
use crate::pool::BufferPool;

mod call;

pub(crate) use call::classify;
use call::{arm, unmetered_fuel};

/// An export looked up at instantiation: the typed function, or why not.
type Export<P, R> = std::result::Result<TypedFunc<P, R>, ExportError>;

#[derive(Debug, Clone)]
enum ExportError {
    Missing,
    WrongType(String),
}

/// The ABI's exports, each resolved once per instance; calls then cost no
/// name lookup.
pub(crate) struct Exports {
    memory: Option<Memory>,
    allocate: Export<i32, i32>,
    deallocate: Export<i32, i32>,
    last_error: Export<(), i32>,
    answer: Export<(), i32>,
    greet_c: Export<i32, i32>,
    greet_rust: Export<(i32, i32), i32>,
    process: Export<(i32, i32, i32, i32), i32>,
}

/// Human-readable ABI signatures, for error messages.
pub(crate) mod sig {
    pub const I32_TO_I32: &str = "(func (param i32) (result i32))";
    pub const UNIT_TO_I32: &str = "(func (result i32))";
    pub const PAIR_TO_I32: &str = "(func (param i32 i32) (result i32))";
    pub const QUAD_TO_I32: &str = "(func (param i32 i32 i32 i32) (result i32))";
}

fn lookup<P: WasmParams, R: WasmResults>(
    instance: &Instance,
    store: &mut Store<HostState>,
    name: &str,
) -> Export<P, R> {
    let Some(func) = instance.get_func(&mut *store, name) else {
        return Err(ExportError::Missing);
    };
    func.typed::<P, R>(&*store)
        .map_err(|_| ExportError::WrongType(format!("{}", func.ty(&*store))))
}

/// A live instance of a core module or of a component. Not `Sync`: one
/// thread calls it at a time. After any error that
/// [poisons](Error::poisons_instance) it, it refuses further calls and its
/// owner makes a new one.
///
/// Invariant: every public operation goes through [`Guest::run`], which
/// gives it one deadline and is the one place where errors poison.
pub struct Guest {
    kind: Kind,
    limits: Limits,
    poisoned: bool,
    /// Host allocations reused for the results copied out of this instance.
    results: BufferPool,
    /// Areas the guest returned during the current operation, handed back
    /// to `wasm_deallocate` when it ends ([`Guest::run`]).
    owned: Vec<u32>,
    _slot: InstanceSlot,
}

/// What kind of instance a [`Guest`] is.
// One per live instance, never in bulk: the core variant stays inline so
// that the hot core-ABI calls do not go through another pointer.
#[allow(clippy::large_enum_variant)]
enum Kind {
    /// A core module: its store and its ABI exports.
    Core(Core),
    /// A component (WIT worlds of `wit/`), see [`crate::component`].
    Component(ComponentGuest),
}

struct Core {
    store: Store<HostState>,
    exports: Exports,
    /// Input areas kept across calls, by [`LentSlot`].
    lent: [Option<Lent>; 2],
}

/// Which kept input area: the Arrow ABI's metadata, or a call's main input
/// (the Arrow data stream, a greeter's name).
#[derive(Debug, Clone, Copy)]
pub(crate) enum LentSlot {
    Meta = 0,
    Data = 1,
}

impl Guest {
    /// Instantiates `pre` in `store` and runs its `_initialize`, under one
    /// deadline.
    pub(crate) fn new(
        store: Store<HostState>,
        pre: &InstancePre<HostState>,
        limits: Limits,
        slot: InstanceSlot,
    ) -> Result<Self> {
        let deadline = Deadline::after(limits.timeout);
        let kind = deadline.block_on(Self::new_core(store, pre, &limits, &deadline))?;
        Ok(Guest::with_kind(kind, limits, slot))
    }

    async fn new_core(
        mut store: Store<HostState>,
        pre: &InstancePre<HostState>,
        limits: &Limits,
        deadline: &Deadline,
    ) -> Result<Kind> {
        unmetered_fuel(&mut store, limits)?;
        arm(&mut store, limits, deadline)?;
        let instance = pre
            .instantiate_async(&mut store)
            .await
            .map_err(|e| classify(e, limits, "instantiation"))?;
        let exports = Exports {
            memory: instance.get_memory(&mut store, wasm_abi::MEMORY),
            allocate: lookup(&instance, &mut store, wasm_abi::ALLOCATE),
            deallocate: lookup(&instance, &mut store, wasm_abi::DEALLOCATE),
            last_error: lookup(&instance, &mut store, wasm_abi::LAST_ERROR),
            answer: lookup(&instance, &mut store, wasm_abi::ANSWER_FN),
            greet_c: lookup(&instance, &mut store, wasm_abi::GREET_C),
            greet_rust: lookup(&instance, &mut store, wasm_abi::GREET_RUST),
            process: lookup(&instance, &mut store, wasm_abi::PROCESS_ARROW),
        };
        // WASI reactors (C and Rust cdylibs) set up libc, preopens and env
        // here; it must run before any other export.
        if let Some(init) = instance.get_func(&mut store, wasm_abi::INITIALIZE) {
            let init = init
                .typed::<(), ()>(&store)
                .map_err(|_| Error::WrongSignature {
                    name: wasm_abi::INITIALIZE.into(),
                    expected: "(func)".into(),
                    found: format!("{}", init.ty(&store)),
                })?;
            init.call_async(&mut store, ())
                .await
                .map_err(|e| classify(e, limits, wasm_abi::INITIALIZE))?;
        }
        Ok(Kind::Core(Core {
            store,
            exports,
            lent: [None; 2],
        }))
    }

    /// A component instance: `pre` instantiated in `store`, under one
    /// deadline.
    pub(crate) fn new_component(
        mut store: Store<ComponentState>,
        pre: &ComponentPre<ComponentState>,
        limits: Limits,
        slot: InstanceSlot,
    ) -> Result<Self> {
        let deadline = Deadline::after(limits.timeout);
        unmetered_fuel(&mut store, &limits)?;
        arm(&mut store, &limits, &deadline)?;
        let guest = deadline.block_on(async {
            ComponentGuest::new(store, pre)
                .await
                .map_err(|e| classify(e, &limits, "instantiation"))
        })?;
        Ok(Guest::with_kind(Kind::Component(guest), limits, slot))
    }

    fn with_kind(kind: Kind, limits: Limits, slot: InstanceSlot) -> Self {
        Guest {
            kind,
            limits,
            poisoned: false,
            results: BufferPool::default(),
            owned: Vec::new(),
            _slot: slot,
        }
    }

    /// Whether this is a component instance (else a core module's).
    pub fn is_component(&self) -> bool {
        matches!(self.kind, Kind::Component(_))
    }

    /// Whether an earlier error left this instance unusable.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    /// The limits this instance runs under.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Current size of the guest's linear memory, in bytes (0 without one).
    ///
    /// A component's memories are internal to it (not exported): for a
    /// component this is the size of its largest memory (its program's, not
    /// the WASI adapter's), as the resource limiter saw it grow.
    pub fn memory_size(&self) -> usize {
        match &self.kind {
            Kind::Core(c) => c.exports.memory.map(|m| m.data_size(&c.store)).unwrap_or(0),
            Kind::Component(c) => c.store.data().limiter.largest_memory(),
        }
    }

    /// The guest memory as bytes (empty if it exports none).
    pub(crate) fn memory_bytes(&self) -> &[u8] {
        match &self.kind {
            Kind::Core(Core {
                store,
                exports: Exports {
                    memory: Some(m), ..
                },
                ..
            }) => m.data(store),
            _ => &[],
        }
    }

    /// The core parts, or the error for a core-ABI call on a component.
    fn core(&self) -> Result<&Core> {
        match &self.kind {
            Kind::Core(c) => Ok(c),
            Kind::Component(_) => Err(core_only()),
        }
    }

    fn require_memory(&self) -> Result<Memory> {
        self.core()?
            .exports
            .memory
            .ok_or_else(|| Error::MissingExport {
                name: wasm_abi::MEMORY.into(),
                expected: "(memory)".into(),
            })
    }

    /// Copies `len` bytes at `ptr` out of guest memory (bounds-checked) into
    /// a 64-byte aligned host buffer, reusing an earlier result's allocation
    /// once nothing views it any more.
    pub(crate) fn copy_out(&self, ptr: u32, len: u32, what: &str) -> Result<arrow::buffer::Buffer> {
        let bytes = memory::slice(self.memory_bytes(), ptr, len, what)?;
        Ok(self.results.copy(bytes))
    }

    /// Copies `parts`, one after the other, to guest memory at `ptr`
    /// (bounds-checked as a whole first).
    pub(crate) fn write<P: AsRef<[u8]>>(&mut self, ptr: u32, parts: &[P]) -> Result<()> {
        let mem = self.require_memory()?;
        let total = parts.iter().try_fold(0u32, |n, p| {
            u32::try_from(p.as_ref().len())
                .ok()
                .and_then(|l| n.checked_add(l))
        });
        let total =
            total.ok_or_else(|| Error::InvalidArgument("input larger than 4 GiB".into()))?;
        let Kind::Core(core) = &mut self.kind else {
            return Err(core_only());
        };
        let data = mem.data_mut(&mut core.store);
        memory::slice(data, ptr, total, "write target")?;
        let mut at = ptr as usize;
        for part in parts {
            let part = part.as_ref();
            data[at..at + part.len()].copy_from_slice(part);
            at += part.len();
        }
        Ok(())
    }

    /// Hands `ptr` back with `wasm_deallocate`; a guest that refuses an
    /// area it handed out is an allocator error.
    pub(crate) async fn free(&mut self, ptr: u32) -> Result<()> {
        let status = self.call_deallocate(ptr as i32).await?;
        if status != wasm_abi::DEALLOC_OK {
            return Err(Error::Allocator(format!(
                "wasm_deallocate({ptr:#x}) returned {status} for an area it handed out"
            )));
        }
        Ok(())
    }

    /// The kept input areas, by [`LentSlot`] (core modules only).
    fn lent_slots(&mut self) -> Result<&mut [Option<Lent>; 2]> {
        match &mut self.kind {
            Kind::Core(c) => Ok(&mut c.lent),
            Kind::Component(_) => Err(core_only()),
        }
    }

    /// The kept input area of `slot`, with room for `len` bytes: the one
    /// from an earlier call if it is large enough, else a new one (the old
    /// one is freed first, so the guest can reuse its space).
    pub(crate) async fn lend(&mut self, slot: LentSlot, len: u32) -> Result<u32> {
        let i = slot as usize;
        if let Some(area) = self.lent_slots()?[i] {
            if area.cap >= len {
                return Ok(area.ptr);
            }
            self.lent_slots()?[i] = None;
            self.free(area.ptr).await?;
        }
        let mut cap = Lent::capacity_for(len);
        let mut ptr = self.call_allocate(cap as i32).await?;
        if ptr == wasm_abi::ALLOC_FAILED && cap > len {
            // The slack may be what does not fit under the memory limit.
            cap = len;
            ptr = self.call_allocate(cap as i32).await?;
        }
        if ptr == wasm_abi::ALLOC_FAILED {
            return Err(Error::Allocator(format!(
                "wasm_allocate({cap}) returned 0 (out of memory?)"
            )));
        }
        let area = Lent {
            ptr: ptr as u32,
            cap,
        };
        let slots = self.lent_slots()?;
        let others: Vec<(u32, u32)> = slots.iter().flatten().map(|l| (l.ptr, l.cap)).collect();
        // Kept even if the checks fail: the instance is then discarded.
        slots[i] = Some(area);
        memory::check_allocated(self.memory_bytes(), area.ptr, cap, &others)?;
        Ok(area.ptr)
    }

    /// Checks, before any allocation, that the instance has what an ABI call
    /// needs: the entry point with its type, memory and the allocator pair.
    pub(crate) fn require(&self, entry: Entry) -> Result<()> {
        let e = &self.core()?.exports;
        match entry {
            Entry::GreetC => resolved(&e.greet_c, wasm_abi::GREET_C, sig::I32_TO_I32).map(drop)?,
            Entry::GreetRust => {
                resolved(&e.greet_rust, wasm_abi::GREET_RUST, sig::PAIR_TO_I32).map(drop)?
            }
            Entry::Process => {
                resolved(&e.process, wasm_abi::PROCESS_ARROW, sig::QUAD_TO_I32).map(drop)?
            }
        }
        self.require_memory()?;
        resolved(&e.allocate, wasm_abi::ALLOCATE, sig::I32_TO_I32)?;
        resolved(&e.deallocate, wasm_abi::DEALLOCATE, sig::I32_TO_I32)?;
        Ok(())
    }

    /// Which of the ABI's exports this instance has with the right type.
    /// For a component: its WIT worlds (`greeter` counts as both string ABIs).
    pub fn abi_support(&self) -> AbiSupport {
        let e = match &self.kind {
            Kind::Core(c) => &c.exports,
            Kind::Component(c) => {
                return AbiSupport {
                    answer: c.greeter.is_ok(),
                    greeter_c: c.greeter.is_ok(),
                    greeter_rust: c.greeter.is_ok(),
                    arrow: c.arrow.is_ok(),
                    last_error: false,
                }
            }
        };
        let alloc = e.memory.is_some() && e.allocate.is_ok() && e.deallocate.is_ok();
        AbiSupport {
            answer: e.answer.is_ok(),
            greeter_c: alloc && e.greet_c.is_ok(),
            greeter_rust: alloc && e.greet_rust.is_ok(),
            arrow: alloc && e.process.is_ok(),
            last_error: e.last_error.is_ok(),
        }
    }
}

/// Entry points that pass data through guest memory.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Entry {
    GreetC,
    GreetRust,
    Process,
}

/// What an instance implements of the ABI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbiSupport {
    pub answer: bool,
    pub greeter_c: bool,
    pub greeter_rust: bool,
    pub arrow: bool,
    pub last_error: bool,
}

/// The export, or the error that names what is missing or mistyped.
fn resolved<P: WasmParams, R: WasmResults>(
    export: &Export<P, R>,
    name: &str,
    expected: &str,
) -> Result<TypedFunc<P, R>> {
    match export {
        Ok(f) => Ok(f.clone()),
        Err(ExportError::Missing) => Err(Error::MissingExport {
            name: name.into(),
            expected: expected.into(),
        }),
        Err(ExportError::WrongType(found)) => Err(Error::WrongSignature {
            name: name.into(),
            expected: expected.into(),
            found: found.clone(),
        }),
    }
}

/// The error for a core-ABI call on a component instance.
fn core_only() -> Error {
    Error::Other(anyhow::anyhow!(
        "this is a component: the core ABI's exports and memory are not reachable"
    ))
}
