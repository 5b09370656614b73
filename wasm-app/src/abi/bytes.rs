//! The generic call: any export that takes bytes and returns bytes.
//!
//! A core module's export has the pair ABI's type
//! ([`wasm_abi::sig::PAIR_TO_I32`]): the host lends the input as (ptr, len),
//! the guest returns a pointer to a [`wasm_abi::Pair`] holding the output,
//! or 0 for an error it explains through `wasm_last_error`. A component's
//! export has one of the WIT types of [`wasm_abi::component`]. Either way
//! the output is bounded by the policy's output limit, and the call is one
//! operation under one deadline.

use crate::error::Result;
use crate::instance::{backend, Backend, Instance};

impl Instance {
    /// Calls `export` with `input`; returns its output bytes.
    pub(crate) fn call_bytes(&mut self, export: &str, input: &[u8]) -> Result<Vec<u8>> {
        self.check_input(&[], &[input])?;
        self.run(async |i| backend!(&mut i.kind, b => b.call_bytes(export, input).await))
    }
}
