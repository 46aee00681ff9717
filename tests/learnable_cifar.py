"""A small CIFAR-10 in the real python-pickle format, with a learnable signal: a bright band whose channel and row
depend on the label, so a few dozen steps of training visibly lower the loss.

Plain Python (numpy and pickle, no pytest): the runtime tests use it through the `write_cifar` and `cifar_dir`
fixtures (tests/runtime/conftest.py), and benchmarks/gpu_check.py imports it where pytest may not be installed.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

PER_BATCH = 240


def write_learnable_cifar(root: Path, per_batch: int = PER_BATCH, test_images: int | None = None) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    for k, name in enumerate([f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]):
        rng = np.random.default_rng(100 + k)
        count = test_images if name == "test_batch" and test_images is not None else per_batch
        labels = rng.integers(0, 10, count)
        images = rng.integers(0, 70, (count, 3, 32, 32)).astype(np.uint8)
        for i, label in enumerate(labels):
            row = (3 * int(label)) % 27
            images[i, int(label) % 3, row : row + 5, :] += 150
        batch = {b"batch_label": name.encode(), b"labels": [int(v) for v in labels],
                 b"data": images.reshape(count, -1), b"filenames": [b"x.png"] * count}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    return root
