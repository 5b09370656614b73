//! Streaming a dataset through one or more modules, in parallel.
//!
//! The reader thread (the caller's) cuts the input into batches of at most
//! `batch_size` rows and hands them, numbered, to `threads` workers through a
//! bounded channel. Each worker owns one instance per step (instances are
//! cheap; the compiled module is shared). A batch goes through every step as
//! raw IPC bytes — one step's output is the next step's input, never decoded
//! in between — and is decoded once at the end. Results are written in input
//! order (or as they come with `ordered = false`). At the end each worker
//! that processed a batch sends every step the flush call, whose output runs
//! through the later steps: a stateful command (`count`) thus gives one
//! partial result per worker; use one thread for a single total.
//!
//! Memory: at most `2 × threads` batches are in flight, plus the reorder
//! buffer, so host memory is a small multiple of one batch whatever the input
//! size.
//!
//! Errors stop the run: everything before the failing batch (in input order)
//! has been written, and the error names the batch.

use std::collections::BTreeMap;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use arrow::array::RecordBatch;
use arrow::buffer::Buffer;
use arrow::datatypes::SchemaRef;

use crate::engine::LoadedModule;
use crate::plugin::Plugin;
use crate::transport::{self, Table};

/// Default rows per batch sent to a guest.
/// 8192 keeps each instance's memory (input copy, decoded batch, encoded output)
/// to a few MB while calls stay long enough to amortise their fixed cost.
pub const DEFAULT_BATCH_SIZE: usize = 8192;

/// One module and the command to run in it.
#[derive(Clone)]
pub struct Step {
    pub module: LoadedModule,
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
}

struct Work {
    seq: u64,
    batch: RecordBatch,
}

/// A result from a worker; `seq == None` for flush output.
struct Done {
    seq: Option<u64>,
    result: anyhow::Result<Vec<RecordBatch>>,
    schema: Option<SchemaRef>,
    bytes_in: u64,
}

/// Metadata streams of a step, encoded once.
struct Prepared {
    command: String,
    meta: Vec<u8>,
    flush: Vec<u8>,
}

fn prepare(step: &Step) -> anyhow::Result<Prepared> {
    let mut flush_cfg: Vec<_> = step
        .config
        .iter()
        .filter(|(k, _)| k != "flush")
        .cloned()
        .collect();
    flush_cfg.push(("flush".into(), "true".into()));
    Ok(Prepared {
        command: step.command.clone(),
        meta: transport::encode_meta(&step.command, &step.config)?,
        flush: transport::encode_meta(&step.command, &flush_cfg)?,
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
            .with_guest(|g| g.process_arrow_parts(&m.meta, &parts))
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

fn decode(bytes: Buffer, max_output: u64) -> anyhow::Result<(Option<SchemaRef>, Vec<RecordBatch>)> {
    match transport::decode_stream(bytes, max_output)
        .context("a module returned an invalid Arrow stream")?
    {
        Some(Table { schema, batches }) => Ok((Some(schema), batches)),
        None => Ok((None, Vec::new())),
    }
}

fn worker(id: usize, steps: &[Step], rx: &Mutex<Receiver<Work>>, tx: &SyncSender<Done>) {
    let prepared: anyhow::Result<Vec<Prepared>> = steps.iter().map(prepare).collect();
    let prepared = match prepared {
        Ok(p) => p,
        Err(e) => {
            let _ = tx.send(Done {
                seq: None,
                result: Err(e),
                schema: None,
                bytes_in: 0,
            });
            return;
        }
    };
    // The last step's result is decoded on the host: its policy bounds it.
    let max_output = steps
        .last()
        .map_or(0, |s| s.module.policy().limits.output_limit());
    let mut plugins: Vec<Plugin> = steps
        .iter()
        .map(|s| Plugin::new(s.module.clone()))
        .collect();
    let mut processed = 0u64;
    loop {
        // Hold the lock only to take one item.
        let work = match rx.lock() {
            Ok(r) => r.recv(),
            Err(_) => return,
        };
        let Ok(Work { seq, batch }) = work else { break };
        processed += 1;
        let mut run = || -> anyhow::Result<(u64, Option<SchemaRef>, Vec<RecordBatch>)> {
            let data = transport::encode_parts(&batch.schema(), std::slice::from_ref(&batch))?;
            let n = data.iter().map(|b| b.len() as u64).sum();
            let out = chain(&mut plugins, &prepared, 0, data)?;
            let (schema, batches) = decode(out, max_output)?;
            Ok((n, schema, batches))
        };
        let done = match run() {
            Ok((n, schema, batches)) => Done {
                seq: Some(seq),
                result: Ok(batches),
                schema,
                bytes_in: n,
            },
            Err(e) => Done {
                seq: Some(seq),
                result: Err(e),
                schema: None,
                bytes_in: 0,
            },
        };
        if tx.send(done).is_err() {
            return;
        }
    }
    // End of input: flush every step; its output goes through the later
    // steps. A worker that saw no batch has no state to flush (worker 0
    // still flushes, so an empty input gets e.g. a count of zero).
    if processed == 0 && id > 0 {
        return;
    }
    for k in 0..plugins.len() {
        let flushed = plugins[k]
            .with_guest(|g| g.process_arrow_raw(&prepared[k].flush, &[]))
            .with_context(|| format!("step {} flush", k + 1))
            .and_then(|bytes| chain(&mut plugins, &prepared, k + 1, vec![bytes]))
            .and_then(|bytes| decode(bytes, max_output));
        let done = match flushed {
            Ok((schema, batches)) => Done {
                seq: None,
                result: Ok(batches),
                schema,
                bytes_in: 0,
            },
            Err(e) => Done {
                seq: None,
                result: Err(e),
                schema: None,
                bytes_in: 0,
            },
        };
        if tx.send(done).is_err() {
            return;
        }
    }
}

/// Collects worker results and writes them in order.
struct Collector<E> {
    emit: E,
    ordered: bool,
    stats: Stats,
    schema: Option<SchemaRef>,
    pending: BTreeMap<u64, Vec<RecordBatch>>,
    next_out: u64,
    /// The earliest batch that failed: nothing from it on is written.
    failed_at: Option<u64>,
    error: Option<anyhow::Error>,
    flushes: Vec<Vec<RecordBatch>>,
}

impl<E: FnMut(&SchemaRef, &RecordBatch) -> anyhow::Result<()>> Collector<E> {
    fn fail(&mut self, at: Option<u64>, e: anyhow::Error) {
        if let Some(s) = at {
            // Report the earliest failing batch, as output stops there.
            if self.failed_at.is_none_or(|f| s < f) {
                self.failed_at = Some(s);
                self.error = Some(e);
                return;
            }
        }
        self.error.get_or_insert(e);
    }

    fn take(&mut self, d: Done) {
        self.stats.bytes_in += d.bytes_in;
        let batches = match d.result {
            Ok(b) => b,
            Err(e) => {
                let e = match d.seq {
                    Some(s) => e.context(format!("batch {s}")),
                    None => e,
                };
                self.fail(d.seq, e);
                return;
            }
        };
        if self.schema.is_none() {
            self.schema = d.schema;
        }
        match d.seq {
            None => self.flushes.push(batches),
            Some(_) if !self.ordered => {
                if self.error.is_none() {
                    self.write(&batches);
                }
            }
            Some(s) => {
                self.pending.insert(s, batches);
            }
        }
        self.write_ready();
    }

    /// Writes consecutive finished batches before the first failure.
    fn write_ready(&mut self) {
        while self.next_out < self.failed_at.unwrap_or(u64::MAX) {
            let Some(b) = self.pending.remove(&self.next_out) else {
                break;
            };
            self.write(&b);
            self.next_out += 1;
        }
    }

    fn write(&mut self, batches: &[RecordBatch]) {
        let Some(schema) = self.schema.clone() else {
            return;
        };
        for b in batches {
            if b.schema() != schema {
                self.fail(
                    None,
                    anyhow::anyhow!("output schema changed from {schema:?} to {:?}", b.schema()),
                );
                self.failed_at = Some(0);
                return;
            }
            if let Err(e) = (self.emit)(&schema, b) {
                self.fail(None, e);
                self.failed_at = Some(0);
                return;
            }
            self.stats.batches_out += 1;
            self.stats.rows_out += b.num_rows() as u64;
        }
    }
}

/// Streams `input` through `steps`, calling `emit` with the output schema
/// and each output batch, in input order unless `options.ordered` is off.
/// `input` batches are re-cut to at most `batch_size` rows.
///
/// On error, every batch before the failing one has been emitted; the error
/// names the batch (numbered from 0 after re-cutting).
pub fn run(
    steps: &[Step],
    options: Options,
    batch_size: usize,
    input: impl Iterator<Item = anyhow::Result<RecordBatch>>,
    emit: impl FnMut(&SchemaRef, &RecordBatch) -> anyhow::Result<()>,
    mut progress: impl FnMut(&Stats),
) -> anyhow::Result<Stats> {
    anyhow::ensure!(!steps.is_empty(), "no step to run");
    let threads = options.threads.max(1);
    let batch_size = batch_size.max(1);
    let (work_tx, work_rx) = mpsc::sync_channel::<Work>(threads * 2);
    let (done_tx, done_rx) = mpsc::sync_channel::<Done>(threads * 2);
    let work_rx = Arc::new(Mutex::new(work_rx));
    let steps: Arc<Vec<Step>> = Arc::new(steps.to_vec());
    let mut c = Collector {
        emit,
        ordered: options.ordered,
        stats: Stats::default(),
        schema: None,
        pending: BTreeMap::new(),
        next_out: 0,
        failed_at: None,
        error: None,
        flushes: Vec::new(),
    };

    std::thread::scope(|scope| {
        for id in 0..threads {
            let (rx, tx, steps) = (work_rx.clone(), done_tx.clone(), steps.clone());
            scope.spawn(move || worker(id, &steps, &rx, &tx));
        }
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
    });

    if c.error.is_none() {
        for batches in std::mem::take(&mut c.flushes) {
            c.write(&batches);
        }
    }
    match c.error {
        Some(e) => Err(e),
        None => Ok(c.stats),
    }
}
