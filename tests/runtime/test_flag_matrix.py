"""The speed and memory flags of `archspec train`, in the combinations that matter, on the CPU: each trains a few
steps through the real command and gives the plain run's losses: exactly where the maths is the same
(activation checkpointing recomputes the very same operations), within a stated tolerance where kernels differ
(compiled kernels: 1e-4 relative; channels_last convolutions sum in another order: 1e-3 after six SGD steps,
2e-4 seen) or precision does (bf16: 5e-2)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

NET = ["cifar_resnet", "--set", "n=1"]  # ResNet-8: every kind of op of the family, small enough to compile fast

def common(cifar_dir: Path, out: Path) -> list[str]:
    return ["--out", str(out), "--data-dir", str(cifar_dir), "--device", "cpu", "--quiet", "--iters", "6",
            "--batch-size", "16", "--log-interval", "2", "--eval-interval", "6", "--train-size", "1000",
            "--val-size", "200"]


def losses(run: Path) -> list[tuple[str, int, float, float]]:
    out = []
    for line in (run / "metrics.jsonl").read_text().splitlines():
        r = json.loads(line)
        out.append((r["kind"], r["iter"], r["loss"], r.get("train_err", r.get("err"))))
    return out


def agree(a: list[tuple], b: list[tuple], rel: float) -> bool:
    return len(a) == len(b) and all(x[:2] == y[:2] and abs(x[2] - y[2]) <= rel * max(1.0, abs(x[2]))
                                    for x, y in zip(a, b))


@pytest.fixture(scope="module")
def plain(cifar_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from archspec.cli import main

    run = tmp_path_factory.mktemp("plain") / "run"
    assert main(["train", *NET, *common(cifar_dir, run)]) == 0
    return run


def _train(cifar_dir: Path, run: Path, *flags: str) -> Path:
    from archspec.cli import main

    assert main(["train", *NET, *common(cifar_dir, run), *flags]) == 0
    return run


def test_checkpointed_activations_give_exactly_the_plain_run(plain, cifar_dir, tmp_path):
    run = _train(cifar_dir, tmp_path / "run", "--checkpoint-activations")
    assert losses(run) == losses(plain)  # bitwise
    a = torch.load(plain / "last.pt", weights_only=True)["model"]
    b = torch.load(run / "last.pt", weights_only=True)["model"]
    assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)  # running statistics counted once


@pytest.mark.parametrize("flags, rel", [
    (["--channels-last"], 1e-3),
    (["--channels-last", "--checkpoint-activations"], 1e-3),
    (["--bf16"], 5e-2),
    (["--bf16", "--channels-last"], 5e-2),
])
def test_layout_and_precision_flags(plain, cifar_dir, tmp_path, flags, rel):
    run = _train(cifar_dir, tmp_path / "run", *flags)
    assert agree(losses(run), losses(plain), rel), (losses(run), losses(plain))


@pytest.mark.slow
@pytest.mark.parametrize("flags", [["--compile"], ["--compile", "--checkpoint-activations"],
                                   ["--compile", "--channels-last"]])
def test_compiled_runs(plain, cifar_dir, tmp_path, flags):
    run = _train(cifar_dir, tmp_path / "run", *flags)
    rel = 1e-3 if "--channels-last" in flags else 1e-4
    assert agree(losses(run), losses(plain), rel), (losses(run), losses(plain))


def _torchrun(*args: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port",
            str(29600 + os.getpid() % 1000), "-m", "archspec", *args]


@pytest.mark.slow
@pytest.mark.parametrize("flags", [[], ["--checkpoint-activations"], ["--channels-last"]])
def test_two_process_ddp_gives_the_one_process_run(cifar_dir, nobn_spec, tmp_path, flags):
    spec = nobn_spec
    one, two = tmp_path / "one", tmp_path / "two"
    r = subprocess.run([sys.executable, "-m", "archspec", "train", str(spec), *common(cifar_dir, one)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    r = subprocess.run(_torchrun("train", str(spec), *common(cifar_dir, two), *flags), capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert agree(losses(two), losses(one), 1e-5), (losses(two), losses(one))


@pytest.mark.slow
def test_ddp_with_batch_norm_keeps_every_process_statistics_alike(cifar_dir, tmp_path):
    """Without a buffer broadcast on every forward, running statistics are averaged over processes before each
    evaluation and checkpoint: the checkpoint holds that average and evaluation agrees with it."""
    two = tmp_path / "two"
    r = subprocess.run(_torchrun("train", *NET, *common(cifar_dir, two), "--checkpoint-activations"),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    r = subprocess.run([sys.executable, "-m", "archspec", "eval", "--checkpoint", str(two / "last.pt"), "--device",
                        "cpu", "--split", "val", "--json"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    val = [x for x in losses(two) if x[0] == "val"][-1]
    assert abs(json.loads(r.stdout)["loss"] - val[2]) < 1e-5
