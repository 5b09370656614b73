//! `wasm-app` binary: parse arguments, run, print `error: ...` on failure.

mod cli;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    cli::log::init();
    if let Err(e) = cli.run() {
        // The reader of stdout is gone (`| head`): stop quietly with
        // success, as `cat` does; the pipeline stopped at the failed write.
        if wasm_app::formats::is_broken_pipe(&e) {
            return;
        }
        // One readable line (with its causes), no backtrace. Parts of it may
        // come from a module (import names, messages): capped and escaped.
        eprintln!(
            "error: {}",
            wasm_app::text::guest_text(format!("{e:#}").as_bytes())
        );
        std::process::exit(1);
    }
}
