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

use crate::error::{Error, Result};
use crate::format::Batches;
pub use crate::format::Format;
use crate::ipc_check::Refusal;
use crate::ipc_input::IpcReader;
use crate::ipc_read::Bounds;

/// Lines read to infer a CSV schema.
const CSV_INFER_LINES: usize = 1000;

/// Batches from one input, read lazily.
pub struct Source {
    /// Where the batches come from, for messages.
    pub name: String,
    pub schema: SchemaRef,
    batches: Batches,
}

impl Iterator for Source {
    type Item = Result<RecordBatch>;
    fn next(&mut self) -> Option<Self::Item> {
        self.batches.next().map(|r| r.map_err(Error::Other))
    }
}

fn is_stdio(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// Opens `path` (`-` for stdin). The format is `format`, else the extension,
/// else Arrow IPC told apart by its magic bytes (an IPC file and an IPC
/// stream are told apart by magic whatever the format says).
///
/// Untrusted input: a malformed file is an error, never a panic or abort,
/// and no batch may decode or expand to more than `max_batch_bytes` (the
/// CLI passes the policy's `max-output`): IPC headers, compressed buffers'
/// length prefixes and Parquet string dictionaries are checked before
/// anything is allocated. CSV batches hold what was read, no more.
pub fn open(
    path: &Path,
    format: Option<Format>,
    batch_size: usize,
    max_batch_bytes: u64,
) -> Result<Source> {
    let name = if is_stdio(path) {
        "<stdin>".to_string()
    } else {
        path.display().to_string()
    };
    let format = format.or_else(|| Format::from_path(path));
    let reader: Box<dyn BufRead + Send> = if is_stdio(path) {
        Box::new(BufReader::new(io::stdin()))
    } else {
        let f = File::open(path).with_context(|| format!("cannot open {name}"))?;
        Box::new(BufReader::with_capacity(1 << 20, f))
    };
    let file = (!is_stdio(path)).then_some(path);
    Ok(read(
        name,
        reader,
        format,
        batch_size,
        max_batch_bytes,
        file,
    )?)
}

/// As [`open`], from any reader; `name` is used in messages. A Parquet
/// input is read into memory first (its footer is at its end).
pub fn from_reader(
    name: &str,
    reader: impl io::Read + Send + 'static,
    format: Option<Format>,
    batch_size: usize,
    max_batch_bytes: u64,
) -> Result<Source> {
    let reader = Box::new(BufReader::with_capacity(1 << 20, reader));
    Ok(read(
        name.to_string(),
        reader,
        format,
        batch_size,
        max_batch_bytes,
        None,
    )?)
}

/// The batches of `reader`; `file` is its path when it can be reopened to
/// seek (Parquet), else it is read into memory.
fn read(
    name: String,
    mut reader: Box<dyn BufRead + Send>,
    format: Option<Format>,
    batch_size: usize,
    max_batch_bytes: u64,
    file: Option<&Path>,
) -> anyhow::Result<Source> {
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
        Format::Arrow | Format::Arrows => {
            let file = reader
                .fill_buf()
                .with_context(|| format!("cannot read {name}"))?
                .starts_with(b"ARROW1");
            let what = if file {
                "Arrow IPC file"
            } else {
                "Arrow IPC stream"
            };
            let refused = move |e: Refusal| match e {
                Refusal::Invalid(m) => anyhow::anyhow!(m),
                Refusal::TooLarge(n) => anyhow::anyhow!(
                    "{n} bytes decoded, over the input batch limit of {} (--max-output)",
                    crate::policy::format_size(max_batch_bytes)
                ),
            };
            let r = IpcReader::open(reader, file, Bounds::input(max_batch_bytes))
                .map_err(refused)
                .with_context(|| bad(what))?;
            let s = r.schema();
            (
                s,
                Box::new(
                    r.enumerate()
                        .map(move |(i, b)| b.map_err(|e| tag(i, refused(e)))),
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
            match file {
                None => {
                    let data = bytes::Bytes::from(seekable(reader, &name)?.into_inner());
                    crate::parquet_input::batches(data, batch_size, max_batch_bytes, &name)?
                }
                Some(path) => {
                    drop(reader);
                    let f = File::open(path).with_context(|| format!("cannot open {name}"))?;
                    crate::parquet_input::batches(f, batch_size, max_batch_bytes, &name)?
                }
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

pub use crate::safe_fs::create_output;
pub use crate::sink::{create, is_broken_pipe, PrettySink, Sink};

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
        let err = open(Path::new("/no/such.csv"), None, 10, 1 << 20)
            .err()
            .expect("error");
        assert!(format!("{err:#}").contains("/no/such.csv"));
    }
}
