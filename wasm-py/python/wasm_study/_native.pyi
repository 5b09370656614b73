# Type stubs of the native half (wasm-py/src): what editors and type
# checkers see. The behaviour is documented in __init__.py.
import os
from collections.abc import Sequence
from typing import Any, Protocol

import pyarrow as pa

class _ArrowStream(Protocol):
    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object: ...

_Size = int | str
_Duration = float | int | str
_Dir = str | os.PathLike[str] | tuple[str | os.PathLike[str], str]

DEFAULT_BATCH_SIZE: int

class Plugin:
    def __init__(
        self,
        module: bytes | bytearray | str | os.PathLike[str],
        *,
        policy: str | os.PathLike[str] | None = None,
        max_memory: _Size | None = None,
        max_output: _Size | None = None,
        timeout: _Duration | None = None,
        fuel: int | None = None,
        max_instances: int | None = None,
        dirs: Sequence[_Dir] = (),
        dirs_rw: Sequence[_Dir] = (),
        env: dict[str, str] = {},
        sha256: str | None = None,
        allowed_hosts: Sequence[str] = (),
        host_functions: Sequence[str] = (),
        cache: bool = True,
        name: str | None = None,
    ) -> None: ...
    def call(self, export: str, data: bytes | bytearray) -> bytes: ...
    def greet(self, name: str, abi: str = "rust") -> str: ...
    def process(
        self, command: str, data: _ArrowStream, config: dict[str, str] | None = None
    ) -> pa.Table: ...
    def process_stream(
        self,
        command: str,
        data: _ArrowStream,
        config: dict[str, str] | None = None,
        *,
        threads: int = 1,
        batch_size: int = ...,
    ) -> pa.RecordBatchReader: ...
    @property
    def name(self) -> str: ...
    @property
    def sha256(self) -> str: ...
    @property
    def is_component(self) -> bool: ...
    @property
    def policy(self) -> dict[str, Any]: ...
