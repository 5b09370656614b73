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
//!
//! [env]
//! LANG = "C"
//!
//! [[dir]]
//! host = "data"             # relative to the manifest's folder
//! guest = "/data"
//! writable = false
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use serde::Deserialize;

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

/// A directory the module may see.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirGrant {
    /// Path on the host.
    pub host: PathBuf,
    /// Path the guest sees; defaults to the host path as written.
    pub guest: Option<String>,
    /// Whether the guest may create, write and delete in it.
    #[serde(default)]
    pub writable: bool,
}

impl DirGrant {
    /// Parses the CLI form `HOST[::GUEST]`, as the `wasmtime` CLI writes it.
    pub fn parse(spec: &str, writable: bool) -> anyhow::Result<Self> {
        let (host, guest) = match spec.split_once("::") {
            Some((h, g)) => (h, Some(g.to_string())),
            None => (spec, None),
        };
        if host.is_empty() {
            bail!("directory grant '{spec}' has an empty host path");
        }
        Ok(DirGrant {
            host: PathBuf::from(host),
            guest,
            writable,
        })
    }

    /// The path the guest sees.
    pub fn guest_path(&self) -> String {
        self.guest
            .clone()
            .unwrap_or_else(|| self.host.to_string_lossy().into_owned())
    }
}

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
    /// Files and directories an instance holds open at once, its granted
    /// directories included; opening one more fails in the guest (`EMFILE`).
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
        }
    }
}

/// Everything a module is granted. `Policy::default()` grants nothing.
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
    /// Resource limits.
    pub limits: Limits,
}

/// The manifest as written in TOML (sizes and durations as text).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Manifest {
    #[serde(default, rename = "dir")]
    dirs: Vec<DirGrant>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    inherit_stdio: bool,
    sha256: Option<String>,
    max_memory: Option<String>,
    max_output: Option<String>,
    timeout: Option<String>,
    fuel: Option<u64>,
    max_instances: Option<u32>,
    max_table_elements: Option<u64>,
    max_open_files: Option<u32>,
    max_module_size: Option<String>,
    compile_timeout: Option<String>,
}

impl Policy {
    /// Reads a TOML manifest. Relative `host` paths are taken from the
    /// manifest's folder, so a manifest means the same from any working
    /// directory.
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read policy {}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::from_toml(&text, base).with_context(|| format!("invalid policy {}", path.display()))
    }

    /// Parses a TOML manifest; relative dirs are resolved against `base`.
    pub fn from_toml(text: &str, base: &Path) -> anyhow::Result<Self> {
        let m: Manifest = toml::from_str(text)?;
        let mut limits = Limits::default();
        if let Some(s) = &m.max_memory {
            limits.max_memory = parse_size(s).context("max-memory")?;
        }
        if let Some(s) = &m.max_output {
            limits.max_output = Some(parse_size(s).context("max-output")?);
        }
        if let Some(s) = &m.timeout {
            limits.timeout = parse_duration(s).context("timeout")?;
        }
        limits.fuel = m.fuel;
        limits.max_instances = m.max_instances;
        if let Some(n) = m.max_table_elements {
            limits.max_table_elements = n;
        }
        if let Some(n) = m.max_open_files {
            limits.max_open_files = n;
        }
        if let Some(s) = &m.max_module_size {
            limits.max_module_size = parse_size(s).context("max-module-size")?;
        }
        if let Some(s) = &m.compile_timeout {
            limits.compile_timeout = parse_duration(s).context("compile-timeout")?;
        }
        let dirs = m
            .dirs
            .into_iter()
            .map(|mut d| {
                if d.host.is_relative() {
                    d.host = base.join(&d.host);
                }
                d
            })
            .collect();
        let sha256 = m.sha256.map(|s| normalise_sha256(&s)).transpose()?;
        let policy = Policy {
            dirs,
            env: m.env,
            inherit_stdio: m.inherit_stdio,
            sha256,
            limits,
        };
        policy.validate()?;
        Ok(policy)
    }

    /// Checks the values make sense together.
    pub fn validate(&self) -> anyhow::Result<()> {
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
        Ok(())
    }
}

/// Accepts 64 hex digits in any case.
pub fn normalise_sha256(s: &str) -> anyhow::Result<String> {
    let s = s.trim().to_ascii_lowercase();
    if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("sha256 must be 64 hexadecimal digits, got '{s}'");
    }
    Ok(s)
}

/// Parses `64MiB`, `1GiB`, `512KiB`, `10MB`, `2TiB`, `4096` (bytes): a
/// whole number and a unit. A value that does not fit 64 bits is an error,
/// never a wrapped number.
pub fn parse_size(s: &str) -> anyhow::Result<u64> {
    let t = s.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '_')
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let digits = num.replace('_', "");
    if digits.is_empty() {
        bail!("'{s}' is not a size (e.g. 64MiB)");
    }
    let num: u64 = digits
        .parse()
        .with_context(|| format!("size '{s}' is too large"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" | "byte" | "bytes" => 1,
        "k" | "kib" => 1 << 10,
        "kb" => 1_000,
        "m" | "mib" => 1 << 20,
        "mb" => 1_000_000,
        "g" | "gib" => 1 << 30,
        "gb" => 1_000_000_000,
        "t" | "tib" => 1 << 40,
        "tb" => 1_000_000_000_000,
        other => bail!(
            "unknown size unit '{other}' in '{s}' (use B, KiB, MiB, GiB, TiB, KB, MB, GB, TB)"
        ),
    };
    num.checked_mul(mult)
        .with_context(|| format!("size '{s}' is too large"))
}

/// Formats a byte count the way [`parse_size`] reads it back.
pub fn format_size(bytes: u64) -> String {
    for (unit, shift) in [("GiB", 30), ("MiB", 20), ("KiB", 10)] {
        if bytes >= 1 << shift && bytes % (1 << shift) == 0 {
            return format!("{} {unit}", bytes >> shift);
        }
    }
    format!("{bytes} bytes")
}

/// Parses `250ms`, `5s`, `1m 30s`, ...
pub fn parse_duration(s: &str) -> anyhow::Result<Duration> {
    humantime::parse_duration(s.trim())
        .with_context(|| format!("'{s}' is not a duration (e.g. 500ms, 5s, 2m)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_format() {
        assert_eq!(parse_size("64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_size("10 MB").unwrap(), 10_000_000);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert!(parse_size("lots").is_err());
        assert!(parse_size("1XB").is_err());
        assert!(parse_size("99999999999999GiB").is_err());
        assert_eq!(parse_size("2TiB").unwrap(), 2 << 40);
        for bad in [
            "99999999999TiB",
            "99999999999999999999",
            "18446744073709551616",
        ] {
            let e = format!("{:#}", parse_size(bad).unwrap_err());
            assert!(e.contains("too large"), "{bad}: {e}");
        }
        assert_eq!(parse_size("18446744073709551615").unwrap(), u64::MAX);
        for bad in ["", "MiB", "-1", "1.5GiB", "0x10"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        assert_eq!(format_size(64 << 20), "64 MiB");
        assert_eq!(format_size(1000), "1000 bytes");
    }

    #[test]
    fn manifest_is_deny_by_default_and_resolves_dirs() {
        let p = Policy::from_toml("", Path::new("/base")).unwrap();
        assert_eq!(p, Policy::default());
        let p = Policy::from_toml(
            "max-memory = \"64MiB\"\ntimeout = \"2s\"\n[env]\nA = \"1\"\n[[dir]]\nhost = \"data\"\nguest = \"/d\"\n",
            Path::new("/base"),
        )
        .unwrap();
        assert_eq!(p.limits.max_memory, 64 << 20);
        assert_eq!(p.limits.timeout, Duration::from_secs(2));
        assert_eq!(p.dirs[0].host, PathBuf::from("/base/data"));
        assert!(!p.dirs[0].writable);
        assert_eq!(p.env["A"], "1");
    }

    #[test]
    fn manifest_rejects_unknown_keys_and_bad_values() {
        assert!(Policy::from_toml("network = true", Path::new(".")).is_err());
        assert!(Policy::from_toml("timeout = \"0s\"", Path::new(".")).is_err());
        assert!(Policy::from_toml("sha256 = \"abc\"", Path::new(".")).is_err());
    }

    #[test]
    fn extreme_limits_are_errors_not_wrapped_numbers() {
        let parse = |t: &str| Policy::from_toml(t, Path::new("."));
        for bad in [
            "max-output = \"0\"",
            "max-output = \"99999999999TiB\"",
            "max-memory = \"0\"",
            "max-memory = \"5GiB\"",
            "timeout = \"8days\"",
            "max-instances = 0",
            "max-instances = 4000000000",
            "fuel = 0",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let p = parse("max-output = \"3MiB\"").unwrap();
        assert_eq!(p.limits.max_output, Some(3 << 20));
        assert_eq!(p.limits.output_limit(), 3 << 20);
        // Unset, the bound follows the memory limit.
        let p = parse("max-memory = \"64MiB\"").unwrap();
        assert_eq!(p.limits.output_limit(), 64 << 20);
    }

    #[test]
    fn dir_grants_parse_like_wasmtime() {
        let d = DirGrant::parse("/tmp/x::/data", true).unwrap();
        assert_eq!(d.guest_path(), "/data");
        assert!(d.writable);
        assert_eq!(DirGrant::parse("in", false).unwrap().guest_path(), "in");
        assert!(DirGrant::parse("::/x", false).is_err());
    }
}
