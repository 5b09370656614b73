//! What the host offers a core module: functions in the import module
//! [`MODULE`], each usable only when the policy grants it.
//!
//! | import (`wasm_host.`) | signature | meaning |
//! |---|---|---|
//! | `http_request` | `(req_ptr, req_len: i32) -> i64` | an HTTP request ([`http`] wire form) to a granted host; the response is pending |
//! | `log` | `(level, ptr, len: i32) -> i32` | one UTF-8 line to the host's log; [`LOG_OK`] or [`LOG_DROPPED`] |
//! | `kv_get` | `(key_ptr, key_len: i32) -> i64` | the embedder's value for a key: pending [`KV_FOUND`] + value, or [`KV_MISSING`] |
//! | any name an embedder registers | `(ptr, len: i32) -> i64` | bytes in; the function's bytes out are pending |
//! | `take` | `(ptr, len: i32) -> i32` | copies the pending bytes to `ptr`; [`TAKE_OK`] or [`TAKE_NOTHING`] |
//!
//! A *bytes function* (all but `log` and `take`) returns, as an `i64`:
//! - `n >= 0`: it succeeded and `n` bytes of result are pending;
//! - `n < 0`: it failed and `-n - 1` bytes of a UTF-8 error message are
//!   pending ([`error_len`]).
//!
//! The guest then allocates that many bytes itself and calls `take` with
//! exactly that length; the host never calls into the guest from a host
//! call (no allocator round trip, no re-entrancy). One result is pending at
//! a time: the next bytes function replaces it, and every top-level call
//! starts with none.
//!
//! Refusals of the policy (a host not granted, a response over the size
//! limit) are failures the guest sees like any other; the host also records
//! them, and if the guest's call then fails, the call's error is the
//! policy's (`PolicyDenied`, `LimitExceeded`) rather than whatever the guest
//! made of it. A guest that recovers (tries a cache, say) may.

/// The import module of every host function.
pub const MODULE: &str = "wasm_host";
/// `(req_ptr, req_len: i32) -> i64`: see [`http`].
pub const HTTP_REQUEST: &str = "http_request";
/// `(level, ptr, len: i32) -> i32`.
pub const LOG: &str = "log";
/// `(key_ptr, key_len: i32) -> i64`.
pub const KV_GET: &str = "kv_get";
/// `(ptr, len: i32) -> i32`.
pub const TAKE: &str = "take";

/// The host functions' types, as WebAssembly text (for messages).
pub mod sig {
    /// A bytes function (`http_request`, `kv_get`, an embedder's).
    pub const BYTES: &str = "(func (param i32 i32) (result i64))";
    /// `log`.
    pub const LOG: &str = "(func (param i32 i32 i32) (result i32))";
    /// `take`.
    pub const TAKE: &str = "(func (param i32 i32) (result i32))";
}

/// `take` copied the pending bytes.
pub const TAKE_OK: i32 = 0;
/// `take` found nothing pending, or a length other than the pending one.
pub const TAKE_NOTHING: i32 = -1;

/// `log` wrote the line.
pub const LOG_OK: i32 = 0;
/// `log` dropped the line (the guest logs faster than its rate allows).
pub const LOG_DROPPED: i32 = 1;
/// `log` levels, most severe first; larger values are `trace`.
pub const LOG_ERROR: i32 = 0;
pub const LOG_WARN: i32 = 1;
pub const LOG_INFO: i32 = 2;
pub const LOG_DEBUG: i32 = 3;
pub const LOG_TRACE: i32 = 4;

/// First byte of a `kv_get` result: the key has a value, which follows.
pub const KV_FOUND: u8 = 1;
/// First (and only) byte of a `kv_get` result: the key has no value.
pub const KV_MISSING: u8 = 0;

/// The length of the error message a failed bytes function left pending,
/// or `None` if `ret` is a success.
pub fn error_len(ret: i64) -> Option<u64> {
    (ret < 0).then(|| (-(ret + 1)) as u64)
}

/// What a bytes function returns for a failure with a message of `len`
/// bytes.
pub fn error_ret(len: usize) -> i64 {
    -(len as i64) - 1
}

/// The wire form of `http_request`'s request and response: fields one
/// after the other, each length a little-endian `u32`.
///
/// ```text
/// request:  method (str) · url (str) · header count (u32) · headers · body (bytes)
/// response: status (u32) · header count (u32) · headers · body (bytes)
/// header:   name (str) · value (bytes)
/// str, bytes: length (u32) · that many bytes (str: UTF-8)
/// ```
///
/// The host follows redirects (each target checked against the policy) and
/// answers with the final response; any status, 404 or 500 included, is a
/// success of the call.
pub mod http {
    use alloc::string::String;
    use alloc::vec::Vec;

    /// A request or response header: a name and its raw value.
    pub type Header = (String, Vec<u8>);

    /// Most headers a wire form may carry; more is malformed. (The host
    /// takes at most 64 from a guest; a response carries at most what its
    /// server sent within 64 KiB of head.)
    pub const MAX_HEADERS: usize = 1024;

    /// An HTTP request as a guest asks for it.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Request {
        /// `GET`, `POST`, ...
        pub method: String,
        /// An absolute `http://` or `https://` URL.
        pub url: String,
        pub headers: Vec<Header>,
        pub body: Vec<u8>,
    }

    /// The response the host hands back.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Response {
        pub status: u32,
        pub headers: Vec<Header>,
        pub body: Vec<u8>,
    }

    fn put(out: &mut Vec<u8>, bytes: &[u8]) {
        out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        out.extend_from_slice(bytes);
    }

    fn put_headers(out: &mut Vec<u8>, headers: &[Header]) {
        out.extend_from_slice(&(headers.len() as u32).to_le_bytes());
        for (name, value) in headers {
            put(out, name.as_bytes());
            put(out, value);
        }
    }

    impl Request {
        /// The request's wire form.
        pub fn encode(&self) -> Vec<u8> {
            let mut out = Vec::with_capacity(self.url.len() + self.body.len() + 64);
            put(&mut out, self.method.as_bytes());
            put(&mut out, self.url.as_bytes());
            put_headers(&mut out, &self.headers);
            put(&mut out, &self.body);
            out
        }

        /// Reads a request's wire form; `None` if it is malformed, not
        /// UTF-8 where text is expected, or has bytes left over.
        pub fn decode(bytes: &[u8]) -> Option<Self> {
            let mut r = Reader(bytes);
            let req = Request {
                method: r.text()?,
                url: r.text()?,
                headers: r.headers()?,
                body: r.bytes()?.to_vec(),
            };
            r.0.is_empty().then_some(req)
        }
    }

    impl Response {
        /// The response's wire form.
        pub fn encode(&self) -> Vec<u8> {
            let mut out = Vec::with_capacity(self.body.len() + 64);
            out.extend_from_slice(&self.status.to_le_bytes());
            put_headers(&mut out, &self.headers);
            put(&mut out, &self.body);
            out
        }

        /// Reads a response's wire form, as [`Request::decode`].
        pub fn decode(bytes: &[u8]) -> Option<Self> {
            let mut r = Reader(bytes);
            let resp = Response {
                status: r.u32()?,
                headers: r.headers()?,
                body: r.bytes()?.to_vec(),
            };
            r.0.is_empty().then_some(resp)
        }
    }

    /// A cursor that never reads past its end.
    struct Reader<'a>(&'a [u8]);

    impl<'a> Reader<'a> {
        fn u32(&mut self) -> Option<u32> {
            let (head, rest) = self.0.split_first_chunk::<4>()?;
            self.0 = rest;
            Some(u32::from_le_bytes(*head))
        }

        fn bytes(&mut self) -> Option<&'a [u8]> {
            let len = usize::try_from(self.u32()?).ok()?;
            if len > self.0.len() {
                return None;
            }
            let (head, rest) = self.0.split_at(len);
            self.0 = rest;
            Some(head)
        }

        fn text(&mut self) -> Option<String> {
            core::str::from_utf8(self.bytes()?).ok().map(String::from)
        }

        fn headers(&mut self) -> Option<Vec<Header>> {
            let n = self.u32()? as usize;
            // Each header takes at least 8 bytes: a count larger than the
            // rest can hold is a lie, and so is one past the cap; both are
            // refused before anything is reserved (millions of empty
            // headers would cost the reader six times their bytes).
            if n > MAX_HEADERS || n > self.0.len() / 8 {
                return None;
            }
            let mut out = Vec::with_capacity(n);
            for _ in 0..n {
                out.push((self.text()?, self.bytes()?.to_vec()));
            }
            Some(out)
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use alloc::vec;

        #[test]
        fn requests_and_responses_round_trip() {
            let req = Request {
                method: "POST".into(),
                url: "http://127.0.0.1:8080/x?y".into(),
                headers: vec![("accept".into(), b"*/*".to_vec())],
                body: b"hello".to_vec(),
            };
            assert_eq!(Request::decode(&req.encode()), Some(req.clone()));
            let resp = Response {
                status: 404,
                headers: vec![],
                body: vec![0; 3],
            };
            assert_eq!(Response::decode(&resp.encode()), Some(resp));
        }

        #[test]
        fn malformed_wire_forms_are_refused() {
            let req = Request {
                method: "GET".into(),
                url: "http://a/".into(),
                headers: vec![],
                body: vec![],
            }
            .encode();
            for cut in 0..req.len() {
                assert_eq!(Request::decode(&req[..cut]), None, "{cut}");
            }
            let mut long = req.clone();
            long.push(0);
            assert_eq!(Request::decode(&long), None);
            // A header count far beyond the bytes left.
            let mut lying = vec![];
            put(&mut lying, b"GET");
            put(&mut lying, b"http://a/");
            lying.extend_from_slice(&u32::MAX.to_le_bytes());
            assert_eq!(Request::decode(&lying), None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_lengths_round_trip() {
        for len in [0usize, 1, 4096] {
            assert_eq!(error_len(error_ret(len)), Some(len as u64));
        }
        assert_eq!(error_len(0), None);
        assert_eq!(error_len(17), None);
    }
}
