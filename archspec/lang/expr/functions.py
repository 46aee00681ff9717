"""The built-in functions: min, max, abs, int, float, round, floor, ceil, log, log2, make_divisible, len, str, sum.

Each takes the evaluated arguments and a `Call` (where the call and each argument are in the text, for a caret on
the offending argument) and checks what it is given before Python sees it: the kind of each argument (E204), a
finite number where one is needed (E211), and the size of what it walks or writes (E203, E212). A number outside a
function's domain (`log(0)`, a divisor of 0) is refused as E204, like `int('abc')`, with a caret on that argument.
"""

from __future__ import annotations

import math
from typing import Any, Callable

from archspec.lang.codes import ARITHMETIC_OVERFLOW, EXPR_TYPE_MISMATCH, NON_FINITE_NUMBER
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


def _real(x: Any, call: Call, i: int, what: str = "") -> float | int:
    """Argument `i` as a finite number (not a bool): E204 for any other kind, E211 for infinity or not-a-number."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise ExprError(EXPR_TYPE_MISMATCH, f"{call.name}() cannot take {type_name(x)}{what}; it needs a number",
                        *call.at(i))
    if isinstance(x, float) and not math.isfinite(x):
        raise not_finite(x, call.at(i), f"the argument of {call.name}()")
    return x


def _log(args: list, call: Call) -> float:
    x = _real(args[0], call, 0)
    if x <= 0:
        raise ExprError(EXPR_TYPE_MISMATCH, f"{call.name}() is defined for numbers above 0, got {x!r}", *call.at(0),
                        hint="a logarithm needs a positive argument; guard it with `max(x, 1)` or a `when:`")
    return math.log2(x) if call.name == "log2" else math.log(x)


def _make_divisible(args: list, call: Call) -> Any:
    """timm's `make_divisible(v, divisor=8, min_value=None, round_limit=0.9)` (layers/helpers.py): `v` rounded to the
    nearest multiple of `divisor`, at least `min_value` (`divisor` when null or 0), and bumped up one `divisor` when
    rounding lost more than 1 - round_limit of `v`."""
    v = _real(args[0], call, 0)
    divisor = _real(args[1], call, 1, " as its divisor") if len(args) > 1 else 8
    min_value = args[2] if len(args) > 2 else None
    if min_value is not None:
        min_value = _real(min_value, call, 2, " as its least value")
    round_limit = _real(args[3], call, 3, " as its round limit") if len(args) > 3 else 0.9
    if divisor <= 0:
        raise ExprError(EXPR_TYPE_MISMATCH, f"make_divisible() needs a divisor above 0, got {divisor!r}",
                        *call.at(1), hint="channel counts are usually made divisible by 8")
    try:
        new_v = max(min_value or divisor, int(v + divisor / 2) // divisor * divisor)
    except OverflowError:  # v + divisor / 2 beyond the float range
        raise ExprError(ARITHMETIC_OVERFLOW, "arithmetic overflow: make_divisible() rounds to a number beyond the "
                        "float range", call.pos, len(call.name)) from None
    if new_v < round_limit * v:
        new_v += divisor
    return new_v


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
    "log": (1, 1, _log), "log2": (1, 1, _log), "make_divisible": (1, 4, _make_divisible),
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
