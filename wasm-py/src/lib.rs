//! The native half of the Python package `wasm_study` (the other half is
//! `python/wasm_study`): wasm-app's `Plugin` for Python, with Arrow through
//! the C Stream Interface.
//!
//! - `plugin.rs`: the `Plugin` class (policy, calls, pickling);
//! - `policy.rs`: keyword arguments to a `Policy`, and its pickled state;
//! - `arrow_io.rs`: Arrow in and out, zero-copy; `guest_output.rs`: what
//!   pyarrow must not read in a guest's result;
//! - `stream.rs`: `process_stream`, a pipeline on a thread of its own;
//!   `exit.rs`: its thread and interpreter exit;
//! - `runtimes.rs`: engines shared between plugins;
//! - `errors.rs`: `wasm_app::Error` to the classes of `wasm_study.errors`;
//! - `bench.rs`: the Rust side of the Python benchmark (hidden).

mod arrow_io;
mod bench;
mod errors;
mod exit;
mod guest_output;
mod plugin;
mod policy;
mod runtimes;
mod stream;

use pyo3::prelude::*;

// What the binding relies on: a module is shared by threads, an instance
// moves between them (never used by two at once).
const _: () = {
    const fn send<T: Send>() {}
    const fn send_sync<T: Send + Sync>() {}
    send::<wasm_app::Plugin>();
    send_sync::<wasm_app::Module>();
};

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<plugin::Plugin>()?;
    m.add_class::<stream::BatchStream>()?;
    m.add_function(wrap_pyfunction!(plugin::_restore, m)?)?;
    m.add_function(wrap_pyfunction!(bench::_time_process, m)?)?;
    m.add("DEFAULT_BATCH_SIZE", wasm_app::pipeline::DEFAULT_BATCH_SIZE)?;
    let at_exit = wrap_pyfunction!(exit::_at_exit, m)?;
    m.py()
        .import("atexit")?
        .call_method1("register", (at_exit,))?;
    Ok(())
}
