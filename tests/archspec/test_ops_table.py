"""The op table of docs/spec-format.md is the one generated from the registry (`archspec.lang.ops.table`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from archspec.lang.ops import USER_OPS
from archspec.lang.ops.table import BEGIN, END, ops_table, with_ops_table

DOC = Path(__file__).resolve().parents[2] / "docs" / "spec-format.md"


def test_docs_op_table_is_the_generated_one():
    text = DOC.read_text(encoding="utf-8")
    assert text == with_ops_table(text), "the op table is stale: run `python -m archspec.lang.schema`"


def test_every_user_op_has_a_row():
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index(BEGIN):text.index(END)]
    for name in USER_OPS:
        assert f"\n| `{name}` |" in section, f"docs/spec-format.md has no row for op `{name}`"
    for name in ("mul", "silu", "hardsigmoid", "drop_path"):
        assert name in USER_OPS


def test_table_rows_and_markers():
    rows = ops_table().splitlines()
    assert len(rows) == 2 + len(USER_OPS)
    assert all(r.startswith("| `") and r.endswith(" |") for r in rows[2:])
    with pytest.raises(ValueError, match="no ops table section"):
        with_ops_table("# no markers here\n")
    assert with_ops_table(f"a\n{BEGIN}\nold\n{END}\nb\n") == f"a\n{BEGIN}\n{ops_table()}{END}\nb\n"
