//! One `GET /hello HTTP/1.0` over a raw `wasi:sockets` TCP connection, for
//! the host's socket tests: the name lookup and the connect are each a call
//! the host's policy sees, and may refuse, on its own.
//!
//! Every resource is dropped before the one it came from (a pollable before
//! its socket or lookup stream, the socket's streams before the socket): the
//! host refuses to drop a resource with live children. Locals are declared
//! parent first, so Rust's reverse drop order keeps that on early returns.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use wasip2::io::streams::StreamError;
use wasip2::sockets::instance_network::instance_network;
use wasip2::sockets::ip_name_lookup::resolve_addresses;
use wasip2::sockets::network::{
    ErrorCode, IpAddress, IpAddressFamily, IpSocketAddress, Ipv4SocketAddress, Ipv6SocketAddress,
    Network,
};
use wasip2::sockets::tcp_create_socket::create_tcp_socket;

/// Most bytes of the answer kept: a test server's answer is small, and a
/// guest must not grow without bound on what a peer sends.
pub const MAX_ANSWER: usize = 1 << 20;

/// Bytes written per call: `blocking-write-and-flush` takes at most 4096.
const WRITE_CHUNK: usize = 4096;

/// Bytes asked of the input stream per read; the host may return fewer.
const READ_CHUNK: u64 = 64 << 10;

/// Where `HOST:PORT` points before any lookup.
#[derive(Debug, PartialEq, Eq)]
pub enum Host<'a> {
    Name(&'a str),
    Ip(IpAddr),
}

/// Splits `HOST:PORT` (HOST a name, an IPv4 address or `[IPv6]`). Spaces
/// and control characters are refused: `input` goes into the request's
/// `Host` line as it is.
pub fn parse(input: &str) -> Result<(Host<'_>, u16), String> {
    let bad = |why: &str| format!("connect {input}: {why} (expected HOST:PORT)");
    if input.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("spaces or control characters"));
    }
    let (host, port) = input.rsplit_once(':').ok_or_else(|| bad("no port"))?;
    let port: u16 = port.parse().map_err(|_| bad("not a port number"))?;
    let host = if let Some(inner) = host.strip_prefix('[') {
        let ip = inner
            .strip_suffix(']')
            .and_then(|v6| v6.parse::<Ipv6Addr>().ok());
        Host::Ip(IpAddr::V6(ip.ok_or_else(|| bad("not an IPv6 address"))?))
    } else if host.contains(':') {
        return Err(bad("an IPv6 address needs brackets"));
    } else if let Ok(v4) = host.parse::<Ipv4Addr>() {
        Host::Ip(IpAddr::V4(v4))
    } else if host.is_empty() {
        return Err(bad("no host"));
    } else {
        Host::Name(host)
    };
    Ok((host, port))
}

/// Connects to `input`, sends the request and returns the whole answer.
pub fn get_hello(input: &str) -> Result<String, String> {
    let (host, port) = parse(input)?;
    let network = instance_network();
    let ips = match host {
        Host::Ip(ip) => vec![ip],
        Host::Name(name) => lookup(&network, name).map_err(|e| format!("lookup {name}: {e}"))?,
    };
    let request = format!("GET /hello HTTP/1.0\r\nHost: {input}\r\n\r\n");
    // Each address in the host's order until one answers (a name may
    // resolve to ::1 first while the server listens on 127.0.0.1 only).
    let mut last = format!("lookup {input}: no address");
    for ip in ips {
        match exchange(&network, SocketAddr::new(ip, port), request.as_bytes()) {
            Ok(answer) => return Ok(answer),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Every address `name` resolves to, in the host's order.
fn lookup(network: &Network, name: &str) -> Result<Vec<IpAddr>, ErrorCode> {
    let stream = resolve_addresses(network, name)?;
    let ready = stream.subscribe();
    let mut found = Vec::new();
    loop {
        match stream.resolve_next_address() {
            Ok(Some(IpAddress::Ipv4((a, b, c, d)))) => found.push(Ipv4Addr::new(a, b, c, d).into()),
            Ok(Some(IpAddress::Ipv6((a, b, c, d, e, f, g, h)))) => {
                found.push(Ipv6Addr::new(a, b, c, d, e, f, g, h).into())
            }
            Ok(None) => return Ok(found),
            Err(ErrorCode::WouldBlock) => ready.block(),
            Err(e) => return Err(e),
        }
    }
}

/// Connects to `addr`, writes `request`, and reads until the peer closes.
fn exchange(network: &Network, addr: SocketAddr, request: &[u8]) -> Result<String, String> {
    let failed = |e: ErrorCode| format!("connect {addr}: {e}");
    let (family, remote) = wasi_addr(addr);
    let socket = create_tcp_socket(family).map_err(failed)?;
    socket.start_connect(network, remote).map_err(failed)?;
    let (input, output) = {
        let ready = socket.subscribe();
        loop {
            match socket.finish_connect() {
                Ok(streams) => break streams,
                Err(ErrorCode::WouldBlock) => ready.block(),
                Err(e) => return Err(failed(e)),
            }
        }
    };
    for chunk in request.chunks(WRITE_CHUNK) {
        output
            .blocking_write_and_flush(chunk)
            .map_err(|e| format!("sending to {addr}: {}", stream_error(e)))?;
    }
    let mut answer = Vec::new();
    loop {
        match input.blocking_read(READ_CHUNK) {
            Ok(bytes) if answer.len() + bytes.len() > MAX_ANSWER => {
                return Err(format!("the answer from {addr} is over {MAX_ANSWER} bytes"))
            }
            Ok(bytes) => answer.extend_from_slice(&bytes),
            Err(StreamError::Closed) => break,
            Err(e) => return Err(format!("reading from {addr}: {}", stream_error(e))),
        }
    }
    drop(input);
    drop(output);
    drop(socket);
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

/// `addr` as `wasi:sockets` takes it, with its family.
fn wasi_addr(addr: SocketAddr) -> (IpAddressFamily, IpSocketAddress) {
    match addr {
        SocketAddr::V4(a) => {
            let [a0, a1, a2, a3] = a.ip().octets();
            let address = (a0, a1, a2, a3);
            let v4 = Ipv4SocketAddress {
                port: a.port(),
                address,
            };
            (IpAddressFamily::Ipv4, IpSocketAddress::Ipv4(v4))
        }
        SocketAddr::V6(a) => {
            let [s0, s1, s2, s3, s4, s5, s6, s7] = a.ip().segments();
            let v6 = Ipv6SocketAddress {
                port: a.port(),
                flow_info: a.flowinfo(),
                address: (s0, s1, s2, s3, s4, s5, s6, s7),
                scope_id: a.scope_id(),
            };
            (IpAddressFamily::Ipv6, IpSocketAddress::Ipv6(v6))
        }
    }
}

fn stream_error(e: StreamError) -> String {
    match e {
        StreamError::LastOperationFailed(e) => e.to_debug_string(),
        StreamError::Closed => "the stream is closed".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_splits_into_a_name_or_an_address() {
        let v4 = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
        assert_eq!(parse("example.com:80"), Ok((Host::Name("example.com"), 80)));
        assert_eq!(parse("127.0.0.1:8080"), Ok((Host::Ip(v4), 8080)));
        assert_eq!(
            parse("[::1]:443"),
            Ok((Host::Ip(Ipv6Addr::LOCALHOST.into()), 443))
        );
    }

    #[test]
    fn other_inputs_are_errors() {
        for bad in [
            "",
            "example.com",
            ":80",
            "example.com:",
            "example.com:65536",
            "::1:80",
            "[::1]",
            "[nope]:80",
            "[::1:80",
            "a b:80",
            "a\r\nX: y:80",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
