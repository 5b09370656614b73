//! Runtime features: module cache, reactors, pooling and instance caps,
//! manifests.

mod common;

use std::path::Path;

use common::cli;
use wasm_abi::built;
use wasm_app::CacheOutcome;
use wasm_app::{EngineOptions, Error, Limit, Plugin, Policy, Runtime, StringAbi};

fn data(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

#[test]
fn compiled_modules_are_cached_verified_and_rebuilt_when_corrupt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = EngineOptions {
        cache_dir: Some(dir.path().to_path_buf()),
        ..Default::default()
    };
    let path = common::guest_path(built::MODULE1);
    let load = || {
        let rt = Runtime::new(opts.clone()).expect("runtime");
        let m = rt.load(&path, Policy::default()).expect("load");
        let outcome = m.cache_outcome();
        let mut p = Plugin::new(m);
        assert_eq!(
            p.greet(StringAbi::Rust, "cache").expect("greet"),
            "Hello World, cache!"
        );
        outcome
    };
    assert_eq!(load(), CacheOutcome::Compiled);
    assert_eq!(load(), CacheOutcome::Hit);
    let entries: Vec<_> = std::fs::read_dir(dir.path())
        .expect("cache dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "cwasm"))
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    // Flip one byte in the middle of the compiled code: never trusted.
    let mut bytes = std::fs::read(&entries[0]).expect("entry");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&entries[0], &bytes).expect("corrupt");
    assert_eq!(load(), CacheOutcome::Rebuilt);
    assert_eq!(load(), CacheOutcome::Hit);
    // Truncated entry: same.
    std::fs::write(&entries[0], &bytes[..10]).expect("truncate");
    assert_eq!(load(), CacheOutcome::Rebuilt);
}

#[test]
fn another_engine_configuration_does_not_share_cache_entries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = common::guest_path(built::MODULE1);
    let with_fuel = |fuel: bool| {
        let rt = Runtime::new(EngineOptions {
            cache_dir: Some(dir.path().to_path_buf()),
            fuel,
            ..Default::default()
        })
        .expect("runtime");
        rt.load(&path, Policy::default())
            .expect("load")
            .cache_outcome()
    };
    assert_eq!(with_fuel(false), CacheOutcome::Compiled);
    assert_eq!(with_fuel(true), CacheOutcome::Compiled);
    assert_eq!(with_fuel(true), CacheOutcome::Hit);
}

#[test]
fn reactor_initialize_runs_before_other_exports() {
    let m = common::runtime()
        .load(data("reactor.wat"), Policy::default())
        .expect("load");
    assert_eq!(Plugin::new(m).answer().expect("answer"), 42);
}

#[test]
fn pooling_allocator_caps_live_instances() {
    let mut policy = Policy::default();
    policy.limits.max_instances = Some(2);
    policy.limits.max_memory = 64 << 20;
    let rt = Runtime::new(EngineOptions {
        pool_instances: Some(2),
        pool_max_memory: 64 << 20,
        ..Default::default()
    })
    .expect("pooling runtime");
    let m = rt
        .load(common::guest_path(built::MODULE1), policy)
        .expect("load");
    let mut a = Plugin::new(m.clone());
    a.instantiate().expect("first");
    let mut b = Plugin::new(m.clone());
    b.instantiate().expect("second");
    match Plugin::new(m.clone()).instantiate() {
        Err(Error::LimitExceeded(Limit::Instances(2))) => {}
        Err(e) => panic!("expected the instance limit, got {e:?}"),
        Ok(_) => panic!("expected the instance limit, got a third instance"),
    }
    drop(b);
    let mut c = Plugin::new(m);
    c.instantiate().expect("a slot is free again");
    assert_eq!(
        a.greet(StringAbi::C, "pool").expect("greet"),
        "Hello World, pool!"
    );
    assert_eq!(c.answer().expect("answer"), 42);
}

#[test]
fn manifest_pins_the_module_hash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let manifest = dir.path().join("policy.toml");
    std::fs::write(&manifest, format!("sha256 = \"{}\"\n", "ab".repeat(32))).expect("write");
    let policy = Policy::from_file(&manifest).expect("policy");
    let path = common::guest_path(built::MODULE1);
    match common::runtime().load(&path, policy) {
        Err(Error::PolicyDenied(m)) => assert!(m.contains("SHA-256"), "{m}"),
        Err(e) => panic!("expected PolicyDenied, got {e:?}"),
        Ok(_) => panic!("expected PolicyDenied, the module loaded"),
    }
    use sha2::Digest;
    let sha = hex::encode(sha2::Sha256::digest(std::fs::read(&path).expect("read")));
    std::fs::write(
        &manifest,
        format!("sha256 = \"{sha}\"\nmax-memory = \"64MiB\"\n"),
    )
    .expect("write");
    let policy = Policy::from_file(&manifest).expect("policy");
    let mut p = Plugin::new(common::runtime().load(&path, policy).expect("pinned load"));
    assert_eq!(p.answer().expect("answer"), 42);
}

#[test]
fn cli_policy_file_and_flag_override() {
    let dir = tempfile::tempdir().expect("tempdir");
    let manifest = dir.path().join("policy.toml");
    std::fs::write(&manifest, "timeout = \"30s\"\n").expect("write");
    let (cache, spin) = (dir.path().join("cache"), data("spin.wat"));
    // `greet x` on spin.wat with the manifest, and `extra` arguments.
    let greet = |extra: &[&str]| {
        let mut args = vec!["greet", "--module", cli::arg(&spin)];
        args.extend_from_slice(&["--policy", cli::arg(&manifest)]);
        args.extend_from_slice(extra);
        cli::wasm_app(&args, &cache)
    };
    // The flag overrides the manifest's 30 s.
    let o = greet(&["--timeout", "100ms", "--no-cache", "x"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1));
    assert!(err.contains("time limit of 100ms"), "{err}");
    std::fs::write(&manifest, "network = true\n").expect("write");
    let o = greet(&["x"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.starts_with("error: invalid policy") && err.contains("network"),
        "{err}"
    );
}

#[test]
fn a_trap_carries_the_guests_panic_message() {
    let m = common::runtime()
        .load(data("panics.wat"), Policy::default())
        .expect("load");
    let mut p = Plugin::new(m);
    match p.greet(StringAbi::Rust, "x") {
        Err(Error::Trap { message, .. }) => {
            assert!(message.starts_with("guest panicked: boom"), "{message}");
            assert!(message.contains("unreachable"), "{message}");
        }
        other => panic!("expected a trap, got {other:?}"),
    }
    assert!(!p.has_instance(), "the trapped instance is discarded");
}

/// A greeter's name goes into the same kept input area: one allocation for
/// many calls, a new one only for a longer name, and each name arrives.
#[test]
fn greeter_names_reuse_the_input_area() {
    let m = common::runtime()
        .load(data("count_allocations.wat"), Policy::default())
        .expect("load count_allocations.wat");
    let mut p = Plugin::new(m);
    let mut greet = |name: &str| p.greet(StringAbi::Rust, name).expect("greet");
    assert_eq!(greet("ab"), "1ab");
    assert_eq!(greet("cd"), "1cd");
    assert_eq!(greet(""), "1");
    let long = "x".repeat(100);
    assert_eq!(greet(&long), format!("2{long}"));
    assert_eq!(greet("ef"), "2ef");
}

/// The host keeps its Arrow input areas per instance: a stream of batches
/// costs one allocation per area, a smaller batch reuses the area, a larger
/// one gets a new area once, and every call's bytes arrive.
#[test]
fn arrow_input_areas_are_reused_across_calls() {
    let m = common::runtime()
        .load(data("count_allocations.wat"), Policy::default())
        .expect("load count_allocations.wat");
    let mut p = Plugin::new(m);
    let mut call = |data: &[u8]| -> (u32, [u8; 4]) {
        let out = p.process_ipc(b"meta", data).expect("process");
        assert_eq!(out.len(), 8, "payload: count and first data bytes");
        let count = u32::from_le_bytes([out[0], out[1], out[2], out[3]]);
        (count, [out[4], out[5], out[6], out[7]])
    };
    let batch = |fill: u8, len: usize| vec![fill; len];
    // Metadata and data: two areas.
    assert_eq!(call(&batch(1, 1000)), (2, [1; 4]));
    assert_eq!(call(&batch(2, 1000)), (2, [2; 4]));
    assert_eq!(call(&batch(3, 10)), (2, [3; 4]));
    // Larger than the kept area: one more allocation, then reuse again.
    assert_eq!(call(&batch(4, 300_000)), (3, [4; 4]));
    assert_eq!(call(&batch(5, 300_000)), (3, [5; 4]));
    assert_eq!(call(&batch(6, 100)), (3, [6; 4]));
    // No data: the data area is not touched, nothing is allocated.
    assert_eq!(call(&[]), (3, [0; 4]));
}
