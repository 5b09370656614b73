//! Reading Parquet input with a bound on what one batch expands to.
//!
//! A Parquet string column is usually dictionary-encoded: a page of a few
//! bytes (run-length encoded indices) can reference one 1 MiB value
//! millions of times, and arrow's reader, materialising strings, would
//! allocate terabytes. So top-level string and binary columns are read *as
//! dictionaries* (a schema hint: keys plus the file's own dictionary, no
//! expansion), the size each batch would have once materialised is computed
//! from keys and value lengths, and only a batch within the bound is cast
//! back to the file's type. Invariant: a batch handed on is at most
//! `max_batch_bytes` of buffers, counted as materialised.
//!
//! Left unbounded (documented in the README): strings nested in lists or
//! structs are materialised by the reader as usual, and a page's declared
//! uncompressed size (an `i32`, so at most 2 GiB) is allocated by the
//! parquet crate before decompression.

use std::sync::Arc;

use anyhow::{bail, Context};
use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use parquet::file::reader::ChunkReader;

use crate::contain::contain;
use crate::format::Batches;

/// Schema and batches of a Parquet input, each batch checked against
/// `max_batch_bytes` before its strings are materialised.
pub(crate) fn batches<R: ChunkReader + 'static>(
    input: R,
    batch_size: usize,
    max_batch_bytes: u64,
    name: &str,
) -> anyhow::Result<(SchemaRef, Batches)> {
    let bad = || format!("{name} is not a readable Parquet file");
    let meta = contain("reading the Parquet footer", || {
        Ok(ArrowReaderMetadata::load(
            &input,
            ArrowReaderOptions::new(),
        )?)
    })
    .with_context(bad)?;
    check_chunks(meta.metadata(), input.len()).with_context(bad)?;
    let schema = meta.schema().clone();
    let hinted = Arc::new(Schema::new_with_metadata(
        schema
            .fields()
            .iter()
            .map(|f| match f.data_type() {
                t @ (DataType::Utf8
                | DataType::LargeUtf8
                | DataType::Binary
                | DataType::LargeBinary) => Arc::new(f.as_ref().clone().with_data_type(
                    DataType::Dictionary(Box::new(DataType::Int32), Box::new(t.clone())),
                )),
                _ => Arc::clone(f),
            })
            .collect::<Vec<_>>(),
        schema.metadata().clone(),
    ));
    let meta = ArrowReaderMetadata::try_new(
        meta.metadata().clone(),
        ArrowReaderOptions::new().with_schema(hinted),
    )
    .with_context(bad)?;
    let mut reader = contain("opening the Parquet reader", || {
        Ok(
            ParquetRecordBatchReaderBuilder::new_with_metadata(input, meta)
                .with_batch_size(batch_size)
                .build()?,
        )
    })
    .with_context(bad)?;
    let target = schema.clone();
    let label = name.to_string();
    // The parquet crate panics on some malformed pages: each batch is read
    // under `contain`.
    // After a panic the reader's state is unknown: nothing more is read.
    let (mut i, mut failed) = (0usize, false);
    let batches = std::iter::from_fn(move || {
        if failed {
            return None;
        }
        let b = match contain("reading a Parquet page", || Ok(reader.next())) {
            Ok(None) => return None,
            Ok(Some(b)) => b.map_err(anyhow::Error::from),
            Err(e) => {
                failed = true;
                Err(e)
            }
        };
        i += 1;
        Some((i - 1, b))
    })
    .map(move |(i, b)| {
        let b = b?;
        materialise(&b, &target, max_batch_bytes).with_context(|| format!("{label}: batch {i}"))
    });
    Ok((schema, Box::new(batches)))
}

/// Checks every column chunk's byte range against the file before the
/// reader uses it: the parquet crate panics on a negative offset or length
/// (`ColumnChunkMetaData::byte_range`), and a range past the end of the file
/// would only fail later, after allocating.
fn check_chunks(
    meta: &parquet::file::metadata::ParquetMetaData,
    file_len: u64,
) -> anyhow::Result<()> {
    for (g, group) in meta.row_groups().iter().enumerate() {
        for (c, col) in group.columns().iter().enumerate() {
            let start = col
                .dictionary_page_offset()
                .unwrap_or_else(|| col.data_page_offset());
            let len = col.compressed_size();
            let end = u64::try_from(start)
                .ok()
                .zip(u64::try_from(len).ok())
                .and_then(|(s, l)| s.checked_add(l));
            if end.is_none_or(|e| e > file_len) {
                anyhow::bail!(
                    "row group {g}, column {c}: chunk at offset {start}, {len} bytes, \
                     is not inside the file of {file_len} bytes"
                );
            }
        }
    }
    Ok(())
}

/// `batch` (read with dictionary hints) in the file's own types, if its
/// materialised size is within `max` bytes.
fn materialise(batch: &RecordBatch, target: &SchemaRef, max: u64) -> anyhow::Result<RecordBatch> {
    let size = batch
        .columns()
        .iter()
        .fold(0u64, |n, c| n.saturating_add(materialised_size(c)));
    if size > max {
        bail!(
            "a batch of {} rows would expand to {size} bytes, over the input batch limit of {} \
             (--max-output; or lower --batch-size)",
            batch.num_rows(),
            crate::policy::format_size(max)
        );
    }
    let columns = batch
        .columns()
        .iter()
        .zip(target.fields())
        .map(|(c, f)| cast_to(c, f))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(RecordBatch::try_new(target.clone(), columns)?)
}

fn cast_to(column: &ArrayRef, field: &Field) -> anyhow::Result<ArrayRef> {
    if column.data_type() == field.data_type() {
        return Ok(Arc::clone(column));
    }
    Ok(arrow::compute::cast(column, field.data_type())?)
}

/// Bytes of `array`'s buffers once a dictionary of strings or binaries is
/// materialised: offsets plus every referenced value once per reference.
/// Other arrays count their buffers as they are.
pub(crate) fn materialised_size(array: &ArrayRef) -> u64 {
    let Some(dict) = array.as_any_dictionary_opt() else {
        return array.get_buffer_memory_size() as u64;
    };
    let values = dict.values();
    let (offset_width, value_len): (u64, Box<dyn Fn(usize) -> u64 + '_>) = match values.data_type()
    {
        DataType::Utf8 => {
            let v = values.as_string::<i32>();
            (4, Box::new(move |k| v.value_length(k) as u64))
        }
        DataType::LargeUtf8 => {
            let v = values.as_string::<i64>();
            (8, Box::new(move |k| v.value_length(k) as u64))
        }
        DataType::Binary => {
            let v = values.as_binary::<i32>();
            (4, Box::new(move |k| v.value_length(k) as u64))
        }
        DataType::LargeBinary => {
            let v = values.as_binary::<i64>();
            (8, Box::new(move |k| v.value_length(k) as u64))
        }
        _ => return array.get_buffer_memory_size() as u64,
    };
    let rows = array.len() as u64;
    let mut size = offset_width.saturating_mul(rows + 1) + rows.div_ceil(8);
    if values.is_empty() {
        return size;
    }
    let keys = dict.keys();
    for (i, k) in dict.normalized_keys().into_iter().enumerate() {
        if keys.is_valid(i) {
            size = size.saturating_add(value_len(k));
        }
    }
    size
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{DictionaryArray, Int32Array, StringArray};
    use arrow::datatypes::Int32Type;

    #[test]
    fn dictionaries_count_every_reference() {
        let values = Arc::new(StringArray::from(vec!["abcd", "xy"]));
        let keys = Int32Array::from(vec![Some(0), Some(0), None, Some(1)]);
        let dict: ArrayRef = Arc::new(DictionaryArray::<Int32Type>::try_new(keys, values).unwrap());
        // 5 offsets of 4 bytes, a 1-byte bitmap, 4 + 4 + 2 value bytes.
        assert_eq!(materialised_size(&dict), 20 + 1 + 10);
        let plain = arrow::compute::cast(&dict, &DataType::Utf8).unwrap();
        assert!(materialised_size(&plain) >= 10);
    }
}
