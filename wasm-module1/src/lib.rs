//! Guest module 1: `answer()` and a greeter over two ABIs.
//!
//! - C ABI: a NUL-terminated UTF-8 name in, a NUL-terminated greeting out.
//! - Rust ABI: a (ptr,len) UTF-8 name in, a pointer to a (ptr,len) pair out.
//!
//! Inputs are areas the host allocated through `wasm_allocate`; outputs are
//! areas registered with the guest registry for the host to free. Names are
//! validated as UTF-8, so `Zoë`, `世界` or emoji come back intact and a
//! malformed name is an error the host can read, not a garbled greeting.

use wasm_abi::{guest, ANSWER};

wasm_abi::export_guest_abi!();

/// ABI `answer: () -> i32`.
#[no_mangle]
pub extern "C" fn answer() -> i32 {
    ANSWER
}

/// ABI `wasm_memory_c_format_hello_world: (name: i32) -> i32`.
///
/// Returns 0 when the name is not a NUL-terminated UTF-8 string inside an
/// area the host allocated (see `wasm_last_error`).
#[no_mangle]
pub extern "C" fn wasm_memory_c_format_hello_world(name: i32) -> i32 {
    match c_greet(name) {
        Ok(ptr) => ptr,
        Err(msg) => guest::fail(msg),
    }
}

fn c_greet(name: i32) -> Result<i32, String> {
    // The area bounds the search for the NUL: never read past what the host
    // allocated, even if it forgot the terminator.
    let area = area_of(name).ok_or("name pointer is not a live area")?;
    // `CStr` searches with core's word-at-a-time memchr, not byte by byte.
    let name = std::ffi::CStr::from_bytes_until_nul(area)
        .map_err(|_| "name has no NUL terminator within its area")?;
    let name = name
        .to_str()
        .map_err(|e| format!("name is not UTF-8: {e}"))?;
    let mut out = wasm_abi::greeting(name).into_bytes();
    out.push(0);
    Ok(guest::give(out))
}

/// ABI `wasm_memory_rust_format_hello_world: (ptr: i32, len: i32) -> i32`.
#[no_mangle]
pub extern "C" fn wasm_memory_rust_format_hello_world(ptr: i32, len: i32) -> i32 {
    // SAFETY: the host keeps its input alive until this call returns.
    let Some(bytes) = (unsafe { guest::input(ptr, len) }) else {
        return guest::fail("name (ptr,len) is not inside a live area");
    };
    match std::str::from_utf8(bytes) {
        Ok(name) => guest::give_pair(wasm_abi::greeting(name).into_bytes()),
        Err(e) => guest::fail(format!("name is not UTF-8: {e}")),
    }
}

/// The whole live area starting at `ptr`, whatever its size.
fn area_of<'a>(ptr: i32) -> Option<&'a [u8]> {
    // SAFETY: as above; `input` refuses lengths past the area, so ask for
    // the largest length it accepts by probing the area's capacity.
    unsafe { guest::input(ptr, guest::area_len(ptr)? as i32) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_abi::Pair;

    fn put(bytes: &[u8]) -> i32 {
        let p = guest::allocate(bytes.len() as i32);
        let area = unsafe { guest::area_mut(p) }.unwrap();
        area[..bytes.len()].copy_from_slice(bytes);
        p
    }

    #[test]
    fn c_greeter_handles_utf8() {
        let p = put("Zoë 世界 🦀\0".as_bytes());
        let out = wasm_memory_c_format_hello_world(p);
        let area = area_of(out).unwrap();
        assert_eq!(area, "Hello World, Zoë 世界 🦀!\0".as_bytes());
        assert_eq!(guest::deallocate(out), 0);
        assert_eq!(guest::deallocate(p), 0);
    }

    #[test]
    fn c_greeter_refuses_missing_nul() {
        let p = put(b"abc");
        // A 3-byte request gets exactly 3 bytes: no terminator inside.
        assert_eq!(wasm_memory_c_format_hello_world(p), 0);
        guest::deallocate(p);
    }

    #[test]
    fn rust_greeter_returns_pair_and_rejects_bad_utf8() {
        let p = put(b"Rust");
        let pair_ptr = wasm_memory_rust_format_hello_world(p, 4);
        let pair = Pair::from_bytes(area_of(pair_ptr).unwrap()[..8].try_into().unwrap());
        assert_eq!(pair.len, "Hello World, Rust!".len() as u32);
        guest::deallocate(p);
        let bad = put(&[0xff, 0xfe]);
        assert_eq!(wasm_memory_rust_format_hello_world(bad, 2), 0);
        guest::deallocate(bad);
    }
}
