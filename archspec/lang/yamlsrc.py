"""Safe YAML reading with a source position for every key and value.

Specs are plain data. This module reads a file under fixed budgets (size, nesting, alias expansion), rejects
what a spec has no business containing (binary data, tabs for indentation, duplicate keys, Python-object tags),
and returns `LocDict`/`LocList` trees: ordinary dicts and lists that also remember where each entry was written.
Nothing is ever constructed from a YAML tag and nothing is evaluated.

This module owns reading a file (`read_text`, `load_file`), the checks made on the text before PyYAML sees it
(size, binary data, encoding, tabs, flow nesting) and the wording of YAML syntax errors; `yamltree` turns the
composed nodes into located trees. `LocDict`, `LocList` and `loc_of` are `yamltree`'s, re-exported here.
"""

from __future__ import annotations

import os
import select
import stat
import time
from pathlib import Path
from typing import Any

import yaml

from archspec.lang.codes import (ALIAS_EXPANSION_TOO_LARGE, EMPTY_FILE, FILE_TOO_LARGE, NOT_UTF8_TEXT, TAB_INDENTATION,
                                 UNREADABLE_FILE, YAML_SYNTAX, YAML_TOO_DEEP)
from archspec.lang.diagnostics import Diagnostic, Loc, Sources, SpecError
from archspec.lang.files import file_kind
from archspec.lang.yamltree import MAX_DEPTH, MAX_NODES, Converter, LocDict, LocList, loc_of, plain

__all__ = ["MAX_BYTES", "MAX_DEPTH", "MAX_NODES", "LocDict", "LocList", "display_path", "load_file", "loc_of",
           "parse", "plain", "read_text"]

MAX_BYTES = 1 << 20  # 1 MiB: ResNet-1202's spec is under 2 KB

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def display_path(path: Path) -> str:
    """The path as the user will recognise it: relative to the working folder when inside it."""
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return str(path)
    return rel if not rel.startswith("..") else str(path)


PIPE_TIMEOUT = 10  # seconds a pipe given as a spec may take to send it whole (ARCHSPEC_PIPE_TIMEOUT)


class _PipeTooSlow(Exception):
    """A pipe (or a device) that sent no end of file in time: `mode` is its stat mode, `seconds` the time given."""

    def __init__(self, mode: int, seconds: float):
        self.mode, self.seconds = mode, seconds


def pipe_timeout() -> float:
    """Seconds a pipe given as a spec may take to send it whole: $ARCHSPEC_PIPE_TIMEOUT, else `PIPE_TIMEOUT`."""
    text = os.environ.get("ARCHSPEC_PIPE_TIMEOUT", "").strip()
    if not text:
        return PIPE_TIMEOUT
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not 0 < seconds < float("inf"):
        raise ValueError(f"ARCHSPEC_PIPE_TIMEOUT must be a number of seconds above 0, got `{text}`")
    return seconds


def _read_at_most(path: Path, limit: int) -> bytes:
    """Up to `limit` bytes of a file. A pipe (`archspec validate <(cat spec)`, or a FIFO named as the spec) is read
    as its writer sends, and never waited on for ever: one with no writer reads as empty at once, and one whose
    writer sends no end of file within `pipe_timeout()` seconds (it holds the pipe open without writing) is
    `_PipeTooSlow`. So is a terminal or another device that has nothing to read."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        mode = os.fstat(fd).st_mode
        waits = not stat.S_ISREG(mode) and hasattr(select, "poll") and bool(getattr(os, "O_NONBLOCK", 0))
        if not waits and hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        seconds = pipe_timeout() if waits else 0.0
        deadline = time.monotonic() + seconds
        chunks, size = [], 0
        while size < limit:
            try:
                chunk = os.read(fd, min(1 << 20, limit - size))
            except BlockingIOError:  # a writer, but nothing sent yet
                left = deadline - time.monotonic()
                if left <= 0:
                    raise _PipeTooSlow(mode, seconds) from None
                poller = select.poll()
                poller.register(fd, select.POLLIN)
                poller.poll(left * 1000)  # data, or the writer closing (POLLHUP), or the time is up
                continue
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _folder_hint(path: Path) -> str:
    """What to do with a folder given as a spec: a run or sweep folder (or one of run folders) is for `archspec
    results`; the spec a run trained is its spec.yaml."""
    try:
        from itertools import islice

        runs = any((f / n).is_file() for f in (path, *islice(path.iterdir(), 200)) for n in ("run.json", "sweep.json"))
    except OSError:
        runs = False
    if runs:
        return (f"it holds runs: `archspec results {display_path(path)}` tables them; the spec a run trained is its "
                "spec.yaml")
    return "name a .yaml file inside it"


def read_text(path: Path, display: str, sources: Sources) -> str:
    """Read a spec file within the size budget; a binary, undecodable or empty file is a diagnostic."""
    try:
        if path.is_dir():
            raise SpecError([Diagnostic(UNREADABLE_FILE, f"{display} is a folder, not a spec file", Loc(display, 0, 0),
                                        hint=_folder_hint(path))])
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise SpecError([Diagnostic(
                FILE_TOO_LARGE, f"spec file is {size:,} bytes; the budget is {MAX_BYTES:,} bytes", Loc(display, 0, 0),
                hint="a spec describes structure, not data; split it or generate it from templates and `repeat`")])
        data = _read_at_most(path, MAX_BYTES + 1)
    except _PipeTooSlow as e:
        kind = "a pipe, and its writer" if stat.S_ISFIFO(e.mode) else f"{file_kind(e.mode)}, and it"
        raise SpecError([Diagnostic(
            UNREADABLE_FILE, f"this is {kind} sent no end of file within {e.seconds:g} s",
            Loc(display, 0, 0), hint="archspec never waits on a pipe for longer: write the spec to a file and give "
            "that, or give a slow writer more time with ARCHSPEC_PIPE_TIMEOUT=SECONDS")]) from None
    except ValueError as e:  # a bad ARCHSPEC_PIPE_TIMEOUT
        raise SpecError([Diagnostic(UNREADABLE_FILE, f"cannot read {display}: {e}", Loc(display, 0, 0))]) from None
    except FileNotFoundError:
        raise SpecError([Diagnostic(UNREADABLE_FILE, f"no such file: {display}", Loc(display, 0, 0))]) from None
    except PermissionError:
        raise SpecError([Diagnostic(UNREADABLE_FILE, f"permission denied reading {display}",
                                    Loc(display, 0, 0))]) from None
    except OSError as e:
        raise SpecError([Diagnostic(UNREADABLE_FILE, f"cannot read {display}: {e.strerror or e}",
                                    Loc(display, 0, 0))]) from None
    if len(data) > MAX_BYTES:  # grew while we looked
        raise SpecError([Diagnostic(FILE_TOO_LARGE, f"spec file is over the budget of {MAX_BYTES:,} bytes",
                                    Loc(display, 0, 0))])
    if b"\x00" in data:
        line = data.count(b"\n", 0, data.index(b"\x00")) + 1
        raise SpecError([Diagnostic(NOT_UTF8_TEXT, "this is a binary file (it contains NUL bytes), not a YAML spec",
                                    Loc(display, line, 1), hint="check the path; specs are UTF-8 YAML text")])
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        sources.add(display, data.decode("utf-8", errors="replace"))  # to quote the line
        line = data.count(b"\n", 0, e.start) + 1
        col = len(data[data.rfind(b"\n", 0, e.start) + 1 : e.start].decode("utf-8", errors="replace")) + 1
        raise SpecError([Diagnostic(NOT_UTF8_TEXT, f"byte 0x{data[e.start]:02x} is not valid UTF-8",
                                    Loc(display, line, col), hint="save the file as UTF-8")]) from None
    sources.add(display, text)
    if not any(ln.strip() and not ln.lstrip().startswith("#") for ln in text.splitlines()):
        raise SpecError([Diagnostic(EMPTY_FILE, "the spec file is empty", Loc(display, 1, 1),
                                    hint="a spec needs at least `archspec: 1` and a `network:` list")])
    return text


def _tab_problems(text: str, display: str) -> list[Diagnostic]:
    out = []
    for i, line in enumerate(text.splitlines(), 1):
        indent = line[: len(line) - len(line.lstrip(" \t"))]
        if "\t" in indent:
            col = indent.index("\t") + 1
            out.append(Diagnostic(TAB_INDENTATION, "a tab is used for indentation; YAML allows only spaces there",
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
                return Diagnostic(YAML_TOO_DEEP, f"collections are nested more than {MAX_DEPTH} deep",
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
        return Diagnostic(YAML_SYNTAX, "the file holds more than one YAML document", Loc(display, pm.line + 1, 1),
                          hint="keep one spec per file (remove the `---` and what follows, or split the file)")
    opener = next((v for k, v in _OPENERS.items() if k in context), None)
    if opener and cm is not None and pm is not None and (pm.line != cm.line or "end of stream" in problem):
        # an unclosed bracket or quote: the useful place is where it opens, not where the parser gave up
        what = "a quoted string" if opener[0] == "quote" else f"`{opener[0]}`"
        return Diagnostic(YAML_SYNTAX, f"YAML syntax: {what} opened here is never closed", Loc(display, cm.line + 1,
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
        return Diagnostic(YAML_SYNTAX, msg, Loc(display, len(lines), len(lines[-1]) + 1), hint=hint)
    loc = Loc(display, mark.line + 1, mark.column + 1) if mark is not None else Loc(display, 0, 0)
    return Diagnostic(YAML_SYNTAX, msg, loc, hint=hint)


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
        raise SpecError([Diagnostic(YAML_SYNTAX, f"YAML syntax: {e}", Loc(display, 0, 0))]) from None
    except RecursionError:
        raise SpecError([Diagnostic(YAML_TOO_DEEP, f"the YAML is nested more than {MAX_DEPTH} deep",
                                    Loc(display, 0, 0))])
    if node is None:
        raise SpecError([Diagnostic(EMPTY_FILE, "the spec file is empty", Loc(display, 1, 1))])
    converter = Converter(display, text)
    value = converter.convert(node, 0, set())
    if converter.problems:
        raise SpecError(converter.problems)
    return value


def parse_value(text: str, display: str) -> Any:
    """A value given on the command line (`--set`, `--recipe`), read as spec files are: a self-referring alias or
    nesting beyond the budget is a SpecError (E009, E010); text that is no YAML value stays the text; nothing (or
    `null`) is None."""
    if not text.strip():
        return None
    try:
        value = parse(text, display)
    except SpecError as e:
        if any(d.code in (ALIAS_EXPANSION_TOO_LARGE, YAML_TOO_DEEP) for d in e.diagnostics):
            raise
        return text
    return value


def load_file(path: Path, sources: Sources, display: str | None = None) -> Any:
    display = display or display_path(path)
    return parse(read_text(path, display, sources), display)
