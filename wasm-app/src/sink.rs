//! Writing output batches: Arrow IPC file and stream, CSV, Parquet (to a
//! path or `-` for stdout), or text tables for a terminal.
//!
//! Invariants: a [`Sink`] writes each batch as it gets it and, on
//! [`Sink::finish`], leaves a complete, valid file even when the run stopped
//! early on an error. No write error panics: every sink writes through a
//! [`Latch`], which keeps the first I/O error (e.g. `EPIPE` when stdout's
//! reader is gone) and hands it back from `write`/`finish`, so the caller
//! can tell a closed pipe ([`is_broken_pipe`]) from a real failure.

mod unify;

use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::ipc::writer::{DictionaryHandling, FileWriter, IpcWriteOptions, StreamWriter};
use parquet::arrow::ArrowWriter;

use crate::error::Result;

use crate::contain::contain;
use crate::format::Format;
pub use unify::Unifier;

fn is_stdio(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// Whether `e` was caused by writing to a pipe whose reader is gone.
/// (Rust ignores SIGPIPE, so such writes fail with `EPIPE`.)
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// The first I/O error of a [`Latch`], shared with its sink.
type Slot = Arc<Mutex<Option<io::Error>>>;

/// A writer that never fails: it keeps the first error and from then on
/// discards everything. Arrow's CSV writer `unwrap`s a flush inside
/// `into_inner`, so it must never see an error; the sink reports it instead.
struct Latch {
    inner: Box<dyn Write + Send>,
    error: Slot,
}

impl Latch {
    fn wrap(inner: Box<dyn Write + Send>) -> (Box<dyn Write + Send>, Slot) {
        let error = Slot::default();
        let latch = Latch {
            inner,
            error: error.clone(),
        };
        (Box::new(latch), error)
    }

    fn keep(&self, r: io::Result<()>) {
        if let Err(e) = r {
            if let Ok(mut slot) = self.error.lock() {
                slot.get_or_insert(e);
            }
        }
    }

    fn failed(&self) -> bool {
        self.error.lock().map_or(true, |s| s.is_some())
    }
}

impl Write for Latch {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !self.failed() {
            let r = self.inner.write_all(buf);
            self.keep(r);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        if !self.failed() {
            let r = self.inner.flush();
            self.keep(r);
        }
        Ok(())
    }
}

/// `r`, unless the output failed first: then that I/O error, which is the
/// cause (the format library's error, if any, follows from it).
fn checked<T>(slot: &Slot, name: &str, r: anyhow::Result<T>) -> anyhow::Result<T> {
    // Kept (as a copy) so that `finish` after a failed `write` reports it too.
    let failed = slot
        .lock()
        .ok()
        .and_then(|s| s.as_ref().map(|e| io::Error::new(e.kind(), e.to_string())));
    match failed {
        Some(e) => Err(anyhow::Error::new(e).context(format!("cannot write {name}"))),
        None => r.with_context(|| format!("cannot write {name}")),
    }
}

/// Where output batches go.
pub trait Sink {
    /// Writes one batch.
    fn write(&mut self, batch: &RecordBatch) -> Result<()>;
    /// Completes the output (footer, end-of-stream marker, flush).
    fn finish(self: Box<Self>) -> Result<()>;
}

/// Creates the sink for `path` (`-` for stdout) in `format` (else by
/// extension, else an IPC stream).
pub fn create(path: &Path, format: Option<Format>, schema: &SchemaRef) -> Result<Box<dyn Sink>> {
    let name = if is_stdio(path) {
        "<stdout>".to_string()
    } else {
        path.display().to_string()
    };
    let format = format
        .or_else(|| Format::from_path(path))
        .unwrap_or(Format::Arrows);
    // Before the file is created: a schema it cannot hold leaves no file.
    let unifier = match format {
        Format::Arrow => {
            Some(Unifier::new(schema).with_context(|| format!("cannot write {name}"))?)
        }
        _ => None,
    };
    let out: Box<dyn Write + Send> = if is_stdio(path) {
        Box::new(BufWriter::new(io::stdout()))
    } else {
        let f =
            crate::safe_fs::create_output(path).with_context(|| format!("cannot create {name}"))?;
        Box::new(BufWriter::with_capacity(1 << 20, f))
    };
    let (out, error) = Latch::wrap(out);
    let ctx = || format!("cannot write {name}");
    let inner: Box<dyn FormatWriter> = match format {
        Format::Arrow => {
            // A stream may replace a dictionary between batches; a file may
            // not, so dictionaries are unified and sent as deltas.
            let options =
                IpcWriteOptions::default().with_dictionary_handling(DictionaryHandling::Delta);
            Box::new(IpcFile {
                unifier,
                writer: FileWriter::try_new_with_options(out, schema, options).with_context(ctx)?,
            })
        }
        Format::Arrows => Box::new(StreamWriter::try_new(out, schema).with_context(ctx)?),
        Format::Csv => Box::new(
            arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(out),
        ),
        // The parquet crate panics (`unimplemented!`) on some types a guest
        // may return, such as unions: contained, it is an error.
        Format::Parquet => Box::new(ParquetOut(
            contain("creating the Parquet writer", || {
                Ok(ArrowWriter::try_new(out, schema.clone(), None)?)
            })
            .with_context(ctx)?,
        )),
    };
    Ok(Box::new(FileSink { inner, error, name }))
}

/// One format's writer over a [`Latch`].
trait FormatWriter {
    fn write(&mut self, b: &RecordBatch) -> anyhow::Result<()>;
    /// Writes the end of the format and flushes.
    fn finish(self: Box<Self>) -> anyhow::Result<()>;
}

/// An IPC file writer, fed batches re-keyed to one dictionary per field.
struct IpcFile {
    /// Made before the file is created (see `create`); `Some` for IPC files.
    unifier: Option<Unifier>,
    writer: FileWriter<Box<dyn Write + Send>>,
}

impl FormatWriter for IpcFile {
    fn write(&mut self, b: &RecordBatch) -> anyhow::Result<()> {
        match &mut self.unifier {
            Some(u) => Ok(self.writer.write(&u.unify(b)?)?),
            None => Ok(self.writer.write(b)?),
        }
    }
    fn finish(mut self: Box<Self>) -> anyhow::Result<()> {
        self.writer.finish()?;
        Ok(self.writer.get_mut().flush()?)
    }
}

impl FormatWriter for StreamWriter<Box<dyn Write + Send>> {
    fn write(&mut self, b: &RecordBatch) -> anyhow::Result<()> {
        Ok(StreamWriter::write(self, b)?)
    }
    fn finish(mut self: Box<Self>) -> anyhow::Result<()> {
        StreamWriter::finish(&mut self)?;
        Ok(self.get_mut().flush()?)
    }
}

impl FormatWriter for arrow::csv::Writer<Box<dyn Write + Send>> {
    fn write(&mut self, b: &RecordBatch) -> anyhow::Result<()> {
        Ok(arrow::csv::Writer::write(self, b)?)
    }
    fn finish(self: Box<Self>) -> anyhow::Result<()> {
        // Cannot panic: the Latch below never fails a flush.
        Ok(self.into_inner().flush()?)
    }
}

/// The Parquet writer, each call contained (see `create`).
struct ParquetOut(ArrowWriter<Box<dyn Write + Send>>);

impl FormatWriter for ParquetOut {
    fn write(&mut self, b: &RecordBatch) -> anyhow::Result<()> {
        contain("writing Parquet", || Ok(self.0.write(b)?))
    }
    fn finish(self: Box<Self>) -> anyhow::Result<()> {
        contain("finishing the Parquet file", || {
            Ok(self.0.into_inner()?.flush()?)
        })
    }
}

/// A file or stdout in one format; the first I/O error wins over the
/// format's own error.
struct FileSink {
    inner: Box<dyn FormatWriter>,
    error: Slot,
    name: String,
}

impl Sink for FileSink {
    fn write(&mut self, b: &RecordBatch) -> Result<()> {
        let r = self.inner.write(b);
        Ok(checked(&self.error, &self.name, r)?)
    }
    fn finish(self: Box<Self>) -> Result<()> {
        let FileSink { inner, error, name } = *self;
        let r = inner.finish();
        Ok(checked(&error, &name, r)?)
    }
}

/// Prints batches as text tables as they come (for a terminal).
pub struct PrettySink;

impl Sink for PrettySink {
    fn write(&mut self, b: &RecordBatch) -> Result<()> {
        if b.num_rows() > 0 {
            // Not println!: it panics when stdout is a closed pipe. Bounded
            // and escaped: the values are a guest's.
            let mut out = io::stdout().lock();
            crate::text_table::write(b, &mut out).context("cannot write <stdout>")?;
        }
        Ok(())
    }
    fn finish(self: Box<Self>) -> Result<()> {
        Ok(io::stdout().flush().context("cannot write <stdout>")?)
    }
}
