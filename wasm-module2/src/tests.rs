//! Every command through the real export, natively.
//!
//! The registry, last error and `count` totals are process-wide, so each
//! test holds [`serial`] for its whole run.

use std::sync::{Arc, Mutex, MutexGuard};

use arrow::array::{
    Array, ArrayRef, AsArray, DictionaryArray, Float64Array, Int64Array, ListArray, StringArray,
    StructArray, TimestampSecondArray, UInt64Array,
};
use arrow::datatypes::{DataType, Field, Fields, Int32Type, Schema, SchemaRef, UInt32Type};
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use arrow::record_batch::RecordBatch;
use wasm_abi::{guest, Pair};

use super::*;

/// Serialises the tests that touch process-wide state (registry counts,
/// last error, panic message, `count` totals), including any test whose
/// caught panics go through the guest's panic hook.
pub(crate) fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Copies `bytes` into a fresh area, as the host does.
fn put(bytes: &[u8]) -> i32 {
    let p = guest::allocate(bytes.len() as i32);
    let area = unsafe { guest::area_mut(p) }.unwrap();
    area[..bytes.len()].copy_from_slice(bytes);
    p
}

/// Reads and frees a pair and its payload.
pub(crate) fn take_pair(pair_ptr: i32) -> Vec<u8> {
    assert_eq!(guest::area_len(pair_ptr), Some(Pair::SIZE));
    let pair = unsafe { guest::input(pair_ptr, Pair::SIZE as i32) }.unwrap();
    let pair = Pair::from_bytes(pair.try_into().unwrap());
    let payload = unsafe { guest::input(pair.ptr as i32, pair.len as i32) }
        .unwrap()
        .to_vec();
    assert_eq!(guest::deallocate(pair.ptr as i32), 0);
    assert_eq!(guest::deallocate(pair_ptr), 0);
    payload
}

/// Calls the export like the host: `Ok(payload)` or `Err(last error)`.
/// Empty `data` is passed as `(0, 0)`. Checks that nothing leaks.
fn call(meta: &[u8], data: &[u8]) -> Result<Vec<u8>, String> {
    let live = guest::live_areas();
    let meta_ptr = put(meta);
    let data_ptr = if data.is_empty() { 0 } else { put(data) };
    let result =
        wasm_memory_process_data_arrow(meta_ptr, meta.len() as i32, data_ptr, data.len() as i32);
    let out = if result == 0 {
        Err(String::from_utf8(take_pair(guest::last_error())).unwrap())
    } else {
        Ok(take_pair(result))
    };
    guest::deallocate(meta_ptr);
    if data_ptr != 0 {
        guest::deallocate(data_ptr);
    }
    assert_eq!(guest::live_areas(), live, "the call leaked areas");
    out
}

fn stream(schema: &SchemaRef, batches: &[RecordBatch]) -> Vec<u8> {
    let mut w = StreamWriter::try_new(Vec::new(), schema).unwrap();
    for b in batches {
        w.write(b).unwrap();
    }
    w.finish().unwrap();
    w.into_inner().unwrap()
}

fn read(bytes: &[u8]) -> (SchemaRef, Vec<RecordBatch>) {
    let r = StreamReader::try_new(bytes, None).unwrap();
    let schema = r.schema();
    (schema, r.map(Result::unwrap).collect())
}

/// A metadata stream: `command` and a `config` struct of utf8 fields.
fn meta(command: &str, config: &[(&str, &str)]) -> Vec<u8> {
    let fields: Vec<Field> = config
        .iter()
        .map(|(k, _)| Field::new(*k, DataType::Utf8, true))
        .collect();
    let values: Vec<ArrayRef> = config
        .iter()
        .map(|(_, v)| Arc::new(StringArray::from(vec![*v])) as ArrayRef)
        .collect();
    let config = if fields.is_empty() {
        StructArray::new_empty_fields(1, None)
    } else {
        StructArray::new(Fields::from(fields), values, None)
    };
    let schema = Arc::new(Schema::new(vec![
        Field::new("command", DataType::Utf8, false),
        Field::new("config", config.data_type().clone(), false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![Arc::new(StringArray::from(vec![command])), Arc::new(config)],
    )
    .unwrap();
    stream(&schema, &[batch])
}

fn flush_meta(command: &str) -> Vec<u8> {
    meta(command, &[("flush", "true")])
}

/// `id i64, text utf8` batches.
fn texts(batches: &[&[(i64, Option<&str>)]]) -> (SchemaRef, Vec<u8>) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("text", DataType::Utf8, true),
    ]));
    let batches: Vec<RecordBatch> = batches
        .iter()
        .map(|rows| {
            let ids = Int64Array::from_iter_values(rows.iter().map(|r| r.0));
            let texts: StringArray = rows.iter().map(|r| r.1).collect();
            RecordBatch::try_new(schema.clone(), vec![Arc::new(ids), Arc::new(texts)]).unwrap()
        })
        .collect();
    let bytes = stream(&schema, &batches);
    (schema, bytes)
}

#[test]
fn test_command_appends_2_to_the_studys_row() {
    let _g = serial();
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::UInt64, false),
        Field::new("content", DataType::Utf8, false),
        Field::new("title", DataType::Utf8, false),
        Field::new(
            "date",
            DataType::Timestamp(arrow::datatypes::TimeUnit::Second, Some("+00:00".into())),
            false,
        ),
        Field::new("score", DataType::Float64, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(UInt64Array::from(vec![1])),
            Arc::new(StringArray::from(vec!["this is a test"])),
            Arc::new(StringArray::from(vec!["test"])),
            Arc::new(TimestampSecondArray::from(vec![1_641_038_400]).with_timezone("+00:00")),
            Arc::new(Float64Array::from(vec![1.123456])),
        ],
    )
    .unwrap();
    let data = stream(&schema, &[batch]);
    let out = call(&meta("test", &[("filename", "study.arrow")]), &data).unwrap();
    let (out_schema, batches) = read(&out);
    assert_eq!(out_schema.fields().len(), 2);
    assert_eq!(out_schema.field(0).name(), "id");
    assert_eq!(out_schema.field(1).data_type(), &DataType::Utf8);
    assert_eq!(batches.len(), 1);
    let ids = batches[0]
        .column(0)
        .as_primitive::<arrow::datatypes::UInt64Type>();
    assert_eq!(ids.values().as_ref(), &[1]);
    assert_eq!(
        batches[0].column(1).as_string::<i32>().value(0),
        "this is a test2"
    );

    let err = call(&meta("test", &[]), &data).unwrap_err();
    assert_eq!(err, "config key 'filename' is missing");
    let (_, other) = texts(&[&[(1, Some("x"))]]);
    let err = call(&meta("test", &[("filename", "f")]), &other).unwrap_err();
    assert!(err.contains("data has 2 columns, expected 5"), "{err}");
}

#[test]
fn test_command_names_the_mismatching_column() {
    let _g = serial();
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::UInt64, false),
        Field::new("content", DataType::Utf8, false),
        Field::new("title", DataType::Utf8, false),
        Field::new("date", DataType::Utf8, false),
        Field::new("score", DataType::Float64, false),
    ]));
    let err = call(&meta("test", &[("filename", "f")]), &stream(&schema, &[])).unwrap_err();
    assert!(err.contains("data column 3 is 'date' Utf8"), "{err}");
}

#[test]
fn echo_returns_dictionaries_nested_types_and_metadata_unchanged() {
    let _g = serial();
    let dict: DictionaryArray<Int32Type> = vec!["a", "b", "a", "c"].into_iter().collect();
    let list = ListArray::from_iter_primitive::<UInt32Type, _, _>(vec![
        Some(vec![Some(1), None]),
        None,
        Some(vec![]),
        Some(vec![Some(7)]),
    ]);
    let inner = StructArray::from(vec![
        (
            Arc::new(Field::new("x", DataType::Int64, true)),
            Arc::new(Int64Array::from(vec![Some(1), None, Some(3), Some(4)])) as ArrayRef,
        ),
        (
            Arc::new(Field::new("y", DataType::Utf8, true)),
            Arc::new(StringArray::from(vec!["p", "q", "r", "s"])) as ArrayRef,
        ),
    ]);
    let schema = Arc::new(
        Schema::new(vec![
            Field::new("d", dict.data_type().clone(), false),
            Field::new("l", list.data_type().clone(), true).with_metadata(
                [("unit".to_string(), "cm".to_string())]
                    .into_iter()
                    .collect::<std::collections::HashMap<_, _>>(),
            ),
            Field::new("s", inner.data_type().clone(), false),
        ])
        .with_metadata(
            [("origin".to_string(), "test".to_string())]
                .into_iter()
                .collect::<std::collections::HashMap<_, _>>(),
        ),
    );
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![Arc::new(dict), Arc::new(list), Arc::new(inner)],
    )
    .unwrap();
    let second = batch.slice(1, 2);
    let out = call(
        &meta("echo", &[]),
        &stream(&schema, &[batch.clone(), second.clone()]),
    )
    .unwrap();
    let (out_schema, batches) = read(&out);
    assert_eq!(out_schema, schema);
    assert_eq!(batches, vec![batch, second]);

    // No batches: the schema alone comes back.
    let out = call(&meta("echo", &[]), &stream(&schema, &[])).unwrap();
    let (out_schema, batches) = read(&out);
    assert_eq!(out_schema, schema);
    assert!(batches.is_empty());
}

#[test]
fn replace_returns_only_changed_rows_counted_across_batches() {
    let _g = serial();
    let (_, data) = texts(&[
        &[(1, Some("a cat")), (2, None), (3, Some("dog"))],
        &[(4, Some("cat cat")), (5, Some("bird"))],
    ]);
    let config = [("column", "text"), ("from", "cat"), ("to", "lion")];
    let out = call(&meta("replace", &config), &data).unwrap();
    let (schema, batches) = read(&out);
    assert_eq!(schema.field(0).name(), "row");
    assert_eq!(schema.field(1).name(), "value");
    assert_eq!(batches.len(), 2, "one delta batch per input batch");
    let mut delta = Vec::new();
    for b in &batches {
        let rows = b.column(0).as_primitive::<arrow::datatypes::UInt64Type>();
        let values = b.column(1).as_string::<i32>();
        for i in 0..b.num_rows() {
            delta.push((rows.value(i), values.value(i).to_string()));
        }
    }
    assert_eq!(
        delta,
        vec![(0, "a lion".to_string()), (3, "lion lion".to_string())]
    );

    // `from` == `to`: values contain it but do not change, so no rows.
    let same = [("column", "text"), ("from", "cat"), ("to", "cat")];
    let (_, batches) = read(&call(&meta("replace", &same), &data).unwrap());
    assert!(batches.iter().all(|b| b.num_rows() == 0));

    let err = call(
        &meta("replace", &[("column", "text"), ("from", "x")]),
        &data,
    )
    .unwrap_err();
    assert_eq!(err, "config key 'to' is missing");
    let empty = [("column", "text"), ("from", ""), ("to", "x")];
    let err = call(&meta("replace", &empty), &data).unwrap_err();
    assert!(err.contains("'from' must not be empty"), "{err}");
    let wrong = [("column", "id"), ("from", "a"), ("to", "b")];
    let err = call(&meta("replace", &wrong), &data).unwrap_err();
    assert!(
        err.contains("column 'id' (config key 'column') must be utf8"),
        "{err}"
    );
    let missing = [("column", "nope"), ("from", "a"), ("to", "b")];
    let err = call(&meta("replace", &missing), &data).unwrap_err();
    assert_eq!(
        err,
        "column 'nope' not found in the data (columns: id, text)"
    );
}

#[test]
fn filter_keeps_matching_rows_per_batch() {
    let _g = serial();
    let (schema, data) = texts(&[
        &[(1, Some("apple pie")), (2, None), (3, Some("Apple"))],
        &[(4, Some("banana"))],
    ]);
    let config = [("column", "text"), ("term", "apple")];
    let (out_schema, batches) = read(&call(&meta("filter", &config), &data).unwrap());
    assert_eq!(out_schema, schema);
    assert_eq!(batches.len(), 2);
    assert_eq!(batches[0].num_rows(), 1);
    assert_eq!(
        batches[0].column(1).as_string::<i32>().value(0),
        "apple pie"
    );
    assert_eq!(batches[1].num_rows(), 0);
}

#[test]
fn tokenize_splits_lowercases_and_numbers_tokens() {
    let _g = serial();
    let (_, data) = texts(&[&[(7, Some("Hello, WORLD hello")), (8, None), (9, Some("--"))]]);
    let out = call(&meta("tokenize", &[("column", "text")]), &data).unwrap();
    let (schema, batches) = read(&out);
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names, ["doc_id", "position", "token"]);
    assert_eq!(batches.len(), 1);
    let b = &batches[0];
    let docs = b.column(0).as_primitive::<arrow::datatypes::UInt64Type>();
    let positions = b.column(1).as_primitive::<UInt32Type>();
    let tokens = b.column(2).as_string::<i32>();
    let got: Vec<(u64, u32, &str)> = (0..b.num_rows())
        .map(|i| (docs.value(i), positions.value(i), tokens.value(i)))
        .collect();
    assert_eq!(got, [(7, 0, "hello"), (7, 1, "world"), (7, 2, "hello")]);

    let (_, negative) = texts(&[&[(-1, Some("x"))]]);
    let err = call(&meta("tokenize", &[("column", "text")]), &negative).unwrap_err();
    assert!(err.contains("column 'id' is negative at row 0"), "{err}");
    let err = call(
        &meta("tokenize", &[("column", "text"), ("id", "text")]),
        &data,
    )
    .unwrap_err();
    assert!(err.contains("must be an integer column"), "{err}");
}

#[test]
fn count_accumulates_until_flush_then_resets() {
    let _g = serial();
    let (_, a) = texts(&[&[(1, Some("a")), (2, Some("b"))], &[(3, None)]]);
    let (_, b) = texts(&[&[(4, Some("d"))]]);
    assert_eq!(call(&meta("count", &[]), &a).unwrap(), Vec::<u8>::new());
    assert_eq!(call(&meta("count", &[]), &b).unwrap(), Vec::<u8>::new());
    let totals = |bytes: &[u8]| {
        let (_, batches) = read(bytes);
        assert_eq!(batches.len(), 1);
        let col = |i: usize| {
            batches[0]
                .column(i)
                .as_primitive::<arrow::datatypes::UInt64Type>()
                .value(0)
        };
        (col(0), col(1), col(2))
    };
    let out = call(&flush_meta("count"), &[]).unwrap();
    assert_eq!(totals(&out), (4, 3, (a.len() + b.len()) as u64));
    let out = call(&flush_meta("count"), &[]).unwrap();
    assert_eq!(totals(&out), (0, 0, 0), "flush resets the totals");
}

#[test]
fn flush_on_stateless_commands_returns_an_empty_payload() {
    let _g = serial();
    for command in ["test", "echo", "replace", "filter", "tokenize"] {
        assert_eq!(
            call(&flush_meta(command), &[]).unwrap(),
            Vec::<u8>::new(),
            "{command}"
        );
    }
    let (_, data) = texts(&[&[(1, Some("a"))]]);
    let err = call(&flush_meta("echo"), &data).unwrap_err();
    assert!(err.contains("flush call carries no data"), "{err}");
}

#[test]
fn unknown_command_and_bad_metadata_are_errors() {
    let _g = serial();
    let err = call(&meta("foo", &[]), &[]).unwrap_err();
    assert_eq!(
        err,
        "unknown command 'foo' (expected one of: test, echo, replace, filter, tokenize, count)"
    );
    let err = call(b"not arrow", &[]).unwrap_err();
    assert!(err.starts_with("metadata stream: "), "{err}");
    let err = call(&meta("echo", &[("flush", "maybe")]), &[]).unwrap_err();
    assert!(err.contains("'flush' must be 'true' or 'false'"), "{err}");

    // No `config` column at all reads as an empty config.
    let schema = Arc::new(Schema::new(vec![Field::new(
        "command",
        DataType::Utf8,
        true,
    )]));
    let only_command = |v: Option<&str>| {
        let batch =
            RecordBatch::try_new(schema.clone(), vec![Arc::new(StringArray::from(vec![v]))])
                .unwrap();
        stream(&schema, &[batch])
    };
    let (_, data) = texts(&[&[(1, Some("a"))]]);
    assert!(call(&only_command(Some("echo")), &data).is_ok());
    let err = call(&only_command(None), &data).unwrap_err();
    assert_eq!(err, "metadata: field 'command' is null");
}

#[test]
fn garbage_data_is_an_error_not_a_panic() {
    let _g = serial();
    let (_, good) = texts(&[&[(1, Some("a")), (2, Some("b"))]]);
    let garbage: Vec<u8> = (0..200u32).map(|i| (i * 37 % 251) as u8).collect();
    let mut huge_length = vec![0xff, 0xff, 0xff, 0xff, 0xf0, 0xff, 0xff, 0x7f];
    huge_length.extend_from_slice(&[1; 16]);
    let truncated = &good[..good.len() - 20];
    let mut trailing = good.clone();
    trailing.extend_from_slice(&good);
    for (name, data) in [
        ("garbage", &garbage[..]),
        ("huge length", &huge_length[..]),
        ("truncated", truncated),
        ("two streams", &trailing[..]),
    ] {
        for command in ["echo", "count", "filter"] {
            let config = [("column", "text"), ("term", "a")];
            let err = call(&meta(command, &config), data).unwrap_err();
            assert!(err.starts_with("data stream: "), "{name}/{command}: {err}");
        }
    }
    // A failed `count` call added nothing.
    let out = call(&flush_meta("count"), &[]).unwrap();
    let (_, batches) = read(&out);
    assert_eq!(batches[0].num_rows(), 1);
    let rows = batches[0]
        .column(0)
        .as_primitive::<arrow::datatypes::UInt64Type>();
    assert_eq!(rows.value(0), 0);
}

#[test]
fn bad_pointers_are_errors() {
    let _g = serial();
    let m = meta("echo", &[]);
    let live = guest::live_areas();
    assert_eq!(wasm_memory_process_data_arrow(12345, 10, 0, 0), 0);
    let err = String::from_utf8(take_pair(guest::last_error())).unwrap();
    assert!(err.contains("metadata (ptr,len)"), "{err}");
    let meta_ptr = put(&m);
    assert_eq!(
        wasm_memory_process_data_arrow(meta_ptr, m.len() as i32, 12345, 10),
        0
    );
    let err = String::from_utf8(take_pair(guest::last_error())).unwrap();
    assert!(err.contains("data (ptr,len)"), "{err}");
    guest::deallocate(meta_ptr);
    assert_eq!(guest::live_areas(), live);
}

#[test]
fn no_data_returns_an_empty_payload_after_checking_config() {
    let _g = serial();
    assert_eq!(call(&meta("echo", &[]), &[]).unwrap(), Vec::<u8>::new());
    let err = call(&meta("filter", &[("column", "text")]), &[]).unwrap_err();
    assert_eq!(err, "config key 'term' is missing");
}

#[test]
fn panic_hook_records_the_message_for_last_error() {
    let _g = serial();
    install_panic_hook();
    let caught = std::panic::catch_unwind(|| panic!("deliberate test panic"));
    assert!(caught.is_err());
    let err = String::from_utf8(take_pair(guest::last_error())).unwrap();
    assert!(err.starts_with("guest panicked: "), "{err}");
    assert!(err.contains("deliberate test panic"), "{err}");
}

mod merge;
