//! A Python `Plugin`'s policy: built from keyword arguments the way the CLI
//! builds it from flags (a TOML file first, then each argument over it, then
//! validation), and carried whole by a pickled `Plugin`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyInt, PyString};
use wasm_app::policy::{parse_duration, parse_size};
use wasm_app::{DirGrant, Error, Limits, Policy};

use crate::errors::WasmError;

/// The keyword arguments of `Plugin(...)` that make its policy. `None` (or
/// empty) leaves the value of the file, or the CLI's default.
#[derive(Default)]
pub(crate) struct PolicyArgs<'py> {
    pub file: Option<PathBuf>,
    pub max_memory: Option<Bound<'py, PyAny>>,
    pub max_output: Option<Bound<'py, PyAny>>,
    pub timeout: Option<Bound<'py, PyAny>>,
    pub fuel: Option<Bound<'py, PyAny>>,
    pub max_instances: Option<Bound<'py, PyAny>>,
    pub dirs: Vec<Bound<'py, PyAny>>,
    pub dirs_rw: Vec<Bound<'py, PyAny>>,
    pub env: BTreeMap<String, String>,
    pub sha256: Option<String>,
    pub allowed_hosts: Vec<String>,
    pub host_functions: Vec<String>,
}

impl PolicyArgs<'_> {
    pub(crate) fn build(self) -> PyResult<Policy> {
        let mut p = match &self.file {
            Some(f) => Policy::from_file(f).map_err(WasmError)?,
            None => Policy::default(),
        };
        for d in &self.dirs {
            p.dirs.push(dir_grant(d, false)?);
        }
        for d in &self.dirs_rw {
            p.dirs.push(dir_grant(d, true)?);
        }
        p.env.extend(self.env);
        p.allowed_hosts.extend(self.allowed_hosts);
        p.host_functions.extend(self.host_functions);
        if let Some(v) = &self.max_memory {
            p.limits.max_memory = size("max_memory", v)?;
        }
        if let Some(v) = &self.max_output {
            p.limits.max_output = Some(size("max_output", v)?);
        }
        if let Some(v) = &self.timeout {
            p.limits.timeout = duration("timeout", v)?;
        }
        if let Some(v) = &self.fuel {
            p.limits.fuel = Some(count("fuel", v)?);
        }
        if let Some(v) = &self.max_instances {
            p.limits.max_instances = Some(count("max_instances", v)?);
        }
        if self.sha256.is_some() {
            p.sha256 = self.sha256;
        }
        p.validate().map_err(WasmError)?;
        Ok(p)
    }
}

fn invalid(message: String) -> PyErr {
    WasmError(Error::InvalidPolicy(message)).into()
}

/// A count: an int (not a bool) that fits.
fn count<T: for<'a, 'py> FromPyObject<'a, 'py>>(arg: &str, v: &Bound<'_, PyAny>) -> PyResult<T> {
    let fits = !v.is_instance_of::<PyBool>() && v.is_instance_of::<PyInt>();
    fits.then(|| v.extract::<T>().ok())
        .flatten()
        .ok_or_else(|| invalid(format!("{arg} must be an int in range, got {v}")))
}

/// A size: bytes as an int, or a string with a unit (`"64MiB"`), as the CLI.
fn size(arg: &str, v: &Bound<'_, PyAny>) -> PyResult<u64> {
    if v.is_instance_of::<PyBool>() {
        return Err(invalid(format!("{arg} must be a size, got a bool")));
    }
    if let Ok(s) = v.cast::<PyString>() {
        return parse_size(&s.to_cow()?).map_err(|e| invalid(format!("{arg}: {e:#}")));
    }
    v.extract::<u64>().map_err(|_| {
        invalid(format!(
            "{arg} must be a number of bytes (an int >= 0) or a size such as \"64MiB\""
        ))
    })
}

/// A duration: seconds as an int or float, or a string with a unit
/// (`"500ms"`), as the CLI.
fn duration(arg: &str, v: &Bound<'_, PyAny>) -> PyResult<Duration> {
    if v.is_instance_of::<PyBool>() {
        return Err(invalid(format!("{arg} must be a duration, got a bool")));
    }
    if let Ok(s) = v.cast::<PyString>() {
        return parse_duration(&s.to_cow()?).map_err(|e| invalid(format!("{arg}: {e:#}")));
    }
    let secs: f64 = v.extract().map_err(|_| {
        invalid(format!(
            "{arg} must be seconds (a number) or a duration such as \"500ms\""
        ))
    })?;
    Duration::try_from_secs_f64(secs).map_err(|_| {
        invalid(format!(
            "{arg} must be a finite number of seconds >= 0, got {secs}"
        ))
    })
}

/// A directory grant: `"HOST[::GUEST]"` (the CLI's form), a path, or a
/// `(host, guest)` pair.
fn dir_grant(v: &Bound<'_, PyAny>, writable: bool) -> PyResult<DirGrant> {
    if let Ok(s) = v.cast::<PyString>() {
        return DirGrant::parse(&s.to_cow()?, writable).map_err(|e| WasmError(e).into());
    }
    if let Ok((host, guest)) = v.extract::<(PathBuf, String)>() {
        return Ok(DirGrant {
            host,
            guest: Some(guest),
            writable,
        });
    }
    let host: PathBuf = v.extract().map_err(|_| {
        invalid("a directory grant is \"HOST[::GUEST]\", a path, or a (host, guest) pair".into())
    })?;
    Ok(DirGrant {
        host,
        guest: None,
        writable,
    })
}

// --- The state a pickled Plugin carries ---------------------------------
//
// Every field, by destructuring: a field added to Policy or Limits fails
// to compile here instead of being dropped silently on the way to a worker.

type Secs = (u64, u32);

fn secs(d: Duration) -> Secs {
    (d.as_secs(), d.subsec_nanos())
}

fn from_secs((s, n): Secs) -> Duration {
    Duration::new(s, n.min(999_999_999))
}

/// `policy` as a dict of plain values.
pub(crate) fn to_state<'py>(py: Python<'py>, policy: &Policy) -> PyResult<Bound<'py, PyDict>> {
    let Policy {
        dirs,
        env,
        inherit_stdio,
        sha256,
        allowed_hosts,
        host_functions,
        limits,
    } = policy;
    let Limits {
        max_memory,
        timeout,
        fuel,
        max_instances,
        max_table_elements,
        max_open_files,
        max_module_size,
        compile_timeout,
        max_output,
        max_http_response,
        http_timeout,
    } = limits;
    let d = PyDict::new(py);
    let grants: Vec<(PathBuf, Option<String>, bool)> = dirs
        .iter()
        .map(|g| (g.host.clone(), g.guest.clone(), g.writable))
        .collect();
    d.set_item("dirs", grants)?;
    d.set_item("env", env.clone())?;
    d.set_item("inherit_stdio", *inherit_stdio)?;
    d.set_item("sha256", sha256.clone())?;
    d.set_item("max_memory", *max_memory)?;
    d.set_item("timeout", secs(*timeout))?;
    d.set_item("fuel", *fuel)?;
    d.set_item("max_instances", *max_instances)?;
    d.set_item("max_table_elements", *max_table_elements)?;
    d.set_item("max_open_files", *max_open_files)?;
    d.set_item("max_module_size", *max_module_size)?;
    d.set_item("compile_timeout", secs(*compile_timeout))?;
    d.set_item("max_output", *max_output)?;
    d.set_item("allowed_hosts", allowed_hosts.clone())?;
    d.set_item(
        "host_functions",
        host_functions.iter().cloned().collect::<Vec<_>>(),
    )?;
    d.set_item("max_http_response", *max_http_response)?;
    d.set_item("http_timeout", secs(*http_timeout))?;
    Ok(d)
}

/// The policy of a state made by [`to_state`], validated again.
pub(crate) fn from_state(d: &Bound<'_, PyDict>) -> PyResult<Policy> {
    fn get<'py, T: FromPyObjectOwned<'py>>(d: &Bound<'py, PyDict>, key: &str) -> PyResult<T> {
        let v = d
            .get_item(key)?
            .ok_or_else(|| invalid(format!("pickled policy has no '{key}'")))?;
        v.extract::<T>().map_err(|e| {
            let e: PyErr = e.into();
            invalid(format!("pickled policy's '{key}': {e}"))
        })
    }
    let grants: Vec<(PathBuf, Option<String>, bool)> = get(d, "dirs")?;
    let policy = Policy {
        dirs: grants
            .into_iter()
            .map(|(host, guest, writable)| DirGrant {
                host,
                guest,
                writable,
            })
            .collect(),
        env: get(d, "env")?,
        inherit_stdio: get(d, "inherit_stdio")?,
        sha256: get(d, "sha256")?,
        allowed_hosts: get(d, "allowed_hosts")?,
        host_functions: get::<Vec<String>>(d, "host_functions")?
            .into_iter()
            .collect(),
        limits: Limits {
            max_memory: get(d, "max_memory")?,
            timeout: from_secs(get(d, "timeout")?),
            fuel: get(d, "fuel")?,
            max_instances: get(d, "max_instances")?,
            max_table_elements: get(d, "max_table_elements")?,
            max_open_files: get(d, "max_open_files")?,
            max_module_size: get(d, "max_module_size")?,
            compile_timeout: from_secs(get(d, "compile_timeout")?),
            max_output: get(d, "max_output")?,
            max_http_response: get(d, "max_http_response")?,
            http_timeout: from_secs(get(d, "http_timeout")?),
        },
    };
    policy.validate().map_err(WasmError)?;
    Ok(policy)
}
