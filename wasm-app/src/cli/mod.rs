//! The `wasm-app` command line: a thin layer over the library.

mod args;
mod call;
pub(crate) mod log;
mod process;
#[cfg(feature = "flight")]
mod serve;
mod study;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use wasm_app::formats::Format;
use wasm_app::text::escape_controls;
use wasm_app::{inspect, pipeline, transport};
use wasm_app::{EngineOptions, Runtime, StringAbi};

use args::PolicyArgs;

/// `print!` that returns a write error (`EPIPE` under `| head`) instead of
/// panicking; `main` ends quietly on a broken pipe.
#[macro_export]
macro_rules! out {
    ($($t:tt)*) => {
        std::io::Write::write_fmt(&mut std::io::stdout().lock(), format_args!($($t)*))
            .context("cannot write <stdout>")?
    };
}

/// `println!` that returns a write error; see [`out!`].
#[macro_export]
macro_rules! outln {
    ($($t:tt)*) => {
        $crate::out!("{}\n", format_args!($($t)*))
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
    /// Call any export with bytes in and bytes out; the output goes to
    /// stdout as is.
    ///
    /// A core module's export takes (ptr, len) and returns a pointer to a
    /// (ptr, len) pair, 0 on error (the pair ABI); a component's export
    /// takes and returns `list<u8>` or `string` (optionally in a
    /// `result<_, string>`). Without --input or --input-file the input is
    /// empty; `-` reads it from stdin.
    Call {
        /// The module (.wasm or .wat).
        #[arg(long)]
        module: PathBuf,
        /// The export to call.
        export: String,
        /// `-`: read the input from stdin.
        #[arg(value_name = "-", conflicts_with_all = ["input", "input_file"])]
        stdin: Option<String>,
        /// The input, as text.
        #[arg(long, conflicts_with = "input_file")]
        input: Option<String>,
        /// The input, from a file (- for stdin).
        #[arg(long, value_name = "FILE")]
        input_file: Option<PathBuf>,
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
    /// Serve modules' Arrow commands as remote functions over Arrow Flight
    /// (the arrow-udf-flight protocol): any Flight client can call them,
    /// under each function's policy. Stops on SIGTERM or Ctrl-C, letting
    /// calls in flight finish.
    #[cfg(feature = "flight")]
    Serve(serve::ServeArgs),
    /// Show a module's imports, exports, ABI support and WASI needs.
    Inspect {
        /// The module (.wasm or .wat).
        file: PathBuf,
    },
}

impl Cli {
    /// Runs the command, printing results to stdout.
    pub fn run(self) -> anyhow::Result<()> {
        match self.command {
            Command::Demo {
                modules,
                name,
                policy,
            } => study::demo(modules, &name, &policy),
            Command::Call {
                module,
                export,
                stdin,
                input,
                input_file,
                policy,
            } => {
                let source = match (stdin, input, input_file) {
                    (Some(dash), _, _) if dash != "-" => anyhow::bail!(
                        "unexpected argument '{dash}': give the input with --input TEXT, \
                         --input-file FILE, or - for stdin"
                    ),
                    (Some(_), _, _) => call::Input::File(PathBuf::from("-")),
                    (None, Some(text), _) => call::Input::Text(text),
                    (None, None, Some(path)) => call::Input::File(path),
                    (None, None, None) => call::Input::Text(String::new()),
                };
                call::run(&policy, &module, &export, source)
            }
            Command::Greet {
                module,
                abi,
                name,
                policy,
            } => {
                let mut plugin = policy.load(&module)?;
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
                let job = process::ProcessJob {
                    inputs,
                    input_format,
                    output,
                    format,
                    batch_size,
                    options: pipeline::Options {
                        threads: threads.unwrap_or_else(study::default_threads),
                        ordered: !unordered,
                    },
                    quiet,
                };
                let steps = process::build_steps(module, command, &steps, &config, &policy)?;
                process::process(&steps, job)
            }
            Command::Bench {
                modules,
                rows,
                threads,
                repeat,
                crossover,
            } => study::bench(modules, rows, threads, repeat, &crossover),
            #[cfg(feature = "flight")]
            Command::Serve(args) => serve::run(args),
            Command::Inspect { file } => {
                let rt = Runtime::new(EngineOptions::default())?;
                let report = inspect::inspect_file(&rt, &file)?;
                out!("{}", report.render());
                Ok(())
            }
        }
    }
}
