//! The generic call: any export with bytes in and bytes out, from Rust
//! (`Plugin::call`) and from the CLI (`wasm-app call`), on exports no host
//! code names; and the guests that abuse it.

mod common;

use std::io::Write;
use std::process::Stdio;
use std::time::{SystemTime, UNIX_EPOCH};

use wasm_abi::built;
use wasm_app::{Error, Limit, Plugin, Policy};

use common::cli::{self, arg};

/// What `wc` prints for `text`: lines, words, bytes.
fn wc(text: &[u8]) -> String {
    let lines = text.iter().filter(|&&b| b == b'\n').count();
    let words = text
        .split(|b| b.is_ascii_whitespace() || *b == 0x0b)
        .filter(|w| !w.is_empty())
        .count();
    format!("{lines} {words} {}\n", text.len())
}

/// A name no code of this project contains: made at run time.
fn fresh_name() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("export_{nanos:x}_{}", std::process::id())
}

/// A guest whose only export besides the allocator is `name`, of the pair
/// ABI: `body` gets the input as `$ptr`/`$len` and returns a pair pointer.
fn guest(name: &str, body: &str) -> Plugin {
    let wat = format!(
        r#"(module
  (memory (export "memory") 1)
{alloc}
  (func (export "{name}") (param $ptr i32) (param $len i32) (result i32)
    (local $out i32) (local $pair i32) (local $i i32)
{body}))"#,
        alloc = common::wat::bump_allocator(1024),
    );
    let module = common::runtime()
        .load_bytes(
            name,
            wat.as_bytes(),
            Policy::default().with_max_output(1 << 20),
        )
        .expect("load the generated guest");
    Plugin::new(module)
}

/// Reverses the input into a new area and returns a pair for it.
const REVERSE: &str = r#"
    (local.set $out (call $alloc (local.get $len)))
    (local.set $i (i32.const 0))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
        (i32.store8
          (i32.add (local.get $out) (local.get $i))
          (i32.load8_u
            (i32.sub (i32.add (local.get $ptr) (local.get $len))
                     (i32.add (local.get $i) (i32.const 1)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (local.set $pair (call $alloc (i32.const 8)))
    (i32.store (local.get $pair) (local.get $out))
    (i32.store offset=4 (local.get $pair) (local.get $len))
    (local.get $pair)"#;

#[test]
fn an_export_no_host_code_names_is_called_with_bytes() {
    let name = fresh_name();
    let mut p = guest(&name, REVERSE);
    for input in [&b""[..], b"a", b"hello, world", &[0u8, 255, 7, 0][..]] {
        let mut expected = input.to_vec();
        expected.reverse();
        assert_eq!(p.call(&name, input).expect("call"), expected);
    }
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let mut expected = big.clone();
    expected.reverse();
    assert_eq!(p.call(&name, &big).expect("a 200 kB call"), expected);
    assert_eq!(p.call_str(&name, "olleh").expect("call_str"), "hello");
}

#[test]
fn the_c_guests_own_export_through_plugin_call() {
    let mut p = Plugin::new(common::greeter_c());
    for text in [
        "",
        "one",
        "two words\n",
        "  spaced   out \n\n lines\tand tabs ",
    ] {
        assert_eq!(
            p.call("word_count", text).expect("word_count"),
            wc(text.as_bytes()).into_bytes(),
            "{text:?}"
        );
    }
    // The greeter's own export follows the pair ABI too, an empty name
    // included (lent like any input: the guest checks it is its area).
    assert_eq!(
        p.call_str(wasm_abi::GREET_RUST, "Call").expect("greet"),
        "Hello World, Call!"
    );
    assert_eq!(
        p.call_str(wasm_abi::GREET_RUST, "").expect("greet nobody"),
        "Hello World, !"
    );
}

#[test]
fn a_components_functions_through_plugin_call() {
    let mut p = Plugin::new(common::greeter_component());
    assert_eq!(
        p.call_str("greet", "Component").expect("greet"),
        "Hello World, Component!"
    );
    match p.call("greet", [0xff, 0xfe]) {
        Err(Error::InvalidArgument(m)) => assert!(m.contains("not UTF-8"), "{m}"),
        other => panic!("a non-UTF-8 string was passed: {other:?}"),
    }
    match p.call("answer", b"") {
        Err(Error::WrongSignature { name, .. }) => assert_eq!(name, "answer"),
        other => panic!("`answer` takes no bytes: {other:?}"),
    }
    match p.call("no-such-function", b"") {
        Err(Error::MissingExport { name, .. }) => assert_eq!(name, "no-such-function"),
        other => panic!("expected a missing export, got {other:?}"),
    }
    assert!(p.has_instance(), "a caller's mistake keeps the instance");
}

#[test]
fn missing_and_mistyped_exports_name_what_is_wrong() {
    let mut p = Plugin::new(common::greeter());
    match p.call("not_there", b"x") {
        Err(Error::MissingExport { name, expected }) => {
            assert_eq!(name, "not_there");
            assert_eq!(expected, wasm_abi::sig::PAIR_TO_I32);
        }
        other => panic!("expected a missing export, got {other:?}"),
    }
    match p.call(wasm_abi::ANSWER_FN, b"x") {
        Err(Error::WrongSignature { name, found, .. }) => {
            assert_eq!(name, wasm_abi::ANSWER_FN);
            assert!(found.contains("result i32"), "{found}");
        }
        other => panic!("expected a wrong signature, got {other:?}"),
    }
    assert_eq!(p.answer().expect("still serves"), 42);
}

#[test]
fn a_pair_outside_memory_is_a_bad_pointer_and_the_plugin_recovers() {
    let name = fresh_name();
    let body = r#"
    (local.set $pair (call $alloc (i32.const 8)))
    (i32.store (local.get $pair) (i32.const 65000))
    (i32.store offset=4 (local.get $pair) (i32.const 100000))
    (local.get $pair)"#;
    let mut p = guest(&name, body);
    match p.call(&name, b"x") {
        Err(Error::BadPointer(m)) => assert!(m.contains("outside guest memory"), "{m}"),
        other => panic!("expected a bad pointer, got {other:?}"),
    }
    assert!(!p.has_instance(), "the lying instance is discarded");
}

#[test]
fn an_output_over_the_limit_is_refused_before_it_is_copied() {
    let name = fresh_name();
    // A pair claiming 4 MiB of a memory grown to hold it.
    let body = r#"
    (local.set $out (call $alloc (i32.const 4194304)))
    (local.set $pair (call $alloc (i32.const 8)))
    (i32.store (local.get $pair) (local.get $out))
    (i32.store offset=4 (local.get $pair) (i32.const 4194304))
    (local.get $pair)"#;
    let mut p = guest(&name, body); // max-output 1 MiB
    match p.call(&name, b"") {
        Err(Error::LimitExceeded(Limit::Output(n))) => assert_eq!(n, 1 << 20),
        other => panic!("expected the output limit, got {other:?}"),
    }
}

#[test]
fn an_error_the_guest_reports_keeps_the_instance() {
    let mut p = Plugin::new(common::greeter_c());
    // The C guest checks its input: invalid UTF-8 is its error to report.
    match p.call(wasm_abi::GREET_RUST, [b'a', 0xc0, 0x80]) {
        Err(Error::GuestReported { message: Some(m) }) => {
            assert!(m.contains("not UTF-8 at byte 1"), "{m}")
        }
        other => panic!("expected the guest's error, got {other:?}"),
    }
    assert!(p.has_instance());
    assert_eq!(p.call("word_count", "a b").expect("next call"), b"0 2 3\n");
}

#[test]
fn non_utf8_output_is_a_bad_string_for_call_str() {
    let name = fresh_name();
    let mut p = guest(&name, REVERSE);
    match p.call_str(&name, "\u{80}") {
        // Reversed, the two bytes of U+0080 are no longer UTF-8.
        Err(Error::BadString(m)) => assert!(m.contains("not UTF-8"), "{m}"),
        other => panic!("expected a bad string, got {other:?}"),
    }
}

#[test]
fn an_input_larger_than_memory_is_refused_before_the_guest_runs() {
    let module = common::runtime()
        .load(
            common::guest_path(built::MODULE_C),
            Policy::default().with_max_memory(1 << 20),
        )
        .expect("load");
    let mut p = Plugin::new(module);
    match p.call("word_count", vec![b'x'; 2 << 20]) {
        Err(Error::InvalidArgument(m)) => assert!(m.contains("memory limit"), "{m}"),
        other => panic!("expected an invalid argument, got {other:?}"),
    }
}

/// `out` is a success that printed `expected`.
fn assert_printed(out: &std::process::Output, expected: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), expected);
}

#[test]
fn the_cli_calls_any_export_with_text_a_file_or_stdin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let module = common::guest_arg(built::MODULE_C);
    let text = "the quick brown fox\njumps over\n";
    let expected = wc(text.as_bytes());

    let out = cli::wasm_app(
        &["call", "--module", &module, "word_count", "--input", text],
        dir.path(),
    );
    assert_printed(&out, &expected);

    let file = dir.path().join("input.txt");
    std::fs::write(&file, text).expect("write");
    let out = cli::wasm_app(
        &[
            "call",
            "--module",
            &module,
            "word_count",
            "--input-file",
            arg(&file),
        ],
        dir.path(),
    );
    assert_printed(&out, &expected);

    let mut child = cli::command(dir.path())
        .args(["call", "--module", &module, "word_count", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), expected);
}

#[test]
fn the_cli_reports_bad_calls_in_one_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let module = common::guest_arg(built::MODULE_C);
    let big = dir.path().join("big.bin");
    std::fs::write(&big, vec![b'x'; 3 << 20]).expect("write");
    for (args, says) in [
        (
            vec!["no_such_export", "--input", "x"],
            "does not export `no_such_export`",
        ),
        (
            vec!["answer", "--input", "x"],
            "expected (func (param i32 i32)",
        ),
        (
            vec![
                "word_count",
                "--input-file",
                arg(&big),
                "--max-memory",
                "2MiB",
            ],
            "larger than the module's memory limit",
        ),
        (vec!["word_count", "stdin"], "unexpected argument 'stdin'"),
    ] {
        let mut all = vec!["call", "--module", &module];
        all.extend(args.iter().copied());
        let out = cli::wasm_app(&all, dir.path());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{all:?} succeeded");
        assert!(out.stdout.is_empty(), "{all:?} printed {:?}", out.stdout);
        assert_eq!(err.lines().count(), 1, "{all:?}: {err}");
        assert!(
            err.starts_with("error: ") && err.contains(says),
            "{all:?}: {err}"
        );
    }
}

/// A guest may answer in the very area it was lent: that area stays the
/// host's (kept for the next call), so the host must not hand it to
/// `wasm_deallocate` as if the guest had returned a new one. This guest
/// refuses (-1) to free its last input area, as an allocator that knows
/// the host still holds it would.
#[test]
fn an_answer_in_the_lent_area_is_not_freed_by_the_host() {
    let wat = format!(
        r#"(module
  (memory (export "memory") 1)
  (global $in (mut i32) (i32.const -1))
  (global $next (mut i32) (i32.const 1024))
  (func $alloc (export "wasm_allocate") (param $n i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $next))
    (global.set $next (i32.add (local.get $p)
      (i32.and (i32.add (local.get $n) (i32.const 63)) (i32.const -64))))
    (local.get $p))
  (func (export "wasm_deallocate") (param $p i32) (result i32)
    (if (result i32) (i32.eq (local.get $p) (global.get $in))
      (then (i32.const -1)) (else (i32.const 0))))
  (func (export "{name}") (param $ptr i32) (param $len i32) (result i32)
    (local $pair i32)
    (global.set $in (local.get $ptr))
    (local.set $pair (call $alloc (i32.const 8)))
    (i32.store (local.get $pair) (local.get $ptr))
    (i32.store offset=4 (local.get $pair) (local.get $len))
    (local.get $pair)))"#,
        name = "in_place"
    );
    let module = common::runtime()
        .load_bytes("in_place.wat", wat.as_bytes(), Policy::default())
        .expect("load");
    let mut p = Plugin::new(module);
    for input in ["first", "second", "3"] {
        assert_eq!(p.call_str("in_place", input).expect("in place"), input);
    }
    assert!(p.has_instance());
}

/// A guest whose `wasm_last_error` has the wrong type: its failure is
/// still its own reported error (never a caller's type error, found only
/// after the guest ran), and the instance stays.
#[test]
fn a_mistyped_last_error_still_reports_the_guests_failure() {
    let wat = r#"(module
  (memory (export "memory") 1)
  (func (export "wasm_allocate") (param i32) (result i32) (i32.const 1024))
  (func (export "wasm_deallocate") (param i32) (result i32) (i32.const 0))
  (func (export "wasm_last_error") (param i32) (result i32) (i32.const 0))
  (func (export "fails") (param i32 i32) (result i32) (i32.const 0)))"#;
    let module = common::runtime()
        .load_bytes("mistyped_last_error.wat", wat.as_bytes(), Policy::default())
        .expect("load");
    let mut p = Plugin::new(module);
    match p.call("fails", b"x") {
        Err(Error::GuestReported { message: None }) => {}
        other => panic!("expected the guest's own error, got {other:?}"),
    }
    assert!(p.has_instance());
}

/// An allocator that returns 0 for `wasm_allocate(0)`, as C's `malloc(0)`
/// may, is not an allocator error: the empty input is passed as (0, 0).
#[test]
fn an_allocator_answering_0_for_an_empty_input_is_not_an_error() {
    let wat = r#"(module
  (memory (export "memory") 1)
  (func (export "wasm_allocate") (param $n i32) (result i32)
    (if (result i32) (i32.eqz (local.get $n)) (then (i32.const 0)) (else (i32.const 1024))))
  (func (export "wasm_deallocate") (param i32) (result i32) (i32.const 0))
  (func (export "empty") (param $ptr i32) (param $len i32) (result i32)
    (i32.store (i32.const 2048) (local.get $ptr))
    (i32.store (i32.const 2052) (local.get $len))
    (i32.const 2048)))"#;
    let module = common::runtime()
        .load_bytes("malloc0.wat", wat.as_bytes(), Policy::default())
        .expect("load");
    let mut p = Plugin::new(module);
    assert_eq!(p.call("empty", b"").expect("empty call"), b"");
    assert!(p.has_instance());
}
