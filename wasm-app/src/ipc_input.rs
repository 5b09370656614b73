//! Reading Arrow IPC input (files and streams) from any reader, message by
//! message, through the checking [`Decoder`].

use std::io::Read;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::buffer::{Buffer, MutableBuffer};
use arrow::datatypes::{Schema, SchemaRef};
use arrow::ipc::{root_as_message, Message, MessageHeader};

use crate::ipc_check::Refusal;
use crate::ipc_read::{one_line, Bounds, Decoder, CONTINUATION_MARKER};

/// Largest step in which a body is read from a file: a truncated file that
/// claims a huge body costs at most this much before the read fails.
const READ_STEP: usize = 64 << 20;

/// Batches of an IPC stream or file read from `R`, one message at a time.
///
/// A file (`ARROW1` magic) is read as the stream it embeds, up to its
/// end-of-stream marker; its footer, an index of the same messages, is not
/// needed (nor trusted) and is not read, so stdin works too.
pub struct IpcReader<R> {
    reader: R,
    decoder: Decoder,
    done: bool,
    /// Zero words still to skip: a file's magic is padded to its writer's
    /// alignment (up to 64 bytes), and no frame starts with a zero word.
    padding: usize,
}

impl<R: Read> IpcReader<R> {
    /// Reads up to and including the schema. `file`: skip the 8-byte
    /// `ARROW1\0\0` preamble first.
    pub fn open(mut reader: R, file: bool, bounds: Bounds) -> Result<Self, Refusal> {
        if file {
            let mut magic = [0u8; 8];
            read_exact(&mut reader, &mut magic, "file magic")?;
            if &magic[..6] != b"ARROW1" {
                return Err("not an Arrow IPC file (no ARROW1 magic)".to_string().into());
            }
        }
        let mut r = IpcReader {
            reader,
            decoder: Decoder::new(bounds),
            done: false,
            padding: if file { (64 - 8) / 4 } else { 0 },
        };
        while r.decoder.schema().is_none() {
            let Some((meta, body)) = r.frame()? else {
                return Err("empty stream, expected a schema message".to_string().into());
            };
            let message = parse(&meta)?;
            if message.header_type() != MessageHeader::Schema {
                return Err(format!(
                    "expected a schema as the first message, got {:?}",
                    message.header_type()
                )
                .into());
            }
            r.decoder.message(&message, &body)?;
        }
        Ok(r)
    }

    /// The stream's schema.
    pub fn schema(&self) -> SchemaRef {
        self.decoder
            .schema()
            .unwrap_or_else(|| Arc::new(Schema::empty()))
    }

    fn next_batch(&mut self) -> Result<Option<RecordBatch>, Refusal> {
        while let Some((meta, body)) = self.frame()? {
            if let Some(b) = self.decoder.message(&parse(&meta)?, &body)? {
                return Ok(Some(b));
            }
        }
        Ok(None)
    }

    /// The next frame's header bytes and body; `None` at the end.
    fn frame(&mut self) -> Result<Option<(Vec<u8>, Buffer)>, Refusal> {
        let max = self.decoder.bounds.max_bytes;
        let mut len = [0u8; 4];
        loop {
            if !read_exact_or_end(&mut self.reader, &mut len)? {
                return Ok(None);
            }
            if len != [0; 4] || self.padding == 0 {
                break;
            }
            self.padding -= 1;
        }
        self.padding = 0;
        if len == CONTINUATION_MARKER {
            read_exact(&mut self.reader, &mut len, "message length")?;
        }
        let len = i32::from_le_bytes(len);
        if len == 0 {
            return Ok(None);
        }
        let len = u64::try_from(len).map_err(|_| format!("invalid message length {len}"))?;
        if len > max {
            return Err(Refusal::TooLarge(len));
        }
        let mut meta = Vec::new();
        (&mut self.reader)
            .take(len)
            .read_to_end(&mut meta)
            .map_err(|e| format!("cannot read a message header: {e}"))?;
        if meta.len() as u64 != len {
            return Err(format!("truncated stream: message header needs {len} bytes").into());
        }
        let body_len = parse(&meta)?.bodyLength();
        let body_len = u64::try_from(body_len)
            .map_err(|_| format!("invalid message body length {body_len}"))?;
        if body_len > max {
            return Err(Refusal::TooLarge(body_len));
        }
        // Bounded by `max` just above, which fits memory by policy.
        let body_len = body_len as usize;
        let mut body = MutableBuffer::new(0);
        while body.len() < body_len {
            let filled = body.len();
            let step = (body_len - filled).min(READ_STEP);
            body.resize(filled + step, 0);
            read_exact(
                &mut self.reader,
                &mut body.as_slice_mut()[filled..],
                "message body",
            )?;
        }
        Ok(Some((meta, body.into())))
    }
}

impl<R: Read> Iterator for IpcReader<R> {
    type Item = Result<RecordBatch, Refusal>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = self.next_batch().transpose();
        if !matches!(item, Some(Ok(_))) {
            self.done = true;
        }
        item
    }
}

fn parse(meta: &[u8]) -> Result<Message<'_>, Refusal> {
    root_as_message(meta).map_err(|e| format!("invalid message header: {}", one_line(&e)).into())
}

fn read_exact(r: &mut impl Read, buf: &mut [u8], part: &str) -> Result<(), Refusal> {
    r.read_exact(buf)
        .map_err(|e| format!("truncated stream: cannot read the {part}: {e}").into())
}

/// Fills `buf`; `false` if the input ended before its first byte.
fn read_exact_or_end(r: &mut impl Read, buf: &mut [u8]) -> Result<bool, Refusal> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) if n == 0 => return Ok(false),
            Ok(0) => return Err("truncated stream: message length".to_string().into()),
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("cannot read: {e}").into()),
        }
    }
    Ok(true)
}
