//! A stateful command gives one result whatever the number of threads: the
//! workers' flush results are merged by the command's merge call (config
//! `merge`), through `pipeline::run` and `wasm-app process`, on the core
//! module and the component; a guest without merge support fails clearly.

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch, StringArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema, UInt64Type};
use common::cli::{self, arg};
use common::steps::{self, step};
use wasm_app::pipeline::Step;
use wasm_app::transport::{self, Table};
use wasm_app::Policy;

/// Runs `steps` over `input` and collects the output as one batch.
fn run(
    steps: &[Step],
    input: &Table,
    batch_size: usize,
    threads: usize,
) -> anyhow::Result<RecordBatch> {
    Ok(steps::concat(&steps::run(
        steps, input, batch_size, threads,
    )?))
}

/// `(rows, batches, bytes)` of `count`'s output, which must be one row.
fn totals(out: &RecordBatch) -> (u64, u64, u64) {
    assert_eq!(out.num_rows(), 1, "one result row, got {out:?}");
    let col = |name: &str| {
        out.column_by_name(name)
            .expect("count column")
            .as_primitive::<UInt64Type>()
            .value(0)
    };
    (col("rows"), col("batches"), col("bytes"))
}

/// `id u64, text utf8` (some null), in input batches of 500 rows.
fn docs(n: usize) -> Table {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::UInt64, false),
        Field::new("text", DataType::Utf8, true),
    ]));
    let words = ["wasm", "arrow", "cat", "merge", "zoë", "世界"];
    let batches = (0..n)
        .step_by(500)
        .map(|start| {
            let rows = start..(start + 500).min(n);
            let texts: StringArray = rows
                .clone()
                .map(|i| (i % 11 != 3).then(|| format!("{} {}", words[i % 6], words[i % 5])))
                .collect();
            let ids = UInt64Array::from_iter_values(rows.map(|i| i as u64));
            RecordBatch::try_new(schema.clone(), vec![Arc::new(ids), Arc::new(texts)])
                .expect("batch")
        })
        .collect();
    Table { schema, batches }
}

/// Batches and IPC bytes the host sends for `input` cut to `size` rows,
/// computed here as `count` defines them.
fn expected_batches_and_bytes(input: &Table, size: usize) -> (u64, u64) {
    let (mut batches, mut bytes) = (0u64, 0u64);
    for b in &input.batches {
        for start in (0..b.num_rows()).step_by(size) {
            let slice = b.slice(start, size.min(b.num_rows() - start));
            let encoded = transport::encode_stream(&slice.schema(), &[slice]).expect("encode");
            batches += 1;
            bytes += encoded.len() as u64;
        }
    }
    (batches, bytes)
}

#[test]
fn count_gives_one_total_on_any_number_of_threads() {
    let input = docs(4321);
    let (batches, bytes) = expected_batches_and_bytes(&input, 37);
    for (name, module) in common::arrow_modules() {
        for threads in [1, 2, 4] {
            let out = run(&[step(&module, "count", &[])], &input, 37, threads)
                .unwrap_or_else(|e| panic!("{name} on {threads} threads: {e:#}"));
            assert_eq!(
                totals(&out),
                (4321, batches, bytes),
                "{name} on {threads} threads"
            );
        }
    }
}

#[test]
fn count_of_golden_files_is_one_row_on_any_number_of_threads() {
    let dir = common::arrow_testing().join("integration-1.0.0-littleendian");
    for file in ["generated_primitive.stream", "generated_nested.stream"] {
        let input = transport::read_ipc(&dir.join(file)).expect("golden file");
        let rows = input.num_rows() as u64;
        assert!(rows > 0, "{file} has rows");
        let (batches, bytes) = expected_batches_and_bytes(&input, 3);
        for threads in [1, 2, 4] {
            let out = run(
                &[step(&common::arrow_module(), "count", &[])],
                &input,
                3,
                threads,
            )
            .unwrap_or_else(|e| panic!("{file} on {threads} threads: {e:#}"));
            assert_eq!(
                totals(&out),
                (rows, batches, bytes),
                "{file} on {threads} threads"
            );
        }
    }
}

#[test]
fn merged_counts_flow_through_the_later_steps() {
    let input = docs(3000);
    let text = input
        .batches
        .iter()
        .flat_map(|b| {
            let t = b.column(1).as_string::<i32>().clone();
            (0..t.len()).map(move |i| t.is_valid(i) && t.value(i).contains("ar"))
        })
        .filter(|kept| *kept)
        .count() as u64;
    for (name, m) in common::arrow_modules() {
        let filter = step(&m, "filter", &[("column", "text"), ("term", "ar")]);
        let count = step(&m, "count", &[]);
        let echo = step(&m, "echo", &[]);
        let mut single = None;
        for threads in [1, 2, 4] {
            let what = format!("{name} on {threads} threads");
            // filter → count: the rows kept, once.
            let out = run(&[filter.clone(), count.clone()], &input, 50, threads)
                .unwrap_or_else(|e| panic!("{what}: {e:#}"));
            assert_eq!(totals(&out).0, text, "{what}");
            // count → echo: the merged row goes through echo once.
            let out = run(&[count.clone(), echo.clone()], &input, 50, threads)
                .unwrap_or_else(|e| panic!("{what}: {e:#}"));
            assert_eq!(totals(&out).0, 3000, "{what}");
            // count → count: the second counts the first's one result row.
            let out = run(&[count.clone(), count.clone()], &input, 50, threads)
                .unwrap_or_else(|e| panic!("{what}: {e:#}"));
            let t = totals(&out);
            assert_eq!((t.0, t.1), (1, 1), "{what}");
            assert_eq!(*single.get_or_insert(t), t, "{what}: same as on 1 thread");
        }
    }
}

/// A guest of the old protocol: its flush returns `stream`, every other call
/// (data, and the merge call it does not know) an empty payload, as
/// `wasm-module2`'s `count` did before the merge call existed.
fn old_guest_wat(stream: &[u8]) -> String {
    let bytes: String = stream.iter().map(|b| format!("\\{b:02x}")).collect();
    format!(
        r#"(module
  (memory (export "memory") 1)
  (data (i32.const 1024) "{bytes}")
{alloc}
  (func (export "wasm_memory_process_data_arrow")
        (param i32 i32) (param $data i32) (param $data_len i32) (result i32)
    (i32.store (i32.const 16) (i32.const 0))
    (i32.store (i32.const 20) (i32.const 0))
    (if (i32.eqz (local.get $data_len))
      (then
        (i32.store (i32.const 16) (i32.const 1024))
        (i32.store (i32.const 20) (i32.const {len}))))
    (i32.const 16)))
"#,
        len = stream.len(),
        alloc = common::wat::bump_allocator(8192),
    )
}

fn old_guest() -> String {
    let schema = Arc::new(Schema::new(vec![Field::new(
        "rows",
        DataType::UInt64,
        false,
    )]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![Arc::new(UInt64Array::from(vec![7u64]))],
    )
    .expect("batch");
    let stream = transport::encode_stream(&schema, &[batch]).expect("encode");
    assert!(stream.len() < 7000, "fits below the allocator");
    old_guest_wat(&stream)
}

#[test]
fn a_guest_without_merge_support_fails_clearly_on_several_threads() {
    let m = common::runtime()
        .load_bytes("old.wat", old_guest().as_bytes(), Policy::default())
        .expect("load");
    let input = docs(2000);
    // One thread: one flush, nothing to merge.
    let out = run(&[step(&m, "count", &[])], &input, 10, 1).expect("one thread");
    assert_eq!(out.num_rows(), 1);
    // 200 batches on 4 workers: several flush, and the merge call returns
    // nothing, which must not pass for "no result".
    let err = run(&[step(&m, "count", &[])], &input, 10, 4).expect_err("merge unsupported");
    let msg = format!("{err:#}");
    assert!(msg.contains("step 1 (old.wat `count`)"), "{msg}");
    assert!(
        msg.contains("the merge call (config `merge`) returned nothing"),
        "{msg}"
    );
    assert!(msg.contains("--threads 1"), "{msg}");
}

fn cache() -> PathBuf {
    std::env::temp_dir().join("wasm-app-merge-cache")
}

#[test]
fn the_cli_prints_one_count_whatever_threads() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let input = docs(5000);
    let path = tmp.path().join("in.arrows");
    transport::write_ipc(&path, &input).expect("write input");
    let (batches, bytes) = expected_batches_and_bytes(&input, 100);
    for threads in ["1", "2", "4"] {
        let out = tmp.path().join(format!("count{threads}.arrows"));
        let o = cli::process(
            "count",
            &[
                arg(&path),
                "-o",
                arg(&out),
                "--batch-size",
                "100",
                "--threads",
                threads,
            ],
            &cache(),
        );
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{threads} threads: {stderr}");
        let t = transport::read_ipc(&out).expect("read output");
        assert_eq!(
            totals(&steps::concat(&t)),
            (5000, batches, bytes),
            "{threads} threads"
        );
    }
    // The default thread count (the number of cores) too, printed as a table.
    let o = cli::process("count", &[arg(&path)], &cache());
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(stdout.matches("| 5000 ").count(), 1, "{stdout}");

    // A module without merge support: one `error:` line, exit status 1.
    let old = tmp.path().join("old.wat");
    std::fs::write(&old, old_guest()).expect("write guest");
    let o = cli::wasm_app(
        &[
            "process",
            "--module",
            arg(&old),
            "--command",
            "count",
            arg(&path),
            "--batch-size",
            "10",
            "--threads",
            "4",
        ],
        &cache(),
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains("returned nothing"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}
