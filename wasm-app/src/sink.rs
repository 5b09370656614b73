//! Writing output batches: Arrow IPC file and stream, CSV, Parquet (to a
//! path or `-` for stdout), or text tables for a terminal.
//!
//! Invariant: a [`Sink`] writes each batch as it gets it and, on
//! [`Sink::finish`], leaves a complete, valid file even when the run stopped
//! early on an error.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use anyhow::Context;
use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::ipc::writer::{FileWriter, StreamWriter};
use parquet::arrow::ArrowWriter;

use crate::formats::Format;

fn is_stdio(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// Where output batches go.
pub trait Sink {
    /// Writes one batch.
    fn write(&mut self, batch: &RecordBatch) -> anyhow::Result<()>;
    /// Completes the output (footer, end-of-stream marker, flush).
    fn finish(self: Box<Self>) -> anyhow::Result<()>;
}

/// Creates the sink for `path` (`-` for stdout) in `format` (else by
/// extension, else an IPC stream).
pub fn create(
    path: &Path,
    format: Option<Format>,
    schema: &SchemaRef,
) -> anyhow::Result<Box<dyn Sink>> {
    let name = if is_stdio(path) {
        "<stdout>".to_string()
    } else {
        path.display().to_string()
    };
    let out: Box<dyn Write + Send> = if is_stdio(path) {
        Box::new(BufWriter::new(io::stdout()))
    } else {
        let f = File::create(path).with_context(|| format!("cannot create {name}"))?;
        Box::new(BufWriter::with_capacity(1 << 20, f))
    };
    let format = format
        .or_else(|| Format::from_path(path))
        .unwrap_or(Format::Arrows);
    let ctx = move || format!("cannot write {name}");
    Ok(match format {
        Format::Arrow => Box::new(IpcFileSink(
            FileWriter::try_new(out, schema).with_context(ctx)?,
        )),
        Format::Arrows => Box::new(IpcStreamSink(
            StreamWriter::try_new(out, schema).with_context(ctx)?,
        )),
        Format::Csv => Box::new(CsvSink(
            arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(out),
        )),
        Format::Parquet => Box::new(ParquetSink(
            ArrowWriter::try_new(out, schema.clone(), None).with_context(ctx)?,
        )),
    })
}

struct IpcFileSink(FileWriter<Box<dyn Write + Send>>);
struct IpcStreamSink(StreamWriter<Box<dyn Write + Send>>);
struct CsvSink(arrow::csv::Writer<Box<dyn Write + Send>>);
struct ParquetSink(ArrowWriter<Box<dyn Write + Send>>);

impl Sink for IpcFileSink {
    fn write(&mut self, b: &RecordBatch) -> anyhow::Result<()> {
        Ok(self.0.write(b)?)
    }
    fn finish(mut self: Box<Self>) -> anyhow::Result<()> {
        self.0.finish()?;
        self.0.get_mut().flush()?;
        Ok(())
    }
}

impl Sink for IpcStreamSink {
    fn write(&mut self, b: &RecordBatch) -> anyhow::Result<()> {
        self.0.write(b)?;
        Ok(())
    }
    fn finish(mut self: Box<Self>) -> anyhow::Result<()> {
        self.0.finish()?;
        self.0.get_mut().flush()?;
        Ok(())
    }
}

impl Sink for CsvSink {
    fn write(&mut self, b: &RecordBatch) -> anyhow::Result<()> {
        Ok(self.0.write(b)?)
    }
    fn finish(self: Box<Self>) -> anyhow::Result<()> {
        self.0.into_inner().flush()?;
        Ok(())
    }
}

impl Sink for ParquetSink {
    fn write(&mut self, b: &RecordBatch) -> anyhow::Result<()> {
        Ok(self.0.write(b)?)
    }
    fn finish(self: Box<Self>) -> anyhow::Result<()> {
        let mut w = self.0.into_inner()?;
        w.flush()?;
        Ok(())
    }
}

/// Prints batches as text tables as they come (for a terminal).
pub struct PrettySink;

impl Sink for PrettySink {
    fn write(&mut self, b: &RecordBatch) -> anyhow::Result<()> {
        if b.num_rows() > 0 {
            println!(
                "{}",
                arrow::util::pretty::pretty_format_batches(std::slice::from_ref(b))?
            );
        }
        Ok(())
    }
    fn finish(self: Box<Self>) -> anyhow::Result<()> {
        Ok(())
    }
}

