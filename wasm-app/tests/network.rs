//! Network grants against real HTTP servers on 127.0.0.1 (`network/server.rs`),
//! through the example guests: `wasm_module_net` (core module,
//! `wasm_host.http_request`) and `wasm_component_net` (component,
//! `wasi:http`), each asked to `fetch` a URL.
//!
//! Each case checks what the guest gets *and* what the servers saw: a
//! refused request must never reach a server.

mod common;
#[path = "network/server.rs"]
mod server;

use std::time::{Duration, Instant};

use wasm_abi::built;
use wasm_app::{Error, Limit, Plugin, Policy, Runtime};

use server::{Server, HELLO};

/// The two example guests, by file name.
const GUESTS: [&str; 2] = [built::MODULE_NET, built::COMPONENT_NET];

/// One runtime with a compiled-module cache of its own: every test loads
/// the guests under a policy of its own, compiled once.
fn runtime() -> &'static Runtime {
    common::cached_runtime()
}

fn plugin(guest: &str, policy: Policy) -> Plugin {
    let module = runtime()
        .load(common::guest_path(guest), policy)
        .unwrap_or_else(|e| panic!("load {guest}: {e}"));
    Plugin::new(module)
}

fn fetch(guest: &str, policy: Policy, url: &str) -> Result<String, Error> {
    plugin(guest, policy).call_str("fetch", url)
}

fn denied(result: Result<String, Error>, naming: &str) {
    match result {
        Err(Error::PolicyDenied(m)) => assert!(m.contains(naming), "{m}"),
        other => panic!("expected a refusal naming {naming}, got {other:?}"),
    }
}

#[test]
fn a_granted_host_answers() {
    let s = Server::start();
    for guest in GUESTS {
        let policy = Policy::default().with_allowed_host(&s.grant());
        assert_eq!(
            fetch(guest, policy, &s.url("/hello")).unwrap(),
            HELLO,
            "{guest}"
        );
    }
    assert_eq!(s.requests(), 2);
}

#[test]
fn a_host_not_granted_is_refused_before_any_request() {
    let (s, other) = (Server::start(), Server::start());
    for guest in GUESTS {
        // Nothing granted at all, then another port of the same address.
        denied(
            fetch(
                guest,
                Policy::default().with_allowed_host("example.org:443"),
                &s.url("/hello"),
            ),
            &s.grant(),
        );
        let port_a = Policy::default().with_allowed_host(&other.grant());
        denied(fetch(guest, port_a, &s.url("/hello")), &s.grant());
    }
    assert_eq!(s.requests(), 0, "a refused request reached the server");
}

#[test]
fn a_redirect_to_a_host_not_granted_is_refused() {
    let (a, b) = (Server::start(), Server::start());
    let url = a.url(&format!("/redirect?to={}", b.url("/hello")));
    for guest in GUESTS {
        let only_a = Policy::default().with_allowed_host(&a.grant());
        denied(fetch(guest, only_a.clone(), &url), &b.grant());
        // Granted both, the redirect is followed.
        let both = only_a.with_allowed_host(&b.grant());
        assert_eq!(fetch(guest, both, &url).unwrap(), HELLO, "{guest}");
    }
    assert_eq!(b.requests(), 2, "only the granted redirects reached b");
}

#[test]
fn a_name_that_resolves_to_loopback_needs_an_exact_grant() {
    let s = Server::start();
    let url = format!("http://localhost:{}/hello", s.port);
    for guest in GUESTS {
        // A wildcard grants public addresses only.
        let wildcard = Policy::default().with_allowed_host(&format!("*:{}", s.port));
        denied(fetch(guest, wildcard.clone(), &url), "not a public address");
        denied(fetch(guest, wildcard, &s.url("/hello")), &s.grant());
        // The exact name vouches for its addresses.
        let exact = Policy::default().with_allowed_host(&format!("localhost:{}", s.port));
        assert_eq!(fetch(guest, exact, &url).unwrap(), HELLO, "{guest}");
    }
    assert_eq!(s.requests(), 2);
}

#[test]
fn a_response_over_the_limit_is_a_clean_error() {
    let s = Server::start();
    for guest in GUESTS {
        let policy = Policy::default()
            .with_allowed_host(&s.grant())
            .with_max_http_response(64 << 10);
        for path in ["/big?n=1048576", "/stream?n=1048576"] {
            match fetch(guest, policy.clone(), &s.url(path)) {
                Err(Error::LimitExceeded(Limit::HttpResponse(max))) => assert_eq!(max, 64 << 10),
                other => panic!("{guest} {path}: {other:?}"),
            }
        }
        let small = fetch(guest, policy, &s.url("/big?n=1000")).unwrap();
        assert_eq!(small.len(), 1000, "{guest}");
    }
}

#[test]
fn a_server_that_never_answers_ends_within_the_timeouts() {
    let s = Server::start();
    for guest in GUESTS {
        // The call's timeout first...
        let call_bound = Policy::default()
            .with_allowed_host(&s.grant())
            .with_timeout(Duration::from_secs(1))
            .with_http_timeout(Duration::from_secs(60));
        let start = Instant::now();
        match fetch(guest, call_bound, &s.url("/hang")) {
            Err(Error::LimitExceeded(Limit::Time(t))) => assert_eq!(t, Duration::from_secs(1)),
            other => panic!("{guest}: {other:?}"),
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{guest}: {:?}",
            start.elapsed()
        );
        // ...or the request's own.
        let request_bound = Policy::default()
            .with_allowed_host(&s.grant())
            .with_timeout(Duration::from_secs(20))
            .with_http_timeout(Duration::from_millis(300));
        let start = Instant::now();
        match fetch(guest, request_bound, &s.url("/hang")) {
            Err(Error::LimitExceeded(Limit::HttpTime(t))) => {
                assert_eq!(t, Duration::from_millis(300))
            }
            other => panic!("{guest}: {other:?}"),
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{guest}: {:?}",
            start.elapsed()
        );
    }
}

#[test]
fn any_status_reaches_the_guest() {
    let s = Server::start();
    let policy = Policy::default().with_allowed_host(&s.grant());
    let mut p = plugin(built::MODULE_NET, policy.clone());
    assert_eq!(
        p.call_str("fetch_status", &s.url("/status/404")).unwrap(),
        "404\nstatus 404"
    );
    // `fetch` turns it into the guest's own error.
    match fetch(built::COMPONENT_NET, policy, &s.url("/status/503")) {
        Err(Error::GuestReported { message: Some(m) }) => assert!(m.contains("HTTP 503"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_core_module_importing_http_without_a_grant_does_not_load() {
    let err = runtime()
        .load(common::guest_path(built::MODULE_NET), Policy::default())
        .err()
        .expect("loads without a network grant");
    let text = err.to_string();
    assert!(matches!(err, Error::PolicyDenied(_)), "{err:?}");
    assert!(
        text.contains("wasm_host.http_request") && text.contains("--allow-host"),
        "{text}"
    );
}

#[test]
fn the_cli_fetches_for_a_module_with_a_grant_only() {
    let s = Server::start();
    let cache = tempfile::tempdir().expect("temp dir");
    let module = common::guest_arg(built::MODULE_NET);
    let url = s.url("/hello");
    let args = |grant: &str| {
        vec![
            "call",
            "--module",
            &module,
            "fetch",
            "--input",
            &url,
            "--allow-host",
            grant,
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>()
    };
    let run = |a: Vec<String>| {
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        common::cli::wasm_app(&a, cache.path())
    };
    let ok = run(args(&s.grant()));
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert_eq!(ok.stdout, HELLO.as_bytes());
    let refused = run(args("127.0.0.1:1"));
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: policy denied: network access to 127.0.0.1:"),
        "{stderr}"
    );
    assert_eq!(s.requests(), 1);
}

#[test]
fn a_component_connects_over_wasi_sockets_under_the_same_grants() {
    let s = Server::start();
    let connect =
        |policy: Policy, to: &str| plugin(built::COMPONENT_NET, policy).call_str("connect", to);
    let by_name = format!("localhost:{}", s.port);
    // An address granted itself; a name granted exactly (its lookup, then
    // a connection to one of its addresses).
    let by_addr = connect(Policy::default().with_allowed_host(&s.grant()), &s.grant()).unwrap();
    assert!(
        by_addr.starts_with("HTTP/1.1 200") && by_addr.ends_with(HELLO),
        "{by_addr}"
    );
    let named = connect(Policy::default().with_allowed_host(&by_name), &by_name).unwrap();
    assert!(named.ends_with(HELLO), "{named}");
    // An address not granted; a name no grant covers is not even looked up;
    // a wildcard lets the lookup through but not to a loopback address.
    denied(
        connect(
            Policy::default().with_allowed_host("127.0.0.1:1"),
            &s.grant(),
        ),
        &s.grant(),
    );
    denied(
        connect(Policy::default().with_allowed_host(&s.grant()), &by_name),
        "name lookup of localhost",
    );
    let wildcard = Policy::default().with_allowed_host(&format!("*:{}", s.port));
    denied(connect(wildcard, &by_name), "is not in allowed-hosts");
    assert_eq!(s.requests(), 2, "a refused connection reached the server");
}
