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

use crate::error::{Error, Result};
use crate::instance::{backend, Backend, Instance};
use crate::string_abi::StringAbi;

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
