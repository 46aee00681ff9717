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
