//! `wasm-app serve`: the flags, then the library's server.

use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;

use wasm_app::policy::{parse_duration, parse_size};
use wasm_app::serve::{serve, Options};

use super::args::PolicyArgs;

/// A token file holds one line; anything longer is a mistake.
const MAX_TOKEN_FILE: u64 = 4096;

#[derive(Debug, Args)]
pub(super) struct ServeArgs {
    /// Address to listen on (loopback unless told otherwise; port 0 picks one).
    #[arg(long, default_value = "127.0.0.1:8815")]
    listen: SocketAddr,
    /// The functions file: `[[function]]` tables (see the README).
    #[arg(long, value_name = "FILE")]
    functions: PathBuf,
    /// Exchanges running at once; also each function's instances unless its
    /// policy sets max-instances (1 to 1024).
    #[arg(long, default_value_t = 8,
          value_parser = clap::builder::RangedU64ValueParser::<u32>::new().range(1..=1024))]
    max_concurrent: u32,
    /// How long a call waits for a free slot before RESOURCE_EXHAUSTED.
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    queue_timeout: String,
    /// How long an exchange waits for the client's next message.
    #[arg(long, value_name = "DURATION", default_value = "60s")]
    idle_timeout: String,
    /// Largest message (one batch) a client may send.
    #[arg(long, value_name = "SIZE", default_value = "64MiB")]
    max_message_size: String,
    /// Require `authorization: Bearer <token>` on every call, the token
    /// being this file's content.
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// Policy flags: the defaults each function's own keys apply over.
    #[command(flatten)]
    policy: PolicyArgs,
}

pub(super) fn run(args: ServeArgs) -> anyhow::Result<()> {
    let max_message_size = parse_size(&args.max_message_size).context("--max-message-size")?;
    let options = Options {
        listen: args.listen,
        defaults: args.policy.policy()?,
        max_concurrent: args.max_concurrent,
        queue_wait: parse_duration(&args.queue_timeout).context("--queue-timeout")?,
        idle_timeout: parse_duration(&args.idle_timeout).context("--idle-timeout")?,
        max_message_size: usize::try_from(max_message_size)
            .context("--max-message-size is too large")?,
        token: args.token_file.as_deref().map(read_token).transpose()?,
        cache: !args.policy.no_cache(),
        ..Options::new(args.functions)
    };
    if !options.listen.ip().is_loopback() && options.token.is_none() {
        eprintln!(
            "wasm-app serve: warning: listening on {} without --token-file: anyone who can \
             reach it may call the functions",
            options.listen
        );
    }
    let token = options.token.is_some();
    serve(options, |addr| {
        eprintln!(
            "wasm-app serve: listening on {addr}{}",
            if token { " (token required)" } else { "" }
        );
    })?;
    eprintln!("wasm-app serve: stopped");
    Ok(())
}

fn read_token(path: &Path) -> anyhow::Result<String> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot open --token-file {}", path.display()))?;
    let mut text = String::new();
    file.take(MAX_TOKEN_FILE + 1)
        .read_to_string(&mut text)
        .with_context(|| format!("cannot read --token-file {}", path.display()))?;
    anyhow::ensure!(
        text.len() as u64 <= MAX_TOKEN_FILE,
        "--token-file {} is larger than {MAX_TOKEN_FILE} bytes",
        path.display()
    );
    Ok(text)
}
