"""`edit:`, `insert_before:`, `insert_after:` of a block template: change named items of an inherited body."""

from __future__ import annotations

import textwrap
from pathlib import Path

from archspec.compiler.validate import validate
from archspec.lang.spec import load_spec

LIB = """\
archspec: 1
params: {act: {type: str, default: relu}}  # (declared with its type: nothing here reads it)
blocks:
  unit:
    params: {width: int}
    body:
      - conv1: {op: conv, out: =width, kernel: 1}
      - bn1: {op: bn}
      - conv2: {op: conv, out: =width, kernel: 3, pad: 1}
      - bn2: {op: bn}
      - downsample:
          in: input
          cases:
            - when: in_channels != width
              op: conv
              out: =width
              kernel: 1
            - op: identity
      - add: {op: add, in: [bn2, downsample]}
      - relu: {op: relu}
  stack:
    params: {width: int, n: int}
    body:
      - repeat: =n
        use: unit
        width: =width
"""
NET = """\
input: [8, 8, 8]
network:
  - s: {use: stack, width: 16, n: 2}
  - flat: {op: flatten}
"""


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


def spec(tmp_path: Path, blocks: str, head: str = "imports: [lib.yaml]\n") -> Path:
    write(tmp_path / "lib.yaml", LIB)
    return write(tmp_path / "s.yaml", "archspec: 1\n" + head + "blocks:\n" + textwrap.indent(
        textwrap.dedent(blocks), "  ") + NET)


def nodes(path: Path) -> dict:
    result = validate(path)
    assert result.ok, result.diagnostics
    return result.expansion.nodes


def test_edit_merges_into_one_named_item_of_an_imported_block(tmp_path):
    n = nodes(spec(tmp_path, """\
        unit:
          params: {groups: {type: int, default: 4}}
          edit:
            conv2: {groups: =groups}
        """))
    assert n["s.0.conv2"].attrs["groups"] == 4 and n["s.0.conv2"].attrs["kernel"] == 3
    assert n["s.1.conv1"].attrs["groups"] == 1
    assert [k.split(".")[-1] for k in n if k.startswith("s.0.")] == \
        ["conv1", "bn1", "conv2", "bn2", "downsample", "add", "relu"]


def test_edit_in_a_child_of_extends_and_the_grandchild_sees_it(tmp_path):
    write(tmp_path / "lib.yaml", LIB)
    write(tmp_path / "base.yaml", "archspec: 1\nimports: [lib.yaml]\n" + NET)
    write(tmp_path / "child.yaml", """\
        archspec: 1
        extends: base.yaml
        blocks:
          unit:
            edit:
              conv1: {kernel: 3, pad: 1, bias: true}
        """)
    grandchild = write(tmp_path / "grand.yaml", """\
        archspec: 1
        extends: child.yaml
        blocks:
          unit:
            edit:
              conv1: {kernel: 1, pad: null}
        """)
    n = nodes(grandchild)
    conv1 = n["s.0.conv1"].attrs
    assert (conv1["kernel"], conv1["pad"], conv1["bias"]) == (1, 0, True)  # null removed the child's pad


def test_edit_an_alternative_of_cases_and_an_unnamed_item_by_position(tmp_path):
    n = nodes(spec(tmp_path, """\
        unit:
          edit:
            downsample.cases.0: {bias: true}
        stack:
          edit:
            0: {with: {}}
        """))
    assert n["s.0.downsample"].attrs["bias"] is True


def test_insert_before_and_after(tmp_path):
    path = spec(tmp_path, """\
        unit:
          insert_after:
            bn2: [{relu2: {op: relu}}, {drop: {op: dropout, p: 0.1}}]
          insert_before:
            conv1: [{pre: {op: identity}}]
          edit:
            add: {in: [drop, downsample]}
        """)
    n = nodes(path)
    assert [k.split(".")[-1] for k in n if k.startswith("s.0.")] == \
        ["pre", "conv1", "bn1", "conv2", "bn2", "relu2", "drop", "downsample", "add", "relu"]
    assert n["s.0.add"].inputs == ["s.0.drop", "s.0.downsample"]


def test_edit_of_a_missing_item_is_located_with_a_near_miss(tmp_path):
    path = spec(tmp_path, """\
        unit:
          edit:
            conv3: {groups: 2}
            downsample.cases.7: {bias: true}
          insert_after:
            bn9: [{x: {op: relu}}]
        """)
    d = validate(path).diagnostics
    lines = path.read_text().splitlines()
    assert [(x.code, x.loc.line, x.loc.col) for x in d] == [
        ("E305", lines.index("      conv3: {groups: 2}") + 1, 7),
        ("E305", lines.index("      downsample.cases.7: {bias: true}") + 1, 7),
        ("E305", lines.index("      bn9: [{x: {op: relu}}]") + 1, 7)]
    assert "conv2" in d[0].hint and "bn2" in d[2].hint and "0 to 1" in d[1].message


def test_position_of_a_named_item_asks_for_its_name(tmp_path):
    d = validate(spec(tmp_path, "unit:\n  edit:\n    1: {eps: 0.1}\n")).diagnostics
    assert [x.code for x in d] == ["E305"] and "named `bn1`" in d[0].message


def test_edit_of_a_block_nobody_defines_is_E301(tmp_path):
    d = validate(spec(tmp_path, "unti:\n  edit:\n    conv2: {groups: 2}\n")).diagnostics
    assert [x.code for x in d] == ["E301"] and "unit" in d[0].hint and d[0].loc.line == 5


def test_an_edited_value_is_diagnosed_at_the_edit(tmp_path):
    path = spec(tmp_path, "unit:\n  edit:\n    conv2: {groups: =nope}\n")
    d = validate(path).diagnostics
    assert [x.code for x in d] == ["E201"]
    assert (d[0].loc.file.endswith("s.yaml"), d[0].loc.line) == (True, 6)


def test_edit_paths_are_schema_checked(tmp_path):
    path = spec(tmp_path, "unit:\n  edits: {conv2: {groups: 2}}\n  edit:\n    conv2.cases: {groups: 2}\n")
    d = validate(path).diagnostics
    assert {(x.code, x.loc.line) for x in d} == {("E101", 5), ("E104", 7)}
    assert "edit" in d[0].hint


def test_a_library_may_edit_a_block_of_another_library_without_E126(tmp_path):
    write(tmp_path / "lib.yaml", LIB)
    write(tmp_path / "wide.yaml", "archspec: 1\nblocks:\n  unit:\n    edit:\n      conv2: {kernel: 5, pad: 2}\n")
    path = write(tmp_path / "s.yaml", "archspec: 1\nimports: [lib.yaml, wide.yaml]\n" + NET)
    assert nodes(path)["s.1.conv2"].attrs["kernel"] == 5
    spec_ = load_spec(path)
    assert "edit" not in spec_.blocks["unit"]  # applied, then dropped


def test_a_library_that_edits_its_own_import(tmp_path):
    write(tmp_path / "lib.yaml", LIB)
    write(tmp_path / "wide.yaml", "archspec: 1\nimports: [lib.yaml]\nblocks:\n  unit:\n    edit:\n"
          "      conv2: {kernel: 5, pad: 2}\n")
    path = write(tmp_path / "s.yaml", "archspec: 1\nimports: [wide.yaml]\n" + NET)
    assert nodes(path)["s.0.conv2"].attrs["kernel"] == 5


def test_the_library_file_is_not_changed_for_other_specs(tmp_path):
    """Files are read once and cached: an edit builds a new body and leaves the library's as it was."""
    path = spec(tmp_path, "unit:\n  edit:\n    conv2: {groups: 2}\n")
    assert nodes(path)["s.0.conv2"].attrs["groups"] == 2
    plain = write(tmp_path / "plain.yaml", "archspec: 1\nimports: [lib.yaml]\n" + NET)
    assert nodes(plain)["s.0.conv2"].attrs["groups"] == 1
