"""The safe arithmetic of specs: `=6 * n + 2`, `=stride if index == 0 else 1`, `"cifar_resnet${depth}"`.

A small expression language with Python's syntax for what it has: numbers, strings, lists, names, the
operators `+ - * / // % **`, comparisons, `and or not`, `x if c else y`, indexing, `.field` on mappings,
and the functions min, max, abs, int, float, round, floor, ceil, log, log2, make_divisible, len, str, sum. It is
parsed by the hand written parser in `syntax` and evaluated by walking the tree in `evaluation`: there is no `eval`, no attribute
access on Python objects, and every result is bounded (integers within 64 bits, floats finite, strings and lists
within 10,000 items, a value counted through its nested lists within 100,000), checked before a value is built or
walked.

A YAML value is an expression when it is a string starting with `=`; `${...}` interpolates inside strings.
Fields that are always expressions (`when`, `check`) may leave out the `=`.

This module is the package's face: the interpolation of `${...}` in strings lives here, and the names the rest
of archspec uses (`parse`, `evaluate`, `names_in`, `ExprError`, the limits, `metered`) are re-exported from
`syntax` (text to tree), `evaluation` (tree to value) and `work` (the budget of many evaluations together).
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

from archspec.lang.codes import ARITHMETIC_OVERFLOW, EXPR_SYNTAX
from archspec.lang.expr.evaluation import Lookup, evaluate, evaluate_text
from archspec.lang.expr.syntax import MAX_DEPTH, MAX_INT, MAX_ITEMS, MAX_SOURCE, ExprError, names_in, parse
from archspec.lang.expr.work import Meter, metered

__all__ = [
    "MAX_DEPTH", "MAX_INT", "MAX_ITEMS", "MAX_SOURCE", "ExprError", "Lookup", "Meter", "evaluate",
    "has_interpolation", "interpolate", "is_expr", "metered", "names_in", "parse", "split_interpolation",
]


def is_expr(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("=")


def has_interpolation(value: Any) -> bool:
    return isinstance(value, str) and "${" in value


def split_interpolation(text: str) -> list[tuple[str, int]]:
    """Split `"a${x}b"` into parts: ("a", -1), ("x", offset of x), ("b", -1). `$${` is a literal `${`."""
    parts: list[tuple[str, int]] = []
    i, buf = 0, []
    while i < len(text):
        if text.startswith("$${", i):
            buf.append("${")
            i += 3
        elif text.startswith("${", i):
            j, quote = i + 2, ""
            while j < len(text) and (quote or text[j] != "}"):
                if quote and text[j] == quote:
                    quote = ""
                elif not quote and text[j] in "'\"":
                    quote = text[j]
                j += 1
            if j >= len(text):
                raise ExprError(EXPR_SYNTAX, "`${` is not closed by `}`", i, 2)
            if buf:
                parts.append(("".join(buf), -1))
                buf = []
            parts.append((text[i + 2 : j], i + 2))
            i = j + 1
        else:
            buf.append(text[i])
            i += 1
    if buf:
        parts.append(("".join(buf), -1))
    return parts


def interpolate(text: str, lookup: Lookup, names: Callable[[], Iterable[str]] = lambda: ()) -> str:
    """The text with each `${...}` replaced by its value as text; an error's offset counts from the text's start."""
    out = []
    size = 0
    for part, offset in split_interpolation(text):
        if offset < 0:
            out.append(part)
        else:
            try:
                out.append(evaluate_text(parse(part), lookup, names))
            except ExprError as e:
                e.offset += offset
                raise
        size += len(out[-1])
        if size > MAX_ITEMS:  # each value is within budget; the text around them must be too
            raise ExprError(ARITHMETIC_OVERFLOW, f"the text would have more than {MAX_ITEMS:,} characters; the "
                            f"budget is {MAX_ITEMS:,}", max(offset, 0), max(1, len(part)))
    return "".join(out)
