//! The tabular formats the host reads and writes (a leaf, shared by the
//! readers in `formats.rs`/`parquet_input.rs` and the writers in `sink.rs`).

use std::path::Path;

use arrow::array::RecordBatch;

/// A tabular file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Arrow IPC file (`.arrow`, `.feather`).
    Arrow,
    /// Arrow IPC stream (`.arrows`, `.stream`).
    Arrows,
    /// Comma-separated values with a header line (`.csv`).
    Csv,
    /// Apache Parquet (`.parquet`).
    Parquet,
}

impl Format {
    /// The format an extension names, if any.
    pub fn from_path(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        Some(match ext.as_str() {
            "arrow" | "feather" | "arrow_file" => Format::Arrow,
            "arrows" | "stream" => Format::Arrows,
            "csv" => Format::Csv,
            "parquet" | "pq" => Format::Parquet,
            _ => return None,
        })
    }
}

/// Batches read lazily from one input.
pub(crate) type Batches = Box<dyn Iterator<Item = anyhow::Result<RecordBatch>> + Send>;

/// Rows per batch read and sent to a guest unless told: 8192 keeps each
/// instance's memory (input copy, decoded batch, encoded output) to a few
/// MB while calls stay long enough to amortise their fixed cost.
pub const DEFAULT_BATCH_SIZE: usize = 8192;
