//! Guest-side calls of the host functions ([`crate::host`]), for Rust
//! guests. Only what a guest calls is imported: a module that never calls
//! [`http_request`] does not import `wasm_host.http_request`, so it loads
//! under a policy that grants no network.

use crate::host::{self, http, KV_FOUND};

#[cfg(target_arch = "wasm32")]
mod imports {
    #[link(wasm_import_module = "wasm_host")]
    extern "C" {
        pub fn http_request(ptr: i32, len: i32) -> i64;
        pub fn kv_get(ptr: i32, len: i32) -> i64;
        pub fn log(level: i32, ptr: i32, len: i32) -> i32;
        pub fn take(ptr: i32, len: i32) -> i32;
    }
}

/// Natively (the guests' own unit tests) there is no host: every call fails.
#[cfg(not(target_arch = "wasm32"))]
mod imports {
    pub unsafe fn http_request(_: i32, _: i32) -> i64 {
        -1
    }
    pub unsafe fn kv_get(_: i32, _: i32) -> i64 {
        -1
    }
    pub unsafe fn log(_: i32, _: i32, _: i32) -> i32 {
        crate::host::LOG_DROPPED
    }
    pub unsafe fn take(_: i32, _: i32) -> i32 {
        crate::host::TAKE_NOTHING
    }
}

/// Collects what a bytes function left pending: its result, or its error.
fn collect(ret: i64) -> Result<Vec<u8>, String> {
    let (len, failed) = match host::error_len(ret) {
        Some(len) => (len, true),
        None => (ret as u64, false),
    };
    let mut buf = vec![0u8; len as usize];
    // SAFETY: `buf` is `len` writable bytes the host fills.
    let status = unsafe { imports::take(buf.as_mut_ptr() as i32, len as i32) };
    if status != host::TAKE_OK {
        return Err("the host had no result pending".into());
    }
    if failed {
        return Err(String::from_utf8_lossy(&buf).into_owned());
    }
    Ok(buf)
}

/// Sends `request` through the host; the error is the host's message (a
/// refusal of the policy, a connection that failed, ...).
pub fn http_request(request: &http::Request) -> Result<http::Response, String> {
    let wire = request.encode();
    // SAFETY: the host only reads `wire` during the call.
    let ret = unsafe { imports::http_request(wire.as_ptr() as i32, wire.len() as i32) };
    let bytes = collect(ret)?;
    http::Response::decode(&bytes).ok_or_else(|| "the host sent a malformed response".into())
}

/// The embedder's value for `key`, if it has one.
pub fn kv_get(key: &[u8]) -> Result<Option<Vec<u8>>, String> {
    // SAFETY: the host only reads `key` during the call.
    let ret = unsafe { imports::kv_get(key.as_ptr() as i32, key.len() as i32) };
    let mut bytes = collect(ret)?;
    match bytes.first() {
        Some(&KV_FOUND) => Ok(Some(bytes.split_off(1))),
        _ => Ok(None),
    }
}

/// Writes `line` to the host's log at `level` (`host::LOG_*`); `false` if
/// the host dropped it (rate limit).
pub fn log(level: i32, line: &str) -> bool {
    // SAFETY: the host only reads `line` during the call.
    unsafe { imports::log(level, line.as_ptr() as i32, line.len() as i32) == host::LOG_OK }
}
