//! Every prefix and many single-byte corruptions of valid IPC streams (a
//! column of most types, dictionaries with deltas, 8-byte alignment) are
//! decoded without a panic, as a guest result and as an input stream.

use std::sync::Arc;

use arrow::array::*;
use arrow::buffer::{Buffer, ScalarBuffer};
use arrow::datatypes::*;
use arrow::ipc::writer::{DictionaryHandling, IpcWriteOptions, StreamWriter};
use arrow::ipc::MetadataVersion;
use wasm_app::formats::{self, Format};
use wasm_app::transport;

fn wide() -> (SchemaRef, Vec<RecordBatch>) {
    let int32s = |v: Vec<i32>| Arc::new(Int32Array::from(v)) as ArrayRef;
    let union_fields = UnionFields::try_new(
        [0, 1],
        [
            Field::new("i", DataType::Int32, true),
            Field::new("s", DataType::Utf8, true),
        ],
    )
    .expect("fields");
    let dense = UnionArray::try_new(
        union_fields.clone(),
        ScalarBuffer::from(vec![1i8, 0, 1]),
        Some(ScalarBuffer::from(vec![0, 0, 1])),
        vec![int32s(vec![7]), Arc::new(StringArray::from(vec!["p", "q"]))],
    )
    .expect("dense");
    let sparse = UnionArray::try_new(
        union_fields,
        ScalarBuffer::from(vec![0i8, 1, 0]),
        None,
        vec![
            int32s(vec![1, 2, 3]),
            Arc::new(StringArray::from(vec!["x", "y", "z"])),
        ],
    )
    .expect("sparse");
    let dict = |keys: Vec<i8>, values: Vec<&str>| -> ArrayRef {
        Arc::new(
            DictionaryArray::<Int8Type>::try_new(
                Int8Array::from(keys),
                Arc::new(StringArray::from(values)),
            )
            .expect("dict"),
        )
    };
    let columns = |d: ArrayRef| -> Vec<(&'static str, ArrayRef)> {
        vec![
            ("null", Arc::new(NullArray::new(3))),
            (
                "bool",
                Arc::new(BooleanArray::from(vec![Some(true), None, Some(false)])),
            ),
            ("i16", Arc::new(Int16Array::from(vec![1, -2, 3]))),
            (
                "dec",
                Arc::new(
                    Decimal128Array::from(vec![Some(1), None, Some(-3)])
                        .with_precision_and_scale(10, 2)
                        .expect("decimal"),
                ),
            ),
            (
                "ls",
                Arc::new(LargeStringArray::from(vec!["a", "bb", "ccc"])),
            ),
            (
                "fsb",
                Arc::new(
                    FixedSizeBinaryArray::try_from_iter([b"abc", b"def", b"ghi"].into_iter())
                        .expect("fsb"),
                ),
            ),
            (
                "list",
                Arc::new(ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
                    Some(vec![Some(1)]),
                    None,
                    Some(vec![Some(2), Some(3)]),
                ])),
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
            ("sparse", Arc::new(sparse.clone())),
            ("dense", Arc::new(dense.clone())),
            (
                "ree",
                Arc::new(
                    RunArray::<Int32Type>::try_new(
                        &Int32Array::from(vec![2, 3]),
                        &StringArray::from(vec!["r", "s"]),
                    )
                    .expect("ree"),
                ),
            ),
            ("dict", d),
        ]
    };
    let first = columns(dict(vec![0, 1, 0], vec!["a", "b"]));
    let schema = Arc::new(Schema::new(
        first
            .iter()
            .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
            .collect::<Vec<_>>(),
    ));
    let batch = |cols: Vec<(&str, ArrayRef)>| {
        RecordBatch::try_new(schema.clone(), cols.into_iter().map(|(_, a)| a).collect())
            .expect("batch")
    };
    let b1 = batch(first);
    let b2 = batch(columns(dict(vec![2, 0, 2], vec!["a", "b", "c"])));
    (schema.clone(), vec![b1, b2])
}

fn write(schema: &Schema, batches: &[RecordBatch], options: IpcWriteOptions) -> Vec<u8> {
    let mut w = StreamWriter::try_new_with_options(Vec::new(), schema, options).expect("writer");
    for b in batches {
        w.write(b).expect("write");
    }
    w.finish().expect("finish");
    w.into_inner().expect("bytes")
}

/// `bytes` read as an input Arrow IPC stream (batches of at most 1 GiB).
fn input(bytes: &[u8]) -> wasm_app::Result<formats::Source> {
    let reader = std::io::Cursor::new(bytes.to_vec());
    formats::from_reader("stream", reader, Some(Format::Arrows), 8192, 1 << 30)
}

/// Decodes `bytes` both ways; `true` if either panicked.
fn panics(bytes: &[u8]) -> bool {
    let bytes = bytes.to_vec();
    std::panic::catch_unwind(move || {
        let _ = transport::decode_stream(Buffer::from(bytes.clone()), 1 << 30);
        if let Ok(r) = input(&bytes) {
            r.for_each(drop);
        }
    })
    .is_err()
}

#[test]
fn damaged_streams_decode_without_panicking() {
    let (schema, batches) = wide();
    let delta = IpcWriteOptions::default().with_dictionary_handling(DictionaryHandling::Delta);
    let align8 = IpcWriteOptions::try_new(8, false, MetadataVersion::V5).expect("options");
    let mut failures = Vec::new();
    for (name, bytes) in [
        ("delta", write(&schema, &batches, delta)),
        ("8-byte alignment", write(&schema, &batches, align8)),
    ] {
        // Intact, the stream decodes to what was written (as a result only
        // 64-byte aligned: 8-byte alignment leaves the decimals misaligned).
        if name == "delta" {
            let t = transport::decode_stream(Buffer::from(bytes.clone()), 1 << 30)
                .expect("valid")
                .expect("a table");
            assert_eq!(t.batches, batches);
        }
        let read: Vec<RecordBatch> = input(&bytes)
            .expect("open")
            .collect::<Result<_, _>>()
            .expect("read");
        assert_eq!(read, batches, "{name}");
        for cut in 0..bytes.len() {
            if panics(&bytes[..cut]) {
                failures.push(format!("{name}: prefix {cut}"));
            }
        }
        for i in 0..bytes.len() {
            for flip in [0x01, 0x80, 0xff] {
                let mut damaged = bytes.clone();
                damaged[i] ^= flip;
                if panics(&damaged) {
                    failures.push(format!("{name}: byte {i} ^ {flip:#x}"));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} panics: {failures:?}",
        failures.len()
    );
}

/// View arrays are refused, as results and as input: N views may all span
/// one large buffer, and validating or writing them costs N times its size,
/// which no byte budget of the message bounds.
#[test]
fn view_types_are_refused() {
    let long = "a string longer than twelve bytes".repeat(1000);
    let views = StringViewArray::from_iter(std::iter::repeat_n(Some(long.as_str()), 64));
    let batch = RecordBatch::try_from_iter([("sv", Arc::new(views) as ArrayRef)]).expect("batch");
    let bytes = write(&batch.schema(), &[batch], IpcWriteOptions::default());
    match transport::decode_stream(Buffer::from(bytes.clone()), 1 << 30) {
        Err(e) => assert!(e.to_string().contains("Utf8View"), "{e}"),
        Ok(_) => panic!("a Utf8View result was accepted"),
    }
    let read = input(&bytes).map(|r| r.collect::<Result<Vec<_>, _>>());
    assert!(!matches!(read, Ok(Ok(_))), "a Utf8View input was accepted");
}
