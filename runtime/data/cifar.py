"""CIFAR-10 and CIFAR-100 files: a safe unpickler, the 50k/10k split, and the checksum-verified download.

Both come as python pickles of N x 3072 uint8 images and their labels; one reader serves both, told what to expect
by the dataset's `CifarKind` (folder, files, label key, classes, URL, MD5)."""

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
from dataclasses import dataclass
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

CIFAR100_URL = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
CIFAR100_MD5 = "eb9058c3a382ffc7106e4002c42a8d85"
CIFAR100_FOLDER = "cifar-100-python"
CIFAR100_TRAIN_FILES = ("train",)
CIFAR100_TEST_FILE = "test"
CIFAR100_META = "meta"  # the class names (fine_label_names, coarse_label_names)


@dataclass(frozen=True)
class CifarKind:
    """What one of the CIFAR datasets looks like on disk and where it comes from."""

    name: str                     # the dataset's name in a recipe: cifar10 | cifar100
    title: str                    # its name for people: CIFAR-10 | CIFAR-100
    folder: str                   # the folder its archive unpacks to
    train_files: tuple[str, ...]  # the 50000 training images, in order
    test_file: str                # the 10000 test images
    meta: str                     # the class names
    files_text: str               # the required files, for messages
    labels: dict[str, tuple[str, str, int]]  # label set -> (labels key, class names key, classes); first: default
    url: str
    md5: str

    def label_set(self, labels: str | None) -> tuple[str, str, int]:
        return self.labels[labels or next(iter(self.labels))]


def cifar_kind(name: str) -> CifarKind:
    """The description of dataset `name` (made when asked, so that the URL and MD5 are the module's current ones)."""
    if name == "cifar100":
        return CifarKind("cifar100", "CIFAR-100", CIFAR100_FOLDER, CIFAR100_TRAIN_FILES, CIFAR100_TEST_FILE,
                         CIFAR100_META, "train and test",
                         {"fine": ("fine_labels", "fine_label_names", 100),
                          "coarse": ("coarse_labels", "coarse_label_names", 20)}, CIFAR100_URL, CIFAR100_MD5)
    return CifarKind("cifar10", "CIFAR-10", CIFAR10_FOLDER, CIFAR10_TRAIN_FILES, CIFAR10_TEST_FILE, CIFAR10_META,
                     "data_batch_1..5 and test_batch", {"fine": ("labels", "label_names", 10)}, CIFAR10_URL,
                     CIFAR10_MD5)


# ----------------------------------------------------------------------------------------------------------------
# The files


class _CodeInPickle(Exception):
    pass


def _array_globals() -> dict[tuple[str, str], Any]:
    """The only globals a CIFAR pickle may name: what numpy needs to rebuild an array, under its old and new
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


def _entry(obj: dict, key: str) -> Any:
    """obj[key] as python 3 (bytes keys) or python 2 (str keys) wrote it; None if absent."""
    found = obj.get(key.encode())
    return obj.get(key) if found is None else found


def _read_batch(path: Path, kind: CifarKind | None = None, labels: str | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 3, 32, 32) uint8 and labels (N,) int64 of one CIFAR batch file, checked. `kind` None: the
    dataset the file is of (CIFAR-100 where it has fine_labels, else CIFAR-10); `labels`: the label set (None:
    the first, fine; CIFAR-100 also has coarse, its 20 superclasses)."""
    guessed = kind is None
    kind = kind or cifar_kind("cifar10")
    again = f"delete it and unpack {kind.url} again (or pass --download)"
    try:
        with open(path, "rb") as f:
            obj = _ArrayUnpickler(f, encoding="bytes").load()
    except _CodeInPickle as e:
        raise DataError(f"archspec refuses to load {path}: it contains code (it names {e}), not only arrays, and "
                        f"was not run; replace it with the original {kind.title} file") from None
    except FileNotFoundError:
        raise DataError(f"{kind.title} file {path} is missing; {again}") from None
    except PermissionError:
        raise DataError(f"cannot read {path}: permission denied; make it readable") from None
    except Exception as e:  # noqa: BLE001 - a damaged pickle raises many kinds
        raise DataError(f"{path} is truncated or corrupt ({why(e)}); {again}") from None
    if guessed and isinstance(obj, dict) and _entry(obj, "fine_labels") is not None:
        kind = cifar_kind("cifar100")
        again = f"delete it and unpack {kind.url} again (or pass --download)"
    key, _, classes = kind.label_set(labels)
    if not isinstance(obj, dict):
        raise DataError(f"{path} is not a {kind.title} batch (a pickled dict of data and {key}, found "
                        f"{type(obj).__name__}); {again}")
    data = _entry(obj, "data")
    found = _entry(obj, key)
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072 \
            or len(data) == 0:
        what = f"{data.dtype} array of shape {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DataError(f"{path}: its data is a {what}, not N x 3072 uint8 (32x32 RGB images); {again}")
    # a flat list of whole numbers (or an array) of the right length, checked before numpy walks it: nested lists
    # that share their parts (a few bytes of pickle) would make np.asarray walk 2**60 items
    if isinstance(found, list) and len(found) == len(data) and \
            all(isinstance(x, int) and not isinstance(x, bool) and -2**63 <= x < 2**63 for x in found):
        found = np.asarray(found, dtype=np.int64)
    elif not isinstance(found, np.ndarray):
        found = np.asarray([])
    if found.shape != (len(data),) or found.dtype.kind not in "iu":
        raise DataError(f"{path}: its {key} are not {len(data)} integers (one per image); {again}")
    if found.min() < 0 or found.max() > classes - 1:
        noun = key[:-1].replace("_", " ")  # labels -> label, fine_labels -> fine label
        raise DataError(f"{path}: a {noun} is outside 0..{classes - 1} (found {int(found.min())}.."
                        f"{int(found.max())}); {again}")
    return data.reshape(-1, 3, 32, 32), found.astype(np.int64)


def _cifar_folder(root: Path, kind: CifarKind) -> Path:
    """Where the files are (or would be): root itself or root/<the kind's folder>."""
    for candidate in (root / kind.folder, root):
        if (candidate / kind.train_files[0]).exists():
            return candidate
    return root if root.name == kind.folder else root / kind.folder


def _cifar_missing(folder: Path, kind: CifarKind) -> Path | None:
    for name in (*kind.train_files, kind.test_file):
        if not (folder / name).is_file():
            return folder / name
    return None


def load_cifar(config: DataConfig) -> Data:
    """CIFAR-10 or CIFAR-100 (`config.name`; `config.labels` picks CIFAR-100's label set), in memory on the
    device."""
    kind = cifar_kind(config.name)
    root = config.root
    if root is None:
        raise DataError(f"{kind.name} needs --data-dir: a folder holding {kind.folder}/ (from {kind.url}); "
                        f"add --download to fetch it there")
    folder = _cifar_folder(root, kind)
    missing = _cifar_missing(folder, kind)
    if missing is not None and config.download:
        download_cifar(root, kind)
        folder = _cifar_folder(root, kind)
        missing = _cifar_missing(folder, kind)
    if missing is not None:
        raise DataError(f"{kind.title} not found: {missing} is missing; unpack the python version ({kind.url}) so "
                        f"that {root}/{kind.folder}/ holds {kind.files_text}, name where it is with --data-dir, or "
                        f"pass --download to fetch it")
    parts = [_read_batch(folder / name, kind, config.labels) for name in kind.train_files]
    test_images, test_labels = _read_batch(folder / kind.test_file, kind, config.labels)
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    train_index, val_index = _cifar_split(len(images), config, folder, kind)
    device = config.device
    pool = torch.from_numpy(images).to(device)
    pool_labels = torch.from_numpy(labels).to(device)
    val = torch.from_numpy(val_index).to(device)
    evals: dict[str, tuple[Tensor, Tensor, Tensor | None]] = {}
    if len(val_index):
        evals["val"] = (pool, pool_labels, val)
    evals["test"] = (torch.from_numpy(test_images).to(device), torch.from_numpy(test_labels).to(device), None)
    classes = kind.label_set(config.labels)[2]
    where = f"{kind.name} {folder}" + (" (coarse labels)" if config.labels == "coarse" else "")
    data = TensorData(config, pool=pool, labels=pool_labels, train_index=torch.from_numpy(train_index).to(device),
                      evals=evals, natural_classes=classes, where=where)
    data.class_names = label_names(folder, kind, config.labels)
    return data


def label_names(folder: Path, kind: CifarKind | None = None, labels: str | None = None) -> list[str] | None:
    """The class names in the dataset's meta file (CIFAR-10's batches.meta `label_names`, CIFAR-100's meta
    `fine_label_names` or `coarse_label_names`), or None when it is absent or unreadable (they are only recorded
    for people; training does not need them)."""
    kind = kind or cifar_kind("cifar10")
    _, key, classes = kind.label_set(labels)
    try:
        with open(folder / kind.meta, "rb") as f:
            meta = _ArrayUnpickler(f, encoding="bytes").load()
    except Exception:  # noqa: BLE001 - absent, damaged, or holding code (which is never run)
        return None
    names = _entry(meta, key) if isinstance(meta, dict) else None
    if not isinstance(names, list) or len(names) != classes or \
            not all(isinstance(n, (bytes, str)) and 0 < len(n) <= 100 for n in names):
        return None
    try:
        return [n.decode("utf-8") if isinstance(n, bytes) else n for n in names]
    except UnicodeDecodeError:
        return None


def _cifar_split(n: int, config: DataConfig, folder: Path, kind: CifarKind) -> tuple[np.ndarray, np.ndarray]:
    """Train and val indices of the n training images: a fixed permutation (one per dataset) shared by every run
    and seed."""
    train, val = config.train_size, config.val_size
    if train is None and val is None:
        val = min(5000, n // 10)
    if val is None:
        val = min(n // 10, max(0, n - train))
    if train is None:
        train = n - val
    if train < 1 or train + val > n:
        raise DataError(f"{kind.name} train_size {train} + val_size {val} do not fit the {n} training images of "
                        f"{folder}; lower them (--train-size, --val-size)")
    order = fixed_order(n, f"{kind.name}-split")
    return np.sort(order[val:val + train]), np.sort(order[:val])


def download_cifar(root: Path, kind: CifarKind) -> None:
    """Fetch the kind's archive into `root`, check its MD5, unpack it safely and remove the archive."""
    url = kind.url
    try:
        root.mkdir(parents=True, exist_ok=True)
        stem = PurePosixPath(url).name.removesuffix(".tar.gz")
        fd, name = tempfile.mkstemp(prefix=f".{stem}.", suffix=".tar.gz.part", dir=root)
    except OSError as e:
        raise DataError(f"cannot download {kind.title} into {root}: {why(e)}; choose a writable --data-dir") from None
    archive = Path(name)
    try:
        log.info("downloading %s into %s", url, root)
        digest = hashlib.md5(usedforsecurity=False)
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
                while chunk := response.read(1 << 20):
                    digest.update(chunk)
                    out.write(chunk)
        except (urllib.error.URLError, OSError, ValueError) as e:
            raise DataError(f"cannot download {url}: {why(e)}; fetch it by hand and unpack it in {root}") from None
        if digest.hexdigest() != kind.md5:
            raise DataError(f"the download of {url} is damaged: MD5 {digest.hexdigest()}, expected "
                            f"{kind.md5}; try again (or fetch it by hand and unpack it in {root})")
        _safe_unpack(archive, root, url, kind.title)
    finally:
        archive.unlink(missing_ok=True)


def _safe_unpack(archive: Path, dest: Path, origin: str, title: str) -> None:
    """Unpack a .tar.gz into dest: only plain files and folders under dest, never links or paths that escape."""
    staging = Path(tempfile.mkdtemp(prefix=".unpack-", dir=dest))
    try:
        try:
            with tarfile.open(archive, "r:*") as tar:
                members = tar.getmembers()
                for m in members:
                    _check_member(m, origin, title)
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


def _check_member(member: tarfile.TarInfo, origin: str, title: str) -> None:
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
        raise DataError(f"refusing to unpack {origin}: its member {name!r} {reason}; it is not the {title} archive")


