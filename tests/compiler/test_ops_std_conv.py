"""`std_conv` (the weight-standardised conv of BiT, timm's StdConv2d) end to end: validation, conv's shape rule
and counts (the same figures as `conv` with the same attributes, and depth), the refusals at the spec's line,
diagrams, `archspec ops`, and lowering to an `nn.Conv2d` subclass (state_dict key `weight`) whose
output is a conv with each output channel's weight standardised, computed here in float64."""

import textwrap

import pytest
import torch
import torch.nn.functional as F

import archspec
from archspec.lang.diagnostics import SpecError

NET = """\
archspec: 1
name: ws
input: [4, 10, 10]
network:
  - stem: {op: std_conv, out: 16, kernel: 3, stride: 2, pad: 1 EXTRA}
  - act: {op: relu}
  - conv2: {op: std_conv, out: 16, kernel: 3, pad: 1, groups: 4, bias: true, eps: 1.0e-5, in_channels: 16}
  - pool: {op: global_avgpool}
  - flat: {op: flatten}
  - fc: {op: linear, out: 10}
"""


def write(tmp_path, extra="", op="std_conv"):
    path = tmp_path / f"{op}.yaml"
    text = NET.replace(" EXTRA", extra)
    if op != "std_conv":  # the same network with plain convs (conv has no eps)
        text = text.replace("std_conv", op).replace(", eps: 1.0e-5", "")
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def standardised(weight, eps):
    w = weight.double()
    mean = w.mean(dim=(1, 2, 3), keepdim=True)
    var = ((w - mean) ** 2).mean(dim=(1, 2, 3), keepdim=True)  # biased: divided by the fan-in
    return (w - mean) / torch.sqrt(var + eps)


def close(got, expected, rel=1e-5):
    """Equal to float32 rounding: within `rel` of the largest magnitude."""
    return (got.double() - expected).abs().max().item() <= rel * max(1.0, expected.abs().max().item())


def test_std_conv_validates_compiles_and_counts_as_conv(tmp_path):
    path = write(tmp_path)
    assert archspec.validate(path).ok
    c, plain = archspec.compile(path, count="all"), archspec.compile(write(tmp_path, op="conv"), count="all")
    for name in ("stem", "conv2"):
        f, g = c.facts(name), plain.facts(name)
        assert (f.shape, f.params, f.buffers, f.macs, f.extra) == (g.shape, g.params, g.buffers, g.macs, g.extra)
    assert c.facts("stem").shape == (16, 5, 5) and c.facts("stem").params == 16 * 4 * 9
    assert c.facts("conv2").params == 16 * 4 * 9 + 16 and c.facts("conv2").macs == 16 * 25 * 4 * 9
    assert c.depth == plain.depth == 3 and c.params == plain.params and c.macs == plain.macs


def test_conv_mistakes_are_refused_at_the_line(tmp_path):
    (d,) = archspec.validate(write(tmp_path, ", eps: -1")).diagnostics
    assert d.loc.line == 5 and "`eps` of node `stem` must be at least 0" in d.message
    with pytest.raises(SpecError) as e:
        archspec.compile(write(tmp_path, ", groups: 3"))
    (d,) = e.value.diagnostics
    assert d.code == "E401" and d.loc.line == 5 and "groups=3" in d.message and "groups" in d.hint
    with pytest.raises(SpecError) as e:
        archspec.compile(write(tmp_path, ", in_channels: 3"))
    (d,) = e.value.diagnostics
    assert d.loc.line == 5 and "expects 3 input channels, got 4" in d.message and "in_channels: 4" in d.hint


def test_std_conv_lowers_to_a_standardising_conv2d(tmp_path):
    torch.manual_seed(0)
    c = archspec.compile(write(tmp_path))
    model = archspec.build(write(tmp_path)).eval()
    stem, conv2 = model.get_submodule("stem"), model.get_submodule("conv2")
    assert isinstance(stem, torch.nn.Conv2d) and type(stem).__name__ == "StdConv2d"
    assert stem.eps == 1e-8 and conv2.eps == 1e-5 and conv2.groups == 4 and stem.stride == (2, 2)
    assert [k for k in model.state_dict() if k.startswith(("stem", "conv2"))] == ["stem.weight", "conv2.weight",
                                                                                 "conv2.bias"]
    assert sum(p.numel() for p in model.parameters()) == c.params
    with torch.no_grad():  # weights whose channels have means and scales to remove
        for m in (stem, conv2):
            m.weight.mul_(torch.rand(m.out_channels, 1, 1, 1) * 3).add_(torch.randn(m.out_channels, 1, 1, 1))
        conv2.bias.normal_()
    x = torch.randn(2, 4, 10, 10)
    expected = F.conv2d(x.double(), standardised(stem.weight, 1e-8), None, 2, 1)
    assert close(stem(x), expected)
    y = torch.randn(2, 16, 5, 5)
    expected = F.conv2d(y.double(), standardised(conv2.weight, 1e-5), conv2.bias.double(), 1, 1, 1, 4)
    assert close(conv2(y), expected)
    # scaling and shifting a channel's raw weights changes nothing: only the standardised weight is used
    before = stem(x)
    with torch.no_grad():
        stem.weight.mul_(5).add_(2)
    assert close(stem(x), before.double(), 1e-4)  # (float32 loses bits to the shift before subtracting it)


def test_gradients_reach_the_raw_weight_and_the_relu_after_it_may_run_in_place(tmp_path, inplace_gradients_agree):
    torch.manual_seed(0)
    fast, _ = inplace_gradients_agree(write(tmp_path), torch.randn(2, 4, 10, 10))
    grad = fast.stem.weight.grad.double().reshape(16, -1)
    # the standardised weight does not change when a channel's raw weights shift: its gradient sums to 0 per row
    assert (grad.abs().sum(dim=1) > 0).all()
    assert (grad.sum(dim=1).abs() <= 1e-5 * grad.abs().sum(dim=1)).all()


def test_std_conv_in_diagrams_and_archspec_ops(cli, tmp_path):
    r = cli("render", write(tmp_path), "-o", tmp_path / "ws.dot", "--level", "layer", "--no-fold")
    assert r.code == 0, r.err
    assert "WS conv 3x3 /2, 16" in (tmp_path / "ws.dot").read_text()
    r = cli("ops", "std_conv")
    assert r.code == 0 and "eps" in r.out and "1e-08" in r.out and "counts towards depth" in r.out
