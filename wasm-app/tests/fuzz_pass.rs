//! The short fuzz pass of `make test` (CI included): every fuzz target's
//! entry point (`wasm_app::fuzzing`, the functions `fuzz/` drives) is fed its
//! seeds and then mutations of them (bit flips, overwritten, cut, repeated
//! and spliced ranges) for `FUZZ_PASS_SECS` seconds per target (default 20
//! in CI, 5 elsewhere).
//!
//! This runs with the test build: no sanitizer and no coverage feedback,
//! because the coverage-guided build (`make fuzz`, ASan) takes ~25 minutes
//! of a 2-core machine before its first run. It catches what a mutation
//! reaches; `make fuzz` searches deeper. A panic fails the test and writes
//! the input to `target/fuzz-pass-failures/TARGET/` to be added to
//! `tests/fuzz-regressions/`.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use wasm_abi::built;
use wasm_app::fuzzing::TARGETS;

/// Seeds of a target: the regression inputs, plus what its input looks like.
fn seeds(target: &str) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut add_dir = |dir: &Path, keep: &dyn Fn(&Path) -> bool| {
        if let Ok(entries) = std::fs::read_dir(dir) {
            let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
            paths.sort();
            for p in paths.into_iter().filter(|p| keep(p)) {
                if let Ok(bytes) = std::fs::read(&p) {
                    out.push(bytes);
                }
            }
        }
    };
    add_dir(
        &manifest.join("tests/fuzz-regressions").join(target),
        &|_| true,
    );
    let testing = common::arrow_testing();
    let golden = testing.join("integration-1.0.0-littleendian");
    let ext = |e: &'static str| move |p: &Path| p.extension().is_some_and(|x| x == e);
    match target {
        "guest_stream" | "guest_memory" | "read_ipc_stream" => {
            add_dir(&testing.join("fuzz-ipc-stream"), &|_| true);
            add_dir(&golden, &ext("stream"));
        }
        "read_ipc_file" => add_dir(&golden, &ext("arrow_file")),
        "read_csv" => add_dir(&manifest.join("tests/data"), &ext("csv")),
        "read_parquet" => out.push(parquet_seed()),
        "inspect" => {
            add_dir(&manifest.join("tests/hostile"), &ext("wat"));
            add_dir(&common::modules_dir(), &|p: &Path| {
                p.file_name().is_some_and(|n| n == built::MODULE_C)
            });
        }
        _ => {}
    }
    // Small hand-written seeds for the text formats.
    let text: &[&str] = match target {
        "read_csv" => &["id,text,score\n1,hello,1.5\n2,\"a, b\",\n3,,-2e3\n"],
        "policy_toml" => &[
            "max-memory = \"64MiB\"\ntimeout = \"5s\"\nfuel = 10_000_000\n\
             max-instances = 4\n[env]\nLANG = \"C\"\n[[dir]]\nhost = \"data\"\n\
             guest = \"/data\"\nwritable = false\n",
        ],
        "cli_values" => &["64MiB", "5s", "1m 30s", "data::/data", "KEY=VALUE"],
        _ => &[],
    };
    out.extend(text.iter().map(|t| t.as_bytes().to_vec()));
    if out.is_empty() {
        out.push(Vec::new());
    }
    out
}

/// xorshift64*: reproducible mutations without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// One to four random edits of `seed` (or of `seed` spliced with `other`).
fn mutate(rng: &mut Rng, seed: &[u8], other: &[u8]) -> Vec<u8> {
    let mut d = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(d.len() + 1);
        match rng.below(7) {
            0 if !d.is_empty() => {
                let i = rng.below(d.len());
                d[i] ^= 1 << rng.below(8);
            }
            1 if !d.is_empty() => {
                let i = rng.below(d.len());
                // Interesting values: lengths and offsets at their edges.
                d[i] = [0x00, 0xff, 0x7f, 0x80, 0x01, 0x40][rng.below(6)];
            }
            2 if d.len() >= 4 => {
                let i = rng.below(d.len() - 3);
                let v: u32 = [u32::MAX, 0x7fff_ffff, 0x8000_0000, 0, 1, 8, 64][rng.below(7)];
                d[i..i + 4].copy_from_slice(&v.to_le_bytes());
            }
            3 => d.truncate(at),
            4 if !d.is_empty() => {
                let start = rng.below(d.len());
                let len = rng.below((d.len() - start).min(256)) + 1;
                let chunk = d[start..start + len].to_vec();
                d.splice(at..at, chunk);
            }
            5 if !other.is_empty() => {
                let start = rng.below(other.len());
                let len = rng.below(other.len() - start) + 1;
                d.splice(at.., other[start..start + len].iter().copied());
            }
            _ => {
                let n = rng.below(16) + 1;
                let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                d.splice(at..at, bytes);
            }
        }
    }
    d
}

/// `FUZZ_PASS_SECS` per target; by default 20 s in CI (`CI=true`), 5 s in a
/// developer's `make test`.
fn pass_time() -> Duration {
    let default = if std::env::var("CI").is_ok_and(|v| v == "true") {
        20
    } else {
        5
    };
    let secs = std::env::var("FUZZ_PASS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default);
    Duration::from_secs(secs)
}

fn save_failure(target: &str, n: usize, data: &[u8]) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/fuzz-pass-failures")
        .join(target);
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(format!("input-{n}"));
    let _ = std::fs::write(&path, data);
    path
}

#[test]
fn every_fuzz_target_survives_a_mutation_pass() {
    // The targets' own panics are caught and reported below; keep the
    // default hook's backtraces out of the log.
    std::panic::set_hook(Box::new(|_| {}));
    let budget = pass_time();
    let mut report = Vec::new();
    let mut failures = Vec::new();
    for (i, &(name, target)) in TARGETS.iter().enumerate() {
        let seeds = seeds(name);
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (i as u64 + 1));
        let started = Instant::now();
        let mut runs = 0usize;
        let mut inputs = seeds.clone().into_iter();
        while started.elapsed() < budget {
            let input = inputs.next().unwrap_or_else(|| {
                let a = &seeds[rng.below(seeds.len())];
                let b = &seeds[rng.below(seeds.len())];
                mutate(&mut rng, a, b)
            });
            runs += 1;
            if catch_unwind(AssertUnwindSafe(|| target(&input))).is_err() {
                failures.push(save_failure(name, runs, &input));
                break;
            }
        }
        report.push(format!(
            "{name}: {runs} runs from {} seeds in {:.1} s",
            seeds.len(),
            started.elapsed().as_secs_f64()
        ));
    }
    let _ = std::panic::take_hook();
    println!("{}", report.join("\n"));
    assert!(
        failures.is_empty(),
        "inputs that panicked (add them to tests/fuzz-regressions/): {failures:?}"
    );
}

/// A small Parquet file: strings (dictionary-encoded), integers with nulls,
/// floats, in two row groups.
fn parquet_seed() -> Vec<u8> {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
    use parquet::arrow::ArrowWriter;
    use parquet::file::properties::WriterProperties;

    let batch = RecordBatch::try_from_iter([
        (
            "text",
            Arc::new(StringArray::from(vec!["a", "bb", "a", "ccc"])) as ArrayRef,
        ),
        (
            "id",
            Arc::new(Int64Array::from(vec![Some(1), None, Some(3), Some(4)])) as ArrayRef,
        ),
        (
            "score",
            Arc::new(Float64Array::from(vec![0.5, 1.5, -2.0, 8.0])) as ArrayRef,
        ),
    ])
    .expect("seed batch");
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(2))
        .build();
    let mut out = Vec::new();
    let mut w = ArrowWriter::try_new(&mut out, batch.schema(), Some(props)).expect("writer");
    w.write(&batch).expect("write");
    w.close().expect("close");
    out
}
