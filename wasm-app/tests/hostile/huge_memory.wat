;; Declares a minimum of 40000 pages (about 2.5 GiB) of linear memory.
(module
  (memory (export "memory") 40000)
  (func (export "answer") (result i32) (i32.const 42)))
