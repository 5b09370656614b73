//! Compiling untrusted code under the policy's bounds.
//!
//! The module's size is checked before anything parses it. Cranelift cannot
//! be interrupted, and a few hundred KiB of pathological code can keep it
//! busy for minutes, so compilation runs on a thread of its own and the
//! caller waits at most the policy's `compile-timeout`. A compilation that
//! overruns is abandoned: its thread runs to its end and its result is
//! dropped. At most [`MAX_RUNAWAY`] abandoned compilations may still be
//! running at once; while they are, further compilations are refused, so a
//! stream of pathological modules cannot pile up threads or cores.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use anyhow::Context;

use crate::error::LimitHit;
use crate::error::{Error, Limit, Result};
use crate::policy::Limits;

/// Abandoned compilations that may still be running before new ones are
/// refused.
pub const MAX_RUNAWAY: usize = 2;

/// Abandoned compilations still running, process-wide.
static RUNAWAY: AtomicUsize = AtomicUsize::new(0);

/// Refuses a module larger than the policy's `max-module-size`.
pub(crate) fn check_size(bytes: &[u8], limits: &Limits) -> Result<()> {
    if bytes.len() as u64 > limits.max_module_size {
        return Err(Error::LimitExceeded(Limit::ModuleSize(
            limits.max_module_size,
        )));
    }
    Ok(())
}

/// Reads a module file as [`Runtime::load`](crate::Runtime::load) does:
/// a regular file only, at most `limits.max_module_size` bytes of it. A
/// path naming `/dev/zero` or a FIFO must not make the host read, or open,
/// forever (a FIFO is opened non-blocking, then refused).
pub fn read_module(path: &Path, limits: &Limits) -> Result<Vec<u8>> {
    let bytes =
        crate::safe_fs::read_regular(path, limits.max_module_size).map_err(|e| Error::Load {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
    check_size(&bytes, limits)?;
    Ok(bytes)
}

/// Runs `work` (a compilation) on its own thread and waits for it at most
/// `limit`. An overrun is an error carrying [`LimitHit`] with
/// [`Limit::CompileTime`], which [`into_error`] turns into
/// `Error::LimitExceeded`.
pub(crate) fn bounded<T: Send + 'static>(
    limit: Duration,
    work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    // wasmtime compiles on a thread pool that a fork does not carry over:
    // in such a child, compiling would wait out the timeout and fail.
    crate::fork::check()?;
    if RUNAWAY.load(Ordering::Acquire) >= MAX_RUNAWAY {
        anyhow::bail!(
            "{MAX_RUNAWAY} earlier compilations overran their compile-timeout and are still \
             running; try again when they have finished"
        );
    }
    let (tx, rx) = mpsc::sync_channel(1);
    // Set by whichever side gives up on the other first: the waiter on
    // timeout, the worker when it finishes.
    let abandoned = Arc::new(AtomicBool::new(false));
    let flag = abandoned.clone();
    std::thread::Builder::new()
        .name("wasm-compile".into())
        .spawn(move || {
            let _ = tx.send(work());
            if flag.swap(true, Ordering::AcqRel) {
                RUNAWAY.fetch_sub(1, Ordering::AcqRel);
            }
        })
        .context("cannot start a compilation thread")?;
    match rx.recv_timeout(limit) {
        Ok(result) => result,
        Err(mpsc::RecvTimeoutError::Timeout) => {
            if !abandoned.swap(true, Ordering::AcqRel) {
                RUNAWAY.fetch_add(1, Ordering::AcqRel);
            }
            Err(anyhow::Error::new(LimitHit(Limit::CompileTime(limit))))
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            anyhow::bail!("the compilation thread ended without a result")
        }
    }
}

/// The error for a failed load: a limit if one was hit, else `other`.
pub(crate) fn into_error(e: anyhow::Error, other: impl FnOnce(anyhow::Error) -> Error) -> Error {
    match e.downcast_ref::<LimitHit>() {
        Some(hit) => Error::LimitExceeded(hit.0),
        None => other(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrunning_work_is_abandoned_and_counted() {
        let started = std::time::Instant::now();
        let err = bounded(Duration::from_millis(20), || {
            std::thread::sleep(Duration::from_millis(300));
            Ok(1)
        })
        .expect_err("the work overruns");
        assert!(started.elapsed() < Duration::from_millis(250));
        let err = into_error(err, Error::Other);
        assert!(
            matches!(err, Error::LimitExceeded(Limit::CompileTime(d)) if d == Duration::from_millis(20)),
            "{err:?}"
        );
        assert_eq!(bounded(Duration::from_secs(5), || Ok(7)).ok(), Some(7));
        // The abandoned thread finishes and is no longer counted.
        std::thread::sleep(Duration::from_millis(400));
        assert_eq!(RUNAWAY.load(Ordering::Acquire), 0);
    }

    #[test]
    fn oversized_modules_are_refused_before_parsing() {
        let limits = Limits {
            max_module_size: 8,
            ..Limits::default()
        };
        assert!(check_size(&[0; 8], &limits).is_ok());
        assert!(matches!(
            check_size(&[0; 9], &limits),
            Err(Error::LimitExceeded(Limit::ModuleSize(8)))
        ));
    }
}
