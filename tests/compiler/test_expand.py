"""Expansion of templates, `repeat`, `cases` and `when` into IR nodes; its diagnostics; facts of the shipped specs."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import archspec
from archspec.compiler.expand import expand
from archspec.lang.diagnostics import SpecError
from archspec.lang.spec import load_spec
from archspec.compiler.validate import validate

ROOT = Path(__file__).resolve().parents[2]
SPECS = sorted(p.stem for p in (ROOT / "specs").glob("*.yaml"))

HEAD = "archspec: 1\ninput: [3, 32, 32]\nparams: {w: 8, big: false}\n"
HEAD_LINES = HEAD.count("\n")

# a residual block with a one-item `cases` shortcut: identity, or a two-node projection
RES_BLOCKS = """\
blocks:
  proj:
    params: {out: int}
    body:
      - 0: {op: conv, out: =out, kernel: 1}
      - 1: {op: bn}
  shortcut:
    params: {out: int}
    body:
      - cases:
          - when: in_channels != out
            use: proj
            out: =out
          - op: identity
  res:
    params: {width: {type: int, default: =w}}
    body:
      - conv1: {op: conv, out: =width, kernel: 3, pad: 1}
      - relu: {op: relu}
      - downsample: {use: shortcut, in: input, out: =width}
      - add: {op: add, in: [relu, downsample]}
  stack:
    params: {width: int, blocks: int}
    body:
      - repeat: =blocks
        use: res
        width: =width
"""


def write(tmp_path: Path, body: str, name: str = "x.yaml") -> Path:
    path = tmp_path / name
    path.write_text(HEAD + textwrap.dedent(body))
    return path


def nodes_of(tmp_path: Path, body: str, *overrides: str) -> dict:
    """Expand (without the shape check) and return the node table without `input`."""
    spec = load_spec(write(tmp_path, body), overrides)
    exp = expand(spec)
    return {k: v for k, v in exp.nodes.items() if k != "input"}


def errors(tmp_path: Path, body: str, *overrides: str, max_nodes: int | None = None) -> list:
    result = validate(write(tmp_path, body), overrides, max_nodes=max_nodes)
    assert not result.ok
    return result.diagnostics


def at(d) -> tuple:
    """(code, line within the body written after HEAD, column)."""
    return d.code, d.loc.line - HEAD_LINES, d.loc.col


# ---------------------------------------------------------------------------------------------- naming and chaining

def test_hierarchical_names_and_implicit_chaining(tmp_path):
    nodes = nodes_of(tmp_path, RES_BLOCKS + textwrap.dedent("""\
        network:
          - stem: {op: conv, out: 8, kernel: 3, pad: 1}
          - layer1: {use: stack, width: 8, blocks: 2}
          - layer2: {use: stack, width: 16, blocks: 2}
        """))
    assert list(nodes) == [
        "stem",
        "layer1.0.conv1", "layer1.0.relu", "layer1.0.downsample", "layer1.0.add",
        "layer1.1.conv1", "layer1.1.relu", "layer1.1.downsample", "layer1.1.add",
        "layer2.0.conv1", "layer2.0.relu", "layer2.0.downsample.0", "layer2.0.downsample.1", "layer2.0.add",
        "layer2.1.conv1", "layer2.1.relu", "layer2.1.downsample", "layer2.1.add",
    ]
    assert nodes["stem"].inputs == ["input"]
    assert nodes["layer1.0.conv1"].inputs == ["stem"]
    assert nodes["layer1.0.relu"].inputs == ["layer1.0.conv1"]
    assert nodes["layer1.0.downsample"].inputs == ["stem"]            # `in: input` is the block's input
    assert nodes["layer1.0.add"].inputs == ["layer1.0.relu", "layer1.0.downsample"]
    assert nodes["layer1.1.conv1"].inputs == ["layer1.0.add"]         # copies chain
    assert nodes["layer2.0.downsample.0"].inputs == ["layer1.1.add"]
    assert nodes["layer2.0.add"].inputs == ["layer2.0.relu", "layer2.0.downsample.1"]
    assert nodes["layer2.0.conv1"].scope == ("layer2", "layer2.0")
    assert nodes["layer2.0.downsample.0"].scope[-1] == "layer2.0.downsample"


def test_sole_unnamed_item_stands_for_its_block(tmp_path):
    spec = load_spec(write(tmp_path, RES_BLOCKS + textwrap.dedent("""\
        network:
          - stem: {op: conv, out: 8, kernel: 1}
          - a: {use: res, width: 8}
          - b: {use: res, width: 16}
        """)))
    exp = expand(spec)
    assert exp.nodes["a.downsample"].op == "identity"
    assert (exp.nodes["b.downsample.0"].op, exp.nodes["b.downsample.1"].op) == ("conv", "bn")
    assert "b.downsample" not in exp.nodes
    assert exp.blocks["b.downsample"].template == "proj"      # the block record is the chosen alternative's
    assert exp.blocks["b.downsample"].parent == "b"
    assert exp.blocks["b.downsample"].output == "b.downsample.1"


def test_explicit_in_and_forward_reference(tmp_path):
    nodes = nodes_of(tmp_path, """\
        network:
          - a: {op: conv, out: 4, kernel: 1}
          - b: {op: add, in: [a, c]}
          - c: {op: relu, in: a}
          - d: {op: concat, in: [b, input]}
        """)
    assert nodes["b"].inputs == ["a", "c"]
    assert nodes["c"].inputs == ["a"]
    assert nodes["d"].inputs == ["b", "input"]


def test_unnamed_repeat_names_copies_by_number(tmp_path):
    nodes = nodes_of(tmp_path, """\
        network:
          - stem: {op: relu}
          - repeat: 3
            op: relu
          - last: {op: relu}
        """)
    assert list(nodes) == ["stem", "0", "1", "2", "last"]
    assert nodes["0"].inputs == ["stem"] and nodes["2"].inputs == ["1"] and nodes["last"].inputs == ["2"]


def test_named_repeat_with_index_and_count(tmp_path):
    nodes = nodes_of(tmp_path, """\
        network:
          - conv: {op: conv, repeat: 3, kernel: 1, out: "=4 * (index + 1) + count", stride: "=2 if index == 0 else 1"}
          - after: {op: relu, in: conv}
        """)
    assert [(k, n.attrs["out"], n.attrs["stride"]) for k, n in nodes.items() if k.startswith("conv")] == \
        [("conv.0", 7, 2), ("conv.1", 11, 1), ("conv.2", 15, 1)]
    assert nodes["after"].inputs == ["conv.2"]  # the repeat's name stands for its last copy


def test_repeat_of_a_block_names_instances(tmp_path):
    spec = load_spec(write(tmp_path, RES_BLOCKS + textwrap.dedent("""\
        network:
          - blk: {use: res, repeat: 2, width: "=8 * (index + 1)"}
        """)))
    exp = expand(spec)
    assert exp.nodes["blk.0.conv1"].attrs["out"] == 8
    assert exp.nodes["blk.1.conv1"].attrs["out"] == 16
    assert exp.blocks["blk.1"].copy == (1, 2)


def test_repeat_zero_makes_nothing(tmp_path):
    nodes = nodes_of(tmp_path, "network:\n  - a: {op: relu}\n  - b: {op: relu, repeat: 0}\n  - c: {op: relu}\n")
    assert list(nodes) == ["a", "c"] and nodes["c"].inputs == ["a"]


def test_index_is_not_visible_outside_repeat(tmp_path):
    found = errors(tmp_path, "network:\n  - a: {op: conv, out: =index + 1, kernel: 1}\n")
    assert [at(d) for d in found] == [("E201", 2, 25)]


def test_when_excludes_and_chaining_skips(tmp_path):
    body = """\
        network:
          - a: {op: relu}
          - b: {op: dropout, when: big}
          - c: {op: relu}
        """
    nodes = nodes_of(tmp_path, body)
    assert list(nodes) == ["a", "c"] and nodes["c"].inputs == ["a"]
    nodes = nodes_of(tmp_path, body, "big=true")
    assert list(nodes) == ["a", "b", "c"] and nodes["c"].inputs == ["b"]


def test_reading_an_excluded_item_E305(tmp_path):
    found = errors(tmp_path, "network:\n  - a: {op: relu}\n  - b: {op: relu, when: w > 100}\n"
                             "  - c: {op: add, in: [a, b]}\n")
    assert [at(d) for d in found] == [("E305", 4, 26)]
    assert "when: w > 100" in found[0].message


def test_everything_excluded_E125(tmp_path):
    assert [d.code for d in errors(tmp_path, "network:\n  - a: {op: relu, when: false}\n")] == ["E125"]


def test_cases_selects_the_first_that_holds(tmp_path):
    body = """\
        network:
          - pick:
              cases:
                - {when: w > 100, op: dropout}
                - {when: w > 4, op: relu}
                - {op: identity}
        """
    assert nodes_of(tmp_path, body)["pick"].op == "relu"
    assert nodes_of(tmp_path, body, "w=200")["pick"].op == "dropout"
    assert nodes_of(tmp_path, body, "w=1")["pick"].op == "identity"


def test_no_case_applies_E310(tmp_path):
    found = errors(tmp_path, "network:\n  - p:\n      cases:\n        - {when: w > 100, op: dropout}\n")
    assert [d.code for d in found] == ["E310"]
    assert "w > 100" in found[0].message


def test_in_channels_and_in_shape(tmp_path):
    nodes = nodes_of(tmp_path, """\
        blocks:
          widen:
            params: {factor: int}
            body:
              - conv: {op: conv, out: =in_channels * factor, kernel: 1}
              - gate: {op: dropout, p: "=0.5 if in_shape[1] == 32 else 0.1"}
        network:
          - stem: {op: conv, out: 5, kernel: 3, stride: 2, pad: 1}
          - a: {use: widen, factor: 2}
          - b: {use: widen, factor: 3}
        """)
    assert nodes["a.conv"].attrs["out"] == 10
    assert nodes["b.conv"].attrs["out"] == 30
    assert nodes["a.gate"].attrs["p"] == 0.1  # stem halves 32 to 16


def test_template_defaults_read_spec_params(tmp_path):
    body = RES_BLOCKS + "network:\n  - a: {use: res}\n  - b: {use: res, width: 4}\n"
    nodes = nodes_of(tmp_path, body)
    assert (nodes["a.conv1"].attrs["out"], nodes["b.conv1"].attrs["out"]) == (8, 4)
    assert nodes_of(tmp_path, body, "w=12")["a.conv1"].attrs["out"] == 12


def test_with_passes_arguments(tmp_path):
    nodes = nodes_of(tmp_path, RES_BLOCKS + "network:\n  - a: {use: res, with: {width: 6}}\n")
    assert nodes["a.conv1"].attrs["out"] == 6


def test_template_named_by_an_expression(tmp_path):
    nodes = nodes_of(tmp_path, RES_BLOCKS + "network:\n  - a: {use: \"='res' if w > 1 else 'proj'\", width: 8}\n")
    assert "a.add" in nodes


def test_stages(tmp_path):
    spec = load_spec(write(tmp_path, """\
        network:
          - a: {op: relu, stage: one}
          - b: {op: relu}
          - c: {op: relu, stage: two}
        """))
    exp = expand(spec)
    assert exp.stages == ["one", "two"]
    assert [exp.nodes[n].stage for n in "abc"] == ["one", "one", "two"]


# ---------------------------------------------------------------------------------------------- errors

BLOCKS = """\
blocks:
  blk:
    params: {width: int, k: {type: int, default: 3}}
    body:
      - conv: {op: conv, out: =width, kernel: =k, pad: 1}
  rec:
    body:
      - a: {use: rec}
  m1:
    body:
      - a: {use: m2}
  m2:
    body:
      - a: {use: m1}
"""
BLOCK_LINES = BLOCKS.count("\n")


def test_missing_template_argument_E302(tmp_path):
    found = errors(tmp_path, BLOCKS + "network:\n  - a: {use: blk}\n")
    assert [at(d) for d in found] == [("E302", BLOCK_LINES + 2, 5)]
    assert "width" in found[0].message


def test_unknown_template_argument_E303_with_suggestion(tmp_path):
    found = errors(tmp_path, BLOCKS + "network:\n  - a: {use: blk, width: 3, widht: 4}\n")
    assert [at(d) for d in found] == [("E303", BLOCK_LINES + 2, 29)]
    assert found[0].hint == "did you mean `width`?"


def test_unknown_block_E301_with_suggestion(tmp_path):
    found = errors(tmp_path, BLOCKS + "network:\n  - a: {use: blcok, width: 3}\n")
    assert [at(d) for d in found] == [("E301", BLOCK_LINES + 2, 14)]
    assert found[0].hint == "did you mean `blk`?"


def test_bad_argument_E304(tmp_path):
    found = errors(tmp_path, BLOCKS + "network:\n  - a: {use: blk, width: 'x'}\n")
    assert [at(d) for d in found] == [("E304", BLOCK_LINES + 2, 27)]  # inside the quotes


@pytest.mark.parametrize("use, chain", [("rec", "rec -> rec"), ("m1", "m1 -> m2 -> m1")])
def test_recursion_E311(tmp_path, use, chain):
    found = errors(tmp_path, BLOCKS + f"network:\n  - a: {{use: {use}}}\n")
    assert [d.code for d in found] == ["E311"]
    assert chain in found[0].message


def test_duplicate_names_E306(tmp_path):
    found = errors(tmp_path, "network:\n  - a: {op: relu}\n  - a: {op: relu}\n")
    assert [at(d) for d in found] == [("E306", 3, 5)]
    assert "line 5" in found[0].message  # the first `a`, in file lines


def test_repeat_copy_clashing_with_a_name_E306(tmp_path):
    found = errors(tmp_path, "network:\n  - a: {op: relu}\n  - repeat: 2\n    op: relu\n  - '1': {op: relu}\n")
    assert "E306" in [d.code for d in found]


def test_undefined_reference_E305_with_suggestion(tmp_path):
    found = errors(tmp_path, "network:\n  - conv: {op: relu}\n  - b: {op: add, in: [conv, cnov]}\n")
    assert [at(d) for d in found] == [("E305", 3, 29)]
    assert found[0].hint == "did you mean `conv`?"


def test_unused_node_E308(tmp_path):
    found = errors(tmp_path, "network:\n  - a: {op: relu}\n  - b: {op: relu, in: input}\n")
    assert [at(d) for d in found] == [("E308", 2, 5)]
    assert "`a`" in found[0].message


def test_unused_node_inside_a_block_E308(tmp_path):
    found = errors(tmp_path, """\
        blocks:
          b:
            body:
              - c: {op: relu}
              - d: {op: relu}
              - e: {op: relu, in: c}
        network:
          - a: {use: b}
        """)
    assert [at(d) for d in found] == [("E308", 5, 9)]
    assert "a.d" in found[0].message


def test_cycle_E307(tmp_path):
    found = errors(tmp_path, "network:\n  - a: {op: add, in: [input, c]}\n  - b: {op: relu}\n  - c: {op: relu}\n")
    assert [d.code for d in found] == ["E307"]
    assert re.search(r"(a|b|c) -> (a|b|c) -> (a|b|c) -> (a|b|c)", found[0].message)


def test_self_reference_E307(tmp_path):
    found = errors(tmp_path, "network:\n  - a: {op: relu}\n  - b: {op: add, in: [a, b]}\n")
    assert [d.code for d in found] == ["E307"]


def test_unknown_op_E300(tmp_path):
    found = errors(tmp_path, "network:\n  - a: {op: reluu}\n")
    assert [at(d) for d in found] == [("E300", 2, 13)]
    assert found[0].hint == "did you mean `relu`? (`archspec ops` shows each op's attributes)"


def test_unknown_op_far_from_every_op_E300_lists_the_ops(tmp_path):
    """Before: `frobnicate` got "did you mean `concat`?" (difflib's loose match) and no list of the ops."""
    from archspec.lang.ops import USER_OPS

    found = errors(tmp_path, "network:\n  - a: {op: frobnicate}\n")
    assert [at(d) for d in found] == [("E300", 2, 13)]
    hint = found[0].hint
    assert "did you mean" not in hint and "concat`?" not in hint
    assert hint == "the ops are " + ", ".join(f"`{op}`" for op in USER_OPS) + \
        "; `archspec ops` shows each op's attributes"


def test_unnamed_item_E315_and_reserved_name_E316(tmp_path):
    assert [at(d) for d in errors(tmp_path, "network:\n  - {op: relu}\n  - b: {op: relu}\n")] == [("E315", 2, 5)]
    found = errors(tmp_path, "network:\n  - input: {op: relu}\n  - count: {op: relu}\n")
    assert [at(d) for d in found] == [("E316", 2, 5), ("E316", 3, 5)]


def test_in_channels_of_a_later_item_E312(tmp_path):
    found = errors(tmp_path, """\
        blocks:
          widen:
            body:
              - conv: {op: conv, out: =in_channels * 2, kernel: 1}
        network:
          - a: {op: relu}
          - b: {use: widen, in: c}
          - c: {op: relu, in: a}
        """)
    assert "E305" in [d.code for d in found] or "E312" in [d.code for d in found]


# ---------------------------------------------------------------------------------------------- budget

def test_huge_repeat_refused_fast_E500(tmp_path):
    start = time.perf_counter()
    found = errors(tmp_path, "network:\n  - a: {op: relu, repeat: 1000000000}\n")
    assert time.perf_counter() - start < 2
    assert [at(d) for d in found] == [("E500", 2, 27)]


def test_huge_repeat_of_a_block_refused_fast_E500(tmp_path):
    start = time.perf_counter()
    found = errors(tmp_path, RES_BLOCKS + "network:\n  - a: {use: res, width: 8, repeat: 50000}\n")
    assert time.perf_counter() - start < 2
    assert [d.code for d in found] == ["E500"]


def test_nested_repeats_refused_fast_E500(tmp_path):
    start = time.perf_counter()
    found = errors(tmp_path, """\
        blocks:
          l1:
            body:
              - r: {op: relu, repeat: 1000}
          l2:
            body:
              - r: {use: l1, repeat: 1000}
        network:
          - a: {use: l2, repeat: 1000}
        """)
    assert time.perf_counter() - start < 2
    assert [d.code for d in found] == ["E500"]


def test_nested_repeats_with_computed_counts_stop_at_the_budget(tmp_path):
    start = time.perf_counter()
    found = errors(tmp_path, """\
        blocks:
          l1:
            params: {n: int}
            body:
              - r: {op: relu, repeat: =n}
          l2:
            params: {n: int}
            body:
              - r: {use: l1, n: =n, repeat: =n}
        network:
          - a: {use: l2, n: 1000, repeat: 1000}
        """)
    assert time.perf_counter() - start < 2
    assert [d.code for d in found] == ["E500"]


def test_budget_message_names_a_count_beyond_the_budget(tmp_path):
    found = errors(tmp_path, """\
        blocks:
          l1:
            params: {n: int}
            body:
              - r: {op: relu, repeat: =n}
        network:
          - a: {use: l1, n: 1000, repeat: 1000}
        """)
    (d,) = found
    counts = [int(c.replace(",", "")) for c in re.findall(r"\d[\d,]*", d.message)]
    assert max(counts) > 100_000, d.message  # the message names a total beyond the budget


def test_budget_counts_excluded_copies(tmp_path):
    path = write(tmp_path, """\
        blocks:
          l1:
            body:
              - r: {op: relu, when: false, repeat: 50000}
              - keep: {op: relu}
        network:
          - a: {use: l1, repeat: 50000}
          - fc: {op: relu}
        """)
    try:
        proc = subprocess.run([sys.executable, "-m", "archspec", "validate", str(path)], capture_output=True,
                              text=True, timeout=5, cwd=ROOT)
    except subprocess.TimeoutExpired:
        pytest.fail("validate ran for more than 5 s")
    assert proc.returncode == 2 and "E500" in proc.stderr


def test_max_nodes_option(tmp_path):
    body = "network:\n  - a: {op: relu, repeat: 20}\n"
    assert [d.code for d in errors(tmp_path, body, max_nodes=10)] == ["E500"]
    assert validate(write(tmp_path, body), max_nodes=30).ok


# ---------------------------------------------------------------------------------------------- collapsing

def test_error_in_a_block_used_many_times_is_reported_once(tmp_path):
    found = errors(tmp_path, """\
        blocks:
          bad:
            body:
              - c: {op: conv, out: =nope, kernel: 3}
        network:
          - a1: {use: bad}
          - a2: {use: bad}
          - a3: {use: bad}
          - a4: {use: bad}
        """)
    assert [at(d) for d in found] == [("E201", 4, 29)]
    notes = [m for _, m in found[0].notes]
    assert any("occurs 3 more times" in m for m in notes), notes


def test_bad_reference_in_a_repeated_block_is_reported_once(tmp_path):
    found = errors(tmp_path, """\
        blocks:
          bad:
            body:
              - c: {op: relu}
              - d: {op: relu, in: nothere}
          outer:
            body:
              - x: {use: bad}
        network:
          - a1: {use: outer}
          - a2: {use: outer}
        """)
    assert [at(d) for d in found] == [("E305", 5, 27)]
    assert any("occurs 1 more time " in m for _, m in found[0].notes)


def test_distinct_problems_are_not_collapsed(tmp_path):
    found = errors(tmp_path, "network:\n  - a: {op: conv, out: =x1, kernel: 1}\n  - b: {op: conv, out: =x2, kernel: 1}\n")
    assert [at(d) for d in found] == [("E201", 2, 25), ("E201", 3, 25)]
    assert not found[0].notes


# ---------------------------------------------------------------------------------------------- shipped specs

def _weighted(exp, *, skip_downsample: bool) -> list[str]:
    return [n.name for n in exp.nodes.values() if n.op in ("conv", "linear")
            and not (skip_downsample and "downsample" in n.name.split("."))]


@pytest.fixture(scope="module")
def shipped():
    cache: dict = {}

    def get(name: str, *overrides: str):
        key = (name, overrides)
        if key not in cache:
            result = validate(name, overrides)
            assert result.ok, [d.headline() for d in result.diagnostics]
            cache[key] = result.expansion
        return cache[key]

    return get


@pytest.mark.parametrize("name", SPECS)
def test_every_shipped_spec_is_valid(name):
    result = validate(name)
    assert result.ok, [d.headline() for d in result.diagnostics]


@pytest.mark.parametrize("depth", [20, 32, 44, 56, 110, 1202])
def test_cifar_resnets_have_6n_plus_2_layers(shipped, depth):
    exp = shipped(f"cifar_resnet{depth}")
    assert exp.spec.name == f"cifar_resnet{depth}"
    n = (depth - 2) // 6
    assert exp.spec.params["n"] == n
    assert len(_weighted(exp, skip_downsample=True)) == 6 * n + 2 == depth
    assert len(_weighted(exp, skip_downsample=False)) == depth  # option A: no projections at all


def test_cifar_resnet_override_matches_named_spec(shipped):
    a, b = shipped("cifar_resnet", "n=18"), shipped("cifar_resnet110")
    assert a.spec.name == b.spec.name == "cifar_resnet110"
    assert list(a.nodes) == list(b.nodes)


@pytest.mark.parametrize("name, depth", [("resnet18", 18), ("resnet34", 34), ("resnet50", 50), ("resnet101", 101),
                                         ("resnet152", 152), ("resnet18_tv", 18), ("resnet50_tv", 50)])
def test_imagenet_resnet_depths(shipped, name, depth):
    exp = shipped(name)
    assert len(_weighted(exp, skip_downsample=True)) == depth
    projections = [n for n in _weighted(exp, skip_downsample=False) if "downsample" in n.split(".")]
    assert len(projections) == (3 if depth < 50 else 4)  # option B: where the shape changes
    assert all(p.endswith(".downsample.0") for p in projections)


def test_option_a_has_no_projection_convs(shipped):
    exp = shipped("resnet34_a")
    assert not [n for n in _weighted(exp, skip_downsample=False) if "downsample" in n.split(".")]
    pads = [n.name for n in exp.nodes.values() if n.op == "subsample_pad"]
    assert pads == ["layer2.0.downsample", "layer3.0.downsample", "layer4.0.downsample"]


def test_option_c_projects_every_block(shipped):
    exp = shipped("resnet34_c")
    blocks = sorted({n.rsplit(".", 1)[0] for n in exp.nodes if re.fullmatch(r"layer\d\.\d+\.conv1", n)})
    assert len(blocks) == 3 + 4 + 6 + 3
    for b in blocks:
        assert exp.nodes[f"{b}.downsample.0"].op == "conv"
        assert exp.nodes[f"{b}.downsample.1"].op == "bn"
    assert not [n for n in exp.nodes.values() if n.op == "identity" and not n.name.endswith(".drop_path")]


def test_option_b_identity_where_shapes_match(shipped):
    exp = shipped("resnet34_b")
    assert exp.nodes["layer1.0.downsample"].op == "identity"
    assert exp.nodes["layer2.0.downsample.0"].op == "conv"
    assert exp.nodes["layer2.1.downsample"].op == "identity"


@pytest.mark.parametrize("name, strided", [("resnet50", "conv1"), ("resnet50_tv", "conv2"),
                                           ("resnet101", "conv1"), ("resnet152_tv", "conv2")])
def test_bottleneck_stride_placement(shipped, name, strided):
    exp = shipped(name)
    for layer in ("layer2", "layer3", "layer4"):
        strides = {c: exp.nodes[f"{layer}.0.{c}"].attrs["stride"] for c in ("conv1", "conv2", "conv3")}
        assert strides == {c: (2 if c == strided else 1) for c in strides}, (layer, strides)
        assert exp.nodes[f"{layer}.0.downsample.0"].attrs["stride"] == 2
        assert exp.nodes[f"{layer}.1.conv1"].attrs["stride"] == exp.nodes[f"{layer}.1.conv2"].attrs["stride"] == 1
    assert all(exp.nodes[f"layer1.0.{c}"].attrs["stride"] == 1 for c in ("conv1", "conv2", "conv3"))


def test_resnet50_module_names_follow_torchvision(shipped):
    exp = shipped("resnet50")
    for name in ["conv1", "bn1", "layer1.0.conv1", "layer1.0.downsample.0", "layer1.0.downsample.1",
                 "layer4.2.bn3", "fc"]:
        assert name in exp.nodes
    assert exp.nodes["layer3.5.conv3"].attrs["out"] == 1024
    assert exp.nodes["fc"].attrs["out"] == 1000


# ---------------------------------------------------------------------------------------------- attribute values

@pytest.mark.parametrize("item", ["{op: dropout, p: .nan}", "{op: bn, eps: .nan}", "{op: bn, eps: .inf}",
                                  "{op: bn, momentum: .nan}"])
def test_non_finite_float_attributes_are_refused(tmp_path, item):
    found = errors(tmp_path, f"network:\n  - c: {{op: conv, out: 4, kernel: 1}}\n  - x: {item}\n")
    assert [d.code for d in found] == ["E314"]


@pytest.mark.parametrize("item, code", [
    ("{op: dropout, p: 1.5}", "E104"),           # literals: the schema
    ("{op: dropout, p: -0.1}", "E104"),
    ("{op: dropout, p: '=3 / 2'}", "E314"),      # computed values: the op registry
    ("{op: conv, out: '=w - 8', kernel: 1}", "E208"),
    ("{op: conv, out: 0, kernel: 1}", "E208"),
    ("{op: conv, out: 2.0, kernel: 1}", "E208"),
    ("{op: conv, out: 4}", "E313"),
    ("{op: relu, kernel: 3}", "E101"),
])
def test_attribute_checks(tmp_path, item, code):
    found = errors(tmp_path, f"network:\n  - x: {item}\n  - g: {{op: global_avgpool}}\n")
    assert code in [d.code for d in found]


def test_a_stated_width_is_checked_by_the_same_shape_function_when_a_block_reads_in_channels(tmp_path):
    """Expansion computes `in_channels` with the shape function validation and the passes use, so a conv whose
    stated `in_channels` is wrong is reported once, at the conv, by both validate and compile."""
    text = """\
    archspec: 1
    name: t
    input: [3, 8, 8]
    blocks:
      unit:
        body:
          - c: {op: conv, out: =in_channels, kernel: 1}
    network:
      - conv1: {op: conv, out: 16, kernel: 3, pad: 1, in_channels: 4}
      - b: {use: unit}
      - pool: {op: global_avgpool}
    """
    path = tmp_path / "t.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    (d,) = archspec.validate(path).diagnostics
    assert (d.code, d.loc.line) == ("E401", 9) and "expects 4 input channels, got 3" in d.message
    with pytest.raises(SpecError) as e:
        archspec.compile(path)
    assert [(x.code, x.loc.line) for x in e.value.diagnostics] == [("E401", 9)]
