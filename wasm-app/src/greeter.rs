//! The greeter ABIs: the same function behind a C string interface and a
//! Rust (ptr, len) interface.
//!
//! C ABI: the host writes `name\0`, the guest returns a pointer to
//! `greeting\0`. Rust ABI: the host writes `name` and passes (ptr, len), the
//! guest returns a pointer to a [`wasm_abi::Pair`] describing the greeting.
//! Either way the name goes into the instance's kept input area (lent for
//! the call, as for Arrow data: no allocate/free pair per call), and the host
//! frees every area the guest returns. A greet is one operation under one
//! deadline (`Guest::run`).

use std::fmt;
use std::str::FromStr;

use crate::component::missing_world;
use crate::error::{Error, Result};
use crate::guest::{Entry, Guest, LentSlot};
use crate::memory::{self, DEFAULT_MAX_STRING};

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

/// `len` as a wasm32 length, or why a name that long cannot be passed.
fn name_len(len: usize) -> Result<u32> {
    u32::try_from(len)
        .ok()
        .filter(|l| *l <= i32::MAX as u32)
        .ok_or_else(|| {
            Error::InvalidArgument(format!(
                "a name of {len} bytes does not fit in a wasm32 memory"
            ))
        })
}

fn nul_in_c_name() -> Error {
    Error::InvalidArgument("a name passed through the C ABI cannot contain a NUL byte".into())
}

impl Guest {
    /// Calls the greeter through `abi`; returns the greeting.
    ///
    /// A component has one greeter, its WIT `greet`, whatever `abi` says;
    /// `abi` still decides what may be passed (no NUL through the C ABI).
    pub fn greet(&mut self, abi: StringAbi, name: &str) -> Result<String> {
        if self.is_component() {
            if abi == StringAbi::C && name.as_bytes().contains(&0) {
                return Err(nul_in_c_name());
            }
            return self.run(async |g| {
                let greeting = g
                    .call_component("greet", async |c| match &c.greeter {
                        Ok(w) => Ok(w.call_greet(&mut c.store, name).await),
                        Err(why) => Err(missing_world("greeter", "greet", why)),
                    })
                    .await?;
                if greeting.len() > DEFAULT_MAX_STRING {
                    return Err(Error::BadString(format!(
                        "greeting of {} bytes exceeds the {DEFAULT_MAX_STRING}-byte cap",
                        greeting.len()
                    )));
                }
                Ok(greeting)
            });
        }
        match abi {
            StringAbi::C => self.greet_c(name),
            StringAbi::Rust => self.greet_rust(name),
        }
    }

    /// The C ABI greeter.
    pub fn greet_c(&mut self, name: &str) -> Result<String> {
        if name.as_bytes().contains(&0) {
            return Err(nul_in_c_name());
        }
        let len = name_len(name.len() + 1)?;
        self.run(async |g| {
            g.require(Entry::GreetC)?;
            let ptr = g.lend(LentSlot::Data, len).await?;
            g.write(ptr, &[name.as_bytes(), &[0]])?;
            let ret = g.exports_greet_c(ptr as i32).await?;
            if ret == wasm_abi::ERROR_RESULT {
                return Err(g.guest_error().await);
            }
            g.adopt(ret as u32);
            let bytes =
                memory::read_cstr(g.memory_bytes(), ret as u32, DEFAULT_MAX_STRING, "greeting")?;
            Ok(memory::utf8(bytes, "greeting")?.to_owned())
        })
    }

    /// The Rust ABI greeter.
    pub fn greet_rust(&mut self, name: &str) -> Result<String> {
        let len = name_len(name.len())?;
        self.run(async |g| {
            g.require(Entry::GreetRust)?;
            let ptr = g.lend(LentSlot::Data, len).await?;
            g.write(ptr, &[name.as_bytes()])?;
            let ret = g.exports_greet_rust(ptr as i32, len as i32).await?;
            let (gptr, glen) = g.take_pair(ret, "greeting pair").await?;
            if glen as usize > DEFAULT_MAX_STRING {
                return Err(Error::BadString(format!(
                    "greeting of {glen} bytes exceeds the {DEFAULT_MAX_STRING}-byte cap"
                )));
            }
            let bytes = memory::slice(g.memory_bytes(), gptr, glen, "greeting")?;
            Ok(memory::utf8(bytes, "greeting")?.to_owned())
        })
    }
}
