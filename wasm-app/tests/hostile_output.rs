//! What a guest returns cannot panic, abort or blow up the host.
//!
//! The hostile guest is WAT generated at test time: its Arrow export returns
//! a pair pointing at given bytes in a data segment, whatever it is sent, so
//! any byte string becomes "a guest's result" and goes through the real
//! call path (`Plugin::process`: data call, flush call, decode).

mod common;

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::ipc::writer::{IpcWriteOptions, StreamWriter};
use arrow::ipc::CompressionType;
use wasm_app::transport::{self, Table};
use wasm_app::Limit;
use wasm_app::{Error, Plugin, Policy};

/// A module whose `wasm_memory_process_data_arrow` returns `payload`.
fn guest_returning(payload: &[u8]) -> String {
    const AT: usize = 65536;
    let end = (AT + payload.len()).next_multiple_of(64);
    let pages = end / 65536 + 2;
    let data: String = payload.iter().map(|b| format!("\\{b:02x}")).collect();
    format!(
        r#"(module
  (memory (export "memory") {pages})
{alloc}
  (func (export "wasm_memory_process_data_arrow") (param i32 i32 i32 i32) (result i32)
    (i32.store (i32.const 8) (i32.const {AT}))
    (i32.store (i32.const 12) (i32.const {len}))
    (i32.const 8))
  (data (i32.const {AT}) "{data}"))"#,
        len = payload.len(),
        alloc = common::wat::bump_allocator(end),
    )
}

fn plugin(payload: &[u8], policy: Policy) -> Plugin {
    let wat = guest_returning(payload);
    let module = common::runtime()
        .load_bytes("returns-bytes.wat", wat.as_bytes(), policy)
        .expect("load the generated guest");
    Plugin::new(module)
}

/// What the host makes of `payload` as a guest's result (data and flush
/// call both return it).
fn returned(payload: &[u8], policy: Policy) -> wasm_app::Result<Option<Table>> {
    let input = transport::study_example().expect("input");
    plugin(payload, policy).process_table("echo", &[], &input)
}

fn limited(max_memory: u64, max_output: Option<u64>) -> Policy {
    let mut p = Policy::default();
    p.limits.max_memory = max_memory;
    p.limits.max_output = max_output;
    p
}

fn files(dir: &str, suffix: &str) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(common::arrow_testing().join(dir))
        .expect("test data folder")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    v.sort();
    v
}

/// Whether arrow's own stream decoder (the host's decoder before this
/// fix) panics on `bytes`: the corpus must contain such streams, or the
/// test below could not have failed before.
fn arrow_decoder_panics(bytes: &[u8]) -> bool {
    let bytes = bytes.to_vec();
    std::panic::catch_unwind(move || {
        let mut buf = arrow::buffer::Buffer::from(bytes);
        let mut d = arrow::ipc::reader::StreamDecoder::new();
        while !buf.is_empty() {
            if d.decode(&mut buf).is_err() {
                return;
            }
        }
    })
    .is_err()
}

#[test]
fn every_fuzz_stream_returned_by_a_guest_is_an_error_or_data() {
    let corpus = files("fuzz-ipc-stream", "");
    assert!(corpus.len() >= 50, "fuzz corpus: {}", corpus.len());
    let (mut panicked_arrow, mut ok, mut refused) = (0, 0, 0);
    for f in &corpus {
        let bytes = std::fs::read(f).expect("read");
        // Petabyte-claiming LZ4 buffers would abort arrow's decoder, which
        // no catch_unwind survives: only try streams without compression.
        if !has_compressed_batch(&bytes) && arrow_decoder_panics(&bytes) {
            panicked_arrow += 1;
        }
        match returned(&bytes, Policy::default()) {
            Ok(_) => ok += 1,
            Err(e) => {
                assert!(!format!("{e}").is_empty());
                refused += 1;
            }
        }
    }
    assert!(
        panicked_arrow > 0,
        "no stream of the corpus panics arrow's decoder"
    );
    assert!(refused > 0 && ok + refused == corpus.len());
}

/// Whether any message of a stream carries a compression field (parsed
/// leniently: this is only used to keep arrow's decoder away from aborts).
fn has_compressed_batch(bytes: &[u8]) -> bool {
    let mut rest = bytes;
    while rest.len() >= 8 {
        let mut len = i32::from_le_bytes(rest[..4].try_into().expect("4 bytes"));
        let mut skip = 4;
        if len == -1 {
            len = i32::from_le_bytes(rest[4..8].try_into().expect("4 bytes"));
            skip = 8;
        }
        let Ok(len) = usize::try_from(len) else {
            return false;
        };
        let Some(header) = rest.get(skip..skip + len) else {
            return false;
        };
        let Ok(m) = arrow::ipc::root_as_message(header) else {
            return false;
        };
        let compressed = m
            .header_as_record_batch()
            .is_some_and(|b| b.compression().is_some())
            || m.header_as_dictionary_batch()
                .and_then(|d| d.data())
                .is_some_and(|b| b.compression().is_some());
        if compressed {
            return true;
        }
        let body = usize::try_from(m.bodyLength()).unwrap_or(usize::MAX);
        match rest.get(skip + len + body..) {
            Some(r) => rest = r,
            None => return false,
        }
    }
    false
}

#[test]
fn every_golden_stream_returned_by_a_guest_decodes_as_arrow_reads_it() {
    let goldens = files("integration-1.0.0-littleendian", ".stream");
    assert!(goldens.len() > 10);
    let mut decoded = 0;
    for f in &goldens {
        let bytes = std::fs::read(f).expect("read");
        let want: Vec<RecordBatch> = arrow::ipc::reader::StreamReader::try_new(&bytes[..], None)
            .expect("golden")
            .collect::<Result<_, _>>()
            .expect("golden batches");
        match returned(&bytes, Policy::default()) {
            Ok(Some(t)) => {
                // Data call and flush call each returned the stream.
                assert_eq!(t.batches.len(), 2 * want.len(), "{}", f.display());
                assert_eq!(&t.batches[..want.len()], &want[..], "{}", f.display());
                decoded += 1;
            }
            Ok(None) => panic!("{}: no result", f.display()),
            // These streams are 8-byte aligned: a 16-byte type may lie
            // misaligned, which the host refuses rather than copies.
            Err(e) => assert!(
                format!("{e:#}").contains("Misaligned"),
                "{}: {e:#}",
                f.display()
            ),
        }
    }
    assert!(
        decoded * 2 > goldens.len(),
        "{decoded} of {}",
        goldens.len()
    );
}

/// One Int64 column of `rows` zeros, as a stream compressed with `codec`,
/// with the first compressed buffer's length prefix replaced by `claim`.
fn compressed_stream(codec: CompressionType, rows: usize, claim: Option<i64>) -> Vec<u8> {
    let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![Arc::new(Int64Array::from(vec![0i64; rows])) as ArrayRef],
    )
    .expect("batch");
    let options = IpcWriteOptions::default()
        .try_with_compression(Some(codec))
        .expect("compression");
    let mut w = StreamWriter::try_new_with_options(Vec::new(), &schema, options).expect("writer");
    w.write(&batch).expect("write");
    w.finish().expect("finish");
    let mut bytes = w.into_inner().expect("bytes");
    if let Some(claim) = claim {
        let (body_at, buffers) = batch_layout(&bytes);
        let (offset, len) = *buffers.iter().find(|(_, l)| *l > 0).expect("a buffer");
        assert!(len >= 8);
        let at = body_at + offset;
        bytes[at..at + 8].copy_from_slice(&claim.to_le_bytes());
    }
    bytes
}

/// Where the first record batch's body starts in `stream`, and its buffers
/// (offset, length).
fn batch_layout(stream: &[u8]) -> (usize, Vec<(usize, usize)>) {
    let mut at = 0;
    loop {
        assert_eq!(&stream[at..at + 4], &[0xff; 4]);
        let len = i32::from_le_bytes(stream[at + 4..at + 8].try_into().expect("4")) as usize;
        let header = &stream[at + 8..at + 8 + len];
        let m = arrow::ipc::root_as_message(header).expect("message");
        let body_at = at + 8 + len;
        if let Some(b) = m.header_as_record_batch() {
            let buffers = b.buffers().expect("buffers");
            let v = buffers
                .iter()
                .map(|b| (b.offset() as usize, b.length() as usize))
                .collect();
            return (body_at, v);
        }
        at = body_at + m.bodyLength() as usize;
    }
}

#[test]
fn compressed_buffers_claiming_petabytes_are_refused_not_allocated() {
    for codec in [CompressionType::LZ4_FRAME, CompressionType::ZSTD] {
        let bytes = compressed_stream(codec, 1000, Some(1 << 52));
        let err = returned(&bytes, Policy::default()).expect_err("refused");
        let msg = format!("{err:#}");
        assert!(msg.contains("compressed"), "{codec:?}: {msg}");
    }
}

#[test]
fn a_zstd_bomb_from_a_small_guest_is_refused_before_inflating() {
    // 64 MiB of zeros in a few KiB, from a guest limited to 16 MiB.
    let bytes = compressed_stream(CompressionType::ZSTD, 8 << 20, None);
    assert!(bytes.len() < 64 << 10, "{} bytes", bytes.len());
    let start = std::time::Instant::now();
    let err = returned(&bytes, limited(16 << 20, None)).expect_err("refused");
    assert!(format!("{err:#}").contains("compressed"), "{err:#}");
    assert!(start.elapsed() < std::time::Duration::from_secs(5));
}

/// A stream of `columns` Int64 columns of `rows` rows whose value buffers
/// all point at one range of the body, starting at `offset`.
fn aliased_stream(columns: usize, rows: usize, offset: usize) -> Vec<u8> {
    use arrow::ipc::{
        Buffer as IpcBuffer, FieldNode, MessageBuilder, MessageHeader, MetadataVersion,
        RecordBatchBuilder,
    };
    let fields: Vec<Field> = (0..columns)
        .map(|i| Field::new(format!("c{i}"), DataType::Int64, false))
        .collect();
    let schema = Schema::new(fields);
    // The schema message, as arrow writes it (no batch, no end marker).
    let mut w = StreamWriter::try_new(Vec::new(), &schema).expect("writer");
    w.flush().expect("flush");
    let mut out = w.get_ref().clone();
    let body_len = (offset + rows * 8).next_multiple_of(64);
    let mut fbb = flatbuffers::FlatBufferBuilder::new();
    let nodes: Vec<FieldNode> = (0..columns)
        .map(|_| FieldNode::new(rows as i64, 0))
        .collect();
    let buffers: Vec<IpcBuffer> = (0..columns)
        .flat_map(|_| {
            [
                IpcBuffer::new(0, 0),
                IpcBuffer::new(offset as i64, (rows * 8) as i64),
            ]
        })
        .collect();
    let nodes = fbb.create_vector(&nodes);
    let buffers = fbb.create_vector(&buffers);
    let mut b = RecordBatchBuilder::new(&mut fbb);
    b.add_length(rows as i64);
    b.add_nodes(nodes);
    b.add_buffers(buffers);
    let batch = b.finish();
    let mut m = MessageBuilder::new(&mut fbb);
    m.add_version(MetadataVersion::V5);
    m.add_header_type(MessageHeader::RecordBatch);
    m.add_header(batch.as_union_value());
    m.add_bodyLength(body_len as i64);
    let m = m.finish();
    fbb.finish(m, None);
    let mut header = fbb.finished_data().to_vec();
    header.resize(header.len().next_multiple_of(8), 0);
    out.extend_from_slice(&[0xff; 4]);
    out.extend_from_slice(&(header.len() as i32).to_le_bytes());
    out.extend_from_slice(&header);
    out.extend((0..body_len).map(|i| i as u8));
    out.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
    out
}

#[test]
fn aliased_columns_count_once_per_use_against_max_output() {
    // 64 columns over one 64 KiB range: 4 MiB once written out.
    let bytes = aliased_stream(64, 8192, 0);
    assert!(bytes.len() < 100 << 10);
    let err = returned(&bytes, limited(64 << 20, Some(1 << 20))).expect_err("over max-output");
    assert!(
        matches!(err, Error::LimitExceeded(Limit::Output(n)) if n == 1 << 20),
        "{err:?}"
    );
    // Within the bound it decodes, zero-copy: every column views one range.
    let t = returned(&bytes, limited(64 << 20, Some(16 << 20)))
        .expect("within max-output")
        .expect("a result");
    let first = &t.batches[0];
    assert_eq!(first.num_columns(), 64);
    let at = |i: usize| first.column(i).to_data().buffers()[0].as_ptr();
    assert!((1..64).all(|i| at(i) == at(0)));
}

#[test]
fn misaligned_aliased_columns_are_an_error_not_copies() {
    let bytes = aliased_stream(64, 8192, 4);
    let err = returned(&bytes, Policy::default()).expect_err("misaligned");
    assert!(format!("{err:#}").contains("Misaligned"), "{err:#}");
}

#[test]
fn a_result_over_max_output_in_ipc_bytes_is_refused() {
    let bytes = aliased_stream(1, 8192, 0);
    let err = returned(&bytes, limited(64 << 20, Some(32 << 10))).expect_err("too big");
    assert!(
        matches!(err, Error::LimitExceeded(Limit::Output(_))),
        "{err:?}"
    );
    // The CLI-facing message names the limit.
    assert!(err.to_string().contains("output limit of 32 KiB"), "{err}");
    assert!(returned(&bytes, limited(64 << 20, Some(1 << 20))).is_ok());
}

#[test]
fn decode_stream_checks_its_bound_and_handles_any_alignment() {
    let bytes = aliased_stream(2, 100, 0);
    // A copy at an odd address (as a component's result may lie).
    let mut odd = vec![0u8; bytes.len() + 1];
    odd[1..].copy_from_slice(&bytes);
    let buf = arrow::buffer::Buffer::from(odd).slice(1);
    let t = transport::decode_stream(buf, 1 << 20)
        .expect("decodes")
        .expect("a table");
    assert_eq!(t.num_rows(), 100);
    assert_eq!(t.batches[0].column(1).len(), 100);
    assert!(transport::decode_stream(bytes.clone(), 100).is_err());
    assert!(transport::decode_stream(Vec::<u8>::new(), 0)
        .expect("empty")
        .is_none());
}
