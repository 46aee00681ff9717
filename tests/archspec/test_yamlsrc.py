"""Safe YAML reading: positions, refused constructs, budgets, and files that are not YAML text at all."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from archspec.lang import yamlsrc
from archspec.lang.diagnostics import Loc, Sources, SpecError
from archspec.lang.yamlsrc import LocDict, LocList


def parse(text: str):
    return yamlsrc.parse(text, "f.yaml")


def problems(text: str) -> list[tuple[str, int, int]]:
    with pytest.raises(SpecError) as info:
        parse(text)
    return [(d.code, d.loc.line, d.loc.col) for d in info.value.diagnostics]


def codes(text: str) -> list[str]:
    return [c for c, _, _ in problems(text)]


def load_bytes(tmp_path: Path, data: bytes, name: str = "f.yaml"):
    path = tmp_path / name
    path.write_bytes(data)
    return yamlsrc.load_file(path, Sources(), name)


def file_problems(tmp_path: Path, data: bytes) -> list[tuple[str, int, int]]:
    with pytest.raises(SpecError) as info:
        load_bytes(tmp_path, data)
    return [(d.code, d.loc.line, d.loc.col) for d in info.value.diagnostics]


# ---------------------------------------------------------------------------------------------- positions

DOC = """\
archspec: 1
params:
  shortcut: 'B'
  name: "cifar"
  n: 3
network:
  - conv1: {op: conv, out: 64}
  - bn1:
      op: bn
"""


def test_values_are_plain_dicts_and_lists():
    doc = parse(DOC)
    assert isinstance(doc, dict) and isinstance(doc, LocDict)
    assert isinstance(doc["network"], list) and isinstance(doc["network"], LocList)
    assert doc == {"archspec": 1, "params": {"shortcut": "B", "name": "cifar", "n": 3},
                   "network": [{"conv1": {"op": "conv", "out": 64}}, {"bn1": {"op": "bn"}}]}


def test_key_and_value_positions():
    doc = parse(DOC)
    assert doc.key_loc("archspec") == Loc("f.yaml", 1, 1, 9)
    assert (doc.val_loc("archspec").line, doc.val_loc("archspec").col) == (1, 11)
    params = doc["params"]
    assert (params.key_loc("n").line, params.key_loc("n").col) == (5, 3)
    assert (params.val_loc("n").line, params.val_loc("n").col, params.val_loc("n").end_col) == (5, 6, 7)
    row = doc["network"][0]["conv1"]
    assert (row.key_loc("out").line, row.key_loc("out").col) == (7, 23)
    assert (row.val_loc("out").line, row.val_loc("out").col, row.val_loc("out").end_col) == (7, 28, 30)
    assert (row.val_loc("op").line, row.val_loc("op").col) == (7, 17)
    block_style = doc["network"][1]["bn1"]
    assert (block_style.val_loc("op").line, block_style.val_loc("op").col) == (9, 11)


def test_positions_of_quoted_values_point_inside_the_quotes():
    params = parse(DOC)["params"]
    single, double = params.val_loc("shortcut"), params.val_loc("name")
    assert (single.line, single.col, single.end_col) == (3, 14, 15)  # the B, not the quote before it
    assert (double.line, double.col, double.end_col) == (4, 10, 15)  # cifar
    line = DOC.splitlines()[3]
    assert line[double.col - 1: double.end_col - 1] == "cifar"


def test_list_element_positions():
    doc = parse("xs:\n  - 1\n  - two\nys: [a, 'b']\n")
    xs, ys = doc["xs"], doc["ys"]
    assert [(l.line, l.col) for l in xs.locs] == [(2, 5), (3, 5)]
    assert [(l.line, l.col) for l in ys.locs] == [(4, 6), (4, 10)]
    assert xs.val_loc(7) == xs.loc  # out of range: the list itself
    assert yamlsrc.loc_of(ys, 1) == ys.locs[1]
    assert yamlsrc.loc_of({"a": 1}, "a") is None


def test_unknown_key_location_falls_back_to_the_mapping():
    doc = parse("a:\n  b: 1\n")
    assert doc["a"].key_loc("zz") == doc["a"].loc
    assert doc["a"].val_loc("zz") == doc["a"].loc


# ---------------------------------------------------------------------------------------------- duplicates, tabs

def test_duplicate_key_E007_at_the_second_key():
    found = problems("a: 1\nb: 2\na: 3\n")
    assert found == [("E007", 3, 1)]


def test_every_duplicate_is_reported_with_the_first_line():
    with pytest.raises(SpecError) as info:
        parse("a: 1\nb: 2\na: 3\nb: 4\n")
    diags = info.value.diagnostics
    assert [(d.code, d.loc.line) for d in diags] == [("E007", 3), ("E007", 4)]
    assert "line 1" in diags[0].message and "line 2" in diags[1].message


def test_duplicate_key_in_a_flow_mapping():
    assert problems("network:\n  - c: {op: conv, out: 3, out: 4}\n") == [("E007", 2, 27)]


def test_duplicate_nested_key_deep_in_the_document():
    assert problems("a:\n  b:\n    c: 1\n    d: 2\n    c: 3\n") == [("E007", 5, 5)]


def test_tab_indentation_E006():
    assert problems("a:\n\tb: 1\n") == [("E006", 2, 1)]
    assert problems("a:\n  b:\n  \t- 1\n") == [("E006", 3, 3)]


def test_every_tab_indented_line_is_reported():
    assert codes("a:\n\tb: 1\n\tc: 2\n") == ["E006", "E006"]


def test_tabs_elsewhere_are_fine():
    doc = parse("a: 'x\ty'\nb: c\t# comment\n")
    assert doc == {"a": "x\ty", "b": "c"}


def test_tab_on_a_blank_line_is_E006_or_accepted():
    try:
        parse("a:\n  b: 1\n\t\nc: 2\n")
    except SpecError as e:
        assert [d.code for d in e.diagnostics] == ["E006"]


# ---------------------------------------------------------------------------------------------- tags

@pytest.mark.parametrize("text, line, col", [
    ("a: !!python/object/apply:os.system ['echo hacked']\n", 1, 4),
    ("a: !!python/object/apply:os.system\n  args: ['echo hacked']\n", 1, 4),
    ("a: !!python/object/new:os.system [x]\n", 1, 4),
    ("!!python/name:os.system x: 1\n", 1, 1),
    ("a: !!python/tuple [1, 2]\n", 1, 4),
    ("a: !custom 1\n", 1, 4),
    ("a: !!binary aGVsbG8=\n", 1, 4),
    ("a: !!set {x}\n", 1, 4),
    ("a: !!omap [x: 1]\n", 1, 4),
    ("a:\n  - !!python/object:collections.OrderedDict {}\n", 2, 5),
])
def test_tags_are_refused_E008(text, line, col):
    found = problems(text)
    assert ("E008", line, col) in found


def test_python_tag_executes_nothing(tmp_path, cli):
    marker = tmp_path / "hacked"
    payload = f"!!python/object/apply:os.system ['touch {marker}']"
    spec = tmp_path / "evil.yaml"
    spec.write_text(f"archspec: 1\ninput: [3, 8, 8]\nparams:\n  x: {payload}\n"
                    "network:\n  - fc: {op: linear, out: 2}\n")
    r = cli("validate", spec)
    assert r.code == 2
    assert "error[E008]" in r.err and "evil.yaml:4:6" in r.err
    assert not marker.exists()
    with pytest.raises(SpecError):
        parse(f"a: {payload}\n")
    assert not marker.exists()


def test_standard_tags_are_accepted():
    assert parse("a: !!str 1\nb: !!float 1\nc: !!map {x: 1}\nd: !!seq [1]\n") == \
        {"a": "1", "b": 1.0, "c": {"x": 1}, "d": [1]}


def test_dates_and_a_lone_equals_sign_stay_text():
    assert parse("a: 2020-01-01\nb: =\nc: 2001-12-14t21:59:43.10-05:00\n") == \
        {"a": "2020-01-01", "b": "=", "c": "2001-12-14t21:59:43.10-05:00"}


# ---------------------------------------------------------------------------------------------- aliases and merges

def test_merge_keys():
    doc = parse("base: &b {x: 1, y: 2}\nd:\n  <<: *b\n  y: 3\n")
    assert doc["d"] == {"x": 1, "y": 3}
    assert doc["d"].val_loc("y").line == 4      # the explicit key wins, with its own position
    assert doc["d"].val_loc("x").line == 1      # the merged one keeps the anchor's position


def test_merge_of_several_mappings():
    doc = parse("x: &x {a: 1}\ny: &y {a: 5, b: 2}\nz:\n  <<: [*x, *y]\n  c: 9\n")
    assert doc["z"] == {"a": 1, "b": 2, "c": 9}


def test_merge_of_a_list_is_refused():
    assert problems("x: &x [1]\nz:\n  <<: *x\n") == [("E100", 1, 8)]


def test_plain_alias_is_a_copy():
    doc = parse("w: &w 64\nn: *w\nm: &m {a: 1}\nk: *m\n")
    assert doc == {"w": 64, "n": 64, "m": {"a": 1}, "k": {"a": 1}}


@pytest.mark.parametrize("text", ["a: &a [*a]\n", "a: &a {b: *a}\n", "a: &a {b: [1, {c: *a}]}\n"])
def test_recursive_alias_E009(text):
    assert codes(text) == ["E009"]


def test_alias_expansion_budget_E009():
    lines = ["a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    for i in range(1, 9):  # 10**9 values once expanded
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * 10) + "]")
    start = time.perf_counter()
    assert codes("\n".join(lines) + "\n") == ["E009"]
    assert time.perf_counter() - start < 2


def test_aliases_within_the_budget_are_fine():
    lines = ["a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]", "b: &b [" + ", ".join(["*a"] * 10) + "]",
             "c: [" + ", ".join(["*b"] * 10) + "]"]
    doc = parse("\n".join(lines) + "\n")
    assert len(doc["c"]) == 10 and len(doc["c"][0]) == 10


# ---------------------------------------------------------------------------------------------- nesting

def test_flow_nesting_budget_E010():
    assert codes("a: " + "[" * 100 + "]" * 100 + "\n") == ["E010"]
    assert problems("a: " + "[" * 65 + "]" * 65 + "\n") == [("E010", 1, 68)]


def test_flow_nesting_within_the_budget():
    doc = parse("a: " + "[" * 60 + "]" * 60 + "\n")
    depth, v = 0, doc["a"]
    while v:
        v, depth = v[0], depth + 1
    assert depth == 59


def test_brackets_in_strings_and_comments_do_not_count():
    doc = parse("a: '" + "[" * 100 + "'\nb: 1  # " + "{" * 100 + "\n")
    assert doc == {"a": "[" * 100, "b": 1}


def test_block_nesting_budget_E010():
    text = "".join("  " * i + f"k{i}:\n" for i in range(80)) + "  " * 80 + "v\n"
    assert codes(text) == ["E010"]


def test_extreme_nesting_never_raises_recursion_error():
    for text in ["a: " + "[" * 50_000, "a: " + "{a: " * 20_000, "- " * 5_000 + "x\n"]:
        with pytest.raises(SpecError) as info:
            parse(text)
        assert info.value.diagnostics[0].code in ("E005", "E010")


# ---------------------------------------------------------------------------------------------- scalars

def test_keys_are_kept_as_written():
    doc = parse("0: a\non: b\nnull: c\nyes: d\n1.5: e\nfalse: f\n")
    assert list(doc) == ["0", "on", "null", "yes", "1.5", "false"]
    assert all(isinstance(k, str) for k in doc)


def test_values_are_typed():
    assert parse("a: 1\nb: 1.5\nc: true\nd: null\ne: 'x'\nf: 1_000\ng: on\n") == \
        {"a": 1, "b": 1.5, "c": True, "d": None, "e": "x", "f": 1000, "g": True}


def test_integer_beyond_python_limits_E012():
    assert problems("a: 1\nb: " + "9" * 5000 + "\n") == [("E012", 2, 4)]


def test_integer_beyond_64_bits_E012():
    assert problems("a: 99999999999999999999\n") == [("E012", 1, 4)]
    assert problems("a: -9223372036854775809\n") == [("E012", 1, 4)]
    assert parse("a: 9223372036854775807\nb: -9223372036854775807\n") == {"a": 2**63 - 1, "b": -(2**63 - 1)}


def test_huge_integer_in_a_spec_is_refused(tmp_path, cli):
    path = tmp_path / "big.yaml"
    path.write_text("archspec: 1\ninput: [3, 8, 8]\nnetwork:\n  - fl: {op: flatten}\n"
                    "  - fc: {op: linear, out: 99999999999999999999}\n")
    r = cli("validate", path)
    assert r.code == 2 and "big.yaml:5:27: error[E012]" in r.err


def test_non_number_with_int_tag_is_not_called_too_large():
    with pytest.raises(SpecError) as info:
        parse("a: !!int x\n")
    message = info.value.diagnostics[0].message
    assert "too large" not in message and "range" not in message


def test_complex_keys_E011():
    assert codes("[1, 2]: x\n") == ["E011"]
    assert codes("? {a: 1}\n: x\n") == ["E011"]


# ---------------------------------------------------------------------------------------------- syntax

@pytest.mark.parametrize("text, line, hint_part", [
    ("a: b: c\n", 1, "quote the value"),
    ("a: {b: 1\n", 1, "`}`"),             # at the bracket that is never closed
    ("a: [1, 2\n", 1, "`]`"),
    ("x: 1\na: [1, 2,\n  3\nb: 2\n", 2, "`]`"),
    ("a: *nope\n", 1, "anchor"),
    ("a: 'unclosed\n", 1, "quote"),
    ("a: 1\n---\nb: 2\n", 2, "one spec per file"),
])
def test_syntax_errors_E005(text, line, hint_part):
    with pytest.raises(SpecError) as info:
        parse(text)
    (d,) = info.value.diagnostics
    assert d.code == "E005" and d.loc.line == line
    if hint_part:
        assert hint_part in d.hint


def test_problems_are_collected():
    found = problems("a: 1\na: 2\nb: !!python/tuple [1]\nc: " + "9" * 5000 + "\n")
    assert [c for c, _, _ in found] == ["E007", "E008", "E012"]


# ---------------------------------------------------------------------------------------------- files

def test_binary_file_E003(tmp_path):
    assert file_problems(tmp_path, b"a: 1\nb: \x00\x01\n") == [("E003", 2, 1)]


def test_utf16_file_is_binary(tmp_path):
    assert [c for c, _, _ in file_problems(tmp_path, "a: 1\n".encode("utf-16"))] == ["E003"]


def test_undecodable_file_E003_at_the_byte(tmp_path):
    found = file_problems(tmp_path, b"a: 1\nbb: caf\xe9\n")
    assert found == [("E003", 2, 8)]


@pytest.mark.parametrize("data", [b"", b"\n\n", b"# only a comment\n", b"   \n  # x\n"])
def test_empty_file_E004(tmp_path, data):
    assert [c for c, _, _ in file_problems(tmp_path, data)] == ["E004"]


def test_byte_order_mark_is_accepted(tmp_path):
    assert load_bytes(tmp_path, b"\xef\xbb\xbfa: 1\n") == {"a": 1}


def test_file_size_budget_E002(tmp_path):
    found = file_problems(tmp_path, b"a: 1\n" + b"#" * yamlsrc.MAX_BYTES)
    assert [c for c, _, _ in found] == ["E002"]


def test_missing_file_and_folder_E001(tmp_path):
    with pytest.raises(SpecError) as info:
        yamlsrc.load_file(tmp_path / "nope.yaml", Sources(), "nope.yaml")
    assert info.value.diagnostics[0].code == "E001"
    with pytest.raises(SpecError) as info:
        yamlsrc.load_file(tmp_path, Sources(), "dir")
    assert info.value.diagnostics[0].code == "E001"


def test_sources_remember_the_text(tmp_path):
    sources = Sources()
    path = tmp_path / "f.yaml"
    path.write_text("a: 1\nb: 2\n")
    yamlsrc.load_file(path, sources, "f.yaml")
    assert sources.line("f.yaml", 2) == "b: 2"
    assert sources.line("f.yaml", 3) is None


@pytest.mark.parametrize("data", [b"\xff\xfe\x00\x00garbage", b"\x89PNG\r\n\x1a\n\x00\x00", bytes(range(256))])
def test_binary_files_via_cli(tmp_path, cli, data):
    path = tmp_path / "bin.yaml"
    path.write_bytes(data)
    r = cli("validate", path)
    assert r.code == 2
    assert "error[E003]" in r.err
    assert "Traceback" not in r.err
