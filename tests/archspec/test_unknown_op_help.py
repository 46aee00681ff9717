"""E300 (an unknown op): a near miss only when it is genuinely close; otherwise every op, and `archspec ops`."""

from __future__ import annotations

from pathlib import Path

import pytest

from archspec.lang.diagnostics import edits, suggest
from archspec.lang.ops import USER_OPS

ALL_OPS = "the ops are " + ", ".join(f"`{op}`" for op in USER_OPS) + "; `archspec ops` shows each op's attributes"


def spec_with_op(tmp_path: Path, op: str) -> Path:
    path = tmp_path / "net.yaml"
    path.write_text("archspec: 1\ninput: [3, 32, 32]\nnetwork:\n  - conv1: {op: conv, out: 16, kernel: 3, pad: 1}\n"
                    f"  - f: {{op: {op}}}\n")
    return path


@pytest.mark.parametrize("command", ["validate", "compile"])
def test_a_far_unknown_op_lists_every_op_and_points_at_archspec_ops(cli, tmp_path, command):
    """Before: `help: did you mean `concat`?` for `frobnicate`, and no list of the ops."""
    r = cli(command, spec_with_op(tmp_path, "frobnicate"))
    assert r.code == 2 and "error[E300]: unknown op `frobnicate`" in r.err
    assert "did you mean" not in r.err
    assert f"   = help: {ALL_OPS}" in r.err.splitlines()


@pytest.mark.parametrize("typed, meant", [("convv", "conv"), ("sigmod", "sigmoid"), ("Relu", "relu"),
                                          ("conv2d", "conv"), ("max_pool2d", "maxpool"), ("linaer", "linear")])
def test_a_near_miss_is_suggested_with_the_pointer(cli, tmp_path, typed, meant):
    r = cli("validate", spec_with_op(tmp_path, typed))
    assert r.code == 2
    assert f"   = help: did you mean `{meant}`? (`archspec ops` shows each op's attributes)" in r.err.splitlines()


@pytest.mark.parametrize("word", ["frobnicate", "squeeze_excite", "batchnorm", "pool", "sub", "x", "upsample"])
def test_no_far_fetched_op_suggestion(word):
    assert suggest(word, USER_OPS) == []


def test_suggestion_rules():
    assert edits("mynte", "mynet") == 1 and edits("kitten", "sitting") == 3 and edits("", "ab") == 2
    assert suggest("bn3", ["bn1", "bn2", "bn33", "conv1"]) == ["bn33"]  # of equally near, the most alike
    assert suggest("resnet_blocks.yaml", ["blocks.yaml", "network.yaml"]) == ["blocks.yaml"]
    assert suggest("paddding", ["pad", "stride"]) == ["pad"] and suggest("bott", ["bottleneck"]) == ["bottleneck"]
    assert suggest("nn", ["n", "width"]) == ["n"] and suggest("x", ["n"]) == []
