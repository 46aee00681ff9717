"""The safe arithmetic of specs: `=6 * n + 2`, `=stride if index == 0 else 1`, `"cifar_resnet${depth}"`.

A small expression language with Python's syntax for what it has: numbers, strings, lists, names, the
operators `+ - * / // % **`, comparisons, `and or not`, `x if c else y`, indexing, `.field` on mappings,
and the functions min, max, abs, int, float, round, floor, ceil, len, str, sum. It is parsed by the hand
written parser below and evaluated by walking the tree: there is no `eval`, no attribute access on Python
objects, and every result is bounded (integers within 64 bits, strings and lists within 10,000 items).

A YAML value is an expression when it is a string starting with `=`; `${...}` interpolates inside strings.
Fields that are always expressions (`when`, `check`) may leave out the `=`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, Iterable

MAX_SOURCE = 1000  # characters in one expression
MAX_DEPTH = 60  # nesting of the parsed expression
MAX_INT = 2**63 - 1
MAX_ITEMS = 10_000  # length of a string or list built by an expression


@dataclass
class ExprError(Exception):
    code: str
    message: str
    offset: int = 0  # where in the expression text the problem is
    length: int = 1
    hint: str | None = None

    def __str__(self) -> str:
        return self.message


# ---------------------------------------------------------------------------------------------- tokens

_KEYWORDS = {"and", "or", "not", "if", "else", "in", "true", "false", "null", "True", "False", "None"}
_OPS = ["**", "//", "==", "!=", "<=", ">=", "<", ">", "+", "-", "*", "/", "%", "(", ")", "[", "]", ",", "."]


def _tokens(src: str) -> list[tuple[str, Any, int]]:
    out: list[tuple[str, Any, int]] = []
    i, n = 0, len(src)
    while i < n:
        c = src[i]
        if c in " \t\n\r":
            i += 1
        elif c.isdigit() or (c == "." and i + 1 < n and src[i + 1].isdigit()):
            j = i
            while j < n and (src[j].isalnum() or src[j] in "._" or (src[j] in "+-" and src[j - 1] in "eE"
                                                                      and not src[i:j].startswith("0x"))):
                j += 1
            text = src[i:j].replace("_", "")
            try:
                value: Any = int(text, 0) if text.isdigit() or text[:2].lower() in ("0x", "0o", "0b") else float(text)
            except ValueError:
                raise ExprError("E200", f"`{src[i:j]}` is not a number", i, j - i) from None
            if isinstance(value, int) and value > MAX_INT:
                raise ExprError("E203", f"{src[i:j]} is beyond the 64-bit range", i, j - i)
            out.append(("num", value, i))
            i = j
        elif c.isalpha() or c == "_":
            j = i
            while j < n and (src[j].isalnum() or src[j] == "_"):
                j += 1
            word = src[i:j]
            out.append(("kw" if word in _KEYWORDS else "name", word, i))
            i = j
        elif c in "'\"":
            j, buf = i + 1, []
            while j < n and src[j] != c:
                if src[j] == "\\" and j + 1 < n:
                    j += 1
                    buf.append({"n": "\n", "t": "\t"}.get(src[j], src[j]))
                else:
                    buf.append(src[j])
                j += 1
            if j >= n:
                raise ExprError("E200", "a string is not closed", i, n - i, hint=f"add the closing {c}")
            out.append(("str", "".join(buf), i))
            i = j + 1
        else:
            for op in _OPS:
                if src.startswith(op, i):
                    out.append(("op", op, i))
                    i += len(op)
                    break
            else:
                hint = "use `==` to compare" if c == "=" else ("use `and`, `or`, `not`" if c in "&|!" else None)
                raise ExprError("E200", f"unexpected character `{c}`", i, 1, hint=hint)
    out.append(("end", None, n))
    return out


# ---------------------------------------------------------------------------------------------- parser

class _Parser:
    def __init__(self, src: str):
        self.src = src
        self.toks = _tokens(src)
        self.i = 0
        self.depth = 0

    def peek(self) -> tuple[str, Any, int]:
        return self.toks[self.i]

    def next(self) -> tuple[str, Any, int]:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def accept(self, kind: str, value: Any) -> bool:
        k, v, _ = self.peek()
        if k == kind and v == value:
            self.i += 1
            return True
        return False

    def expect(self, kind: str, value: Any) -> None:
        if not self.accept(kind, value):
            k, v, pos = self.peek()
            found = "the end" if k == "end" else f"`{v}`"
            raise ExprError("E200", f"expected `{value}` but found {found}", pos, 1)

    def parse(self) -> tuple:
        node = self.expr()
        k, v, pos = self.peek()
        if k != "end":
            raw = self.src[pos : self.toks[self.i + 1][2]].strip() or str(v)
            raise ExprError("E200", f"unexpected `{raw}` after a complete expression", pos, len(raw),
                            hint="expressions are one value; did you leave out an operator?")
        return node

    def expr(self) -> tuple:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExprError("E209", f"the expression is nested more than {MAX_DEPTH} deep", self.peek()[2])
        node = self.or_()
        if self.accept("kw", "if"):
            cond = self.or_()
            self.expect("kw", "else")
            node = ("if", cond, node, self.expr())
        self.depth -= 1
        return node

    def or_(self) -> tuple:
        node = self.and_()
        while self.accept("kw", "or"):
            node = ("or", node, self.and_())
        return node

    def and_(self) -> tuple:
        node = self.not_()
        while self.accept("kw", "and"):
            node = ("and", node, self.not_())
        return node

    def not_(self) -> tuple:
        if self.accept("kw", "not"):
            self._deeper()
            node = ("not", self.not_())
            self.depth -= 1
            return node
        return self.comparison()

    def _deeper(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExprError("E209", f"the expression is nested more than {MAX_DEPTH} deep", self.peek()[2])

    def comparison(self) -> tuple:
        first = self.sum_()
        ops, operands, pos = [], [first], self.peek()[2]
        while True:
            k, v, p = self.peek()
            if k == "op" and v in ("==", "!=", "<", "<=", ">", ">="):
                self.next()
                ops.append(v)
            elif k == "kw" and v == "in":
                self.next()
                ops.append("in")
            elif k == "kw" and v == "not" and self.toks[self.i + 1][1] == "in":
                self.i += 2
                ops.append("not in")
            else:
                break
            operands.append(self.sum_())
        return first if not ops else ("cmp", ops, operands, pos)

    def sum_(self) -> tuple:
        node = self.term()
        while True:
            k, v, p = self.peek()
            if k == "op" and v in ("+", "-"):
                self.next()
                node = ("bin", v, node, self.term(), p)
            else:
                return node

    def term(self) -> tuple:
        node = self.unary()
        while True:
            k, v, p = self.peek()
            if k == "op" and v in ("*", "/", "//", "%"):
                self.next()
                node = ("bin", v, node, self.unary(), p)
            else:
                return node

    def unary(self) -> tuple:
        k, v, p = self.peek()
        if k == "op" and v in ("-", "+"):
            self.next()
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise ExprError("E209", f"the expression is nested more than {MAX_DEPTH} deep", p)
            node = ("neg" if v == "-" else "pos", self.unary(), p)
            self.depth -= 1
            return node
        return self.power()

    def power(self) -> tuple:
        node = self.postfix()
        k, v, p = self.peek()
        if k == "op" and v == "**":
            self.next()
            self._deeper()
            node = ("bin", "**", node, self.unary(), p)
            self.depth -= 1
        return node

    def postfix(self) -> tuple:
        node = self.atom()
        while True:
            k, v, p = self.peek()
            if k == "op" and v == "(":
                if node[0] != "name":
                    raise ExprError("E200", "only the built-in functions can be called", p)
                self.next()
                args = []
                if not self.accept("op", ")"):
                    args.append(self.expr())
                    while self.accept("op", ","):
                        args.append(self.expr())
                    self.expect("op", ")")
                node = ("call", node[1], args, node[2])
            elif k == "op" and v == "[":
                self.next()
                index = self.expr()
                self.expect("op", "]")
                node = ("index", node, index, p)
            elif k == "op" and v == ".":
                self.next()
                k2, name, p2 = self.next()
                if k2 != "name":
                    raise ExprError("E200", "expected a field name after `.`", p2)
                node = ("field", node, name, p2)
            else:
                return node

    def atom(self) -> tuple:
        k, v, p = self.next()
        if k in ("num", "str"):
            return ("const", v)
        if k == "name":
            return ("name", v, p)
        if k == "kw" and v in ("true", "True"):
            return ("const", True)
        if k == "kw" and v in ("false", "False"):
            return ("const", False)
        if k == "kw" and v in ("null", "None"):
            return ("const", None)
        if k == "op" and v == "(":
            node = self.expr()
            self.expect("op", ")")
            return node
        if k == "op" and v == "[":
            items = []
            if not self.accept("op", "]"):
                items.append(self.expr())
                while self.accept("op", ","):
                    if self.peek()[1] == "]":
                        break
                    items.append(self.expr())
                self.expect("op", "]")
            return ("list", items)
        found = "the end of the expression" if k == "end" else f"`{v}`"
        raise ExprError("E200", f"expected a value but found {found}", p, max(1, len(str(v or ""))))


@lru_cache(maxsize=8192)
def parse(src: str) -> tuple:
    """Parse expression text (without the leading `=`) into a tree of tuples."""
    if len(src) > MAX_SOURCE:
        raise ExprError("E209", f"the expression is {len(src):,} characters long; the budget is {MAX_SOURCE:,}",
                        0, 1, hint="move parts of it into named params")
    if not src.strip():
        raise ExprError("E200", "the expression is empty", 0, 1)
    return _Parser(src).parse()


def names_in(tree: tuple) -> set[str]:
    """The free names an expression tree reads (for dependency ordering of params)."""
    out: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, tuple):
            if node and node[0] == "name":
                out.add(node[1])
                return
            if node and node[0] == "call":
                for a in node[2]:
                    walk(a)
                return
            for part in node[1:]:
                walk(part)
        elif isinstance(node, list):
            for part in node:
                walk(part)

    walk(tree)
    return out


# ---------------------------------------------------------------------------------------------- evaluation

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
    "str": (1, 1, lambda a, p: _str(a[0])),
    "sum": (1, 1, lambda a, p: sum(a[0]) if isinstance(a[0], list) and all(
        isinstance(x, (int, float)) for x in a[0]) else _bad("sum", a[0], p)),
}


def _bad(fn: str, value: Any, pos: int) -> Any:
    raise ExprError("E204", f"{fn}() cannot take {_type(value)}", pos)


def _str(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    return str(v)


def evaluate(tree: tuple, lookup: Lookup, names: Callable[[], Iterable[str]] = lambda: ()) -> Any:
    """Evaluate a parsed expression; `lookup` resolves names, `names` lists them for suggestions."""

    def ev(node: tuple) -> Any:
        kind = node[0]
        if kind == "const":
            return node[1]
        if kind == "name":
            try:
                return lookup(node[1])
            except KeyError:
                from archspec.lang.diagnostics import did_you_mean

                hint = did_you_mean(node[1], list(names()) + list(_FUNCTIONS), what="names defined here")
                raise ExprError("E201", f"`{node[1]}` is not defined", node[2], len(node[1]), hint=hint) from None
        if kind == "bin":
            return _binary(node[1], ev(node[2]), ev(node[3]), node[4])
        if kind == "neg":
            v = ev(node[1])
            if not isinstance(v, (int, float)):
                raise ExprError("E204", f"cannot negate {_type(v)}", node[2])
            return _check(-v, node[2])
        if kind == "pos":
            return ev(node[1])
        if kind == "and":
            return ev(node[1]) and ev(node[2])
        if kind == "or":
            return ev(node[1]) or ev(node[2])
        if kind == "not":
            return not ev(node[1])
        if kind == "if":
            return ev(node[2]) if ev(node[1]) else ev(node[3])
        if kind == "cmp":
            ops, operands, pos = node[1], node[2], node[3]
            left = ev(operands[0])
            for op, right_node in zip(ops, operands[1:]):
                right = ev(right_node)
                if not _compare(op, left, right, pos):
                    return False
                left = right
            return True
        if kind == "list":
            return _check([ev(x) for x in node[1]], 0)
        if kind == "index":
            seq, idx, pos = ev(node[1]), ev(node[2]), node[3]
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
        if kind == "field":
            obj, name, pos = ev(node[1]), node[2], node[3]
            if not isinstance(obj, dict):
                raise ExprError("E204", f"`.{name}`: {_type(obj)} has no fields", pos)
            if name not in obj:
                from archspec.lang.diagnostics import did_you_mean

                raise ExprError("E201", f"no field `{name}` here", pos, len(name), hint=did_you_mean(name, obj))
            return obj[name]
        if kind == "call":
            fname, arg_nodes, pos = node[1], node[2], node[3]
            if fname not in _FUNCTIONS:
                from archspec.lang.diagnostics import did_you_mean

                raise ExprError("E201", f"`{fname}` is not a built-in function", pos, len(fname),
                                hint=did_you_mean(fname, _FUNCTIONS, what="functions"))
            lo, hi, fn = _FUNCTIONS[fname]
            if not lo <= len(arg_nodes) <= hi:
                raise ExprError("E204", f"{fname}() takes {lo}{'' if lo == hi else f' to {hi}'} argument"
                                f"{'s' if hi > 1 else ''}, got {len(arg_nodes)}", pos)
            return _check(fn([ev(a) for a in arg_nodes], pos), pos)
        raise ExprError("E200", f"unknown expression node {kind}", 0)

    return ev(tree)


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
                raise ExprError("E200", "`${` is not closed by `}`", i, 2)
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
    out = []
    for part, offset in split_interpolation(text):
        if offset < 0:
            out.append(part)
            continue
        try:
            out.append(_str(evaluate(parse(part), lookup, names)))
        except ExprError as e:
            e.offset += offset
            raise
    return "".join(out)
