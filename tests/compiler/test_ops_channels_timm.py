"""Parity of the channel-level ops with timm's ResNet-family attention: ECA (`EcaModule`), ResNeSt's split
attention (`SplitAttn`) and SK's selective kernel (`SelectiveKernel`), each written as an archspec spec out of
`channel_conv`, `slice`, `branch_softmax` and the existing ops. timm's module's state_dict loads with strict=True
into the archspec model's submodule, and the outputs agree (relative 1e-5), BN statistics randomised first.

timm imports beside torch 2.14.1 only: run in the parity environment (see the README).
"""

import textwrap

import pytest

torch = pytest.importorskip("torch")
timm = pytest.importorskip("timm")

from timm.layers.eca import EcaModule  # noqa: E402
from timm.layers.selective_kernel import SelectiveKernel  # noqa: E402
from timm.layers.split_attn import SplitAttn  # noqa: E402

import archspec  # noqa: E402

pytestmark = pytest.mark.torchvision

# ECA with the paper's adaptive kernel (timm's: t = int(|log2(C) + b| / gamma), odd, at least 3)
ECA = """\
archspec: 1
name: eca
input: [CHANNELS, 7, 7]
blocks:
  eca:
    params:
      gamma: {type: int, default: 2}
      beta: {type: int, default: 1}
    body:
      - pool: {op: global_avgpool}
      - conv: {op: channel_conv, kernel: "=max(int(abs(log2(in_channels) + beta) / gamma) // 2 * 2 + 1, 3)"}
      - gate: {op: sigmoid}
      - scale: {op: mul, in: [input, gate]}
network:
  - se: {use: eca}
"""

# timm's SelectiveKernel(C, C): two paths on halves of the input (3x3, and 3x3 dilated by 2 for the 5x5), then
# the attention over the paths (timm's `attn`) and the weighted sum of the paths
SELECTIVE_KERNEL = """\
archspec: 1
name: sk
input: [64, 8, 8]
blocks:
  conv_bn_act:
    params: {out: int, dilation: {type: int, default: 1}}
    body:
      - conv: {op: conv, out: =out, kernel: 3, pad: =dilation, dilation: =dilation}
      - bn: {op: bn}
      - act: {op: relu}
  sk_paths:                                 # timm's `paths`, their outputs side by side (path-major)
    params: {out: int}
    body:
      - x0: {op: slice, size: =in_channels // 2}
      - 0: {use: conv_bn_act, out: =out}
      - x1: {op: slice, in: input, start: =in_channels // 2, size: =in_channels // 2}
      - 1: {use: conv_bn_act, out: =out, dilation: 2}
      - stack: {op: concat, in: ['0', '1']}
  sk_attn:                                  # timm's SelectiveKernelAttn on the stacked paths
    params: {attn: int}
    body:
      - p0: {op: slice, size: =in_channels // 2}
      - p1: {op: slice, in: input, start: =in_channels // 2, size: =in_channels // 2}
      - gap: {op: add, in: [p0, p1]}
      - pool: {op: global_avgpool}
      - fc_reduce: {op: conv, out: =attn, kernel: 1}
      - bn: {op: bn}
      - act: {op: relu}
      - fc_select: {op: conv, out: =in_channels, kernel: 1}
      - softmax: {op: branch_softmax, branches: 2}
  selective_kernel:
    params: {out: int, rd_ratio: {type: float, default: 0.0625}}
    body:
      - paths: {use: sk_paths, out: =out}
      - attn: {use: sk_attn, attn: "=make_divisible(out * rd_ratio, 8)"}
      - p0: {op: slice, in: paths, size: =out}
      - p1: {op: slice, in: paths, start: =out, size: =out}
      - a0: {op: slice, in: attn, size: =out}
      - a1: {op: slice, in: attn, start: =out, size: =out}
      - w0: {op: mul, in: [p0, a0]}
      - w1: {op: mul, in: [p1, a1]}
      - merged: {op: add, in: [w0, w1]}
network:
  - sk: {use: selective_kernel, out: 64}
"""


def split_attn_spec(radix: int, groups: int, channels: int = 64) -> str:
    """timm's SplitAttn(C, C, radix, groups) with BN (ResNeSt's): the radix chunks are `slice`s, their sum an `add`,
    timm's RadixSoftmax a `branch_softmax`, the weighted sum `mul`s and an `add` (radix 1: a sigmoid gate). One
    item per radix chunk: the language has no op that sums chunks (see the report), so the text is made per radix
    here."""
    r = range(radix)
    if radix == 1:
        chunks, gap, weights, merged = "", "", "", "      - merged: {op: mul, in: [act0, rsoftmax]}"
    else:
        chunks = "".join(f"      - x{i}: {{op: slice, in: act0, start: ={i} * out, size: =out}}\n" for i in r)
        gap = f"      - gap: {{op: add, in: [{', '.join(f'x{i}' for i in r)}]}}\n"
        weights = "".join(f"      - a{i}: {{op: slice, in: rsoftmax, start: ={i} * out, size: =out}}\n" for i in r)
        weights += "".join(f"      - w{i}: {{op: mul, in: [x{i}, a{i}]}}\n" for i in r)
        merged = f"      - merged: {{op: add, in: [{', '.join(f'w{i}' for i in r)}]}}"
    return f"""\
archspec: 1
name: splat
input: [{channels}, 8, 8]
blocks:
  split_attn:
    params:
      out: int
      radix: int
      groups: {{type: int, default: 1}}
      rd_ratio: {{type: float, default: 0.25}}
    body:
      - conv: {{op: conv, out: =out * radix, kernel: 3, pad: 1, groups: =groups * radix}}
      - bn0: {{op: bn}}
      - act0: {{op: relu}}
{chunks}{gap}      - pool: {{op: global_avgpool}}
      - fc1: {{op: conv, out: "=make_divisible(in_channels * radix * rd_ratio, 8, 32)", kernel: 1,
               groups: =groups, bias: true}}
      - bn1: {{op: bn}}
      - act1: {{op: relu}}
      - fc2: {{op: conv, out: =out * radix, kernel: 1, groups: =groups, bias: true}}
      - rsoftmax: {{op: branch_softmax, branches: =radix, groups: =groups}}
{weights}{merged}
network:
  - conv2: {{use: split_attn, out: {channels}, radix: {radix}, groups: {groups}}}
"""


def build(tmp_path, text, name="spec.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return archspec.build(path)


def randomised(module, seed=0):
    """Every BN with random statistics and affine parameters (fresh BNs are the identity in eval)."""
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            with torch.no_grad():
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.5)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.randn(m.num_features, generator=g))
                m.bias.copy_(torch.randn(m.num_features, generator=g))
    return module


def loaded(ours, submodule, theirs):
    """`theirs`'s state_dict loaded strictly into `ours`'s `submodule` (same keys, same shapes)."""
    target = ours.get_submodule(submodule)
    assert list(target.state_dict()) == list(theirs.state_dict())
    target.load_state_dict(theirs.state_dict(), strict=True)
    return ours


def agree(ours, theirs, x):
    with torch.no_grad():
        expected = theirs(x)
        torch.testing.assert_close(ours(x), expected, rtol=1e-5, atol=1e-5 * expected.abs().max().item())


@pytest.mark.parametrize("channels, kernel", [(64, 3), (256, 5), (2048, 7)])
def test_eca_is_timms_eca_module(tmp_path, channels, kernel):
    torch.manual_seed(channels)
    theirs = EcaModule(channels=channels).eval()
    assert theirs.conv.kernel_size == (kernel,)
    ours = build(tmp_path, ECA.replace("CHANNELS", str(channels))).eval()
    assert ours.get_submodule("se.conv").kernel_size == (kernel,)
    assert list(ours.state_dict()) == ["se.conv.weight"]  # timm's ecaresnet: `...se.conv.weight`
    loaded(ours, "se", theirs)
    agree(ours, theirs, torch.randn(3, channels, 7, 7))


@pytest.mark.parametrize("radix, groups", [(2, 1), (4, 2), (2, 2), (1, 1)])
def test_split_attention_is_timms_split_attn(tmp_path, radix, groups):
    torch.manual_seed(radix * 10 + groups)
    theirs = randomised(SplitAttn(64, 64, radix=radix, groups=groups, norm_layer=torch.nn.BatchNorm2d)).eval()
    ours = build(tmp_path, split_attn_spec(radix, groups)).eval()
    loaded(ours, "conv2", theirs)
    x = torch.randn(2, 64, 8, 8)
    agree(ours, theirs, x)
    ours.train(), theirs.train()  # with batch statistics too
    agree(ours, theirs, x)


def test_selective_kernel_is_timms_selective_kernel(tmp_path):
    torch.manual_seed(5)
    theirs = randomised(SelectiveKernel(64, 64)).eval()
    ours = build(tmp_path, SELECTIVE_KERNEL).eval()
    assert ours.get_submodule("sk.paths.1.conv").dilation == (2, 2)
    loaded(ours, "sk", theirs)  # paths.0.conv.weight ... attn.fc_select.weight
    agree(ours, theirs, torch.randn(2, 64, 8, 8))
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in theirs.parameters())
