"""Runtime fixtures: a small CIFAR-10 in the real python-pickle format (tests/learnable_cifar.py: its images carry
a learnable signal, so a few dozen steps of training visibly lower the loss), written once per test session;
processes, stopped and finished runs, special file systems.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from learnable_cifar import write_learnable_cifar  # tests/ is on pytest's pythonpath


@pytest.fixture
def write_cifar():
    """write_learnable_cifar(root, per_batch, test_images): CIFAR-10's python batches with a learnable signal."""
    return write_learnable_cifar


@pytest.fixture(scope="session")
def cifar_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_learnable_cifar(tmp_path_factory.mktemp("cifar"))


@pytest.fixture
def train_args(cifar_dir: Path):
    """The common part of a short CPU training command on the small dataset."""
    def make(out: Path, *extra: str, iters: int = 40) -> list[str]:
        return small_train(cifar_dir, out, *extra, iters=iters)
    return make


# -- processes, stopped runs and special file systems ----------------------------------------------------------

def start_train(args: list, **kw) -> "subprocess.Popen":
    """`python -m archspec ARGS` in the background (stdout and stderr captured as text)."""
    return subprocess.Popen([sys.executable, "-m", "archspec", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def checkpoint_iteration(run: Path) -> int | None:
    import torch

    try:
        return int(torch.load(run / "last.pt", weights_only=True)["state"]["iteration"])
    except (FileNotFoundError, RuntimeError, EOFError, KeyError, OSError):
        return None


def wait_until(proc: "subprocess.Popen", ready, timeout: float = 120, what: str = "the run") -> None:
    """Poll `ready()` while `proc` runs; fail if it ends first or time runs out."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if ready():
            return
        if proc.poll() is not None:
            raise AssertionError(f"{what} ended early ({proc.returncode}): {proc.stderr.read()}")
        time.sleep(0.02)
    raise AssertionError(f"{what} took too long")


def wait_for_checkpoint(run: Path, at_least: int, proc: "subprocess.Popen", timeout: float = 120) -> int:
    """Poll until last.pt holds iteration >= at_least (read safely: it is written atomically)."""
    wait_until(proc, lambda: (checkpoint_iteration(run) or 0) >= at_least, timeout, "the run")
    return checkpoint_iteration(run)


@pytest.fixture
def procs():
    """start_train, wait_until, wait_for_checkpoint and checkpoint_iteration, for tests that run processes.
    Processes still running when the test ends are killed."""
    started = []

    class Tools:
        @staticmethod
        def start(args, **kw):
            p = start_train(args, **kw)
            started.append(p)
            return p

        wait_until = staticmethod(wait_until)
        wait_for_checkpoint = staticmethod(wait_for_checkpoint)
        checkpoint_iteration = staticmethod(checkpoint_iteration)

    yield Tools
    for p in started:
        if p.poll() is None:
            p.kill()
            p.wait()


def small_train(cifar_dir: Path, out: Path, *extra: str, iters: int = 40) -> list[str]:
    return ["train", "cifar_resnet20", "--data-dir", str(cifar_dir), "--out", str(out), "--device", "cpu",
            "--iters", str(iters), "--batch-size", "16", "--log-interval", "5", "--eval-interval", "20",
            "--checkpoint-interval", "10", "--train-size", "1000", "--val-size", "200", "--quiet", *extra]


@pytest.fixture(scope="session")
def _stopped_run_master(cifar_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run stopped by Ctrl-C (SIGINT) after its first checkpoints: resumable, made once per session."""
    run = tmp_path_factory.mktemp("stopped") / "run"
    proc = start_train(small_train(cifar_dir, run, iters=80))
    try:
        wait_for_checkpoint(run, 10, proc)
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    return run


@pytest.fixture
def stopped_run(_stopped_run_master: Path):
    """A copy of a run stopped by Ctrl-C at `dest` (resumable: `archspec train --resume --out dest`)."""
    def make(dest: Path) -> Path:
        shutil.copytree(_stopped_run_master, dest)
        return dest
    return make


@pytest.fixture(scope="session")
def _finished_run_master(cifar_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 20-iteration run, evaluated on its validation split at iteration 20 (best.pt and last.pt), made
    once per session."""
    from archspec.cli import main

    run = tmp_path_factory.mktemp("finished") / "run"
    assert main([str(a) for a in small_train(cifar_dir, run, iters=20)]) == 0
    return run


@pytest.fixture
def finished_run(_finished_run_master: Path, tmp_path: Path) -> Path:
    """A copy of a finished run (best.pt and last.pt at iteration 20) at tmp_path/run."""
    return Path(shutil.copytree(_finished_run_master, tmp_path / "run"))


@pytest.fixture
def tmpfs(tmp_path: Path):
    """mount(size, read_only=False) -> a fresh tmpfs folder: a real read-only place (root ignores permission
    bits, not read-only mounts) or a small disk that fills up. Needs the right to mount (root in CI)."""
    mounted = []

    def mount(size: str = "1m", read_only: bool = False) -> Path:
        where = tmp_path / f"mnt{len(mounted)}"
        where.mkdir()
        options = f"size={size}" + (",ro" if read_only else "")
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True)
        if r.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here (needs root): {r.stderr.decode().strip()}")
        mounted.append(where)
        return where

    yield mount
    for where in mounted:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


NOBN_SPEC = """\
archspec: 1
name: nobn
imports: [archspec:recipes/cifar10.yaml]
input: [3, 32, 32]
network:
  - conv1: {op: conv, out: 8, kernel: 3, pad: 1, bias: true}
  - relu1: {op: relu}
  - conv2: {op: conv, out: 16, kernel: 3, stride: 2, pad: 1, bias: true}
  - relu2: {op: relu}
  - pool: {op: global_avgpool}
  - flat: {op: flatten}
  - fc: {op: linear, out: 10}
"""


@pytest.fixture
def nobn_spec(tmp_path: Path) -> Path:
    """A spec without batch norm: several processes under DDP compute what one process computes (per-process
    batch norm would see half the batch and legitimately differ)."""
    path = tmp_path / "nobn.yaml"
    path.write_text(NOBN_SPEC)
    return path


CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


@pytest.fixture(scope="session")
def labelled_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(run folder, data folder): a 4-iteration cifar_resnet20 run (best.pt, last.pt, preprocessing.json) on a
    small CIFAR-10 whose batches.meta names the classes, made once per session (test_predict, test_preprocessing)."""
    import pickle

    from archspec.cli import main

    data = write_learnable_cifar(tmp_path_factory.mktemp("cifar-named"), per_batch=40)
    meta = {b"label_names": [n.encode() for n in CIFAR10_NAMES], b"num_cases_per_batch": 40, b"num_vis": 3072}
    (data / "cifar-10-batches-py" / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    run = tmp_path_factory.mktemp("named") / "run"
    assert main(["train", "cifar_resnet20", "--data-dir", str(data), "--out", str(run), "--device", "cpu",
                 "--iters", "4", "--batch-size", "16", "--log-interval", "2", "--eval-interval", "4",
                 "--train-size", "160", "--val-size", "40", "--quiet"]) == 0
    return run, data
