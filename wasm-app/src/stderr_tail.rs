//! The guest's stderr, kept as a short tail in memory: after a trap, what
//! the guest printed last (a Rust panic message, a C `abort` after
//! `fprintf(stderr, ...)`) goes into the error, for any language and for
//! components, which have no `wasm_last_error`.
//!
//! Invariants: a [`StderrTail`] holds at most [`TAIL_BYTES`] bytes (the
//! last ones written) plus a count of what it dropped; a write always
//! succeeds at once and never allocates past that, so a guest writing
//! gigabytes costs CPU time only. One tail per instance (its WASI context,
//! p1 or p2), cleared at the start of every top-level operation so a trap
//! is never explained by an earlier operation's output.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

use crate::error::Error;
use crate::text::{needs_escape, MAX_GUEST_TEXT};

/// Bytes of stderr kept: the last ones written.
pub const TAIL_BYTES: usize = 4096;

#[derive(Debug, Default)]
struct Tail {
    /// The last bytes written, at most [`TAIL_BYTES`]; allocated on the
    /// first write.
    kept: VecDeque<u8>,
    /// Bytes written before `kept` and dropped.
    dropped: u64,
}

impl Tail {
    fn push(&mut self, bytes: &[u8]) {
        let bytes = if bytes.len() > TAIL_BYTES {
            let (gone, last) = bytes.split_at(bytes.len() - TAIL_BYTES);
            self.dropped = self.dropped.saturating_add(gone.len() as u64);
            last
        } else {
            bytes
        };
        let over = (self.kept.len() + bytes.len()).saturating_sub(TAIL_BYTES);
        if over > 0 {
            self.kept.drain(..over);
            self.dropped = self.dropped.saturating_add(over as u64);
        }
        if self.kept.capacity() == 0 {
            self.kept.reserve_exact(TAIL_BYTES);
        }
        self.kept.extend(bytes);
    }
}

/// A guest's stderr: a sink that keeps the last [`TAIL_BYTES`]. Clones
/// share the tail (the WASI context holds one, the instance another).
#[derive(Debug, Clone, Default)]
pub(crate) struct StderrTail(Arc<Mutex<Tail>>);

impl StderrTail {
    fn lock(&self) -> MutexGuard<'_, Tail> {
        // No code panics while holding the lock; a poisoned tail is still
        // a valid tail.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Forgets everything written so far (the start of an operation).
    pub(crate) fn clear(&self) {
        let mut t = self.lock();
        t.kept.clear();
        t.dropped = 0;
    }

    /// What the guest wrote, made fit for an error message: lines joined
    /// by spaces, escaped ([`crate::text::guest_text`]), as much of the
    /// end as fits in [`MAX_GUEST_TEXT`] once escaped, after a note of how
    /// many bytes came before; `None` if nothing was written.
    pub(crate) fn text(&self) -> Option<String> {
        let mut t = self.lock();
        let dropped = t.dropped;
        let mut bytes: &[u8] = t.kept.make_contiguous();
        if dropped > 0 {
            // Do not start inside a UTF-8 character cut in two.
            let skip = bytes.iter().take_while(|b| (**b & 0xc0) == 0x80).count();
            bytes = &bytes[skip..];
        }
        let lines: Vec<&[u8]> = bytes
            .split(|b| *b == b'\n')
            .map(<[u8]>::trim_ascii)
            .filter(|l| !l.is_empty())
            .collect();
        let joined = lines.join(&b' ');
        let joined = String::from_utf8_lossy(&joined);
        let end = fitting_end(&joined);
        let text = crate::text::guest_text(end.as_bytes());
        if text.is_empty() {
            return None;
        }
        let cut = dropped.saturating_add((joined.len() - end.len()) as u64);
        Some(if cut > 0 {
            format!("… ({cut} earlier bytes cut) {text}")
        } else {
            text
        })
    }

    /// Puts what the guest last wrote to stderr in front of a trap's
    /// message; other errors, or nothing written, leave `err` as it is.
    pub(crate) fn explain(&self, mut err: Error) -> Error {
        if let Error::Trap { message, .. } = &mut err {
            if let Some(why) = self.text() {
                *message = format!("{why}; {message}");
            }
        }
        err
    }
}

/// The longest end of `text` that [`crate::text::guest_text`] shows whole:
/// at most [`MAX_GUEST_TEXT`] bytes once escaped (a tail is read from its
/// end, where a panic message is).
fn fitting_end(text: &str) -> &str {
    let mut width = 0;
    let mut start = text.len();
    for (i, c) in text.char_indices().rev() {
        width += if needs_escape(c) {
            c.escape_default().count()
        } else {
            c.len_utf8()
        };
        if width > MAX_GUEST_TEXT {
            break;
        }
        start = i;
    }
    &text[start..]
}

impl IsTerminal for StderrTail {
    fn is_terminal(&self) -> bool {
        false
    }
}

/// Used for WASI preview 1 (core modules) and 0.2 (components) alike:
/// both get their stderr stream from `p2_stream`.
impl StdoutStream for StderrTail {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for StderrTail {
    /// Always ready: a write never waits.
    async fn ready(&mut self) {}
}

impl OutputStream for StderrTail {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.lock().push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    /// A fixed, small permit: WASI allocates up to it (`write_zeroes`), and
    /// the stream never fills up.
    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(TAIL_BYTES)
    }
}

impl AsyncWrite for StderrTail {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.lock().push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trap(message: &str) -> Error {
        Error::Trap {
            message: message.into(),
            backtrace: None,
        }
    }

    #[test]
    fn keeps_only_the_last_bytes_of_a_flood() {
        let tail = StderrTail::default();
        let mut stream = tail.p2_stream();
        let chunk = Bytes::from(vec![b'A'; 64 << 10]);
        for _ in 0..1600 {
            stream.write(chunk.clone()).expect("write");
        }
        stream
            .write(Bytes::from_static("é last words\n".as_bytes()))
            .expect("write");
        {
            let t = tail.lock();
            assert_eq!(t.kept.len(), TAIL_BYTES);
            assert!(t.kept.capacity() < 2 * TAIL_BYTES, "{}", t.kept.capacity());
        }
        let text = tail.text().expect("text");
        assert!(text.starts_with("… ("), "{text:.60}");
        assert!(text.ends_with("é last words"), "{text:.60}");
        assert!(text.len() < TAIL_BYTES + 100, "{}", text.len());
        tail.clear();
        assert_eq!(tail.text(), None);
    }

    #[test]
    fn the_end_survives_escaping() {
        let tail = StderrTail::default();
        let mut text = vec![b'A'; TAIL_BYTES - 20];
        // 4091 bytes, 4111 once escaped: 15 must go.
        text.extend_from_slice(b"\x1b\x1b\x1b\x1b last words");
        tail.lock().push(&text);
        let shown = tail.text().expect("text");
        assert!(shown.ends_with("\\u{1b} last words"), "{shown:.40}");
        assert!(
            shown.starts_with("… (15 earlier bytes cut) AAA"),
            "{shown:.40}"
        );
        assert!(shown.len() <= MAX_GUEST_TEXT + 40, "{}", shown.len());
    }

    #[test]
    fn a_big_write_keeps_its_end_and_a_cut_character_is_skipped() {
        let tail = StderrTail::default();
        let mut big = "é".repeat(TAIL_BYTES).into_bytes();
        big.extend_from_slice(b"!");
        tail.lock().push(&big);
        assert_eq!(tail.lock().kept.len(), TAIL_BYTES);
        let text = tail.text().expect("text");
        assert!(!text.contains('\u{fffd}'), "{text:.40}");
        assert!(text.ends_with("éé!"), "{text:.40}");
    }

    #[test]
    fn traps_are_explained_with_lines_joined_and_escaped() {
        let tail = StderrTail::default();
        assert!(matches!(tail.explain(trap("t")), Error::Trap { message, .. } if message == "t"));
        tail.lock()
            .push(b"\npanicked at src/lib.rs:1:2:\n\x1b[31mboom\n\n");
        match tail.explain(trap("wasm trap: unreachable")) {
            Error::Trap { message, .. } => assert_eq!(
                message,
                "panicked at src/lib.rs:1:2: \\u{1b}[31mboom; wasm trap: unreachable"
            ),
            other => panic!("{other:?}"),
        }
        // Only traps are explained.
        let other = tail.explain(Error::GuestReported { message: None });
        assert!(matches!(other, Error::GuestReported { message: None }));
        // Whitespace alone explains nothing.
        tail.clear();
        tail.lock().push(b" \n \n");
        assert_eq!(tail.text(), None);
    }
}
