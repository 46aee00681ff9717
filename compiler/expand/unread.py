"""E214: a param that the user set (in the spec's own file, a library it imports, or with `--set`), or that the
spec's own file or a library the user wrote declares, must change what is built. One that nothing in the network reads is an error at the
line that set it: a typo of a name the network does read, or a setting that this network has no use for
(`stride_on` in a network of basic blocks), would otherwise build another network than the one meant, silently.
A param that a library the user wrote declares with a plain value (`nnn: 3`, its type inferred: it reads as a
setting) and nothing reads is an error; one that the spec's own file declares, or that a user's library declares
with its type (`{type: int, ...}`), is an error when its name is a near miss of a param there is (`shortcutt`
beside the library's `shortcut`); otherwise it is the user's own, unused word (a run's resolved spec.yaml
declares every param of its spec, read or not).

Reads are counted while the network is expanded (and while the input shape and the recipe are computed), through
the params computed from others (`depths: =[n, n, n]` makes a read of `depths` one of `n`). A constraint reading
a param is no use of it; the name and the description count only for params the spec's own file declares.
"""

from __future__ import annotations

import re
from typing import Any

from archspec.lang.codes import UNREAD_PARAM, UNUSED_BLOCK_CHANGE
from archspec.lang.diagnostics import Diagnostic, suggest
from archspec.lang.spec import Spec
from archspec.lang.yamlsrc import LocDict, LocList


def unread_params(spec: Spec) -> list[Diagnostic]:
    checked = spec.checked_params()
    if not checked:
        return []
    built = spec.used_params(spec.reads.network)
    named = spec.used_params(spec.reads.named)
    # a declared name near a param that exists (read or not) is most often that param, misspelled
    known = sorted(n for n in built | set(spec.param_table.entries) if n not in checked)
    out = []
    for name, (loc, how) in checked.items():
        if name in built or (how == "declared" and name in named):
            continue
        close = suggest(name, known) if how != "set" else []
        if how == "declared" and not close:
            continue  # the user's own vocabulary, declared with its type and unused: no setting is lost
        readers = _readers(spec.blocks, name)
        if close:
            hint = f"did you mean `{close[0]}`? (a new param that nothing reads is most often a misspelled one)"
        elif readers:
            hint = (f"block {readers[0]} reads it, but this network does not use that block" if len(readers) == 1
                    else f"blocks {_list(readers)} read it, but this network uses none of them")
        elif name in named:
            hint = "only the spec's name or description reads it; set the params the network is built from"
        elif how == "inferred":
            hint = (f"nothing reads `{name}`: remove it, or read it in the network (`={name}`); a param kept for "
                    f"later is declared with its type (`{name}: {{type: ..., default: ...}}`)")
        else:
            hint = "remove it, or read it in the network (`=" + name + "`)"
        what = "is set here" if how == "set" else "is declared here"  # (a plain value there declares it)
        d = Diagnostic(UNREAD_PARAM, f"`{name}` {what}, but nothing in this network reads it, so it changes "
                       "nothing", loc, hint=hint)
        if close:
            out.insert(0, d)  # a misspelled name first: the settings it leaves unread follow from it
        else:
            out.append(d)
    return out


def unused_block_changes(spec: Spec, used: set[str]) -> list[Diagnostic]:
    """E317: a block that the spec's own file or a library of the user's edits or changes (`edit:`, `insert_*`, a
    param default, a new body), but that this network never uses: the change changes nothing. (A shipped library
    takes the role `library` whoever imports it, so its own edits are never counted here.)"""
    out = []
    for name, history in spec.block_origins.items():
        if name in used:
            continue
        for what, loc, _, role in history:
            if role in ("top", "top library") and what in ("edited", "redefined"):
                out.append(Diagnostic(
                    UNUSED_BLOCK_CHANGE, f"block `{name}` is {'edited' if what == 'edited' else 'changed'} here, but "
                    "this network never uses it, so the change changes nothing", loc,
                    hint="the blocks this network uses: " + ", ".join(f"`{b}`" for b in sorted(used))
                    if used else None))
    return out


def _readers(blocks: LocDict, name: str) -> list[str]:
    """The block templates whose text reads `name` (for a hint: which blocks would have used it)."""
    word = re.compile(rf"(?<![A-Za-z0-9_.]){re.escape(name)}(?![A-Za-z0-9_])")
    return [f"`{b}`" for b, template in blocks.items() if _mentions(template, word)]


def _mentions(value: Any, word: re.Pattern) -> bool:
    if isinstance(value, str):
        return (value.startswith("=") or "${" in value or " " in value) and bool(word.search(value))
    if isinstance(value, (list, LocList)):
        return any(_mentions(v, word) for v in value)
    if isinstance(value, (dict, LocDict)):
        return any(k not in ("doc",) and _mentions(v, word) for k, v in value.items())
    return False


def _list(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
