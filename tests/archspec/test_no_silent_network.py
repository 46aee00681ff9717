"""Issue "No silent wrong network": each case a user met, at the user's own line, never `ok` for another network.

1. a misspelled param in a spec file; 2. `extends` beside an import that re-imports the library, and an edit of
a block the parent brings; 3. a `network:` list in an extending spec; 4. library problems reported at the user's
line, and no follow-on E312; 5. typed params (`--set n=abc`, `n=3.5`), checked where the value is given.
"""

from __future__ import annotations

import textwrap

import pytest

import archspec
from archspec.lang.spec import load_spec
from spec_helpers import STEM_LIB, problems, write  # tests/ is on pytest's pythonpath


# ------------------------------------------------------------------------------ 1. a misspelled param is refused

def test_a_misspelled_param_in_an_extending_spec_is_E207_at_its_line_with_the_near_miss(tmp_path, cli):
    path = write(tmp_path, "optb_typo.yaml", """\
        archspec: 1
        name: optB20
        extends: archspec:cifar_resnet20.yaml
        params: {shortcutt: B}
        """)
    [d] = problems(path)
    assert (d.code, d.loc.file, d.loc.line, d.loc.col) == ("E207", str(path), 4, 10)
    assert d.hint == "did you mean `shortcut`?"
    assert cli("validate", str(path)).code == 2
    r = cli("diff", "cifar_resnet20", str(path))
    assert r.code == 2 and "E207" in r.err and "equal" not in r.out


def test_a_misspelled_param_in_a_spec_that_starts_a_chain_is_E214_with_the_near_miss(tmp_path):
    path = write(tmp_path, "mine.yaml", """\
        archspec: 1
        imports: ["archspec:lib/resnet.yaml"]
        input: [3, 32, 32]
        params: {widths: [16, 32], depths: [1, 1], shortcutt: A}
        network:
          - conv1: {op: conv, out: 16, kernel: 3, pad: 1}
          - layer1: {use: stack, at: 0}
          - layer2: {use: stack, at: 1, stride: 2}
        """)
    [d] = problems(path)
    assert (d.code, d.loc.line) == ("E214", 4)
    assert d.hint.startswith("did you mean `shortcut`?")


def test_a_new_param_of_an_extending_spec_is_declared_with_a_type(tmp_path):
    path = write(tmp_path, "s.yaml", """\
        archspec: 1
        extends: archspec:cifar_resnet20.yaml
        params:
          k: {type: int, default: 2, min: 1, doc: widening}
          widths: =[16 * k, 32 * k, 64 * k]
        """)
    spec = load_spec(path)
    assert spec.params["widths"] == [32, 64, 128]
    [d] = problems(path, "k=0")
    assert (d.code, str(d.loc), d.message) == ("E213", "--set k", "param `k` must be at least 1, got 0")


def test_a_setting_this_network_has_no_use_for_is_E214_naming_the_blocks_that_read_it(cli):
    r = cli("validate", "resnet18", "--set", "stride_on=3x3")
    assert r.code == 2
    assert "--set stride_on: error[E214]: `stride_on` is set here, but nothing in this network reads it" in r.err
    assert "`bottleneck`" in r.err
    # read, but without effect: avg_down needs projection shortcuts (a constraint of the library says so)
    r = cli("validate", "cifar_resnet20", "--set", "avg_down=true")
    assert r.code == 2 and "avg_down changes projection shortcuts, and option A has none" in r.err
    # read only by the name: the network is built from n
    r = cli("validate", "cifar_resnet20", "--set", "depth=20")
    assert r.code == 2 and "E214" in r.err and "only the spec's name or description reads it" in r.err


def test_an_unread_setting_in_a_child_file_is_E214_at_its_line(tmp_path):
    path = write(tmp_path, "s.yaml", """\
        archspec: 1
        extends: archspec:resnet18.yaml
        params:
          groups: 32
        """)
    [d] = problems(path)
    assert (d.code, d.loc.line, d.loc.col) == ("E214", 4, 11)


# ------------------------------------------------------------- 2. merging: an import again never resets a parent



def test_an_import_that_re_imports_the_library_keeps_the_parents_settings_and_edits_its_blocks(tmp_path):
    write(tmp_path, "stemlib.yaml", STEM_LIB)
    path = write(tmp_path, "s.yaml", """\
        archspec: 1
        extends: archspec:resnet50d.yaml
        imports: [stemlib.yaml]
        """)
    spec = load_spec(path)
    assert spec.params["block"] == "bottleneck" and spec.params["stem"] == "deep" and spec.params["avg_down"]
    assert spec.description.startswith("ResNet-50-D")
    mine, parent = archspec.compile(path), archspec.compile("resnet50d")
    assert mine.graph.node("conv1.0").attrs["out"] == 24
    assert parent.graph.node("conv1.0").attrs["out"] == 32
    # only the stem's first conv and the one after it change: every block of the parent is there
    assert mine.graph.number_of_nodes() == parent.graph.number_of_nodes()
    assert 0 < parent.params - mine.params < 20_000
    order = [f.rsplit("/", 1)[-1] for f, _ in spec.merge_order]
    assert order.count("resnet.yaml") == 1 and order[-2:] == ["stemlib.yaml", "s.yaml"]


def test_the_library_edit_without_the_re_import_edits_the_parents_block(tmp_path):
    write(tmp_path, "stemlib.yaml", textwrap.dedent(STEM_LIB).replace('imports: ["archspec:lib/resnet.yaml"]\n', ""))
    path = write(tmp_path, "s.yaml", "archspec: 1\nextends: archspec:resnet50d.yaml\nimports: [stemlib.yaml]\n")
    assert archspec.compile(path).graph.node("conv1.0").attrs["out"] == 24


def test_explain_origin_says_where_each_param_and_block_came_from(tmp_path, cli):
    write(tmp_path, "stemlib.yaml", STEM_LIB)
    path = write(tmp_path, "s.yaml", "archspec: 1\nextends: archspec:resnet50d.yaml\nimports: [stemlib.yaml]\n")
    r = cli("explain", "--origin", str(path), "deep_stem")
    assert r.code == 0, r.err
    assert "defined" in r.out and "lib/resnet.yaml" in r.out and "edited    " in r.out and "stemlib.yaml:4:3" in r.out
    r = cli("explain", "--origin", str(path), "stem")
    assert "declared" in r.out and "resnet50d.yaml" in r.out and 'stem = "deep"' in r.out
    r = cli("explain", "--origin", "cifar_resnet20", "n", "--set", "n=5")
    assert r.out.splitlines()[-1].split() == ["--set", "--set", "n", "5"]
    r = cli("explain", "--origin", "cifar_resnet20", "shortcutt")
    assert r.code == 2 and "did you mean `shortcut`?" in r.err


# ---------------------------------------------------------------- 3. an extending spec edits its parent's network

def test_a_network_list_over_a_parent_is_E216_showing_the_edit_syntax(tmp_path):
    path = write(tmp_path, "s.yaml", """\
        archspec: 1
        extends: archspec:cifar_resnet20.yaml
        network:
          - conv1: {op: conv, out: 16, kernel: 3, pad: 1, stage: conv1}
        """)
    [d] = problems(path)
    assert (d.code, d.loc.line) == ("E216", 3)
    assert "network: {edit: {conv1: {...}}}" in d.hint and "network: {replace: [...]}" in d.hint


def test_network_edits_change_items_of_the_parents_network(tmp_path):
    path = write(tmp_path, "s.yaml", """\
        archspec: 1
        extends: archspec:cifar_resnet20.yaml
        params: {shortcut: B}
        network:
          edit:
            conv1: {out: 32}
          insert_after:
            relu: [{drop: {op: dropout, p: 0.1}}]
        """)
    c, parent = archspec.compile(path), archspec.compile("cifar_resnet20", shortcut="B")
    assert c.graph.node("conv1").attrs["out"] == 32 and c.graph.node("drop").op == "dropout"
    assert list(c.graph.predecessors("drop")) == ["relu"] and list(c.graph.predecessors("layer1.0.conv1")) == ["drop"]
    # the rest of the parent's network is there (layer1.0 now projects its shortcut: 16 -> 32 channels... to 16)
    assert set(parent.graph.nodes) - set(c.graph.nodes) == {"layer1.0.downsample"}


def test_a_network_edit_that_names_no_item_is_E305_with_the_near_miss(tmp_path):
    path = write(tmp_path, "s.yaml", """\
        archspec: 1
        extends: archspec:cifar_resnet20.yaml
        network:
          edit:
            conv: {out: 32}
        """)
    [d] = problems(path)
    assert (d.code, d.message, d.hint) == ("E305", "the network has no item `conv`", "did you mean `conv1`?")


def test_replacing_the_network_is_said_explicitly(tmp_path):
    path = write(tmp_path, "s.yaml", """\
        archspec: 1
        extends: archspec:cifar_resnet20.yaml
        description: one conv and a classifier, with cifar_resnet20's recipe
        network:
          replace:
            - conv1: {op: conv, out: 16, kernel: 3, pad: 1, stage: conv1}
            - pool: {op: global_avgpool}
            - flatten: {op: flatten}
            - fc: {op: linear, out: =num_classes}
        """)
    assert archspec.compile(path).graph.number_of_nodes() == 5


def test_a_replaced_network_needs_its_own_description(tmp_path):
    path = write(tmp_path, "s.yaml", """\
        archspec: 1
        extends: archspec:cifar_resnet20.yaml
        network:
          replace:
            - pool: {op: global_avgpool}
            - flatten: {op: flatten}
            - fc: {op: linear, out: =num_classes}
        """)
    [d] = problems(path)
    assert (d.code, d.loc.line, d.loc.col) == ("E216", 4, 3)
    assert "give this spec its own `description:`" in d.hint and "ResNet-${depth} for CIFAR-10" in d.hint


def test_network_edits_in_a_spec_that_extends_nothing_are_E216(tmp_path):
    path = write(tmp_path, "s.yaml", "archspec: 1\ninput: [3, 8, 8]\nnetwork:\n  edit:\n    conv1: {out: 3}\n")
    [d] = problems(path)
    assert d.code == "E216" and "no file merged before this one has a network" in d.message


# ------------------------------------------------------------------------------ 4. the user's line comes first

def test_a_channel_mismatch_from_a_block_edit_is_reported_at_the_edit(tmp_path):
    path = write(tmp_path, "wide20.yaml", """\
        archspec: 1
        name: wide20
        extends: archspec:cifar_resnet20.yaml
        blocks:
          basic:
            edit:
              conv2:
                out: =width * 2
        """)
    [d] = problems(path)
    assert (d.code, d.loc.file, d.loc.line) == ("E400", str(path), 8)
    notes = [m for _, m in d.notes]
    assert "this line sets `out` of `layer1.0.conv2`, which feeds `layer1.0.add`" in notes
    library = [loc for loc, m in d.notes if m == "where the problem shows"]
    assert library and library[0].file.endswith("lib/resnet.yaml")
    assert not any("needed by" in m for m in notes)  # the shortcut's condition has nothing to do with it


def test_a_shape_problem_from_a_network_edit_is_reported_at_the_edit(tmp_path):
    path = write(tmp_path, "s.yaml", """\
        archspec: 1
        extends: archspec:cifar_resnet20.yaml
        network:
          edit:
            conv1: {out: 32}
          insert_after:
            relu: [{drop: {op: dropout, p: 0.1}}]
        """)
    [d] = problems(path)
    assert (d.code, d.loc.line, d.loc.col) == ("E401", 5, 18)


def test_a_typo_in_an_edit_gives_one_E305_and_no_follow_on_E312(tmp_path):
    path = write(tmp_path, "s.yaml", """\
        archspec: 1
        extends: archspec:cifar_resnet20.yaml
        blocks:
          basic:
            edit:
              add: {in: [drop_path, downsampel]}
        """)
    found = problems(path)
    assert [d.code for d in found] == ["E305"] and found[0].hint == "did you mean `downsample`?"


# ----------------------------------------------------------------------------------------- 5. params have types

@pytest.mark.parametrize("value, message", [
    ("abc", "param `n` must be a whole number, got `abc`"),
    ("3.5", "param `n` must be a whole number, got 3.5"),
    ("0", "param `n` must be at least 1, got 0"),
])
def test_a_set_value_of_the_wrong_type_is_one_error_at_the_set(value, message, cli):
    r = cli("validate", "cifar_resnet", "--set", f"n={value}")
    assert r.code == 2
    assert r.err.strip().splitlines() == [f"--set n: error[E213]: {message}",
                                          "   = note: `n` is declared here (specs/cifar_resnet.yaml:11:3)",
                                          "   = help: `n` is int, at least 1 (blocks per stage)"] or \
        (r.err.count("error[") == 1 and f"--set n: error[E213]: {message}" in r.err)


def test_a_value_of_the_wrong_type_in_a_file_is_reported_at_its_line(tmp_path):
    path = write(tmp_path, "s.yaml", "archspec: 1\nextends: archspec:resnet50.yaml\nparams: {stride_on: 2x2}\n")
    [d] = problems(path)
    assert (d.code, d.loc.line, d.message) == ("E213", 3, "param `stride_on` must be one of 1x1, 3x3, got `2x2`")


def test_a_computed_value_of_the_wrong_type_is_reported_at_the_expression(tmp_path):
    path = write(tmp_path, "s.yaml", "archspec: 1\nextends: archspec:cifar_resnet20.yaml\nparams: {n: =7 / 2}\n")
    [d] = problems(path)
    assert d.code == "E213" and d.loc.line == 3 and "computed from `=7 / 2`" in d.message


def test_a_set_string_is_the_text_given(tmp_path):
    path = write(tmp_path, "s.yaml", """\
        archspec: 1
        extends: archspec:cifar_resnet20.yaml
        params:
          tag: {type: str, default: x}
        name: r20_${tag}
        """)
    assert load_spec(path, ["tag=on"]).name == "r20_on"
    assert load_spec(path, ["tag=0x10"]).name == "r20_0x10"
    assert archspec.load(path, tag="on").name == "r20_on"


def test_a_block_param_names_a_block(cli):
    r = cli("validate", "resnet50", "--set", "block=bottlenek")
    assert r.code == 2 and "param `block` must be the name of a block" in r.err and "`bottleneck`" in r.err


def test_a_param_declared_twice_is_E215(tmp_path):
    path = write(tmp_path, "s.yaml", """\
        archspec: 1
        extends: archspec:cifar_resnet20.yaml
        params:
          n: {type: int, default: 4}
        """)
    [d] = problems(path)
    assert d.code == "E215" and "n: VALUE" in d.hint


def test_an_edit_of_a_block_the_network_never_uses_is_E317(tmp_path):
    path = write(tmp_path, "s.yaml", """\
        archspec: 1
        extends: archspec:resnet18.yaml
        blocks:
          bottleneck:
            edit:
              conv2: {groups: 4}
        """)
    [d] = problems(path)
    assert (d.code, d.loc.line) == ("E317", 4) and "`basic`" in d.hint
    # the same edit where the block is used changes the network
    used = write(tmp_path, "u.yaml", (tmp_path / "s.yaml").read_text().replace("resnet18", "resnet50"))
    assert archspec.compile(used).graph.node("layer1.0.conv2").attrs["groups"] == 4
