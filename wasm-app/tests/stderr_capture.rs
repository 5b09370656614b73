//! A guest's stderr explains its trap: the host keeps the last 4 KiB of it
//! (`stderr_tail.rs`), so a core module that prints and aborts (as C does)
//! without `wasm_last_error` is explained too, a guest flooding stderr
//! costs the host no memory, and an earlier operation's output is never
//! attached to a later trap. (Components: `component_hostile.rs`.)

mod common;

use std::time::Duration;

use wasm_app::{Error, Limits, Plugin, Policy};

fn policy() -> Policy {
    Policy {
        limits: Limits {
            timeout: Duration::from_secs(120),
            ..Limits::default()
        },
        ..Policy::default()
    }
}

/// `answer` writes `chunks` times 64 KiB of `A` to stderr (WASI preview 1
/// `fd_write` on fd 2), then its last words, then traps.
fn flood_wat(chunks: u32) -> String {
    format!(
        r#"(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (data (i32.const 16) "\1b[2Jlast words\n")
  (func (export "answer") (result i32)
    (local $i i32)
    (memory.fill (i32.const 1024) (i32.const 65) (i32.const 65536))
    (i32.store (i32.const 0) (i32.const 1024))
    (i32.store (i32.const 4) (i32.const 65536))
    (block $done
      (loop $more
        (br_if $done (i32.ge_u (local.get $i) (i32.const {chunks})))
        (drop (call $fd_write (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 8)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $more)))
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 15))
    (drop (call $fd_write (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 8)))
    unreachable))"#
    )
}

/// `VmRSS` or `VmHWM` of this process in bytes, if `/proc` tells.
fn proc_status_bytes(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn trap_message(r: wasm_app::Result<i32>) -> String {
    match r {
        Err(Error::Trap { message, .. }) => message,
        other => panic!("expected a trap, got {other:?}"),
    }
}

/// A core module without `wasm_last_error` that prints and traps: its last
/// words lead the error, escaped.
#[test]
fn a_core_trap_is_explained_by_what_the_guest_printed() {
    let m = common::runtime()
        .load_bytes("last-words.wat", flood_wat(0).as_bytes(), policy())
        .expect("load");
    let message = trap_message(Plugin::new(m).answer());
    assert_eq!(
        message,
        "\\u{1b}[2Jlast words; wasm trap: wasm `unreachable` instruction executed (in answer)"
    );
}

/// 100 MiB written to stderr before the trap: the message holds the end of
/// it, bounded, and the host's memory does not grow with it.
#[test]
fn a_stderr_flood_leaves_a_bounded_message_and_costs_no_memory() {
    let m = common::runtime()
        .load_bytes("flood.wat", flood_wat(1600).as_bytes(), policy())
        .expect("load");
    let mut guest = Plugin::new(m);
    guest.instantiate().expect("instance");
    let rss_before = proc_status_bytes("VmRSS:");
    let message = trap_message(guest.answer());
    assert!(
        message.ends_with("AAAA\\u{1b}[2Jlast words; wasm trap: wasm `unreachable` instruction executed (in answer)"),
        "{}",
        &message[message.len().saturating_sub(200)..]
    );
    // Everything but (about) the last 4 KiB was cut, and said so.
    let written: u64 = 1600 * 65536 + 15;
    let cut: u64 = message
        .strip_prefix("… (")
        .and_then(|m| m.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no note of what was cut: {message:.80}"));
    assert!(
        (written - 4096..written - 4000).contains(&cut),
        "{cut} of {written} cut"
    );
    assert!(message.len() < 4096 + 200, "{} bytes", message.len());
    match (rss_before, proc_status_bytes("VmHWM:")) {
        (Some(before), Some(peak)) => assert!(
            peak.saturating_sub(before) < 48 << 20,
            "the peak RSS grew by {} MiB while the guest wrote 100 MiB",
            peak.saturating_sub(before) >> 20
        ),
        _ => eprintln!("no /proc/self/status: memory not checked"),
    }
}

/// What an operation printed is forgotten when the next one starts: a
/// later trap that printed nothing is not explained by it.
#[test]
fn an_earlier_operations_output_never_explains_a_later_trap() {
    let wat = r#"(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $calls (mut i32) (i32.const 0))
  (data (i32.const 16) "old news\n")
  (func (export "answer") (result i32)
    (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
    (if (i32.gt_u (global.get $calls) (i32.const 1)) (then unreachable))
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 9))
    (drop (call $fd_write (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 8)))
    (i32.const 42)))"#;
    let m = common::runtime()
        .load_bytes("old-news.wat", wat.as_bytes(), policy())
        .expect("load");
    let mut guest = Plugin::new(m);
    assert_eq!(guest.answer().expect("first call"), 42);
    assert_eq!(
        trap_message(guest.answer()),
        "wasm trap: wasm `unreachable` instruction executed (in answer)"
    );
}

/// A policy that shares the host's stdio keeps nothing: the guest's stderr
/// is the host's (the test's output shows "inherited").
#[test]
fn inherited_stderr_is_not_kept() {
    let wat = r#"(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "inherited\n")
  (func (export "answer") (result i32)
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 10))
    (drop (call $fd_write (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 8)))
    unreachable))"#;
    let inherit = Policy {
        inherit_stdio: true,
        ..policy()
    };
    let m = common::runtime()
        .load_bytes("inherited.wat", wat.as_bytes(), inherit)
        .expect("load");
    assert_eq!(
        trap_message(Plugin::new(m).answer()),
        "wasm trap: wasm `unreachable` instruction executed (in answer)"
    );
}
