//! Guest module 2: an Arrow IPC processor.
//!
//! `wasm_memory_process_data_arrow(meta, data)` takes two IPC streams in
//! areas the host allocated: a one-row metadata stream naming a command and
//! its configuration (module `meta`), and a data stream of any schema. It
//! returns a pair holding an IPC stream, or 0 with a message for
//! `wasm_last_error`.
//!
//! Protocol:
//! - `data_len == 0` means "no data": nothing is decoded, and every command
//!   returns an empty payload (a pair of length 0: nothing to add);
//! - the flush call (config `flush` = `"true"`, `data_len == 0`) follows the
//!   last batch: stateless commands return an empty payload without checking
//!   their configuration, `count` returns its totals;
//! - the merge call (config `merge` = `"true"`) carries several instances'
//!   flush results as data: `count` returns their sum; a stateless command,
//!   whose flush returns nothing and so is never merged, fails it;
//! - bad input of any kind is an error, never a panic; should arrow panic
//!   anyway, the panic hook leaves the message for `wasm_last_error` before
//!   the instance traps.

mod columns;
mod commands;
mod count;
mod ipc;
mod layout;
mod meta;

#[cfg(feature = "core-abi")]
use std::ptr::NonNull;
#[cfg(feature = "core-abi")]
use std::sync::{Arc, Once};

pub use arrow::buffer::Buffer;

#[cfg(feature = "core-abi")]
use wasm_abi::guest;

use crate::meta::Command;

// The core ABI's exports. Feature `core-abi` (default); the component guest
// (`wasm-component-arrow`) turns it off so that only its WIT export is left.
#[cfg(feature = "core-abi")]
wasm_abi::export_guest_abi!();

/// ABI `wasm_memory_process_data_arrow: (meta_ptr, meta_len, data_ptr,
/// data_len: i32) -> i32`: a pointer to a pair holding the output IPC stream
/// (possibly empty), or 0 on error (see `wasm_last_error`).
#[cfg(feature = "core-abi")]
#[no_mangle]
pub extern "C" fn wasm_memory_process_data_arrow(
    meta_ptr: i32,
    meta_len: i32,
    data_ptr: i32,
    data_len: i32,
) -> i32 {
    install_panic_hook();
    match process(meta_ptr, meta_len, data_ptr, data_len) {
        Ok(bytes) => guest::give_pair(bytes),
        Err(message) => guest::fail(message),
    }
}

/// Records any panic's message for `wasm_last_error` (once per instance),
/// then runs the previous hook (stderr, or the test harness's output).
#[cfg(feature = "core-abi")]
fn install_panic_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            guest::record_panic(format!("guest panicked: {info}"));
            previous(info);
        }));
    });
}

#[cfg(feature = "core-abi")]
fn process(meta_ptr: i32, meta_len: i32, data_ptr: i32, data_len: i32) -> Result<Vec<u8>, String> {
    // SAFETY: the host keeps both inputs alive until this call returns, and
    // the slices do not outlive it.
    let meta = unsafe { guest::input(meta_ptr, meta_len) }
        .ok_or("metadata (ptr,len) is not inside a live area")?;
    // With no data the pointer may be anything (often 0): do not look it up.
    if data_len == 0 {
        return process_buffer(meta, None);
    }
    // SAFETY: as above.
    let data = unsafe { guest::input(data_ptr, data_len) }
        .ok_or("data (ptr,len) is not inside a live area")?;
    // The data is decoded where the host wrote it: an arrow buffer over the
    // area, with `lease` as its owner. The host may reuse the area for its
    // next call (the ABI lends inputs for one call), so no view of it may
    // outlive this one; the count below checks that every view was dropped.
    let lease = Arc::new(Lease);
    // SAFETY: `data` is valid for reads and unchanged until this call
    // returns; every buffer made from it is dropped before then (checked).
    let stream = unsafe {
        Buffer::from_custom_allocation(
            NonNull::from(data).cast::<u8>(),
            data.len(),
            Arc::clone(&lease) as Arc<dyn arrow::alloc::Allocation>,
        )
    };
    let result = process_buffer(meta, Some(stream));
    if Arc::strong_count(&lease) != 1 {
        return Err("internal error: a view of the input area outlived the call".to_string());
    }
    result
}

/// Owner of the arrow buffers over a lent input area (see `process`).
#[cfg(feature = "core-abi")]
struct Lease;

/// The whole processor over byte slices: `meta` and `data` are IPC stream
/// bytes (an empty `data` means "no data"). `data` is copied into an arrow
/// buffer first; [`process_buffer`] avoids that copy.
pub fn process_bytes(meta: &[u8], data: &[u8]) -> Result<Vec<u8>, String> {
    process_buffer(meta, (!data.is_empty()).then(|| Buffer::from(data)))
}

/// The whole processor: `meta` is the metadata IPC stream, `data` the data
/// IPC stream (`None`: no data), decoded in place; the result is the output
/// IPC stream (possibly empty) or the error message. The core export above
/// and the component guest (`wasm-component-arrow`) both call this.
pub fn process_buffer(meta: &[u8], data: Option<Buffer>) -> Result<Vec<u8>, String> {
    let request = meta::parse(meta)?;
    let data = data.as_ref().filter(|d| !d.is_empty());
    if request.flush {
        if let Some(d) = data {
            return Err(format!(
                "the flush call carries no data (data_len must be 0, got {})",
                d.len()
            ));
        }
        return match request.command {
            Command::Count => count::flush(),
            _ => Ok(Vec::new()),
        };
    }
    if request.merge {
        return match request.command {
            Command::Count => count::merge(data),
            other => Err(format!(
                "command '{}' keeps no state: it has nothing to merge",
                other.name()
            )),
        };
    }
    let config = &request.config;
    match request.command {
        Command::Test => commands::test(config, data),
        Command::Echo => commands::echo(data),
        Command::Replace => commands::replace(config, data),
        Command::Filter => commands::filter(config, data),
        Command::Tokenize => commands::tokenize(config, data),
        Command::Count => count::add(data),
    }
}

#[cfg(all(test, feature = "core-abi"))]
mod tests;
