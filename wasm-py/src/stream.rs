//! `Plugin.process_stream`: data through a module batch by batch, as the
//! CLI runs it (`wasm_app::pipeline`: cut into batches, several instances
//! if asked, flush and merge at the end), on a thread of its own.
//!
//! The thread hands results over a bounded channel, so at most a few
//! batches wait for a slow consumer; a consumer that stops reading drops
//! the channel, and the pipeline stops at its next batch. Python waits on
//! the channel without the GIL: the pipeline may need it to read its input
//! (a pyarrow reader over a Python generator takes it), and wakes every
//! [`POLL`] to let Ctrl-C through.
//!
//! The input belongs to the stream from the call on: the thread reads it
//! while the caller reads the output, so the caller must not read it too.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::datatypes::{Schema, SchemaRef};
use pyo3::prelude::*;
use wasm_app::pipeline::{self, Options, Step};
use wasm_app::text::schema_text;
use wasm_app::Error;

use crate::arrow_io::{batch_to_py, panic_text, schema_to_py, Input};
use crate::errors::{other, WasmError};

/// Results waiting for the consumer, besides the one being made.
const QUEUE: usize = 2;

/// How often a wait for the pipeline looks for a signal (Ctrl-C).
const POLL: Duration = Duration::from_millis(100);

enum Message {
    Batch(RecordBatch),
    /// The end: `Err` if the pipeline failed.
    End(Result<(), Error>),
}

/// The batches of one `process_stream`, as a Python iterator (wrapped in a
/// `pyarrow.RecordBatchReader` by `Plugin.process_stream`). A failure is
/// raised by the `next` that reaches it, as its `wasm_study` exception.
#[pyclass(module = "wasm_study._native", name = "BatchStream")]
pub(crate) struct BatchStream {
    state: Mutex<State>,
    schema: SchemaRef,
    /// The process that started the thread: a forked child has the channel
    /// but not the thread, and would wait forever.
    pid: u32,
}

struct State {
    rx: Receiver<Message>,
    /// The first batch, read ahead to learn the schema.
    first: Option<RecordBatch>,
    done: bool,
}

impl BatchStream {
    /// Starts `step` over `input` and waits for its first result (its
    /// schema is the reader's); fails if the pipeline fails before.
    pub(crate) fn start(
        py: Python<'_>,
        step: Step,
        options: Options,
        batch_size: usize,
        input: Input,
    ) -> PyResult<Self> {
        let (tx, rx) = sync_channel(QUEUE);
        let end = tx.clone();
        std::thread::Builder::new()
            .name("wasm-study-stream".into())
            .spawn(move || {
                let run = AssertUnwindSafe(|| {
                    pipeline::run(
                        &[step],
                        options,
                        batch_size,
                        input.map(|b| b.map_err(Error::from)),
                        |_, batch| {
                            tx.send(Message::Batch(batch.clone()))
                                .map_err(|_| Error::Other(anyhow::anyhow!("the reader was closed")))
                        },
                        |_| {},
                    )
                });
                let result = std::panic::catch_unwind(run).unwrap_or_else(|panic| {
                    Err(Error::Other(anyhow::anyhow!(
                        "the stream's pipeline failed: {}",
                        panic_text(&panic)
                    )))
                });
                let _ = end.send(Message::End(result.map(|_| ())));
            })
            .map_err(|e| other(format!("cannot start the stream's thread: {e}")))?;
        let state = Mutex::new(State {
            rx,
            first: None,
            done: false,
        });
        let first = receive(py, &state)?;
        let schema = first
            .as_ref()
            .map_or_else(|| SchemaRef::new(Schema::empty()), RecordBatch::schema);
        lock(&state).first = first;
        Ok(BatchStream {
            state,
            schema,
            pid: std::process::id(),
        })
    }

    pub(crate) fn schema<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        schema_to_py(py, self.schema.clone())
    }
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The next batch, `None` at the end; waits without the GIL.
fn receive(py: Python<'_>, state: &Mutex<State>) -> PyResult<Option<RecordBatch>> {
    loop {
        let got = py.detach(|| {
            let mut state = lock(state);
            if let Some(b) = state.first.take() {
                return Some(Ok(Some(b)));
            }
            if state.done {
                return Some(Ok(None));
            }
            match state.rx.recv_timeout(POLL) {
                Ok(Message::Batch(b)) => Some(Ok(Some(b))),
                Ok(Message::End(end)) => {
                    state.done = true;
                    Some(end.map(|()| None))
                }
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => {
                    state.done = true;
                    Some(Err(Error::Other(anyhow::anyhow!(
                        "the stream's thread ended without a result"
                    ))))
                }
            }
        });
        match got {
            Some(result) => return result.map_err(|e| WasmError(e).into()),
            None => py.check_signals()?,
        }
    }
}

#[pymethods]
impl BatchStream {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        if std::process::id() != self.pid {
            return Err(other(
                "this stream was started before a fork(): its thread is in the parent process",
            ));
        }
        match receive(py, &self.state)? {
            // A batch of another schema than the first would break the
            // reader's promise: an error, not a surprise downstream.
            Some(b) if b.schema() != self.schema => Err(other(format!(
                "the module changed its output schema mid-stream: {}, then {}",
                schema_text(&self.schema),
                schema_text(&b.schema())
            ))),
            Some(b) => batch_to_py(py, b).map(Some),
            None => Ok(None),
        }
    }
}
