//! The host's HTTP/1.1 client for guests: one connection per request, made
//! by [`super::connect`] under the grants, TLS for `https` (the webpki
//! roots; no client certificate), and nothing the guest could use to
//! reach past its grants (no proxy, no connection reuse across hosts).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

use super::connect::{checked_addrs, connect, Target};
use super::grant::Grants;
use super::Failure;

/// Bytes of response head (status line and headers) hyper may buffer.
const MAX_HEAD: usize = 64 << 10;

/// A stream a request runs over: plain TCP or TLS over it.
trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// The connection's own task: it must be driven while the response is read.
pub(crate) type Connection = Pin<Box<dyn Future<Output = Result<(), hyper::Error>> + Send>>;

/// Where a request goes, from its URL.
pub(crate) struct Endpoint {
    pub(crate) target: Target,
    pub(crate) port: u16,
    pub(crate) tls: bool,
}

impl Endpoint {
    /// The endpoint of an `http` or `https` URL.
    pub(crate) fn of(url: &url::Url) -> Result<Self, Failure> {
        let tls = match url.scheme() {
            "https" => true,
            "http" => false,
            other => {
                return Err(Failure::Failed(format!(
                    "scheme {other:?} is not supported (http and https are)"
                )))
            }
        };
        Ok(Endpoint {
            target: Target::of(url)?,
            port: url
                .port_or_known_default()
                .unwrap_or(if tls { 443 } else { 80 }),
            tls,
        })
    }

    /// `host[:port]` as the `Host` header says it.
    pub(crate) fn authority(&self) -> String {
        let default = if self.tls { 443 } else { 80 };
        if self.port == default {
            self.target.to_string()
        } else {
            format!("{}:{}", self.target, self.port)
        }
    }
}

/// Opens a connection to `to` under `grants` and shakes hands (TLS, then
/// HTTP/1.1), all within `timeout`.
pub(crate) async fn open<B>(
    grants: &Grants,
    to: &Endpoint,
    timeout: Duration,
) -> Result<(SendRequest<B>, Connection), Failure>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let addrs = checked_addrs(grants, &to.target, to.port).await?;
    let handshake = async {
        let tcp = connect(&addrs, timeout).await?;
        let io: Box<dyn Io> = if to.tls {
            let name = server_name(&to.target)?;
            let tls = tokio_rustls::TlsConnector::from(tls_config()?)
                .connect(name, tcp)
                .await
                .map_err(|e| Failure::Failed(format!("TLS with {}: {e}", to.target)))?;
            Box::new(tls)
        } else {
            Box::new(tcp)
        };
        http1::Builder::new()
            .max_buf_size(MAX_HEAD.max(8192))
            .handshake(TokioIo::new(io))
            .await
            .map_err(|e| Failure::Failed(format!("HTTP with {}: {e}", to.target)))
    };
    let (send, conn) = tokio::time::timeout(timeout, handshake)
        .await
        .map_err(|_| Failure::TimedOut(timeout))??;
    Ok((send, Box::pin(conn)))
}

fn server_name(target: &Target) -> Result<rustls::pki_types::ServerName<'static>, Failure> {
    use rustls::pki_types::ServerName;
    match target {
        Target::Addr(ip) => Ok(ServerName::from(*ip)),
        Target::Name(n) => ServerName::try_from(n.clone())
            .map_err(|e| Failure::Failed(format!("{n} is not a TLS server name: {e}"))),
    }
}

/// One TLS configuration for the process: the webpki roots, ring.
fn tls_config() -> Result<Arc<rustls::ClientConfig>, Failure> {
    static CONFIG: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.into(),
            };
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map(|b| Arc::new(b.with_root_certificates(roots).with_no_client_auth()))
                .map_err(|e| format!("TLS is not available: {e}"))
        })
        .clone()
        .map_err(Failure::Failed)
}

/// A request body the host already holds in full.
pub(crate) type FullBody = http_body_util::Full<Bytes>;
