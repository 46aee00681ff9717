"""Slices in expressions: `depths[:2]`, `depths[1:]`, `xs[::2]`, negative bounds, on lists and strings."""

from __future__ import annotations

import textwrap

import pytest

from archspec.lang import expr
from archspec.lang.expr import ExprError

NAMES = {"depths": [3, 4, 6, 3], "s": "conv2_x", "m": {"a": 1}, "n": 2, "big": [float("inf"), 1.0]}


def ev(src: str):
    return expr.evaluate(expr.parse(src), NAMES.__getitem__, lambda: list(NAMES))


def err(src: str) -> ExprError:
    with pytest.raises(ExprError) as info:
        ev(src)
    return info.value


@pytest.mark.parametrize("src, value", [
    ("depths[:2]", [3, 4]),
    ("depths[1:]", [4, 6, 3]),
    ("depths[::2]", [3, 6]),
    ("depths[1::2]", [4, 3]),
    ("depths[-2:]", [6, 3]),
    ("depths[:-1]", [3, 4, 6]),
    ("depths[::-1]", [3, 6, 4, 3]),
    ("depths[:]", [3, 4, 6, 3]),
    ("depths[::]", [3, 4, 6, 3]),
    ("depths[1:100]", [4, 6, 3]),          # bounds past the end are clamped, as in Python
    ("depths[-100:1]", [3]),
    ("depths[n:n + 1]", [6]),
    ("depths[null:2]", [3, 4]),
    ("sum(depths[:2])", 7),
    ("sum(depths[:0])", 0),
    ("len(depths[1:3])", 2),
    ("depths[1:3][0]", 4),
    ("[10, 20, 30][1:]", [20, 30]),
    ("s[:4]", "conv"),
    ("s[-2:]", "_x"),
    ("s[::-1]", "x_2vnoc"),
    ("'abc'[1:]", "bc"),
])
def test_slices(src, value):
    assert ev(src) == value


@pytest.mark.parametrize("src, code, offset, length", [
    ("depths[::0]", "E204", 9, 1),          # the caret is on the step
    ("m[1:]", "E204", 1, 1),
    ("n[1:]", "E204", 1, 1),
    ("depths['a':]", "E204", 7, 3),         # on the start
    ("depths[:1.5]", "E204", 8, 3),         # on the end
    ("depths[true:]", "E204", 7, 4),        # bools are not ints here either
    ("depths[1:2:3:4]", "E200", 12, 1),
    ("[1: 2]", "E200", 2, 1),
    ("big[:1]", "E211", 3, 1),              # an item that is not finite, as with indexing
])
def test_slice_errors_are_located(src, code, offset, length):
    e = err(src)
    assert (e.code, e.offset, e.length) == (code, offset, length), e.message


def test_slices_are_no_longer_listed_as_unsupported():
    from archspec.lang.expr.unsupported import SUPPORTED

    assert "slices" in SUPPORTED
    e = err("lambda x: x")           # a colon outside brackets still gets its help line
    assert e.code == "E200" and "lambda" in e.hint


def test_slice_in_a_spec_param(tmp_path):
    from archspec.lang.spec import load_spec

    path = tmp_path / "s.yaml"
    path.write_text(textwrap.dedent("""\
        archspec: 1
        input: [3, 8, 8]
        params:
          depths: [3, 4, 6, 3]
          first: "=sum(depths[:2])"
          rest: "=depths[1:]"
          tag: "${depths[::2]}"
        network:
          - fc: {op: linear, out: 2}
        """))
    spec = load_spec(path)
    assert spec.params["first"] == 7 and spec.params["rest"] == [4, 6, 3] and spec.params["tag"] == "[3, 6]"
