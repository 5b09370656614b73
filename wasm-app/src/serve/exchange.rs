//! One `DoExchange`: a client's batches through one function, its results
//! back, batch by batch.
//!
//! The client is not trusted more than a guest. Its messages are framed
//! back into an IPC stream and decoded by the same checked reader as a
//! guest's results (`transport::decode_stream`: headers checked against
//! their bodies, compressed bodies refused, decoded size bounded by the
//! function's `max-output`), one record batch at a time; dictionaries are
//! refused (declared columns are plain types). Its columns must have the
//! declared types, by position; the guest sees them under the declared
//! names. What the guest returns must have the declared result columns,
//! and goes out under exactly the declared schema.
//!
//! Each call takes an instance from the function's pool on a blocking
//! thread (guest code never runs on the server's async workers) and gives
//! it back when the call is over, so a client that goes away frees its
//! instance after at most the call in progress.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{RecordBatch, RecordBatchOptions};
use arrow::datatypes::{Field, Schema, SchemaRef};
use arrow::ipc::{root_as_message, MessageHeader};
use arrow_flight::error::FlightError;
use arrow_flight::FlightData;
use tokio::sync::mpsc::error::SendTimeoutError;
use tokio::sync::mpsc::Sender;
use tonic::{Status, Streaming};

use super::functions::Function;
use super::status::{from_error, input_error};
use crate::text::schema_text;
use crate::transport::{self, Table};

/// What the exchange hands the encoder.
pub(crate) type Output = Result<RecordBatch, FlightError>;

/// An IPC stream's end-of-stream marker.
const END: [u8; 8] = [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0];

/// Runs the exchange to its end; a failure is the last item sent.
pub(crate) async fn run(
    function: Arc<Function>,
    first: FlightData,
    input: Streaming<FlightData>,
    idle: Duration,
    output: Sender<Output>,
) {
    if let Err(status) = serve(&function, first, input, idle, &output).await {
        // Bounded too: a client that reads nothing must not keep the
        // exchange (and its slot) waiting to hear why it ended.
        let _ = output
            .send_timeout(Err(FlightError::Tonic(Box::new(status))), idle)
            .await;
    }
}

async fn serve(
    f: &Arc<Function>,
    first: FlightData,
    mut input: Streaming<FlightData>,
    idle: Duration,
    output: &Sender<Output>,
) -> Result<(), Status> {
    let mut schema_frame: Option<Vec<u8>> = None;
    let mut next = Some(first);
    // Only data moves the deadline: a client that sends empty messages (or
    // reads nothing) holds its slot no longer than one that sends nothing.
    let mut deadline = Instant::now() + idle;
    let silent = || Status::deadline_exceeded(format!("the client sent no data for {idle:?}"));
    loop {
        let message = match next.take() {
            Some(m) => m,
            None => match tokio::time::timeout_at(deadline.into(), input.message()).await {
                Err(_) => return Err(silent()),
                Ok(m) => match m? {
                    Some(m) => m,
                    None => return Ok(()),
                },
            },
        };
        // pyarrow opens an exchange with a message carrying only the
        // descriptor; metadata-only messages carry nothing either.
        if message.data_header.is_empty() {
            continue;
        }
        deadline = Instant::now() + idle;
        let header = root_as_message(&message.data_header)
            .map_err(|e| Status::invalid_argument(format!("input: not an IPC message: {e}")))?;
        // The body is exactly what the header declares: extra bytes would be
        // read as more messages of the stream.
        if u64::try_from(header.bodyLength()).ok() != Some(message.data_body.len() as u64) {
            return Err(Status::invalid_argument(format!(
                "input: a body of {} bytes under a header declaring {}",
                message.data_body.len(),
                header.bodyLength()
            )));
        }
        match header.header_type() {
            MessageHeader::Schema if schema_frame.is_none() => {
                if !message.data_body.is_empty() {
                    return Err(Status::invalid_argument(
                        "input: a schema message with a body",
                    ));
                }
                let frame = framed(&message, None);
                check_args(f, &decode(f, frame.clone(), 0)?.schema)?;
                schema_frame = Some(frame);
            }
            MessageHeader::RecordBatch => {
                let Some(schema) = &schema_frame else {
                    return Err(Status::invalid_argument(
                        "input: a record batch before the schema",
                    ));
                };
                if header
                    .header_as_record_batch()
                    .is_some_and(|b| b.compression().is_some())
                {
                    return Err(Status::invalid_argument(
                        "input: compressed bodies are not accepted (their decompressed size is \
                         the sender's claim); send uncompressed batches",
                    ));
                }
                let [batch] = <[RecordBatch; 1]>::try_from(
                    decode(f, framed(&message, Some(schema)), 1)?.batches,
                )
                .map_err(|_| Status::invalid_argument("input: one message, one batch"))?;
                if batch.num_rows() == 0 {
                    continue;
                }
                for out in call(f, named(f, batch)?).await? {
                    match output.send_timeout(Ok(out), idle).await {
                        Ok(()) => {}
                        Err(SendTimeoutError::Timeout(_)) => {
                            return Err(Status::deadline_exceeded(format!(
                                "the client read nothing for {idle:?}"
                            )))
                        }
                        Err(SendTimeoutError::Closed(_)) => {
                            return Err(Status::cancelled("the client went away"))
                        }
                    }
                }
            }
            MessageHeader::Schema => {
                return Err(Status::invalid_argument("input: a second schema message"))
            }
            MessageHeader::DictionaryBatch => {
                return Err(Status::invalid_argument(
                    "input: dictionary-encoded columns are not supported; send plain arrays",
                ))
            }
            other => {
                return Err(Status::invalid_argument(format!(
                    "input: unexpected IPC message {other:?}"
                )))
            }
        }
    }
}

/// `message` as an IPC stream: the schema's frame (if given), the
/// message's frame, the end marker.
fn framed(message: &FlightData, schema: Option<&Vec<u8>>) -> Vec<u8> {
    let header = &message.data_header;
    let padded = header.len().next_multiple_of(8);
    let mut out = Vec::with_capacity(
        schema.map_or(0, Vec::len) + 8 + padded + message.data_body.len() + END.len(),
    );
    if let Some(schema) = schema {
        out.extend_from_slice(&schema[..schema.len() - END.len()]);
    }
    out.extend_from_slice(&[0xff; 4]);
    out.extend_from_slice(&(padded as u32).to_le_bytes());
    out.extend_from_slice(header);
    out.resize(out.len() + padded - header.len(), 0);
    out.extend_from_slice(&message.data_body);
    out.extend_from_slice(&END);
    out
}

/// Decodes a framed stream (taken, not copied) holding `batches` batches.
fn decode(f: &Function, stream: Vec<u8>, batches: usize) -> Result<Table, Status> {
    let table = transport::decode_stream(stream, f.output_limit())
        .map_err(input_error)?
        .ok_or_else(|| Status::invalid_argument("input: an empty IPC stream"))?;
    if table.batches.len() != batches {
        return Err(Status::invalid_argument("input: one message, one batch"));
    }
    Ok(table)
}

/// The input's columns must be the declared ones, by position and type.
fn check_args(f: &Function, schema: &Schema) -> Result<(), Status> {
    let declared = &f.args;
    let same = schema.fields().len() == declared.fields().len()
        && schema
            .fields()
            .iter()
            .zip(declared.fields())
            .all(|(a, d)| a.data_type() == d.data_type());
    if same {
        return Ok(());
    }
    Err(Status::invalid_argument(format!(
        "function '{}' takes {}, got {}",
        f.name,
        schema_text(declared),
        schema_text(schema)
    )))
}

/// `batch` under the declared argument names (the guest's config names
/// them).
fn named(f: &Function, batch: RecordBatch) -> Result<RecordBatch, Status> {
    // The row count too: a function of no arguments gets columnless batches.
    let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    RecordBatch::try_new_with_options(f.args.clone(), batch.columns().to_vec(), &options)
        .map_err(|e| Status::invalid_argument(format!("input: {e}")))
}

/// One call of the function's command over `batch` (then its flush call),
/// on a blocking thread; the results under the declared schema.
async fn call(f: &Arc<Function>, batch: RecordBatch) -> Result<Vec<RecordBatch>, Status> {
    let function = f.clone();
    let result = tokio::task::spawn_blocking(move || {
        let input = Table {
            schema: batch.schema(),
            batches: vec![batch],
        };
        function
            .pool
            .run(|p| p.process_table(&function.command, &function.config, &input))
    })
    .await
    .map_err(|e| Status::internal(format!("the call's thread failed: {e}")))?
    .map_err(from_error)?;
    match result {
        None => Ok(Vec::new()),
        Some(table) => conform(f, table),
    }
}

/// The guest's result under the declared result schema, or an error
/// naming both.
fn conform(f: &Function, table: Table) -> Result<Vec<RecordBatch>, Status> {
    let declared = &f.returns;
    let fits = |s: &SchemaRef| {
        s.fields().len() == declared.fields().len()
            && s.fields()
                .iter()
                .zip(declared.fields())
                .all(|(a, d): (&Arc<Field>, _)| {
                    a.name() == d.name() && a.data_type() == d.data_type()
                })
    };
    if !fits(&table.schema) {
        return Err(Status::internal(format!(
            "function '{}': the module returned {}, but the function declares {}",
            f.name,
            schema_text(&table.schema),
            schema_text(declared)
        )));
    }
    table
        .batches
        .into_iter()
        .map(|b| RecordBatch::try_new(declared.clone(), b.columns().to_vec()))
        .collect::<Result<_, _>>()
        .map_err(|e| Status::internal(format!("function '{}': {e}", f.name)))
}
