//! Arrow on the host side: the metadata stream, IPC encode/decode, and
//! reading/writing Arrow files.
//!
//! Encoding for a guest is zero-copy ([`encode_parts`]): the stream is a list
//! of parts (headers, padding and the batches' own buffers) that the host
//! copies once, straight into guest memory. Decoding guest output is
//! zero-copy too: the bytes copied out of guest memory become one aligned
//! [`Buffer`] and every array of the result points into it.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use arrow::array::{ArrayRef, RecordBatch, StringArray, StructArray};
use arrow::buffer::{Buffer, MutableBuffer};
use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef};
use arrow::ipc::writer::{StreamEncoder, StreamWriter};

use crate::error::{Error, Limit, Result};
use crate::ipc_check::Refusal;
use crate::ipc_read::{self, Bounds};

/// The metadata of a protocol call (`flush` or `merge`, see
/// [`wasm_abi::meta`]): `config` without the protocol's keys, plus
/// `key = "true"`.
pub(crate) fn encode_protocol_meta(
    command: &str,
    config: &[(String, String)],
    key: &str,
) -> Result<Vec<u8>> {
    use wasm_abi::meta::{FLUSH, MERGE};
    let mut cfg: Vec<_> = config
        .iter()
        .filter(|(k, _)| k != FLUSH && k != MERGE)
        .cloned()
        .collect();
    cfg.push((key.into(), "true".into()));
    encode_meta(command, &cfg)
}

/// [`decode_stream`] of a guest's result, saying so in the error.
pub(crate) fn decode_result(bytes: Buffer, max_output: u64) -> Result<Option<Table>> {
    decode_stream(bytes, max_output).map_err(|e| match e {
        Error::Other(e) => {
            Error::Other(e.context("the guest returned an invalid Arrow IPC stream"))
        }
        e => e,
    })
}

/// Arrow data: a schema and its batches.
#[derive(Debug, Clone)]
pub struct Table {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
}

impl Table {
    /// Total rows over all batches.
    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }
}

/// The metadata stream the Arrow ABI expects: one row, `command` (utf8) and
/// `config` (struct of utf8, one field per key, in the given order).
pub fn encode_meta(command: &str, config: &[(String, String)]) -> Result<Vec<u8>> {
    let fields: Fields = config
        .iter()
        .map(|(k, _)| Field::new(k, DataType::Utf8, false))
        .collect();
    let values: Vec<ArrayRef> = config
        .iter()
        .map(|(_, v)| Arc::new(StringArray::from(vec![v.as_str()])) as ArrayRef)
        .collect();
    let config_array = if fields.is_empty() {
        StructArray::new_empty_fields(1, None)
    } else {
        StructArray::try_new(fields.clone(), values, None).context("building config")?
    };
    let schema = Arc::new(Schema::new(vec![
        Field::new(wasm_abi::meta::COMMAND, DataType::Utf8, false),
        Field::new(wasm_abi::meta::CONFIG, DataType::Struct(fields), false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from(vec![command])),
            Arc::new(config_array),
        ],
    )
    .context("building the metadata batch")?;
    encode_stream(&schema, std::slice::from_ref(&batch))
}

/// Encodes batches as one IPC stream.
pub fn encode_stream(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<Vec<u8>> {
    let mut w = StreamWriter::try_new(Vec::new(), schema).context("starting IPC stream")?;
    for b in batches {
        w.write(b).context("encoding a batch")?;
    }
    Ok(w.into_inner().context("finishing IPC stream")?)
}

/// An IPC stream as the encoder's parts, in order: message headers, padding,
/// and slices of the batches' own buffers (not copied, 64-byte aligned
/// within the stream). Their concatenation is the stream [`encode_stream`]
/// writes.
pub fn encode_parts(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<Vec<Buffer>> {
    let mut encoder = StreamEncoder::try_new(schema).context("starting IPC stream")?;
    let mut parts = Vec::new();
    for b in batches {
        parts.extend(encoder.encode(b).context("encoding a batch")?);
    }
    parts.extend(encoder.finish().context("finishing IPC stream")?);
    Ok(parts)
}

/// Decodes an IPC stream a guest returned, without copying its buffers;
/// `None` for empty bytes (a guest with nothing to return).
///
/// Never panics or aborts, whatever the bytes: every header is checked
/// before arrow decodes it (`ipc_check.rs`). Compressed bodies and
/// misaligned buffers are refused; more than `max_output` bytes of IPC, or
/// of decoded size (buffers once per use, see
/// [`Limits::max_output`](crate::Limits::max_output)), is
/// [`Error::LimitExceeded`]`(`[`Limit::Output`]`)`.
pub fn decode_stream(bytes: impl Into<Buffer>, max_output: u64) -> Result<Option<Table>> {
    let mut buf: Buffer = bytes.into();
    if buf.len() as u64 > max_output {
        return Err(Error::LimitExceeded(Limit::Output(max_output)));
    }
    if buf.is_empty() {
        return Ok(None);
    }
    // Bodies are used in place: align the stream for every type (16 bytes,
    // i128) as writers align buffers within it (guest results
    // come from the pool, already aligned; component results may not be).
    if buf.as_ptr().align_offset(16) != 0 {
        let mut aligned = MutableBuffer::with_capacity(buf.len());
        aligned.extend_from_slice(buf.as_slice());
        buf = aligned.into();
    }
    match ipc_read::decode_all(&buf, Bounds::output(max_output)) {
        Ok(Some((schema, batches))) => Ok(Some(Table { schema, batches })),
        Ok(None) => Ok(None),
        Err(Refusal::TooLarge(_)) => Err(Error::LimitExceeded(Limit::Output(max_output))),
        Err(Refusal::Invalid(why)) => Err(Error::Other(anyhow::anyhow!(why))),
    }
}

/// The two IPC layouts, told apart by their first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpcFormat {
    /// `ARROW1` magic, footer with a block index (`.arrow`).
    File,
    /// A sequence of messages (`.arrows`).
    Stream,
}

impl IpcFormat {
    /// The format for an output path: `.arrow` is a file, anything else a stream.
    pub fn for_output(path: &Path) -> Self {
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("arrow") || e.eq_ignore_ascii_case("feather") => {
                IpcFormat::File
            }
            _ => IpcFormat::Stream,
        }
    }
}

/// Reads an Arrow IPC file or stream (told apart by the magic bytes), with
/// the input checks of [`formats::open`](crate::formats::open) and batches
/// bounded by [`DEFAULT_MAX_MEMORY`](crate::policy::DEFAULT_MAX_MEMORY).
pub fn read_ipc(path: &Path) -> Result<Table> {
    let src = crate::formats::open(
        path,
        None,
        crate::format::DEFAULT_BATCH_SIZE,
        crate::policy::DEFAULT_MAX_MEMORY,
    )?;
    let schema = src.schema.clone();
    let batches = src.collect::<Result<_>>()?;
    Ok(Table { schema, batches })
}

/// Writes `table` to `path` as an IPC file (`.arrow`) or stream (otherwise).
pub fn write_ipc(path: &Path, table: &Table) -> Result<()> {
    let format = match IpcFormat::for_output(path) {
        IpcFormat::File => crate::formats::Format::Arrow,
        IpcFormat::Stream => crate::formats::Format::Arrows,
    };
    let mut sink = crate::formats::create(path, Some(format), &table.schema)?;
    for b in &table.batches {
        sink.write(b)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    sink.finish()
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Renders batches as a text table.
pub fn pretty(table: &Table) -> Result<String> {
    if table.batches.is_empty() {
        let names: Vec<_> = table
            .schema
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        return Ok(format!("(no rows; columns: {})", names.join(", ")));
    }
    Ok(crate::text_table::to_string(&table.batches)?)
}

/// Parses `KEY=VALUE` config arguments, keeping their order.
pub fn parse_config(items: &[String]) -> Result<Vec<(String, String)>> {
    let mut out: Vec<(String, String)> = Vec::new();
    for item in items {
        let Some((k, v)) = item.split_once('=') else {
            return Err(Error::InvalidArgument(format!(
                "config '{item}' is not KEY=VALUE"
            )));
        };
        if k.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "config '{item}' has an empty key"
            )));
        }
        if out.iter().any(|(ok, _)| ok == k) {
            return Err(Error::InvalidArgument(format!(
                "config key '{k}' is given twice"
            )));
        }
        out.push((k.to_string(), v.to_string()));
    }
    Ok(out)
}

/// Arrays compare equal field by field; used to check that round trips are
/// lossless.
pub fn same_data(a: &Table, b: &Table) -> bool {
    a.schema == b.schema
        && a.num_rows() == b.num_rows()
        && match (concat(a), concat(b)) {
            (Ok(x), Ok(y)) => x == y,
            _ => false,
        }
}

fn concat(t: &Table) -> anyhow::Result<Option<RecordBatch>> {
    if t.batches.is_empty() {
        return Ok(None);
    }
    Ok(Some(arrow::compute::concat_batches(&t.schema, &t.batches)?))
}

/// Study's example data, as the `test` command expects it.
pub fn study_example() -> Result<Table> {
    use arrow::array::{Float64Array, TimestampSecondArray, UInt64Array};
    use arrow::datatypes::TimeUnit;
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::UInt64, false),
        Field::new("content", DataType::Utf8, false),
        Field::new("title", DataType::Utf8, false),
        Field::new(
            "date",
            DataType::Timestamp(TimeUnit::Second, Some("+00:00".into())),
            false,
        ),
        Field::new("score", DataType::Float64, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(UInt64Array::from(vec![1u64])),
            Arc::new(StringArray::from(vec!["this is a test"])),
            Arc::new(StringArray::from(vec!["test"])),
            // 2022-01-01T12:00:00Z
            Arc::new(TimestampSecondArray::from(vec![1_641_038_400i64]).with_timezone("+00:00")),
            Arc::new(Float64Array::from(vec![1.123456f64])),
        ],
    )?;
    Ok(Table {
        schema,
        batches: vec![batch],
    })
}

/// `n` rows of the study's schema (for benchmarks and tests of scale).
pub fn study_rows(n: usize) -> Result<Table> {
    use arrow::array::{Float64Array, TimestampSecondArray, UInt64Array};
    let schema = study_example()?.schema;
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(UInt64Array::from_iter_values(0..n as u64)),
            Arc::new(StringArray::from_iter_values(
                (0..n).map(|i| format!("document {i} talks about wasm and arrow")),
            )),
            Arc::new(StringArray::from_iter_values(
                (0..n).map(|i| format!("title {i}")),
            )),
            Arc::new(
                TimestampSecondArray::from_iter_values((0..n as i64).map(|i| 1_641_038_400 + i))
                    .with_timezone("+00:00"),
            ),
            Arc::new(Float64Array::from_iter_values(
                (0..n).map(|i| i as f64 / 7.0),
            )),
        ],
    )?;
    Ok(Table {
        schema,
        batches: vec![batch],
    })
}
