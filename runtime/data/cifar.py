"""CIFAR-10 files: a safe unpickler, the 50k/10k split, and the checksum-verified download."""

from __future__ import annotations

import codecs
import hashlib
import logging
import os
import pickle
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import torch
from torch import Tensor

from archspec.lang.files import atomic_path
from archspec.runtime.data.base import Data, DataConfig
from archspec.runtime.data.common import DataError, fixed_order, why
from archspec.runtime.data.memory import TensorData

log = logging.getLogger(__name__)

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_TRAIN_FILES = tuple(f"data_batch_{k}" for k in range(1, 6))
CIFAR10_TEST_FILE = "test_batch"
CIFAR10_META = "batches.meta"  # the class names (label_names)


# ----------------------------------------------------------------------------------------------------------------
# CIFAR-10 files


class _CodeInPickle(Exception):
    pass


def _array_globals() -> dict[tuple[str, str], Any]:
    """The only globals a CIFAR-10 pickle may name: what numpy needs to rebuild an array, under its old and new
    module names (files written by numpy 1 name numpy.core, numpy 2 names numpy._core)."""
    try:
        from numpy._core import multiarray, numeric
    except ImportError:  # numpy < 2
        from numpy.core import multiarray, numeric  # type: ignore[no-redef]
    out: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): codecs.encode, ("codecs", "encode"): codecs.encode,
    }
    for package in ("numpy.core", "numpy._core"):
        out[(f"{package}.multiarray", "_reconstruct")] = multiarray._reconstruct
        if hasattr(numeric, "_frombuffer"):
            out[(f"{package}.numeric", "_frombuffer")] = numeric._frombuffer
    return out


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, numbers, strings and numpy arrays; any other global is refused, never imported."""

    _allowed: dict[tuple[str, str], Any] | None = None

    def find_class(self, module: str, name: str) -> Any:
        if _ArrayUnpickler._allowed is None:
            _ArrayUnpickler._allowed = _array_globals()
        found = _ArrayUnpickler._allowed.get((module, name))
        if found is None:
            raise _CodeInPickle(f"{module}.{name}")
        return found

    def persistent_load(self, pid: Any) -> Any:
        raise _CodeInPickle("a persistent id")


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 3, 32, 32) uint8 and labels (N,) int64 of one CIFAR-10 batch file, checked."""
    again = f"delete it and unpack {CIFAR10_URL} again (or pass --download)"
    try:
        with open(path, "rb") as f:
            obj = _ArrayUnpickler(f, encoding="bytes").load()
    except _CodeInPickle as e:
        raise DataError(f"archspec refuses to load {path}: it contains code (it names {e}), not only arrays, and "
                        f"was not run; replace it with the original CIFAR-10 file") from None
    except FileNotFoundError:
        raise DataError(f"CIFAR-10 file {path} is missing; {again}") from None
    except PermissionError:
        raise DataError(f"cannot read {path}: permission denied; make it readable") from None
    except Exception as e:  # noqa: BLE001 - a damaged pickle raises many kinds
        raise DataError(f"{path} is truncated or corrupt ({why(e)}); {again}") from None
    if not isinstance(obj, dict):
        raise DataError(f"{path} is not a CIFAR-10 batch (a pickled dict of data and labels, found "
                        f"{type(obj).__name__}); {again}")
    data = obj.get(b"data", obj.get("data"))
    labels = obj.get(b"labels", obj.get("labels"))
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072 \
            or len(data) == 0:
        what = f"{data.dtype} array of shape {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DataError(f"{path}: its data is a {what}, not N x 3072 uint8 (32x32 RGB images); {again}")
    # a flat list of whole numbers (or an array) of the right length, checked before numpy walks it: nested lists
    # that share their parts (a few bytes of pickle) would make np.asarray walk 2**60 items
    if isinstance(labels, list) and len(labels) == len(data) and \
            all(isinstance(x, int) and not isinstance(x, bool) and -2**63 <= x < 2**63 for x in labels):
        labels = np.asarray(labels, dtype=np.int64)
    elif not isinstance(labels, np.ndarray):
        labels = np.asarray([])
    if labels.shape != (len(data),) or labels.dtype.kind not in "iu":
        raise DataError(f"{path}: its labels are not {len(data)} integers (one per image); {again}")
    if labels.min() < 0 or labels.max() > 9:
        raise DataError(f"{path}: a label is outside 0..9 (found {int(labels.min())}..{int(labels.max())}); {again}")
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def _cifar_folder(root: Path) -> Path:
    """Where the batch files are (or would be): root itself or root/cifar-10-batches-py."""
    for candidate in (root / CIFAR10_FOLDER, root):
        if (candidate / CIFAR10_TRAIN_FILES[0]).exists():
            return candidate
    return root if root.name == CIFAR10_FOLDER else root / CIFAR10_FOLDER


def _cifar_missing(folder: Path) -> Path | None:
    for name in (*CIFAR10_TRAIN_FILES, CIFAR10_TEST_FILE):
        if not (folder / name).is_file():
            return folder / name
    return None


def load_cifar10(config: DataConfig) -> Data:
    root = config.root
    if root is None:
        raise DataError(f"cifar10 needs --data-dir: a folder holding {CIFAR10_FOLDER}/ (from {CIFAR10_URL}); "
                        f"add --download to fetch it there")
    folder = _cifar_folder(root)
    missing = _cifar_missing(folder)
    if missing is not None and config.download:
        download_cifar10(root)
        folder = _cifar_folder(root)
        missing = _cifar_missing(folder)
    if missing is not None:
        raise DataError(f"CIFAR-10 not found: {missing} is missing; unpack the python version ({CIFAR10_URL}) so "
                        f"that {root}/{CIFAR10_FOLDER}/ holds data_batch_1..5 and test_batch, name where it is with "
                        f"--data-dir, or pass --download to fetch it")
    parts = [_read_batch(folder / name) for name in CIFAR10_TRAIN_FILES]
    test_images, test_labels = _read_batch(folder / CIFAR10_TEST_FILE)
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    train_index, val_index = _cifar_split(len(images), config, folder)
    device = config.device
    pool = torch.from_numpy(images).to(device)
    pool_labels = torch.from_numpy(labels).to(device)
    val = torch.from_numpy(val_index).to(device)
    evals: dict[str, tuple[Tensor, Tensor, Tensor | None]] = {}
    if len(val_index):
        evals["val"] = (pool, pool_labels, val)
    evals["test"] = (torch.from_numpy(test_images).to(device), torch.from_numpy(test_labels).to(device), None)
    data = TensorData(config, pool=pool, labels=pool_labels, train_index=torch.from_numpy(train_index).to(device),
                      evals=evals, natural_classes=10, where=f"cifar10 {folder}")
    data.class_names = label_names(folder)
    return data


def label_names(folder: Path) -> list[str] | None:
    """The class names in CIFAR-10's batches.meta (`label_names`), or None when it is absent or unreadable (they
    are only recorded for people; training does not need them)."""
    try:
        with open(folder / CIFAR10_META, "rb") as f:
            meta = _ArrayUnpickler(f, encoding="bytes").load()
    except Exception:  # noqa: BLE001 - absent, damaged, or holding code (which is never run)
        return None
    names = meta.get(b"label_names", meta.get("label_names")) if isinstance(meta, dict) else None
    if not isinstance(names, list) or not 1 <= len(names) <= 10 or \
            not all(isinstance(n, (bytes, str)) and 0 < len(n) <= 100 for n in names):
        return None
    try:
        return [n.decode("utf-8") if isinstance(n, bytes) else n for n in names]
    except UnicodeDecodeError:
        return None


def _cifar_split(n: int, config: DataConfig, folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """Train and val indices of the n training images: a fixed permutation shared by every run and seed."""
    train, val = config.train_size, config.val_size
    if train is None and val is None:
        val = min(5000, n // 10)
    if val is None:
        val = min(n // 10, max(0, n - train))
    if train is None:
        train = n - val
    if train < 1 or train + val > n:
        raise DataError(f"cifar10 train_size {train} + val_size {val} do not fit the {n} training images of "
                        f"{folder}; lower them (--train-size, --val-size)")
    order = fixed_order(n, "cifar10-split")
    return np.sort(order[val:val + train]), np.sort(order[:val])


def download_cifar10(root: Path) -> None:
    """Fetch CIFAR10_URL into `root`, check its MD5, unpack it safely and remove the archive."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".cifar-10-python.", suffix=".tar.gz.part", dir=root)
    except OSError as e:
        raise DataError(f"cannot download CIFAR-10 into {root}: {why(e)}; choose a writable --data-dir") from None
    archive = Path(name)
    try:
        log.info("downloading %s into %s", CIFAR10_URL, root)
        digest = hashlib.md5(usedforsecurity=False)
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(CIFAR10_URL, timeout=60) as response:
                while chunk := response.read(1 << 20):
                    digest.update(chunk)
                    out.write(chunk)
        except (urllib.error.URLError, OSError, ValueError) as e:
            raise DataError(f"cannot download {CIFAR10_URL}: {why(e)}; fetch it by hand and unpack it in "
                            f"{root}") from None
        if digest.hexdigest() != CIFAR10_MD5:
            raise DataError(f"the download of {CIFAR10_URL} is damaged: MD5 {digest.hexdigest()}, expected "
                            f"{CIFAR10_MD5}; try again (or fetch it by hand and unpack it in {root})")
        _safe_unpack(archive, root, CIFAR10_URL)
    finally:
        archive.unlink(missing_ok=True)


def _safe_unpack(archive: Path, dest: Path, origin: str) -> None:
    """Unpack a .tar.gz into dest: only plain files and folders under dest, never links or paths that escape."""
    staging = Path(tempfile.mkdtemp(prefix=".unpack-", dir=dest))
    try:
        try:
            with tarfile.open(archive, "r:*") as tar:
                members = tar.getmembers()
                for m in members:
                    _check_member(m, origin)
                if hasattr(tarfile, "data_filter"):
                    tar.extractall(staging, members=members, filter="data")
                else:  # Python without extraction filters: the members were checked above
                    tar.extractall(staging, members=members)
        except (tarfile.TarError, OSError, EOFError) as e:
            raise DataError(f"cannot unpack {origin}: {why(e)}; delete what is in {dest} and try again") from None
        for path in sorted(staging.rglob("*")):
            if path.is_file():
                target = dest / path.relative_to(staging)
                target.parent.mkdir(parents=True, exist_ok=True)
                with atomic_path(target) as tmp:  # moved into place whole, flushed to disk
                    path.replace(tmp)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _check_member(member: tarfile.TarInfo, origin: str) -> None:
    name = member.name
    parts = PurePosixPath(name.replace("\\", "/")).parts
    reason = None
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        reason = "has an absolute path"
    elif ".." in parts:
        reason = "points outside the folder (..)"
    elif member.issym() or member.islnk():
        reason = "is a link"
    elif not (member.isfile() or member.isdir()):
        reason = "is not a plain file or folder"
    if reason:
        raise DataError(f"refusing to unpack {origin}: its member {name!r} {reason}; it is not the CIFAR-10 archive")


