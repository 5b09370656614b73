//! One `GET` through `wasi:http/outgoing-handler`, read to the end.
//!
//! Every resource a call makes is dropped before the one it came from (a
//! pollable before its future, a stream before its body, headers before
//! their response): the host refuses to drop a resource with live children.

use wasip2::http::outgoing_handler;
use wasip2::http::types::{Fields, IncomingResponse, Method, OutgoingRequest, Scheme};
use wasip2::io::streams::StreamError;

use crate::url::Url;

/// Bytes asked of the body stream per read; the host may return fewer.
const CHUNK: u64 = 64 << 10;

/// A response as the guest needs it.
pub struct Answer {
    pub status: u16,
    /// The `Location` header, if the response had one that is UTF-8.
    pub location: Option<String>,
    pub body: Vec<u8>,
}

impl Answer {
    /// Where a redirect points: a 3xx status with a `Location`.
    pub fn redirect_to(&self) -> Option<&str> {
        match self.status {
            300..=399 => self.location.as_deref(),
            _ => None,
        }
    }
}

/// `GET url` with no headers and no body. The error is the host's
/// `error-code` in its debug form, or what the guest could not set.
pub fn get(url: &Url) -> Result<Answer, String> {
    let request = OutgoingRequest::new(Fields::new());
    // No body is taken: the host sends an empty one.
    let scheme = match url.scheme() {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        other => Scheme::Other(other.to_string()),
    };
    request
        .set_method(&Method::Get)
        .map_err(|()| "the host refused the method")?;
    request
        .set_scheme(Some(&scheme))
        .map_err(|()| "the host refused the scheme")?;
    request
        .set_authority(Some(url.authority()))
        .map_err(|()| "the host refused the authority")?;
    request
        .set_path_with_query(Some(url.path_and_query()))
        .map_err(|()| "the host refused the path")?;
    let future = outgoing_handler::handle(request, None).map_err(|e| format!("{e:?}"))?;
    let pollable = future.subscribe();
    pollable.block();
    drop(pollable);
    let response = match future.get() {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(code))) => return Err(format!("{code:?}")),
        // Ready after `block`, and taken only here.
        Some(Err(())) | None => unreachable!("the response was ready and not yet taken"),
    };
    drop(future);
    read(&response)
}

/// The status, `Location` and whole body of `response`.
fn read(response: &IncomingResponse) -> Result<Answer, String> {
    let status = response.status();
    let headers = response.headers();
    let location = headers
        .get("location")
        .into_iter()
        .next()
        .and_then(|v| String::from_utf8(v).ok());
    drop(headers);
    let body = response
        .consume()
        .map_err(|()| "the response body was already taken")?;
    let stream = body
        .stream()
        .map_err(|()| "the body stream was already taken")?;
    let mut bytes = Vec::new();
    loop {
        match stream.blocking_read(CHUNK) {
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(e)) => {
                return Err(format!("reading the body: {}", e.to_debug_string()))
            }
        }
    }
    drop(stream);
    drop(body);
    Ok(Answer {
        status,
        location,
        body: bytes,
    })
}
