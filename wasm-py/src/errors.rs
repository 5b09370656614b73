//! `wasm_app::Error` as Python exceptions.
//!
//! The classes live in Python (`wasm_study/errors.py`), where a class can
//! also be a `ValueError` or a `PermissionError`; this file only picks the
//! class for each variant and fills its attributes, so the mapping is in
//! one place.

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyModule;
use wasm_app::{Error, Limit};

/// The Python module holding the exception classes.
const ERRORS_MODULE: &str = "wasm_study.errors";

/// A `wasm_app::Error` on its way to Python.
pub(crate) struct WasmError(pub(crate) Error);

impl From<Error> for WasmError {
    fn from(e: Error) -> Self {
        WasmError(e)
    }
}

impl From<WasmError> for PyErr {
    fn from(e: WasmError) -> Self {
        Python::attach(|py| raise(py, e.0))
    }
}

/// An error of the binding itself (not of a guest), as `WasmError`.
pub(crate) fn other(message: impl std::fmt::Display) -> PyErr {
    WasmError(Error::Other(anyhow::anyhow!("{message}"))).into()
}

/// The class name and attributes for `e`.
fn class_of(e: &Error) -> (&'static str, Vec<(&'static str, Attr)>) {
    match e {
        Error::Load { .. } => ("LoadError", vec![]),
        Error::MissingExport { .. } => ("MissingExport", vec![]),
        Error::WrongSignature { .. } => ("WrongSignature", vec![]),
        Error::Instantiate(_) => ("InstantiateError", vec![]),
        Error::Trap { backtrace, .. } => {
            ("Trap", vec![("backtrace", Attr::Text(backtrace.clone()))])
        }
        Error::LimitExceeded(limit) => {
            let (name, value) = limit_attrs(limit);
            (
                "LimitExceeded",
                vec![("limit", Attr::Text(Some(name.into()))), ("value", value)],
            )
        }
        Error::InvalidPolicy(_) => ("InvalidPolicy", vec![]),
        Error::PolicyDenied(_) => ("PolicyDenied", vec![]),
        Error::GuestReported { message } => (
            "GuestError",
            vec![("guest_message", Attr::Text(message.clone()))],
        ),
        Error::BadPointer(_) => ("GuestProtocolError", kind("bad-pointer")),
        Error::BadString(_) => ("GuestProtocolError", kind("bad-string")),
        Error::Allocator(_) => ("GuestProtocolError", kind("allocator")),
        Error::Exited(status) => ("GuestExited", vec![("status", Attr::Signed(*status))]),
        Error::InvalidArgument(_) => ("InvalidArgument", vec![]),
        // Error is non-exhaustive in spirit: anything new is a WasmError.
        _ => ("WasmError", vec![]),
    }
}

fn kind(k: &'static str) -> Vec<(&'static str, Attr)> {
    vec![("kind", Attr::Text(Some(k.into())))]
}

/// An attribute value of an exception.
enum Attr {
    Text(Option<String>),
    Int(u64),
    Signed(i32),
    Seconds(f64),
}

/// `LimitExceeded.limit` and `.value`: bytes, seconds or a count.
fn limit_attrs(limit: &Limit) -> (&'static str, Attr) {
    match *limit {
        Limit::Memory(b) => ("memory", Attr::Int(b)),
        Limit::Time(d) => ("time", Attr::Seconds(d.as_secs_f64())),
        Limit::Fuel(n) => ("fuel", Attr::Int(n)),
        Limit::TableElements(n) => ("table-elements", Attr::Int(n)),
        Limit::Instances(n) => ("instances", Attr::Int(n.into())),
        Limit::ModuleSize(b) => ("module-size", Attr::Int(b)),
        Limit::CompileTime(d) => ("compile-time", Attr::Seconds(d.as_secs_f64())),
        Limit::Output(b) => ("output", Attr::Int(b)),
        Limit::HttpResponse(b) => ("http-response", Attr::Int(b)),
        Limit::HttpTime(d) => ("http-time", Attr::Seconds(d.as_secs_f64())),
    }
}

/// The exception for `e`: its class from `wasm_study.errors`, its message
/// the error with its whole context chain.
fn raise(py: Python<'_>, e: Error) -> PyErr {
    let message = format!("{e:#}");
    let (class, attrs) = class_of(&e);
    match build(py, class, &message, attrs) {
        Ok(err) => err,
        // Only if the Python half of the package is broken.
        Err(why) => PyRuntimeError::new_err(format!("{message} (and {ERRORS_MODULE}: {why})")),
    }
}

fn build(
    py: Python<'_>,
    class: &str,
    message: &str,
    attrs: Vec<(&'static str, Attr)>,
) -> PyResult<PyErr> {
    static MODULE: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
    let module =
        MODULE.get_or_try_init(py, || PyModule::import(py, ERRORS_MODULE).map(Into::into))?;
    let exc = module.bind(py).getattr(class)?.call1((message,))?;
    for (name, value) in attrs {
        match value {
            Attr::Text(t) => exc.setattr(name, t)?,
            Attr::Int(n) => exc.setattr(name, n)?,
            Attr::Signed(n) => exc.setattr(name, n)?,
            Attr::Seconds(s) => exc.setattr(name, s)?,
        }
    }
    Ok(PyErr::from_value(exc))
}
