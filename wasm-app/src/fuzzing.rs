//! Entry points for the fuzz targets of `fuzz/` and for replaying what they
//! found (`tests/fuzz_regressions.rs`). Each takes raw bytes that a guest or
//! an input file controls and drives the code the host runs on them, then
//! uses the result the way the host does next.
//!
//! Hidden, and compiled only with the `fuzzing` feature (on for this
//! crate's own tests, as a dev-dependency): not public API. The cache's
//! tests reach its internals through here too ([`cache`], [`engine`]):
//! they can sign entries, so they never belong in the public API.
//!
//! Invariant under test: no input makes any of these panic, abort, hang or
//! allocate without bound. An error is a fine outcome; the functions drop it.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use arrow::buffer::Buffer;

use crate::formats::{self, Format};
use crate::memory;
use crate::policy::{format_size, normalise_sha256, parse_duration, parse_size, DirGrant};
use crate::transport::{self, Table};
use crate::{EngineOptions, Policy, Runtime};

/// The compiled-module cache, for its tests.
pub mod cache {
    pub use crate::cache::{ArtifactKind, ModuleCache};
}

/// The engine behind `rt`, for the cache's entry paths in tests.
pub fn engine(rt: &Runtime) -> &wasmtime::Engine {
    rt.engine()
}

/// The output and input-batch bound the targets run under: the default
/// policy's (its memory limit), as the CLI would use.
const FUZZ_MAX_BYTES: u64 = crate::policy::DEFAULT_MAX_MEMORY;

/// A fuzz target's entry point.
pub type Target = fn(&[u8]);

/// Every target, by the name of its file in `fuzz/fuzz_targets/` (and of its
/// folder in `tests/fuzz-regressions/`).
pub const TARGETS: &[(&str, Target)] = &[
    ("guest_stream", guest_stream),
    ("guest_memory", guest_memory),
    ("read_ipc_file", read_ipc_file),
    ("read_ipc_stream", read_ipc_stream),
    ("read_csv", read_csv),
    ("read_parquet", read_parquet),
    ("policy_toml", policy_toml),
    ("cli_values", cli_values),
    ("inspect", inspect),
];

/// The entry point of target `name`.
pub fn target(name: &str) -> Option<Target> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|&(_, t)| t)
}

// ---- a guest's result -----------------------------------------------------

/// The one call into the guest-result decoder, so that a change of its
/// signature (e.g. a size bound) is adapted here only.
fn decode_result(bytes: Buffer) -> anyhow::Result<Option<Table>> {
    Ok(transport::decode_stream(bytes, FUZZ_MAX_BYTES)?)
}

/// Decodes what a guest returned, as the pipeline and `Plugin` do, then uses
/// the batches as the host does next.
fn consume_result(payload: &[u8]) -> anyhow::Result<()> {
    // The host copies a result into a fresh 64-byte aligned buffer; so does
    // `Buffer::from`.
    match decode_result(Buffer::from(payload))? {
        Some(table) => use_table(&table),
        None => Ok(()),
    }
}

/// What the host does with decoded batches: re-encodes them for the next
/// step or an output file, and prints them (the CLI without `-o`).
fn use_table(table: &Table) -> anyhow::Result<()> {
    transport::encode_parts(&table.schema, &table.batches)?;
    // A few rows suffice to reach every column's formatter.
    let head: Vec<_> = table
        .batches
        .iter()
        .take(4)
        .map(|b| b.slice(0, b.num_rows().min(16)))
        .collect();
    arrow::util::pretty::pretty_format_batches(&head)?;
    Ok(())
}

/// The bytes of an IPC stream as a guest returns them (a component's
/// `list<u8>`, or a core module's payload once its pair is checked).
pub fn guest_stream(data: &[u8]) {
    let _ = consume_result(data);
}

/// `data` is `[ret: u32 LE][guest memory ...]`: `ret` is what a
/// pair-returning export returned. Reads it as every host path does: the
/// Arrow result pair and payload, the Rust greeter's pair, the C greeter's
/// NUL-terminated string, the panic message.
pub fn guest_memory(data: &[u8]) {
    let Some((ret, mem)) = data.split_first_chunk::<4>() else {
        return;
    };
    let ret = u32::from_le_bytes(*ret);
    if ret as i32 == wasm_abi::ERROR_RESULT {
        return;
    }
    if let Ok(pair) = memory::read_pair(mem, ret, "result pair") {
        if let Ok(payload) = memory::slice(mem, pair.ptr, pair.len, "result") {
            let _ = consume_result(payload);
            let _ = memory::utf8(payload, "greeting");
            let _ = String::from_utf8_lossy(&payload[..payload.len().min(4096)]);
        }
    }
    // The C greeter caps its search; a small cap reaches the cap's path too.
    for cap in [crate::string_abi::MAX_GREETING, 16] {
        if let Ok(s) = memory::read_cstr(mem, ret, cap, "greeting") {
            let _ = memory::utf8(s, "greeting");
        }
    }
}

// ---- input files ------------------------------------------------------------

/// Rows per batch: small, so that inputs yield several batches.
const BATCH_SIZE: usize = 64;

/// Reads `path` as `wasm-app process` reads an input, batch by batch up to
/// the first error, and encodes each batch as for a guest.
pub fn read_path(path: &Path, format: Option<Format>) -> anyhow::Result<()> {
    let source = formats::open(path, format, BATCH_SIZE, FUZZ_MAX_BYTES)?;
    let schema = source.schema.clone();
    for batch in source {
        let batch = batch?;
        transport::encode_parts(&schema, std::slice::from_ref(&batch))?;
    }
    Ok(())
}

/// Writes `data` to a scratch file (the readers take paths) and reads it.
fn read_bytes(data: &[u8], format: Option<Format>) {
    let path = scratch_path();
    if std::fs::write(&path, data).is_ok() {
        let _ = read_path(&path, format);
    }
    let _ = std::fs::remove_file(&path);
}

/// A file per process and thread (tests run in threads), in memory where
/// the system has a tmpfs at `/dev/shm`.
fn scratch_path() -> PathBuf {
    let dir = Path::new("/dev/shm");
    let dir = if dir.is_dir() {
        dir.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    let thread = format!("{:?}", std::thread::current().id());
    let thread: String = thread.chars().filter(char::is_ascii_digit).collect();
    dir.join(format!(
        "wasm-app-fuzz-{}-{thread}.input",
        std::process::id()
    ))
}

pub fn read_ipc_file(data: &[u8]) {
    read_bytes(data, Some(Format::Arrow));
}

pub fn read_ipc_stream(data: &[u8]) {
    read_bytes(data, Some(Format::Arrows));
}

pub fn read_csv(data: &[u8]) {
    read_bytes(data, Some(Format::Csv));
}

pub fn read_parquet(data: &[u8]) {
    read_bytes(data, Some(Format::Parquet));
}

// ---- policy and command-line values ---------------------------------------

/// A policy manifest. Accepted ones must be valid and have every relative
/// `host` resolved against the (absolute) base.
pub fn policy_toml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(p) = Policy::from_toml(text, Path::new("/base")) {
        assert!(p.validate().is_ok(), "accepted an invalid policy: {p:?}");
        assert!(
            p.dirs.iter().all(|d| d.host.is_absolute()),
            "a relative dir was not resolved: {p:?}"
        );
    }
}

/// One value as the CLI's flags take it (`--max-memory`, `--timeout`,
/// `--dir`, `--sha256`), and its lines as `--config KEY=VALUE` items.
/// An accepted size must read back from its formatted form.
pub fn cli_values(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(n) = parse_size(text) {
        let shown = format_size(n);
        assert_eq!(
            parse_size(&shown).ok(),
            Some(n),
            "{text:?} parsed as {n} bytes, shown as {shown:?}, which does not read back"
        );
    }
    let _ = parse_duration(text);
    let _ = DirGrant::parse(text, false).map(|d| d.guest_path());
    let _ = normalise_sha256(text);
    let items: Vec<String> = text.lines().map(str::to_string).collect();
    let _ = transport::parse_config(&items);
}

// ---- inspect ----------------------------------------------------------------

/// Module bytes (binary or text) as `wasm-app inspect` reads them.
pub fn inspect(data: &[u8]) {
    static RUNTIME: OnceLock<Option<Runtime>> = OnceLock::new();
    // One engine for every input (the CLI builds one per run): the same
    // options, without a thread and an engine per input.
    let Some(rt) = RUNTIME.get_or_init(|| Runtime::new(EngineOptions::default()).ok()) else {
        return;
    };
    if let Ok(report) = inspect_bytes(rt, data) {
        let _ = report.render();
    }
}

/// The `inspect` command's steps, from bytes.
pub fn inspect_bytes(rt: &Runtime, bytes: &[u8]) -> anyhow::Result<crate::inspect::Report> {
    Ok(crate::inspect::inspect_bytes(rt, "fuzz input", bytes)?)
}
