//! `wasm-app serve` with arrow-flight's Rust client, calling it the way the
//! arrow-udf-flight client does (protocol version, the schema split at
//! `total_records`, an exchange with the descriptor on every message), and
//! with messages no honest client sends: compressed bodies, garbage
//! headers, batches before the schema, oversized messages. Each is refused
//! with a clear status, and the server goes on serving.
#![cfg(feature = "flight")]

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use arrow::array::{RecordBatch, StringArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::ipc::writer::IpcWriteOptions;
use arrow::ipc::CompressionType;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::{Action, FlightClient, FlightData, FlightDescriptor};
use futures::TryStreamExt;
use tonic::Code;

use wasm_abi::built;
use wasm_app::transport::Table;
use wasm_app::Plugin;

/// A server process, killed when dropped.
struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(functions: &Path, flags: &[&str]) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wasm-app"))
        .args(["serve", "--listen", "127.0.0.1:0", "--functions"])
        .arg(functions)
        .args(flags)
        .stderr(Stdio::piped())
        .spawn()
        .expect("start wasm-app serve");
    let mut line = String::new();
    let stderr = child.stderr.take().expect("stderr");
    BufReader::new(stderr)
        .read_line(&mut line)
        .expect("read stderr");
    let addr = line
        .split("listening on ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    Server { child, addr }
}

fn functions_file(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("functions.toml");
    let module = common::guest_path(built::MODULE2);
    std::fs::write(
        &path,
        format!(
            r#"[[function]]
name = "tokenize"
module = "{}"
command = "tokenize"
config = {{ column = "text", id = "id" }}
args = [{{ name = "id", type = "uint64" }}, {{ name = "text", type = "utf8" }}]
returns = [{{ name = "doc_id", type = "uint64" }}, {{ name = "position", type = "uint32" }}, {{ name = "token", type = "utf8" }}]
max-output = "1MiB"
"#,
            module.display()
        ),
    )
    .expect("write functions.toml");
    path
}

fn docs(n: u64) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("a", DataType::UInt64, false),
        Field::new("b", DataType::Utf8, true),
    ]));
    let ids = UInt64Array::from_iter_values(0..n);
    let text = StringArray::from_iter_values((0..n).map(|i| format!("row {i} of the Flight test")));
    RecordBatch::try_new(schema, vec![Arc::new(ids), Arc::new(text)]).expect("batch")
}

fn descriptor() -> FlightDescriptor {
    FlightDescriptor::new_path(vec!["tokenize".into()])
}

async fn client(server: &Server) -> FlightClient {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", server.addr))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    FlightClient::new(channel)
}

/// Messages as arrow-udf-flight sends them: the descriptor on each (and
/// one message per batch, however large).
async fn messages(batch: RecordBatch, options: IpcWriteOptions) -> Vec<FlightData> {
    let stream = FlightDataEncoderBuilder::new()
        .with_options(options)
        .with_max_flight_data_size(usize::MAX)
        .build(futures::stream::iter([Ok(batch)]));
    stream
        .try_collect::<Vec<_>>()
        .await
        .expect("encode")
        .into_iter()
        .map(|mut m| {
            m.flight_descriptor = Some(descriptor());
            m
        })
        .collect()
}

async fn exchange(
    c: &mut FlightClient,
    input: Vec<FlightData>,
) -> Result<Vec<RecordBatch>, tonic::Status> {
    let out = c
        .do_exchange(futures::stream::iter(input.into_iter().map(Ok)))
        .await
        .map_err(tonic::Status::from)?;
    out.try_collect::<Vec<_>>()
        .await
        .map_err(tonic::Status::from)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

#[test]
fn the_arrow_udf_flight_call_sequence() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(&functions_file(dir.path()), &[]);
    runtime().block_on(async {
        let mut c = client(&server).await;
        let version: Vec<_> = c
            .do_action(Action::new("protocol_version", ""))
            .await
            .expect("do_action")
            .try_collect()
            .await
            .expect("results");
        assert_eq!(version.first().map(|b| b.first().copied()), Some(Some(2)));

        let info = c.get_flight_info(descriptor()).await.expect("info");
        let schema = info.clone().try_decode_schema().expect("schema");
        let (args, returns) = schema.fields().split_at(info.total_records as usize);
        let names = |f: &[Arc<Field>]| f.iter().map(|f| f.name().clone()).collect::<Vec<_>>();
        assert_eq!(names(args), ["id", "text"]);
        assert_eq!(names(returns), ["doc_id", "position", "token"]);

        // Columns named otherwise: matched by position and type.
        let batch = docs(3000);
        let got = exchange(
            &mut c,
            messages(batch.clone(), IpcWriteOptions::default()).await,
        )
        .await
        .expect("exchange");
        // The same call in process, on the library.
        let renamed = RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("id", DataType::UInt64, true),
                Field::new("text", DataType::Utf8, true),
            ])),
            batch.columns().to_vec(),
        )
        .expect("renamed");
        let mut plugin = Plugin::new(common::arrow_module());
        let config = [
            ("column".to_string(), "text".to_string()),
            ("id".into(), "id".into()),
        ];
        let want = plugin
            .process_table(
                "tokenize",
                &config,
                &Table {
                    schema: renamed.schema(),
                    batches: vec![renamed],
                },
            )
            .expect("in process")
            .expect("a result");
        let rows = |b: &[RecordBatch]| b.iter().map(RecordBatch::num_rows).sum::<usize>();
        assert_eq!(rows(&got), rows(&want.batches));
        let got = arrow::compute::concat_batches(&got[0].schema(), &got).expect("concat");
        let want = arrow::compute::concat_batches(&want.schema, &want.batches).expect("concat");
        assert_eq!(got.columns(), want.columns());
    });
}

#[test]
fn messages_no_honest_client_sends_are_refused_and_the_server_goes_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(&functions_file(dir.path()), &["--max-message-size", "4MiB"]);
    runtime().block_on(async {
        let mut c = client(&server).await;
        let refused = |r: Result<Vec<RecordBatch>, tonic::Status>| r.expect_err("refused");

        // Compressed bodies declare their own decompressed size: refused.
        let zstd = IpcWriteOptions::default()
            .try_with_compression(Some(CompressionType::ZSTD))
            .expect("zstd");
        let e = refused(exchange(&mut c, messages(docs(100), zstd).await).await);
        assert_eq!(e.code(), Code::InvalidArgument, "{e}");

        // A header that is no IPC message at all.
        let mut garbage = messages(docs(10), IpcWriteOptions::default()).await;
        garbage[1].data_header = vec![0xab; 64].into();
        let e = refused(exchange(&mut c, garbage).await);
        assert_eq!(e.code(), Code::InvalidArgument, "{e}");

        // A batch before any schema.
        let mut no_schema = messages(docs(10), IpcWriteOptions::default()).await;
        no_schema.remove(0);
        let e = refused(exchange(&mut c, no_schema).await);
        assert!(e.message().contains("before the schema"), "{e}");

        // A body that lies about its buffers' lengths.
        let mut lying = messages(docs(10), IpcWriteOptions::default()).await;
        let body = lying[1].data_body.to_vec();
        lying[1].data_body = body[..body.len() / 2].to_vec().into();
        let e = refused(exchange(&mut c, lying).await);
        assert_eq!(e.code(), Code::InvalidArgument, "{e}");

        // Bytes after the declared body would be read as more messages
        // (one batch sent once, run again with every later message).
        let mut padded = messages(docs(10), IpcWriteOptions::default()).await;
        let again = padded[1].data_header.len();
        let mut body = padded[1].data_body.to_vec();
        body.extend(std::iter::repeat_n(0u8, again.next_multiple_of(8)));
        padded[1].data_body = body.into();
        let e = refused(exchange(&mut c, padded).await);
        assert!(e.message().contains("declaring"), "{e}");

        // A schema message with a body.
        let mut schema_body = messages(docs(10), IpcWriteOptions::default()).await;
        schema_body[0].data_body = schema_body[1].data_body.clone();
        let e = refused(exchange(&mut c, schema_body).await);
        assert_eq!(e.code(), Code::InvalidArgument, "{e}");

        // One message over --max-message-size (~8 MB): tonic refuses it.
        let huge = messages(docs(200_000), IpcWriteOptions::default()).await;
        let e = refused(exchange(&mut c, huge).await);
        assert_eq!(e.code(), Code::OutOfRange, "{e}");

        // A batch (~1.5 MB) over the function's max-output (1 MiB).
        let big = messages(docs(40_000), IpcWriteOptions::default()).await;
        let e = refused(exchange(&mut c, big).await);
        assert_eq!(e.code(), Code::ResourceExhausted, "{e}");
        assert!(e.message().contains("limit"), "{e}");

        // Still serving.
        let ok = exchange(&mut c, messages(docs(10), IpcWriteOptions::default()).await)
            .await
            .expect("served after the refusals");
        assert!(ok.iter().map(RecordBatch::num_rows).sum::<usize>() > 10);
    });
}

#[test]
fn a_function_without_columns_is_refused_at_load() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("functions.toml");
    std::fs::write(
        &path,
        format!(
            "[[function]]\nname = \"none\"\nmodule = \"{}\"\ncommand = \"count\"\nargs = []\nreturns = [{{ name = \"rows\", type = \"uint64\" }}]\n",
            common::guest_path(built::MODULE2).display()
        ),
    )
    .expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_wasm-app"))
        .args(["serve", "--listen", "127.0.0.1:0", "--functions"])
        .arg(&path)
        .output()
        .expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("at least one column"), "{stderr}");
}
