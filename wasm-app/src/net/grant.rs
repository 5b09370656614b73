//! Network grants (`allowed-hosts`): which hosts and ports a module may
//! reach, and the check of every name and address against them.
//!
//! A grant is `HOST[:PORT]`: an exact name (`example.org`), every name
//! under a domain (`*.example.org`, not the domain itself), any name (`*`),
//! or an address (`127.0.0.1`, `[::1]`). Without a port it grants every
//! port. The check runs twice: on the name the guest asked for, then on
//! every address that name resolves to, so DNS cannot smuggle a request into
//! the host's own network:
//!
//! - a *public* address is allowed when the name matched a grant;
//! - a *non-public* one (loopback, private, link-local, CGNAT, unique-local,
//!   unspecified, multicast, documentation, ...) only when the address
//!   itself is granted, or the name was granted exactly (a wildcard that
//!   matched `evil.example.org` does not vouch for `10.0.0.1`).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// What a grant's host part matches.
#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    /// `*`: any name (still only public addresses).
    Any,
    /// `*.example.org`: names ending in `.example.org`.
    Under(String),
    /// `example.org`: this name only (compared without case).
    Name(String),
    /// `10.0.0.1`, `[::1]`: this address only.
    Addr(IpAddr),
}

/// One parsed `allowed-hosts` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Grant {
    host: HostPattern,
    /// `None`: every port.
    port: Option<u16>,
}

impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            HostPattern::Any => write!(f, "*")?,
            HostPattern::Under(d) => write!(f, "*.{d}")?,
            HostPattern::Name(n) => write!(f, "{n}")?,
            HostPattern::Addr(IpAddr::V6(a)) => write!(f, "[{a}]")?,
            HostPattern::Addr(a) => write!(f, "{a}")?,
        }
        match self.port {
            Some(p) => write!(f, ":{p}"),
            None => Ok(()),
        }
    }
}

impl Grant {
    /// Parses `HOST[:PORT]` as the policy and `--allow-host` write it.
    pub(crate) fn parse(spec: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("allowed host {spec:?}: {why}");
        let spec_t = spec.trim();
        let (host, port) = split_port(spec_t).map_err(|e| bad(&e))?;
        if host.is_empty() {
            return Err(bad("the host is empty"));
        }
        let host = if host == "*" {
            HostPattern::Any
        } else if let Some(domain) = host.strip_prefix("*.") {
            HostPattern::Under(normal_name(domain).ok_or_else(|| bad("not a host name"))?)
        } else if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            HostPattern::Addr(IpAddr::V6(
                v6.parse().map_err(|_| bad("not an IPv6 address"))?,
            ))
        } else if let Ok(v4) = host.parse::<Ipv4Addr>() {
            HostPattern::Addr(IpAddr::V4(v4))
        } else {
            HostPattern::Name(normal_name(host).ok_or_else(|| {
                bad("not a host name (use *, *.domain, a name, an IPv4 address or [IPv6])")
            })?)
        };
        Ok(Grant { host, port })
    }

    fn port_matches(&self, port: u16) -> bool {
        self.port.is_none_or(|p| p == port)
    }
}

/// `HOST[:PORT]` split; a bare IPv6 address must be bracketed.
fn split_port(spec: &str) -> Result<(&str, Option<u16>), String> {
    let (host, port) = if let Some(rest) = spec.strip_prefix('[') {
        match rest.find(']') {
            Some(end) => {
                let (h, after) = spec.split_at(end + 2);
                match after.strip_prefix(':') {
                    Some(p) => (h, Some(p)),
                    None if after.is_empty() => (h, None),
                    None => return Err("junk after the IPv6 address".into()),
                }
            }
            None => return Err("an unclosed '['".into()),
        }
    } else if spec.matches(':').count() > 1 {
        return Err("an IPv6 address must be written in brackets, as [::1]:8080".into());
    } else {
        match spec.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (spec, None),
        }
    };
    let port = match port {
        None => None,
        Some(p) => Some(
            p.parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| format!("port {p:?} is not a number from 1 to 65535"))?,
        ),
    };
    Ok((host, port))
}

/// A host name in the form names are compared: lowercase, no trailing dot;
/// `None` unless it is letters, digits, `-`, `_` and dots between labels.
pub(crate) fn normal_name(name: &str) -> Option<String> {
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    // A last label of digits (or 0x...) makes the whole an IPv4 address to
    // URL parsers and resolvers (`2130706433`, `0177.0.0.1`): never a name.
    let last = name.rsplit('.').next().unwrap_or("");
    let numeric = last.bytes().all(|b| b.is_ascii_digit()) || last.starts_with("0x");
    (name.len() <= 253 && name.split('.').all(label_ok) && !numeric).then_some(name)
}

/// Whether `ip` is an address of the public internet. Everything a host's
/// own network or machine answers on is not.
pub(crate) fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => is_public_v4(a),
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(a),
        },
    }
}

fn is_public_v4(a: Ipv4Addr) -> bool {
    let [o0, o1, o2, _] = a.octets();
    !(a.is_unspecified()
        || a.is_loopback()
        || a.is_private()
        || a.is_link_local()
        || a.is_broadcast()
        || a.is_documentation()
        || a.is_multicast()
        || o0 == 0
        || (o0 == 100 && (64..128).contains(&o1)) // CGNAT 100.64/10
        || (o0 == 192 && o1 == 0 && o2 == 0) // IETF 192.0.0/24
        || (o0 == 198 && (o1 == 18 || o1 == 19)) // benchmarking 198.18/15
        || (o0 == 192 && o1 == 88 && o2 == 99) // 6to4 relays 192.88.99/24
        || o0 >= 240) // reserved
}

fn is_public_v6(a: Ipv6Addr) -> bool {
    let s0 = a.segments()[0];
    !(a.is_unspecified()
        || a.is_loopback()
        || a.is_multicast()
        || (s0 & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (s0 & 0xffc0) == 0xfe80 // link local fe80::/10
        || (s0 & 0xffc0) == 0xfec0 // site local (deprecated)
        || s0 == 0x2001 && a.segments()[1] == 0x0db8 // documentation
        || s0 == 0x0064 && a.segments()[1] == 0xff9b // NAT64, may reach v4 private
        || s0 == 0x2002 // 6to4: embeds any IPv4 address
        || s0 == 0x2001 && a.segments()[1] == 0 // Teredo: embeds one too
        || s0 == 0x0100 && a.segments()[1..4] == [0, 0, 0] // discard 100::/64
        || s0 == 0 // ::/16 holds ::ffff:0:a.b.c.d (SIIT), v4-compatible, ...
        || a.to_ipv4().is_some()) // v4-compatible ::a.b.c.d
}

/// How a name matched the grants, which decides what its addresses may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum NameMatch {
    /// Through `*` or `*.domain`: public addresses only.
    Wildcard,
    /// The name itself is granted: any address it resolves to.
    Exact,
}

/// Every `allowed-hosts` entry of a policy, parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Grants(Vec<Grant>);

impl Grants {
    /// Parses the policy's entries; the first bad one is the error.
    pub(crate) fn parse<S: AsRef<str>>(specs: &[S]) -> Result<Self, String> {
        specs
            .iter()
            .map(|s| Grant::parse(s.as_ref()))
            .collect::<Result<_, _>>()
            .map(Grants)
    }

    /// Whether nothing is granted.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How the name `host` (already in [`normal_name`] form) is granted on
    /// `port`, if at all.
    pub(crate) fn name(&self, host: &str, port: u16) -> Option<NameMatch> {
        self.name_where(host, |g| g.port_matches(port))
    }

    fn name_where(&self, host: &str, keep: impl Fn(&Grant) -> bool) -> Option<NameMatch> {
        self.0
            .iter()
            .filter(|g| keep(g))
            .filter_map(|g| match &g.host {
                HostPattern::Name(n) if n == host => Some(NameMatch::Exact),
                HostPattern::Under(d)
                    if host.len() > d.len()
                        && host.ends_with(d.as_str())
                        && host.as_bytes()[host.len() - d.len() - 1] == b'.' =>
                {
                    Some(NameMatch::Wildcard)
                }
                HostPattern::Any => Some(NameMatch::Wildcard),
                _ => None,
            })
            .max()
    }

    /// How the name `host` is granted on any port, if at all.
    pub(crate) fn name_any_port(&self, host: &str) -> Option<NameMatch> {
        self.name_where(host, |_| true)
    }

    /// Whether the address `addr` is granted itself.
    pub(crate) fn addr(&self, addr: SocketAddr) -> bool {
        let ip = addr.ip().to_canonical();
        self.0.iter().any(|g| {
            g.port_matches(addr.port())
                && matches!(g.host, HostPattern::Addr(a) if a.to_canonical() == ip)
        })
    }

    /// Whether `addr`, reached through a name that matched as `how` (or
    /// asked for directly when `how` is `None`), may be connected to.
    pub(crate) fn allows(&self, addr: SocketAddr, how: Option<NameMatch>) -> bool {
        if self.addr(addr) {
            return true;
        }
        let public = is_public(addr.ip());
        match how {
            Some(NameMatch::Exact) => true,
            Some(NameMatch::Wildcard) => public,
            // An address asked for by number: `*` covers public ones.
            None => {
                public
                    && self
                        .0
                        .iter()
                        .any(|g| g.host == HostPattern::Any && g.port_matches(addr.port()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grants(specs: &[&str]) -> Grants {
        Grants::parse(specs).unwrap()
    }

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn grants_parse_and_print_back() {
        for spec in [
            "example.org:443",
            "*.example.org:443",
            "*",
            "127.0.0.1:8080",
            "[::1]:80",
            "h",
        ] {
            assert_eq!(Grant::parse(spec).unwrap().to_string(), spec);
        }
        assert_eq!(
            Grant::parse("Example.ORG.").unwrap().to_string(),
            "example.org"
        );
        for bad in [
            "",
            ":80",
            "a:0",
            "a:99999",
            "a:x",
            "::1",
            "[::1",
            "[::1]x",
            "a b",
            "*.",
            "[x]",
            "a/b",
            "2130706433",
            "0177.0.0.1",
            "a.0x7f",
            "1.2.3",
        ] {
            assert!(Grant::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_match_exactly_or_under_a_domain_and_by_port() {
        let g = grants(&["example.org:443", "*.example.net:443", "any.port"]);
        assert_eq!(g.name("example.org", 443), Some(NameMatch::Exact));
        assert_eq!(g.name("example.org", 80), None);
        assert_eq!(g.name("www.example.org", 443), None);
        assert_eq!(g.name("a.b.example.net", 443), Some(NameMatch::Wildcard));
        assert_eq!(g.name("example.net", 443), None);
        assert_eq!(g.name("badexample.net", 443), None);
        assert_eq!(g.name("any.port", 1), Some(NameMatch::Exact));
    }

    #[test]
    fn non_public_addresses_need_an_exact_grant() {
        let g = grants(&["*:80", "127.0.0.1:8080", "intranet:80"]);
        // Through a wildcard: public only.
        assert!(g.allows(sa("93.184.216.34:80"), Some(NameMatch::Wildcard)));
        assert!(!g.allows(sa("127.0.0.1:80"), Some(NameMatch::Wildcard)));
        assert!(!g.allows(sa("10.1.2.3:80"), Some(NameMatch::Wildcard)));
        assert!(!g.allows(sa("[::ffff:192.168.0.1]:80"), Some(NameMatch::Wildcard)));
        assert!(!g.allows(sa("[fd00::1]:80"), Some(NameMatch::Wildcard)));
        // An exact name vouches for its addresses; a granted address for itself.
        assert!(g.allows(sa("10.1.2.3:80"), Some(NameMatch::Exact)));
        assert!(g.allows(sa("127.0.0.1:8080"), None));
        assert!(g.allows(sa("[::ffff:127.0.0.1]:8080"), None));
        assert!(!g.allows(sa("127.0.0.1:8081"), None));
        // A public address by number through `*`.
        assert!(g.allows(sa("93.184.216.34:80"), None));
        assert!(!g.allows(sa("93.184.216.34:81"), None));
    }

    #[test]
    fn special_ranges_are_not_public() {
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "10.0.0.1",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "255.255.255.255",
            "224.0.0.1",
            "::",
            "::1",
            "fe80::1",
            "fc00::1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "::127.0.0.1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "2606:2800:220:1::1", "::ffff:8.8.8.8"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }
}
