"""One cause, one diagnostic: errors downstream of a reported one are not reported again, independent errors are
all reported in one run, and the help fits the situation (issue: hardening the language)."""

import textwrap

import pytest

import archspec
from archspec.lang.diagnostics import SpecError

UNIT = """\
archspec: 1
name: t
input: [3, 8, 8]
blocks:
  unit:
    params: {width: int}
    body:
      - conv: {op: conv, out: =width, kernel: 3, pad: 1, stride: 2}
      - add: {op: add, in: ADD_INPUTS}
      - c2: {op: conv, out: =in_channels, kernel: 1}
network:
  - stem: {op: conv, out: 16, kernel: 3, pad: 1}
  - blocks: {use: unit, width: 16, repeat: COPIES}
  - pool: {op: global_avgpool}
"""


def write(tmp_path, text, name="t.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def codes(path):
    return [(d.code, d.loc.line) for d in archspec.validate(path).diagnostics]


@pytest.mark.parametrize("inputs", ["[conv, input]", "[input, conv]"])
def test_a_shape_error_in_a_repeated_block_that_reads_in_channels_is_reported_once(tmp_path, inputs):
    """Before: `[input, conv]` also gave a false E307 "reads its own output" at the second copy's conv."""
    path = write(tmp_path, UNIT.replace("ADD_INPUTS", inputs).replace("COPIES", "3"))
    (d,) = archspec.validate(path).diagnostics
    assert (d.code, d.loc.line) == ("E400", 9)
    # the help names the skip path (the block's input, 16x8x8) and the body (16x4x4) the right way round
    assert d.hint == "the skip path is 8x8 and the body 4x4: give the shortcut the block's stride"


def test_no_count_of_repeats_that_are_follow_on_errors(tmp_path):
    """Before: "occurs 14 more times (each use of this block)" for a chain of 16 copies, where the later copies
    only failed because the first one did."""
    path = write(tmp_path, UNIT.replace("ADD_INPUTS", "[conv, input]").replace("COPIES", "16"))
    (d,) = archspec.validate(path).diagnostics
    assert not any("more time" in note for _, note in d.notes)


def test_an_argument_that_fails_to_evaluate_is_not_also_called_missing(tmp_path):
    """Before: E200 at the expression, then `E302 block unit needs first` for the very same argument."""
    path = write(tmp_path, """\
    archspec: 1
    name: t
    input: [3, 8, 8]
    blocks:
      unit:
        params: {first: int}
        body:
          - conv: {op: conv, out: =first, kernel: 3, pad: 1}
    network:
      - b: {use: unit, first: "=16 +* 2"}
      - pool: {op: global_avgpool}
    """)
    assert [c for c, _ in codes(path)] == ["E200"]


def test_an_unused_node_does_not_hide_the_shape_errors_of_the_same_spec(tmp_path):
    """Before: E308 alone; the add's E400 appeared only after the unused node was fixed."""
    path = write(tmp_path, """\
    archspec: 1
    name: t
    input: [3, 8, 8]
    network:
      - c1: {op: conv, out: 16, kernel: 3, pad: 1}
      - dead: {op: relu}
      - c2: {op: conv, out: 16, kernel: 3, pad: 1, in: c1}
      - a: {op: add, in: [c2, input]}
      - pool: {op: global_avgpool}
    """)
    assert codes(path) == [("E308", 6), ("E400", 8)]
    with pytest.raises(SpecError) as e:  # compile reports the same
        archspec.compile(path)
    assert [(d.code, d.loc.line) for d in e.value.diagnostics] == [("E308", 6), ("E400", 8)]


def test_the_help_of_an_add_that_is_no_shortcut_names_its_inputs(tmp_path):
    """Before: "the skip path carries 32 channels ... use a projection shortcut (option B)" for any add."""
    path = write(tmp_path, """\
    archspec: 1
    name: t
    input: [3, 8, 8]
    network:
      - a: {op: conv, out: 16, kernel: 3, pad: 1}
      - b: {op: conv, out: 32, kernel: 3, pad: 1, in: input}
      - s: {op: add, in: [a, b]}
      - pool: {op: global_avgpool}
    """)
    (d,) = archspec.validate(path).diagnostics
    assert d.code == "E400"
    assert d.hint == ("`a` gives 16x8x8 and `b` 32x8x8: change the width (`out`) or the stride of one of them so "
                      "that they agree")


def test_an_unknown_op_with_no_near_miss_lists_the_ops(tmp_path):
    """Before: `E300 unknown op` with no help at all when no op name was close."""
    from archspec.lang.ops import USER_OPS

    path = write(tmp_path, """\
    archspec: 1
    name: t
    input: [3, 8, 8]
    network:
      - c1: {op: squeeze_excite}
    """)
    (d,) = archspec.validate(path).diagnostics
    assert d.code == "E300" and all(f"`{op}`" in d.hint for op in USER_OPS) and "archspec ops" in d.hint
    near = write(tmp_path, "archspec: 1\nname: t\ninput: [3, 8, 8]\nnetwork:\n  - c1: {op: sigmod}\n", "near.yaml")
    assert archspec.validate(near).diagnostics[0].hint == \
        "did you mean `sigmoid`? (`archspec ops` shows each op's attributes)"


def test_a_repeated_item_whose_cases_open_stages_is_counted_in_those_stages(tmp_path):
    """Before: every copy was counted in the row before it (`conv1 ... 3 x unit`), and the rows its cases
    name were missing from the stage table."""
    path = write(tmp_path, """\
    archspec: 1
    name: t
    input: [3, 32, 32]
    blocks:
      unit:
        params: {width: int}
        body:
          - conv: {op: conv, out: =width, kernel: 3, pad: 1}
          - relu: {op: relu}
    network:
      - stem: {op: conv, out: 16, kernel: 3, pad: 1, stage: conv1}
      - layers:
          repeat: 3
          cases:
            - {when: "index == 0", use: unit, width: 16, stage: conv2_x}
            - {when: "index == 1", use: unit, width: 32, stage: conv3_x}
            - {use: unit, width: 64, stage: conv4_x}
      - pool: {op: global_avgpool, stage: head}
    """)
    c = archspec.compile(path)
    rows = {s.name: s for s in c.stages()}
    assert list(rows) == ["conv1", "conv2_x", "conv3_x", "conv4_x", "head"]
    assert rows["conv1"].params == 16 * 3 * 9
    assert [rows[f"conv{k}_x"].output[0] for k in (2, 3, 4)] == [16, 32, 64]
    assert [(rows[f"conv{k}_x"].blocks, rows[f"conv{k}_x"].block) for k in (2, 3, 4)] == [(1, "unit")] * 3


def test_a_problem_in_independent_uses_of_a_block_is_counted_once_per_use(tmp_path):
    path = write(tmp_path, """\
    archspec: 1
    name: t
    input: [3, 8, 8]
    blocks:
      bad:
        body:
          - conv: {op: conv, out: 8, kernel: 3, pad: 1, stride: 2}
          - add: {op: add, in: [conv, input]}
    network:
      - stem: {op: conv, out: 8, kernel: 3, pad: 1}
      - a: {use: bad, in: stem}
      - b: {use: bad, in: stem}
      - c: {use: bad, in: stem}
      - join: {op: concat, in: [a, b, c]}
    """)
    (d,) = archspec.validate(path).diagnostics
    assert d.code == "E400" and ("the same problem occurs 2 more times (each use of this block)"
                                 in [note for _, note in d.notes])


@pytest.mark.parametrize("budget", [0, -1, True, 2.5])
def test_a_node_budget_below_one_is_refused_by_the_python_api(budget):
    """Before: `compile_spec(..., max_nodes=-1)` said the network "takes more than -10 steps"."""
    from archspec.compiler.analysis import compile_spec

    with pytest.raises(ValueError, match="max_nodes must be a whole number >= 1"):
        compile_spec("cifar_resnet", max_nodes=budget)


def test_a_choice_that_reads_a_failed_shape_is_not_called_empty(tmp_path):
    """A `cases:` whose condition reads `in_channels` of a node whose shape failed fails silently; its block is
    not also reported as producing nothing (E125)."""
    path = write(tmp_path, """\
    archspec: 1
    name: t
    input: [3, 8, 8]
    blocks:
      sc:
        params: {out: int}
        body:
          - cases:
              - when: in_channels != out
                op: conv
                out: =out
                kernel: 1
              - op: identity
      unit:
        params: {width: int}
        body:
          - conv: {op: conv, out: =width, kernel: 3, pad: 1, stride: 2}
          - add: {op: add, in: [conv, input]}
          - down: {use: sc, out: =width, in: add}
    network:
      - stem: {op: conv, out: 16, kernel: 3, pad: 1}
      - blocks: {use: unit, width: 16, repeat: 3}
      - pool: {op: global_avgpool}
    """)
    assert codes(path) == [("E400", 18)]
