//! What a module may do: a declarative, deny-by-default policy.
//!
//! A policy is read from a TOML manifest chosen by whoever runs the host
//! (never from a file shipped with the module, which would let the module
//! grant itself rights), then overridden by command-line flags. Without a
//! grant a module has no filesystem, no environment, no arguments, no network
//! and no stdio, and runs under the default [`Limits`].
//!
//! ```toml
//! sha256 = "9f86d08..."      # refuse any other module bytes
//! max-memory = "64MiB"
//! max-output = "16MiB"       # one result's IPC bytes and decoded size
//! timeout = "5s"
//! fuel = 10_000_000
//! max-instances = 4
//! max-open-files = 128
//! inherit-stdio = false
//! allowed-hosts = ["example.org:443", "*.example.net:443", "127.0.0.1:8080"]
//! max-http-response = "16MiB"
//! http-timeout = "10s"
//! host-functions = ["log", "kv_get"]
//!
//! [env]
//! LANG = "C"
//!
//! [[dir]]
//! host = "data"             # relative to the manifest's folder
//! guest = "/data"
//! writable = false
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::bail;

use crate::error::{Error, Result};

mod dir;
pub(crate) mod manifest;
mod units;

pub use dir::DirGrant;

pub use units::{format_size, normalise_sha256, parse_duration, parse_size};

/// Default memory cap per instance when the policy sets none.
pub const DEFAULT_MAX_MEMORY: u64 = 512 << 20;
/// Default wall-clock cap per call when the policy sets none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default cap on table elements per instance.
pub const DEFAULT_MAX_TABLE_ELEMENTS: u64 = 100_000;
/// Default cap on files and directories an instance holds open at once.
pub const DEFAULT_MAX_OPEN_FILES: u32 = 128;
/// Default cap on the size of a module file: the study's largest guest is
/// under 1 MiB; real plug-ins of a few MiB fit with room to spare.
pub const DEFAULT_MAX_MODULE_SIZE: u64 = 64 << 20;
/// Default cap on the time spent compiling one module: the study's guests
/// compile in well under a second; pathological code can take minutes.
pub const DEFAULT_COMPILE_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest accepted timeout: beyond it a per-call deadline means nothing,
/// and epoch arithmetic stays far from overflow.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(7 * 24 * 3600);
/// Most instances a policy may allow at once (each reserves its memory limit
/// of address space in the pooling allocator).
pub const MAX_INSTANCES: u32 = 10_000;
/// Default cap on one HTTP response body a guest receives.
pub const DEFAULT_MAX_HTTP_RESPONSE: u64 = 16 << 20;
/// Default cap on the time of one HTTP request of a guest, redirects
/// included (the call's timeout bounds it too).
pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// Resource limits in force for every instance and call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Linear memory per instance, bytes.
    pub max_memory: u64,
    /// Wall-clock time per call.
    pub timeout: Duration,
    /// Fuel per call; `None` means fuel is not metered.
    pub fuel: Option<u64>,
    /// Live instances of the module at once; also turns on the pooling allocator.
    pub max_instances: Option<u32>,
    /// Table elements per instance, summed over its tables.
    pub max_table_elements: u64,
    /// Files, directories and (a component's) sockets an instance holds
    /// open at once, its granted directories included; opening one more
    /// fails in the guest (`EMFILE`, `quota`, `new-socket-limit`).
    pub max_open_files: u32,
    /// Size of the module file (`.wasm` or `.wat`) the host will compile.
    pub max_module_size: u64,
    /// Wall-clock time the host spends compiling the module.
    pub compile_timeout: Duration,
    /// Bound on one guest result, in bytes: both its IPC stream and its
    /// decoded size, where every buffer counts once per use (columns
    /// aliasing one range count it each time, as writing them out does),
    /// plus dictionaries per use, 64 bytes per array and 1 byte per row.
    /// It also bounds what one *input* batch may expand to when read
    /// (Parquet dictionaries, compressed IPC). `None`: `max_memory`.
    pub max_output: Option<u64>,
    /// Body of one HTTP response a guest receives.
    pub max_http_response: u64,
    /// One HTTP request of a guest, from connecting to the last byte of
    /// the response, redirects included.
    pub http_timeout: Duration,
}

impl Limits {
    /// The output bound in force: `max_output`, else the memory limit.
    pub fn output_limit(&self) -> u64 {
        self.max_output.unwrap_or(self.max_memory)
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_memory: DEFAULT_MAX_MEMORY,
            timeout: DEFAULT_TIMEOUT,
            fuel: None,
            max_instances: None,
            max_table_elements: DEFAULT_MAX_TABLE_ELEMENTS,
            max_open_files: DEFAULT_MAX_OPEN_FILES,
            max_module_size: DEFAULT_MAX_MODULE_SIZE,
            compile_timeout: DEFAULT_COMPILE_TIMEOUT,
            max_output: None,
            max_http_response: DEFAULT_MAX_HTTP_RESPONSE,
            http_timeout: DEFAULT_HTTP_TIMEOUT,
        }
    }
}

/// Everything a module is granted. `Policy::default()` grants nothing.
///
/// Built in code, or read from a TOML manifest (see the module docs):
///
/// ```
/// use std::time::Duration;
/// use wasm_app::Policy;
///
/// let in_code = Policy::default()
///     .with_dir("/srv/data", "/data")
///     .with_env("LANG", "C")
///     .with_max_memory(64 << 20)
///     .with_timeout(Duration::from_secs(5));
///
/// let from_toml = Policy::from_toml(
///     r#"
///     max-memory = "64MiB"
///     timeout = "5s"
///     [env]
///     LANG = "C"
///     [[dir]]
///     host = "/srv/data"
///     guest = "/data"
///     "#,
///     ".",
/// )?;
/// assert_eq!(in_code, from_toml);
///
/// // Values that make no sense are refused, naming the key.
/// let err = Policy::from_toml("timeout = \"0s\"", ".").unwrap_err();
/// assert!(err.to_string().contains("timeout"));
/// # Ok::<(), wasm_app::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// Directories preopened for the guest.
    pub dirs: Vec<DirGrant>,
    /// Environment variables the guest sees (and no others).
    pub env: BTreeMap<String, String>,
    /// Whether the guest shares the host's stdin, stdout and stderr.
    pub inherit_stdio: bool,
    /// Required SHA-256 of the module bytes, lowercase hex.
    pub sha256: Option<String>,
    /// Hosts the module may reach, as `HOST[:PORT]` (`example.org:443`,
    /// `*.example.org`, `*`, `127.0.0.1:8080`, `[::1]:80`); empty: no network.
    /// A name that resolves to a non-public address (loopback, private,
    /// link-local, ...) is reached only if that address or the exact name
    /// is granted.
    pub allowed_hosts: Vec<String>,
    /// Host functions the module may import (`log`, `kv_get`, an
    /// embedder's); `http_request` comes with `allowed_hosts` instead.
    pub host_functions: BTreeSet<String>,
    /// Resource limits.
    pub limits: Limits,
}

impl Policy {
    /// Reads a TOML manifest. Relative `host` paths are taken from the
    /// manifest's folder, so a manifest means the same from any working
    /// directory.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::InvalidPolicy(format!("cannot read {}: {e}", path.display())))?;
        let base = path.parent().unwrap_or(Path::new("."));
        manifest::parse(&text, base)
            .map_err(|e| Error::InvalidPolicy(format!("{}: {e:#}", path.display())))
    }

    /// Parses a TOML manifest; relative dirs are resolved against `base`.
    pub fn from_toml(text: &str, base: impl AsRef<Path>) -> Result<Self> {
        manifest::parse(text, base.as_ref()).map_err(|e| Error::InvalidPolicy(format!("{e:#}")))
    }

    /// Grants the host directory `host`, read-only, seen by the guest as
    /// `guest`.
    pub fn with_dir(self, host: impl Into<PathBuf>, guest: &str) -> Self {
        self.with_grant(host.into(), guest, false)
    }

    /// As [`Policy::with_dir`], writable: the guest may create, write and
    /// delete in it.
    pub fn with_dir_rw(self, host: impl Into<PathBuf>, guest: &str) -> Self {
        self.with_grant(host.into(), guest, true)
    }

    fn with_grant(mut self, host: PathBuf, guest: &str, writable: bool) -> Self {
        self.dirs.push(DirGrant {
            host,
            guest: Some(guest.to_string()),
            writable,
        });
        self
    }

    /// Sets an environment variable the guest sees.
    pub fn with_env(mut self, key: &str, value: &str) -> Self {
        self.env.insert(key.to_string(), value.to_string());
        self
    }

    /// Caps the linear memory (all memories together) of each instance.
    pub fn with_max_memory(mut self, bytes: u64) -> Self {
        self.limits.max_memory = bytes;
        self
    }

    /// Caps the bytes of one result (and its decoded size).
    pub fn with_max_output(mut self, bytes: u64) -> Self {
        self.limits.max_output = Some(bytes);
        self
    }

    /// Caps the body of one HTTP response a guest receives.
    pub fn with_max_http_response(mut self, bytes: u64) -> Self {
        self.limits.max_http_response = bytes;
        self
    }

    /// Caps the time of one HTTP request of a guest, redirects included.
    pub fn with_http_timeout(mut self, timeout: Duration) -> Self {
        self.limits.http_timeout = timeout;
        self
    }

    /// Caps the wall-clock time of each call, host calls included.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.limits.timeout = timeout;
        self
    }

    /// Caps the fuel (about one unit per wasm instruction) of each call.
    pub fn with_fuel(mut self, fuel: u64) -> Self {
        self.limits.fuel = Some(fuel);
        self
    }

    /// Caps the live instances of the module at once.
    pub fn with_max_instances(mut self, n: u32) -> Self {
        self.limits.max_instances = Some(n);
        self
    }

    /// Lets the module reach `host` (`HOST[:PORT]`, see
    /// [`Policy::allowed_hosts`]); checked by [`Policy::validate`].
    pub fn with_allowed_host(mut self, host: &str) -> Self {
        self.allowed_hosts.push(host.to_string());
        self
    }

    /// Lets the module import the host function `name`.
    pub fn with_host_function(mut self, name: &str) -> Self {
        self.host_functions.insert(name.to_string());
        self
    }

    /// Refuses any module whose bytes do not have this SHA-256 (hex).
    pub fn with_sha256(mut self, hex: &str) -> Self {
        self.sha256 = Some(hex.trim().to_ascii_lowercase());
        self
    }

    /// Checks the values make sense together (loading a module does too).
    pub fn validate(&self) -> Result<()> {
        self.check()
            .map_err(|e| Error::InvalidPolicy(format!("{e:#}")))
    }

    fn check(&self) -> anyhow::Result<()> {
        let l = &self.limits;
        if l.max_memory == 0 || l.max_memory > 4 << 30 {
            bail!("max-memory must be between 1 byte and 4GiB (wasm32's address space)");
        }
        if l.max_output == Some(0) {
            bail!("max-output must be at least 1 byte");
        }
        if l.timeout.is_zero() || l.timeout > MAX_TIMEOUT {
            bail!("timeout must be greater than zero and at most 7 days");
        }
        if l.max_instances.is_some_and(|n| n == 0 || n > MAX_INSTANCES) {
            bail!("max-instances must be between 1 and {MAX_INSTANCES}");
        }
        if l.fuel == Some(0) {
            bail!("fuel must be at least 1");
        }
        if l.max_module_size == 0 {
            bail!("max-module-size must be at least 1 byte");
        }
        if l.compile_timeout.is_zero() {
            bail!("compile-timeout must be greater than zero");
        }
        if let Some(sha) = &self.sha256 {
            normalise_sha256(sha)?;
        }
        if l.max_http_response == 0 {
            bail!("max-http-response must be at least 1 byte");
        }
        if l.http_timeout.is_zero() || l.http_timeout > MAX_TIMEOUT {
            bail!("http-timeout must be greater than zero and at most 7 days");
        }
        crate::net::grant::Grants::parse(&self.allowed_hosts).map_err(anyhow::Error::msg)?;
        if let Some(name) = self
            .host_functions
            .iter()
            .find(|n| !crate::hostfn::is_valid_name(n))
        {
            bail!(
                "host function {:?}: a name is 1 to 64 letters, digits and '_'",
                crate::text::escape_controls(name)
            );
        }
        for (key, value) in &self.env {
            // What the guest would see as `KEY=VALUE` must split back the same.
            if key.is_empty() || key.contains(['=', '\0']) || value.contains('\0') {
                bail!(
                    "environment variable {:?}: a name must be non-empty without '=' or NUL, \
                     a value without NUL",
                    crate::text::escape_controls(key)
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_names_that_do_not_split_back_are_refused() {
        for (k, v) in [("", "x"), ("A=B", "x"), ("A\0", "x"), ("A", "x\0y")] {
            let err = Policy::default().with_env(k, v).validate().unwrap_err();
            assert!(err.to_string().contains("environment variable"), "{err}");
        }
        Policy::default().with_env("A", "b=c d").validate().unwrap();
    }
}
