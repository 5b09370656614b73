//! Where guests' `wasm_host.log` lines go in the CLI: stderr, one line
//! each, at the level `WASM_APP_LOG` names (`off`, `error`, `warn`,
//! `info`, `debug`, `trace`; default `info`). Only guests' lines are
//! shown: the libraries' own diagnostics stay out of the way.

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use wasm_app::text::escape_controls;

/// The variable that sets the level of guests' lines.
const LEVEL_ENV: &str = "WASM_APP_LOG";

/// Installs the subscriber; a level that makes no sense is said once and
/// the default kept.
pub(crate) fn init() {
    let level = match std::env::var(LEVEL_ENV) {
        Ok(v) => v.parse::<LevelFilter>().unwrap_or_else(|_| {
            eprintln!(
                "warning: {LEVEL_ENV}={} is not off, error, warn, info, debug or trace; using info",
                escape_controls(&v)
            );
            LevelFilter::INFO
        }),
        Err(_) => LevelFilter::INFO,
    };
    let subscriber = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(LevelFilter::TRACE)
        .without_time()
        .with_ansi(false)
        .finish()
        .with(Targets::new().with_target(wasm_app::GUEST_LOG_TARGET, level));
    // Only fails if one is installed already: then that one serves.
    let _ = tracing::subscriber::set_global_default(subscriber);
}
