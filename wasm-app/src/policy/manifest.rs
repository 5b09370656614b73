//! The policy as written in TOML (sizes and durations as text).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use serde::Deserialize;

use super::units::{normalise_sha256, parse_duration, parse_size};
use super::{DirGrant, Policy};

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
    #[serde(default)]
    allowed_hosts: Vec<String>,
    max_http_response: Option<String>,
    http_timeout: Option<String>,
    #[serde(default)]
    host_functions: Vec<String>,
}

/// Parses a TOML manifest; relative dirs are resolved against `base`.
pub(super) fn parse(text: &str, base: &Path) -> anyhow::Result<Policy> {
    apply(toml::from_str(text)?, base, Policy::default())
}

/// The policy keys of `table` (a `[[function]]` of `wasm-app serve`, say)
/// over `defaults`: each key present replaces its default, `dir` and `env`
/// entries are added to the default ones.
pub(crate) fn parse_table_over(
    table: toml::Table,
    base: &Path,
    defaults: &Policy,
) -> anyhow::Result<Policy> {
    apply(
        toml::Value::Table(table).try_into()?,
        base,
        defaults.clone(),
    )
}

fn apply(m: Manifest, base: &Path, mut policy: Policy) -> anyhow::Result<Policy> {
    let limits = &mut policy.limits;
    if let Some(s) = &m.max_memory {
        limits.max_memory = parse_size(s).context("max-memory")?;
    }
    if let Some(s) = &m.max_output {
        limits.max_output = Some(parse_size(s).context("max-output")?);
    }
    if let Some(s) = &m.timeout {
        limits.timeout = parse_duration(s).context("timeout")?;
    }
    if m.fuel.is_some() {
        limits.fuel = m.fuel;
    }
    if m.max_instances.is_some() {
        limits.max_instances = m.max_instances;
    }
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
    if let Some(s) = &m.max_http_response {
        limits.max_http_response = parse_size(s).context("max-http-response")?;
    }
    if let Some(s) = &m.http_timeout {
        limits.http_timeout = parse_duration(s).context("http-timeout")?;
    }
    policy.allowed_hosts.extend(m.allowed_hosts);
    policy.host_functions.extend(m.host_functions);
    policy.dirs.extend(m.dirs.into_iter().map(|mut d| {
        if d.host.is_relative() {
            d.host = base.join(&d.host);
        }
        d
    }));
    policy.env.extend(m.env);
    policy.inherit_stdio |= m.inherit_stdio;
    if let Some(s) = m.sha256 {
        policy.sha256 = Some(normalise_sha256(&s)?);
    }
    policy.check()?;
    Ok(policy)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Policy;
    use std::path::PathBuf;
    use std::time::Duration;

    #[test]
    fn manifest_is_deny_by_default_and_resolves_dirs() {
        let p = parse("", Path::new("/base")).unwrap();
        assert_eq!(p, Policy::default());
        let p = parse(
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
        assert!(parse("network = true", Path::new(".")).is_err());
        assert!(parse("timeout = \"0s\"", Path::new(".")).is_err());
        assert!(parse("sha256 = \"abc\"", Path::new(".")).is_err());
        assert!(parse("allowed-hosts = [\"a:0\"]", Path::new(".")).is_err());
        assert!(parse("host-functions = [\"a b\"]", Path::new(".")).is_err());
        assert!(parse("http-timeout = \"0s\"", Path::new(".")).is_err());
    }

    #[test]
    fn network_and_host_function_grants_parse() {
        let p = parse(
            "allowed-hosts = [\"example.org:443\", \"127.0.0.1:8080\"]\nmax-http-response = \"1MiB\"\nhttp-timeout = \"2s\"\nhost-functions = [\"log\"]\n",
            Path::new("."),
        )
        .unwrap();
        assert_eq!(p.allowed_hosts, ["example.org:443", "127.0.0.1:8080"]);
        assert_eq!(p.limits.max_http_response, 1 << 20);
        assert_eq!(p.limits.http_timeout, Duration::from_secs(2));
        assert!(p.host_functions.contains("log"));
        assert_eq!(
            p,
            Policy::default()
                .with_allowed_host("example.org:443")
                .with_allowed_host("127.0.0.1:8080")
                .with_host_function("log")
                .with_max_http_response(1 << 20)
                .with_http_timeout(Duration::from_secs(2))
        );
    }

    #[test]
    fn extreme_limits_are_errors_not_wrapped_numbers() {
        let parse = |t: &str| parse(t, Path::new("."));
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
}
