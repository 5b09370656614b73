"""A sandboxed module as a Spark ``mapInArrow`` transform, on local Spark.

Proves that a ``wasm_study.Plugin`` pickles to PySpark's Python workers,
that it runs there under the driver's policy (its limits are enforced in the
worker process, not just carried along), and that tokenizing Parquet files
with ``df.mapInArrow`` gives the rows the ``wasm-app process`` CLI gives on
the same files.
"""

import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import wasm_study
import engines
from conftest import cli_process, documents, sorted_table

pytestmark = pytest.mark.timeout(300)

MAX_MEMORY = 64 << 20
# Spark reads a Parquet uint64 as decimal(20,0), which tokenize refuses as an
# id: the files hold `id` as int64, and the config names it.
CONFIG = {"column": "content", "id": "id"}
# Spark has no unsigned types: the transform casts tokenize's uint64/uint32
# to the signed types of the same width (pyarrow's safe cast would raise on
# an overflow, not wrap), and the CLI's result is cast the same way.
SPARK_SCHEMA = "doc_id long, position int, token string"
ARROW_SCHEMA = pa.schema([("doc_id", pa.int64()), ("position", pa.int32()), ("token", pa.string())])


@pytest.fixture(scope="module")
def spark():
    """A local Spark session with 2 worker threads."""
    with engines.spark_session() as session:
        yield session


@pytest.fixture(scope="module")
def parquet_files(tmp_path_factory):
    """Three Parquet files of `id: int64, content: utf8`, ids unique across files."""
    d = tmp_path_factory.mktemp("spark-docs")
    files = []
    for i, n in enumerate((700, 500, 900)):
        t = documents(n, seed=i * 1000)
        t = t.set_column(0, "id", t.column("id").cast(pa.int64()))
        path = d / f"docs-{i}.parquet"
        pq.write_table(t, path)
        files.append(str(path))
    return files


def test_tokenize_map_in_arrow_equals_cli(spark, parquet_files, module2, cli, tmp_path):
    plugin = wasm_study.Plugin(module2, max_memory="64MiB", timeout=10)
    driver_pid = os.getpid()

    # A closure: cloudpickle ships it by value with `plugin` (module bytes +
    # policy) to the Python workers.
    def tokenize(batches):
        assert plugin.policy["max_memory"] == MAX_MEMORY, plugin.policy
        assert os.getpid() != driver_pid  # a worker process, not the driver
        for batch in batches:
            out = plugin.process("tokenize", batch, CONFIG).cast(ARROW_SCHEMA)
            yield from out.to_batches()

    df = spark.read.parquet(*parquet_files)
    assert dict(df.dtypes)["id"] == "bigint"
    result = df.repartition(2).mapInArrow(tokenize, SPARK_SCHEMA).toArrow()

    expected = cli_process(cli, module2, "tokenize", parquet_files, CONFIG, tmp_path)
    assert [(f.name, f.type) for f in expected.schema] == [
        ("doc_id", pa.uint64()),
        ("position", pa.uint32()),
        ("token", pa.string()),
    ]
    expected = sorted_table(expected.cast(ARROW_SCHEMA), ["doc_id", "position"])
    got = sorted_table(result, ["doc_id", "position"])
    # Same names and types; nullability differs (the guest declares its
    # columns not null, Spark's schema string makes them nullable), so
    # compare the values column by column and check that no nulls crept in.
    assert [(f.name, f.type) for f in got.schema] == [(f.name, f.type) for f in expected.schema]
    assert got.num_rows == expected.num_rows > 2000
    for name in expected.column_names:
        assert got.column(name).null_count == 0, name
        assert got.column(name).equals(expected.column(name)), name


def test_limits_hold_in_spark_workers(spark, parquet_files, module2):
    """A plugin whose policy is too tight for the data fails inside the
    worker: the policy travels with the pickle and the worker's host
    enforces it."""
    # 16 KiB of output: enough for 10 documents, not for all 2100.
    tight = wasm_study.Plugin(module2, max_output="16KiB", timeout=10)
    driver_pid = os.getpid()

    def run(batches):
        table = pa.Table.from_batches(list(batches))
        if table.num_rows == 0:
            return
        small = tight.process("tokenize", table.slice(0, 10), CONFIG).num_rows
        try:
            tight.process("tokenize", table, CONFIG)
            limit, message = "", "no error"
        except wasm_study.LimitExceeded as e:
            limit, message = e.limit, str(e)
        yield pa.RecordBatch.from_pydict(
            {"pid": [os.getpid()], "small": [small], "limit": [limit], "message": [message]}
        )

    # One partition holding all the rows, so one call sees them all.
    df = spark.read.parquet(*parquet_files).coalesce(1)
    rows = df.mapInArrow(run, "pid long, small long, limit string, message string").collect()
    assert len(rows) == 1
    assert rows[0]["pid"] != driver_pid
    assert rows[0]["small"] > 0
    assert rows[0]["limit"] == "output", rows[0]["message"]
