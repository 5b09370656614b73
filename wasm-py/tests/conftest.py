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
