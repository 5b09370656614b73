//! Streaming through `pipeline::run` and `wasm-app process`: batch sizes,
//! threads, formats, commands against plain-Rust references, pipelines, and
//! malformed input.

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{Array, RecordBatch, StringArray, UInt32Array, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema};
use common::cli::{self, arg};
use common::steps::{self, concat, run};
use wasm_app::pipeline::{self, Step};
use wasm_app::transport::{self, Table};

fn step(command: &str, config: &[(&str, &str)]) -> Step {
    steps::step(&common::arrow_module(), command, config)
}

#[test]
fn golden_streams_round_trip_at_every_batch_size_and_thread_count() {
    let dir = common::arrow_testing().join("integration-1.0.0-littleendian");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("golden dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "stream"))
        .collect();
    files.sort();
    assert!(files.len() >= 20);
    let echo = [step("echo", &[])];
    for f in files {
        let input = transport::read_ipc(&f).expect("golden");
        for batch_size in [1, 7, pipeline::DEFAULT_BATCH_SIZE] {
            // The host re-cuts each input batch into slices of `batch_size`
            // rows (an empty batch stays one batch); echo returns each as is.
            let mut want = Vec::new();
            for b in &input.batches {
                let mut offset = 0;
                loop {
                    let len = batch_size.min(b.num_rows() - offset);
                    want.push(b.slice(offset, len));
                    offset += len;
                    if offset >= b.num_rows() {
                        break;
                    }
                }
            }
            for threads in [1, 4] {
                let what = format!("{} batch size {batch_size}, {threads} threads", f.display());
                let out = run(&echo, &input, batch_size, threads)
                    .unwrap_or_else(|e| panic!("{what}: {e:#}"));
                assert_eq!(out.schema, input.schema, "{what}");
                assert_eq!(out.batches.len(), want.len(), "{what}");
                for (i, (a, b)) in out.batches.iter().zip(&want).enumerate() {
                    assert!(a == b, "{what}: batch {i} differs");
                }
            }
        }
    }
}

fn docs(n: usize) -> Table {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::UInt64, false),
        Field::new("text", DataType::Utf8, true),
    ]));
    let words = [
        "Wasm", "arrow", "CAT", "plug-in", "Zoë", "世界", "search", "engine",
    ];
    let texts: Vec<Option<String>> = (0..n)
        .map(|i| {
            (i % 13 != 5).then(|| {
                (0..(i % 6) + 1)
                    .map(|k| words[(i * 7 + k * 3) % words.len()])
                    .collect::<Vec<_>>()
                    .join(if i % 2 == 0 { " " } else { ", " })
            })
        })
        .collect();
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(UInt64Array::from_iter_values((0..n as u64).map(|i| i * 10))),
            Arc::new(StringArray::from(texts)),
        ],
    )
    .expect("batch");
    Table {
        schema,
        batches: vec![batch],
    }
}

fn texts(b: &RecordBatch, col: usize) -> Vec<Option<String>> {
    let a = b
        .column(col)
        .as_any()
        .downcast_ref::<StringArray>()
        .expect("utf8");
    (0..a.len())
        .map(|i| a.is_valid(i).then(|| a.value(i).to_string()))
        .collect()
}

#[test]
fn filter_matches_a_plain_rust_reference() {
    let input = docs(500);
    let out = run(
        &[step("filter", &[("column", "text"), ("term", "arrow")])],
        &input,
        37,
        2,
    )
    .expect("filter");
    let all = concat(&input);
    let want: Vec<Option<String>> = texts(&all, 1)
        .into_iter()
        .filter(|t| t.as_deref().is_some_and(|t| t.contains("arrow")))
        .collect();
    assert!(!want.is_empty());
    assert!(
        texts(&concat(&out), 1) == want,
        "filter differs from the reference"
    );
}

#[test]
fn tokenize_matches_a_plain_rust_reference() {
    let input = docs(300);
    let out = run(&[step("tokenize", &[("column", "text")])], &input, 50, 2).expect("tokenize");
    let all = concat(&input);
    let ids = all
        .column(0)
        .as_any()
        .downcast_ref::<UInt64Array>()
        .expect("ids");
    let mut want = Vec::new();
    for (row, t) in texts(&all, 1).into_iter().enumerate() {
        let Some(t) = t else { continue };
        for (pos, tok) in t
            .split(|c: char| !c.is_alphanumeric())
            .filter(|s| !s.is_empty())
            .enumerate()
        {
            want.push((ids.value(row), pos as u32, tok.to_lowercase()));
        }
    }
    let o = concat(&out);
    let d = o
        .column(0)
        .as_any()
        .downcast_ref::<UInt64Array>()
        .expect("doc_id");
    let p = o
        .column(1)
        .as_any()
        .downcast_ref::<UInt32Array>()
        .expect("position");
    let got: Vec<_> = (0..o.num_rows())
        .map(|i| {
            (
                d.value(i),
                p.value(i),
                texts(&o, 2)[i].clone().expect("token"),
            )
        })
        .collect();
    assert!(
        got == want,
        "tokenize differs from the reference ({} vs {} tokens)",
        got.len(),
        want.len()
    );
}

#[test]
fn count_totals_rows_and_batches_with_one_thread() {
    let input = docs(1000);
    let out = run(&[step("count", &[])], &input, 64, 1).expect("count");
    let o = concat(&out);
    let col = |i: usize| {
        o.column(i)
            .as_any()
            .downcast_ref::<UInt64Array>()
            .expect("u64")
            .value(0)
    };
    assert_eq!(o.num_rows(), 1);
    assert_eq!(col(0), 1000);
    assert_eq!(col(1), 1000u64.div_ceil(64));
    // bytes = the IPC bytes of each batch as the host encodes them.
    let all = concat(&input);
    let bytes: usize = (0..1000)
        .step_by(64)
        .map(|o| {
            let b = all.slice(o, 64.min(1000 - o));
            transport::encode_stream(&b.schema(), &[b])
                .expect("encode")
                .len()
        })
        .sum();
    assert_eq!(col(2), bytes as u64);
}

#[test]
fn a_pipeline_equals_its_steps_run_one_after_another() {
    let input = docs(400);
    let f = step("filter", &[("column", "text"), ("term", "a")]);
    let t = step("tokenize", &[("column", "text")]);
    let chained = run(&[f.clone(), t.clone()], &input, 33, 2).expect("pipeline");
    let first = run(&[f], &input, 33, 1).expect("filter");
    let second = run(&[t], &first, 33, 1).expect("tokenize");
    assert_eq!(concat(&chained), concat(&second));
}

fn cache() -> PathBuf {
    std::env::temp_dir().join("wasm-app-streaming-cache")
}

#[test]
fn csv_and_parquet_round_trip_through_the_cli() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let input = docs(2000);
    let ipc = tmp.path().join("in.arrows");
    transport::write_ipc(&ipc, &input).expect("write input");
    let mut prev = ipc.clone();
    for name in ["a.csv", "b.parquet", "c.arrow", "d.arrows"] {
        let out = tmp.path().join(name);
        let o = cli::process(
            "echo",
            &[
                arg(&prev),
                "-o",
                arg(&out),
                "--batch-size",
                "300",
                "--threads",
                "2",
            ],
            &cache(),
        );
        assert!(
            o.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        prev = out;
    }
    let back = transport::read_ipc(&prev).expect("read back");
    // CSV infers nullable types: compare the values.
    let b = concat(&back);
    assert!(
        texts(&b, 1) == texts(&concat(&input), 1),
        "text column differs after CSV and Parquet"
    );
    assert_eq!(b.num_rows(), 2000);
}

#[test]
fn compressed_ipc_input_is_read() {
    use arrow::ipc::writer::{IpcWriteOptions, StreamWriter};
    use arrow::ipc::CompressionType;
    let tmp = tempfile::tempdir().expect("tempdir");
    let input = docs(100);
    for (codec, name) in [
        (CompressionType::LZ4_FRAME, "lz4.arrows"),
        (CompressionType::ZSTD, "zstd.arrows"),
    ] {
        let path = tmp.path().join(name);
        let opts = IpcWriteOptions::default()
            .try_with_compression(Some(codec))
            .expect("codec");
        let mut w = StreamWriter::try_new_with_options(
            std::fs::File::create(&path).expect("create"),
            &input.schema,
            opts,
        )
        .expect("writer");
        w.write(&input.batches[0]).expect("write");
        w.finish().expect("finish");
        let out = tmp.path().join(format!("out-{name}"));
        let o = cli::process("echo", &[arg(&path), "-o", arg(&out)], &cache());
        assert!(
            o.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(
            concat(&transport::read_ipc(&out).expect("read")),
            input.batches[0]
        );
    }
}

#[test]
fn truncated_input_keeps_a_valid_prefix_and_names_file_and_batch() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let input = docs(1000);
    let all = concat(&input);
    let batches: Vec<RecordBatch> = (0..10).map(|i| all.slice(i * 100, 100)).collect();
    let bytes = transport::encode_stream(&input.schema, &batches).expect("encode");
    let cut = tmp.path().join("cut.arrows");
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).expect("write");
    let out = tmp.path().join("out.arrow");
    let o = cli::process(
        "echo",
        &[
            arg(&cut),
            "-o",
            arg(&out),
            "--batch-size",
            "100",
            "--threads",
            "3",
        ],
        &cache(),
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.starts_with("error: ") && err.contains("cut.arrows") && err.contains("batch"),
        "{err}"
    );
    // The output is a complete IPC file holding the batches before the cut.
    let back = transport::read_ipc(&out).expect("output is valid");
    let n = back.num_rows();
    assert!(n > 0 && n < 1000, "{n} rows");
    assert_eq!(concat(&back), all.slice(0, n));
}

#[test]
fn inputs_with_different_schemas_are_refused_naming_the_file() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let a = tmp.path().join("a.arrows");
    let b = tmp.path().join("b.arrows");
    transport::write_ipc(&a, &docs(10)).expect("a");
    transport::write_ipc(&b, &transport::study_example().expect("example")).expect("b");
    let o = cli::process("echo", &[arg(&a), arg(&b)], &cache());
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("b.arrows") && err.contains("schema"), "{err}");
    // Same schema twice: one stream.
    let out = tmp.path().join("ab.arrows");
    let o = cli::process("echo", &[arg(&a), arg(&a), "-o", arg(&out)], &cache());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(transport::read_ipc(&out).expect("read").num_rows(), 20);
}

#[test]
fn corrupt_csv_line_is_an_error_naming_the_file() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let csv = tmp.path().join("bad.csv");
    let mut text = String::from("id,score\n");
    // Past the lines used to infer the schema, so the type is settled.
    for i in 0..1500 {
        text.push_str(&format!("{i},{i}.5\n"));
    }
    text.push_str("1500,not-a-number\n");
    std::fs::write(&csv, text).expect("write");
    let out = tmp.path().join("o.arrows");
    let o = cli::process(
        "echo",
        &[arg(&csv), "-o", arg(&out), "--batch-size", "100"],
        &cache(),
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("bad.csv") && err.contains("batch 15"), "{err}");
    assert_eq!(
        transport::read_ipc(&out).expect("valid prefix").num_rows(),
        1500
    );
}
