//! The contract between the `wasm-app` host and its guests.
//!
//! Every module, in any language, implements the same few exports over the
//! guest's linear memory:
//!
//! | export | signature | meaning |
//! |---|---|---|
//! | `memory` | memory | the guest's linear memory |
//! | `wasm_allocate` | `(size: i32) -> i32` | pointer to `size` fresh bytes, 0 on failure |
//! | `wasm_deallocate` | `(ptr: i32) -> i32` | 0 freed, -1 unknown pointer |
//! | `answer` | `() -> i32` | 42 |
//! | `wasm_memory_c_format_hello_world` | `(name: i32) -> i32` | NUL-terminated in and out |
//! | `wasm_memory_rust_format_hello_world` | `(ptr: i32, len: i32) -> i32` | pointer to a [`Pair`] |
//! | `wasm_memory_process_data_arrow` | `(meta_ptr, meta_len, data_ptr, data_len: i32) -> i32` | pointer to a [`Pair`] |
//! | `wasm_last_error` (optional) | `() -> i32` | pointer to a [`Pair`] holding a UTF-8 message |
//! | any other name (the generic call) | `(ptr: i32, len: i32) -> i32` | bytes in, pointer to a [`Pair`] of bytes out, 0 on error |
//!
//! A core module may also import the host's functions (HTTP to granted
//! hosts, a log, an embedder's key-value lookup or its own functions) from
//! the import module `wasm_host`: see [`host`].
//!
//! An empty input is lent like any other; an allocator may answer 0 for
//! `wasm_allocate(0)` (as C's `malloc(0)` may), and the host then passes
//! (0, 0). The generic call
//! ("pair ABI") is what lets a module in any language offer
//! its own exports without new host code: `wasm-app call --module M EXPORT`
//! and `Plugin::call` pass bytes in and get bytes out. A component offers the
//! same through a top-level function of one of the types in [`component`].
//!
//! Ownership: an area the host allocates is lent to the guest for one call.
//! The host may keep it and write the next call's input into it instead of
//! freeing it (wasm-app does so for every input), so a guest must not keep
//! pointers into its inputs once a call returns: copy what must outlive it.
//! Areas the guest returns are the host's to free with `wasm_deallocate`.
//!
//! This crate is `no_std` unless the `guest` feature is on, so the host can use
//! it without pulling in anything and a guest can use its registry. Off wasm32
//! it also has [`built`], which locates the guests `make guests` builds (for
//! the host's tests, benches and CLI): it uses `std`, which every host has.
#![cfg_attr(not(feature = "guest"), no_std)]

// The guest feature brings std already; naming it twice is an error.
#[cfg(all(not(feature = "guest"), not(target_arch = "wasm32")))]
extern crate std;

// The wire forms of the host functions ([`host::http`]) build `Vec`s.
extern crate alloc;

#[cfg(not(target_arch = "wasm32"))]
pub mod built;
#[cfg(feature = "guest")]
pub mod guest;
#[cfg(feature = "guest")]
pub mod guest_host;
pub mod host;

/// Name of the guest's exported linear memory.
pub const MEMORY: &str = "memory";
/// `(size: i32) -> i32`: pointer to `size` fresh bytes, [`ALLOC_FAILED`] on failure.
pub const ALLOCATE: &str = "wasm_allocate";
/// `(ptr: i32) -> i32`: [`DEALLOC_OK`] or [`DEALLOC_UNKNOWN`].
pub const DEALLOCATE: &str = "wasm_deallocate";
/// `() -> i32`: always [`ANSWER`].
pub const ANSWER_FN: &str = "answer";
/// `(name: i32) -> i32`: NUL-terminated UTF-8 in, NUL-terminated UTF-8 out.
pub const GREET_C: &str = "wasm_memory_c_format_hello_world";
/// `(ptr: i32, len: i32) -> i32`: UTF-8 (ptr,len) in, pointer to a [`Pair`] out.
pub const GREET_RUST: &str = "wasm_memory_rust_format_hello_world";
/// `(meta_ptr, meta_len, data_ptr, data_len: i32) -> i32`: pointer to a [`Pair`]
/// holding an Arrow IPC stream, or 0 on error.
pub const PROCESS_ARROW: &str = "wasm_memory_process_data_arrow";
/// Optional `() -> i32`: pointer to a [`Pair`] holding the last error message.
pub const LAST_ERROR: &str = "wasm_last_error";
/// WASI reactor initialiser, called once before any other export if present.
pub const INITIALIZE: &str = "_initialize";

/// The core exports' types, as WebAssembly text (for messages).
pub mod sig {
    /// `wasm_allocate`, `wasm_deallocate`, the C greeter.
    pub const I32_TO_I32: &str = "(func (param i32) (result i32))";
    /// `answer`, `wasm_last_error`.
    pub const UNIT_TO_I32: &str = "(func (result i32))";
    /// The Rust greeter and every export of the generic call.
    pub const PAIR_TO_I32: &str = "(func (param i32 i32) (result i32))";
    /// The Arrow processor.
    pub const QUAD_TO_I32: &str = "(func (param i32 i32 i32 i32) (result i32))";
    /// `_initialize`.
    pub const INIT: &str = "(func)";
}

/// What a component export must look like to be called with bytes in and
/// bytes out (WIT), in the order the host tries them.
pub mod component {
    /// Bytes in, bytes out; `err` is the guest's message.
    pub const BYTES_RESULT: &str = "func(input: list<u8>) -> result<list<u8>, string>";
    /// Bytes in, bytes out.
    pub const BYTES: &str = "func(input: list<u8>) -> list<u8>";
    /// Text in, text out (the input must be UTF-8).
    pub const STRING: &str = "func(input: string) -> string";
    /// Text in, text out or the guest's message.
    pub const STRING_RESULT: &str = "func(input: string) -> result<string, string>";
    /// The component worlds' names (`wit/`).
    pub const GREETER_WORLD: &str = "greeter";
    pub const ARROW_WORLD: &str = "arrow-processor";
    /// The WIT functions of those worlds.
    pub const ANSWER: &str = "answer";
    pub const GREET: &str = "greet";
    pub const PROCESS: &str = "process";
}

/// What `answer()` returns.
pub const ANSWER: i32 = 42;
/// `wasm_allocate` result meaning "no memory".
pub const ALLOC_FAILED: i32 = 0;
/// `wasm_deallocate` result: the area was live and is now freed.
pub const DEALLOC_OK: i32 = 0;
/// `wasm_deallocate` result: the pointer is not a live area (unknown or freed twice).
pub const DEALLOC_UNKNOWN: i32 = -1;
/// A pair-returning export returns this to report an error (see [`LAST_ERROR`]).
pub const ERROR_RESULT: i32 = 0;

/// Alignment of every area `wasm_allocate` hands out. 64 bytes is Arrow's
/// recommended buffer alignment, so an IPC message written at the start of an
/// area can be decoded in place with every buffer aligned for its type.
pub const ALLOC_ALIGN: usize = 64;

/// Greeting produced by both greeters: `Hello World, {name}!`.
pub const GREETING_PREFIX: &str = "Hello World, ";
/// See [`GREETING_PREFIX`].
pub const GREETING_SUFFIX: &str = "!";

/// Names of the fields of the Arrow metadata stream's single row.
pub mod meta {
    /// utf8: the command to run (`test`, `echo`, `replace`, ...).
    pub const COMMAND: &str = "command";
    /// struct of utf8 fields: the command's configuration, one field per key.
    pub const CONFIG: &str = "config";
    /// Config key of the flush call (value `"true"`, no data): sent to every
    /// instance after its last batch, so a stateful command emits its state.
    pub const FLUSH: &str = "flush";
    /// Config key of the merge call (value `"true"`): when several instances'
    /// flush calls returned a stream, the host calls the command once more,
    /// on one instance, with their results concatenated as one data stream;
    /// the command returns them combined into one result (never an empty
    /// payload), which replaces them. A command whose flush returns nothing
    /// is never merged; one that cannot merge must fail the call.
    pub const MERGE: &str = "merge";
}

/// A (pointer, length) pair as it lies in guest memory: 8 bytes, the payload
/// pointer then the payload length, each a little-endian `u32`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct Pair {
    /// Offset of the payload in guest memory.
    pub ptr: u32,
    /// Length of the payload in bytes.
    pub len: u32,
}

impl Pair {
    /// Size of an encoded pair in bytes.
    pub const SIZE: usize = 8;

    /// Encodes the pair in its wire layout.
    pub fn to_bytes(self) -> [u8; Self::SIZE] {
        let mut out = [0u8; Self::SIZE];
        out[..4].copy_from_slice(&self.ptr.to_le_bytes());
        out[4..].copy_from_slice(&self.len.to_le_bytes());
        out
    }

    /// Decodes a pair from its wire layout.
    pub fn from_bytes(bytes: [u8; Self::SIZE]) -> Self {
        let [a, b, c, d, e, f, g, h] = bytes;
        Pair {
            ptr: u32::from_le_bytes([a, b, c, d]),
            len: u32::from_le_bytes([e, f, g, h]),
        }
    }

    /// One past the last payload byte, or `None` if `ptr + len` overflows `u32`.
    pub fn end(self) -> Option<u32> {
        self.ptr.checked_add(self.len)
    }
}

/// Formats the greeting both greeters return, so host tests and guests agree.
#[cfg(feature = "guest")]
pub fn greeting(name: &str) -> String {
    let mut s = String::with_capacity(GREETING_PREFIX.len() + name.len() + 1);
    s.push_str(GREETING_PREFIX);
    s.push_str(name);
    s.push_str(GREETING_SUFFIX);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair_round_trips_little_endian() {
        let p = Pair {
            ptr: 0x0102_0304,
            len: 0xA0B0_C0D0,
        };
        let b = p.to_bytes();
        assert_eq!(b, [4, 3, 2, 1, 0xD0, 0xC0, 0xB0, 0xA0]);
        assert_eq!(Pair::from_bytes(b), p);
    }

    #[test]
    fn pair_end_detects_overflow() {
        assert_eq!(Pair { ptr: 10, len: 5 }.end(), Some(15));
        assert_eq!(
            Pair {
                ptr: u32::MAX,
                len: 1
            }
            .end(),
            None
        );
    }
}
