//! Host functions (`wasm_host.*`): an embedder's bytes function, the
//! key-value lookup and `log`, granted and not, called right and wrong, by
//! generated WAT guests.

mod common;

use wasm_app::{EngineOptions, Error, HostFunctions, Plugin, Policy, Runtime};

/// A guest whose exports call the host functions it imports. Each export
/// `E` is pair-ABI: it calls `$call` on its input and returns what `take`
/// copied (the result, or the error message).
fn guest(imports: &str, body: &str) -> String {
    format!(
        r#"(module
  (import "wasm_host" "take" (func $take (param i32 i32) (result i32)))
  {imports}
  (memory (export "memory") 1)
{alloc}
  ;; (ptr, len) as a freshly allocated pair
  (func $pair (param $p i32) (param $n i32) (result i32)
    (local $q i32)
    (local.set $q (call $alloc (i32.const 8)))
    (i32.store (local.get $q) (local.get $p))
    (i32.store offset=4 (local.get $q) (local.get $n))
    (local.get $q))
  ;; the length of what a bytes function left pending
  (func $pending (param $r i64) (result i32)
    (if (result i32) (i64.lt_s (local.get $r) (i64.const 0))
      (then (i32.wrap_i64 (i64.sub (i64.const -1) (local.get $r))))
      (else (i32.wrap_i64 (local.get $r)))))
{body})"#,
        alloc = common::wat::bump_allocator(1024)
    )
}

/// `E(ptr, len)` returns what `wasm_host.FUNC` answered for the input.
fn relay(export: &str, func: &str) -> String {
    format!(
        r#"  (func (export "{export}") (param $ptr i32) (param $len i32) (result i32)
    (local $n i32) (local $buf i32)
    (local.set $n (call $pending (call ${func} (local.get $ptr) (local.get $len))))
    (local.set $buf (call $alloc (local.get $n)))
    (drop (call $take (local.get $buf) (local.get $n)))
    (call $pair (local.get $buf) (local.get $n)))
"#
    )
}

const UPPER: &str = r#"(import "wasm_host" "upper" (func $upper (param i32 i32) (result i64)))"#;
const KV: &str = r#"(import "wasm_host" "kv_get" (func $kv_get (param i32 i32) (result i64)))"#;
const LOG: &str = r#"(import "wasm_host" "log" (func $log (param i32 i32 i32) (result i32)))"#;

fn functions() -> HostFunctions {
    HostFunctions::new()
        .with_function("upper", |input| match input {
            b"fail" => Err("upper refuses 'fail'".into()),
            _ => Ok(input.to_ascii_uppercase()),
        })
        .expect("a valid name")
        .with_kv(|key| (key == b"lang").then(|| b"en".to_vec()))
}

fn runtime() -> Runtime {
    Runtime::new(EngineOptions::default()).expect("runtime")
}

fn load(wat: &str, policy: Policy) -> Result<Plugin, Error> {
    runtime()
        .load_bytes_with("guest.wat", wat.as_bytes(), policy, &functions())
        .map(Plugin::new)
}

#[test]
fn a_granted_function_is_called_with_bytes_in_and_out() {
    let wat = guest(UPPER, &relay("shout", "upper"));
    let mut p = load(&wat, Policy::default().with_host_function("upper")).unwrap();
    assert_eq!(p.call("shout", "hello").unwrap(), b"HELLO");
    // Its failure is a message for the guest, not a failed call.
    assert_eq!(p.call("shout", "fail").unwrap(), b"upper refuses 'fail'");
    assert_eq!(p.call("shout", "").unwrap(), b"");
}

#[test]
fn the_key_value_lookup_answers_found_or_missing() {
    let wat = guest(KV, &relay("get", "kv_get"));
    let mut p = load(&wat, Policy::default().with_host_function("kv_get")).unwrap();
    assert_eq!(p.call("get", "lang").unwrap(), b"\x01en");
    assert_eq!(p.call("get", "nothing").unwrap(), b"\x00");
}

#[test]
fn an_ungranted_or_unknown_function_fails_to_load_naming_it() {
    for (imports, name) in [(UPPER, "upper"), (KV, "kv_get"), (LOG, "log")] {
        match load(&guest(imports, ""), Policy::default()) {
            Err(Error::PolicyDenied(m)) => {
                assert!(m.contains(&format!("wasm_host.{name}")), "{m}");
                assert!(m.contains(&format!("--allow-host-fn {name}")), "{m}");
            }
            Err(e) => panic!("{name}: {e:?}"),
            Ok(_) => panic!("{name}: loaded without a grant"),
        }
    }
    let unknown = r#"(import "wasm_host" "nope" (func (param i32 i32) (result i64)))"#;
    match load(
        &guest(unknown, ""),
        Policy::default().with_host_function("nope"),
    ) {
        Err(Error::Instantiate(m)) => assert!(m.contains("wasm_host.nope"), "{m}"),
        Err(e) => panic!("{e:?}"),
        Ok(_) => panic!("an unknown host function loaded"),
    }
    // A granted function of the wrong type is refused by the linker.
    let mistyped = r#"(import "wasm_host" "upper" (func $upper (param i32) (result i64)))"#;
    assert!(load(
        &guest(mistyped, ""),
        Policy::default().with_host_function("upper")
    )
    .is_err());
}

#[test]
fn take_copies_once_and_only_with_the_pending_length() {
    let body = r#"  (func (export "twice") (param $ptr i32) (param $len i32) (result i32)
    (local $n i32) (local $buf i32)
    (local.set $n (call $pending (call $upper (local.get $ptr) (local.get $len))))
    (local.set $buf (call $alloc (i32.const 16)))
    ;; wrong length, right length, then nothing left
    (i32.store (local.get $buf) (call $take (local.get $buf) (i32.add (local.get $n) (i32.const 1))))
    (i32.store offset=4 (local.get $buf) (call $take (i32.add (local.get $buf) (i32.const 12)) (local.get $n)))
    (i32.store offset=8 (local.get $buf) (call $take (local.get $buf) (local.get $n)))
    (call $pair (local.get $buf) (i32.const 12)))
  (func (export "wild") (param $ptr i32) (param $len i32) (result i32)
    (drop (call $upper (local.get $ptr) (local.get $len)))
    (drop (call $take (i32.const -16) (local.get $len)))
    (i32.const 0))
"#;
    let wat = guest(UPPER, body);
    let mut p = load(&wat, Policy::default().with_host_function("upper")).unwrap();
    let out = p.call("twice", "a").unwrap();
    let status = |i: usize| i32::from_le_bytes(out[i * 4..i * 4 + 4].try_into().unwrap());
    assert_eq!((status(0), status(1), status(2)), (-1, 0, -1));
    match p.call("wild", "abcd") {
        Err(Error::BadPointer(m)) => assert!(m.contains("take target"), "{m}"),
        other => panic!("{other:?}"),
    }
    // The instance that misbehaved is replaced; the plugin still serves.
    assert_eq!(
        &p.call("twice", "b").unwrap()[..12],
        &[255, 255, 255, 255, 0, 0, 0, 0, 255, 255, 255, 255]
    );
}

/// `flood(ptr, len)`: logs its input 100 000 times and returns how many
/// lines the host took (an i32).
const FLOOD: &str = r#"  (func (export "flood") (param $ptr i32) (param $len i32) (result i32)
    (local $i i32) (local $ok i32) (local $out i32)
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (i32.const 100000)))
      (if (i32.eqz (call $log (i32.const 2) (local.get $ptr) (local.get $len)))
        (then (local.set $ok (i32.add (local.get $ok) (i32.const 1)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (local.set $out (call $alloc (i32.const 4)))
    (i32.store (local.get $out) (local.get $ok))
    (call $pair (local.get $out) (i32.const 4)))
  (func (export "huge") (param $ptr i32) (param $len i32) (result i32)
    ;; a line that claims all of memory and more
    (drop (call $log (i32.const 2) (i32.const 0) (i32.const -1)))
    (i32.const 0))
"#;

#[test]
fn a_guest_flooding_the_log_is_held_to_its_rate() {
    let mut p = load(
        &guest(LOG, FLOOD),
        Policy::default().with_host_function("log"),
    )
    .unwrap();
    let out = p.call("flood", "a line").unwrap();
    let taken = i32::from_le_bytes(out[..4].try_into().unwrap());
    assert!(
        (100..200).contains(&taken),
        "{taken} of 100 000 lines logged"
    );
    // A line longer than memory is a bad pointer, not a copy of 4 GiB.
    assert!(matches!(p.call("huge", ""), Err(Error::BadPointer(_))));
}

#[test]
fn the_cli_prints_guest_lines_and_says_what_it_dropped() {
    let dir = tempfile::tempdir().expect("temp dir");
    let wat = dir.path().join("flood.wat");
    std::fs::write(&wat, guest(LOG, FLOOD)).expect("write");
    let wat = common::cli::arg(&wat);
    let line = "line \u{1b}[31m from the guest";
    let args = [
        "call",
        "--module",
        wat,
        "flood",
        "--input",
        line,
        "--allow-host-fn",
        "log",
    ];
    let out = common::cli::wasm_app(&args, dir.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines = stderr
        .lines()
        .filter(|l| l.contains("from the guest"))
        .count();
    assert!((100..200).contains(&lines), "{lines} lines printed");
    assert!(
        stderr.contains("lines dropped (log rate limit)"),
        "{stderr}"
    );
    // The guest's escape sequence reaches the terminal escaped.
    assert!(!stderr.contains('\u{1b}'), "{stderr}");
    // Without the grant the module does not load: one error line.
    let out = common::cli::wasm_app(&args[..6], dir.path());
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("error: policy denied:") && stderr.contains("wasm_host.log"),
        "{stderr}"
    );
}

#[test]
fn inspect_lists_host_functions_with_their_grants() {
    let wat = guest(&format!("{UPPER}\n{LOG}"), "");
    let report = wasm_app::inspect::inspect_bytes(&runtime(), "g.wat", wat.as_bytes()).unwrap();
    let text = report.render();
    assert!(
        text.contains("host functions: take (always), upper (an embedder's"),
        "{text}"
    );
    assert!(
        text.contains("log (host-functions / --allow-host-fn log)"),
        "{text}"
    );
    assert!(
        !text.contains("imports the host does not provide"),
        "{text}"
    );
}
