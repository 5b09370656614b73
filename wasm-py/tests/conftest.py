"""Shared fixtures of the Python tests: the built guests, the CLI, and
comparison with what the CLI gives on the same input.

Run by `make test` (after the Rust tests, which build the CLI) with
WASM_APP_MODULES set; also runnable alone: `.venv/bin/pytest wasm-py/tests`.
"""

import os
import pathlib
import subprocess

import pyarrow as pa
import pyarrow.ipc
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def modules_dir() -> pathlib.Path:
    return pathlib.Path(os.environ.get("WASM_APP_MODULES", ROOT / "target" / "wasm-modules"))


def guest(name: str) -> pathlib.Path:
    """A built guest; the test fails (not skips) without it: `make guests`."""
    path = modules_dir() / name
    assert path.is_file(), f"no {path}: build the guests with `make guests`"
    return path


@pytest.fixture(scope="session")
def module2() -> pathlib.Path:
    """The Arrow processor (echo, count, filter, replace, tokenize, ...)."""
    return guest("wasm_module2.wasm")


@pytest.fixture(scope="session")
def module1() -> pathlib.Path:
    """The greeter (C and Rust string ABIs)."""
    return guest("wasm_module1.wasm")


@pytest.fixture(scope="session")
def cli() -> pathlib.Path:
    """The wasm-app CLI built by the Rust tests (WASM_APP_BIN overrides)."""
    path = pathlib.Path(os.environ.get("WASM_APP_BIN", ROOT / "target" / "debug" / "wasm-app"))
    assert path.is_file(), f"no {path}: build it with `cargo build -p wasm-app`"
    return path


def cli_process(cli, module, command, inputs, config=None, tmp_path=None) -> pa.Table:
    """What `wasm-app process` gives for `inputs` (files), as a Table."""
    out = pathlib.Path(tmp_path) / "cli-out.arrow"
    args = [str(cli), "process", "--module", str(module), "--command", command]
    for k, v in (config or {}).items():
        args += ["--config", f"{k}={v}"]
    args += [str(p) for p in inputs] + ["-o", str(out)]
    subprocess.run(args, check=True, timeout=120, capture_output=True)
    with pa.ipc.open_file(out) as f:
        return f.read_all()


def sorted_table(t: pa.Table, keys) -> pa.Table:
    """`t` in a fixed row order (engines do not keep input order)."""
    return t.sort_by([(k, "ascending") for k in keys]).combine_chunks()


def documents(n: int, seed: int = 0) -> pa.Table:
    """`n` rows of `id: uint64, content: utf8` with a few words each."""
    words = ["arrow", "wasm", "ray", "spark", "sandbox", "policy", "batch", "module"]
    ids = pa.array(range(seed, seed + n), pa.uint64())
    content = [" ".join(words[(i * 7 + j) % len(words)] for j in range(1 + i % 5)) for i in range(seed, seed + n)]
    return pa.table({"id": ids, "content": content})


# A bump allocator as `wasm_allocate` (64-byte aligned areas from the global
# $next up, memory grown as needed) and a `wasm_deallocate` that frees
# nothing: the allocation contract the host checks (areas never overlap).
BUMP_ALLOCATOR = """
  (func (export "wasm_allocate") (param $n i32) (result i32)
    (local $p i32)
    (local.set $p (i32.and (i32.add (global.get $next) (i32.const 63)) (i32.const -64)))
    (global.set $next (i32.add (local.get $p) (local.get $n)))
    (if (i32.gt_u (global.get $next) (i32.mul (memory.size) (i32.const 65536)))
      (then (drop (memory.grow (i32.add (i32.shr_u (local.get $n) (i32.const 16)) (i32.const 1))))))
    (local.get $p))
  (func (export "wasm_deallocate") (param i32) (result i32) (i32.const 0))"""


def guest_returning(payload: bytes) -> bytes:
    """WAT of a module whose Arrow export returns `payload` whatever it is
    sent (as wasm-app/tests/hostile_output.rs builds it): any bytes become a
    guest's result, through the real call path."""
    at = 65536
    end = -(-(at + len(payload)) // 64) * 64
    pages = end // 65536 + 2
    data = "".join(f"\\{b:02x}" for b in payload)
    return f"""(module
  (memory (export "memory") {pages})
  (global $next (mut i32) (i32.const {end}))
{BUMP_ALLOCATOR}
  (func (export "wasm_memory_process_data_arrow") (param i32 i32 i32 i32) (result i32)
    (i32.store (i32.const 8) (i32.const {at}))
    (i32.store (i32.const 12) (i32.const {len(payload)}))
    (i32.const 8))
  (data (i32.const {at}) "{data}"))""".encode()


def arrow_guest(body: str) -> bytes:
    """WAT of a module whose Arrow export runs `body` (WAT instructions
    leaving an i32), whatever it is sent."""
    return f"""(module
  (memory (export "memory") 1)
  (global $next (mut i32) (i32.const 1024))
{BUMP_ALLOCATOR}
  (func (export "wasm_memory_process_data_arrow") (param i32 i32 i32 i32) (result i32)
    {body}))""".encode()


def guest_spinning() -> bytes:
    """WAT of a module whose Arrow export never returns."""
    return arrow_guest("(loop (br 0)) (i32.const 0)")


def guest_bombing() -> bytes:
    """WAT of a module whose Arrow export grows its memory without end."""
    return arrow_guest("(loop (br_if 0 (i32.ne (memory.grow (i32.const 16)) (i32.const -1)))) (unreachable)")
