//! Core modules: the host functions (`take`, `log`, the wire form).

use super::*;

#[test]
fn take_never_hands_over_a_previous_calls_result() {
    let functions = HostFunctions::new()
        .with_kv(|k| Some(format!("secret for {}", String::from_utf8_lossy(k)).into_bytes()));
    let wat = core_guest(KV_IMPORT);
    let policy = Policy::default()
        .with_allowed_host("127.0.0.1:1")
        .with_host_function("kv_get");
    let module = runtime()
        .load_bytes_with("kv.wat", wat.as_bytes(), policy, &functions)
        .unwrap();
    let mut p = Plugin::new(module);
    p.call("kv_leave", "alice").unwrap();
    let len = ("secret for alice".len() + 1) as u32;
    let out = p.call("take_len", len.to_le_bytes()).unwrap();
    assert_eq!(
        i32::from_le_bytes(out[..4].try_into().unwrap()),
        -1,
        "stale result taken: {out:?}"
    );
    // Odd lengths and pointers: a status or a clean error, never a panic.
    for n in [0u32, 1, u32::MAX, 0x8000_0000, 0x7fff_ffff] {
        let r = p.call("take_len", n.to_le_bytes());
        assert!(
            matches!(
                r,
                Ok(_)
                    | Err(Error::BadPointer(_))
                    | Err(Error::LimitExceeded(_))
                    | Err(Error::Trap { .. })
            ),
            "{n}: {r:?}"
        );
    }
}

#[test]
fn a_refusal_does_not_relabel_a_timeout_or_a_trap() {
    // A guest refused a host, then it loops (or traps): the call's error
    // should still say what happened to it, not the earlier refusal.
    let policy = Policy::default()
        .with_allowed_host("127.0.0.1:1")
        .with_timeout(Duration::from_millis(300));
    let mut p = core_plugin(policy);
    let refused = get("http://127.0.0.1:2/").encode();
    let looped = p.call("req_loop", &refused);
    let trapped = p.call("req_trap", &refused);
    assert!(
        matches!(looped, Err(Error::LimitExceeded(Limit::Time(_))))
            && matches!(trapped, Err(Error::Trap { .. })),
        "a timeout reported as {looped:?}; a trap reported as {trapped:?}"
    );
}

/// Runs test `name` of this binary alone in a child process (so that its
/// peak memory is its own) and returns its stdout.
fn in_child(name: &str) -> String {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            name,
            "--nocapture",
            "--include-ignored",
            "--test-threads",
            "1",
        ])
        .env("NET_ATTACKS_CHILD", "1")
        .output()
        .expect("run child");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

const REQUEST_MIB: usize = 32;

#[test]
#[ignore = "run by a_request_full_of_empty_headers_costs_the_host_little"]
fn child_empty_header_flood() {
    if std::env::var_os("NET_ATTACKS_CHILD").is_none() {
        return;
    }
    // A wire request of 32 MiB: GET, a URL, then 4 M headers of 8 bytes
    // each (empty name, empty value), then an empty body.
    let mut wire = Vec::with_capacity(REQUEST_MIB << 20);
    let put = |w: &mut Vec<u8>, b: &[u8]| {
        w.extend_from_slice(&(b.len() as u32).to_le_bytes());
        w.extend_from_slice(b);
    };
    put(&mut wire, b"GET");
    put(&mut wire, b"http://127.0.0.1:1/");
    let n = ((REQUEST_MIB << 20) - wire.len() - 8) / 8;
    wire.extend_from_slice(&(n as u32).to_le_bytes());
    wire.resize(wire.len() + n * 8, 0);
    put(&mut wire, b"");
    // (Not decoded here: decoding it is what costs the memory measured.)
    // The guest may hold 40 MiB in all.
    let policy = Policy::default()
        .with_allowed_host("127.0.0.1:1")
        .with_max_memory(40 << 20);
    let mut p = core_plugin(policy);
    p.call("req", b"warm up").unwrap();
    let before = peak_rss_kib();
    let r = p.call("req", &wire);
    let after = peak_rss_kib();
    println!(
        "RESULT={:?}",
        r.map(|o| String::from_utf8_lossy(&o[1..]).into_owned())
    );
    println!("PEAK_DELTA_MIB={}", (after.saturating_sub(before)) / 1024);
}

#[test]
fn a_request_full_of_empty_headers_costs_the_host_little() {
    let out = in_child("host_calls::child_empty_header_flood");
    let delta: u64 = out
        .lines()
        .find_map(|l| l.strip_prefix("PEAK_DELTA_MIB="))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no measurement: {out}"));
    // The guest's copy of the input and the host's copy of the request are
    // 2 x 32 MiB; a host that keeps its own cost near that stays well under
    // 4 x the request.
    assert!(
        delta < 4 * REQUEST_MIB as u64,
        "a {REQUEST_MIB} MiB request of a guest limited to 40 MiB raised the host's peak \
         memory by {delta} MiB\n{out}"
    );
}
