"""Safe YAML reading with a source position for every key and value.

Specs are plain data. This module reads a file under fixed budgets (size, nesting, alias expansion), rejects
what a spec has no business containing (binary data, tabs for indentation, duplicate keys, Python-object tags),
and returns `LocDict`/`LocList` trees: ordinary dicts and lists that also remember where each entry was written.
Nothing is ever constructed from a YAML tag and nothing is evaluated.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from archspec.lang.diagnostics import Diagnostic, Loc, Sources, SpecError

MAX_BYTES = 1 << 20  # 1 MiB: ResNet-1202's spec is under 2 KB
MAX_NODES = 100_000  # YAML nodes after aliases are expanded
MAX_DEPTH = 64  # nesting of mappings and sequences

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
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


def display_path(path: Path) -> str:
    """The path as the user will recognise it: relative to the working folder when inside it."""
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return str(path)
    return rel if not rel.startswith("..") else str(path)


def read_text(path: Path, display: str, sources: Sources) -> str:
    """Read a spec file within the size budget; a binary, undecodable or empty file is a diagnostic."""
    try:
        if path.is_dir():
            raise SpecError([Diagnostic("E001", f"{display} is a folder, not a spec file", Loc(display, 0, 0),
                                        hint="name a .yaml file inside it")])
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise SpecError([Diagnostic(
                "E002", f"spec file is {size:,} bytes; the budget is {MAX_BYTES:,} bytes", Loc(display, 0, 0),
                hint="a spec describes structure, not data; split it or generate it from templates and `repeat`")])
        with path.open("rb") as f:
            data = f.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise SpecError([Diagnostic("E001", f"no such file: {display}", Loc(display, 0, 0))]) from None
    except PermissionError:
        raise SpecError([Diagnostic("E001", f"permission denied reading {display}", Loc(display, 0, 0))]) from None
    except OSError as e:
        raise SpecError([Diagnostic("E001", f"cannot read {display}: {e.strerror or e}", Loc(display, 0, 0))]) from None
    if len(data) > MAX_BYTES:  # grew while we looked
        raise SpecError([Diagnostic("E002", f"spec file is over the budget of {MAX_BYTES:,} bytes",
                                    Loc(display, 0, 0))])
    if b"\x00" in data:
        line = data.count(b"\n", 0, data.index(b"\x00")) + 1
        raise SpecError([Diagnostic("E003", "this is a binary file (it contains NUL bytes), not a YAML spec",
                                    Loc(display, line, 1), hint="check the path; specs are UTF-8 YAML text")])
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        sources.add(display, data.decode("utf-8", errors="replace"))  # to quote the line
        line = data.count(b"\n", 0, e.start) + 1
        col = len(data[data.rfind(b"\n", 0, e.start) + 1 : e.start].decode("utf-8", errors="replace")) + 1
        raise SpecError([Diagnostic("E003", f"byte 0x{data[e.start]:02x} is not valid UTF-8",
                                    Loc(display, line, col), hint="save the file as UTF-8")]) from None
    sources.add(display, text)
    if not any(ln.strip() and not ln.lstrip().startswith("#") for ln in text.splitlines()):
        raise SpecError([Diagnostic("E004", "the spec file is empty", Loc(display, 1, 1),
                                    hint="a spec needs at least `archspec: 1` and a `network:` list")])
    return text


def _tab_problems(text: str, display: str) -> list[Diagnostic]:
    out = []
    for i, line in enumerate(text.splitlines(), 1):
        indent = line[: len(line) - len(line.lstrip(" \t"))]
        if "\t" in indent:
            col = indent.index("\t") + 1
            out.append(Diagnostic("E006", "a tab is used for indentation; YAML allows only spaces there",
                                  Loc(display, i, col, col + 1), hint="replace the tab with spaces"))
    return out


def _flow_depth_problem(text: str, display: str) -> Diagnostic | None:
    """Find `[[[[...` nesting beyond the budget before the parser (which recurses in C) sees it."""
    depth, quote, line, col, comment = 0, "", 1, 0, False
    prev = "\n"
    for ch in text:
        col += 1
        if ch == "\n":
            line, col, comment = line + 1, 0, False
        elif comment:
            pass
        elif quote:
            if ch == quote and prev != "\\":
                quote = ""
        elif ch in "\"'" and prev in " \t\n[{,:-":
            quote = ch
        elif ch == "#" and prev in " \t\n":
            comment = True
        elif ch in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return Diagnostic("E010", f"collections are nested more than {MAX_DEPTH} deep",
                                  Loc(display, line, col, col + 1), hint="flatten the structure")
        elif ch in "]}":
            depth = max(0, depth - 1)
        prev = ch
    return None


_HINTS = {
    "mapping values are not allowed":
        "a plain value cannot contain `: `; quote the value, or check this line's indentation",
    "could not find expected ':'": "a key needs `: ` after it; check for a missing colon or an unclosed quote",
    "expected a single document in the stream": "keep one spec per file (remove the extra `---`)",
    "found undefined alias": "an alias `*name` needs an anchor `&name` earlier in the file",
    "expected ',' or '}'":
        "inside `{...}` rows, quote values that contain `,`, `[`, `]`, `{` or `}` (e.g. \"=min(a, b)\")",
    "expected ',' or ']'":
        "inside `[...]` lists, quote values that contain `,`, `[`, `]`, `{` or `}`",
    "did not find expected node content": "a value is missing or a flow collection is left open",
    "found unexpected end of stream": "a quote or bracket is never closed",
}


_OPENERS = {"flow sequence": ("[", "]"), "flow mapping": ("{", "}"), "quoted scalar": ("quote", "quote")}


def _syntax_problem(e: yaml.MarkedYAMLError, text: str, display: str) -> Diagnostic:
    problem = (e.problem or "invalid YAML").strip()
    context = (e.context or "").strip()
    pm, cm = e.problem_mark, e.context_mark
    if "expected a single document" in context:
        return Diagnostic("E005", "the file holds more than one YAML document", Loc(display, pm.line + 1, 1),
                          hint="keep one spec per file (remove the `---` and what follows, or split the file)")
    opener = next((v for k, v in _OPENERS.items() if k in context), None)
    if opener and cm is not None and pm is not None and (pm.line != cm.line or "end of stream" in problem):
        # an unclosed bracket or quote: the useful place is where it opens, not where the parser gave up
        what = "a quoted string" if opener[0] == "quote" else f"`{opener[0]}`"
        return Diagnostic("E005", f"YAML syntax: {what} opened here is never closed", Loc(display, cm.line + 1,
                          cm.column + 1, cm.column + 2),
                          hint=f"close it{'' if opener[0] == 'quote' else f' with `{opener[1]}`'} on this line, "
                          "or quote values that contain `,`, `[`, `]`, `{` or `}`" if opener[0] != "quote"
                          else "add the closing quote")
    mark = pm or cm
    msg = f"YAML syntax: {problem}"
    if context and cm is not None and pm is not None:
        msg += f" ({context} at line {cm.line + 1})"
    hint = next((h for k, h in _HINTS.items() if k in problem or k in context), None)
    lines = text.splitlines()
    if mark is not None and mark.line >= len(lines) and lines:  # past the end: show the last line instead
        return Diagnostic("E005", msg, Loc(display, len(lines), len(lines[-1]) + 1), hint=hint)
    loc = Loc(display, mark.line + 1, mark.column + 1) if mark is not None else Loc(display, 0, 0)
    return Diagnostic("E005", msg, loc, hint=hint)


def parse(text: str, display: str) -> Any:
    """YAML text to a LocDict/LocList tree; raises SpecError with every problem found."""
    tabs = _tab_problems(text, display)
    if tabs:
        raise SpecError(tabs)
    deep = _flow_depth_problem(text, display)
    if deep:
        raise SpecError([deep])
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as e:
        raise SpecError([_syntax_problem(e, text, display)]) from None
    except yaml.YAMLError as e:  # errors without a mark
        raise SpecError([Diagnostic("E005", f"YAML syntax: {e}", Loc(display, 0, 0))]) from None
    except RecursionError:
        raise SpecError([Diagnostic("E010", f"the YAML is nested more than {MAX_DEPTH} deep", Loc(display, 0, 0))])
    if node is None:
        raise SpecError([Diagnostic("E004", "the spec file is empty", Loc(display, 1, 1))])
    converter = _Converter(display, text)
    value = converter.convert(node, 0, set())
    if converter.problems:
        raise SpecError(converter.problems)
    return value


def load_file(path: Path, sources: Sources, display: str | None = None) -> Any:
    display = display or display_path(path)
    return parse(read_text(path, display, sources), display)


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


class _Converter:
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
        import bisect

        line = bisect.bisect_right(self.line_starts, index) - 1
        return line + 1, index - self.line_starts[line] + 1

    def convert(self, node: yaml.Node, depth: int, active: set[int]) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            where = self.aliases[0] if self.aliases else node
            raise SpecError(self.problems + [Diagnostic(
                "E009", f"the YAML expands to more than {MAX_NODES:,} values: the anchor here is repeated by aliases "
                "that repeat other aliases", self.loc(where),
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
                "E010", f"the YAML is nested more than {MAX_DEPTH} deep", self.loc(node))])
        if id(node) in active:
            raise SpecError(self.problems + [Diagnostic(
                "E009", "an alias refers to the collection that contains it", self.loc(node),
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
            "E008", f"YAML tag `{tag}` is not accepted: specs are plain data and no object is built from a tag",
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
                self.problems.append(Diagnostic("E012", "this number is beyond the 64-bit range", self.loc(node),
                                                hint="sizes and counts must fit in 64 bits"))
            else:
                tag = node.tag.replace(_T, "!!")
                self.problems.append(Diagnostic("E005", f"`{node.value}` cannot be read as {tag}", self.loc(node),
                                                hint="remove the tag or write a value of that type"))
            return 0
        except yaml.YAMLError as e:
            self.problems.append(Diagnostic("E005", f"YAML value: {getattr(e, 'problem', e)}", self.loc(node)))
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
                        self.problems.append(Diagnostic("E100", "`<<` merges only mappings", self.loc(src)))
                        continue
                    for k, v in value.items():
                        merged.append((k, v, value.key_loc(k), value.val_loc(k)))
                continue
            if not isinstance(knode, yaml.ScalarNode):
                self.problems.append(Diagnostic(
                    "E011", "a mapping key must be a plain name, not a list or mapping", self.loc(knode)))
                continue
            if knode.tag not in _SCALAR_TAGS and knode.tag not in _RAW_TAGS:
                self.bad_tag(knode)
            key = knode.value  # names are kept exactly as written: `0`, `on` and `null` are names here
            if key in out:
                first = out.key_locs[key]
                self.problems.append(Diagnostic(
                    "E007", f"key `{key}` appears twice in this mapping (first at line {first.line})",
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
