"""Module lists named as timm and torch name them: dotted item names (`convs.0`), names computed with `${...}`
(`names:` on a repeat, `"convs.${index}"`), a `repeat` of several `items:` that join the body, and `in: LIST`
reading every `LIST.N`. Each is checked end to end: the expansion, the diagnostics (code, line, column, fix), the
lowered module's names and state_dict order, and its arithmetic against torch written here.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from archspec.compiler.validate import validate

HEAD = """\
archspec: 1
input: [8, 6, 6]
params: {scale: 4, w: 2}
network:
  - conv1: {op: conv, out: 8, kernel: 1}
"""

# Res2Net's scales, written as lib/res2net.yaml writes them (line 6 is the first item after conv1)
SCALES = """\
- relu: {op: relu}
- scales:
    repeat: =scale - 1
    items:
      - "split.${index}": {op: slice, in: relu, start: =index * w, size: =w}
      - "sum.${index}":
          cases:
            - {when: index > 0, op: add, in: ["spo.${index - 1}", "split.${index}"]}
            - {op: identity}
      - "convs.${index}": {op: conv, out: =w, kernel: 3, pad: 1}
      - "bns.${index}": {op: bn}
      - "spo.${index}": {op: relu}
- last: {op: slice, in: relu, start: =(scale - 1) * w, size: =w}
- cat: {op: concat, in: [spo, last]}
"""


def spec(tmp_path: Path, items: str, head: str = HEAD) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(head + textwrap.indent(textwrap.dedent(items), "  "))
    return path


def problems(path: Path) -> list[tuple[str, int, int, str, str | None]]:
    result = validate(path)
    assert not result.ok
    return [(d.code, d.loc.line, d.loc.col, d.message, d.hint) for d in result.diagnostics]


# ------------------------------------------------------------------------------------------- the expansion

def test_a_repeat_of_items_interleaves_two_lists_and_a_list_is_read_whole(tmp_path):
    result = validate(spec(tmp_path, SCALES))
    assert result.ok, result.diagnostics
    nodes = result.expansion.nodes
    names = [n for n in nodes if n not in ("input", "conv1", "relu")]
    assert names[:10] == ["split.0", "sum.0", "convs.0", "bns.0", "spo.0",
                          "split.1", "sum.1", "convs.1", "bns.1", "spo.1"]
    assert nodes["sum.0"].op == "identity" and nodes["sum.2"].op == "add"
    assert nodes["sum.2"].inputs == ["spo.1", "split.2"]  # the item above, named with index - 1
    assert nodes["split.2"].inputs == ["relu"] and nodes["split.2"].attrs["start"] == 4  # `in:` read by every copy
    assert nodes["convs.1"].inputs == ["sum.1"]  # each item reads the one before it
    assert nodes["cat"].inputs == ["spo.0", "spo.1", "spo.2", "last"]  # `in: spo`, by number
    assert "scales" not in nodes and not result.expansion.blocks  # the repeat is no node and no block


def test_copies_chain_through_the_last_item_of_the_copy_before(tmp_path):
    result = validate(spec(tmp_path, """\
      - chain:
          repeat: 3
          items:
            - "conv.${index}": {op: conv, out: 8, kernel: 1}
            - "act.${index}": {op: relu}
      - out: {op: add, in: [chain, conv1]}
    """))
    assert result.ok, result.diagnostics
    nodes = result.expansion.nodes
    assert nodes["conv.0"].inputs == ["conv1"] and nodes["conv.1"].inputs == ["act.0"]
    assert nodes["out"].inputs == ["act.2", "conv1"]  # the repeat's name is its last output


def test_names_computes_each_copys_name_and_keeps_the_item_name(tmp_path):
    path = spec(tmp_path, """\
      - chain:
          repeat: 3
          names: "b${index + 1}"
          use: unit
      - out: {op: add, in: [chain, conv1]}
    """, HEAD.replace("network:", "blocks:\n  unit:\n    body:\n      - conv: {op: conv, out: 8, kernel: 1}\n"
                                   "      - act: {op: relu}\nnetwork:"))
    result = validate(path)
    assert result.ok, result.diagnostics
    exp = result.expansion
    assert [b for b in exp.blocks] == ["b1", "b2", "b3"]
    assert [exp.blocks[b].copy for b in exp.blocks] == [(0, 3), (1, 3), (2, 3)]
    assert {exp.blocks[b].group for b in exp.blocks} == {"chain"}
    assert exp.nodes["b2.conv"].inputs == ["b1.act"] and exp.nodes["out"].inputs == ["b3.act", "conv1"]


def test_an_excluded_member_is_left_out_of_its_list(tmp_path):
    result = validate(spec(tmp_path, """\
      - a.0: {op: relu, in: conv1}
      - a.1: {op: sigmoid, in: conv1, when: "w > 5"}
      - a.2: {op: relu, in: conv1}
      - cat: {op: concat, in: [a, conv1]}
    """))
    assert result.ok, result.diagnostics
    assert result.expansion.nodes["cat"].inputs == ["a.0", "a.2", "conv1"]


def test_shipped_specs_keep_their_item_names():
    # a repeat without `names:` still names its copies NAME.i (the shipped nets' IR is unchanged)
    result = validate("resnet18")
    assert result.ok
    assert "layer2.1.conv1" in result.expansion.nodes and "layer2.0.downsample.0" in result.expansion.nodes


# ------------------------------------------------------------------------------------------- diagnostics

def test_a_reserved_part_is_refused_at_the_name_with_the_part_to_rename(tmp_path):
    (code, line, col, message, hint), = problems(spec(tmp_path, "- convs.index: {op: relu}\n"))
    assert (code, line, col) == ("E316", 6, 5)
    assert "its part `index` is a reserved word" in message and "`index_1`" in hint


def test_a_torch_attribute_part_is_refused(tmp_path):
    (code, line, col, message, hint), = problems(spec(tmp_path, "- bns.eval: {op: relu}\n"))
    assert (code, line, col) == ("E316", 6, 5) and "part `eval`" in message and "nn.Module" in message


@pytest.mark.parametrize("items, line", [
    ("- conv1.0: {op: relu}\n", 6),                                 # under a node defined above
    ("- x.0: {op: relu}\n- x: {op: relu}\n", 7),                    # a node over an item defined above
    ("- x: {op: relu}\n- x.y.z: {op: relu}\n", 7),                  # any prefix
])
def test_an_item_whose_module_another_would_hold_is_refused(tmp_path, items, line):
    (code, at, col, message, hint), = problems(spec(tmp_path, items))
    assert (code, at, col) == ("E316", line, 5)
    assert "would have to hold it" in message and hint.startswith("rename one of them")


def test_an_excluded_node_leaves_room_for_a_list(tmp_path):
    result = validate(spec(tmp_path, "- x: {op: relu, when: false}\n- x.0: {op: relu, in: conv1}\n"))
    assert result.ok, result.diagnostics


def test_a_computed_name_is_checked_as_a_written_one(tmp_path):
    (code, line, col, message, _), = problems(spec(tmp_path, """\
      - g:
          repeat: 2
          items:
            - "def.${index}": {op: relu}
    """))
    assert (code, line, col) == ("E316", 9, 12) and "computed from `def.${index}`" in message
    assert "part `def` is a Python keyword" in message


def test_names_that_two_copies_compute_alike_are_refused_at_names(tmp_path):
    (code, line, col, message, _), = problems(spec(tmp_path, "- b: {repeat: 3, names: \"b${index % 2}\", "
                                                             "op: relu}\n"))
    assert (code, line, col) == ("E306", 6, 28) and "`b0` is defined twice" in message


def test_items_named_alike_in_two_copies_are_refused(tmp_path):
    (code, line, col, message, _), = problems(spec(tmp_path, """\
      - g:
          repeat: 2
          items:
            - same: {op: relu}
    """))
    assert (code, line, col) == ("E306", 9, 11) and "`same` is defined twice" in message


def test_a_list_read_above_its_last_item_is_refused(tmp_path):
    (code, line, col, message, hint), = problems(spec(tmp_path, """\
      - a.0: {op: relu, in: conv1}
      - cat: {op: concat, in: [a, conv1]}
      - a.1: {op: relu, in: conv1}
    """))
    assert (code, line, col) == ("E305", 7, 28) and "a.0 ... a.1" in message and hint == "move this item below `a.1`"


@pytest.mark.parametrize("item, code, words", [
    ("- g: {repeat: 2, in: conv1, items: [{r: {op: relu}}]}\n", "E101", "unknown key `in`"),
    ("- g: {items: [{r: {op: relu}}]}\n", "E102", "needs `repeat`"),
    ("- g: {names: \"g${index}\", op: relu}\n", "E313", "needs `repeat`"),
    ("- g: {repeat: 2, names: \"g${index}\", items: [{r: {op: relu}}]}\n", "E101", "unknown key `names`"),
])
def test_the_schema_says_what_a_group_and_names_take(tmp_path, item, code, words):
    found = problems(spec(tmp_path, item))
    assert found[0][0] == code and found[0][1] == 6 and words in found[0][3], found


# ------------------------------------------------------------------------------------------- lowering

def test_lists_lower_to_torchs_module_names_in_timms_order(tmp_path):
    torch = pytest.importorskip("torch")
    import archspec

    model = archspec.build(str(spec(tmp_path, SCALES))).eval()
    assert list(model.state_dict())[:3] == ["conv1.weight", "convs.0.weight", "convs.1.weight"]
    assert [k for k in model.state_dict() if k.endswith("running_mean")] == [f"bns.{i}.running_mean"
                                                                          for i in range(3)]
    assert isinstance(model.get_submodule("convs.2"), torch.nn.Conv2d)


def test_a_repeat_of_items_computes_res2nets_scales(tmp_path):
    torch = pytest.importorskip("torch")
    import archspec

    model = archspec.build(str(spec(tmp_path, SCALES))).eval()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    x = torch.randn(2, 8, 6, 6, generator=g)
    with torch.no_grad():
        y = torch.relu(torch.nn.functional.conv2d(x, model.conv1.weight))
        parts, sp = [], None
        for i in range(3):
            piece = y[:, 2 * i:2 * i + 2]
            sp = piece if i == 0 else sp + piece
            sp = torch.relu(model.get_submodule(f"bns.{i}")(model.get_submodule(f"convs.{i}")(sp)))
            parts.append(sp)
        expected = torch.cat(parts + [y[:, 6:]], 1)
        assert torch.allclose(model(x), expected, atol=1e-6)


# ------------------------------------------------------------------------------------------- lib/res2net.yaml

def test_res2nets_block_has_timms_modules_in_timms_order():
    result = validate("timm/res2net50_26w_4s")
    assert result.ok, result.diagnostics
    nodes = result.expansion.nodes
    first = [n.split(".", 2)[2] for n in nodes if n.startswith("layer2.0.")]
    modules = [n for n in first if nodes[f"layer2.0.{n}"].op in ("conv", "bn", "avgpool")]
    assert modules == ["conv1", "bn1", "convs.0", "bns.0", "convs.1", "bns.1", "convs.2", "bns.2", "pool", "conv3",
                       "bn3", "downsample.0", "downsample.1"]
    assert nodes["layer2.0.convs.1"].attrs["stride"] == 2  # each 3x3 of a first block strides
    assert nodes["layer2.0.sum.1"].op == "identity" and nodes["layer2.1.sum.1"].op == "add"  # is_first: no adds
    assert nodes["layer2.1.pool"].op == "identity"  # timm's pool is None after the first block
    assert nodes["layer2.0.cat"].inputs == [f"layer2.0.spo.{i}" for i in range(3)] + ["layer2.0.pool"]
    assert nodes["layer2.0.convs.0"].attrs["out"] == 52  # floor(128 * 26 / 64)


def test_res2next_groups_and_scale_are_params():
    result = validate("timm/res2next50")
    assert result.ok
    conv = result.expansion.nodes["layer1.0.convs.0"]
    assert (conv.attrs["out"], conv.attrs["groups"]) == (32, 8)  # 64 * 4 / 64 * 8, cardinality 8
    eight = validate("timm/res2net50_14w_8s").expansion.nodes
    assert "layer1.0.convs.6" in eight and "layer1.0.convs.7" not in eight


def test_an_edit_changes_the_repeat_that_holds_the_lists(tmp_path):
    path = tmp_path / "e.yaml"
    path.write_text(textwrap.dedent("""\
        archspec: 1
        extends: archspec:timm/res2net50_26w_4s.yaml
        blocks:
          bottle2neck:
            edit:
              scales: {repeat: 2}
    """))
    result = validate(path)
    assert result.ok, result.diagnostics
    nodes = result.expansion.nodes
    assert "layer1.0.convs.1" in nodes and "layer1.0.convs.2" not in nodes


def test_res2net_refuses_a_shortcut_timm_does_not_have(cli):
    r = cli("validate", "timm/res2net50_26w_4s", "--set", "shortcut=C")
    assert r.code == 2 and "error[E206]" in r.err and "option B" in r.err, r.err
