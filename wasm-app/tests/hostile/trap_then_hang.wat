;; The C greeter spins for 250 ms (by the monotonic clock), then traps; the
;; `wasm_last_error` the host then calls for the panic message never
;; returns. Both together must fit in one call's timeout.
(module
  (import "wasi_snapshot_preview1" "clock_time_get"
    (func $clock_time_get (param i32 i64 i32) (result i32)))
  (memory (export "memory") 1)
  (global $bump (mut i32) (i32.const 4096))
  (func (export "wasm_allocate") (param $size i32) (result i32)
    (local $p i32)
    (if (i32.gt_u (i32.add (global.get $bump) (local.get $size)) (i32.const 61440))
      (then (global.set $bump (i32.const 4096))))
    (local.set $p (global.get $bump))
    (global.set $bump
      (i32.and (i32.add (i32.add (local.get $p) (local.get $size)) (i32.const 64))
               (i32.const -64)))
    (local.get $p))
  (func (export "wasm_deallocate") (param i32) (result i32) (i32.const 0))
  (func (export "answer") (result i32) (i32.const 42))
  ;; Monotonic time in ns (stored at 0).
  (func $now (result i64)
    (drop (call $clock_time_get (i32.const 1) (i64.const 1) (i32.const 0)))
    (i64.load (i32.const 0)))
  (func (export "wasm_memory_c_format_hello_world") (param i32) (result i32)
    (local $end i64)
    (local.set $end (i64.add (call $now) (i64.const 250000000)))
    (loop $spin
      (br_if $spin (i64.lt_u (call $now) (local.get $end))))
    (unreachable))
  (func (export "wasm_last_error") (result i32)
    (loop $spin (br $spin))
    (i32.const 0)))
