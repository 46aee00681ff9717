"""The op registry: every entry is complete, everything else reads ops from it, and `sigmoid` (added as one
entry) works end to end: schema, validation, shapes, counts, diagrams, summary and lowering."""

import textwrap

import pytest

import archspec
from archspec.compiler.ops import LOWERINGS, Lowering, MissingLowering, unmatched
from archspec.lang.ops import OPS, USER_OPS
from archspec.lang.schema import build_schema

SE_GATE = """\
archspec: 1
name: gate
input: [8, 6, 6]
network:
  - conv: {op: conv, out: 8, kernel: 3, pad: 1}
  - gate: {op: sigmoid}
  - pool: {op: global_avgpool}
  - flat: {op: flatten}
  - fc: {op: linear, out: 4}
"""


def write(tmp_path, text):
    path = tmp_path / "gate.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.mark.parametrize("name", USER_OPS)
def test_every_user_op_has_exactly_one_lowering_and_a_summary_type(name):
    op, lowering = OPS[name], LOWERINGS[name]
    assert (lowering.module is None) != (lowering.function is None), name
    assert lowering.torch_name, name
    assert op.kind in ("conv", "norm", "act", "pool", "merge", "linear", "reshape", "other"), name
    assert lowering.init is None or lowering.module is not None, name


def test_the_registry_and_the_lowering_table_name_the_same_ops():
    problems = unmatched()
    assert not problems, "\n".join(problems)
    assert list(LOWERINGS) == list(OPS)  # in the registry's order: one family module each side


def test_a_missing_or_stray_lowering_is_named(monkeypatch):
    import archspec.compiler.ops as table

    entries = [v for k, v in LOWERINGS.items() if k != "sigmoid"]
    entries += [LOWERINGS["add"], Lowering(op="swish", function=lambda *a: None)]
    monkeypatch.setattr(table, "_ALL", entries)
    monkeypatch.setattr(table, "LOWERINGS", {entry.op: entry for entry in entries})
    assert table.unmatched() == [
        "op `add` has 2 lowerings in compiler/ops/; it needs exactly one",
        "op `sigmoid` is in the registry (archspec/lang/ops/) but has no lowering in compiler/ops/",
        "compiler/ops/ lowers `swish`, which is not an op of the registry (archspec/lang/ops/)"]
    with pytest.raises(MissingLowering, match="op `sigmoid` is in the registry .* has no lowering"):
        table.lowering_of("sigmoid")


def test_a_lowering_is_a_module_or_a_function_never_both():
    with pytest.raises(ValueError, match="`conv` needs exactly one of `module` and `function`"):
        Lowering(op="conv")
    with pytest.raises(ValueError, match="`relu` has an `init` but no `module`"):
        Lowering(op="relu", function=lambda *a: None, init=lambda *a: None)
    with pytest.raises(TypeError):
        Lowering("conv", "Conv2d")  # keywords only, as the registry's entries


def test_registry_entries_are_written_with_keywords():
    from archspec.lang.ops.base import Attr, OpDef

    with pytest.raises(TypeError):
        Attr("int")
    with pytest.raises(TypeError):
        OpDef("relu", "doc", "act", {}, (1, 1), lambda a, i: i[0])


def test_structural_ops_are_those_whose_attributes_trained_weights_fit():
    assert sorted(n for n, op in OPS.items() if op.structural) == sorted(
        ["conv", "bn", "group_norm", "linear", "maxpool", "avgpool", "global_avgpool", "subsample_pad", "mul",
         "add", "channel_conv", "slice", "branch_softmax", "blur_pool", "std_conv", "frn", "evonorm", "branch_sum", "pad"])
    assert [n for n, op in OPS.items() if op.residual] == ["add"]


def test_schema_names_every_op_of_the_registry():
    schema = build_schema()
    names, expression = schema["$defs"]["node"]["properties"]["op"]["anyOf"]
    assert names["enum"] == USER_OPS
    assert expression == {"$ref": "#/$defs/expr"}  # `op: =act`: checked against the registry once computed
    assert "op_sigmoid" in schema["$defs"]


def test_sigmoid_validates_compiles_and_counts(tmp_path):
    path = write(tmp_path, SE_GATE)
    assert archspec.validate(path).ok
    c = archspec.compile(path, count="all")
    m = c.facts("gate")
    assert m.shape == (8, 6, 6)
    assert m.params == 0 and m.macs == 0 and m.extra == 8 * 6 * 6  # one op per element
    assert c.facts("conv").activation_elements * 4 == m.activation_elements * 4 == 8 * 6 * 6 * 4


def test_sigmoid_attribute_and_arity_mistakes_are_diagnosed(tmp_path):
    bad = write(tmp_path, SE_GATE.replace("{op: sigmoid}", "{op: sigmoid, p: 2}"))
    (d,) = archspec.validate(bad).diagnostics
    assert d.code == "E101" and "sigmoid" in d.message and d.loc.line == 6
    two = write(tmp_path, SE_GATE.replace("{op: sigmoid}", "{op: sigmoid, in: [conv, input]}"))
    assert any(x.code == "E309" and "takes 1 input" in x.message for x in archspec.validate(two).diagnostics)


def test_sigmoid_in_diagrams_and_summary(tmp_path):
    path = write(tmp_path, SE_GATE)
    source = archspec.render(path, level="layer").source
    assert "sigmoid" in source
    from archspec.compiler.report import summary_rows

    rows = summary_rows(archspec.compile(path))
    assert {"name": "gate", "type": "sigmoid"}.items() <= next(r for r in rows if r["name"] == "gate").items()


def test_sigmoid_lowers_to_torch_sigmoid(tmp_path):
    torch = pytest.importorskip("torch")
    model = archspec.build(write(tmp_path, SE_GATE)).eval()
    assert "torch.sigmoid" in model.code
    x = torch.randn(2, 8, 6, 6)
    expected = model.fc(torch.flatten(model.pool(torch.sigmoid(model.conv(x))), 1))
    assert torch.equal(model(x), expected)


def test_archspec_ops_prints_every_entry_from_the_registry(cli):
    r = cli("ops")
    assert r.code == 0
    listed = [line.split(":", 1)[0] for line in r.out.splitlines() if not line.startswith(" ")]
    assert listed == USER_OPS  # sigmoid included, with no list to keep up to date
    one = cli("ops", "conv")
    assert one.code == 0 and one.out.startswith("conv: 2-D convolution (1 input; counts towards depth)")
    for name, attr in OPS["conv"].attrs.items():
        assert any(line.split()[0] == name for line in one.out.splitlines()[1:]), name
    assert "groups             int >= 1               default 1" in one.out


def test_archspec_ops_refuses_an_unknown_op_with_a_near_miss(cli):
    r = cli("ops", "sigmod")
    assert r.code == 2 and r.err.strip() == "archspec: error: unknown op 'sigmod' (did you mean `sigmoid`?)"
