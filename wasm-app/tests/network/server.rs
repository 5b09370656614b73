//! A small HTTP/1.1 server on 127.0.0.1 for the network tests: real
//! sockets, a thread per connection, and a count of the requests it saw
//! (so a test can tell a refused request never left the host).
//!
//! Routes: `/hello` (200, a fixed body), `/status/N` (status N),
//! `/redirect?to=URL` (302 to URL), `/big?n=BYTES` (200 with a
//! Content-Length), `/stream?n=BYTES` (200, chunked, no length), `/hang`
//! (reads the request, never answers). Everything else is 404.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The body of `/hello`.
pub const HELLO: &str = "hello from the test server";
/// How long `/hang` holds a connection before giving up (the tests end
/// long before).
const HANG: Duration = Duration::from_secs(60);

pub struct Server {
    pub port: u16,
    requests: Arc<AtomicUsize>,
}

impl Server {
    /// Starts a server on a free port of 127.0.0.1; it lives as long as the
    /// test process.
    pub fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let port = listener.local_addr().expect("local addr").port();
        let requests = Arc::new(AtomicUsize::new(0));
        let seen = requests.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let seen = seen.clone();
                std::thread::spawn(move || serve(conn, &seen));
            }
        });
        Server { port, requests }
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// `127.0.0.1:PORT`, as a grant.
    pub fn grant(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Requests received so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

fn serve(conn: TcpStream, seen: &AtomicUsize) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(match conn.try_clone() {
        Ok(c) => c,
        Err(_) => return,
    });
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    // Headers up to the blank line; bodies are not read (GETs only).
    loop {
        let mut h = String::new();
        match reader.read_line(&mut h) {
            Ok(0) | Err(_) => return,
            Ok(_) if h == "\r\n" => break,
            Ok(_) => {}
        }
    }
    seen.fetch_add(1, Ordering::SeqCst);
    let target = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let arg = |name: &str| {
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .unwrap_or("")
            .to_string()
    };
    let n = || arg("n").parse::<usize>().unwrap_or(0);
    let mut out = conn;
    let _ = match path {
        "/hello" => respond(&mut out, 200, &[], HELLO.as_bytes()),
        "/redirect" => respond(&mut out, 302, &[("Location", &arg("to"))], b""),
        "/big" => respond(&mut out, 200, &[], &vec![b'x'; n()]),
        "/stream" => stream(&mut out, n()),
        "/hang" => {
            std::thread::sleep(HANG);
            Ok(())
        }
        p if p.starts_with("/status/") => {
            let code = p["/status/".len()..].parse().unwrap_or(500);
            respond(&mut out, code, &[], format!("status {code}").as_bytes())
        }
        _ => respond(&mut out, 404, &[], b"not found"),
    };
}

fn respond(
    out: &mut TcpStream,
    code: u16,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {code} X\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes())?;
    out.write_all(body)
}

/// `n` bytes in chunks of 16 KiB, no Content-Length.
fn stream(out: &mut TcpStream, n: usize) -> std::io::Result<()> {
    out.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")?;
    let chunk = vec![b'y'; 16 << 10];
    let mut left = n;
    while left > 0 {
        let k = left.min(chunk.len());
        out.write_all(format!("{k:x}\r\n").as_bytes())?;
        out.write_all(&chunk[..k])?;
        out.write_all(b"\r\n")?;
        left -= k;
    }
    out.write_all(b"0\r\n\r\n")
}
