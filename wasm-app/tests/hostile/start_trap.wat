;; The start function traps, so no instance can ever be made.
(module
  (memory (export "memory") 1)
  (func $start (unreachable))
  (start $start)
  (func (export "answer") (result i32) (i32.const 42)))
