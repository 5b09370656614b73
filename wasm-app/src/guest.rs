//! One live instance of a module: its store, its exports (looked up once),
//! and the mapping of everything that can go wrong in a call to [`Error`].

use wasmtime::component::InstancePre as ComponentPre;
use wasmtime::{
    Instance, InstancePre, Memory, Store, Trap, TypedFunc, WasmBacktrace, WasmParams, WasmResults,
};

use crate::component::{missing_world, ComponentGuest, ComponentState};
use crate::engine::{InstanceSlot, TICK};
use crate::error::{Error, Limit, Result};
use crate::host::{HostState, LimitHit};
use crate::memory::{self, Frame, Lent};
use crate::policy::Limits;
use crate::pool::BufferPool;

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
pub struct Guest {
    kind: Kind,
    limits: Limits,
    poisoned: bool,
    /// Host allocations reused for the results copied out of this instance.
    results: BufferPool,
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
    pub(crate) fn new(
        mut store: Store<HostState>,
        pre: &InstancePre<HostState>,
        limits: Limits,
        slot: InstanceSlot,
    ) -> Result<Self> {
        unmetered_fuel(&mut store, &limits)?;
        arm(&mut store, &limits)?;
        let instance = pre
            .instantiate(&mut store)
            .map_err(|e| classify(e, &limits, "instantiation"))?;
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
            init.call(&mut store, ())
                .map_err(|e| classify(e, &limits, wasm_abi::INITIALIZE))?;
        }
        Ok(Guest {
            kind: Kind::Core(Core {
                store,
                exports,
                lent: [None; 2],
            }),
            limits,
            poisoned: false,
            results: BufferPool::default(),
            _slot: slot,
        })
    }

    /// A component instance: `pre` instantiated in `store`.
    pub(crate) fn new_component(
        mut store: Store<ComponentState>,
        pre: &ComponentPre<ComponentState>,
        limits: Limits,
        slot: InstanceSlot,
    ) -> Result<Self> {
        unmetered_fuel(&mut store, &limits)?;
        arm(&mut store, &limits)?;
        let guest =
            ComponentGuest::new(store, pre).map_err(|e| classify(e, &limits, "instantiation"))?;
        Ok(Guest {
            kind: Kind::Component(guest),
            limits,
            poisoned: false,
            results: BufferPool::default(),
            _slot: slot,
        })
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
    pub(crate) fn free(&mut self, ptr: u32) -> Result<()> {
        let status = self.call_deallocate(ptr as i32)?;
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
    pub(crate) fn lend(&mut self, slot: LentSlot, len: u32) -> Result<u32> {
        let i = slot as usize;
        if let Some(area) = self.lent_slots()?[i] {
            if area.cap >= len {
                return Ok(area.ptr);
            }
            self.lent_slots()?[i] = None;
            self.free(area.ptr)?;
        }
        let mut cap = Lent::capacity_for(len);
        let mut ptr = self.call_allocate(cap as i32)?;
        if ptr == wasm_abi::ALLOC_FAILED && cap > len {
            // The slack may be what does not fit under the memory limit.
            cap = len;
            ptr = self.call_allocate(cap as i32)?;
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

    /// Resets the epoch deadline and fuel: each top-level operation gets the
    /// policy's full time and fuel budget.
    pub(crate) fn arm(&mut self) -> Result<()> {
        if self.poisoned {
            return Err(Error::Other(anyhow::anyhow!(
                "instance is unusable after an earlier failure; create a new one"
            )));
        }
        match &mut self.kind {
            Kind::Core(c) => arm(&mut c.store, &self.limits),
            Kind::Component(c) => arm(&mut c.store, &self.limits),
        }
    }

    /// Calls into a component: arms the limits, runs `f`, classifies its
    /// error and poisons the instance as [`Guest::call`] does for a core
    /// module. `func` names the WIT function in messages.
    pub(crate) fn call_component<R>(
        &mut self,
        func: &str,
        f: impl FnOnce(&mut ComponentGuest) -> Result<wasmtime::Result<R>>,
    ) -> Result<R> {
        self.arm()?;
        let Kind::Component(c) = &mut self.kind else {
            return Err(Error::Other(anyhow::anyhow!(
                "`{func}` is a component function, and this is a core module"
            )));
        };
        match f(c) {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => {
                let err = classify(e, &self.limits, func);
                self.poisoned |= err.poisons_instance();
                Err(err)
            }
            Err(e) => Err(e),
        }
    }

    /// Calls an export, turning wasmtime errors into [`Error`] and poisoning
    /// the instance when the error says its state can no longer be trusted.
    fn call<P: WasmParams, R: WasmResults>(
        &mut self,
        name: &str,
        expected: &str,
        pick: impl FnOnce(&Exports) -> &Export<P, R>,
        params: P,
    ) -> Result<R> {
        let Kind::Core(core) = &mut self.kind else {
            return Err(core_only());
        };
        let func = resolved(pick(&core.exports), name, expected)?;
        func.call(&mut core.store, params).map_err(|e| {
            let mut err = classify(e, &self.limits, name);
            if let Error::Trap { message, .. } = &mut err {
                if name != wasm_abi::LAST_ERROR {
                    if let Some(why) = self.panic_message() {
                        *message = format!("{why}; {message}");
                    }
                }
            }
            self.poisoned |= err.poisons_instance();
            err
        })
    }

    pub(crate) fn call_allocate(&mut self, size: i32) -> Result<i32> {
        self.call(wasm_abi::ALLOCATE, sig::I32_TO_I32, |e| &e.allocate, size)
    }

    pub(crate) fn call_deallocate(&mut self, ptr: i32) -> Result<i32> {
        self.call(
            wasm_abi::DEALLOCATE,
            sig::I32_TO_I32,
            |e| &e.deallocate,
            ptr,
        )
    }

    /// `answer() -> i32` (a component's WIT `answer`).
    pub fn answer(&mut self) -> Result<i32> {
        if self.is_component() {
            return self.call_component("answer", |c| match &c.greeter {
                Ok(g) => Ok(g.call_answer(&mut c.store)),
                Err(why) => Err(missing_world("greeter", "answer", why)),
            });
        }
        self.arm()?;
        self.call(wasm_abi::ANSWER_FN, sig::UNIT_TO_I32, |e| &e.answer, ())
    }

    /// Reads the pair a pair-returning export returned, or the guest's error
    /// message if it returned 0. The pair's own area is adopted by `frame`;
    /// the payload is adopted too and returned as (ptr, len).
    pub(crate) fn take_pair(frame: &mut Frame<'_>, ret: i32, what: &str) -> Result<(u32, u32)> {
        if ret == wasm_abi::ERROR_RESULT {
            return Err(frame.guest.guest_error());
        }
        let ptr = ret as u32;
        frame.adopt(ptr);
        let pair = memory::read_pair(frame.guest.memory_bytes(), ptr, what)?;
        frame.adopt(pair.ptr);
        memory::slice(frame.guest.memory_bytes(), pair.ptr, pair.len, what)?;
        Ok((pair.ptr, pair.len))
    }

    /// The error a guest reported, read through the optional
    /// `wasm_last_error` export.
    pub(crate) fn guest_error(&mut self) -> Error {
        match self.read_last_error() {
            Ok(message) => Error::GuestReported { message },
            Err(e) => e,
        }
    }

    fn read_last_error(&mut self) -> Result<Option<String>> {
        if matches!(self.core()?.exports.last_error, Err(ExportError::Missing)) {
            return Ok(None);
        }
        let ret = self.call(
            wasm_abi::LAST_ERROR,
            sig::UNIT_TO_I32,
            |e| &e.last_error,
            (),
        )?;
        if ret == 0 {
            return Ok(None);
        }
        let mut frame = Frame::new(self);
        let (ptr, len) = Guest::take_pair(&mut frame, ret, "wasm_last_error pair")?;
        // Only what will be shown is read: a capped, escaped prefix.
        let shown = len.min(crate::error::MAX_GUEST_TEXT as u32);
        let bytes = memory::slice(frame.guest.memory_bytes(), ptr, shown, "error message")?;
        let text = crate::error::guest_text_read(bytes, u64::from(len - shown));
        frame.finish()?;
        Ok((!text.is_empty()).then_some(text))
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

    /// After a trap, what the guest recorded about it (a Rust guest's panic
    /// hook stores the panic message for `wasm_last_error`). The instance is
    /// about to be discarded, so nothing is freed; every read is still checked.
    fn panic_message(&mut self) -> Option<String> {
        let Kind::Core(core) = &mut self.kind else {
            return None;
        };
        let func = core.exports.last_error.clone().ok()?;
        arm(&mut core.store, &self.limits).ok()?;
        let ret = func.call(&mut core.store, ()).ok()?;
        if ret == 0 {
            return None;
        }
        let mem = self.memory_bytes();
        let pair = memory::read_pair(mem, ret as u32, "panic message pair").ok()?;
        let len = pair.len.min(crate::error::MAX_GUEST_TEXT as u32);
        let bytes = memory::slice(mem, pair.ptr, len, "panic message").ok()?;
        let text = crate::error::guest_text(bytes);
        (!text.is_empty()).then_some(text)
    }

    /// Exposed for the ABI modules of this crate.
    pub(crate) fn exports_process(&mut self, args: (i32, i32, i32, i32)) -> Result<i32> {
        self.call(
            wasm_abi::PROCESS_ARROW,
            sig::QUAD_TO_I32,
            |e| &e.process,
            args,
        )
    }

    pub(crate) fn exports_greet_c(&mut self, ptr: i32) -> Result<i32> {
        self.call(wasm_abi::GREET_C, sig::I32_TO_I32, |e| &e.greet_c, ptr)
    }

    pub(crate) fn exports_greet_rust(&mut self, ptr: i32, len: i32) -> Result<i32> {
        self.call(
            wasm_abi::GREET_RUST,
            sig::PAIR_TO_I32,
            |e| &e.greet_rust,
            (ptr, len),
        )
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

/// Arms a store for one top-level call: the policy's epoch deadline and, if
/// it sets one, its fuel budget. Runs before every call, so it does no more.
pub(crate) fn arm<T>(store: &mut Store<T>, limits: &Limits) -> Result<()> {
    let ticks = (limits.timeout.as_nanos() / TICK.as_nanos()).max(1);
    // +1: the current tick may be about to end.
    store.set_epoch_deadline(u64::try_from(ticks).unwrap_or(u64::MAX).saturating_add(1));
    if let Some(fuel) = limits.fuel {
        store.set_fuel(fuel).map_err(|e| Error::Other(e.into()))?;
    }
    Ok(())
}

/// Once per store: a store of a fuel-metering engine starts with no fuel,
/// and a policy without a fuel limit must still run, so give it all there
/// is (2^64 units: more than any call can burn, so it never needs a refill).
///
/// Not in [`arm`]: `get_fuel` fails, building an error, on an engine that
/// does not meter fuel, which would cost every call an allocation.
fn unmetered_fuel<T>(store: &mut Store<T>, limits: &Limits) -> Result<()> {
    if limits.fuel.is_none() && store.get_fuel().is_ok() {
        store
            .set_fuel(u64::MAX)
            .map_err(|e| Error::Other(e.into()))?;
    }
    Ok(())
}

/// Maps an error out of wasmtime to what happened, as the host sees it.
pub(crate) fn classify(err: wasmtime::Error, limits: &Limits, during: &str) -> Error {
    if let Some(hit) = err.downcast_ref::<LimitHit>() {
        return Error::LimitExceeded(hit.0);
    }
    if let Some(exit) = err.downcast_ref::<wasmtime_wasi::I32Exit>() {
        return Error::Exited(exit.0);
    }
    let backtrace = err
        .downcast_ref::<WasmBacktrace>()
        .map(|b| b.to_string())
        .filter(|b| !b.trim().is_empty());
    match err.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => Error::LimitExceeded(Limit::Time(limits.timeout)),
        Some(Trap::OutOfFuel) => Error::LimitExceeded(Limit::Fuel(limits.fuel.unwrap_or(0))),
        // wasmtime words it "call stack exhausted"; say what happened.
        Some(Trap::StackOverflow) => Error::Trap {
            message: format!("stack overflow ({}) (in {during})", Trap::StackOverflow),
            backtrace,
        },
        Some(trap) => Error::Trap {
            message: format!("{trap} (in {during})"),
            backtrace,
        },
        None if during == "instantiation" => {
            Error::Instantiate(format!("{:#}", anyhow::Error::from(err)))
        }
        None => Error::Trap {
            message: format!("{:#} (in {during})", anyhow::Error::from(err)),
            backtrace,
        },
    }
}
