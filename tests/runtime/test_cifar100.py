"""CIFAR-100 (`dataset.name: cifar100`): its python-pickle files (train, test, meta) read by the real loader, the
fixed 45k/5k split, fine and coarse labels, class names, every refusal, the download, and `archspec train` end to
end on a small CIFAR-100 written in the real format."""

from __future__ import annotations

import hashlib
import json
import pickle
import re
import subprocess
import sys
import tarfile
from itertools import islice
from pathlib import Path

import numpy as np
import pytest
from hostile_pickle import Exploit  # tests/ is on pytest's pythonpath
import torch

from archspec.runtime.data import DataConfig, DataError, make_data
from archspec.runtime.data import cifar as cifar_files
from archspec.runtime.data.common import fixed_order

CPU = torch.device("cpu")
TRAIN, TEST = 1000, 200
FINE_NAMES = [f"fine{k:02d}" for k in range(100)]
COARSE_NAMES = [f"super{k:02d}" for k in range(20)]
WRONG_NAME = re.compile(r"CIFAR-10(?!0)|cifar10(?!0)|cifar-10-batches|data_batch|test_batch")


def coarse_of(fine: np.ndarray) -> np.ndarray:
    """A fixed fine -> superclass map (five fine classes per superclass, shuffled as CIFAR-100's are)."""
    return (fine * 7 + 3) % 100 // 5


def batch_pickle(images: np.ndarray, fine: list[int], coarse: list[int]) -> bytes:
    """A file as CIFAR-100 has it: a protocol-2 pickle with bytes keys, naming numpy.core (as numpy 1 wrote it)."""
    blob = pickle.dumps({b"filenames": [b"x.png"] * len(fine), b"batch_label": b"training batch 1 of 1",
                         b"fine_labels": fine, b"coarse_labels": coarse, b"data": images}, protocol=2)
    return blob.replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")


def write_cifar100(root: Path, train: int = TRAIN, test: int = TEST, seed: int = 0) -> Path:
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for name, n in (("train", train), ("test", test)):
        images = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        fine = rng.integers(0, 100, n)
        (folder / name).write_bytes(batch_pickle(images, [int(v) for v in fine], [int(v) for v in coarse_of(fine)]))
    meta = {b"fine_label_names": [n.encode() for n in FINE_NAMES],
            b"coarse_label_names": [n.encode() for n in COARSE_NAMES]}
    (folder / "meta").write_bytes(pickle.dumps(meta, protocol=2))
    return folder


def file_of(folder: Path, name: str) -> dict:
    return pickle.loads((folder / name).read_bytes(), encoding="bytes")


def cifar100(root: Path, **kw):
    args = dict(name="cifar100", root=root, batch_size=50, seed=0, device=CPU, normalize="none")
    return make_data(DataConfig(**{**args, **kw}))


def collect(stream) -> tuple[torch.Tensor, torch.Tensor]:
    batches = list(stream)
    return torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches])


def as_u8(x: torch.Tensor) -> torch.Tensor:
    return (x * 255).round().to(torch.uint8)


def refusal(root: Path, **kw) -> str:
    with pytest.raises(DataError) as e:
        cifar100(root, **kw)
    text = str(e.value)
    assert text and "\n" not in text
    assert not WRONG_NAME.search(text), text  # CIFAR-100's own names, never CIFAR-10's
    return text


# -- reading --------------------------------------------------------------------------------------------------------

def test_sizes_split_fine_labels_and_class_names(tmp_path):
    folder = write_cifar100(tmp_path)
    data = cifar100(tmp_path)
    assert (data.train_size, data.num_classes, data.input_shape, data.splits) == (900, 100, (3, 32, 32),
                                                                                     ("val", "test"))
    assert data.class_names == FINE_NAMES
    train, test = file_of(folder, "train"), file_of(folder, "test")
    x, y = collect(data.eval_iter("test"))  # in file order, fine labels
    assert torch.equal(as_u8(x), torch.from_numpy(test[b"data"].reshape(-1, 3, 32, 32)))
    assert y.tolist() == test[b"fine_labels"] and y.dtype == torch.int64
    # the val split: the first 100 of CIFAR-100's own fixed permutation of the 1000 training images (10%)
    order = fixed_order(TRAIN, "cifar100-split")
    assert not np.array_equal(order, fixed_order(TRAIN, "cifar10-split"))
    val = np.sort(order[:100])
    x, y = collect(data.eval_iter("val"))
    assert torch.equal(as_u8(x), torch.from_numpy(train[b"data"][val].reshape(-1, 3, 32, 32)))
    assert y.tolist() == [train[b"fine_labels"][i] for i in val]
    _, y = collect(data.eval_iter("train"))
    assert y.tolist() == [train[b"fine_labels"][i] for i in np.sort(order[100:])]
    text = data.describe()
    assert text.startswith(f"cifar100 {folder}") and "100 classes" in text and not WRONG_NAME.search(text)


def test_the_default_split_of_50000_is_45000_and_5000():
    kind = cifar_files.cifar_kind("cifar100")
    config = DataConfig(name="cifar100", root=None, batch_size=1, seed=0, device=CPU)
    train, val = cifar_files._cifar_split(50000, config, Path("x"), kind)
    assert (len(train), len(val)) == (45000, 5000)
    assert len(np.union1d(train, val)) == 50000
    assert np.array_equal(val, np.sort(fixed_order(50000, "cifar100-split")[:5000]))
    cifar10 = cifar_files._cifar_split(50000, config, Path("x"), cifar_files.cifar_kind("cifar10"))[1]
    assert not np.array_equal(val, cifar10)  # each dataset has its own permutation


def test_coarse_labels_pick_the_20_superclasses(tmp_path):
    folder = write_cifar100(tmp_path)
    data = cifar100(tmp_path, labels="coarse")
    assert data.num_classes == 20 and data.class_names == COARSE_NAMES
    test = file_of(folder, "test")
    _, y = collect(data.eval_iter("test"))
    assert y.tolist() == test[b"coarse_labels"] != test[b"fine_labels"]
    assert y.tolist() == coarse_of(np.array(test[b"fine_labels"])).tolist()
    _, y = next(data.train_iter(0))
    assert int(y.max()) < 20
    assert "coarse" in data.describe() and "20 classes" in data.describe()
    assert cifar100(tmp_path, labels="fine").num_classes == 100


def test_the_root_may_be_the_cifar_100_python_folder(tmp_path):
    folder = write_cifar100(tmp_path)
    a, b = cifar100(tmp_path), cifar100(folder)
    assert torch.equal(collect(a.eval_iter("test"))[0], collect(b.eval_iter("test"))[0])


def test_train_stream_resumes_exactly(tmp_path):
    write_cifar100(tmp_path)
    aug = [{"op": "pad_crop", "pad": 4}, {"op": "hflip"}]
    whole = list(islice(cifar100(tmp_path, augment=aug, batch_size=200).train_iter(0), 7))  # 4 per epoch
    resumed = list(islice(cifar100(tmp_path, augment=aug, batch_size=200).train_iter(3), 4))
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(whole[3:], resumed))


def test_the_reader_used_without_a_dataset_tells_cifar100_files_by_their_labels(tmp_path):
    folder = write_cifar100(tmp_path)
    images, labels = cifar_files._read_batch(folder / "test")  # as `archspec predict --cifar-batch` reads
    assert images.shape == (TEST, 3, 32, 32) and labels.tolist() == file_of(folder, "test")[b"fine_labels"]


# -- refusals -------------------------------------------------------------------------------------------------------

def test_missing_files_say_where_and_how_to_download(tmp_path):
    text = refusal(tmp_path)
    assert str(tmp_path / "cifar-100-python" / "train") in text and "CIFAR-100" in text
    assert cifar_files.CIFAR100_URL in text and "--download" in text and "train and test" in text
    folder = write_cifar100(tmp_path)
    (folder / "test").unlink()
    assert str(folder / "test") in refusal(tmp_path)
    text = refusal(None)
    assert text.startswith("cifar100 needs --data-dir") and "cifar-100-python/" in text


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_truncated_or_corrupt_file(tmp_path, damage):
    path = write_cifar100(tmp_path) / "train"
    blob = path.read_bytes()
    path.write_bytes({"garbage": b"\x89PNG not a pickle", "truncated": blob[:len(blob) // 2], "empty": b""}[damage])
    text = refusal(tmp_path)
    assert str(path) in text and "corrupt" in text and cifar_files.CIFAR100_URL in text


def test_code_in_the_pickle_is_refused_and_never_run(tmp_path):
    path = write_cifar100(tmp_path) / "test"
    marker = tmp_path / "pwned"
    path.write_bytes(pickle.dumps({b"data": Exploit(marker), b"fine_labels": [0]}, protocol=2))
    text = refusal(tmp_path)
    assert "refuses to load" in text and "contains code" in text and str(path) in text and "CIFAR-100" in text
    assert not marker.exists()


def test_labels_out_of_range(tmp_path):
    folder = write_cifar100(tmp_path)
    images = np.zeros((TEST, 3072), dtype=np.uint8)
    (folder / "test").write_bytes(batch_pickle(images, [100] + [0] * (TEST - 1), [0] * TEST))
    text = refusal(tmp_path)
    assert str(folder / "test") in text and "fine label" in text and "0..99" in text and "100..100" not in text
    (folder / "test").write_bytes(batch_pickle(images, [99] * TEST, [20] * TEST))
    assert cifar100(tmp_path).num_classes == 100  # the fine labels are fine; the coarse ones are not read
    text = refusal(tmp_path, labels="coarse")
    assert str(folder / "test") in text and "coarse label" in text and "0..19" in text
    (folder / "test").write_bytes(batch_pickle(images, [-1] * TEST, [0] * TEST))
    assert "0..99" in refusal(tmp_path)


def test_wrong_shapes_and_label_counts(tmp_path):
    folder = write_cifar100(tmp_path)
    (folder / "train").write_bytes(batch_pickle(np.zeros((TRAIN, 1024), np.uint8), [0] * TRAIN, [0] * TRAIN))
    text = refusal(tmp_path)
    assert str(folder / "train") in text and "3072" in text
    (folder / "train").write_bytes(batch_pickle(np.zeros((TRAIN, 3072), np.uint8), [0] * (TRAIN - 1), [0] * TRAIN))
    text = refusal(tmp_path)
    assert str(folder / "train") in text and f"its fine_labels are not {TRAIN} integers" in text
    (folder / "train").write_bytes(pickle.dumps([1, 2, 3], protocol=2))
    text = refusal(tmp_path)
    assert str(folder / "train") in text and "not a CIFAR-100 batch" in text


def test_split_sizes_that_do_not_fit(tmp_path):
    write_cifar100(tmp_path)
    text = refusal(tmp_path, train_size=950, val_size=100)
    assert text.startswith("cifar100 train_size 950 + val_size 100") and "--train-size" in text


def test_labels_are_cifar100s_alone(tmp_path):
    for name in ("cifar10", "synthetic", "imagenet_folder"):
        with pytest.raises(DataError) as e:
            make_data(DataConfig(name=name, root=tmp_path, batch_size=8, seed=0, device=CPU, labels="coarse"))
        text = str(e.value)
        assert "\n" not in text and name in text and "labels" in text
    write_cifar100(tmp_path)
    text = refusal(tmp_path, labels="superclass")
    assert "'superclass'" in text and "fine or coarse" in text


def test_missing_or_damaged_meta_leaves_the_names_out(tmp_path):
    folder = write_cifar100(tmp_path)
    (folder / "meta").write_bytes(b"junk")
    data = cifar100(tmp_path)
    assert data.class_names is None and data.num_classes == 100


# -- download -------------------------------------------------------------------------------------------------------

def test_download_names_cifar100s_archive_and_checks_its_md5(tmp_path, monkeypatch):
    assert cifar_files.CIFAR100_URL == "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
    assert cifar_files.CIFAR100_MD5 == "eb9058c3a382ffc7106e4002c42a8d85"
    write_cifar100(tmp_path / "src", train=200, test=50)
    archive = tmp_path / "cifar-100-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "src" / "cifar-100-python", arcname="cifar-100-python")
    monkeypatch.setattr(cifar_files, "CIFAR100_URL", archive.as_uri())
    root = tmp_path / "data"
    text = refusal(root, download=True)  # the real MD5 does not match this archive
    assert "eb9058c3a382ffc7106e4002c42a8d85" in text and archive.as_uri() in text and list(root.iterdir()) == []
    monkeypatch.setattr(cifar_files, "CIFAR100_MD5", hashlib.md5(archive.read_bytes()).hexdigest())
    data = cifar100(root, download=True)
    assert data.train_size == 180 and data.class_names == FINE_NAMES
    assert sorted(p.name for p in root.iterdir()) == ["cifar-100-python"]  # archive and staging removed
    # an archive that is not CIFAR-100's: refused by name
    evil = tmp_path / "evil.tar.gz"
    with tarfile.open(evil, "w:gz") as tar:
        info = tarfile.TarInfo("link")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(info)
    monkeypatch.setattr(cifar_files, "CIFAR100_URL", evil.as_uri())
    monkeypatch.setattr(cifar_files, "CIFAR100_MD5", hashlib.md5(evil.read_bytes()).hexdigest())
    text = refusal(tmp_path / "other", download=True)
    assert "refusing to unpack" in text and "not the CIFAR-100 archive" in text


# -- archspec train ---------------------------------------------------------------------------------------------------

def test_archspec_train_on_cifar100_end_to_end(tmp_path):
    write_cifar100(tmp_path / "data", train=300, test=60)
    out = tmp_path / "run"
    args = ["train", "cifar_resnet20", "--set", "num_classes=100", "--dataset", "cifar100", "--data-dir",
            str(tmp_path / "data"), "--out", str(out), "--device", "cpu", "--iters", "4", "--batch-size", "16",
            "--log-interval", "2", "--eval-interval", "4", "--checkpoint-interval", "4", "--quiet",
            "--train-size", "270", "--val-size", "30"]
    done = subprocess.run([sys.executable, "-m", "archspec", *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    where = f"cifar100 {tmp_path / 'data' / 'cifar-100-python'}: "
    record = json.loads((out / "run.json").read_text())
    assert record["data"].startswith(where) and "100 classes" in record["data"]
    assert json.loads((out / "recipe.json").read_text())["dataset"]["name"] == "cifar100"
    assert json.loads((out / "preprocessing.json").read_text())["classes"] == FINE_NAMES
    log = (out / "log.txt").read_text()
    assert f"data: {where}" in log and "test error" in log and not WRONG_NAME.search(log)
    # the 20 superclasses with repeated augmentation, set in the recipe
    coarse = subprocess.run([sys.executable, "-m", "archspec", *args[:3], "num_classes=20", *args[4:8], "--out",
                             str(tmp_path / "coarse"), *args[10:], "--recipe", "dataset.labels=coarse",
                             "--recipe", "repeated_augment=2"], capture_output=True, text=True, timeout=300)
    assert coarse.returncode == 0, coarse.stderr[-3000:]
    data = json.loads((tmp_path / "coarse" / "run.json").read_text())["data"]
    assert data.startswith(f"cifar100 {tmp_path / 'data' / 'cifar-100-python'} (coarse labels): ")
    assert "20 classes" in data and "each image 2 times" in data
    # a network with 10 outputs does not fit CIFAR-100's 100 classes: said, with the fix
    bad = subprocess.run([sys.executable, "-m", "archspec", *args[:2], *args[4:6], *args[6:8],
                          "--out", str(tmp_path / "bad"), "--device", "cpu", "--iters", "1", "--quiet", *args[-4:]],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode != 0 and "has 100 classes" in bad.stderr and "--set num_classes=100" in bad.stderr
