//! The typed error at the library boundary.
//!
//! Every way a guest can misbehave maps to one variant, so an embedder can
//! match on what happened (and a CLI user reads one clear line).

use std::fmt;
use std::time::Duration;

/// Convenience alias used across the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A resource limit from the module's [`Policy`](crate::Policy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Linear memory per instance, in bytes.
    Memory(u64),
    /// Wall-clock time per call.
    Time(Duration),
    /// Fuel (roughly, wasm instructions) per call.
    Fuel(u64),
    /// Table elements per instance.
    TableElements(u64),
    /// Live instances of one module at once.
    Instances(u32),
    /// Bytes of one guest result: its IPC stream and its decoded size
    /// (see [`Limits::max_output`](crate::Limits::max_output)).
    Output(u64),
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Limit::Memory(b) => write!(f, "memory limit of {}", crate::policy::format_size(*b)),
            Limit::Time(d) => write!(f, "time limit of {d:?}"),
            Limit::Fuel(n) => write!(f, "fuel limit of {n}"),
            Limit::TableElements(n) => write!(f, "table limit of {n} elements"),
            Limit::Instances(n) => write!(f, "instance limit of {n}"),
            Limit::Output(b) => write!(f, "output limit of {}", crate::policy::format_size(*b)),
        }
    }
}

/// What went wrong, as the host sees it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The module file could not be read, parsed, validated or compiled.
    #[error("cannot load module {path}: {reason}")]
    Load { path: String, reason: String },

    /// The module does not export something the called ABI needs.
    #[error("module does not export `{name}` {expected}: it does not implement this ABI")]
    MissingExport { name: String, expected: String },

    /// The export exists but with another type.
    #[error("export `{name}` has type {found}, expected {expected}")]
    WrongSignature {
        name: String,
        expected: String,
        found: String,
    },

    /// The module imports something the policy does not provide.
    #[error("module cannot be instantiated: {0}")]
    Instantiate(String),

    /// The guest trapped (`unreachable`, out-of-bounds access, stack overflow, ...).
    #[error("guest trapped: {message}")]
    Trap {
        message: String,
        /// The wasm backtrace, when wasmtime captured one.
        backtrace: Option<String>,
    },

    /// The guest hit one of its limits.
    #[error("module exceeded its {0}")]
    LimitExceeded(Limit),

    /// The policy refused something before any guest code ran.
    #[error("policy denied: {0}")]
    PolicyDenied(String),

    /// The guest returned the ABI's error value; its message if it gave one.
    #[error("guest reported an error{}", message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    GuestReported { message: Option<String> },

    /// A pointer or length from the guest does not fit its memory.
    #[error("guest returned a bad pointer: {0}")]
    BadPointer(String),

    /// A string from the guest is not valid UTF-8, or is unterminated.
    #[error("guest returned a bad string: {0}")]
    BadString(String),

    /// The guest broke the allocation contract (`wasm_allocate` /
    /// `wasm_deallocate`).
    #[error("guest allocator misbehaved: {0}")]
    Allocator(String),

    /// The guest called `proc_exit`.
    #[error("guest exited with status {0}")]
    Exited(i32),

    /// The caller passed something the ABI cannot carry.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// Anything else, with its context chain.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl Error {
    /// Whether the instance that produced this error must be thrown away.
    ///
    /// A guest that reported an error through the ABI is still consistent; a
    /// guest that trapped, overran a limit, exited or handed out bad pointers
    /// is not, and the next call gets a fresh instance.
    pub fn poisons_instance(&self) -> bool {
        !matches!(
            self,
            Error::GuestReported { .. } | Error::InvalidArgument(_) | Error::PolicyDenied(_)
        )
    }
}
