"""The blocks Table 1 counts per stage (`Compiled.stages()`, `stage_blocks`): residual blocks only, so a pool or a
transition that opens a stage is neither counted nor taken as the stage's template."""

from __future__ import annotations

import textwrap
from pathlib import Path

import archspec
from archspec.compiler.analysis import stage_blocks
from archspec.compiler.diff import diff_compiled
from archspec.compiler.report import stage_descriptions

SPEC = """\
archspec: 1
name: opens_with_pool
input: [3, 32, 32]
blocks:
  stem_pool:
    body:
      - pool: {op: maxpool, kernel: 3, stride: 2, pad: 1}
  res:
    body:
      - conv1: {op: conv, out: 8, kernel: 3, pad: 1}
      - relu: {op: relu}
      - add: {op: add, in: [relu, input]}
  stack:
    params: {blocks: int}
    body:
      - repeat: =blocks
        use: res
  plain:
    body:
      - conv: {op: conv, out: 8, kernel: 3, pad: 1}
      - relu: {op: relu}
network:
  - conv1: {op: conv, out: 8, kernel: 3, pad: 1, stage: conv1}
  - pool: {use: stem_pool, stage: conv2_x}
  - layer1: {use: stack, blocks: 3}
  - trans: {use: stem_pool, stage: conv3_x}
  - b1: {use: res}
  - b2: {use: res}
  - layer3: {repeat: 2, use: plain, stage: conv4_x}
"""


def compiled(tmp_path: Path, text: str = SPEC):
    path = tmp_path / "x.yaml"
    path.write_text(textwrap.dedent(text))
    return archspec.compile(path)


def test_a_stage_opening_with_a_pool_counts_its_residual_blocks(tmp_path):
    stages = {s.name: s for s in compiled(tmp_path).stages()}
    assert (stages["conv2_x"].blocks, stages["conv2_x"].block) == (3, "res")      # was 4 x stem_pool
    assert (stages["conv3_x"].blocks, stages["conv3_x"].block) == (2, "res")      # unrepeated blocks: was 3
    assert (stages["conv1"].blocks, stages["conv1"].block) == (0, None)


def test_a_plain_stage_counts_its_repeated_blocks(tmp_path):
    stage = {s.name: s for s in compiled(tmp_path).stages()}["conv4_x"]
    assert (stage.blocks, stage.block) == (2, "plain")


def test_stage_blocks_and_the_description_agree(tmp_path):
    c = compiled(tmp_path)
    assert [b.name for b in stage_blocks(c.graph, "conv2_x")] == ["layer1.0", "layer1.1", "layer1.2"]
    assert [b.name for b in stage_blocks(c.graph, "conv3_x")] == ["b1", "b2"]
    desc = stage_descriptions(c)
    assert desc["conv2_x"][-1].endswith("x 3")
    assert not any("stem_pool" in line for line in desc["conv2_x"])


def test_the_stage_diff_counts_residual_blocks(tmp_path):
    before = compiled(tmp_path)
    (tmp_path / "b").mkdir()
    after = compiled(tmp_path / "b", SPEC.replace("blocks: 3", "blocks: 4"))
    rows = {r.name: r for r in diff_compiled(before, after).stages}
    assert rows["conv2_x"].blocks == (3, 4)
