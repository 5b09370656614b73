//! Bounds on what a guest makes the host hold or spend: the memory and
//! table limits over all of an instance's memories and tables, the size and
//! compile time of a module, and guest-chosen error text.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::cli;
use wasm_abi::built;
use wasm_app::policy::{DEFAULT_MAX_TABLE_ELEMENTS, DEFAULT_TIMEOUT};
use wasm_app::text::MAX_GUEST_TEXT;
use wasm_app::{Error, Limit, Plugin, Policy, StringAbi};

fn limits_case(file: &str) -> String {
    format!("{}/tests/limits/{file}", env!("CARGO_MANIFEST_DIR"))
}

fn policy_with_memory(bytes: u64) -> Policy {
    let mut p = Policy::default();
    p.limits.max_memory = bytes;
    p
}

#[test]
fn nine_memories_count_together_against_the_memory_limit() {
    let limit = 16 << 20;
    let module = common::runtime()
        .load(
            Path::new(&limits_case("nine_memories.wat")),
            policy_with_memory(limit),
        )
        .expect("nine_memories loads");
    match Plugin::new(module).instantiate() {
        Err(Error::LimitExceeded(Limit::Memory(m))) => assert_eq!(m, limit),
        Err(other) => panic!("expected the 16 MiB memory limit, got {other:?}"),
        Ok(_) => panic!("135 MiB of memories passed a 16 MiB limit"),
    }
    // With room for all nine, the same module runs.
    let module = common::runtime()
        .load(
            Path::new(&limits_case("nine_memories.wat")),
            policy_with_memory(136 << 20),
        )
        .expect("nine_memories loads");
    assert_eq!(Plugin::new(module).answer().expect("answer"), 42);
}

#[test]
fn growing_a_second_memory_stops_at_the_shared_limit() {
    let limit = 16 << 20;
    let module = common::runtime()
        .load(
            Path::new(&limits_case("grow_second_memory.wat")),
            policy_with_memory(limit),
        )
        .expect("grow_second_memory loads");
    // Memory 0 holds 15 MiB and memory 1 one page, so only 15 more pages of
    // 64 KiB fit; the 16th growth hits the limit.
    match Plugin::new(module).answer() {
        Err(Error::LimitExceeded(Limit::Memory(m))) => assert_eq!(m, limit),
        other => panic!("expected the 16 MiB memory limit, got {other:?}"),
    }
}

#[test]
fn two_tables_count_together_against_the_table_limit() {
    let module = common::runtime()
        .load(Path::new(&limits_case("two_tables.wat")), Policy::default())
        .expect("two_tables loads");
    match Plugin::new(module).instantiate() {
        Err(Error::LimitExceeded(Limit::TableElements(n))) => {
            assert_eq!(n, DEFAULT_MAX_TABLE_ELEMENTS)
        }
        Err(other) => panic!("expected the table limit, got {other:?}"),
        Ok(_) => panic!("120 000 table elements passed a limit of 100 000"),
    }
}

#[test]
fn guest_error_text_is_capped_and_escaped() {
    let module = common::runtime()
        .load(
            Path::new(&limits_case("escape_error.wat")),
            Policy::default(),
        )
        .expect("escape_error loads");
    let mut p = Plugin::new(module);
    let message = match p.greet(StringAbi::Rust, "x") {
        Err(Error::GuestReported { message: Some(m) }) => m,
        other => panic!("expected the guest's error, got {other:?}"),
    };
    assert!(
        message.len() <= MAX_GUEST_TEXT + 64,
        "{} bytes",
        message.len()
    );
    assert!(!message.chars().any(char::is_control), "{message:.120}");
    assert!(message.starts_with("\\u{1b}[2J"), "{message:.120}");
    assert!(message.ends_with("more bytes cut)"), "{message:.120}");
    // Reporting an error through the ABI leaves the instance usable.
    assert!(p.has_instance());
}

/// Names inside a module (its name, its functions', its imports') are the
/// guest's text too: in a wasmtime error that is not a trap (a WASI call
/// from a module without memory), a backtrace, or an instantiation error,
/// they are capped and escaped like any guest message.
#[test]
fn names_chosen_by_the_module_are_capped_and_escaped_in_errors() {
    let pad = "A".repeat(60_000);
    let wat = format!(
        r#"(module $"\1b]0;pwned\07{pad}"
  (import "wasi_snapshot_preview1" "sched_yield" (func $y (result i32)))
  (func $"\1b[2J\1b[31mevil{pad}" (export "answer") (result i32)
    (call $y)))"#
    );
    let module = common::runtime()
        .load_bytes("names.wat", wat.as_bytes(), Policy::default())
        .expect("load");
    let clean = |what: &str, text: &str| {
        assert!(!text.chars().any(char::is_control), "{what}: {text:.120}");
        assert!(
            text.len() < MAX_GUEST_TEXT + 200,
            "{what}: {} bytes",
            text.len()
        );
    };
    match Plugin::new(module).answer() {
        Err(e @ Error::Trap { .. }) => {
            clean("the error", &e.to_string());
            if let Error::Trap {
                backtrace: Some(b), ..
            } = &e
            {
                clean("the backtrace", b);
            }
        }
        other => panic!("expected a trap, got {other:?}"),
    }
    let wat = format!(r#"(module (import "\1b[2J{pad}" "x" (func)))"#);
    match common::runtime().load_bytes("import.wat", wat.as_bytes(), Policy::default()) {
        Err(e @ Error::Instantiate(_)) => clean("the instantiation error", &e.to_string()),
        other => panic!("expected an instantiation error, got {:?}", other.map(drop)),
    }
}

#[test]
fn the_cli_prints_guest_text_on_one_escaped_line() {
    let cache = tempfile::tempdir().expect("tempdir");
    let o = cli::wasm_app(
        &[
            "greet",
            "--no-cache",
            "--module",
            &limits_case("escape_error.wat"),
            "--abi",
            "rust",
            "x",
        ],
        cache.path(),
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err:.200}");
    assert!(
        err.starts_with("error: guest reported an error: "),
        "{err:.200}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err:.200}");
    assert!(!o.stderr.contains(&0x1b), "an escape byte reached stderr");
    assert!(
        o.stderr.len() < MAX_GUEST_TEXT + 200,
        "{} bytes",
        o.stderr.len()
    );
}

#[test]
fn a_module_over_its_size_limit_is_refused_before_compiling() {
    let path = common::guest_path(built::MODULE2);
    let mut policy = Policy::default();
    policy.limits.max_module_size = 64 << 10;
    match common::runtime().load(&path, policy) {
        Err(Error::LimitExceeded(Limit::ModuleSize(n))) => assert_eq!(n, 64 << 10),
        Err(other) => panic!("expected the module size limit, got {other:?}"),
        Ok(_) => panic!("a 900 KiB module passed a 64 KiB limit"),
    }
}

#[test]
fn a_compilation_over_its_time_limit_is_abandoned() {
    // wasm_module2 takes Cranelift far longer than 1 ms, and this runtime
    // has no cache, so it is compiled.
    let path = common::guest_path(built::MODULE2);
    let mut policy = Policy::default();
    policy.limits.compile_timeout = Duration::from_millis(1);
    let started = Instant::now();
    match common::runtime().load(&path, policy) {
        Err(Error::LimitExceeded(Limit::CompileTime(d))) => {
            assert_eq!(d, Duration::from_millis(1))
        }
        Err(other) => panic!("expected the compile time limit, got {other:?}"),
        Ok(_) => panic!("wasm_module2 compiled within 1 ms"),
    }
    assert!(started.elapsed() < DEFAULT_TIMEOUT);
    // One abandoned compilation does not block the next.
    common::runtime()
        .load(&path, Policy::default())
        .expect("wasm_module2 loads with the default compile timeout");
}
