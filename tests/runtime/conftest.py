"""Runtime fixtures: a small CIFAR-10 in the real python-pickle format, written once per test session.

The images carry a learnable signal (a bright band whose channel and row depend on the label), so a few dozen
steps of training visibly lower the loss.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

PER_BATCH = 240


def write_learnable_cifar(root: Path, per_batch: int = PER_BATCH) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    for k, name in enumerate([f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]):
        rng = np.random.default_rng(100 + k)
        labels = rng.integers(0, 10, per_batch)
        images = rng.integers(0, 70, (per_batch, 3, 32, 32)).astype(np.uint8)
        for i, label in enumerate(labels):
            row = (3 * int(label)) % 27
            images[i, int(label) % 3, row : row + 5, :] += 150
        batch = {b"batch_label": name.encode(), b"labels": [int(v) for v in labels],
                 b"data": images.reshape(per_batch, -1), b"filenames": [b"x.png"] * per_batch}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    return root


@pytest.fixture(scope="session")
def cifar_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_learnable_cifar(tmp_path_factory.mktemp("cifar"))


@pytest.fixture
def train_args(cifar_dir: Path):
    """The common part of a short CPU training command on the small dataset."""
    def make(out: Path, *extra: str, iters: int = 40) -> list[str]:
        return ["train", "cifar_resnet20", "--data-dir", str(cifar_dir), "--out", str(out), "--device", "cpu",
                "--iters", str(iters), "--batch-size", "16", "--log-interval", "5", "--eval-interval", "20",
                "--checkpoint-interval", "10", "--train-size", "1000", "--val-size", "200", "--quiet", *extra]
    return make
