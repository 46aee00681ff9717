"""Expression text to a small tree: the tokeniser, the recursive-descent parser and its budgets.

Owns `ExprError`, the limits (`MAX_SOURCE`, `MAX_DEPTH`, `MAX_INT`, `MAX_ITEMS`), `parse` (memoised, errors too) and
`names_in`. A tree is nested tuples whose first item names the node kind: `("const", v)`, `("name", n, pos)`,
`("bin", op, left, right, pos)`, `("neg"|"pos", x, pos)`, `("and"|"or", a, b)`, `("not", x)`,
`("if", cond, then, else)`, `("cmp", ops, operands, pos, spans)`, `("list", items)`,
`("index", seq, i, pos, span)`,
`("slice", seq, lower, upper, step, pos, spans)` (a bound left out is None), `("field", obj, name, pos)` and
`("call", fname, args, pos, spans)`, where a span
is the (offset, length) of an operand, an index or an argument, for a caret on the one that is wrong; `evaluation`
walks them. Syntax the language does not have gets a help line from `unsupported`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

from archspec.lang.codes import ARITHMETIC_OVERFLOW, EXPR_SYNTAX, EXPR_TOO_LARGE, NON_FINITE_NUMBER
from archspec.lang.expr.unsupported import for_call, for_character, for_string_prefix, for_word

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
                raise ExprError(EXPR_SYNTAX, f"`{src[i:j]}` is not a number", i, j - i) from None
            if isinstance(value, int) and value > MAX_INT:
                raise ExprError(ARITHMETIC_OVERFLOW, f"{src[i:j]} is beyond the 64-bit range", i, j - i)
            if isinstance(value, float) and not math.isfinite(value):
                raise ExprError(NON_FINITE_NUMBER, f"{src[i:j]} is beyond the range of a number (about 1.8e308)", i,
                                j - i, hint="expressions take only finite numbers")
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
                raise ExprError(EXPR_SYNTAX, "a string is not closed", i, n - i, hint=f"add the closing {c}")
            out.append(("str", "".join(buf), i))
            i = j + 1
        elif c == ":" and _in_brackets(src, i):
            out.append(("op", ":", i))
            i += 1
        else:
            for op in _OPS:
                if src.startswith(op, i):
                    out.append(("op", op, i))
                    i += len(op)
                    break
            else:
                hint = ("use `==` to compare" if c == "=" else "use `and`, `or`, `not`" if c in "&|!"
                        else for_character(src, i))
                raise ExprError(EXPR_SYNTAX, f"unexpected character `{c}`", i, 1, hint=hint)
    out.append(("end", None, n))
    return out


def _in_brackets(src: str, i: int) -> bool:
    """Whether a `:` at `src[i]` is inside `[...]` (a slice) rather than Python syntax the language lacks."""
    before = src[:i]
    words = before.replace("(", " ").replace(")", " ").replace("[", " ").split()
    return before.count("[") > before.count("]") and "lambda" not in words and before.count("{") <= before.count("}")


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
            hint = for_word(v) if k == "name" else None
            raise ExprError(EXPR_SYNTAX, f"expected `{value}` but found {found}", pos, 1, hint=hint)

    def span(self, first: int) -> tuple[int, int]:
        """(offset, length) of the text from token `first` up to the current token, without trailing space."""
        start = self.toks[first][2]
        return start, max(1, len(self.src[start : self.toks[self.i][2]].rstrip()))

    def parse(self) -> tuple:
        node = self.expr()
        k, v, pos = self.peek()
        if k != "end":
            raw = self.src[pos : self.toks[self.i + 1][2]].strip() or str(v)
            raise ExprError(EXPR_SYNTAX, f"unexpected `{raw}` after a complete expression", pos, len(raw),
                            hint=self._after_hint(k, v, pos))
        return node

    def _after_hint(self, kind: str, value: Any, pos: int) -> str:
        prev_kind, prev, prev_pos = self.toks[self.i - 1]
        hint = for_word(value) if kind == "name" else None
        if hint is None and kind == "str" and prev_kind == "name" and prev_pos + len(prev) == pos:
            hint = for_string_prefix(prev)
        return hint or "expressions are one value; did you leave out an operator?"

    def expr(self) -> tuple:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExprError(EXPR_TOO_LARGE, f"the expression is nested more than {MAX_DEPTH} deep", self.peek()[2])
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
            raise ExprError(EXPR_TOO_LARGE, f"the expression is nested more than {MAX_DEPTH} deep", self.peek()[2])

    def comparison(self) -> tuple:
        start = self.i
        first = self.sum_()
        ops, operands, pos, spans = [], [first], self.peek()[2], [self.span(start)]
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
            start = self.i
            operands.append(self.sum_())
            spans.append(self.span(start))
        return first if not ops else ("cmp", ops, operands, pos, spans)

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
                raise ExprError(EXPR_TOO_LARGE, f"the expression is nested more than {MAX_DEPTH} deep", p)
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
                    raise ExprError(EXPR_SYNTAX, "only the built-in functions can be called", p,
                                    hint=for_call(node[0]))
                self.next()
                args, spans = self.arguments()
                node = ("call", node[1], args, node[2], spans)
            elif k == "op" and v == "[":
                self.next()
                node = self.subscript(node, p)
            elif k == "op" and v == ".":
                self.next()
                k2, name, p2 = self.next()
                if k2 != "name":
                    raise ExprError(EXPR_SYNTAX, "expected a field name after `.`", p2)
                node = ("field", node, name, p2)
            else:
                return node

    def subscript(self, seq: tuple, pos: int) -> tuple:
        """After `seq[`: an index `seq[i]` or a slice `seq[a:b]`, `seq[a:b:c]` (each bound optional)."""
        parts: list = []
        spans: list = []
        while True:
            start = self.i
            if self.peek()[:2] in (("op", ":"), ("op", "]")):
                parts.append(None)
                spans.append((self.peek()[2], 1))
            else:
                parts.append(self.expr())
                spans.append(self.span(start))
            if len(parts) == 3 or not self.accept("op", ":"):
                break
        self.expect("op", "]")
        if len(parts) == 1:
            return ("index", seq, parts[0], pos, spans[0])
        parts += [None] * (3 - len(parts))
        spans += [spans[-1]] * (3 - len(spans))
        return ("slice", seq, parts[0], parts[1], parts[2], pos, tuple(spans))

    def arguments(self) -> tuple[list, list]:
        """The arguments of a call after its `(`, up to and including the `)`, and the (offset, length) of each."""
        args: list = []
        spans: list = []
        if not self.accept("op", ")"):
            while True:
                start = self.i
                args.append(self.expr())
                spans.append(self.span(start))
                if not self.accept("op", ","):
                    break
            self.expect("op", ")")
        return args, spans

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
        raise ExprError(EXPR_SYNTAX, f"expected a value but found {found}", p, max(1, len(str(v or ""))))


def parse(src: str) -> tuple:
    """Parse expression text (without the leading `=`) into a tree of tuples.

    Each text is parsed once: its tree, or the error it gets, is remembered (`_parsed`), so that an expression read
    in every copy of a `repeat` costs one parse, the same tree object each time (what `work.Meter` keys its
    figures by). The error raised is a copy: callers move its offset into the text around the expression.
    """
    if len(src) > MAX_SOURCE:  # checked before the cache, which holds texts within the budget only
        raise ExprError(EXPR_TOO_LARGE, f"the expression is {len(src):,} characters long; the budget is {MAX_SOURCE:,}",
                        0, 1, hint="move parts of it into named params")
    tree = _parsed(src)
    if isinstance(tree, ExprError):
        raise replace(tree)
    return tree


@lru_cache(maxsize=8192)
def _parsed(src: str) -> tuple | ExprError:
    if not src.strip():
        return ExprError(EXPR_SYNTAX, "the expression is empty", 0, 1)
    try:
        return _Parser(src).parse()
    except ExprError as e:
        return replace(e)  # kept without its traceback (which holds the parser)


parse.cache_clear = _parsed.cache_clear  # type: ignore[attr-defined]  # (as when `parse` itself was lru_cached)


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
