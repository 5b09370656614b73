;; Imports a function no host provides.
(module
  (import "env" "foo" (func $foo))
  (memory (export "memory") 1)
  (func (export "answer") (result i32)
    (call $foo)
    (i32.const 42)))
