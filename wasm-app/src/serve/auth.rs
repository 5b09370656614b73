//! `--token-file`: every call carries `authorization: Bearer <token>`, or
//! is refused with `UNAUTHENTICATED`. The comparison takes the same time
//! whatever the bytes (it reveals only whether the lengths match).

use tonic::{Request, Status};

/// The header's scheme.
const BEARER: &str = "Bearer ";

/// Checks requests for one token.
#[derive(Clone)]
pub(crate) struct Token(Vec<u8>);

impl Token {
    /// A token as read from its file (surrounding whitespace dropped);
    /// `None` if it is empty.
    pub(crate) fn new(text: &str) -> Option<Self> {
        let t = text.trim();
        (!t.is_empty()).then(|| Token(t.as_bytes().to_vec()))
    }

    /// A tonic interceptor.
    pub(crate) fn check(&self, request: Request<()>) -> Result<Request<()>, Status> {
        // The scheme's name is case-insensitive (RFC 9110).
        let given = request.metadata().get("authorization").and_then(|v| {
            let v = v.as_bytes();
            let scheme = v.get(..BEARER.len())?;
            scheme
                .eq_ignore_ascii_case(BEARER.as_bytes())
                .then(|| &v[BEARER.len()..])
        });
        match given {
            Some(given) if same(given, &self.0) => Ok(request),
            _ => Err(Status::unauthenticated(
                "this server requires `authorization: Bearer <token>`",
            )),
        }
    }
}

/// Constant-time equality (for equal lengths).
fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // Keep the optimiser from turning the fold into an early exit.
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(same(b"secret", b"secret"));
        assert!(!same(b"secret", b"secreT"));
        assert!(!same(b"secret", b"secret2"));
        assert!(Token::new(" \n").is_none());
        let t = Token::new("abc\n").unwrap();
        let mut r = Request::new(());
        r.metadata_mut()
            .insert("authorization", "Bearer abc".parse().unwrap());
        assert!(t.check(r).is_ok());
        let mut r = Request::new(());
        r.metadata_mut()
            .insert("authorization", "Bearer abd".parse().unwrap());
        assert_eq!(t.check(r).unwrap_err().code(), tonic::Code::Unauthenticated);
        assert!(t.check(Request::new(())).is_err());
    }
}
