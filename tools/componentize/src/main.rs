//! `componentize IN.wasm OUT.wasm`: wraps a wasm32-wasip1 core module built
//! with `wit-bindgen` (which embeds its WIT world in a custom section) into a
//! component, adapting its WASI preview 1 imports to WASI 0.2 with
//! wasmtime's reactor adapter. Used by `scripts/build-guests.sh`.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use wasi_preview1_component_adapter_provider::{
    WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
};
use wit_component::ComponentEncoder;

fn main() -> Result<()> {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [input, output] = args.as_slice() else {
        bail!("usage: componentize IN.wasm OUT.wasm");
    };
    let module =
        std::fs::read(input).with_context(|| format!("cannot read {}", input.display()))?;
    let component = ComponentEncoder::default()
        .module(&module)
        .context("the module has no usable wit-bindgen metadata")?
        .adapter(
            WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME,
            WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
        )
        .context("cannot use the WASI preview 1 reactor adapter")?
        .validate(true)
        .encode()
        .with_context(|| format!("cannot turn {} into a component", input.display()))?;
    std::fs::write(output, &component)
        .with_context(|| format!("cannot write {}", output.display()))?;
    Ok(())
}
