//! Checks of Arrow IPC headers against their bodies and schema, made before
//! arrow-ipc decodes anything, and the decoded size they describe.
//!
//! arrow-ipc 60.1 trusts some header values and panics (or aborts, on a
//! failed allocation) instead of returning an error: buffers outside the
//! body, fixed-width buffers (offsets, keys, views) whose length is not a
//! multiple of their element, union buffers shorter than the union or
//! misaligned, negative lengths, a negative fixed size in the schema, and an
//! LZ4/ZSTD length prefix claiming petabytes (`Vec::with_capacity`). The
//! host decodes what untrusted guests return and what untrusted files
//! contain, so [`check_schema`] and [`check_batch`] turn all of these into
//! errors. The walk over fields mirrors arrow-ipc's
//! `RecordBatchDecoder::create_array` (same node and buffer order per type),
//! like the guest-side `wasm-module2/src/layout.rs` it is ported from; when
//! the header runs short of nodes, buffers or variadic counts, the walk
//! stops and leaves the error to arrow-ipc, which reports it.
//!
//! Stricter than arrow-ipc on purpose: lengths lie in `0..=i32::MAX`, null
//! counts in `0..=length`, types nest at most [`MAX_DEPTH`] deep.

use std::collections::{HashMap, VecDeque};

use arrow::buffer::Buffer;
use arrow::datatypes::{DataType, Field, UnionMode};
use arrow::ipc::{CompressionType, MetadataVersion};

/// Deepest type nesting accepted (arrow's reader recurses once per level).
pub const MAX_DEPTH: usize = 64;
/// Decoded-size cost of one array (its `ArrayData`, type and buffer list),
/// so that a batch of many empty columns is not free.
pub const ARRAY_COST: u64 = 64;

/// Why a header was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The decoded size would pass this many bytes.
    TooLarge(u64),
    /// The header is malformed, or uses something refused (compression).
    Invalid(String),
}

impl From<String> for Refusal {
    fn from(s: String) -> Self {
        Refusal::Invalid(s)
    }
}

/// Checks parameters of a decoded schema that arrow would otherwise trust:
/// a negative fixed size panics when arrays of the type are built, and
/// nesting beyond [`MAX_DEPTH`] is refused.
pub fn check_schema(fields: &[&Field]) -> Result<(), String> {
    fields
        .iter()
        .try_for_each(|f| check_type(f.name(), f.data_type(), 0))
}

fn check_type(raw_name: &str, data_type: &DataType, depth: usize) -> Result<(), String> {
    use DataType::*;
    // The name is the guest's: shown capped and escaped.
    let name = crate::text::guest_text(raw_name.as_bytes());
    if depth > MAX_DEPTH {
        return Err(format!(
            "column '{name}': types nest deeper than {MAX_DEPTH} levels"
        ));
    }
    let negative = |size: i32| {
        Err(format!(
            "column '{name}': negative size {size} in {data_type}"
        ))
    };
    let child = |f: &Field| check_type(f.name(), f.data_type(), depth + 1);
    match data_type {
        // A view array's N views may all span one large buffer: validating
        // (UTF-8) and writing it costs N times its size, which no byte
        // budget of the message bounds. Nothing here needs views.
        Utf8View | BinaryView | ListView(_) | LargeListView(_) => Err(format!(
            "column '{name}': {data_type} columns are refused (a view array's cost is not \
             bounded by its size); use Utf8, Binary or List"
        )),
        FixedSizeBinary(size) if *size < 0 => negative(*size),
        FixedSizeList(_, size) if *size < 0 => negative(*size),
        List(c) | LargeList(c) | FixedSizeList(c, _) | Map(c, _) => child(c),
        Struct(children) => children.iter().try_for_each(|c| child(c)),
        Union(children, _) => children.iter().try_for_each(|(_, c)| child(c)),
        RunEndEncoded(run_ends, values) => {
            child(run_ends)?;
            child(values)
        }
        Dictionary(_, values) => check_type(raw_name, values, depth + 1),
        _ => Ok(()),
    }
}

/// What a body may contain.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// Whether LZ4/ZSTD-compressed bodies are accepted (input files) or
    /// refused (guest output: a guest has no reason to compress in-memory
    /// results, and a few KiB of ZSTD can claim gigabytes).
    pub compression: bool,
    /// Most bytes the checked message may decode to (after decompression,
    /// every buffer once per use, dictionaries included).
    pub budget: u64,
}

/// Checks `batch` (a record batch header, or a dictionary's data) against
/// `body` and the fields it encodes, and returns its decoded size: every
/// buffer (decompressed) once per use, each dictionary a field uses (by id,
/// from `dictionaries`: their decoded sizes), [`ARRAY_COST`] per node and
/// one byte per row. Fails before allocating anything if that passes
/// `rules.budget`.
pub fn check_batch(
    batch: &arrow::ipc::RecordBatch,
    body: &Buffer,
    fields: &[&Field],
    version: MetadataVersion,
    dictionaries: &HashMap<i64, u64>,
    rules: Rules,
) -> Result<u64, Refusal> {
    let limit = i64::from(i32::MAX);
    if !(0..=limit).contains(&batch.length()) {
        return Err(format!("invalid batch length {}", batch.length()).into());
    }
    let nodes: Vec<(i64, i64)> = batch
        .nodes()
        .map(|n| n.iter().map(|n| (n.length(), n.null_count())).collect())
        .unwrap_or_default();
    if let Some((len, nulls)) = nodes
        .iter()
        .find(|(len, nulls)| !(0..=limit).contains(len) || !(0..=*len).contains(nulls))
    {
        return Err(format!("invalid array length {len} with {nulls} nulls").into());
    }
    let compressed = match batch.compression() {
        None => false,
        Some(_) if !rules.compression => {
            return Err(
                "compressed (LZ4/ZSTD) IPC bodies are refused in guest output: return uncompressed buffers"
                    .to_string()
                    .into(),
            )
        }
        Some(c) if !matches!(c.codec(), CompressionType::LZ4_FRAME | CompressionType::ZSTD) => {
            return Err(format!("unknown compression codec {:?}", c.codec()).into())
        }
        Some(_) => true,
    };
    // Every node's length counts, not only the batch's: a list of one row
    // may hold a child of 2^31 nulls, which costs nothing in the body and
    // gigabytes when printed or written out.
    let lengths = nodes
        .iter()
        .fold(0u64, |sum, (len, _)| sum.saturating_add(*len as u64));
    let mut size = lengths
        .saturating_add(batch.length() as u64)
        .saturating_add(ARRAY_COST.saturating_mul(nodes.len() as u64));
    let over = |n: u64| n > rules.budget;
    if over(size) {
        return Err(Refusal::TooLarge(size));
    }
    let Some(buffers) = batch.buffers() else {
        return Ok(size); // arrow-ipc reports the missing list itself
    };
    let mut spans = Vec::with_capacity(buffers.len());
    for (i, b) in buffers.iter().enumerate() {
        let (offset, length) = match (u64::try_from(b.offset()), u64::try_from(b.length())) {
            (Ok(o), Ok(l)) if o.checked_add(l).is_some_and(|end| end <= body.len() as u64) => {
                (o, l)
            }
            _ => {
                return Err(format!(
                    "buffer {i} (offset {}, length {}) lies outside the {}-byte message body",
                    b.offset(),
                    b.length(),
                    body.len()
                )
                .into())
            }
        };
        // Within the body, so these fit usize.
        let decoded = if compressed {
            decompressed_length(body, offset as usize, length as usize)
                .map_err(|e| format!("buffer {i}: {e}"))?
        } else {
            length
        };
        size = size.saturating_add(decoded);
        if over(size) {
            return Err(Refusal::TooLarge(size));
        }
        // Alignment only matters for bytes used in place (uncompressed).
        let address = match compressed {
            false => Some(body.as_ptr() as usize + offset as usize),
            true => None,
        };
        spans.push(Span { decoded, address });
    }
    let mut walk = Walk {
        nodes: nodes.into_iter(),
        buffers: spans.into_iter().enumerate(),
        variadic: batch.variadicBufferCounts().into_iter().flatten().collect(),
        version,
        dictionaries,
        used: 0,
    };
    for field in fields {
        match walk.field(field) {
            Ok(()) => {}
            Err(Stop::Quiet) => break,
            Err(Stop::Bad(message)) => {
                return Err(format!("column '{}': {message}", field.name()).into())
            }
        }
    }
    size = size.saturating_add(walk.used);
    if over(size) {
        return Err(Refusal::TooLarge(size));
    }
    Ok(size)
}

/// The length a compressed buffer declares in its 8-byte prefix (or its
/// own length less the prefix, for the "not compressed" marker -1); arrow
/// allocates it before decompressing, and checks the real size matches.
fn decompressed_length(body: &Buffer, offset: usize, length: usize) -> Result<u64, String> {
    if length == 0 {
        return Ok(0);
    }
    let prefix = body
        .get(offset..offset + length)
        .and_then(|b| b.get(..8))
        .ok_or_else(|| format!("compressed buffer of {length} bytes has no 8-byte length"))?;
    let mut le = [0u8; 8];
    le.copy_from_slice(prefix);
    match i64::from_le_bytes(le) {
        -1 => Ok(length as u64 - 8),
        n => u64::try_from(n).map_err(|_| format!("invalid uncompressed length {n}")),
    }
}

/// Why the walk ended early.
enum Stop {
    /// The header is short of something: arrow-ipc will report it.
    Quiet,
    /// A definite violation.
    Bad(String),
}

/// One buffer as decoding sees it: its decoded length, and where it lies in
/// memory when it is used in place.
struct Span {
    decoded: u64,
    address: Option<usize>,
}

/// The header's nodes and buffers, consumed in field order.
struct Walk<'a> {
    nodes: std::vec::IntoIter<(i64, i64)>,
    buffers: std::iter::Enumerate<std::vec::IntoIter<Span>>,
    variadic: VecDeque<i64>,
    version: MetadataVersion,
    dictionaries: &'a HashMap<i64, u64>,
    /// Decoded bytes of the dictionaries the fields use, once per use.
    used: u64,
}

impl Walk<'_> {
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
        let (i, span) = self.buffers.next().ok_or(Stop::Quiet)?;
        if span.decoded % width == 0 {
            Ok(())
        } else {
            Err(Stop::Bad(format!(
                "buffer {i} has length {}, not a multiple of its {width}-byte elements",
                span.decoded
            )))
        }
    }

    /// A buffer of at least `min` bytes, at an address aligned to `align`
    /// if used in place: arrow-ipc slices union type ids and offsets
    /// unchecked and wraps them without its usual aligned copy.
    fn at_least(&mut self, min: u64, align: usize) -> Result<(), Stop> {
        let (i, span) = self.buffers.next().ok_or(Stop::Quiet)?;
        if span.decoded < min {
            Err(Stop::Bad(format!(
                "buffer {i} has length {}, expected at least {min}",
                span.decoded
            )))
        } else if span.address.is_some_and(|a| a % align != 0) {
            Err(Stop::Bad(format!(
                "buffer {i} is not aligned to {align} bytes"
            )))
        } else {
            Ok(())
        }
    }

    fn field(&mut self, field: &Field) -> Result<(), Stop> {
        self.data_type(field, field.data_type())
    }

    fn data_type(&mut self, field: &Field, data_type: &DataType) -> Result<(), Stop> {
        use DataType::*;
        match data_type {
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
                self.fixed(keys.primitive_width().unwrap_or(1) as u64)?;
                #[allow(deprecated)]
                let id = field.dict_id();
                if let Some(bytes) = id.and_then(|id| self.dictionaries.get(&id)) {
                    self.used = self.used.saturating_add(*bytes);
                }
                Ok(())
            }
            Union(children, mode) => {
                let len = self.node()?;
                if self.version < MetadataVersion::V5 {
                    self.any()?;
                }
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
