//! The `wasm-app` binary end to end: what a user types and sees.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::cli;
use wasm_abi::built;

fn wasm_app(args: &[&str]) -> Output {
    cli::wasm_app(args, &cache_dir())
}

fn cache_dir() -> PathBuf {
    std::env::temp_dir().join(format!("wasm-app-cli-test-cache-{}", std::process::id()))
}

fn data(name: &str) -> String {
    format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn module(name: &str) -> String {
    common::guest_arg(name)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A failure is one `error: ...` line (plus nothing else), exit status 1.
fn assert_clean_failure(o: &Output, needle: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(1), "stderr: {err}");
    assert!(err.starts_with("error: "), "stderr: {err}");
    assert!(err.contains(needle), "expected '{needle}' in: {err}");
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
}

#[test]
fn demo_prints_answer_greetings_and_arrow_table() {
    let dir = common::modules_dir().display().to_string();
    let o = wasm_app(&["demo", "--modules", &dir]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("answer() = 42"), "{out}");
    assert!(out.contains("C ABI:    Hello World, Rust!"), "{out}");
    assert!(out.contains("Rust ABI: Hello World, Rust!"), "{out}");
    assert!(out.contains("| 1  | this is a test2 |"), "{out}");
}

#[test]
fn greet_through_both_abis_with_utf8() {
    for abi in ["c", "rust"] {
        let o = wasm_app(&[
            "greet",
            "--module",
            &module(built::MODULE1),
            "--abi",
            abi,
            "Zoë 世界",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(stdout(&o), "Hello World, Zoë 世界!\n");
    }
}

#[test]
fn process_writes_ipc_file_and_stream_that_read_back_equal() {
    let golden =
        common::arrow_testing().join("integration-1.0.0-littleendian/generated_nested.stream");
    let input = wasm_app::transport::read_ipc(&golden).expect("golden");
    let tmp = tempfile::tempdir().expect("tempdir");
    for name in ["out.arrow", "out.arrows"] {
        let out = tmp.path().join(name);
        let o = cli::process(
            "echo",
            &[cli::arg(&golden), "-o", cli::arg(&out)],
            &cache_dir(),
        );
        assert!(o.status.success(), "{}", stderr(&o));
        let magic = std::fs::read(&out).expect("output")[..6].to_vec();
        assert_eq!(
            magic == b"ARROW1",
            name.ends_with(".arrow"),
            "{name} layout"
        );
        let back = wasm_app::transport::read_ipc(&out).expect("read back");
        assert_eq!(back.schema, input.schema);
        assert_eq!(back.batches, input.batches);
    }
}

#[test]
fn process_without_output_prints_a_table() {
    let golden = common::arrow_testing()
        .join("integration-1.0.0-littleendian/generated_primitive.arrow_file");
    let o = cli::process("echo", &[cli::arg(&golden)], &cache_dir());
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("+--"), "{}", stdout(&o));
}

#[test]
fn missing_module_file_is_one_clear_line() {
    let o = wasm_app(&["greet", "--module", "/no/such/module.wasm", "Rust"]);
    assert_clean_failure(&o, "/no/such/module.wasm");
}

#[test]
fn module_without_the_abi_names_the_missing_export() {
    let o = wasm_app(&["greet", "--module", &data("no_exports.wat"), "Rust"]);
    assert_clean_failure(&o, "does not export `wasm_memory_rust_format_hello_world`");
}

#[test]
fn unknown_command_reports_the_guest_message() {
    let golden =
        common::arrow_testing().join("integration-1.0.0-littleendian/generated_primitive.stream");
    let o = cli::process("nope", &[cli::arg(&golden)], &cache_dir());
    assert_clean_failure(&o, "nope");
}

#[test]
fn fuzzed_input_file_is_an_error_naming_the_file() {
    let dir = common::arrow_testing().join("fuzz-ipc-stream");
    let f = std::fs::read_dir(&dir)
        .expect("fuzz dir")
        .map(|e| e.expect("entry").path())
        .find(|p| wasm_app::transport::read_ipc(p).is_err())
        .expect("a fuzz file arrow-rs rejects");
    let o = cli::process("echo", &[cli::arg(&f)], &cache_dir());
    assert_clean_failure(&o, &f.file_name().expect("name").to_string_lossy());
}

#[test]
fn limits_from_flags_give_one_line_naming_the_limit() {
    let o = wasm_app(&[
        "greet",
        "--module",
        &data("grow_bomb.wat"),
        "--max-memory",
        "4MiB",
        "x",
    ]);
    assert_clean_failure(&o, "module exceeded its memory limit of 4 MiB");
    let o = wasm_app(&[
        "greet",
        "--module",
        &data("spin.wat"),
        "--timeout",
        "200ms",
        "x",
    ]);
    assert_clean_failure(&o, "module exceeded its time limit of 200ms");
}

#[test]
fn bad_arguments_are_usage_errors_not_panics() {
    let o = wasm_app(&["greet", "--abi", "cobol", "--module", "x.wasm", "n"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("error:"), "{}", stderr(&o));
    let o = wasm_app(&[
        "greet",
        "--module",
        &module(built::MODULE1),
        "--max-memory",
        "lots",
        "n",
    ]);
    assert_clean_failure(&o, "lots");
}

#[test]
fn inspect_reports_abi_support_and_hash() {
    let path = module(built::MODULE1);
    let o = wasm_app(&["inspect", &path]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    use sha2::Digest;
    let sha = hex::encode(sha2::Sha256::digest(
        std::fs::read(Path::new(&path)).expect("read"),
    ));
    assert!(out.contains(&sha), "{out}");
    assert!(out.contains("greeter (C):      yes"), "{out}");
    assert!(out.contains("Arrow processor:  no"), "{out}");
}

/// Components go through the same commands as core modules.
#[test]
fn components_run_through_the_same_commands() {
    let greeter = module(built::COMPONENT_GREETER);
    for abi in ["c", "rust"] {
        let o = wasm_app(&["greet", "--module", &greeter, "--abi", abi, "Zoë"]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(stdout(&o).trim_end(), "Hello World, Zoë!");
    }

    let golden = common::arrow_testing()
        .join("integration-1.0.0-littleendian/generated_primitive.arrow_file");
    let golden = cli::arg(&golden);
    let o = wasm_app(&[
        "process",
        "--module",
        &module(built::COMPONENT_ARROW),
        "--command",
        "echo",
        "--step",
        &format!("{}:echo", module(built::MODULE2)),
        golden,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("+--"), "{}", stdout(&o));
    let o = wasm_app(&[
        "process",
        "--module",
        &module(built::COMPONENT_ARROW),
        "--command",
        "frobnicate",
        golden,
    ]);
    assert_clean_failure(&o, "unknown command 'frobnicate'");

    let o = wasm_app(&["inspect", &greeter]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("kind:    component"), "{out}");
    assert!(out.contains("greet: func(name: string) -> string"), "{out}");
    assert!(out.contains("wasi:cli/environment"), "{out}");

    let o = wasm_app(&[
        "greet",
        "--module",
        &module(built::COMPONENT_HOSTILE),
        "--timeout",
        "200ms",
        "loop",
    ]);
    assert_clean_failure(&o, "module exceeded its time limit of 200ms");
}

/// `wasm-app bench` measures every figure on the real guests (echo checked
/// for equality on the way) and prints one ratio per figure; the figures
/// themselves are machine-dependent, so only their presence is checked.
#[test]
fn bench_prints_each_ratio() {
    let dir = common::modules_dir().display().to_string();
    let o = wasm_app(&[
        "bench",
        "--modules",
        &dir,
        "--rows",
        "2000",
        "--repeat",
        "1",
        "--threads",
        "2",
        "--crossover",
        "1,50",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let ratio_of = |prefix: &str, marker: &str| -> f64 {
        let line = out
            .lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no '{prefix}' line in: {out}"));
        let (_, tail) = line
            .split_once("-> ")
            .unwrap_or_else(|| panic!("no ratio in: {line}"));
        let value = tail.split(marker).next().unwrap_or_default();
        value
            .parse()
            .unwrap_or_else(|e| panic!("'{value}' in '{line}': {e}"))
    };
    assert!(ratio_of("echo 2000 rows", "x memcpy") > 0.0, "{out}");
    assert!(ratio_of("tokenize 2000 rows", "x (") > 0.0, "{out}");
    let rows: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.starts_with("rows\t"))
        .skip(1)
        .map(|l| l.split('\t').next().unwrap_or_default())
        .collect();
    assert_eq!(rows, ["1", "50"], "{out}");
}

#[test]
fn bench_refuses_zero_rows_and_missing_modules() {
    let dir = common::modules_dir().display().to_string();
    let o = wasm_app(&["bench", "--modules", &dir, "--rows", "0"]);
    assert_clean_failure(&o, "--rows");
    let o = wasm_app(&["bench", "--modules", "/nonexistent/modules"]);
    assert_clean_failure(&o, "make guests");
}
