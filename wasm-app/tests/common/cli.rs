//! Running the `wasm-app` binary.

use std::path::Path;
use std::process::{Command, Output};

use wasm_abi::built;

/// The `wasm-app` binary as a command to complete, its compiled-module cache
/// in `cache` (a folder of the test's own, never the user's cache).
pub fn command(cache: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wasm-app"));
    c.env("WASM_APP_CACHE_DIR", cache);
    c
}

/// Runs `wasm-app ARGS` with its compiled-module cache in `cache`.
pub fn wasm_app(args: &[&str], cache: &Path) -> Output {
    command(cache).args(args).output().expect("run wasm-app")
}

/// `wasm-app process --module wasm_module2.wasm --command COMMAND ARGS`.
pub fn process(command: &str, args: &[&str], cache: &Path) -> Output {
    let module = super::guest_arg(built::MODULE2);
    let mut all = vec!["process", "--module", &module, "--command", command];
    all.extend_from_slice(args);
    wasm_app(&all, cache)
}

/// A test's path as an argument (the tests' paths are UTF-8).
pub fn arg(p: &Path) -> &str {
    p.to_str().expect("utf8 path")
}
