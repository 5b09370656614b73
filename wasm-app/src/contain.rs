//! Containing panics of third-party decoders.
//!
//! The host validates what it can before handing bytes to a library (IPC is
//! checked message by message, `ipc_check.rs`), but the parquet crate still
//! panics on some malformed files deep inside page decoding (a dictionary-
//! encoded page with no dictionary, `unimplemented!` for a union column).
//! [`contain`] runs such a call under `catch_unwind` and turns a panic into
//! an error naming what was being read, with the panic's own message.
//! While a thread is inside [`contain`], the process's panic hook stays
//! silent for it, so the CLI still prints one `error:` line.
//!
//! This needs `panic = "unwind"`, which every profile of the workspace uses
//! (the `dist` profile included, for this reason).

use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Once;

thread_local! {
    /// Nesting depth of [`contain`] on this thread.
    static DEPTH: Cell<usize> = const { Cell::new(0) };
    /// The message of the last contained panic on this thread.
    static MESSAGE: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Wraps the panic hook once: inside [`contain`] it records the message
/// instead of printing it; elsewhere the previous hook runs as before.
fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if DEPTH.with(Cell::get) > 0 {
                let text = info
                    .payload()
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| info.payload().downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".into());
                MESSAGE.with(|m| *m.borrow_mut() = Some(text));
            } else {
                previous(info);
            }
        }));
    });
}

/// Runs `f`; a panic inside it becomes an error: "`what` failed: <panic>".
pub(crate) fn contain<T>(what: &str, f: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<T> {
    install_hook();
    DEPTH.with(|d| d.set(d.get() + 1));
    let result = catch_unwind(AssertUnwindSafe(f));
    DEPTH.with(|d| d.set(d.get() - 1));
    result.unwrap_or_else(|_| {
        let message = MESSAGE
            .with(|m| m.borrow_mut().take())
            .unwrap_or_else(|| "unknown panic".into());
        Err(anyhow::anyhow!(
            "{what} failed inside a library: {}",
            crate::text::guest_text(message.as_bytes())
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::contain;

    #[test]
    fn a_panic_becomes_an_error_with_its_message() {
        let err = contain("reading x.parquet", || -> anyhow::Result<()> {
            panic!("Decoder for dict should have been set")
        })
        .expect_err("the panic is an error");
        assert_eq!(
            err.to_string(),
            "reading x.parquet failed inside a library: Decoder for dict should have been set"
        );
        assert_eq!(contain("nothing", || Ok(5)).ok(), Some(5));
    }
}
