"""The library's squeeze-and-excitation block: `rounding: floor` (the default, `in_channels // reduction`) and
`rounding: divisible` (timm's `make_divisible(in_channels / reduction, 8)`); shipped specs keep the floor."""

from __future__ import annotations

import textwrap

import pytest

import archspec

SE = """\
archspec: 1
name: se_rounding
imports: ["archspec:lib/resnet.yaml"]
input: [3, 8, 8]
network:
  - conv: {op: conv, out: 64, kernel: 3, pad: 1}
  - se: {use: squeeze_excite{args}}
"""


def compile_se(tmp_path, args: str = ""):
    path = tmp_path / "se.yaml"
    path.write_text(textwrap.dedent(SE).replace("{args}", args), encoding="utf-8")
    return archspec.compile(path)


def se_params(c: int, hidden: int) -> int:
    return c * hidden + hidden + hidden * c + c  # fc1 and fc2, 1x1 convs with bias


@pytest.mark.parametrize("args, hidden", [
    ("", 64 // 16),                                   # default: floor, 4
    (", rounding: floor", 4),
    (", rounding: divisible", 8),                     # make_divisible(64 / 16, 8) = max(8, 0 // 8 * 8 ...) = 8
    (", reduction: 4, rounding: divisible", 16),      # make_divisible(16.0, 8) = 16
    (", reduction: 4", 16),
])
def test_hidden_width_and_params_follow_the_rounding(tmp_path, args, hidden):
    c = compile_se(tmp_path, args)
    assert c.graph.node("se.fc1").attrs["out"] == hidden
    assert c.params == 3 * 64 * 9 + se_params(64, hidden)


def test_an_unknown_rounding_is_refused(tmp_path):
    path = tmp_path / "se.yaml"
    path.write_text(textwrap.dedent(SE).replace("{args}", ", rounding: ceil"), encoding="utf-8")
    codes = {d.code for d in archspec.validate(path).diagnostics}
    assert codes & {"E103", "E213", "E304"}, codes


def test_seresnet50_keeps_the_floor_and_its_size():
    c = archspec.compile("seresnet50")
    assert c.params == 28_088_024
    widths = {n.rsplit(".se.", 1)[0]: c.graph.node(n).attrs["out"] for n in c.graph.nodes if n.endswith(".se.fc1")}
    assert widths["layer1.0"] == 256 // 16 and widths["layer4.2"] == 2048 // 16
