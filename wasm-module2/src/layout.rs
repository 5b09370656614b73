//! Checks of a record batch header against its body and schema, made
//! before arrow-ipc decodes it.
//!
//! arrow-ipc 60 trusts some header values and panics (which traps the whole
//! guest) instead of returning an error when they are damaged: buffers
//! outside the body, a fixed-width buffer (offsets, keys, views) whose length
//! is not a multiple of its element size, union buffers shorter than the
//! union, negative lengths. These checks turn such headers into errors.
//!
//! The walk over fields mirrors arrow-ipc's `RecordBatchDecoder::create_array`
//! (same node and buffer order per type); the tests in `ipc` run it over a
//! column of every type arrow-ipc writes and compare with arrow's reader.
//! When the header runs out of nodes, buffers or variadic counts, the walk
//! stops and leaves the error to arrow-ipc. Primitive value buffers are not
//! checked: arrow-ipc checks their length itself.
//!
//! Deliberately stricter than arrow-ipc, which lets some through: array and
//! batch lengths must lie in `0..=i32::MAX` (no wasm32 memory holds more)
//! and null counts in `0..=length`.

use std::collections::VecDeque;

use arrow::buffer::Buffer;
use arrow::datatypes::{DataType, Field, UnionMode};
use arrow::ipc::MetadataVersion;

/// Checks parameters of a decoded schema that arrow would otherwise trust:
/// a negative fixed size panics when arrays of the type are built.
pub fn check_schema(fields: &[&Field]) -> Result<(), String> {
    fields
        .iter()
        .try_for_each(|f| check_type(f.name(), f.data_type()))
}

fn check_type(name: &str, data_type: &DataType) -> Result<(), String> {
    use DataType::*;
    let negative = |size: i32| {
        Err(format!(
            "column '{name}': negative size {size} in {data_type}"
        ))
    };
    match data_type {
        FixedSizeBinary(size) if *size < 0 => negative(*size),
        FixedSizeList(_, size) if *size < 0 => negative(*size),
        List(child)
        | LargeList(child)
        | ListView(child)
        | LargeListView(child)
        | FixedSizeList(child, _)
        | Map(child, _) => check_type(child.name(), child.data_type()),
        Struct(children) => children
            .iter()
            .try_for_each(|c| check_type(c.name(), c.data_type())),
        Union(children, _) => children
            .iter()
            .try_for_each(|(_, c)| check_type(c.name(), c.data_type())),
        RunEndEncoded(run_ends, values) => {
            check_type(run_ends.name(), run_ends.data_type())?;
            check_type(values.name(), values.data_type())
        }
        Dictionary(_, values) => check_type(name, values),
        _ => Ok(()),
    }
}

/// Why the walk ended early.
enum Stop {
    /// The header is short of something: arrow-ipc will report it.
    Quiet,
    /// A definite violation.
    Bad(String),
}

/// Checks `batch` (a record batch header, or a dictionary's data) against
/// `body` and the fields it encodes.
pub fn check(
    batch: &arrow::ipc::RecordBatch,
    body: &Buffer,
    fields: &[&Field],
    version: MetadataVersion,
) -> Result<(), String> {
    let limit = i64::from(i32::MAX);
    if !(0..=limit).contains(&batch.length()) {
        return Err(format!("invalid batch length {}", batch.length()));
    }
    let nodes: Vec<(i64, i64)> = batch
        .nodes()
        .map(|n| n.iter().map(|n| (n.length(), n.null_count())).collect())
        .unwrap_or_default();
    if let Some((len, nulls)) = nodes
        .iter()
        .find(|(len, nulls)| !(0..=limit).contains(len) || !(0..=*len).contains(nulls))
    {
        return Err(format!("invalid array length {len} with {nulls} nulls"));
    }
    let Some(buffers) = batch.buffers() else {
        return Ok(()); // arrow-ipc reports the missing list itself
    };
    let mut lengths = Vec::with_capacity(buffers.len());
    for (i, b) in buffers.iter().enumerate() {
        let inside = u64::try_from(b.offset())
            .ok()
            .zip(u64::try_from(b.length()).ok())
            .and_then(|(offset, length)| offset.checked_add(length))
            .is_some_and(|end| end <= body.len() as u64);
        if !inside {
            return Err(format!(
                "buffer {i} (offset {}, length {}) lies outside the {}-byte message body",
                b.offset(),
                b.length(),
                body.len()
            ));
        }
        // Both were checked non-negative just above.
        lengths.push((b.offset() as u64, b.length() as u64));
    }
    // Compressed buffers have arbitrary lengths; arrow-ipc decompresses (or
    // refuses) them itself.
    if batch.compression().is_some() {
        return Ok(());
    }
    let mut walk = Walk {
        nodes: nodes.into_iter(),
        buffers: lengths.into_iter().enumerate(),
        variadic: batch.variadicBufferCounts().into_iter().flatten().collect(),
        version,
    };
    for field in fields {
        match walk.field(field) {
            Ok(()) => {}
            Err(Stop::Quiet) => return Ok(()),
            Err(Stop::Bad(message)) => return Err(format!("column '{}': {message}", field.name())),
        }
    }
    Ok(())
}

/// The header's nodes and buffers (index, (offset, length)), consumed in
/// field order.
struct Walk {
    nodes: std::vec::IntoIter<(i64, i64)>,
    buffers: std::iter::Enumerate<std::vec::IntoIter<(u64, u64)>>,
    variadic: VecDeque<i64>,
    version: MetadataVersion,
}

impl Walk {
    /// The next node's length.
    fn node(&mut self) -> Result<u64, Stop> {
        // Lengths were checked non-negative.
        self.nodes
            .next()
            .map(|(len, _)| len as u64)
            .ok_or(Stop::Quiet)
    }

    /// Skips a buffer of any length (validity bitmap, bytes).
    fn any(&mut self) -> Result<(), Stop> {
        self.buffers.next().map(|_| ()).ok_or(Stop::Quiet)
    }

    /// A buffer of `width`-byte elements.
    fn fixed(&mut self, width: u64) -> Result<(), Stop> {
        let (i, (_, len)) = self.buffers.next().ok_or(Stop::Quiet)?;
        if len % width == 0 {
            Ok(())
        } else {
            Err(Stop::Bad(format!(
                "buffer {i} has length {len}, not a multiple of its {width}-byte elements"
            )))
        }
    }

    /// A buffer of at least `min` bytes starting at a multiple of `align`.
    ///
    /// Alignment matters only where arrow-ipc wraps the bytes without its
    /// usual copy to aligned memory (union offsets); the body itself is
    /// 64-byte aligned, so an aligned offset gives an aligned pointer.
    fn at_least(&mut self, min: u64, align: u64) -> Result<(), Stop> {
        let (i, (offset, len)) = self.buffers.next().ok_or(Stop::Quiet)?;
        if len < min {
            Err(Stop::Bad(format!(
                "buffer {i} has length {len}, expected at least {min}"
            )))
        } else if offset % align != 0 {
            Err(Stop::Bad(format!(
                "buffer {i} starts at offset {offset}, not a multiple of {align}"
            )))
        } else {
            Ok(())
        }
    }

    fn field(&mut self, field: &Field) -> Result<(), Stop> {
        use DataType::*;
        match field.data_type() {
            Utf8 | Binary => {
                self.node()?;
                self.any()?;
                self.fixed(4)?;
                self.any()
            }
            LargeUtf8 | LargeBinary => {
                self.node()?;
                self.any()?;
                self.fixed(8)?;
                self.any()
            }
            Utf8View | BinaryView => {
                let count = self.variadic.pop_front().ok_or(Stop::Quiet)?;
                let count = usize::try_from(count).map_err(|_| Stop::Quiet)?;
                self.any()?;
                self.fixed(16)?;
                for _ in 0..count {
                    self.any()?;
                }
                self.node().map(drop)
            }
            FixedSizeBinary(_) => {
                self.node()?;
                self.any()?;
                self.any()
            }
            List(child) | Map(child, _) => {
                self.node()?;
                self.any()?;
                self.fixed(4)?;
                self.field(child)
            }
            LargeList(child) => {
                self.node()?;
                self.any()?;
                self.fixed(8)?;
                self.field(child)
            }
            ListView(child) => {
                self.node()?;
                self.any()?;
                self.fixed(4)?;
                self.fixed(4)?;
                self.field(child)
            }
            LargeListView(child) => {
                self.node()?;
                self.any()?;
                self.fixed(8)?;
                self.fixed(8)?;
                self.field(child)
            }
            FixedSizeList(child, _) => {
                self.node()?;
                self.any()?;
                self.field(child)
            }
            Struct(children) => {
                self.node()?;
                self.any()?;
                children.iter().try_for_each(|c| self.field(c))
            }
            RunEndEncoded(run_ends, values) => {
                self.node()?;
                self.field(run_ends)?;
                self.field(values)
            }
            Dictionary(keys, _) => {
                self.node()?;
                self.any()?;
                // Keys are integers; a non-integer key type fails in arrow.
                self.fixed(keys.primitive_width().unwrap_or(1) as u64)
            }
            Union(children, mode) => {
                let len = self.node()?;
                if self.version < MetadataVersion::V5 {
                    self.any()?;
                }
                // arrow-ipc slices `len` type ids (and `len` offsets) unchecked.
                self.at_least(len, 1)?;
                if *mode == UnionMode::Dense {
                    self.at_least(len.saturating_mul(4), 4)?;
                }
                children.iter().try_for_each(|(_, c)| self.field(c))
            }
            Null => self.node().map(drop),
            // Primitive values and boolean bitmaps: arrow-ipc checks they
            // are long enough and ignores extra bytes, so any length goes.
            _ => {
                self.node()?;
                self.any()?;
                self.any()
            }
        }
    }
}
