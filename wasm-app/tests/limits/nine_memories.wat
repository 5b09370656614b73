;; Nine memories of 15 MiB (240 pages) each: every one fits a 16 MiB limit,
;; together they hold 135 MiB.
(module
  (memory (export "memory") 240)
  (memory 240) (memory 240) (memory 240) (memory 240)
  (memory 240) (memory 240) (memory 240) (memory 240)
  (func (export "answer") (result i32) (i32.const 42)))
