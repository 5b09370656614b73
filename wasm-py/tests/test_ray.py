"""A sandboxed module as a Ray Data transform, on a 2-node local Ray cluster.

Proves that a ``wasm_study.Plugin`` pickles to Ray workers on both nodes of a
cluster, that each worker still runs the module under the driver's policy
(its limits are enforced there, not just carried along), and that tokenizing
Parquet files with ``ray.data ... map_batches`` gives exactly the rows the
``wasm-app process`` CLI gives on the same files.
"""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import wasm_study
import engines
from conftest import cli_process, documents, sorted_table

pytestmark = pytest.mark.timeout(300)

MAX_MEMORY = 64 << 20
CONFIG = {"column": "content"}


@pytest.fixture(scope="module")
def ray_cluster():
    """Two Ray nodes of 1 CPU each on this machine, with the driver attached."""
    with engines.ray_cluster(nodes=2, cpus=1) as ray:
        yield ray


@pytest.fixture(scope="module")
def parquet_files(tmp_path_factory):
    """Three Parquet files of `id: uint64, content: utf8`, ids unique across files."""
    d = tmp_path_factory.mktemp("ray-docs")
    files = []
    for i, n in enumerate((700, 500, 900)):
        path = d / f"docs-{i}.parquet"
        pq.write_table(documents(n, seed=i * 1000), path)
        files.append(str(path))
    return files


def test_tokenize_on_two_nodes_equals_cli(ray_cluster, parquet_files, module2, cli, tmp_path):
    ray = ray_cluster
    plugin = wasm_study.Plugin(module2, max_memory="64MiB", timeout=10)

    # A closure, not a module-level function: cloudpickle ships closures by
    # value, while this test module is not importable on the workers.
    def tokenize(batch: pa.Table) -> pa.Table:
        # `plugin` arrived pickled (module bytes + policy); check it kept its
        # policy, then record which node did the work.
        assert plugin.policy["max_memory"] == MAX_MEMORY, plugin.policy
        out = plugin.process("tokenize", batch, CONFIG)
        node = ray.get_runtime_context().get_node_id()
        return out.append_column("node", pa.array([node] * out.num_rows, pa.string()))

    # 4 blocks for tasks of 1 CPU each, on nodes of 1 CPU each: two tasks
    # running at once run on two nodes. (scheduling_strategy="SPREAD" would
    # say it directly, but Ray 2.60 deprecates passing it to map_batches.)
    ds = (
        ray.data.read_parquet(parquet_files)
        .repartition(4)
        .map_batches(tokenize, batch_format="pyarrow", num_cpus=1)
    )
    result = pa.concat_tables(ray.get(ds.to_arrow_refs()))

    nodes = set(result.column("node").to_pylist())
    assert len(nodes) == 2, f"work ran on {len(nodes)} node(s), expected 2: {nodes}"
    assert nodes <= {n["NodeID"] for n in ray.nodes() if n["Alive"]}

    expected = sorted_table(cli_process(cli, module2, "tokenize", parquet_files, CONFIG, tmp_path), ["doc_id", "position"])
    got = sorted_table(result.drop_columns(["node"]), ["doc_id", "position"])
    # Same names and types; nullability may differ (the guest declares its
    # columns not null, the engine may not keep that), so compare the values
    # column by column and check that no nulls crept in.
    assert [(f.name, f.type) for f in got.schema] == [(f.name, f.type) for f in expected.schema]
    assert got.num_rows == expected.num_rows > 2000
    for name in expected.column_names:
        assert got.column(name).null_count == 0, name
        assert got.column(name).equals(expected.column(name)), name


def test_limits_hold_on_each_ray_node(ray_cluster, module2):
    """A plugin whose policy is too tight for the data fails on the worker, on
    both nodes: the policy travels with the pickle and the worker's host
    enforces it."""
    ray = ray_cluster
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    # 16 KiB of output: enough for 10 documents, not for 2000.
    tight = wasm_study.Plugin(module2, max_output="16KiB", timeout=10)
    docs = documents(2000)

    @ray.remote(num_cpus=1)
    def run(plugin, table):
        node = ray.get_runtime_context().get_node_id()
        small = plugin.process("tokenize", table.slice(0, 10), CONFIG).num_rows
        try:
            plugin.process("tokenize", table, CONFIG)
        except wasm_study.LimitExceeded as e:
            return node, small, e.limit, str(e)
        return node, small, None, "no error"

    node_ids = [n["NodeID"] for n in ray.nodes() if n["Alive"]]
    assert len(node_ids) == 2
    refs = [
        run.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False)).remote(tight, docs)
        for node_id in node_ids
    ]
    results = ray.get(refs, timeout=120)
    assert [r[0] for r in results] == node_ids
    for _, small, limit, message in results:
        assert small > 0
        assert limit == "output", message
