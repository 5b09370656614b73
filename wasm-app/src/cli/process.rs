//! `wasm-app process`: files through a pipeline of modules, into a sink.

use std::path::PathBuf;

use anyhow::{bail, Context};

use wasm_app::formats::{self, Format};
use wasm_app::pipeline;

use crate::outln;

use super::args::PolicyArgs;

/// Turns --module/--command and --step into loaded steps (one runtime).
pub(super) fn build_steps(
    module: Option<PathBuf>,
    command: Option<String>,
    steps: &[String],
    config: &[(String, String)],
    args: &PolicyArgs,
) -> anyhow::Result<Vec<pipeline::Step>> {
    let mut specs: Vec<(PathBuf, String)> = Vec::new();
    if let Some(m) = module {
        let c = command
            .clone()
            .context("--module needs --command (e.g. --command echo)")?;
        specs.push((m, c));
    }
    for s in steps {
        // MODULE:COMMAND, where COMMAND has no path separator.
        let (m, c) = match s.rsplit_once(':') {
            Some((m, c)) if !m.is_empty() && !c.is_empty() && !c.contains(['/', '\\']) => {
                (PathBuf::from(m), c.to_string())
            }
            _ => (
                PathBuf::from(s),
                command.clone().with_context(|| {
                    format!("--step {s} has no :COMMAND and no --command was given")
                })?,
            ),
        };
        specs.push((m, c));
    }
    if specs.is_empty() {
        bail!("nothing to run: give --module FILE --command CMD, or --step MODULE:COMMAND");
    }
    let policy = args.policy()?;
    let rt = args.runtime(&policy)?;
    specs
        .into_iter()
        .map(|(m, command)| {
            Ok(pipeline::Step {
                module: rt.load(&m, policy.clone())?,
                command,
                config: config.to_vec(),
            })
        })
        .collect()
}

pub(super) struct ProcessJob {
    pub(super) inputs: Vec<PathBuf>,
    pub(super) input_format: Option<Format>,
    pub(super) output: Option<PathBuf>,
    pub(super) format: Option<Format>,
    pub(super) batch_size: usize,
    pub(super) options: pipeline::Options,
    pub(super) quiet: bool,
}

/// Opens all inputs and checks they share one schema.
/// Input batches are bounded like results: by the first step's `max-output`.
fn open_inputs(job: &ProcessJob, max_batch_bytes: u64) -> anyhow::Result<Vec<formats::Source>> {
    let mut sources: Vec<formats::Source> = Vec::new();
    for path in &job.inputs {
        let src = formats::open(path, job.input_format, job.batch_size, max_batch_bytes)?;
        if let Some(first) = sources.first() {
            if first.schema.fields() != src.schema.fields() {
                bail!(
                    "{} has schema {:?}, unlike {} ({:?}): inputs processed together need one schema",
                    src.name,
                    src.schema.fields(),
                    first.name,
                    first.schema.fields()
                );
            }
        }
        sources.push(src);
    }
    Ok(sources)
}

pub(super) fn process(steps: &[pipeline::Step], job: ProcessJob) -> anyhow::Result<()> {
    let max_batch_bytes = steps
        .first()
        .map_or(wasm_app::policy::DEFAULT_MAX_MEMORY, |s| {
            s.module.policy().limits.output_limit()
        });
    let sources = open_inputs(&job, max_batch_bytes)?;
    let input = sources.into_iter().flatten();
    let mut sink: Option<Box<dyn formats::Sink>> = None;
    let bar = progress_bar(job.quiet);
    let start = std::time::Instant::now();
    let result = pipeline::run(
        steps,
        job.options,
        job.batch_size,
        input,
        |schema, batch| {
            if sink.is_none() {
                sink = Some(match &job.output {
                    Some(path) => formats::create(path, job.format, schema)?,
                    None => Box::new(formats::PrettySink),
                });
            }
            match sink.as_mut() {
                Some(s) => s.write(batch),
                None => Ok(()),
            }
        },
        |stats| {
            if let Some(bar) = &bar {
                let secs = start.elapsed().as_secs_f64().max(1e-9);
                bar.set_message(format!(
                    "{} rows in, {} rows out, {:.1} MB read, {:.0} rows/s",
                    stats.rows_in,
                    stats.rows_out,
                    stats.bytes_in as f64 / 1e6,
                    stats.rows_in as f64 / secs
                ));
                bar.tick();
            }
        },
    );
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    // Whatever happened, leave a complete, valid file of what was written.
    let finished = match sink {
        Some(s) => s.finish(),
        None => Ok(()),
    };
    let stats = result?;
    finished?;
    match (&job.output, stats.batches_out) {
        (Some(path), 0) if !path.exists() => bail!(
            "the modules returned no Arrow stream, so {} was not written",
            path.display()
        ),
        (Some(path), _) if !job.quiet && path.as_os_str() != "-" => eprintln!(
            "wrote {} rows in {} batches to {}",
            stats.rows_out,
            stats.batches_out,
            path.display()
        ),
        (None, 0) => outln!("(no output)"),
        _ => {}
    }
    Ok(())
}

/// A spinner with counters on stderr, only for a terminal.
fn progress_bar(quiet: bool) -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    if quiet || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new_spinner();
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    Some(bar)
}
