"""The Python API over real guests: results equal the CLI's, the policy is
enforced, every guest failure is a typed exception, and calls release the
GIL, share a Plugin between threads, pickle, and refuse to run after a fork.
"""

import multiprocessing
import pickle
import threading
import time

import pyarrow as pa
import pyarrow.ipc
import pytest

import wasm_study
from conftest import cli_process, documents, sorted_table

# A pair-ABI guest (README, "The ABI"): `upper` returns its input in upper
# case (ASCII), in place; `grow` asks for 1 GiB of memory; `spin` never
# returns.
PAIR = b"""(module
  (memory (export "memory") 1)
  (global $top (mut i32) (i32.const 1024))
  (func (export "wasm_allocate") (param $n i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $top))
    (global.set $top (i32.add (global.get $top) (local.get $n)))
    (if (i32.gt_u (global.get $top) (i32.mul (memory.size) (i32.const 65536)))
      (then (drop (memory.grow (i32.add (i32.shr_u (local.get $n) (i32.const 16)) (i32.const 1))))))
    (local.get $p))
  (func (export "wasm_deallocate") (param i32) (result i32) (i32.const 0))
  (func (export "upper") (param $p i32) (param $n i32) (result i32)
    (local $i i32) (local $c i32)
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (local.set $c (i32.load8_u (i32.add (local.get $p) (local.get $i))))
      (if (i32.and (i32.ge_u (local.get $c) (i32.const 97)) (i32.le_u (local.get $c) (i32.const 122)))
        (then (i32.store8 (i32.add (local.get $p) (local.get $i)) (i32.sub (local.get $c) (i32.const 32)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    ;; the pair (ptr, len) at address 16 (0 would mean an error)
    (i32.store (i32.const 16) (local.get $p))
    (i32.store (i32.const 20) (local.get $n))
    (i32.const 16))
  (func (export "spin") (param i32 i32) (result i32)
    (loop (br 0))
    (i32.const 0))
  (func (export "grow") (param i32 i32) (result i32)
    (drop (memory.grow (i32.const 16384)))
    (unreachable)))
"""


def test_process_equals_the_cli(module2, cli, tmp_path):
    table = documents(500)
    path = tmp_path / "in.arrow"
    with pa.ipc.new_file(path, table.schema) as w:
        w.write_table(table, max_chunksize=100)
    expected = cli_process(cli, module2, "tokenize", [path], {"column": "content"}, tmp_path)
    plugin = wasm_study.Plugin(module2, max_memory="64MiB", timeout=10)
    got = plugin.process("tokenize", table, {"column": "content"})
    assert got.num_rows > table.num_rows
    assert got.schema == expected.schema
    assert sorted_table(got, ["doc_id", "position"]) == sorted_table(expected, ["doc_id", "position"])


def test_process_takes_every_arrow_producer(module2):
    table = documents(50)
    plugin = wasm_study.Plugin(module2)
    want = plugin.process("echo", table)
    assert want == table
    batch = table.combine_chunks().to_batches()[0]
    for data in [batch, pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=7))]:
        assert plugin.process("echo", data) == table
    with pytest.raises(TypeError, match="__arrow_c_stream__"):
        plugin.process("echo", [1, 2, 3])


def test_views_are_cast_for_the_guest(module2):
    """string_view (Polars, DataFusion) would be refused in the guest's echo."""
    table = pa.table({"id": pa.array([1, 2], pa.uint64()), "content": pa.array(["x y", None], pa.string_view())})
    out = wasm_study.Plugin(module2).process("echo", table)
    assert out.schema.field("content").type == pa.string()
    assert out.column("content").to_pylist() == ["x y", None]


def test_stream_equals_the_cli_and_merges_state(module2, cli, tmp_path):
    table = documents(3000)
    path = tmp_path / "in.arrow"
    with pa.ipc.new_file(path, table.schema) as w:
        w.write_table(table)
    plugin = wasm_study.Plugin(module2)
    reader = plugin.process_stream("tokenize", table, {"column": "content"}, threads=2, batch_size=256)
    assert isinstance(reader, pa.RecordBatchReader)
    got = reader.read_all()
    expected = cli_process(cli, module2, "tokenize", [path], {"column": "content"}, tmp_path)
    assert got == expected  # ordered, as the CLI
    # `count` keeps state per instance: two threads, one merged total.
    counts = plugin.process_stream("count", table, threads=2, batch_size=256).read_all()
    assert counts.num_rows == 1
    assert counts.column("rows").to_pylist() == [3000]


def test_stream_reads_a_python_generator(module2):
    """The pipeline's thread pulls from a generator that needs the GIL while
    Python waits for its output: no deadlock."""
    schema = documents(1).schema

    def batches():
        for i in range(20):
            yield documents(10, seed=i * 10).to_batches()[0]

    reader = pa.RecordBatchReader.from_batches(schema, batches())
    out = wasm_study.Plugin(module2).process_stream("echo", reader, batch_size=10)
    assert sum(b.num_rows for b in out) == 200


def test_stream_errors_are_typed(module2):
    plugin = wasm_study.Plugin(module2)
    with pytest.raises(wasm_study.GuestError, match="column") as e:
        plugin.process_stream("tokenize", documents(10))  # no `column` config
    assert "column" in e.value.guest_message
    with pytest.raises(wasm_study.InvalidArgument):
        plugin.process_stream("echo", documents(10), threads=0)


def test_greet_both_abis(module1):
    plugin = wasm_study.Plugin(module1)
    assert plugin.greet("Ada") == plugin.greet("Ada", abi="c")
    assert "Ada" in plugin.greet("Ada")
    with pytest.raises(wasm_study.InvalidArgument):
        plugin.greet("Ada", abi="cobol")


def test_call_bytes_and_errors():
    plugin = wasm_study.Plugin(PAIR, name="pair.wat", max_memory="1MiB")
    assert plugin.call("upper", b"hello, wasm") == b"HELLO, WASM"
    assert plugin.call("upper", bytearray(b"abc")) == b"ABC"
    with pytest.raises(wasm_study.MissingExport) as e:
        plugin.call("lower", b"x")
    assert isinstance(e.value, AttributeError)
    with pytest.raises(wasm_study.LimitExceeded) as e:
        plugin.call("grow", b"")
    assert (e.value.limit, e.value.value) == ("memory", 1 << 20)
    # The instance was dropped, not the plugin: the next call works.
    assert plugin.call("upper", b"ok") == b"OK"


def test_policy_errors():
    with pytest.raises(wasm_study.InvalidPolicy, match="max_memory") as e:
        wasm_study.Plugin(PAIR, max_memory="12XB")
    assert isinstance(e.value, ValueError)
    with pytest.raises(wasm_study.InvalidPolicy, match="timeout"):
        wasm_study.Plugin(PAIR, timeout=-1)
    with pytest.raises(wasm_study.PolicyDenied, match="SHA-256") as e:
        wasm_study.Plugin(PAIR, sha256="00" * 32)
    assert isinstance(e.value, PermissionError)
    with pytest.raises(wasm_study.LoadError):
        wasm_study.Plugin(b"\0asm\x01\0\0\0garbage")
    with pytest.raises(wasm_study.LoadError):
        wasm_study.Plugin(b"(module")


def test_policy_file_then_arguments(tmp_path):
    """As the CLI: the file first, each argument over it."""
    policy = tmp_path / "policy.toml"
    policy.write_text('max-memory = "2MiB"\ntimeout = "2s"\nmax-module-size = "64KiB"\n')
    plugin = wasm_study.Plugin(PAIR, name="pair.wat", policy=policy, timeout="250ms")
    assert plugin.policy["max_memory"] == 2 << 20
    assert plugin.policy["timeout"] == (0, 250_000_000)
    with pytest.raises(wasm_study.LimitExceeded) as e:
        wasm_study.Plugin(PAIR + b" " * (64 << 10), name="big.wat", policy=policy)
    assert (e.value.limit, e.value.value) == ("module-size", 64 << 10)


def test_timeout_releases_the_gil():
    plugin = wasm_study.Plugin(PAIR, name="pair.wat", timeout=0.5)
    turns = 0
    stop = threading.Event()

    def count():
        nonlocal turns
        while not stop.is_set():
            turns += 1

    t = threading.Thread(target=count)
    t.start()
    start = time.monotonic()
    try:
        with pytest.raises(wasm_study.LimitExceeded) as e:
            plugin.call("spin", b"")
    finally:
        stop.set()
        t.join()
    assert (e.value.limit, e.value.value) == ("time", 0.5)
    assert time.monotonic() - start < 5
    assert turns > 1000, "the Python thread did not run during the call"


def test_threads_share_a_plugin(module2):
    plugin = wasm_study.Plugin(module2, max_instances=4)
    tables = [documents(2000, seed=i * 2000) for i in range(4)]
    want = [plugin.process("tokenize", t, {"column": "content"}) for t in tables]
    got = [None] * 4

    def work(i):
        for _ in range(3):
            got[i] = plugin.process("tokenize", tables[i], {"column": "content"})

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == want


def test_pickle_ships_bytes_and_policy(module2):
    plugin = wasm_study.Plugin(module2, max_memory="32MiB", timeout=3, env={"A": "1"})
    copy = pickle.loads(pickle.dumps(plugin))
    assert copy.sha256 == plugin.sha256
    assert copy.policy == plugin.policy
    assert copy.policy["sha256"] == plugin.sha256
    assert copy.policy["max_memory"] == 32 << 20
    table = documents(20)
    assert copy.process("echo", table) == table
    # Other bytes under the pickled policy are refused: it names the hash.
    restore, (name, module, policy, cache) = plugin.__reduce__()
    tampered = module[:-1] + bytes([module[-1] ^ 1])
    with pytest.raises(wasm_study.PolicyDenied):
        restore(name, tampered, policy, cache)


def _call_in_child(plugin, queue):
    try:
        plugin.call("upper", b"child")
        queue.put("ran")
    except wasm_study.WasmError as e:
        queue.put(f"{type(e).__name__}: {e}")


def test_a_forked_child_refuses_to_run():
    """Its timer threads did not survive the fork: no timeout could fire."""
    plugin = wasm_study.Plugin(PAIR, name="pair.wat")
    assert plugin.call("upper", b"parent") == b"PARENT"  # threads started
    for method, want in [("fork", "fork"), ("spawn", "ran")]:
        ctx = multiprocessing.get_context(method)
        queue = ctx.Queue()
        child = ctx.Process(target=_call_in_child, args=(plugin, queue))
        child.start()
        answer = queue.get(timeout=60)
        child.join(timeout=60)
        assert want in answer, (method, answer)
