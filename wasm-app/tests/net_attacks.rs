//! An attacker's review of the network grants and host functions: each
//! test asserts the SAFE behaviour, so a failing test is a real bug.
//!
//! Guests are generated WAT: a core module that hands its input to
//! `wasm_host.http_request` as the wire form, and components that drive
//! `wasi:sockets` directly. Servers are started by the tests on 127.0.0.1.

mod common;
#[path = "net_attacks/host_calls.rs"]
mod host_calls;
#[path = "net_attacks/http_component.rs"]
mod http_component;
#[path = "net_attacks/reach.rs"]
mod reach;
#[path = "net_attacks/recorder.rs"]
mod recorder;
#[path = "net_attacks/sockets.rs"]
mod sockets;

use std::time::{Duration, Instant};

use wasm_abi::host::http::{Request, Response};
use wasm_app::{Error, HostFunctions, Limit, Plugin, Policy, Runtime};

use recorder::{redirect, Recorder};

// ---------------------------------------------------------------------------
// Runtime and guests.

fn runtime() -> &'static Runtime {
    common::cached_runtime()
}

/// A core guest. Exports (pair ABI, input = a wire-form request):
/// - `req`: `[failed u8] ++ what take copied` (the response or the error);
/// - `req_trap`: the request, then `unreachable`;
/// - `req_loop`: the request, then a loop forever;
/// - `kv_leave`: calls `kv_get` with its input, takes nothing;
/// - `take_len`: `take(buf, input as u32 LE)`'s status and what it copied.
fn core_guest(extra_imports: &str) -> String {
    format!(
        r#"(module
  (import "wasm_host" "http_request" (func $http (param i32 i32) (result i64)))
  (import "wasm_host" "take" (func $take (param i32 i32) (result i32)))
  {extra_imports}
  (memory (export "memory") 1)
{alloc}
  (func $pair (param $p i32) (param $n i32) (result i32)
    (local $q i32)
    (local.set $q (call $alloc (i32.const 8)))
    (i32.store (local.get $q) (local.get $p))
    (i32.store offset=4 (local.get $q) (local.get $n))
    (local.get $q))
  (func $pending (param $r i64) (result i32)
    (if (result i32) (i64.lt_s (local.get $r) (i64.const 0))
      (then (i32.wrap_i64 (i64.sub (i64.const -1) (local.get $r))))
      (else (i32.wrap_i64 (local.get $r)))))
  (func $collect (param $r i64) (result i32)
    (local $n i32) (local $buf i32)
    (local.set $n (call $pending (local.get $r)))
    (local.set $buf (call $alloc (i32.add (local.get $n) (i32.const 1))))
    (i32.store8 (local.get $buf) (i64.lt_s (local.get $r) (i64.const 0)))
    (drop (call $take (i32.add (local.get $buf) (i32.const 1)) (local.get $n)))
    (call $pair (local.get $buf) (i32.add (local.get $n) (i32.const 1))))
  (func (export "req") (param $ptr i32) (param $len i32) (result i32)
    (call $collect (call $http (local.get $ptr) (local.get $len))))
  (func (export "req_trap") (param $ptr i32) (param $len i32) (result i32)
    (drop (call $http (local.get $ptr) (local.get $len)))
    unreachable)
  (func (export "req_loop") (param $ptr i32) (param $len i32) (result i32)
    (drop (call $http (local.get $ptr) (local.get $len)))
    (loop $l (br $l))
    (i32.const 0))
  {extra_body}
)"#,
        alloc = common::wat::bump_allocator(1024),
        extra_body = if extra_imports.contains("kv_get") {
            KV_BODY
        } else {
            ""
        },
    )
}

const KV_IMPORT: &str = r#"(import "wasm_host" "kv_get" (func $kv (param i32 i32) (result i64)))"#;
const KV_BODY: &str = r#"
  (func (export "kv_leave") (param $ptr i32) (param $len i32) (result i32)
    (drop (call $kv (local.get $ptr) (local.get $len)))
    (call $pair (i32.const 0) (i32.const 0)))
  (func (export "take_len") (param $ptr i32) (param $len i32) (result i32)
    (local $n i32) (local $buf i32)
    (local.set $n (i32.load (local.get $ptr)))
    (local.set $buf (call $alloc (i32.add (local.get $n) (i32.const 4))))
    (i32.store (local.get $buf) (call $take (i32.add (local.get $buf) (i32.const 4)) (local.get $n)))
    (call $pair (local.get $buf) (i32.add (local.get $n) (i32.const 4))))
"#;

fn core_plugin(policy: Policy) -> Plugin {
    let wat = core_guest("");
    Plugin::new(
        runtime()
            .load_bytes("attacker.wat", wat.as_bytes(), policy)
            .unwrap_or_else(|e| panic!("load: {e}")),
    )
}

fn get(url: &str) -> Request {
    Request {
        method: "GET".into(),
        url: url.into(),
        headers: vec![],
        body: vec![],
    }
}

/// What the guest got for `req`: `Ok(response)` or `Err(message)`.
fn send(p: &mut Plugin, req: &Request) -> Result<Result<Response, String>, Error> {
    let out = p.call("req", req.encode())?;
    let (failed, rest) = out.split_first().expect("a status byte");
    Ok(if *failed == 1 {
        Err(String::from_utf8_lossy(rest).into_owned())
    } else {
        Ok(Response::decode(rest).expect("a well-formed response"))
    })
}

fn with_max_open_files(mut p: Policy, n: u32) -> Policy {
    p.limits.max_open_files = n;
    p
}
