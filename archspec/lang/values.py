"""Evaluating spec values: literals, `=expressions` and `${...}` interpolation, with errors at the right column.

`Scope` is a chain of name lookups (builtins of a `repeat`, the arguments of a block, the spec's params).
`evaluate_value` turns any YAML value into its final value, recursing into lists and mappings, and converts
expression errors into diagnostics that point inside the YAML scalar where the problem is.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping

from archspec.lang import expr
from archspec.lang.codes import EXPR_TOO_LARGE
from archspec.lang.diagnostics import Diagnostic, Loc
from archspec.lang.yamlsrc import LocDict, LocList


class Failed(Exception):
    """A value could not be computed; the diagnostic is already recorded (or is carried here)."""

    def __init__(self, diagnostic: Diagnostic | None = None):
        super().__init__(diagnostic.message if diagnostic else "failed")
        self.diagnostic = diagnostic


class Scope:
    """Name lookup through layers, innermost first; a layer is a mapping or a function raising KeyError."""

    def __init__(self, layers: Iterable[Mapping[str, Any] | Callable[[str], Any]] = (),
                 names: Iterable[str] = ()):
        self.layers = list(layers)
        self._extra_names = list(names)

    def child(self, *layers: Mapping[str, Any] | Callable[[str], Any], names: Iterable[str] = ()) -> "Scope":
        return Scope(list(layers) + self.layers, list(names) + self._extra_names)

    def lookup(self, name: str) -> Any:
        for layer in self.layers:
            if callable(layer):
                try:
                    return layer(name)
                except KeyError:
                    continue
            elif name in layer:
                return layer[name]
        raise KeyError(name)

    def names(self) -> list[str]:
        out = list(self._extra_names)
        for layer in self.layers:
            if not callable(layer):
                out.extend(layer)
        return out


def expression_loc(loc: Loc | None, offset: int, length: int) -> Loc | None:
    return loc.shifted(offset, length) if loc is not None and loc.line else loc


def _run(text: str, start: int, loc: Loc | None, scope: Scope) -> Any:
    try:
        return expr.evaluate(expr.parse(text), scope.lookup, scope.names)
    except expr.ExprError as e:
        raise Failed(Diagnostic(e.code, e.message, expression_loc(loc, start + e.offset, e.length),
                                hint=e.hint)) from None
    except RecursionError:
        raise Failed(Diagnostic(EXPR_TOO_LARGE, "the expression is nested too deeply", loc)) from None
    except Failed as f:  # a lazily computed name (in_channels) failed; point at the expression reading it
        if f.diagnostic is not None:
            if f.diagnostic.loc is None:
                f.diagnostic.loc = loc
            elif loc is not None and f.diagnostic.loc != loc and not f.diagnostic.code.startswith("E4"):
                # (a shape that does not fit is a problem of its node, not of the expression that needed it)
                f.diagnostic.notes.append((loc, f"needed by `{text.strip()}` here"))
        raise


def evaluate_expression(text: str, loc: Loc | None, scope: Scope) -> Any:
    """A field that is always an expression (`when`, `check`): the leading `=` is optional."""
    if isinstance(text, bool):
        return text
    start = 1 if text.startswith("=") else 0
    return _run(text[start:], start, loc, scope)


def evaluate_value(value: Any, loc: Loc | None, scope: Scope) -> Any:
    """A YAML value with every `=expr` and `${...}` inside it computed."""
    if isinstance(value, str):
        if value.startswith("="):
            return _run(value[1:], 1, loc, scope)
        if "${" in value:
            try:
                return expr.interpolate(value, scope.lookup, scope.names)
            except expr.ExprError as e:
                raise Failed(Diagnostic(e.code, e.message, expression_loc(loc, e.offset, e.length),
                                        hint=e.hint)) from None
        return value
    if isinstance(value, list):
        locs = value.locs if isinstance(value, LocList) else []
        return [evaluate_value(v, locs[i] if i < len(locs) else loc, scope) for i, v in enumerate(value)]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            out[k] = evaluate_value(v, value.val_loc(k) if isinstance(value, LocDict) else loc, scope)
        return out
    return value


def needs_evaluation(value: Any) -> bool:
    if isinstance(value, str):
        return value.startswith("=") or "${" in value
    if isinstance(value, list):
        return any(needs_evaluation(v) for v in value)
    if isinstance(value, dict):
        return any(needs_evaluation(v) for v in value.values())
    return False
