"""The expression functions timm's ResNet family needs: `log`, `log2` and timm's `make_divisible` (values, errors
with code and caret, and a spec that uses one)."""

from __future__ import annotations

import math
import textwrap

import pytest

import archspec
from archspec.lang import expr
from archspec.lang.expr import ExprError


def ev(src: str, names: dict | None = None):
    table = names or {}
    return expr.evaluate(expr.parse(src), lambda n: table[n], lambda: list(table))


def err(src: str) -> ExprError:
    with pytest.raises(ExprError) as info:
        ev(src)
    return info.value


def timm_make_divisible(v, divisor=8, min_value=None, round_limit=0.9):
    """timm.layers.helpers.make_divisible, written out here to check against."""
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < round_limit * v:
        new_v += divisor
    return new_v


@pytest.mark.parametrize("src, value", [
    ("log(1)", 0.0), ("log2(1)", 0.0), ("log2(8)", 3.0), ("log2(1024)", 10.0), ("log2(0.5)", -1.0),
    ("int(log2(64))", 6), ("log(9223372036854775807)", math.log(2 ** 63 - 1)),
    # by hand: int(11.5 + 4) // 8 * 8 = 8 < 0.9 * 11.5 = 10.35, so one more divisor: 16
    ("make_divisible(11.5, 8)", 16),
    ("make_divisible(64 / 16, 8)", 8),      # max(8, int(8.0) // 8 * 8 = 8): the min_value floor
    ("make_divisible(256 / 16)", 16),       # the default divisor is 8
    ("make_divisible(2048 / 16, 8)", 128),
    ("make_divisible(100)", 104),           # int(104) // 8 * 8
    ("make_divisible(3, 8, 1)", 9),         # max(1, 7 // 8 * 8 = 0) = 1 < 0.9 * 3 = 2.7: bumped by 8 to 9
    ("make_divisible(3, 8, 16)", 16),       # min_value wins
    ("make_divisible(3, 8, 0)", 8),         # a min_value of 0 means the divisor (timm's `min_value or divisor`)
    ("make_divisible(3, 8, null)", 8),
    ("make_divisible(35, 8)", 32),          # int(39) // 8 * 8 = 32 >= 31.5: not bumped
    ("make_divisible(36, 8)", 40),          # int(40) // 8 * 8 = 40
    ("make_divisible(35, 8, null, 0.95)", 40),  # 32 < 0.95 * 35 = 33.25: round_limit bumps it
    ("make_divisible(20, 16, null, 0.0)", 16),  # int(28) // 16 * 16 = 16; a round_limit of 0 never bumps
])
def test_values(src, value):
    got = ev(src)
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize("v, args", [(v, a) for v in (1, 4, 11.5, 24, 37.3, 64 / 16, 96 / 16, 1000 / 3)
                                     for a in ((), (8,), (4,), (16,), (8, 32), (8, None, 0.95), (3, 1, 0.5))])
def test_make_divisible_agrees_with_timms_formula(v, args):
    src = "make_divisible(" + ", ".join("null" if a is None else repr(a) for a in (v, *args)) + ")"
    assert ev(src) == timm_make_divisible(v, *args)


@pytest.mark.parametrize("src, code, offset, length", [
    ("log(0)", "E204", 4, 1),                       # caret on the argument
    ("log2(-1)", "E204", 5, 2),
    ("log(0.0)", "E204", 4, 3),
    ("log('a')", "E204", 4, 3),
    ("log2(true)", "E204", 5, 4),
    ("log([1])", "E204", 4, 3),
    ("log()", "E204", 0, 1),
    ("log2(1, 2)", "E204", 0, 1),
    ("make_divisible(3, 0)", "E204", 18, 1),        # divisor <= 0
    ("make_divisible(3, -8)", "E204", 18, 2),
    ("make_divisible(3, 'a')", "E204", 18, 3),
    ("make_divisible(3, 8, 'a')", "E204", 21, 3),
    ("make_divisible(3, 8, null, [1])", "E204", 27, 3),
    ("make_divisible('a')", "E204", 15, 3),
    ("make_divisible(1, 2, 3, 4, 5)", "E204", 0, 1),
    ("make_divisible(1.7e308, 1e308)", "E203", 0, 14),  # rounds beyond the float range
    ("make_divisible(1e10, 1e-300)", "E203", 0, 1),     # a result that is not finite
    ("make_divisible(9223372036854775807, 16)", "E203", 0, 1),  # beyond 64 bits
])
def test_errors_have_a_code_and_a_caret(src, code, offset, length):
    e = err(src)
    assert (e.code, e.offset, e.length) == (code, offset, length), e.message


def test_domain_errors_say_what_was_wrong():
    e = err("log2(0)")
    assert "above 0" in e.message and "got 0" in e.message and e.hint
    assert "divisor above 0" in err("make_divisible(3, 0)").message


def test_non_finite_arguments_are_E211():
    e = ev_error_with_names("log(x)", {"x": 1e308 * 10})
    assert e.code == "E211"


def ev_error_with_names(src, names):
    with pytest.raises(ExprError) as info:
        ev(src, names)
    return info.value


def test_a_spec_that_uses_log2_compiles(tmp_path):
    path = tmp_path / "log2.yaml"
    path.write_text(textwrap.dedent("""\
        archspec: 1
        name: log2_spec
        input: [3, 32, 32]
        params: {width: {type: int, default: 64}}
        network:
          - conv: {op: conv, out: "=int(log2(width)) * 4", kernel: 3, pad: 1}
          - fc1: {op: conv, out: "=make_divisible(width / 16, 8)", kernel: 1}
        """), encoding="utf-8")
    c = archspec.compile(path)
    assert c.graph.node("conv").attrs["out"] == 24
    assert c.graph.node("fc1").attrs["out"] == 8
    assert c.params == 3 * 24 * 9 + 24 * 8


def test_a_spec_with_log_of_zero_is_E204_at_its_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(textwrap.dedent("""\
        archspec: 1
        name: bad
        input: [3, 32, 32]
        params: {n: {type: int, default: 0}}
        network:
          - conv: {op: conv, out: "=int(log2(n))", kernel: 3, pad: 1}
        """), encoding="utf-8")
    diags = [d for d in archspec.validate(path).diagnostics if d.code == "E204"]
    assert diags and diags[0].loc.line == 6
