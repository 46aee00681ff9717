"""Merging located documents (`extends`, `imports`), and the edits a file makes to the body of a block it inherits.

- `merge`: mappings key by key, `constraints` appended, lists and scalars replaced; every value keeps the location
  of the file that wrote it.
- `merge_files`: `merge` of two whole files, where a block template may also carry `edit:`, `insert_before:` and
  `insert_after:`. They change named items of the body the block has so far (from the files merged before, or
  this file's own `body:`) without copying it:

  ```yaml
  blocks:
    bottleneck:
      params: {groups: {type: int, default: 1}}
      edit:
        conv2: {groups: =groups}            # merged into the item conv2, key by key; `key: null` removes a key
        downsample.cases.0: {use: proj2}    # an alternative of a `cases:` item, by position
      insert_after:
        bn3: [{se: {use: squeeze_excite}}]  # new items after bn3 (insert_before: likewise)
  ```

  A path starts with an item's name, or with the position of an unnamed item (`0` for a block whose body is one
  `repeat` or `cases` item); `.cases.K` steps into alternative K. A path that names nothing is E305 at the path,
  with a near miss; edits of a block that no earlier file defines are E301. Edits are applied when the file is
  merged and then dropped, so a file that extends this one sees the edited body.
"""

from __future__ import annotations

from typing import Any

from archspec.lang.codes import UNDEFINED_NODE, UNKNOWN_BLOCK
from archspec.lang.diagnostics import Diagnostic, Loc, did_you_mean
from archspec.lang.schema.build import ITEM_KEYS
from archspec.lang.yamlsrc import LocDict, LocList

EDIT_KEYS = ("edit", "insert_before", "insert_after")


def merge(base: Any, over: Any, key: str | None = None) -> Any:
    """Deep merge of located documents: mappings key by key, `constraints` appended, the rest replaced."""
    if isinstance(base, LocDict) and isinstance(over, LocDict):
        out = _copy(base, loc=over.loc or base.loc)
        for k, v in over.items():
            if k in out and k == "constraints" and isinstance(out[k], LocList) and isinstance(v, LocList):
                joined = LocList(list(out[k]) + list(v), loc=v.loc)
                joined.locs = list(out[k].locs) + list(v.locs)
                out[k] = joined
            else:
                out[k] = merge(out[k], v, k) if k in out else v
            out.key_locs[k] = over.key_locs.get(k, out.key_locs.get(k))
            out.val_locs[k] = over.val_locs.get(k, out.val_locs.get(k))
        return out
    return over


def merge_files(base: LocDict, over: LocDict, diags: list[Diagnostic]) -> LocDict:
    """`merge` of two files' contents, applying the block edits of `over` to the bodies `base` gives them."""
    edited = isinstance(over.get("blocks"), LocDict) and any(
        isinstance(t, LocDict) and any(k in t for k in EDIT_KEYS) for t in over["blocks"].values())
    if not edited:
        return merge(base, over)
    blocks = base.get("blocks") if isinstance(base.get("blocks"), LocDict) else LocDict(loc=None)
    out = merge(base, _without(over, ("blocks",)))
    out["blocks"] = _merge_blocks(blocks, over["blocks"], diags)
    out.key_locs["blocks"], out.val_locs["blocks"] = over.key_locs.get("blocks"), over.val_locs.get("blocks")
    return out


def has_edits(template: Any) -> bool:
    """Whether a template only edits (a block some other file defines) rather than defining one."""
    return isinstance(template, LocDict) and "body" not in template and any(k in template for k in EDIT_KEYS)


def _copy(d: LocDict, loc: Loc | None = None) -> LocDict:
    out = LocDict(d, loc=loc or d.loc)
    out.key_locs, out.val_locs = dict(d.key_locs), dict(d.val_locs)
    return out


def _without(d: LocDict, keys: tuple[str, ...]) -> LocDict:
    out = LocDict({k: v for k, v in d.items() if k not in keys}, loc=d.loc)
    out.key_locs = {k: v for k, v in d.key_locs.items() if k not in keys}
    out.val_locs = {k: v for k, v in d.val_locs.items() if k not in keys}
    return out


def _merge_blocks(base: LocDict, over: LocDict, diags: list[Diagnostic]) -> LocDict:
    out = _copy(base, loc=over.loc or base.loc)
    for name, template in over.items():
        if not isinstance(template, LocDict) or not any(k in template for k in EDIT_KEYS):
            out[name] = merge(out[name], template, name) if name in out else template
        else:
            plain = _without(template, EDIT_KEYS)
            merged = merge(out[name], plain, name) if name in out else plain
            if "body" in merged:
                merged["body"] = BodyEdit(name, merged["body"], template, diags).apply()
            else:
                first = next(k for k in EDIT_KEYS if k in template)
                diags.append(Diagnostic(UNKNOWN_BLOCK, f"`{first}` changes block `{name}`, which no file merged before "
                                        "this one defines", template.key_loc(first),
                                        hint=did_you_mean(name, base, what="blocks") or "edits apply to a block "
                                        "that `extends` or `imports` brings; a new block needs `body:`"))
            out[name] = merged
        out.key_locs[name] = over.key_locs.get(name, out.key_locs.get(name))
        out.val_locs[name] = over.val_locs.get(name, out.val_locs.get(name))
    return out


def item_name(item: Any) -> str | None:
    """The name of a body item `- name: {...}`, or None for an unnamed one (`repeat`, the single item)."""
    if isinstance(item, LocDict) and len(item) == 1 and not any(k in ITEM_KEYS for k in item):
        return str(next(iter(item)))
    return None


class BodyEdit:
    """The edits one template of one file makes to a body: paths found, then edits, then insertions."""

    def __init__(self, block: str, body: Any, template: LocDict, diags: list[Diagnostic], what: str | None = None):
        self.block, self.body, self.template, self.diags = block, body, template, diags
        self.what = what or f"block `{block}`"  # how messages name the body: "block `basic`", "the network"
        items = body if isinstance(body, list) else []
        self.names = {item_name(it): i for i, it in enumerate(items) if item_name(it) is not None}

    def apply(self) -> Any:
        if not isinstance(self.body, LocList):
            return self.body
        items, locs = list(self.body), list(self.body.locs)
        edits = self.template.get("edit", {})
        for path, change in edits.items():
            pos = self._position(path, edits)
            if pos is not None and isinstance(change, LocDict):
                items[pos] = self._edit_item(items[pos], path, change, edits.key_loc(path))
        before = self._insertions("insert_before")
        after = self._insertions("insert_after")
        out = LocList([], loc=self.body.loc)
        out.locs = []
        for i, item in enumerate(items):
            for new, loc in before.get(i, []) + [(item, locs[i] if i < len(locs) else None)] + after.get(i, []):
                out.append(new)
                out.locs.append(loc)
        return out

    def _position(self, path: str, owner: LocDict) -> int | None:
        """The position in the body of the item `path` starts with; None (and E305) when there is none."""
        first = str(path).split(".")[0]
        if first in self.names:
            return self.names[first]
        where = owner.key_loc(path)
        if first.isdigit() and int(first) < len(self.body):
            named = item_name(self.body[int(first)])
            if named is None:
                return int(first)
            self._fail(f"item {first} of {self.what} is named `{named}`", where,
                       f"write `{named}` to change it")
            return None
        unnamed = [str(i) for i, it in enumerate(self.body) if item_name(it) is None]
        hint = did_you_mean(first, list(self.names) + unnamed, what="items")
        self._fail(f"{self.what} has no item `{first}`", where,
                   hint or f"its items are {', '.join(list(self.names) + unnamed)}")
        return None

    def _fail(self, message: str, loc: Loc | None, hint: str | None) -> None:
        self.diags.append(Diagnostic(UNDEFINED_NODE, message, loc, hint=hint))

    def _edit_item(self, item: LocDict, path: str, change: LocDict, loc: Loc | None) -> LocDict:
        name = item_name(item)
        node = item[name] if name is not None else item
        steps = str(path).split(".")[1:]
        edited = self._edit_node(node, steps, change, path, loc)
        if name is None:
            return edited
        out = _copy(item)
        out[name] = edited
        return out

    def _edit_node(self, node: Any, steps: list[str], change: LocDict, path: str, loc: Loc | None) -> Any:
        if not isinstance(node, LocDict):
            return node
        if not steps:
            out = merge(node, _without(change, tuple(k for k, v in change.items() if v is None)))
            for k in [k for k, v in change.items() if v is None]:
                out.pop(k, None)
                out.key_locs.pop(k, None)
                out.val_locs.pop(k, None)
            return out
        cases = node.get("cases")
        k = int(steps[1]) if len(steps) > 1 and steps[1].isdigit() else -1
        if steps[0] != "cases" or not isinstance(cases, LocList) or not 0 <= k < len(cases):
            shown = ".".join(str(path).split(".")[:-len(steps)] + steps[:2])
            count = f"alternatives 0 to {len(cases) - 1}" if isinstance(cases, LocList) else "no `cases:`"
            self._fail(f"`{shown}` names nothing in {self.what} (the item has {count})", loc,
                       "a path is NAME, or NAME.cases.K for alternative K of a `cases:` item")
            return node
        alternatives = LocList(list(cases), loc=cases.loc)
        alternatives.locs = list(cases.locs)
        alternatives[k] = self._edit_node(cases[k], steps[2:], change, path, loc)
        out = _copy(node)
        out["cases"] = alternatives
        return out

    def _insertions(self, key: str) -> dict[int, list[tuple[Any, Loc | None]]]:
        out: dict[int, list[tuple[Any, Loc | None]]] = {}
        table = self.template.get(key, {})
        for path, items in table.items():
            if "." in str(path):
                self._fail(f"`{key}` takes an item of the body, not `{path}`", table.key_loc(path),
                           "insert before or after the whole item: write its name")
                continue
            pos = self._position(path, table)
            if pos is not None and isinstance(items, LocList):
                out.setdefault(pos, []).extend((it, items.val_loc(i)) for i, it in enumerate(items))
        return out
