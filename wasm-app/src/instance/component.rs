//! Component-model guests: the WIT worlds of `wit/` (`greeter`,
//! `arrow-processor`), run under the same policy, limits and error mapping as
//! core modules.
//!
//! A component gets WASI 0.2 (`wasmtime_wasi::p2`) built from the same
//! [`wasi_builder`](crate::host::wasi_builder) as a core module's WASI
//! preview 1, the same limiter ([`crate::host`]) and open-file bound ([`crate::files`]),
//! and per call the same deadline and fuel ([`crate::deadline`]); errors go
//! through the same [`classify`](crate::error::classify). Exports are called
//! as futures (async bindings), so that a WASI host call is cut off at the
//! deadline too.
//!
//! The canonical ABI copies every argument in and every result out, so this
//! backend reads no guest pointer itself: the checks left to it are the
//! sizes of what comes out.

use anyhow::Context;
use wasmtime::component::{Component, InstancePre, Linker};
use wasmtime::{Engine, Store};

use ::arrow::buffer::Buffer;
use wasm_abi::component as wit;

use crate::buffer_pool::BufferPool;
use crate::deadline::{self, Deadline};
use crate::error::{classify, Error, Limit, Result, INSTANTIATION};
use crate::host::ComponentState;
use crate::instance::{AbiSupport, Backend};
use crate::policy::Limits;
use crate::stderr_tail::StderrTail;
use crate::string_abi::{StringAbi, MAX_GREETING};

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
    // wasi:http, sent by the host under the grants (`net::http`).
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
        .map_err(anyhow::Error::from)
        .context("cannot add wasi:http to the component linker")?;
    crate::files::bound_component(&mut linker)?;
    crate::net::sockets::bound_sockets(&mut linker)?;
    linker
        .instantiate_pre(component)
        .map_err(|e| Error::Instantiate(crate::error::described(e)))
}

/// A live component instance: its store and the worlds it implements.
pub(crate) struct ComponentInstance {
    store: Store<ComponentState>,
    instance: wasmtime::component::Instance,
    limits: Limits,
    /// The `greeter` world's exports, or why the component lacks them.
    greeter: std::result::Result<greeter::Greeter, String>,
    /// The `arrow-processor` world's exports, or why the component lacks them.
    arrow: std::result::Result<arrow::ArrowProcessor, String>,
}

impl ComponentInstance {
    /// Instantiates `pre` in `store` (armed by the caller).
    pub(crate) async fn new(
        mut store: Store<ComponentState>,
        pre: &InstancePre<ComponentState>,
        limits: Limits,
    ) -> Result<Self> {
        let instance = match pre.instantiate_async(&mut store).await {
            Ok(i) => i,
            Err(e) => {
                let err = classify(e, limits.timeout, limits.fuel, INSTANTIATION);
                return Err(store.data().stderr.explain(err));
            }
        };
        let why = |e: wasmtime::Error| format!("{:#}", anyhow::Error::from(e));
        let greeter = greeter::Greeter::new(&mut store, &instance).map_err(why);
        let arrow = arrow::ArrowProcessor::new(&mut store, &instance).map_err(why);
        Ok(ComponentInstance {
            store,
            instance,
            limits,
            greeter,
            arrow,
        })
    }

    /// Maps what a call returned: wasmtime's error classified, `func`
    /// naming the WIT function.
    /// A trap leads with what the guest last wrote to stderr (a panic
    /// message, usually).
    fn done<R>(&self, func: &str, r: wasmtime::Result<R>) -> Result<R> {
        r.map_err(|e| {
            let err = classify(e, self.limits.timeout, self.limits.fuel, func);
            self.store.data().stderr.explain(err)
        })
    }

    /// Calls a top-level export of one of the generic call's types
    /// ([`wasm_abi::component`]), tried in that order.
    async fn call_named(&mut self, export: &str, input: &[u8]) -> Result<Vec<u8>> {
        let Some(func) = self.instance.get_func(&mut self.store, export) else {
            return Err(Error::MissingExport {
                name: export.into(),
                expected: format!("({})", wit::BYTES_RESULT),
            });
        };
        if let Ok(f) = func.typed::<(&[u8],), (std::result::Result<Vec<u8>, String>,)>(&self.store)
        {
            let r = f.call_async(&mut self.store, (input,)).await;
            return self.done(export, r)?.0.map_err(reported);
        }
        if let Ok(f) = func.typed::<(&[u8],), (Vec<u8>,)>(&self.store) {
            let r = f.call_async(&mut self.store, (input,)).await;
            return Ok(self.done(export, r)?.0);
        }
        let text = |expected: &str| {
            std::str::from_utf8(input).map_err(|e| {
                Error::InvalidArgument(format!(
                    "`{export}` takes a string ({expected}), and the input is not UTF-8: {e}"
                ))
            })
        };
        if let Ok(f) = func.typed::<(&str,), (String,)>(&self.store) {
            let r = f.call_async(&mut self.store, (text(wit::STRING)?,)).await;
            return Ok(self.done(export, r)?.0.into_bytes());
        }
        if let Ok(f) = func.typed::<(&str,), (std::result::Result<String, String>,)>(&self.store) {
            let r = f
                .call_async(&mut self.store, (text(wit::STRING_RESULT)?,))
                .await;
            return self
                .done(export, r)?
                .0
                .map(String::into_bytes)
                .map_err(reported);
        }
        let ty = func.ty(&self.store);
        let params: Vec<String> = ty.params().map(|(n, t)| format!("{n}: {t:?}")).collect();
        let results: Vec<String> = ty.results().map(|t| format!("{t:?}")).collect();
        Err(Error::WrongSignature {
            name: export.into(),
            expected: format!(
                "one of `{}`, `{}`, `{}`, `{}`",
                wit::BYTES_RESULT,
                wit::BYTES,
                wit::STRING,
                wit::STRING_RESULT
            ),
            found: crate::text::guest_text(
                format!("func({}) -> ({})", params.join(", "), results.join(", ")).as_bytes(),
            ),
        })
    }
}

/// A guest's `err(message)`.
fn reported(message: String) -> Error {
    Error::GuestReported {
        message: Some(crate::text::guest_text(message.as_bytes())),
    }
}

/// Checks the size of what a component returned against the output limit.
fn bounded(bytes: Vec<u8>, limits: &Limits) -> Result<Vec<u8>> {
    let max = limits.output_limit();
    if bytes.len() as u64 > max {
        return Err(Error::LimitExceeded(Limit::Output(max)));
    }
    Ok(bytes)
}

impl Backend for ComponentInstance {
    fn arm(&mut self, deadline: &Deadline) -> Result<()> {
        self.store.data().refusal.start();
        self.store.data().looked_up.start();
        deadline::arm(&mut self.store, &self.limits, deadline)
    }

    fn end(&mut self) -> Option<Error> {
        self.store.data().end_operation();
        self.store.data().refusal.take()
    }

    async fn release(&mut self) -> Result<()> {
        // The canonical ABI frees what it copied; nothing is held.
        Ok(())
    }

    async fn answer(&mut self) -> Result<i32> {
        let w = self
            .greeter
            .as_ref()
            .map_err(|why| missing_world(wit::GREETER_WORLD, wit::ANSWER, why))?;
        let r = w.call_answer(&mut self.store).await;
        self.done(wit::ANSWER, r)
    }

    /// A component has one greeter, its WIT `greet`, whatever `abi` says.
    async fn greet(&mut self, _abi: StringAbi, name: &str) -> Result<String> {
        let w = self
            .greeter
            .as_ref()
            .map_err(|why| missing_world(wit::GREETER_WORLD, wit::GREET, why))?;
        let r = w.call_greet(&mut self.store, name).await;
        let greeting = self.done(wit::GREET, r)?;
        if greeting.len() > MAX_GREETING {
            return Err(Error::BadString(format!(
                "greeting of {} bytes exceeds the {MAX_GREETING}-byte cap",
                greeting.len()
            )));
        }
        Ok(greeting)
    }

    /// WIT `process`: the canonical ABI copies both lists in and the result
    /// out; `Err(message)` is the guest's reported error.
    async fn process<P: AsRef<[u8]>>(
        &mut self,
        meta: &[u8],
        data: &[P],
        _data_len: u32,
        _results: &BufferPool,
    ) -> Result<Buffer> {
        let joined;
        let data: &[u8] = match data {
            [] => &[],
            [one] => one.as_ref(),
            parts => {
                joined = parts
                    .iter()
                    .flat_map(|p| p.as_ref())
                    .copied()
                    .collect::<Vec<u8>>();
                &joined
            }
        };
        let a = self
            .arrow
            .as_ref()
            .map_err(|why| missing_world(wit::ARROW_WORLD, wit::PROCESS, why))?;
        let r = a.call_process(&mut self.store, meta, data).await;
        let out = self.done(wit::PROCESS, r)?.map_err(reported)?;
        Ok(Buffer::from(bounded(out, &self.limits)?))
    }

    async fn call_bytes(&mut self, export: &str, input: &[u8]) -> Result<Vec<u8>> {
        let out = self.call_named(export, input).await?;
        bounded(out, &self.limits)
    }

    fn stderr(&self) -> &StderrTail {
        &self.store.data().stderr
    }

    /// A component's memories are internal to it (not exported): the size
    /// of its largest memory (its program's, not the WASI adapter's), as
    /// the resource limiter saw it grow.
    fn memory_size(&self) -> usize {
        self.store.data().limiter.largest_memory()
    }

    /// Its WIT worlds (`greeter` counts as both string ABIs).
    fn abi_support(&self) -> AbiSupport {
        AbiSupport {
            answer: self.greeter.is_ok(),
            greeter_c: self.greeter.is_ok(),
            greeter_rust: self.greeter.is_ok(),
            arrow: self.arrow.is_ok(),
            last_error: false,
        }
    }
}

/// The error for a call into a world the component does not implement.
fn missing_world(world: &str, func: &str, why: &str) -> Error {
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
