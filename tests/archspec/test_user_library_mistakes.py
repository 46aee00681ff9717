"""Mistakes in files a user wrote that reach the network through a library, a `use:` argument or a list param:
each is refused at the user's own line (never `ok` for another network, never only at a line of a shipped file).

- a misspelled param declared in a library the user wrote and imports (E214 with the near miss);
- an edit, in such a library, of a block that the network never uses (E317);
- a `use:` argument that breaks a default of the block it chooses (at the argument, the library line a note);
- a value that breaks a parent's constraint (at the value, the constraint a note);
- list params with typed items and a range (at the `--set` or the line that gives the list).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from archspec.compiler.expand import expand
from archspec.lang.spec import load_spec
from spec_helpers import STEM_LIB, problems, write  # tests/ is on pytest's pythonpath


def builds(ref, *overrides: str):
    return expand(load_spec(ref, list(overrides)), check_shapes=True)


# ------------------------------------------------------------------ a misspelled param in the user's own library

@pytest.mark.parametrize("parent, typo, meant", [("cifar_resnet20", "shortcutt: C", "shortcut"),
                                                  ("resnet50", "groupz: 4", "groups")])
def test_a_misspelled_param_in_a_library_of_ones_own_is_E214_with_the_near_miss(tmp_path, cli, parent, typo, meant):
    write(tmp_path, "mylib.yaml", f"""\
        archspec: 1
        params:
          {typo}
        """)
    spec = write(tmp_path, "s.yaml", f"""\
        archspec: 1
        extends: archspec:{parent}.yaml
        imports: [mylib.yaml]
        """)
    [d] = problems(spec)
    assert (d.code, Path(d.loc.file).name, d.loc.line, d.loc.col) == ("E214", "mylib.yaml", 3, 3)
    assert f"did you mean `{meant}`?" in d.hint
    r = cli("diff", parent, str(spec))
    assert r.code == 2 and "E214" in r.err and "equal" not in r.out


def test_a_library_of_ones_own_may_declare_params_its_blocks_read(tmp_path):
    write(tmp_path, "mylib.yaml", """\
        archspec: 1
        params:
          stem_out: {type: int, default: 8, min: 1, doc: the width of the stem's conv}
          spare_words: {type: int, default: 3, doc: kept for later}
        blocks:
          narrow_stem:
            body:
              - conv: {op: conv, out: =stem_out, kernel: 3, pad: 1}
        """)
    spec = write(tmp_path, "s.yaml", """\
        archspec: 1
        extends: archspec:cifar_resnet20.yaml
        imports: [mylib.yaml]
        network:
          edit:
            conv1: {use: narrow_stem, op: null, out: null, kernel: null, pad: null, stride: null}
        """)
    graph = builds(spec)  # `spare_words` is declared with its type, near no param: the library's own word
    assert graph.nodes["conv1.conv"].attrs["out"] == 8


def test_a_plain_value_in_a_library_of_ones_own_that_nothing_reads_is_E214(tmp_path):
    """`nnn: 3` (a typo of `n` too far for a near miss) reads as a setting; a new word is declared with its type."""
    write(tmp_path, "mylib.yaml", "archspec: 1\nparams:\n  nnn: 3\n")
    spec = write(tmp_path, "s.yaml", "archspec: 1\nextends: archspec:cifar_resnet20.yaml\nimports: [mylib.yaml]\n")
    [d] = problems(spec)
    assert (d.code, Path(d.loc.file).name, d.loc.line) == ("E214", "mylib.yaml", 3)
    assert "{type: ..., default: ...}" in d.hint


def test_a_shipped_library_imported_directly_is_not_checked_as_the_users(tmp_path):
    spec = write(tmp_path, "s.yaml", """\
        archspec: 1
        imports: ["archspec:lib/resnet.yaml"]
        input: [3, 32, 32]
        params: {widths: [16], depths: [1]}
        network:
          - conv1: {op: conv, out: 16, kernel: 3, pad: 1}
          - layer1: {use: stack, at: 0}
        """)
    assert builds(spec).nodes["layer1.0.conv1"].attrs["out"] == 16


# ------------------------------------------------------------- an edit in the user's library of an unused block

def test_an_edit_in_a_library_of_ones_own_of_a_block_the_network_never_uses_is_E317(tmp_path, cli):
    write(tmp_path, "stemlib.yaml", STEM_LIB)
    spec = write(tmp_path, "mine.yaml", """\
        archspec: 1
        extends: archspec:seresnext50_32x4d.yaml
        imports: [stemlib.yaml]
        """)
    [d] = problems(spec)
    assert (d.code, Path(d.loc.file).name, d.loc.line) == ("E317", "stemlib.yaml", 4)
    assert "deep_stem" in d.message
    r = cli("diff", "seresnext50_32x4d", str(spec))
    assert r.code == 2 and "equal" not in r.out
    # with the stem that uses the block, the same library edit takes effect
    assert builds(spec, "stem=deep").nodes["conv1.0"].attrs["out"] == 24


# -------------------------------------------------------------- a `use:` argument that breaks a library default

def test_a_use_argument_that_breaks_a_library_default_is_reported_at_the_argument(tmp_path):
    spec = write(tmp_path, "at7.yaml", """\
        archspec: 1
        extends: archspec:resnet18.yaml
        network:
          edit:
            layer2: {at: 7}
        """)
    ds = problems(spec)
    assert len(ds) == 1
    [d] = ds
    assert (d.code, Path(d.loc.file).name, d.loc.line, d.loc.col) == ("E204", "at7.yaml", 5, 18)
    where = [loc for loc, _ in d.notes if loc is not None]
    assert any("lib/resnet.yaml" in loc.file for loc in where)


def test_a_use_argument_of_ones_own_item_is_blamed_there(tmp_path):
    spec = write(tmp_path, "own.yaml", """\
        archspec: 1
        imports: ["archspec:lib/resnet.yaml"]
        input: [3, 32, 32]
        params: {widths: [16, 32], depths: [1, 1]}
        network:
          - conv1: {op: conv, out: 16, kernel: 3, pad: 1}
          - layer1: {use: stack, at: 5}
        """)
    [d] = problems(spec)
    assert (Path(d.loc.file).name, d.loc.line) == ("own.yaml", 7)


def test_a_value_that_breaks_a_parents_constraint_is_reported_at_the_value(tmp_path):
    spec = write(tmp_path, "widths.yaml", """\
        archspec: 1
        extends: archspec:resnet50.yaml
        params:
          widths: [64, 128, 256]
        """)
    [d] = problems(spec)
    assert (d.code, Path(d.loc.file).name, d.loc.line) == ("E206", "widths.yaml", 4)
    assert any(loc is not None and loc.file.endswith("resnet50.yaml") for loc, _ in d.notes)


def test_a_set_value_that_breaks_a_constraint_is_reported_at_the_set():
    [d] = problems("resnet50", "widths=[64, 128, 256]")
    assert d.code == "E206" and d.loc.file == "--set widths"


# ----------------------------------------------------------------------------- list params with typed items

@pytest.mark.parametrize("override, message", [
    ("widths=[a, b, c, d]", "param `widths` must be a list of whole numbers"),
    ("depths=[2, 2, 2, 2.5]", "param `depths` must be a list of whole numbers"),
    ("depths=[2, 2, 0, 2]", "param `depths` must be a list of whole numbers at least 1"),
    ("drop_path_rate=1.5", "param `drop_path_rate` must be below 1"),
    ("drop_path_rate=1", "param `drop_path_rate` must be below 1"),
])
def test_a_list_or_range_error_through_set_is_one_error_at_the_set(override, message):
    ds = problems("resnet18", override)
    assert len(ds) == 1, [str(d) for d in ds]
    [d] = ds
    assert d.code == "E213" and d.loc.file == "--set " + override.split("=")[0]
    assert message in d.message


def test_a_list_item_of_the_wrong_type_in_a_file_is_reported_at_its_line(tmp_path):
    spec = write(tmp_path, "d.yaml", """\
        archspec: 1
        extends: archspec:resnet50.yaml
        params:
          depths: [3, 4, six, 3]
        """)
    [d] = problems(spec)
    assert (d.code, d.loc.line) == ("E213", 4)
    assert "item 3 is `six`" in d.message


def test_declared_items_and_bounds_are_described(cli):
    r = cli("explain", "--origin", "resnet50", "depths")
    assert r.code == 0 and "list of int, at least 1" in r.out
    r = cli("explain", "--origin", "resnet50", "drop_path_rate")
    assert r.code == 0 and "below 1" in r.out


def test_item_declarations_are_checked_in_block_params_too(tmp_path):
    spec = write(tmp_path, "b.yaml", """\
        archspec: 1
        input: [3, 8, 8]
        blocks:
          convs:
            params:
              outs: {type: list, items: {type: int, min: 1}}
            body:
              - repeat: =len(outs)
                op: conv
                out: =outs[index]
                kernel: 3
                pad: 1
        network:
          - c: {use: convs, outs: [4, 0]}
        """)
    [d] = problems(spec)
    assert d.code == "E304" and d.loc.line == 14 and "at least 1" in d.message


# ------------------------------------------------------------- a run's resolved spec.yaml declares every param

@pytest.mark.parametrize("name", ["cifar_resnet20", "resnet18", "timm/ecaresnet50d_pruned"])
def test_a_resolved_spec_declaring_params_its_network_never_reads_still_loads(tmp_path, name):
    """A run folder's spec.yaml inlines every param of its spec (`stride_on` of a net of basic blocks included):
    those are the spec's own vocabulary, never E214, or resume, eval and predict of a run would fail."""
    from archspec.runtime.plan import resolved_spec_yaml

    path = tmp_path / "spec.yaml"
    path.write_text(resolved_spec_yaml(load_spec(name), {}))
    again = builds(path)
    assert again.nodes.keys() == builds(name).nodes.keys()
    assert name != "resnet18" or "stride_on" in path.read_text()
