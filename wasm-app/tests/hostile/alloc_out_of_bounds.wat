;; `wasm_allocate` returns a pointer far outside its one-page memory.
(module
  (memory (export "memory") 1)
  (func (export "wasm_allocate") (param i32) (result i32) (i32.const 0x7fff0000))
  (func (export "wasm_deallocate") (param i32) (result i32) (i32.const 0))
  (func (export "answer") (result i32) (i32.const 42))
  (func (export "wasm_memory_c_format_hello_world") (param i32) (result i32)
    (i32.const 0)))
