;; A valid module that implements none of the ABI: only a memory.
(module
  (memory (export "memory") 1))
