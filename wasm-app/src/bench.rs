//! The data-path measurements behind `wasm-app bench`, shared with the
//! criterion benches (`benches/calls.rs`).
//!
//! Every figure is a ratio of two timings taken in the same run, on the
//! same machine state: machines are noisy, ratios much less so. A timing is
//! the median of `repeat` runs after one warm-up run.

use std::hint::black_box;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::{Float64Type, TimestampSecondType, UInt64Type};

use crate::module::Module;
use crate::pipeline::{self, Options, Step};
use crate::plugin::Plugin;
use crate::string_abi::StringAbi;
use crate::transport::{self, Table};

/// Median wall time of `repeat` runs of `f`, after one warm-up run.
pub fn median_time(
    repeat: usize,
    mut f: impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<Duration> {
    f()?;
    let mut times = Vec::with_capacity(repeat.max(1));
    for _ in 0..repeat.max(1) {
        let start = Instant::now();
        f()?;
        times.push(start.elapsed());
    }
    times.sort();
    Ok(times[times.len() / 2])
}

/// `echo` of `rows` rows of the study's schema against memcpy of the same
/// IPC bytes (into a fresh allocation, as a copy to another owner would be).
#[derive(Debug, Clone, Copy)]
pub struct EchoVsMemcpy {
    pub rows: usize,
    pub ipc_bytes: usize,
    pub memcpy: Duration,
    pub echo: Duration,
}

impl EchoVsMemcpy {
    /// Echo time over memcpy time (goal: at most 3).
    pub fn ratio(&self) -> f64 {
        ratio(self.echo, self.memcpy)
    }
}

/// Measures [`EchoVsMemcpy`] with `module` (wasm_module2 or a guest with
/// the same `echo`), checking that the data came back unchanged.
pub fn echo_vs_memcpy(module: &Module, rows: usize, repeat: usize) -> anyhow::Result<EchoVsMemcpy> {
    let input = transport::study_rows(rows)?;
    let ipc = transport::encode_stream(&input.schema, &input.batches)?;
    let mut plugin = Plugin::new(module.clone());
    let out = plugin
        .process_table("echo", &[], &input)?
        .context("echo returned nothing")?;
    if !transport::same_data(&input, &out) {
        bail!("echo changed the data");
    }
    let memcpy = median_time(repeat, || {
        black_box(black_box(&ipc).clone());
        Ok(())
    })?;
    let echo = echo_time(&mut plugin, &input, repeat)?;
    Ok(EchoVsMemcpy {
        rows,
        ipc_bytes: ipc.len(),
        memcpy,
        echo,
    })
}

/// `tokenize` of `rows` rows streamed on 1 and on `threads` workers.
#[derive(Debug, Clone, Copy)]
pub struct ThreadSpeedup {
    pub rows: usize,
    pub threads: usize,
    pub one: Duration,
    pub many: Duration,
}

impl ThreadSpeedup {
    /// Throughput on `threads` workers over throughput on one (goal: at
    /// least 1.8 on 2 cores).
    pub fn speedup(&self) -> f64 {
        ratio(self.one, self.many)
    }
}

/// Runs `tokenize` over `rows` study rows in batches of `batch_size`.
pub fn tokenize(
    module: &Module,
    input: &Table,
    threads: usize,
    batch_size: usize,
) -> anyhow::Result<u64> {
    let step = Step {
        module: module.clone(),
        command: "tokenize".into(),
        config: vec![("column".into(), "content".into())],
    };
    let stats = pipeline::run(
        std::slice::from_ref(&step),
        Options {
            threads,
            ordered: true,
        },
        batch_size,
        input.batches.clone().into_iter().map(Ok),
        |_, _| Ok(()),
        |_| {},
    )?;
    Ok(stats.rows_out)
}

/// Measures [`ThreadSpeedup`] for `tokenize`.
pub fn tokenize_threads(
    module: &Module,
    rows: usize,
    threads: usize,
    repeat: usize,
) -> anyhow::Result<ThreadSpeedup> {
    let input = transport::study_rows(rows)?;
    let batch_size = pipeline::DEFAULT_BATCH_SIZE;
    let one = median_time(repeat, || tokenize(module, &input, 1, batch_size).map(drop))?;
    let many = median_time(repeat, || {
        tokenize(module, &input, threads, batch_size).map(drop)
    })?;
    Ok(ThreadSpeedup {
        rows,
        threads,
        one,
        many,
    })
}

/// One study row as the tab-separated text the per-row alternative sends.
fn row_text(batch: &RecordBatch, i: usize) -> anyhow::Result<String> {
    let col = |n: usize| batch.column(n);
    let id = col(0).as_primitive_opt::<UInt64Type>().context("id: u64")?;
    let content = col(1).as_string_opt::<i32>().context("content: utf8")?;
    let title = col(2).as_string_opt::<i32>().context("title: utf8")?;
    let date = col(3)
        .as_primitive_opt::<TimestampSecondType>()
        .context("date: timestamp[s]")?;
    let score = col(4)
        .as_primitive_opt::<Float64Type>()
        .context("score: f64")?;
    Ok(format!(
        "{}\t{}\t{}\t{}\t{}",
        id.value(i),
        content.value(i),
        title.value(i),
        date.value(i),
        score.value(i)
    ))
}

/// The naive alternative to Arrow batches the study weighed: every row of
/// `input` (the study's schema) sent as one NUL-terminated string through
/// the C ABI of `greeter` (allocate, write, call, read, free per row), and
/// every reply read back as a string. Returns the bytes received.
///
/// This is a lower bound of that design's cost: the replies are not parsed
/// back into columns.
pub fn rows_as_c_strings(greeter: &mut Plugin, input: &Table) -> anyhow::Result<usize> {
    let mut received = 0;
    for batch in &input.batches {
        for i in 0..batch.num_rows() {
            let row = row_text(batch, i)?;
            received += greeter.greet(StringAbi::C, &row)?.len();
        }
    }
    Ok(received)
}

/// Per-row C strings against one Arrow `echo` call, at one row count.
#[derive(Debug, Clone, Copy)]
pub struct RowsVsBatch {
    pub rows: usize,
    pub per_row: Duration,
    pub batch: Duration,
}

impl RowsVsBatch {
    /// Per-row time over Arrow time: above 1, Arrow is faster.
    pub fn ratio(&self) -> f64 {
        ratio(self.per_row, self.batch)
    }
}

/// Measures [`RowsVsBatch`] at each of `row_counts`.
pub fn rows_vs_batch(
    greeter: &Module,
    arrow: &Module,
    row_counts: &[usize],
    repeat: usize,
) -> anyhow::Result<Vec<RowsVsBatch>> {
    let mut g = Plugin::new(greeter.clone());
    let mut a = Plugin::new(arrow.clone());
    row_counts
        .iter()
        .map(|&rows| {
            let input = transport::study_rows(rows)?;
            let per_row = median_time(repeat, || rows_as_c_strings(&mut g, &input).map(drop))?;
            let batch = echo_time(&mut a, &input, repeat)?;
            Ok(RowsVsBatch {
                rows,
                per_row,
                batch,
            })
        })
        .collect()
}

/// Median time of one `echo` of `input` (data call and flush, decoded).
fn echo_time(plugin: &mut Plugin, input: &Table, repeat: usize) -> anyhow::Result<Duration> {
    median_time(repeat, || {
        black_box(plugin.process_table("echo", &[], input)?);
        Ok(())
    })
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-12)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_is_the_middle_run_and_errors_stop() {
        let mut n = 0u64;
        let t = median_time(3, || {
            n += 1;
            std::thread::sleep(Duration::from_millis(n));
            Ok(())
        })
        .unwrap();
        // Runs slept 2, 3 and 4 ms after the 1 ms warm-up: the median is 3.
        assert!(t >= Duration::from_millis(3), "{t:?}");
        assert_eq!(n, 4);
        assert!(median_time(3, || bail!("no")).is_err());
    }

    #[test]
    fn row_text_joins_the_study_columns() {
        let t = transport::study_example().unwrap();
        assert_eq!(
            row_text(&t.batches[0], 0).unwrap(),
            "1\tthis is a test\ttest\t1641038400\t1.123456"
        );
    }
}
