//! What `wasm-app process` writes: nothing lost (a stream whose dictionaries
//! change between batches, written as an IPC file, Parquet or CSV), and
//! never a panic (a reader that closes stdout early, as `| head` does).

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{
    ArrayRef, AsArray, DictionaryArray, Int32Array, ListArray, RecordBatch, StringArray,
};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field, Int32Type, Schema, SchemaRef};
use arrow::ipc::writer::{FileWriter, StreamWriter};
use arrow::util::pretty::pretty_format_batches;
use wasm_abi::built;

fn wasm_app() -> Command {
    common::cli::command(&cache_dir())
}

fn cache_dir() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("wasm-app-output-test-cache-{}", std::process::id()))
}

fn module2() -> String {
    common::guest_arg(built::MODULE2)
}

fn echo(input: &Path, output: &Path, extra: &[&str]) -> Output {
    let o = wasm_app()
        .args(["process", "--module", &module2(), "--command", "echo", "-q"])
        .arg(input)
        .arg("-o")
        .arg(output)
        .args(extra)
        .output()
        .expect("run wasm-app");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    o
}

fn dict(keys: &[i32], values: &[&str]) -> ArrayRef {
    Arc::new(
        DictionaryArray::<Int32Type>::try_new(
            Int32Array::from(keys.to_vec()),
            Arc::new(StringArray::from(values.to_vec())),
        )
        .expect("dictionary"),
    )
}

/// Two batches, each with its own dictionary for `tag`: "b" is in both,
/// "c" only in the second, "a" only in the first.
fn replaced() -> (SchemaRef, Vec<RecordBatch>) {
    let t = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int32, false),
        Field::new("tag", t, false),
    ]));
    let b1 = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int32Array::from(vec![1, 2, 3])),
            dict(&[0, 1, 0], &["a", "b"]),
        ],
    )
    .expect("batch 1");
    let b2 = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int32Array::from(vec![4, 5, 6])),
            dict(&[0, 1, 1], &["c", "b"]),
        ],
    )
    .expect("batch 2");
    (schema, vec![b1, b2])
}

/// The same, with the dictionary inside a list column.
fn replaced_nested() -> (SchemaRef, Vec<RecordBatch>) {
    let t = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
    let item = Arc::new(Field::new("item", t, true));
    let schema = Arc::new(Schema::new(vec![Field::new(
        "tags",
        DataType::List(item.clone()),
        true,
    )]));
    let batch = |keys: &[i32], values: &[&str], lengths: &[usize]| {
        let list = ListArray::new(
            item.clone(),
            OffsetBuffer::from_lengths(lengths.iter().copied()),
            dict(keys, values),
            None,
        );
        RecordBatch::try_new(schema.clone(), vec![Arc::new(list)]).expect("batch")
    };
    let b1 = batch(&[0, 1, 0], &["a", "b"], &[2, 1]);
    let b2 = batch(&[0, 1, 1], &["c", "b"], &[1, 2]);
    (schema, vec![b1, b2])
}

fn write_stream(path: &Path, schema: &SchemaRef, batches: &[RecordBatch]) {
    let mut w = StreamWriter::try_new(std::fs::File::create(path).expect("create"), schema)
        .expect("stream writer");
    for b in batches {
        w.write(b).expect("write");
    }
    w.finish().expect("finish");
}

/// The defect: arrow's own file writer refuses these batches.
fn assert_file_writer_refuses(schema: &SchemaRef, batches: &[RecordBatch]) {
    let mut w = FileWriter::try_new(Vec::new(), schema).expect("file writer");
    let r = batches.iter().try_for_each(|b| w.write(b));
    let err = r.expect_err("a replaced dictionary").to_string();
    assert!(err.contains("Dictionary replacement"), "{err}");
}

fn read_file(path: &Path) -> (SchemaRef, Vec<RecordBatch>) {
    let r = arrow::ipc::reader::FileReader::try_new(std::fs::File::open(path).expect("open"), None)
        .expect("an IPC file");
    let schema = r.schema();
    let batches = r.collect::<Result<Vec<_>, _>>().expect("batches");
    (schema, batches)
}

fn read_parquet(path: &Path) -> (SchemaRef, Vec<RecordBatch>) {
    let f = std::fs::File::open(path).expect("open");
    let b = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f)
        .expect("a Parquet file");
    let schema = b.schema().clone();
    let batches = b
        .build()
        .expect("reader")
        .collect::<Result<Vec<_>, _>>()
        .expect("batches");
    (schema, batches)
}

/// The values as a text table: equal text, equal values, whatever the
/// dictionaries' keys and the batch boundaries.
fn text(batches: &[RecordBatch]) -> String {
    pretty_format_batches(batches).expect("pretty").to_string()
}

fn keys(b: &RecordBatch, column: usize) -> Vec<i32> {
    let d = b.column(column).as_dictionary::<Int32Type>();
    d.keys().values().to_vec()
}

#[test]
fn replaced_dictionaries_are_written_as_an_ipc_file_that_reads_back_equal() {
    let (schema, batches) = replaced();
    assert_file_writer_refuses(&schema, &batches);
    let tmp = tempfile::tempdir().expect("tempdir");
    let input = tmp.path().join("in.arrows");
    write_stream(&input, &schema, &batches);
    let out = tmp.path().join("out.arrow");
    echo(&input, &out, &[]);

    let (back_schema, back) = read_file(&out);
    assert_eq!(back_schema, schema);
    assert_eq!(back.len(), 2);
    assert_eq!(text(&back), text(&batches));
    // One dictionary for the file, in first-seen order: batch 1 keeps its
    // keys, batch 2's "c" and "b" get the union's keys.
    let union = back[1]
        .column(1)
        .as_dictionary::<Int32Type>()
        .values()
        .clone();
    assert_eq!(
        union.as_string::<i32>(),
        &StringArray::from(vec!["a", "b", "c"])
    );
    assert_eq!(keys(&back[0], 1), [0, 1, 0]);
    assert_eq!(keys(&back[1], 1), [2, 1, 1]);
}

#[test]
fn nested_and_golden_dictionaries_are_written_as_ipc_files() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (schema, batches) = replaced_nested();
    assert_file_writer_refuses(&schema, &batches);
    let input = tmp.path().join("nested.arrows");
    write_stream(&input, &schema, &batches);
    let out = tmp.path().join("nested.arrow");
    echo(&input, &out, &[]);
    let (back_schema, back) = read_file(&out);
    assert_eq!(back_schema, schema);
    assert_eq!(text(&back), text(&batches));

    // Arrow's golden dictionary files, one row per batch: each batch the
    // guest returns carries its own copy of the dictionaries.
    let dir = common::arrow_testing().join("integration-1.0.0-littleendian");
    for name in [
        "generated_dictionary",
        "generated_dictionary_unsigned",
        "generated_nested_dictionary",
    ] {
        let golden = dir.join(format!("{name}.stream"));
        let input = wasm_app::transport::read_ipc(&golden).expect("golden");
        let out = tmp.path().join(format!("{name}.arrow"));
        echo(&golden, &out, &["--batch-size", "1"]);
        let (back_schema, back) = read_file(&out);
        assert_eq!(back_schema, input.schema, "{name}");
        assert_eq!(text(&back), text(&input.batches), "{name}");
    }
}

#[test]
fn replaced_dictionaries_are_written_as_parquet_and_csv() {
    let (schema, batches) = replaced();
    let tmp = tempfile::tempdir().expect("tempdir");
    let input = tmp.path().join("in.arrows");
    write_stream(&input, &schema, &batches);

    let out = tmp.path().join("out.parquet");
    echo(&input, &out, &[]);
    let (back_schema, back) = read_parquet(&out);
    assert_eq!(back_schema, schema);
    assert_eq!(text(&back), text(&batches));

    let out = tmp.path().join("out.csv");
    echo(&input, &out, &[]);
    let csv = std::fs::read_to_string(&out).expect("csv");
    assert_eq!(csv, "id,tag\n1,a\n2,b\n3,a\n4,c\n5,b\n6,b\n");

    let (schema, batches) = replaced_nested();
    let input = tmp.path().join("nested.arrows");
    write_stream(&input, &schema, &batches);
    let out = tmp.path().join("nested.parquet");
    echo(&input, &out, &[]);
    let (_, back) = read_parquet(&out);
    assert_eq!(text(&back), text(&batches));
}

#[test]
fn the_library_writes_replaced_dictionaries_as_an_ipc_file() {
    let (schema, batches) = replaced();
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("lib.arrow");
    let table = wasm_app::Table {
        schema: schema.clone(),
        batches: batches.clone(),
    };
    wasm_app::transport::write_ipc(&out, &table).expect("write_ipc");
    let back = wasm_app::transport::read_ipc(&out).expect("read back");
    assert_eq!(back.schema, schema);
    assert_eq!(text(&back.batches), text(&batches));
}

/// Feeds CSV rows to `wasm-app process - --input-format csv ARGS` on stdin
/// (up to `cap` bytes, about 64 MB), reads `keep` bytes of its stdout and
/// closes it. Returns the exit status, stderr, bytes fed and the time taken.
fn close_early(args: &[&str], keep: usize, cap: usize) -> (Output, usize, Duration) {
    let start = Instant::now();
    let mut child = wasm_app()
        .args(["process", "--module", &module2(), "--command", "echo", "-q"])
        .args(["--input-format", "csv", "-"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn wasm-app");
    let mut stdin = child.stdin.take().expect("stdin");
    let feeder = std::thread::spawn(move || {
        let mut fed = 0;
        let mut chunk = String::from("id,name\n");
        let mut row = 0u64;
        while fed < cap {
            while chunk.len() < 1 << 16 {
                chunk.push_str(&format!("{row},name_{row}\n"));
                row += 1;
            }
            // Fails with EPIPE once wasm-app has exited.
            if stdin.write_all(chunk.as_bytes()).is_err() {
                break;
            }
            fed += chunk.len();
            chunk.clear();
        }
        fed
    });
    let mut stdout = child.stdout.take().expect("stdout");
    let mut head = vec![0u8; keep];
    stdout
        .read_exact(&mut head)
        .expect("the first bytes of output");
    drop(stdout);
    let mut stderr = child.stderr.take().expect("stderr");
    let errors = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = stderr.read_to_end(&mut s);
        s
    });
    let deadline = start + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("wasm-app still running 60 s after its stdout was closed");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let elapsed = start.elapsed();
    let fed = feeder.join().expect("feeder");
    let stderr = errors.join().expect("stderr");
    (
        Output {
            status,
            stdout: head,
            stderr,
        },
        fed,
        elapsed,
    )
}

#[test]
fn a_closed_stdout_ends_the_run_quietly_with_success_in_every_format() {
    const CAP: usize = 64 << 20;
    let cases: [(&[&str], usize); 5] = [
        (&["-o", "-", "--format", "csv"], 100),
        (&["-o", "-", "--format", "arrows"], 100),
        (&["-o", "-", "--format", "arrow"], 100),
        // Parquet writes a row group (up to 1M rows) at a time.
        (&["-o", "-", "--format", "parquet"], 4),
        // No -o: text tables.
        (&[], 100),
    ];
    for (args, keep) in cases {
        let (o, fed, took) = close_early(args, keep, CAP);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {err}");
        assert!(err.is_empty(), "{args:?}: stderr: {err}");
        // It stopped at the broken pipe, not at the end of the input.
        assert!(fed < CAP / 2, "{args:?}: read {fed} bytes of input");
        assert!(took < Duration::from_secs(30), "{args:?}: {took:?}");
    }
}

#[test]
fn a_union_result_written_as_parquet_is_an_error_not_a_panic() {
    // The parquet crate has no union type (`unimplemented!`): the host
    // contains the panic, and the user reads one line.
    let input = common::arrow_testing()
        .join("integration-1.0.0-littleendian")
        .join("generated_union.stream");
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("union.parquet");
    let o = wasm_app()
        .args(["process", "--module", &module2(), "--command", "echo", "-q"])
        .arg(&input)
        .arg("-o")
        .arg(&out)
        .output()
        .expect("run wasm-app");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains("Parquet"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}
