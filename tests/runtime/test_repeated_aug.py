"""Repeated augmentation (`DataConfig.repeats`, the recipe's `repeated_augment`; timm's RepeatAugSampler idea): in an
epoch of unchanged length each drawn image comes `repeats` times, every copy augmented on its own; the copies of
an image land in different processes' shares of the global batch; the stream stays a pure function of the seed
and the iteration (exact resume), and `repeats: 1` keeps the order and the seeds runs have always had.

The expected orders are computed here from their definition, not with the data layer's helpers."""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from itertools import islice
from pathlib import Path

import numpy as np
import pytest
import torch

from archspec.runtime.data import DataConfig, DataError, make_data
from archspec.runtime.data.base import checked_config
from archspec.runtime.data.folder import _EpochBatches
from archspec.runtime.data.memory import TensorData

CPU = torch.device("cpu")
AUG = [{"op": "pad_crop", "pad": 4}, {"op": "hflip"}]


def seed_of(*parts: object) -> int:
    """The data layer's stable seeds, by their definition (blake2b of the parts' repr, 63 bits)."""
    return int.from_bytes(hashlib.blake2b(repr(parts).encode(), digest_size=8).digest(), "little") >> 1


def perm(n: int, seed: int, epoch: int) -> list[int]:
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed_of("epoch", seed, epoch))).tolist()


def expected_rows(order: list[int], pos: int, b: int, r: int) -> list[tuple[int, int]]:
    """(image, copy) of the rows of batch `pos`: the list of the epoch's images, each repeated r times in a row,
    cut into batches of b; within a batch every copy 0 first, then every copy 1, ..."""
    rows = []
    for c in range(r):
        for p in range(pos * b, (pos + 1) * b):
            if p % r == c:
                rows.append((order[p // r], c))
    return rows


def memory(n: int = 96, b: int = 12, r: int = 3, shard=(0, 1), seed: int = 0, augment=AUG) -> TensorData:
    """In-memory data whose label is the image's index in the pool; the training images are the even ones."""
    config = checked_config(DataConfig(name="synthetic", root=None, batch_size=b, seed=seed, device=CPU,
                                       normalize="none", augment=augment, repeats=r, shard=shard))
    pool = torch.randint(0, 256, (2 * n, 3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    return TensorData(config, pool=pool, labels=torch.arange(2 * n), train_index=torch.arange(0, 2 * n, 2),
                      evals={}, natural_classes=2 * n, where="test pool")


def batches(data, start: int, count: int) -> list:
    return list(islice(data.train_iter(start), count))


# -- in memory ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("n,b,r", [(96, 12, 3), (95, 10, 3), (64, 16, 2)])
def test_each_image_comes_repeats_times_an_epoch_of_unchanged_length(n, b, r):
    data = memory(n, b, r)
    assert data.iters_per_epoch == n // b
    for epoch in (0, 1):
        ys = [y for _, y in batches(data, epoch * data.iters_per_epoch, data.iters_per_epoch)]
        order = perm(n, 0, epoch)
        for pos, y in enumerate(ys):
            assert y.tolist() == [2 * k for k, _ in expected_rows(order, pos, b, r)]
        counts = Counter(torch.cat(ys).tolist())
        distinct = (n // b) * b // r
        assert set(counts) == {2 * k for k in order[:distinct]}  # about train_size / repeats images
        assert all(v == r for v in counts.values())


def test_repeats_1_is_the_plain_order():
    n, b = 96, 12
    data = memory(n, b, 1, augment=[])
    for epoch in (0, 1, 2):
        order = perm(n, 0, epoch)
        for pos, (x, y) in enumerate(batches(data, epoch * 8, 8)):
            assert y.tolist() == [2 * k for k in order[pos * b:(pos + 1) * b]]
            assert torch.equal((x * 255).round().to(torch.uint8), data.pool[y])
    assert "each image" not in data.describe()
    plain = checked_config(DataConfig(name="synthetic", root=None, batch_size=b, seed=0, device=CPU))
    assert plain.repeats == 1 and plain.labels is None


def test_copies_are_augmented_differently():
    data = memory(96, 12, 3)
    bare = memory(96, 12, 3, augment=[])
    same = pairs = 0
    for (x, y), (x0, y0) in zip(batches(data, 0, 8), batches(bare, 0, 8)):
        assert torch.equal(y, y0)
        rows = defaultdict(list)
        for j, label in enumerate(y.tolist()):
            rows[label].append(j)
        for copies in rows.values():
            assert len(copies) == 3
            assert all(torch.equal(x0[copies[0]], x0[j]) for j in copies)  # the same image...
            for a in range(3):
                for c in range(a + 1, 3):
                    pairs += 1
                    same += torch.equal(x[copies[a]], x[copies[c]])  # ...augmented three ways
    assert pairs == 96 and same <= 5  # 162 crop-and-flip outcomes: two copies agree 1 time in 162


@pytest.mark.parametrize("b,r,world", [(12, 3, 2), (12, 3, 3), (12, 3, 4), (12, 3, 6), (12, 5, 6), (10, 3, 5),
                                       (12, 2, 2), (12, 1, 4)])
def test_process_shares_make_up_the_global_batch_and_hold_different_copies(b, r, world):
    n = 96
    whole = batches(memory(n, b, r), 0, 2 * (n // b))
    shares = [batches(memory(n, b, r, shard=(rank, world)), 0, 2 * (n // b)) for rank in range(world)]
    per = b // world
    for i, (x, y) in enumerate(whole):
        assert torch.equal(torch.cat([s[i][0] for s in shares]), x)  # augmentation included
        assert torch.equal(torch.cat([s[i][1] for s in shares]), y)
        where = defaultdict(list)
        for row, label in enumerate(y.tolist()):
            where[label].append(row // per)
        for ranks in where.values():
            if world >= r:
                assert len(set(ranks)) == len(ranks)  # every copy in another process
            elif len(ranks) == r:
                assert len(set(ranks)) > 1  # never all copies in one process
        if world == r and b % r == 0:  # one copy of every image in each process
            assert all(sorted(s[i][1].tolist()) == sorted(set(y.tolist())) for s in shares)


@pytest.mark.parametrize("shard", [(0, 1), (1, 2)])
def test_resume_continues_the_very_same_stream(shard):
    whole = batches(memory(96, 12, 3, shard=shard), 0, 20)  # 8 iterations an epoch
    for k in (5, 8, 13):
        resumed = batches(memory(96, 12, 3, shard=shard), k, 20 - k)
        assert all(torch.equal(a[0], c[0]) and torch.equal(a[1], c[1]) for a, c in zip(whole[k:], resumed))
    other = batches(memory(96, 12, 3, shard=shard, seed=1), 0, 1)
    assert not torch.equal(other[0][1], whole[0][1])


@pytest.mark.parametrize("bad", [0, -2, True, 2.5, "3", None])
def test_repeats_must_be_a_positive_integer(bad):
    with pytest.raises(DataError) as e:
        checked_config(DataConfig(name="synthetic", root=None, batch_size=8, seed=0, device=CPU, repeats=bad))
    assert str(e.value) == f"repeats must be a positive integer, not {bad!r}"


def test_describe_says_so():
    data = make_data(DataConfig(name="synthetic", root=None, batch_size=8, seed=0, device=CPU, repeats=3,
                                synthetic_size=64))
    assert "(8 iters/epoch, repeated augmentation: each image 3 times an epoch)" in data.describe()


# -- image folders --------------------------------------------------------------------------------------------------

def sampler_keys(n, b, r, start=0, count=10, shard=(0, 1)):
    return list(islice(iter(_EpochBatches(n, b, n // b, 7, start, shard, repeats=r)), count))


def test_folder_sampler_repeats_1_keeps_its_keys():
    n, b = 30, 6
    keys = sampler_keys(n, b, 1, count=10)  # 5 iterations an epoch
    for i, batch in enumerate(keys):
        e, pos = divmod(i, 5)
        assert batch == [(e, k) for k in perm(n, 7, e)[pos * b:(pos + 1) * b]]


@pytest.mark.parametrize("b,r,world", [(6, 3, 3), (6, 2, 3), (8, 3, 4), (6, 3, 2)])
def test_folder_sampler_repeats_spreads_copies_and_resumes(b, r, world):
    n = 30
    keys = sampler_keys(n, b, r, count=3 * (n // b))
    for i, batch in enumerate(keys):
        e, pos = divmod(i, n // b)
        order = perm(n, 7, e)
        assert batch == [(e, k, c) for k, c in expected_rows(order, pos, b, r)]
    epoch = [key for batch in keys[:n // b] for key in batch]
    assert len(set(epoch)) == len(epoch)  # no key twice: every copy has its own generator
    assert all(v == r for v in Counter(k for _, k, _ in epoch).values())
    shares = [sampler_keys(n, b, r, count=len(keys), shard=(rank, world)) for rank in range(world)]
    for i, batch in enumerate(keys):
        assert [key for s in shares for key in s[i]] == batch
        if world >= r:
            for rank, share in enumerate(s[i] for s in shares):
                assert len({k for _, k, _ in share}) == len(share)  # a process never gets two copies of one image
    assert sampler_keys(n, b, r, start=7, count=len(keys) - 7) == keys[7:]  # resumed mid-epoch


def write_folder(root: Path, per_class: int = 4) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for name in ("a", "b"):
            (root / split / name).mkdir(parents=True)
            for k in range(per_class):
                pixels = rng.integers(0, 256, (24, 28, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(root / split / name / f"{k}.png")
    return root


def test_folder_copies_get_their_own_generators(tmp_path):
    pytest.importorskip("PIL")
    from archspec.runtime.data.common import cpu_generator

    root = write_folder(tmp_path)
    augment = [{"op": "scale_jitter", "min": 20, "max": 24}, {"op": "random_crop", "size": 16}, {"op": "hflip"}]

    def folder(r):
        return make_data(DataConfig(name="imagenet_folder", root=root, batch_size=6, seed=7, device=CPU,
                                    normalize="none", augment=augment, image_size=16, workers=0, repeats=r))

    for r in (1, 3):
        data = folder(r)
        assert data.iters_per_epoch == 1 and (("each image 3 times" in data.describe()) == (r == 3))
        x, _ = next(data.train_iter(1))  # epoch 1
        keys = sampler_keys(8, 6, r, start=1, count=1)[0]
        for row, key in zip(x, keys):
            _, k, *copy = key
            view, _ = data.train_set._train_view(data.train_set._path(k), cpu_generator("sample", 7, *key))
            assert torch.equal((row * 255).round().to(torch.uint8), view)
            assert len(key) == (2 if r == 1 else 3)  # runs without repeats keep their (seed, epoch, k) seeds
        if r == 3:
            assert sorted(k for _, k, _ in keys) == [k for k in sorted(perm(8, 7, 1)[:2]) for _ in range(3)]
            first = [j for j, key in enumerate(keys) if key[1] == keys[0][1]]
            assert not all(torch.equal(x[first[0]], x[j]) for j in first[1:])  # augmented apart
