//! WAT pieces of the guests the tests generate.

/// A bump allocator as `wasm_allocate` (function `$alloc`): 64-byte aligned
/// areas from `start` up, growing memory when an area passes its end, 0 when
/// it cannot grow; and a `wasm_deallocate` that frees nothing. Goes inside a
/// `(module ...)` that defines the exported `memory`.
pub fn bump_allocator(start: usize) -> String {
    format!(
        r#"  (global $next (mut i32) (i32.const {start}))
  (func $alloc (export "wasm_allocate") (param $n i32) (result i32)
    (local $p i32)
    (local $need i32)
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
  (func (export "wasm_deallocate") (param i32) (result i32) (i32.const 0))"#
    )
}
