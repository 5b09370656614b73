//! The engine's epoch ticker: the clock behind every store's epoch
//! deadline.
//!
//! Invariant: while any store of an engine may run, a [`Ticker`] advances
//! that engine's epoch in step with the wall clock, one tick per [`TICK`].
//! A deadline in ticks ([`Deadline::epoch_ticks`](crate::deadline::Deadline::epoch_ticks))
//! is thus a deadline in time, and no wasm loop runs unbounded.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use wasmtime::Engine;

use crate::error::{Error, Result};

/// Epoch period: the granularity of timeouts.
pub(crate) const TICK: Duration = Duration::from_millis(5);

/// Advances an engine's epoch until dropped.
pub(crate) struct Ticker {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Ticker {
    pub(crate) fn start(engine: Engine) -> Result<Self> {
        crate::fork::threads_starting();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::Builder::new()
            .name("wasm-epoch".into())
            .spawn(move || {
                // The epoch follows the wall clock, not the number of
                // sleeps: a sleep that overruns (a busy machine) is caught
                // up at once, so deadlines in ticks stay deadlines in time.
                let start = Instant::now();
                let mut ticks: u128 = 0;
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(TICK);
                    let due = start.elapsed().as_nanos() / TICK.as_nanos();
                    while ticks < due {
                        engine.increment_epoch();
                        ticks += 1;
                    }
                }
            })
            .map_err(|e| {
                Error::Other(anyhow::anyhow!("cannot start the epoch ticker thread: {e}"))
            })?;
        Ok(Ticker {
            stop,
            handle: Some(handle),
        })
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
