//! The hostile-module suite: modules that loop, blow their memory or stack,
//! trap, exit, lie about pointers and strings, break the allocator contract,
//! import what the host does not give, or try to escape the WASI sandbox.
//!
//! Each case asserts the exact [`Error`] variant (and [`Limit`]) the host
//! reports, and that the host is unharmed: the same [`Runtime`] then serves
//! the well-behaved `wasm_module1` correctly, and a [`Plugin`] that failed
//! serves a good call again when its module can.
//!
//! The hostile modules are the `.wat` files in `tests/hostile/`, compiled
//! at load time. `wasm_module1.wasm` comes from `make guests`; its folder is
//! `$WASM_APP_MODULES`, or `target/wasm-modules` by default.

mod common;

use std::path::Path;
use std::sync::{OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use wasm_abi::built;
use wasm_app::policy::DEFAULT_MAX_MEMORY;
use wasm_app::{DirGrant, Error, Limit, Module, Plugin, Policy, StringAbi};

// ---------------------------------------------------------------------------
// Shared fixtures
// ---------------------------------------------------------------------------

/// Most tests share the process; the leak check measures RSS and takes it
/// alone.
static SERIAL: RwLock<()> = RwLock::new(());

fn shared() -> RwLockReadGuard<'static, ()> {
    SERIAL.read().unwrap_or_else(|e| e.into_inner())
}

fn exclusive() -> RwLockWriteGuard<'static, ()> {
    SERIAL.write().unwrap_or_else(|e| e.into_inner())
}

/// The well-behaved greeter module, loaded once.
fn good_module() -> &'static Module {
    static MODULE: OnceLock<Module> = OnceLock::new();
    MODULE.get_or_init(|| {
        let path = common::guest_path(built::MODULE1);
        common::fuel_runtime()
            .load(&path, Policy::default())
            .unwrap_or_else(|e| panic!("cannot load {}: {e}", path.display()))
    })
}

/// Loads a hostile module that is expected to load (its misbehaviour comes later).
fn load(file: &str, policy: Policy) -> Module {
    common::load_hostile(file, policy)
}

fn plugin(file: &str, policy: Policy) -> Plugin {
    Plugin::new(load(file, policy))
}

/// Runs `call` on a fresh plugin of the hostile `file` (default policy),
/// which must fail; then the plugin serves a good call from a fresh instance
/// and the host still serves the good module. The call's error.
fn failed_call<T: std::fmt::Debug>(
    file: &str,
    call: impl FnOnce(&mut Plugin) -> Result<T, Error>,
) -> Error {
    let mut p = plugin(file, Policy::default());
    let err = match call(&mut p) {
        Err(e) => e,
        Ok(v) => panic!("{file}: expected an error, got {v:?}"),
    };
    assert_plugin_recovers(&mut p);
    assert_host_serves_good_module();
    err
}

/// The call most hostile modules misbehave in: greet "World".
fn greet_world(abi: StringAbi) -> impl FnOnce(&mut Plugin) -> Result<String, Error> {
    move |p| p.greet(abi, "World")
}

/// The same runtime still serves the well-behaved module, through both
/// string ABIs.
fn assert_host_serves_good_module() {
    let mut p = Plugin::new(good_module().clone());
    assert_eq!(p.answer().expect("answer() on wasm_module1"), 42);
    assert_eq!(
        p.greet(StringAbi::Rust, "Rust")
            .expect("Rust greeter on wasm_module1"),
        "Hello World, Rust!"
    );
    assert_eq!(
        p.greet(StringAbi::C, "Rust")
            .expect("C greeter on wasm_module1"),
        "Hello World, Rust!"
    );
}

/// A plugin whose last call failed has dropped its instance and serves
/// `answer()` (which every call-time hostile module implements correctly)
/// from a fresh one.
fn assert_plugin_recovers(p: &mut Plugin) {
    assert!(
        !p.has_instance(),
        "the plugin must drop an instance after a poisoning error"
    );
    assert_eq!(
        p.answer()
            .expect("the same plugin must serve a good call after the failure"),
        42
    );
}

// ---------------------------------------------------------------------------
// Limits: time, memory, stack, fuel
// ---------------------------------------------------------------------------

#[test]
fn infinite_loop_hits_the_timeout() {
    let _g = shared();
    let timeout = Duration::from_millis(200);
    let mut policy = Policy::default();
    policy.limits.timeout = timeout;
    let p = plugin("infinite_loop.wat", policy);

    let (mut p, result, elapsed) = common::guard::timed_greet(p, StringAbi::C, "World");
    match result {
        Err(Error::LimitExceeded(Limit::Time(d))) => assert_eq!(d, timeout),
        other => panic!("expected LimitExceeded(Time(200ms)), got {other:?}"),
    }
    assert!(
        elapsed >= timeout && elapsed < Duration::from_secs(5),
        "a 200ms timeout fired after {elapsed:?}"
    );
    assert_plugin_recovers(&mut p);
    assert_host_serves_good_module();
}

#[test]
fn memory_grow_bomb_hits_the_memory_limit() {
    let _g = shared();
    let max = 4u64 << 20;
    let mut policy = Policy::default();
    policy.limits.max_memory = max;
    let module = load("memory_bomb.wat", policy);

    // The exact limit (a bare instance's memory and poisoning:
    // `instance::tests`), then a good call on a fresh instance.
    let mut p = Plugin::new(module);
    match p.greet(StringAbi::C, "World") {
        Err(Error::LimitExceeded(Limit::Memory(m))) => assert_eq!(m, max),
        other => panic!("expected LimitExceeded(Memory(4 MiB)), got {other:?}"),
    }
    assert_plugin_recovers(&mut p);
    assert_host_serves_good_module();
}

#[test]
fn deep_recursion_is_a_stack_overflow_trap() {
    let _g = shared();
    let p = plugin("deep_recursion.wat", Policy::default());
    let (mut p, result, _) = common::guard::timed_greet(p, StringAbi::C, "World");
    match result {
        Err(Error::Trap { message, .. }) => assert!(
            message.to_lowercase().contains("stack overflow"),
            "the trap message should say stack overflow: {message}"
        ),
        other => panic!("expected Trap (stack overflow), got {other:?}"),
    }
    assert_plugin_recovers(&mut p);
    assert_host_serves_good_module();
}

#[test]
fn fuel_exhaustion_hits_the_fuel_limit() {
    let _g = shared();
    let mut policy = Policy::default();
    policy.limits.fuel = Some(1000);
    let p = plugin("infinite_loop.wat", policy);

    let (mut p, result, elapsed) = common::guard::timed_greet(p, StringAbi::C, "World");
    match result {
        Err(Error::LimitExceeded(Limit::Fuel(n))) => assert_eq!(n, 1000),
        other => panic!("expected LimitExceeded(Fuel(1000)), got {other:?}"),
    }
    assert!(
        elapsed < Duration::from_secs(5),
        "1000 units of fuel took {elapsed:?}: fuel is not metered"
    );
    // Each call gets the full budget again: answer() fits easily.
    assert_plugin_recovers(&mut p);
    assert_eq!(p.answer().expect("a second answer() on a fresh budget"), 42);
    assert_host_serves_good_module();
}

#[test]
fn huge_initial_memory_is_refused_at_instantiation() {
    let _g = shared();
    let module = load("huge_memory.wat", Policy::default());
    match Plugin::new(module.clone()).instantiate() {
        Err(Error::LimitExceeded(Limit::Memory(m))) => assert_eq!(m, DEFAULT_MAX_MEMORY),
        Err(other) => panic!("expected LimitExceeded(Memory(512 MiB)), got {other:?}"),
        Ok(_) => panic!("expected LimitExceeded(Memory(512 MiB)), got an instance"),
    }
    let mut p = Plugin::new(module);
    match p.answer() {
        Err(Error::LimitExceeded(Limit::Memory(m))) => assert_eq!(m, DEFAULT_MAX_MEMORY),
        other => panic!("expected LimitExceeded(Memory(512 MiB)), got {other:?}"),
    }
    assert!(!p.has_instance());
    assert_host_serves_good_module();
}

// ---------------------------------------------------------------------------
// Traps and exits
// ---------------------------------------------------------------------------

#[test]
fn unreachable_is_a_trap() {
    let _g = shared();
    match failed_call("unreachable.wat", greet_world(StringAbi::C)) {
        Error::Trap { message, .. } => assert!(
            message.contains("unreachable"),
            "the trap message should name `unreachable`: {message}"
        ),
        other => panic!("expected Trap, got {other:?}"),
    }
}

#[test]
fn trapping_start_function_fails_instantiation() {
    let _g = shared();
    let module = load("start_trap.wat", Policy::default());
    match Plugin::new(module.clone()).instantiate() {
        Err(Error::Trap { message, .. }) => assert!(
            message.contains("unreachable"),
            "the trap message should name `unreachable`: {message}"
        ),
        Err(other) => panic!("expected Trap, got {other:?}"),
        Ok(_) => panic!("expected Trap, got an instance"),
    }
    let mut p = Plugin::new(module);
    match p.answer() {
        Err(Error::Trap { .. }) => {}
        other => panic!("expected Trap from every instantiation, got {other:?}"),
    }
    assert_host_serves_good_module();
}

#[test]
fn proc_exit_mid_call_is_an_exit() {
    let _g = shared();
    match failed_call("proc_exit.wat", greet_world(StringAbi::C)) {
        Error::Exited(3) => {}
        other => panic!("expected Exited(3), got {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// Lying pointers and strings
// ---------------------------------------------------------------------------

fn expect_bad_pointer(file: &str, abi: StringAbi) -> String {
    match failed_call(file, greet_world(abi)) {
        Error::BadPointer(m) => m,
        other => panic!("{file}: expected BadPointer, got {other:?}"),
    }
}

fn expect_bad_string(file: &str, abi: StringAbi) -> String {
    match failed_call(file, greet_world(abi)) {
        Error::BadString(m) => m,
        other => panic!("{file}: expected BadString, got {other:?}"),
    }
}

#[test]
fn greeting_pointer_past_end_of_memory_is_a_bad_pointer() {
    let _g = shared();
    let message = expect_bad_pointer("greeting_past_end.wat", StringAbi::C);
    assert!(message.contains("outside guest memory"), "{message}");
}

#[test]
fn pair_whose_end_overflows_u32_is_a_bad_pointer() {
    let _g = shared();
    let message = expect_bad_pointer("pair_overflow.wat", StringAbi::Rust);
    assert!(message.contains("overflows 32 bits"), "{message}");
}

#[test]
fn pair_pointer_out_of_bounds_is_a_bad_pointer() {
    let _g = shared();
    let message = expect_bad_pointer("pair_out_of_bounds.wat", StringAbi::Rust);
    assert!(message.contains("greeting pair"), "{message}");
}

#[test]
fn unterminated_c_string_is_a_bad_string() {
    let _g = shared();
    let message = expect_bad_string("unterminated_string.wat", StringAbi::C);
    assert!(
        message.contains("NUL"),
        "message should mention the NUL: {message}"
    );
}

#[test]
fn invalid_utf8_greeting_is_a_bad_string() {
    let _g = shared();
    let message = expect_bad_string("invalid_utf8.wat", StringAbi::Rust);
    assert!(
        message.contains("UTF-8"),
        "message should mention UTF-8: {message}"
    );
}

// ---------------------------------------------------------------------------
// Allocator contract
// ---------------------------------------------------------------------------

#[test]
fn allocate_returning_zero_is_an_allocator_error() {
    let _g = shared();
    match failed_call("alloc_zero.wat", greet_world(StringAbi::C)) {
        Error::Allocator(_) => {}
        other => panic!("expected Allocator, got {other:?}"),
    }
}

#[test]
fn allocate_returning_out_of_bounds_is_an_allocator_error() {
    let _g = shared();
    match failed_call("alloc_out_of_bounds.wat", greet_world(StringAbi::C)) {
        Error::Allocator(_) => {}
        other => panic!("expected Allocator, got {other:?}"),
    }
}

#[test]
fn allocate_returning_overlapping_areas_is_an_allocator_error() {
    let _g = shared();
    match failed_call("alloc_same_area.wat", |p| {
        p.process_ipc(b"metadata stream", b"data stream")
    }) {
        Error::Allocator(m) => assert!(
            m.contains("overlapping"),
            "message should say the areas overlap: {m}"
        ),
        other => panic!("expected Allocator (overlapping), got {other:?}"),
    }
}

#[test]
fn deallocate_refusing_its_own_area_is_an_allocator_error() {
    let _g = shared();
    match failed_call("dealloc_refuses.wat", greet_world(StringAbi::C)) {
        Error::Allocator(m) => assert!(
            m.contains("wasm_deallocate"),
            "message should name wasm_deallocate: {m}"
        ),
        other => panic!("expected Allocator, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// Loading: bytes, hashes, imports, exports
// ---------------------------------------------------------------------------

/// Deterministic noise (an LCG), so a failure can be reproduced.
fn random_bytes(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (x >> 56) as u8
        })
        .collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}

#[test]
fn empty_and_random_files_fail_to_load() {
    let _g = shared();
    let dir = tempfile::tempdir().expect("temporary directory");
    let empty = dir.path().join("empty.wasm");
    std::fs::write(&empty, b"").expect("write empty.wasm");
    match common::fuel_runtime().load(&empty, Policy::default()) {
        Err(Error::Load { .. }) => {}
        Err(other) => panic!("empty file: expected Load, got {other:?}"),
        Ok(_) => panic!("empty file: expected Load, got a module"),
    }
    let random = dir.path().join("random.wasm");
    std::fs::write(&random, random_bytes(4096)).expect("write random.wasm");
    match common::fuel_runtime().load(&random, Policy::default()) {
        Err(Error::Load { .. }) => {}
        Err(other) => panic!("random bytes: expected Load, got {other:?}"),
        Ok(_) => panic!("random bytes: expected Load, got a module"),
    }
    assert_host_serves_good_module();
}

#[test]
fn sha256_mismatch_is_denied_before_compiling() {
    let _g = shared();
    let dir = tempfile::tempdir().expect("temporary directory");
    let bytes = random_bytes(4096);
    let random = dir.path().join("random.wasm");
    std::fs::write(&random, &bytes).expect("write random.wasm");

    // Wrong hash on bytes that would not even compile: denied, not Load, so
    // the check comes first.
    let wrong = Policy {
        sha256: Some("0".repeat(64)),
        ..Policy::default()
    };
    match common::fuel_runtime().load(&random, wrong.clone()) {
        Err(Error::PolicyDenied(m)) => assert!(m.contains("SHA-256"), "{m}"),
        Err(other) => panic!("expected PolicyDenied, got {other:?}"),
        Ok(_) => panic!("expected PolicyDenied, got a module"),
    }
    // The right hash lets the same bytes through to the compiler.
    let right = Policy {
        sha256: Some(sha256_hex(&bytes)),
        ..Policy::default()
    };
    match common::fuel_runtime().load(&random, right) {
        Err(Error::Load { .. }) => {}
        Err(other) => panic!("expected Load once the hash matches, got {other:?}"),
        Ok(_) => panic!("expected Load once the hash matches, got a module"),
    }
    // A valid module with the wrong hash is denied too.
    let good = common::guest_path(built::MODULE1);
    match common::fuel_runtime().load(&good, wrong) {
        Err(Error::PolicyDenied(_)) => {}
        Err(other) => panic!("expected PolicyDenied, got {other:?}"),
        Ok(_) => panic!("expected PolicyDenied, got a module"),
    }
    assert_host_serves_good_module();
}

#[test]
fn unknown_import_fails_at_load() {
    let _g = shared();
    match common::fuel_runtime().load(
        common::hostile_path("import_missing.wat"),
        Policy::default(),
    ) {
        Err(Error::Instantiate(m)) => {
            assert!(m.contains("foo"), "message should name env::foo: {m}")
        }
        Err(other) => panic!("expected Instantiate, got {other:?}"),
        Ok(_) => panic!("expected Instantiate, got a module"),
    }
    assert_host_serves_good_module();
}

#[test]
fn missing_export_is_reported() {
    let _g = shared();
    let mut p = plugin("missing_export.wat", Policy::default());
    match p.greet(StringAbi::C, "World") {
        Err(Error::MissingExport { name, .. }) => {
            assert_eq!(name, "wasm_memory_c_format_hello_world")
        }
        other => panic!("expected MissingExport, got {other:?}"),
    }
    assert_eq!(p.answer().expect("answer() after a missing export"), 42);
    assert_host_serves_good_module();
}

#[test]
fn wrong_signature_export_is_reported() {
    let _g = shared();
    let mut p = plugin("wrong_signature.wat", Policy::default());
    let err = match p.greet(StringAbi::Rust, "World") {
        Err(e) => e,
        Ok(s) => panic!("expected WrongSignature, got the greeting {s:?}"),
    };
    match &err {
        Error::WrongSignature {
            name,
            expected,
            found,
        } => {
            assert_eq!(name, "wasm_memory_rust_format_hello_world");
            assert_eq!(expected, "(func (param i32 i32) (result i32))");
            assert!(found.contains("(param i32)"), "found type: {found}");
        }
        other => panic!("expected WrongSignature, got {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("expected (func (param i32 i32) (result i32))"),
        "the message should give the expected type: {text}"
    );
    assert_eq!(p.answer().expect("answer() after a wrong signature"), 42);
    assert_host_serves_good_module();
}

// ---------------------------------------------------------------------------
// WASI sandbox
// ---------------------------------------------------------------------------

const EBADF: u32 = 8;
const EPERM: u32 = 63;
const ENOTCAPABLE: u32 = 76;

/// Runs one probe command (see `tests/hostile/wasi_probe.wat`): the two
/// digits it starts with, and the rest.
fn probe(p: &mut Plugin, command: &str) -> (u32, String) {
    let out = p
        .greet(StringAbi::Rust, command)
        .unwrap_or_else(|e| panic!("probe `{command}` failed: {e}"));
    let code = out
        .get(..2)
        .and_then(|d| d.parse().ok())
        .unwrap_or_else(|| panic!("probe `{command}` returned {out:?}"));
    (code, out[2..].to_string())
}

/// errno of opening `path` (relative to fd 3) for reading.
fn open_read(p: &mut Plugin, path: &str) -> u32 {
    probe(p, &format!("r:{path}")).0
}

/// errno of opening `path` with O_CREAT and the write right.
fn open_write(p: &mut Plugin, path: &str) -> u32 {
    probe(p, &format!("w:{path}")).0
}

fn grant(dir: &Path, writable: bool) -> Policy {
    Policy {
        dirs: vec![DirGrant {
            host: dir.to_path_buf(),
            guest: Some("/data".into()),
            writable,
        }],
        ..Policy::default()
    }
}

#[test]
fn wasi_without_grants_sees_no_files_and_no_env() {
    let _g = shared();
    let mut p = plugin("wasi_probe.wat", Policy::default());
    let errno = open_read(&mut p, "/etc/passwd");
    assert!(
        errno == EBADF || errno == ENOTCAPABLE,
        "opening /etc/passwd without a preopen gave errno {errno}"
    );
    let errno = open_write(&mut p, "escape.txt");
    assert!(
        errno == EBADF || errno == ENOTCAPABLE,
        "creating a file without a preopen gave errno {errno}"
    );
    assert_eq!(probe(&mut p, "e"), (0, String::new()), "env without grants");
    assert_host_serves_good_module();
}

#[test]
fn wasi_env_has_exactly_the_granted_variables() {
    let _g = shared();
    let mut policy = Policy::default();
    policy.env.insert("A".into(), "1".into());
    let mut p = plugin("wasi_probe.wat", policy);
    assert_eq!(probe(&mut p, "e"), (1, "A=1\0".to_string()));
}

#[test]
fn wasi_read_only_grant_confines_and_forbids_writes() {
    let _g = shared();
    let dir = tempfile::tempdir().expect("temporary directory");
    let hello = dir.path().join("hello.txt");
    std::fs::write(&hello, "hello from the host").expect("write hello.txt");
    let mut p = plugin("wasi_probe.wat", grant(dir.path(), false));

    let errno = open_read(&mut p, "../etc/passwd");
    assert!(
        errno == ENOTCAPABLE || errno == EPERM,
        "opening ../etc/passwd gave errno {errno}"
    );
    let errno = open_read(&mut p, "/etc/passwd");
    assert!(
        errno == ENOTCAPABLE || errno == EPERM,
        "opening /etc/passwd relative to the grant gave errno {errno}"
    );

    assert_eq!(
        probe(&mut p, "r:hello.txt"),
        (0, "hello from the host".to_string()),
        "reading a granted file"
    );

    let errno = open_write(&mut p, "hello.txt");
    assert!(
        errno == ENOTCAPABLE || errno == EPERM,
        "opening a file for writing in a read-only grant gave errno {errno}"
    );
    let errno = open_write(&mut p, "new.txt");
    assert!(
        errno == ENOTCAPABLE || errno == EPERM,
        "creating a file in a read-only grant gave errno {errno}"
    );
    assert_eq!(
        std::fs::read_to_string(&hello).expect("read hello.txt"),
        "hello from the host",
        "a read-only grant changed a file"
    );
    assert!(
        !dir.path().join("new.txt").exists(),
        "a read-only grant created a file"
    );
    assert_eq!(
        probe(&mut p, "e"),
        (0, String::new()),
        "env with only a dir grant"
    );
    assert_host_serves_good_module();
}

#[test]
fn wasi_writable_grant_allows_writes_inside_only() {
    let _g = shared();
    let dir = tempfile::tempdir().expect("temporary directory");
    let hello = dir.path().join("hello.txt");
    std::fs::write(&hello, "hello from the host").expect("write hello.txt");
    let mut p = plugin("wasi_probe.wat", grant(dir.path(), true));

    assert_eq!(probe(&mut p, "w:hello.txt"), (0, String::new()));
    assert_eq!(
        std::fs::read_to_string(&hello).expect("read hello.txt"),
        "probe from the host"
    );
    assert_eq!(probe(&mut p, "w:new.txt"), (0, String::new()));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("new.txt")).expect("read new.txt"),
        "probe"
    );
    let errno = open_write(&mut p, "../escape.txt");
    assert!(
        errno == ENOTCAPABLE || errno == EPERM,
        "creating ../escape.txt gave errno {errno}"
    );
    let parent = dir.path().parent().expect("tempdir has a parent");
    assert!(
        !parent.join("escape.txt").exists(),
        "a write escaped the grant"
    );
    assert_host_serves_good_module();
}

// ---------------------------------------------------------------------------
// Concurrency and leaks
// ---------------------------------------------------------------------------

#[test]
fn good_calls_succeed_while_a_hostile_module_misbehaves() {
    let _g = shared();
    let trapping = load("unreachable.wat", Policy::default());
    let mut quick = Policy::default();
    quick.limits.timeout = Duration::from_millis(50);
    let looping = load("infinite_loop.wat", quick);

    std::thread::scope(|s| {
        let good: Vec<_> = (0..9)
            .map(|t| {
                s.spawn(move || {
                    let mut p = Plugin::new(good_module().clone());
                    for i in 0..500 {
                        let name = format!("t{t}-{i}");
                        let abi = if i % 2 == 0 {
                            StringAbi::C
                        } else {
                            StringAbi::Rust
                        };
                        let greeting = p
                            .greet(abi, &name)
                            .unwrap_or_else(|e| panic!("good call {name} ({abi}) failed: {e}"));
                        assert_eq!(greeting, format!("Hello World, {name}!"));
                    }
                    assert_eq!(p.answer().expect("answer() after the loop"), 42);
                })
            })
            .collect();
        let hostile = s.spawn(|| {
            let mut trap = Plugin::new(trapping);
            let mut spin = Plugin::new(looping);
            for _ in 0..5 {
                match trap.greet(StringAbi::C, "World") {
                    Err(Error::Trap { .. }) => {}
                    other => panic!("expected Trap, got {other:?}"),
                }
                match spin.greet(StringAbi::C, "World") {
                    Err(Error::LimitExceeded(Limit::Time(_))) => {}
                    other => panic!("expected LimitExceeded(Time), got {other:?}"),
                }
            }
        });
        for h in good {
            h.join().expect("a good-call thread failed");
        }
        hostile.join().expect("the hostile thread failed");
    });
    assert_host_serves_good_module();
}

/// Resident set size of this process, in bytes.
#[cfg(target_os = "linux")]
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS in /proc/self/status");
    let kib: u64 = line
        .trim_start_matches("VmRSS:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .expect("VmRSS is a number of kB");
    kib * 1024
}

#[test]
fn many_greeter_calls_leak_neither_guest_nor_host_memory() {
    // Alone: RSS is per process, other tests would move it.
    let _g = exclusive();
    let mut p = Plugin::new(good_module().clone());
    let abi = |i: u32| {
        if i % 2 == 0 {
            StringAbi::C
        } else {
            StringAbi::Rust
        }
    };
    for i in 0..1_000 {
        p.greet(abi(i), "Rust").expect("warm-up greeting");
    }
    let guest_before = p.memory_size().expect("live instance");
    #[cfg(target_os = "linux")]
    let rss_before = rss_bytes();

    for i in 0..100_000 {
        let greeting = p
            .greet(abi(i), "Rust")
            .unwrap_or_else(|e| panic!("greeting #{i} failed: {e}"));
        assert_eq!(greeting, "Hello World, Rust!");
    }

    assert!(
        p.has_instance(),
        "the instance was replaced during good calls"
    );
    let guest_after = p.memory_size().expect("live instance");
    assert_eq!(
        guest_after, guest_before,
        "guest memory grew over 100 000 calls: the host leaks guest areas"
    );
    // Elsewhere there is no portable RSS reading: only the guest check runs.
    #[cfg(target_os = "linux")]
    {
        let grown = rss_bytes().saturating_sub(rss_before);
        assert!(
            grown < 16 << 20,
            "host RSS grew by {} KiB over 100 000 calls",
            grown >> 10
        );
    }
}
