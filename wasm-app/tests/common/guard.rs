//! Hang guards: a host that hangs fails the test instead of stalling the run.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use wasm_app::{Error, Plugin, StringAbi};

/// Runs `f` on another thread and fails the test, naming `what`, if it does
/// not return within `limit` (or panics).
pub fn within<T: Send + 'static>(
    limit: Duration,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(limit) {
        Ok(v) => v,
        Err(RecvTimeoutError::Timeout) => panic!("{what} did not return within {limit:?}"),
        Err(RecvTimeoutError::Disconnected) => panic!("{what} panicked"),
    }
}

/// `p.greet(abi, name)` under a 20 s hang guard: the plugin back, the
/// result, and how long the greet took.
pub fn timed_greet(
    mut p: Plugin,
    abi: StringAbi,
    name: &'static str,
) -> (Plugin, Result<String, Error>, Duration) {
    within(Duration::from_secs(20), "the guest call", move || {
        let start = Instant::now();
        let r = p.greet(abi, name);
        (p, r, start.elapsed())
    })
}
