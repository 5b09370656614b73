//! Pipelines of the Arrow guests' commands, run through `pipeline::run`.

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use wasm_app::pipeline::{self, Options, Step};
use wasm_app::transport::Table;
use wasm_app::Module;

/// `command` of `module` with `config`, as a pipeline step.
pub fn step(module: &Module, command: &str, config: &[(&str, &str)]) -> Step {
    Step {
        module: module.clone(),
        command: command.to_string(),
        config: config
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

/// Runs `steps` over `input` (ordered) and collects the output; with no
/// output batch, the schema is the input's.
pub fn run(
    steps: &[Step],
    input: &Table,
    batch_size: usize,
    threads: usize,
) -> anyhow::Result<Table> {
    let mut schema: Option<SchemaRef> = None;
    let mut out = Vec::new();
    pipeline::run(
        steps,
        Options {
            threads,
            ordered: true,
        },
        batch_size,
        input.batches.clone().into_iter().map(Ok),
        |s, b| {
            schema.get_or_insert_with(|| s.clone());
            out.push(b.clone());
            Ok(())
        },
        |_| {},
    )?;
    Ok(Table {
        schema: schema.unwrap_or_else(|| input.schema.clone()),
        batches: out,
    })
}

/// A table's batches as one.
pub fn concat(t: &Table) -> RecordBatch {
    arrow::compute::concat_batches(&t.schema, &t.batches).expect("concat")
}
