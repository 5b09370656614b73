//! Guest-side half of the ABI: a registry of live areas behind
//! `wasm_allocate` / `wasm_deallocate`, result pairs and the last error.
//!
//! Invariants:
//! - every pointer handed to the host is a key of the registry until the host
//!   frees it; freeing an unknown or already freed pointer returns
//!   [`DEALLOC_UNKNOWN`] and touches nothing;
//! - raw areas are aligned to [`ALLOC_ALIGN`];
//! - results built by the guest (`Vec<u8>`) are registered as they are, with
//!   no copy, and dropped when the host frees them.
//!
//! Use [`export_guest_abi!`](crate::export_guest_abi) in a guest crate to
//! export `wasm_allocate`, `wasm_deallocate` and `wasm_last_error`.

use std::alloc::{alloc, dealloc, Layout};
use std::collections::HashMap;
use std::sync::{Mutex, TryLockError};

use rustc_hash::FxBuildHasher;

use crate::{Pair, ALLOC_ALIGN, ALLOC_FAILED, DEALLOC_OK, DEALLOC_UNKNOWN, ERROR_RESULT};

/// One live area owned by the registry.
enum Area {
    /// Allocated by `wasm_allocate` for the host to fill; the address is kept
    /// as `usize` because raw pointers are not `Send`.
    Raw(usize, Layout),
    /// Produced by the guest and handed out without copying.
    Owned(Vec<u8>),
}

impl Area {
    fn addr(&self) -> usize {
        match self {
            Area::Raw(addr, _) => *addr,
            Area::Owned(v) => v.as_ptr() as usize,
        }
    }

    fn size(&self) -> usize {
        match self {
            Area::Raw(_, layout) => layout.size(),
            Area::Owned(v) => v.len(),
        }
    }
}

/// Keyed by the pointer as the ABI carries it (a wasm32 address; on a native
/// test build the low 32 bits, which is enough for the registry's own tests).
///
/// Fx hashing, not std's SipHash: every call looks areas up several times,
/// and the keys are addresses the guest chose itself, so there is no one to
/// defend against hash flooding.
struct Registry {
    areas: HashMap<u32, Area, FxBuildHasher>,
    last_error: Option<String>,
}

lazy_static::lazy_static! {
    static ref REGISTRY: Mutex<Registry> = Mutex::new(Registry {
        areas: HashMap::with_hasher(FxBuildHasher),
        last_error: None,
    });
}

/// Message of a panic, written by [`record_panic`] from a panic hook.
///
/// Kept apart from the registry because a panic may happen while the
/// registry lock is held; the hook must never wait for it.
static PANIC_MESSAGE: Mutex<Option<String>> = Mutex::new(None);

fn registry() -> std::sync::MutexGuard<'static, Registry> {
    // A poisoned lock only means a panic happened while it was held; the map
    // itself is still consistent (every insert/remove is a single call).
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// Wasm32 pointers fit in `u32`; the ABI passes them as `i32`.
fn key(ptr: usize) -> u32 {
    ptr as u32
}

/// `wasm_allocate`: `size` fresh bytes aligned to [`ALLOC_ALIGN`], or 0.
/// A zero size still gets a distinct live area, so the host can always free
/// what it allocated.
pub fn allocate(size: i32) -> i32 {
    let Ok(size) = usize::try_from(size) else {
        return ALLOC_FAILED;
    };
    let Ok(layout) = Layout::from_size_align(size.max(1), ALLOC_ALIGN) else {
        return ALLOC_FAILED;
    };
    // SAFETY: the layout has a non-zero size.
    let ptr = unsafe { alloc(layout) };
    if ptr.is_null() {
        return ALLOC_FAILED;
    }
    let k = key(ptr as usize);
    registry().areas.insert(k, Area::Raw(ptr as usize, layout));
    k as i32
}

/// `wasm_deallocate`: frees a live area, or returns [`DEALLOC_UNKNOWN`].
pub fn deallocate(ptr: i32) -> i32 {
    let area = registry().areas.remove(&(ptr as u32));
    match area {
        Some(Area::Raw(addr, layout)) => {
            // SAFETY: `addr` came from `alloc(layout)` and was live until the
            // removal above, so it is freed exactly once.
            unsafe { dealloc(addr as *mut u8, layout) };
            DEALLOC_OK
        }
        Some(Area::Owned(bytes)) => {
            drop(bytes);
            DEALLOC_OK
        }
        None => DEALLOC_UNKNOWN,
    }
}

/// Borrows `len` bytes the host wrote at `ptr`.
///
/// Returns `None` unless `ptr..ptr+len` lies inside one live area, so a guest
/// never reads through a pointer it did not hand out.
///
/// # Safety
/// The area must not be freed while the slice is alive; the host never frees
/// its inputs before the call that reads them returns.
pub unsafe fn input<'a>(ptr: i32, len: i32) -> Option<&'a [u8]> {
    let len = usize::try_from(len).ok()?;
    let reg = registry();
    // The host passes the start of an area it allocated.
    let area = reg.areas.get(&(ptr as u32))?;
    if len > area.size() {
        return None;
    }
    Some(std::slice::from_raw_parts(area.addr() as *const u8, len))
}

/// Size in bytes of the live area starting at `ptr`.
pub fn area_len(ptr: i32) -> Option<usize> {
    registry().areas.get(&(ptr as u32)).map(Area::size)
}

/// Borrows the whole raw area (one from [`allocate`]) starting at `ptr`
/// mutably; `None` for results the guest gave out, which are read-only.
///
/// # Safety
/// No other borrow of the area may be alive, and the area must not be freed
/// while the slice is alive.
pub unsafe fn area_mut<'a>(ptr: i32) -> Option<&'a mut [u8]> {
    let reg = registry();
    match reg.areas.get(&(ptr as u32))? {
        Area::Raw(addr, layout) => Some(std::slice::from_raw_parts_mut(
            *addr as *mut u8,
            layout.size(),
        )),
        Area::Owned(_) => None,
    }
}

/// Registers `bytes` as a live area without copying and returns its pointer.
pub fn give(bytes: Vec<u8>) -> i32 {
    // An empty Vec has a dangling pointer that would collide between results;
    // give it one byte of capacity so each result is a distinct area.
    let bytes = if bytes.capacity() == 0 {
        Vec::with_capacity(1)
    } else {
        bytes
    };
    let k = key(bytes.as_ptr() as usize);
    registry().areas.insert(k, Area::Owned(bytes));
    k as i32
}

/// Returns `bytes` as a pointer to a [`Pair`] (two live areas: the pair and
/// the payload, both for the host to free).
pub fn give_pair(bytes: Vec<u8>) -> i32 {
    let len = bytes.len() as u32;
    let ptr = give(bytes) as u32;
    give(Pair { ptr, len }.to_bytes().to_vec())
}

/// Records `message` for `wasm_last_error` and returns [`ERROR_RESULT`].
pub fn fail(message: impl Into<String>) -> i32 {
    registry().last_error = Some(message.into());
    ERROR_RESULT
}

/// Records the message of a panic for `wasm_last_error`; for panic hooks.
///
/// Never blocks: a panic in wasm aborts right after the hook, so waiting for
/// a lock held by the panicking code would hang (or, on single-threaded
/// wasm, trap) instead of reporting. If the slot is busy (a panic while a
/// panic is being recorded) the first message is kept.
pub fn record_panic(message: String) {
    let mut slot = match PANIC_MESSAGE.try_lock() {
        Ok(slot) => slot,
        Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
        Err(TryLockError::WouldBlock) => return,
    };
    *slot = Some(message);
}

/// `wasm_last_error`: a pair holding the last error message (empty if none).
///
/// A recorded panic wins over an error from [`fail`]: in wasm a panic ends
/// the call that would otherwise have reported, so it is the latest event.
/// Both are cleared.
pub fn last_error() -> i32 {
    let panic = PANIC_MESSAGE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    let failure = registry().last_error.take();
    let message = panic.or(failure).unwrap_or_default();
    give_pair(message.into_bytes())
}

/// Number of live areas; for guests' own tests of leak freedom.
pub fn live_areas() -> usize {
    registry().areas.len()
}

/// Exports `wasm_allocate`, `wasm_deallocate` and `wasm_last_error` from the
/// calling crate, backed by [`crate::guest`].
#[macro_export]
macro_rules! export_guest_abi {
    () => {
        /// ABI: `(size: i32) -> i32`, see `wasm_abi::guest::allocate`.
        #[no_mangle]
        pub extern "C" fn wasm_allocate(size: i32) -> i32 {
            $crate::guest::allocate(size)
        }

        /// ABI: `(ptr: i32) -> i32`, see `wasm_abi::guest::deallocate`.
        #[no_mangle]
        pub extern "C" fn wasm_deallocate(ptr: i32) -> i32 {
            $crate::guest::deallocate(ptr)
        }

        /// ABI: `() -> i32`, see `wasm_abi::guest::last_error`.
        #[no_mangle]
        pub extern "C" fn wasm_last_error() -> i32 {
            $crate::guest::last_error()
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocate_is_aligned_and_freed_once() {
        let p = allocate(10);
        assert_ne!(p, ALLOC_FAILED);
        assert_eq!(
            p as u32 as usize % ALLOC_ALIGN,
            0,
            "low bits keep alignment"
        );
        assert_eq!(deallocate(p), DEALLOC_OK);
        assert_eq!(deallocate(p), DEALLOC_UNKNOWN);
    }

    #[test]
    fn negative_size_fails_and_unknown_pointer_is_refused() {
        assert_eq!(allocate(-1), ALLOC_FAILED);
        assert_eq!(deallocate(12345), DEALLOC_UNKNOWN);
    }

    #[test]
    fn panic_message_is_reported_before_a_failure_and_cleared() {
        fail("ordinary failure");
        record_panic("guest panicked: boom".to_string());
        let pair_ptr = last_error();
        let pair = unsafe { input(pair_ptr, Pair::SIZE as i32) }.unwrap();
        let pair = Pair::from_bytes(pair.try_into().unwrap());
        let text = unsafe { input(pair.ptr as i32, pair.len as i32) }.unwrap();
        assert_eq!(text, b"guest panicked: boom");
        assert_eq!(deallocate(pair.ptr as i32), DEALLOC_OK);
        assert_eq!(deallocate(pair_ptr), DEALLOC_OK);
        // Both messages were taken: the next report is empty.
        let pair_ptr = last_error();
        let pair = Pair::from_bytes(unsafe { input(pair_ptr, 8) }.unwrap().try_into().unwrap());
        assert_eq!(pair.len, 0);
        assert_eq!(deallocate(pair.ptr as i32), DEALLOC_OK);
        assert_eq!(deallocate(pair_ptr), DEALLOC_OK);
    }

    #[test]
    fn input_rejects_reads_past_the_area() {
        let p = allocate(4);
        unsafe {
            assert!(input(p, 4).is_some());
            assert!(input(p, 1 << 20).is_none());
            assert!(input(p + 1, 1).is_none());
        }
        assert_eq!(deallocate(p), DEALLOC_OK);
    }
}
