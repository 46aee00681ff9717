"""`group_norm` (resnet50_gn's norm) end to end: validation, its shape rule and the diagnostic when the groups do
not divide the channels, counts (2 affine parameters per channel, no running statistics), diagrams, `archspec
ops`, and lowering to `nn.GroupNorm`, whose numbers are torch's."""

import textwrap

import pytest
import torch

import archspec
from archspec.lang.diagnostics import SpecError

NET = """\
archspec: 1
name: gn
input: [3, 8, 8]
network:
  - conv: {op: conv, out: 16, kernel: 3, pad: 1}
  - norm: {op: group_norm, groups: GROUPS}
  - relu: {op: relu}
  - conv2: {op: conv, out: 16, kernel: 3, pad: 1}
  - norm2: {op: group_norm, groups: 4, zero_init: true, channels: 16}
  - sum: {op: add, in: [norm2, relu]}
  - pool: {op: global_avgpool}
  - flat: {op: flatten}
  - fc: {op: linear, out: 10}
"""


def write(tmp_path, groups=8):
    path = tmp_path / "gn.yaml"
    path.write_text(textwrap.dedent(NET.replace("GROUPS", str(groups))), encoding="utf-8")
    return path


def test_group_norm_validates_compiles_and_counts(tmp_path):
    path = write(tmp_path)
    assert archspec.validate(path).ok
    c = archspec.compile(path, count="all")
    f = c.facts("norm")
    assert f.shape == (16, 8, 8)
    assert f.params == 2 * 16 and f.buffers == 0 and f.macs == 0  # no running statistics, unlike BN
    assert f.extra == 16 * 8 * 8 and f.extra_flops == 2 * 16 * 8 * 8
    assert c.buffers == 0


def test_groups_that_do_not_divide_the_channels_are_refused_at_the_line(tmp_path):
    with pytest.raises(SpecError) as e:
        archspec.compile(write(tmp_path, groups=6))
    (d,) = e.value.diagnostics
    assert d.loc.line == 6 and "16 channels do not split into 6 groups" in d.message
    assert "groups: 16" in d.hint or "groups: 8" in d.hint


def test_group_norm_lowers_to_torch_group_norm(tmp_path):
    c = archspec.compile(write(tmp_path))
    model = archspec.build(write(tmp_path)).eval()
    norm = model.get_submodule("norm")
    assert isinstance(norm, torch.nn.GroupNorm) and norm.num_groups == 8 and norm.num_channels == 16
    assert torch.all(model.get_submodule("norm2").weight == 0)  # zero_init
    assert sum(p.numel() for p in model.parameters()) == c.params
    torch.nn.init.normal_(norm.weight)
    torch.nn.init.normal_(norm.bias)
    t = torch.randn(2, 16, 8, 8)
    assert torch.allclose(norm(t), torch.nn.functional.group_norm(t, 8, norm.weight, norm.bias, norm.eps))
    x = torch.randn(2, 3, 8, 8)
    assert torch.equal(model(x), model(x))  # no state changes between calls (no running statistics)


def test_group_norm_in_diagrams_and_archspec_ops(cli, tmp_path):
    r = cli("render", write(tmp_path), "-o", tmp_path / "gn.dot", "--level", "layer", "--no-fold")
    assert r.code == 0, r.err
    assert "GN/8" in (tmp_path / "gn.dot").read_text()
    r = cli("ops", "group_norm")
    assert r.code == 0 and "groups" in r.out and "32" in r.out
