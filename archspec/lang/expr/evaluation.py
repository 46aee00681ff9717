"""Evaluating a parsed expression tree, within the budgets.

Owns the operators' meaning (`_binary`, `_compare`), the built-in functions (`_FUNCTIONS`) and `evaluate`.
Each node kind has a small function, chosen through `_NODES`. Left-nested chains (`a + b + c`, `m.a.b`,
`x[0][1]`, `p and q and r`), the only nesting the parser does not count towards `MAX_DEPTH`, are walked in a
loop by `_ev` rather than by recursion, so a 1,000-character expression never nears Python's recursion limit.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterable

from archspec.lang.expr.syntax import MAX_INT, MAX_ITEMS, ExprError

Lookup = Callable[[str], Any]  # raises KeyError for unknown names


def _type(v: Any) -> str:
    return {bool: "bool", int: "int", float: "float", str: "string", list: "list", dict: "mapping",
            type(None): "null"}.get(type(v), "list" if isinstance(v, list) else "mapping" if isinstance(v, dict)
                                    else type(v).__name__)


def _check(value: Any, pos: int) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        if -MAX_INT - 1 <= value <= MAX_INT:
            return value
        raise ExprError("E203", "integer overflow: the result is beyond the 64-bit range", pos)
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        raise ExprError("E203", "arithmetic overflow: the result is not a finite number", pos)
    if isinstance(value, (str, list)) and len(value) > MAX_ITEMS:
        raise ExprError("E203", f"the result has {len(value):,} items; the budget is {MAX_ITEMS:,}", pos)
    return value


def _binary(op: str, a: Any, b: Any, pos: int) -> Any:
    if op == "+":
        if isinstance(a, str) and isinstance(b, str) or isinstance(a, list) and isinstance(b, list):
            if len(a) + len(b) > MAX_ITEMS:
                raise ExprError("E203", f"the result would have {len(a) + len(b):,} items; budget {MAX_ITEMS:,}", pos)
            return a + b
        if isinstance(a, (int, float)) and isinstance(b, (int, float)):
            return _check(a + b, pos)
        hint = None
        text = a if isinstance(a, str) else b if isinstance(b, str) else None
        if text is not None:
            numeric = text.strip().lstrip("-").replace(".", "", 1).isdigit()
            hint = (f"\"{text}\" is text: write the number without quotes, or use int(...)" if numeric
                    else "use str(...) to turn a number into text")
        raise ExprError("E204", f"cannot add {_type(a)} and {_type(b)}", pos, hint=hint)
    if op == "*" and (isinstance(a, (str, list)) and isinstance(b, int) or isinstance(b, (str, list))
                      and isinstance(a, int)):
        seq, k = (a, b) if isinstance(a, (str, list)) else (b, a)
        if len(seq) * max(k, 0) > MAX_ITEMS:
            raise ExprError("E203", f"the result would have {len(seq) * k:,} items; budget {MAX_ITEMS:,}", pos)
        return seq * k
    for v in (a, b):
        if not isinstance(v, (int, float)):
            raise ExprError("E204", f"`{op}` needs numbers, got {_type(a)} and {_type(b)}", pos)
    if op == "-":
        return _check(a - b, pos)
    if op == "*":
        return _check(a * b, pos)
    if op in ("/", "//", "%"):
        if b == 0:
            raise ExprError("E202", f"division by zero in `{op}`", pos, hint="guard it: `x / d if d != 0 else 0`")
        if op == "/":
            return _check(a / b, pos)
        return _check(a // b if op == "//" else a % b, pos)
    if op == "**":
        if isinstance(a, int) and isinstance(b, int) and b >= 0:
            if abs(a) > 1 and b * max(1, (abs(a)).bit_length() - 1) > 64:
                raise ExprError("E203", f"integer overflow: {a} ** {b} is beyond the 64-bit range", pos)
            return _check(a**b, pos)
        if a == 0 and b < 0:
            raise ExprError("E202", "division by zero: 0 to a negative power", pos)
        try:
            result = float(a) ** float(b)
        except OverflowError:
            raise ExprError("E203", f"arithmetic overflow in {a} ** {b}", pos) from None
        if isinstance(result, complex):
            raise ExprError("E204", "a negative number to a fractional power has no real value", pos)
        return _check(result, pos)
    raise ExprError("E200", f"unknown operator {op}", pos)


def _compare(op: str, a: Any, b: Any, pos: int) -> bool:
    if op == "==":
        return a == b
    if op == "!=":
        return a != b
    if op in ("in", "not in"):
        if not isinstance(b, (list, str, dict)):
            raise ExprError("E204", f"`{op}` needs a list, string or mapping on its right, got {_type(b)}", pos)
        if isinstance(b, str) and not isinstance(a, str):
            raise ExprError("E204", f"`{op}` a string needs a string on its left, got {_type(a)}", pos)
        return (a in b) == (op == "in")
    numbers = isinstance(a, (int, float)) and isinstance(b, (int, float))
    if not numbers and not (isinstance(a, str) and isinstance(b, str)):
        raise ExprError("E204", f"cannot compare {_type(a)} with {_type(b)} using `{op}`", pos)
    return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]


def _minmax(fn: Callable, name: str, args: list, pos: int) -> Any:
    values = args[0] if len(args) == 1 and isinstance(args[0], list) else args
    if not values:
        raise ExprError("E204", f"{name}() needs at least one value", pos)
    try:
        return fn(values)
    except TypeError:
        raise ExprError("E204", f"{name}() needs values that can be compared", pos) from None


def _to_int(x: Any, pos: int) -> int:
    if isinstance(x, bool) or not isinstance(x, (int, float, str)):
        raise ExprError("E204", f"int() needs a number, got {_type(x)}", pos)
    try:
        return int(x)
    except (ValueError, OverflowError):
        raise ExprError("E204", f"int() cannot read {x!r}", pos) from None


_FUNCTIONS: dict[str, tuple[int, int, Callable[[list, int], Any]]] = {
    "min": (1, 99, lambda a, p: _minmax(min, "min", a, p)),
    "max": (1, 99, lambda a, p: _minmax(max, "max", a, p)),
    "abs": (1, 1, lambda a, p: abs(a[0]) if isinstance(a[0], (int, float)) else _bad("abs", a[0], p)),
    "int": (1, 1, lambda a, p: _to_int(a[0], p)),
    "float": (1, 1, lambda a, p: float(a[0]) if isinstance(a[0], (int, float)) else _bad("float", a[0], p)),
    "round": (1, 2, lambda a, p: round(*a) if all(isinstance(x, (int, float)) for x in a)
              else _bad("round", next(x for x in a if not isinstance(x, (int, float))), p)),
    "floor": (1, 1, lambda a, p: math.floor(a[0]) if isinstance(a[0], (int, float)) else _bad("floor", a[0], p)),
    "ceil": (1, 1, lambda a, p: math.ceil(a[0]) if isinstance(a[0], (int, float)) else _bad("ceil", a[0], p)),
    "len": (1, 1, lambda a, p: len(a[0]) if isinstance(a[0], (str, list, dict)) else _bad("len", a[0], p)),
    "str": (1, 1, lambda a, p: as_text(a[0])),
    "sum": (1, 1, lambda a, p: sum(a[0]) if isinstance(a[0], list) and all(
        isinstance(x, (int, float)) for x in a[0]) else _bad("sum", a[0], p)),
}


def _bad(fn: str, value: Any, pos: int) -> Any:
    raise ExprError("E204", f"{fn}() cannot take {_type(value)}", pos)


def as_text(v: Any) -> str:
    """A value as `str(...)` and `${...}` write it: true, false and null as in YAML."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    return str(v)


class _Env:
    """What an evaluation reads besides the tree: names and, for suggestions, the list of them."""

    __slots__ = ("lookup", "names")

    def __init__(self, lookup: Lookup, names: Callable[[], Iterable[str]]) -> None:
        self.lookup = lookup
        self.names = names


def _did_you_mean(name: str, candidates: Iterable[str], **how: str) -> str | None:
    from archspec.lang.diagnostics import did_you_mean  # needed only on the error path

    return did_you_mean(name, candidates, **how)


# --- node kinds that are not chains: each evaluates its children through `_ev`

def _const(node: tuple, env: _Env) -> Any:
    return node[1]


def _name(node: tuple, env: _Env) -> Any:
    try:
        return env.lookup(node[1])
    except KeyError:
        hint = _did_you_mean(node[1], list(env.names()) + list(_FUNCTIONS), what="names defined here")
        raise ExprError("E201", f"`{node[1]}` is not defined", node[2], len(node[1]), hint=hint) from None


def _neg(node: tuple, env: _Env) -> Any:
    v = _ev(node[1], env)
    if not isinstance(v, (int, float)):
        raise ExprError("E204", f"cannot negate {_type(v)}", node[2])
    return _check(-v, node[2])


def _pos(node: tuple, env: _Env) -> Any:
    return _ev(node[1], env)


def _not(node: tuple, env: _Env) -> Any:
    return not _ev(node[1], env)


def _if(node: tuple, env: _Env) -> Any:
    return _ev(node[2], env) if _ev(node[1], env) else _ev(node[3], env)


def _cmp(node: tuple, env: _Env) -> Any:
    ops, operands, pos = node[1], node[2], node[3]
    left = _ev(operands[0], env)
    for op, right_node in zip(ops, operands[1:]):
        right = _ev(right_node, env)
        if not _compare(op, left, right, pos):
            return False
        left = right
    return True


def _list(node: tuple, env: _Env) -> Any:
    return _check([_ev(x, env) for x in node[1]], 0)


def _call(node: tuple, env: _Env) -> Any:
    fname, arg_nodes, pos = node[1], node[2], node[3]
    if fname not in _FUNCTIONS:
        raise ExprError("E201", f"`{fname}` is not a built-in function", pos, len(fname),
                        hint=_did_you_mean(fname, _FUNCTIONS, what="functions"))
    lo, hi, fn = _FUNCTIONS[fname]
    if not lo <= len(arg_nodes) <= hi:
        raise ExprError("E204", f"{fname}() takes {lo}{'' if lo == hi else f' to {hi}'} argument"
                        f"{'s' if hi > 1 else ''}, got {len(arg_nodes)}", pos)
    return _check(fn([_ev(a, env) for a in arg_nodes], pos), pos)


# --- links of a left-nested chain: each takes the value of its left side, already evaluated

def _bin_link(node: tuple, left: Any, env: _Env) -> Any:
    return _binary(node[1], left, _ev(node[3], env), node[4])


def _and_link(node: tuple, left: Any, env: _Env) -> Any:
    return left and _ev(node[2], env)


def _or_link(node: tuple, left: Any, env: _Env) -> Any:
    return left or _ev(node[2], env)


def _index_link(node: tuple, seq: Any, env: _Env) -> Any:
    idx, pos = _ev(node[2], env), node[3]
    if isinstance(seq, dict):
        if idx not in seq:
            raise ExprError("E201", f"no key {idx!r} in this mapping", pos)
        return seq[idx]
    if not isinstance(seq, (list, str)):
        raise ExprError("E204", f"cannot index {_type(seq)}", pos)
    if not isinstance(idx, int) or isinstance(idx, bool):
        raise ExprError("E204", f"an index must be an int, got {_type(idx)}", pos)
    if not -len(seq) <= idx < len(seq):
        raise ExprError("E204", f"index {idx} is out of range for a {_type(seq)} of length {len(seq)}", pos)
    return seq[idx]


def _field_link(node: tuple, obj: Any, env: _Env) -> Any:
    name, pos = node[2], node[3]
    if not isinstance(obj, dict):
        raise ExprError("E204", f"`.{name}`: {_type(obj)} has no fields", pos)
    if name not in obj:
        raise ExprError("E201", f"no field `{name}` here", pos, len(name), hint=_did_you_mean(name, obj))
    return obj[name]


_NODES: dict[str, Callable[[tuple, _Env], Any]] = {
    "const": _const, "name": _name, "neg": _neg, "pos": _pos, "not": _not, "if": _if, "cmp": _cmp,
    "list": _list, "call": _call,
}
# chain kind -> (where its left side is in the node, the function that finishes it)
_CHAINS: dict[str, tuple[int, Callable[[tuple, Any, _Env], Any]]] = {
    "bin": (2, _bin_link), "and": (1, _and_link), "or": (1, _or_link), "index": (1, _index_link),
    "field": (1, _field_link),
}


def _ev(node: tuple, env: _Env) -> Any:
    """Evaluate one node: a left-nested chain from its innermost left side outwards, anything else by kind."""
    links = []
    while node[0] in _CHAINS:
        links.append(node)
        node = node[_CHAINS[node[0]][0]]
    if node[0] not in _NODES:
        raise ExprError("E200", f"unknown expression node {node[0]}", 0)
    value = _NODES[node[0]](node, env)
    for link in reversed(links):
        value = _CHAINS[link[0]][1](link, value, env)
    return value


def evaluate(tree: tuple, lookup: Lookup, names: Callable[[], Iterable[str]] = lambda: ()) -> Any:
    """Evaluate a parsed expression; `lookup` resolves names, `names` lists them for suggestions."""
    return _ev(tree, _Env(lookup, names))
