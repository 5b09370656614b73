//! The typed error at the library boundary.
//!
//! Every way a guest can misbehave maps to one variant, so an embedder can
//! match on what happened (and a CLI user reads one clear line).

use std::fmt;
use std::time::Duration;

use wasmtime::{Trap, WasmBacktrace};

use crate::text::guest_text;

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
    /// Size of the module file, in bytes.
    ModuleSize(u64),
    /// Wall-clock time spent compiling the module.
    CompileTime(Duration),
    /// Bytes of one guest result: its IPC stream and its decoded size
    /// (see [`Limits::max_output`](crate::Limits::max_output)).
    Output(u64),
    /// Bytes of one HTTP response body a guest receives.
    HttpResponse(u64),
    /// Time of one HTTP request of a guest, redirects included.
    HttpTime(Duration),
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Limit::Memory(b) => write!(f, "memory limit of {}", crate::text::format_size(*b)),
            Limit::Time(d) => write!(f, "time limit of {d:?}"),
            Limit::Fuel(n) => write!(f, "fuel limit of {n}"),
            Limit::TableElements(n) => write!(f, "table limit of {n} elements"),
            Limit::Instances(n) => write!(f, "instance limit of {n}"),
            Limit::ModuleSize(b) => {
                write!(f, "module size limit of {}", crate::text::format_size(*b))
            }
            Limit::CompileTime(d) => write!(f, "compile time limit of {d:?}"),
            Limit::Output(b) => write!(f, "output limit of {}", crate::text::format_size(*b)),
            Limit::HttpResponse(b) => write!(
                f,
                "HTTP response limit of {} (max-http-response)",
                crate::text::format_size(*b)
            ),
            Limit::HttpTime(d) => write!(f, "HTTP time limit of {d:?} (http-timeout)"),
        }
    }
}

/// What went wrong, as the host sees it.
///
/// ```
/// use wasm_app::{Error, Limit, Plugin, Policy};
///
/// // A guest that asks for more memory than its policy allows.
/// let wat = r#"(module (memory 1)
///   (func (export "answer") (result i32) (drop (memory.grow (i32.const 1000))) (i32.const 42)))"#;
/// let policy = Policy::default().with_max_memory(1 << 20);
/// let mut plugin = Plugin::from_bytes("grow.wat", wat.as_bytes(), policy)?;
/// match plugin.answer() {
///     Err(Error::LimitExceeded(Limit::Memory(max))) => assert_eq!(max, 1 << 20),
///     other => panic!("{other:?}"),
/// }
/// # Ok::<(), Error>(())
/// ```
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

    /// A policy that cannot be read or whose values make no sense.
    #[error("invalid policy: {0}")]
    InvalidPolicy(String),

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

impl From<arrow::error::ArrowError> for Error {
    fn from(e: arrow::error::ArrowError) -> Self {
        Error::Other(e.into())
    }
}

impl Error {
    /// Whether the instance that produced this error must be thrown away.
    ///
    /// A guest that reported an error through the ABI is still consistent,
    /// and so is one asked for an export it lacks (checked before any guest
    /// code runs); a guest that trapped, overran a limit, exited or handed
    /// out bad pointers is not, and the next call gets a fresh instance.
    pub fn poisons_instance(&self) -> bool {
        !matches!(
            self,
            Error::GuestReported { .. }
                | Error::MissingExport { .. }
                | Error::WrongSignature { .. }
                | Error::InvalidArgument(_)
                | Error::InvalidPolicy(_)
                | Error::PolicyDenied(_)
        )
    }
}

/// Raised (as the error of the growing instruction) when a guest asks for
/// more than its policy allows; the call then fails with this exact limit.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LimitHit(pub Limit);

impl fmt::Display for LimitHit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "module exceeded its {}", self.0)
    }
}

impl std::error::Error for LimitHit {}

/// What a host function fails with when the guest broke the contract of
/// its call (a bad pointer, say): the call then fails with exactly this
/// error instead of a generic trap.
#[derive(Debug)]
pub(crate) struct GuestFault(pub Error);

impl fmt::Display for GuestFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for GuestFault {}

/// Maps an error out of wasmtime to what happened, as the host sees it.
/// `timeout` and `fuel` are the policy's, for the limit errors; `during`
/// names the export or step in messages.
pub(crate) fn classify(
    err: wasmtime::Error,
    timeout: Duration,
    fuel: Option<u64>,
    during: &str,
) -> Error {
    if let Some(hit) = err.downcast_ref::<LimitHit>() {
        return Error::LimitExceeded(hit.0);
    }
    let err = match err.downcast::<GuestFault>() {
        Ok(fault) => return fault.0,
        Err(err) => err,
    };
    if let Some(exit) = err.downcast_ref::<wasmtime_wasi::I32Exit>() {
        return Error::Exited(exit.0);
    }
    // Frames name the guest's functions and modules: guest-chosen text.
    let backtrace = err
        .downcast_ref::<WasmBacktrace>()
        .map(|b| guest_text(b.to_string().as_bytes()))
        .filter(|b| !b.trim().is_empty());
    match err.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => Error::LimitExceeded(Limit::Time(timeout)),
        Some(Trap::OutOfFuel) => Error::LimitExceeded(Limit::Fuel(fuel.unwrap_or(0))),
        // wasmtime words it "call stack exhausted"; say what happened.
        Some(Trap::StackOverflow) => Error::Trap {
            message: format!("stack overflow ({}) (in {during})", Trap::StackOverflow),
            backtrace,
        },
        Some(trap) => Error::Trap {
            message: format!("{trap} (in {during})"),
            backtrace,
        },
        None if during == INSTANTIATION => Error::Instantiate(described(err)),
        None => Error::Trap {
            message: format!("{} (in {during})", described(err)),
            backtrace,
        },
    }
}

/// A wasmtime error as one line fit to show: its causes, without the wasm
/// backtrace, capped and escaped. Such errors quote the guest's own names
/// (imports, functions, modules), which a guest chooses.
pub(crate) fn described(err: wasmtime::Error) -> String {
    // The backtrace is attached as a context: leave it to the `backtrace`
    // field, not the message.
    let backtrace = err.downcast_ref::<WasmBacktrace>().map(|b| b.to_string());
    let err = anyhow::Error::from(err);
    let causes: Vec<String> = err
        .chain()
        .map(|c| c.to_string())
        .filter(|c| Some(c) != backtrace.as_ref())
        .collect();
    guest_text(causes.join(": ").as_bytes())
}

/// What [`classify`] calls instantiation (and `_initialize`'s host calls).
pub(crate) const INSTANTIATION: &str = "instantiation";
