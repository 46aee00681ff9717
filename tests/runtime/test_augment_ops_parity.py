"""The batched augmentation ops against torchvision.transforms.v2.functional (same uint8 images, fixed
magnitudes), TrivialAugmentWide's table, timm's RandAugment op sets and levels, torchvision's RandomResizedCrop
box rule and timm's RandomErasing box rule. Run in the parity venv:
`PYTHONPATH=/work/main /work/venv-parity/bin/python -m pytest -m torchvision tests/runtime/test_augment_ops_parity.py`.

Tolerances: exact (0) for brightness, contrast, posterize, solarize, invert, autocontrast, equalize and every
nearest-neighbour geometric op (but where a sampling point falls exactly on a half pixel, a tie that float
rounding decides: ShearY 0.2, under 5% of pixels); for saturation and sharpness at most 1 (uint8 level) on under 3% of pixels (the blend
is the same formula, but torchvision evaluates it with fused in-place adds, so a value landing on an integer can
truncate one level apart); bilinear rotation within 1 on the pixels whose whole neighbourhood is inside the image
(at the border torchvision multiplies the sampled value by its coverage mask once more, we blend with the fill once).
"""

from __future__ import annotations

import math

import pytest
import torch

from archspec.lang.augment import defaults
from archspec.runtime.data import augment_ops as A

pytestmark = pytest.mark.torchvision
tv = pytest.importorskip("torchvision")
TF = pytest.importorskip("torchvision.transforms.v2.functional")
v2 = pytest.importorskip("torchvision.transforms.v2")

IMG = torch.randint(0, 256, (4, 3, 40, 48), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
X = IMG.float()
N = len(IMG)


def diff(ours: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    return (ours - ref.float()).abs()


@pytest.mark.parametrize("name, ours, ref", [
    ("brightness", lambda x: A.brightness(x, torch.full((N,), 1.6)), lambda i: TF.adjust_brightness(i, 1.6)),
    ("brightness low", lambda x: A.brightness(x, torch.full((N,), 0.3)), lambda i: TF.adjust_brightness(i, 0.3)),
    ("contrast", lambda x: A.contrast(x, torch.full((N,), 1.7)), lambda i: TF.adjust_contrast(i, 1.7)),
    ("contrast low", lambda x: A.contrast(x, torch.full((N,), 0.2)), lambda i: TF.adjust_contrast(i, 0.2)),
    ("posterize 0", lambda x: A.posterize(x, torch.full((N,), 0)), lambda i: TF.posterize(i, 0)),
    ("posterize 3", lambda x: A.posterize(x, torch.full((N,), 3)), lambda i: TF.posterize(i, 3)),
    ("posterize 8", lambda x: A.posterize(x, torch.full((N,), 8)), lambda i: TF.posterize(i, 8)),
    ("solarize", lambda x: A.solarize(x, torch.full((N,), 100.0)), lambda i: TF.solarize(i, 100.0)),
    ("solarize 255", lambda x: A.solarize(x, torch.full((N,), 255.0)), lambda i: TF.solarize(i, 255.0)),
    ("invert", A.invert, TF.invert),
    ("autocontrast", A.autocontrast, TF.autocontrast),
    ("equalize", A.equalize, TF.equalize),
])
def test_exact_colour_ops(name, ours, ref):
    assert float(diff(ours(X.clone()), ref(IMG)).max()) == 0, name


@pytest.mark.parametrize("factor", [0.0, 0.3, 1.7, 1.99])
def test_saturation_and_sharpness_within_one_level(factor):
    for ours, ref in ((A.saturation, TF.adjust_saturation), (A.sharpness, TF.adjust_sharpness)):
        d = diff(ours(X.clone(), torch.full((N,), factor)), ref(IMG, factor))
        assert float(d.max()) <= 1 and float((d > 0).float().mean()) < 0.03, (ours.__name__, factor)


def _tv_geometric(name: str, m: float, img: torch.Tensor, mode, fill) -> torch.Tensor:
    if name == "ShearX":
        return TF.affine(img, angle=0.0, translate=[0, 0], scale=1.0, shear=[math.degrees(math.atan(m)), 0.0],
                         interpolation=mode, fill=fill, center=[0, 0])
    if name == "ShearY":
        return TF.affine(img, angle=0.0, translate=[0, 0], scale=1.0, shear=[0.0, math.degrees(math.atan(m))],
                         interpolation=mode, fill=fill, center=[0, 0])
    if name == "TranslateX":
        return TF.affine(img, angle=0.0, translate=[int(m), 0], scale=1.0, shear=[0.0, 0.0], interpolation=mode,
                         fill=fill)
    if name == "TranslateY":
        return TF.affine(img, angle=0.0, translate=[0, int(m)], scale=1.0, shear=[0.0, 0.0], interpolation=mode,
                         fill=fill)
    return TF.rotate(img, m, interpolation=mode, fill=fill)


@pytest.mark.parametrize("name, m", [("ShearX", 0.3), ("ShearX", -0.99), ("ShearY", 0.5), ("ShearY", -0.2), ("ShearY", 0.2),
                                     ("ShearY", -0.4),
                                     ("TranslateX", 7), ("TranslateX", -12), ("TranslateY", 5), ("Rotate", 30.0),
                                     ("Rotate", -121.5), ("Rotate", 4.5)])
def test_nearest_geometric_ops_are_exact(name, m):
    fill = [10.0, 20.0, 30.0]
    ref = _tv_geometric(name, m, IMG, TF.InterpolationMode.NEAREST, fill)
    kind = torch.full((N,), A.GEOMETRIC.index(name))
    ours = A.affine(X.clone(), A.geometric_matrix(kind, torch.full((N,), float(m)), 40, 48), torch.tensor(fill),
                    "nearest")
    differ = float((diff(ours, ref) > 0).float().mean())
    if (name, m) in TIES:  # sampling points exactly on a half pixel: float rounding decides, either way is right
        assert differ < 0.05
    else:
        assert differ == 0


TIES = {("ShearY", -0.2), ("ShearY", 0.2)}  # 0.2 * (x + 0.5) is a half-integer at x = 2, 7, 12, ...


@pytest.mark.parametrize("angle", [30.0, -67.5])
def test_bilinear_rotation_inside_the_image(angle):
    ref = TF.rotate(IMG, angle, interpolation=TF.InterpolationMode.BILINEAR, fill=[10.0, 20.0, 30.0])
    ours = A.affine(X.clone(), A.geometric_matrix(torch.full((N,), A.GEOMETRIC.index("Rotate")),
                                                  torch.full((N,), angle), 40, 48),
                    torch.tensor([10.0, 20.0, 30.0]), "bilinear")
    cover = TF.rotate(torch.ones(1, 40, 48), angle, interpolation=TF.InterpolationMode.BILINEAR, fill=0.0)
    inside = (cover > 1 - 1e-6).expand_as(ours)
    assert float(inside.float().mean()) > 0.4
    assert float(diff(ours, ref)[inside].max()) <= 1


def test_trivial_augment_table_is_torchvisions():
    space = v2.TrivialAugmentWide._AUGMENTATION_SPACE
    assert tuple(space) == A.TRIVIAL_OPS
    assert {k for k, (_, signed) in space.items() if signed} == set(A.TRIVIAL_SIGNED)
    for bins in (2, 31, 7):
        ours = A.trivial_magnitudes(bins)
        for name, (fn, _) in space.items():
            theirs = fn(bins, 40, 48)
            if theirs is None:
                assert name not in ours
            else:
                assert torch.equal(ours[name], theirs.float()), (name, bins)


def test_rand_augment_ops_and_levels_are_timms(monkeypatch):
    aa = pytest.importorskip("timm.data.auto_augment")
    assert tuple(aa._RAND_INCREASING_TRANSFORMS) == A.RAND_OPS_INCREASING
    assert tuple(aa._RAND_TRANSFORMS) == A.RAND_OPS
    assert tuple(round(v) for v in A.RAND_FILL) == tuple(min(255, round(255 * m)) for m in (0.485, 0.456, 0.406))
    for sign in (1.0, -1.0):
        monkeypatch.setattr(aa, "_randomly_negate", lambda v, s=sign: s * v)
        for names in (A.RAND_OPS_INCREASING, A.RAND_OPS):
            for level in (0.0, 3.7, 5.0, 9.0, 10.0):
                choice = torch.arange(len(names))
                ours = A.rand_level_arg(names, choice, torch.full((len(names),), level),
                                        torch.full((len(names),), sign), 40, 48)
                for k, name in enumerate(names):
                    fn = aa.LEVEL_TO_ARG[name]
                    if fn is None:
                        continue
                    want = fn(level, {"translate_const": 250})[0]
                    if name == "TranslateXRel":
                        want *= 48
                    elif name == "TranslateYRel":
                        want *= 40
                    assert float(ours[k]) == pytest.approx(want, abs=1e-4), (name, level, sign)


def test_random_resized_crop_boxes_follow_torchvision():
    torch.manual_seed(0)
    p = defaults("random_resized_crop")
    t = v2.RandomResizedCrop(24)
    img = torch.zeros(3, 30, 50, dtype=torch.uint8)
    theirs = torch.tensor([[q["top"], q["left"], q["height"], q["width"]]
                           for q in (t.make_params([img]) for _ in range(20000))]).float()
    ours = A.draw_resized_crop(30, 50, p, torch.Generator().manual_seed(1), (20000, slice(0, 20000)),
                               torch.device("cpu")).float()
    for column in range(4):
        a, b = ours[:, column], theirs[:, column]
        assert abs(float(a.mean() - b.mean())) < 0.03 * float(b.mean()) + 0.2, column
        assert abs(float(a.std() - b.std())) < 0.05 * float(b.std()) + 0.2, column
    # no attempt fits: the same central crop
    strip = torch.zeros(3, 10, 100, dtype=torch.uint8)
    q = v2.RandomResizedCrop(8, scale=(0.9, 1.0)).make_params([strip])
    box = A.draw_resized_crop(10, 100, {**p, "min_scale": 0.9}, torch.Generator(), (1, slice(0, 1)),
                              torch.device("cpu"))
    assert box[0].tolist() == [q["top"], q["left"], q["height"], q["width"]]


def test_random_erasing_boxes_follow_timm():
    re = pytest.importorskip("timm.data.random_erasing")
    import random

    random.seed(0)
    n = 4000
    for count in (1, 3):
        theirs = torch.ones(n, 3, 32, 32)
        re.RandomErasing(probability=1.0, mode="const", max_count=count, device="cpu")(theirs)
        ours = A.random_erasing(torch.ones(n, 3, 32, 32), {**defaults("random_erasing"), "p": 1.0, "mode": "const",
                                                             "count": count},
                                torch.Generator().manual_seed(0), (n, slice(0, n)))
        for stat in (lambda t: (t[:, 0] == 0).float().mean((1, 2)),            # erased share
                     lambda t: (t[:, 0] == 0).any(2).float().sum(1),          # rows touched
                     lambda t: (t[:, 0] == 0).any(1).float().sum(1)):         # columns touched
            a, b = stat(ours), stat(theirs)
            assert abs(float(a.mean() - b.mean())) < 0.04 * float(b.mean()), count
            assert abs(float(a.std() - b.std())) < 0.06 * float(b.std()), count
