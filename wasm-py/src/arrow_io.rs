//! Arrow data across the Python boundary, through the Arrow C Stream
//! Interface: no IPC, no copy.
//!
//! In: anything with `__arrow_c_stream__` (a pyarrow `Table`,
//! `RecordBatch` or `RecordBatchReader`, a Polars frame, a DuckDB relation);
//! its buffers are used in place. The producer is a library of the calling
//! process, trusted like the caller: its arrays are not validated again
//! (the guest, which is not trusted, only ever sees the IPC bytes the host
//! writes into its memory).
//!
//! One exception to "no copy": view types (`string_view`, `binary_view`,
//! list views), which Polars and DataFusion produce, are cast to their plain
//! forms first. The host refuses views in what a guest returns (a view's
//! cost is not bounded by its size), so a guest's `echo` of a view column
//! would fail; cast here, the column costs one copy and the call works.
//!
//! Out: a pyarrow `Table` or `RecordBatch` over the host's buffers (the
//! guest's result, decoded once in host memory), exported without a copy,
//! its extension metadata dropped (`guest_output.rs`).

use std::mem::ManuallyDrop;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use arrow::array::{RecordBatch, RecordBatchOptions};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, FieldRef, Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::ffi_stream::RecordBatchStreamReader;
use arrow::record_batch::RecordBatchReader;
use arrow_pyarrow::{FromPyArrow, IntoPyArrow};
use pyo3::prelude::*;
use wasm_app::Table;

use crate::errors::other;
use crate::exit::Inside;
use crate::guest_output::{plain_batch, plain_schema};

/// A stream of input batches, views already cast away.
///
/// Every call into the producer (a batch, the release at drop) is guarded:
/// not after the interpreter began to exit (`exit.rs`), and a panic of
/// arrow's import (a batch that does not match the stream's schema, which
/// pyarrow lets a generator yield) is an error, not a `PanicException`.
pub(crate) struct Input {
    reader: ManuallyDrop<RecordBatchStreamReader>,
    /// The schema the guest sees (`None`: the producer's, unchanged).
    plain: Option<SchemaRef>,
}

impl Input {
    /// Opens `data`'s C stream.
    pub(crate) fn open(data: &Bound<'_, PyAny>) -> PyResult<Self> {
        if !data.hasattr("__arrow_c_stream__")? {
            return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                "expected Arrow data (a pyarrow Table, RecordBatch or RecordBatchReader, or \
                 anything with __arrow_c_stream__), got {}",
                data.get_type().name()?
            )));
        }
        let reader = RecordBatchStreamReader::from_pyarrow_bound(data)?;
        let schema = reader.schema();
        let plain = without_views(&schema);
        Ok(Input {
            reader: ManuallyDrop::new(reader),
            plain: (plain != schema).then_some(plain),
        })
    }

    /// The schema of every batch this stream yields.
    pub(crate) fn schema(&self) -> SchemaRef {
        self.plain.clone().unwrap_or_else(|| self.reader.schema())
    }

    /// Reads the whole stream (call it without the GIL: the producer may
    /// be a scan, and takes the GIL itself if it needs it).
    pub(crate) fn into_table(self) -> Result<Table, ArrowError> {
        let schema = self.schema();
        let batches = Iterator::collect::<Result<Vec<_>, _>>(self)?;
        Ok(Table { schema, batches })
    }
}

impl Drop for Input {
    fn drop(&mut self) {
        // Releasing the stream calls the producer, which may need the GIL:
        // at exit, leak it instead.
        if let Some(_inside) = Inside::enter() {
            // SAFETY: dropped once, here; never used again.
            unsafe { ManuallyDrop::drop(&mut self.reader) };
        }
    }
}

impl Iterator for Input {
    type Item = Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        let Some(_inside) = Inside::enter() else {
            return Some(Err(ArrowError::ExternalError(
                "the Python interpreter is exiting".into(),
            )));
        };
        let reader = &mut *self.reader;
        let batch = match std::panic::catch_unwind(AssertUnwindSafe(|| reader.next())) {
            Ok(batch) => batch?,
            Err(panic) => Err(ArrowError::ExternalError(
                format!("the input stream is broken: {}", panic_text(&panic)).into(),
            )),
        };
        Some(match &self.plain {
            None => batch,
            Some(plain) => batch.and_then(|b| cast_batch(&b, plain)),
        })
    }
}

/// A panic's message, if it has one.
pub(crate) fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a panic without a message".into())
}

/// `schema` with every view type replaced by its plain form.
fn without_views(schema: &SchemaRef) -> SchemaRef {
    let fields: Vec<FieldRef> = schema.fields().iter().map(plain_field).collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

fn plain_field(f: &FieldRef) -> FieldRef {
    let t = plain_type(f.data_type());
    if &t == f.data_type() {
        f.clone()
    } else {
        Arc::new(Field::clone(f).with_data_type(t))
    }
}

fn plain_type(t: &DataType) -> DataType {
    match t {
        DataType::Utf8View => DataType::Utf8,
        DataType::BinaryView => DataType::Binary,
        DataType::ListView(f) | DataType::List(f) => DataType::List(plain_field(f)),
        DataType::LargeListView(f) | DataType::LargeList(f) => DataType::LargeList(plain_field(f)),
        DataType::FixedSizeList(f, n) => DataType::FixedSizeList(plain_field(f), *n),
        DataType::Struct(fs) => DataType::Struct(fs.iter().map(plain_field).collect()),
        DataType::Map(f, sorted) => DataType::Map(plain_field(f), *sorted),
        DataType::Dictionary(k, v) => DataType::Dictionary(k.clone(), Box::new(plain_type(v))),
        DataType::RunEndEncoded(ends, values) => {
            DataType::RunEndEncoded(ends.clone(), plain_field(values))
        }
        DataType::Union(fs, mode) => DataType::Union(
            fs.iter().map(|(id, f)| (id, plain_field(f))).collect(),
            *mode,
        ),
        other => other.clone(),
    }
}

/// `batch` with its columns cast to `schema`'s types (only the view
/// columns differ, and only they are copied).
fn cast_batch(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, ArrowError> {
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(col, field)| {
            if col.data_type() == field.data_type() {
                Ok(col.clone())
            } else {
                cast(col, field.data_type()).map_err(|e| {
                    ArrowError::CastError(format!(
                        "column '{}': cannot turn {} into {} for the guest: {e}",
                        field.name(),
                        col.data_type(),
                        field.data_type()
                    ))
                })
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    RecordBatch::try_new_with_options(schema.clone(), columns, &options)
}

/// `table` as a pyarrow `Table` (empty, with no columns, for `None`).
/// A guest's result goes through `guest_output` first.
pub(crate) fn table_to_py(py: Python<'_>, table: Option<Table>) -> PyResult<Bound<'_, PyAny>> {
    let Table { schema, batches } = table.unwrap_or_else(|| Table {
        schema: Arc::new(Schema::empty()),
        batches: Vec::new(),
    });
    let batches = batches
        .into_iter()
        .map(plain_batch)
        .collect::<Result<Vec<_>, _>>()
        .map_err(other)?;
    arrow_pyarrow::Table::try_new(batches, plain_schema(&schema))
        .map_err(other)?
        .into_pyarrow(py)
}

/// `batch` (a guest's) as a pyarrow `RecordBatch`.
pub(crate) fn batch_to_py(py: Python<'_>, batch: RecordBatch) -> PyResult<Bound<'_, PyAny>> {
    plain_batch(batch).map_err(other)?.into_pyarrow(py)
}

/// `schema` (a guest's) as a pyarrow `Schema`.
pub(crate) fn schema_to_py(py: Python<'_>, schema: SchemaRef) -> PyResult<Bound<'_, PyAny>> {
    Schema::clone(&plain_schema(&schema)).into_pyarrow(py)
}
