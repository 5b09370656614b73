//! The compiled-module cache runs only native code this user's host compiled
//! (issue 12, class 6): entries are bound to a per-user key, the directory
//! and key must be private and not links, and no module may be granted the
//! cache's folder.

mod common;

use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

use common::cli;
use sha2::{Digest, Sha256};
use wasm_abi::built;
use wasm_app::fuzzing::cache::{ArtifactKind, ModuleCache};
use wasm_app::fuzzing::engine;
use wasm_app::CacheOutcome;
use wasm_app::{DirGrant, EngineOptions, Error, Plugin, Policy, Runtime, StringAbi};

fn greeter_path() -> PathBuf {
    common::guest_path(built::MODULE1)
}

fn cached_runtime(dir: &Path) -> Runtime {
    Runtime::new(EngineOptions {
        cache_dir: Some(dir.to_path_buf()),
        ..Default::default()
    })
    .expect("runtime")
}

/// Loads the greeter through a fresh runtime caching in `dir`, checks it
/// greets, and says where its code came from.
fn load_greeter(dir: &Path) -> CacheOutcome {
    let m = cached_runtime(dir)
        .load(greeter_path(), Policy::default())
        .expect("load the greeter");
    let outcome = m.cache_outcome();
    assert_eq!(
        Plugin::new(m)
            .greet(StringAbi::Rust, "cache")
            .expect("greet"),
        "Hello World, cache!"
    );
    outcome
}

fn cwasm_entries(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.expect("entry").path())
                .filter(|p| p.extension().is_some_and(|x| x == "cwasm"))
                .collect()
        })
        .unwrap_or_default()
}

/// A refused cache is not used: every load compiles, nothing is written.
fn assert_cache_unused(dir: &Path, entries_in: &Path) {
    assert_eq!(load_greeter(dir), CacheOutcome::Compiled);
    assert_eq!(load_greeter(dir), CacheOutcome::Compiled);
    assert!(cwasm_entries(entries_in).is_empty());
}

fn assert_err_contains<T>(r: anyhow::Result<T>, needles: &[&str]) {
    let msg = match r {
        Ok(_) => panic!("expected an error containing {needles:?}"),
        Err(e) => format!("{e:#}"),
    };
    for n in needles {
        assert!(msg.contains(n), "expected '{n}' in: {msg}");
    }
}

#[test]
fn an_entry_forged_without_the_key_is_rejected_and_recompiled() {
    let top = tempfile::tempdir().expect("tempdir");
    let dir = top.path().join("cache");
    assert_eq!(load_greeter(&dir), CacheOutcome::Compiled);
    assert_eq!(load_greeter(&dir), CacheOutcome::Hit);

    // Another module's native code, compiled by the same host.
    let other = common::guest_path(built::MODULE2);
    let rt = cached_runtime(&dir);
    rt.load(&other, Policy::default()).expect("load module2");
    let cache = ModuleCache::new(&dir).expect("cache");
    let entry = |p: &Path| {
        let bytes = std::fs::read(p).expect("module bytes");
        cache.entry_path(
            engine(&rt),
            ArtifactKind::Module,
            &Sha256::digest(&bytes).into(),
        )
    };
    let (greeter_entry, other_entry) = (entry(&greeter_path()), entry(&other));
    let payload = std::fs::read(&other_entry).expect("entry")[40..].to_vec();
    // The forger writes it under the greeter's name with the header and a
    // correct SHA-256 of the payload: enough against corruption, not forgery.
    let mut forged = std::fs::read(&greeter_entry).expect("entry")[..8].to_vec();
    forged.extend_from_slice(&Sha256::digest(&payload));
    forged.extend_from_slice(&payload);
    std::fs::write(&greeter_entry, &forged).expect("forge");
    // Rejected, recompiled (the greeter greets), and the entry replaced.
    assert_eq!(load_greeter(&dir), CacheOutcome::Rebuilt);
    assert_eq!(load_greeter(&dir), CacheOutcome::Hit);
    // A genuine entry moved to another module's name is rejected too.
    std::fs::copy(&other_entry, &greeter_entry).expect("copy");
    assert_eq!(load_greeter(&dir), CacheOutcome::Rebuilt);
}

fn component_path() -> PathBuf {
    common::modules_dir().join("wasm_component_greeter.wasm")
}

/// Loads the greeter component through a fresh runtime caching in `dir`,
/// checks it greets, and says where its code came from.
fn load_component(dir: &Path) -> CacheOutcome {
    let m = cached_runtime(dir)
        .load(component_path(), Policy::default())
        .expect("load the greeter component");
    assert!(m.is_component());
    let outcome = m.cache_outcome();
    let mut p = Plugin::new(m);
    assert_eq!(
        p.greet(StringAbi::Rust, "component").expect("greet"),
        "Hello World, component!"
    );
    assert_eq!(p.answer().expect("answer"), 42);
    outcome
}

/// Components are cached like core modules, under the same key and checks,
/// and never under a core module's entry (nor a core module under theirs).
#[test]
fn components_are_cached_verified_and_kept_apart_from_core_modules() {
    let top = tempfile::tempdir().expect("tempdir");
    let dir = top.path().join("cache");
    assert_eq!(load_component(&dir), CacheOutcome::Compiled);
    assert_eq!(load_component(&dir), CacheOutcome::Hit);

    let rt = cached_runtime(&dir);
    let cache = ModuleCache::new(&dir).expect("cache");
    let sha: [u8; 32] = Sha256::digest(std::fs::read(component_path()).expect("read")).into();
    let entry = cache.entry_path(engine(&rt), ArtifactKind::Component, &sha);
    assert!(entry.is_file(), "no entry at {}", entry.display());
    // The same bytes as a core module would have an entry of their own.
    assert_ne!(
        entry,
        cache.entry_path(engine(&rt), ArtifactKind::Module, &sha)
    );

    // Tampered native code: refused, recompiled (it greets), replaced.
    let mut bytes = std::fs::read(&entry).expect("entry");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&entry, &bytes).expect("tamper");
    assert_eq!(load_component(&dir), CacheOutcome::Rebuilt);
    assert_eq!(load_component(&dir), CacheOutcome::Hit);

    // A genuine core module entry, written by this host under this key,
    // put in the component's place: refused, never deserialized.
    assert_eq!(load_greeter(&dir), CacheOutcome::Compiled);
    let core_sha: [u8; 32] = Sha256::digest(std::fs::read(greeter_path()).expect("read")).into();
    let core_entry = cache.entry_path(engine(&rt), ArtifactKind::Module, &core_sha);
    std::fs::copy(&core_entry, &entry).expect("copy");
    assert_eq!(load_component(&dir), CacheOutcome::Rebuilt);
    // And the component's entry in the core module's place.
    std::fs::copy(&entry, &core_entry).expect("copy");
    assert_eq!(load_greeter(&dir), CacheOutcome::Rebuilt);
    assert_eq!(load_greeter(&dir), CacheOutcome::Hit);
    assert_eq!(load_component(&dir), CacheOutcome::Hit);
}

#[test]
fn a_cache_dir_others_can_write_is_not_used() {
    let top = tempfile::tempdir().expect("tempdir");
    let dir = top.path().join("cache");
    std::fs::create_dir(&dir).expect("mkdir");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    assert_err_contains(ModuleCache::new(&dir), &["cache", "mode 777"]);
    assert_cache_unused(&dir, &dir);
}

#[test]
fn a_symlinked_cache_dir_is_not_used() {
    let top = tempfile::tempdir().expect("tempdir");
    let real = top.path().join("real");
    std::fs::create_dir(&real).expect("mkdir");
    let link = top.path().join("cache");
    symlink(&real, &link).expect("symlink");
    assert_err_contains(ModuleCache::new(&link), &["cache", "symbolic link"]);
    assert_cache_unused(&link, &real);
    // Nor one reached through a link in a directory this user can write.
    std::fs::create_dir(real.join("sub")).expect("mkdir");
    let via = link.join("sub");
    assert_err_contains(ModuleCache::new(&via), &["symbolic link 'cache'"]);
}

#[test]
fn a_cache_dir_of_another_user_is_not_used() {
    if rustix::process::geteuid().as_raw() != 0 {
        eprintln!("skipped: only root can give a directory to another user");
        return;
    }
    let top = tempfile::tempdir().expect("tempdir");
    let dir = top.path().join("cache");
    std::fs::create_dir(&dir).expect("mkdir");
    std::os::unix::fs::chown(&dir, Some(65534), None).expect("chown");
    assert_err_contains(ModuleCache::new(&dir), &["owned by user 65534"]);
    assert_cache_unused(&dir, &dir);
}

#[test]
fn a_key_that_is_a_link_or_readable_by_others_is_refused() {
    let top = tempfile::tempdir().expect("tempdir");
    let dir = top.path().join("cache");
    std::fs::create_dir(&dir).expect("mkdir");
    let elsewhere = top.path().join("known.key");
    std::fs::write(&elsewhere, [7u8; 32]).expect("write");
    std::fs::set_permissions(&elsewhere, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    symlink(&elsewhere, dir.join("mac.key")).expect("symlink");
    assert_err_contains(ModuleCache::new(&dir), &["mac.key", "symbolic link"]);
    assert_cache_unused(&dir, &dir);

    std::fs::remove_file(dir.join("mac.key")).expect("rm");
    ModuleCache::new(&dir).expect("a fresh key");
    let key = dir.join("mac.key");
    let mode = std::fs::metadata(&key).expect("key").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    assert_err_contains(ModuleCache::new(&dir), &["mac.key", "mode 644"]);
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    std::fs::write(&key, [1u8; 5]).expect("truncate");
    assert_err_contains(ModuleCache::new(&dir), &["mac.key", "5 bytes"]);
}

#[test]
fn a_policy_granting_the_cache_folder_is_denied() {
    let top = tempfile::tempdir().expect("tempdir");
    let dir = top.path().join("cache");
    let rt = cached_runtime(&dir);
    std::fs::create_dir(dir.join("sub")).expect("mkdir");
    std::fs::create_dir(top.path().join("elsewhere")).expect("mkdir");
    symlink(&dir, top.path().join("alias")).expect("symlink");
    let grant = |host: PathBuf, writable: bool| Policy {
        dirs: vec![DirGrant {
            host,
            guest: Some("/data".into()),
            writable,
        }],
        ..Policy::default()
    };
    for (host, writable, how) in [
        (dir.clone(), true, "contains"),
        (dir.clone(), false, "contains"),
        (top.path().to_path_buf(), true, "contains"),
        (top.path().join("alias"), true, "contains"),
        (dir.join("sub"), true, "lies inside"),
    ] {
        match rt.load(greeter_path(), grant(host.clone(), writable)) {
            Err(Error::PolicyDenied(msg)) => {
                for n in [&host.display().to_string(), &dir.display().to_string(), how] {
                    assert!(msg.contains(n), "expected '{n}' in: {msg}");
                }
            }
            Err(e) => panic!("granting {}: {e}", host.display()),
            Ok(_) => panic!("granting {} was allowed", host.display()),
        }
    }
    rt.load(greeter_path(), grant(top.path().join("elsewhere"), true))
        .expect("a grant beside the cache is fine");
}

#[test]
fn cli_warns_once_and_runs_without_a_cache_others_can_write() {
    let top = tempfile::tempdir().expect("tempdir");
    let cache = top.path().join("cache");
    std::fs::create_dir(&cache).expect("mkdir");
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let o = cli::wasm_app(
        &["greet", "--module", cli::arg(&greeter_path()), "cache"],
        &cache,
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert_eq!(String::from_utf8_lossy(&o.stdout), "Hello World, cache!\n");
    assert!(
        err.starts_with("warning: running without the compiled-module cache"),
        "{err}"
    );
    assert!(err.contains("mode 777"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert_eq!(std::fs::read_dir(&cache).expect("cache").count(), 0);
}
