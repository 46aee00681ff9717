"""The data layer of `archspec train`: CIFAR-10 files (safe unpickling, download), image folders, synthetic data,
normalisation, augmentation and exact resume."""

from __future__ import annotations

import hashlib
import io
import pickle
import struct
import tarfile
from itertools import islice
from pathlib import Path

import numpy as np
import pytest
from hostile_pickle import Exploit  # tests/ is on pytest's pythonpath
import torch

from archspec.runtime import data as D
from archspec.runtime.data import cifar as cifar_files
from archspec.runtime.data import folder as folder_files
from archspec.runtime.data import DataConfig, DataError, make_data

CPU = torch.device("cpu")
PER_BATCH = 200  # images per CIFAR batch file: 1000 training images, 200 test images


# ----------------------------------------------------------------------------------------------------------------
# Helpers


def cifar_pickle(images: np.ndarray, labels: list[int]) -> bytes:
    """A batch file as CIFAR-10 has it: a protocol-2 pickle naming numpy.core (as numpy 1 / Python 2 wrote it)."""
    blob = pickle.dumps({b"batch_label": b"batch", b"labels": labels, b"data": images,
                         b"filenames": [b"x.png"] * len(labels)}, protocol=2)
    return blob.replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")


def py2_pickle(images: np.ndarray, labels: list[int]) -> bytes:
    """A batch file byte for byte as Python 2 and numpy 1 wrote CIFAR-10: str (not bytes) objects, numpy.core."""
    def string(b: bytes) -> bytes:  # BINSTRING: a Python 2 str
        return b"T" + struct.pack("<i", len(b)) + b

    def integer(v: int) -> bytes:
        return b"J" + struct.pack("<i", v)

    n, width = images.shape
    array = (b"cnumpy.core.multiarray\n_reconstruct\n" + b"cnumpy\nndarray\n" + integer(0) + b"\x85" + string(b"b")
             + b"\x87R" + b"(" + integer(1) + integer(n) + integer(width) + b"\x86" + b"cnumpy\ndtype\n"
             + string(b"u1") + integer(0) + integer(1) + b"\x87R" + b"(" + integer(3) + string(b"|")
             + b"NNN" + integer(-1) + integer(-1) + integer(0) + b"tb" + b"\x89" + string(images.tobytes()) + b"tb")
    return (b"\x80\x02}(" + string(b"data") + array + string(b"labels") + b"](" + b"".join(map(integer, labels))
            + b"e" + b"u.")


def write_cifar(root: Path, n: int = PER_BATCH, seed: int = 0) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for name in [f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]:
        images = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, n)]
        (folder / name).write_bytes(cifar_pickle(images, labels))
    return folder


def cifar(root: Path, **kw) -> D.Data:
    args = dict(name="cifar10", root=root, batch_size=32, seed=0, device=CPU, train_size=900, val_size=100)
    return make_data(DataConfig(**{**args, **kw}))


def collect(stream, n: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    batches = list(islice(stream, n)) if n is not None else list(stream)
    return torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches])


def as_u8(x: torch.Tensor) -> torch.Tensor:
    """Images normalised with normalize="none" back to 0..255."""
    return (x * 255).round().to(torch.uint8)


def same_batches(a: list, b: list) -> bool:
    return len(a) == len(b) and all(torch.equal(x1, x2) and torch.equal(y1, y2) for (x1, y1), (x2, y2) in zip(a, b))


def one_line(e: pytest.ExceptionInfo) -> str:
    text = str(e.value)
    assert "\n" not in text and text
    return text


def write_folder(root: Path, train: int = 6, val: int = 3, classes=("cat", "dog"), val_classes=None) -> Path:
    from PIL import Image

    rng = np.random.default_rng(1)
    sizes = [(40, 30), (30, 50), (64, 48), (48, 64), (36, 36), (80, 40)]
    for split, count, names in (("train", train, classes), ("val", val, val_classes or classes)):
        for c, name in enumerate(names):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for k in range(count):
                w, h = sizes[k % len(sizes)]
                pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
                suffix = ".png" if k == 1 else (".jpg" if k == 2 else ".JPEG")
                Image.fromarray(pixels).save(folder / f"img{k}{suffix}")
    (root / "train" / classes[0] / "notes.txt").write_text("not an image")
    return root


FOLDER_AUGMENT = [{"op": "scale_jitter", "min": 36, "max": 48}, {"op": "random_crop", "size": 32},
                  {"op": "hflip"}, {"op": "lighting", "alphastd": 0.1}]


def folder(root: Path, **kw) -> D.Data:
    args = dict(name="imagenet_folder", root=root, batch_size=4, seed=3, device=CPU, image_size=32, eval_resize=36,
                workers=0, augment=FOLDER_AUGMENT)
    return make_data(DataConfig(**{**args, **kw}))


# ----------------------------------------------------------------------------------------------------------------
# CIFAR-10


def test_cifar_loads_with_shapes_sizes_and_labels(tmp_path):
    write_cifar(tmp_path)
    data = cifar(tmp_path, normalize="none")
    assert (data.num_classes, data.input_shape, data.train_size) == (10, (3, 32, 32), 900)
    assert data.iters_per_epoch == 900 // 32 and data.splits == ("val", "test")
    x, y = next(data.train_iter(0))
    assert x.shape == (32, 3, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert x.device == CPU and y.device == CPU
    for split, n in (("val", 100), ("test", PER_BATCH), ("train", 900)):
        x, y = collect(data.eval_iter(split, batch_size=64))
        assert x.shape == (n, 3, 32, 32) and y.shape == (n,)
        assert 0 <= int(y.min()) and int(y.max()) <= 9
        assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    assert "\n" not in data.describe() and "900" in data.describe()
    assert data.train_iter(0).wait_seconds() == 0.0


def test_cifar_root_may_be_the_batches_folder(tmp_path):
    batches = write_cifar(tmp_path)
    a, b = cifar(tmp_path), cifar(batches)
    assert torch.equal(collect(a.eval_iter("test"))[0], collect(b.eval_iter("test"))[0])


def test_cifar_file_contents_and_order_are_kept(tmp_path):
    write_cifar(tmp_path)
    data = cifar(tmp_path, normalize="none")
    x, y = collect(data.eval_iter("test"))
    blob = pickle.loads((tmp_path / "cifar-10-batches-py" / "test_batch").read_bytes(), encoding="bytes")
    assert torch.equal(as_u8(x), torch.from_numpy(blob[b"data"]).reshape(-1, 3, 32, 32))
    assert y.tolist() == blob[b"labels"]


def test_cifar_reads_python2_pickles(tmp_path):
    folder = write_cifar(tmp_path)
    images = np.random.default_rng(7).integers(0, 256, (PER_BATCH, 3072), dtype=np.uint8)
    labels = [k % 10 for k in range(PER_BATCH)]
    (folder / "test_batch").write_bytes(py2_pickle(images, labels))
    x, y = collect(cifar(tmp_path, normalize="none").eval_iter("test"))
    assert torch.equal(as_u8(x), torch.from_numpy(images).reshape(-1, 3, 32, 32)) and y.tolist() == labels


def test_split_sizes_and_the_split_does_not_depend_on_the_run_seed(tmp_path):
    write_cifar(tmp_path)
    a, b = cifar(tmp_path, seed=1), cifar(tmp_path, seed=2)
    assert torch.equal(a.train_index, b.train_index)
    assert torch.equal(collect(a.eval_iter("val"))[0], collect(b.eval_iter("val"))[0])
    val = set(a.evals["val"][2].tolist())
    train = set(a.train_index.tolist())
    assert len(val) == 100 and len(train) == 900 and not val & train
    assert not torch.equal(next(a.train_iter(0))[1], next(b.train_iter(0))[1])  # the run seed orders epochs
    smaller = cifar(tmp_path, train_size=500, val_size=0)
    assert smaller.train_size == 500 and smaller.splits == ("test",)
    defaults = cifar(tmp_path, train_size=None, val_size=None)
    assert (defaults.train_size, len(defaults.evals["val"][2])) == (900, 100)  # 45000/5000 at full size


def test_split_sizes_that_do_not_fit(tmp_path):
    write_cifar(tmp_path)
    with pytest.raises(DataError) as e:
        cifar(tmp_path, train_size=950, val_size=100)
    assert "1000 training images" in one_line(e)


def test_per_pixel_mean_is_subtracted(tmp_path):
    write_cifar(tmp_path)
    x, _ = collect(cifar(tmp_path).eval_iter("train", batch_size=500))
    assert x.mean(0).abs().max() < 1e-5 and x.abs().max() <= 1.0
    raw, _ = collect(cifar(tmp_path, normalize="none").eval_iter("train", batch_size=500))
    assert torch.allclose(x, raw - raw.mean(0), atol=1e-5)
    test, _ = collect(cifar(tmp_path).eval_iter("test"))
    raw_test, _ = collect(cifar(tmp_path, normalize="none").eval_iter("test"))
    assert torch.allclose(test, raw_test - raw.mean(0), atol=1e-5)  # the train mean, for every split


def test_per_channel_normalisation(tmp_path):
    write_cifar(tmp_path)
    x, _ = collect(cifar(tmp_path, normalize="per_channel").eval_iter("train", batch_size=500))
    assert x.mean(dim=(0, 2, 3)).abs().max() < 1e-4
    assert (x.std(dim=(0, 2, 3)) - 1).abs().max() < 1e-3


def test_train_iter_is_deterministic_and_resumes_exactly(tmp_path):
    write_cifar(tmp_path)
    augment = [{"op": "pad_crop", "pad": 4, "size": 32}, {"op": "hflip"}, {"op": "lighting", "alphastd": 0.1}]
    data = cifar(tmp_path, augment=augment, batch_size=200)  # 4 iterations per epoch: resume crosses epochs
    first = list(islice(data.train_iter(0), 7))
    assert same_batches(first[5:], list(islice(data.train_iter(5), 2)))
    assert same_batches(first, list(islice(cifar(tmp_path, augment=augment, batch_size=200).train_iter(0), 7)))
    epoch0 = torch.cat([y for _, y in first[:4]])
    epoch1 = torch.cat([y for _, y in first[4:7]])
    assert sorted(epoch0.tolist()) != epoch0.tolist() and not torch.equal(epoch0[:600], epoch1)
    other = list(islice(cifar(tmp_path, augment=augment, batch_size=200, seed=9).train_iter(0), 1))
    assert not torch.equal(other[0][0], first[0][0])


def test_train_epoch_visits_every_image_once(tmp_path):
    write_cifar(tmp_path)
    data = cifar(tmp_path, normalize="none", batch_size=300)  # 3 iterations, 0 dropped
    seen = {as_u8(img).numpy().tobytes() for x, _ in islice(data.train_iter(0), 3) for img in x}
    originals = {as_u8(img).numpy().tobytes() for img in collect(data.eval_iter("train"))[0]}
    assert seen == originals


def test_pad_crop_is_a_crop_of_the_padded_image(tmp_path):
    write_cifar(tmp_path)
    augment = [{"op": "pad_crop", "pad": 4, "size": 32}]
    data = cifar(tmp_path, normalize="none", augment=augment, train_size=100, val_size=0, batch_size=50)
    originals = as_u8(collect(data.eval_iter("train"))[0])
    padded = torch.nn.functional.pad(originals, (4, 4, 4, 4))
    crops = {}
    for dy in range(9):
        for dx in range(9):
            for n, img in enumerate(padded[:, :, dy:dy + 32, dx:dx + 32]):
                crops[img.numpy().tobytes()] = (n, dy, dx)
    x, _ = collect(data.train_iter(0), 4)
    offsets = [crops.get(img.numpy().tobytes()) for img in as_u8(x)]
    assert all(o is not None for o in offsets)  # every image is a crop of a zero-padded original
    assert sum((dy, dx) != (4, 4) for _, dy, dx in offsets) > 150  # and most are moved
    assert len({(dy, dx) for _, dy, dx in offsets}) > 40


def test_hflip_flips_about_half_of_the_images(tmp_path):
    write_cifar(tmp_path)
    data = cifar(tmp_path, normalize="none", augment=[{"op": "hflip"}], batch_size=300)
    originals = as_u8(collect(data.eval_iter("train"))[0])
    plain = {img.numpy().tobytes() for img in originals}
    flipped = {img.flip(-1).numpy().tobytes() for img in originals}
    x, _ = collect(data.train_iter(0), 6)  # two epochs, 1800 images
    keys = [img.numpy().tobytes() for img in as_u8(x)]
    assert all(k in plain or k in flipped for k in keys)
    share = sum(k in flipped for k in keys) / len(keys)
    assert 0.45 < share < 0.55
    never = cifar(tmp_path, normalize="none", augment=[{"op": "hflip", "p": 0.0}], batch_size=300)
    assert all(img.numpy().tobytes() in plain for img in as_u8(next(never.train_iter(0))[0]))


def test_random_crop_changes_the_input_shape(tmp_path):
    write_cifar(tmp_path)
    data = cifar(tmp_path, augment=[{"op": "random_crop", "size": 28}], eval_views=10)
    assert data.input_shape == (3, 28, 28)
    assert next(data.train_iter(0))[0].shape == (32, 3, 28, 28)
    x, y = next(data.eval_iter("test", batch_size=8))
    assert x.shape == (80, 3, 28, 28) and y.shape == (8,)
    assert torch.equal(x[5], x[0].flip(-1))


def test_cifar_missing_says_where_and_how_to_download(tmp_path):
    with pytest.raises(DataError) as e:
        cifar(tmp_path)
    text = one_line(e)
    assert cifar_files.CIFAR10_URL in text and "--download" in text and "data_batch_1" in text and str(tmp_path) in text
    write_cifar(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "test_batch").unlink()
    with pytest.raises(DataError) as e:
        cifar(tmp_path)
    assert "test_batch" in one_line(e)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_cifar_damaged_file(tmp_path, damage):
    path = write_cifar(tmp_path) / "data_batch_3"
    blob = path.read_bytes()
    path.write_bytes({"garbage": b"\x89PNG not a pickle at all", "truncated": blob[:len(blob) // 2],
                      "empty": b""}[damage])
    with pytest.raises(DataError) as e:
        cifar(tmp_path)
    text = one_line(e)
    assert str(path) in text and "corrupt" in text


def test_cifar_malicious_pickle_is_never_run(tmp_path):
    path = write_cifar(tmp_path) / "data_batch_2"
    marker = tmp_path / "pwned"
    path.write_bytes(pickle.dumps({b"data": Exploit(marker), b"labels": [0]}, protocol=2))
    with pytest.raises(DataError) as e:
        cifar(tmp_path)
    text = one_line(e)
    assert "refuses to load" in text and "contains code" in text and str(path) in text
    assert not marker.exists()
    # the same file given to plain pickle would have run the command
    pickle.loads(path.read_bytes())
    assert marker.exists()


def test_cifar_wrong_shape_and_labels(tmp_path):
    folder = write_cifar(tmp_path)
    images = np.zeros((PER_BATCH, 1024), dtype=np.uint8)
    (folder / "data_batch_4").write_bytes(cifar_pickle(images, [0] * PER_BATCH))
    with pytest.raises(DataError) as e:
        cifar(tmp_path)
    assert "data_batch_4" in one_line(e) and "3072" in str(e.value)
    folder = write_cifar(tmp_path)
    images = np.zeros((PER_BATCH, 3072), dtype=np.uint8)
    (folder / "test_batch").write_bytes(cifar_pickle(images, [10] * PER_BATCH))
    with pytest.raises(DataError) as e:
        cifar(tmp_path)
    assert "test_batch" in one_line(e) and "0..9" in str(e.value)
    (folder / "test_batch").write_bytes(cifar_pickle(images, [1] * (PER_BATCH - 1)))
    with pytest.raises(DataError) as e:
        cifar(tmp_path)
    assert "labels" in one_line(e)


def _tarball(path: Path, source: Path) -> str:
    with tarfile.open(path, "w:gz") as tar:
        tar.add(source / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_download_checks_the_md5_and_unpacks(tmp_path, monkeypatch):
    write_cifar(tmp_path / "src")
    archive = tmp_path / "cifar-10-python.tar.gz"
    md5 = _tarball(archive, tmp_path / "src")
    monkeypatch.setattr(cifar_files, "CIFAR10_URL", archive.as_uri())
    monkeypatch.setattr(cifar_files, "CIFAR10_MD5", md5)
    root = tmp_path / "data"
    data = cifar(root, download=True)
    assert data.train_size == 900
    assert sorted(p.name for p in root.iterdir()) == ["cifar-10-batches-py"]  # archive and staging removed
    expect = collect(cifar(tmp_path / "src").eval_iter("test"))[0]
    assert torch.equal(collect(data.eval_iter("test"))[0], expect)
    assert cifar(root, download=True).train_size == 900  # present: nothing fetched (the URL is not needed)


def test_download_with_a_wrong_md5_is_refused(tmp_path, monkeypatch):
    write_cifar(tmp_path / "src")
    archive = tmp_path / "cifar-10-python.tar.gz"
    md5 = _tarball(archive, tmp_path / "src")
    monkeypatch.setattr(cifar_files, "CIFAR10_URL", archive.as_uri())
    root = tmp_path / "data"
    with pytest.raises(DataError) as e:
        cifar(root, download=True)
    text = one_line(e)
    assert md5 in text and cifar_files.CIFAR10_MD5 in text
    assert list(root.iterdir()) == []
    monkeypatch.setattr(cifar_files, "CIFAR10_URL", (tmp_path / "absent.tar.gz").as_uri())
    with pytest.raises(DataError) as e:
        cifar(root, download=True)
    assert "cannot download" in one_line(e)


@pytest.mark.parametrize("member", ["../escaped", "/tmp/absolute-archspec-test", "link"])
def test_download_refuses_members_outside_the_folder_and_links(tmp_path, monkeypatch, member):
    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo(member)
        if member == "link":
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tar.addfile(info)
        else:
            info.size = 3
            tar.addfile(info, io.BytesIO(b"bad"))
    monkeypatch.setattr(cifar_files, "CIFAR10_URL", archive.as_uri())
    monkeypatch.setattr(cifar_files, "CIFAR10_MD5", hashlib.md5(archive.read_bytes()).hexdigest())
    root = tmp_path / "data"
    with pytest.raises(DataError) as e:
        cifar(root, download=True)
    assert "refusing to unpack" in one_line(e) and repr(member) in str(e.value)
    assert not (tmp_path / "escaped").exists() and list(root.iterdir()) == []


def test_data_never_touches_the_global_rngs(tmp_path):
    write_cifar(tmp_path)
    torch.manual_seed(0)
    state = torch.get_rng_state()
    np_state = np.random.get_state()[1].copy()
    data = cifar(tmp_path, augment=[{"op": "pad_crop", "pad": 4}, {"op": "hflip"}])
    list(islice(data.train_iter(0), 3))
    assert torch.equal(torch.get_rng_state(), state) and np.array_equal(np.random.get_state()[1], np_state)


@pytest.mark.parametrize("change, words", [
    ({"name": "mnist"}, "unknown dataset"),
    ({"normalize": "zca"}, "unknown normalize"),
    ({"augment": [{"op": "rotate"}]}, "unknown augment op"),
    ({"augment": [{"op": "hflip", "q": 1}]}, "no parameter 'q'"),
    ({"augment": [{"op": "scale_jitter", "min": 256, "max": 480}]}, "does not apply to cifar10"),
    ({"augment": [{"op": "pad_crop", "pad": 1, "size": 40}]}, "larger than"),
    ({"eval_views": 5}, "eval views"),
    ({"batch_size": 0}, "batch_size"),
    ({"classes": 5}, "classes"),
    ({"image_size": 224}, "image_size"),
])
def test_bad_options(tmp_path, change, words):
    write_cifar(tmp_path)
    with pytest.raises(DataError) as e:
        cifar(tmp_path, **change)
    assert words in one_line(e)


# ----------------------------------------------------------------------------------------------------------------
# Image folders


def test_folder_train_batches_and_exact_resume(tmp_path):
    data = folder(write_folder(tmp_path))
    assert (data.num_classes, data.train_size, data.iters_per_epoch, data.splits) == (2, 12, 3, ("val",))
    assert data.input_shape == (3, 32, 32)
    first = list(islice(data.train_iter(0), 5))  # crosses into epoch 1
    for x, y in first:
        assert x.shape == (4, 3, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64
        assert set(y.tolist()) <= {0, 1}
    assert same_batches(first[2:], list(islice(data.train_iter(2), 3)))
    assert not torch.equal(first[0][0], first[3][0])
    epoch = torch.cat([y for _, y in first[:3]])
    assert sorted(epoch.tolist()) == [0] * 6 + [1] * 6
    stream = data.train_iter(0)
    next(stream)
    assert stream.wait_seconds() > 0
    text = data.describe()
    assert "\n" not in text and "12" in text and "workers 0" in text


def test_folder_mean_is_estimated_once_and_cached(tmp_path, monkeypatch):
    root = write_folder(tmp_path)
    data = folder(root)
    cache = root / ".archspec-mean-32.pt"
    assert cache.is_file()
    x, _ = collect(data.eval_iter("train", batch_size=5))
    assert x.mean(0).abs().max() < 1e-4  # the centre crops of all 12 train images define the mean

    def no_estimate(*args):
        raise AssertionError("estimated again")

    monkeypatch.setattr(folder_files.FolderData, "_estimate", no_estimate)
    again = folder(root)
    assert torch.equal(again.norm.mean, data.norm.mean)
    monkeypatch.undo()
    cache.write_bytes(b"damaged")
    assert torch.allclose(folder(root).norm.mean, data.norm.mean)  # recomputed
    per_channel = folder(root, normalize="per_channel")
    assert per_channel.norm.mean.shape == (3, 1, 1)


def test_folder_eval_single_and_ten_crop(tmp_path):
    root = write_folder(tmp_path)
    one = folder(root, normalize="none")
    x, y = collect(one.eval_iter("val", batch_size=4))
    assert x.shape == (6, 3, 32, 32) and y.tolist() == [0, 0, 0, 1, 1, 1]
    assert torch.equal(x, collect(one.eval_iter("val", batch_size=4))[0])  # same every time
    ten = folder(root, normalize="none", eval_views=10)
    batches = list(ten.eval_iter("val", batch_size=4))
    assert [tuple(b[0].shape) for b in batches] == [(40, 3, 32, 32), (20, 3, 32, 32)]
    assert [tuple(b[1].shape) for b in batches] == [(4,), (2,)]
    views = torch.cat([b[0] for b in batches]).reshape(6, 10, 3, 32, 32)
    assert torch.equal(views[:, 4], x)  # view 4 is the centre crop
    assert torch.equal(views[:, 5:], views[:, :5].flip(-1))
    assert not torch.equal(views[:, 0], views[:, 3])


def test_folder_workers_give_the_same_batches(tmp_path):
    root = write_folder(tmp_path)
    base = list(islice(folder(root).train_iter(1), 3))
    torch.manual_seed(0)
    state = torch.get_rng_state()
    data = folder(root, workers=2)
    stream = data.train_iter(1)
    assert same_batches(base, list(islice(stream, 3)))
    stream.close()
    assert torch.equal(torch.get_rng_state(), state)
    assert "2 workers" in data.describe()


def test_folder_missing_val_and_class_mismatch(tmp_path):
    root = write_folder(tmp_path / "a", val_classes=("cat", "eel"))
    with pytest.raises(DataError) as e:
        folder(root)
    text = one_line(e)
    assert "class folders differ" in text and "'dog'" in text and str(root / "val") in text
    root = write_folder(tmp_path / "b")
    for path in (root / "val").rglob("*"):
        if path.is_file():
            path.unlink()
    with pytest.raises(DataError) as e:
        folder(root)
    assert "holds no images" in one_line(e)
    for path in sorted((root / "val").rglob("*"), reverse=True):
        path.rmdir()
    (root / "val").rmdir()
    with pytest.raises(DataError) as e:
        folder(root)
    assert str(root / "val") in one_line(e) and "missing" in str(e.value)


def test_folder_corrupt_image(tmp_path):
    root = write_folder(tmp_path)
    bad = root / "train" / "dog" / "img3.JPEG"
    bad.write_bytes(bad.read_bytes()[:40])
    with pytest.raises(DataError) as e:
        folder(root)  # the mean estimate reads it
    assert str(bad) in one_line(e) and "cannot read image" in str(e.value)
    data = folder(root, normalize="none", workers=2)  # through a worker process: still one line
    with pytest.raises(DataError) as e:
        list(islice(data.train_iter(0), 3))
    assert str(bad) in one_line(e) and str(e.value).startswith("cannot read image")


def test_folder_classes_and_caps(tmp_path):
    root = write_folder(tmp_path)
    assert folder(root, classes=1000, train_size=5, normalize="none").num_classes == 1000
    assert folder(root, train_size=5, normalize="none").train_size == 5
    with pytest.raises(DataError) as e:
        folder(root, classes=1)
    assert "classes" in one_line(e)
    fixres = folder(root, augment=[{"op": "random_crop", "size": 24}])  # FixRes: train at 24, evaluate at 32
    assert (fixres.train_shape, fixres.input_shape) == ((3, 24, 24), (3, 32, 32))


# ----------------------------------------------------------------------------------------------------------------
# Synthetic


def synthetic(**kw) -> D.Data:
    args = dict(name="synthetic", root=None, batch_size=16, seed=5, device=CPU, synthetic_size=64,
                augment=[{"op": "pad_crop", "pad": 4, "size": 32}, {"op": "hflip"}])
    return make_data(DataConfig(**{**args, **kw}))


def test_synthetic_is_deterministic():
    a, b = synthetic(), synthetic()
    assert (a.train_size, a.iters_per_epoch, a.input_shape, a.num_classes) == (64, 4, (3, 32, 32), 10)
    first = list(islice(a.train_iter(0), 6))
    assert same_batches(first, list(islice(b.train_iter(0), 6)))
    assert same_batches(first[4:], list(islice(b.train_iter(4), 2)))
    assert not torch.equal(first[0][0], next(synthetic(seed=6).train_iter(0))[0])
    x, y = collect(a.eval_iter("val", batch_size=100))
    assert x.shape == (256, 3, 32, 32) and int(y.max()) < 10 and a.splits == ("val",)
    big = synthetic(image_size=48, classes=7, augment=[{"op": "random_crop", "size": 48}])
    x, y = next(big.train_iter(0))
    assert x.shape == (16, 3, 48, 48) and big.num_classes == 7 and int(y.max()) < 7
