;; `wasm_allocate` hands out the same area every time, so the Arrow
;; call's two inputs would overwrite each other.
(module
  (memory (export "memory") 1)
  (func (export "wasm_allocate") (param i32) (result i32) (i32.const 1024))
  (func (export "wasm_deallocate") (param i32) (result i32) (i32.const 0))
  (func (export "answer") (result i32) (i32.const 42))
  (func (export "wasm_memory_process_data_arrow") (param i32 i32 i32 i32) (result i32)
    (i32.const 0)))
