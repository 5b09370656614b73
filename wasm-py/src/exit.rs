//! Interpreter exit while a stream's thread may call into Python.
//!
//! A `process_stream` thread reads its input through the C stream, and a
//! pyarrow reader over a Python generator takes the GIL to step it. Once the
//! interpreter is finalizing, taking the GIL ends the thread with
//! `pthread_exit`, which unwinds through Rust frames and aborts the process.
//! So an `atexit` hook ([`at_exit`]) closes the door first: from then on no
//! thread of ours enters a producer (reads fail, readers are leaked instead
//! of released), and the hook waits, without the GIL, for the threads
//! already inside to come out.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use pyo3::prelude::*;

/// Set by the exit hook: no more calls into producers.
static CLOSED: AtomicBool = AtomicBool::new(false);
/// Threads of ours inside a producer's callback right now.
static INSIDE: AtomicUsize = AtomicUsize::new(0);

/// How long the exit hook waits for a producer call (a generator step) to
/// return before letting the interpreter go on regardless.
const EXIT_WAIT: Duration = Duration::from_secs(10);

/// Leave to call into a producer; `None` once the interpreter is exiting.
pub(crate) struct Inside(());

impl Inside {
    pub(crate) fn enter() -> Option<Inside> {
        INSIDE.fetch_add(1, Ordering::SeqCst);
        // Checked after counting in: the hook either sees us, or we see it.
        if CLOSED.load(Ordering::SeqCst) {
            INSIDE.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        Some(Inside(()))
    }
}

impl Drop for Inside {
    fn drop(&mut self) {
        INSIDE.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Registered with `atexit` when the module is imported.
#[pyfunction]
pub(crate) fn _at_exit(py: Python<'_>) {
    CLOSED.store(true, Ordering::SeqCst);
    py.detach(|| {
        let start = Instant::now();
        while INSIDE.load(Ordering::SeqCst) > 0 && start.elapsed() < EXIT_WAIT {
            std::thread::sleep(Duration::from_millis(1));
        }
    });
}
