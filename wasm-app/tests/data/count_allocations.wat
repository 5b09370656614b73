;; Counts `wasm_allocate` calls: the Arrow export returns the count (4 bytes,
;; little-endian) instead of a stream, and the first 4 bytes of its data
;; input; the Rust-ABI greeter returns the count as one ASCII digit followed
;; by the name. So a test can see how often the host allocates and that the
;; bytes it wrote arrived. A 64-byte aligned bump allocator that never frees.
(module
  (memory (export "memory") 2)
  (global $next (mut i32) (i32.const 1024))
  (global $allocs (mut i32) (i32.const 0))
  (func (export "wasm_allocate") (param $n i32) (result i32)
    (local $p i32)
    (local $need i32)
    (global.set $allocs (i32.add (global.get $allocs) (i32.const 1)))
    (local.set $p (i32.and (i32.add (global.get $next) (i32.const 63)) (i32.const -64)))
    (global.set $next (i32.add (local.get $p) (local.get $n)))
    (local.set $need
      (i32.sub (global.get $next) (i32.mul (memory.size) (i32.const 65536))))
    (if (i32.gt_s (local.get $need) (i32.const 0))
      (then
        (if (i32.lt_s
              (memory.grow (i32.add (i32.div_u (local.get $need) (i32.const 65536)) (i32.const 1)))
              (i32.const 0))
          (then (return (i32.const 0))))))
    (local.get $p))
  (func (export "wasm_deallocate") (param i32) (result i32) (i32.const 0))
  ;; Payload at 16: [allocations, first 4 data bytes]; the pair at 8.
  (func (export "wasm_memory_process_data_arrow")
        (param $meta i32) (param $meta_len i32) (param $data i32) (param $data_len i32)
        (result i32)
    (i32.store (i32.const 16) (global.get $allocs))
    (i32.store (i32.const 20) (i32.const 0))
    (if (i32.ge_u (local.get $data_len) (i32.const 4))
      (then (i32.store (i32.const 20) (i32.load (local.get $data)))))
    (i32.store (i32.const 8) (i32.const 16))
    (i32.store (i32.const 12) (i32.const 8))
    (i32.const 8))
  ;; Greeting at 32: [digit of allocations, name...]; the pair at 24.
  ;; Names must stay under 900 bytes (the allocator starts at 1024).
  (func (export "wasm_memory_rust_format_hello_world")
        (param $name i32) (param $len i32) (result i32)
    (i32.store8 (i32.const 32) (i32.add (i32.const 48) (global.get $allocs)))
    (memory.copy (i32.const 33) (local.get $name) (local.get $len))
    (i32.store (i32.const 24) (i32.const 32))
    (i32.store (i32.const 28) (i32.add (local.get $len) (i32.const 1)))
    (i32.const 24))
)
