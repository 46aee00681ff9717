"""The expression language: parsing, evaluation, interpolation, errors (code and offset) and safety."""

from __future__ import annotations

import sys

import pytest

from archspec.lang import expr
from archspec.lang.expr import ExprError

NAMES = {"n": 3, "width": 64, "stride": 2, "xs": [10, 20, 30], "m": {"a": 1, "b": [2, 3], "inner": {"c": 7}},
         "s": "abc", "flag": True, "none": None}


def lookup(name: str):
    return NAMES[name]


def ev(src: str, names: dict | None = None):
    table = NAMES if names is None else names
    return expr.evaluate(expr.parse(src), lambda n: table[n], lambda: list(table))


def err(src: str, names: dict | None = None) -> ExprError:
    with pytest.raises(ExprError) as info:
        ev(src, names)
    return info.value


# ---------------------------------------------------------------------------------------------- values

@pytest.mark.parametrize("src, value", [
    ("1 + 2 * 3", 7),
    ("(1 + 2) * 3", 9),
    ("2 ** 3 ** 2", 512),          # right associative
    ("-2 ** 2", -4),               # unary minus binds looser than **
    ("2 ** -1", 0.5),
    ("10 - 4 - 3", 3),             # left associative
    ("7 // 2", 3),
    ("-7 // 2", -4),
    ("7 % 3", 1),
    ("7 / 2", 3.5),
    ("6 * n + 2", 20),
    ("not 1 == 2", True),
    ("1 + 2 == 3 and 2 * 2 == 4", True),
    ("false or 0 or 'x'", "x"),
    ("true and 5", 5),
    ("0x10 + 0b11 + 0o7", 26),
    ("1_000", 1000),
    ("1e3", 1000.0),
    ("'a' + \"b\"", "ab"),
    ("'ab' * 3", "ababab"),
    ("[1] * 3", [1, 1, 1]),
    ("[1, 2] + [3]", [1, 2, 3]),
    ("[1, 2,]", [1, 2]),
    ("null", None),
    ("None", None),
    ("True", True),
])
def test_arithmetic_and_precedence(src, value):
    result = ev(src)
    assert result == value and type(result) is type(value)


@pytest.mark.parametrize("src, value", [
    ("1 < 2 < 3", True),
    ("3 > 2 > 2", False),
    ("1 < 3 > 2", True),
    ("1 == 1 == 1", True),
    ("1 == 1 != 1", False),
    ("'a' < 'b' <= 'b'", True),
    ("1 > 2 > 1 / 0", False),      # chained comparisons stop at the first false one
    ("1 == 1.0", True),
])
def test_chained_comparisons(src, value):
    assert ev(src) is value


@pytest.mark.parametrize("src, value", [
    ("1 if true else 2", 1),
    ("1 if false else 2", 2),
    ("stride if n == 0 else 1", 1),
    ("stride if n == 3 else 1", 2),
    ("1 if 0 else 2 if 1 else 3", 2),
    ("'C' if width > 32 else 'A'", "C"),
    ("1 if true else 1 / 0", 1),    # only the chosen branch is evaluated
    ("false and 1 / 0", False),
    ("true or 1 / 0", True),
])
def test_conditional_and_short_circuit(src, value):
    assert ev(src) == value


@pytest.mark.parametrize("src, value", [
    ("'b' in s", True),
    ("'z' in s", False),
    ("20 in xs", True),
    ("21 not in xs", True),
    ("'a' in m", True),
    ("'zz' in m", False),
    ("n in [1, 2, 3]", True),
    ("not 3 in xs", True),
])
def test_membership(src, value):
    assert ev(src) is value


@pytest.mark.parametrize("src, value", [
    ("min(3, 1, 2)", 1),
    ("max([4, 5])", 5),
    ("min(xs)", 10),
    ("abs(-3)", 3),
    ("int('12')", 12),
    ("int(7.9)", 7),
    ("float(2)", 2.0),
    ("round(2.567, 2)", 2.57),
    ("round(2.5)", 2),
    ("floor(2.5)", 2),
    ("ceil(2.1)", 3),
    ("len('abc')", 3),
    ("len(xs)", 3),
    ("len(m)", 3),
    ("str(5)", "5"),
    ("str(true)", "true"),
    ("str(null)", "null"),
    ("sum([1, 2, 3])", 6),
    ("sum(xs) // len(xs)", 20),
])
def test_functions(src, value):
    result = ev(src)
    assert result == value and type(result) is type(value)


@pytest.mark.parametrize("src, value", [
    ("xs[0]", 10),
    ("xs[-1]", 30),
    ("[1, 2, 3][1]", 2),
    ("s[1]", "b"),
    ("m.a", 1),
    ("m['a']", 1),
    ("m.b[1]", 3),
    ("m.inner.c", 7),
    ("m['inner']['c'] + m.inner.c", 14),
])
def test_indexing_and_fields(src, value):
    assert ev(src) == value


# ---------------------------------------------------------------------------------------------- interpolation

@pytest.mark.parametrize("text, value", [
    ("cifar_resnet${6 * n + 2}", "cifar_resnet20"),
    ("a${n}b${s}c", "a3babcc"),
    ("${n}${n}", "33"),
    ("no interpolation", "no interpolation"),
    ("$${n}", "${n}"),                 # escaped: a literal ${
    ("cost: $$${n}", "cost: $${n}"),
    ("${'}'}", "}"),                   # a } inside a string does not close the expression
    ("${flag}", "true"),
    ("${none}", "null"),
    ("${n}}", "3}"),
])
def test_interpolation(text, value):
    assert expr.interpolate(text, lookup, lambda: list(NAMES)) == value


@pytest.mark.parametrize("text, code, offset", [
    ("p${1/0}", "E202", 4),
    ("ab${nope}", "E201", 4),
    ("x${n +}", "E200", 6),
    ("a${}b", "E200", 3),
    ("abc ${n", "E200", 4),
])
def test_interpolation_errors_point_into_the_text(text, code, offset):
    with pytest.raises(ExprError) as info:
        expr.interpolate(text, lookup, lambda: list(NAMES))
    assert (info.value.code, info.value.offset) == (code, offset)


def test_split_interpolation_offsets():
    assert expr.split_interpolation("ab${x}c${yy}") == [("ab", -1), ("x", 4), ("c", -1), ("yy", 9)]
    assert expr.split_interpolation("$${x}") == [("${x}", -1)]


# ---------------------------------------------------------------------------------------------- errors

@pytest.mark.parametrize("src, offset", [
    ("1 +", 3),
    ("1 2", 2),
    ("(1 + 2", 6),
    ("a = 1", 2),
    ("1 && 2", 2),
    ("'abc", 0),
    ("1.5e", 0),
    ("[,]", 1),
    ("", 0),
    ("   ", 0),
    ("f(1)(2)", 4),
    ("m.1", 1),          # `.1` reads as a number
    ("1 @ 2", 2),
    ("{1: 2}", 0),
])
def test_syntax_errors_E200(src, offset):
    e = err(src)
    assert e.code == "E200"
    assert e.offset == offset, e.message


def test_syntax_error_hints():
    assert "==" in err("n = 3").hint
    assert "and" in err("n & 3").hint
    assert err("'abc").hint and "'" in err("'abc").hint


def test_unknown_name_E201_with_suggestion():
    e = err("2 * widht + 1")
    assert (e.code, e.offset, e.length) == ("E201", 4, 5)
    assert "widht" in e.message
    assert e.hint == "did you mean `width`?"


def test_unknown_function_E201_with_suggestion():
    e = err("1 + lenn('a')")
    assert (e.code, e.offset) == ("E201", 4)
    assert e.hint == "did you mean `len`?"


def test_unknown_field_and_key_E201():
    e = err("m.aa")
    assert e.code == "E201" and e.offset == 2 and "did you mean `a`?" == e.hint
    assert err("m['zz']").code == "E201"


@pytest.mark.parametrize("src, offset", [
    ("1 / 0", 2),
    ("1 // 0", 2),
    ("10 % 0", 3),
    ("0 ** -1", 2),
    ("n / (n - 3)", 2),
    ("1.5 / 0.0", 4),
])
def test_division_by_zero_E202(src, offset):
    e = err(src)
    assert (e.code, e.offset) == ("E202", offset), e.message


@pytest.mark.parametrize("src, offset", [
    ("2 ** 100", 2),
    ("2 ** 63", 2),
    ("9223372036854775807 + 1", 20),
    ("9223372036854775807 * 2", 20),
    ("-9223372036854775807 - 2", 21),
    ("3037000500 * 3037000500", 11),
    ("9223372036854775808", 0),       # a literal beyond 64 bits
    ("'ab' * 6000", 5),
    ("[0] * 10001", 4),
    ("[0, 1] * 9999999999", 7),
    ("'a' * 10000 + 'b'", 12),
    ("2.0 ** 10000", 4),
    ("1e308 * 10", 6),
])
def test_overflow_E203(src, offset):
    e = err(src)
    assert (e.code, e.offset) == ("E203", offset), e.message


def test_bounds_are_inclusive():
    assert ev("2 ** 62") == 2**62
    assert ev("-9223372036854775807 - 1") == -(2**63)
    assert len(ev("'a' * 10000")) == 10000
    assert ev("'x' * -1") == ""


@pytest.mark.parametrize("src, offset", [
    ("'a' + 1", 4),
    ("1 + 'a'", 2),
    ("[1] + 1", 4),
    ("'a' - 'b'", 4),
    ("1 < 'a'", 2),
    ("[1] < [2]", 4),
    ("- 'a'", 0),
    ("1 in 5", 2),
    ("1 in 'abc'", 2),
    ("xs['a']", 2),
    ("xs[3]", 2),
    ("n[0]", 1),
    ("n.x", 2),
    ("len(5)", 0),
    ("min()", 0),
    ("min([])", 0),
    ("abs('a')", 0),
    ("sum(['a'])", 0),
    ("int(true)", 0),
    ("str(1, 2)", 0),
    ("(-8) ** 0.5", 5),
])
def test_type_errors_E204(src, offset):
    e = err(src)
    assert (e.code, e.offset) == ("E204", offset), e.message


def test_string_plus_number_hint():
    e = err("'resnet' + n")
    assert e.code == "E204" and "str(" in e.hint


def test_type_error_message_names_the_bad_argument():
    e = err("round(2, 'a')")
    assert e.code == "E204"
    assert "string" in e.message


def test_too_long_E209():
    e = err("1 + " * 250 + "1")
    assert (e.code, e.offset) == ("E209", 0)
    assert ev("1+" * 499 + "1") == 500  # 999 characters: within the budget


@pytest.mark.parametrize("src, offset", [
    ("(" * 200 + "1" + ")" * 200, 60),
    ("[" * 200 + "]" * 200, 60),
    ("-" * 500 + "1", 59),
    ("abs(" * 80 + "1" + ")" * 80, 240),
])
def test_too_deep_E209(src, offset):
    e = err(src)
    assert (e.code, e.offset) == ("E209", offset)


def test_nesting_just_within_the_budget():
    assert ev("(" * 59 + "1" + ")" * 59) == 1


def _at_depth(frames: int, fn):
    if frames:
        return _at_depth(frames - 1, fn)
    return fn()


@pytest.mark.parametrize("src", [
    "(" * 200 + "1" + ")" * 200,
    "[" * 300 + "]" * 300,
    "-" * 999 + "1",
    "not " * 249 + "1",
    "x" + "[0]" * 330,
    "m" + ".a" * 499,
])
def test_no_recursion_error_escapes(src):
    names = {"x": [0], "m": {"a": 1}}
    try:
        ev(src, names)
    except ExprError as e:
        assert e.code in ("E204", "E209")
    except RecursionError:  # pragma: no cover - the failure this test is for
        pytest.fail("RecursionError escaped")


def test_power_chain_counts_towards_nesting_budget():
    src = "1" + "**1" * 330
    expr.parse.cache_clear()
    try:
        result = _at_depth(sys.getrecursionlimit() // 3, lambda: ev(src))
    except ExprError as e:
        assert e.code == "E209"
    except RecursionError:
        pytest.fail("RecursionError escaped")
    else:
        pytest.fail(f"a chain nested 330 deep was accepted (= {result})")


def test_budget_errors_are_not_cached_wrongly():
    """parse() is memoised: an error must be raised again (not a stale tree returned) on the second call."""
    for _ in range(2):
        with pytest.raises(ExprError):
            expr.parse("(" * 100 + ")" * 100)


# ---------------------------------------------------------------------------------------------- names_in

@pytest.mark.parametrize("src, names", [
    ("6 * n + 2", {"n"}),
    ("a + b * c", {"a", "b", "c"}),
    ("x if cond else y", {"x", "cond", "y"}),
    ("min(a, 2) + len(xs)", {"a", "xs"}),            # function names are not free names
    ("m.field + m2['k']", {"m", "m2"}),              # fields are not names
    ("[p, q][i]", {"p", "q", "i"}),
    ("1 + 2", set()),
    ("'n' + 'm'", set()),
    ("not a in bs and c < d < e", {"a", "bs", "c", "d", "e"}),
    ("-u ** v", {"u", "v"}),
])
def test_names_in(src, names):
    assert expr.names_in(expr.parse(src)) == names


# ---------------------------------------------------------------------------------------------- safety

@pytest.mark.parametrize("src", [
    "__import__('os')",
    "__import__('os').system('echo hacked')",
    "().__class__",
    "().__class__.__bases__[0].__subclasses__()",
    "'abc'.upper",
    "'abc'.upper()",
    "'abc'.__class__",
    "xs.__class__",
    "xs.append",
    "m.__class__",
    "m.keys",
    "m.keys()",
    "n.real",
    "len.__self__",
    "str.join",
    "eval('1')",
    "exec('x = 1')",
    "open('/etc/passwd')",
    "getattr(m, 'keys')",
    "type(1)",
    "globals()",
    "__builtins__",
    "lambda: 1",
    "[x for x in xs]",
    "f'{n}'",
    "m['__class__']",
    "s[0].__class__",
    "(1).__add__(2)",
    "print(1)",
])
def test_no_way_to_python_internals(src, capsys):
    with pytest.raises(ExprError) as info:
        ev(src)
    assert info.value.code in ("E200", "E201", "E204"), info.value.message
    assert capsys.readouterr().out == ""


def test_evaluation_never_touches_python_objects_given_as_values():
    """Even a Python object that sneaks into the names is not reachable through fields."""
    class Secret:
        token = "s3cret"

    with pytest.raises(ExprError) as info:
        ev("o.token", {"o": Secret()})
    assert info.value.code == "E204"


def test_is_expr_and_has_interpolation():
    assert expr.is_expr("=1") and not expr.is_expr("1") and not expr.is_expr(1)
    assert expr.has_interpolation("a${b}") and not expr.has_interpolation("a$b")
