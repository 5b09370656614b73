//! Replays every input the fuzz targets (`fuzz/`, `make fuzz`) ever crashed
//! on: `tests/fuzz-regressions/TARGET/*` goes to the entry point of TARGET
//! (`wasm_app::fuzzing`), the very function the fuzz target calls. An error
//! is a fine outcome; a panic fails the test.
//!
//! An input whose crash is not fixed yet is listed in [`UNFIXED`] (with the
//! reason) and skipped by the sweep; once fixed, it leaves the list.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use wasm_app::fuzzing;

/// `TARGET/FILE` of the inputs that still crash (none today: the four found
/// by the first runs, in the guest-result decoder and the IPC readers, were
/// fixed by the host-side IPC checks).
const UNFIXED: &[&str] = &[];

fn regressions() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-regressions")
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
    for rel in UNFIXED {
        assert!(root.join(rel).is_file(), "{rel} is listed but missing");
    }
}
