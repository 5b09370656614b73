//! Shared by the integration tests: where the built guests and the Arrow
//! test data live, and one runtime + compiled module per test binary.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

use wasm_app::{EngineOptions, Module, Policy, Runtime};

/// Folder of the built guests (`make guests`).
pub fn modules_dir() -> PathBuf {
    let dir = std::env::var_os("WASM_APP_MODULES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../target/wasm-modules"
            ))
        });
    assert!(
        dir.join("wasm_module1.wasm").is_file() && dir.join("wasm_module2.wasm").is_file(),
        "guest modules not built: run `make guests` (none in {})",
        dir.display()
    );
    dir
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

/// `wasm_module1.wasm`, compiled once per test binary.
pub fn greeter() -> Module {
    static M: OnceLock<Module> = OnceLock::new();
    M.get_or_init(|| {
        runtime()
            .load(modules_dir().join("wasm_module1.wasm"), Policy::default())
            .expect("load wasm_module1")
    })
    .clone()
}

/// `wasm_module_c.wasm` (the C greeter), compiled once per test binary.
pub fn greeter_c() -> Module {
    static M: OnceLock<Module> = OnceLock::new();
    M.get_or_init(|| {
        let path = modules_dir().join("wasm_module_c.wasm");
        assert!(
            path.is_file(),
            "C guest not built: run `make guests` (no {})",
            path.display()
        );
        runtime()
            .load(&path, Policy::default())
            .expect("load wasm_module_c")
    })
    .clone()
}

/// A guest built by `make guests`, compiled once per test binary per name.
fn built(file: &'static str) -> Module {
    static M: OnceLock<std::sync::Mutex<std::collections::HashMap<&'static str, Module>>> =
        OnceLock::new();
    let mut map = M.get_or_init(Default::default).lock().expect("module map");
    map.entry(file)
        .or_insert_with(|| {
            let path = modules_dir().join(file);
            assert!(
                path.is_file(),
                "guest not built: run `make guests` (no {})",
                path.display()
            );
            runtime()
                .load(&path, Policy::default())
                .unwrap_or_else(|e| panic!("load {file}: {e}"))
        })
        .clone()
}

/// `wasm_component_greeter.wasm`: the greeter as a component (WIT `greeter`).
pub fn greeter_component() -> Module {
    built("wasm_component_greeter.wasm")
}

/// `wasm_component_arrow.wasm`: the Arrow processor as a component (WIT
/// `arrow-processor`).
pub fn arrow_component() -> Module {
    built("wasm_component_arrow.wasm")
}

/// `wasm_component_hostile.wasm`: a `greeter` component that misbehaves on
/// request (see `wasm-component-hostile/src/lib.rs`).
pub fn hostile_component_path() -> PathBuf {
    modules_dir().join("wasm_component_hostile.wasm")
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

/// `wasm_module2.wasm`, compiled once per test binary.
pub fn arrow_module() -> Module {
    static M: OnceLock<Module> = OnceLock::new();
    M.get_or_init(|| {
        runtime()
            .load(modules_dir().join("wasm_module2.wasm"), Policy::default())
            .expect("load wasm_module2")
    })
    .clone()
}
