//! `bench-report`: writes `bench/REPORT.md` from criterion's results
//! (`bench-peers/target/criterion`: `make bench` runs every group from this
//! crate) and the sizes
//! table of `scripts/sizes.sh` (`target/bench/sizes.tsv`).
//!
//! Usage: `bench-report [ROOT]` (ROOT: the repository, default `.`).
//! Run by `make bench` after the benchmarks.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};
use serde_json::Value;

/// One measured benchmark.
#[derive(Debug, Clone)]
struct Bench {
    function: String,
    /// The parameter (`value_str`), empty when none.
    param: String,
    /// Median and its confidence interval, in nanoseconds.
    median: f64,
    lower: f64,
    upper: f64,
    confidence: f64,
    /// Bytes per iteration when the group set a throughput.
    bytes: Option<u64>,
}

/// The baseline of each known group: ratios are against it, at the same
/// parameter. Other groups use their first function.
const BASELINES: &[(&str, &str)] = &[
    ("per_call", "native_format"),
    ("arrow_echo", "memcpy_ipc"),
    ("peers_greet", "wasm_app_rust_abi"),
    ("peers_echo", "wasm_app_echo"),
];

/// A row of `target/bench/sizes.tsv`: file, bytes, and bytes after
/// `wasm-opt -Oz` (or `-`, or `component`).
type Size = (String, u64, String);

/// Where `make bench` leaves criterion's results (relative to the root).
const CRITERION: &str = "bench-peers/target/criterion";

/// Size goals (bytes, binary units).
const KIB: u64 = 1024;
const MIB: u64 = 1024 * 1024;

fn main() -> Result<()> {
    let root = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| ".".into()));
    let mut groups: BTreeMap<String, (PathBuf, Vec<Bench>)> = BTreeMap::new();
    let dir = root.join(CRITERION);
    if dir.is_dir() {
        collect(&dir, &dir, &mut groups)?;
    }
    let sizes = read_sizes(&root.join("target/bench/sizes.tsv"));
    let report = render(&root, &groups, sizes.as_deref())?;
    let out = root.join("bench/REPORT.md");
    fs::create_dir_all(out.parent().unwrap())?;
    fs::write(&out, report).with_context(|| format!("writing {}", out.display()))?;
    eprintln!("bench-report: written {}", out.display());
    Ok(())
}

/// Finds every `new/benchmark.json` + `new/estimates.json` under `dir`.
fn collect(
    base: &Path,
    dir: &Path,
    groups: &mut BTreeMap<String, (PathBuf, Vec<Bench>)>,
) -> Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if !path.is_dir() {
            continue;
        }
        if path.file_name().is_some_and(|n| n == "report") {
            continue;
        }
        if path.file_name().is_some_and(|n| n == "new") {
            let bench = path.join("benchmark.json");
            let est = path.join("estimates.json");
            if bench.is_file() && est.is_file() {
                let (group, b) = read_bench(&bench, &est)?;
                let entry = groups
                    .entry(group)
                    .or_insert_with(|| (base.to_path_buf(), Vec::new()));
                entry.1.push(b);
            }
            continue;
        }
        collect(base, &path, groups)?;
    }
    Ok(())
}

fn read_json(path: &Path) -> Result<Value> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

fn read_bench(bench: &Path, est: &Path) -> Result<(String, Bench)> {
    let b = read_json(bench)?;
    let e = read_json(est)?;
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let f = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    let m = &e["median"];
    let ci = &m["confidence_interval"];
    let bytes = b["throughput"]["Bytes"]
        .as_u64()
        .or_else(|| b["throughput"]["BytesDecimal"].as_u64());
    Ok((
        s(&b["group_id"]),
        Bench {
            function: s(&b["function_id"]),
            param: s(&b["value_str"]),
            median: f(&m["point_estimate"]),
            lower: f(&ci["lower_bound"]),
            upper: f(&ci["upper_bound"]),
            confidence: f(&ci["confidence_level"]),
            bytes,
        },
    ))
}

fn read_sizes(path: &Path) -> Option<Vec<Size>> {
    let text = fs::read_to_string(path).ok()?;
    Some(
        text.lines()
            .filter_map(|l| {
                let mut it = l.split('\t');
                let name = it.next()?.to_string();
                let bytes = it.next()?.parse().ok()?;
                let opt = it.next().unwrap_or("-").to_string();
                Some((name, bytes, opt))
            })
            .collect(),
    )
}

/// Sorts parameters numerically when they are numbers.
fn param_key(p: &str) -> (u64, String) {
    (p.parse().unwrap_or(u64::MAX), p.to_string())
}

fn time(ns: f64) -> String {
    if ns >= 1e9 {
        format!("{:.3} s", ns / 1e9)
    } else if ns >= 1e6 {
        format!("{:.3} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.3} µs", ns / 1e3)
    } else {
        format!("{:.1} ns", ns)
    }
}

fn bytes(n: u64) -> String {
    if n >= MIB {
        format!("{:.2} MiB", n as f64 / MIB as f64)
    } else if n >= KIB {
        format!("{:.1} KiB", n as f64 / KIB as f64)
    } else {
        format!("{n} B")
    }
}

fn sh(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn cpu_model() -> String {
    fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn baseline_of(group: &str, benches: &[Bench]) -> String {
    BASELINES
        .iter()
        .find(|(g, _)| *g == group)
        .map(|(_, f)| f.to_string())
        .unwrap_or_else(|| benches[0].function.clone())
}

fn find<'a>(benches: &'a [Bench], function: &str, param: &str) -> Option<&'a Bench> {
    benches
        .iter()
        .find(|b| b.function == function && b.param == param)
}

fn render(
    root: &Path,
    groups: &BTreeMap<String, (PathBuf, Vec<Bench>)>,
    sizes: Option<&[Size]>,
) -> Result<String> {
    let mut r = String::new();
    writeln!(r, "# Benchmark report")?;
    writeln!(r)?;
    writeln!(
        r,
        "Generated by `make bench` (`bench-peers/host/src/main.rs`) on {}.",
        sh("date", &["-u", "+%Y-%m-%d %H:%M UTC"])
    )?;
    writeln!(r)?;
    writeln!(r, "| machine | |")?;
    writeln!(r, "|---|---|")?;
    writeln!(r, "| CPU | {} |", cpu_model())?;
    writeln!(r, "| cores (`nproc`) | {} |", sh("nproc", &[]))?;
    writeln!(
        r,
        "| architecture (`uname -m`) | {} |",
        sh("uname", &["-m"])
    )?;
    writeln!(r, "| kernel | {} |", sh("uname", &["-r"]))?;
    writeln!(r)?;
    writeln!(
        r,
        "Times are criterion's median per iteration; the spread is the median's \
         confidence interval. The ratio is the median over the group's baseline \
         (marked *) at the same parameter: below 1 is faster than the baseline. \
         The machine may be shared with other work: compare ratios within a \
         group (measured in the same run), not absolute times across runs."
    )?;

    writeln!(r)?;
    writeln!(
        r,
        "Every group ran in one `make bench`, from one build of `bench-peers/` \
         (wasm-app's own benches and the peers' share its wasmtime): {}. \
         Our guests are `wasm32-wasip1` modules, the Extism plug-in a \
         `wasm32-unknown-unknown` one built with the same `guest` profile; \
         each plug-in is instantiated once and reused across calls. The echo \
         rows start from the same `Table` and end with a decoded `Table` on \
         both sides.",
        versions(&root.join("bench-peers/Cargo.lock"))
    )?;

    for (group, (dir, benches)) in groups {
        let base = baseline_of(group, benches);
        let mut rows = benches.clone();
        rows.sort_by(|a, b| {
            param_key(&a.param)
                .cmp(&param_key(&b.param))
                .then((a.function != base).cmp(&(b.function != base)))
                .then(a.function.cmp(&b.function))
        });
        writeln!(r)?;
        writeln!(r, "## `{group}`")?;
        writeln!(r)?;
        let rel = dir.strip_prefix(root).unwrap_or(dir);
        let base_text = if base.is_empty() {
            "the first parameter".to_string()
        } else {
            format!("`{base}`")
        };
        writeln!(
            r,
            "From `{}/{group}`; baseline: {base_text}.",
            rel.display()
        )?;
        writeln!(r)?;
        writeln!(
            r,
            "| function | parameter | median | confidence interval | throughput | ratio to baseline |"
        )?;
        writeln!(r, "|---|---:|---:|---|---:|---:|")?;
        for b in &rows {
            let reference = if base.is_empty() {
                rows.first()
            } else {
                find(benches, &base, &b.param)
            };
            let ratio = match reference {
                Some(x) if std::ptr::eq(x, b) => "1.00 *".to_string(),
                _ if !base.is_empty() && b.function == base => "1.00 *".to_string(),
                Some(x) => format!("{:.2}", b.median / x.median),
                None => "—".into(),
            };
            let tput = b
                .bytes
                .map(|n| format!("{}/s", bytes((n as f64 / (b.median / 1e9)) as u64)))
                .unwrap_or_else(|| "—".into());
            writeln!(
                r,
                "| `{}` | {} | {} | {} – {} ({:.0} %) | {} | {} |",
                if b.function.is_empty() {
                    group
                } else {
                    &b.function
                },
                if b.param.is_empty() { "—" } else { &b.param },
                time(b.median),
                time(b.lower),
                time(b.upper),
                b.confidence * 100.0,
                tput,
                ratio
            )?;
        }
    }

    charts(&mut r, root)?;

    writeln!(r)?;
    writeln!(r, "## Sizes")?;
    writeln!(r)?;
    match sizes {
        None => writeln!(r, "No sizes: `scripts/sizes.sh` was not run.")?,
        Some(sizes) => {
            writeln!(
                r,
                "From `scripts/sizes.sh`; the built files are unchanged, the last \
                 column is what `wasm-opt -Oz` (binaryen) would make of each guest. \
                 The release host is built in `bench-peers/` with the benches \
                 (rustc 1.96, the wasmtime above, with the features Extism turns on \
                 in it); the `dist` host, the one to ship, \
                 at the root with the project's own toolchain (rustc 1.95, wasmtime \
                 48), and only when asked for (`SIZES_DIST=1`)."
            )?;
            writeln!(r)?;
            writeln!(r, "| file | bytes | size | after `wasm-opt -Oz` |")?;
            writeln!(r, "|---|---:|---:|---:|")?;
            for (name, n, opt) in sizes {
                let opt = match opt.parse::<u64>() {
                    Ok(o) => format!("{} ({})", o, bytes(o)),
                    Err(_) if opt == "component" => "— (component)".into(),
                    Err(_) => "—".into(),
                };
                writeln!(r, "| `{name}` | {n} | {} | {opt} |", bytes(*n))?;
            }
        }
    }

    writeln!(r)?;
    writeln!(r, "## Goals")?;
    writeln!(r)?;
    writeln!(r, "| goal | measured | holds |")?;
    writeln!(r, "|---|---|---|")?;
    goals(&mut r, groups, sizes)?;
    Ok(r)
}

/// Criterion's summary charts, copied next to the report as
/// `bench/<group>.svg`: the line chart (time against the parameter, one line
/// per function, log scales) where criterion drew one, else the violin plot
/// (each benchmark's time distribution; criterion draws no line chart for a
/// group mixing functions with and without a parameter, like `per_call`).
const CHARTS: [(&str, &str); 2] = [
    ("per_call", "Per-call cost by ABI and name size"),
    (
        "arrow_echo",
        "Round trip by size (x: bytes of the IPC stream of 1 to 1 M rows): memcpy, Arrow echo (core module, component), one C string per row",
    ),
];

fn charts(r: &mut String, root: &Path) -> Result<()> {
    let mut found = Vec::new();
    for (group, title) in CHARTS {
        let report = root.join(format!("{CRITERION}/{group}/report"));
        let Some(svg) = ["lines.svg", "violin.svg"]
            .iter()
            .map(|f| report.join(f))
            .find(|p| p.is_file())
        else {
            continue;
        };
        let dest = root.join(format!("bench/{group}.svg"));
        fs::create_dir_all(root.join("bench"))?;
        fs::copy(&svg, &dest).with_context(|| format!("copying {}", svg.display()))?;
        let rel = svg.strip_prefix(root).unwrap_or(&svg).display().to_string();
        found.push((group, title, rel));
    }
    writeln!(r)?;
    writeln!(r, "## Charts")?;
    writeln!(r)?;
    if found.is_empty() {
        writeln!(r, "No charts: criterion's SVG reports were not found.")?;
        return Ok(());
    }
    writeln!(
        r,
        "Criterion's own charts of this run, copied from its reports."
    )?;
    for (group, title, rel) in found {
        writeln!(r)?;
        writeln!(r, "**{title}** (`{group}`, from `{rel}`)")?;
        writeln!(r)?;
        writeln!(r, "![{group}]({group}.svg)")?;
    }
    Ok(())
}

/// `name version` of the runtimes in a Cargo.lock.
fn versions(lock: &Path) -> String {
    let Ok(text) = fs::read_to_string(lock) else {
        return "versions unknown".into();
    };
    let mut found = Vec::new();
    let mut name = "";
    for line in text.lines() {
        if let Some(n) = line.strip_prefix("name = ") {
            name = n.trim_matches('"');
        } else if let Some(v) = line.strip_prefix("version = ") {
            if ["extism", "extism-pdk", "wasmtime"].contains(&name) {
                found.push(format!("{name} {}", v.trim_matches('"')));
            }
        }
    }
    found.join(", ")
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "**no**"
    }
}

fn goals(
    r: &mut String,
    groups: &BTreeMap<String, (PathBuf, Vec<Bench>)>,
    sizes: Option<&[Size]>,
) -> Result<()> {
    // Greeter: ours at most half of Extism's, at every size.
    match groups.get("peers_greet") {
        Some((_, b)) => {
            let mut params: Vec<&str> = b.iter().map(|x| x.param.as_str()).collect();
            params.sort_by_key(|p| param_key(p));
            params.dedup();
            let mut all = true;
            let mut parts = Vec::new();
            for p in params {
                if let (Some(o), Some(x)) = (find(b, "wasm_app_rust_abi", p), find(b, "extism", p))
                {
                    let ratio = o.median / x.median;
                    all &= ratio <= 0.5;
                    parts.push(format!(
                        "{p} B: {} vs {} ({ratio:.2}×)",
                        time(o.median),
                        time(x.median)
                    ));
                }
            }
            writeln!(
                r,
                "| our greeter per call ≤ ½ of Extism's (every name size) | {} | {} |",
                parts.join("; "),
                yes(all && !parts.is_empty())
            )?;
        }
        None => writeln!(
            r,
            "| our greeter per call ≤ ½ of Extism's | not measured | — |"
        )?,
    }
    // Arrow echo: ours faster at the largest size.
    let largest = groups.get("peers_echo").and_then(|(_, b)| {
        let p = b.iter().map(|x| &x.param).max_by_key(|p| param_key(p))?;
        Some((
            p.clone(),
            find(b, "wasm_app_echo", p)?,
            find(b, "extism_echo", p)?,
        ))
    });
    match largest {
        Some((p, o, x)) => writeln!(
            r,
            "| our Arrow echo faster than Extism's at the largest size | {p} rows: {} vs {} ({:.2}×) | {} |",
            time(o.median),
            time(x.median),
            o.median / x.median,
            yes(o.median < x.median)
        )?,
        None => writeln!(r, "| our Arrow echo faster than Extism's | not measured | — |")?,
    }
    // Arrow echo at most 3x memcpy of the same IPC bytes, at 1 M rows.
    let echo = groups.get("arrow_echo").and_then(|(_, b)| {
        Some((
            find(b, "echo", "1000000")?,
            find(b, "memcpy_ipc", "1000000")?,
        ))
    });
    match echo {
        Some((e, m)) => writeln!(
            r,
            "| Arrow echo ≤ 3× memcpy of the IPC bytes (1 M rows) | {} vs {} ({:.2}×) | {} |",
            time(e.median),
            time(m.median),
            e.median / m.median,
            yes(e.median <= 3.0 * m.median)
        )?,
        None => writeln!(
            r,
            "| Arrow echo ≤ 3× memcpy (1 M rows) | not measured | — |"
        )?,
    }
    // Where one Arrow batch overtakes one C string per row.
    if let Some((_, b)) = groups.get("arrow_echo") {
        let mut params: Vec<&str> = b.iter().map(|x| x.param.as_str()).collect();
        params.sort_by_key(|p| param_key(p));
        params.dedup();
        let parts: Vec<String> = params
            .iter()
            .filter_map(|p| {
                let e = find(b, "echo", p)?;
                let c = find(b, "c_string_per_row", p)?;
                Some(format!("{p}: {:.2}×", c.median / e.median))
            })
            .collect();
        if !parts.is_empty() {
            writeln!(
                r,
                "| (crossover) per-row C strings over one Arrow echo, by rows | {} | — |",
                parts.join("; ")
            )?;
        }
    }
    // tokenize: 2 threads at least 1.8x faster than 1.
    let threads = groups
        .get("tokenize_threads")
        .and_then(|(_, b)| Some((find(b, "", "1")?, find(b, "", "2")?)));
    match threads {
        Some((one, two)) => writeln!(
            r,
            "| `tokenize` on 2 threads ≥ 1.8× one thread's throughput | {} vs {} ({:.2}×) | {} |",
            time(one.median),
            time(two.median),
            one.median / two.median,
            yes(one.median >= 1.8 * two.median)
        )?,
        None => writeln!(r, "| `tokenize` 2 threads ≥ 1.8× | not measured | — |")?,
    }
    let size_goals: [(&str, &str, u64, &str); 4] = [
        (
            "wasm-app (host, release",
            "host binary ≤ 12 MiB (`--release`)",
            12 * MIB,
            "wasm-app",
        ),
        (
            "wasm-app (host, dist",
            "host binary ≤ 12 MiB (`--profile dist`)",
            12 * MIB,
            "wasm-app",
        ),
        (
            "wasm_module2.wasm",
            "wasm-module2 ≤ 1 MiB",
            MIB,
            "wasm_module2.wasm",
        ),
        (
            "wasm_module1.wasm",
            "wasm-module1 ≤ 100 KiB",
            100 * KIB,
            "wasm_module1.wasm",
        ),
    ];
    for (prefix, goal, limit, label) in size_goals {
        match sizes.and_then(|s| s.iter().find(|(n, _, _)| n.starts_with(prefix))) {
            Some((_, n, opt)) => {
                let after = opt
                    .parse::<u64>()
                    .map(|o| format!(" (after `wasm-opt -Oz`: {}, {})", o, yes(o <= limit)))
                    .unwrap_or_default();
                writeln!(
                    r,
                    "| {goal} | `{label}` {n} B = {}{after} | {} |",
                    bytes(*n),
                    yes(*n <= limit)
                )?;
            }
            None => writeln!(r, "| {goal} | not measured | — |")?,
        }
    }
    Ok(())
}
