//! Component-model guests: the WIT worlds of `wit/` (`greeter`,
//! `arrow-processor`), run under the same policy, limits and error mapping as
//! core modules.
//!
//! A component gets WASI 0.2 (`wasmtime_wasi::p2`) built from the same
//! [`wasi_builder`](crate::host::wasi_builder) as a core module's WASI
//! preview 1, the same [`Limiter`] and open-file bound ([`crate::files`]),
//! and per call the same deadline and fuel ([`crate::deadline`]); errors go
//! through the same [`classify`](crate::guest::classify). Exports are called
//! as futures (async bindings), so that a WASI host call is cut off at the
//! deadline too.

use anyhow::Context;
use wasmtime::component::{Component, InstancePre, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::error::{Error, Result};
use crate::host::{wasi_builder, Limiter};
use crate::policy::Policy;
use crate::stderr_tail::StderrTail;

/// Bindings of `wit/greeter.wit`.
pub(crate) mod greeter {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "greeter",
        exports: { default: async },
    });
}

/// Bindings of `wit/arrow-processor.wit`.
pub(crate) mod arrow {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "arrow-processor",
        exports: { default: async },
    });
}

/// Whether `bytes` hold a component rather than a core module: binary with
/// the component layer (header `\0asm`, version 0x0d, layer 1), or text that
/// starts with `(component`.
pub fn is_component(bytes: &[u8]) -> bool {
    if let Some(header) = bytes.get(..8) {
        if header[..4] == *b"\0asm" {
            return header[6..8] == [1, 0];
        }
    }
    std::str::from_utf8(bytes).is_ok_and(|text| {
        text.lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with(";;"))
            .is_some_and(|l| l.starts_with("(component"))
    })
}

/// Per-store state of a component instance: its WASI 0.2 context and
/// resource table, and the policy's limiter.
pub(crate) struct ComponentState {
    ctx: WasiCtx,
    table: ResourceTable,
    pub(crate) limiter: Limiter,
    /// `max-open-files`, enforced by [`crate::files`].
    pub(crate) max_open_files: usize,
    /// The end of what the guest wrote to stderr ([`crate::stderr_tail`]).
    pub(crate) stderr: StderrTail,
}

impl ComponentState {
    pub(crate) fn new(policy: &Policy) -> anyhow::Result<Self> {
        let stderr = StderrTail::default();
        Ok(ComponentState {
            ctx: wasi_builder(policy, &stderr)?.build(),
            table: ResourceTable::new(),
            limiter: Limiter::new(policy),
            max_open_files: policy.limits.max_open_files as usize,
            stderr,
        })
    }
}

impl WasiView for ComponentState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.ctx,
            table: &mut self.table,
        }
    }
}

/// Resolves a compiled component's imports against WASI 0.2 (compiled,
/// or loaded from the cache, by `Runtime::load_bytes`).
pub(crate) fn prepare(
    engine: &Engine,
    component: &Component,
) -> Result<InstancePre<ComponentState>> {
    let mut linker: Linker<ComponentState> = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)
        .map_err(anyhow::Error::from)
        .context("cannot add WASI to the component linker")?;
    crate::files::bound_component(&mut linker)?;
    linker
        .instantiate_pre(component)
        .map_err(|e| Error::Instantiate(format!("{:#}", anyhow::Error::from(e))))
}

/// A live component instance: its store and the worlds it implements.
pub(crate) struct ComponentGuest {
    pub(crate) store: Store<ComponentState>,
    /// The `greeter` world's exports, or why the component lacks them.
    pub(crate) greeter: std::result::Result<greeter::Greeter, String>,
    /// The `arrow-processor` world's exports, or why the component lacks them.
    pub(crate) arrow: std::result::Result<arrow::ArrowProcessor, String>,
}

impl ComponentGuest {
    /// Instantiates `pre` in `store` (limits already armed by the caller).
    pub(crate) async fn new(
        mut store: Store<ComponentState>,
        pre: &InstancePre<ComponentState>,
    ) -> wasmtime::Result<Self> {
        let instance = pre.instantiate_async(&mut store).await?;
        let why = |e: wasmtime::Error| format!("{:#}", anyhow::Error::from(e));
        let greeter = greeter::Greeter::new(&mut store, &instance).map_err(why);
        let arrow = arrow::ArrowProcessor::new(&mut store, &instance).map_err(why);
        Ok(ComponentGuest {
            store,
            greeter,
            arrow,
        })
    }
}

/// The error for a call into a world the component does not implement.
pub(crate) fn missing_world(world: &str, func: &str, why: &str) -> Error {
    Error::MissingExport {
        name: func.into(),
        expected: format!("(WIT world `{world}`; {why})"),
    }
}

#[cfg(test)]
mod tests {
    use super::is_component;

    #[test]
    fn tells_components_from_core_modules() {
        assert!(is_component(b"\0asm\x0d\0\x01\0"));
        assert!(!is_component(b"\0asm\x01\0\0\0"));
        assert!(is_component(b";; a component\n  (component)"));
        assert!(!is_component(b"(module)"));
        assert!(!is_component(b""));
        assert!(!is_component(b"\0asm"));
    }
}
