;; The Rust greeter returns a greeting that is not UTF-8.
(module
  (memory (export "memory") 1)
  ;; pair at 16 -> 4 bytes at 32
  (data (i32.const 16) "\20\00\00\00\04\00\00\00")
  (data (i32.const 32) "Hi\ff\fe")
  ;; A bump allocator: every area is distinct (at least one byte apart),
  ;; wraps around before the end of the single page; frees are no-ops.
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
  (func (export "wasm_memory_rust_format_hello_world") (param i32 i32) (result i32)
    (i32.const 16)))
