"""The size of a value counted through its nesting, measured before an operation walks or writes it.

A list built by repetition shares its items: `[[0] * 10000] * 10000` takes little memory, but comparing it, searching
it or writing it as text walks 100 million items. So every operation whose cost grows with the nested size of its
operands (`str()`, `${...}`, `==`, `!=`, `in`, `min`, `max`) and the result of an expression are measured first, by
a walk that stops as soon as the budget is passed (shared lists are counted once per use but walked once), and
refused with a diagnostic before anything is built.
"""

from __future__ import annotations

from typing import Any, Callable

from archspec.lang.codes import ARITHMETIC_OVERFLOW, NESTED_VALUE_TOO_LARGE
from archspec.lang.expr.syntax import MAX_ITEMS, ExprError

MAX_NESTED = 100_000  # items in one value counted through its nested lists and mappings
MAX_VALUE_DEPTH = 100  # lists and mappings nested inside each other


class _Over(Exception):
    pass


def _text_of_scalar(v: Any) -> int:
    if isinstance(v, str):
        return len(v) + 2  # quoted inside a list
    if v is None or isinstance(v, bool):
        return 4 if v is None or v else 5
    if isinstance(v, (int, float)):
        return len(repr(v))
    return 1


def _measure(value: Any, limit: int, leaf: Callable[[Any], int], sep: int) -> int:
    """The nested size of `value` (each leaf weighing `leaf(x)`, each container 2 + `sep` per gap), or raise `_Over`.

    The walk is bounded: it stops once the running count passes `limit`, each shared list is walked once, and values
    nested deeper than `MAX_VALUE_DEPTH` raise `_Over` too (as 'deep').
    """
    memo: dict[int, int] = {}

    def walk(v: Any, depth: int) -> int:
        if not isinstance(v, (list, dict)):
            return leaf(v)
        if depth > MAX_VALUE_DEPTH:
            raise _Over("deep")
        key = id(v)
        if key in memo:
            return memo[key]
        if isinstance(v, dict):
            total = 2 + (2 + sep) * len(v)
            pairs = [x for kv in v.items() for x in kv]
        else:
            total, pairs = 2 + sep * max(0, len(v) - 1), v
        for item in pairs:
            total += walk(item, depth + 1)
            if total > limit:
                raise _Over("big")
        memo[key] = total
        return total

    total = walk(value, 0)
    if total > limit:
        raise _Over("big")
    return total


def _one(_: Any) -> int:
    return 1


def _count(value: Any, limit: int) -> int:
    """`_measure` counting each leaf as 1; a long list of plain values is counted at C speed, without the walk."""
    if isinstance(value, list) and len(value) > 32:
        kinds = set(map(type, value))
        if not any(issubclass(kind, (list, dict)) for kind in kinds):
            if 2 + len(value) > limit:
                raise _Over("big")
            return 2 + len(value)
    return _measure(value, limit, _one, 0)


def weight(value: Any) -> int:
    """The steps an operation that walks `value` is charged (`work`): 1 for a number, the length of a string, the
    items of a list or mapping counted through its nesting (a walk bounded as above: past `MAX_NESTED` it stops
    and weighs `MAX_NESTED + 1`, and the operation's own budget check refuses the value)."""
    if isinstance(value, str):
        return max(1, len(value))
    if not isinstance(value, (list, dict)):
        return 1
    try:
        return _count(value, MAX_NESTED)
    except _Over:
        return MAX_NESTED + 1


def _too_deep(pos: int, length: int) -> ExprError:
    return ExprError(NESTED_VALUE_TOO_LARGE, f"a value is nested more than {MAX_VALUE_DEPTH} lists deep", pos, length)


def nested_size(value: Any, pos: int, length: int = 1, what: str = "the value") -> int:
    """Items in `value` counted through its nesting; E212 when beyond `MAX_NESTED` or nested too deeply."""
    if not isinstance(value, (list, dict)):
        return 1
    try:
        return _count(value, MAX_NESTED)
    except _Over as over:
        if str(over) == "deep":
            raise _too_deep(pos, length) from None
        raise ExprError(NESTED_VALUE_TOO_LARGE, f"{what} has more than {MAX_NESTED:,} items counted through its "
                        f"nested lists; the budget is {MAX_NESTED:,}", pos, length,
                        hint="keep lists small; use len(...) or indexing rather than walking a large value") from None


def text_budget(value: Any, pos: int, length: int = 1) -> None:
    """E203 when `value` written as text would pass `MAX_ITEMS` characters, decided before it is written."""
    if isinstance(value, str):
        if len(value) > MAX_ITEMS:
            raise ExprError(ARITHMETIC_OVERFLOW, f"the result has {len(value):,} items; the budget is {MAX_ITEMS:,}",
                            pos, length)
        return
    if not isinstance(value, (list, dict)):
        return
    try:
        _measure(value, MAX_ITEMS, _text_of_scalar, 2)
    except _Over as over:
        if str(over) == "deep":
            raise _too_deep(pos, length) from None
        raise ExprError(ARITHMETIC_OVERFLOW, f"the text would have more than {MAX_ITEMS:,} characters; the budget is "
                        f"{MAX_ITEMS:,}", pos, length) from None


def compare_budget(op: str, a: Any, b: Any, pos: int, length: int = 1) -> None:
    """E212 when comparing `a` with `b` (`==`, `!=`, `min`, `max`) could walk more than `MAX_NESTED` items.

    A comparison walks at most the smaller side, so it is refused only when both sides are over the budget.
    """
    if not (isinstance(a, (list, dict)) and isinstance(b, (list, dict))):
        return
    try:
        nested_size(a, pos, length)
    except ExprError:
        nested_size(b, pos, length, what=f"each side of `{op}`")


def membership_budget(op: str, a: Any, b: Any, pos: int, length: int = 1) -> None:
    """E212 when searching the list `b` for `a` could walk more than `MAX_NESTED` items.

    Each item of `b` is compared with `a`, which walks at most `a`: the search costs at most len(b) times the size
    of `a`, and at most the size of `b`.
    """
    if not isinstance(b, list):
        return
    size_a = nested_size(a, pos, length, what=f"the left side of `{op}`")
    if len(b) * size_a > MAX_NESTED:
        nested_size(b, pos, length, what=f"the list searched by `{op}`")
