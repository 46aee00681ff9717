"""`drop_path` (stochastic depth) end to end: its attribute `p` in [0, 1) (literal or computed), shapes and
counts, diagrams, summary, `archspec ops`, and the `DropPath` module: the drop rate, the scale of kept samples,
eval and p = 0 as the identity, gradients, and masks that follow torch's RNG state."""

import math
import textwrap

import pytest

import archspec
from archspec.compiler.analysis import Convention

ALL_FLOPS = Convention(count="all", unit="flops")  # every op, a multiply-add as 2

RESIDUAL = """\
archspec: 1
name: stochastic
input: [4, 5, 5]
params: {rate: 0.25}
network:
  - conv: {op: conv, out: 4, kernel: 3, pad: 1}
  - bn: {op: bn}
  - drop: {op: drop_path, p: "=rate"}
  - sum: {op: add, in: [drop, input]}
  - out: {op: relu}
"""


def write(tmp_path, text, name="dp.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_drop_path_validates_compiles_and_counts(tmp_path):
    path = write(tmp_path, RESIDUAL)
    assert archspec.validate(path).ok
    c = archspec.compile(path, count="all")
    m = c.facts("drop")
    assert m.shape == (4, 5, 5)
    assert m.params == 0 and m.buffers == 0 and m.macs == 0
    assert m.extra == 4 * 5 * 5  # one op (the scaled mask) per element
    assert c.total(["drop"]) == c.total(["drop"], ALL_FLOPS) == 4 * 5 * 5  # counted with --count all
    assert archspec.compile(path).total(["drop"]) == 0  # not by default
    assert c.graph.node("drop").attrs["p"] == 0.25  # the expression, evaluated


@pytest.mark.parametrize("value, code", [("1", "E104"), ("'=rate * 4'", "E314"), ("1.5", "E104"),
                                         ("-0.1", "E104"), ("'=-rate'", "E314"), ("true", None)])
def test_p_must_be_a_probability_below_1(tmp_path, value, code):
    path = write(tmp_path, RESIDUAL.replace('p: "=rate"', f"p: {value}"))
    found = archspec.validate(path).diagnostics
    assert found and (code is None or found[0].code == code), found
    if code == "E314":
        assert "`p` of drop_path must be" in found[0].message


def test_p_1_is_refused_with_its_reason(tmp_path):
    """Written as a number, the schema refuses it (as an editor would); computed, the type checker does."""
    (d,) = archspec.validate(write(tmp_path, RESIDUAL.replace('p: "=rate"', "p: 1"))).diagnostics
    assert d.message == "`p` of node `drop` must be below 1, found 1" and d.loc.line == 8
    (d,) = archspec.validate(write(tmp_path, RESIDUAL.replace('p: "=rate"', 'p: "=rate * 4"'))).diagnostics
    assert d.message == "`p` of drop_path must be below 1, got 1.0" and d.loc.line == 8


def test_p_is_required(tmp_path):
    (d,) = archspec.validate(write(tmp_path, RESIDUAL.replace(', p: "=rate"', ""))).diagnostics
    assert d.code in ("E102", "E313") and "p" in d.message


def test_drop_path_in_diagrams_summary_and_ops_listing(tmp_path, cli):
    path = write(tmp_path, RESIDUAL)
    assert "drop path 0.25" in archspec.render(path, level="layer").source
    from archspec.compiler.report import summary_rows

    rows = summary_rows(archspec.compile(path))
    assert next(r for r in rows if r["name"] == "drop")["type"] == "DropPath"
    r = cli("ops", "drop_path")
    assert r.code == 0 and r.out.startswith("drop_path: stochastic depth")
    assert "p                  number >= 0 < 1        required" in r.out


def test_the_lowered_module_is_droppath_and_matches_torch(tmp_path):
    torch = pytest.importorskip("torch")
    from archspec.compiler.ops.modules import DropPath

    model = archspec.build(write(tmp_path, RESIDUAL))
    assert isinstance(model.drop, DropPath) and repr(model.drop) == "DropPath(p=0.25)"
    x = torch.randn(64, 4, 5, 5)
    model.eval()
    assert torch.equal(model(x), torch.relu(model.bn(model.conv(x)) + x))
    model.train()
    torch.manual_seed(3)
    got = model(x)
    torch.manual_seed(3)
    y = model.bn(model.conv(x))  # bn in training mode draws no random numbers
    keep = torch.empty(64, 1, 1, 1).bernoulli_(0.75)
    assert torch.equal(got, torch.relu(y * keep / 0.75 + x))


def _dropped(out, x):
    return (out.flatten(1) == 0).all(1) & (x.flatten(1) != 0).any(1)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_in_training_whole_samples_drop_at_rate_p_and_the_rest_scale_by_1_over_1_minus_p(p):
    torch = pytest.importorskip("torch")
    from archspec.compiler.ops.modules import DropPath

    n = 20000
    torch.manual_seed(0)
    x = torch.randn(n, 3, 2, 2)
    out = DropPath(p).train()(x)
    dropped = _dropped(out, x)
    fraction = dropped.double().mean().item()
    assert abs(fraction - p) < 5 * math.sqrt(p * (1 - p) / n)  # 5 binomial standard deviations
    assert torch.equal(out[~dropped], x[~dropped] / (1 - p))  # exactly, each kept sample whole
    assert (out[dropped] == 0).all()


def test_eval_and_p_0_are_the_identity():
    torch = pytest.importorskip("torch")
    from archspec.compiler.ops.modules import DropPath

    x = torch.randn(8, 3, 4, 4)
    assert DropPath(0.5).eval()(x) is x
    assert DropPath(0.0).train()(x) is x
    state = torch.get_rng_state()
    DropPath(0.0).train()(x)
    assert torch.equal(torch.get_rng_state(), state)  # p = 0 draws nothing


def test_gradient_flows_through_kept_samples_only():
    torch = pytest.importorskip("torch")
    from archspec.compiler.ops.modules import DropPath

    torch.manual_seed(1)
    x = torch.randn(256, 3, 2, 2, requires_grad=True)
    out = DropPath(0.3).train()(x)
    out.sum().backward()
    dropped = _dropped(out.detach(), x.detach())
    assert 0 < dropped.sum() < 256
    assert torch.equal(x.grad[dropped], torch.zeros_like(x.grad[dropped]))
    assert torch.allclose(x.grad[~dropped], torch.full_like(x.grad[~dropped], 1 / 0.7))


def test_the_same_seed_or_rng_state_gives_the_same_mask():
    torch = pytest.importorskip("torch")
    from archspec.compiler.ops.modules import DropPath

    layer, x = DropPath(0.5).train(), torch.randn(128, 2, 3, 3)
    torch.manual_seed(7)
    first = layer(x)
    torch.manual_seed(7)
    assert torch.equal(layer(x), first)
    state = torch.get_rng_state()  # what a resumed run restores
    again = layer(x)
    torch.set_rng_state(state)
    assert torch.equal(layer(x), again) and not torch.equal(again, first)


def test_droppath_scripts_with_torchscript():
    torch = pytest.importorskip("torch")
    from archspec.compiler.ops.modules import DropPath

    scripted = torch.jit.script(DropPath(0.5))
    x = torch.randn(16, 3)
    assert torch.equal(scripted.eval()(x), x)
    torch.manual_seed(2)
    a = scripted.train()(x)
    torch.manual_seed(2)
    assert torch.equal(DropPath(0.5).train()(x), a)


@pytest.mark.cuda
@pytest.mark.skipif("not __import__('torch').cuda.is_available()")
def test_on_cuda_the_mask_comes_from_the_device_generator():
    import torch

    from archspec.compiler.ops.modules import DropPath

    layer, x = DropPath(0.5).train(), torch.randn(4096, 8, device="cuda")
    cpu = torch.get_rng_state()
    torch.cuda.manual_seed(11)
    first = layer(x)
    torch.cuda.manual_seed(11)
    assert torch.equal(layer(x), first) and torch.equal(torch.get_rng_state(), cpu)
    kept = ~(first == 0).all(1)
    assert abs(kept.double().mean().item() - 0.5) < 5 * math.sqrt(0.25 / 4096)
    assert torch.equal(first[kept], x[kept] / 0.5)
