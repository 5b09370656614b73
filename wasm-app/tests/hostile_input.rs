//! What an input file contains cannot panic, abort or blow up the host:
//! malformed IPC files and streams are errors, and no batch may decode or
//! expand past its bound (compressed IPC, Parquet dictionaries).

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, DictionaryArray, Int32Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Int32Type, Schema};
use arrow::ipc::writer::{FileWriter, IpcWriteOptions, StreamWriter};
use arrow::ipc::CompressionType;
use common::cli;
use wasm_app::formats;

/// Every batch of `path` read through `formats::open`, or the first error.
fn read(path: &Path, max_batch_bytes: u64) -> wasm_app::Result<Vec<RecordBatch>> {
    formats::open(path, None, 8192, max_batch_bytes)?.collect()
}

fn files(dir: &str) -> Vec<PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(common::arrow_testing().join(dir))
        .expect("test data folder")
        .map(|e| e.expect("entry").path())
        .filter(|p| !p.to_string_lossy().ends_with(".json.gz"))
        .collect();
    v.sort();
    v
}

#[test]
fn every_fuzz_stream_as_input_is_an_error_or_data() {
    let corpus = files("fuzz-ipc-stream");
    let errors = corpus
        .iter()
        .filter(|f| read(f, 512 << 20).is_err())
        .count();
    assert!(errors > 0 && corpus.len() >= 50);
}

#[test]
fn golden_files_and_streams_read_as_arrow_reads_them() {
    let goldens = files("integration-1.0.0-littleendian");
    assert!(goldens.len() > 20);
    for f in &goldens {
        let bytes = std::fs::read(f).expect("read");
        let want: Vec<RecordBatch> = if bytes.starts_with(b"ARROW1") {
            arrow::ipc::reader::FileReader::try_new(std::io::Cursor::new(bytes), None)
                .expect("golden file")
                .collect::<Result<_, _>>()
                .expect("golden batches")
        } else {
            arrow::ipc::reader::StreamReader::try_new(&bytes[..], None)
                .expect("golden stream")
                .collect::<Result<_, _>>()
                .expect("golden batches")
        };
        let got = read(f, 512 << 20).unwrap_or_else(|e| panic!("{}: {e:#}", f.display()));
        assert_eq!(got, want, "{}", f.display());
    }
}

fn int_batch(rows: usize) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
    let column: ArrayRef = Arc::new(Int64Array::from_iter_values(0..rows as i64));
    RecordBatch::try_new(schema, vec![column]).expect("batch")
}

fn arrow_file(batch: &RecordBatch, options: IpcWriteOptions) -> Vec<u8> {
    let mut w =
        FileWriter::try_new_with_options(Vec::new(), &batch.schema(), options).expect("writer");
    w.write(batch).expect("write");
    w.finish().expect("finish");
    w.into_inner().expect("bytes")
}

/// Where the first record batch of an IPC file lies: the file offset of its
/// header's buffer list and of its body.
fn first_batch(file: &[u8]) -> (usize, usize, Vec<(usize, usize)>) {
    let mut at = 8;
    // The magic is padded to the writer's alignment.
    while file[at..at + 4] == [0; 4] {
        at += 4;
    }
    loop {
        let len = i32::from_le_bytes(file[at + 4..at + 8].try_into().expect("4")) as usize;
        let header = &file[at + 8..at + 8 + len];
        let m = arrow::ipc::root_as_message(header).expect("message");
        let body = at + 8 + len;
        if let Some(b) = m.header_as_record_batch() {
            let list = b.buffers().expect("buffers");
            let list_at = list.bytes().as_ptr() as usize - file.as_ptr() as usize;
            let spans = list
                .iter()
                .map(|b| (b.offset() as usize, b.length() as usize))
                .collect();
            return (list_at, body, spans);
        }
        at = body + m.bodyLength() as usize;
    }
}

fn write_temp(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, bytes).expect("write");
    p
}

fn echo_through_cli(input: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["--quiet", cli::arg(input)];
    args.extend_from_slice(extra);
    cli::process(
        "echo",
        &args,
        &std::env::temp_dir().join("wasm-app-hostile-input-cache"),
    )
}

fn assert_one_error_line(o: &std::process::Output, needle: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "stderr: {err}");
    assert!(err.starts_with("error: ") && err.contains(needle), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}

#[test]
fn a_buffer_running_past_its_body_is_one_error_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut file = arrow_file(&int_batch(100), IpcWriteOptions::default());
    let (list_at, _, _) = first_batch(&file);
    // Buffer 1 (the values): length 2^40, far past the body.
    let at = list_at + 16 + 8;
    file[at..at + 8].copy_from_slice(&(1i64 << 40).to_le_bytes());
    let path = write_temp(&dir, "past-body.arrow", &file);
    let err = format!("{:#}", read(&path, 512 << 20).expect_err("refused"));
    assert!(err.contains("outside"), "{err}");
    assert_one_error_line(&echo_through_cli(&path, &[]), "outside");
}

#[test]
fn compressed_input_is_bounded_before_inflating() {
    let dir = tempfile::tempdir().expect("tempdir");
    // 64 MiB of values in a few hundred KiB of ZSTD.
    let zstd = IpcWriteOptions::default()
        .try_with_compression(Some(CompressionType::ZSTD))
        .expect("zstd");
    let bomb = arrow_file(&int_batch(8 << 20), zstd.clone());
    assert!(bomb.len() < 16 << 20);
    let path = write_temp(&dir, "bomb.arrow", &bomb);
    let err = format!("{:#}", read(&path, 16 << 20).expect_err("over the bound"));
    assert!(err.contains("input batch limit of 16 MiB"), "{err}");
    assert_one_error_line(
        &echo_through_cli(&path, &["--max-output", "16MiB"]),
        "input batch limit",
    );
    // Within the bound, compressed input reads back exactly.
    let small = int_batch(1000);
    let ok = write_temp(&dir, "ok.arrow", &arrow_file(&small, zstd));
    assert_eq!(read(&ok, 16 << 20).expect("reads"), vec![small.clone()]);
    // A length prefix claiming petabytes (LZ4 and ZSTD): an error, not an abort.
    for codec in [CompressionType::LZ4_FRAME, CompressionType::ZSTD] {
        let options = IpcWriteOptions::default()
            .try_with_compression(Some(codec))
            .expect("codec");
        let mut stream = {
            let mut w = StreamWriter::try_new_with_options(Vec::new(), &small.schema(), options)
                .expect("writer");
            w.write(&small).expect("write");
            w.into_inner().expect("bytes")
        };
        // A stream is a file without its preamble and footer: reuse the walk.
        let mut as_file = b"ARROW1\0\0".to_vec();
        as_file.extend_from_slice(&stream);
        let (_, body, spans) = first_batch(&as_file);
        let (offset, _) = spans
            .iter()
            .copied()
            .find(|(_, l)| *l > 0)
            .expect("a buffer");
        let at = body - 8 + offset;
        stream[at..at + 8].copy_from_slice(&(1i64 << 52).to_le_bytes());
        let path = write_temp(&dir, "petabytes.arrows", &stream);
        let err = format!("{:#}", read(&path, 512 << 20).expect_err("refused"));
        assert!(err.contains("input batch limit"), "{codec:?}: {err}");
    }
}

/// A Parquet file whose string column is `rows` references to one value of
/// `value_len` bytes: tiny on disk, `rows * value_len` once materialised.
fn parquet_dictionary_bomb(rows: usize, value_len: usize) -> Vec<u8> {
    use parquet::arrow::arrow_writer::ArrowWriterOptions;
    use parquet::arrow::ArrowWriter;
    use parquet::basic::{Compression, ZstdLevel};
    use parquet::file::properties::{EnabledStatistics, WriterProperties};
    let values = Arc::new(StringArray::from(vec!["a".repeat(value_len)]));
    let keys = Int32Array::from(vec![0; rows]);
    let column: ArrayRef =
        Arc::new(DictionaryArray::<Int32Type>::try_new(keys, values).expect("dictionary"));
    let schema = Arc::new(Schema::new(vec![Field::new(
        "s",
        column.data_type().clone(),
        false,
    )]));
    let batch = RecordBatch::try_new(schema.clone(), vec![column]).expect("batch");
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_statistics_enabled(EnabledStatistics::None)
        .set_dictionary_page_size_limit(value_len * 2)
        .build();
    let mut out = Vec::new();
    // Without the Arrow schema in the file, readers see plain strings (as
    // for files from other writers) and materialise them.
    let options = ArrowWriterOptions::new()
        .with_properties(props)
        .with_skip_arrow_metadata(true);
    let mut w = ArrowWriter::try_new_with_options(&mut out, schema, options).expect("writer");
    w.write(&batch).expect("write");
    w.close().expect("close");
    out
}

#[test]
fn a_parquet_dictionary_bomb_is_refused_before_materialising() {
    let dir = tempfile::tempdir().expect("tempdir");
    // 1 MiB referenced 1024 times: 1 GiB of strings from a few KiB.
    let bomb = parquet_dictionary_bomb(1024, 1 << 20);
    assert!(bomb.len() < 64 << 10, "{} bytes", bomb.len());
    let path = write_temp(&dir, "bomb.parquet", &bomb);
    let err = format!("{:#}", read(&path, 64 << 20).expect_err("refused"));
    assert!(err.contains("input batch limit of 64 MiB"), "{err}");
    assert_one_error_line(
        &echo_through_cli(&path, &["--max-output", "64MiB"]),
        "input batch limit",
    );
    // The same shape within the bound reads back as plain strings.
    let fine = write_temp(&dir, "fine.parquet", &parquet_dictionary_bomb(100, 1000));
    let batches = read(&fine, 64 << 20).expect("within the bound");
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    assert_eq!(rows, 100);
    // Read as a dictionary, handed on in the file's own type.
    let column = batches[0].column(0);
    assert_eq!(column.data_type(), &DataType::Utf8);
    let s = column.as_any().downcast_ref::<StringArray>().expect("utf8");
    assert!((0..100).all(|i| s.value(i) == "a".repeat(1000)));
}
