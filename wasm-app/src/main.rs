//! `wasm-app` binary: parse arguments, run, print `error: ...` on failure.

mod cli;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    if let Err(e) = cli.run() {
        // The reader of stdout is gone (`| head`): stop quietly with
        // success, as `cat` does; the pipeline stopped at the failed write.
        if wasm_app::sink::is_broken_pipe(&e) {
            return;
        }
        // One readable line (with its causes), no backtrace.
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
