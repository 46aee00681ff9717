"""The registry's shape and counting rules agree with what PyTorch computes, on many random configurations."""

import random

import pytest

torch = pytest.importorskip("torch")
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from archspec.lang.ops import OPS, Counts, ShapeError  # noqa: E402

RNG = random.Random(1234)


def _conv_cases(k=60):
    for _ in range(k):
        c_in = RNG.choice([1, 2, 3, 4, 8])
        groups = RNG.choice([g for g in (1, 2, 4) if c_in % g == 0])
        out = groups * RNG.randint(1, 4)
        yield dict(c_in=c_in, h=RNG.randint(1, 20), w=RNG.randint(1, 20), out=out,
                   kernel=[RNG.randint(1, 5), RNG.randint(1, 5)], stride=[RNG.randint(1, 3), RNG.randint(1, 3)],
                   pad=[RNG.randint(0, 3), RNG.randint(0, 3)], dilation=[RNG.randint(1, 2), RNG.randint(1, 2)],
                   groups=groups, bias=RNG.random() < 0.5)


@pytest.mark.parametrize("case", list(_conv_cases()))
def test_conv_shape_params_and_macs_match_torch(case):
    attrs = {k: case[k] for k in ("out", "kernel", "stride", "pad", "dilation", "groups", "bias")}
    shape_in = (case["c_in"], case["h"], case["w"])
    conv = torch.nn.Conv2d(case["c_in"], case["out"], case["kernel"], case["stride"], case["pad"],
                           case["dilation"], case["groups"], case["bias"])
    try:
        ours = OPS["conv"].shape(attrs, [shape_in])
    except ShapeError as e:
        assert e.code == "E402"
        with pytest.raises(RuntimeError):
            conv(torch.zeros(1, *shape_in))
        return
    with FlopCounterMode(display=False) as fc:
        y = conv(torch.zeros(1, *shape_in))
    assert tuple(y.shape[1:]) == ours
    counts: Counts = OPS["conv"].counts(attrs, [shape_in], ours)
    assert counts.params == sum(p.numel() for p in conv.parameters())
    assert 2 * counts.macs == fc.get_total_flops()


@pytest.mark.parametrize("op", ["maxpool", "avgpool"])
@pytest.mark.parametrize("seed", range(40))
def test_pool_shapes_match_torch_including_ceil_mode(op, seed):
    rng = random.Random(seed)
    k = rng.randint(1, 4)
    stride = rng.choice([None, 1, 2, 3])
    pad = rng.randint(0, k // 2)
    ceil = rng.random() < 0.5
    h, w = rng.randint(k, 17), rng.randint(k, 17)
    attrs = {"kernel": k, "stride": stride, "pad": pad, "ceil_mode": ceil}
    if op == "maxpool":
        attrs["dilation"] = 1
        layer = torch.nn.MaxPool2d(k, stride, pad, ceil_mode=ceil)
    else:
        layer = torch.nn.AvgPool2d(k, stride, pad, ceil_mode=ceil)
    ours = OPS[op].shape(attrs, [(3, h, w)])
    assert tuple(layer(torch.zeros(1, 3, h, w)).shape[1:]) == ours


def test_pool_padding_beyond_half_kernel_is_refused_like_torch():
    with pytest.raises(ShapeError):
        OPS["maxpool"].shape({"kernel": 2, "stride": 2, "pad": 2, "ceil_mode": False, "dilation": 1}, [(1, 8, 8)])
    with pytest.raises(RuntimeError):
        torch.nn.MaxPool2d(2, 2, 2)(torch.zeros(1, 1, 8, 8))


def test_linear_and_bn_counts_match_torch():
    lin = torch.nn.Linear(2048, 1000)
    c = OPS["linear"].counts({"out": 1000, "bias": True}, [(2048,)], (1000,))
    assert c.params == sum(p.numel() for p in lin.parameters()) and c.macs == 2048 * 1000
    bn = torch.nn.BatchNorm2d(64)
    c = OPS["bn"].counts({"affine": True}, [(64, 7, 7)], (64, 7, 7))
    assert c.params == sum(p.numel() for p in bn.parameters())
    assert c.buffers == sum(b.numel() for b in bn.buffers())


def test_subsample_pad_shape_matches_the_option_a_formula():
    x = torch.zeros(1, 16, 31, 31)
    y = torch.nn.functional.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, 0, 16))
    assert OPS["subsample_pad"].shape({"out": 32, "stride": 2, "where": "end"}, [(16, 31, 31)]) == tuple(y.shape[1:])
