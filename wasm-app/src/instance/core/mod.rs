//! The core-module backend: a store, the ABI's exports resolved once, the
//! input areas lent to the guest, and the areas it returned.
//!
//! Invariants:
//! - every (ptr, len) the guest hands over is checked against its memory
//!   before use ([`crate::memory`]), and re-checked on every call: the guest
//!   may change anything in between;
//! - every area the guest returns during an operation is adopted and handed
//!   back to `wasm_deallocate` when the operation ends ([`CoreInstance::release`]);
//! - inputs go into [`Lent`] areas kept across calls (the ABI lends an input
//!   for one call only), so a call costs no allocate/free pair for its input.

mod abi;
mod exports;

use wasm_abi::sig;
use wasmtime::{InstancePre, Store, TypedFunc, WasmParams, WasmResults};

use crate::error::{classify, Error, Result, INSTANTIATION};
use crate::host::HostState;
use crate::memory::{self, Lent};
use crate::policy::Limits;
use exports::{resolved, Export, Exports};

/// A live core instance. Not `Sync`: one thread calls it at a time.
pub(crate) struct CoreInstance {
    store: Store<HostState>,
    instance: wasmtime::Instance,
    exports: Exports,
    limits: Limits,
    /// Input areas kept across calls, by [`LentSlot`].
    lent: [Option<Lent>; 2],
    /// Areas the guest returned during the current operation.
    owned: Vec<u32>,
}

/// Which kept input area: the Arrow ABI's metadata, or a call's main input
/// (the Arrow data stream, a greeter's name, a generic call's bytes).
#[derive(Debug, Clone, Copy)]
enum LentSlot {
    Meta = 0,
    Data = 1,
}

impl CoreInstance {
    /// Instantiates `pre` in `store` (armed by the caller) and runs its
    /// `_initialize`.
    pub(crate) async fn new(
        mut store: Store<HostState>,
        pre: &InstancePre<HostState>,
        limits: Limits,
    ) -> Result<Self> {
        let explained = |store: &Store<HostState>, e, during| {
            store
                .data()
                .stderr
                .explain(classify(e, limits.timeout, limits.fuel, during))
        };
        let instance = match pre.instantiate_async(&mut store).await {
            Ok(i) => i,
            Err(e) => return Err(explained(&store, e, INSTANTIATION)),
        };
        let exports = Exports::resolve(&instance, &mut store);
        // WASI reactors (C and Rust cdylibs) set up libc, preopens and env
        // here; it must run before any other export.
        if let Some(init) = instance.get_func(&mut store, wasm_abi::INITIALIZE) {
            let init = init
                .typed::<(), ()>(&store)
                .map_err(|_| Error::WrongSignature {
                    name: wasm_abi::INITIALIZE.into(),
                    expected: sig::INIT.into(),
                    found: format!("{}", init.ty(&store)),
                })?;
            if let Err(e) = init.call_async(&mut store, ()).await {
                return Err(explained(&store, e, wasm_abi::INITIALIZE));
            }
        }
        Ok(CoreInstance {
            store,
            instance,
            exports,
            limits,
            lent: [None; 2],
            owned: Vec::new(),
        })
    }

    /// The guest memory as bytes (empty if it exports none).
    fn memory_bytes(&self) -> &[u8] {
        match self.exports.memory {
            Some(m) => m.data(&self.store),
            None => &[],
        }
    }

    /// Copies `parts`, one after the other, to guest memory at `ptr`
    /// (bounds-checked as a whole first).
    fn write<P: AsRef<[u8]>>(&mut self, ptr: u32, parts: &[P]) -> Result<()> {
        let mem = self.exports.require_memory()?;
        let total = parts.iter().try_fold(0u32, |n, p| {
            u32::try_from(p.as_ref().len())
                .ok()
                .and_then(|l| n.checked_add(l))
        });
        let total =
            total.ok_or_else(|| Error::InvalidArgument("input larger than 4 GiB".into()))?;
        let data = mem.data_mut(&mut self.store);
        memory::slice(data, ptr, total, "write target")?;
        let mut at = ptr as usize;
        for part in parts {
            let part = part.as_ref();
            data[at..at + part.len()].copy_from_slice(part);
            at += part.len();
        }
        Ok(())
    }

    /// The kept input area of `slot` with `parts` written into it: the one
    /// from an earlier call if it is large enough, else a new one (the old
    /// one is freed first, so the guest can reuse its space).
    async fn lend<P: AsRef<[u8]>>(&mut self, slot: LentSlot, parts: &[P]) -> Result<u32> {
        let len = parts.iter().map(|p| p.as_ref().len()).sum::<usize>();
        let len = u32::try_from(len)
            .ok()
            .filter(|l| *l <= i32::MAX as u32)
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "an input of {len} bytes does not fit in a wasm32 memory"
                ))
            })?;
        let ptr = self.lend_area(slot, len).await?;
        self.write(ptr, parts)?;
        Ok(ptr)
    }

    async fn lend_area(&mut self, slot: LentSlot, len: u32) -> Result<u32> {
        let i = slot as usize;
        if let Some(area) = self.lent[i] {
            if area.cap >= len {
                return Ok(area.ptr);
            }
            self.lent[i] = None;
            self.free(area.ptr).await?;
        }
        let mut cap = Lent::capacity_for(len);
        let mut ptr = self.call_allocate(cap as i32).await?;
        if ptr == wasm_abi::ALLOC_FAILED && cap > len {
            // The slack may be what does not fit under the memory limit.
            cap = len;
            ptr = self.call_allocate(cap as i32).await?;
        }
        if ptr == wasm_abi::ALLOC_FAILED && cap == 0 {
            // An allocator may answer 0 for 0 bytes, as C's `malloc(0)` may:
            // an empty input needs no area, and none is kept.
            return Ok(0);
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
        let others: Vec<(u32, u32)> = self.lent.iter().flatten().map(|l| (l.ptr, l.cap)).collect();
        // Kept even if the checks fail: the instance is then discarded.
        self.lent[i] = Some(area);
        memory::check_allocated(self.memory_bytes(), area.ptr, cap, &others)?;
        Ok(area.ptr)
    }

    /// Hands `ptr` back with `wasm_deallocate`; a guest that refuses an
    /// area it handed out is an allocator error.
    async fn free(&mut self, ptr: u32) -> Result<()> {
        let status = self.call_deallocate(ptr as i32).await?;
        if status != wasm_abi::DEALLOC_OK {
            return Err(Error::Allocator(format!(
                "wasm_deallocate({ptr:#x}) returned {status} for an area it handed out"
            )));
        }
        Ok(())
    }

    /// Takes ownership of an area the guest returned: it is freed when the
    /// operation ends.
    fn adopt(&mut self, ptr: u32) {
        // A guest may answer in the area it was lent: that one stays the
        // host's, kept for the next call, and is never freed here.
        if self.lent.iter().flatten().any(|l| l.ptr == ptr) {
            return;
        }
        if !self.owned.contains(&ptr) {
            self.owned.push(ptr);
        }
    }

    /// Frees every adopted area, reporting a guest that refuses to free its
    /// own areas.
    pub(crate) async fn release(&mut self) -> Result<()> {
        while let Some(ptr) = self.owned.pop() {
            self.free(ptr).await?;
        }
        Ok(())
    }

    /// Calls an export, turning wasmtime errors into [`Error`]; after a
    /// trap, adds what the guest recorded about it.
    async fn call<P: WasmParams + Sync, R: WasmResults + Sync>(
        &mut self,
        name: &str,
        expected: &str,
        export: &Export<P, R>,
        params: P,
    ) -> Result<R> {
        let func = resolved(export, name, expected)?;
        self.call_func(name, &func, params).await
    }

    /// Calls `func` (export `name`), as [`CoreInstance::call`].
    async fn call_func<P: WasmParams + Sync, R: WasmResults + Sync>(
        &mut self,
        name: &str,
        func: &TypedFunc<P, R>,
        params: P,
    ) -> Result<R> {
        let e = match func.call_async(&mut self.store, params).await {
            Ok(r) => return Ok(r),
            Err(e) => e,
        };
        let mut err = classify(e, self.limits.timeout, self.limits.fuel, name);
        if let Error::Trap { message, .. } = &mut err {
            if name != wasm_abi::LAST_ERROR {
                if let Some(why) = self.panic_message().await {
                    *message = format!("{why}; {message}");
                    return Err(err);
                }
            }
        }
        // Nothing in `wasm_last_error`: what the guest printed, if anything.
        Err(self.store.data().stderr.explain(err))
    }

    async fn call_allocate(&mut self, size: i32) -> Result<i32> {
        let export = self.exports.allocate.clone();
        self.call(wasm_abi::ALLOCATE, sig::I32_TO_I32, &export, size)
            .await
    }

    async fn call_deallocate(&mut self, ptr: i32) -> Result<i32> {
        let export = self.exports.deallocate.clone();
        self.call(wasm_abi::DEALLOCATE, sig::I32_TO_I32, &export, ptr)
            .await
    }

    /// Reads the pair a pair-returning export returned, or the guest's error
    /// message if it returned 0. The pair's own area and the payload are
    /// adopted; returns the payload as (ptr, len).
    async fn take_pair(&mut self, ret: i32, what: &str) -> Result<(u32, u32)> {
        if ret == wasm_abi::ERROR_RESULT {
            return Err(self.guest_error().await);
        }
        self.adopt_pair(ret as u32, what)
    }

    fn adopt_pair(&mut self, ptr: u32, what: &str) -> Result<(u32, u32)> {
        self.adopt(ptr);
        let pair = memory::read_pair(self.memory_bytes(), ptr, what)?;
        self.adopt(pair.ptr);
        memory::slice(self.memory_bytes(), pair.ptr, pair.len, what)?;
        Ok((pair.ptr, pair.len))
    }

    /// The error a guest reported, read through the optional
    /// `wasm_last_error` export.
    async fn guest_error(&mut self) -> Error {
        match self.read_last_error().await {
            Ok(message) => Error::GuestReported { message },
            Err(e) => e,
        }
    }

    async fn read_last_error(&mut self) -> Result<Option<String>> {
        // Missing or mistyped, it gives no message: the guest's error stays
        // a reported error (never a caller's type error), found only after
        // the guest ran.
        if self.exports.last_error.is_err() {
            return Ok(None);
        }
        let export = self.exports.last_error.clone();
        let ret = self
            .call(wasm_abi::LAST_ERROR, sig::UNIT_TO_I32, &export, ())
            .await?;
        if ret == 0 {
            return Ok(None);
        }
        let (ptr, len) = self.adopt_pair(ret as u32, "wasm_last_error pair")?;
        // Only what will be shown is read: a capped, escaped prefix.
        let shown = len.min(crate::text::MAX_GUEST_TEXT as u32);
        let bytes = memory::slice(self.memory_bytes(), ptr, shown, "error message")?;
        let text = crate::text::guest_text_read(bytes, u64::from(len - shown));
        Ok((!text.is_empty()).then_some(text))
    }

    /// After a trap, what the guest recorded about it (a Rust guest's panic
    /// hook stores the panic message for `wasm_last_error`). Runs within
    /// the operation's deadline, which it does not extend: after a timeout
    /// it traps at once. The instance is about to be discarded, so nothing
    /// is freed; every read is still checked.
    async fn panic_message(&mut self) -> Option<String> {
        let func = self.exports.last_error.clone().ok()?;
        let ret = crate::deadline::finish_before(func.call_async(&mut self.store, ()))
            .await?
            .ok()?;
        if ret == 0 {
            return None;
        }
        let mem = self.memory_bytes();
        let pair = memory::read_pair(mem, ret as u32, "panic message pair").ok()?;
        let len = pair.len.min(crate::text::MAX_GUEST_TEXT as u32);
        let bytes = memory::slice(mem, pair.ptr, len, "panic message").ok()?;
        let text = crate::text::guest_text(bytes);
        (!text.is_empty()).then_some(text)
    }
}
