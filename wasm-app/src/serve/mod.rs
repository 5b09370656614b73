//! `wasm-app serve`: modules as remote functions over Arrow Flight, for
//! any Flight client (pyarrow, databases that call external UDF servers
//! with the arrow-udf-flight protocol, other languages).
//!
//! - `functions.rs`: the functions file (`[[function]]`: module, command,
//!   config, declared columns, policy keys);
//! - `service.rs`: the Flight service (protocol version, listings, one
//!   exchange per call, the concurrency bound);
//! - `exchange.rs`: one `DoExchange`, client batches checked like guest
//!   output; `status.rs`: errors as gRPC statuses; `auth.rs`: the token.
//!
//! The policy of every function is enforced on the server; a guest that
//! loops or bombs memory fails its own exchange, and the server goes on
//! serving the others.

mod auth;
mod exchange;
mod functions;
mod service;
mod status;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use arrow_flight::flight_service_server::FlightServiceServer;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::server::TcpIncoming;
use tonic::transport::Server;

use crate::error::{Error, Result};
use crate::policy::Policy;

/// The largest `--max-message-size` (IPC frames carry 32-bit lengths).
const MAX_MESSAGE_SIZE: usize = 1 << 30;
/// Calls one connection may have open at once.
const MAX_STREAMS_PER_CONNECTION: u32 = 64;
/// How long exchanges in flight may take to finish after SIGTERM.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// How a server runs (the CLI's flags).
#[derive(Debug, Clone)]
pub struct Options {
    /// Where to listen; loopback unless told otherwise.
    pub listen: SocketAddr,
    /// The functions file.
    pub functions: PathBuf,
    /// The policy each function's own keys apply over.
    pub defaults: Policy,
    /// Exchanges running at once (and each function's instances, unless
    /// its policy sets `max-instances`).
    pub max_concurrent: u32,
    /// How long an exchange waits for a slot before `RESOURCE_EXHAUSTED`.
    pub queue_wait: Duration,
    /// How long an exchange waits for its client's next message.
    pub idle_timeout: Duration,
    /// The largest message (one batch) a client may send.
    pub max_message_size: usize,
    /// The token every call must carry (`authorization: Bearer ...`).
    pub token: Option<String>,
    /// Whether compiled modules come from (and go to) the on-disk cache.
    pub cache: bool,
}

impl Options {
    /// The defaults of the CLI: loopback port 8815, 8 exchanges at once.
    pub fn new(functions: PathBuf) -> Self {
        Options {
            listen: SocketAddr::from(([127, 0, 0, 1], 8815)),
            functions,
            defaults: Policy::default(),
            max_concurrent: 8,
            queue_wait: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_message_size: 64 << 20,
            token: None,
            cache: true,
        }
    }
}

/// Loads the functions, listens, calls `ready` with the bound address,
/// and serves until SIGTERM or SIGINT; exchanges in flight then finish.
pub fn serve(options: Options, ready: impl FnOnce(SocketAddr)) -> Result<()> {
    if options.max_concurrent == 0 {
        return Err(Error::InvalidArgument(
            "--max-concurrent must be at least 1".into(),
        ));
    }
    if options.max_message_size > MAX_MESSAGE_SIZE {
        return Err(Error::InvalidArgument(format!(
            "--max-message-size must be at most {}",
            crate::text::format_size(MAX_MESSAGE_SIZE as u64)
        )));
    }
    let token = match &options.token {
        Some(t) => Some(
            auth::Token::new(t)
                .ok_or_else(|| Error::InvalidArgument("the token is empty".into()))?,
        ),
        None => None,
    };
    let functions = functions::load(&options, options.max_concurrent)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("wasm-app-serve")
        .build()
        .map_err(|e| Error::Other(anyhow::anyhow!("cannot start the server's runtime: {e}")))?;
    let service = service::Service::new(
        functions,
        options.max_concurrent as usize,
        options.queue_wait,
        options.idle_timeout,
    );
    let flight =
        FlightServiceServer::new(service).max_decoding_message_size(options.max_message_size);
    let check = move |request| match &token {
        Some(t) => t.check(request),
        None => Ok(request),
    };
    let result = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(options.listen)
            .await
            .map_err(|e| {
                Error::Other(anyhow::anyhow!("cannot listen on {}: {e}", options.listen))
            })?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::Other(anyhow::anyhow!("{e}")))?;
        ready(addr);
        let (stop, stopping) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            shutdown().await;
            let _ = stop.send(true);
        });
        let signalled = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let server = Server::builder()
            .max_concurrent_streams(Some(MAX_STREAMS_PER_CONNECTION))
            .add_service(InterceptedService::new(flight, check))
            .serve_with_incoming_shutdown(incoming(listener), signalled(stopping.clone()));
        // Exchanges in flight may finish, within a grace period: a client
        // that neither reads nor closes cannot hold the server up for ever.
        let grace = async {
            signalled(stopping).await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        };
        tokio::select! {
            served = server => served
                .map_err(|e| Error::Other(anyhow::anyhow!("the server failed: {e}"))),
            () = grace => Ok(()),
        }
    });
    // Calls still running are bounded by their timeouts; do not wait longer.
    runtime.shutdown_timeout(SHUTDOWN_GRACE);
    result
}

/// Accepted connections without Nagle's algorithm (a small answer would
/// otherwise wait for the client's delayed ACK, ~40 ms per exchange) and
/// with TCP keepalive (a vanished client's connection ends).
fn incoming(listener: tokio::net::TcpListener) -> TcpIncoming {
    TcpIncoming::from(listener)
        .with_nodelay(Some(true))
        .with_keepalive(Some(Duration::from_secs(60)))
}

/// SIGTERM or SIGINT.
async fn shutdown() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
