"""Property: however a valid spec is damaged, `archspec validate` answers with diagnostics (exit 0 or 2), never a
crash (exit 1) or a traceback.

Shipped specs are copied with their library and recipes into a folder (so relative imports still resolve), one
file is mutated (lines deleted, duplicated, swapped, re-indented; characters replaced by YAML punctuation;
numbers replaced by 0, negatives or huge values; words replaced by other identifiers; the file truncated), and the
result is validated in-process.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from limits import time_limit  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "specs"

FILES = {
    "resnet18.yaml": (SPECS / "resnet18.yaml").read_text(),
    "resnet50_tv.yaml": (SPECS / "resnet50_tv.yaml").read_text(),
    "resnet50.yaml": (SPECS / "resnet50.yaml").read_text(),
    "cifar_resnet.yaml": (SPECS / "cifar_resnet.yaml").read_text(),
    "lib/resnet.yaml": (SPECS / "lib" / "resnet.yaml").read_text(),
    "recipes/imagenet.yaml": (SPECS / "recipes" / "imagenet.yaml").read_text(),
    "recipes/cifar10.yaml": (SPECS / "recipes" / "cifar10.yaml").read_text(),
}
TOP = ["resnet18.yaml", "cifar_resnet.yaml", "resnet50_tv.yaml"]  # the specs validated
MUTABLE = ["resnet18.yaml", "cifar_resnet.yaml", "lib/resnet.yaml", "resnet50.yaml", "recipes/cifar10.yaml"]

PUNCTUATION = list(":{}[]-#&*!|>'\"\t =0")
NUMBERS = st.one_of(
    st.sampled_from([0, -1, 1, 2, -(2**63), 2**63 - 1, 2**63, 2**64, 10**30, 10**5000 // 10**4990, 1_000_000_000]),
    st.integers(min_value=-(10**6), max_value=10**6),
)
IDENTIFIERS = st.one_of(
    st.sampled_from(["op", "use", "in", "when", "repeat", "cases", "with", "stage", "input", "index", "count",
                     "in_channels", "in_shape", "stack", "basic", "bottleneck", "shortcut", "projection", "conv",
                     "linear", "add", "relu", "network", "blocks", "params", "body", "imports", "extends", "true",
                     "null", "n", "depth", "width", "stride", "downsample", "layer1", "__class__", "__import__",
                     "archspec", "name", "x" * 300]),
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True),
)


@st.composite
def mutated(draw) -> tuple[str, str, str]:
    """(the file mutated, its new text, the spec to validate)."""
    target = draw(st.sampled_from(MUTABLE))
    text = FILES[target]
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        lines = text.split("\n")
        kind = draw(st.sampled_from(["delete", "duplicate", "swap", "char", "indent", "number", "word",
                                     "truncate"]))
        if kind == "delete" and len(lines) > 1:
            del lines[draw(st.integers(0, len(lines) - 1))]
        elif kind == "duplicate":
            i = draw(st.integers(0, len(lines) - 1))
            lines.insert(i, lines[i])
        elif kind == "swap" and len(lines) > 1:
            i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif kind == "indent":
            i = draw(st.integers(0, len(lines) - 1))
            delta = draw(st.sampled_from([-4, -2, -1, 1, 2, 4]))
            lines[i] = " " * delta + lines[i] if delta > 0 else lines[i][min(-delta, len(lines[i]) - len(
                lines[i].lstrip(" "))):]
        text = "\n".join(lines)
        if kind == "char" and text:
            i = draw(st.integers(0, len(text) - 1))
            text = text[:i] + draw(st.sampled_from(PUNCTUATION)) + text[i + 1:]
        elif kind == "number":
            spots = [m.span() for m in re.finditer(r"\d+", text)]
            if spots:
                a, b = draw(st.sampled_from(spots))
                text = text[:a] + str(draw(NUMBERS)) + text[b:]
        elif kind == "word":
            spots = [m.span() for m in re.finditer(r"[A-Za-z_][A-Za-z0-9_]*", text)]
            if spots:
                a, b = draw(st.sampled_from(spots))
                text = text[:a] + draw(IDENTIFIERS) + text[b:]
        elif kind == "truncate":
            text = text[: draw(st.integers(0, len(text)))]
    top = target if target in TOP else draw(st.sampled_from(TOP))
    return target, text, top


def _layout(folder: Path, target: str, text: str) -> None:
    for name, original in FILES.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text if name == target else original, encoding="utf-8")


def test_unmutated_copies_are_valid(tmp_path, cli):
    _layout(tmp_path, "", "")
    for top in TOP:
        r = cli("validate", tmp_path / top)
        assert r.code == 0, r.err


@settings(max_examples=300, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=mutated())
def test_mutated_specs_never_crash(tmp_path, cli, case):
    target, text, top = case
    _layout(tmp_path, target, text)
    r = cli("validate", tmp_path / top)
    assert r.code in (0, 2), f"exit {r.code} for mutated {target}:\n{r.err}"
    assert "Traceback" not in r.out + r.err
    assert "internal error" not in r.err
    if r.code == 2:
        assert "error[E" in r.err  # a diagnostic, not just a message
    else:
        assert ": ok (" in r.out


@settings(max_examples=60, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=mutated(), overrides=st.lists(st.tuples(st.sampled_from(["n", "depth", "shortcut", "block", "stride_on",
                                                                    "num_classes", "zero_init_residual", "nope"]),
                                                   st.one_of(st.integers(-5, 300).map(str),
                                                             st.sampled_from(["A", "B", "C", "true", "=n*2", "=1/0",
                                                                              "bottleneck", "stack", "", "=",
                                                                              "[1, 2]", "{a: 1}", "3x3"]))),
                                          max_size=3))
def test_mutated_specs_with_overrides_never_crash(tmp_path, cli, case, overrides):
    target, text, top = case
    _layout(tmp_path, target, text)
    args = [a for name, value in overrides for a in ("--set", f"{name}={value}")]
    r = cli("validate", tmp_path / top, *args, "--format", "json")
    assert r.code in (0, 2), f"exit {r.code} for mutated {target} with {args}:\n{r.err}"
    assert "Traceback" not in r.out + r.err


# ---------------------------------------------------------------------------------------------- found by fuzzing
# Longer random runs of the mutations above (about 40,000 cases) found these crashes; each is pinned here.

def _validate_text(tmp_path: Path, cli, text: str, *extra: str):
    path = tmp_path / "s.yaml"
    path.write_text(text)
    return cli("validate", path, *extra)


@pytest.mark.parametrize("value", ["[lib/resnet.yaml]", "{a: 1}"])
def test_regression_top_level_op_key_with_a_collection(tmp_path, cli, value):
    r = _validate_text(tmp_path, cli, f"archspec: 1\nop: {value}\ninput: [3, 8, 8]\nnetwork:\n"
                                      "  - fl: {op: flatten}\n")
    assert r.code == 2, r.err
    assert "error[E101]" in r.err


def test_regression_top_level_op_key_message(tmp_path, cli):
    r = _validate_text(tmp_path, cli, "archspec: 1\nop: conv\ninput: [3, 8, 8]\nnetwork:\n"
                                      "  - fl: {op: flatten}\n")
    assert r.code == 2
    assert "unknown top-level key `op`" in r.err


@pytest.mark.parametrize("key", ["imports: [{name}]", "extends: {name}"])
def test_regression_overlong_file_name_in_spec(tmp_path, cli, key):
    name = "x" * 300 + ".yaml"
    r = _validate_text(tmp_path, cli, "archspec: 1\n" + key.format(name=name) + "\ninput: [3, 8, 8]\nnetwork:\n"
                                      "  - fl: {op: flatten}\n")
    assert r.code == 2, r.err
    assert "error[E120]" in r.err or "error[E001]" in r.err


@pytest.mark.parametrize("ref", ["x" * 300, "x" * 300 + ".yaml", "archspec:" + "x" * 300 + ".yaml"])
def test_regression_overlong_name_on_the_command_line(cli, ref):
    r = cli("validate", ref)
    assert r.code == 2, r.err
    assert "internal error" not in r.err


# ---------------------------------------------------------------------------------------------- expressions in specs
# Mutations aimed at the language inside a spec: `=expressions`, `${...}`, `in:` references, `use:` (templates and
# block arguments) and `when:` conditions are replaced by generated values, each written as a quoted YAML string so
# that it reaches the evaluator rather than stopping at the YAML reader. Each spec must finish in bounded time.

import json  # noqa: E402

SPEC_SECONDS = 20.0
EXPR_SPEC_EXAMPLES = 300
_SPECS_TRIED = {"specs": 0, "exit0": 0, "exit2": 0}

SPEC_NAMES = ["n", "depth", "width", "stride", "index", "count", "in_channels", "in_shape", "out", "blocks", "block",
              "shortcut", "stride_on", "expansion", "zero_init_residual", "num_classes", "stage", "input", "nope"]
NASTY = ["[[[0]*10000]*10000]*3", "str([[[0]*10000]*10000]*3)", "1e400", "[1] in {m}", "{m}[[1]]", "round(2.5, 2.5)",
         "ceil(1e308 * 10)", "[[0]*1000]*1000", "[[0]*1000]*1000 == [[0]*1000]*1000", "depth[:2]", "lambda: 1",
         "'abc'.upper()", "[x for x in in_shape]", "n is None", "2 ** 64", "1 / 0", "'a' * 10001", "in_shape[5]",
         "int('x')", "min()", "len(in_shape) * 'C'", "round(n, -9223372036854775807)"]
SPEC_ATOM = st.one_of(st.sampled_from(SPEC_NAMES), st.sampled_from(["0", "1", "2", "-1", "3.5", "64", "'A'", "'B'",
                                                                   "'basic'", "'bottleneck'", "true", "null", "[1, 2]",
                                                                   "''"]),
                      st.sampled_from(NASTY).map(lambda s: s.replace("{m}", "in_shape")))
SPEC_EXPR = st.recursive(SPEC_ATOM, lambda c: st.one_of(
    st.tuples(c, st.sampled_from(["+", "-", "*", "//", "/", "%", "**", "==", "!=", "<", "in", "and", "or"]), c).map(
        lambda t: f"({t[0]} {t[1]} {t[2]})"),
    st.tuples(c, c, c).map(lambda t: f"({t[0]} if {t[1]} else {t[2]})"),
    st.tuples(c, c).map(lambda t: f"{t[0]}[{t[1]}]"),
    st.tuples(st.sampled_from(["min", "max", "abs", "int", "float", "round", "floor", "ceil", "len", "str", "sum"]),
              c).map(lambda t: f"{t[0]}({t[1]})"),
    st.lists(c, max_size=3).map(lambda xs: f"[{', '.join(xs)}]"),
), max_leaves=6)
REFS = st.one_of(st.sampled_from(["input", "bn2", "conv1", "downsample", "add", "relu", "nope", "shortcut", "[]",
                                  "[input, input]", "[bn2, bn2, bn2]", "[bn2, nope]", "=in_shape", "=1/0", "[[bn2]]",
                                  "{a: 1}", "null", "0"]),
                 SPEC_EXPR.map(lambda e: json.dumps("=" + e)))
TEMPLATES = st.one_of(st.sampled_from(["basic", "bottleneck", "projection", "shortcut", "stack", "nope", "=block",
                                       "conv", "\"=1/0\"", "\"=[1] in in_shape\"", "\"=block if n > 1 else 'stack'\""]),
                      SPEC_EXPR.map(lambda e: json.dumps("=" + e)))
SPOTS = {
    "expression": (r"=[^,}\n#\"]+", lambda draw: "=" + draw(SPEC_EXPR)),
    "interpolation": (r"\$\{[^}\n]*\}", lambda draw: "${" + draw(SPEC_EXPR).replace("}", ")") + "}"),
    "in": (r"(?<=in: )(\[[^\]\n]*\]|[A-Za-z_]\w*)", lambda draw: draw(REFS)),
    "use": (r"(?<=use: )[^,}\n]+", lambda draw: draw(TEMPLATES)),
    "when": (r"(?<=when: )[^\n]+", lambda draw: json.dumps(draw(SPEC_EXPR))),
    "argument": (r"(?<=width: |tride: |locks: |  out: |nsion: )[^,}\n]+",
                 lambda draw: json.dumps("=" + draw(SPEC_EXPR))),
}


@st.composite
def expression_mutated(draw) -> tuple[str, str, str]:
    """(the file mutated, its new text, the spec to validate), with 1 to 3 language spots replaced."""
    target = draw(st.sampled_from(MUTABLE[:4]))
    text = FILES[target]
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        pattern, make = SPOTS[draw(st.sampled_from(sorted(SPOTS)))]
        spots = [m.span() for m in re.finditer(pattern, text)]
        if spots:
            a, b = draw(st.sampled_from(spots))
            replacement = make(draw)
            if replacement.startswith("=") and text[a - 2: a] == ": ":
                replacement = json.dumps(replacement)
            text = text[:a] + replacement + text[b:]
    top = target if target in TOP else draw(st.sampled_from(TOP))
    return target, text, top


@settings(max_examples=EXPR_SPEC_EXAMPLES, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=expression_mutated())
def test_expression_mutations_never_crash(tmp_path, cli, case):
    target, text, top = case
    _layout(tmp_path, target, text)
    with time_limit(SPEC_SECONDS, "validating one mutated spec"):
        r = cli("validate", tmp_path / top)
    _SPECS_TRIED["specs"] += 1
    _SPECS_TRIED[f"exit{r.code}"] = _SPECS_TRIED.get(f"exit{r.code}", 0) + 1
    assert r.code in (0, 2), f"exit {r.code} for mutated {target}:\n{text}\n{r.err}"
    assert "Traceback" not in r.out + r.err
    assert "internal error" not in r.err


def test_expression_mutation_volume(capsys):
    """Runs after the property above: how many specs it validated (for the record)."""
    with capsys.disabled():
        print(f"\nspec expression fuzz: {_SPECS_TRIED['specs']} mutated specs validated "
              f"({_SPECS_TRIED['exit0']} valid, {_SPECS_TRIED['exit2']} with diagnostics, 0 internal errors)")
    if _SPECS_TRIED["specs"]:
        assert _SPECS_TRIED["exit2"] > 0
