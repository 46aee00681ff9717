"""`silu` and `hardsigmoid` end to end: validation, shapes, counts (one op per element), diagrams, summary,
`archspec ops`, and lowering to `torch.nn.functional` calls (never in place) whose numbers are torch's."""

import textwrap

import pytest

import archspec
from archspec.compiler.analysis import Convention

ALL_FLOPS = Convention(count="all", unit="flops")  # every op, a multiply-add as 2

NET = """\
archspec: 1
name: acts
input: [6, 5, 5]
network:
  - conv: {op: conv, out: 6, kernel: 3, pad: 1}
  - bn: {op: bn}
  - swish: {op: silu}
  - squeeze: {op: global_avgpool}
  - fc: {op: conv, out: 6, kernel: 1, bias: true}
  - gate: {op: hardsigmoid}
  - scale: {op: mul, in: [swish, gate]}
  - sum: {op: add, in: [scale, input]}
  - out: {op: relu}
"""


def write(tmp_path, text=NET):
    path = tmp_path / "acts.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_activations_validate_compile_and_count_one_op_per_element(tmp_path):
    path = write(tmp_path)
    assert archspec.validate(path).ok
    c = archspec.compile(path, count="all")
    for name, shape in (("swish", (6, 5, 5)), ("gate", (6, 1, 1))):
        m = c.facts(name)
        assert m.shape == shape and m.params == 0 and m.macs == 0
        assert m.extra == c.total([name]) == c.total([name], ALL_FLOPS) == 6 * shape[1] * shape[2], name
        assert archspec.compile(path).total([name]) == 0  # not counted by default
    assert c.facts("swish").activation_elements * c.dtype_bytes == 6 * 5 * 5 * 4


@pytest.mark.parametrize("op", ["silu", "hardsigmoid"])
def test_activations_take_one_input_and_no_attributes(tmp_path, op):
    bad = write(tmp_path, NET.replace(f"{{op: {op}}}", f"{{op: {op}, p: 1}}"))
    (d,) = archspec.validate(bad).diagnostics
    assert d.code == "E101" and op in d.message
    two = write(tmp_path, NET.replace(f"{{op: {op}}}", f"{{op: {op}, in: [conv, input]}}"))
    assert any(x.code == "E309" and "takes 1 input" in x.message for x in archspec.validate(two).diagnostics)


def test_activations_in_diagrams_summary_and_ops_listing(tmp_path, cli):
    path = write(tmp_path)
    source = archspec.render(path, level="layer").source
    assert "SiLU" in source and ">hardsigmoid<" in source
    assert "BN · SiLU" in source  # folded into the conv like ReLU
    from archspec.compiler.report import summary_rows

    types = {r["name"]: r["type"] for r in summary_rows(archspec.compile(path))}
    assert types["swish"] == "silu" and types["gate"] == "hardsigmoid"
    r = cli("ops", "silu", "hardsigmoid")
    assert r.code == 0
    assert r.out.startswith("silu: sigmoid-weighted linear unit x * sigmoid(x)")
    assert "hardsigmoid: piecewise-linear sigmoid relu6(x + 3) / 6" in r.out


def test_activations_lower_to_functional_calls_that_match_torch(tmp_path):
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    model = archspec.build(write(tmp_path)).eval()
    targets = {n.meta.get("archspec_name"): n.target for n in model.graph.nodes}
    assert targets["swish"] is F.silu and targets["gate"] is F.hardsigmoid
    assert "torch.nn.functional.silu(bn)" in model.code and "torch.nn.functional.hardsigmoid(fc)" in model.code
    assert "inplace" not in model.code
    x = torch.randn(3, 6, 5, 5)
    y = model.bn(model.conv(x))
    s = y * torch.sigmoid(y)  # x * sigmoid(x), by hand
    g = torch.clamp(model.fc(model.squeeze(F.silu(y))) + 3, 0, 6) / 6  # relu6(x + 3) / 6, by hand
    expected = torch.relu(F.silu(y) * g + x)
    got = model(x)
    assert torch.equal(got, expected)
    assert torch.allclose(F.silu(y), s, rtol=1e-6, atol=1e-6)
    assert torch.allclose(torch.relu(s * g + x), got, rtol=1e-5, atol=1e-6)


def test_silu_and_hardsigmoid_numerics_are_torchs():
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    x = torch.linspace(-8, 8, 4001, dtype=torch.float64)
    assert torch.allclose(F.silu(x), x * torch.sigmoid(x), rtol=1e-12, atol=1e-12)
    hard = F.relu6(x + 3) / 6
    assert torch.allclose(F.hardsigmoid(x), hard, rtol=1e-12, atol=1e-12)
    assert F.hardsigmoid(torch.tensor([-3.0, 0.0, 3.0])).tolist() == [0.0, 0.5, 1.0]


def test_an_in_place_consumer_of_silu_gives_the_out_of_place_gradients(tmp_path, inplace_gradients_agree):
    """silu and hardsigmoid keep their input for backward, not their output, so a sole reader may overwrite it."""
    torch = pytest.importorskip("torch")

    text = NET.replace("  - squeeze:", "  - act: {op: relu}\n  - squeeze:").replace("[swish, gate]", "[act, gate]")
    fast, slow = inplace_gradients_agree(write(tmp_path, text), torch.randn(4, 6, 5, 5))
    assert "torch.relu_(swish)" in fast.code and "relu_" not in slow.code
