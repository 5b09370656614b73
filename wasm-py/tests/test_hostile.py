"""What a guest, or an odd caller, cannot do to the Python side: lock up a
plugin's instances, pick which of the caller's code reads its output,
abort the interpreter at exit, hang a forked child, or slip past policy
validation.
"""

import multiprocessing
import subprocess
import sys
import textwrap
import threading
import time

import pyarrow as pa
import pytest

import wasm_study
from conftest import documents, guest_returning
from test_plugin import PAIR


def test_max_instances_never_locks_the_plugin(module2):
    """Idle instances hold max-instances slots: a call refused by the limit
    frees them and tries again, and failed calls give back no instance."""
    plugin = wasm_study.Plugin(module2, max_instances=1)
    table = documents(100)
    assert plugin.process("echo", table) == table
    # The stream makes its own instance while one sits idle.
    assert plugin.process_stream("echo", table).read_all() == table
    assert plugin.process("echo", table) == table

    pair = wasm_study.Plugin(PAIR, name="pair.wat", max_instances=2)
    for _ in range(20):  # bursts of 4 threads on 2 slots
        errors = []

        def call():
            try:
                pair.call("upper", b"x")
            except wasm_study.LimitExceeded as e:
                errors.append(e.limit)

        threads = [threading.Thread(target=call) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert set(errors) <= {"instances"}
        # After each burst, nothing runs: a call must find a slot.
        assert pair.call("upper", b"ok") == b"OK"


def test_extension_metadata_from_a_guest_is_dropped():
    """A guest tagging its column as an extension type must not choose which
    deserializer pyarrow runs on its bytes (nor make the export fail)."""
    tagged = pa.field("x", pa.int64(), metadata={"ARROW:extension:name": "arrow.json", "note": "kept"})
    nested = pa.field("l", pa.list_(pa.field("item", pa.int64(), metadata={"ARROW:extension:name": "arrow.uuid"})))
    table = pa.table([pa.array([1, 2]), pa.array([[1], []])], schema=pa.schema([tagged, nested]))
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    plugin = wasm_study.Plugin(guest_returning(sink.getvalue().to_pybytes()), name="tagged.wat")
    out = plugin.process("echo", documents(3))
    assert out.schema.field("x").type == pa.int64()
    assert out.schema.field("x").metadata == {b"note": b"kept"}
    assert out.schema.field("l").type == pa.list_(pa.int64())
    assert out.column("x").to_pylist() == [1, 2, 1, 2]  # data call + flush call
    stream = plugin.process_stream("echo", documents(3)).read_all()
    assert stream.schema.field("x").type == pa.int64()


def test_a_batch_that_breaks_its_stream_is_an_error_not_a_panic(module2):
    """pyarrow lets a generator yield a batch of another schema; arrow-rs's
    import panics on it. That must be a WasmError, not a PanicException."""
    schema = documents(1).schema

    def batches():
        yield documents(5).to_batches()[0]
        yield pa.record_batch({"other": [1.5]})

    plugin = wasm_study.Plugin(module2)
    with pytest.raises(wasm_study.WasmError, match="input stream"):
        plugin.process("echo", pa.RecordBatchReader.from_batches(schema, batches()))
    with pytest.raises(wasm_study.WasmError):
        plugin.process_stream("echo", pa.RecordBatchReader.from_batches(schema, batches()), batch_size=5).read_all()


def test_exit_with_an_unfinished_stream_over_a_generator(module2):
    """The stream's thread must not call into a finalizing interpreter (that
    aborts the process)."""
    script = textwrap.dedent(
        f"""
        import itertools, pyarrow as pa, wasm_study
        batch = pa.record_batch({{"id": pa.array([1], pa.uint64()), "content": ["a b"]}})
        def endless():
            for _ in itertools.count():
                yield batch
        plugin = wasm_study.Plugin({str(module2)!r})
        reader = plugin.process_stream("echo", pa.RecordBatchReader.from_batches(batch.schema, endless()), batch_size=1)
        reader.read_next_batch()
        print("exiting")
        """
    )
    for _ in range(3):
        run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stderr[-2000:]
        assert "exiting" in run.stdout


def _in_child(job, queue):
    start = time.monotonic()
    try:
        job()
        queue.put(("ran", time.monotonic() - start))
    except wasm_study.WasmError as e:
        queue.put((str(e), time.monotonic() - start))


def _load_new_module():
    wasm_study.Plugin(PAIR + b" ;; another module, not in the cache " + str(time.time()).encode(), name="new.wat")


def test_forked_child_cannot_compile_or_read_a_parent_stream(module2):
    plugin = wasm_study.Plugin(PAIR, name="pair.wat")
    plugin.call("upper", b"x")  # the library's threads run
    stream = wasm_study.Plugin(module2).process_stream("echo", documents(2000), batch_size=10)
    ctx = multiprocessing.get_context("fork")
    for job in [_load_new_module, stream.read_all]:
        queue = ctx.Queue()
        child = ctx.Process(target=_in_child, args=(job, queue))
        child.start()
        answer, took = queue.get(timeout=60)
        child.join(timeout=60)
        assert "fork" in answer, answer
        assert took < 5, took
    # The parent's stream is whole.
    assert stream.read_all().num_rows == 2000


@pytest.mark.parametrize(
    "kwargs",
    [
        {"timeout": True},
        {"max_memory": False},
        {"fuel": -1},
        {"fuel": 2**64},
        {"max_instances": 2**32},
        {"max_instances": 1.5},
        {"env": {"A=B": "x"}},
        {"env": {"": "x"}},
        {"env": {"A": "x\0y"}},
    ],
)
def test_policy_arguments_are_validated(kwargs):
    with pytest.raises(wasm_study.InvalidPolicy):
        wasm_study.Plugin(PAIR, name="pair.wat", **kwargs)
