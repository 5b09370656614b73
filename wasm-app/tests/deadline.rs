//! No host call outlives a call's timeout, one operation gets one deadline,
//! errors of the host's own checks poison an instance, timeouts saturate,
//! and a guest cannot hold the host's file descriptors without bound.
//!
//! The hostile guests are `tests/hostile/wasi_block.wat` (blocks in WASI:
//! `poll_oneoff` of 584 years, `open` and `read` of a FIFO, opening a file
//! 10 000 times) and `tests/hostile/trap_then_hang.wat`.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::guard::timed_greet;
use wasm_abi::built;
use wasm_app::policy::DEFAULT_MAX_OPEN_FILES;
use wasm_app::{DirGrant, Error, Limit, Module, Plugin, Policy, StringAbi};

fn load(file: &str, policy: Policy) -> Module {
    common::load_hostile(file, policy)
}

fn granted(dir: &Path, timeout: Duration) -> Policy {
    let mut policy = Policy {
        dirs: vec![DirGrant {
            host: dir.to_path_buf(),
            guest: Some("/data".into()),
            writable: false,
        }],
        ..Policy::default()
    };
    policy.limits.timeout = timeout;
    policy
}

/// Greets `wasi_block.wat` with `command` (on a plugin warmed up by one
/// `answer()`, so instantiation is not timed); the result and how long the
/// greet took.
fn blocked(policy: Policy, command: &'static str) -> (Plugin, Result<String, Error>, Duration) {
    let mut p = Plugin::new(load("wasi_block.wat", policy));
    assert_eq!(p.answer().expect("answer"), 42);
    timed_greet(p, StringAbi::Rust, command)
}

/// The time limit error, within about a second of a `timeout` of 200 ms;
/// the plugin then serves a good call from a fresh instance.
fn assert_cut_off(
    (mut p, result, elapsed): (Plugin, Result<String, Error>, Duration),
    timeout: Duration,
) {
    match result {
        Err(Error::LimitExceeded(Limit::Time(d))) => assert_eq!(d, timeout),
        other => panic!("expected the time limit, got {other:?}"),
    }
    assert!(
        elapsed >= timeout && elapsed < Duration::from_secs(1),
        "a {timeout:?} timeout ended the call after {elapsed:?}"
    );
    assert!(!p.has_instance(), "the blocked instance is discarded");
    assert_eq!(p.answer().expect("a fresh instance answers"), 42);
}

const TIMEOUT: Duration = Duration::from_millis(200);

#[test]
fn poll_oneoff_of_584_years_ends_at_the_timeout() {
    let mut policy = Policy::default();
    policy.limits.timeout = TIMEOUT;
    assert_cut_off(blocked(policy, "sleep"), TIMEOUT);
}

fn mkfifo(dir: &Path) -> PathBuf {
    let fifo = dir.join("pipe");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("run mkfifo");
    assert!(status.success(), "mkfifo {}", fifo.display());
    fifo
}

#[test]
fn opening_a_fifo_without_a_writer_ends_at_the_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fifo = mkfifo(dir.path());
    assert_cut_off(blocked(granted(dir.path(), TIMEOUT), "o:pipe"), TIMEOUT);
    // Opening both ends (never blocks on Linux) lets the guest's open(2),
    // stuck on a thread of the blocking pool, return.
    let _unstick = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&fifo);
}

/// Reading a FIFO that has a writer and no data: wasmtime-wasi reads files
/// at an offset, so the guest gets an errno (ESPIPE) at once; were the read
/// to block, the deadline would end it. Either way the call ends in time.
#[test]
fn reading_a_silent_fifo_ends_in_time() {
    use std::io::Write;
    let dir = tempfile::tempdir().expect("tempdir");
    let fifo = mkfifo(dir.path());
    // A writer that writes nothing: the guest's open succeeds.
    let mut writer = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&fifo)
        .expect("open the FIFO");
    let (mut p, result, elapsed) = blocked(granted(dir.path(), TIMEOUT), "r:pipe");
    match result {
        Ok(reply) => assert_ne!(&reply[..2], "00", "the read got data: {reply}"),
        Err(Error::LimitExceeded(Limit::Time(_))) => {}
        Err(e) => panic!("expected an errno or the time limit, got {e}"),
    }
    assert!(
        elapsed < Duration::from_secs(1),
        "the read took {elapsed:?}"
    );
    assert_eq!(p.answer().expect("answer"), 42);
    // Lets a read stuck on the blocking pool return.
    let _ = writer.write_all(b"x");
}

/// A trap 250 ms into the call, then a `wasm_last_error` that never returns:
/// the whole greet gets one timeout, not one each.
#[test]
fn a_trap_then_a_hanging_last_error_share_one_timeout() {
    let timeout = Duration::from_millis(400);
    let mut policy = Policy::default();
    policy.limits.timeout = timeout;
    let mut p = Plugin::new(load("trap_then_hang.wat", policy));
    assert_eq!(p.answer().expect("answer"), 42);
    let (mut p, result, elapsed) = timed_greet(p, StringAbi::C, "World");
    match result {
        Err(Error::Trap { message, .. }) => {
            assert!(message.contains("unreachable"), "trap message: {message}")
        }
        other => panic!("expected the trap, got {other:?}"),
    }
    assert!(
        elapsed < timeout * 3 / 2,
        "a trap plus its error message took {elapsed:?} under a {timeout:?} timeout"
    );
    assert_eq!(p.answer().expect("a fresh instance answers"), 42);
}

/// The longest timeout the policy accepts (7 days) runs calls normally:
/// the epoch deadline does not wrap. Beyond it, and zero, are refused when
/// the module is loaded, with the reason. (The deadline itself saturates
/// for any duration: `deadline.rs`'s unit test.)
#[test]
fn extreme_timeouts_are_refused_and_the_longest_works() {
    let path = common::guest_path(built::MODULE1);
    let mut policy = Policy::default();
    policy.limits.timeout = wasm_app::policy::MAX_TIMEOUT;
    let module = common::fuel_runtime()
        .load(&path, policy)
        .expect("the longest timeout is valid");
    let mut p = Plugin::new(module);
    assert_eq!(p.answer().expect("answer"), 42);
    assert_eq!(
        p.greet(StringAbi::Rust, "Rust").expect("greet"),
        "Hello World, Rust!"
    );
    for timeout in [
        Duration::ZERO,
        wasm_app::policy::MAX_TIMEOUT + Duration::from_secs(1),
        Duration::from_secs(10 * 365 * 86_400),
        Duration::from_nanos(u64::MAX),
        Duration::MAX,
    ] {
        let mut policy = Policy::default();
        policy.limits.timeout = timeout;
        match common::fuel_runtime().load(&path, policy) {
            Err(Error::InvalidPolicy(why)) => assert!(why.contains("timeout"), "{why}"),
            Err(e) => panic!("{timeout:?}: expected a policy error, got {e}"),
            Ok(_) => panic!("a timeout of {timeout:?} was accepted"),
        }
    }
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// Parses the probe's reply: errno, count.
fn errno_and_count(reply: &str) -> (u32, u32) {
    let parse = |s: Option<&str>| s.and_then(|d| d.parse().ok());
    match (parse(reply.get(..2)), parse(reply.get(2..))) {
        (Some(e), Some(n)) => (e, n),
        _ => panic!("unexpected reply {reply:?}"),
    }
}

const EMFILE: u32 = 33;

/// Opening the same file 10 000 times without closing it: after
/// `max-open-files` (the granted directory counts) the guest gets EMFILE,
/// and the host process holds no more descriptors than that.
#[test]
fn open_files_are_bounded() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("f"), "data").expect("write");
    for max in [DEFAULT_MAX_OPEN_FILES, 8] {
        let mut policy = granted(dir.path(), Duration::from_secs(30));
        policy.limits.max_open_files = max;
        let mut p = Plugin::new(load("wasi_block.wat", policy));
        let before = open_fds();
        let reply = p.greet(StringAbi::Rust, "m:f").expect("the opens");
        assert_eq!(errno_and_count(&reply), (EMFILE, max - 1), "max {max}");
        let held = open_fds().saturating_sub(before);
        assert!(held <= max as usize + 8, "the guest holds {held} host fds");
        // The instance is fine, and still at its bound.
        assert!(p.has_instance());
        let reply = p.greet(StringAbi::Rust, "m:f").expect("more opens");
        assert_eq!(errno_and_count(&reply), (EMFILE, 0));
        assert_eq!(p.answer().expect("answer"), 42);
    }
}
