"""The built-in functions: min, max, abs, int, float, round, floor, ceil, len, str, sum.

Each takes the evaluated arguments and a `Call` (where the call and each argument are in the text, for a caret on
the offending argument) and checks what it is given before Python sees it: the kind of each argument (E204), a
finite number where one is needed (E211), and the size of what it walks or writes (E203, E212).
"""

from __future__ import annotations

import math
from typing import Any, Callable

from archspec.lang.codes import EXPR_TYPE_MISMATCH, NON_FINITE_NUMBER
from archspec.lang.expr.sizes import nested_size, text_budget
from archspec.lang.expr.syntax import ExprError


def type_name(v: Any) -> str:
    return {bool: "bool", int: "int", float: "float", str: "string", list: "list", dict: "mapping",
            type(None): "null"}.get(type(v), "list" if isinstance(v, list) else "mapping" if isinstance(v, dict)
                                    else type(v).__name__)


class Call:
    """Where a call is: the function name's offset, and (offset, length) of each argument."""

    __slots__ = ("name", "pos", "spans")

    def __init__(self, name: str, pos: int, spans: list[tuple[int, int]]) -> None:
        self.name, self.pos, self.spans = name, pos, spans

    def at(self, i: int) -> tuple[int, int]:
        return self.spans[i] if i < len(self.spans) else (self.pos, len(self.name))


def not_finite(x: Any, where: tuple[int, int], what: str = "a number") -> ExprError:
    return ExprError(NON_FINITE_NUMBER, f"{what} is {x!r}: expressions take only finite numbers", where[0], where[1],
                     hint="infinity and not-a-number have no place in a size; use a large finite number")


def _finite(args: list, call: Call) -> None:
    for i, x in enumerate(args):
        if isinstance(x, float) and not math.isfinite(x):
            raise not_finite(x, call.at(i), f"the argument of {call.name}()")


def _number(args: list, call: Call) -> Any:
    if not isinstance(args[0], (int, float)):
        raise ExprError(EXPR_TYPE_MISMATCH, f"{call.name}() cannot take {type_name(args[0])}", call.pos)
    _finite(args, call)
    return {"abs": abs, "float": float, "floor": math.floor, "ceil": math.ceil}[call.name](args[0])


def _minmax(args: list, call: Call) -> Any:
    values = args[0] if len(args) == 1 and isinstance(args[0], list) else args
    if not values:
        raise ExprError(EXPR_TYPE_MISMATCH, f"{call.name}() needs at least one value", call.pos)
    if any(isinstance(v, (list, dict)) for v in values):
        nested_size(values, call.pos, len(call.name), what=f"what {call.name}() compares")
    for i, v in enumerate(values):
        if isinstance(v, float) and not math.isfinite(v):
            raise not_finite(v, call.at(i if values is args else 0), f"a value compared by {call.name}()")
    try:
        return (min if call.name == "min" else max)(values)
    except TypeError:
        raise ExprError(EXPR_TYPE_MISMATCH, f"{call.name}() needs values that can be compared", call.pos) from None


def _to_int(args: list, call: Call) -> int:
    x = args[0]
    if isinstance(x, bool) or not isinstance(x, (int, float, str)):
        raise ExprError(EXPR_TYPE_MISMATCH, f"int() needs a number, got {type_name(x)}", call.pos)
    _finite(args, call)
    try:
        return int(x)
    except (ValueError, OverflowError):
        shown = repr(x) if len(repr(x)) <= 60 else repr(x)[:57] + "..."
        raise ExprError(EXPR_TYPE_MISMATCH, f"int() cannot read {shown}", call.pos) from None


_DIGITS = 400  # round(x, d) for |d| beyond this is the same as for this (floats have < 330 digits, ints < 20)


def _round(args: list, call: Call) -> Any:
    if not isinstance(args[0], (int, float)):
        raise ExprError(EXPR_TYPE_MISMATCH, f"round() cannot take {type_name(args[0])}", call.pos)
    digits = args[1] if len(args) == 2 else None
    if digits is not None and not isinstance(digits, (int, float)):
        raise ExprError(EXPR_TYPE_MISMATCH, f"round() cannot take {type_name(digits)} as its number of digits; it "
                        "needs an int", *call.at(1))
    _finite(args, call)
    if digits is None:
        return round(args[0])
    if isinstance(digits, float):
        raise ExprError(EXPR_TYPE_MISMATCH, "round() cannot take float as its number of digits; it needs an int",
                        *call.at(1))
    return round(args[0], max(-_DIGITS, min(_DIGITS, digits)))


def _len(args: list, call: Call) -> int:
    if isinstance(args[0], (str, list, dict)):
        return len(args[0])
    raise ExprError(EXPR_TYPE_MISMATCH, f"len() cannot take {type_name(args[0])}", call.pos)


def _sum(args: list, call: Call) -> Any:
    if isinstance(args[0], list) and all(isinstance(x, (int, float)) for x in args[0]):
        for x in args[0]:
            if isinstance(x, float) and not math.isfinite(x):
                raise not_finite(x, call.at(0), "an item summed by sum()")
        return sum(args[0])
    raise ExprError(EXPR_TYPE_MISMATCH, f"sum() cannot take {type_name(args[0])}", call.pos)


def _str(args: list, call: Call) -> str:
    text_budget(args[0], call.pos, len(call.name))
    return as_text(args[0])


# name -> (fewest arguments, most arguments, the function)
FUNCTIONS: dict[str, tuple[int, int, Callable[[list, Call], Any]]] = {
    "min": (1, 99, _minmax), "max": (1, 99, _minmax), "abs": (1, 1, _number), "int": (1, 1, _to_int),
    "float": (1, 1, _number), "round": (1, 2, _round), "floor": (1, 1, _number), "ceil": (1, 1, _number),
    "len": (1, 1, _len), "str": (1, 1, _str), "sum": (1, 1, _sum),
}


def as_text(v: Any) -> str:
    """A value as `str(...)` and `${...}` write it: true, false and null as in YAML."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    return str(v)


__all__ = ["FUNCTIONS", "Call", "as_text", "not_finite", "type_name"]
