"""Evaluating a parsed expression tree, within the budgets.

Owns the operators' meaning (`_binary`, `_compare`) and `evaluate`; the built-in functions are in `functions`, the
size budgets of values walked or written in `sizes`.
Every evaluation is charged to the `work.Meter` of the stretch of work it is part of: a step per node (three per
function call), and a step per item an operation builds or walks (`Meter.spend`), so that the many evaluations of
one expression (a `when:` in a `repeat`) stay within one budget. Each node kind has a small function, chosen
through `_NODES`. Left-nested chains (`a + b + c`, `m.a.b`, `x[0][1]`, `p and q and r`), the only nesting the
parser does not count towards `MAX_DEPTH`, are walked in a loop by `_ev` rather than by recursion, so a
1,000-character expression never nears Python's recursion limit.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterable

from archspec.lang.codes import (ARITHMETIC_OVERFLOW, DIVISION_BY_ZERO, EXPR_SYNTAX, EXPR_TYPE_MISMATCH, UNDEFINED_NAME,
                                 UNHASHABLE_KEY)
from archspec.lang.expr.functions import FUNCTIONS, Call, as_text, not_finite, type_name
from archspec.lang.expr.sizes import compare_budget, membership_budget, nested_size, text_budget, weight
from archspec.lang.expr.syntax import MAX_INT, MAX_ITEMS, ExprError
from archspec.lang.expr.work import Meter, active_meter

__all__ = ["Lookup", "as_text", "evaluate", "evaluate_text"]

Lookup = Callable[[str], Any]  # raises KeyError for unknown names


_type = type_name


def _check(value: Any, pos: int) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        if -MAX_INT - 1 <= value <= MAX_INT:
            return value
        raise ExprError(ARITHMETIC_OVERFLOW, "integer overflow: the result is beyond the 64-bit range", pos)
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        raise ExprError(ARITHMETIC_OVERFLOW, "arithmetic overflow: the result is not a finite number", pos)
    if isinstance(value, (str, list)) and len(value) > MAX_ITEMS:
        raise ExprError(ARITHMETIC_OVERFLOW, f"the result has {len(value):,} items; the budget is {MAX_ITEMS:,}", pos)
    return value


def _binary(op: str, a: Any, b: Any, pos: int) -> Any:
    if op == "+":
        if isinstance(a, str) and isinstance(b, str) or isinstance(a, list) and isinstance(b, list):
            if len(a) + len(b) > MAX_ITEMS:
                raise ExprError(ARITHMETIC_OVERFLOW,
                                f"the result would have {len(a) + len(b):,} items; budget {MAX_ITEMS:,}", pos)
            return a + b
        if isinstance(a, (int, float)) and isinstance(b, (int, float)):
            return _check(a + b, pos)
        hint = None
        text = a if isinstance(a, str) else b if isinstance(b, str) else None
        if text is not None:
            numeric = text.strip().lstrip("-").replace(".", "", 1).isdigit()
            hint = (f"\"{text}\" is text: write the number without quotes, or use int(...)" if numeric
                    else "use str(...) to turn a number into text")
        raise ExprError(EXPR_TYPE_MISMATCH, f"cannot add {_type(a)} and {_type(b)}", pos, hint=hint)
    if op == "*" and (isinstance(a, (str, list)) and isinstance(b, int) or isinstance(b, (str, list))
                      and isinstance(a, int)):
        seq, k = (a, b) if isinstance(a, (str, list)) else (b, a)
        if len(seq) * max(k, 0) > MAX_ITEMS:
            raise ExprError(ARITHMETIC_OVERFLOW, f"the result would have {len(seq) * k:,} items; budget {MAX_ITEMS:,}",
                            pos)
        return seq * k
    for v in (a, b):
        if not isinstance(v, (int, float)):
            raise ExprError(EXPR_TYPE_MISMATCH, f"`{op}` needs numbers, got {_type(a)} and {_type(b)}", pos)
    if op == "-":
        return _check(a - b, pos)
    if op == "*":
        return _check(a * b, pos)
    if op in ("/", "//", "%"):
        if b == 0:
            raise ExprError(DIVISION_BY_ZERO, f"division by zero in `{op}`", pos,
                            hint="guard it: `x / d if d != 0 else 0`")
        if op == "/":
            return _check(a / b, pos)
        return _check(a // b if op == "//" else a % b, pos)
    if op == "**":
        if isinstance(a, int) and isinstance(b, int) and b >= 0:
            if abs(a) > 1 and b * max(1, (abs(a)).bit_length() - 1) > 64:
                raise ExprError(ARITHMETIC_OVERFLOW, f"integer overflow: {a} ** {b} is beyond the 64-bit range", pos)
            return _check(a**b, pos)
        if a == 0 and b < 0:
            raise ExprError(DIVISION_BY_ZERO, "division by zero: 0 to a negative power", pos)
        try:
            result = float(a) ** float(b)
        except OverflowError:
            raise ExprError(ARITHMETIC_OVERFLOW, f"arithmetic overflow in {a} ** {b}", pos) from None
        if isinstance(result, complex):
            raise ExprError(EXPR_TYPE_MISMATCH, "a negative number to a fractional power has no real value", pos)
        return _check(result, pos)
    raise ExprError(EXPR_SYNTAX, f"unknown operator {op}", pos)


def _compare(op: str, a: Any, b: Any, pos: int, left: tuple[int, int]) -> bool:
    """`a op b`; `left` is where `a` is written, for a caret on a key that no mapping can hold."""
    if op in ("==", "!="):
        compare_budget(op, a, b, pos, len(op))
        return (a == b) == (op == "==")
    if op in ("in", "not in"):
        if not isinstance(b, (list, str, dict)):
            raise ExprError(EXPR_TYPE_MISMATCH, f"`{op}` needs a list, string or mapping on its right, got {_type(b)}",
                            pos)
        if isinstance(b, str) and not isinstance(a, str):
            raise ExprError(EXPR_TYPE_MISMATCH, f"`{op}` a string needs a string on its left, got {_type(a)}", pos)
        if isinstance(b, dict):
            _key_check(a, left, f"`{op}` a mapping")
        membership_budget(op, a, b, pos, len(op))
        return (a in b) == (op == "in")
    numbers = isinstance(a, (int, float)) and isinstance(b, (int, float))
    if not numbers and not (isinstance(a, str) and isinstance(b, str)):
        raise ExprError(EXPR_TYPE_MISMATCH, f"cannot compare {_type(a)} with {_type(b)} using `{op}`", pos)
    return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]


def _key_check(key: Any, where: tuple[int, int], what: str) -> None:
    """E210 when `key` cannot be a key of a mapping (a list or a mapping)."""
    try:
        hash(key)
    except TypeError:
        raise ExprError(UNHASHABLE_KEY, f"{what} looks up a key, and a {_type(key)} cannot be one", where[0], where[1],
                        hint="keys of a mapping are names, numbers, true/false or null") from None


class _Env:
    """What an evaluation reads besides the tree: names and, for suggestions, the list of them; the meter it is
    charged to."""

    __slots__ = ("lookup", "names", "meter")

    def __init__(self, lookup: Lookup, names: Callable[[], Iterable[str]], meter: Meter) -> None:
        self.lookup = lookup
        self.names = names
        self.meter = meter


_SIZED = (str, list, dict)
CALL_STEPS = 2  # a call costs as much as three plain nodes: these steps, beside its node's own


def _walk_cost(op: str, a: Any, b: Any) -> int:
    """Steps of comparing `a` with `b` (`op` a comparison): what the comparison and its budget check may walk, the
    items of both sides (a key looked up in a mapping: the key)."""
    if op in ("in", "not in") and isinstance(b, dict):
        return weight(a)
    return weight(a) + weight(b)


def _did_you_mean(name: str, candidates: Iterable[str] | Callable[[], Iterable[str]], **how: str) -> str | None:
    from archspec.lang.nearmiss import did_you_mean  # needed only on the error path (bounded in work)

    return did_you_mean(name, candidates, **how)


# --- node kinds that are not chains: each evaluates its children through `_ev`

def _const(node: tuple, env: _Env) -> Any:
    return node[1]


def _name(node: tuple, env: _Env) -> Any:
    try:
        value = env.lookup(node[1])
    except KeyError:
        hint = _did_you_mean(node[1], lambda: list(env.names()) + list(FUNCTIONS), what="names defined here")
        raise ExprError(UNDEFINED_NAME, f"`{node[1]}` is not defined", node[2], len(node[1]), hint=hint) from None
    if isinstance(value, float) and not math.isfinite(value):
        raise not_finite(value, (node[2], len(node[1])), f"`{node[1]}`")
    return value


def _neg(node: tuple, env: _Env) -> Any:
    v = _ev(node[1], env)
    if not isinstance(v, (int, float)):
        raise ExprError(EXPR_TYPE_MISMATCH, f"cannot negate {_type(v)}", node[2])
    return _check(-v, node[2])


def _pos(node: tuple, env: _Env) -> Any:
    return _ev(node[1], env)


def _not(node: tuple, env: _Env) -> Any:
    return not _ev(node[1], env)


def _if(node: tuple, env: _Env) -> Any:
    return _ev(node[2], env) if _ev(node[1], env) else _ev(node[3], env)


def _cmp(node: tuple, env: _Env) -> Any:
    ops, operands, pos, spans = node[1], node[2], node[3], node[4]
    left = _ev(operands[0], env)
    for i, (op, right_node) in enumerate(zip(ops, operands[1:])):
        right = _ev(right_node, env)
        if isinstance(left, _SIZED) or isinstance(right, _SIZED):
            env.meter.spend(_walk_cost(op, left, right))
        if not _compare(op, left, right, pos, spans[i]):
            return False
        left = right
    return True


def _list(node: tuple, env: _Env) -> Any:
    return _check([_ev(x, env) for x in node[1]], 0)


def _call(node: tuple, env: _Env) -> Any:
    fname, arg_nodes, pos = node[1], node[2], node[3]
    if fname not in FUNCTIONS:
        raise ExprError(UNDEFINED_NAME, f"`{fname}` is not a built-in function", pos, len(fname),
                        hint=_did_you_mean(fname, FUNCTIONS, what="functions"))
    lo, hi, fn = FUNCTIONS[fname]
    if not lo <= len(arg_nodes) <= hi:
        raise ExprError(EXPR_TYPE_MISMATCH, f"{fname}() takes {lo}{'' if lo == hi else f' to {hi}'} argument"
                        f"{'s' if hi > 1 else ''}, got {len(arg_nodes)}", pos)
    args = [_ev(a, env) for a in arg_nodes]
    walked = sum(weight(a) for a in args if isinstance(a, _SIZED)) if fname != "len" else 0  # len() walks nothing
    env.meter.spend(CALL_STEPS + walked)
    result = _check(fn(args, Call(fname, pos, node[4])), pos)
    if isinstance(result, _SIZED):
        env.meter.spend(len(result))
    return result


# --- links of a left-nested chain: each takes the value of its left side, already evaluated

def _bin_link(node: tuple, left: Any, env: _Env) -> Any:
    result = _binary(node[1], left, _ev(node[3], env), node[4])
    if isinstance(result, _SIZED):  # `+` and `*` of strings and lists build a new one
        env.meter.spend(len(result))
    return result


def _and_link(node: tuple, left: Any, env: _Env) -> Any:
    return left and _ev(node[2], env)


def _or_link(node: tuple, left: Any, env: _Env) -> Any:
    return left or _ev(node[2], env)


def _index_link(node: tuple, seq: Any, env: _Env) -> Any:
    idx, pos = _ev(node[2], env), node[3]
    if isinstance(seq, dict):
        _key_check(idx, node[4], "indexing a mapping")
        if idx not in seq:
            raise ExprError(UNDEFINED_NAME, f"no key {idx!r} in this mapping", pos)
        return _finite_item(seq[idx], pos)
    if not isinstance(seq, (list, str)):
        raise ExprError(EXPR_TYPE_MISMATCH, f"cannot index {_type(seq)}", pos)
    if not isinstance(idx, int) or isinstance(idx, bool):
        raise ExprError(EXPR_TYPE_MISMATCH, f"an index must be an int, got {_type(idx)}", pos)
    if not -len(seq) <= idx < len(seq):
        raise ExprError(EXPR_TYPE_MISMATCH, f"index {idx} is out of range for a {_type(seq)} of length {len(seq)}", pos)
    return _finite_item(seq[idx], pos)


def _slice_link(node: tuple, seq: Any, env: _Env) -> Any:
    """`seq[lower:upper:step]` of a list or string, Python's meaning (bounds past either end are clamped)."""
    pos, spans = node[5], node[6]
    if not isinstance(seq, (list, str)):
        raise ExprError(EXPR_TYPE_MISMATCH, f"cannot slice {_type(seq)}", pos, hint="slices take a list or a string")
    bounds = []
    for part, span, what in zip(node[2:5], spans, ("start", "end", "step")):
        value = None if part is None else _ev(part, env)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise ExprError(EXPR_TYPE_MISMATCH, f"the {what} of a slice must be an int or null, got {_type(value)}",
                            *span)
        bounds.append(value)
    if bounds[2] == 0:
        raise ExprError(EXPR_TYPE_MISMATCH, "the step of a slice cannot be zero", *spans[2],
                        hint="e.g. `xs[::2]`, `xs[::-1]`")
    part = seq[bounds[0]:bounds[1]:bounds[2]]
    env.meter.spend(len(part))
    if isinstance(part, list):
        for item in part:
            _finite_item(item, pos)
    return part


def _finite_item(value: Any, pos: int) -> Any:
    """An item read out of a list or mapping: E211 when it is a float that is not finite."""
    if isinstance(value, float) and not math.isfinite(value):
        raise not_finite(value, (pos, 1), "the item read here")
    return value


def _field_link(node: tuple, obj: Any, env: _Env) -> Any:
    name, pos = node[2], node[3]
    if not isinstance(obj, dict):
        raise ExprError(EXPR_TYPE_MISMATCH, f"`.{name}`: {_type(obj)} has no fields", pos)
    if name not in obj:
        keys = [k for k in obj if isinstance(k, str)]
        raise ExprError(UNDEFINED_NAME, f"no field `{name}` here", pos, len(name), hint=_did_you_mean(name, keys))
    return _finite_item(obj[name], pos)


_NODES: dict[str, Callable[[tuple, _Env], Any]] = {
    "const": _const, "name": _name, "neg": _neg, "pos": _pos, "not": _not, "if": _if, "cmp": _cmp,
    "list": _list, "call": _call,
}
# chain kind -> (where its left side is in the node, the function that finishes it)
_CHAINS: dict[str, tuple[int, Callable[[tuple, Any, _Env], Any]]] = {
    "bin": (2, _bin_link), "and": (1, _and_link), "or": (1, _or_link), "index": (1, _index_link),
    "slice": (1, _slice_link), "field": (1, _field_link),
}


def _ev(node: tuple, env: _Env) -> Any:
    """Evaluate one node: a left-nested chain from its innermost left side outwards, anything else by kind."""
    links = []
    while node[0] in _CHAINS:
        links.append(node)
        node = node[_CHAINS[node[0]][0]]
    meter = env.meter  # (Meter.spend, inlined: this runs for every node of every evaluation)
    meter.spent += 1 + len(links)
    if meter.limit is not None and meter.spent > meter.limit:
        raise meter.over()
    if node[0] not in _NODES:
        raise ExprError(EXPR_SYNTAX, f"unknown expression node {node[0]}", 0)
    value = _NODES[node[0]](node, env)
    for link in reversed(links):
        value = _CHAINS[link[0]][1](link, value, env)
    return value


def evaluate(tree: tuple, lookup: Lookup, names: Callable[[], Iterable[str]] = lambda: ()) -> Any:
    """Evaluate a parsed expression; `lookup` resolves names, `names` lists them for suggestions."""
    return _metered(tree, lookup, names, _result)


def evaluate_text(tree: tuple, lookup: Lookup, names: Callable[[], Iterable[str]] = lambda: ()) -> str:
    """Evaluate a parsed expression and write its value as text (`${...}`), within the text budget."""
    return _metered(tree, lookup, names, _text)


def _result(value: Any, meter: Meter) -> Any:
    meter.spend(nested_size(value, 0, 1, what="the result"))
    return value


def _text(value: Any, meter: Meter) -> str:
    text_budget(value, 0, 1)
    text = as_text(value)
    meter.spend(len(text))
    return text


def _metered(tree: tuple, lookup: Lookup, names: Callable[[], Iterable[str]],
             finish: Callable[[Any, Meter], Any]) -> Any:
    """`finish(value of tree)`, charged to the meter in force (`work.metered`), which learns what the tree costs."""
    meter = active_meter()
    previous = meter.begin(tree)
    finished = False
    try:
        value = finish(_ev(tree, _Env(lookup, names, meter)), meter)
        finished = True
        return value
    finally:
        meter.end(previous, finished)
