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
    /// Size of the module file, in bytes.
    ModuleSize(u64),
    /// Wall-clock time spent compiling the module.
    CompileTime(Duration),
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
            Limit::ModuleSize(b) => {
                write!(f, "module size limit of {}", crate::policy::format_size(*b))
            }
            Limit::CompileTime(d) => write!(f, "compile time limit of {d:?}"),
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

/// The most bytes of guest-chosen text (an error or panic message) the host
/// keeps. Longer messages are cut, and say so.
pub const MAX_GUEST_TEXT: usize = 4096;

/// Guest-chosen bytes made fit for a log line or a terminal: invalid UTF-8
/// is replaced, every control character (escape sequences, newlines, NUL,
/// ...) is escaped, and the result is at most [`MAX_GUEST_TEXT`] bytes (plus
/// a note of how much was cut), so a guest can neither flood the host's
/// output nor drive its terminal.
pub fn guest_text(bytes: &[u8]) -> String {
    let read = &bytes[..bytes.len().min(MAX_GUEST_TEXT)];
    guest_text_read(read, (bytes.len() - read.len()) as u64)
}

/// As [`guest_text`], for the first bytes of a message of which `unread`
/// more bytes were left in guest memory.
pub(crate) fn guest_text_read(read: &[u8], unread: u64) -> String {
    let text = String::from_utf8_lossy(read);
    let text = text.trim();
    let mut out = String::with_capacity(text.len().min(MAX_GUEST_TEXT) + 32);
    let mut used = 0;
    for c in text.chars() {
        let before = out.len();
        if needs_escape(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
        if out.len() > MAX_GUEST_TEXT {
            out.truncate(before);
            break;
        }
        used += c.len_utf8();
    }
    let cut = unread + (text.len() - used) as u64;
    if cut > 0 {
        out.push_str(&format!(" … ({cut} more bytes cut)"));
    }
    out
}

/// Characters a guest could use to drive a terminal or make a line read
/// differently from what it holds: controls, and bidirectional overrides
/// and line separators.
pub(crate) fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
        )
}

/// `text` with control characters written as escapes (`\n`, `\u{1b}`).
pub fn escape_controls(text: &str) -> String {
    if !text.chars().any(needs_escape) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if needs_escape(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_text_is_capped_and_escaped() {
        let evil = format!("\x1b[2J\x1b]0;pwned\x07{}", "A".repeat(10 << 20));
        let shown = guest_text(evil.as_bytes());
        assert!(shown.len() < MAX_GUEST_TEXT + 200, "{}", shown.len());
        assert!(!shown.chars().any(char::is_control), "{shown:.80}");
        assert!(shown.starts_with("\\u{1b}[2J"), "{shown:.80}");
        assert!(
            shown.ends_with("more bytes cut)"),
            "{}",
            &shown[shown.len() - 40..]
        );
        assert_eq!(guest_text(b"plain message"), "plain message");
        assert_eq!(guest_text("a\u{202e}b".as_bytes()), "a\\u{202e}b");
        assert_eq!(guest_text(b"two\nlines\0"), "two\\nlines\\u{0}");
        let zeros = guest_text(&[0; 4096]);
        assert!(zeros.len() < MAX_GUEST_TEXT + 40, "{}", zeros.len());
        assert!(zeros.ends_with("more bytes cut)"));
    }
}
