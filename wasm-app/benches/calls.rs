//! Per-call and data-path costs on the real guests, each group with its
//! baseline measured in the same run (so ratios, not absolute times, are the
//! result on a noisy machine).
//!
//! Run with `make bench` (builds the guests first).

use std::hint::black_box;
use std::path::{Path, PathBuf};

use criterion::{
    criterion_group, criterion_main, AxisScale, BenchmarkId, Criterion, PlotConfiguration,
    Throughput,
};
use wasm_abi::built;
use wasm_app::{bench, pipeline, transport};
use wasm_app::{EngineOptions, Plugin, Policy, Runtime, StringAbi};

/// The built guest `file`, found from this crate (`make guests` builds them).
fn guest(file: &str) -> PathBuf {
    built::guest(Path::new(env!("CARGO_MANIFEST_DIR")), file).unwrap_or_else(|e| panic!("{e}"))
}

fn plugin(rt: &Runtime, file: &str) -> Plugin {
    let m = rt
        .load(guest(file), Policy::default())
        .unwrap_or_else(|e| panic!("{file}: {e}"));
    Plugin::new(m)
}

/// Group 1: one call per ABI against the same formatting done natively.
fn per_call(c: &mut Criterion) {
    let rt = Runtime::new(EngineOptions::default()).expect("runtime");
    let mut p = plugin(&rt, built::MODULE1);
    // The same greeter behind the component model's canonical ABI.
    let mut comp = plugin(&rt, built::COMPONENT_GREETER);
    let mut g = c.benchmark_group("per_call");
    g.plot_config(PlotConfiguration::default().summary_scale(AxisScale::Logarithmic));
    g.bench_function("answer", |b| b.iter(|| p.answer().expect("answer")));
    for size in [4usize, 1024, 64 * 1024] {
        let name = "x".repeat(size);
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::new("native_format", size), &name, |b, n| {
            b.iter(|| format!("Hello World, {}!", black_box(n)))
        });
        g.bench_with_input(BenchmarkId::new("greet_component", size), &name, |b, n| {
            b.iter(|| comp.greet(StringAbi::Rust, n).expect("greet"))
        });
        g.bench_with_input(BenchmarkId::new("greet_c", size), &name, |b, n| {
            b.iter(|| p.greet(StringAbi::C, n).expect("greet"))
        });
        g.bench_with_input(BenchmarkId::new("greet_rust", size), &name, |b, n| {
            b.iter(|| p.greet(StringAbi::Rust, n).expect("greet"))
        });
        // The same export through the generic call (looked up by name,
        // bytes out): what a module's own exports cost.
        g.bench_with_input(BenchmarkId::new("call_pair_abi", size), &name, |b, n| {
            b.iter(|| p.call(wasm_abi::GREET_RUST, n).expect("call"))
        });
    }
    g.finish();
}

/// Group 3: Arrow `echo` round trip against memcpy of the same IPC bytes,
/// and against the naive alternative: one C string per row through the C
/// ABI greeter (see `wasm_app::bench::rows_as_c_strings`). From 1 row up, so
/// that the crossover between the two shows.
fn arrow_round_trip(c: &mut Criterion) {
    let rt = Runtime::new(EngineOptions::default()).expect("runtime");
    let mut p = plugin(&rt, built::MODULE2);
    let mut comp = plugin(&rt, built::COMPONENT_ARROW);
    let mut greeter = plugin(&rt, built::MODULE1);
    let mut g = c.benchmark_group("arrow_echo");
    g.sample_size(10);
    g.plot_config(PlotConfiguration::default().summary_scale(AxisScale::Logarithmic));
    for rows in [1usize, 10, 100, 1_000, 100_000, 1_000_000] {
        let t = transport::study_rows(rows).expect("rows");
        let ipc = transport::encode_stream(&t.schema, &t.batches).expect("encode");
        g.throughput(Throughput::Bytes(ipc.len() as u64));
        g.bench_with_input(BenchmarkId::new("memcpy_ipc", rows), &ipc, |b, bytes| {
            b.iter(|| black_box(bytes.clone()))
        });
        g.bench_with_input(BenchmarkId::new("echo", rows), &t, |b, t| {
            b.iter(|| p.process_table("echo", &[], t).expect("echo"))
        });
        g.bench_with_input(BenchmarkId::new("echo_component", rows), &t, |b, t| {
            b.iter(|| comp.process_table("echo", &[], t).expect("echo"))
        });
        g.bench_with_input(BenchmarkId::new("c_string_per_row", rows), &t, |b, t| {
            b.iter(|| bench::rows_as_c_strings(&mut greeter, t).expect("rows"))
        });
    }
    g.finish();
}

/// Throughput of `tokenize` streamed on 1 and 2 worker threads (one
/// instance each): the ratio is the parallel speed-up.
fn pipeline_threads(c: &mut Criterion) {
    let rt = Runtime::new(EngineOptions::default()).expect("runtime");
    let module = rt
        .load(guest(built::MODULE2), Policy::default())
        .expect("load wasm_module2");
    // Enough batches (61 of the default 8192 rows) that the two workers
    // stay busy to the end.
    let input = transport::study_rows(500_000).expect("rows");
    let mut g = c.benchmark_group("tokenize_threads");
    g.sample_size(10);
    g.throughput(Throughput::Elements(input.num_rows() as u64));
    for threads in [1usize, 2] {
        g.bench_with_input(
            BenchmarkId::from_parameter(threads),
            &threads,
            |b, &threads| {
                b.iter(|| {
                    bench::tokenize(&module, &input, threads, pipeline::DEFAULT_BATCH_SIZE)
                        .expect("tokenize")
                })
            },
        );
    }
    g.finish();
}

/// Group 2: what loading and instantiating cost, per strategy.
fn loading(c: &mut Criterion) {
    let path = guest(built::MODULE1);
    let cache = std::env::temp_dir().join(format!("wasm-app-bench-cache-{}", std::process::id()));
    let plain = Runtime::new(EngineOptions::default()).expect("runtime");
    let cached = Runtime::new(EngineOptions {
        cache_dir: Some(cache.clone()),
        ..Default::default()
    })
    .expect("runtime");
    cached
        .load(&path, Policy::default())
        .expect("warm the cache");
    let mut g = c.benchmark_group("loading");
    g.sample_size(10);
    g.bench_function("compile", |b| {
        b.iter(|| plain.load(&path, Policy::default()).expect("compile"))
    });
    g.bench_function("cache_hit", |b| {
        b.iter(|| cached.load(&path, Policy::default()).expect("cache"))
    });
    // The study's approach: load and compile the file for every call.
    g.bench_function("compile_per_call", |b| {
        b.iter(|| {
            let mut p = Plugin::new(plain.load(&path, Policy::default()).expect("load"));
            p.greet(StringAbi::Rust, "Rust").expect("greet")
        })
    });
    g.finish();

    let module = plain.load(&path, Policy::default()).expect("load");
    let mut policy = Policy::default();
    policy.limits.max_instances = Some(4);
    policy.limits.max_memory = 64 << 20;
    let pooled_rt = Runtime::new(EngineOptions {
        pool_instances: Some(4),
        pool_max_memory: 64 << 20,
        ..Default::default()
    })
    .expect("pooling runtime");
    let pooled = pooled_rt.load(&path, policy).expect("load pooled");
    let mut g = c.benchmark_group("instantiate");
    g.bench_function("relink_each_time", |b| {
        b.iter(|| module.instantiate_relinked().expect("instantiate"))
    });
    g.bench_function("instance_pre", |b| {
        b.iter(|| {
            Plugin::new(module.clone())
                .instantiate()
                .expect("instantiate")
        })
    });
    g.bench_function("instance_pre_pooling", |b| {
        b.iter(|| {
            Plugin::new(pooled.clone())
                .instantiate()
                .expect("instantiate")
        })
    });
    g.finish();
    let _ = std::fs::remove_dir_all(cache);
}

// Charts (bench/REPORT.md copies them) for the per-call and data groups
// only: drawing them costs more time than many of the measurements.
criterion_group!(charted, per_call, arrow_round_trip);
criterion_group! {
    name = plain;
    config = Criterion::default().without_plots();
    targets = loading, pipeline_threads
}
criterion_main!(charted, plain);
