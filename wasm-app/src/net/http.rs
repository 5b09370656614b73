//! Components' `wasi:http`: outgoing requests sent by the host's own
//! client ([`super::client`]) under the grants, at most
//! [`MAX_HTTP_IN_FLIGHT`] at once per instance, each bounded end to end by
//! `http-timeout`.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;

use http_body_util::{BodyExt, LengthLimitError, Limited};
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use super::client::{open, Endpoint};
use super::{Failure, Network};
use crate::error::{Error, Limit};
use crate::hostfn::Refusal;

type IoFuture = Box<dyn Future<Output = Result<(), HttpError>> + Send>;
type SendFuture =
    Box<dyn Future<Output = Result<(http::Response<WasiBody>, IoFuture), HttpError>> + Send>;

/// Requests one component instance may have in flight at once (each holds
/// a connection until its response is read or `http-timeout` passes).
pub(crate) const MAX_HTTP_IN_FLIGHT: usize = 16;

/// The `wasi:http` hooks of one component instance.
pub(crate) struct HttpHooks {
    pub(crate) net: Option<Arc<Network>>,
    pub(crate) refusal: Refusal,
    /// [`MAX_HTTP_IN_FLIGHT`] permits, each held by a request's connection.
    in_flight: Arc<tokio::sync::Semaphore>,
    /// Counts the operations that ended: a request stops when the one that
    /// made it ends.
    ended: tokio::sync::watch::Sender<u64>,
}

impl HttpHooks {
    pub(crate) fn new(net: Option<Arc<Network>>, refusal: Refusal) -> Self {
        HttpHooks {
            net,
            refusal,
            in_flight: Arc::new(tokio::sync::Semaphore::new(MAX_HTTP_IN_FLIGHT)),
            ended: tokio::sync::watch::Sender::new(0),
        }
    }

    /// Stops every request of the operation that ends now.
    pub(crate) fn end_operation(&self) {
        self.ended.send_modify(|n| *n += 1);
    }
}

/// `fut`, or `Err(HttpError::HttpRequestDenied)` once operation `op` (the
/// count of ended operations when it started) is over.
async fn until_ended<T>(
    ended: &mut tokio::sync::watch::Receiver<u64>,
    op: u64,
    fut: impl Future<Output = Result<T, HttpError>>,
) -> Result<T, HttpError> {
    let mut fut = pin!(fut);
    let mut over = pin!(ended.wait_for(move |n| *n != op));
    std::future::poll_fn(|cx| {
        if let Poll::Ready(r) = fut.as_mut().poll(cx) {
            return Poll::Ready(r);
        }
        // A closed channel means the instance is gone: over too.
        match over.as_mut().poll(cx) {
            Poll::Ready(_) => Poll::Ready(Err(HttpError::HttpRequestDenied)),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

impl WasiHttpHooks for HttpHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        _options: Option<RequestOptions>,
        _fut: IoFuture,
    ) -> SendFuture {
        let (net, refusal) = (self.net.clone(), self.refusal.clone());
        // The request runs in a task of its own, which may outlive the
        // operation that made it: what it records is for that operation.
        let op = refusal.op();
        let permit = self.in_flight.clone().try_acquire_owned();
        // Taken now, while the operation that asks runs: the task that
        // sends may first run after it ended.
        let mut ended = self.ended.subscribe();
        let started = *ended.borrow_and_update();
        Box::new(async move {
            let refused = |f: Failure| {
                if let Some(e) = f.refusal() {
                    refusal.record_for(op, e);
                }
                http_error(f)
            };
            let Ok(permit) = permit else {
                return Err(HttpError::ConnectionLimitReached);
            };
            let Some(net) = net else {
                let to = request
                    .uri()
                    .authority()
                    .map(|a| a.to_string())
                    .unwrap_or_default();
                return Err(refused(Failure::Denied(format!(
                    "{} (the policy grants no network)",
                    crate::text::guest_text(to.as_bytes())
                ))));
            };
            let url = url::Url::parse(&request.uri().to_string())
                .map_err(|_| HttpError::HttpRequestUriInvalid)?;
            let to = Endpoint::of(&url).map_err(refused)?;
            // `http-timeout` bounds the whole request, its body included:
            // no connection of a guest's outlives it.
            let timeout = net.timeout;
            let deadline = tokio::time::Instant::now() + timeout;
            let head = async {
                tokio::time::timeout_at(deadline, send(&net, &to, request))
                    .await
                    .map_err(|_| refused(Failure::TimedOut(timeout)))?
                    .map_err(refused)
            };
            let (response, conn) = until_ended(&mut ended, started, head).await?;
            let conn: IoFuture = Box::new(async move {
                let _permit = permit;
                let io = async {
                    tokio::time::timeout_at(deadline, Box::into_pin(conn))
                        .await
                        .unwrap_or(Err(HttpError::ConnectionReadTimeout))
                };
                until_ended(&mut ended, started, io).await
            });
            let max = net.max_response;
            let limit = usize::try_from(max).unwrap_or(usize::MAX);
            let body = response.map(|incoming| {
                Limited::new(incoming, limit)
                    .map_err(move |e| {
                        if e.is::<LengthLimitError>() {
                            let e = Error::LimitExceeded(Limit::HttpResponse(max));
                            refusal.record_for(op, e);
                            HttpError::HttpResponseBodySize(Some(max))
                        } else {
                            match e.downcast::<hyper::Error>() {
                                Ok(h) => HttpError::Hyper(*h),
                                Err(e) => HttpError::InternalError(Some(e.to_string())),
                            }
                        }
                    })
                    .boxed_unsync()
            });
            Ok((body, conn))
        })
    }
}

/// Sends `request` to `to` and waits for the response head, driving the
/// connection meanwhile; the connection's future is returned to be driven
/// while the body is read.
async fn send(
    net: &Network,
    to: &Endpoint,
    mut request: http::Request<WasiBody>,
) -> Result<(http::Response<hyper::body::Incoming>, IoFuture), Failure> {
    let (mut sender, conn) = open::<WasiBody>(&net.grants, to, net.timeout).await?;
    // Only the path goes on the wire (no proxy); wasi:http set `Host`.
    let path = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    *request.uri_mut() = path
        .parse()
        .map_err(|_| Failure::Failed("bad request path".into()))?;
    let mut conn = Some(conn);
    let mut sent = pin!(sender.send_request(request));
    let response = std::future::poll_fn(|cx| {
        if let Poll::Ready(r) = sent.as_mut().poll(cx) {
            return Poll::Ready(r);
        }
        if let Some(c) = conn.as_mut() {
            if let Poll::Ready(done) = c.as_mut().poll(cx) {
                conn = None;
                if let Err(e) = done {
                    return Poll::Ready(Err(e));
                }
                return sent.as_mut().poll(cx);
            }
        }
        Poll::Pending
    })
    .await
    .map_err(|e| Failure::Failed(format!("HTTP with {}: {e}", to.target)))?;
    let io: IoFuture = Box::new(async move {
        match conn {
            Some(c) => c.await.map_err(HttpError::Hyper),
            None => Ok(()),
        }
    });
    Ok((response, io))
}

/// What the component is told for a failure.
fn http_error(f: Failure) -> HttpError {
    match f {
        Failure::Denied(_) => HttpError::HttpRequestDenied,
        Failure::TooLarge(max) => HttpError::HttpResponseBodySize(Some(max)),
        Failure::TimedOut(_) => HttpError::ConnectionTimeout,
        Failure::Failed(m) => HttpError::InternalError(Some(m)),
    }
}
