//! Support for the Python benchmark (`wasm-py/bench/bench.py`), not API:
//! the Rust side of "`plugin.process` from Python against the same call
//! from Rust". Both run in the same process, on the same build and the
//! same instance pool; only the Python boundary (the C stream import of
//! the input, the export of the result, the GIL) is left out here.

use std::collections::BTreeMap;
use std::time::Instant;

use pyo3::prelude::*;

use crate::arrow_io::Input;
use crate::errors::other;
use crate::plugin::Plugin;

/// Seconds taken by each of `iterations` calls of
/// `wasm_app::Plugin::process_table(command, config, data)`, the call
/// `Plugin.process` makes, timed in Rust with `data` imported once.
#[pyfunction]
#[pyo3(signature = (plugin, command, data, config=None, iterations=10))]
pub(crate) fn _time_process(
    py: Python<'_>,
    plugin: &Plugin,
    command: &str,
    data: &Bound<'_, PyAny>,
    config: Option<BTreeMap<String, String>>,
    iterations: usize,
) -> PyResult<Vec<f64>> {
    let input = Input::open(data)?;
    let input = py.detach(|| input.into_table()).map_err(other)?;
    let config: Vec<(String, String)> = config.unwrap_or_default().into_iter().collect();
    plugin.with(py, |p| {
        (0..iterations)
            .map(|_| {
                let start = Instant::now();
                let out = p.process_table(command, &config, &input)?;
                let secs = start.elapsed().as_secs_f64();
                drop(out);
                Ok(secs)
            })
            .collect()
    })
}
