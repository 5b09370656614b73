//! Writes generated seeds for the fuzz targets: `seeds ARROW_TESTING OUT`
//! fills `OUT/<target>/` with LZ4/ZSTD-compressed IPC streams and files,
//! CSV and Parquet (several writer settings), and guest memory images that
//! wrap IPC streams and strings in the ABI's result pair. The data is the
//! study's example rows and the first rows of the golden integration files
//! of `ARROW_TESTING/integration-1.0.0-littleendian/`.
//!
//! Not a fuzz target: scripts/fuzz.sh builds it with the targets (one build)
//! and runs it before fuzzing. Files are small (a few rows each) so that
//! libFuzzer's default input size limit keeps them whole.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;
use arrow::array::RecordBatch;
use arrow::ipc::writer::{FileWriter, IpcWriteOptions, StreamWriter};
use arrow::ipc::CompressionType;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{WriterProperties, WriterVersion};
use wasm_abi::Pair;
use wasm_app::transport::{self, Table};

/// Rows kept of each table.
const ROWS: usize = 12;

fn main() -> anyhow::Result<()> {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [testing, out] = args.as_slice() else {
        anyhow::bail!("usage: seeds ARROW_TESTING_DIR OUT_DIR");
    };
    let mut tables = vec![("study".to_string(), transport::study_rows(ROWS)?)];
    let golden = testing.join("integration-1.0.0-littleendian");
    if let Ok(entries) = fs::read_dir(&golden) {
        let mut paths: Vec<_> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "stream"))
            .collect();
        paths.sort();
        for p in paths {
            let stem = p.file_stem().unwrap_or_default().to_string_lossy();
            // Some golden files use types arrow-rs rejects: skip those.
            if let Ok(t) = transport::read_ipc(&p) {
                tables.push((stem.into_owned(), head(t)));
            }
        }
    } else {
        eprintln!("seeds: no {}; only the study's rows", golden.display());
    }
    let mut n = 0;
    for (name, table) in &tables {
        n += write_table(out, name, table)?;
    }
    n += write_strings(out)?;
    eprintln!("seeds: {n} files in {}", out.display());
    Ok(())
}

/// The first [`ROWS`] rows, as at most two batches.
fn head(t: Table) -> Table {
    let mut left = ROWS;
    let batches: Vec<RecordBatch> = t
        .batches
        .iter()
        .take(2)
        .map(|b| {
            let n = b.num_rows().min(left);
            left -= n;
            b.slice(0, n)
        })
        .collect();
    Table {
        schema: t.schema,
        batches,
    }
}

fn put(out: &Path, target: &str, name: &str, bytes: &[u8]) -> anyhow::Result<usize> {
    let dir = out.join(target);
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    fs::write(dir.join(name), bytes).with_context(|| format!("cannot write {name}"))?;
    Ok(1)
}

/// `[ret][memory]` with the pair at 8 and the payload at 16, as
/// `guest_memory` reads it.
fn memory_image(payload: &[u8]) -> Vec<u8> {
    let mut v = 8u32.to_le_bytes().to_vec();
    v.extend_from_slice(&[0; 8]);
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    v.extend_from_slice(&Pair { ptr: 16, len }.to_bytes());
    v.extend_from_slice(payload);
    v
}

/// Every encoding of one table that some target reads; returns the count.
/// Encodings a type does not support (e.g. unions in CSV) are skipped.
fn write_table(out: &Path, name: &str, t: &Table) -> anyhow::Result<usize> {
    let mut n = 0;
    for (tag, compression) in [
        ("plain", None),
        ("lz4", Some(CompressionType::LZ4_FRAME)),
        ("zstd", Some(CompressionType::ZSTD)),
    ] {
        let opts = IpcWriteOptions::default().try_with_compression(compression)?;
        if let Ok(s) = ipc_stream(t, &opts) {
            // Plain streams come from the golden files themselves (fuzz.sh).
            if compression.is_some() {
                n += put(out, "guest_stream", &format!("{name}.{tag}.arrows"), &s)?;
                n += put(out, "read_ipc_stream", &format!("{name}.{tag}.arrows"), &s)?;
            }
            n += put(
                out,
                "guest_memory",
                &format!("{name}.{tag}.mem"),
                &memory_image(&s),
            )?;
        }
        if compression.is_some() {
            if let Ok(f) = ipc_file(t, &opts) {
                n += put(out, "read_ipc_file", &format!("{name}.{tag}.arrow"), &f)?;
            }
        }
    }
    if let Ok(c) = csv(t) {
        n += put(out, "read_csv", &format!("{name}.csv"), &c)?;
    }
    for (tag, props) in parquet_settings() {
        // parquet's writer panics on some types (unimplemented!, ARROW-8817).
        let written = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| parquet(t, props)));
        if let Ok(Ok(p)) = written {
            n += put(out, "read_parquet", &format!("{name}.{tag}.parquet"), &p)?;
        }
    }
    Ok(n)
}

fn ipc_stream(t: &Table, opts: &IpcWriteOptions) -> anyhow::Result<Vec<u8>> {
    let mut w = StreamWriter::try_new_with_options(Vec::new(), &t.schema, opts.clone())?;
    for b in &t.batches {
        w.write(b)?;
    }
    Ok(w.into_inner()?)
}

fn ipc_file(t: &Table, opts: &IpcWriteOptions) -> anyhow::Result<Vec<u8>> {
    let mut w = FileWriter::try_new_with_options(Vec::new(), &t.schema, opts.clone())?;
    for b in &t.batches {
        w.write(b)?;
    }
    Ok(w.into_inner()?)
}

fn csv(t: &Table) -> anyhow::Result<Vec<u8>> {
    let mut w = arrow::csv::WriterBuilder::new()
        .with_header(true)
        .build(Vec::new());
    for b in &t.batches {
        w.write(b)?;
    }
    Ok(w.into_inner())
}

/// Writer settings that reach different reader paths: codecs, page format
/// v1/v2, dictionary or plain pages, several row groups and pages.
fn parquet_settings() -> Vec<(&'static str, WriterProperties)> {
    let base = || {
        WriterProperties::builder()
            .set_max_row_group_row_count(Some(5))
            .set_data_page_row_count_limit(3)
    };
    vec![
        ("plain", base().set_dictionary_enabled(false).build()),
        (
            "snappy",
            base().set_compression(Compression::SNAPPY).build(),
        ),
        (
            "zstd-v2",
            base()
                .set_compression(Compression::ZSTD(ZstdLevel::default()))
                .set_writer_version(WriterVersion::PARQUET_2_0)
                .build(),
        ),
        (
            "lz4",
            base()
                .set_compression(Compression::LZ4_RAW)
                .set_dictionary_enabled(false)
                .set_writer_version(WriterVersion::PARQUET_2_0)
                .build(),
        ),
    ]
}

fn parquet(t: &Table, props: WriterProperties) -> anyhow::Result<Vec<u8>> {
    let mut w = ArrowWriter::try_new(Vec::new(), t.schema.clone(), Some(props))?;
    for b in &t.batches {
        w.write(b)?;
    }
    Ok(w.into_inner()?)
}

/// Greeter results: a Rust pair over UTF-8 and a C string, in memory images.
fn write_strings(out: &Path) -> anyhow::Result<usize> {
    let mut n = put(
        out,
        "guest_memory",
        "greeting.mem",
        &memory_image("Hello, Grüße 🦀!".as_bytes()),
    )?;
    let mut c = 8u32.to_le_bytes().to_vec();
    c.extend_from_slice(&[0; 8]);
    c.extend_from_slice(b"Hello, C!\0");
    n += put(out, "guest_memory", "greeting-c.mem", &c)?;
    Ok(n)
}
