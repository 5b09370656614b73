//! `wasm-app call`: any export, bytes in and bytes out.

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use super::args::PolicyArgs;

/// Where the input comes from.
pub(super) enum Input {
    Text(String),
    /// A file, or `-` for stdin.
    File(PathBuf),
}

/// Calls `export` of `module` with the input and writes the output bytes to
/// stdout unchanged, except on a terminal: there the guest's bytes could
/// drive it (titles, the clipboard, fake prompts), so they are shown as
/// text with control characters escaped, as `greet` shows a greeting.
pub(super) fn run(
    args: &PolicyArgs,
    module: &Path,
    export: &str,
    input: Input,
) -> anyhow::Result<()> {
    let mut plugin = args.load(module)?;
    // The input must fit in guest memory: read no more than that.
    let limit = plugin.module().policy().limits.max_memory;
    let bytes = match input {
        Input::Text(t) => t.into_bytes(),
        Input::File(path) if path.as_os_str() == "-" => {
            read_bounded(std::io::stdin().lock(), limit).context("cannot read <stdin>")?
        }
        Input::File(path) => {
            let f = std::fs::File::open(&path)
                .with_context(|| format!("cannot open {}", path.display()))?;
            read_bounded(f, limit).with_context(|| format!("cannot read {}", path.display()))?
        }
    };
    let mut out = plugin.call(export, &bytes)?;
    let mut stdout = std::io::stdout().lock();
    if stdout.is_terminal() {
        let text = String::from_utf8_lossy(&out);
        out = wasm_app::text::escape_controls(text.trim_end_matches('\n')).into_bytes();
        out.push(b'\n');
    }
    stdout
        .write_all(&out)
        .and_then(|()| stdout.flush())
        .context("cannot write <stdout>")?;
    Ok(())
}

/// All of `r`, or an error once it passes `limit` bytes.
fn read_bounded(r: impl Read, limit: u64) -> anyhow::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    r.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        bail!(
            "the input is larger than the module's memory limit of {} (see --max-memory)",
            wasm_app::policy::format_size(limit)
        );
    }
    Ok(bytes)
}
