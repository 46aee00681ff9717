"""The pass pipeline on small specs: shape errors at the right YAML line, expectations, lint, depth, memory."""

import json
import textwrap

import networkx as nx
import pytest

import archspec
from archspec.compiler.ir import Facts, Node
from archspec.compiler.passes.pipeline import PIPELINE
from archspec.lang.diagnostics import SpecError

BROKEN = """\
archspec: 1
name: broken
input: [3, 32, 32]
blocks:
  residual:
    params: {width: int, stride: {type: int, default: 1}}
    body:
      - conv1: {op: conv, out: =width, kernel: 3, stride: =stride, pad: 1}
      - bn1: {op: bn}
      - relu1: {op: relu}
      - conv2: {op: conv, out: =width, kernel: 3, pad: 1}
      - bn2: {op: bn}
      - add: {op: add, in: [bn2, input]}
      - relu2: {op: relu}
network:
  - conv1: {op: conv, out: 16, kernel: 3, pad: 1}
  - b1: {use: residual, width: 16}
  - b2: {use: residual, width: 32, stride: 2}
  - pool: {op: global_avgpool}
  - flat: {op: flatten}
  - fc: {op: linear, out: 10}
"""


def write(tmp_path, text, name="spec.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_pipeline_reads_top_to_bottom():
    assert [p.name for p in PIPELINE] == ["check_structure", "infer_shapes", "count_ops", "activation_memory",
                                          "weighted_depth"]


def test_identity_shortcut_across_a_stride_two_stage_is_a_shape_error_at_the_add(tmp_path):
    path = write(tmp_path, BROKEN)
    with pytest.raises(SpecError) as e:
        archspec.compile(path)
    (d,) = e.value.diagnostics
    assert d.code == "E400" and d.loc.line == 13 and d.loc.file.endswith("spec.yaml")
    assert "32x16x16" in d.message and "16x32x32" in d.message
    assert "option B" in d.hint and "option A" in d.hint
    assert any("b2" in note and "residual" in note for _, note in d.notes)  # which instance failed
    # validate finds the same problem without networkx
    r = archspec.validate(path)
    assert [(x.code, x.loc.line) for x in r.diagnostics] == [("E400", 13)]


def test_the_fixed_spec_compiles(tmp_path):
    fixed = BROKEN.replace("      - add: {op: add, in: [bn2, input]}",
                           "      - proj: {op: subsample_pad, in: input, out: =width, stride: =stride}\n"
                           "      - add: {op: add, in: [bn2, proj]}")
    c = archspec.compile(write(tmp_path, fixed))
    assert c.output_shape == (10,)
    assert c.facts("b2.add").shape == (32, 16, 16)
    assert c.graph.edges["b2.proj", "b2.add"]["shape"] == (32, 16, 16)  # shapes on edges


@pytest.mark.parametrize("attr,where,value,code", [
    ("in_channels", "conv2", 64, "E401"),
    ("channels", "bn2", 8, "E401"),
])
def test_declared_expectations_are_checked(tmp_path, attr, where, value, code):
    text = f"""\
    archspec: 1
    input: [3, 8, 8]
    network:
      - conv1: {{op: conv, out: 16, kernel: 3, pad: 1}}
      - conv2: {{op: conv, out: 16, kernel: 3, pad: 1{', in_channels: ' + str(value) if where == 'conv2' else ''}}}
      - bn2: {{op: bn{', channels: ' + str(value) if where == 'bn2' else ''}}}
    """
    with pytest.raises(SpecError) as e:
        archspec.compile(write(tmp_path, text))
    (d,) = e.value.diagnostics
    assert d.code == code and d.loc.line in (5, 6)
    assert f"expects {value} input channels, got 16" in d.message


def test_linear_on_a_feature_map_suggests_flatten(tmp_path):
    text = """\
    archspec: 1
    input: [3, 8, 8]
    network:
      - conv1: {op: conv, out: 4, kernel: 3}
      - pool: {op: global_avgpool}
      - fc: {op: linear, out: 10}
    """
    with pytest.raises(SpecError) as e:
        archspec.compile(write(tmp_path, text))
    (d,) = e.value.diagnostics
    assert d.code == "E401" and d.loc.line == 6 and "flatten" in d.hint


def test_output_that_would_be_empty_is_reported_once(tmp_path):
    text = """\
    archspec: 1
    input: [3, 8, 8]
    network:
      - conv1: {op: conv, out: 4, kernel: 3, stride: 2}
      - pool: {op: maxpool, kernel: 5}
      - conv2: {op: conv, out: 4, kernel: 3}
      - conv3: {op: conv, out: 4, kernel: 3}
    """
    with pytest.raises(SpecError) as e:
        archspec.compile(write(tmp_path, text))
    assert [(d.code, d.loc.line) for d in e.value.diagnostics] == [("E402", 5)]  # no cascade after the first


def test_graph_is_a_networkx_dag_with_ordered_inputs():
    c = archspec.compile("resnet18")
    g = c.graph
    assert isinstance(g, nx.DiGraph) and nx.is_directed_acyclic_graph(g)
    add = g.node("layer2.0.add")
    assert add.inputs == ("layer2.0.drop_path", "layer2.0.downsample.1")  # drop_path: an identity at rate 0
    assert g.node("layer2.0.drop_path").inputs == ("layer2.0.bn2",)
    assert g.edges["layer2.0.downsample.1", "layer2.0.add"]["ports"] == [1]
    assert add.loc.file.endswith("lib/resnet.yaml")
    assert add.scope == ("layer2", "layer2.0")
    assert dict(g.node("layer2.0.conv1").attrs)["stride"] == 2
    with pytest.raises(TypeError):
        g.node("layer2.0.conv1").attrs["stride"] = 1  # attributes are read-only
    with pytest.raises(AttributeError):
        add.inputs = ()  # a node is made once  # type: ignore[misc]


def test_the_graph_answers_order_users_and_the_members_of_a_block_from_scope():
    c = archspec.compile("resnet18")
    g = c.graph
    order = g.order()
    assert order == list(nx.lexicographical_topological_sort(g, key=list(g).index)) and order[0] == "input"
    assert g.users("layer2.0.conv1") == ["layer2.0.bn1"]
    assert g.users("layer1.1.relu2") == ["layer2.0.conv1", "layer2.0.downsample.0"]  # the block's input, twice used
    members = g.members("layer2.0")
    assert members == [n for n in order if "layer2.0" in g.node(n).scope] and len(members) == 10
    assert members[0] == "layer2.0.conv1" and members[-1] == "layer2.0.relu2"
    assert set(g.members("layer2")) == {n for b in ("layer2.0", "layer2.1") for n in g.members(b)}
    assert g.members("no_such_block") == [] and g.node("fc").block is None
    assert g.node("layer2.0.downsample.0").block == "layer2.0.downsample"


def test_counts_are_raw_and_any_convention_is_chosen_when_shown():
    from archspec.compiler.analysis import Convention

    c = archspec.compile("resnet50_tv")
    f = c.facts("layer1.0.bn1")  # a BN: no MACs, arithmetic of its own
    assert f.macs == 0 and f.extra > 0 and f.extra_flops == 2 * f.extra
    conv = c.facts("layer1.0.conv1")
    assert c.total(["layer1.0.conv1"]) == conv.macs
    assert c.total(["layer1.0.bn1"], Convention(count="all")) == f.extra
    assert c.under(Convention(unit="flops")).total() == 2 * c.total() == 2 * c.macs
    assert c.under(Convention(count="all", unit="flops")).total() == 2 * c.macs + c.summed("extra_flops")
    half = c.under(Convention(dtype_bytes=2))
    assert half.activation_bytes * 2 == c.activation_bytes and half.graph is c.graph  # nothing recomputed
    with pytest.raises(ValueError):
        Convention(count="some")  # type: ignore[arg-type]


def test_depth_counts_the_longest_weighted_path_not_projections():
    c = archspec.compile("resnet34_c")  # a projection on every shortcut
    convs = sum(1 for n in c.graph.nodes_in_order() if n.op == "conv")
    assert convs == 33 + 16 and c.depth == 34


def test_activation_memory_counts_every_op_output_but_views():
    c = archspec.compile("cifar_resnet20")
    expected = sum(4 * __import__("math").prod(c.shape(n.name)) for n in c.graph.nodes_in_order()
                   if n.op not in ("input", "flatten", "identity"))
    assert c.activation_bytes == expected
    half = archspec.compile("cifar_resnet20")
    assert half.activation_bytes > 0


def test_input_override_changes_shapes_and_macs_but_not_params():
    small = archspec.compile("resnet50_tv")
    big = archspec.compile("resnet50_tv", input="3x448x448")
    assert big.params == small.params
    assert big.macs - big.facts("fc").macs == 4 * (small.macs - small.facts("fc").macs)
    assert big.facts("layer4.2.relu3").shape == (2048, 14, 14)


def test_to_dict_has_the_documented_keys():
    d = archspec.compile("cifar_resnet20").to_dict()
    assert {"name", "input", "output", "params", "macs", "layers", "stages", "nodes"} <= set(d)
    assert {"name", "output", "params", "macs"} <= set(d["stages"][0])
    assert {"name", "op", "shape", "params", "macs"} <= set(d["nodes"][1])
    assert d["layers"] == 20 and d["params"] == sum(n["params"] for n in d["nodes"])
    json.dumps(d)


def test_structure_pass_finds_unused_nodes_and_cycles_with_the_expansion_checks(tmp_path):
    """A graph not made by expansion (edited by a tool) gets the diagnostics expansion would give."""
    from archspec.compiler.passes.context import PassContext
    from archspec.compiler.passes.lint import check_structure

    fixed = BROKEN.replace("      - add: {op: add, in: [bn2, input]}",
                           "      - proj: {op: subsample_pad, in: input, out: =width, stride: =stride}\n"
                           "      - add: {op: add, in: [bn2, proj]}")
    g = archspec.compile(write(tmp_path, fixed)).graph.copy()
    loc = g.node("fc").loc
    g.add_node("extra", node=Node(name="extra", op="relu", attrs={}, inputs=("fc",), loc=loc, scope=(),
                                  stage="head"), facts=Facts())
    g.add_edge("fc", "extra", ports=[0])
    ctx = PassContext()
    check_structure(g, ctx)
    assert [(d.code, d.message) for d in ctx.diagnostics] == [("E308", "the output of `extra` is never used")]
    g.remove_node("extra")
    g.nodes["conv1"]["node"] = g.node("conv1")._replace(inputs=("fc",))  # it reads the last node: a loop
    g.add_edge("fc", "conv1", ports=[0])
    g.remove_edge("input", "conv1")
    ctx = PassContext()
    check_structure(g, ctx)
    codes = [d.code for d in ctx.diagnostics]
    assert "E307" in codes and "conv1" in next(d.message for d in ctx.diagnostics if d.code == "E307")
