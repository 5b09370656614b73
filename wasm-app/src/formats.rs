//! Reading and writing tabular files batch by batch: Arrow IPC (file and
//! stream, LZ4/ZSTD-compressed input included), CSV and Parquet, from paths
//! or `-` (stdin/stdout).
//!
//! Invariants: a [`Source`] holds at most one decoded batch (plus the
//! reader's own buffer) at a time; a [`Sink`] writes each batch as it gets it
//! and, on [`Sink::finish`], leaves a complete, valid file even when the run
//! stopped early on an error.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Cursor, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::ipc::reader::{FileReader, StreamReader};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// Lines read to infer a CSV schema.
const CSV_INFER_LINES: usize = 1000;

/// A tabular file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Arrow IPC file (`.arrow`, `.feather`).
    Arrow,
    /// Arrow IPC stream (`.arrows`, `.stream`).
    Arrows,
    /// Comma-separated values with a header line (`.csv`).
    Csv,
    /// Apache Parquet (`.parquet`).
    Parquet,
}

impl Format {
    /// The format an extension names, if any.
    pub fn from_path(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        Some(match ext.as_str() {
            "arrow" | "feather" | "arrow_file" => Format::Arrow,
            "arrows" | "stream" => Format::Arrows,
            "csv" => Format::Csv,
            "parquet" | "pq" => Format::Parquet,
            _ => return None,
        })
    }
}

type Batches = Box<dyn Iterator<Item = anyhow::Result<RecordBatch>> + Send>;

/// Batches from one input, read lazily.
pub struct Source {
    /// Where the batches come from, for messages.
    pub name: String,
    pub schema: SchemaRef,
    batches: Batches,
}

impl Iterator for Source {
    type Item = anyhow::Result<RecordBatch>;
    fn next(&mut self) -> Option<Self::Item> {
        self.batches.next()
    }
}

fn is_stdio(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// Opens `path` (`-` for stdin). The format is `format`, else the extension,
/// else Arrow IPC told apart by its magic bytes.
pub fn open(path: &Path, format: Option<Format>, batch_size: usize) -> anyhow::Result<Source> {
    let name = if is_stdio(path) {
        "<stdin>".to_string()
    } else {
        path.display().to_string()
    };
    let format = format.or_else(|| Format::from_path(path));
    let mut reader: Box<dyn BufRead + Send> = if is_stdio(path) {
        Box::new(BufReader::new(io::stdin()))
    } else {
        let f = File::open(path).with_context(|| format!("cannot open {name}"))?;
        Box::new(BufReader::with_capacity(1 << 20, f))
    };
    let bad = |what: &str| format!("{name} is not a readable {what}");
    let format = match format {
        Some(f) => f,
        None => {
            let head = reader
                .fill_buf()
                .with_context(|| format!("cannot read {name}"))?;
            if head.starts_with(b"ARROW1") {
                Format::Arrow
            } else if head.starts_with(b"PAR1") {
                Format::Parquet
            } else {
                Format::Arrows
            }
        }
    };
    let label = name.clone();
    let tag = move |i: usize, e: anyhow::Error| e.context(format!("{label}: batch {i}"));
    let (schema, batches): (SchemaRef, Batches) = match format {
        Format::Arrow => {
            // The footer is at the end: the file reader needs to seek.
            let r = FileReader::try_new_buffered(seekable(reader, &name)?, None)
                .with_context(|| bad("Arrow IPC file"))?;
            let s = r.schema();
            (
                s,
                Box::new(
                    r.enumerate()
                        .map(move |(i, b)| b.map_err(|e| tag(i, e.into()))),
                ),
            )
        }
        Format::Arrows => {
            let r = StreamReader::try_new(reader, None).with_context(|| bad("Arrow IPC stream"))?;
            let s = r.schema();
            (
                s,
                Box::new(
                    r.enumerate()
                        .map(move |(i, b)| b.map_err(|e| tag(i, e.into()))),
                ),
            )
        }
        Format::Csv => {
            let mut head = Vec::new();
            for _ in 0..CSV_INFER_LINES {
                if reader.read_until(b'\n', &mut head)? == 0 {
                    break;
                }
            }
            let fmt = arrow::csv::reader::Format::default().with_header(true);
            let (schema, _) = fmt
                .infer_schema(Cursor::new(&head), Some(CSV_INFER_LINES))
                .with_context(|| bad("CSV file"))?;
            let schema = Arc::new(schema);
            // Re-read the inferred lines, then the rest, without seeking.
            let all = Cursor::new(head).chain(reader);
            let r = arrow::csv::ReaderBuilder::new(schema.clone())
                .with_format(fmt)
                .with_batch_size(batch_size)
                .build(all)
                .with_context(|| bad("CSV file"))?;
            (
                schema,
                Box::new(
                    r.enumerate()
                        .map(move |(i, b)| b.map_err(|e| tag(i, e.into()))),
                ),
            )
        }
        Format::Parquet => {
            // Parquet's footer is at the end: read a file in place, stdin
            // into memory.
            if is_stdio(path) {
                let data = bytes::Bytes::from(seekable(reader, &name)?.into_inner());
                parquet_batches(data, batch_size, &name, tag)?
            } else {
                drop(reader);
                let f = File::open(path).with_context(|| format!("cannot open {name}"))?;
                parquet_batches(f, batch_size, &name, tag)?
            }
        }
    };
    Ok(Source {
        name,
        schema,
        batches,
    })
}

/// A seekable reader: the file itself, or stdin buffered in memory.
fn seekable(reader: Box<dyn BufRead + Send>, name: &str) -> anyhow::Result<Cursor<Vec<u8>>> {
    let mut buf = Vec::new();
    let mut reader = reader;
    reader
        .read_to_end(&mut buf)
        .with_context(|| format!("cannot read {name}"))?;
    Ok(Cursor::new(buf))
}

fn parquet_batches<R: parquet::file::reader::ChunkReader + 'static>(
    input: R,
    batch_size: usize,
    name: &str,
    tag: impl Fn(usize, anyhow::Error) -> anyhow::Error + Send + 'static,
) -> anyhow::Result<(SchemaRef, Batches)> {
    let bad = || format!("{name} is not a readable Parquet file");
    let b = ParquetRecordBatchReaderBuilder::try_new(input)
        .with_context(bad)?
        .with_batch_size(batch_size);
    let s = b.schema().clone();
    let r = b.build().with_context(bad)?;
    Ok((
        s,
        Box::new(
            r.enumerate()
                .map(move |(i, b)| b.map_err(|e| tag(i, e.into()))),
        ),
    ))
}

pub use crate::sink::{create, PrettySink, Sink};

/// Paths as given on the command line, for messages.
pub fn describe(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_follow_extensions() {
        assert_eq!(Format::from_path(Path::new("a.arrow")), Some(Format::Arrow));
        assert_eq!(
            Format::from_path(Path::new("a.ARROWS")),
            Some(Format::Arrows)
        );
        assert_eq!(Format::from_path(Path::new("a.csv")), Some(Format::Csv));
        assert_eq!(
            Format::from_path(Path::new("a.parquet")),
            Some(Format::Parquet)
        );
        assert_eq!(Format::from_path(Path::new("a.bin")), None);
    }

    #[test]
    fn unknown_or_bad_input_names_the_file() {
        let err = open(Path::new("/no/such.csv"), None, 10)
            .err()
            .expect("error");
        assert!(format!("{err:#}").contains("/no/such.csv"));
    }
}
