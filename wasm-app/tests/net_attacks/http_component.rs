//! Components: wasi:http requests kept in the resource table.

use super::*;

/// A component whose `run(input)` sends `count` GETs through
/// `wasi:http/outgoing-handler` and keeps every future response (never
/// looks at them, never drops them). Input: count, authority length, path
/// length (u32 LE each), then the authority and path bytes. Output: the
/// number of requests `handle` accepted, and the first failure (+1).
fn http_component() -> String {
    r#"(component $C
  (import "wasi:http/types@0.2.12" (instance $types
    (export "fields" (type $fields (sub resource)))
    (export "outgoing-request" (type $or (sub resource)))
    (export "request-options" (type $ro (sub resource)))
    (export "future-incoming-response" (type $fir (sub resource)))
    (type $scheme0 (variant (case "HTTP") (case "HTTPS") (case "other" string)))
    (export "scheme" (type $scheme (eq $scheme0)))
    (export "[constructor]fields" (func (result (own $fields))))
    (export "[constructor]outgoing-request" (func (param "headers" (own $fields)) (result (own $or))))
    (export "[method]outgoing-request.set-scheme" (func (param "self" (borrow $or)) (param "scheme" (option $scheme)) (result (result))))
    (export "[method]outgoing-request.set-authority" (func (param "self" (borrow $or)) (param "authority" (option string)) (result (result))))
    (export "[method]outgoing-request.set-path-with-query" (func (param "self" (borrow $or)) (param "path-with-query" (option string)) (result (result))))))
  (alias export $types "outgoing-request" (type $outgoing-request))
  (alias export $types "request-options" (type $request-options))
  (alias export $types "future-incoming-response" (type $future-incoming-response))
  (import "wasi:http/outgoing-handler@0.2.12" (instance $handler
    (alias outer $C $outgoing-request (type $or0))
    (export "outgoing-request" (type $or (eq $or0)))
    (alias outer $C $request-options (type $ro0))
    (export "request-options" (type $ro (eq $ro0)))
    (alias outer $C $future-incoming-response (type $f0))
    (export "future-incoming-response" (type $fir (eq $f0)))
    (type $dns0 (record (field "rcode" (option string)) (field "info-code" (option u16))))
    (export "DNS-error-payload" (type $dns (eq $dns0)))
    (type $tls0 (record (field "alert-id" (option u8)) (field "alert-message" (option string))))
    (export "TLS-alert-received-payload" (type $tls (eq $tls0)))
    (type $fs0 (record (field "field-name" (option string)) (field "field-size" (option u32))))
    (export "field-size-payload" (type $fs (eq $fs0)))
    (type $ec0 (variant
      (case "DNS-timeout") (case "DNS-error" $dns) (case "destination-not-found")
      (case "destination-unavailable") (case "destination-IP-prohibited")
      (case "destination-IP-unroutable") (case "connection-refused")
      (case "connection-terminated") (case "connection-timeout")
      (case "connection-read-timeout") (case "connection-write-timeout")
      (case "connection-limit-reached") (case "TLS-protocol-error")
      (case "TLS-certificate-error") (case "TLS-alert-received" $tls)
      (case "HTTP-request-denied") (case "HTTP-request-length-required")
      (case "HTTP-request-body-size" (option u64)) (case "HTTP-request-method-invalid")
      (case "HTTP-request-URI-invalid") (case "HTTP-request-URI-too-long")
      (case "HTTP-request-header-section-size" (option u32))
      (case "HTTP-request-header-size" (option $fs))
      (case "HTTP-request-trailer-section-size" (option u32))
      (case "HTTP-request-trailer-size" $fs) (case "HTTP-response-incomplete")
      (case "HTTP-response-header-section-size" (option u32))
      (case "HTTP-response-header-size" $fs)
      (case "HTTP-response-body-size" (option u64))
      (case "HTTP-response-trailer-section-size" (option u32))
      (case "HTTP-response-trailer-size" $fs)
      (case "HTTP-response-transfer-coding" (option string))
      (case "HTTP-response-content-coding" (option string))
      (case "HTTP-response-timeout") (case "HTTP-upgrade-failed") (case "HTTP-protocol-error")
      (case "loop-detected") (case "configuration-error") (case "internal-error" (option string))))
    (export "error-code" (type $ec (eq $ec0)))
    (export "handle" (func (param "request" (own $or)) (param "options" (option (own $ro)))
      (result (result (own $fir) (error $ec)))))))
  (alias export $types "[constructor]fields" (func $new-fields))
  (alias export $types "[constructor]outgoing-request" (func $new-request))
  (alias export $types "[method]outgoing-request.set-scheme" (func $set-scheme))
  (alias export $types "[method]outgoing-request.set-authority" (func $set-authority))
  (alias export $types "[method]outgoing-request.set-path-with-query" (func $set-path))
  (alias export $handler "handle" (func $handle))
  (core module $Mem
    (memory (export "memory") 1)
    (global $next (mut i32) (i32.const 4096))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32)
      (local $p i32)
      (local.set $p (i32.and (i32.add (global.get $next) (i32.const 7)) (i32.const -8)))
      (global.set $next (i32.add (local.get $p) (local.get 3)))
      (if (i32.gt_u (global.get $next) (i32.mul (memory.size) (i32.const 65536)))
        (then (drop (memory.grow (i32.add (i32.div_u (i32.sub (global.get $next) (i32.mul (memory.size) (i32.const 65536))) (i32.const 65536)) (i32.const 1))))))
      (local.get $p))
  )
  (core instance $mem (instantiate $Mem))
  (alias core export $mem "memory" (core memory $memory))
  (alias core export $mem "realloc" (core func $realloc))
  (core func $c-new-fields (canon lower (func $new-fields)))
  (core func $c-new-request (canon lower (func $new-request)))
  (core func $c-set-scheme (canon lower (func $set-scheme) (memory $memory)))
  (core func $c-set-authority (canon lower (func $set-authority) (memory $memory)))
  (core func $c-set-path (canon lower (func $set-path) (memory $memory)))
  (core func $c-handle (canon lower (func $handle) (memory $memory) (realloc $realloc)))
  (core module $Main
    (import "env" "memory" (memory 1))
    (import "env" "new-fields" (func $new-fields (result i32)))
    (import "env" "new-request" (func $new-request (param i32) (result i32)))
    (import "env" "set-scheme" (func $set-scheme (param i32 i32 i32 i32 i32) (result i32)))
    (import "env" "set-authority" (func $set-authority (param i32 i32 i32 i32) (result i32)))
    (import "env" "set-path" (func $set-path (param i32 i32 i32 i32) (result i32)))
    (import "env" "handle" (func $handle (param i32 i32 i32 i32)))
    (func (export "run") (param $p i32) (param $len i32) (result i32)
      (local $n i32) (local $alen i32) (local $plen i32) (local $i i32) (local $req i32)
      (local $sent i32) (local $err i32)
      (local.set $n (i32.load (local.get $p)))
      (local.set $alen (i32.load offset=4 (local.get $p)))
      (local.set $plen (i32.load offset=8 (local.get $p)))
      (block $end (loop $each
        (br_if $end (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (local.set $req (call $new-request (call $new-fields)))
        (drop (call $set-scheme (local.get $req) (i32.const 1) (i32.const 0) (i32.const 0) (i32.const 0)))
        (drop (call $set-authority (local.get $req) (i32.const 1)
          (i32.add (local.get $p) (i32.const 12)) (local.get $alen)))
        (drop (call $set-path (local.get $req) (i32.const 1)
          (i32.add (i32.add (local.get $p) (i32.const 12)) (local.get $alen)) (local.get $plen)))
        (call $handle (local.get $req) (i32.const 0) (i32.const 0) (i32.const 64))
        (if (i32.load8_u (i32.const 64))
          (then
            (if (i32.eqz (local.get $err))
              (then (local.set $err (i32.add (i32.load8_u offset=8 (i32.const 64)) (i32.const 1))))))
          (else (local.set $sent (i32.add (local.get $sent) (i32.const 1)))))
        (br $each)))
      (i32.store (i32.const 256) (local.get $sent))
      (i32.store (i32.const 260) (local.get $err))
      (i32.store (i32.const 512) (i32.const 256))
      (i32.store (i32.const 516) (i32.const 8))
      (i32.const 512)))
  (core instance $env
    (export "memory" (memory $memory))
    (export "new-fields" (func $c-new-fields))
    (export "new-request" (func $c-new-request))
    (export "set-scheme" (func $c-set-scheme))
    (export "set-authority" (func $c-set-authority))
    (export "set-path" (func $c-set-path))
    (export "handle" (func $c-handle)))
  (core instance $main (instantiate $Main (with "env" (instance $env))))
  (func (export "run") (param "input" (list u8)) (result (list u8))
    (canon lift (core func $main "run") (memory $memory) (realloc $realloc))))"#
        .to_string()
}

fn run_http(p: &mut Plugin, count: u32, authority: &str, path: &str) -> Result<(u32, u32), Error> {
    let mut input = Vec::new();
    input.extend_from_slice(&count.to_le_bytes());
    input.extend_from_slice(&(authority.len() as u32).to_le_bytes());
    input.extend_from_slice(&(path.len() as u32).to_le_bytes());
    input.extend_from_slice(authority.as_bytes());
    input.extend_from_slice(path.as_bytes());
    let out = p.call("run", input)?;
    let w = |i: usize| u32::from_le_bytes(out[4 * i..4 * i + 4].try_into().unwrap());
    Ok((w(0), w(1)))
}

#[test]
fn a_component_leaves_no_http_requests_running_between_calls() {
    let s = Recorder::start();
    let policy = with_max_open_files(
        Policy::default()
            .with_allowed_host(&s.grant())
            .with_http_timeout(Duration::from_secs(30)),
        16,
    );
    let wat = http_component();
    let mut p = Plugin::new(
        runtime()
            .load_bytes("http.wat", wat.as_bytes(), policy)
            .unwrap_or_else(|e| panic!("load the http component: {e}")),
    );
    let (sent, err) = run_http(&mut p, 100, &format!("127.0.0.1:{}", s.port), "/hold").unwrap();
    // The call is over; the guest is not running. What was sent before it
    // ended may take the server a moment to read; nothing may follow.
    std::thread::sleep(Duration::from_millis(300));
    let settled = s.requests();
    std::thread::sleep(Duration::from_millis(700));
    let (later, open) = (s.requests(), s.open_now());
    drop(p);
    assert!(
        open == 0 && later == settled && settled <= 16,
        "handle accepted {sent} requests (error {err}); {settled} had reached the server shortly \
         after the call returned, {later} a second later, with {open} connections open while \
         the guest is not running"
    );
}

#[test]
fn log_takes_any_level_and_length_without_panicking() {
    let wat = format!(
        r#"(module
  (import "wasm_host" "log" (func $log (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
{alloc}
  (func (export "levels") (param $ptr i32) (param $len i32) (result i32)
    (drop (call $log (i32.const -2147483648) (local.get $ptr) (local.get $len)))
    (drop (call $log (i32.const 2147483647) (local.get $ptr) (local.get $len)))
    (drop (call $log (i32.const -1) (local.get $ptr) (local.get $len)))
    (drop (call $log (i32.const 0) (i32.const 65536) (i32.const 0)))
    (drop (call $log (i32.const 1) (i32.const 0) (i32.const 65536)))
    (drop (call $log (i32.const 2) (i32.const 0) (i32.const 1025)))
    (i32.const 0))
  (func (export "past_end") (param $ptr i32) (param $len i32) (result i32)
    (drop (call $log (i32.const 2) (i32.const 65535) (i32.const 2)))
    (i32.const 0))
  (func (export "wraps") (param $ptr i32) (param $len i32) (result i32)
    (drop (call $log (i32.const 2) (i32.const -1) (i32.const 2)))
    (i32.const 0)))"#,
        alloc = common::wat::bump_allocator(1024)
    );
    let module = runtime()
        .load_bytes(
            "log.wat",
            wat.as_bytes(),
            Policy::default().with_host_function("log"),
        )
        .unwrap();
    let mut p = Plugin::new(module);
    // Returns 0 (the guest's error) after logging: a reported error, not a panic.
    let r = p.call("levels", "line \u{1b}[2J\n\r");
    assert!(matches!(r, Err(Error::GuestReported { .. })), "{r:?}");
    for export in ["past_end", "wraps"] {
        assert!(
            matches!(p.call(export, ""), Err(Error::BadPointer(_))),
            "{export}"
        );
    }
}
