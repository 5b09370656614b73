;; Two tables of 60 000 elements each: each fits the default limit of
;; 100 000 elements, together they do not.
(module
  (memory (export "memory") 1)
  (table 60000 funcref)
  (table 60000 funcref)
  (func (export "answer") (result i32) (i32.const 42)))
