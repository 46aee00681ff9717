"""`blur_pool`, `std_conv`, `frn` and `evonorm` against timm's modules (BlurPool2d, StdConv2d,
FilterResponseNormTlu2d, EvoNorm2dS0): a tiny spec whose node is named as timm names the module takes the timm
module's state_dict strictly and computes the same outputs (relative 1e-5) with non-trivial weights, at an even and
an odd size. The modules are taken from the models that use them (resnetblur50, resnetv2_50x1_bit,
resnetv2_50d_frn, resnetv2_50d_evos), so the ops' defaults are checked to be the arguments those models pass.
Runs in the parity environment (timm installed); skipped where timm is missing.
"""

import textwrap

import pytest

torch = pytest.importorskip("torch")
timm = pytest.importorskip("timm")

import archspec  # noqa: E402
from archspec.lang.ops import OPS, ShapeError, node_shape  # noqa: E402

pytestmark = pytest.mark.torchvision
SIZES = [(8, 8), (7, 9)]  # even, then odd (reflect padding at an odd size keeps the last row and column)


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    names = ["resnetblur50", "resnetv2_50x1_bit", "resnetv2_50d_frn", "resnetv2_50d_evos"]
    return {n: timm.create_model(n, pretrained=False).eval() for n in names}


def spec(tmp_path, channels, node, item):
    path = tmp_path / f"{node}.yaml"
    path.write_text(textwrap.dedent(f"""\
        archspec: 1
        name: one_{node}
        input: [{channels}, 16, 16]
        network:
          - {node}: {item}
        """), encoding="utf-8")
    return path


def randomise(module, seed):
    """Every parameter far from its initial value (tau and v around the activations' range, weights with a
    per-channel offset, so that standardisation has something to remove)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5 + torch.rand(p.shape[:1], generator=g).view(
                -1, *[1] * (p.dim() - 1)))


def agree(ours_model, node, theirs, channels, sizes=SIZES):
    """Load timm's state_dict strictly into the node's submodule (the model's keys are `node.` + timm's) and
    compare the outputs, of the submodule and of the whole model, at each size."""
    sub = ours_model.get_submodule(node)
    assert list(ours_model.state_dict()) == [f"{node}.{k}" for k in theirs.state_dict()]
    sub.load_state_dict(theirs.state_dict(), strict=True)
    ours_model.eval()
    for h, w in sizes:
        x = torch.randn(2, channels, h, w, generator=torch.Generator().manual_seed(h * 31 + w)) * 2 + 0.3
        with torch.no_grad():
            expected, got, whole = theirs(x), sub(x), ours_model(x)
        assert got.shape == expected.shape, (node, h, w)
        tol = 1e-5 * max(1.0, expected.abs().max().item())
        assert (got - expected).abs().max().item() <= tol, (node, h, w)
        assert torch.equal(whole, got)


def test_blur_pool_is_resnetblur50s(models, tmp_path):
    theirs = models["resnetblur50"].get_submodule("layer2.0.aa")  # BlurPool2d(128), filt_size 3, stride 2, reflect
    path = spec(tmp_path, 128, "aa", "{op: blur_pool}")
    ours = archspec.build(path)
    assert list(theirs.state_dict()) == [] and list(ours.state_dict()) == []  # the filter is non-persistent
    assert sum(b.numel() for b in ours.buffers()) == sum(b.numel() for b in theirs.buffers())
    assert archspec.compile(path).buffers == theirs.filt.numel()
    assert torch.equal(ours.get_submodule("aa").filt, theirs.filt)
    agree(ours, "aa", theirs, 128, SIZES + [(5, 5), (16, 15)])


@pytest.mark.parametrize("kernel", [2, 3, 4, 5, 6, 7])
@pytest.mark.parametrize("mode", ["reflect", "replicate", "constant", "zeros"])
def test_blur_pool_kernels_strides_and_modes_match_timm_and_the_shape_rule(tmp_path, kernel, mode):
    from timm.layers import BlurPool2d

    for stride in (1, 2, 3):
        theirs = BlurPool2d(channels=4, filt_size=kernel, stride=stride,
                            pad_mode="constant" if mode == "zeros" else mode).eval()
        ours = archspec.build(spec(tmp_path, 4, "aa", f"{{op: blur_pool, kernel: {kernel}, stride: {stride}, "
                                                      f"pad_mode: {mode}}}"))
        agree(ours, "aa", theirs, 4, [(8, 8), (7, 9), (9, 7), (11, 11)])
        attrs = {"kernel": kernel, "stride": stride, "pad_mode": mode}
        for h in range(1, 14):
            for w in (h, h + 1):
                try:
                    with torch.no_grad():
                        out = tuple(theirs(torch.zeros(1, 4, h, w)).shape[1:])
                except RuntimeError:  # the padding is too large for the input, or nothing is left
                    out = None
                if out is None or 0 in out:
                    with pytest.raises(ShapeError):
                        node_shape("blur_pool", attrs, [(4, h, w)], ["x"])
                else:
                    assert node_shape("blur_pool", attrs, [(4, h, w)], ["x"]) == out, (attrs, h, w)


def test_std_conv_is_bits(models, tmp_path):
    bit = models["resnetv2_50x1_bit"]
    assert OPS["std_conv"].attrs["eps"].default == bit.stem.conv.eps == 1e-8
    cases = [("stem.conv", "conv", 3, "{op: std_conv, out: 64, kernel: 7, stride: 2, pad: 3}"),
             ("stages.1.blocks.0.conv2", "conv2", 128, "{op: std_conv, out: 128, kernel: 3, stride: 2, pad: 1}"),
             ("stages.0.blocks.0.downsample.conv", "conv", 64, "{op: std_conv, out: 256, kernel: 1}")]
    for i, (where, node, channels, item) in enumerate(cases):
        theirs = bit.get_submodule(where)
        randomise(theirs, i)
        agree(archspec.build(spec(tmp_path, channels, node, item)), node, theirs, channels)


def test_std_conv_with_groups_bias_and_eps_is_timms_std_conv(tmp_path):
    from timm.layers import StdConv2d

    theirs = StdConv2d(8, 12, 3, stride=2, padding=1, groups=4, bias=True, eps=1e-5)
    randomise(theirs, 7)
    ours = archspec.build(spec(tmp_path, 8, "conv", "{op: std_conv, out: 12, kernel: 3, stride: 2, pad: 1, "
                                                     "groups: 4, bias: true, eps: 1.0e-5}"))
    agree(ours, "conv", theirs, 8)


@pytest.mark.parametrize("where, channels", [("stem.norm1", 32), ("stages.1.blocks.0.norm2", 128), ("norm", 2048)])
def test_frn_is_resnetv2_50d_frns(models, tmp_path, where, channels):
    theirs = models["resnetv2_50d_frn"].get_submodule(where)  # FilterResponseNormTlu2d, TLU on, eps 1e-5
    assert type(theirs).__name__ == "FilterResponseNormTlu2d" and theirs.eps == OPS["frn"].attrs["eps"].default
    randomise(theirs, channels)
    node = where.rsplit(".", 1)[-1]
    agree(archspec.build(spec(tmp_path, channels, node, "{op: frn}")), node, theirs, channels)


def test_frn_without_tlu_is_timms_apply_act_false(tmp_path):
    from timm.layers import FilterResponseNormTlu2d

    theirs = FilterResponseNormTlu2d(16, apply_act=False, eps=1e-4)
    randomise(theirs, 3)
    agree(archspec.build(spec(tmp_path, 16, "norm3", "{op: frn, act: false, eps: 1.0e-4}")), "norm3", theirs, 16)


@pytest.mark.parametrize("where, channels", [("stem.norm1", 32), ("stages.1.blocks.0.norm2", 128), ("norm", 2048)])
def test_evonorm_is_resnetv2_50d_evos(models, tmp_path, where, channels):
    theirs = models["resnetv2_50d_evos"].get_submodule(where)  # EvoNorm2dS0, 32 groups, v present, eps 1e-5
    assert type(theirs).__name__ == "EvoNorm2dS0" and theirs.v is not None
    assert theirs.groups == OPS["evonorm"].attrs["groups"].default and theirs.eps == OPS["evonorm"].attrs["eps"].default
    randomise(theirs, channels)
    node = where.rsplit(".", 1)[-1]
    agree(archspec.build(spec(tmp_path, channels, node, "{op: evonorm}")), node, theirs, channels)


@pytest.mark.parametrize("item, kwargs", [
    ("{op: evonorm, group_size: 8}", {"group_size": 8}),
    ("{op: evonorm, groups: 4, eps: 1.0e-3}", {"groups": 4, "eps": 1e-3}),
    ("{op: evonorm, act: false}", {"apply_act": False}),
])
def test_evonorm_group_size_groups_and_apply_act_are_timms(tmp_path, item, kwargs):
    from timm.layers import EvoNorm2dS0

    theirs = EvoNorm2dS0(32, **kwargs)
    randomise(theirs, 5)
    agree(archspec.build(spec(tmp_path, 32, "norm", item)), "norm", theirs, 32)
