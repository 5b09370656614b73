//! Guest: a core module that fetches URLs through the host's
//! `wasm_host.http_request` (see `wasm_abi::host`): the example of a module
//! with network and nothing else.
//!
//! Every export takes the pair ABI, `(ptr, len: i32) -> i32`: bytes in, a
//! pointer to a pair of bytes out, or 0 with the message for
//! `wasm_last_error`. Host failures (a host not granted, a refused
//! connection, ...) are passed on with the host's own text, so a test can
//! tell the policy's refusal from the guest's.
//!
//! The module imports `wasm_host.http_request` and `take` only, so it loads
//! under a policy that grants some host (`--allow-host HOST:PORT`) and
//! nothing else: a module importing an ungranted host function is refused
//! at load.

use wasm_abi::guest;
use wasm_abi::guest_host;
use wasm_abi::host::http::{Request, Response};

wasm_abi::export_guest_abi!();

/// Borrows the call's input, or `Err` with the message to fail with.
fn input<'a>(ptr: i32, len: i32) -> Result<&'a [u8], String> {
    // SAFETY: the host keeps its input alive until the export returns, and
    // every caller drops the slice before that.
    unsafe { guest::input(ptr, len) }
        .ok_or_else(|| "input (ptr,len) is not inside a live area".into())
}

/// The input as UTF-8 text.
fn text<'a>(ptr: i32, len: i32) -> Result<&'a str, String> {
    std::str::from_utf8(input(ptr, len)?).map_err(|e| format!("input is not UTF-8: {e}"))
}

/// The pair-ABI result of `out`: its bytes, or the failure for
/// `wasm_last_error`.
fn answer(out: Result<Vec<u8>, String>) -> i32 {
    match out {
        Ok(bytes) => guest::give_pair(bytes),
        Err(msg) => guest::fail(msg),
    }
}

/// `GET url` with no headers and no body; the error keeps the host's text.
fn get(url: &str) -> Result<Response, String> {
    let request = Request {
        method: "GET".into(),
        url: url.into(),
        headers: Vec::new(),
        body: Vec::new(),
    };
    guest_host::http_request(&request).map_err(|msg| format!("fetch {url}: {msg}"))
}

/// The body of a 2xx answer to `GET url`.
fn fetch_body(ptr: i32, len: i32) -> Result<Vec<u8>, String> {
    let url = text(ptr, len)?.trim();
    let response = get(url)?;
    if (200..300).contains(&response.status) {
        Ok(response.body)
    } else {
        Err(format!("HTTP {} from {url}", response.status))
    }
}

/// `"{status}\n{body}"` for any status: lets tests see non-2xx answers.
fn fetch_any(ptr: i32, len: i32) -> Result<Vec<u8>, String> {
    let url = text(ptr, len)?.trim();
    let response = get(url)?;
    let body = String::from_utf8_lossy(&response.body);
    Ok(format!("{}\n{body}", response.status).into_bytes())
}

/// ABI `fetch: (ptr, len) -> i32`: the URL (UTF-8, whitespace trimmed) in,
/// the body of a 2xx answer out; any other status is an error
/// `HTTP {status} from {url}`.
#[no_mangle]
pub extern "C" fn fetch(ptr: i32, len: i32) -> i32 {
    answer(fetch_body(ptr, len))
}

/// ABI `fetch_status: (ptr, len) -> i32`: as [`fetch`], but out is
/// `"{status}\n{body as lossy UTF-8}"` whatever the status.
#[no_mangle]
pub extern "C" fn fetch_status(ptr: i32, len: i32) -> i32 {
    answer(fetch_any(ptr, len))
}

/// Natively the `guest_host` stubs make every host call fail: what is
/// checked here is how the exports report that.
#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Mutex, MutexGuard};
    use wasm_abi::{Pair, ERROR_RESULT};

    /// The last error is one slot for the whole guest: tests that fail
    /// calls take turns, or one would read another's message.
    fn one_at_a_time() -> MutexGuard<'static, ()> {
        static TURN: Mutex<()> = Mutex::new(());
        TURN.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An input area holding `bytes`, as the host would lend it.
    fn put(bytes: &[u8]) -> i32 {
        let p = guest::allocate(bytes.len() as i32);
        let area = unsafe { guest::area_mut(p) }.expect("a fresh area");
        area[..bytes.len()].copy_from_slice(bytes);
        p
    }

    /// Takes the payload of the pair at `pair_ptr`, freeing both areas.
    fn take(pair_ptr: i32) -> Vec<u8> {
        let pair = unsafe { guest::input(pair_ptr, Pair::SIZE as i32) }.expect("a pair");
        let pair = Pair::from_bytes(pair.try_into().expect("8 bytes"));
        let bytes = unsafe { guest::input(pair.ptr as i32, pair.len as i32) }
            .expect("a payload")
            .to_vec();
        guest::deallocate(pair.ptr as i32);
        guest::deallocate(pair_ptr);
        bytes
    }

    /// Runs `export` on `input` and returns the error it reported.
    fn failure(export: extern "C" fn(i32, i32) -> i32, input: &[u8]) -> String {
        let p = put(input);
        assert_eq!(export(p, input.len() as i32), ERROR_RESULT);
        guest::deallocate(p);
        String::from_utf8(take(guest::last_error())).expect("UTF-8 message")
    }

    #[test]
    fn a_host_failure_reaches_last_error_with_the_url() {
        let _turn = one_at_a_time();
        let msg = failure(fetch, b"  http://127.0.0.1:1/x \n");
        assert!(msg.starts_with("fetch http://127.0.0.1:1/x: "), "{msg}");
        // The stub host leaves nothing pending: its "message" is that.
        assert!(msg.ends_with("the host had no result pending"), "{msg}");
        assert!(failure(fetch_status, b"http://a/").starts_with("fetch http://a/: "));
    }

    #[test]
    fn bad_inputs_are_errors_not_panics() {
        let _turn = one_at_a_time();
        assert!(failure(fetch, &[0xff]).contains("not UTF-8"));
    }
}
