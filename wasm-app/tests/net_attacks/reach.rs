//! Core modules: reaching what is not granted.

use super::*;

/// Every spelling of "the other server" (127.0.0.1:victim) a URL parser
/// might read differently from the grant check, asked for by a guest that
/// is granted only `decoy`. None may reach the victim.
fn loopback_spellings(decoy: u16, victim: u16) -> Vec<String> {
    let v = victim;
    vec![
        format!("http://127.0.0.1:{decoy}@127.0.0.1:{v}/"),
        format!("http://127.0.0.1:{decoy}\\@127.0.0.1:{v}/"),
        format!("http://127.0.0.1%3a{decoy}@127.0.0.1:{v}/"),
        format!("http://127.0.0.1:{v}#@127.0.0.1:{decoy}/"),
        format!("http://127.0.0.1:{v}?@127.0.0.1:{decoy}/"),
        format!("http://2130706433:{v}/"),
        format!("http://0177.0.0.1:{v}/"),
        format!("http://0x7f.1:{v}/"),
        format!("http://127.1:{v}/"),
        format!("http://127.0.0.1.:{v}/"),
        format!("http://0:{v}/"),
        format!("http://0.0.0.0:{v}/"),
        format!("http://[::]:{v}/"),
        format!("http://[::ffff:127.0.0.1]:{v}/"),
        format!("http://[::ffff:7f00:1]:{v}/"),
        format!("http://[::127.0.0.1]:{v}/"),
        format!("http://localhost:{v}/"),
        format!("http://LOCALHOST.:{v}/"),
        format!("http://%6c%6fcalhost:{v}/"),
        format!("http://ｌｏｃａｌｈｏｓｔ:{v}/"),
        format!("http://127.0.0.1:{decoy}:{v}/"),
        format!("http://127.0.0.1\t:{v}/"),
        format!("HTTP://127.0.0.1:{v}/"),
        format!("http:127.0.0.1:{v}/"),
        format!("http:/\\127.0.0.1:{v}/"),
    ]
}

#[test]
fn no_spelling_of_an_ungranted_loopback_port_reaches_it() {
    let (decoy, victim) = (Recorder::start(), Recorder::start());
    let mut p = core_plugin(Policy::default().with_allowed_host(&decoy.grant()));
    for url in loopback_spellings(decoy.port, victim.port) {
        let r = send(&mut p, &get(&url));
        assert_eq!(victim.requests(), 0, "{url} reached the victim: {r:?}");
    }
    assert_eq!(
        victim.requests(),
        0,
        "the victim was reached: {:?}",
        victim.heads()
    );
}

#[test]
fn a_wildcard_grant_reaches_no_loopback_spelling() {
    let victim = Recorder::start();
    // `*` on the victim's port: public addresses only.
    let mut p = core_plugin(Policy::default().with_allowed_host(&format!("*:{}", victim.port)));
    for url in loopback_spellings(1, victim.port) {
        let _ = send(&mut p, &get(&url));
    }
    assert_eq!(
        victim.requests(),
        0,
        "the victim was reached: {:?}",
        victim.heads()
    );
}

#[test]
fn redirects_to_ungranted_spellings_and_schemes_are_refused() {
    let (decoy, victim) = (Recorder::start(), Recorder::start());
    let mut p = core_plugin(Policy::default().with_allowed_host(&decoy.grant()));
    let mut targets = loopback_spellings(decoy.port, victim.port);
    targets.extend([
        format!("//127.0.0.1:{}/", victim.port),
        format!("\\\\127.0.0.1:{}/", victim.port),
        format!("/\\127.0.0.1:{}/", victim.port),
        "file:///etc/passwd".into(),
        format!("ftp://127.0.0.1:{}/", victim.port),
        format!("ws://127.0.0.1:{}/", victim.port),
        format!("https://127.0.0.1:{}/", victim.port),
    ]);
    for to in targets {
        for code in [301, 302, 303, 307, 308] {
            let url = format!("{}&code={code}", redirect(&decoy, &to));
            let _ = send(&mut p, &get(&url));
        }
    }
    assert_eq!(
        victim.requests(),
        0,
        "the victim was reached: {:?}",
        victim.heads()
    );
}

#[test]
fn a_guest_cannot_inject_headers_or_steer_the_connection() {
    let s = Recorder::start();
    let mut p = core_plugin(Policy::default().with_allowed_host(&s.grant()));
    let hdr = |n: &str, v: &[u8]| (n.to_string(), v.to_vec());
    let bad: Vec<(String, Vec<u8>)> = vec![
        hdr("Host", b"internal.example"),
        hdr("HOST", b"internal.example"),
        hdr("Transfer-Encoding", b"chunked"),
        hdr("content-length", b"0"),
        hdr("Connection", b"keep-alive"),
        hdr("Upgrade", b"websocket"),
        hdr("TE", b"trailers"),
        hdr("Trailer", b"x"),
        hdr("Proxy-Authorization", b"Basic eA=="),
        hdr("X-A\r\nX-Injected", b"1"),
        hdr("X-A", b"1\r\nX-Injected: 1"),
        hdr("X-A", b"1\nX-Injected: 1"),
        hdr("X-A", b"1\rX-Injected: 1"),
        hdr("X-A", b"1\0X-Injected: 1"),
        hdr("X-A:", b"1"),
        hdr("X A", b"1"),
        hdr("", b"1"),
    ];
    for h in bad {
        let mut req = get(&s.url("/hello"));
        req.headers = vec![h.clone()];
        if let Ok(Ok(_)) = send(&mut p, &req) {
            // If sent at all, the head must carry nothing injected.
            let last = s.heads().pop().unwrap_or_default().to_ascii_lowercase();
            assert!(
                !last.contains("\nx-injected") && !last.contains("internal.example"),
                "{h:?}: {last}"
            );
            assert!(
                !last.contains("transfer-encoding") && !last.contains("upgrade"),
                "{h:?}: {last}"
            );
        }
    }
    for method in ["GET / HTTP/1.1\r\nX-Injected: 1\r\n", "GET\r\n", "G ET", ""] {
        let mut req = get(&s.url("/hello"));
        req.method = method.into();
        let _ = send(&mut p, &req);
    }
    // CR/LF in the URL never reach the request line as such.
    let _ = send(
        &mut p,
        &get(&format!("{}/a\r\nX-Injected: 1\r\n", s.url(""))),
    );
    let _ = send(
        &mut p,
        &get(&format!("{}/a b HTTP/1.1\r\nX-Injected: 1", s.url(""))),
    );
    for head in s.heads() {
        let lower = head.to_ascii_lowercase();
        assert!(!lower.contains("\nx-injected"), "{head}");
        assert_eq!(lower.matches("\r\nhost:").count(), 1, "{head}");
        assert!(
            lower.contains(&format!("\r\nhost: 127.0.0.1:{}\r\n", s.port)),
            "{head}"
        );
    }
}

#[test]
fn credentials_are_not_forwarded_to_another_host_on_redirect() {
    let (a, b) = (Recorder::start(), Recorder::start());
    let policy = Policy::default()
        .with_allowed_host(&a.grant())
        .with_allowed_host(&b.grant())
        .with_allowed_host(&format!("localhost:{}", a.port));
    let mut p = core_plugin(policy);
    for to in [
        b.url("/hello"),
        format!("http://localhost:{}/hello", a.port),
    ] {
        let mut req = get(&redirect(&a, &to));
        req.headers = vec![
            ("Authorization".into(), b"Bearer secret".to_vec()),
            ("Cookie".into(), b"session=secret".to_vec()),
        ];
        let r = send(&mut p, &req).unwrap();
        assert!(r.is_ok(), "{r:?}");
    }
    let heads: Vec<String> = a.heads().into_iter().chain(b.heads()).collect();
    for h in heads.iter().filter(|h| h.starts_with("GET /hello")) {
        assert!(!h.contains("secret"), "credentials forwarded: {h}");
    }
}

#[test]
fn response_heads_and_redirect_chains_are_bounded() {
    let s = Recorder::start();
    let mut p = core_plugin(Policy::default().with_allowed_host(&s.grant()));
    // 2 000 headers, and 200 headers of 1 KiB: hyper's head limit.
    for q in ["n=2000&len=8", "n=200&len=1024", "n=1&len=200000"] {
        match send(&mut p, &get(&s.url(&format!("/headers?{q}")))) {
            Ok(Err(_)) => {}
            other => panic!(
                "{q}: a huge head was accepted: {:?}",
                other.map(|r| r.map(|r| r.headers.len()))
            ),
        }
    }
    // A redirect to itself: at most 6 requests, then an error.
    let before = s.requests();
    let mut url = s.url("/hello");
    for _ in 0..7 {
        url = redirect(&s, &url);
    }
    match send(&mut p, &get(&url)) {
        Ok(Err(m)) => assert!(m.contains("redirects"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(s.requests() - before <= 6, "{}", s.requests() - before);
}

#[test]
fn a_request_cut_off_by_the_call_deadline_leaves_no_connection() {
    let s = Recorder::start();
    let policy = Policy::default()
        .with_allowed_host(&s.grant())
        .with_timeout(Duration::from_millis(500));
    let mut p = core_plugin(policy);
    for _ in 0..3 {
        match send(&mut p, &get(&s.url("/hold"))) {
            Err(Error::LimitExceeded(Limit::Time(_))) => {}
            other => panic!("{other:?}"),
        }
    }
    let start = Instant::now();
    while s.open_now() > 0 && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        s.open_now(),
        0,
        "connections left open after the calls ended"
    );
}
