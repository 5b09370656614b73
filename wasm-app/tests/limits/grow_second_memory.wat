;; Memory 0 starts at 15 MiB; `answer` grows memory 1 one page at a time
;; until growth fails, then reports how many pages it got.
(module
  (memory (export "memory") 240)
  (memory $second 1)
  (func (export "answer") (result i32)
    (local $n i32)
    (block $done
      (loop $grow
        (br_if $done (i32.eq (memory.grow $second (i32.const 1)) (i32.const -1)))
        (local.set $n (i32.add (local.get $n) (i32.const 1)))
        (br $grow)))
    (local.get $n)))
