//! The policy flags shared by every command that loads a module.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;

use wasm_app::policy::{parse_duration, parse_size};
use wasm_app::{DirGrant, EngineOptions, Plugin, Policy, Runtime};

/// Policy flags; they override `--policy`. Names follow the `wasmtime` CLI.
#[derive(Debug, Args, Clone, Default)]
pub(super) struct PolicyArgs {
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
    /// Files, directories and sockets a guest may hold open at once (grants
    /// included).
    #[arg(long, value_name = "N")]
    max_open_files: Option<u32>,
    /// Largest module file the host will compile, e.g. 16MiB.
    #[arg(long, value_name = "SIZE")]
    max_module_size: Option<String>,
    /// Longest time the host spends compiling the module, e.g. 10s.
    #[arg(long, value_name = "DURATION")]
    compile_timeout: Option<String>,
    /// Let the guest reach HOST[:PORT] (repeatable): a name, *.domain, *,
    /// an IPv4 address or [IPv6]; without a port, every port.
    #[arg(long = "allow-host", value_name = "HOST[:PORT]")]
    allow_hosts: Vec<String>,
    /// Body of one HTTP response a guest receives, e.g. 16MiB.
    #[arg(long, value_name = "SIZE")]
    max_http_response: Option<String>,
    /// Time of one HTTP request of a guest, redirects included, e.g. 10s.
    #[arg(long, value_name = "DURATION")]
    http_timeout: Option<String>,
    /// Let the guest import the host function NAME (repeatable), e.g. log.
    #[arg(long = "allow-host-fn", value_name = "NAME")]
    allow_host_fns: Vec<String>,
    /// Let the guest use the host's stdin, stdout and stderr.
    #[arg(long)]
    inherit_stdio: bool,
    /// Do not use the compiled-module cache.
    #[arg(long)]
    no_cache: bool,
}

impl PolicyArgs {
    /// Whether `--no-cache` was given.
    #[cfg_attr(not(feature = "flight"), allow(dead_code))]
    pub(super) fn no_cache(&self) -> bool {
        self.no_cache
    }

    pub(super) fn policy(&self) -> anyhow::Result<Policy> {
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
        p.allowed_hosts.extend(self.allow_hosts.iter().cloned());
        p.host_functions.extend(self.allow_host_fns.iter().cloned());
        if let Some(s) = &self.max_http_response {
            p.limits.max_http_response = parse_size(s).context("--max-http-response")?;
        }
        if let Some(s) = &self.http_timeout {
            p.limits.http_timeout = parse_duration(s).context("--http-timeout")?;
        }
        p.inherit_stdio |= self.inherit_stdio;
        p.validate()?;
        Ok(p)
    }

    pub(super) fn runtime(&self, policy: &Policy) -> anyhow::Result<Runtime> {
        let mut opts = EngineOptions::for_policy(policy);
        if self.no_cache {
            opts.cache_dir = None;
        }
        Ok(Runtime::new(opts)?)
    }

    /// The module at `path` under these flags, ready to call.
    pub(super) fn load(&self, module: &Path) -> anyhow::Result<Plugin> {
        let policy = self.policy()?;
        let rt = self.runtime(&policy)?;
        Ok(Plugin::new(rt.load(module, policy)?))
    }
}
