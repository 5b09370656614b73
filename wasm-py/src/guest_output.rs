//! What a guest returns, made plain before pyarrow sees it.
//!
//! The host has checked the guest's result (sizes, offsets, types), but
//! field metadata is the guest's to choose, and pyarrow reads one kind of it
//! as an instruction: `ARROW:extension:name` (and `:metadata`) turns a
//! column into an extension type, and for a type the application registered
//! in Python, hands the guest's bytes to that type's deserializer. A guest
//! must not pick which of the caller's code runs on its bytes, nor make the
//! export fail with a pyarrow error: these keys are dropped, everywhere in
//! the schema. Other metadata is kept.

use std::sync::Arc;

use arrow::array::{make_array, ArrayData, ArrayRef, RecordBatch};
use arrow::datatypes::{DataType, Field, FieldRef, Schema, SchemaRef};
use arrow::error::ArrowError;

const EXTENSION_PREFIX: &str = "ARROW:extension:";

/// `schema` without extension metadata (the same `Arc` if it had none).
pub(crate) fn plain_schema(schema: &SchemaRef) -> SchemaRef {
    let fields: Vec<FieldRef> = schema.fields().iter().map(plain_field).collect();
    let plain = Schema::new_with_metadata(fields, schema.metadata().clone());
    if plain == **schema {
        schema.clone()
    } else {
        Arc::new(plain)
    }
}

/// `batch` under [`plain_schema`]; arrays are re-typed, never copied.
pub(crate) fn plain_batch(batch: RecordBatch) -> Result<RecordBatch, ArrowError> {
    let schema = plain_schema(&batch.schema());
    if schema == batch.schema() {
        return Ok(batch);
    }
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(a, f)| retype(a, f.data_type()))
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new_with_options(
        schema,
        columns,
        &arrow::array::RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
    )
}

fn plain_field(f: &FieldRef) -> FieldRef {
    let t = plain_type(f.data_type());
    let tagged = f.metadata().keys().any(|k| k.starts_with(EXTENSION_PREFIX));
    if !tagged && &t == f.data_type() {
        return f.clone();
    }
    let mut metadata = f.metadata().clone();
    metadata.retain(|k, _| !k.starts_with(EXTENSION_PREFIX));
    Arc::new(Field::clone(f).with_data_type(t).with_metadata(metadata))
}

fn plain_type(t: &DataType) -> DataType {
    match t {
        DataType::List(f) => DataType::List(plain_field(f)),
        DataType::LargeList(f) => DataType::LargeList(plain_field(f)),
        DataType::FixedSizeList(f, n) => DataType::FixedSizeList(plain_field(f), *n),
        DataType::Map(f, sorted) => DataType::Map(plain_field(f), *sorted),
        DataType::Struct(fs) => DataType::Struct(fs.iter().map(plain_field).collect()),
        DataType::Union(fs, mode) => DataType::Union(
            fs.iter().map(|(id, f)| (id, plain_field(f))).collect(),
            *mode,
        ),
        DataType::Dictionary(k, v) => DataType::Dictionary(k.clone(), Box::new(plain_type(v))),
        DataType::RunEndEncoded(ends, values) => {
            DataType::RunEndEncoded(ends.clone(), plain_field(values))
        }
        other => other.clone(),
    }
}

/// `array` with type `t`, which differs from its own only in field metadata.
fn retype(array: &ArrayRef, t: &DataType) -> Result<ArrayRef, ArrowError> {
    if array.data_type() == t {
        return Ok(array.clone());
    }
    retype_data(array.to_data(), t).map(make_array)
}

fn retype_data(data: ArrayData, t: &DataType) -> Result<ArrayData, ArrowError> {
    let child_types: Vec<DataType> = match t {
        DataType::List(f)
        | DataType::LargeList(f)
        | DataType::FixedSizeList(f, _)
        | DataType::Map(f, _) => vec![f.data_type().clone()],
        DataType::Struct(fs) => fs.iter().map(|f| f.data_type().clone()).collect(),
        DataType::Union(fs, _) => fs.iter().map(|(_, f)| f.data_type().clone()).collect(),
        DataType::Dictionary(_, v) => vec![(**v).clone()],
        DataType::RunEndEncoded(ends, values) => {
            vec![ends.data_type().clone(), values.data_type().clone()]
        }
        _ => Vec::new(),
    };
    let children = data
        .child_data()
        .iter()
        .zip(child_types)
        .map(|(c, ct)| retype_data(c.clone(), &ct))
        .collect::<Result<Vec<_>, _>>()?;
    data.into_builder()
        .data_type(t.clone())
        .child_data(children)
        .build()
}
