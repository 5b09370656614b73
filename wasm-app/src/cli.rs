//! The `wasm-app` command line: a thin layer over the library.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use wasm_abi::built;

use wasm_app::error::escape_controls;
use wasm_app::formats::{self, Format};
use wasm_app::policy::{parse_duration, parse_size};
use wasm_app::transport;
use wasm_app::{component, inspect, pipeline, sink};
use wasm_app::{DirGrant, EngineOptions, Plugin, Policy, Runtime, StringAbi};

/// `print!` that returns a write error (`EPIPE` under `| head`) instead of
/// panicking; `main` ends quietly on a broken pipe.
macro_rules! out {
    ($($t:tt)*) => {
        std::io::Write::write_fmt(&mut std::io::stdout().lock(), format_args!($($t)*))
            .context("cannot write <stdout>")?
    };
}

/// `println!` that returns a write error; see [`out!`].
macro_rules! outln {
    ($($t:tt)*) => {
        out!("{}\n", format_args!($($t)*))
    };
}

/// Load untrusted WebAssembly modules and exchange data with them safely.
#[derive(Debug, Parser)]
#[command(name = "wasm-app", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the study's demo: answer(), both greeters, the Arrow `test` command.
    Demo {
        /// Folder holding wasm_module1.wasm and wasm_module2.wasm
        /// [default: $WASM_APP_MODULES or target/wasm-modules].
        #[arg(long)]
        modules: Option<PathBuf>,
        /// Name to greet.
        #[arg(long, default_value = "Rust")]
        name: String,
        #[command(flatten)]
        policy: PolicyArgs,
    },
    /// Call a module's greeter.
    Greet {
        /// The module (.wasm or .wat).
        #[arg(long)]
        module: PathBuf,
        /// Which string ABI to use: c or rust.
        #[arg(long, default_value = "rust")]
        abi: StringAbi,
        /// Name to greet.
        name: String,
        #[command(flatten)]
        policy: PolicyArgs,
    },
    /// Stream tabular data through one or more modules' Arrow commands.
    ///
    /// Inputs (Arrow IPC file or stream, CSV, Parquet, or - for stdin) with
    /// one schema are processed as one stream, batch by batch, by --threads
    /// instances; output is written as it arrives.
    Process {
        /// The module (.wasm or .wat); the first step.
        #[arg(long)]
        module: Option<PathBuf>,
        /// Command to run in --module (e.g. test, echo, replace, filter).
        #[arg(long)]
        command: Option<String>,
        /// Further steps, MODULE[:COMMAND] (repeatable); each step's output
        /// feeds the next. Without :COMMAND, --command is used.
        #[arg(long = "step", value_name = "MODULE[:COMMAND]")]
        steps: Vec<String>,
        /// Command configuration, KEY=VALUE (repeatable; given to every step).
        #[arg(long = "config", value_name = "KEY=VALUE")]
        config: Vec<String>,
        /// Inputs: Arrow IPC file or stream, CSV, Parquet; - for stdin.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// Input format [default: by extension, else Arrow IPC by magic bytes].
        #[arg(long, value_enum)]
        input_format: Option<Format>,
        /// Output file (- for stdout): .arrow IPC file, .arrows IPC stream,
        /// .csv, .parquet; without it the result is printed as tables.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Output format [default: by extension, else an IPC stream].
        #[arg(long, value_enum)]
        format: Option<Format>,
        /// Rows per batch sent to a module (1 to 16 777 216).
        #[arg(long, default_value_t = pipeline::DEFAULT_BATCH_SIZE,
              value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1 << 24))]
        batch_size: usize,
        /// Worker threads, one instance each (1 to 1024) [default: available cores].
        #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1024))]
        threads: Option<usize>,
        /// Write results as they finish instead of in input order.
        #[arg(long)]
        unordered: bool,
        /// No progress bar.
        #[arg(short, long)]
        quiet: bool,
        #[command(flatten)]
        policy: PolicyArgs,
    },
    /// Measure the data path in one run, as ratios: Arrow `echo` against
    /// memcpy, `tokenize` on 1 against N threads, and one C string per row
    /// against one Arrow batch.
    Bench {
        /// Folder holding wasm_module1.wasm and wasm_module2.wasm
        /// [default: $WASM_APP_MODULES or target/wasm-modules].
        #[arg(long)]
        modules: Option<PathBuf>,
        /// Rows of the study's schema for `echo` and `tokenize`.
        #[arg(long, default_value_t = 1_000_000)]
        rows: usize,
        /// Threads for the parallel `tokenize` run [default: available cores].
        #[arg(long)]
        threads: Option<usize>,
        /// Timed runs per figure (after one warm-up); the median is kept.
        #[arg(long, default_value_t = 5)]
        repeat: usize,
        /// Row counts at which per-row C strings are compared with Arrow.
        #[arg(long, value_delimiter = ',', default_value = "1,10,100,1000,10000")]
        crossover: Vec<usize>,
    },
    /// Show a module's imports, exports, ABI support and WASI needs.
    Inspect {
        /// The module (.wasm or .wat).
        file: PathBuf,
    },
}

/// Policy flags; they override `--policy`. Names follow the `wasmtime` CLI.
#[derive(Debug, Args, Clone, Default)]
struct PolicyArgs {
    /// TOML policy manifest (never taken from the module's own folder
    /// implicitly).
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Grant a directory read-only: HOST[::GUEST].
    #[arg(long = "dir", value_name = "HOST[::GUEST]")]
    dirs: Vec<String>,
    /// Grant a directory read-write: HOST[::GUEST].
    #[arg(long = "dir-rw", value_name = "HOST[::GUEST]")]
    dirs_rw: Vec<String>,
    /// Environment variable for the guest: KEY=VALUE.
    #[arg(long = "env", value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// Memory cap per instance, e.g. 64MiB.
    #[arg(long, value_name = "SIZE")]
    max_memory: Option<String>,
    /// Bound on one guest result and one input batch (IPC bytes and
    /// decoded size), e.g. 16MiB; default: the memory limit.
    #[arg(long, value_name = "SIZE")]
    max_output: Option<String>,
    /// Wall-clock cap per call, e.g. 500ms, 5s.
    #[arg(long, value_name = "DURATION")]
    timeout: Option<String>,
    /// Fuel per call (roughly, instructions).
    #[arg(long, value_name = "N")]
    fuel: Option<u64>,
    /// Cap on live instances; also selects the pooling allocator.
    #[arg(long, value_name = "N")]
    max_instances: Option<u32>,
    /// Files and directories a guest may hold open at once (grants included).
    #[arg(long, value_name = "N")]
    max_open_files: Option<u32>,
    /// Largest module file the host will compile, e.g. 16MiB.
    #[arg(long, value_name = "SIZE")]
    max_module_size: Option<String>,
    /// Longest time the host spends compiling the module, e.g. 10s.
    #[arg(long, value_name = "DURATION")]
    compile_timeout: Option<String>,
    /// Let the guest use the host's stdin, stdout and stderr.
    #[arg(long)]
    inherit_stdio: bool,
    /// Do not use the compiled-module cache.
    #[arg(long)]
    no_cache: bool,
}

impl PolicyArgs {
    fn policy(&self) -> anyhow::Result<Policy> {
        let mut p = match &self.policy {
            Some(f) => Policy::from_file(f)?,
            None => Policy::default(),
        };
        for d in &self.dirs {
            p.dirs.push(DirGrant::parse(d, false)?);
        }
        for d in &self.dirs_rw {
            p.dirs.push(DirGrant::parse(d, true)?);
        }
        for e in &self.env {
            let Some((k, v)) = e.split_once('=') else {
                bail!("--env '{e}' is not KEY=VALUE");
            };
            p.env.insert(k.to_string(), v.to_string());
        }
        if let Some(s) = &self.max_memory {
            p.limits.max_memory = parse_size(s).context("--max-memory")?;
        }
        if let Some(s) = &self.max_output {
            p.limits.max_output = Some(parse_size(s).context("--max-output")?);
        }
        if let Some(s) = &self.timeout {
            p.limits.timeout = parse_duration(s).context("--timeout")?;
        }
        if self.fuel.is_some() {
            p.limits.fuel = self.fuel;
        }
        if self.max_instances.is_some() {
            p.limits.max_instances = self.max_instances;
        }
        if let Some(n) = self.max_open_files {
            p.limits.max_open_files = n;
        }
        if let Some(s) = &self.max_module_size {
            p.limits.max_module_size = parse_size(s).context("--max-module-size")?;
        }
        if let Some(s) = &self.compile_timeout {
            p.limits.compile_timeout = parse_duration(s).context("--compile-timeout")?;
        }
        p.inherit_stdio |= self.inherit_stdio;
        p.validate()?;
        Ok(p)
    }

    fn runtime(&self, policy: &Policy) -> anyhow::Result<Runtime> {
        let mut opts = EngineOptions::for_policy(policy);
        if self.no_cache {
            opts.cache_dir = None;
        }
        Runtime::new(opts)
    }
}

fn load(args: &PolicyArgs, module: &Path) -> anyhow::Result<Plugin> {
    let policy = args.policy()?;
    let rt = args.runtime(&policy)?;
    Ok(Plugin::new(rt.load(module, policy)?))
}

impl Cli {
    /// Runs the command, printing results to stdout.
    pub fn run(self) -> anyhow::Result<()> {
        match self.command {
            Command::Demo {
                modules,
                name,
                policy,
            } => demo(modules, &name, &policy),
            Command::Greet {
                module,
                abi,
                name,
                policy,
            } => {
                let mut plugin = load(&policy, &module)?;
                // The greeting is the guest's text: escaped for the terminal.
                outln!("{}", escape_controls(&plugin.greet(abi, &name)?));
                Ok(())
            }
            Command::Process {
                module,
                command,
                steps,
                config,
                inputs,
                input_format,
                output,
                format,
                batch_size,
                threads,
                unordered,
                quiet,
                policy,
            } => {
                let config = transport::parse_config(&config)?;
                let job = ProcessJob {
                    inputs,
                    input_format,
                    output,
                    format,
                    batch_size,
                    options: pipeline::Options {
                        threads: threads.unwrap_or_else(default_threads),
                        ordered: !unordered,
                    },
                    quiet,
                };
                let steps = build_steps(module, command, &steps, &config, &policy)?;
                process(&steps, job)
            }
            Command::Bench {
                modules,
                rows,
                threads,
                repeat,
                crossover,
            } => bench(modules, rows, threads, repeat, &crossover),
            Command::Inspect { file } => {
                let bytes = wasm_app::compile::read_module(&file, &Policy::default().limits)?;
                let rt = Runtime::new(EngineOptions::default())?;
                let loaded = rt.load_bytes(&file.display().to_string(), &bytes, Policy::default());
                let sha = hex_sha256(&bytes);
                let report = match loaded {
                    Ok(m) => match (m.module(), m.component()) {
                        (Some(module), _) => inspect::inspect(module, bytes.len(), &sha),
                        (None, Some(c)) => {
                            inspect::inspect_component(c, rt.engine(), bytes.len(), &sha)
                        }
                        (None, None) => {
                            bail!("{}: neither a module nor a component", file.display())
                        }
                    },
                    // Imports the host lacks still leave something to describe.
                    Err(wasm_app::Error::Instantiate(_)) if component::is_component(&bytes) => {
                        let c = wasmtime::component::Component::new(rt.engine(), &bytes)
                            .map_err(anyhow::Error::from)?;
                        inspect::inspect_component(&c, rt.engine(), bytes.len(), &sha)
                    }
                    Err(wasm_app::Error::Instantiate(_)) => {
                        let module = wasmtime::Module::new(rt.engine(), &bytes)
                            .map_err(anyhow::Error::from)?;
                        inspect::inspect(&module, bytes.len(), &sha)
                    }
                    Err(e) => return Err(e.into()),
                };
                out!("{}", report.render());
                Ok(())
            }
        }
    }
}

/// Turns --module/--command and --step into loaded steps (one runtime).
fn build_steps(
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

struct ProcessJob {
    inputs: Vec<PathBuf>,
    input_format: Option<Format>,
    output: Option<PathBuf>,
    format: Option<Format>,
    batch_size: usize,
    options: pipeline::Options,
    quiet: bool,
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

fn process(steps: &[pipeline::Step], job: ProcessJob) -> anyhow::Result<()> {
    let max_batch_bytes = steps
        .first()
        .map_or(wasm_app::policy::DEFAULT_MAX_MEMORY, |s| {
            s.module.policy().limits.output_limit()
        });
    let sources = open_inputs(&job, max_batch_bytes)?;
    let input = sources.into_iter().flatten();
    let mut sink: Option<Box<dyn sink::Sink>> = None;
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
                    Some(path) => sink::create(path, job.format, schema)?,
                    None => Box::new(sink::PrettySink),
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

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}

/// Worker threads when not given: one per available core.
fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Folder of the built study guests when `--modules` is not given
/// (`wasm_abi::built`: `$WASM_APP_MODULES`, else the `target/wasm-modules`
/// of the workspace holding this executable, else of the working directory,
/// for an installed binary run in a checkout).
fn default_modules_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().unwrap_or_default();
    built::modules_dir(&exe, &built::STUDY)
        .or_else(|e| built::modules_dir(Path::new("."), &built::STUDY).map_err(|_| e))
        .map_err(|e| anyhow::anyhow!("{e}, or pass --modules DIR"))
}

fn bench(
    modules: Option<PathBuf>,
    rows: usize,
    threads: Option<usize>,
    repeat: usize,
    crossover: &[usize],
) -> anyhow::Result<()> {
    use wasm_app::bench as b;
    if rows == 0 || repeat == 0 {
        bail!("--rows and --repeat must be at least 1");
    }
    let (m1, m2) = study_modules(modules)?;
    let threads = threads.unwrap_or_else(default_threads).max(1);
    let rt = Runtime::new(EngineOptions::default())?;
    let greeter = rt.load(&m1, Policy::default())?;
    let arrow = rt.load(&m2, Policy::default())?;
    let ms = |d: std::time::Duration| match d.as_secs_f64() {
        s if s >= 1.0 => format!("{s:.2} s"),
        s if s >= 1e-3 => format!("{:.2} ms", s * 1e3),
        s => format!("{:.1} µs", s * 1e6),
    };
    outln!(
        "wasm-app bench: study schema, median of {repeat} runs, {} cores",
        default_threads()
    );
    let e = b::echo_vs_memcpy(&arrow, rows, repeat)?;
    outln!(
        "echo {rows} rows ({:.1} MiB of IPC): memcpy {}, echo {} -> {:.2}x memcpy (goal: at most 3x)",
        e.ipc_bytes as f64 / (1 << 20) as f64,
        ms(e.memcpy),
        ms(e.echo),
        e.ratio()
    );
    let t = b::tokenize_threads(&arrow, rows, threads, repeat)?;
    outln!(
        "tokenize {rows} rows: 1 thread {}, {threads} threads {} -> {:.2}x (goal: at least 1.8x on 2 cores)",
        ms(t.one),
        ms(t.many),
        t.speedup()
    );
    outln!("rows\tper-row C strings\tArrow echo\tper-row / Arrow");
    for r in b::rows_vs_batch(&greeter, &arrow, crossover, repeat)? {
        outln!(
            "{}\t{}\t{}\t{:.2}",
            r.rows,
            ms(r.per_row),
            ms(r.batch),
            r.ratio()
        );
    }
    Ok(())
}

/// wasm_module1.wasm and wasm_module2.wasm in the modules folder, or an
/// error that says how to build them.
fn study_modules(modules: Option<PathBuf>) -> anyhow::Result<(PathBuf, PathBuf)> {
    let dir = match modules {
        Some(dir) => dir,
        None => default_modules_dir()?,
    };
    let [m1, m2] = built::STUDY.map(|f| dir.join(f));
    for m in [&m1, &m2] {
        if !m.is_file() {
            bail!(
                "{} not found: build the guests with `make guests` or pass --modules DIR",
                m.display()
            );
        }
    }
    Ok((m1, m2))
}

fn demo(modules: Option<PathBuf>, name: &str, args: &PolicyArgs) -> anyhow::Result<()> {
    let (m1, m2) = study_modules(modules)?;
    let policy = args.policy()?;
    let rt = args.runtime(&policy)?;
    let mut greeter = Plugin::new(rt.load(&m1, policy.clone())?);
    outln!("answer() = {}", greeter.answer()?);
    outln!(
        "C ABI:    {}",
        escape_controls(&greeter.greet(StringAbi::C, name)?)
    );
    outln!(
        "Rust ABI: {}",
        escape_controls(&greeter.greet(StringAbi::Rust, name)?)
    );

    let mut arrow = Plugin::new(rt.load(&m2, policy)?);
    let input = transport::study_example()?;
    outln!("Arrow input:");
    outln!("{}", transport::pretty(&input)?);
    let config = vec![("filename".to_string(), "test.txt".to_string())];
    let out = arrow
        .process("test", &config, &input)?
        .context("the Arrow module returned nothing for `test`")?;
    outln!("Arrow `test` result:");
    outln!("{}", transport::pretty(&out)?);
    Ok(())
}
