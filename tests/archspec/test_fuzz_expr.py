"""Property: whatever expression is written, the evaluator answers with a value or its own `ExprError`, quickly, and
every value it returns is within the budgets. Never another exception (an internal error), never a hang.

Expressions are generated from the grammar: literals of every type (numbers at the edges of the ranges, strings,
lists, true/false/null), names bound to values of every type (including huge, deeply nested and non-finite ones),
every operator, every built-in function with one to three arguments, conditionals, indexing, fields and membership,
nested. A second property feeds token soup (valid tokens in any order, and characters the language does not have)
to the parser. Runs are derandomized so CI sees the same cases every time; the volume is printed at the end.
"""

from __future__ import annotations

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archspec.lang import expr
from archspec.lang.expr import ExprError
from archspec.lang.expr.functions import FUNCTIONS
from archspec.lang.expr.sizes import MAX_NESTED, nested_size
from archspec.lang.expr.syntax import MAX_INT, MAX_ITEMS
from archspec.lang.expr.unsupported import FUNCTION_NAMES
from limits import time_limit  # noqa: E402

SECONDS = 1.0  # each evaluation
EXAMPLES = 2500  # generated expressions per run
SOUP_EXAMPLES = 1000  # token sequences per run
_TRIED = {"expressions": 0, "soup": 0, "expr_errors": 0, "values": 0}


def _deep(levels: int) -> list:
    v: list = []
    for _ in range(levels):
        v = [v]
    return v


NAMES = {
    "n": 3, "zero": 0, "neg": -7, "top": MAX_INT, "bottom": -MAX_INT - 1, "f": 2.5, "tiny": 5e-324, "huge": 1e308,
    "t": True, "no": False, "none": None, "s": "abc", "empty": "", "long": "x" * MAX_ITEMS, "xs": [1, 2, 3],
    "ys": [], "nested": [[1, 2], [3, [4, "a"]], None], "wide": [[0] * 1000] * 99, "strs": ["a", "b", "ab"],
    "m": {"a": 1, "b": [2, 3], "c": {"d": "e"}}, "km": {1: "one", "two": 2, None: 0, True: "t"}, "inf": math.inf,
    "nan": math.nan, "infs": [math.inf, -math.inf, math.nan], "deep": _deep(150), "lists": [[1], [2, 3], []],
}
NAME_LIST = sorted(NAMES) + ["undefined", "mm"]

INTS = st.one_of(st.sampled_from([0, 1, 2, 3, 7, 10, 63, 64, 1000, 10000, 10001, 2**31, MAX_INT, 3037000500]),
                 st.integers(-1000, 1000))
FLOATS = st.sampled_from(["0.0", "0.5", "1.5", "2.5", "1e308", "1e-320", "1e400", "-0.0", ".5", "1e3", "3.0"])
NUMBER = st.one_of(INTS.map(str), FLOATS, st.sampled_from(["0x10", "0b101", "0o17", "1_000", "9223372036854775808"]))
STRING = st.one_of(st.sampled_from(["''", "'a'", "'abc'", "\"x\"", "'1'", "'12'", "'-3'", "'inf'", "'nan'",
                                    "'1e400'", "'a\\'b'", "'9' * 5000"]),
                   st.text(alphabet="abc 019_-", max_size=6).map(repr))
ATOM = st.one_of(NUMBER, STRING, st.sampled_from(NAME_LIST),
                 st.sampled_from(["true", "false", "null", "True", "None", "[]", "[1, 2]", "['a']"]))

BINARY = ["+", "-", "*", "/", "//", "%", "**"]
COMPARE = ["==", "!=", "<", "<=", ">", ">=", "in", "not in"]
FIELDS = ["a", "b", "c", "d", "two", "x", "keys"]


def _compound(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    def call(name_args):
        name, args = name_args
        return f"{name}({', '.join(args)})"

    return st.one_of(
        st.tuples(children, st.sampled_from(BINARY), children).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(children, st.sampled_from(COMPARE), children).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(children, st.sampled_from(COMPARE), children, st.sampled_from(COMPARE), children).map(
            lambda t: f"({' '.join(t)})"),
        st.tuples(st.sampled_from(["-", "+", "not "]), children).map(lambda t: f"({t[0]}{t[1]})"),
        st.tuples(children, st.sampled_from(["and", "or"]), children).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(children, children, children).map(lambda t: f"({t[0]} if {t[1]} else {t[2]})"),
        st.tuples(children, children).map(lambda t: f"{t[0]}[{t[1]}]"),
        st.tuples(children, st.sampled_from(FIELDS)).map(lambda t: f"{t[0]}.{t[1]}"),
        st.lists(children, max_size=4).map(lambda xs: f"[{', '.join(xs)}]"),
        st.tuples(st.sampled_from(sorted(FUNCTIONS) + ["nope"]), st.lists(children, min_size=0, max_size=3)).map(call),
        st.tuples(children, st.sampled_from(["*", "+"]), st.sampled_from(["10000", "1000", "100", "3", "-1"])).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})" if t[1] == "*" else f"({t[0]} + {t[0]})"),
    )


EXPRESSIONS = st.recursive(ATOM, _compound, max_leaves=14)


def _assert_bounded(value) -> None:
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, int):
        assert -MAX_INT - 1 <= value <= MAX_INT
    elif isinstance(value, float):
        assert math.isfinite(value)
    elif isinstance(value, str):
        assert len(value) <= MAX_ITEMS
    else:
        assert nested_size(value, 0) <= MAX_NESTED


def _run(src: str) -> None:
    """Evaluate `src` (and interpolate it): an ExprError or a bounded value, within the time limit."""
    with time_limit(SECONDS, "an evaluation"):
        for how in ("evaluate", "interpolate"):
            try:
                if how == "evaluate":
                    value = expr.evaluate(expr.parse(src), lambda k: NAMES[k], lambda: list(NAMES))
                else:
                    value = expr.interpolate("a${" + src + "}b", lambda k: NAMES[k], lambda: list(NAMES))
            except ExprError as e:
                _TRIED["expr_errors"] += 1
                assert e.code.startswith("E2"), (src, e.code)
                assert isinstance(e.offset, int) and isinstance(e.length, int)
                continue
            _TRIED["values"] += 1
            _assert_bounded(value)


@settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])
@given(src=EXPRESSIONS)
def test_generated_expressions_never_crash(src):
    _TRIED["expressions"] += 1
    _run(src)


TOKENS = (["1", "2.5", "0", "1e400", "'a'", "\"b\"", "n", "xs", "m", "s", "none", "true", "null", "(", ")", "[", "]",
           ",", ".", "+", "-", "*", "/", "//", "%", "**", "==", "!=", "<", ">=", "in", "not", "and", "or", "if",
           "else", "is", "for", "lambda", ":", "{", "}", "=", "&", "|", "!", "@", "~", "^", ";", "$", "#", "?", "\\",
           "`", "'", "f'x'", "${", "\n", "\t"] + sorted(FUNCTIONS))


@settings(max_examples=SOUP_EXAMPLES, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(tokens=st.lists(st.sampled_from(TOKENS), min_size=1, max_size=12),
       glue=st.sampled_from(["", " "]))
def test_token_soup_never_crashes(tokens, glue):
    _TRIED["soup"] += 1
    _run(glue.join(tokens))


def test_the_help_lists_every_function():
    assert sorted(FUNCTION_NAMES) == sorted(FUNCTIONS)


def test_fuzz_volume(capsys):
    """Runs last in this file: how many cases the properties above tried (for the record)."""
    with capsys.disabled():
        print(f"\nexpression fuzz: {_TRIED['expressions']} generated expressions and {_TRIED['soup']} token sequences"
              f" (each evaluated and interpolated): {_TRIED['values']} values, {_TRIED['expr_errors']} ExprErrors,"
              " 0 internal errors")
    if _TRIED["expressions"]:  # the properties ran in this session
        assert _TRIED["expressions"] >= EXAMPLES // 2
