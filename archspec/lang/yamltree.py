"""Composed YAML nodes turned into `LocDict`/`LocList` trees: plain data that remembers where it was written.

Owns the located containers (`LocDict`, `LocList`, `loc_of`) and `Converter`, which walks the nodes PyYAML
composed and checks, on the way, the budgets of nesting and of alias expansion, duplicate keys, keys that are not
plain names, tags (no object is ever built from one) and numbers beyond 64 bits. Reading the text and the YAML
syntax errors are `yamlsrc`'s.
"""

from __future__ import annotations

import bisect
from typing import Any

import yaml

from archspec.lang.codes import (ALIAS_EXPANSION_TOO_LARGE, DUPLICATE_KEY, FILE_TOO_LARGE, INVALID_MAPPING_KEY,
                                 NUMBER_TOO_LARGE, REFUSED_YAML_TAG, WRONG_TYPE, YAML_SYNTAX, YAML_TOO_DEEP)
from archspec.lang.diagnostics import Diagnostic, Loc, SpecError

MAX_NODES = 100_000  # YAML nodes after aliases are expanded
MAX_DEPTH = 64  # nesting of mappings and sequences

_T = "tag:yaml.org,2002:"
_SCALAR_TAGS = {_T + "str", _T + "int", _T + "float", _T + "bool", _T + "null"}
_RAW_TAGS = {_T + "timestamp", _T + "value"}  # kept as the text written: dates and a lone `=` are not special here


class LocDict(dict):
    """A dict that remembers where it, each key, and each value stand in the source."""

    def __init__(self, *args: Any, loc: Loc | None = None, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.loc = loc
        self.key_locs: dict[str, Loc] = {}
        self.val_locs: dict[str, Loc] = {}

    def key_loc(self, key: str) -> Loc | None:
        return self.key_locs.get(key, self.loc)

    def val_loc(self, key: str) -> Loc | None:
        return self.val_locs.get(key) or self.key_locs.get(key) or self.loc


class LocList(list):
    """A list that remembers where it and each element stand in the source."""

    def __init__(self, *args: Any, loc: Loc | None = None) -> None:
        super().__init__(*args)
        self.loc = loc
        self.locs: list[Loc | None] = []

    def val_loc(self, index: int) -> Loc | None:
        if 0 <= index < len(self.locs) and self.locs[index] is not None:
            return self.locs[index]
        return self.loc


def loc_of(container: Any, key: Any) -> Loc | None:
    """Where `container[key]` was written, for either kind of container; None if unknown."""
    if isinstance(container, (LocDict, LocList)):
        return container.val_loc(key)
    return None


def _after_escape(text: str, i: int) -> int:
    """The index after the double-quoted escape sequence starting at text[i] (a backslash)."""
    kind = text[i + 1 : i + 2]
    width = {"x": 2, "u": 4, "U": 8}.get(kind, 0)
    if kind in ("\r", "\n"):  # an escaped line break also eats the next line's indentation
        j = i + 2
        while j < len(text) and text[j] in " \t":
            j += 1
        return j
    return i + 2 + width


class Converter:
    """Turns composed YAML nodes into LocDict/LocList/scalars, checking every rule on the way."""

    def __init__(self, display: str, text: str = "") -> None:
        self.display = display
        self.text = text
        self.line_starts = [0] + [i + 1 for i, c in enumerate(text) if c == "\n"]
        self.count = 0
        self.problems: list[Diagnostic] = []
        self.seen: set[int] = set()  # nodes converted once: meeting one again means an alias
        self.aliases: list[yaml.Node] = []  # aliases being expanded, outermost first
        self.constructor = yaml.constructor.SafeConstructor()

    def loc(self, node: yaml.Node) -> Loc:
        s, e = node.start_mark, node.end_mark
        col = s.column + 1
        end = e.column + 1 if e.line == s.line else None
        chars = self.char_positions(node) if isinstance(node, yaml.ScalarNode) else None
        if isinstance(node, yaml.ScalarNode) and node.style in ("'", '"') and end:
            return Loc(self.display, s.line + 1, col + 1, end - 1, chars)  # the text inside the quotes
        return Loc(self.display, s.line + 1, col, end, chars)

    def char_positions(self, node: yaml.ScalarNode) -> tuple[tuple[int, int], ...] | None:
        """(line, col) of each character of the value, when the value is not a straight copy of the source."""
        text, s, e = self.text, node.start_mark.index, node.end_mark.index
        if not text or e > len(text) or not node.value:
            return None
        style, value = node.style, node.value
        inner = text[s + 1 : e - 1] if style in ("'", '"') else text[s:e]
        if inner == value:
            return None
        i = s + 1 if style in ("'", '"') else (text.find("\n", s) + 1 if style in (">", "|") else s)
        out: list[int] = []
        for ch in value:
            if i >= e:
                out.append(e - 1)
                continue
            if style == '"' and text[i] == "\\":
                out.append(i)
                i = _after_escape(text, i)
            elif style == "'" and text.startswith("''", i):
                out.append(i)
                i += 2
            elif ch in " \t\n":
                out.append(i)
                if text[i] in "\r\n":
                    i += 1
                    while i < e and text[i] in " \t":
                        i += 1
                elif text[i] in " \t":
                    i += 1
            else:
                while i < e and text[i] != ch:
                    i += 1
                out.append(min(i, e - 1))
                i += 1
        return tuple(self.line_col(k) for k in out)

    def line_col(self, index: int) -> tuple[int, int]:
        line = bisect.bisect_right(self.line_starts, index) - 1
        return line + 1, index - self.line_starts[line] + 1

    def convert(self, node: yaml.Node, depth: int, active: set[int]) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            if not self.aliases:  # a big file written out in full: no anchor is to blame
                raise SpecError(self.problems + [Diagnostic(
                    FILE_TOO_LARGE, f"the file holds more than {MAX_NODES:,} YAML values, the budget for a spec",
                    self.loc(node),
                    hint="a spec describes structure, not data: write repeated items once, with `repeat` or a "
                    "block template")])
            raise SpecError(self.problems + [Diagnostic(
                ALIAS_EXPANSION_TOO_LARGE, f"the YAML expands to more than {MAX_NODES:,} values: the anchor here is "
                "repeated by aliases that repeat other aliases", self.loc(self.aliases[0]),
                hint="use block templates and `repeat` instead of anchors and aliases")])
        alias = id(node) in self.seen and not isinstance(node, yaml.ScalarNode)
        self.seen.add(id(node))
        if alias:
            self.aliases.append(node)
            try:
                return self._convert(node, depth, active)
            finally:
                self.aliases.pop()
        return self._convert(node, depth, active)

    def _convert(self, node: yaml.Node, depth: int, active: set[int]) -> Any:
        if depth > MAX_DEPTH:
            raise SpecError(self.problems + [Diagnostic(
                YAML_TOO_DEEP, f"the YAML is nested more than {MAX_DEPTH} deep", self.loc(node))])
        if id(node) in active:
            raise SpecError(self.problems + [Diagnostic(
                ALIAS_EXPANSION_TOO_LARGE, "an alias refers to the collection that contains it", self.loc(node),
                hint="an anchor cannot be used inside its own value")])
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node)
        active = active | {id(node)}
        if isinstance(node, yaml.SequenceNode):
            if node.tag != _T + "seq":
                self.bad_tag(node)
            out = LocList(loc=self.loc(node))
            for child in node.value:
                out.append(self.convert(child, depth + 1, active))
                out.locs.append(self.loc(child))
            return out
        if node.tag != _T + "map":
            self.bad_tag(node)
        return self.mapping(node, depth, active)

    def bad_tag(self, node: yaml.Node) -> None:
        tag = node.tag.replace(_T, "!!")
        self.problems.append(Diagnostic(
            REFUSED_YAML_TAG,
            f"YAML tag `{tag}` is not accepted: specs are plain data and no object is built from a tag",
            self.loc(node), hint="remove the tag"))

    def scalar(self, node: yaml.ScalarNode) -> Any:
        if node.tag in _RAW_TAGS:
            return node.value
        if node.tag not in _SCALAR_TAGS:
            self.bad_tag(node)
            return node.value
        try:
            value = self.constructor.construct_object(node)
            if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**63 - 1:
                raise ValueError(value)
            return value
        except ValueError:
            if node.value.strip().lstrip("+-").replace("_", "").isdigit():
                self.problems.append(Diagnostic(NUMBER_TOO_LARGE, "this number is beyond the 64-bit range",
                                                self.loc(node), hint="sizes and counts must fit in 64 bits"))
            else:
                tag = node.tag.replace(_T, "!!")
                self.problems.append(Diagnostic(YAML_SYNTAX, f"`{node.value}` cannot be read as {tag}", self.loc(node),
                                                hint="remove the tag or write a value of that type"))
            return 0
        except yaml.YAMLError as e:
            self.problems.append(Diagnostic(YAML_SYNTAX, f"YAML value: {getattr(e, 'problem', e)}", self.loc(node)))
            return node.value

    def mapping(self, node: yaml.MappingNode, depth: int, active: set[int]) -> LocDict:
        out = LocDict(loc=self.loc(node))
        merged: list[tuple[str, Any, Loc, Loc]] = []
        for knode, vnode in node.value:
            if knode.tag == _T + "merge":  # `<<: *base` merges another mapping under this one
                sources = vnode.value if isinstance(vnode, yaml.SequenceNode) else [vnode]
                for src in sources:
                    value = self.convert(src, depth + 1, active)
                    if not isinstance(value, LocDict):
                        self.problems.append(Diagnostic(WRONG_TYPE, "`<<` merges only mappings", self.loc(src)))
                        continue
                    for k, v in value.items():
                        merged.append((k, v, value.key_loc(k), value.val_loc(k)))
                continue
            if not isinstance(knode, yaml.ScalarNode):
                self.problems.append(Diagnostic(
                    INVALID_MAPPING_KEY, "a mapping key must be a plain name, not a list or mapping", self.loc(knode)))
                continue
            if knode.tag not in _SCALAR_TAGS and knode.tag not in _RAW_TAGS:
                self.bad_tag(knode)
            key = knode.value  # names are kept exactly as written: `0`, `on` and `null` are names here
            if key in out:
                first = out.key_locs[key]
                self.problems.append(Diagnostic(
                    DUPLICATE_KEY, f"key `{key}` appears twice in this mapping (first at line {first.line})",
                    self.loc(knode), hint="YAML would silently keep only the last one; remove or rename one"))
                continue
            out[key] = self.convert(vnode, depth + 1, active)
            out.key_locs[key] = self.loc(knode)
            out.val_locs[key] = self.loc(vnode)
        for k, v, kl, vl in merged:
            if k not in out:
                out[k] = v
                out.key_locs[k] = kl
                out.val_locs[k] = vl
        return out


def plain(value: Any) -> Any:
    """A located tree (or any value) as plain data for YAML, JSON and comparisons: `LocDict`s as dicts with text
    keys, `LocList`s and tuples as lists, at any depth."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value
