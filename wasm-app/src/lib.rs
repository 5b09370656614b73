//! `wasm-app`: load untrusted WebAssembly modules at run time and exchange
//! data with them, safely and fast.
//!
//! The embedding API is small:
//!
//! - [`Plugin`]: a module ready to call. [`Plugin::call`] passes bytes to
//!   any export and returns bytes (the generic "pair ABI" of [`wasm_abi`]);
//!   [`Plugin::process`] runs an Arrow command over a [`RecordBatch`]. After
//!   a failure that leaves the guest untrustworthy (trap, limit, bad
//!   pointer) the next call gets a fresh instance.
//! - [`Policy`]: what a module may do, deny by default (directories,
//!   environment, memory, time, fuel, output size, ...); built in code or
//!   read from TOML.
//! - [`Runtime`] / [`Module`]: an engine with its cache of compiled modules,
//!   and a compiled module to share between threads ([`pipeline`] runs one
//!   over many batches on many threads).
//! - [`Error`]: what every fallible function returns; match on what
//!   happened.
//!
//! Guests are core modules or components (the WIT worlds of `wit/`); both
//! run through the same API.
//!
//! # Calling an export
//!
//! Any language works; here the guest is WebAssembly text. Its `shout`
//! follows the pair ABI: the host lends the input as (ptr, len) in memory
//! the guest allocated with `wasm_allocate`, and the guest returns a
//! pointer to a (ptr, len) pair holding its output.
//!
//! ```
//! use std::time::Duration;
//! use wasm_app::{Error, Limit, Plugin, Policy};
//!
//! let wat = r#"(module
//!   (memory (export "memory") 1)
//!   (global $next (mut i32) (i32.const 1024))
//!   (func $alloc (export "wasm_allocate") (param $n i32) (result i32)
//!     (local $p i32)
//!     (local.set $p (global.get $next))
//!     (global.set $next (i32.add (local.get $p) (i32.and (i32.add (local.get $n) (i32.const 63)) (i32.const -64))))
//!     (local.get $p))
//!   (func (export "wasm_deallocate") (param i32) (result i32) (i32.const 0))
//!   (func (export "shout") (param $ptr i32) (param $len i32) (result i32)
//!     (local $i i32) (local $c i32) (local $pair i32)
//!     (block $done (loop $next
//!       (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
//!       (local.set $c (i32.load8_u (i32.add (local.get $ptr) (local.get $i))))
//!       (if (i32.and (i32.ge_u (local.get $c) (i32.const 97)) (i32.le_u (local.get $c) (i32.const 122)))
//!         (then (i32.store8 (i32.add (local.get $ptr) (local.get $i)) (i32.sub (local.get $c) (i32.const 32)))))
//!       (local.set $i (i32.add (local.get $i) (i32.const 1)))
//!       (br $next)))
//!     (local.set $pair (call $alloc (i32.const 8)))
//!     (i32.store (local.get $pair) (local.get $ptr))
//!     (i32.store offset=4 (local.get $pair) (local.get $len))
//!     (local.get $pair))
//!   (func (export "spin") (param i32 i32) (result i32) (loop $l (br $l)) (i32.const 0)))"#;
//!
//! let policy = Policy::default()
//!     .with_max_memory(16 << 20)
//!     .with_timeout(Duration::from_millis(200));
//! let mut plugin = Plugin::from_bytes("shout.wat", wat.as_bytes(), policy)?;
//! assert_eq!(plugin.call("shout", "hello")?, b"HELLO");
//! assert_eq!(plugin.call_str("shout", "wasm")?, "WASM");
//!
//! // What a guest does wrong is an error naming it, never a crash or a hang.
//! match plugin.call("spin", b"") {
//!     Err(Error::LimitExceeded(Limit::Time(t))) => assert_eq!(t, Duration::from_millis(200)),
//!     other => panic!("{other:?}"),
//! }
//! match plugin.call("whisper", b"") {
//!     Err(Error::MissingExport { name, .. }) => assert_eq!(name, "whisper"),
//!     other => panic!("{other:?}"),
//! }
//! // The instance that timed out was replaced: the plugin still serves.
//! assert_eq!(plugin.call("shout", "again")?, b"AGAIN");
//! # Ok::<(), Error>(())
//! ```
//!
//! # Processing Arrow data
//!
//! A module of the Arrow ABI (here `wasm-module2`, built by `make guests`)
//! takes record batches and returns record batches: the host copies the
//! batch into guest memory once, and decodes the result in place.
//!
//! ```
//! # use std::path::Path;
//! use std::sync::Arc;
//! use arrow::array::{Int64Array, RecordBatch, StringArray};
//! use wasm_app::{Plugin, Policy};
//!
//! # let dir = wasm_abi::built::modules_dir(Path::new(env!("CARGO_MANIFEST_DIR")), &[wasm_abi::built::MODULE2]).expect("make guests");
//! # let path = dir.join(wasm_abi::built::MODULE2);
//! let mut plugin = Plugin::from_file(path, Policy::default())?;
//! let batch = RecordBatch::try_from_iter([
//!     ("id", Arc::new(Int64Array::from(vec![1, 2])) as _),
//!     ("name", Arc::new(StringArray::from(vec!["a", "b"])) as _),
//! ])?;
//! let out = plugin.process("echo", &batch)?;
//! assert_eq!(out, vec![batch]);
//! # Ok::<(), wasm_app::Error>(())
//! ```
//!
//! [`RecordBatch`]: arrow::array::RecordBatch

mod abi;
#[doc(hidden)]
pub mod bench;
mod buffer_pool;
mod cache;
mod compile;
mod contain;
mod deadline;
mod epoch;
mod error;
mod files;
mod fork;
mod format;
pub mod formats;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod grants;
mod host;
mod hostfn;
pub mod inspect;
mod instance;
mod ipc_check;
mod ipc_input;
mod ipc_read;
mod memory;
mod module;
mod net;
mod parquet_input;
pub mod pipeline;
mod plugin;
pub mod policy;
mod pool;
mod runtime;
mod safe_fs;
#[cfg(feature = "flight")]
pub mod serve;
mod sink;
mod stderr_tail;
mod string_abi;
pub mod text;
mod text_table;
pub mod transport;

pub use cache::CacheOutcome;
pub use compile::read_module;
pub use error::{Error, Limit, Result};
pub use hostfn::{HostFunctions, GUEST_LOG_TARGET};
pub use instance::AbiSupport;
pub use module::Module;
pub use plugin::Plugin;
pub use policy::{DirGrant, Limits, Policy};
pub use pool::Pool;
pub use runtime::{EngineOptions, Runtime};
pub use string_abi::StringAbi;
pub use transport::Table;
