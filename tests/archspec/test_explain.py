"""`archspec explain CODE`: the catalogue's line, and for the codes of `archspec.lang.explanations` what the code
means, an example that gets it and the fix, each example checked against the compiler."""

from __future__ import annotations

import pytest

import archspec
from archspec.lang.diagnostics import CODES
from archspec.lang.explanations import EXPLANATIONS

HEADER = "archspec: 1\ninput: [3, 32, 32]\n"


def test_every_explained_code_is_in_the_catalogue():
    assert set(EXPLANATIONS) <= set(CODES)
    assert "E312" in EXPLANATIONS


@pytest.mark.parametrize("code", sorted(EXPLANATIONS))
def test_each_example_gets_its_code_and_its_fix_compiles(tmp_path, code):
    entry = EXPLANATIONS[code]
    broken = tmp_path / "broken.yaml"
    broken.write_text(HEADER + entry.example)
    with pytest.raises(archspec.SpecError) as info:
        archspec.compile(broken)
    assert [d.code for d in info.value.diagnostics] == [code], str(info.value)
    fixed = tmp_path / "fixed.yaml"
    fixed.write_text(HEADER + entry.fixed)
    archspec.compile(fixed)


def test_explain_E312_says_what_it_means_with_an_example_and_the_fix(cli):
    """Before: one line, `E312: `in_channels` is read before its input is defined`."""
    r = cli("explain", "E312")
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert lines[0] == f"E312: {CODES['E312']}" and len(lines) > 20
    assert "in_channels" in lines[2] and "written further down" in r.out
    assert "      - conv1: {op: conv, out: 16, kernel: 3, pad: 1, in: stem}" in lines
    assert "To fix it, write the items in the order they compute" in r.out
    assert max(len(line) for line in lines) <= 100


def test_a_code_without_a_long_text_is_its_line(cli):
    assert "E101" not in EXPLANATIONS
    assert cli("explain", "e101").out == f"E101: {CODES['E101']}\n"


def test_explain_E301_covers_unknown_blocks_and_edits_of_blocks_nobody_defines(cli):
    """Before: one line (issue "No silent wrong network", 2d)."""
    r = cli("explain", "E301")
    assert r.code == 0, r.err
    assert len(r.out.splitlines()) > 15
    assert "edits (`edit:`, `insert_before:`, `insert_after:`) a block that no file merged before it" in \
        " ".join(r.out.split())
    assert "- block: {use: unit}" in r.out
