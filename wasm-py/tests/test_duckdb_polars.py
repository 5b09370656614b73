"""A module from SQL (DuckDB) and from data frames (Polars), through the
Arrow C Stream Interface: the engines' own Arrow goes in, the module's
Arrow comes back, no IPC in between.
"""

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pytest

import wasm_study
from conftest import documents, sorted_table


@pytest.fixture(scope="module")
def plugin(module2):
    return wasm_study.Plugin(module2, max_memory="64MiB", timeout=10)


def test_duckdb_scalar_udf(plugin):
    """A SQL function whose work the module does, batch by batch: the
    module's `replace` gives (row, value) for the rows it changed."""

    def redact(texts: pa.ChunkedArray) -> pa.Array:
        texts = texts.combine_chunks() if isinstance(texts, pa.ChunkedArray) else texts
        batch = pa.table({"text": texts})
        changed = plugin.process("replace", batch, {"column": "text", "from": "wasm", "to": "****"})
        out = texts.to_pylist()
        for row, value in zip(changed.column("row").to_pylist(), changed.column("value").to_pylist()):
            out[row] = value
        return pa.array(out, pa.string())

    con = duckdb.connect()
    con.create_function("redact", redact, [duckdb.sqltype("VARCHAR")], duckdb.sqltype("VARCHAR"), type="arrow")
    docs = documents(3000)
    con.register("docs", docs)
    rows = con.sql("select id, redact(content) as r, content from docs order by id").fetchall()
    assert len(rows) == 3000
    assert all(r == c.replace("wasm", "****") for _, r, c in rows)
    assert any("****" in r for _, r, _ in rows)


def test_duckdb_sql_over_a_module_table(plugin):
    """A query's result into the module, the module's stream back into SQL."""
    docs = documents(2000)
    con = duckdb.connect()
    con.register("docs", docs)
    query = con.sql("select id, content from docs where id % 2 = 0")
    tokens = plugin.process_stream("tokenize", query, {"column": "content"})  # noqa: F841 (scanned by name)
    got = con.sql("select token, count(*) as n from tokens group by token order by token").fetchall()
    # The same count from the module's result read whole in pyarrow.
    even = docs.filter(pc.equal(pc.bit_wise_and(docs.column("id"), 1), 0))
    whole = plugin.process("tokenize", even, {"column": "content"})
    want = sorted(whole.group_by("token").aggregate([("token", "count")]).to_pylist(), key=lambda r: r["token"])
    assert got == [(r["token"], r["token_count"]) for r in want]


def test_polars_frame_and_lazy_map_batches(plugin):
    docs = documents(1000)
    frame = pl.from_arrow(docs)
    # Polars hands strings over as string_view; the binding casts them.
    out = plugin.process("tokenize", frame, {"column": "content"})
    want = plugin.process("tokenize", docs, {"column": "content"})
    assert sorted_table(out, ["doc_id", "position"]) == sorted_table(want, ["doc_id", "position"])

    def tokenize(df: pl.DataFrame) -> pl.DataFrame:
        return pl.from_arrow(plugin.process("tokenize", df, {"column": "content"}))

    schema = {"doc_id": pl.UInt64, "position": pl.UInt32, "token": pl.String}
    lazy = frame.lazy().filter(pl.col("id") < 500).map_batches(tokenize, schema=schema)
    got = lazy.collect().to_arrow().cast(want.schema)
    first = docs.filter(pc.less(docs.column("id"), 500))
    want = plugin.process("tokenize", first, {"column": "content"})
    assert got.num_rows > 500
    assert sorted_table(got, ["doc_id", "position"]) == sorted_table(want, ["doc_id", "position"])
