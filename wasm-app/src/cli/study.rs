//! The study's own commands: `demo` and `bench`, over the built guests.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use wasm_abi::built;

use wasm_app::text::escape_controls;
use wasm_app::{transport, EngineOptions, Plugin, Policy, Runtime, StringAbi};

use super::args::PolicyArgs;
use crate::outln;

/// Worker threads when not given: one per available core.
pub(super) fn default_threads() -> usize {
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

pub(super) fn bench(
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

pub(super) fn demo(modules: Option<PathBuf>, name: &str, args: &PolicyArgs) -> anyhow::Result<()> {
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
        .process_table("test", &config, &input)?
        .context("the Arrow module returned nothing for `test`")?;
    outln!("Arrow `test` result:");
    outln!("{}", transport::pretty(&out)?);
    Ok(())
}
