;; Like a Rust guest whose panic hook recorded a message, then aborted:
;; `wasm_last_error` describes the panic, the greeter traps.
(module
  (memory (export "memory") 1)
  (data (i32.const 64) "guest panicked: boom")
  (data (i32.const 32) "\40\00\00\00\14\00\00\00")
  (func (export "wasm_allocate") (param i32) (result i32) (i32.const 256))
  (func (export "wasm_deallocate") (param i32) (result i32) (i32.const 0))
  (func (export "wasm_last_error") (result i32) (i32.const 32))
  (func (export "wasm_memory_rust_format_hello_world") (param i32 i32) (result i32)
    unreachable))
