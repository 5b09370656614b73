//! `wasm-app`: load untrusted WebAssembly modules at run time and exchange
//! data with them, safely and fast.
//!
//! The embedding API is small:
//!
//! - [`Plugin`]: a module ready to call. [`Plugin::call`] passes bytes to
//!   any export and returns bytes (the generic "pair ABI" of [`wasm_abi`]);
//!   [`Plugin::process`] runs an Arrow command over a [`RecordBatch`];
//!   after any failure that leaves the guest untrustworthy the next call
//!   gets a fresh instance.
//! - [`Policy`]: what a module may do, deny by default (directories,
//!   environment, memory, time, fuel, output size, ...); built in code or
//!   read from TOML.
//! - [`Runtime`] / [`Module`]: an engine with its cache of compiled modules,
//!   and a compiled module to share between threads ([`pipeline`] runs one
//!   over many batches on many threads).
//! - [`Error`]: every fallible function returns it; match on what happened.
//!
//! Guests are core modules or components (the WIT worlds of `wit/`); both
//! run through the same API.
//!
//! ```no_run
//! use wasm_app::{Error, Plugin, Policy};
//!
//! let policy = Policy::default().with_max_memory(64 << 20);
//! let mut plugin = Plugin::from_file("target/wasm-modules/wasm_module2.wasm", policy)?;
//! # let batch = arrow::array::RecordBatch::new_empty(std::sync::Arc::new(arrow::datatypes::Schema::empty()));
//! match plugin.process("echo", &batch) {
//!     Ok(batches) => println!("{} batches back", batches.len()),
//!     Err(Error::LimitExceeded(limit)) => eprintln!("stopped: {limit}"),
//!     Err(e) => return Err(e),
//! }
//! # Ok::<(), Error>(())
//! ```
//!
//! [`RecordBatch`]: arrow::array::RecordBatch

mod abi;
#[doc(hidden)]
pub mod bench;
mod buffer_pool;
#[doc(hidden)]
pub mod cache;
mod compile;
mod contain;
mod deadline;
mod epoch;
mod error;
mod files;
mod format;
pub mod formats;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod grants;
mod host;
pub mod inspect;
mod instance;
mod ipc_check;
mod ipc_input;
mod ipc_read;
mod memory;
mod module;
mod parquet_input;
pub mod pipeline;
mod plugin;
pub mod policy;
mod runtime;
mod safe_fs;
mod sink;
mod stderr_tail;
mod string_abi;
pub mod text;
mod text_table;
pub mod transport;

pub use cache::CacheOutcome;
pub use error::{Error, Limit, Result};
pub use instance::AbiSupport;
pub use module::Module;
pub use plugin::Plugin;
pub use policy::{DirGrant, Limits, Policy};
pub use runtime::{EngineOptions, Runtime};
pub use string_abi::StringAbi;
pub use transport::Table;
