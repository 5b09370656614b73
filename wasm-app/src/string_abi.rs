//! Which string ABI a greeter call uses (the greeter ABIs are in
//! `abi/greeter.rs`), and how long a greeting may be.

use std::fmt;
use std::str::FromStr;

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
