"""An activation or a norm as a param of the whole net: `op: =act` with `act: {type: op}`, checked where the
value is given; a template param that may be `none` (an optional block such as timm's attn_layer); zoo specs
named by folder (`timm/resnet50`)."""

import textwrap

import pytest

import archspec
from archspec.lang.diagnostics import SpecError

NET = """\
archspec: 1
name: acts
input: [3, 8, 8]
params:
  act: {type: op, default: relu, doc: the activation}
  norm: {type: op, default: bn}
  attn: {type: template, default: none}
blocks:
  gate:
    body:
      - pool: {op: global_avgpool}
      - sig: {op: sigmoid}
      - scale: {op: mul, in: [input, sig]}
network:
  - conv: {op: conv, out: 32, kernel: 3, pad: 1}
  - norm: {op: =norm}
  - act: {op: =act}
  - se: {when: "attn != 'none'", use: =attn}
  - pool: {op: global_avgpool}
"""


@pytest.fixture
def spec(tmp_path):
    path = tmp_path / "acts.yaml"
    path.write_text(textwrap.dedent(NET), encoding="utf-8")
    return path


def test_an_op_param_chooses_the_op(spec):
    c = archspec.compile(spec)
    assert c.graph.node("act").op == "relu" and c.graph.node("norm").op == "bn"
    c = archspec.compile(spec, act="silu", norm="group_norm")
    assert c.graph.node("act").op == "silu" and c.graph.node("norm").op == "group_norm"
    assert c.buffers == 0 and c.params == 3 * 32 * 9 + 2 * 32  # GN: no running statistics


def test_a_template_param_may_be_none(spec):
    assert "se.scale" not in archspec.compile(spec).graph
    assert archspec.compile(spec, attn="gate").graph.node("se.scale").op == "mul"


def test_an_unknown_op_is_refused_where_it_is_given(cli, spec):
    r = cli("compile", spec, "--set", "act=silx")
    assert r.code == 2
    assert "--set act" in r.err and "must be the name of an op" in r.err and "did you mean `silu`" in r.err
    r = cli("compile", spec, "--set", "act=3")
    assert r.code == 2 and "--set act" in r.err and "must be the name of an op" in r.err


def test_an_unknown_op_default_is_refused_at_its_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(NET.replace("default: relu", "default: relx"), encoding="utf-8")
    with pytest.raises(SpecError) as e:
        archspec.compile(path)
    (d,) = e.value.diagnostics
    assert d.code == "E213" and d.loc.line == 5 and "did you mean `relu`" in d.hint


def test_an_op_expression_without_an_op_param_is_checked_at_the_item(tmp_path):
    path = tmp_path / "expr.yaml"
    path.write_text(NET.replace("act: {type: op, default: relu, doc: the activation}", "act: relx"), encoding="utf-8")
    with pytest.raises(SpecError) as e:
        archspec.compile(path)
    (d,) = e.value.diagnostics
    assert d.code == "E300" and d.loc.line == 17 and "unknown op `relx` (`=act`)" in d.message
    assert "did you mean `relu`" in d.hint


def test_the_chosen_ops_attributes_are_checked(tmp_path):
    path = tmp_path / "attrs.yaml"
    path.write_text(NET.replace("{op: =norm}", "{op: =norm, momentum: 0.2}"), encoding="utf-8")
    assert archspec.compile(path).graph.node("norm").attrs["momentum"] == 0.2
    with pytest.raises(SpecError) as e:
        archspec.compile(path, norm="group_norm")
    (d,) = e.value.diagnostics
    assert "unknown attribute `momentum` of op `group_norm`" in d.message and d.loc.line == 16


def test_zoo_specs_are_named_by_folder(cli):
    r = cli("compile", "timm/resnet50")
    assert r.code == 0 and "timm/resnet50" in r.out and "25,557,032" in r.out
    r = cli("compile", "timm/resnet5")
    assert r.code == 2 and "no spec named `timm/resnet5`" in r.err and "did you mean `timm/resnet50`" in r.err
    r = cli("list")
    assert "timm/seresnext26d_32x4d" in r.out


def test_a_block_param_of_type_op_is_checked_where_the_block_is_used(tmp_path):
    path = tmp_path / "block.yaml"
    path.write_text(textwrap.dedent("""\
        archspec: 1
        name: blockop
        input: [3, 8, 8]
        blocks:
          unit:
            params: {act: {type: op, default: relu}}
            body:
              - conv: {op: conv, out: 8, kernel: 3, pad: 1}
              - act: {op: =act}
        network:
          - a: {use: unit, act: silu}
          - b: {use: unit, act: sigmoyd}
        """), encoding="utf-8")
    with pytest.raises(SpecError) as e:
        archspec.compile(path)
    (d,) = e.value.diagnostics
    assert d.loc.line == 12 and "the name of an op" in d.message and "did you mean `sigmoid`" in d.hint
