//! One deadline per top-level guest operation, over wasm code and host
//! calls alike.
//!
//! Epoch interruption stops wasm code, never a host call: a guest blocked in
//! WASI (`poll_oneoff` on a clock of 584 years, `open` of a FIFO, a read
//! that never ends) would hold the calling thread for as long as the host
//! call lasts. So every guest operation (instantiation with `_initialize`,
//! an export call, the reading of the error after a trap, a `process` with
//! its flush) runs as one future under one [`Deadline`]:
//!
//! - the future runs on the calling thread ([`Handle::block_on`]) inside
//!   `tokio::time::timeout_at`, so a host call that awaits (a WASI sleep,
//!   file I/O sent to tokio's blocking pool) is cut off when the deadline
//!   passes: the future is dropped and the caller poisons the instance;
//! - pure wasm code is stopped through the store's epoch deadline
//!   ([`Deadline::epoch_ticks`]): there the store yields to the executor
//!   (`prepare_store`), and the same `timeout_at` decides by the wall clock, so a
//!   loop ends at the deadline, never before it.
//!
//! The tokio runtime is process-wide and never dropped (a `static`): one
//! worker thread drives the timers; WASI's file I/O runs on its blocking
//! pool, where a thread stuck in `open(2)` on a FIFO stays stuck, but never
//! holds up a caller or the process's exit.
//!
//! Calling the library from inside a tokio runtime: from a multi-thread
//! runtime the call runs under `block_in_place` (the worker hands its other
//! tasks on); a current-thread runtime cannot block in place, and tokio
//! does not tell its `block_on` from its `spawn_blocking` threads, so a call
//! from any thread of one is refused with a clear error: make it from a
//! plain thread.

use std::future::Future;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tokio::runtime::{Handle, Runtime, RuntimeFlavor};

use wasmtime::Store;

use crate::epoch::TICK;
use crate::error::{Error, Limit, Result};
use crate::policy::Limits;

/// Epoch deadlines are added to the engine's current epoch (wrapping on
/// overflow): cap them far below `u64::MAX`. 2^62 ticks of 5 ms is 730
/// million years.
const MAX_TICKS: u64 = 1 << 62;

/// When one top-level operation must be over.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline {
    /// `None`: the timeout is too large to be a point in time (a timeout of
    /// centuries saturates to "never" instead of wrapping).
    at: Option<Instant>,
    /// The policy's timeout, for the error.
    timeout: Duration,
}

impl Deadline {
    /// A deadline `timeout` from now.
    pub(crate) fn after(timeout: Duration) -> Self {
        Deadline {
            at: Instant::now().checked_add(timeout),
            timeout,
        }
    }

    /// The error of an operation that ran out of time.
    pub(crate) fn exceeded(&self) -> Error {
        Error::LimitExceeded(Limit::Time(self.timeout))
    }

    /// Epoch ticks left until the deadline, rounded up, plus one (the
    /// current tick may be about to end); at least 1, at most [`MAX_TICKS`].
    pub(crate) fn epoch_ticks(&self) -> u64 {
        let Some(at) = self.at else {
            return MAX_TICKS;
        };
        let left = at.saturating_duration_since(Instant::now()).as_nanos();
        let ticks = left.div_ceil(TICK.as_nanos()).saturating_add(1);
        u64::try_from(ticks)
            .unwrap_or(MAX_TICKS)
            .clamp(1, MAX_TICKS)
    }

    /// Runs `fut` to completion on the calling thread, or until the
    /// deadline: then `fut` is dropped (with whatever host call it was in)
    /// and the result is the time limit error.
    pub(crate) fn block_on<R>(&self, fut: impl Future<Output = Result<R>>) -> Result<R> {
        crate::fork::check()?;
        let rt = runtime()?;
        // The future runs on this thread: `finish_before` finds the instant.
        CURRENT.with(|c| c.set(self.at));
        let timed = async {
            match self.at {
                Some(at) => tokio::time::timeout_at(at.into(), fut)
                    .await
                    .unwrap_or_else(|_| Err(self.exceeded())),
                None => fut.await,
            }
        };
        match Handle::try_current() {
            Err(_) => rt.block_on(timed),
            Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(|| rt.block_on(timed))
            }
            Ok(_) => Err(Error::Other(anyhow::anyhow!(
                "wasm-app calls block: they cannot run inside a current-thread tokio \
                 runtime (its spawn_blocking included); call from a plain thread"
            ))),
        }
    }
}

thread_local! {
    /// The deadline of the operation this thread is running.
    static CURRENT: std::cell::Cell<Option<Instant>> = const { std::cell::Cell::new(None) };
}

/// Runs `fut` (a step of the current operation) until the operation's
/// deadline; `None` if it did not finish by then. The operation itself then
/// still returns what it has (after a trap, the trap without its message)
/// instead of the time limit error, as the outer timeout polls it first.
pub(crate) async fn finish_before<F: Future>(fut: F) -> Option<F::Output> {
    match CURRENT.with(std::cell::Cell::get) {
        Some(at) => tokio::time::timeout_at(at.into(), fut).await.ok(),
        None => Some(fut.await),
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

/// Once per store, before its first operation.
///
/// Fuel: a store of a fuel-metering engine starts with none, and a policy
/// without a fuel limit must still run, so it gets all there is (2^64
/// units: more than any call can burn, never refilled). Not in [`arm`]:
/// `get_fuel` fails, building an error, on an engine that does not meter
/// fuel, which would cost every call an allocation.
///
/// Epoch: at its epoch deadline the store yields to the executor instead of
/// trapping: the operation's wall-clock deadline ([`Deadline::block_on`],
/// tokio's `timeout_at`) then decides, so a timeout never fires early when
/// the ticker catches up after oversleeping, and late by at most one tick.
/// The guest resumes if time is left, and yields again at every later tick.
pub(crate) fn prepare_store<T: 'static>(store: &mut Store<T>, limits: &Limits) -> Result<()> {
    if limits.fuel.is_none() && store.get_fuel().is_ok() {
        store
            .set_fuel(u64::MAX)
            .map_err(|e| Error::Other(e.into()))?;
    }
    store.epoch_deadline_callback(|_| Ok(wasmtime::UpdateDeadline::Yield(1)));
    Ok(())
}

/// The process-wide runtime: one worker (timers), WASI's blocking pool.
fn runtime() -> Result<&'static Handle> {
    static RUNTIME: OnceLock<std::result::Result<Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            crate::fork::threads_starting();
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("wasm-app-io")
                .enable_time()
                .enable_io()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map(Runtime::handle)
        .map_err(|e| Error::Other(anyhow::anyhow!("cannot start the host's I/O runtime: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extreme_timeouts_saturate() {
        for timeout in [
            Duration::MAX,
            Duration::from_nanos(u64::MAX),
            Duration::from_secs(100 * 365 * 86_400),
        ] {
            let d = Deadline::after(timeout);
            let ticks = d.epoch_ticks();
            assert!(ticks > 1 && ticks <= MAX_TICKS, "{timeout:?}: {ticks}");
            assert_eq!(d.block_on(async { Ok(7) }).unwrap(), 7);
        }
        assert_eq!(Deadline::after(Duration::ZERO).epoch_ticks(), 1);
    }

    #[test]
    fn a_pending_future_ends_at_the_deadline() {
        let d = Deadline::after(Duration::from_millis(50));
        let start = Instant::now();
        let r: Result<()> = d.block_on(std::future::pending());
        assert!(matches!(r, Err(Error::LimitExceeded(Limit::Time(_)))));
        assert!(start.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn refuses_a_current_thread_runtime_and_works_in_a_multi_thread_one() {
        let ct = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let r = ct
            .block_on(async { Deadline::after(Duration::from_secs(1)).block_on(async { Ok(1) }) });
        assert!(matches!(r, Err(Error::Other(_))));
        let mt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let r = mt
            .block_on(async { Deadline::after(Duration::from_secs(1)).block_on(async { Ok(2) }) });
        assert_eq!(r.unwrap(), 2);
    }
}
