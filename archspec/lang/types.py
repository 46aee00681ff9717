"""The one type checker of the language: does a value suit an op attribute or a block parameter?

Op attributes (`archspec.lang.ops`) and block template parameters (`params:` of a template) are checked by the
same function, so both say the same thing about the same mistake ("must be a whole number (write 3, not 3.0)").
"""

from __future__ import annotations

import math
from typing import Any, Container, Iterable, Mapping

# kind -> what a value of another kind is told it should be
EXPECTED = {"int": "a whole number", "size": "a whole number or [h, w]", "float": "a number", "number": "a number",
            "bool": "true or false", "str": "a string", "list": "a list", "map": "a mapping",
            "template": "a block name", "op": "the name of an op"}


NO_BLOCK = "none"  # a template param set to `none` names no block: the items that use it say `when: p != 'none'`


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _whole_numbers(kind: str, value: Any) -> tuple[list[Any], str | None]:
    """The numbers to range-check (a size may be [h, w]), or what is wrong with them."""
    parts = value if kind == "size" and isinstance(value, list) and len(value) == 2 else [value]
    for v in parts:
        if isinstance(v, bool) or not isinstance(v, int):
            if isinstance(v, float) and v.is_integer():
                return parts, f"a whole number (write {int(v)}, not {v})"
            return parts, EXPECTED[kind]
    return parts, None


def _kind_problem(kind: str, value: Any) -> str | None:
    if kind in ("int", "size"):
        return _whole_numbers(kind, value)[1]
    if kind in ("float", "number"):
        if not _is_number(value):
            return "a number"
        return None if math.isfinite(value) else "a finite number"
    ok = {"bool": lambda v: isinstance(v, bool), "str": lambda v: isinstance(v, str),
          "template": lambda v: isinstance(v, str), "op": lambda v: isinstance(v, str), "list": lambda v: isinstance(v, list),
          "map": lambda v: isinstance(v, dict)}.get(kind)
    return None if ok is None or ok(value) else EXPECTED[kind]


def _bound(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def declared_problem(kind: str, value: Any, decl: Mapping[str, Any], templates: Container[str] | None = None,
                     ops: Container[str] | None = None) -> str | None:
    """`value_problem` for a declaration written in a spec (`{type: list, items: {type: int, min: 1}}`,
    `{type: number, min: 0, below: 1}`): its bounds, choices and, for a list, the declaration of its items."""
    below = decl.get("below")
    problem = value_problem(kind, value, minimum=decl.get("min"),
                            maximum=below if below is not None else decl.get("max"), below_maximum=below is not None,
                            choices=decl.get("enum"), templates=templates, ops=ops)
    if problem is None and below is not None and decl.get("max") is not None:
        problem = value_problem(kind, value, maximum=decl.get("max"))
    items = decl.get("items")
    if problem is not None or items is None or not isinstance(value, list):
        return problem
    item_decl = {"type": items} if isinstance(items, str) else items
    item_kind = item_decl.get("type", "any")
    for i, item in enumerate(value):
        wrong = declared_problem(item_kind, item, item_decl, templates, ops)
        if wrong is not None:
            shown = f"`{item}`" if isinstance(item, str) else repr(item)
            return f"a list of {describe_items(item_decl)} (item {i + 1} is {shown}: it must be {wrong})"
    return None


PLURALS = {"int": "whole numbers", "size": "sizes", "float": "numbers", "number": "numbers", "bool": "booleans",
           "str": "strings", "list": "lists", "map": "mappings", "template": "block names", "op": "op names"}


def describe_items(decl: Mapping[str, Any]) -> str:
    """`whole numbers at least 1`: what each item of a list must be, in words."""
    words = [PLURALS.get(decl.get("type", "any"), "values")]
    if decl.get("enum"):
        words = ["values among " + ", ".join(str(c) for c in decl["enum"])]
    if decl.get("min") is not None:
        words.append(f"at least {_bound(decl['min'])}")
    if decl.get("below") is not None:
        words.append(f"below {_bound(decl['below'])}")
    if decl.get("max") is not None:
        words.append(f"at most {_bound(decl['max'])}")
    return " ".join(words)


def value_problem(kind: str, value: Any, *, minimum: float | None = None, maximum: float | None = None,
                  choices: Iterable[Any] | None = None, templates: Container[str] | None = None,
                  below_maximum: bool = False, ops: Container[str] | None = None) -> str | None:
    """None if `value` suits; otherwise what was expected ("a whole number", "at least 1", "one of a, b").

    `kind` is an attribute type (int, size, bool, float, str, list) or a parameter type (also number, map,
    template, op, any); `templates` is what a `template` value must name, `ops` what an `op` value must name; `below_maximum` excludes the maximum itself
    (a probability p < 1).
    """
    problem = _kind_problem(kind, value)
    if problem:
        return problem
    if kind == "template" and templates is not None and value not in templates and value != NO_BLOCK:
        return "the name of a block"
    if kind == "op" and ops is not None and value not in ops:
        return "the name of an op (`archspec ops` lists them)"
    if choices is not None and value not in choices:
        return "one of " + ", ".join(str(c) for c in choices)
    numbers = _whole_numbers(kind, value)[0] if kind in ("int", "size") else [value] if _is_number(value) else []
    if minimum is not None and any(v < minimum for v in numbers):
        return f"at least {_bound(minimum)}" if minimum or kind not in ("int", "size") else "zero or more"
    if maximum is not None and below_maximum and any(v >= maximum for v in numbers):
        return f"below {_bound(maximum)}"
    if maximum is not None and any(v > maximum for v in numbers):
        return f"at most {_bound(maximum)}"
    return None
