"""The Python benchmarks of wasm_study (`make bench-python`), written to
bench/PYTHON.md. Every ratio is measured in one run on this machine.

1. Per-batch overhead: `plugin.process` from Python against the same call
   (`wasm_app::Plugin::process_table`) timed in Rust, in the same process,
   build and instance (`wasm_study._native._time_process`). The difference
   is the Python boundary: the C stream import, the result's export, the GIL.
2. Ray Data: `map_batches` of a module's `tokenize` over Parquet files on 2
   nodes of 1 CPU against 1 node of 1 CPU, and against 1 node of 2 CPUs (the
   same cores as the 2 nodes: what distribution itself costs).
3. Spark `mapInArrow` in `local[2]`: the module's `tokenize` against a pure
   pyarrow function doing the same work (checked equal on the data first).
4. `wasm-app serve`: `DoExchange` of `echo` from pyarrow's Flight client at
   1 k and 100 k rows per batch against the in-process call, and the
   throughput of 1, 2 and 4 clients at once.

Medians of several timed runs after a warm-up run. Data is generated here.
"""

import argparse
import datetime
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

import wasm_study
from wasm_study import _native

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "wasm-py" / "tests"))
import engines  # noqa: E402  (Ray and Spark as the tests run them)
from conftest import documents  # noqa: E402  (the tests' data, the same here)

CONFIG = {"column": "content"}


def module2() -> pathlib.Path:
    return pathlib.Path(os.environ.get("WASM_APP_MODULES", ROOT / "target" / "wasm-modules")) / "wasm_module2.wasm"


def median_time(f, runs: int) -> float:
    f()  # warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def fmt_time(s: float) -> str:
    if s < 1e-3:
        return f"{s * 1e6:.1f} µs"
    if s < 1:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.2f} s"


# --- 1. Python against Rust ------------------------------------------------


def python_vs_rust(out: list[str]) -> None:
    plugin = wasm_study.Plugin(module2(), max_memory="512MiB", timeout=60)
    out += [
        "## `plugin.process` from Python against the same call from Rust",
        "",
        "Rust: `Plugin::process_table` timed in a Rust loop (input imported once);",
        "Python: `plugin.process(command, table, config)` timed in Python (C stream",
        "import of the input, the call without the GIL, export of the result).",
        "Same process, same build (the dev profile of `make py`: dependencies at",
        "opt-level 3, wasm-app and wasm-py at 0), same instance, the two calls",
        "interleaved. Goal: within 10 % at 100 k rows.",
        "",
        "| command | rows | Rust | Python | Python / Rust | overhead per call |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for command, config in [("echo", None), ("tokenize", CONFIG)]:
        for rows, runs in [(1_000, 200), (100_000, 30)]:
            table = documents(rows)
            # Interleaved, one call each per round, so that drift (the
            # machine, the allocator's state) falls on both alike.
            plugin.process(command, table, config)
            rust_times, py_times = [], []
            for _ in range(runs):
                rust_times += _native._time_process(plugin, command, table, config, 1)
                start = time.perf_counter()
                plugin.process(command, table, config)
                py_times.append(time.perf_counter() - start)
            rust, py = statistics.median(rust_times), statistics.median(py_times)
            out.append(
                f"| `{command}` | {rows:,} | {fmt_time(rust)} | {fmt_time(py)} | "
                f"{py / rust:.3f}x | {fmt_time(max(py - rust, 0.0))} |"
            )
    out.append("")


# --- 2. Ray Data ------------------------------------------------------------


def ray_throughput(out: list[str], data_dir: pathlib.Path) -> None:
    files, rows = parquet_files(data_dir)
    plugin = wasm_study.Plugin(module2(), max_memory="256MiB", timeout=60)

    def tokenize(batch: pa.Table) -> pa.Table:
        return plugin.process("tokenize", batch, CONFIG)

    results = []
    for nodes, cpus in [(1, 1), (1, 2), (2, 1)]:
        with engines.ray_cluster(nodes, cpus, object_store=200 << 20) as ray:

            def job():
                ds = ray.data.read_parquet(files).repartition(2 * nodes * cpus)
                ds = ds.map_batches(tokenize, batch_format="pyarrow", num_cpus=1)
                return ds.materialize().count()

            secs = median_time(job, 3)
            results.append((nodes, cpus, secs))
    base = results[0][2]
    out += [
        "## Ray Data: `map_batches(tokenize)` on 1 and 2 nodes",
        "",
        f"{len(files)} Parquet files, {rows:,} rows in all, read, repartitioned and",
        "tokenized by the module on a local `ray.cluster_utils.Cluster` (each row",
        "count includes Ray's own scheduling; the machine has 2 cores).",
        "",
        "| nodes × CPUs | time | rows/s | throughput / 1 node × 1 CPU |",
        "|---|---:|---:|---:|",
    ]
    for nodes, cpus, secs in results:
        out.append(f"| {nodes} × {cpus} | {fmt_time(secs)} | {rows / secs:,.0f} | {base / secs:.2f}x |")
    out.append("")


def parquet_files(data_dir: pathlib.Path, n: int = 8, rows: int = 100_000):
    files = []
    for i in range(n):
        path = data_dir / f"docs-{i}.parquet"
        if not path.exists():
            pq.write_table(documents(rows, seed=i * rows), path)
        files.append(str(path))
    return files, n * rows


# --- 3. Spark mapInArrow ----------------------------------------------------


def pyarrow_tokenize(batch: pa.RecordBatch) -> pa.RecordBatch:
    """The module's `tokenize` in pyarrow: lowercased alphanumeric runs of
    `content`, numbered from 0 within each row."""
    lists = pc.split_pattern_regex(pc.utf8_lower(batch.column("content")), r"[^\p{L}\p{N}]+")
    flat = pc.list_flatten(lists)
    parents = pc.list_parent_indices(lists)
    keep = pc.not_equal(pc.utf8_length(flat), 0)
    flat, parents = flat.filter(keep), parents.filter(keep)
    p = parents.to_numpy()
    positions = np.arange(len(p)) - np.searchsorted(p, p, side="left")
    ids = pc.take(batch.column("id"), parents)
    return pa.RecordBatch.from_arrays(
        [ids.cast(pa.int64()), pa.array(positions, pa.int32()), flat.cast(pa.string())],
        names=["doc_id", "position", "token"],
    )


def spark_throughput(out: list[str], data_dir: pathlib.Path) -> None:
    files, rows = parquet_files(data_dir)
    plugin = wasm_study.Plugin(module2(), max_memory="256MiB", timeout=60)

    def module_tokenize(batches):
        for b in batches:
            for t in plugin.process("tokenize", b, CONFIG).to_batches():
                # Spark has no unsigned types: uint64/uint32 as int64/int32.
                yield t.cast(pa.schema([("doc_id", pa.int64()), ("position", pa.int32()), ("token", pa.string())]))

    def arrow_tokenize(batches):
        for b in batches:
            yield pyarrow_tokenize(b)

    # The two agree on this data, or the comparison means nothing.
    sample = documents(2000).to_batches()[0]
    a = pa.Table.from_batches(list(module_tokenize([sample])))
    b = pa.Table.from_batches([pyarrow_tokenize(sample)])
    assert a.equals(b.cast(a.schema)), "pyarrow_tokenize differs from the module's tokenize"

    schema = "doc_id long, position int, token string"
    with engines.spark_session(memory="2g") as spark:
        # Spark reads uint64 as decimal(20,0); give it signed ids.
        df = spark.read.parquet(*files).selectExpr("cast(id as long) as id", "content").repartition(2).cache()
        df.count()
        results = []
        for name, fn in [("module (`plugin.process`)", module_tokenize), ("pure pyarrow", arrow_tokenize)]:
            secs = median_time(lambda: df.mapInArrow(fn, schema).write.format("noop").mode("overwrite").save(), 3)
            results.append((name, secs))
    out += [
        "## Spark `mapInArrow`: the module against pure pyarrow",
        "",
        f"{rows:,} rows (cached, 2 partitions) through `mapInArrow` in `local[2]`, written",
        "to Spark's `noop` sink. The pyarrow function does the module's work",
        "(`tokenize`), checked equal to it first.",
        "",
        "| function | time | rows/s | time / pure pyarrow |",
        "|---|---:|---:|---:|",
    ]
    base = results[1][1]
    for name, secs in results:
        out.append(f"| {name} | {fmt_time(secs)} | {rows / secs:,.0f} | {secs / base:.2f}x |")
    out.append("")


def flight_vs_in_process(out: list[str], data_dir: pathlib.Path) -> None:
    import re
    import threading

    import pyarrow.flight as fl

    functions = data_dir / "functions.toml"
    functions.write_text(
        f"""[[function]]
name = "echo"
module = "{module2()}"
command = "echo"
args = [{{ name = "id", type = "uint64" }}, {{ name = "content", type = "utf8" }}]
returns = [{{ name = "id", type = "uint64" }}, {{ name = "content", type = "utf8" }}]
max-memory = "512MiB"
timeout = "60s"
"""
    )
    cli = pathlib.Path(os.environ.get("WASM_APP_BIN", ROOT / "target" / "debug" / "wasm-app"))
    server = subprocess.Popen(
        [str(cli), "serve", "--listen", "127.0.0.1:0", "--functions", str(functions), "--max-concurrent", "4"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = server.stderr.readline()
        location = "grpc://" + re.search(r"listening on (\S+)", line).group(1)
        plugin = wasm_study.Plugin(module2(), max_memory="512MiB", timeout=60)
        descriptor = fl.FlightDescriptor.for_path("echo")

        def exchange(client, batches, schema):
            writer, reader = client.do_exchange(descriptor)

            def write():
                writer.begin(schema)
                for b in batches:
                    writer.write_batch(b)
                writer.done_writing()

            t = threading.Thread(target=write)
            t.start()
            table = reader.read_all()
            t.join()
            writer.close()
            return table

        out += [
            "## `wasm-app serve`: Flight `DoExchange` against the in-process call",
            "",
            "`echo` of `id: uint64, content: utf8` rows. In process: `plugin.process` (wasm_study).",
            "Flight: pyarrow's `FlightClient` on loopback to `wasm-app serve` (the debug build",
            "`make test` makes: dependencies optimised, wasm-app itself at opt-level 0), one",
            "exchange per batch (a new gRPC stream each time), and 20 batches in one exchange.",
            "",
            "| rows per batch | in process | one exchange per batch | Flight / in process | 20 batches in one exchange, per batch |",
            "|---:|---:|---:|---:|---:|",
        ]
        client = fl.FlightClient(location)
        for rows, runs in [(1_000, 100), (100_000, 10)]:
            table = documents(rows)
            batch = table.combine_chunks().to_batches()[0]
            local = median_time(lambda: plugin.process("echo", batch), runs)
            remote = median_time(lambda: exchange(client, [batch], table.schema), runs)
            stream = median_time(lambda: exchange(client, [batch] * 20, table.schema), max(3, runs // 10)) / 20
            out.append(f"| {rows:,} | {fmt_time(local)} | {fmt_time(remote)} | {remote / local:.2f}x | {fmt_time(stream)} |")
        out += [
            "",
            "| clients at once | rows/s (100 k-row batches, 10 per client) | / 1 client |",
            "|---:|---:|---:|",
        ]
        table = documents(100_000)
        batch = table.combine_chunks().to_batches()[0]
        base = None
        for clients in [1, 2, 4]:
            conns = [fl.FlightClient(location) for _ in range(clients)]

            def all_clients():
                threads = [threading.Thread(target=exchange, args=(c, [batch] * 10, table.schema)) for c in conns]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()

            secs = median_time(all_clients, 3)
            rate = clients * 10 * 100_000 / secs
            base = base or rate
            out.append(f"| {clients} | {rate:,.0f} | {rate / base:.2f}x |")
        out.append("")
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["rust", "ray", "spark", "flight"], action="append")
    parser.add_argument("--output", default=str(ROOT / "bench" / "PYTHON.md"))
    args = parser.parse_args()
    parts = args.only or ["rust", "ray", "spark", "flight"]
    cpu = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"], capture_output=True, text=True)
    out = [
        "# Python benchmarks (wasm_study)",
        "",
        f"Written by `make bench-python` (`wasm-py/bench/bench.py`) on "
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC: "
        f"{cpu.stdout.strip()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"pyarrow {pa.__version__}. Medians after a warm-up run.",
        "",
    ]
    with tempfile.TemporaryDirectory(prefix="wasm-study-bench-") as d:
        if "rust" in parts:
            python_vs_rust(out)
        if "ray" in parts:
            ray_throughput(out, pathlib.Path(d))
        if "spark" in parts:
            spark_throughput(out, pathlib.Path(d))
        if "flight" in parts:
            flight_vs_in_process(out, pathlib.Path(d))
    pathlib.Path(args.output).write_text("\n".join(out))
    print("\n".join(out))


if __name__ == "__main__":
    main()
