//! `Plugin.process_stream`: data through a module batch by batch, as the
//! CLI runs it (`wasm_app::pipeline`: cut into batches, several instances
//! if asked, flush and merge at the end), on a thread of its own.
//!
//! The thread hands results over a bounded channel, so at most a few
//! batches wait for a slow consumer; a consumer that stops reading drops
//! the channel, and the pipeline stops at its next batch. Python waits on
//! the channel without the GIL: the pipeline may need it to read its input
//! (a pyarrow reader over a Python generator takes it).

use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::{Mutex, PoisonError};

use arrow::array::RecordBatch;
use arrow::datatypes::{Schema, SchemaRef};
use pyo3::prelude::*;
use wasm_app::pipeline::{self, Options, Step};
use wasm_app::Error;

use crate::arrow_io::{batch_to_py, schema_to_py, Input};
use crate::errors::{other, WasmError};

/// Results waiting for the consumer, besides the one being made.
const QUEUE: usize = 2;

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
                let result = pipeline::run(
                    &[step],
                    options,
                    batch_size,
                    input.map(|b| b.map_err(Error::from)),
                    |_, batch| {
                        tx.send(Message::Batch(batch.clone()))
                            .map_err(|_| Error::Other(anyhow::anyhow!("the reader was closed")))
                    },
                    |_| {},
                );
                let _ = end.send(Message::End(result.map(|_| ())));
            })
            .map_err(|e| other(format!("cannot start the stream's thread: {e}")))?;
        // The receiver goes into the GIL-free closure and comes back.
        let (rx, first) = py.detach(move || {
            let first = rx.recv();
            (rx, first)
        });
        let mut state = State {
            rx,
            first: None,
            done: false,
        };
        let schema = match first {
            Ok(Message::Batch(b)) => {
                let s = b.schema();
                state.first = Some(b);
                s
            }
            Ok(Message::End(Ok(()))) => {
                state.done = true;
                SchemaRef::new(Schema::empty())
            }
            Ok(Message::End(Err(e))) => return Err(WasmError(e).into()),
            Err(_) => return Err(other("the stream's thread ended without a result")),
        };
        Ok(BatchStream {
            state: Mutex::new(state),
            schema,
        })
    }

    pub(crate) fn schema<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        schema_to_py(py, self.schema.clone())
    }
}

#[pymethods]
impl BatchStream {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let next = py.detach(|| {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(b) = state.first.take() {
                return Ok(Some(b));
            }
            if state.done {
                return Ok(None);
            }
            match state.rx.recv() {
                Ok(Message::Batch(b)) => Ok(Some(b)),
                Ok(Message::End(end)) => {
                    state.done = true;
                    end.map(|()| None).map_err(WasmError)
                }
                Err(_) => {
                    state.done = true;
                    Err(WasmError(Error::Other(anyhow::anyhow!(
                        "the stream's thread ended without a result"
                    ))))
                }
            }
        })?;
        match next {
            // A batch of another schema than the first would break the
            // reader's promise: an error, not a surprise downstream.
            Some(b) if b.schema() != self.schema => Err(other(format!(
                "the module changed its output schema mid-stream: {:?}, then {:?}",
                self.schema,
                b.schema()
            ))),
            Some(b) => batch_to_py(py, b).map(Some),
            None => Ok(None),
        }
    }
}
