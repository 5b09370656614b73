;; Blocks the host in WASI. Its Rust greeter takes a command and returns
;; two decimal digits (a WASI errno, 00 if none) then five digits (a count):
;;   "sleep"   -> poll_oneoff on a relative monotonic clock of 2^64-1 ns
;;                (584 years)
;;   "o:PATH"  -> path_open(3, PATH) with FD_READ (a FIFO blocks in open(2)
;;                until a writer appears)
;;   "r:PATH"  -> the same, then fd_read (a FIFO with a writer and no data
;;                blocks in read(2))
;;   "m:PATH"  -> path_open(3, PATH) up to 10000 times, never closing: the
;;                errno that stopped it and the number of files opened
;; fd 3 is the first preopened directory. `answer` is well-behaved.
(module
  (import "wasi_snapshot_preview1" "poll_oneoff"
    (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read"
    (func $fd_read (param i32 i32 i32 i32) (result i32)))

  ;; Layout: 16 result pair, 32 opened fd, 40 iovec, 48 bytes read,
  ;; 64 subscription (48 bytes), 128 event (32 bytes), 160 event count,
  ;; 1024.. output, 2048.. read buffer, 4096.. allocator areas.
  (memory (export "memory") 1)

  (global $bump (mut i32) (i32.const 4096))
  (func (export "wasm_allocate") (param $size i32) (result i32)
    (local $p i32)
    (if (i32.gt_u (i32.add (global.get $bump) (local.get $size)) (i32.const 61440))
      (then (global.set $bump (i32.const 4096))))
    (local.set $p (global.get $bump))
    (global.set $bump
      (i32.and (i32.add (i32.add (local.get $p) (local.get $size)) (i32.const 64))
               (i32.const -64)))
    (local.get $p))
  (func (export "wasm_deallocate") (param i32) (result i32) (i32.const 0))
  (func (export "answer") (result i32) (i32.const 42))

  ;; $width decimal digits of $n at $at.
  (func $decimal (param $at i32) (param $width i32) (param $n i32)
    (loop $next
      (local.set $width (i32.sub (local.get $width) (i32.const 1)))
      (i32.store8 (i32.add (local.get $at) (local.get $width))
        (i32.add (i32.const 48) (i32.rem_u (local.get $n) (i32.const 10))))
      (local.set $n (i32.div_u (local.get $n) (i32.const 10)))
      (br_if $next (local.get $width))))

  ;; The reply "EE" "NNNNN": errno and count, as the pair at 16.
  (func $reply (param $errno i32) (param $count i32) (result i32)
    (call $decimal (i32.const 1024) (i32.const 2) (local.get $errno))
    (call $decimal (i32.const 1026) (i32.const 5) (local.get $count))
    (i32.store (i32.const 16) (i32.const 1024))
    (i32.store (i32.const 20) (i32.const 7))
    (i32.const 16))

  (func $sleep (result i32)
    (i64.store (i32.const 64) (i64.const 0))          ;; userdata
    (i32.store8 (i32.const 72) (i32.const 0))         ;; tag: clock
    (i32.store (i32.const 80) (i32.const 1))          ;; monotonic
    (i64.store (i32.const 88) (i64.const -1))         ;; timeout: 2^64-1 ns
    (i64.store (i32.const 96) (i64.const 0))          ;; precision
    (i32.store16 (i32.const 104) (i32.const 0))       ;; relative
    (call $reply
      (call $poll_oneoff (i32.const 64) (i32.const 128) (i32.const 1) (i32.const 160))
      (i32.const 0)))

  (func $open (param $path i32) (param $len i32) (result i32)
    (call $path_open
      (i32.const 3) (i32.const 0)
      (local.get $path) (local.get $len)
      (i32.const 0)                                   ;; no O_CREAT
      (i64.const 2) (i64.const 0)                     ;; FD_READ
      (i32.const 0)
      (i32.const 32)))

  (func $read (param $path i32) (param $len i32) (result i32)
    (local $errno i32)
    (local.set $errno (call $open (local.get $path) (local.get $len)))
    (if (local.get $errno) (then (return (call $reply (local.get $errno) (i32.const 0)))))
    (i32.store (i32.const 40) (i32.const 2048))
    (i32.store (i32.const 44) (i32.const 1024))
    (local.set $errno
      (call $fd_read (i32.load (i32.const 32)) (i32.const 40) (i32.const 1) (i32.const 48)))
    (call $reply (local.get $errno) (i32.load (i32.const 48))))

  (func $many (param $path i32) (param $len i32) (result i32)
    (local $errno i32)
    (local $n i32)
    (loop $again
      (local.set $errno (call $open (local.get $path) (local.get $len)))
      (if (i32.eqz (local.get $errno))
        (then
          (local.set $n (i32.add (local.get $n) (i32.const 1)))
          (br_if $again (i32.lt_u (local.get $n) (i32.const 10000))))))
    (call $reply (local.get $errno) (local.get $n)))

  (func (export "wasm_memory_rust_format_hello_world") (param $ptr i32) (param $len i32) (result i32)
    (local $cmd i32)
    (if (i32.eqz (local.get $len)) (then (unreachable)))
    (local.set $cmd (i32.load8_u (local.get $ptr)))
    (if (i32.eq (local.get $cmd) (i32.const 115))           ;; 's'
      (then (return (call $sleep))))
    (if (i32.lt_u (local.get $len) (i32.const 2)) (then (unreachable)))
    (local.set $ptr (i32.add (local.get $ptr) (i32.const 2)))
    (local.set $len (i32.sub (local.get $len) (i32.const 2)))
    (if (i32.eq (local.get $cmd) (i32.const 111))           ;; 'o'
      (then (return (call $reply (call $open (local.get $ptr) (local.get $len)) (i32.const 0)))))
    (if (i32.eq (local.get $cmd) (i32.const 114))           ;; 'r'
      (then (return (call $read (local.get $ptr) (local.get $len)))))
    (if (i32.eq (local.get $cmd) (i32.const 109))           ;; 'm'
      (then (return (call $many (local.get $ptr) (local.get $len)))))
    (unreachable)))
