;; A sandbox probe. Its Rust greeter takes a command instead of a name and
;; returns two decimal digits (a WASI errno, or a count) followed by data:
;;   "e"       -> number of environment variables, then the environ buffer
;;   "r:PATH"  -> path_open(3, PATH) with the FD_READ right, then fd_read:
;;                the errno of the first step that failed (00 if none), then
;;                the first bytes of the file
;;   "w:PATH"  -> path_open(3, PATH, O_CREAT) with the FD_WRITE right, then
;;                write "probe" at its start: the errno of the first step
;;                that failed (00 if none)
;; fd 3 is the first preopened directory, if the policy grants one.
(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read"
    (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close"
    (func $fd_close (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get"
    (func $environ_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_get"
    (func $environ_get (param i32 i32) (result i32)))

  ;; Layout: 16 result pair, 32 opened fd, 40 iovec, 48 bytes read/written,
  ;; 56 env count, 60 env buffer size, 64 "probe", 256.. environ pointers
  ;; (64 at most), 1024.. output (2 digits + up to 2048 bytes),
  ;; 4096.. allocator areas.
  (memory (export "memory") 1)
  (data (i32.const 64) "probe")

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

  ;; Two decimal digits of $n at 1024.
  (func $digits (param $n i32)
    (i32.store8 (i32.const 1024)
      (i32.add (i32.const 48) (i32.div_u (local.get $n) (i32.const 10))))
    (i32.store8 (i32.const 1025)
      (i32.add (i32.const 48) (i32.rem_u (local.get $n) (i32.const 10)))))

  ;; The pair (1024, $len) at 16.
  (func $reply (param $len i32) (result i32)
    (i32.store (i32.const 16) (i32.const 1024))
    (i32.store (i32.const 20) (local.get $len))
    (i32.const 16))

  (func $env (result i32)
    (if (call $environ_sizes_get (i32.const 56) (i32.const 60)) (then (unreachable)))
    (if (i32.gt_u (i32.load (i32.const 56)) (i32.const 64)) (then (unreachable)))
    (if (i32.gt_u (i32.load (i32.const 60)) (i32.const 2048)) (then (unreachable)))
    (if (call $environ_get (i32.const 256) (i32.const 1026)) (then (unreachable)))
    (call $digits (i32.load (i32.const 56)))
    (call $reply (i32.add (i32.const 2) (i32.load (i32.const 60)))))

  (func $open (param $path i32) (param $len i32) (param $write i32) (result i32)
    (local $errno i32)
    (local $fd i32)
    (local $n i32)
    (local.set $errno
      (call $path_open
        (i32.const 3)                                       ;; dir fd
        (i32.const 0)                                       ;; lookup flags
        (local.get $path) (local.get $len)
        (select (i32.const 1) (i32.const 0) (local.get $write))   ;; O_CREAT
        (select (i64.const 64) (i64.const 2) (local.get $write))  ;; FD_WRITE / FD_READ
        (i64.const 0)                                       ;; inheriting rights
        (i32.const 0)                                       ;; fd flags
        (i32.const 32)))                                    ;; -> fd
    (call $digits (local.get $errno))
    (if (local.get $errno) (then (return (call $reply (i32.const 2)))))
    (local.set $fd (i32.load (i32.const 32)))
    (if (local.get $write)
      (then
        (i32.store (i32.const 40) (i32.const 64))
        (i32.store (i32.const 44) (i32.const 5))
        (local.set $errno
          (call $fd_write (local.get $fd) (i32.const 40) (i32.const 1) (i32.const 48))))
      (else
        (i32.store (i32.const 40) (i32.const 1026))
        (i32.store (i32.const 44) (i32.const 2048))
        (local.set $errno
          (call $fd_read (local.get $fd) (i32.const 40) (i32.const 1) (i32.const 48)))
        (if (i32.eqz (local.get $errno))
          (then (local.set $n (i32.load (i32.const 48)))))))
    (drop (call $fd_close (local.get $fd)))
    (call $digits (local.get $errno))
    (call $reply (i32.add (i32.const 2) (local.get $n))))

  (func (export "wasm_memory_rust_format_hello_world") (param $ptr i32) (param $len i32) (result i32)
    (local $cmd i32)
    (if (i32.eqz (local.get $len)) (then (unreachable)))
    (local.set $cmd (i32.load8_u (local.get $ptr)))
    (if (i32.eq (local.get $cmd) (i32.const 101))           ;; 'e'
      (then (return (call $env))))
    (if (i32.lt_u (local.get $len) (i32.const 2)) (then (unreachable)))
    (if (i32.eq (local.get $cmd) (i32.const 114))           ;; 'r'
      (then (return (call $open (i32.add (local.get $ptr) (i32.const 2))
                                (i32.sub (local.get $len) (i32.const 2))
                                (i32.const 0)))))
    (if (i32.eq (local.get $cmd) (i32.const 119))           ;; 'w'
      (then (return (call $open (i32.add (local.get $ptr) (i32.const 2))
                                (i32.sub (local.get $len) (i32.const 2))
                                (i32.const 1)))))
    (unreachable)))
