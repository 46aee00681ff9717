"""The batched augmentation ops (archspec.runtime.data.augment_ops) and the pipelines that run them: each op's
effect on known images, determinism, DDP shares, the old in-memory order kept bit-for-bit, the pixel-space order
with RandAugment / TrivialAugment, image folders (workers + device) and FixRes training crops."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from archspec.lang.augment import defaults
from archspec.runtime.data import DataConfig, make_data
from archspec.runtime.data import augment_ops as A
from archspec.runtime.data.common import DataError, device_generator, epoch_order, parse_augment

CPU = torch.device("cpu")


def image(n: int = 4, h: int = 16, w: int = 20, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (n, 3, h, w), generator=torch.Generator().manual_seed(seed)).float()


def params(op: str, **kw) -> dict:
    return {**defaults(op), **kw}


def gen(seed: int = 1) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ----------------------------------------------------------------------------------------------------------------
# Single ops on known images


def test_colour_ops_on_known_pixels():
    x = torch.arange(256.0).view(1, 1, 16, 16).expand(2, 3, 16, 16).clone()
    assert torch.equal(A.posterize(x, torch.tensor([3, 8])), torch.stack([x[0].long().bitwise_and(0xE0).float(),
                                                                         x[1]]))
    assert torch.equal(A.posterize(x, torch.tensor([0, 0])), torch.zeros_like(x))
    sol = A.solarize(x, torch.tensor([100.0, 256.0]))
    assert torch.equal(sol[0], torch.where(x[0] >= 100, 255 - x[0], x[0])) and torch.equal(sol[1], x[1])
    add = A.solarize_add(x, torch.tensor([50.0, 0.0]))
    assert float(add[0, 0, 0, 0]) == 50 and float(add[0, 0, 7, 15]) == 177 and float(add[0, 0, 8, 0]) == 128
    assert torch.equal(A.invert(x), 255 - x)
    assert torch.equal(A.brightness(x, torch.tensor([0.5, 2.0]))[0], torch.floor(x[0] * 0.5))
    assert float(A.brightness(x, torch.tensor([0.5, 2.0]))[1].max()) == 255
    squeezed = 100 + torch.floor(x / 4)  # 100..163
    assert torch.equal(A.autocontrast(squeezed)[0, 0].flatten()[[0, -1]], torch.tensor([0.0, 255.0]))
    flat = torch.full((1, 3, 4, 4), 7.0)
    assert torch.equal(A.autocontrast(flat), flat) and torch.equal(A.equalize(flat), flat)
    assert torch.equal(A.saturation(x, torch.tensor([1.0, 1.0])), x)
    grey = A.saturation(image(1), torch.tensor([0.0]))
    assert torch.equal(grey, grey[:, :1].expand_as(grey))


def test_equalize_and_autocontrast_match_pillow():
    from PIL import Image, ImageOps

    x = image(3, 24, 24)
    x[1] = torch.floor(x[1] / 3) + 40  # a narrow range
    for k in range(3):
        img = Image.fromarray(x[k].permute(1, 2, 0).byte().numpy())
        eq = torch.from_numpy(np.array(ImageOps.equalize(img))).permute(2, 0, 1).float()
        assert torch.equal(A.equalize(x)[k], eq)
        ac = torch.from_numpy(np.array(ImageOps.autocontrast(img))).permute(2, 0, 1).float()
        assert float((A.autocontrast(x)[k] - ac).abs().max()) <= 1  # Pillow adds its offset before truncating


def test_translate_moves_pixels_by_the_amount_and_fills():
    x = image(2)
    kinds = torch.tensor([A.GEOMETRIC.index("TranslateX"), A.GEOMETRIC.index("TranslateY")])
    out = A.affine(x, A.geometric_matrix(kinds, torch.tensor([3.0, -2.0]), 16, 20), torch.tensor([9.0, 8, 7]),
                   "nearest")
    assert torch.equal(out[0, :, :, 3:], x[0, :, :, :-3])
    assert torch.equal(out[0, :, :, :3], torch.tensor([9.0, 8, 7]).view(3, 1, 1).expand(3, 16, 3))
    assert torch.equal(out[1, :, :-2], x[1, :, 2:]) and bool((out[1, :, -2:] == 8).all() is not None)


def test_rotate_by_90_is_a_quarter_turn_counter_clockwise_and_shear_keeps_the_top_left():
    x = image(1, 16, 16)
    rot = A.affine(x, A.geometric_matrix(torch.tensor([A.GEOMETRIC.index("Rotate")]), torch.tensor([90.0]), 16, 16),
                   torch.zeros(3), "nearest")
    assert torch.equal(rot, torch.rot90(x, 1, dims=(-2, -1)))
    shear = A.affine(x, A.geometric_matrix(torch.tensor([A.GEOMETRIC.index("ShearX")]), torch.tensor([0.5]), 16, 16),
                     torch.zeros(3), "nearest")
    assert torch.equal(shear[..., 0, :], x[..., 0, :])  # row 0 moves by 0.5 * 0.5 px: nearest keeps it
    assert torch.equal(shear[..., 8, :12], x[..., 8, 4:16])  # row 8 (centre y 8.5) reads 4.25 px to the right


def test_random_resized_crop_of_the_whole_image_is_the_image_and_boxes_fit():
    x = image(3, 16, 16)
    same = A.random_resized_crop(x, params("random_resized_crop", size=16, min_scale=1.0, min_ratio=1.0,
                                           max_ratio=1.0), gen(), (3, slice(0, 3)))
    assert torch.allclose(same, x, atol=1e-3)
    p = params("random_resized_crop")
    boxes = A.draw_resized_crop(30, 50, p, gen(), (2000, slice(0, 2000)), CPU)
    top, left, h, w = boxes.unbind(1)
    assert bool(((top >= 0) & (left >= 0) & (top + h <= 30) & (left + w <= 50) & (h > 0) & (w > 0)).all())
    area = (h * w).float() / 1500
    assert 0.05 < float(area.min()) and float(area.max()) <= 1.0 and 0.3 < float(area.mean()) < 0.45
    # no attempt fits a 100 x 10 strip at scale >= 0.9: the central crop of the widest allowed ratio
    strip = A.draw_resized_crop(10, 100, params("random_resized_crop", min_scale=0.9), gen(), (4, slice(0, 4)), CPU)
    assert strip.tolist() == [[0, 43, 10, 13]] * 4


def test_random_erasing_boxes():
    x = torch.ones(64, 3, 32, 32)
    same = A.random_erasing(x, params("random_erasing", p=0.0), gen(), (64, slice(0, 64)))
    assert torch.equal(same, x)
    out = A.random_erasing(x, params("random_erasing", p=1.0, mode="const"), gen(), (64, slice(0, 64)))
    erased = (out == 0).float().mean(dim=(1, 2, 3))
    assert bool((erased >= 0.015).all()) and bool((erased <= 0.36).all())  # areas rounded to whole rows
    rows = (out[:, 0] == 0)
    assert bool((rows.any(2).sum(1) * rows.any(1).sum(1) == rows.sum((1, 2))).all())  # one rectangle each
    rand = A.random_erasing(x, params("random_erasing", p=1.0, mode="rand"), gen(), (64, slice(0, 64)))
    box = rand[0][:, rand[0, 0] != 1]
    assert box.shape[1] > 0 and bool((box == box[:, :1]).all())  # one colour per channel
    pixel = A.random_erasing(x, params("random_erasing", p=1.0, count=3), gen(), (64, slice(0, 64)))
    assert 0.1 < float((pixel != 1).float().mean()) < 0.3


@pytest.mark.parametrize("op, kw", [("rand_augment", {}), ("rand_augment", {"increasing": False, "num_ops": 3}),
                                    ("trivial_augment", {}), ("random_erasing", {"p": 1.0, "count": 2}),
                                    ("random_resized_crop", {"size": 12})])
def test_ops_are_deterministic_and_shares_equal_one_batch(op, kw):
    f = {**A.POLICIES, "random_erasing": A.random_erasing, "random_resized_crop": A.random_resized_crop}[op]
    x, p = image(8), params(op, **kw)
    whole = f(x.clone(), p, gen(5), (8, slice(0, 8)))
    assert torch.equal(whole, f(x.clone(), p, gen(5), (8, slice(0, 8))))
    assert not torch.equal(whole, f(x.clone(), p, gen(6), (8, slice(0, 8))))
    halves = [f(x[k:k + 4].clone(), p, gen(5), (8, slice(k, k + 4))) for k in (0, 4)]
    assert torch.equal(torch.cat(halves), whole)


def test_policies_keep_uint8_values_and_do_nothing_at_prob_0():
    x = image(16)
    for op in ("rand_augment", "trivial_augment"):
        out = A.POLICIES[op](x.clone(), params(op), gen(), (16, slice(0, 16)))
        assert bool((out == out.round()).all()) and float(out.min()) >= 0 and float(out.max()) <= 255
        assert (out != x).flatten(1).any(1).sum() >= 8
    assert torch.equal(A.rand_augment(x.clone(), params("rand_augment", prob=0.0), gen(), (16, slice(0, 16))), x)


def test_rand_augment_levels_follow_timm():
    names = A.RAND_OPS_INCREASING
    pick = torch.tensor([names.index(n) for n in ("PosterizeIncreasing", "SolarizeIncreasing", "SolarizeAdd",
                                                  "ColorIncreasing", "Rotate", "ShearX", "TranslateXRel")])
    level, sign = torch.full((7,), 9.0), torch.tensor([1.0, 1, 1, -1, -1, 1, 1])
    arg = A.rand_level_arg(names, pick, level, sign, 10, 100)
    assert torch.allclose(arg, torch.tensor([1.0, 26.0, 99.0, 0.19, -27.0, 0.27, 40.5]))


# ----------------------------------------------------------------------------------------------------------------
# Pipelines


def synthetic(augment, **kw):
    args = dict(name="synthetic", root=None, batch_size=8, seed=4, device=CPU, image_size=None,
                synthetic_size=32, normalize="per_pixel_mean", augment=augment)
    return make_data(DataConfig(**{**args, **kw}))


def test_an_old_in_memory_recipe_gives_the_batches_it_gave():
    """pad_crop + hflip + lighting, computed here image by image: normalise, pad, crop, flip, add the PCA offset."""
    data = synthetic([{"op": "pad_crop", "pad": 4, "fill": 0.5}, {"op": "hflip"}, {"op": "lighting"}])
    x, y = next(data.train_iter(0))
    index = epoch_order(32, 4, 0)[:8]
    g = device_generator(CPU, "augment", 4, 0)
    tops, lefts = torch.randint(0, 9, (8,), generator=g), torch.randint(0, 9, (8,), generator=g)
    flips = torch.rand(8, generator=g) < 0.5
    alpha = torch.randn((8, 3), generator=g) * 0.1
    eigval = torch.tensor([0.2175, 0.0188, 0.0045])
    eigvec = torch.tensor([[-0.5675, 0.7192, 0.4009], [-0.5808, -0.0045, -0.8140], [-0.5836, -0.6948, 0.4203]])
    mean = data.pool[data.train_index].double().mean(0).float()
    for r in range(8):
        img = (data.pool[index[r]].float() - mean) / 255
        img = torch.nn.functional.pad(img, (4, 4, 4, 4), value=0.5)[:, tops[r]:tops[r] + 32, lefts[r]:lefts[r] + 32]
        img = img.flip(-1) if flips[r] else img
        img = img + (eigvec @ (alpha[r] * eigval)).view(3, 1, 1)
        assert torch.allclose(x[r], img, atol=1e-5), r
    assert torch.equal(y, data.labels[index])


def test_pixel_ops_run_before_normalisation_and_fill_normalises_to_its_value():
    base = synthetic([{"op": "hflip", "p": 1.0}], normalize="imagenet")
    flipped, _ = next(base.train_iter(0))
    data = synthetic([{"op": "hflip", "p": 1.0}, {"op": "rand_augment", "num_ops": 0}], normalize="imagenet")
    x, _ = next(data.train_iter(0))
    assert torch.allclose(x, flipped, atol=1e-5)
    # the same pad and crop draws: the pad's fill (0 in normalised units) becomes the ImageNet mean pixel (rounded)
    old, _ = next(synthetic([{"op": "pad_crop", "pad": 8, "fill": 0.0}], normalize="imagenet").train_iter(0))
    new = synthetic([{"op": "pad_crop", "pad": 8, "fill": 0.0}, {"op": "rand_augment", "num_ops": 0},
                     {"op": "random_erasing", "p": 0.0}], normalize="imagenet")
    x, _ = next(new.train_iter(0))
    assert float((old == 0).float().mean()) > 0.1 and float((x - old).abs().max()) < 0.01
    trivial = synthetic([{"op": "trivial_augment", "bins": 2}], normalize="none")
    x, _ = next(trivial.train_iter(0))
    assert bool((x * 255 - (x * 255).round()).abs().max() < 1e-4)  # normalised after the policy: 0..255 / 255
    assert "trivial_augment(bins=2)" in trivial.describe()


def test_erasing_before_a_policy_and_oversized_crops_are_refused():
    with pytest.raises(DataError, match=r"random_erasing \(entry 1\) comes before trivial_augment \(entry 2\)"):
        synthetic([{"op": "random_erasing"}, {"op": "trivial_augment"}])
    with pytest.raises(DataError, match="random_resized_crop: size 40 is larger than the 32-pixel"):
        synthetic([{"op": "random_resized_crop", "size": 40}], image_size=32)
    crop = synthetic([{"op": "random_resized_crop", "size": 24}, {"op": "random_erasing", "p": 1.0}])
    assert crop.input_shape == crop.train_shape == (3, 24, 24)
    assert next(crop.train_iter(0))[0].shape == (8, 3, 24, 24)


def test_param_messages_for_booleans_and_choices():
    with pytest.raises(DataError, match="increasing must be true or false, not 1"):
        parse_augment([{"op": "rand_augment", "increasing": 1}], ("rand_augment",), "test")
    with pytest.raises(DataError, match="mode must be one of pixel, rand or const, not 'noise'"):
        parse_augment([{"op": "random_erasing", "mode": "noise"}], ("random_erasing",), "test")
    with pytest.raises(DataError, match=r"min_ratio must be a number in \(0, inf\], not 0"):
        parse_augment([{"op": "random_resized_crop", "min_ratio": 0}], ("random_resized_crop",), "test")
    with pytest.raises(DataError, match="min_scale 0.9 is above max_scale 0.5"):
        parse_augment([{"op": "random_resized_crop", "min_scale": 0.9, "max_scale": 0.5}],
                      ("random_resized_crop",), "test")


def write_jpegs(root, per_class: int = 5) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for name in ("a", "b"):
            (root / split / name).mkdir(parents=True)
            for k in range(per_class):
                Image.fromarray(rng.integers(0, 256, (40 + 4 * k, 56, 3), dtype=np.uint8)).save(
                    root / split / name / f"{k}.JPEG")


TV = [{"op": "random_resized_crop", "size": 24}, {"op": "hflip"}, {"op": "trivial_augment"},
      {"op": "random_erasing", "p": 0.5}]


def folder(root, **kw):
    args = dict(name="imagenet_folder", root=root, batch_size=4, seed=2, device=CPU, image_size=32, eval_resize=36,
                workers=0, normalize="imagenet", augment=TV)
    return make_data(DataConfig(**{**args, **kw}))


def test_folder_pipeline_fixres_determinism_resume_and_shares(tmp_path):
    write_jpegs(tmp_path)
    data = folder(tmp_path)
    assert (data.train_shape, data.input_shape) == ((3, 24, 24), (3, 32, 32))
    stream = data.train_iter(0)
    first, second = next(stream)[0], next(stream)[0]
    assert first.shape == (4, 3, 24, 24) and not torch.equal(first, second)
    assert torch.equal(next(folder(tmp_path).train_iter(0))[0], first)
    assert torch.equal(next(data.train_iter(1))[0], second)  # the device draws know the iteration
    halves = [next(folder(tmp_path, shard=(r, 2)).train_iter(0))[0] for r in (0, 1)]
    assert torch.equal(torch.cat(halves), first)
    assert next(data.eval_iter("val"))[0].shape[-3:] == (3, 32, 32)
    assert "random_resized_crop(size=24,min_scale=0.08" in data.describe()


def test_folder_without_new_ops_is_unchanged_and_order_is_checked(tmp_path):
    write_jpegs(tmp_path)
    old = [{"op": "random_crop"}, {"op": "hflip"}, {"op": "lighting"}]
    data = folder(tmp_path, augment=old)
    x, _ = next(data.train_iter(0))
    raw = next(iter(data._loader(data.train_set, batch_sampler=[[(0, k) for k in epoch_order(10, 2, 0)[:4].tolist()]])))
    expected = data.norm(raw[0]) + data.norm.shift(__import__("archspec.runtime.data.common", fromlist=["x"])
                                                   .pca_rgb(raw[2]))
    assert data.train_shape == data.input_shape == (3, 32, 32) and torch.equal(x, expected)
    with pytest.raises(DataError, match=r"hflip \(entry 2\) comes after trivial_augment \(entry 1\)"):
        folder(tmp_path, augment=[{"op": "trivial_augment"}, {"op": "hflip"}])
