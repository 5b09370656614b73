//! `count`: the one stateful command.
//!
//! Totals live in the instance (a static) from call to call: each data call
//! adds its rows, batches and IPC bytes and returns an empty payload; the
//! flush call returns `rows u64, batches u64, bytes u64` (one row) and resets
//! the totals to zero. A call whose data stream fails to decode adds nothing.
//!
//! The merge call (config `merge`) gets several instances' flush results as
//! its data and returns their sum, in the same one-row form; it neither
//! reads nor changes this instance's totals, so it may follow a flush on any
//! instance.

use std::sync::{Arc, Mutex};

use arrow::array::{ArrayRef, UInt64Array};
use arrow::buffer::Buffer;
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;

use crate::columns;
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
    // Held until the reset, so no call's counts slip in between.
    let mut totals = totals();
    let bytes = encode(*totals)?;
    // Reset only once the result exists, so a failed flush loses nothing.
    *totals = Totals::default();
    Ok(bytes)
}

/// The merge call: `data` holds flush results (any number of rows of
/// `rows, batches, bytes`, integer columns); returns their sum as one row.
/// No data sums to zeros.
pub fn merge(data: Option<&Buffer>) -> Result<Vec<u8>, String> {
    let mut sum = Totals::default();
    if let Some(mut input) = Input::data(data)? {
        let schema = input.schema();
        let index = |name: &str| columns::find(&schema, name);
        let (rows, batches, bytes) = (index("rows")?, index("batches")?, index("bytes")?);
        while let Some(batch) = input.next_batch()? {
            let values = |i: usize, name: &str| columns::u64_values(batch.column(i).as_ref(), name);
            let (r, b, n) = (
                values(rows, "rows")?,
                values(batches, "batches")?,
                values(bytes, "bytes")?,
            );
            for ((r, b), n) in r.into_iter().zip(b).zip(n) {
                sum.rows = sum.rows.saturating_add(r);
                sum.batches = sum.batches.saturating_add(b);
                sum.bytes = sum.bytes.saturating_add(n);
            }
        }
    }
    encode(sum)
}

/// `totals` as a one-row `rows, batches, bytes` (u64) stream.
fn encode(totals: Totals) -> Result<Vec<u8>, String> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("rows", DataType::UInt64, false),
        Field::new("batches", DataType::UInt64, false),
        Field::new("bytes", DataType::UInt64, false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(UInt64Array::from(vec![totals.rows])),
        Arc::new(UInt64Array::from(vec![totals.batches])),
        Arc::new(UInt64Array::from(vec![totals.bytes])),
    ];
    let batch = RecordBatch::try_new(Arc::clone(&schema), columns)
        .map_err(|e| format!("output batch: {e}"))?;
    let mut out = Output::new(&schema)?;
    out.write(&batch)?;
    out.finish()
}
