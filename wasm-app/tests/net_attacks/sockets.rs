//! Components: wasi:sockets driven directly.

use super::*;

const ERROR_CODES: &str = r#""unknown" "access-denied" "not-supported" "invalid-argument" "out-of-memory" "timeout" "concurrency-conflict" "not-in-progress" "would-block" "invalid-state" "new-socket-limit" "address-not-bindable" "address-in-use" "remote-unreachable" "connection-refused" "connection-reset" "connection-aborted" "datagram-too-large" "name-unresolvable" "temporary-resolver-failure" "permanent-resolver-failure""#;

/// A component whose `run(input: list<u8>) -> list<u8>` creates TCP
/// sockets and keeps every one (never drops a handle). Input, u32 LE each:
/// mode, count, IPv4 address (4 bytes), port. Modes: 0 create only;
/// 1 connect to the address; 2 bind to 0.0.0.0:0; 3 bind then listen.
/// Output, u32 LE each: sockets created, operations that succeeded, the
/// first error code (+1; 0 for none).
fn sockets_component() -> String {
    format!(
        r#"(component $C
  (import "wasi:io/streams@0.2.12" (instance $streams
    (export "input-stream" (type (sub resource)))
    (export "output-stream" (type (sub resource)))))
  (alias export $streams "input-stream" (type $input-stream))
  (alias export $streams "output-stream" (type $output-stream))
  (import "wasi:sockets/network@0.2.12" (instance $network
    (export "network" (type (sub resource)))))
  (alias export $network "network" (type $network-t))
  (import "wasi:sockets/instance-network@0.2.12" (instance $inet
    (alias outer $C $network-t (type $n))
    (export "network" (type $n2 (eq $n)))
    (export "instance-network" (func (result (own $n2))))))
  (import "wasi:sockets/tcp@0.2.12" (instance $tcp
    (alias outer $C $network-t (type $n))
    (export "network" (type $net (eq $n)))
    (alias outer $C $input-stream (type $i))
    (export "input-stream" (type $is (eq $i)))
    (alias outer $C $output-stream (type $o))
    (export "output-stream" (type $os (eq $o)))
    (type $ec0 (enum {ERROR_CODES}))
    (export "error-code" (type $ec (eq $ec0)))
    (type $v40 (record (field "port" u16) (field "address" (tuple u8 u8 u8 u8))))
    (export "ipv4-socket-address" (type $v4 (eq $v40)))
    (type $v60 (record (field "port" u16) (field "flow-info" u32)
      (field "address" (tuple u16 u16 u16 u16 u16 u16 u16 u16)) (field "scope-id" u32)))
    (export "ipv6-socket-address" (type $v6 (eq $v60)))
    (type $a0 (variant (case "ipv4" $v4) (case "ipv6" $v6)))
    (export "ip-socket-address" (type $addr (eq $a0)))
    (export "tcp-socket" (type $ts (sub resource)))
    (export "[method]tcp-socket.start-bind" (func (param "self" (borrow $ts)) (param "network" (borrow $net)) (param "local-address" $addr) (result (result (error $ec)))))
    (export "[method]tcp-socket.finish-bind" (func (param "self" (borrow $ts)) (result (result (error $ec)))))
    (export "[method]tcp-socket.start-connect" (func (param "self" (borrow $ts)) (param "network" (borrow $net)) (param "remote-address" $addr) (result (result (error $ec)))))
    (export "[method]tcp-socket.finish-connect" (func (param "self" (borrow $ts)) (result (result (tuple (own $is) (own $os)) (error $ec)))))
    (export "[method]tcp-socket.start-listen" (func (param "self" (borrow $ts)) (result (result (error $ec)))))
    (export "[method]tcp-socket.finish-listen" (func (param "self" (borrow $ts)) (result (result (error $ec)))))))
  (alias export $tcp "tcp-socket" (type $tcp-socket))
  (import "wasi:sockets/tcp-create-socket@0.2.12" (instance $create
    (type $ec0 (enum {ERROR_CODES}))
    (export "error-code" (type $ec (eq $ec0)))
    (type $f0 (enum "ipv4" "ipv6"))
    (export "ip-address-family" (type $fam (eq $f0)))
    (alias outer $C $tcp-socket (type $t))
    (export "tcp-socket" (type $ts (eq $t)))
    (export "create-tcp-socket" (func (param "address-family" $fam) (result (result (own $ts) (error $ec)))))))
  (alias export $inet "instance-network" (func $instance-network))
  (alias export $create "create-tcp-socket" (func $create-tcp-socket))
  (alias export $tcp "[method]tcp-socket.start-bind" (func $start-bind))
  (alias export $tcp "[method]tcp-socket.finish-bind" (func $finish-bind))
  (alias export $tcp "[method]tcp-socket.start-connect" (func $start-connect))
  (alias export $tcp "[method]tcp-socket.finish-connect" (func $finish-connect))
  (alias export $tcp "[method]tcp-socket.start-listen" (func $start-listen))
  (alias export $tcp "[method]tcp-socket.finish-listen" (func $finish-listen))
  (core module $Mem (memory (export "memory") 1))
  (core instance $mem (instantiate $Mem))
  (alias core export $mem "memory" (core memory $memory))
  (core func $c-inet (canon lower (func $instance-network)))
  (core func $c-create (canon lower (func $create-tcp-socket) (memory $memory)))
  (core func $c-start-bind (canon lower (func $start-bind) (memory $memory)))
  (core func $c-finish-bind (canon lower (func $finish-bind) (memory $memory)))
  (core func $c-start-connect (canon lower (func $start-connect) (memory $memory)))
  (core func $c-finish-connect (canon lower (func $finish-connect) (memory $memory)))
  (core func $c-start-listen (canon lower (func $start-listen) (memory $memory)))
  (core func $c-finish-listen (canon lower (func $finish-listen) (memory $memory)))
  (core module $Main
    (import "env" "memory" (memory 1))
    (import "env" "inet" (func $inet (result i32)))
    (import "env" "create" (func $create (param i32 i32)))
    (import "env" "start-bind" (func $start-bind (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32)))
    (import "env" "finish-bind" (func $finish-bind (param i32 i32)))
    (import "env" "start-connect" (func $start-connect (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32)))
    (import "env" "finish-connect" (func $finish-connect (param i32 i32)))
    (import "env" "start-listen" (func $start-listen (param i32 i32)))
    (import "env" "finish-listen" (func $finish-listen (param i32 i32)))
    (global $next (mut i32) (i32.const 4096))
    (global $err (mut i32) (i32.const 0))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32)
      (local $p i32)
      (local.set $p (i32.and (i32.add (global.get $next) (i32.const 7)) (i32.const -8)))
      (global.set $next (i32.add (local.get $p) (local.get 3)))
      (if (i32.gt_u (global.get $next) (i32.mul (memory.size) (i32.const 65536)))
        (then (drop (memory.grow (i32.add (i32.div_u (i32.sub (global.get $next) (i32.mul (memory.size) (i32.const 65536))) (i32.const 65536)) (i32.const 1))))))
      (local.get $p))
    ;; Whether the result<_, error-code> at $ret is ok; keeps the first error.
    (func $ok (param $ret i32) (result i32)
      (if (result i32) (i32.eqz (i32.load8_u (local.get $ret)))
        (then (i32.const 1))
        (else
          (if (i32.eqz (global.get $err))
            (then (global.set $err (i32.add (i32.load8_u offset=1 (local.get $ret)) (i32.const 1)))))
          (i32.const 0))))
    (func $bind (param $s i32) (param $net i32) (result i32)
      (call $start-bind (local.get $s) (local.get $net) (i32.const 0) (i32.const 0)
        (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)
        (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)
        (i32.const 80))
      (if (result i32) (call $ok (i32.const 80))
        (then (call $finish-bind (local.get $s) (i32.const 80)) (call $ok (i32.const 80)))
        (else (i32.const 0))))
    (func (export "run") (param $p i32) (param $len i32) (result i32)
      (local $mode i32) (local $n i32) (local $i i32) (local $net i32) (local $s i32)
      (local $created i32) (local $done i32) (local $k i32)
      (local.set $mode (i32.load (local.get $p)))
      (local.set $n (i32.load offset=4 (local.get $p)))
      (local.set $net (call $inet))
      (block $end (loop $each
        (br_if $end (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (call $create (i32.const 0) (i32.const 64))
        (if (i32.load8_u (i32.const 64))
          (then
            (if (i32.eqz (global.get $err))
              (then (global.set $err (i32.add (i32.load8_u offset=4 (i32.const 64)) (i32.const 1)))))
            (br $end)))
        (local.set $s (i32.load offset=4 (i32.const 64)))
        (local.set $created (i32.add (local.get $created) (i32.const 1)))
        (if (i32.eq (local.get $mode) (i32.const 1))
          (then
            (call $start-connect (local.get $s) (local.get $net) (i32.const 0)
              (i32.load16_u offset=12 (local.get $p))
              (i32.load8_u offset=8 (local.get $p)) (i32.load8_u offset=9 (local.get $p))
              (i32.load8_u offset=10 (local.get $p)) (i32.load8_u offset=11 (local.get $p))
              (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)
              (i32.const 80))
            (if (call $ok (i32.const 80))
              (then
                (local.set $k (i32.const 0))
                (block $connected (loop $poll
                  (call $finish-connect (local.get $s) (i32.const 96))
                  (if (i32.eqz (i32.load8_u (i32.const 96)))
                    (then (local.set $done (i32.add (local.get $done) (i32.const 1))) (br $connected)))
                  ;; 8 = would-block: poll again (2000 times at most; the kernel has
                  ;; connected a loopback socket long before, see the server)
                  (if (i32.ne (i32.load8_u offset=4 (i32.const 96)) (i32.const 8))
                    (then
                      (if (i32.eqz (global.get $err))
                        (then (global.set $err (i32.add (i32.load8_u offset=4 (i32.const 96)) (i32.const 1)))))
                      (br $connected)))
                  (local.set $k (i32.add (local.get $k) (i32.const 1)))
                  (br_if $poll (i32.lt_u (local.get $k) (i32.const 2000)))))))))
        (if (i32.eq (local.get $mode) (i32.const 2))
          (then
            (if (call $bind (local.get $s) (local.get $net))
              (then (local.set $done (i32.add (local.get $done) (i32.const 1)))))))
        (if (i32.eq (local.get $mode) (i32.const 3))
          (then
            (if (call $bind (local.get $s) (local.get $net))
              (then
                (call $start-listen (local.get $s) (i32.const 80))
                (if (call $ok (i32.const 80))
                  (then
                    (call $finish-listen (local.get $s) (i32.const 80))
                    (if (call $ok (i32.const 80))
                      (then (local.set $done (i32.add (local.get $done) (i32.const 1)))))))))))
        (br $each)))
      (i32.store (i32.const 256) (local.get $created))
      (i32.store (i32.const 260) (local.get $done))
      (i32.store (i32.const 264) (global.get $err))
      (i32.store (i32.const 512) (i32.const 256))
      (i32.store (i32.const 516) (i32.const 12))
      (i32.const 512)))
  (core instance $env
    (export "memory" (memory $memory))
    (export "inet" (func $c-inet))
    (export "create" (func $c-create))
    (export "start-bind" (func $c-start-bind))
    (export "finish-bind" (func $c-finish-bind))
    (export "start-connect" (func $c-start-connect))
    (export "finish-connect" (func $c-finish-connect))
    (export "start-listen" (func $c-start-listen))
    (export "finish-listen" (func $c-finish-listen)))
  (core instance $main (instantiate $Main (with "env" (instance $env))))
  (func (export "run") (param "input" (list u8)) (result (list u8))
    (canon lift (core func $main "run") (memory $memory) (realloc (core func $main "realloc")))))"#
    )
}

fn sockets_plugin(policy: Policy) -> Plugin {
    let wat = sockets_component();
    Plugin::new(
        runtime()
            .load_bytes("sockets.wat", wat.as_bytes(), policy)
            .unwrap_or_else(|e| panic!("load the sockets component: {e}")),
    )
}

/// `(created, succeeded, first error code + 1)` of one `run`.
fn run_sockets(p: &mut Plugin, mode: u32, count: u32, port: u16) -> Result<(u32, u32, u32), Error> {
    let mut input = Vec::new();
    input.extend_from_slice(&mode.to_le_bytes());
    input.extend_from_slice(&count.to_le_bytes());
    input.extend_from_slice(&[127, 0, 0, 1]);
    input.extend_from_slice(&u32::from(port).to_le_bytes());
    let out = p.call("run", input)?;
    let w = |i: usize| u32::from_le_bytes(out[4 * i..4 * i + 4].try_into().unwrap());
    Ok((w(0), w(1), w(2)))
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn the_sockets_component_works_under_a_grant() {
    // The harness itself: one connection to a granted address succeeds.
    let s = Recorder::start();
    let mut p = sockets_plugin(Policy::default().with_allowed_host(&s.grant()));
    assert_eq!(run_sockets(&mut p, 1, 1, s.port).unwrap(), (1, 1, 0));
    // And to an ungranted port it is refused.
    let other = Recorder::start();
    let r = run_sockets(&mut p, 1, 1, other.port);
    assert!(matches!(r, Ok((1, 0, e)) if e == 2), "{r:?}");
}

#[test]
fn a_component_without_grants_cannot_hold_unbounded_sockets() {
    // No network granted, at most 16 open files: the host's descriptors a
    // guest holds should be bounded likewise.
    let policy = with_max_open_files(Policy::default(), 16);
    let mut p = sockets_plugin(policy);
    let before = open_fds();
    let (created, _, err) = run_sockets(&mut p, 0, 200, 0).unwrap();
    let held = open_fds().saturating_sub(before);
    assert!(
        created <= 16,
        "a component with no network grant created {created} sockets (error {err}); \
         {held} more descriptors are open in the host after the call returned"
    );
}

#[test]
fn a_component_without_grants_binds_no_port_and_listens_nowhere() {
    let mut p = sockets_plugin(Policy::default());
    let listened = run_sockets(&mut p, 3, 1, 0).unwrap();
    assert_eq!(listened.1, 0, "listened without a grant: {listened:?}");
    let bound = run_sockets(&mut p, 2, 3, 0).unwrap();
    assert_eq!(
        bound.1, 0,
        "bound {} ports without any grant (README: binding never)",
        bound.1
    );
}

#[test]
fn a_component_cannot_keep_unbounded_connections_open_across_calls() {
    let s = Recorder::start();
    let policy = with_max_open_files(Policy::default().with_allowed_host(&s.grant()), 16);
    let mut p = sockets_plugin(policy);
    let (created, _, _) = run_sockets(&mut p, 1, 100, s.port).unwrap();
    // The call is over; the instance idles.
    std::thread::sleep(Duration::from_millis(300));
    let open = s.open_now();
    drop(p);
    let start = Instant::now();
    while s.open_now() > 0 && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        open <= 16,
        "{created} sockets connecting in one call; the server holds {open} connections while \
         the guest is not running ({} once the plugin is dropped)",
        s.open_now()
    );
}
