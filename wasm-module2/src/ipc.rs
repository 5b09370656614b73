//! Reading and writing Arrow IPC streams in guest memory.
//!
//! Reading is zero-copy: a stream arrives as one [`Buffer`] (over the area
//! the host wrote, see `lib.rs`) and every decoded array points into it.
//! Buffers that are misaligned for their type (a stream written with less
//! than 8-byte alignment, or lying at an odd address) are copied by arrow
//! when the batch is built; the host's streams are 64-byte aligned in
//! 64-byte aligned areas, so that does not happen on the normal path.
//! Writing copies once: the encoder yields the stream as slices of the
//! arrays' own buffers plus headers, which are concatenated into one
//! exactly-sized `Vec` at the end.
//!
//! Every failure becomes a `String` prefixed with what was being read or
//! written ("metadata stream: ...", "data stream: ...", "output stream: ..."),
//! so the host sees which of its inputs was at fault.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{make_array, Array, ArrayRef};
use arrow::buffer::Buffer;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::ipc::convert::try_fb_to_schema;
use arrow::ipc::reader::read_record_batch;
use arrow::ipc::writer::StreamEncoder;
use arrow::ipc::{root_as_message, MessageHeader};
use arrow::record_batch::RecordBatch;

use crate::layout;

/// An IPC stream being read batch by batch from a borrowed buffer.
///
/// This is arrow's `StreamReader` done by hand over a slice, from arrow-ipc's
/// public pieces (message verification, schema conversion, batch decoding).
/// The reasons: size, as `StreamReader` concatenates delta dictionaries with
/// `arrow_select::concat`, which links arrow-select's kernels for every type
/// (about 420 KB of the .wasm's 1.3 MB; deltas are appended here with
/// arrow-data's much smaller `MutableArrayData`); and safety, as the headers
/// are checked first (module `layout`) where arrow-ipc would panic.
///
/// Invariants: `rest` is the unread tail of the stream, at a message
/// boundary between calls; `dictionaries` holds every dictionary (by id)
/// read so far, deltas applied; once [`Input::next_batch`] returned
/// `Ok(None)` the stream ended at its end-of-stream marker or at the end of
/// the bytes, with nothing after it.
pub struct Input<'a> {
    /// The whole stream; message bodies are zero-copy slices of it.
    stream: &'a Buffer,
    rest: &'a [u8],
    schema: SchemaRef,
    dictionaries: HashMap<i64, ArrayRef>,
    /// Prefix of every error message, e.g. "data stream".
    what: &'static str,
}

/// Marks a message length in the current IPC format (arrow-ipc keeps its
/// own copy private).
const CONTINUATION_MARKER: [u8; 4] = [0xff; 4];

/// One framed message: its verified flatbuffer header and its body (a
/// slice of the stream's buffer).
struct Frame<'a> {
    message: arrow::ipc::Message<'a>,
    body: Buffer,
}

impl<'a> Input<'a> {
    /// Opens a stream: reads and decodes its schema message.
    pub fn open(stream: &'a Buffer, what: &'static str) -> Result<Self, String> {
        let mut rest = stream.as_slice();
        let error = |e: String| format!("{what}: {e}");
        let frame = next_frame(stream, &mut rest)
            .map_err(error)?
            .ok_or_else(|| error("empty stream, expected a schema message".to_string()))?;
        let schema = frame
            .message
            .header_as_schema()
            .ok_or_else(|| {
                error(format!(
                    "expected a schema as the first message, got {:?}",
                    frame.message.header_type()
                ))
            })
            .and_then(|fb| try_fb_to_schema(fb).map_err(|e| error(e.to_string())))?;
        let fields: Vec<&Field> = schema.fields().iter().map(|f| f.as_ref()).collect();
        layout::check_schema(&fields).map_err(error)?;
        Ok(Input {
            stream,
            rest,
            schema: Arc::new(schema),
            dictionaries: HashMap::new(),
            what,
        })
    }

    /// Opens the data stream of a call, `None` if the call has no data.
    pub fn data(bytes: Option<&'a Buffer>) -> Result<Option<Self>, String> {
        bytes.map(|b| Self::open(b, "data stream")).transpose()
    }

    /// The stream's schema.
    pub fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    /// The next batch, `None` at the end of the stream.
    pub fn next_batch(&mut self) -> Result<Option<RecordBatch>, String> {
        self.next_batch_inner()
            .map_err(|e| format!("{}: {e}", self.what))
    }

    fn next_batch_inner(&mut self) -> Result<Option<RecordBatch>, String> {
        loop {
            let Some(frame) = next_frame(self.stream, &mut self.rest)? else {
                // Bytes after the end-of-stream marker would be silently
                // dropped data (e.g. two streams concatenated): refuse them.
                return match self.rest.len() {
                    0 => Ok(None),
                    n => Err(format!(
                        "{n} unexpected bytes after the end-of-stream marker"
                    )),
                };
            };
            let Frame { message, body } = frame;
            let version = message.version();
            match message.header_type() {
                MessageHeader::RecordBatch => {
                    let batch = message
                        .header_as_record_batch()
                        .ok_or("record batch message without its header")?;
                    let fields: Vec<&Field> =
                        self.schema.fields().iter().map(|f| f.as_ref()).collect();
                    layout::check(&batch, &body, &fields, version)?;
                    let batch = read_record_batch(
                        &body,
                        batch,
                        Arc::clone(&self.schema),
                        &self.dictionaries,
                        None,
                        &version,
                    )
                    .map_err(|e| e.to_string())?;
                    return Ok(Some(batch));
                }
                MessageHeader::DictionaryBatch => {
                    let dictionary = message
                        .header_as_dictionary_batch()
                        .ok_or("dictionary batch message without its header")?;
                    self.read_dictionary(dictionary, &body, &version)?;
                }
                // An empty message carries nothing; arrow's reader skips it too.
                MessageHeader::NONE => {}
                MessageHeader::Schema => return Err("a second schema message".to_string()),
                other => return Err(format!("unsupported message type {other:?}")),
            }
        }
    }

    /// Decodes a dictionary batch into `self.dictionaries`, appending deltas.
    fn read_dictionary(
        &mut self,
        dictionary: arrow::ipc::DictionaryBatch,
        body: &Buffer,
        version: &arrow::ipc::MetadataVersion,
    ) -> Result<(), String> {
        let id = dictionary.id();
        // The ipc schema ties dictionaries to fields by id; arrow keeps it on
        // the fields it decoded, the only way to learn the values' type.
        #[allow(deprecated)]
        let fields = self.schema.fields_with_dict_id(id);
        let value_type = match fields.first().map(|f| f.data_type()) {
            Some(DataType::Dictionary(_, value_type)) => value_type.as_ref().clone(),
            _ => return Err(format!("dictionary id {id} not found in the schema")),
        };
        let data = dictionary
            .data()
            .ok_or_else(|| format!("dictionary {id} is missing its data"))?;
        let values_field = Field::new("", value_type, true);
        layout::check(&data, body, &[&values_field], *version)
            .map_err(|e| format!("dictionary {id}: {e}"))?;
        let values_schema = Arc::new(Schema::new(vec![values_field]));
        let values =
            read_record_batch(body, data, values_schema, &self.dictionaries, None, version)
                .map_err(|e| format!("dictionary {id}: {e}"))?;
        let values = Arc::clone(values.column(0));
        let values = if dictionary.isDelta() {
            let existing = self
                .dictionaries
                .get(&id)
                .ok_or_else(|| format!("delta for dictionary {id}, which was never sent"))?;
            append(existing, &values).map_err(|e| format!("dictionary {id} delta: {e}"))?
        } else {
            values
        };
        self.dictionaries.insert(id, values);
        Ok(())
    }
}

/// Reads the next message frame from `rest` (the unread tail of `stream`)
/// and advances past it; `None` at the end-of-stream marker or at the end
/// of the bytes.
///
/// Frames are `[0xFFFFFFFF] len:i32le flatbuffer[len] body[bodyLength]`; the
/// continuation marker is optional (the pre-1.0 format has none).
fn next_frame<'a>(stream: &Buffer, rest: &mut &'a [u8]) -> Result<Option<Frame<'a>>, String> {
    if rest.is_empty() {
        return Ok(None);
    }
    let mut len = take(rest, 4, "message length")?;
    if len == CONTINUATION_MARKER {
        len = take(rest, 4, "message length")?;
    }
    // `take` returned exactly 4 bytes.
    let len = i32::from_le_bytes([len[0], len[1], len[2], len[3]]);
    if len == 0 {
        return Ok(None);
    }
    let len = usize::try_from(len).map_err(|_| format!("invalid message length {len}"))?;
    let header = take(rest, len, "message header")?;
    let message = root_as_message(header).map_err(|e| format!("invalid message header: {e}"))?;
    let body_len = usize::try_from(message.bodyLength())
        .map_err(|_| format!("invalid message body length {}", message.bodyLength()))?;
    let body = take(rest, body_len, "message body")?;
    // `body` lies inside `stream` (`rest` is always a tail of it), so the
    // offset is in range and the slice shares the stream's memory.
    let offset = body.as_ptr() as usize - stream.as_ptr() as usize;
    let body = stream.slice_with_length(offset, body_len);
    Ok(Some(Frame { message, body }))
}

/// Splits `n` bytes off the front of `rest`, or fails naming the `part`.
fn take<'a>(rest: &mut &'a [u8], n: usize, part: &str) -> Result<&'a [u8], String> {
    if rest.len() < n {
        return Err(format!(
            "truncated stream: {part} needs {n} bytes, {} left",
            rest.len()
        ));
    }
    let (head, tail) = rest.split_at(n);
    *rest = tail;
    Ok(head)
}

/// `a` followed by `b` (same type), as one array.
fn append(a: &ArrayRef, b: &ArrayRef) -> Result<ArrayRef, ArrowError> {
    if a.data_type() != b.data_type() {
        return Err(ArrowError::InvalidArgumentError(format!(
            "values of type {} cannot extend {}",
            b.data_type(),
            a.data_type()
        )));
    }
    let (a, b) = (a.to_data(), b.to_data());
    let mut out = arrow::array::MutableArrayData::try_new(vec![&a, &b], false, a.len() + b.len())?;
    out.try_extend(0, 0, a.len())?;
    out.try_extend(1, 0, b.len())?;
    Ok(make_array(out.freeze()))
}

/// An IPC stream being written (64-byte aligned, arrow's default).
///
/// Encoded messages are kept as the encoder's parts (headers, padding and
/// zero-copy slices of the batches' buffers) until [`Output::finish`] copies
/// them once into a `Vec` of the exact total size: no growth, no second copy.
pub struct Output {
    encoder: StreamEncoder,
    parts: Vec<Buffer>,
    len: usize,
}

impl Output {
    /// Starts a stream with `schema`.
    pub fn new(schema: &Schema) -> Result<Self, String> {
        let encoder = StreamEncoder::try_new(schema).map_err(output_error)?;
        Ok(Output {
            encoder,
            parts: Vec::new(),
            len: 0,
        })
    }

    /// Appends a batch; its schema must be the stream's.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), String> {
        let parts = self.encoder.encode(batch).map_err(output_error)?;
        self.len += parts.iter().map(|p| p.len()).sum::<usize>();
        self.parts.extend(parts);
        Ok(())
    }

    /// Ends the stream and returns its bytes.
    pub fn finish(self) -> Result<Vec<u8>, String> {
        let Output {
            encoder,
            parts,
            len,
        } = self;
        let tail = encoder.finish().map_err(output_error)?;
        let len = len + tail.iter().map(|p| p.len()).sum::<usize>();
        let mut out = Vec::new();
        out.try_reserve_exact(len)
            .map_err(|_| format!("output stream: no memory for {len} bytes"))?;
        for part in parts.iter().chain(&tail) {
            out.extend_from_slice(part);
        }
        Ok(out)
    }
}

fn output_error(e: ArrowError) -> String {
    format!("output stream: {e}")
}

// Uses the crate's test helpers, which call the core ABI.
#[cfg(all(test, feature = "core-abi"))]
pub(crate) mod tests {
    use super::*;
    use arrow::array::{DictionaryArray, Int32Array, ListArray, StringArray, StructArray};
    use arrow::datatypes::{Int8Type, UInt16Type};
    use arrow::ipc::reader::StreamReader;
    use arrow::ipc::writer::StreamWriter;
    use arrow::ipc::writer::{DictionaryHandling, IpcWriteOptions};
    use arrow::ipc::MetadataVersion;

    /// A batch with a top-level dictionary whose values grow from batch to
    /// batch (so the delta writer sends deltas), and a dictionary nested in
    /// a list and in a struct.
    fn batches() -> (SchemaRef, Vec<RecordBatch>) {
        let dict = |values: &[&str], keys: &[i8]| -> ArrayRef {
            let values = Arc::new(StringArray::from(values.to_vec()));
            Arc::new(DictionaryArray::<Int8Type>::try_new(keys.to_vec().into(), values).unwrap())
        };
        let nested = |keys: Vec<u16>, offsets: Vec<i32>| -> (ArrayRef, ArrayRef) {
            let values = Arc::new(StringArray::from(vec!["x", "y", "z"]));
            let d = DictionaryArray::<UInt16Type>::try_new(keys.into(), values).unwrap();
            let field = Arc::new(Field::new("item", d.data_type().clone(), true));
            let list = ListArray::new(
                field,
                arrow::buffer::OffsetBuffer::new(offsets.into()),
                Arc::new(d.clone()),
                None,
            );
            let inner = Arc::new(Field::new("d", d.data_type().clone(), true));
            let s = StructArray::new(vec![inner].into(), vec![Arc::new(d)], None);
            (Arc::new(list), Arc::new(s))
        };
        let (l1, s1) = nested(vec![0, 1], vec![0, 1, 2]);
        let (l2, s2) = nested(vec![2, 2, 0], vec![0, 0, 3, 3]);
        let schema = Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int32, true),
            Field::new(
                "d",
                DataType::Dictionary(Box::new(DataType::Int8), Box::new(DataType::Utf8)),
                false,
            ),
            Field::new("l", l1.data_type().clone(), true),
            Field::new("s", s1.data_type().clone(), true),
        ]));
        let b1 = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int32Array::from(vec![Some(1), None])),
                dict(&["a", "b"], &[0, 1]),
                l1,
                s1.slice(0, 2),
            ],
        )
        .unwrap();
        let b2 = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int32Array::from(vec![3, 4, 5])),
                dict(&["a", "b", "c"], &[2, 0, 2]),
                l2,
                s2,
            ],
        )
        .unwrap();
        (schema, vec![b1, b2])
    }

    /// One batch with a column of (nearly) every type arrow-ipc writes, so
    /// the header checks in `layout` meet every buffer layout.
    pub(crate) fn wide() -> (SchemaRef, Vec<RecordBatch>) {
        use arrow::array::*;
        use arrow::buffer::ScalarBuffer;
        use arrow::datatypes::*;
        let int32s = |v: Vec<i32>| Arc::new(Int32Array::from(v)) as ArrayRef;
        let item = |t: DataType| Arc::new(Field::new("item", t, true));
        let mut map = MapBuilder::new(None, StringBuilder::new(), Int32Builder::new());
        for (k, v) in [("a", 1), ("b", 2)] {
            map.keys().append_value(k);
            map.values().append_value(v);
            map.append(true).unwrap();
        }
        map.append(false).unwrap();
        let union_fields = UnionFields::try_new(
            [0, 1],
            [
                Field::new("i", DataType::Int32, true),
                Field::new("s", DataType::Utf8, true),
            ],
        )
        .unwrap();
        let sparse = UnionArray::try_new(
            union_fields.clone(),
            ScalarBuffer::from(vec![0i8, 1, 0]),
            None,
            vec![
                int32s(vec![1, 2, 3]),
                Arc::new(StringArray::from(vec!["x", "y", "z"])),
            ],
        )
        .unwrap();
        let dense = UnionArray::try_new(
            union_fields,
            ScalarBuffer::from(vec![1i8, 0, 1]),
            Some(ScalarBuffer::from(vec![0, 0, 1])),
            vec![int32s(vec![7]), Arc::new(StringArray::from(vec!["p", "q"]))],
        )
        .unwrap();
        let columns: Vec<(&str, ArrayRef)> = vec![
            ("null", Arc::new(NullArray::new(3))),
            (
                "bool",
                Arc::new(BooleanArray::from(vec![Some(true), None, Some(false)])),
            ),
            ("i16", Arc::new(Int16Array::from(vec![1, -2, 3]))),
            (
                "f32",
                Arc::new(Float32Array::from(vec![1.5, f32::NAN, 0.0])),
            ),
            (
                "dec",
                Arc::new(
                    Decimal128Array::from(vec![Some(1), None, Some(-3)])
                        .with_precision_and_scale(10, 2)
                        .unwrap(),
                ),
            ),
            ("date", Arc::new(Date32Array::from(vec![1, 2, 3]))),
            (
                "ts",
                Arc::new(TimestampMillisecondArray::from(vec![1, 2, 3]).with_timezone("UTC")),
            ),
            (
                "ls",
                Arc::new(LargeStringArray::from(vec!["a", "bb", "ccc"])),
            ),
            (
                "bin",
                Arc::new(BinaryArray::from_vec(vec![b"a", b"", b"cc"])),
            ),
            (
                "lbin",
                Arc::new(LargeBinaryArray::from_vec(vec![b"a", b"b", b"c"])),
            ),
            (
                "fsb",
                Arc::new(
                    FixedSizeBinaryArray::try_from_iter([b"abc", b"def", b"ghi"].into_iter())
                        .unwrap(),
                ),
            ),
            (
                "sv",
                Arc::new(StringViewArray::from_iter([
                    Some("short"),
                    None,
                    Some("a string longer than twelve bytes"),
                ])),
            ),
            (
                "bv",
                Arc::new(BinaryViewArray::from_iter_values([
                    b"x".as_slice(),
                    b"a binary value past twelve bytes",
                    b"",
                ])),
            ),
            (
                "llist",
                Arc::new(LargeListArray::from_iter_primitive::<Int32Type, _, _>(
                    vec![Some(vec![Some(1)]), None, Some(vec![Some(2), Some(3)])],
                )),
            ),
            (
                "fsl",
                Arc::new(FixedSizeListArray::from_iter_primitive::<Int16Type, _, _>(
                    vec![
                        Some(vec![Some(1), Some(2)]),
                        None,
                        Some(vec![Some(3), None]),
                    ],
                    2,
                )),
            ),
            ("map", Arc::new(map.finish())),
            (
                "lview",
                Arc::new(ListViewArray::new(
                    item(DataType::Int32),
                    ScalarBuffer::from(vec![0, 1, 0]),
                    ScalarBuffer::from(vec![1, 2, 3]),
                    int32s(vec![4, 5, 6]),
                    None,
                )),
            ),
            ("sparse", Arc::new(sparse)),
            ("dense", Arc::new(dense)),
            (
                "ree",
                Arc::new(
                    RunArray::<Int32Type>::try_new(
                        &Int32Array::from(vec![2, 3]),
                        &StringArray::from(vec!["r", "s"]),
                    )
                    .unwrap(),
                ),
            ),
            (
                "dict",
                Arc::new(
                    DictionaryArray::<UInt8Type>::try_new(
                        UInt8Array::from(vec![1, 0, 1]),
                        Arc::new(LargeStringArray::from(vec!["u", "v"])),
                    )
                    .unwrap(),
                ),
            ),
        ];
        let schema = Arc::new(Schema::new(
            columns
                .iter()
                .map(|(name, a)| Field::new(*name, a.data_type().clone(), true))
                .collect::<Vec<_>>(),
        ));
        let batch = RecordBatch::try_new(
            schema.clone(),
            columns.into_iter().map(|(_, a)| a).collect(),
        )
        .unwrap();
        (schema, vec![batch.slice(1, 2), batch])
    }

    fn write(schema: &Schema, batches: &[RecordBatch], options: IpcWriteOptions) -> Vec<u8> {
        let mut w = StreamWriter::try_new_with_options(Vec::new(), schema, options).unwrap();
        for b in batches {
            w.write(b).unwrap();
        }
        w.finish().unwrap();
        w.into_inner().unwrap()
    }

    fn ours(bytes: &[u8]) -> Result<(SchemaRef, Vec<RecordBatch>), String> {
        let stream = Buffer::from(bytes);
        let mut input = Input::open(&stream, "test")?;
        let mut out = Vec::new();
        while let Some(b) = input.next_batch()? {
            out.push(b);
        }
        Ok((input.schema(), out))
    }

    fn arrows(bytes: &[u8]) -> (SchemaRef, Vec<RecordBatch>) {
        let r = StreamReader::try_new(bytes, None).unwrap();
        let schema = r.schema();
        (schema, r.map(Result::unwrap).collect())
    }

    #[test]
    fn reads_what_arrows_stream_reader_reads() {
        let (schema, batches) = batches();
        let delta = IpcWriteOptions::default().with_dictionary_handling(DictionaryHandling::Delta);
        let legacy = IpcWriteOptions::try_new(8, true, MetadataVersion::V4).unwrap();
        let (wide_schema, wide_batches) = wide();
        let align8 = IpcWriteOptions::try_new(8, false, MetadataVersion::V5).unwrap();
        for (name, bytes) in [
            (
                "wide",
                write(&wide_schema, &wide_batches, IpcWriteOptions::default()),
            ),
            (
                "wide, 8-byte alignment",
                write(&wide_schema, &wide_batches, align8),
            ),
            (
                "default",
                write(&schema, &batches, IpcWriteOptions::default()),
            ),
            ("delta dictionaries", write(&schema, &batches, delta)),
            ("legacy framing", write(&schema, &batches, legacy)),
            (
                "no batches",
                write(&schema, &[], IpcWriteOptions::default()),
            ),
        ] {
            let (our_schema, our_batches) = ours(&bytes).unwrap();
            let (arrow_schema, arrow_batches) = arrows(&bytes);
            assert_eq!(our_schema, arrow_schema, "{name}");
            assert_eq!(our_batches, arrow_batches, "{name}");
            if name.starts_with("wide") {
                assert_eq!(our_batches, wide_batches, "{name}");
            } else if name != "no batches" {
                assert_eq!(our_batches, batches, "{name}");
            }
        }
    }

    #[test]
    fn delta_dictionaries_are_really_sent_and_appended() {
        let (schema, batches) = batches();
        let delta = IpcWriteOptions::default().with_dictionary_handling(DictionaryHandling::Delta);
        let bytes = write(&schema, &batches, delta);
        // The second top-level dictionary message must carry isDelta.
        let stream = Buffer::from(&bytes[..]);
        let mut rest = stream.as_slice();
        let mut deltas = 0;
        while let Some(frame) = next_frame(&stream, &mut rest).unwrap() {
            if let Some(d) = frame.message.header_as_dictionary_batch() {
                deltas += usize::from(d.isDelta());
            }
        }
        assert!(deltas >= 1, "the writer sent no delta");
        let (_, got) = ours(&bytes).unwrap();
        assert_eq!(got, batches);
    }

    #[test]
    fn framing_errors_and_the_missing_end_marker() {
        let (schema, batches) = batches();
        let bytes = write(&schema, &batches, IpcWriteOptions::default());
        // Without the 8-byte end-of-stream marker the stream still reads.
        let (_, got) = ours(&bytes[..bytes.len() - 8]).unwrap();
        assert_eq!(got, batches);
        let mut trailing = bytes.clone();
        trailing.extend_from_slice(&[1, 2, 3]);
        let err = ours(&trailing).unwrap_err();
        assert_eq!(
            err,
            "test: 3 unexpected bytes after the end-of-stream marker"
        );
        let err = ours(&bytes[..bytes.len() - 10]).unwrap_err();
        assert!(
            err.starts_with("test: truncated stream: message body"),
            "{err}"
        );
        let err = ours(&[]).unwrap_err();
        assert!(err.contains("empty stream"), "{err}");
    }

    /// Every prefix and many single-byte corruptions of valid streams are
    /// read without panicking, and nothing arrow's reader accepts is refused
    /// except by the deliberately stricter rules (bytes after the end marker,
    /// negative or > i32::MAX lengths, null counts above the length).
    #[test]
    fn damaged_streams_do_not_panic() {
        // Caught panics (arrow's own reader panics on some of these inputs)
        // go through the guest's panic hook if installed: keep them away
        // from tests reading the last error, and clear the message after.
        let _serial = crate::tests::serial();
        let (schema, batches) = batches();
        let delta = IpcWriteOptions::default().with_dictionary_handling(DictionaryHandling::Delta);
        let (wide_schema, wide_batches) = wide();
        let align8 = IpcWriteOptions::try_new(8, false, MetadataVersion::V5).unwrap();
        let mut panics = Vec::new();
        let mut refused = Vec::new();
        for (name, bytes) in [
            ("dictionaries", write(&schema, &batches, delta)),
            (
                "wide",
                write(&wide_schema, &wide_batches, IpcWriteOptions::default()),
            ),
            (
                "wide, 8-byte alignment",
                write(&wide_schema, &wide_batches, align8),
            ),
        ] {
            let mut check = |what: String, data: &[u8], compare: bool| {
                let got = std::panic::catch_unwind(|| ours(data));
                match got {
                    Err(_) => panics.push(format!("{name}: {what}")),
                    // Deliberately stricter than arrow: see `layout::check`
                    // and `Input::next_batch`.
                    Ok(Err(e))
                        if e.contains("invalid array length")
                            || e.contains("after the end-of-stream marker") => {}
                    Ok(Err(e)) if compare => {
                        let accepted = std::panic::catch_unwind(|| {
                            StreamReader::try_new(data, None)
                                .map(|r| r.collect::<Result<Vec<_>, _>>().is_ok())
                                .unwrap_or(false)
                        });
                        if accepted.unwrap_or(false) {
                            refused.push(format!("{name}: {what}: {e}"));
                        }
                    }
                    Ok(_) => {}
                }
            };
            for cut in 0..bytes.len() {
                check(format!("prefix {cut}"), &bytes[..cut], false);
            }
            // The last 8 bytes are the end-of-stream marker, which this
            // reader treats more strictly than arrow's.
            for i in 0..bytes.len() {
                for flip in [0x01, 0x02, 0x80, 0xff] {
                    let mut damaged = bytes.clone();
                    damaged[i] ^= flip;
                    check(
                        format!("byte {i} ^ {flip:#x}"),
                        &damaged,
                        i < bytes.len() - 8,
                    );
                }
            }
        }
        crate::tests::take_pair(wasm_abi::guest::last_error());
        assert!(panics.is_empty(), "{} panics: {panics:?}", panics.len());
        assert!(refused.is_empty(), "{} refused: {refused:?}", refused.len());
    }
}
