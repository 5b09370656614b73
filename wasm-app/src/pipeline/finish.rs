//! End of stream: the flush calls, the merge call, and the later steps (the
//! protocol is in the [`pipeline`](super) module doc).
//!
//! Invariant: each step's end-of-stream output reaches the later steps, and
//! the caller, as exactly one stream however many workers flushed, so the
//! result of a stateful command does not depend on the number of threads.

use anyhow::{anyhow, bail, ensure, Context};
use arrow::array::RecordBatch;
use arrow::buffer::Buffer;
use arrow::datatypes::SchemaRef;

use super::{chain, decode, last_output_limit, Prepared};
use crate::plugin::Plugin;
use crate::transport;

/// Flushes the steps in order on every worker's instances (`workers[w][k]`:
/// worker `w`'s instance of step `k`), merges a step's flush results when
/// more than one worker returned a stream, runs the one result through the
/// later steps of the worker that holds it, and gives its decoded output to
/// `emit`, which returns whether to go on.
pub(super) fn finish(
    workers: &mut [Vec<Plugin>],
    prepared: &[Prepared],
    mut emit: impl FnMut(Option<SchemaRef>, Vec<RecordBatch>) -> bool,
) -> anyhow::Result<()> {
    for k in 0..prepared.len() {
        let mut streams: Vec<(usize, Buffer)> = flush_all(workers, prepared, k)?
            .into_iter()
            .enumerate()
            .filter(|(_, b)| !b.is_empty())
            .collect();
        let (w, bytes) = match streams.len() {
            0 => continue,
            1 => streams.swap_remove(0),
            _ => {
                // On the first worker's instance: any one would do.
                let w = streams[0].0;
                let partials = streams.into_iter().map(|(_, b)| b).collect();
                (w, merge(&mut workers[w][k], &prepared[k], k, partials)?)
            }
        };
        let out = chain(&mut workers[w], prepared, k + 1, vec![bytes])?;
        let (schema, batches) = decode(out, last_output_limit(prepared))?;
        if !emit(schema, batches) {
            break;
        }
    }
    Ok(())
}

/// `step N (module `command`)`, as errors name a step.
fn step_name(plugin: &Plugin, m: &Prepared, k: usize) -> String {
    format!(
        "step {} ({} `{}`)",
        k + 1,
        plugin.module().name(),
        m.command
    )
}

/// Every worker's flush call of step `k` (in parallel), in worker order.
fn flush_all(
    workers: &mut [Vec<Plugin>],
    prepared: &[Prepared],
    k: usize,
) -> anyhow::Result<Vec<Buffer>> {
    let m = &prepared[k];
    let flush = |plugin: &mut Plugin| -> anyhow::Result<Buffer> {
        let name = step_name(plugin, m, k);
        plugin
            .with_instance(|i| i.process_parts::<&[u8]>(&m.flush, &[]))
            .with_context(|| format!("{name} flush"))
    };
    if let [one] = workers {
        return Ok(vec![flush(&mut one[k])?]);
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = workers
            .iter_mut()
            .map(|w| scope.spawn(|| flush(&mut w[k])))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow!("a flush thread panicked")))
            })
            .collect()
    })
}

/// The merge call of step `k` on `plugin`: `partials` (flush results, each
/// an IPC stream) as one stream in, one stream out.
fn merge(
    plugin: &mut Plugin,
    m: &Prepared,
    k: usize,
    partials: Vec<Buffer>,
) -> anyhow::Result<Buffer> {
    let name = step_name(plugin, m, k);
    let mut schema: Option<SchemaRef> = None;
    let mut batches = Vec::new();
    for bytes in partials {
        let (s, b) = decode(bytes, m.max_output).with_context(|| format!("{name} flush"))?;
        match (&schema, s) {
            (None, s) => schema = s,
            (Some(first), Some(s)) if *first != s => bail!(
                "{name} flush: the instances' results have different schemas \
                 ({} and {}), so they cannot be merged",
                crate::text::guest_text(format!("{first:?}").as_bytes()),
                crate::text::guest_text(format!("{s:?}").as_bytes())
            ),
            _ => {}
        }
        batches.extend(b);
    }
    let schema = schema.ok_or_else(|| anyhow!("{name} flush: no stream to merge"))?;
    let data = transport::encode_parts(&schema, &batches)?;
    let out = plugin
        .with_instance(|i| i.process_parts(&m.merge, &data))
        .with_context(|| format!("{name} merge"))?;
    // A guest that does not know the merge call may take it for a data call,
    // which for a command emitting only at flush returns nothing: that must
    // not pass for a result (it would drop every instance's result).
    ensure!(
        !out.is_empty(),
        "{name}: the merge call (config `{}`) returned nothing: this module \
         does not combine the flush results of several instances, so it \
         needs one thread (`--threads 1`)",
        wasm_abi::meta::MERGE
    );
    Ok(out)
}
