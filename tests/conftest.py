"""Shared test fixtures: an isolated schema cache, the repository paths, and a CLI runner."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Tests never read or write the user's cache."""
    os.environ["ARCHSPEC_CACHE_DIR"] = str(tmp_path_factory.mktemp("archspec-cache"))


@dataclass
class Run:
    code: int
    out: str
    err: str


def run_cli(*args: str) -> Run:
    """Run `archspec ARGS...` in this process and capture what it prints."""
    from archspec.cli import main

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main([str(a) for a in args])
    return Run(code, out.getvalue(), err.getvalue())


def run_process(*args: str, timeout: float = 120, env: dict | None = None, cwd: Path | None = None) -> Run:
    """Run `python -m archspec ARGS...` as a separate process (exit codes, signals, real start-up)."""
    proc = subprocess.run([sys.executable, "-m", "archspec", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})}, cwd=cwd or ROOT)
    return Run(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def bad_spec(tmp_path: Path) -> Path:
    """A spec that reads an item no one defines (`shortcut`): E305 at a known place."""
    path = tmp_path / "bad.yaml"
    path.write_text("archspec: 1\ninput: [3, 32, 32]\nnetwork:\n  - conv1: {op: conv, out: 16, kernel: 3, pad: 1}\n"
                    "  - add: {op: add, in: [conv1, shortcut]}\n")
    return path


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture
def cli_process():
    return run_process


@pytest.fixture
def root() -> Path:
    return ROOT


@pytest.fixture
def specs_dir() -> Path:
    return SPECS


@pytest.fixture
def one_thread():
    """One intra-op thread: on a shared machine two threads wait on each other at every op of tiny steps."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
