"""Untrusted WebAssembly modules, sandboxed by policy, fed with Arrow data.

The Python face of wasm-app: the same host library and policy as the
``wasm-app`` CLI, with Arrow data crossing through the Arrow C Stream
Interface (no IPC, no copy on the Python side)::

    import pyarrow as pa
    import wasm_study

    plugin = wasm_study.Plugin("target/wasm-modules/wasm_module2.wasm",
                               max_memory="64MiB", timeout=5)
    table = pa.table({"id": pa.array([1, 2], pa.uint64()),
                      "text": ["a b", "c"]})
    tokens = plugin.process("tokenize", table, {"column": "text"})

``Plugin(module, *, policy=None, max_memory=None, max_output=None,
timeout=None, fuel=None, max_instances=None, dirs=(), dirs_rw=(), env={},
sha256=None, allowed_hosts=(), host_functions=(), cache=True, name=None)``
    ``module`` is a path or the bytes of a ``.wasm`` / ``.wat`` module.
    ``policy`` is a TOML policy file; the other arguments override it, as
    the CLI's flags do, with the CLI's defaults. Sizes are bytes or strings
    such as ``"64MiB"``; durations are seconds or strings such as
    ``"500ms"``; a directory grant is ``"HOST[::GUEST]"``, a path or a
    ``(host, guest)`` pair; ``allowed_hosts`` are ``"HOST[:PORT]"`` grants
    (``--allow-host``) and ``host_functions`` the ``wasm_host`` functions
    the module may import (``--allow-host-fn``).

``plugin.process(command, data, config=None) -> pyarrow.Table``
    All of ``data`` (a pyarrow Table, RecordBatch or RecordBatchReader, or
    anything with ``__arrow_c_stream__``: Polars, DuckDB, DataFusion) in one
    call, then the module's flush call.

``plugin.process_stream(command, data, config=None, *, threads=1,
batch_size=DEFAULT_BATCH_SIZE) -> pyarrow.RecordBatchReader``
    Batch by batch, as ``wasm-app process`` runs it: for inputs larger than
    the module's memory, and for output read while it is made.

``plugin.call(export, data: bytes) -> bytes``, ``plugin.greet(name,
abi="rust") -> str``
    The pair ABI's generic call, and the greeter.

Every call releases the GIL and runs on an instance of its own: threads may
share a Plugin. A Plugin pickles as its module bytes and policy (with the
module's SHA-256), so Ray and Spark can ship it to workers. Errors are
:class:`WasmError` subclasses (:mod:`wasm_study.errors`). A process that
forks after using the package refuses to run modules in the child (its timer
threads are gone): use the ``spawn`` start method.
"""

from . import errors
from ._native import DEFAULT_BATCH_SIZE, Plugin
from .errors import *  # noqa: F403 (the exception classes, listed in errors.__all__)

__all__ = ["Plugin", "DEFAULT_BATCH_SIZE", *errors.__all__]
