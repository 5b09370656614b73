//! The reader's side of the workers: results in, output written in input
//! order, and the reorder buffer's bound (see the [`pipeline`](super) doc).

use std::collections::BTreeMap;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;

use super::{Done, Stats, REORDER_BYTES};

/// Collects worker results and writes them in order.
pub(super) struct Collector<E> {
    emit: E,
    ordered: bool,
    pub(super) stats: Stats,
    schema: Option<SchemaRef>,
    /// The reorder buffer: finished batches waiting for an earlier one, with
    /// their output's IPC length.
    pending: BTreeMap<u64, (Vec<RecordBatch>, usize)>,
    /// Sum of `pending`'s IPC lengths.
    pending_bytes: usize,
    next_out: u64,
    /// Batch results received from the workers.
    taken: u64,
    /// The earliest batch that failed: nothing from it on is written.
    failed_at: Option<u64>,
    pub(super) error: Option<anyhow::Error>,
}

impl<E: FnMut(&SchemaRef, &RecordBatch) -> anyhow::Result<()>> Collector<E> {
    pub(super) fn new(emit: E, ordered: bool) -> Self {
        Collector {
            emit,
            ordered,
            stats: Stats::default(),
            schema: None,
            pending: BTreeMap::new(),
            pending_bytes: 0,
            next_out: 0,
            taken: 0,
            failed_at: None,
            error: None,
        }
    }

    pub(super) fn fail(&mut self, at: Option<u64>, e: anyhow::Error) {
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

    /// Batches of the first `issued` that still hold memory: queued, in a
    /// worker, or in the reorder buffer.
    fn held(&self, issued: u64) -> u64 {
        (issued - self.taken) + self.pending.len() as u64
    }

    /// Whether the reader must wait for results before issuing batch `issued`.
    pub(super) fn full(&self, issued: u64, window: u64) -> bool {
        self.held(issued) >= window || self.pending_bytes > REORDER_BYTES
    }

    pub(super) fn take(&mut self, d: Done) {
        self.stats.bytes_in += d.bytes_in;
        self.taken += 1;
        let batches = match d.result {
            Ok(b) => b,
            Err(e) => {
                self.fail(Some(d.seq), e.context(format!("batch {}", d.seq)));
                return;
            }
        };
        if self.schema.is_none() {
            self.schema = d.schema;
        }
        if !self.ordered {
            if self.error.is_none() {
                self.write(&batches);
            }
        } else {
            self.pending.insert(d.seq, (batches, d.bytes_out));
            self.pending_bytes += d.bytes_out;
        }
        self.write_ready();
        let depth = self.pending.len() as u64;
        self.stats.max_reorder_depth = self.stats.max_reorder_depth.max(depth);
    }

    /// Writes consecutive finished batches before the first failure.
    fn write_ready(&mut self) {
        while self.next_out < self.failed_at.unwrap_or(u64::MAX) {
            let Some((b, len)) = self.pending.remove(&self.next_out) else {
                break;
            };
            self.pending_bytes -= len;
            self.write(&b);
            self.next_out += 1;
        }
    }

    /// Writes the end-of-stream output ([`finish`]) of one step.
    pub(super) fn flushed(&mut self, schema: Option<SchemaRef>, batches: &[RecordBatch]) {
        if self.schema.is_none() {
            self.schema = schema;
        }
        if self.error.is_none() {
            self.write(batches);
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
                    anyhow::anyhow!(
                        "output schema changed from {} to {}",
                        crate::text::schema_text(&schema),
                        crate::text::schema_text(&b.schema())
                    ),
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
