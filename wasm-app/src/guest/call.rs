//! Running guest operations: one deadline per top-level operation, the call
//! of one export, the mapping of what went wrong to [`Error`], and the one
//! place where an error poisons the instance ([`Guest::run`]).

use wasmtime::{Store, Trap, WasmBacktrace, WasmParams, WasmResults};

use super::{core_only, resolved, sig, Export, ExportError, Exports, Guest, Kind};
use crate::component::{missing_world, ComponentGuest};
use crate::deadline::Deadline;
use crate::error::{Error, Limit, Result};
use crate::host::LimitHit;
use crate::memory;
use crate::policy::Limits;
use crate::stderr_tail::StderrTail;

impl Guest {
    /// Runs one top-level operation under one deadline (the policy's
    /// timeout from now), for wasm code and host calls alike.
    ///
    /// The one place where errors poison: any error out of `op` (a trap, a
    /// limit, a bad pointer or string from the guest, an allocator that
    /// breaks its contract, the deadline) that
    /// [poisons](Error::poisons_instance) marks the instance unusable. When
    /// `op` ends otherwise, the areas the guest returned during it are
    /// handed back to `wasm_deallocate`, within the same deadline.
    pub(crate) fn run<R>(&mut self, op: impl AsyncFnOnce(&mut Guest) -> Result<R>) -> Result<R> {
        if self.poisoned {
            return Err(Error::Other(anyhow::anyhow!(
                "instance is unusable after an earlier failure; create a new one"
            )));
        }
        let deadline = Deadline::after(self.limits.timeout);
        self.owned.clear();
        self.stderr_tail().clear();
        let armed = match &mut self.kind {
            Kind::Core(c) => arm(&mut c.store, &self.limits, &deadline),
            Kind::Component(c) => arm(&mut c.store, &self.limits, &deadline),
        };
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
        result
    }

    /// Takes ownership of an area the guest returned: it is freed when the
    /// operation ends.
    pub(crate) fn adopt(&mut self, ptr: u32) {
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

    /// Calls into a component: runs `f`, classifies its error. `func` names
    /// the WIT function in messages. Only inside [`Guest::run`].
    pub(crate) async fn call_component<R>(
        &mut self,
        func: &str,
        f: impl AsyncFnOnce(&mut ComponentGuest) -> Result<wasmtime::Result<R>>,
    ) -> Result<R> {
        let Kind::Component(c) = &mut self.kind else {
            return Err(Error::Other(anyhow::anyhow!(
                "`{func}` is a component function, and this is a core module"
            )));
        };
        match f(c).await? {
            Ok(r) => Ok(r),
            Err(e) => Err(c
                .store
                .data()
                .stderr
                .explain(classify(e, &self.limits, func))),
        }
    }

    /// What the guest last wrote to stderr ([`crate::stderr_tail`]).
    fn stderr_tail(&self) -> &StderrTail {
        match &self.kind {
            Kind::Core(c) => &c.store.data().stderr,
            Kind::Component(c) => &c.store.data().stderr,
        }
    }

    /// Calls an export, turning wasmtime errors into [`Error`]; after a
    /// trap, adds what the guest recorded about it. Only inside
    /// [`Guest::run`].
    async fn call<P: WasmParams + Sync, R: WasmResults + Sync>(
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
        let e = match func.call_async(&mut core.store, params).await {
            Ok(r) => return Ok(r),
            Err(e) => e,
        };
        let mut err = classify(e, &self.limits, name);
        if let Error::Trap { message, .. } = &mut err {
            if name != wasm_abi::LAST_ERROR {
                if let Some(why) = self.panic_message().await {
                    *message = format!("{why}; {message}");
                    return Err(err);
                }
            }
        }
        // Nothing in `wasm_last_error`: what the guest printed, if anything.
        Err(self.stderr_tail().explain(err))
    }

    pub(crate) async fn call_allocate(&mut self, size: i32) -> Result<i32> {
        self.call(wasm_abi::ALLOCATE, sig::I32_TO_I32, |e| &e.allocate, size)
            .await
    }

    pub(crate) async fn call_deallocate(&mut self, ptr: i32) -> Result<i32> {
        self.call(
            wasm_abi::DEALLOCATE,
            sig::I32_TO_I32,
            |e| &e.deallocate,
            ptr,
        )
        .await
    }

    pub(crate) async fn exports_process(&mut self, args: (i32, i32, i32, i32)) -> Result<i32> {
        self.call(
            wasm_abi::PROCESS_ARROW,
            sig::QUAD_TO_I32,
            |e| &e.process,
            args,
        )
        .await
    }

    pub(crate) async fn exports_greet_c(&mut self, ptr: i32) -> Result<i32> {
        self.call(wasm_abi::GREET_C, sig::I32_TO_I32, |e| &e.greet_c, ptr)
            .await
    }

    pub(crate) async fn exports_greet_rust(&mut self, ptr: i32, len: i32) -> Result<i32> {
        self.call(
            wasm_abi::GREET_RUST,
            sig::PAIR_TO_I32,
            |e| &e.greet_rust,
            (ptr, len),
        )
        .await
    }

    /// `answer() -> i32` (a component's WIT `answer`).
    pub fn answer(&mut self) -> Result<i32> {
        if self.is_component() {
            return self.run(async |g| {
                g.call_component("answer", async |c| match &c.greeter {
                    Ok(w) => Ok(w.call_answer(&mut c.store).await),
                    Err(why) => Err(missing_world("greeter", "answer", why)),
                })
                .await
            });
        }
        self.run(async |g| {
            g.call(wasm_abi::ANSWER_FN, sig::UNIT_TO_I32, |e| &e.answer, ())
                .await
        })
    }

    /// Reads the pair a pair-returning export returned, or the guest's error
    /// message if it returned 0. The pair's own area and the payload are
    /// adopted; returns the payload as (ptr, len).
    pub(crate) async fn take_pair(&mut self, ret: i32, what: &str) -> Result<(u32, u32)> {
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
    pub(crate) async fn guest_error(&mut self) -> Error {
        match self.read_last_error().await {
            Ok(message) => Error::GuestReported { message },
            Err(e) => e,
        }
    }

    async fn read_last_error(&mut self) -> Result<Option<String>> {
        if matches!(self.core()?.exports.last_error, Err(ExportError::Missing)) {
            return Ok(None);
        }
        let ret = self
            .call(
                wasm_abi::LAST_ERROR,
                sig::UNIT_TO_I32,
                |e| &e.last_error,
                (),
            )
            .await?;
        if ret == 0 {
            return Ok(None);
        }
        let (ptr, len) = self.adopt_pair(ret as u32, "wasm_last_error pair")?;
        // Only what will be shown is read: a capped, escaped prefix.
        let shown = len.min(crate::error::MAX_GUEST_TEXT as u32);
        let bytes = memory::slice(self.memory_bytes(), ptr, shown, "error message")?;
        let text = crate::error::guest_text_read(bytes, u64::from(len - shown));
        Ok((!text.is_empty()).then_some(text))
    }

    /// After a trap, what the guest recorded about it (a Rust guest's panic
    /// hook stores the panic message for `wasm_last_error`). Runs within
    /// the operation's deadline, which it does not extend: after a timeout
    /// it traps at once. The instance is about to be discarded, so nothing
    /// is freed; every read is still checked.
    async fn panic_message(&mut self) -> Option<String> {
        let Kind::Core(core) = &mut self.kind else {
            return None;
        };
        let func = core.exports.last_error.clone().ok()?;
        let ret = crate::deadline::finish_before(func.call_async(&mut core.store, ()))
            .await?
            .ok()?;
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
}

/// Arms a store for one top-level operation: the epoch deadline of
/// `deadline` and, if the policy sets one, its fuel budget. Runs before
/// every operation, so it does no more.
pub(crate) fn arm<T>(store: &mut Store<T>, limits: &Limits, deadline: &Deadline) -> Result<()> {
    store.set_epoch_deadline(deadline.epoch_ticks());
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
pub(crate) fn unmetered_fuel<T>(store: &mut Store<T>, limits: &Limits) -> Result<()> {
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
