//! The `wasm-app` command line: a thin layer over the library.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};

use wasm_app::policy::{parse_duration, parse_size};
use wasm_app::transport::{self, Table};
use wasm_app::{DirGrant, EngineOptions, Plugin, Policy, Runtime, StringAbi};

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
    /// Run an Arrow command of a module over an Arrow IPC file or stream.
    Process {
        /// The module (.wasm or .wat).
        #[arg(long)]
        module: PathBuf,
        /// Command to run (e.g. test, echo, replace).
        #[arg(long)]
        command: String,
        /// Command configuration, KEY=VALUE (repeatable).
        #[arg(long = "config", value_name = "KEY=VALUE")]
        config: Vec<String>,
        /// Input: an Arrow IPC file or stream.
        input: PathBuf,
        /// Output: .arrow for an IPC file, .arrows (or anything else) for an
        /// IPC stream; without it the result is printed as a table.
        #[arg(short, long)]
        output: Option<PathBuf>,
        #[command(flatten)]
        policy: PolicyArgs,
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
    /// Wall-clock cap per call, e.g. 500ms, 5s.
    #[arg(long, value_name = "DURATION")]
    timeout: Option<String>,
    /// Fuel per call (roughly, instructions).
    #[arg(long, value_name = "N")]
    fuel: Option<u64>,
    /// Cap on live instances; also selects the pooling allocator.
    #[arg(long, value_name = "N")]
    max_instances: Option<u32>,
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
        if let Some(s) = &self.timeout {
            p.limits.timeout = parse_duration(s).context("--timeout")?;
        }
        if self.fuel.is_some() {
            p.limits.fuel = self.fuel;
        }
        if self.max_instances.is_some() {
            p.limits.max_instances = self.max_instances;
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
                println!("{}", plugin.greet(abi, &name)?);
                Ok(())
            }
            Command::Process {
                module,
                command,
                config,
                input,
                output,
                policy,
            } => {
                let config = transport::parse_config(&config)?;
                let table = transport::read_ipc(&input)?;
                let mut plugin = load(&policy, &module)?;
                let result = plugin
                    .process(&command, &config, &table)
                    .with_context(|| format!("command '{command}' failed"))?;
                emit(result.as_ref(), output.as_deref())
            }
            Command::Inspect { file } => {
                let bytes = std::fs::read(&file)
                    .with_context(|| format!("cannot read {}", file.display()))?;
                let rt = Runtime::new(EngineOptions::default())?;
                let loaded = rt.load_bytes(&file.display().to_string(), &bytes, Policy::default());
                let module = match loaded {
                    Ok(m) => m.module().clone(),
                    // Imports the host lacks still leave a module to describe.
                    Err(wasm_app::Error::Instantiate(_)) => {
                        wasmtime::Module::new(rt.engine(), &bytes).map_err(anyhow::Error::from)?
                    }
                    Err(e) => return Err(e.into()),
                };
                let sha = hex_sha256(&bytes);
                print!(
                    "{}",
                    wasm_app::inspect::inspect(&module, bytes.len(), &sha).render()
                );
                Ok(())
            }
        }
    }
}

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}

fn emit(result: Option<&Table>, output: Option<&Path>) -> anyhow::Result<()> {
    match (result, output) {
        (Some(t), Some(path)) => {
            transport::write_ipc(path, t)?;
            eprintln!("wrote {} rows to {}", t.num_rows(), path.display());
        }
        (Some(t), None) => println!("{}", transport::pretty(t)?),
        (None, Some(path)) => bail!(
            "the module returned no Arrow stream, so {} was not written",
            path.display()
        ),
        (None, None) => println!("(no output)"),
    }
    Ok(())
}

/// Default folder of the built guests.
fn modules_dir(given: Option<PathBuf>) -> PathBuf {
    if let Some(d) = given {
        return d;
    }
    if let Some(d) = std::env::var_os("WASM_APP_MODULES") {
        return PathBuf::from(d);
    }
    let local = PathBuf::from("target/wasm-modules");
    if local.is_dir() {
        return local;
    }
    // Next to the binary: target/<profile>/wasm-app -> target/wasm-modules.
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.join("wasm-modules")))
        .filter(|d| d.is_dir())
        .unwrap_or(local)
}

fn demo(modules: Option<PathBuf>, name: &str, args: &PolicyArgs) -> anyhow::Result<()> {
    let dir = modules_dir(modules);
    let m1 = dir.join("wasm_module1.wasm");
    let m2 = dir.join("wasm_module2.wasm");
    for m in [&m1, &m2] {
        if !m.is_file() {
            bail!(
                "{} not found: build the guests with `make guests` or pass --modules DIR",
                m.display()
            );
        }
    }
    let policy = args.policy()?;
    let rt = args.runtime(&policy)?;
    let mut greeter = Plugin::new(rt.load(&m1, policy.clone())?);
    println!("answer() = {}", greeter.answer()?);
    println!("C ABI:    {}", greeter.greet(StringAbi::C, name)?);
    println!("Rust ABI: {}", greeter.greet(StringAbi::Rust, name)?);

    let mut arrow = Plugin::new(rt.load(&m2, policy)?);
    let input = transport::study_example()?;
    println!("Arrow input:");
    println!("{}", transport::pretty(&input)?);
    let config = vec![("filename".to_string(), "test.txt".to_string())];
    let out = arrow
        .process("test", &config, &input)?
        .context("the Arrow module returned nothing for `test`")?;
    println!("Arrow `test` result:");
    println!("{}", transport::pretty(&out)?);
    Ok(())
}
