//! Shared by the integration tests: where the built guests and the Arrow
//! test data live, and one runtime + compiled module per test binary;
//! the hostile modules of `tests/hostile/`; running the CLI (`cli`),
//! pipelines (`steps`), hang guards (`guard`) and generated guests' WAT
//! (`wat`).
#![allow(dead_code)]

pub mod cli;
pub mod guard;
pub mod steps;
pub mod wat;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use wasm_abi::built;
use wasm_app::{EngineOptions, Module, Policy, Runtime};

/// Folder of the built guests (`make guests`): `$WASM_APP_MODULES`, else the
/// workspace's `target/wasm-modules` (see `wasm_abi::built`).
pub fn modules_dir() -> PathBuf {
    built::modules_dir(Path::new(env!("CARGO_MANIFEST_DIR")), &built::STUDY)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The built guest `file` (one of `wasm_abi::built`'s names).
pub fn guest_path(file: &str) -> PathBuf {
    built::guest(Path::new(env!("CARGO_MANIFEST_DIR")), file).unwrap_or_else(|e| panic!("{e}"))
}

/// [`guest_path`] as a command-line argument.
pub fn guest_arg(file: &str) -> String {
    guest_path(file).display().to_string()
}

/// `tests/hostile/FILE`: a hand-written hostile module.
pub fn hostile_path(file: &str) -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/hostile")).join(file)
}

/// A hostile module that is expected to load (its misbehaviour comes
/// later), on the fuel-metered runtime.
pub fn load_hostile(file: &str, policy: Policy) -> Module {
    fuel_runtime()
        .load(hostile_path(file), policy)
        .unwrap_or_else(|e| panic!("hostile module {file} should load: {e}"))
}

/// `../shared/arrow-testing` next to the project (or `$ARROW_TESTING_DIR`).
pub fn arrow_testing() -> PathBuf {
    let dir = std::env::var_os("ARROW_TESTING_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../shared/arrow-testing"
            ))
        });
    assert!(
        dir.join("integration-1.0.0-littleendian").is_dir(),
        "Arrow test data not found in {} (set ARROW_TESTING_DIR)",
        dir.display()
    );
    dir
}

/// One engine per test binary.
pub fn runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        Runtime::new(EngineOptions {
            cache_dir: None,
            ..Default::default()
        })
        .expect("runtime")
    })
}

/// One engine per test binary with a compiled-module cache of its own (a
/// temporary folder): tests that load a guest under many policies compile
/// it once.
pub fn cached_runtime() -> &'static Runtime {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        let dir = DIR.get_or_init(|| tempfile::tempdir().expect("temp dir"));
        Runtime::new(EngineOptions {
            cache_dir: Some(dir.path().to_path_buf()),
            ..Default::default()
        })
        .expect("runtime")
    })
}

/// One engine per test binary with fuel metering, so fuel policies can be
/// tested (policies without fuel still run unmetered).
pub fn fuel_runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        Runtime::new(EngineOptions {
            cache_dir: None,
            fuel: true,
            ..Default::default()
        })
        .expect("cannot build the wasm runtime")
    })
}

/// A guest built by `make guests`, compiled once per test binary per name
/// (each in its own cell, so different guests compile in parallel).
fn load_built(file: &'static str) -> Module {
    type Cells = Mutex<HashMap<&'static str, Arc<OnceLock<Module>>>>;
    static CELLS: OnceLock<Cells> = OnceLock::new();
    let cell = CELLS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(file)
        .or_default()
        .clone();
    cell.get_or_init(|| {
        runtime()
            .load(guest_path(file), Policy::default())
            .unwrap_or_else(|e| panic!("load {file}: {e}"))
    })
    .clone()
}

/// `wasm_module1.wasm` (the Rust greeter).
pub fn greeter() -> Module {
    load_built(built::MODULE1)
}

/// `wasm_module_c.wasm` (the C greeter).
pub fn greeter_c() -> Module {
    load_built(built::MODULE_C)
}

/// `wasm_module2.wasm` (the Arrow processor).
pub fn arrow_module() -> Module {
    load_built(built::MODULE2)
}

/// `wasm_component_greeter.wasm`: the greeter as a component (WIT `greeter`).
pub fn greeter_component() -> Module {
    load_built(built::COMPONENT_GREETER)
}

/// `wasm_component_arrow.wasm`: the Arrow processor as a component (WIT
/// `arrow-processor`).
pub fn arrow_component() -> Module {
    load_built(built::COMPONENT_ARROW)
}

/// `wasm_component_hostile.wasm`: a `greeter` component that misbehaves on
/// request (see `wasm-component-hostile/src/lib.rs`).
pub fn hostile_component_path() -> PathBuf {
    guest_path(built::COMPONENT_HOSTILE)
}

/// Every greeter guest, named: the Rust one, the C one and the component.
pub fn greeter_modules() -> Vec<(&'static str, Module)> {
    vec![
        ("wasm_module1", greeter()),
        ("wasm_module_c", greeter_c()),
        ("wasm_component_greeter", greeter_component()),
    ]
}

/// Every Arrow processor, named: the core module and the component.
pub fn arrow_modules() -> Vec<(&'static str, Module)> {
    vec![
        ("wasm_module2", arrow_module()),
        ("wasm_component_arrow", arrow_component()),
    ]
}
