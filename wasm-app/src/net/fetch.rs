//! `wasm_host.http_request`: one request of a core module, redirects
//! followed (each target checked like the first), the response read up to
//! the policy's size limit, the whole within its time limit.

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http_body_util::{BodyExt, Limited};
use wasm_abi::host::http::{Request, Response};

use super::client::{open, Endpoint, FullBody};
use super::{Failure, Network};

/// Redirects followed before the host gives up.
pub(crate) const MAX_REDIRECTS: usize = 5;
/// Longest URL a guest may ask for.
const MAX_URL: usize = 8 << 10;
/// Most headers a guest may send.
const MAX_HEADERS: usize = 64;

/// Headers the host sets itself or that would let a guest steer the
/// connection: a guest's are refused.
const HOST_OWNED: [HeaderName; 8] = [
    header::HOST,
    header::CONTENT_LENGTH,
    header::TRANSFER_ENCODING,
    header::CONNECTION,
    header::UPGRADE,
    header::TE,
    header::TRAILER,
    header::PROXY_AUTHORIZATION,
];

/// Runs `wire` (a guest's request in the wire form) and returns the final
/// response in the wire form.
pub(crate) async fn http_request(net: &Network, wire: &[u8]) -> Result<Vec<u8>, Failure> {
    let req = Request::decode(wire)
        .ok_or_else(|| Failure::Failed("malformed request (see wasm_abi::host::http)".into()))?;
    let timeout = net.timeout;
    tokio::time::timeout(timeout, follow(net, req))
        .await
        .map_err(|_| Failure::TimedOut(timeout))?
        .map(|r| r.encode())
}

/// Sends `req`, then each redirect target, until a response is final.
async fn follow(net: &Network, req: Request) -> Result<Response, Failure> {
    if req.url.len() > MAX_URL {
        return Err(Failure::Failed(format!(
            "URL of {} bytes (at most {MAX_URL})",
            req.url.len()
        )));
    }
    let mut url = url::Url::parse(&req.url).map_err(|e| {
        Failure::Failed(format!(
            "bad URL {:?}: {e}",
            crate::text::guest_text(req.url.as_bytes())
        ))
    })?;
    let mut method = http::Method::from_bytes(req.method.as_bytes())
        .map_err(|_| Failure::Failed("bad HTTP method".into()))?;
    // CONNECT turns the connection into a tunnel the host would not see into.
    if method == http::Method::CONNECT {
        return Err(Failure::Failed("CONNECT is not supported".into()));
    }
    let mut headers = guest_headers(&req.headers)?;
    let mut body = Bytes::from(req.body);
    for _ in 0..=MAX_REDIRECTS {
        let (status, resp_headers, resp_body) =
            send(net, &url, &method, &headers, body.clone()).await?;
        let location = resp_headers.get(header::LOCATION).cloned();
        match (status.is_redirection(), location) {
            (true, Some(loc)) if status != http::StatusCode::NOT_MODIFIED => {
                let next = loc
                    .to_str()
                    .ok()
                    .and_then(|l| url.join(l).ok())
                    .ok_or_else(|| Failure::Failed(format!("{status} with a bad Location")))?;
                // 301-303 turn a POST into a GET without a body, as
                // browsers do; 307 and 308 repeat the request.
                if matches!(status.as_u16(), 301..=303) && method != http::Method::HEAD {
                    method = http::Method::GET;
                    body = Bytes::new();
                }
                // Credentials meant for one host go to no other.
                if next.host() != url.host()
                    || next.port_or_known_default() != url.port_or_known_default()
                {
                    headers.remove(header::AUTHORIZATION);
                    headers.remove(header::COOKIE);
                }
                url = next;
            }
            _ => return Ok(wire_response(status, &resp_headers, resp_body)),
        }
    }
    Err(Failure::Failed(format!(
        "more than {MAX_REDIRECTS} redirects"
    )))
}

/// The guest's headers, checked: valid names and values, none the host owns.
fn guest_headers(raw: &[(String, Vec<u8>)]) -> Result<http::HeaderMap, Failure> {
    if raw.len() > MAX_HEADERS {
        return Err(Failure::Failed(format!(
            "{} headers (at most {MAX_HEADERS})",
            raw.len()
        )));
    }
    let mut map = http::HeaderMap::new();
    for (name, value) in raw {
        let bad = || {
            Failure::Failed(format!(
                "bad header {:?}",
                crate::text::guest_text(name.as_bytes())
            ))
        };
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad())?;
        let value = HeaderValue::from_bytes(value).map_err(|_| bad())?;
        if HOST_OWNED.contains(&name) {
            return Err(Failure::Failed(format!("header {name} is set by the host")));
        }
        map.append(name, value);
    }
    Ok(map)
}

/// One request on a fresh connection; the body read up to the limit.
async fn send(
    net: &Network,
    url: &url::Url,
    method: &http::Method,
    headers: &http::HeaderMap,
    body: Bytes,
) -> Result<(http::StatusCode, http::HeaderMap, Bytes), Failure> {
    let to = Endpoint::of(url)?;
    let (mut sender, conn) = open::<FullBody>(&net.grants, &to, net.timeout).await?;
    let conn = AbortOnDrop(tokio::spawn(async move {
        let _ = conn.await;
    }));
    let path = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    };
    let mut req = http::Request::builder()
        .method(method.clone())
        .uri(path)
        .header(header::HOST, to.authority())
        .body(FullBody::new(body))
        .map_err(|e| Failure::Failed(format!("bad request: {e}")))?;
    req.headers_mut().extend(headers.clone());
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| Failure::Failed(format!("HTTP with {}: {e}", to.target)))?;
    let (parts, incoming) = resp.into_parts();
    let max = net.max_response;
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max) {
        return Err(Failure::TooLarge(max));
    }
    let limit = usize::try_from(max).unwrap_or(usize::MAX);
    let body = Limited::new(incoming, limit).collect().await.map_err(|e| {
        if e.is::<http_body_util::LengthLimitError>() {
            Failure::TooLarge(max)
        } else {
            Failure::Failed(format!("reading the response of {}: {e}", to.target))
        }
    })?;
    drop(conn);
    Ok((parts.status, parts.headers, body.to_bytes()))
}

fn wire_response(status: http::StatusCode, headers: &http::HeaderMap, body: Bytes) -> Response {
    Response {
        status: u32::from(status.as_u16()),
        headers: headers
            .iter()
            .map(|(n, v)| (n.as_str().to_string(), v.as_bytes().to_vec()))
            .collect(),
        body: body.to_vec(),
    }
}

/// Ends a spawned task when the request that started it is over.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
