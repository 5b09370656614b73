//! Use after `fork(2)`: refused, never a hang.
//!
//! The library runs threads of its own: each engine's epoch ticker
//! ([`Ticker`](crate::epoch::Ticker)) and the tokio runtime behind every
//! deadline (`deadline.rs`). A forked child inherits their state but not the
//! threads, so in the child no epoch would advance and no timer would fire:
//! a guest's endless loop would run forever. Python's `multiprocessing`
//! forks by default, so this is a real way in.
//!
//! Invariant: once any of those threads has started, a child forked from
//! the process refuses every guest operation ([`check`] in
//! `Deadline::block_on`) with an error that says what to do. A process that
//! forks *before* its first use of the library is unaffected. The check is
//! one atomic load; the flag is set by a `pthread_atfork` child handler.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;

use crate::error::{Error, Result};

/// Set in a child forked after the library's threads started.
static FORKED: AtomicBool = AtomicBool::new(false);

/// Call before starting a thread the library relies on.
pub(crate) fn threads_starting() {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        extern "C" fn in_child() {
            // Only an atomic store: async-signal-safe, as a handler must be.
            FORKED.store(true, Ordering::Relaxed);
        }
        // SAFETY: registers a handler that only stores to a static atomic.
        // If registration fails (ENOMEM), forks go unnoticed as before.
        unsafe {
            libc::pthread_atfork(None, None, Some(in_child));
        }
    });
}

/// Fails in a child forked after the library's threads started.
pub(crate) fn check() -> Result<()> {
    if FORKED.load(Ordering::Relaxed) {
        return Err(Error::Other(anyhow::anyhow!(
            "this process was forked after it had used wasm-app, and the timer threads \
             that enforce timeouts do not survive a fork: load and call modules in a \
             process started with 'spawn' (Python: multiprocessing.get_context(\"spawn\")), \
             or only after the fork"
        )));
    }
    Ok(())
}
