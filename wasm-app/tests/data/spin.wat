;; Greeter-shaped module whose greeter never returns.
(module
  (memory (export "memory") 1)
  (func (export "wasm_allocate") (param i32) (result i32) (i32.const 16))
  (func (export "wasm_deallocate") (param i32) (result i32) (i32.const 0))
  (func (export "wasm_memory_rust_format_hello_world") (param i32 i32) (result i32)
    (loop $again (br $again))
    (i32.const 0)))
