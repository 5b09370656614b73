//! `wasm_study.Plugin`: one module, its policy, and instances for the
//! threads that call it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::{PyBytes, PyDict, PyTuple};
use wasm_app::pipeline::{Options, Step, DEFAULT_BATCH_SIZE};
use wasm_app::{Error, Module, Policy, Pool, StringAbi};

use crate::arrow_io::{table_to_py, Input};
use crate::errors::{other, WasmError};
use crate::policy::{from_state, to_state, PolicyArgs};
use crate::runtimes;
use crate::stream::BatchStream;

/// A module loaded under a policy (see the package's documentation).
///
/// Invariants: `bytes` are exactly the bytes `module` was compiled from
/// (what a pickle ships), and `policy` is the module's policy with its
/// `sha256` set, so a worker that unpickles it runs those bytes or none.
/// A call takes an instance from `pool` (`wasm_app::Pool`), without the GIL:
/// threads calling at once get one each.
#[pyclass(module = "wasm_study._native", name = "Plugin", frozen)]
pub(crate) struct Plugin {
    module: Module,
    bytes: Arc<[u8]>,
    policy: Policy,
    cache: bool,
    pool: Pool,
}

impl Plugin {
    fn load(name: &str, bytes: Arc<[u8]>, policy: Policy, cache: bool) -> Result<Self, Error> {
        let rt = runtimes::for_policy(&policy, cache)?;
        let module = rt.load_bytes(name, &bytes, policy)?;
        let mut policy = module.policy().clone();
        policy.sha256 = Some(module.sha256().to_string());
        Ok(Plugin {
            pool: Pool::new(module.clone()),
            module,
            bytes,
            policy,
            cache,
        })
    }

    /// Runs `f` on an instance of its own, without the GIL.
    pub(crate) fn with<R: Send>(
        &self,
        py: Python<'_>,
        f: impl FnMut(&mut wasm_app::Plugin) -> wasm_app::Result<R> + Send,
    ) -> PyResult<R> {
        py.detach(|| self.pool.run(f))
            .map_err(|e| WasmError(e).into())
    }
}

fn config_pairs(config: Option<BTreeMap<String, String>>) -> Vec<(String, String)> {
    config.unwrap_or_default().into_iter().collect()
}

#[pymethods]
impl Plugin {
    #[new]
    #[pyo3(signature = (
        module, *, policy=None, max_memory=None, max_output=None, timeout=None, fuel=None,
        max_instances=None, dirs=Vec::new(), dirs_rw=Vec::new(), env=BTreeMap::new(),
        sha256=None, allowed_hosts=Vec::new(), host_functions=Vec::new(), cache=true, name=None,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new<'py>(
        py: Python<'py>,
        module: &Bound<'py, PyAny>,
        policy: Option<PathBuf>,
        max_memory: Option<Bound<'py, PyAny>>,
        max_output: Option<Bound<'py, PyAny>>,
        timeout: Option<Bound<'py, PyAny>>,
        fuel: Option<Bound<'py, PyAny>>,
        max_instances: Option<Bound<'py, PyAny>>,
        dirs: Vec<Bound<'py, PyAny>>,
        dirs_rw: Vec<Bound<'py, PyAny>>,
        env: BTreeMap<String, String>,
        sha256: Option<String>,
        allowed_hosts: Vec<String>,
        host_functions: Vec<String>,
        cache: bool,
        name: Option<String>,
    ) -> PyResult<Self> {
        let policy = PolicyArgs {
            file: policy,
            max_memory,
            max_output,
            timeout,
            fuel,
            max_instances,
            dirs,
            dirs_rw,
            env,
            sha256,
            allowed_hosts,
            host_functions,
        }
        .build()?;
        // Bytes, or a path read once: what is verified is what a pickle ships.
        let (name, source) = match module.extract::<PyBackedBytes>() {
            Ok(b) => (name.unwrap_or_else(|| "<bytes>".into()), Ok(b)),
            Err(_) => {
                let path: PathBuf = module.extract().map_err(|_| {
                    pyo3::exceptions::PyTypeError::new_err(
                        "module must be the bytes of a .wasm/.wat module or a path to one",
                    )
                })?;
                (
                    name.unwrap_or_else(|| path.display().to_string()),
                    Err(path),
                )
            }
        };
        let limits = policy.limits.clone();
        let max = limits.max_module_size;
        py.detach(move || {
            let bytes: Arc<[u8]> = match source {
                Ok(b) => {
                    if b.len() as u64 > max {
                        return Err(Error::LimitExceeded(wasm_app::Limit::ModuleSize(max)));
                    }
                    Arc::from(&*b)
                }
                Err(path) => wasm_app::read_module(&path, &limits)?.into(),
            };
            Plugin::load(&name, bytes, policy, cache)
        })
        .map_err(|e| WasmError(e).into())
    }

    /// Calls a pair-ABI export (or a component's bytes/string function):
    /// bytes in, bytes out.
    fn call<'py>(
        &self,
        py: Python<'py>,
        export: &str,
        data: PyBackedBytes,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let out = self.with(py, |p| p.call(export, &*data))?;
        Ok(PyBytes::new(py, &out))
    }

    /// The greeter's answer to `name` through the C (`"c"`) or Rust
    /// (`"rust"`) string ABI (a component ignores `abi`).
    #[pyo3(signature = (name, abi="rust"))]
    fn greet(&self, py: Python<'_>, name: &str, abi: &str) -> PyResult<String> {
        let abi = StringAbi::from_str(abi).map_err(|e| WasmError(Error::InvalidArgument(e)))?;
        self.with(py, |p| p.greet(abi, name))
    }

    /// Runs an Arrow command over all of `data` in one call (then its
    /// flush call) and returns a `pyarrow.Table`.
    #[pyo3(signature = (command, data, config=None))]
    fn process<'py>(
        &self,
        py: Python<'py>,
        command: &str,
        data: &Bound<'py, PyAny>,
        config: Option<BTreeMap<String, String>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let input = Input::open(data)?;
        let input = py.detach(|| input.into_table()).map_err(other)?;
        let config = config_pairs(config);
        let out = self.with(py, |p| p.process_table(command, &config, &input))?;
        table_to_py(py, out)
    }

    /// Streams `data` through an Arrow command batch by batch, as the CLI
    /// does; returns a `pyarrow.RecordBatchReader`.
    #[pyo3(signature = (command, data, config=None, *, threads=1, batch_size=DEFAULT_BATCH_SIZE))]
    fn process_stream<'py>(
        &self,
        py: Python<'py>,
        command: &str,
        data: &Bound<'py, PyAny>,
        config: Option<BTreeMap<String, String>>,
        threads: usize,
        batch_size: usize,
    ) -> PyResult<Bound<'py, PyAny>> {
        if threads == 0 || batch_size == 0 {
            return Err(WasmError(Error::InvalidArgument(
                "threads and batch_size must be at least 1".into(),
            ))
            .into());
        }
        let input = Input::open(data)?;
        if self.policy.limits.max_instances.is_some() {
            // The stream makes its own instances: free the idle ones' slots.
            self.pool.clear();
        }
        let step = Step {
            module: self.module.clone(),
            command: command.to_string(),
            config: config_pairs(config),
        };
        let options = Options {
            threads,
            ordered: true,
        };
        let stream = BatchStream::start(py, step, options, batch_size, input)?;
        let schema = stream.schema(py)?;
        py.import("pyarrow")?
            .getattr("RecordBatchReader")?
            .call_method1("from_batches", (schema, stream))
    }

    /// The module's name (its path, or `name=`).
    #[getter]
    fn name(&self) -> &str {
        self.module.name()
    }

    /// The SHA-256 of the module's bytes, lowercase hex.
    #[getter]
    fn sha256(&self) -> &str {
        self.module.sha256()
    }

    /// Whether the module is a component (else a core module).
    #[getter]
    fn is_component(&self) -> bool {
        self.module.is_component()
    }

    /// The policy in force, as a dict of plain values.
    #[getter]
    fn policy<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        to_state(py, &self.policy)
    }

    fn __repr__(&self) -> String {
        format!(
            "Plugin({:?}, sha256={}…, timeout={:?}, max_memory={})",
            self.module.name(),
            &self.module.sha256()[..12],
            self.policy.limits.timeout,
            self.policy.limits.max_memory
        )
    }

    /// Pickled as module bytes + policy (with the module's SHA-256): the
    /// other side compiles them again, or takes them from its cache.
    fn __reduce__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let restore = py.import("wasm_study._native")?.getattr("_restore")?;
        let args = (
            self.module.name(),
            PyBytes::new(py, &self.bytes),
            to_state(py, &self.policy)?,
            self.cache,
        );
        (restore, args).into_pyobject(py)
    }
}

/// The other half of `Plugin.__reduce__`.
#[pyfunction]
pub(crate) fn _restore(
    py: Python<'_>,
    name: String,
    bytes: PyBackedBytes,
    policy: Bound<'_, PyDict>,
    cache: bool,
) -> PyResult<Plugin> {
    let policy = from_state(&policy)?;
    let bytes: Arc<[u8]> = Arc::from(&*bytes);
    py.detach(move || Plugin::load(&name, bytes, policy, cache))
        .map_err(|e| WasmError(e).into())
}
