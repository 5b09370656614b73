//! Replays every input the fuzz targets (`fuzz/`, `make fuzz`) ever crashed
//! on: `tests/fuzz-regressions/TARGET/*` goes to the entry point of TARGET
//! (`wasm_app::fuzzing`), the very function the fuzz target calls. An error
//! is a fine outcome; a panic fails the test.
//!
//! An input whose crash is not fixed yet is listed in [`UNFIXED`] and
//! replayed by its own `#[ignore]`d test, which names the reason; the sweep
//! skips it. Once fixed, remove it from the list and un-ignore its test.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use wasm_app::fuzzing;

/// `TARGET/FILE` of the inputs that still crash.
const UNFIXED: &[&str] = &[
    "guest_memory/crash-859288f28d8b63ff7288d8f7e56f1794037fb2b6",
    "guest_stream/crash-c70fd6f9b0db2d302cccb5940a59062895529cf5",
    "read_ipc_file/crash-7406ffaca4eac94315fbe7d169a4af8edf211792",
    "read_ipc_stream/crash-c70fd6f9b0db2d302cccb5940a59062895529cf5",
];

#[test]
#[ignore = "arrow-buffer panics slicing a buffer past its end (decoder, being hardened)"]
fn unfixed_guest_memory_buffer_slice() {
    replay("guest_memory/crash-859288f28d8b63ff7288d8f7e56f1794037fb2b6");
}

#[test]
#[ignore = "arrow-buffer panics slicing a buffer past its end (decoder, being hardened)"]
fn unfixed_guest_stream_buffer_slice() {
    replay("guest_stream/crash-c70fd6f9b0db2d302cccb5940a59062895529cf5");
}

#[test]
#[ignore = "IPC file reader allocates 0xf8000000000000 bytes: aborts (input readers, being hardened)"]
fn unfixed_read_ipc_file_huge_allocation() {
    replay("read_ipc_file/crash-7406ffaca4eac94315fbe7d169a4af8edf211792");
}

#[test]
#[ignore = "arrow-buffer panics slicing a buffer past its end (input readers, being hardened)"]
fn unfixed_read_ipc_stream_buffer_slice() {
    replay("read_ipc_stream/crash-c70fd6f9b0db2d302cccb5940a59062895529cf5");
}

fn regressions() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-regressions")
}

/// Feeds `tests/fuzz-regressions/{rel}` to its target; panics as it does.
fn replay(rel: &str) {
    let (name, _) = rel.split_once('/').expect("TARGET/FILE");
    let target = fuzzing::target(name).expect("a known target");
    let data = std::fs::read(regressions().join(rel)).expect("read the input");
    target(&data);
}

#[test]
fn every_crash_found_by_fuzzing_is_handled() {
    let root = regressions();
    let mut failures = Vec::new();
    let mut replayed = 0;
    for dir in std::fs::read_dir(&root).expect("tests/fuzz-regressions") {
        let dir = dir.expect("entry").path();
        let name = dir
            .file_name()
            .and_then(|n| n.to_str())
            .expect("a target folder name")
            .to_string();
        let target = fuzzing::target(&name)
            .unwrap_or_else(|| panic!("{} is not a fuzz target's folder", dir.display()));
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .expect("target folder")
            .map(|e| e.expect("entry").path())
            .collect();
        files.sort();
        for f in files {
            let rel = format!(
                "{name}/{}",
                f.file_name().unwrap_or_default().to_string_lossy()
            );
            if UNFIXED.contains(&rel.as_str()) {
                continue;
            }
            let data = std::fs::read(&f).expect("read the input");
            if catch_unwind(AssertUnwindSafe(|| target(&data))).is_err() {
                failures.push(rel);
            }
            replayed += 1;
        }
    }
    assert!(
        failures.is_empty(),
        "these inputs still panic: {failures:?}"
    );
    assert!(replayed > 0, "no regression input in {}", root.display());
}

#[test]
fn unfixed_inputs_exist() {
    for rel in UNFIXED {
        assert!(
            regressions().join(rel).is_file(),
            "{rel} is listed but missing"
        );
    }
}
