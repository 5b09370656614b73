//! `wasm-app` binary: parse arguments, run, print `error: ...` on failure.

mod cli;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    if let Err(e) = cli.run() {
        // One readable line (with its causes), no backtrace.
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
