"""`frn` (FRN-TLU) and `evonorm` (EvoNorm-S0), the norms of timm's resnetv2_50d_frn and resnetv2_50d_evos, end to
end: validation, shapes and the refusals at the spec's line (groups that do not divide the channels, a vector
input, a stated width that differs), counts (per channel weight, bias and tau or v; per element the scale and
shift as BN plus the activation; no buffers), diagrams, `archspec ops`, and their numbers against the papers'
formulas computed here in float64."""

import textwrap

import pytest
import torch

import archspec
from archspec.lang.diagnostics import SpecError

NET = """\
archspec: 1
name: norms
input: [3, 7, 9]
network:
  - conv: {op: conv, out: 32, kernel: 3, pad: 1}
  - norm1: {op: frn FRN}
  - conv2: {op: conv, out: 32, kernel: 3, pad: 1}
  - norm2: {op: evonorm EVO}
  - relu: {op: relu}
  - pool: {op: global_avgpool}
  - flat: {op: flatten}
  - fc: {op: linear, out: 10}
"""


def write(tmp_path, frn="", evo=", groups: 8"):
    path = tmp_path / "norms.yaml"
    path.write_text(textwrap.dedent(NET.replace(" FRN", frn).replace(" EVO", evo)), encoding="utf-8")
    return path


def frn_reference(x, weight, bias, tau, eps):
    x, (w, b) = x.double(), (p.double().view(1, -1, 1, 1) for p in (weight, bias))
    y = x / torch.sqrt((x * x).mean(dim=(2, 3), keepdim=True) + eps) * w + b
    return y if tau is None else torch.where(y > tau.double().view(1, -1, 1, 1), y, tau.double().view(1, -1, 1, 1))


def evonorm_reference(x, weight, bias, v, groups, eps):
    x, (w, b) = x.double(), (p.double().view(1, -1, 1, 1) for p in (weight, bias))
    if v is None:
        return x * w + b
    n, c, h, wd = x.shape
    out = torch.empty_like(x)
    for g in range(groups):  # one group of channels at a time
        part = x[:, g * c // groups: (g + 1) * c // groups]
        var = part.var(dim=(1, 2, 3), unbiased=False, keepdim=True)
        vg = v.double().view(1, -1, 1, 1)[:, g * c // groups: (g + 1) * c // groups]
        out[:, g * c // groups: (g + 1) * c // groups] = part / (1 + torch.exp(-vg * part)) / torch.sqrt(var + eps)
    return out * w + b


def test_frn_and_evonorm_validate_compile_and_count(tmp_path):
    path = write(tmp_path)
    assert archspec.validate(path).ok
    c = archspec.compile(path, count="all")
    n = 32 * 7 * 9
    for name in ("norm1", "norm2"):
        f = c.facts(name)
        assert f.shape == (32, 7, 9) and f.params == 3 * 32 and f.buffers == 0 and f.macs == 0
        assert f.extra == 2 * n and f.extra_flops == 3 * n  # scale and shift (1 MAC, 2 FLOPs) + the activation
    assert c.buffers == 0
    c = archspec.compile(write(tmp_path, ", act: false", ", act: false"), count="all")
    for name in ("norm1", "norm2"):
        f = c.facts(name)
        assert f.params == 2 * 32 and f.extra == n and f.extra_flops == 2 * n  # as BN, without tau or v


def test_groups_that_do_not_divide_the_channels_are_refused_at_the_line(tmp_path):
    for evo, what, hint in [(", groups: 6", "do not split into 6 groups", "groups: 32"),
                            (", group_size: 5", "do not split into groups of 5", "group_size: 32")]:
        with pytest.raises(SpecError) as e:
            archspec.compile(write(tmp_path, evo=evo))
        (d,) = e.value.diagnostics
        assert d.code == "E401" and d.loc.line == 8 and f"32 channels {what}" in d.message and hint in d.hint


def test_a_vector_and_a_width_that_differs_are_refused_at_the_line(tmp_path):
    path = tmp_path / "vec.yaml"
    path.write_text(NET.replace("  - relu: {op: relu}\n", "").replace(" FRN", "").replace(" EVO", "")
                    .replace("  - fc:", "  - late: {op: frn}\n  - fc:"), encoding="utf-8")
    with pytest.raises(SpecError) as e:
        archspec.compile(path)
    (d,) = e.value.diagnostics
    assert d.code == "E401" and d.loc.line == 11 and "frn expects a C x H x W feature map" in d.message
    assert "flatten" in d.hint
    with pytest.raises(SpecError) as e:
        archspec.compile(write(tmp_path, frn=", channels: 16"))
    (d,) = e.value.diagnostics
    assert d.loc.line == 6 and "frn expects 16 input channels, got 32" in d.message and "channels: 32" in d.hint


@pytest.mark.parametrize("act", [True, False])
def test_frn_and_evonorm_compute_the_papers_formulas(tmp_path, act):
    flag = "" if act else ", act: false"
    model = archspec.build(write(tmp_path, flag + ", eps: 1.0e-4", ", group_size: 8" + flag)).eval()
    frn, evo = model.get_submodule("norm1"), model.get_submodule("norm2")
    assert [k for k in model.state_dict() if k.startswith("norm1")] == ["norm1.weight", "norm1.bias"] + (
        ["norm1.tau"] if act else [])
    assert [k for k in model.state_dict() if k.startswith("norm2")] == ["norm2.weight", "norm2.bias"] + (
        ["norm2.v"] if act else [])
    assert frn.eps == 1e-4 and evo.groups == 4 and evo.eps == 1e-5 and (frn.tau is None) == (not act)
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.3, 0.7)
    for size in [(8, 8), (7, 9)]:
        x = torch.randn(2, 32, *size) * 2 + 0.5
        expected = frn_reference(x, frn.weight, frn.bias, frn.tau, 1e-4)
        assert torch.allclose(frn(x).double(), expected, rtol=1e-5, atol=1e-5)
        expected = evonorm_reference(x, evo.weight, evo.bias, evo.v, 4, 1e-5)
        assert torch.allclose(evo(x).double(), expected, rtol=1e-5, atol=1e-5)
    x = torch.randn(3, 3, 7, 9)
    assert torch.allclose(model(x)[:1], model(x[:1]), rtol=1e-5, atol=1e-4)  # per-sample statistics


def test_initialisation_zero_init_and_in_place_readers(tmp_path, inplace_gradients_agree):
    model = archspec.build(write(tmp_path, ", zero_init: true"))
    frn, evo = model.norm1, model.norm2
    assert torch.all(frn.weight == 0) and torch.all(frn.bias == 0) and torch.all(frn.tau == 0)
    assert torch.all(evo.weight == 1) and torch.all(evo.bias == 0) and torch.all(evo.v == 1)
    c = archspec.compile(write(tmp_path))
    assert sum(p.numel() for p in model.parameters()) == c.params and not list(model.buffers())
    assert "relu_" in archspec.build(write(tmp_path)).code  # the relu overwrites evonorm's output
    inplace_gradients_agree(write(tmp_path), torch.randn(2, 3, 7, 9))


def test_frn_and_evonorm_in_diagrams_and_archspec_ops(cli, tmp_path):
    r = cli("render", write(tmp_path), "-o", tmp_path / "n.dot", "--level", "layer", "--no-fold")
    assert r.code == 0, r.err
    dot = (tmp_path / "n.dot").read_text()
    assert "FRN+TLU" in dot and "EvoNorm-S0/8" in dot
    r = cli("ops", "frn")
    assert r.code == 0 and "act" in r.out and "tau" in r.out and "1e-05" in r.out
    r = cli("ops", "evonorm")
    assert r.code == 0 and "group_size" in r.out and "default 32" in r.out
