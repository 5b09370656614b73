;; Exports the Rust greeter with one parameter instead of two.
(module
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
  (func (export "wasm_memory_rust_format_hello_world") (param i32) (result i32)
    (i32.const 0)))
