//! The greeter ABIs: the same function behind a C string interface and a
//! Rust (ptr, len) interface.
//!
//! C ABI: the host writes `name\0`, the guest returns a pointer to
//! `greeting\0`. Rust ABI: the host writes `name` and passes (ptr, len), the
//! guest returns a pointer to a [`wasm_abi::Pair`] describing the greeting.
//! Either way the name goes into the instance's kept input area (lent for
//! the call, as for Arrow data: no allocate/free pair per call), and the host
//! frees every area the guest returns. A greet is one operation under one
//! deadline (`Instance::run`).

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::instance::{backend, Backend, Instance};

/// Longest greeting the host reads from a guest.
pub(crate) const MAX_GREETING: usize = 64 << 20;

/// Which of the two string ABIs to call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StringAbi {
    /// NUL-terminated strings (`wasm_memory_c_format_hello_world`).
    C,
    /// (ptr, len) in, pointer to a pair out (`wasm_memory_rust_format_hello_world`).
    Rust,
}

impl fmt::Display for StringAbi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StringAbi::C => "c",
            StringAbi::Rust => "rust",
        })
    }
}

impl FromStr for StringAbi {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "c" => Ok(StringAbi::C),
            "rust" => Ok(StringAbi::Rust),
            _ => Err(format!("unknown ABI '{s}' (expected 'c' or 'rust')")),
        }
    }
}

impl Instance {
    /// `answer() -> i32` (a component's WIT `answer`).
    pub(crate) fn answer(&mut self) -> Result<i32> {
        self.run(async |i| backend!(&mut i.kind, b => b.answer().await))
    }

    /// Calls the greeter through `abi`; returns the greeting.
    ///
    /// A component has one greeter, its WIT `greet`, whatever `abi` says;
    /// `abi` still decides what may be passed (no NUL through the C ABI).
    pub(crate) fn greet(&mut self, abi: StringAbi, name: &str) -> Result<String> {
        if abi == StringAbi::C && name.as_bytes().contains(&0) {
            return Err(Error::InvalidArgument(
                "a name passed through the C ABI cannot contain a NUL byte".into(),
            ));
        }
        self.run(async |i| backend!(&mut i.kind, b => b.greet(abi, name).await))
    }
}
