//! Typed access to input columns and a bounded builder for output strings.

use arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
use arrow::datatypes::{
    DataType, Int16Type, Int32Type, Int64Type, Int8Type, Schema, UInt16Type, UInt32Type,
    UInt64Type, UInt8Type,
};

/// Read access to a column of strings, whatever its offset width.
pub enum Strings<'a> {
    Utf8(&'a arrow::array::StringArray),
    LargeUtf8(&'a arrow::array::LargeStringArray),
    Utf8View(&'a arrow::array::StringViewArray),
}

impl<'a> Strings<'a> {
    /// `None` unless `array` is a utf8, large utf8 or utf8 view array.
    pub fn new(array: &'a dyn Array) -> Option<Self> {
        if let Some(a) = array.as_string_opt::<i32>() {
            Some(Strings::Utf8(a))
        } else if let Some(a) = array.as_string_opt::<i64>() {
            Some(Strings::LargeUtf8(a))
        } else {
            array.as_string_view_opt().map(Strings::Utf8View)
        }
    }

    /// The value of row `i`, `None` if it is null; `i` must be a row of the
    /// array (callers iterate over their batch's `num_rows()`).
    pub fn get(&self, i: usize) -> Option<&'a str> {
        match self {
            Strings::Utf8(a) => a.is_valid(i).then(|| a.value(i)),
            Strings::LargeUtf8(a) => a.is_valid(i).then(|| a.value(i)),
            Strings::Utf8View(a) => a.is_valid(i).then(|| a.value(i)),
        }
    }
}

/// Whether `data_type` is readable through [`Strings`].
pub fn is_string(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    )
}

/// Index of the column called `name`, with an error listing the columns.
pub fn find(schema: &Schema, name: &str) -> Result<usize, String> {
    schema.index_of(name).map_err(|_| {
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        format!(
            "column '{name}' not found in the data (columns: {})",
            names.join(", ")
        )
    })
}

/// Index of the string column called `name` (config key `key` named it).
pub fn find_string(schema: &Schema, key: &str, name: &str) -> Result<usize, String> {
    let index = find(schema, name)?;
    let data_type = schema.field(index).data_type();
    if is_string(data_type) {
        Ok(index)
    } else {
        Err(format!(
            "column '{name}' (config key '{key}') must be utf8 or large utf8, got {data_type}"
        ))
    }
}

/// [`Strings`] over column `index` of a batch whose schema was checked with
/// [`find_string`]; the error only guards against a schema change mid-stream.
pub fn strings<'a>(column: &'a ArrayRef, name: &str) -> Result<Strings<'a>, String> {
    Strings::new(column.as_ref()).ok_or_else(|| {
        format!(
            "column '{name}' is not a string column in this batch ({})",
            column.data_type()
        )
    })
}

/// The values of an integer column as `u64`, one per row.
///
/// Errors name the column and row for a null or negative value, or if the
/// column is not of an integer type.
pub fn u64_values(column: &dyn Array, name: &str) -> Result<Vec<u64>, String> {
    /// Converts one primitive array; `$t` is its arrow type.
    macro_rules! convert {
        ($t:ty) => {{
            // The match below picked `$t` from the data type, so this only
            // fails if arrow's type and array disagree.
            let array = column
                .as_primitive_opt::<$t>()
                .ok_or_else(|| format!("column '{name}' is not a {}", column.data_type()))?;
            (0..array.len())
                .map(|i| {
                    if array.is_null(i) {
                        return Err(format!("column '{name}' is null at row {i}"));
                    }
                    let v = array.value(i);
                    u64::try_from(v)
                        .map_err(|_| format!("column '{name}' is negative at row {i}: {v}"))
                })
                .collect()
        }};
    }
    match column.data_type() {
        DataType::Int8 => convert!(Int8Type),
        DataType::Int16 => convert!(Int16Type),
        DataType::Int32 => convert!(Int32Type),
        DataType::Int64 => convert!(Int64Type),
        DataType::UInt8 => convert!(UInt8Type),
        DataType::UInt16 => convert!(UInt16Type),
        DataType::UInt32 => convert!(UInt32Type),
        DataType::UInt64 => convert!(UInt64Type),
        other => Err(format!(
            "column '{name}' must be an integer column, got {other}"
        )),
    }
}

/// A utf8 column builder that refuses to overflow its `i32` offsets (where
/// arrow's builder would panic) and reports an error instead.
pub struct Utf8Out {
    builder: StringBuilder,
    /// Bytes of string data appended so far.
    bytes: usize,
    /// Name of the output column, for the error.
    name: &'static str,
}

impl Utf8Out {
    /// An empty builder for the output column `name`.
    pub fn new(name: &'static str) -> Self {
        Utf8Out {
            builder: StringBuilder::new(),
            bytes: 0,
            name,
        }
    }

    /// Appends `value`, or fails if the column would exceed 2 GiB - 1.
    pub fn append(&mut self, value: &str) -> Result<(), String> {
        let bytes = self
            .bytes
            .checked_add(value.len())
            .filter(|&b| i32::try_from(b).is_ok())
            .ok_or_else(|| {
                format!(
                    "output column '{}' would exceed the 2 GiB of a utf8 column",
                    self.name
                )
            })?;
        self.bytes = bytes;
        self.builder.append_value(value);
        Ok(())
    }

    /// Appends a null.
    pub fn append_null(&mut self) {
        self.builder.append_null();
    }

    /// The finished column.
    pub fn finish(mut self) -> ArrayRef {
        std::sync::Arc::new(self.builder.finish())
    }
}
