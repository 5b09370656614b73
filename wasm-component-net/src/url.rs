//! Just enough of RFC 3986 for `http`/`https` URLs and redirects: split a
//! URL into what `wasi:http` asks for, and resolve a `Location` against it.
//! A full URL crate (and its IDNA tables) would outweigh the whole guest;
//! the host checks every URL again before it connects.

use std::fmt;

/// An absolute URL: `scheme://authority` then a path that starts with `/`
/// (and may carry `?query`); the fragment is dropped, as HTTP never sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    scheme: String,
    authority: String,
    path: String,
}

impl Url {
    /// Parses an absolute URL; the scheme is lower-cased.
    pub fn parse(text: &str) -> Result<Url, String> {
        let text = strip_fragment(text.trim());
        let (scheme, rest) = split_scheme(text).ok_or("not an absolute URL (scheme://host/...)")?;
        let rest = rest
            .strip_prefix("//")
            .ok_or("not an absolute URL (scheme://host/...)")?;
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(end);
        if authority.is_empty() {
            return Err("the URL has no host".into());
        }
        Ok(Url {
            scheme: scheme.to_ascii_lowercase(),
            authority: authority.to_string(),
            path: if path.starts_with('/') {
                path.to_string()
            } else {
                format!("/{path}")
            },
        })
    }

    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// The path and query, as the request line carries them.
    pub fn path_and_query(&self) -> &str {
        &self.path
    }

    /// `reference` (a `Location`) resolved against this URL (RFC 3986 5.2).
    pub fn join(&self, reference: &str) -> Result<Url, String> {
        let reference = strip_fragment(reference.trim());
        if split_scheme(reference).is_some() {
            return Url::parse(reference);
        }
        if reference.starts_with("//") {
            return Url::parse(&format!("{}:{reference}", self.scheme));
        }
        let (base_path, base_query) = split_query(&self.path);
        let (path, query) = split_query(reference);
        let path = if path.is_empty() {
            // Only a query (or nothing): keep the path, and the query if none.
            return Ok(self.with_path(format!(
                "{base_path}{}",
                query
                    .or(base_query)
                    .map(|q| format!("?{q}"))
                    .unwrap_or_default()
            )));
        } else if path.starts_with('/') {
            remove_dots(path)
        } else {
            let dir = &base_path[..base_path.rfind('/').map_or(0, |i| i + 1)];
            remove_dots(&format!("{dir}{path}"))
        };
        Ok(self.with_path(match query {
            Some(q) => format!("{path}?{q}"),
            None => path,
        }))
    }

    fn with_path(&self, path: String) -> Url {
        Url {
            path,
            ..self.clone()
        }
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}{}", self.scheme, self.authority, self.path)
    }
}

fn strip_fragment(text: &str) -> &str {
    text.split('#').next().unwrap_or(text)
}

/// `(scheme, rest)` if `text` starts with a scheme and `:`.
fn split_scheme(text: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = text.split_once(':')?;
    let mut chars = scheme.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    (first_ok && rest_ok).then_some((scheme, rest))
}

/// `(path, query)`, the query without its `?`.
fn split_query(text: &str) -> (&str, Option<&str>) {
    match text.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (text, None),
    }
}

/// `path` (starting with `/`) without `.` and `..` segments; `..` never
/// climbs above the root.
fn remove_dots(path: &str) -> String {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let last = segments.len() - 1;
    let mut out: Vec<&str> = Vec::with_capacity(segments.len());
    for (i, segment) in segments.into_iter().enumerate() {
        match segment {
            "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
        // A trailing `.` or `..` leaves a directory: keep its slash.
        if i == last && (segment == "." || segment == "..") {
            out.push("");
        }
    }
    format!("/{}", out.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).expect(text)
    }

    #[test]
    fn urls_split_into_what_wasi_http_asks_for() {
        let u = url("  HTTPS://example.com:8443/a/b?x=1#frag ");
        assert_eq!(u.scheme(), "https");
        assert_eq!(u.authority(), "example.com:8443");
        assert_eq!(u.path_and_query(), "/a/b?x=1");
        assert_eq!(url("http://h").path_and_query(), "/");
        assert_eq!(url("http://h?q").path_and_query(), "/?q");
        assert_eq!(u.to_string(), "https://example.com:8443/a/b?x=1");
    }

    #[test]
    fn non_urls_are_errors() {
        for bad in [
            "",
            "example.com/x",
            "/x",
            "http:/x",
            "http:///x",
            "1http://h/",
        ] {
            assert!(Url::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn locations_resolve_as_rfc_3986_says() {
        // RFC 3986 5.4's examples that an HTTP Location can take (the
        // fragment dropped, an empty path written `/`).
        let base = url("http://a/b/c/d;p?q");
        for (reference, want) in [
            ("g", "http://a/b/c/g"),
            ("./g", "http://a/b/c/g"),
            ("g/", "http://a/b/c/g/"),
            ("/g", "http://a/g"),
            ("//g", "http://g/"),
            ("?y", "http://a/b/c/d;p?y"),
            ("g?y", "http://a/b/c/g?y"),
            ("#s", "http://a/b/c/d;p?q"),
            (";x", "http://a/b/c/;x"),
            ("", "http://a/b/c/d;p?q"),
            (".", "http://a/b/c/"),
            ("..", "http://a/b/"),
            ("../g", "http://a/b/g"),
            ("../..", "http://a/"),
            ("../../../g", "http://a/g"),
            ("/./g", "http://a/g"),
            ("g/../h", "http://a/b/c/h"),
            ("https://other:1/x", "https://other:1/x"),
        ] {
            let got = base.join(reference).map(|u| u.to_string());
            assert_eq!(got, Ok(want.to_string()), "{reference:?}");
        }
        // An absolute URI without `//` is no place an HTTP request can go.
        assert!(base.join("g:h").is_err());
    }
}
