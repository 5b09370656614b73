//! wasm-app side by side with its peers, in ONE run (so the ratios, not the
//! absolute times, are the result on a noisy machine).
//!
//! Groups (the first function of each is the group's baseline in
//! `bench/REPORT.md`):
//! - `peers_greet`: our greeter through the Rust ABI (`Plugin::greet`) vs the
//!   Extism plug-in's `greet`, both plug-ins instantiated once and reused;
//! - `peers_echo`: the Arrow `echo` round trip at 1 k, 100 k and 1 M rows of
//!   the study's schema. Both sides start from the same `Table` and end with a
//!   decoded `Table`: ours through `Plugin::process` (encode, call, flush
//!   call, decode), Extism's by encoding the same IPC stream, `call("echo")`
//!   and decoding the answer with the same decoder.
//!
//! Guests: ours from `WASM_APP_MODULES` (default `target/wasm-modules`, found
//! by `wasm_abi::built`), the Extism one from `EXTISM_GUEST` (default
//! `bench-peers/target/wasm32-unknown-unknown/guest/extism_guest.wasm`).
//! Run with `make bench` or `make bench-peers` from the repository root.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use wasm_abi::built;
use wasm_app::transport::{self, Table};
use wasm_app::{EngineOptions, Plugin, Policy, Runtime, StringAbi};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

fn extism_guest() -> PathBuf {
    std::env::var_os("EXTISM_GUEST")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(ROOT)
                .join("bench-peers/target/wasm32-unknown-unknown/guest/extism_guest.wasm")
        })
}

fn ours(rt: &Runtime, file: &str) -> Plugin {
    let path = built::guest(Path::new(ROOT), file).unwrap_or_else(|e| panic!("{e}"));
    let m = rt
        .load(&path, Policy::default())
        .unwrap_or_else(|e| panic!("{file}: {e}"));
    Plugin::new(m)
}

fn extism_plugin() -> extism::Plugin {
    let path = extism_guest();
    // Bytes, not `Wasm::file`: extism is built without `register-filesystem`.
    let wasm = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run `make bench-peers`)", path.display()));
    let manifest = extism::Manifest::new([extism::Wasm::data(wasm)]);
    extism::Plugin::new(&manifest, [], false)
        .unwrap_or_else(|e| panic!("{}: {e} (run `make bench-peers`)", path.display()))
}

fn greet(c: &mut Criterion) {
    let rt = Runtime::new(EngineOptions::default()).expect("runtime");
    let mut p = ours(&rt, built::MODULE1);
    let mut x = extism_plugin();
    let mut g = c.benchmark_group("peers_greet");
    for size in [4usize, 1024, 64 * 1024] {
        let name = "x".repeat(size);
        let want = format!("Hello World, {name}!");
        assert_eq!(p.greet(StringAbi::Rust, &name).expect("greet"), want);
        assert_eq!(
            x.call::<&str, String>("greet", name.as_str())
                .expect("greet"),
            want
        );
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(
            BenchmarkId::new("wasm_app_rust_abi", size),
            &name,
            |b, n| b.iter(|| p.greet(StringAbi::Rust, black_box(n)).expect("greet")),
        );
        g.bench_with_input(BenchmarkId::new("extism", size), &name, |b, n| {
            b.iter(|| {
                x.call::<&str, String>("greet", black_box(n.as_str()))
                    .expect("greet")
            })
        });
    }
    g.finish();
}

/// The Extism side of the round trip: the same encode / decode as ours.
fn extism_echo(x: &mut extism::Plugin, t: &Table) -> Option<Table> {
    let ipc = transport::encode_stream(&t.schema, &t.batches).expect("encode");
    let out: Vec<u8> = x.call("echo", ipc.as_slice()).expect("echo");
    transport::decode_stream(out, u64::MAX).expect("decode")
}

fn echo(c: &mut Criterion) {
    let rt = Runtime::new(EngineOptions::default()).expect("runtime");
    let mut p = ours(&rt, built::MODULE2);
    let mut x = extism_plugin();
    let mut g = c.benchmark_group("peers_echo");
    g.sample_size(10);
    for rows in [1_000usize, 100_000, 1_000_000] {
        let t = transport::study_rows(rows).expect("rows");
        let a = p.process_table("echo", &[], &t).expect("echo").expect("output");
        let b = extism_echo(&mut x, &t).expect("output");
        assert!(transport::same_data(&a, &t) && transport::same_data(&b, &t));
        let ipc_len = transport::encode_stream(&t.schema, &t.batches)
            .expect("encode")
            .len();
        g.throughput(Throughput::Bytes(ipc_len as u64));
        g.bench_with_input(BenchmarkId::new("wasm_app_echo", rows), &t, |b, t| {
            b.iter(|| p.process_table("echo", &[], t).expect("echo"))
        });
        g.bench_with_input(BenchmarkId::new("extism_echo", rows), &t, |b, t| {
            b.iter(|| extism_echo(&mut x, t))
        });
    }
    g.finish();
}

/// The report shows no chart of these groups: skip criterion's plots,
/// which cost more time than many of the measurements.
fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .without_plots()
}

criterion_group! {
    name = benches;
    config = config();
    targets = greet, echo
}
criterion_main!(benches);
