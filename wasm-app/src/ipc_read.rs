//! Decoding Arrow IPC from untrusted sources: guest results (one stream in
//! memory) and input files (streams and files read batch by batch).
//!
//! arrow's own readers panic or abort on some malformed input (see
//! [`ipc_check`](crate::ipc_check)), so framing is done here and every
//! message header is checked before arrow-ipc's `RecordBatchDecoder` sees
//! it. Decoding stays zero-copy: a message body is a slice of the stream's
//! [`Buffer`] (guest output) or one aligned read (files).
//!
//! Invariant: a [`Decoder`] never lets arrow allocate more than its
//! [`Bounds::max_bytes`] for what it decodes (the whole stream, or each
//! batch): sizes come from the checked headers, before any allocation.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::buffer::Buffer;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::ipc::convert::try_fb_to_schema;
use arrow::ipc::reader::RecordBatchDecoder;
use arrow::ipc::{root_as_message, Message, MessageHeader};

use crate::ipc_check::{check_batch, check_schema, Refusal, Rules};

/// Marks a message length in the current IPC format.
pub(crate) const CONTINUATION_MARKER: [u8; 4] = [0xff; 4];

/// What a decoder accepts.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// Most decoded bytes (see [`ipc_check::check_batch`](crate::ipc_check::check_batch)).
    pub max_bytes: u64,
    /// `true`: `max_bytes` bounds the whole stream (a guest result);
    /// `false`: each batch and each dictionary (an input file).
    pub whole_stream: bool,
    /// Accept LZ4/ZSTD bodies (input files only).
    pub compression: bool,
    /// Refuse misaligned buffers instead of copying them (guest output:
    /// many columns aliasing one misaligned range would be copied once
    /// each).
    pub require_alignment: bool,
}

impl Bounds {
    /// For a guest result of at most `max_output` bytes.
    pub fn output(max_output: u64) -> Self {
        Bounds {
            max_bytes: max_output,
            whole_stream: true,
            compression: false,
            require_alignment: true,
        }
    }

    /// For input files whose batches may each decode to `max_batch_bytes`.
    pub fn input(max_batch_bytes: u64) -> Self {
        Bounds {
            max_bytes: max_batch_bytes,
            whole_stream: false,
            compression: true,
            require_alignment: false,
        }
    }
}

/// The state of one IPC stream being decoded: schema and dictionaries.
pub struct Decoder {
    pub(crate) bounds: Bounds,
    schema: Option<SchemaRef>,
    dictionaries: HashMap<i64, ArrayRef>,
    /// Decoded size of each dictionary, charged to every batch using it.
    dictionary_sizes: HashMap<i64, u64>,
    /// Decoded bytes so far (whole-stream bounds only).
    spent: u64,
}

impl Decoder {
    /// A decoder that has read nothing yet.
    pub fn new(bounds: Bounds) -> Self {
        Decoder {
            bounds,
            schema: None,
            dictionaries: HashMap::new(),
            dictionary_sizes: HashMap::new(),
            spent: 0,
        }
    }

    /// The schema, once its message was read.
    pub fn schema(&self) -> Option<SchemaRef> {
        self.schema.clone()
    }

    fn rules(&self) -> Rules {
        Rules {
            compression: self.bounds.compression,
            budget: match self.bounds.whole_stream {
                true => self.bounds.max_bytes.saturating_sub(self.spent),
                false => self.bounds.max_bytes,
            },
        }
    }

    /// Charges `size` decoded bytes, or refuses them.
    fn spend(&mut self, size: u64) -> Result<(), Refusal> {
        let total = match self.bounds.whole_stream {
            true => self.spent.saturating_add(size),
            false => size,
        };
        if total > self.bounds.max_bytes {
            return Err(Refusal::TooLarge(total));
        }
        if self.bounds.whole_stream {
            self.spent = total;
        }
        Ok(())
    }

    /// Decodes one message with its body; a record batch comes back, other
    /// messages update the decoder's state.
    pub fn message(
        &mut self,
        message: &Message<'_>,
        body: &Buffer,
    ) -> Result<Option<RecordBatch>, Refusal> {
        let invalid = |e: arrow::error::ArrowError| Refusal::Invalid(e.to_string());
        let version = message.version();
        match message.header_type() {
            MessageHeader::Schema => {
                if self.schema.is_some() {
                    return Err("a second schema message".to_string().into());
                }
                let fb = message
                    .header_as_schema()
                    .ok_or_else(|| "schema message without its header".to_string())?;
                let schema = try_fb_to_schema(fb).map_err(invalid)?;
                let fields: Vec<&Field> = schema.fields().iter().map(|f| f.as_ref()).collect();
                check_schema(&fields)?;
                self.schema = Some(Arc::new(schema));
                Ok(None)
            }
            MessageHeader::RecordBatch => {
                let schema = self.require_schema()?;
                let batch = message
                    .header_as_record_batch()
                    .ok_or_else(|| "record batch message without its header".to_string())?;
                let fields: Vec<&Field> = schema.fields().iter().map(|f| f.as_ref()).collect();
                let size = check_batch(
                    &batch,
                    body,
                    &fields,
                    version,
                    &self.dictionary_sizes,
                    self.rules(),
                )?;
                self.spend(size)?;
                let batch =
                    RecordBatchDecoder::try_new(body, batch, schema, &self.dictionaries, &version)
                        .map_err(invalid)?
                        .with_require_alignment(self.bounds.require_alignment)
                        .read_record_batch()
                        .map_err(invalid)?;
                Ok(Some(batch))
            }
            MessageHeader::DictionaryBatch => {
                let dictionary = message
                    .header_as_dictionary_batch()
                    .ok_or_else(|| "dictionary message without its header".to_string())?;
                self.dictionary(dictionary, body, version)?;
                Ok(None)
            }
            // An empty message carries nothing; arrow's reader skips it too.
            MessageHeader::NONE => Ok(None),
            other => Err(format!("unsupported message type {other:?}").into()),
        }
    }

    fn require_schema(&self) -> Result<SchemaRef, Refusal> {
        self.schema
            .clone()
            .ok_or_else(|| "a batch before the schema message".to_string().into())
    }

    /// Decodes a dictionary batch, appending deltas; a delta charges the
    /// whole combined dictionary (it is copied), so a stream of many small
    /// deltas cannot cost quadratic time unbounded.
    fn dictionary(
        &mut self,
        dictionary: arrow::ipc::DictionaryBatch<'_>,
        body: &Buffer,
        version: arrow::ipc::MetadataVersion,
    ) -> Result<(), Refusal> {
        let schema = self.require_schema()?;
        let id = dictionary.id();
        #[allow(deprecated)]
        let value_type = match schema
            .fields_with_dict_id(id)
            .first()
            .map(|f| f.data_type())
        {
            Some(DataType::Dictionary(_, v)) => v.as_ref().clone(),
            _ => return Err(format!("dictionary id {id} not found in the schema").into()),
        };
        let data = dictionary
            .data()
            .ok_or_else(|| format!("dictionary {id} is missing its data"))?;
        let field = Field::new("", value_type, true);
        let mut size = check_batch(
            &data,
            body,
            &[&field],
            version,
            &self.dictionary_sizes,
            self.rules(),
        )
        .map_err(|e| match e {
            Refusal::Invalid(m) => Refusal::Invalid(format!("dictionary {id}: {m}")),
            e => e,
        })?;
        let previous = match dictionary.isDelta() {
            true => Some(
                self.dictionaries
                    .get(&id)
                    .cloned()
                    .ok_or_else(|| format!("delta for dictionary {id}, which was never sent"))?,
            ),
            false => None,
        };
        if previous.is_some() {
            let old = self.dictionary_sizes.get(&id).copied().unwrap_or(0);
            size = size.saturating_add(old);
        }
        self.spend(size)?;
        let values_schema = Arc::new(Schema::new(vec![field]));
        let values =
            RecordBatchDecoder::try_new(body, data, values_schema, &self.dictionaries, &version)
                .and_then(|d| {
                    d.with_require_alignment(self.bounds.require_alignment)
                        .read_record_batch()
                })
                .map_err(|e| format!("dictionary {id}: {e}"))?;
        let values = Arc::clone(values.column(0));
        let values = match previous {
            Some(old) => arrow::compute::concat(&[old.as_ref(), values.as_ref()])
                .map_err(|e| format!("dictionary {id} delta: {e}"))?,
            None => values,
        };
        self.dictionaries.insert(id, values);
        self.dictionary_sizes.insert(id, size);
        Ok(())
    }
}

/// Decodes a whole stream held in `stream` (64-byte aligned for zero-copy
/// bodies). `None` for a stream without any message.
pub fn decode_all(
    stream: &Buffer,
    bounds: Bounds,
) -> Result<Option<(SchemaRef, Vec<RecordBatch>)>, Refusal> {
    let mut decoder = Decoder::new(bounds);
    let mut rest = stream.as_slice();
    let mut batches = Vec::new();
    while let Some((message, body)) = next_frame(stream, &mut rest)? {
        if let Some(b) = decoder.message(&message, &body)? {
            batches.push(b);
        }
    }
    // Bytes after the end-of-stream marker would be silently dropped data.
    if !rest.is_empty() {
        return Err(format!(
            "{} unexpected bytes after the end-of-stream marker",
            rest.len()
        )
        .into());
    }
    match decoder.schema() {
        Some(schema) => Ok(Some((schema, batches))),
        None if batches.is_empty() && stream.is_empty() => Ok(None),
        None => Err("the stream has no schema message".to_string().into()),
    }
}

/// Reads the next message frame from `rest` (the unread tail of `stream`)
/// and advances past it; `None` at the end-of-stream marker or at the end
/// of the bytes. Frames are `[0xFFFFFFFF] len:i32le flatbuffer[len]
/// body[bodyLength]` (the marker is absent in the pre-1.0 format).
fn next_frame<'a>(
    stream: &Buffer,
    rest: &mut &'a [u8],
) -> Result<Option<(Message<'a>, Buffer)>, Refusal> {
    if rest.is_empty() {
        return Ok(None);
    }
    let mut len = take(rest, 4, "message length")?;
    if len == CONTINUATION_MARKER {
        len = take(rest, 4, "message length")?;
    }
    let len = i32::from_le_bytes([len[0], len[1], len[2], len[3]]);
    if len == 0 {
        return Ok(None);
    }
    let len = usize::try_from(len).map_err(|_| format!("invalid message length {len}"))?;
    let header = take(rest, len, "message header")?;
    let message =
        root_as_message(header).map_err(|e| format!("invalid message header: {}", one_line(&e)))?;
    let body_len = usize::try_from(message.bodyLength())
        .map_err(|_| format!("invalid message body length {}", message.bodyLength()))?;
    let body = take(rest, body_len, "message body")?;
    // `body` lies inside `stream` (`rest` is a tail of it).
    let offset = body.as_ptr() as usize - stream.as_ptr() as usize;
    Ok(Some((message, stream.slice_with_length(offset, body_len))))
}

/// Splits `n` bytes off the front of `rest`, or fails naming the `part`.
fn take<'a>(rest: &mut &'a [u8], n: usize, part: &str) -> Result<&'a [u8], Refusal> {
    if rest.len() < n {
        return Err(format!(
            "truncated stream: {part} needs {n} bytes, {} left",
            rest.len()
        )
        .into());
    }
    let (head, tail) = rest.split_at(n);
    *rest = tail;
    Ok(head)
}

/// The flatbuffer verifier's message spans lines: keep errors to one line.
pub(crate) fn one_line(e: &impl std::fmt::Display) -> String {
    e.to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}
