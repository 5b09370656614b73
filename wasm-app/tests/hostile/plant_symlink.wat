;; A guest that plants symbolic links in its writable grant, for the host to
;; trip over later. Its Rust greeter takes "TARGET>LINK" instead of a name,
;; calls WASI path_symlink(TARGET, fd 3, LINK) (fd 3 is the first preopened
;; directory) and returns the errno as two decimal digits ("00" on success).
;; wasmtime refuses absolute targets, not relative ones that climb out:
;; "../secret.txt>out.csv" and "..>sub" both succeed.
(module
  (import "wasi_snapshot_preview1" "path_symlink"
    (func $path_symlink (param i32 i32 i32 i32 i32) (result i32)))

  ;; Layout: 16 result pair, 1024 output digits, 4096.. allocator areas.
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

  (func (export "wasm_memory_rust_format_hello_world") (param $ptr i32) (param $len i32) (result i32)
    (local $i i32)
    (local $errno i32)
    ;; Find '>' (62).
    (block $found
      (loop $scan
        (br_if $found (i32.eq (i32.load8_u (i32.add (local.get $ptr) (local.get $i)))
                              (i32.const 62)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (if (i32.ge_u (local.get $i) (local.get $len)) (then (unreachable)))
        (br $scan)))
    (local.set $errno
      (call $path_symlink
        (local.get $ptr) (local.get $i)
        (i32.const 3)
        (i32.add (local.get $ptr) (i32.add (local.get $i) (i32.const 1)))
        (i32.sub (local.get $len) (i32.add (local.get $i) (i32.const 1)))))
    (i32.store8 (i32.const 1024)
      (i32.add (i32.const 48) (i32.div_u (local.get $errno) (i32.const 10))))
    (i32.store8 (i32.const 1025)
      (i32.add (i32.const 48) (i32.rem_u (local.get $errno) (i32.const 10))))
    (i32.store (i32.const 16) (i32.const 1024))
    (i32.store (i32.const 20) (i32.const 2))
    (i32.const 16)))
