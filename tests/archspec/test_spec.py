"""Resolved specs: params, `--set` overrides, constraints, `extends`/`imports`, lookup by name, input shapes."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from archspec.lang.diagnostics import SpecError
from archspec.lang.resolve import available_specs, locate, packaged_specs_dir
from archspec.lang.spec import load_spec, parse_overrides, parse_shape

NET = "network:\n  - fc: {op: linear, out: 2}\n"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def spec_file(tmp_path: Path, body: str, name: str = "s.yaml") -> Path:
    """A spec with an input shape and a one-layer network around `body` (params, constraints, ...)."""
    return write(tmp_path / name, "archspec: 1\ninput: [3, 8, 8]\n" + textwrap.dedent(body) + NET)


def diags(ref, *overrides, **kw) -> list:
    with pytest.raises(SpecError) as info:
        load_spec(ref, overrides, **kw)
    return info.value.diagnostics


def where(d) -> tuple:
    return d.code, d.loc.line, d.loc.col


# ---------------------------------------------------------------------------------------------- params

def test_params_in_dependency_order_regardless_of_file_order(tmp_path):
    path = spec_file(tmp_path, """\
        params:
          total: =depth + extra
          depth: =6 * n + 2
          extra: =n * 10
          n: 3
        """)
    spec = load_spec(path)
    assert spec.params == {"total": 50, "depth": 20, "extra": 30, "n": 3}
    assert spec.param_locs["depth"].line == 5


def test_params_may_be_any_yaml_value(tmp_path):
    path = spec_file(tmp_path, """\
        params:
          widths: [16, 32]
          opts: {a: 1, b: '${n}x'}
          first: =widths[0] * opts.a
          n: 2
          text: plain
        """)
    assert load_spec(path).params == {"widths": [16, 32], "opts": {"a": 1, "b": "2x"}, "first": 16, "n": 2,
                                      "text": "plain"}


def test_param_cycle_E205(tmp_path):
    path = spec_file(tmp_path, """\
        params:
          a: =b + 1
          b: =c + 1
          c: =a + 1
          d: 4
        """)
    found = diags(path)
    assert [where(d) for d in found] == [("E205", 4, 6)]
    assert "a -> b -> c -> a" in found[0].message


def test_param_reading_itself_E205(tmp_path):
    found = diags(spec_file(tmp_path, "params:\n  n: =n + 1\n"))
    assert [d.code for d in found] == ["E205"]
    assert "n -> n" in found[0].message


def test_param_error_points_inside_the_expression(tmp_path):
    found = diags(spec_file(tmp_path, "params:\n  n: 3\n  depth: =6 * nn + 2\n"))
    assert [where(d) for d in found] == [("E201", 5, 15)]
    assert found[0].hint == "did you mean `n`?"


def test_each_failing_param_is_reported_once(tmp_path):
    found = diags(spec_file(tmp_path, "params:\n  a: =1 / 0\n  b: =a + 1\n  c: =a * 2\n  d: =zz\n"))
    assert sorted(d.code for d in found) == ["E201", "E202"]


# ---------------------------------------------------------------------------------------------- overrides

CIFAR_LIKE = """\
    params:
      n: 3
      depth: =6 * n + 2
      shortcut: A
      x: 5
      flag: false
    constraints:
      - check: depth == 6 * n + 2
        message: "depth must be 6n+2, got ${depth} with n=${n}"
      - check: n < 100
        message: "n too big: ${n}"
    """


def test_set_overrides_a_number_and_recomputes_dependents(tmp_path):
    spec = load_spec(spec_file(tmp_path, CIFAR_LIKE), ["n=7"])
    assert (spec.params["n"], spec.params["depth"]) == (7, 44)
    assert spec.overrides == {"n": 7}


def test_set_string_and_bool(tmp_path):
    spec = load_spec(spec_file(tmp_path, CIFAR_LIKE), ["shortcut=C", "flag=true"])
    assert spec.params["shortcut"] == "C" and spec.params["flag"] is True


def test_set_expression_form(tmp_path):
    spec = load_spec(spec_file(tmp_path, CIFAR_LIKE), ["x==1+2", "shortcut=='B' if n > 1 else 'A'"])
    assert spec.params["x"] == 3 and spec.params["shortcut"] == "B"


def test_set_text_that_looks_like_an_expression_is_checked_against_the_type_not_computed(tmp_path):
    found = diags(spec_file(tmp_path, CIFAR_LIKE), "x=1+2")
    assert [d.code for d in found] == ["E213"] and str(found[0].loc) == "--set x"
    assert found[0].message == "param `x` must be a whole number, got `1+2`"


def test_set_expression_error(tmp_path):
    found = diags(spec_file(tmp_path, CIFAR_LIKE), "x==1/0")
    assert [d.code for d in found] == ["E202"]
    assert "--set x" in str(found[0].loc)


@pytest.mark.parametrize("item", ["garbage", "=3", "1n=3", "n", "-n=3", "n.x=3"])
def test_malformed_set_E207(tmp_path, item):
    found = diags(spec_file(tmp_path, CIFAR_LIKE), item)
    assert [d.code for d in found] == ["E207"]
    assert "name=value" in found[0].message


def test_set_unknown_param_E207_with_suggestion(tmp_path):
    found = diags(spec_file(tmp_path, CIFAR_LIKE), "shortcat=C")
    assert [d.code for d in found] == ["E207"]
    assert found[0].hint == "did you mean `shortcut`?"


def test_set_values_are_read_as_the_params_type():
    from archspec.lang.params import ParamDecl
    from archspec.lang.spec import typed_override

    given, problems = parse_overrides(["a=200", "b=C", "c=true", "d='q'", "e=1.5", "f=-3", "g=", "h=[1"])
    assert problems == []
    untyped = ParamDecl("x", "any", None, None, None, None, None, None, "f", "top", False)
    assert {k: typed_override(untyped, v) for k, (v, _) in given.items()} == {
        "a": 200, "b": "C", "c": True, "d": "q", "e": 1.5, "f": -3, "g": "", "h": "[1"}
    text = ParamDecl("x", "str", None, None, None, None, None, None, "f", "top", True)
    assert [typed_override(text, v) for v in ("on", "0x10", "3", "=1+1")] == ["on", "0x10", "3", "=1+1"]


def test_set_yaml_tag_is_not_constructed(tmp_path):
    given, _ = parse_overrides(["x=!!python/object/apply:os.system ['echo hacked']"])
    assert isinstance(given["x"][0], str)


def test_set_on_a_shipped_spec(cli):
    r = cli("validate", "cifar_resnet", "--set", "n=200")
    assert r.code == 0, r.err
    assert "cifar_resnet1202" in r.out


# ---------------------------------------------------------------------------------------------- constraints

def test_constraint_E206_with_interpolated_message(tmp_path):
    path = spec_file(tmp_path, CIFAR_LIKE)
    found = diags(path, "n=200")
    assert [where(d) for d in found] == [("E206", 12, 12)]
    assert found[0].message == "n too big: 200"
    assert "n < 100" in found[0].hint


def test_every_failing_constraint_is_reported(tmp_path):
    found = diags(spec_file(tmp_path, CIFAR_LIKE), "n=200", "depth=7")
    assert [d.message for d in found] == ["depth must be 6n+2, got 7 with n=200", "n too big: 200"]
    assert [d.loc.line for d in found] == [10, 12]


def test_constraint_with_a_bad_expression(tmp_path):
    found = diags(spec_file(tmp_path, "params: {n: 1}\nconstraints:\n  - check: nn > 0\n    message: x\n"))
    assert [where(d) for d in found] == [("E201", 5, 12)]


def test_constraint_check_may_start_with_equals(tmp_path):
    found = diags(spec_file(tmp_path, "params: {n: 1}\nconstraints:\n  - check: =n > 1\n    message: nope\n"))
    assert [d.code for d in found] == ["E206"]


# ---------------------------------------------------------------------------------------------- extends

BASE = """\
    archspec: 1
    name: basenet
    input: [3, 32, 32]
    params:
      n: 2
      opts: {a: 1, b: 2}
      lst: [1, 2, 3]
    constraints:
      - check: n >= 1
        message: "base: n=${n}"
    blocks:
      blk:
        params:
          width: {type: int, default: 8}
          k: {type: int, default: 3}
        body:
          - conv: {op: conv, out: =width, kernel: =k, pad: 1}
    network:
      - b: {use: blk}
      - gp: {op: global_avgpool}
      - fl: {op: flatten}
      - fc: {op: linear, out: 10}
    """


def test_extends_merges_mappings_and_replaces_lists(tmp_path):
    write(tmp_path / "base.yaml", BASE)
    child = write(tmp_path / "child.yaml", """\
        archspec: 1
        extends: base.yaml
        params:
          opts: {b: 5}
          lst: [9]
        """)
    spec = load_spec(child)
    assert spec.params == {"n": 2, "opts": {"a": 1, "b": 5}, "lst": [9]}
    assert spec.name == "basenet"  # inherited
    assert spec.input_shape == (3, 32, 32)
    assert spec.param_locs["lst"].file.endswith("child.yaml")
    assert spec.param_locs["n"].file.endswith("base.yaml")


def test_extends_constraints_accumulate(tmp_path):
    write(tmp_path / "base.yaml", BASE)
    child = write(tmp_path / "child.yaml", """\
        archspec: 1
        extends: base.yaml
        constraints:
          - check: n < 2
            message: "child: n=${n}"
        """)
    assert [d.message for d in diags(child)] == ["child: n=2"]
    found = diags(child, "n=0")
    assert [d.message for d in found] == ["base: n=0"]
    assert found[0].loc.file.endswith("base.yaml")


def test_extends_chain_and_name_override(tmp_path):
    write(tmp_path / "base.yaml", BASE)
    write(tmp_path / "mid.yaml", "archspec: 1\nextends: base.yaml\nparams: {n: 3}\n")
    top = write(tmp_path / "top.yaml", "archspec: 1\nextends: mid.yaml\nname: net${n}\n")
    spec = load_spec(top)
    assert spec.name == "net3" and spec.params["n"] == 3
    assert [Path(f).name for f in spec.files] == ["top.yaml", "mid.yaml", "base.yaml"]


def test_spec_without_name_is_named_after_its_file(tmp_path):
    assert load_spec(spec_file(tmp_path, "", name="my_net.yaml")).name == "my_net"


def test_extends_can_change_one_block_param_default(tmp_path):
    write(tmp_path / "base.yaml", BASE)
    child = write(tmp_path / "child.yaml", """\
        archspec: 1
        extends: base.yaml
        blocks:
          blk:
            params:
              width: {default: 4}
        """)
    spec = load_spec(child)
    params = spec.blocks["blk"]["params"]
    assert params["width"] == {"type": "int", "default": 4} and params["k"] == {"type": "int", "default": 3}


def test_extends_block_replaced_by_child(tmp_path):
    from archspec.compiler.validate import validate

    write(tmp_path / "base.yaml", BASE)
    child = write(tmp_path / "child.yaml", """\
        archspec: 1
        extends: base.yaml
        blocks:
          blk:
            params:
              width: {type: int, default: 4}
            body:
              - conv: {op: conv, out: =width, kernel: 1}
        """)
    result = validate(child)
    assert result.ok, result.diagnostics
    conv = result.expansion.nodes["b.conv"]
    assert (conv.attrs["out"], conv.attrs["kernel"], conv.attrs["pad"]) == (4, 1, 0)  # body list replaced


def test_extends_cycle_E121(tmp_path):
    write(tmp_path / "one.yaml", "archspec: 1\nextends: two.yaml\n")
    write(tmp_path / "two.yaml", "archspec: 1\nextends: one.yaml\ninput: [3, 8, 8]\n" + NET)
    found = diags(tmp_path / "one.yaml")
    assert [d.code for d in found] == ["E121"]
    chain = [Path(p.strip(" `")).name for p in found[0].message.split(": ", 1)[1].split(" -> ")]
    assert chain == ["one.yaml", "two.yaml", "one.yaml"]
    assert (found[0].loc.line, found[0].loc.col) == (2, 10)


def test_extends_itself_E121(tmp_path):
    write(tmp_path / "me.yaml", "archspec: 1\nextends: me.yaml\n")
    assert [d.code for d in diags(tmp_path / "me.yaml")] == ["E121"]


def test_imports_cycle_E121(tmp_path):
    write(tmp_path / "l1.yaml", "archspec: 1\nimports: [l2.yaml]\n")
    write(tmp_path / "l2.yaml", "archspec: 1\nimports: [l1.yaml]\n")
    path = write(tmp_path / "s.yaml", "archspec: 1\nimports: [l1.yaml]\ninput: [3, 8, 8]\n" + NET)
    assert "E121" in [d.code for d in diags(path)]


def test_extends_missing_file_E120_with_suggestion(tmp_path):
    write(tmp_path / "base.yaml", BASE)
    path = write(tmp_path / "child.yaml", "archspec: 1\nextends: bsae.yaml\n")
    found = diags(path)
    assert [where(d) for d in found] == [("E120", 2, 10)]
    assert found[0].hint == "did you mean `base.yaml`?"


@pytest.mark.parametrize("target", ["../outside.yaml", "/etc/passwd", "sub/../../outside.yaml"])
def test_path_escape_E122(tmp_path, target):
    write(tmp_path / "outside.yaml", BASE)
    path = write(tmp_path / "inner" / "s.yaml", f"archspec: 1\nextends: {target}\n")
    found = diags(path)
    assert [where(d) for d in found] == [("E122", 2, 10)]


def test_import_escape_E122(tmp_path):
    write(tmp_path / "lib.yaml", "archspec: 1\nparams: {p: 1}\n")
    path = write(tmp_path / "inner" / "s.yaml", "archspec: 1\nimports: [ok.yaml, ../lib.yaml]\n"
                 "input: [3, 8, 8]\n" + NET)
    write(tmp_path / "inner" / "ok.yaml", "archspec: 1\nparams: {q: 1}\n")
    found = diags(path)
    assert [where(d) for d in found] == [("E122", 2, 20)]


def test_subfolders_are_inside(tmp_path):
    write(tmp_path / "parts" / "base.yaml", BASE)
    path = write(tmp_path / "s.yaml", "archspec: 1\nextends: parts/base.yaml\n")
    assert load_spec(path).name == "basenet"


# ---------------------------------------------------------------------------------------------- imports

def test_imports_bring_params_blocks_and_constraints(tmp_path):
    write(tmp_path / "lib" / "blocks.yaml", """\
        archspec: 1
        params: {width: 16, act: relu}
        constraints:
          - check: width > 8
            message: "width ${width} is too small"
        blocks:
          unit:
            params: {w: {type: int, default: =width}}
            body:
              - conv: {op: conv, out: =w, kernel: 3, pad: 1}
        """)
    path = write(tmp_path / "s.yaml", """\
        archspec: 1
        imports: [lib/blocks.yaml]
        input: [3, 8, 8]
        params: {act: gelu}
        network:
          - u: {use: unit}
          - fc: {op: linear, out: 2}
        """)
    spec = load_spec(path)
    assert spec.params == {"width": 16, "act": "gelu"}  # the spec's own value wins over the library's
    assert "unit" in spec.blocks
    found = diags(path, "width=4")
    assert [d.message for d in found] == ["width 4 is too small"]
    assert found[0].loc.file.endswith("blocks.yaml")


def test_import_of_a_library_defining_a_network_E124(tmp_path):
    write(tmp_path / "lib.yaml", "archspec: 1\n" + NET)
    path = write(tmp_path / "s.yaml", "archspec: 1\nimports: [lib.yaml]\ninput: [3, 8, 8]\n" + NET)
    assert [d.code for d in diags(path)] == ["E124"]


def test_same_block_from_two_libraries_E126(tmp_path):
    block = "archspec: 1\nblocks:\n  same:\n    body:\n      - r: {op: relu}\n"
    write(tmp_path / "l1.yaml", block)
    write(tmp_path / "l2.yaml", block)
    path = write(tmp_path / "s.yaml", "archspec: 1\nimports: [l1.yaml, l2.yaml]\ninput: [3, 8, 8]\n" + NET)
    found = diags(path)
    assert [where(d) for d in found] == [("E126", 3, 3)]
    assert found[0].loc.file.endswith("l2.yaml")


def test_packaged_prefix_works_from_anywhere(tmp_path):
    path = write(tmp_path / "deep" / "s.yaml", """\
        archspec: 1
        imports: [archspec:lib/resnet.yaml]
        input: [3, 32, 32]
        params: {shortcut: A}
        network:
          - s: {use: stack, width: 16, blocks: 2}
          - fc: {op: linear, out: 10}
        """)
    spec = load_spec(path)
    assert spec.params["shortcut"] == "A" and spec.params["block"] == "basic"
    assert {"stack", "basic", "bottleneck", "shortcut", "projection"} <= set(spec.blocks)
    found = diags(path, "shortcut=D")
    assert [d.code for d in found] == ["E213"] and found[0].message == "param `shortcut` must be one of A, B, C, got `D`"


def test_packaged_prefix_missing_file(tmp_path):
    path = write(tmp_path / "s.yaml", "archspec: 1\nimports: [archspec:lib/nope.yaml]\ninput: [3, 8, 8]\n" + NET)
    assert [where(d) for d in diags(path)] == [("E120", 2, 11)]


def test_packaged_prefix_cannot_escape(tmp_path):
    path = write(tmp_path / "s.yaml", "archspec: 1\nimports: ['archspec:../pyproject.toml']\n"
                 "input: [3, 8, 8]\n" + NET)
    assert [d.code for d in diags(path)] == ["E122"]


def test_locate_packaged_prefix():
    assert locate("archspec:lib/resnet.yaml") == packaged_specs_dir() / "lib" / "resnet.yaml"
    with pytest.raises(SpecError) as info:
        locate("archspec:nope.yaml")
    assert info.value.diagnostics[0].code == "E123"


def test_library_or_base_alone_has_no_network_E125():
    assert [d.code for d in diags("archspec:lib/resnet.yaml")] == ["E125"]


# ---------------------------------------------------------------------------------------------- lookup by name

def test_spec_by_name():
    spec = load_spec("resnet50")
    assert spec.name == "resnet50"
    assert spec.path == packaged_specs_dir() / "resnet50.yaml"
    assert spec.params["block"] == "bottleneck"


def test_misspelt_name_E123_with_suggestion():
    found = diags("resnt50")
    assert [d.code for d in found] == ["E123"]
    assert found[0].hint == "did you mean `resnet50`?"


def test_missing_path_E001(tmp_path):
    write(tmp_path / "real.yaml", "archspec: 1\n")
    found = diags(tmp_path / "reel.yaml")
    assert [d.code for d in found] == ["E001"]
    assert found[0].hint == "did you mean `real.yaml`?"


def test_archspec_path_is_searched_first(tmp_path, monkeypatch):
    spec_file(tmp_path, "params: {n: 1}\n", name="resnet50.yaml")
    spec_file(tmp_path, "", name="mynet.yaml")
    monkeypatch.setenv("ARCHSPEC_PATH", str(tmp_path))
    assert available_specs()["mynet"] == tmp_path / "mynet.yaml"
    assert load_spec("resnet50").params == {"n": 1}
    assert diags("mynte")[0].hint == "did you mean `mynet`?"


def test_available_specs_lists_shipped_specs():
    names = available_specs()
    assert {"resnet18", "resnet50", "cifar_resnet", "cifar_resnet1202"} <= set(names)
    assert "resnet" not in names  # lib/ files are not specs


# ---------------------------------------------------------------------------------------------- input shape

@pytest.mark.parametrize("value, shape", [
    ([3, 224, 224], (3, 224, 224)),
    ("3x224x224", (3, 224, 224)),
    ("3X32X32", (3, 32, 32)),
    ("3,32,32", (3, 32, 32)),
    ([10], (10,)),
    ("64", (64,)),
])
def test_parse_shape(value, shape):
    assert parse_shape(value) == shape


@pytest.mark.parametrize("value", [[3, 0, 4], [3, -1, 4], "3x64", [3, 32], [3, 32, 32, 1], "abc", "3xx3", [True, 2, 2],
                                   [3.0, 32, 32], 3, None, {"c": 3}, [2**63, 1, 1], "3x32x32x"])
def test_parse_shape_rejects(value):
    assert parse_shape(value) is None


def test_input_from_the_spec_as_text_or_expression(tmp_path):
    assert load_spec(write(tmp_path / "a.yaml", "archspec: 1\ninput: 3x16x16\n" + NET)).input_shape == (3, 16, 16)
    path = write(tmp_path / "b.yaml", "archspec: 1\nparams: {s: 24}\ninput: =[3, s, s]\n" + NET)
    assert load_spec(path).input_shape == (3, 24, 24)
    assert load_spec(path, ["s=12"]).input_shape == (3, 12, 12)


def test_input_override(tmp_path):
    path = spec_file(tmp_path, "")
    spec = load_spec(path, input_shape="1x64x48")
    assert spec.input_shape == (1, 64, 48)
    assert str(spec.input_loc).startswith("--input")


def test_bad_input_override_E403(tmp_path):
    found = diags(spec_file(tmp_path, ""), input_shape="3x0x4")
    assert [d.code for d in found] == ["E403"]
    assert "--input" in str(found[0].loc)


def test_missing_input_E102(tmp_path):
    found = diags(write(tmp_path / "s.yaml", "archspec: 1\n" + NET))
    assert [d.code for d in found] == ["E102"]
    assert load_spec(tmp_path / "s.yaml", input_shape="3x8x8").input_shape == (3, 8, 8)


def test_bad_input_in_the_spec_E403(tmp_path):
    path = write(tmp_path / "s.yaml", "archspec: 1\nparams: {s: 0}\ninput: =[3, s, s]\n" + NET)
    assert [where(d) for d in diags(path)] == [("E403", 3, 8)]


# ---------------------------------------------------------------------------------------------- error positions

@pytest.mark.parametrize("value, col", [
    ("net${nope}", 12),
    ("'net${nope}'", 13),
    ('"net${nope}"', 13),
    ("=1 +   nope", 14),
    ("'=1 + nope'", 13),
])
def test_expression_error_points_at_the_name(tmp_path, value, col):
    path = write(tmp_path / "p.yaml", f"archspec: 1\ninput: [3, 8, 8]\nparams: {{a: 1}}\nname: {value}\n" + NET)
    assert [where(d) for d in diags(path)] == [("E201", 4, col)]


@pytest.mark.parametrize("value, col", [
    ('"n\\tt${nope}"', 14),
    ("'it''s ${nope}'", 16),
    ('"\\u00e9${nope}"', 16),
])
def test_expression_error_position_in_escaped_strings(tmp_path, value, col):
    path = write(tmp_path / "p.yaml", f"archspec: 1\ninput: [3, 8, 8]\nparams: {{a: 1}}\nname: {value}\n" + NET)
    assert [where(d) for d in diags(path)] == [("E201", 4, col)]


@pytest.mark.parametrize("value", [">-\n    =1 +\n    nope", '"=1 +\n    nope"'])
def test_expression_error_position_in_multi_line_scalars(tmp_path, value):
    path = write(tmp_path / "p.yaml", f"archspec: 1\ninput: [3, 8, 8]\nparams:\n  a: {value}\n" + NET)
    (d,) = diags(path)
    assert d.code == "E201"
    assert d.loc.line in (5, 6)
