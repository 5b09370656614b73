;; The Rust greeter fails, and `wasm_last_error` returns a 4 MiB message
;; that starts with terminal escape sequences (clear screen, set title) and
;; goes on with bytes that are mostly NUL.
(module
  (memory (export "memory") 80)
  (data (i32.const 1024) "\1b[2J\1b]0;owned\07\1b[31mred")
  ;; the pair at 512: payload 1024, length 4 MiB
  (data (i32.const 512) "\00\04\00\00\00\00\40\00")
  (func (export "wasm_allocate") (param i32) (result i32) (i32.const 4194304))
  (func (export "wasm_deallocate") (param i32) (result i32) (i32.const 0))
  (func (export "wasm_last_error") (result i32) (i32.const 512))
  (func (export "wasm_memory_rust_format_hello_world") (param i32 i32) (result i32)
    (i32.const 0)))
