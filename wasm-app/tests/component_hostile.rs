//! Hostile components: `wasm_component_hostile.wasm` (crate
//! `wasm-component-hostile`) exports the `greeter` world and misbehaves as
//! the name it is greeted with says. A component runs under the same policy,
//! limits and error mapping as a core module: each case asserts the exact
//! [`Error`] (and [`Limit`]), and that a [`Plugin`] serves a good call again
//! afterwards.

mod common;

use std::time::{Duration, Instant};

use wasm_app::{DirGrant, EngineOptions, Error, Limit, Module, Plugin, Policy, Runtime};
use wasm_app::{Limits, StringAbi};

fn load(policy: Policy) -> Module {
    let path = common::hostile_component_path();
    let loaded = common::fuel_runtime()
        .load(&path, policy)
        .unwrap_or_else(|e| panic!("cannot load {}: {e}", path.display()));
    assert!(loaded.is_component(), "{} is a component", path.display());
    loaded
}

fn with_limits(limits: Limits) -> Policy {
    Policy {
        limits,
        ..Policy::default()
    }
}

/// After a failure the plugin drops the instance and serves a good call.
fn assert_recovers(p: &mut Plugin) {
    assert_eq!(
        p.greet(StringAbi::Rust, "Rust")
            .expect("good call after failure"),
        "Hello World, Rust!"
    );
    assert_eq!(p.answer().expect("answer"), 42);
}

#[test]
fn infinite_loop_hits_the_timeout() {
    let timeout = Duration::from_millis(200);
    let mut p = Plugin::new(load(with_limits(Limits {
        timeout,
        ..Limits::default()
    })));
    let start = Instant::now();
    match p.greet(StringAbi::Rust, "loop") {
        Err(Error::LimitExceeded(Limit::Time(d))) => assert_eq!(d, timeout),
        other => panic!("expected the time limit, got {other:?}"),
    }
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "the loop ran for {:?}",
        start.elapsed()
    );
    assert!(!p.has_instance(), "the looping instance is discarded");
    assert_recovers(&mut p);
}

#[test]
fn infinite_loop_hits_the_fuel_limit() {
    let mut p = Plugin::new(load(with_limits(Limits {
        fuel: Some(5_000_000),
        ..Limits::default()
    })));
    match p.greet(StringAbi::Rust, "loop") {
        Err(Error::LimitExceeded(Limit::Fuel(n))) => assert_eq!(n, 5_000_000),
        other => panic!("expected the fuel limit, got {other:?}"),
    }
    assert_recovers(&mut p);
}

#[test]
fn memory_bomb_hits_the_memory_limit() {
    let max = 32 << 20;
    let mut p = Plugin::new(load(with_limits(Limits {
        max_memory: max,
        ..Limits::default()
    })));
    match p.greet(StringAbi::Rust, "bomb") {
        Err(Error::LimitExceeded(Limit::Memory(m))) => assert_eq!(m, max),
        other => panic!("expected the memory limit, got {other:?}"),
    }
    assert_recovers(&mut p);
}

/// A panic traps, and its message (printed to the component's stderr,
/// which the host keeps a bounded tail of) is carried into the error.
#[test]
fn panic_is_a_trap_with_its_message() {
    let mut p = Plugin::new(load(Policy::default()));
    match p.greet(StringAbi::Rust, "trap") {
        Err(Error::Trap { message, .. }) => {
            assert!(message.contains("unreachable"), "trap message: {message}");
            let why = message
                .find("hostile component traps on purpose")
                .unwrap_or_else(|| panic!("no panic message in: {message}"));
            assert!(
                why < message.find("unreachable").unwrap_or(0),
                "the panic message comes first: {message}"
            );
            assert!(message.contains("panicked at"), "trap message: {message}");
            assert!(!message.contains('\n'), "one line: {message}");
        }
        other => panic!("expected a trap, got {other:?}"),
    }
    assert!(!p.has_instance(), "the trapped instance is discarded");
    assert_recovers(&mut p);
}

/// Reading `/etc/passwd` without a grant fails inside the guest: the guest
/// gets an error, never the file.
#[test]
fn etc_passwd_is_out_of_reach() {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let secret = passwd.lines().next().filter(|l| !l.is_empty());

    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("granted.txt"), "granted").expect("write");
    let granted = Policy {
        dirs: vec![DirGrant {
            host: dir.path().to_path_buf(),
            guest: Some("/data".into()),
            writable: false,
        }],
        ..Policy::default()
    };
    for policy in [Policy::default(), granted] {
        let mut p = Plugin::new(load(policy));
        let got = p.greet(StringAbi::Rust, "passwd").expect("passwd call");
        assert!(
            got.starts_with("error: "),
            "the guest read something: {got}"
        );
        if let Some(line) = secret {
            assert!(!got.contains(line), "the guest read /etc/passwd: {got}");
        }
        // An error inside the guest is not a failure of the instance.
        assert!(p.has_instance());
        assert_recovers(&mut p);
    }
}

#[test]
fn inspect_reports_a_greeter_component() {
    let path = common::hostile_component_path();
    let loaded = load(Policy::default());
    let report = wasm_app::inspect::inspect_file(common::fuel_runtime(), &path).expect("inspect");
    assert_eq!(report.sha256, loaded.sha256());
    assert!(report.component && report.answer && report.greeter_rust && !report.arrow);
    assert!(
        report
            .exports
            .iter()
            .any(|e| e == "greet: func(name: string) -> string"),
        "{:?}",
        report.exports
    );
    assert!(
        report.unknown_imports.is_empty(),
        "{:?}",
        report.unknown_imports
    );
}

/// `max-instances` selects the pooling allocator, which must have room for a
/// component's several core instances, and caps live component instances.
#[test]
fn max_instances_caps_components_under_the_pooling_allocator() {
    let max_memory = 64 << 20;
    let rt = Runtime::new(EngineOptions {
        cache_dir: None,
        pool_instances: Some(2),
        pool_max_memory: max_memory,
        fuel: false,
    })
    .expect("pooling runtime");
    let policy = with_limits(Limits {
        max_instances: Some(2),
        max_memory,
        ..Limits::default()
    });
    let loaded = rt
        .load(common::hostile_component_path(), policy)
        .expect("load");
    let mut a = Plugin::new(loaded.clone());
    a.instantiate().expect("first instance");
    let mut b = Plugin::new(loaded.clone());
    b.instantiate().expect("second instance");
    match Plugin::new(loaded.clone()).instantiate() {
        Err(Error::LimitExceeded(Limit::Instances(2))) => {}
        Err(e) => panic!("expected the instance limit, got {e}"),
        Ok(_) => panic!("a third instance was created"),
    }
    assert_eq!(
        a.greet(StringAbi::Rust, "pool").expect("greet"),
        "Hello World, pool!"
    );
    drop(a);
    let mut c = Plugin::new(loaded);
    c.instantiate().expect("an instance after one is dropped");
    assert_eq!(c.answer().expect("answer"), 42);
}

/// `sleep` blocks in WASI 0.2 (`subscribe-duration` of 584 years, then
/// `pollable.block`): a host call, which epoch interruption cannot stop.
/// The call's deadline must.
#[test]
fn sleeping_in_wasi_ends_at_the_timeout() {
    let timeout = Duration::from_millis(200);
    let mut p = Plugin::new(load(with_limits(Limits {
        timeout,
        ..Limits::default()
    })));
    assert_eq!(p.answer().expect("answer"), 42);
    let (mut p, result, elapsed) = common::guard::timed_greet(p, StringAbi::Rust, "sleep");
    match result {
        Err(Error::LimitExceeded(Limit::Time(d))) => assert_eq!(d, timeout),
        other => panic!("expected the time limit, got {other:?}"),
    }
    assert!(
        elapsed < Duration::from_secs(1),
        "a 200ms timeout ended the sleep after {elapsed:?}"
    );
    assert!(!p.has_instance(), "the sleeping instance is discarded");
    assert_recovers(&mut p);
}

/// A component that opens a file 10 000 times without closing it stops at
/// `max-open-files` (the granted directory counts) with an error inside
/// the guest; the host is unharmed.
#[test]
fn open_files_are_bounded() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("f"), "data").expect("write");
    let max = 16;
    let mut policy = Policy {
        dirs: vec![DirGrant {
            host: dir.path().to_path_buf(),
            guest: Some("/data".into()),
            writable: false,
        }],
        ..Policy::default()
    };
    policy.limits.max_open_files = max;
    let mut p = Plugin::new(load(policy));
    let got = p
        .greet(StringAbi::Rust, "files:/data/f")
        .expect("the opens");
    let opened: u32 = got
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected reply {got:?}"));
    assert_eq!(opened, max - 1, "reply {got:?}");
    assert!(!got.ends_with(" ok"), "reply {got:?}");
    assert!(p.has_instance(), "an error inside the guest keeps it");
    assert_recovers(&mut p);
}
