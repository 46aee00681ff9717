"""`torchrun --nproc_per_node=2 -m archspec train` on CPU with the gloo backend.

With the recipe's batch as the global batch, two processes compute what one process computes (to float
tolerance). The spec has no batch norm: per-process BN (the usual DDP behaviour; `--sync-bn` on CUDA makes it
global) would see half the batch and legitimately differ.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.slow

@pytest.fixture
def spec(nobn_spec: Path) -> Path:
    return nobn_spec


def args(spec: Path, out: Path, cifar_dir: Path, *extra: str, iters: int = 30) -> list[str]:
    return ["train", str(spec), "--out", str(out), "--data-dir", str(cifar_dir), "--device", "cpu", "--quiet",
            "--iters", str(iters), "--batch-size", "32", "--log-interval", "5", "--eval-interval", "15",
            "--checkpoint-interval", "5", "--train-size", "1000", "--val-size", "200", *extra]


def torchrun(*a: str, **kw) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port",
            str(29500 + os.getpid() % 1000), "-m", "archspec", *a]


def losses(run: Path) -> list[tuple]:
    out = []
    for line in (run / "metrics.jsonl").read_text().splitlines():
        r = json.loads(line)
        out.append((r["kind"], r["iter"], r["loss"], r.get("train_err", r.get("err"))))
    return out


def close(a: list[tuple], b: list[tuple]) -> bool:
    return len(a) == len(b) and all(x[:2] == y[:2] and abs(x[2] - y[2]) <= 1e-5 * max(1, abs(x[2]))
                                    and abs(x[3] - y[3]) <= 1e-9 for x, y in zip(a, b))


def test_two_processes_compute_what_one_computes(spec, tmp_path, cifar_dir):
    one, two = tmp_path / "one", tmp_path / "two"
    assert subprocess.run([sys.executable, "-m", "archspec", *args(spec, one, cifar_dir)]).returncode == 0
    proc = subprocess.run(torchrun(*args(spec, two, cifar_dir)), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert close(losses(one), losses(two))
    log = (two / "log.txt").read_text()
    assert "2 processes (gloo), global batch 32 = 2 x 16" in log
    assert log.count("iterations of 32") == 1  # only rank 0 writes
    assert json.loads((two / "run.json").read_text())["processes"] == 2


# today's recipe pieces that keep a run the same over any number of processes: repeated augmentation (each
# image's copies in different processes), device-side TrivialAugment and random erasing, LAMB, label smoothing,
# a cosine schedule with a linear warm-up, an EMA. (Mixup/CutMix mixes each process's batch with itself, as
# timm does, so it is not among them.)
MODERN = ("--recipe", "repeated_augment=2", "--recipe", "augment=[{op: pad_crop, pad: 4, size: 32}, {op: hflip}, "
          "{op: trivial_augment}, {op: random_erasing, p: 0.5}]", "--recipe", "optimizer={name: lamb, lr: 0.002}",
          "--recipe", "label_smoothing=0.1", "--recipe", "schedule={name: cosine, warmup: {kind: linear, "
          "lr: 0.0001, max_iters: 5}}", "--recipe", "ema={decay: 0.9}")


def test_two_processes_compute_what_one_computes_under_a_modern_recipe(spec, tmp_path, cifar_dir):
    one, two = tmp_path / "one", tmp_path / "two"
    assert subprocess.run([sys.executable, "-m", "archspec", *args(spec, one, cifar_dir, *MODERN)]).returncode == 0
    proc = subprocess.run(torchrun(*args(spec, two, cifar_dir, *MODERN)), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert close(losses(one), losses(two))
    assert {r[0] for r in losses(two)} >= {"val_ema", "test_ema"}


def test_resume_across_ranks_after_sigkill(spec, tmp_path, cifar_dir):
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    assert subprocess.run(torchrun(*args(spec, whole, cifar_dir, iters=40)), capture_output=True).returncode == 0
    proc = subprocess.Popen(torchrun(*args(spec, broken, cifar_dir, iters=40)), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 180
    while time.time() < deadline:
        try:
            if torch.load(broken / "last.pt", weights_only=True)["state"]["iteration"] >= 15:
                break
        except (FileNotFoundError, RuntimeError, EOFError, KeyError):
            pass
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # torchrun and both workers at once
    proc.wait()
    resumed = subprocess.run(torchrun(*args(spec, broken, cifar_dir, "--resume", iters=40)), capture_output=True,
                             text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert close(losses(whole), losses(broken))


def test_a_global_batch_that_does_not_split_is_refused(spec, tmp_path, cifar_dir):
    a = args(spec, tmp_path / "odd", cifar_dir)
    a[a.index("--batch-size") + 1] = "33"
    proc = subprocess.run(torchrun(*a), capture_output=True, text=True)
    assert proc.returncode != 0
    assert "does not split evenly over 2 processes" in proc.stderr


def test_two_processes_fine_tune_from_the_same_weights(spec, tmp_path, cifar_dir):
    import archspec

    torch.manual_seed(5)
    torch.save(archspec.build(str(spec)).state_dict(), tmp_path / "w.pt")
    one, two = tmp_path / "one", tmp_path / "two"
    extra = ("--weights", str(tmp_path / "w.pt"))
    assert subprocess.run([sys.executable, "-m", "archspec", *args(spec, one, cifar_dir, *extra, iters=10)]
                          ).returncode == 0
    proc = subprocess.run(torchrun(*args(spec, two, cifar_dir, *extra, iters=10)), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert close(losses(one), losses(two))
    assert (two / "log.txt").read_text().count("weights: ") == 1  # said once, by the first process
    info = json.loads((two / "run.json").read_text())
    assert info["weights"]["source"] == str(tmp_path / "w.pt") and info["processes"] == 2
