//! A network client as a component: `wit/net.wit`, world `net`.
//!
//! `fetch` is an HTTP GET through `wasi:http/outgoing-handler`, which does
//! not follow redirects: the guest does (at most [`MAX_REDIRECTS`]), so the
//! host's policy sees, and may refuse, every hop. `connect` is a plain
//! `GET /hello HTTP/1.0` over `wasi:sockets` TCP (`src/tcp.rs`), so the host's
//! name-lookup and address checks can be tested apart from `wasi:http`.
//! Built for wasm32-wasip1 and turned into a component by
//! `tools/componentize` (see `scripts/build-guests.sh`).

mod http;
mod tcp;
mod url;

wit_bindgen::generate!({
    path: "../wit",
    world: "net",
});

/// Redirects followed before giving up: the usual browser-like bound is
/// larger, but a test guest needs only a few, and each hop is a request.
pub const MAX_REDIRECTS: usize = 5;

struct Net;

impl Guest for Net {
    fn fetch(input: String) -> Result<String, String> {
        let start = input.trim();
        let mut url = url::Url::parse(start).map_err(|e| format!("fetch {start}: {e}"))?;
        for _ in 0..=MAX_REDIRECTS {
            let answer = http::get(&url).map_err(|e| format!("fetch {url}: {e}"))?;
            match answer.redirect_to() {
                Some(location) => {
                    url = url
                        .join(location)
                        .map_err(|e| format!("fetch {url}: redirect to {location:?}: {e}"))?;
                }
                None if (200..300).contains(&answer.status) => {
                    return String::from_utf8(answer.body)
                        .map_err(|e| format!("fetch {url}: the body is not UTF-8: {e}"));
                }
                None => return Err(format!("HTTP {} from {url}", answer.status)),
            }
        }
        Err(format!(
            "fetch {start}: more than {MAX_REDIRECTS} redirects (last to {url})"
        ))
    }

    fn connect(input: String) -> Result<String, String> {
        tcp::get_hello(input.trim())
    }
}

export!(Net);
