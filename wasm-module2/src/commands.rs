//! The stateless commands: `test`, `echo`, `replace`, `filter`, `tokenize`.
//!
//! Each validates its configuration first (so a bad config is reported even
//! for a call without data), then its input schema, then streams: one output
//! batch per input batch (possibly empty), written as soon as it is built.
//! Without data (`None`) a command returns an empty payload: nothing to add.
//! The data stream is opened only after the configuration was checked.

use std::sync::Arc;

use arrow::array::{make_array, ArrayRef, MutableArrayData, UInt32Builder, UInt64Builder};
use arrow::buffer::Buffer;
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use arrow::error::ArrowError;
use arrow::record_batch::{RecordBatch, RecordBatchOptions};

use crate::columns::{self, Utf8Out};
use crate::ipc::{Input, Output};
use crate::meta::Config;

/// Turns an arrow error while building an output batch into a message.
fn batch_error(e: arrow::error::ArrowError) -> String {
    format!("output batch: {e}")
}

/// The schema `test` requires: names and types, nullability not checked.
fn test_schema() -> [(&'static str, DataType); 5] {
    [
        ("id", DataType::UInt64),
        ("content", DataType::Utf8),
        ("title", DataType::Utf8),
        (
            "date",
            DataType::Timestamp(TimeUnit::Second, Some("+00:00".into())),
        ),
        ("score", DataType::Float64),
    ]
}

/// Checks `schema` against [`test_schema`] and names the first mismatch.
fn check_test_schema(schema: &Schema) -> Result<(), String> {
    let expected = test_schema();
    let describe = || {
        expected
            .iter()
            .map(|(n, t)| format!("{n} {t}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if schema.fields().len() != expected.len() {
        return Err(format!(
            "test: data has {} columns, expected {} ({})",
            schema.fields().len(),
            expected.len(),
            describe()
        ));
    }
    for (i, (field, (name, data_type))) in schema.fields().iter().zip(&expected).enumerate() {
        if field.name() != name || field.data_type() != data_type {
            return Err(format!(
                "test: data column {i} is '{}' {}, expected '{name}' {data_type} (schema: {})",
                field.name(),
                field.data_type(),
                describe()
            ));
        }
    }
    Ok(())
}

/// `test`: `id, content` with "2" appended to each non-null content.
pub fn test(config: &Config, data: Option<&Buffer>) -> Result<Vec<u8>, String> {
    // Required by the study's protocol; the guest does not use the value.
    config.require("filename")?;
    let Some(mut input) = Input::data(data)? else {
        return Ok(Vec::new());
    };
    let schema = input.schema();
    check_test_schema(&schema)?;
    // Keep the input's id/content fields (nullability, metadata).
    let out_schema = Arc::new(Schema::new(vec![
        schema.field(0).clone(),
        schema.field(1).clone(),
    ]));
    let mut out = Output::new(&out_schema)?;
    while let Some(batch) = input.next_batch()? {
        let content = columns::strings(batch.column(1), "content")?;
        let mut appended = Utf8Out::new("content");
        let mut value = String::new();
        for i in 0..batch.num_rows() {
            match content.get(i) {
                Some(text) => {
                    value.clear();
                    value.push_str(text);
                    value.push('2');
                    appended.append(&value)?;
                }
                None => appended.append_null(),
            }
        }
        let columns = vec![Arc::clone(batch.column(0)), appended.finish()];
        let batch = RecordBatch::try_new(Arc::clone(&out_schema), columns).map_err(batch_error)?;
        out.write(&batch)?;
    }
    out.finish()
}

/// `echo`: the input stream re-encoded, schema and batches unchanged.
pub fn echo(data: Option<&Buffer>) -> Result<Vec<u8>, String> {
    let Some(mut input) = Input::data(data)? else {
        return Ok(Vec::new());
    };
    let mut out = Output::new(&input.schema())?;
    while let Some(batch) = input.next_batch()? {
        out.write(&batch)?;
    }
    out.finish()
}

/// `replace`: the delta `row u64, value utf8` of rows whose `column` value
/// changes under `value.replace(from, to)`; `row` counts across batches.
pub fn replace(config: &Config, data: Option<&Buffer>) -> Result<Vec<u8>, String> {
    let column = config.require("column")?;
    let from = config.require("from")?;
    let to = config.require("to")?;
    if from.is_empty() {
        return Err("config key 'from' must not be empty".to_string());
    }
    let Some(mut input) = Input::data(data)? else {
        return Ok(Vec::new());
    };
    let index = columns::find_string(&input.schema(), "column", column)?;
    let out_schema = Arc::new(Schema::new(vec![
        Field::new("row", DataType::UInt64, false),
        Field::new("value", DataType::Utf8, false),
    ]));
    let mut out = Output::new(&out_schema)?;
    // Index of the first row of the current batch in the whole stream.
    let mut first_row: u64 = 0;
    while let Some(batch) = input.next_batch()? {
        let values = columns::strings(batch.column(index), column)?;
        let mut rows = UInt64Builder::new();
        let mut new_values = Utf8Out::new("value");
        for i in 0..batch.num_rows() {
            let Some(value) = values.get(i) else { continue };
            // `contains` first: most rows do not match, and `replace` allocates.
            if !value.contains(from) {
                continue;
            }
            let replaced = value.replace(from, to);
            if replaced != value {
                rows.append_value(first_row.saturating_add(i as u64));
                new_values.append(&replaced)?;
            }
        }
        let columns: Vec<ArrayRef> = vec![Arc::new(rows.finish()), new_values.finish()];
        let delta = RecordBatch::try_new(Arc::clone(&out_schema), columns).map_err(batch_error)?;
        out.write(&delta)?;
        first_row = first_row.saturating_add(batch.num_rows() as u64);
    }
    out.finish()
}

/// `filter`: the input rows whose `column` value contains `term`.
pub fn filter(config: &Config, data: Option<&Buffer>) -> Result<Vec<u8>, String> {
    let column = config.require("column")?;
    let term = config.require("term")?;
    let Some(mut input) = Input::data(data)? else {
        return Ok(Vec::new());
    };
    let schema = input.schema();
    let index = columns::find_string(&schema, "column", column)?;
    let mut out = Output::new(&schema)?;
    while let Some(batch) = input.next_batch()? {
        let values = columns::strings(batch.column(index), column)?;
        let keep = (0..batch.num_rows()).map(|i| values.get(i).is_some_and(|v| v.contains(term)));
        let kept = keep_rows(&batch, keep).map_err(batch_error)?;
        out.write(&kept)?;
    }
    out.finish()
}

/// The rows of `batch` for which `keep` yields true, in order.
///
/// Copies runs of kept rows with arrow-data's `MutableArrayData`, which works
/// for every type (dictionaries keep their values, nested types their
/// children) and is shared with the IPC reader, where arrow's filter kernel
/// would link all of arrow-select (see `ipc::Input`). Same result as
/// `arrow::compute::filter_record_batch` (tested).
fn keep_rows(
    batch: &RecordBatch,
    keep: impl Iterator<Item = bool>,
) -> Result<RecordBatch, ArrowError> {
    // Half-open ranges of consecutive kept rows.
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for (i, kept) in keep.enumerate() {
        match runs.last_mut() {
            Some((_, end)) if kept && *end == i => *end = i + 1,
            _ if kept => runs.push((i, i + 1)),
            _ => {}
        }
    }
    let rows: usize = runs.iter().map(|(start, end)| end - start).sum();
    let columns = batch
        .columns()
        .iter()
        .map(|column| {
            let data = column.to_data();
            let mut out = MutableArrayData::try_new(vec![&data], false, rows)?;
            for &(start, end) in &runs {
                out.try_extend(0, start, end)?;
            }
            Ok(make_array(out.freeze()))
        })
        .collect::<Result<Vec<_>, ArrowError>>()?;
    // The explicit row count keeps a batch without columns valid.
    let options = RecordBatchOptions::new().with_row_count(Some(rows));
    RecordBatch::try_new_with_options(batch.schema(), columns, &options)
}

/// `tokenize`: `doc_id u64, position u32, token utf8` for each lowercased
/// alphanumeric run of `column`, numbered from 0 within its row.
pub fn tokenize(config: &Config, data: Option<&Buffer>) -> Result<Vec<u8>, String> {
    let column = config.require("column")?;
    let id = config.get("id").unwrap_or("id");
    let Some(mut input) = Input::data(data)? else {
        return Ok(Vec::new());
    };
    let schema = input.schema();
    let text_index = columns::find_string(&schema, "column", column)?;
    let id_index = columns::find(&schema, id)?;
    let id_type = schema.field(id_index).data_type();
    if !id_type.is_integer() {
        return Err(format!(
            "column '{id}' (config key 'id') must be an integer column, got {id_type}"
        ));
    }
    let out_schema = Arc::new(Schema::new(vec![
        Field::new("doc_id", DataType::UInt64, false),
        Field::new("position", DataType::UInt32, false),
        Field::new("token", DataType::Utf8, false),
    ]));
    let mut out = Output::new(&out_schema)?;
    while let Some(batch) = input.next_batch()? {
        let texts = columns::strings(batch.column(text_index), column)?;
        let ids = columns::u64_values(batch.column(id_index).as_ref(), id)?;
        let mut doc_ids = UInt64Builder::new();
        let mut positions = UInt32Builder::new();
        let mut tokens = Utf8Out::new("token");
        for (i, &doc_id) in ids.iter().enumerate() {
            let Some(text) = texts.get(i) else { continue };
            let pieces = text.split(|c: char| !c.is_alphanumeric());
            for (position, piece) in pieces.filter(|p| !p.is_empty()).enumerate() {
                let position = u32::try_from(position)
                    .map_err(|_| format!("row {i} of '{column}' has more than 2^32 tokens"))?;
                doc_ids.append_value(doc_id);
                positions.append_value(position);
                tokens.append(&piece.to_lowercase())?;
            }
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(doc_ids.finish()),
            Arc::new(positions.finish()),
            tokens.finish(),
        ];
        let batch = RecordBatch::try_new(Arc::clone(&out_schema), columns).map_err(batch_error)?;
        out.write(&batch)?;
    }
    out.finish()
}

// Uses `ipc`'s test helpers (see there).
#[cfg(all(test, feature = "core-abi"))]
mod tests {
    use super::*;
    use arrow::array::BooleanArray;
    use arrow::compute::filter_record_batch;

    /// `keep_rows` agrees with arrow's filter kernel on every column type.
    #[test]
    fn keep_rows_matches_arrows_filter() {
        let (_, batches) = crate::ipc::tests::wide();
        for batch in &batches {
            let n = batch.num_rows();
            let masks: [Vec<bool>; 4] = [
                vec![false; n],
                vec![true; n],
                (0..n).map(|i| i % 2 == 0).collect(),
                (0..n).map(|i| i + 1 == n).collect(),
            ];
            for mask in masks {
                let ours = keep_rows(batch, mask.iter().copied()).unwrap();
                let arrows = filter_record_batch(batch, &BooleanArray::from(mask.clone())).unwrap();
                assert_eq!(ours, arrows, "mask {mask:?}");
            }
        }
    }

    #[test]
    fn keep_rows_keeps_the_row_count_without_columns() {
        let options = RecordBatchOptions::new().with_row_count(Some(3));
        let batch =
            RecordBatch::try_new_with_options(Arc::new(Schema::empty()), vec![], &options).unwrap();
        let kept = keep_rows(&batch, [true, false, true].into_iter()).unwrap();
        assert_eq!(kept.num_rows(), 2);
    }
}
