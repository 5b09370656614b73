//! All reads and writes of guest memory go through here.
//!
//! Invariants:
//! - a (ptr, len) from the guest is used only after `ptr + len` is checked
//!   (without overflow) against the memory's current size;
//! - C strings are searched for their NUL only up to a length cap;
//! - every area a guest returns in an operation is adopted and freed when
//!   the operation ends (`Instance::run`), on success and on error alike
//!   (after a trap the instance is discarded instead, so nothing is called
//!   on it);
//! - inputs go into [`Lent`] areas the host keeps per instance and rewrites
//!   on every call (the ABI lends an input to the guest for one call only),
//!   so a call costs no allocate/free pair for its input. Every write into
//!   them is bounds-checked again, since the guest may have changed anything
//!   in between.

use wasm_abi::Pair;

use crate::error::{Error, Result};

/// `len` bytes at `ptr`, if they lie inside `mem`.
pub fn slice<'m>(mem: &'m [u8], ptr: u32, len: u32, what: &str) -> Result<&'m [u8]> {
    let end = ptr
        .checked_add(len)
        .ok_or_else(|| Error::BadPointer(format!("{what}: {ptr:#x} + {len} overflows 32 bits")))?;
    mem.get(ptr as usize..end as usize).ok_or_else(|| {
        Error::BadPointer(format!(
            "{what}: bytes {ptr:#x}..{end:#x} are outside guest memory of {} bytes",
            mem.len()
        ))
    })
}

/// The [`Pair`] stored at `ptr`.
pub fn read_pair(mem: &[u8], ptr: u32, what: &str) -> Result<Pair> {
    let raw = slice(mem, ptr, Pair::SIZE as u32, what)?;
    let mut b = [0u8; Pair::SIZE];
    b.copy_from_slice(raw);
    Ok(Pair::from_bytes(b))
}

/// The bytes of the NUL-terminated string at `ptr`, without the NUL; the
/// search stops at the end of memory or after `cap` bytes.
pub fn read_cstr<'m>(mem: &'m [u8], ptr: u32, cap: usize, what: &str) -> Result<&'m [u8]> {
    let start = ptr as usize;
    if start >= mem.len() {
        return Err(Error::BadPointer(format!(
            "{what}: {ptr:#x} is outside guest memory of {} bytes",
            mem.len()
        )));
    }
    let window = &mem[start..mem.len().min(start.saturating_add(cap.saturating_add(1)))];
    // `CStr` searches with core's word-at-a-time memchr.
    match std::ffi::CStr::from_bytes_until_nul(window) {
        Ok(s) => Ok(s.to_bytes()),
        Err(_) if window.len() > cap => Err(Error::BadString(format!(
            "{what}: no NUL terminator within {cap} bytes"
        ))),
        Err(_) => Err(Error::BadString(format!(
            "{what}: no NUL terminator before the end of guest memory"
        ))),
    }
}

/// Validates UTF-8, naming where it breaks.
pub fn utf8<'a>(bytes: &'a [u8], what: &str) -> Result<&'a str> {
    std::str::from_utf8(bytes).map_err(|e| Error::BadString(format!("{what} is not UTF-8: {e}")))
}

/// Checks an area `wasm_allocate(len)` returned at `ptr` (not 0): it lies in
/// guest memory and overlaps none of the `live` areas (ptr, len).
pub(crate) fn check_allocated(mem: &[u8], ptr: u32, len: u32, live: &[(u32, u32)]) -> Result<()> {
    slice(mem, ptr, len, "wasm_allocate result").map_err(|e| Error::Allocator(e.to_string()))?;
    // Intervals in u64 (a 4 GiB memory ends at 2^32); empty areas count
    // as one byte, since the guest still hands out a distinct pointer.
    let span = |p: u32, l: u32| (p as u64, p as u64 + l.max(1) as u64);
    let (a0, a1) = span(ptr, len);
    if let Some((b0, b1)) = live
        .iter()
        .map(|&(p, l)| span(p, l))
        .find(|&(b0, b1)| a0 < b1 && b0 < a1)
    {
        return Err(Error::Allocator(format!(
            "wasm_allocate returned {a0:#x}..{a1:#x}, overlapping the live area {b0:#x}..{b1:#x}"
        )));
    }
    Ok(())
}

/// An input area kept by the host across calls: `cap` bytes at `ptr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Lent {
    pub ptr: u32,
    pub cap: u32,
}

impl Lent {
    /// Room for `len` bytes with some slack, so that batches of varying size
    /// do not reallocate on every new largest one: rounded up to 64 KiB
    /// (a wasm page) above 64 KiB, to 64 bytes below.
    pub fn capacity_for(len: u32) -> u32 {
        let unit = if len > 1 << 16 { 1 << 16 } else { 64 };
        len.checked_next_multiple_of(unit)
            .filter(|c| *c <= i32::MAX as u32)
            .unwrap_or(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slice_checks_bounds_and_overflow() {
        let mem = [1u8; 16];
        assert_eq!(slice(&mem, 4, 4, "x").unwrap(), &[1, 1, 1, 1]);
        assert!(slice(&mem, 16, 0, "x").is_ok());
        assert!(matches!(slice(&mem, 14, 4, "x"), Err(Error::BadPointer(_))));
        assert!(matches!(
            slice(&mem, u32::MAX, 2, "x"),
            Err(Error::BadPointer(_))
        ));
    }

    #[test]
    fn cstr_respects_cap_and_memory_end() {
        let mem = b"abc\0defg";
        assert_eq!(read_cstr(mem, 0, 10, "s").unwrap(), b"abc");
        assert_eq!(read_cstr(mem, 3, 10, "s").unwrap(), b"");
        assert!(matches!(
            read_cstr(mem, 4, 10, "s"),
            Err(Error::BadString(_))
        ));
        assert!(matches!(
            read_cstr(mem, 0, 2, "s"),
            Err(Error::BadString(_))
        ));
        assert!(matches!(
            read_cstr(mem, 8, 2, "s"),
            Err(Error::BadPointer(_))
        ));
    }

    #[test]
    fn pair_reads_little_endian() {
        let mut mem = vec![0u8; 12];
        mem[4..12].copy_from_slice(&Pair { ptr: 7, len: 9 }.to_bytes());
        assert_eq!(read_pair(&mem, 4, "p").unwrap(), Pair { ptr: 7, len: 9 });
        assert!(read_pair(&mem, 5, "p").is_err());
    }
}
