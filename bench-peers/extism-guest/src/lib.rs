//! The Extism peer of our guests: `greet` does what `wasm-module1`'s
//! greeter does, `echo` what `wasm-module2`'s `echo` command does (decode the
//! input Arrow IPC stream, re-encode every batch into a new stream).
//!
//! Built for wasm32 by `make bench-peers` with the same profile as our guests.

use arrow::buffer::Buffer;
use arrow::ipc::reader::StreamDecoder;
use arrow::ipc::writer::StreamWriter;
use extism_pdk::*;

/// `Hello World, {name}!`
#[plugin_fn]
pub fn greet(name: String) -> FnResult<String> {
    Ok(format!("Hello World, {name}!"))
}

/// The input IPC stream decoded and re-encoded, schema and batches unchanged.
#[plugin_fn]
pub fn echo(input: Vec<u8>) -> FnResult<Vec<u8>> {
    if input.is_empty() {
        return Ok(Vec::new());
    }
    let mut buf = Buffer::from(input);
    let mut decoder = StreamDecoder::new();
    let mut writer: Option<StreamWriter<Vec<u8>>> = None;
    while !buf.is_empty() {
        if let Some(batch) = decoder.decode(&mut buf)? {
            let w = match &mut writer {
                Some(w) => w,
                None => writer.insert(StreamWriter::try_new(Vec::new(), &batch.schema())?),
            };
            w.write(&batch)?;
        }
    }
    decoder.finish()?;
    let mut writer = match writer {
        Some(w) => w,
        // A stream with a schema and no batch.
        None => {
            let schema = decoder
                .schema()
                .ok_or_else(|| Error::msg("IPC stream ended before its schema"))?;
            StreamWriter::try_new(Vec::new(), &schema)?
        }
    };
    writer.finish()?;
    Ok(writer.into_inner()?)
}
