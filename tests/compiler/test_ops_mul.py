"""`mul`, the gate of squeeze-and-excitation (x * sigmoid(fc2(relu(fc1(global_avgpool(x)))))), end to end: schema,
validation, broadcasting shapes and their diagnostics, counts, diagrams, summary, `archspec ops` and lowering."""

import textwrap

import pytest

import archspec
from archspec.compiler.analysis import Convention
from archspec.lang.ops import OPS, ShapeError

ALL_FLOPS = Convention(count="all", unit="flops")  # every op, a multiply-add as 2

SE = """\
archspec: 1
name: se
input: [8, 6, 6]
network:
  - conv: {op: conv, out: 8, kernel: 3, pad: 1}
  - squeeze: {op: global_avgpool}
  - fc1: {op: conv, out: 2, kernel: 1, bias: true}
  - act: {op: relu}
  - fc2: {op: conv, out: 8, kernel: 1, bias: true}
  - gate: {op: sigmoid}
  - scale: {op: mul, in: [conv, gate]}
  - sum: {op: add, in: [scale, input]}
  - out: {op: relu}
"""


def write(tmp_path, text, name="se.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_se_block_validates_compiles_and_counts(tmp_path):
    path = write(tmp_path, SE)
    assert archspec.validate(path).ok
    c = archspec.compile(path, count="all")
    m = c.facts("scale")
    assert c.facts("gate").shape == (8, 1, 1)
    assert m.shape == (8, 6, 6)
    assert m.params == 0 and m.macs == 0 and m.extra == 8 * 6 * 6  # one op per output element
    assert m.activation_elements * c.dtype_bytes == 8 * 6 * 6 * 4
    assert c.facts("fc1").params == 8 * 2 + 2 and c.facts("fc2").params == 2 * 8 + 8
    assert c.total(["scale"]) == c.total(["scale"], ALL_FLOPS) == 8 * 6 * 6  # with --count all, 1 op (1 FLOP) each
    assert archspec.compile(path).total(["scale"]) == 0  # not by default (conv and linear only)


@pytest.mark.parametrize("x, y, out", [
    ((8, 6, 6), (8, 6, 6), (8, 6, 6)),
    ((8, 6, 6), (8, 1, 1), (8, 6, 6)),
    ((8, 1, 1), (8, 6, 6), (8, 6, 6)),   # either input may be the smaller
    ((1, 1, 1), (8, 6, 6), (8, 6, 6)),
    ((8, 6, 6), (1, 6, 6), (8, 6, 6)),   # a spatial gate broadcasts too, as in PyTorch
    ((5,), (5,), (5,)),
])
def test_mul_shapes_broadcast_like_torch(x, y, out):
    torch = pytest.importorskip("torch")
    assert OPS["mul"].shape({}, [x, y]) == out
    assert tuple((torch.ones(1, *x) * torch.ones(1, *y)).shape[1:]) == out


@pytest.mark.parametrize("x, y", [((8, 6, 6), (4, 1, 1)), ((8, 6, 6), (8, 3, 3)), ((8, 1, 6), (8, 6, 1)),
                                  ((8, 6, 6), (8,)), ((4, 1, 1), (1, 1, 4))])
def test_mul_refuses_shapes_that_do_not_broadcast(x, y):
    with pytest.raises(ShapeError) as e:
        OPS["mul"].shape({}, [x, y])
    assert e.value.code == "E400" and "mul" in e.value.message


def test_a_gate_of_the_wrong_width_is_e400_naming_the_producers(tmp_path):
    path = write(tmp_path, SE.replace("fc2: {op: conv, out: 8,", "fc2: {op: conv, out: 4,"))
    with pytest.raises(archspec.SpecError) as e:
        archspec.compile(path)
    (d,) = [d for d in e.value.diagnostics if d.code == "E400"]
    assert d.loc.line == 11 and "4x1x1" in d.message and "8x6x6" in d.message
    assert "`gate`" in d.hint and "`conv`" in d.hint and "`out: 8`" in d.hint


def test_a_flattened_gate_is_e400_with_a_hint_to_keep_it_c_x_1_x_1(tmp_path):
    text = SE.replace("  - fc1: {op: conv, out: 2, kernel: 1, bias: true}",
                      "  - flat: {op: flatten}\n  - fc1: {op: linear, out: 2}")
    text = text.replace("fc2: {op: conv, out: 8, kernel: 1, bias: true}", "fc2: {op: linear, out: 8}")
    with pytest.raises(archspec.SpecError) as e:
        archspec.compile(write(tmp_path, text))
    (d,) = [d for d in e.value.diagnostics if d.code == "E400"]
    assert "`gate` gives a vector of 8" in d.hint and "1x1 convs" in d.hint


def test_mul_takes_exactly_two_inputs(tmp_path):
    three = write(tmp_path, SE.replace("in: [conv, gate]", "in: [conv, gate, conv]"))
    assert any(d.code == "E309" and "takes 2 inputs" in d.message for d in archspec.validate(three).diagnostics)
    bad = write(tmp_path, SE.replace("{op: mul, in: [conv, gate]}", "{op: mul, in: [conv, gate], p: 1}"))
    assert any(d.code == "E101" for d in archspec.validate(bad).diagnostics)


def test_mul_in_diagrams_summary_and_ops_listing(tmp_path, cli):
    path = write(tmp_path, SE)
    assert ">mul<" in archspec.render(path, level="layer").source
    from archspec.compiler.report import summary_rows

    rows = summary_rows(archspec.compile(path))
    assert next(r for r in rows if r["name"] == "scale")["type"] == "mul"
    r = cli("ops", "mul")
    assert r.code == 0 and r.out.startswith("mul: element-wise product of 2 inputs") and "(2 inputs)" in r.out


def test_se_block_lowers_to_operator_mul_and_matches_torch(tmp_path):
    torch = pytest.importorskip("torch")
    model = archspec.build(write(tmp_path, SE)).eval()
    import operator

    (node,) = [n for n in model.graph.nodes if n.meta.get("archspec_name") == "scale"]
    assert node.target is operator.mul and "scale = conv * gate" in model.code  # a new tensor, never in place
    x = torch.randn(2, 8, 6, 6)
    y = model.conv(x)
    gate = torch.sigmoid(model.fc2(torch.relu(model.fc1(model.squeeze(y)))))
    expected = torch.relu(y * gate + x)
    assert torch.equal(model(x), expected)


def test_the_add_after_mul_runs_in_place_and_gradients_equal_the_out_of_place_model(tmp_path,
                                                                                      inplace_gradients_agree):
    """mul's output is not kept for backward (autograd keeps its inputs), so the residual add may overwrite it."""
    torch = pytest.importorskip("torch")

    fast, slow = inplace_gradients_agree(write(tmp_path, SE), torch.randn(2, 8, 6, 6))
    assert "add_" in fast.code and "add_" not in slow.code
