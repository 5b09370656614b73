//! `count`: the one stateful command.
//!
//! Totals live in the instance (a static) from call to call: each data call
//! adds its rows, batches and IPC bytes and returns an empty payload; the
//! flush call returns `rows u64, batches u64, bytes u64` (one row) and resets
//! the totals to zero. A call whose data stream fails to decode adds nothing.

use std::sync::{Arc, Mutex};

use arrow::array::{ArrayRef, UInt64Array};
use arrow::buffer::Buffer;
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;

use crate::ipc::{Input, Output};

/// Running totals since the last flush.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Totals {
    rows: u64,
    batches: u64,
    bytes: u64,
}

static TOTALS: Mutex<Totals> = Mutex::new(Totals {
    rows: 0,
    batches: 0,
    bytes: 0,
});

fn totals() -> std::sync::MutexGuard<'static, Totals> {
    // Totals are plain counters, consistent even after a panic elsewhere.
    TOTALS.lock().unwrap_or_else(|e| e.into_inner())
}

/// A data call: counts `data` (bytes = its IPC length) and returns an
/// empty payload. `None` (no data) counts nothing.
pub fn add(data: Option<&Buffer>) -> Result<Vec<u8>, String> {
    let mut call = Totals {
        bytes: data.map_or(0, |d| d.len()) as u64,
        ..Totals::default()
    };
    if let Some(mut input) = Input::data(data)? {
        // Count into `call` first so a stream failing halfway adds nothing.
        while let Some(batch) = input.next_batch()? {
            call.rows = call.rows.saturating_add(batch.num_rows() as u64);
            call.batches = call.batches.saturating_add(1);
        }
    }
    let mut totals = totals();
    totals.rows = totals.rows.saturating_add(call.rows);
    totals.batches = totals.batches.saturating_add(call.batches);
    totals.bytes = totals.bytes.saturating_add(call.bytes);
    Ok(Vec::new())
}

/// The flush call: the totals as a one-row stream; the totals restart at 0.
pub fn flush() -> Result<Vec<u8>, String> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("rows", DataType::UInt64, false),
        Field::new("batches", DataType::UInt64, false),
        Field::new("bytes", DataType::UInt64, false),
    ]));
    // Held until the reset, so no call's counts slip in between.
    let mut totals = totals();
    let current = *totals;
    let columns: Vec<ArrayRef> = vec![
        Arc::new(UInt64Array::from(vec![current.rows])),
        Arc::new(UInt64Array::from(vec![current.batches])),
        Arc::new(UInt64Array::from(vec![current.bytes])),
    ];
    let batch = RecordBatch::try_new(Arc::clone(&schema), columns)
        .map_err(|e| format!("output batch: {e}"))?;
    let mut out = Output::new(&schema)?;
    out.write(&batch)?;
    let bytes = out.finish()?;
    // Reset only once the result exists, so a failed flush loses nothing.
    *totals = Totals::default();
    Ok(bytes)
}
