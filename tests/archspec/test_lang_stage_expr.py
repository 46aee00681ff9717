"""`stage:` with `${...}` and `=expressions`: one repeated item opens a row per copy; a non-string is located."""

from __future__ import annotations

import textwrap
from pathlib import Path

from archspec.compiler.validate import validate

HEAD = """\
archspec: 1
imports: ["archspec:lib/resnet.yaml"]
input: [3, 32, 32]
params: {widths: [16, 32, 64], depths: [1, 2, 1], prefix: conv}
network:
  - conv1: {op: conv, out: 16, kernel: 3, pad: 1, stage: conv1}
  - bn1: {op: bn}
  - relu: {op: relu}
"""
TAIL = """\
  - avgpool: {op: global_avgpool, stage: head}
  - flatten: {op: flatten}
  - fc: {op: linear, out: 10}
"""


def spec(tmp_path: Path, items: str) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(HEAD + textwrap.indent(textwrap.dedent(items), "  ") + TAIL)
    return path


def test_one_repeated_item_opens_a_stage_per_copy(tmp_path):
    result = validate(spec(tmp_path, """\
      - layer:
          repeat: =len(widths)
          use: stack
          stage: "conv${index + 2}_x"
          width: =widths[index]
          blocks: =depths[index]
          stride: "=1 if index == 0 else 2"
    """))
    assert result.ok, result.diagnostics
    exp = result.expansion
    assert exp.stages == ["conv1", "conv2_x", "conv3_x", "conv4_x", "head"]
    assert exp.nodes["layer.0.0.conv1"].stage == "conv2_x"
    assert exp.nodes["layer.1.1.conv2"].stage == "conv3_x"
    assert exp.nodes["layer.2.0.conv1"].stage == "conv4_x"
    assert exp.nodes["avgpool"].stage == "head"


def test_stage_expression_reads_params_and_count(tmp_path):
    result = validate(spec(tmp_path, """\
      - layer:
          repeat: 2
          use: stack
          stage: "=prefix + str(count - index) + '_x'"
          width: "=widths[0]"
          blocks: 1
    """))
    assert result.ok, result.diagnostics
    assert result.expansion.stages == ["conv1", "conv2_x", "conv1_x", "head"]


def test_stage_of_a_plain_item_is_interpolated(tmp_path):
    result = validate(spec(tmp_path, """\
      - layer: {use: stack, width: "=widths[0]", blocks: 1, stage: "${prefix}2_x"}
    """))
    assert result.ok, result.diagnostics
    assert result.expansion.stages == ["conv1", "conv2_x", "head"]


def test_stage_of_a_chosen_case_is_evaluated(tmp_path):
    result = validate(spec(tmp_path, """\
      - layer:
          cases:
            - when: prefix == 'x'
              op: identity
            - {use: stack, width: "=widths[0]", blocks: 1, stage: "=prefix + '9_x'"}
    """))
    assert result.ok, result.diagnostics
    assert "conv9_x" in result.expansion.stages


def test_a_stage_that_is_not_a_string_is_located_once(tmp_path):
    path = spec(tmp_path, """\
      - layer:
          repeat: 3
          use: stack
          stage: =index + 2
          width: "=widths[0]"
          blocks: 1
    """)
    result = validate(path)
    bad = [d for d in result.diagnostics if d.code == "E100"]
    assert len(bad) == 1, result.diagnostics
    assert "string" in bad[0].message and "2" in bad[0].message
    line = path.read_text().splitlines().index("      stage: =index + 2") + 1
    assert (bad[0].loc.line, bad[0].loc.col) == (line, 14)


def test_a_failing_stage_expression_points_inside_it(tmp_path):
    path = spec(tmp_path, """\
      - layer: {use: stack, width: "=widths[0]", blocks: 1, stage: "conv${nope}_x"}
    """)
    result = validate(path)
    assert [d.code for d in result.diagnostics] == ["E201"]
    line = path.read_text().splitlines().index('  - layer: {use: stack, width: "=widths[0]", blocks: 1, stage: "conv${nope}_x"}')
    assert result.diagnostics[0].loc.line == line + 1
