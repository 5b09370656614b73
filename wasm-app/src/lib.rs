//! `wasm-app`: load untrusted WebAssembly modules at run time and exchange
//! data with them, safely and fast.
//!
//! - [`Runtime`]: one engine per process, an epoch ticker for timeouts, and a
//!   verified cache of compiled modules ([`cache`]).
//! - [`Policy`]: what a module may do, deny by default ([`policy`]).
//! - [`LoadedModule`] / [`Guest`]: a compiled module and a live instance,
//!   every guest pointer checked ([`memory`]).
//! - [`Plugin`]: an instance that is replaced after any failure.
//! - Guests are core modules (the ABI of `wasm-abi`) or components (the WIT
//!   worlds of `wit/`, [`component`]); both run through the same API.
//! - The ABIs: [`greeter`] (C and Rust string ABIs) and [`arrow_abi`] (IPC
//!   streams), with host-side Arrow helpers in [`transport`].

pub mod arrow_abi;
pub mod bench;
pub mod cache;
pub mod compile;
pub mod component;
mod contain;
mod deadline;
pub mod engine;
pub mod error;
mod files;
pub mod formats;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod grants;
pub mod greeter;
pub mod guest;
pub mod host;
pub mod inspect;
pub mod ipc_check;
mod ipc_input;
pub mod ipc_read;
pub mod memory;
mod parquet_input;
pub mod pipeline;
pub mod plugin;
pub mod policy;
pub mod pool;
pub mod safe_fs;
pub mod sink;
mod stderr_tail;
pub mod text_table;
pub mod transport;

pub use engine::{EngineOptions, LoadedModule, Runtime};
pub use error::{Error, Limit, Result};
pub use greeter::StringAbi;
pub use guest::{AbiSupport, Guest};
pub use plugin::Plugin;
pub use policy::{DirGrant, Limits, Policy};
pub use transport::Table;
