//! Batches as text tables, bounded: what a guest returns is printed on a
//! terminal, so each cell is cut to [`MAX_CELL`] characters and escaped
//! (`text::escape_controls`), and rows go out in chunks of [`CHUNK_ROWS`]
//! padded among themselves only. A table of a million rows padded to one
//! 60 KB cell would otherwise be a 60 GB string; here the text is at most
//! `rows × columns × MAX_CELL`, written as it is made. The layout is
//! arrow's `pretty_format_batches` (`+----+`, `| id |`).

use std::io::Write;

use arrow::array::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};

use crate::text::escape_controls;

/// Most characters shown of one cell.
pub const MAX_CELL: usize = 256;
/// Rows formatted and padded together.
pub const CHUNK_ROWS: usize = 1000;

/// Writes `batch` as one or more text tables.
pub fn write(batch: &RecordBatch, out: &mut dyn Write) -> anyhow::Result<()> {
    let options = FormatOptions::default().with_null("");
    let formatters = batch
        .columns()
        .iter()
        .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
        .collect::<Result<Vec<_>, _>>()?;
    let header: Vec<String> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| cell(f.name()))
        .collect();
    let mut start = 0;
    while start < batch.num_rows() {
        let end = (start + CHUNK_ROWS).min(batch.num_rows());
        let rows: Vec<Vec<String>> = (start..end)
            .map(|r| {
                formatters
                    .iter()
                    .map(|f| cell(&f.value(r).to_string()))
                    .collect()
            })
            .collect();
        let widths: Vec<usize> = (0..header.len())
            .map(|c| {
                rows.iter()
                    .map(|row| row[c].chars().count())
                    .chain([header[c].chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let border: String = widths
            .iter()
            .map(|w| format!("+{}", "-".repeat(w + 2)))
            .chain(["+".to_string()])
            .collect();
        writeln!(out, "{border}")?;
        line(out, &header, &widths)?;
        writeln!(out, "{border}")?;
        for row in &rows {
            line(out, row, &widths)?;
        }
        writeln!(out, "{border}")?;
        start = end;
    }
    Ok(())
}

/// Batches as text (for the demo).
pub fn to_string(batches: &[RecordBatch]) -> anyhow::Result<String> {
    let mut out = Vec::new();
    for b in batches {
        write(b, &mut out)?;
    }
    Ok(String::from_utf8_lossy(&out).trim_end().to_string())
}

fn line(out: &mut dyn Write, cells: &[String], widths: &[usize]) -> std::io::Result<()> {
    let mut text = String::new();
    for (c, w) in cells.iter().zip(widths) {
        let pad = w - c.chars().count();
        text.push_str(&format!("| {c}{} ", " ".repeat(pad)));
    }
    writeln!(out, "{text}|")
}

/// One cell: at most [`MAX_CELL`] characters, control characters escaped.
fn cell(text: &str) -> String {
    let mut cut: String = text.chars().take(MAX_CELL).collect();
    if cut.len() < text.len() {
        cut.push('…');
    }
    escape_controls(&cut)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, StringArray, UInt64Array};

    use super::*;

    #[test]
    fn tables_look_like_arrows_and_cells_are_bounded() {
        let batch = RecordBatch::try_from_iter([
            ("id", Arc::new(UInt64Array::from(vec![1])) as ArrayRef),
            (
                "content",
                Arc::new(StringArray::from(vec!["this is a test2"])) as ArrayRef,
            ),
        ])
        .expect("batch");
        let ours = to_string(std::slice::from_ref(&batch)).expect("text");
        let arrows = arrow::util::pretty::pretty_format_batches(&[batch])
            .expect("arrow's text")
            .to_string();
        assert_eq!(ours, arrows);

        let long = "\x1b[2J".to_string() + &"x".repeat(100_000);
        let batch = RecordBatch::try_from_iter([(
            "s",
            Arc::new(StringArray::from(vec![long.as_str(); 3000])) as ArrayRef,
        )])
        .expect("batch");
        let text = to_string(&[batch]).expect("text");
        assert!(!text.contains('\x1b'));
        // 3000 rows of at most MAX_CELL characters, plus escapes and frames.
        assert!(
            text.len() < 3000 * (MAX_CELL + 40) + 10_000,
            "{}",
            text.len()
        );
    }
}
