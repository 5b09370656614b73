//! Where the host finds the guests `make guests` builds, and their file names.
//!
//! Host side only (never compiled for wasm32): the tests, the benches, the
//! CLI and the benchmark peers locate the built guests here instead of each
//! spelling `target/wasm-modules` and the file names.
//!
//! The search: `$WASM_APP_MODULES` if set (and not empty), else the first
//! `target/wasm-modules` folder in the start folder or a folder above it; the
//! start is the caller's own place in the workspace (a test's
//! `CARGO_MANIFEST_DIR`, the CLI's executable), so the guests are found
//! whatever the working directory.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::string::{String, ToString};
use std::vec::Vec;

/// Environment variable naming the folder of the built guests; when set it
/// replaces the search.
pub const MODULES_ENV: &str = "WASM_APP_MODULES";
/// Where `make guests` (scripts/build-guests.sh) puts the guests, relative to
/// the workspace root.
pub const MODULES_DIR: &str = "target/wasm-modules";

/// The Rust greeter (`wasm-module1`).
pub const MODULE1: &str = "wasm_module1.wasm";
/// The Arrow IPC processor (`wasm-module2`).
pub const MODULE2: &str = "wasm_module2.wasm";
/// The C greeter (`wasm-module-c/greeter.c`).
pub const MODULE_C: &str = "wasm_module_c.wasm";
/// A caller of the host functions (`wasm-module-net`): `fetch`,
/// `fetch_status`, `log_lines` and `kv` over the pair ABI. It imports
/// `wasm_host`, so it loads only where the policy offers those functions.
pub const MODULE_NET: &str = "wasm_module_net.wasm";
/// The greeter as a component (`wasm-component-greeter`, WIT `greeter`).
pub const COMPONENT_GREETER: &str = "wasm_component_greeter.wasm";
/// The Arrow processor as a component (`wasm-component-arrow`).
pub const COMPONENT_ARROW: &str = "wasm_component_arrow.wasm";
/// A `greeter` component that misbehaves on request (`wasm-component-hostile`).
pub const COMPONENT_HOSTILE: &str = "wasm_component_hostile.wasm";
/// An HTTP GET through `wasi:http/outgoing-handler` (`wasm-component-net`,
/// WIT `net`): `fetch`, following redirects itself.
pub const COMPONENT_NET: &str = "wasm_component_net.wasm";
/// The two study guests the demo and the benches need.
pub const STUDY: [&str; 2] = [MODULE1, MODULE2];

/// The built guests are not where the search looked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotBuilt {
    /// The folder searched, or `None` when no `target/wasm-modules` was found.
    dir: Option<PathBuf>,
    /// Whether `dir` came from [`MODULES_ENV`].
    from_env: bool,
    /// Where the search started.
    start: PathBuf,
    /// The needed files not in `dir`.
    missing: Vec<String>,
}

impl fmt::Display for NotBuilt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.dir {
            Some(dir) => write!(
                f,
                "guests not built: no {} in {}{} (run `make guests`)",
                self.missing.join(", "),
                dir.display(),
                if self.from_env {
                    " (from $WASM_APP_MODULES)"
                } else {
                    ""
                }
            ),
            None => write!(
                f,
                "guests not built: no {MODULES_DIR} in {} or a folder above it \
                 (run `make guests`, or set {MODULES_ENV})",
                self.start.display()
            ),
        }
    }
}

impl std::error::Error for NotBuilt {}

/// The folder of the built guests, holding every file of `needed`:
/// `$WASM_APP_MODULES` if set, else the nearest `target/wasm-modules` in
/// `start` or above it. A relative `start` is taken from the working
/// directory.
pub fn modules_dir(start: &Path, needed: &[&str]) -> Result<PathBuf, NotBuilt> {
    locate(std::env::var_os(MODULES_ENV), start, needed)
}

/// The path of the built guest `file` (one of this module's file names), in
/// [`modules_dir`]`(start, &[file])`.
pub fn guest(start: &Path, file: &str) -> Result<PathBuf, NotBuilt> {
    modules_dir(start, &[file]).map(|d| d.join(file))
}

/// [`modules_dir`] with the environment variable's value given.
fn locate(env: Option<OsString>, start: &Path, needed: &[&str]) -> Result<PathBuf, NotBuilt> {
    let start = std::path::absolute(start).unwrap_or_else(|_| start.to_path_buf());
    let (dir, from_env) = match env.filter(|v| !v.is_empty()) {
        Some(d) => (Some(PathBuf::from(d)), true),
        None => (
            start
                .ancestors()
                .map(|a| a.join(MODULES_DIR))
                .find(|d| d.is_dir()),
            false,
        ),
    };
    let missing: Vec<String> = match &dir {
        Some(d) => needed
            .iter()
            .filter(|f| !d.join(f).is_file())
            .map(|f| f.to_string())
            .collect(),
        None => needed.iter().map(|f| f.to_string()).collect(),
    };
    match dir {
        Some(d) if missing.is_empty() => Ok(d),
        dir => Err(NotBuilt {
            dir,
            from_env,
            start,
            missing,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::format;

    /// A fresh folder under the system's temporary folder, removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let p =
                std::env::temp_dir().join(format!("wasm-abi-built-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).expect("scratch folder");
            Scratch(p)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn touch(dir: &Path, file: &str) {
        std::fs::create_dir_all(dir).expect("mkdir");
        std::fs::write(dir.join(file), b"\0asm").expect("write");
    }

    #[test]
    fn the_nearest_target_folder_above_the_start_is_found() {
        let s = Scratch::new("walk");
        let modules = s.0.join(MODULES_DIR);
        touch(&modules, MODULE1);
        touch(&modules, MODULE2);
        let deep = s.0.join("wasm-app/target/debug");
        std::fs::create_dir_all(&deep).expect("mkdir");
        assert_eq!(locate(None, &deep, &STUDY), Ok(modules.clone()));
        // An empty variable is no folder.
        assert_eq!(locate(Some("".into()), &deep, &STUDY), Ok(modules));
    }

    #[test]
    fn a_missing_guest_is_named_with_its_folder_and_make_guests() {
        let s = Scratch::new("missing");
        let modules = s.0.join(MODULES_DIR);
        touch(&modules, MODULE1);
        let e = locate(None, &s.0, &STUDY).expect_err("module2 missing");
        let msg = e.to_string();
        assert!(msg.contains(MODULE2) && !msg.contains(MODULE1), "{msg}");
        assert!(msg.contains(&modules.display().to_string()), "{msg}");
        assert!(msg.contains("make guests"), "{msg}");
    }

    #[test]
    fn the_variable_replaces_the_search() {
        let s = Scratch::new("env");
        touch(&s.0.join(MODULES_DIR), MODULE1);
        let elsewhere = s.0.join("elsewhere");
        touch(&elsewhere, MODULE1);
        let found = locate(Some(elsewhere.clone().into()), &s.0, &[MODULE1]);
        assert_eq!(found, Ok(elsewhere.clone()));
        let e = locate(Some(elsewhere.into()), &s.0, &[MODULE_C]).expect_err("no C guest");
        let msg = e.to_string();
        assert!(msg.contains(MODULE_C) && msg.contains(MODULES_ENV), "{msg}");
    }

    #[test]
    fn no_target_folder_names_the_start_and_make_guests() {
        let s = Scratch::new("none");
        let e = locate(None, &s.0, &[MODULE1]).expect_err("nothing built");
        let msg = e.to_string();
        assert!(msg.contains(&s.0.display().to_string()), "{msg}");
        assert!(
            msg.contains("make guests") && msg.contains(MODULES_ENV),
            "{msg}"
        );
    }
}
