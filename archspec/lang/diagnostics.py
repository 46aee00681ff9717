"""Diagnostics: source locations, error codes, and how problems are printed.

Every problem archspec finds in a spec becomes a `Diagnostic` with a code (a constant of `archspec.lang.codes`), a
message that says what was expected and what was found, a location in the YAML (`file:line:col`), and, where one is
likely, a fix. Problems are collected, never raised one at a time, so the user sees all of them at once:

    specs/x.yaml:14:7: error[E305]: `add` reads `shortcut`, which is not defined in block `basic`
       14 |       - add: {op: add, in: [bn2, shortcut]}
          |                                  ^^^^^^^^
       = help: did you mean `downsample`?
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Iterable, Iterator

# The catalogue of codes (code -> one-line meaning) is derived from the constants of `archspec.lang.codes` and is
# importable from here too. `archspec explain CODE` prints the line (and the long text in lang/explanations.py, for
# the codes that have one).
from archspec.lang.codes import CODES
from archspec.lang.errors import UserError
from archspec.lang.nearmiss import did_you_mean, edits, suggest  # (near misses: their own module)

__all__ = ["CODES", "Diagnostic", "Loc", "Sources", "SpecError", "did_you_mean", "edits", "printable", "render_json",
           "render_text", "suggest"]


@dataclass(frozen=True)
class Loc:
    """A place in a source file: 1-based line and column, with the end of the span on the same line if known.

    `chars` maps each character of a scalar's value to its (line, col) in the file when they differ from a
    straight run (escapes, quotes doubled, values folded over several lines), so that a caret can point
    inside such a value exactly.
    """

    file: str
    line: int
    col: int
    end_col: int | None = None
    chars: tuple[tuple[int, int], ...] | None = field(default=None, compare=False, repr=False)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}" if self.line else self.file

    def shifted(self, offset: int, length: int | None = None) -> "Loc":
        """The place of the value's character at `offset` (for pointing inside an expression)."""
        if self.chars:
            line, col = self.chars[max(0, min(offset, len(self.chars) - 1))]
            last = offset + (length or 1) - 1
            end = None
            if length and 0 <= last < len(self.chars) and self.chars[last][0] == line:
                end = self.chars[last][1] + 1
            return Loc(self.file, line, col, end)
        col = self.col + offset
        return Loc(self.file, self.line, col, col + length if length else None)


@dataclass
class Diagnostic:
    code: str  # a constant of archspec.lang.codes: a `Code`, the string (E305) with its one-line meaning
    message: str
    loc: Loc | None = None
    hint: str | None = None
    severity: str = "error"
    notes: list[tuple[Loc | None, str]] = field(default_factory=list)
    node: str | None = field(default=None, compare=False)  # the graph node it is about, where there is one

    def as_dict(self) -> dict:
        d: dict = {"severity": self.severity, "code": self.code, "message": self.message}
        if self.loc is not None:
            d.update(file=self.loc.file, line=self.loc.line, col=self.loc.col)
        if self.hint:
            d["hint"] = self.hint
        if self.notes:
            d["notes"] = [
                {"message": m, **({"file": l.file, "line": l.line, "col": l.col} if l else {})}
                for l, m in self.notes
            ]
        return d

    def headline(self) -> str:
        where = f"{self.loc}: " if self.loc else ""
        return f"{where}{self.severity}[{self.code}]: {self.message}"


class SpecError(UserError):
    """Raised to abandon work on a spec; carries every diagnostic collected so far (exit code 2).

    `str(e)` is the diagnostics exactly as `archspec` prints them (`render_text`): each headline with its source
    line and caret, notes and help. The source lines are quoted once the text of the files read is known: the
    entry points that read specs (`archspec.cli.main`, `archspec.load`/`compile`/`build`/...) attach it with
    `quoting`, since the error is often raised where it is not at hand.
    """

    def __init__(self, diagnostics: Iterable[Diagnostic], sources: "Sources | None" = None):
        self.diagnostics = list(diagnostics)
        self.sources = sources
        super().__init__("\n".join(d.headline() for d in self.diagnostics))

    def quoting(self, sources: "Sources") -> "SpecError":
        """This error, quoting from `sources` (the files read while it arose) unless it already quotes some."""
        if self.sources is None:
            self.sources = sources
        return self

    def __str__(self) -> str:
        return render_text(self.diagnostics, self.sources)

    def __reduce__(self) -> tuple:
        return (SpecError, (self.diagnostics, self.sources))


class Sources:
    """The text of every file read in one run, so diagnostics can quote the offending line."""

    def __init__(self) -> None:
        self._lines: dict[str, list[str]] = {}

    def add(self, file: str, text: str) -> None:
        self._lines[file] = text.splitlines()

    def line(self, file: str, line: int) -> str | None:
        lines = self._lines.get(file)
        if lines is None or not 1 <= line <= len(lines):
            return None
        return lines[line - 1]


def printable(text: str, keep: str = "") -> str:
    """`text` with every character a terminal would act on or that would change how the line reads (C0 and C1
    controls such as ESC, BEL and line breaks; format characters such as a right-to-left override; unpaired
    surrogates) written as its Python escape: `\\x1b`, `\\n`, `\\u202e`; the characters of `keep` (`"\\n"`)
    stay as they are. Text from a spec, a flag or a file name is shown this way wherever archspec prints it for a
    person, so it is read, never obeyed."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() or ch in keep else repr(ch)[1:-1] for ch in text)


def render_text(diagnostics: Iterable[Diagnostic], sources: Sources | None = None) -> str:
    """Each diagnostic as `file:line:col: error[CODE]: message`, the source line, a caret, and the help line.
    Every part is `printable`: a message or a line that quotes spec text cannot move the cursor, set the
    terminal's title or forge a line of its own."""
    out: list[str] = []
    for d in diagnostics:
        out.append(printable(d.headline()))
        if d.loc is not None and sources is not None and d.loc.line:
            text = sources.line(d.loc.file, d.loc.line)
            if text is not None:
                out.extend(_quote(text, d.loc))
        for loc, note in d.notes:
            out.append(printable(f"   = note: {note}" + (f" ({loc})" if loc else "")))
        if d.hint:
            out.append(printable(f"   = help: {d.hint}"))
    return "\n".join(out)


def _quote(text: str, loc: Loc) -> Iterator[str]:
    """The source line and a caret under the span; a character shown as its escape moves the caret with it."""
    gutter = " " * len(str(loc.line))
    line, before = text.expandtabs(1), max(0, loc.col - 1)
    col = len(printable(line[:before])) + 1 + max(0, before - len(line))  # (a column past the end stays there)
    width = max(1, (loc.end_col - loc.col) if loc.end_col and loc.end_col > loc.col else 1)
    width = max(1, len(printable(line[before : before + width])))
    shown = printable(line)
    if len(shown) > 160:  # keep enormous single-line files readable
        start = max(0, col - 80)
        shown = ("..." if start else "") + shown[start : start + 160]
        col = col - start + (3 if start else 0)
    width = min(width, max(1, len(shown) - col + 1))
    yield f" {loc.line} | {shown}"
    yield f" {gutter} | {' ' * (col - 1)}{'^' * width}"


def render_json(results: list[dict]) -> str:
    return json.dumps(results, indent=2)
