//! A recording server on 127.0.0.1: every request head it saw, and the
//! connections open now.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone)]
pub(crate) struct Recorder {
    pub(crate) port: u16,
    heads: Arc<Mutex<Vec<String>>>,
    accepted: Arc<AtomicUsize>,
    open: Arc<AtomicUsize>,
}

impl Recorder {
    pub(crate) fn start() -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().unwrap().port();
        let r = Recorder {
            port,
            heads: Arc::default(),
            accepted: Arc::default(),
            open: Arc::default(),
        };
        let rr = r.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let rr = rr.clone();
                rr.accepted.fetch_add(1, Ordering::SeqCst);
                rr.open.fetch_add(1, Ordering::SeqCst);
                std::thread::spawn(move || {
                    rr.serve(conn);
                    rr.open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        r
    }

    pub(crate) fn grant(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub(crate) fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }

    pub(crate) fn requests(&self) -> usize {
        self.heads.lock().unwrap().len()
    }

    pub(crate) fn open_now(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }

    pub(crate) fn serve(&self, mut conn: TcpStream) {
        let _ = conn.set_read_timeout(Some(Duration::from_secs(60)));
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        // Read the head; a raw socket that sends nothing stays here until
        // its peer closes it (read returns 0), which is what `open` counts.
        loop {
            match conn.read(&mut byte) {
                Ok(1) => head.push(byte[0]),
                _ => return,
            }
            if head.ends_with(b"\r\n\r\n") || head.len() > 256 << 10 {
                break;
            }
        }
        let head = String::from_utf8_lossy(&head).into_owned();
        self.heads.lock().unwrap().push(head.clone());
        let target = head.split_whitespace().nth(1).unwrap_or("/").to_string();
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let arg = |name: &str| {
            query
                .split('&')
                .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
                .unwrap_or("")
                .to_string()
        };
        let respond = |conn: &mut TcpStream, code: u16, extra: &str, body: &[u8]| {
            let head = format!(
                "HTTP/1.1 {code} X\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n",
                body.len()
            );
            let _ = conn.write_all(head.as_bytes());
            let _ = conn.write_all(body);
        };
        match path {
            // 302 to the hex-encoded `to` (any bytes, no escaping worries).
            "/redir" => {
                let to = unhex(&arg("to"));
                let code = arg("code").parse().unwrap_or(302);
                respond(&mut conn, code, &format!("Location: {to}\r\n"), b"");
            }
            // `n` response headers of `len` bytes each.
            "/headers" => {
                let n: usize = arg("n").parse().unwrap_or(0);
                let len: usize = arg("len").parse().unwrap_or(8);
                let mut extra = String::new();
                for i in 0..n {
                    extra.push_str(&format!("x-h{i}: {}\r\n", "v".repeat(len)));
                }
                respond(&mut conn, 200, &extra, b"ok");
            }
            // Holds the connection (no answer) until the peer closes it.
            "/hold" => loop {
                match conn.read(&mut byte) {
                    Ok(1) => {}
                    _ => return,
                }
            },
            _ => respond(&mut conn, 200, "", b"ok"),
        }
    }
}

pub(crate) fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn unhex(s: &str) -> String {
    let bytes: Vec<u8> = (0..s.len() / 2)
        .filter_map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok())
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

pub(crate) fn redirect(from: &Recorder, to: &str) -> String {
    from.url(&format!("/redir?to={}", hex(to)))
}
