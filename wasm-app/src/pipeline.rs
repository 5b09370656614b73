//! Streaming a dataset through one or more modules, in parallel.
//!
//! The reader thread (the caller's) cuts the input into batches of at most
//! `batch_size` rows and hands them, numbered, to `threads` workers through a
//! bounded channel. Each worker owns one instance per step (instances are
//! cheap; the compiled module is shared). A batch goes through every step as
//! raw IPC bytes — one step's output is the next step's input, never decoded
//! in between — and is decoded once at the end. Results are written in input
//! order (or as they come with `ordered = false`).
//!
//! End of stream (`pipeline/finish.rs`): step by step, every worker that processed a
//! batch (and worker 0 always, so an empty input still gets e.g. a count of
//! zero) sends its instance the flush call (config
//! [`wasm_abi::meta::FLUSH`]). If more than one of those returned a stream,
//! the host calls the command once more on one instance with config
//! [`wasm_abi::meta::MERGE`] and their concatenation as data, and the merged
//! result replaces them: a stateful command (`count`) gives one result
//! whatever the number of threads. An empty merge result is an error (a
//! guest that does not know the merge call, e.g. one treating it as a data
//! call of `count`). The result runs through the later steps, whose flush
//! follows.
//!
//! Memory: at most [`WINDOW_PER_THREAD`] × `threads` batches are between the
//! reader and the output at once (queued, in a worker, or finished and
//! waiting in the reorder buffer for an earlier one), and the reader also
//! stops while the reorder buffer holds more than [`REORDER_BYTES`] of
//! result bytes: host memory is bounded by that window (each result by its
//! step's `max-output`) whatever the input size, even if one batch is much
//! slower than the others.
//!
//! Errors stop the run: everything before the failing batch (in input order)
//! has been written, and the error names the batch.

mod collect;
mod finish;

use collect::Collector;

use std::panic::AssertUnwindSafe;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::Mutex;

use anyhow::{anyhow, Context};
use arrow::array::RecordBatch;
use arrow::buffer::Buffer;
use arrow::datatypes::SchemaRef;

use crate::error::{Error, Result};
use crate::module::Module;
use crate::plugin::Plugin;
use crate::transport::{self, Table};

/// Batches per worker that may be between the reader and the output.
pub const WINDOW_PER_THREAD: usize = 4;

/// Output bytes (IPC) the reorder buffer may hold before the reader waits.
pub const REORDER_BYTES: usize = 64 << 20;

pub use crate::format::DEFAULT_BATCH_SIZE;

/// One module and the command to run in it.
#[derive(Clone)]
pub struct Step {
    pub module: Module,
    pub command: String,
    pub config: Vec<(String, String)>,
}

/// How to run the steps.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub threads: usize,
    pub ordered: bool,
}

/// Counters of a finished run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub batches_in: u64,
    pub rows_in: u64,
    pub bytes_in: u64,
    pub batches_out: u64,
    pub rows_out: u64,
    /// The most batch results that waited at once in the reorder buffer for
    /// an earlier batch (below [`WINDOW_PER_THREAD`] × threads).
    pub max_reorder_depth: u64,
}

struct Work {
    seq: u64,
    batch: RecordBatch,
}

/// A worker's result for batch `seq`.
struct Done {
    seq: u64,
    result: anyhow::Result<Vec<RecordBatch>>,
    schema: Option<SchemaRef>,
    bytes_in: u64,
    /// Length of the output IPC stream, for the reorder buffer's bound.
    bytes_out: usize,
}

impl Done {
    fn failed(seq: u64, e: anyhow::Error) -> Self {
        Done {
            seq,
            result: Err(e),
            schema: None,
            bytes_in: 0,
            bytes_out: 0,
        }
    }
}

/// Metadata streams of a step, encoded once.
struct Prepared {
    command: String,
    meta: Vec<u8>,
    flush: Vec<u8>,
    merge: Vec<u8>,
    /// The step's `max-output`: what the host decodes of this step's
    /// results is bounded by the policy of the module that produced them.
    max_output: u64,
}

fn prepare(step: &Step) -> anyhow::Result<Prepared> {
    use wasm_abi::meta::{FLUSH, MERGE};
    // The step's config without the protocol keys, plus `key = "true"`.
    let with = |key: &str| transport::encode_protocol_meta(&step.command, &step.config, key);
    Ok(Prepared {
        command: step.command.clone(),
        meta: transport::encode_meta(&step.command, &step.config)?,
        flush: with(FLUSH)?,
        merge: with(MERGE)?,
        max_output: step.module.policy().limits.output_limit(),
    })
}

/// Runs an IPC stream, given as parts to concatenate, through
/// `plugins[from..]`; empty output anywhere ends the chain with nothing.
fn chain(
    plugins: &mut [Plugin],
    prepared: &[Prepared],
    from: usize,
    mut parts: Vec<Buffer>,
) -> anyhow::Result<Buffer> {
    for (i, (p, m)) in plugins.iter_mut().zip(prepared).enumerate().skip(from) {
        if parts.iter().all(|b| b.is_empty()) {
            break;
        }
        let out = p
            .with_instance(|i| i.process_parts(&m.meta, &parts))
            .with_context(|| format!("step {} ({} `{}`)", i + 1, p.module().name(), m.command))?;
        parts = vec![out];
    }
    Ok(match parts.len() {
        1 => parts.swap_remove(0),
        _ => Buffer::from(
            parts
                .iter()
                .map(Buffer::as_slice)
                .collect::<Vec<_>>()
                .concat(),
        ),
    })
}

/// The bound on what the last step returns (0 without steps: nothing runs).
fn last_output_limit(prepared: &[Prepared]) -> u64 {
    prepared.last().map_or(0, |m| m.max_output)
}

fn decode(bytes: Buffer, max_output: u64) -> anyhow::Result<(Option<SchemaRef>, Vec<RecordBatch>)> {
    match transport::decode_stream(bytes, max_output)
        .context("a module returned an invalid Arrow stream")?
    {
        Some(Table { schema, batches }) => Ok((Some(schema), batches)),
        None => Ok((None, Vec::new())),
    }
}

/// Processes batches until the input ends; returns the worker's instances
/// for the end of stream ([`finish`]) if it has state to flush: it processed
/// a batch, or it is worker 0 (`None` too after a panic, reported).
fn worker(
    id: usize,
    steps: &[Step],
    prepared: &[Prepared],
    rx: &Mutex<Receiver<Work>>,
    tx: &SyncSender<Done>,
) -> Option<Vec<Plugin>> {
    let mut plugins: Vec<Plugin> = steps
        .iter()
        .map(|s| Plugin::new(s.module.clone()))
        .collect();
    let mut processed = 0u64;
    loop {
        // Hold the lock only to take one item.
        let work = match rx.lock() {
            Ok(r) => r.recv(),
            Err(_) => return None,
        };
        let Ok(Work { seq, batch }) = work else { break };
        processed += 1;
        let run = || -> anyhow::Result<Done> {
            let data = transport::encode_parts(&batch.schema(), std::slice::from_ref(&batch))?;
            let bytes_in = data.iter().map(|b| b.len() as u64).sum();
            let out = chain(&mut plugins, prepared, 0, data)?;
            let bytes_out = out.len();
            let (schema, batches) = decode(out, last_output_limit(prepared))?;
            Ok(Done {
                seq,
                result: Ok(batches),
                schema,
                bytes_in,
                bytes_out,
            })
        };
        // A panic must not leave batch `seq` unanswered: the reader's window
        // would wait for it forever.
        let (done, panicked) = match std::panic::catch_unwind(AssertUnwindSafe(run)) {
            Ok(Ok(done)) => (done, false),
            Ok(Err(e)) => (Done::failed(seq, e), false),
            Err(_) => (Done::failed(seq, anyhow!("the worker panicked")), true),
        };
        if tx.send(done).is_err() || panicked {
            return None;
        }
    }
    (processed > 0 || id == 0).then_some(plugins)
}

/// Streams `input` through `steps`, calling `emit` with the output schema
/// and each output batch, in input order unless `options.ordered` is off.
/// `input` batches are re-cut to at most `batch_size` rows.
///
/// On error, every batch before the failing one has been emitted; the error
/// names the batch (numbered from 0 after re-cutting).
/// Most worker threads [`run`] starts.
pub const MAX_THREADS: usize = 1024;

pub fn run(
    steps: &[Step],
    options: Options,
    batch_size: usize,
    input: impl Iterator<Item = Result<RecordBatch>>,
    mut emit: impl FnMut(&SchemaRef, &RecordBatch) -> Result<()>,
    progress: impl FnMut(&Stats),
) -> Result<Stats> {
    let input = input.map(|r| r.map_err(anyhow::Error::from));
    let emit = |s: &SchemaRef, b: &RecordBatch| emit(s, b).map_err(anyhow::Error::from);
    run_batches(steps, options, batch_size, input, emit, progress).map_err(|e| {
        // A guest's typed error (a limit, a trap, ...) stays typed.
        match e.downcast::<Error>() {
            Ok(typed) => typed,
            Err(e) => Error::Other(e),
        }
    })
}

fn run_batches(
    steps: &[Step],
    options: Options,
    batch_size: usize,
    input: impl Iterator<Item = anyhow::Result<RecordBatch>>,
    emit: impl FnMut(&SchemaRef, &RecordBatch) -> anyhow::Result<()>,
    mut progress: impl FnMut(&Stats),
) -> anyhow::Result<Stats> {
    anyhow::ensure!(!steps.is_empty(), "no step to run");
    // Bounded here too, not only by the CLI: each thread is an instance.
    anyhow::ensure!(
        options.threads <= MAX_THREADS,
        "{} threads requested, at most {MAX_THREADS}",
        options.threads
    );
    let threads = options.threads.max(1);
    let batch_size = batch_size.max(1);
    let (work_tx, work_rx) = mpsc::sync_channel::<Work>(threads * 2);
    let (done_tx, done_rx) = mpsc::sync_channel::<Done>(threads * 2);
    let work_rx = Mutex::new(work_rx);
    let window = (threads * WINDOW_PER_THREAD) as u64;
    let prepared: Vec<Prepared> = steps.iter().map(prepare).collect::<anyhow::Result<_>>()?;
    let mut c = Collector::new(emit, options.ordered);

    let mut workers: Vec<Vec<Plugin>> = Vec::new();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|id| {
                let (rx, tx, prepared) = (&work_rx, done_tx.clone(), &prepared);
                scope.spawn(move || worker(id, steps, prepared, rx, &tx))
            })
            .collect();
        drop(done_tx);
        let mut seq = 0u64;
        'feed: for item in input {
            let batch = match item {
                Ok(b) => b,
                Err(e) => {
                    // Everything read before this point is still written.
                    c.fail(Some(seq), e);
                    break;
                }
            };
            let rows = batch.num_rows();
            let mut offset = 0;
            loop {
                // Wait for results while the window is full: a slow batch
                // stops the reader instead of piling up the ones after it.
                while c.full(seq, window) {
                    match done_rx.recv() {
                        Ok(d) => {
                            c.take(d);
                            progress(&c.stats);
                        }
                        Err(_) => break 'feed,
                    }
                    if c.error.is_some() {
                        break 'feed;
                    }
                }
                let len = batch_size.min(rows - offset);
                c.stats.batches_in += 1;
                c.stats.rows_in += len as u64;
                let mut work = Work {
                    seq,
                    batch: batch.slice(offset, len),
                };
                // Drain results while the workers are busy, so neither
                // bounded channel can block the other.
                loop {
                    match work_tx.try_send(work) {
                        Ok(()) => break,
                        Err(mpsc::TrySendError::Full(w)) => {
                            work = w;
                            match done_rx.recv() {
                                Ok(d) => {
                                    c.take(d);
                                    progress(&c.stats);
                                }
                                Err(_) => break 'feed,
                            }
                            if c.error.is_some() {
                                break 'feed;
                            }
                        }
                        Err(mpsc::TrySendError::Disconnected(_)) => break 'feed,
                    }
                }
                seq += 1;
                offset += len;
                if offset >= rows {
                    break;
                }
            }
        }
        drop(work_tx);
        for d in done_rx.iter() {
            c.take(d);
            progress(&c.stats);
        }
        // Worker 0 first: `finish` merges into the first flushing worker.
        for h in handles {
            match h.join() {
                Ok(Some(plugins)) => workers.push(plugins),
                Ok(None) => {}
                Err(_) => c.fail(None, anyhow!("a pipeline worker panicked")),
            }
        }
    });

    if c.error.is_none() {
        let flushed = finish::finish(&mut workers, &prepared, |schema, batches| {
            c.flushed(schema, &batches);
            c.error.is_none()
        });
        if let Err(e) = flushed {
            c.fail(None, e);
        }
    }
    match c.error {
        Some(e) => Err(e),
        None => Ok(c.stats),
    }
}
