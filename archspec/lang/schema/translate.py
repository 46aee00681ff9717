"""jsonschema's errors turned into located diagnostics in archspec's words.

`translate` picks, for one jsonschema error, the small function that words errors of its validator kind
(`type`, `required`, `enum`, `anyOf`, ...) from the `_BY_VALIDATOR` table; kinds it does not know get the plain
jsonschema message. `dedupe` merges what one mistake reports twice and orders the diagnostics by position.
Of the op registry this module reads `OPS` (each op's `.attrs` and their `.doc`) and `USER_OPS`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from archspec.lang.codes import (INVALID_CHOICE, INVALID_NODE_NAME, INVALID_SIZE, INVALID_VALUE, MISSING_KEY,
                                 MISSING_OP_ATTR, UNKNOWN_KEY, UNKNOWN_OP, UNNAMED_ITEM, UNSUPPORTED_FORMAT_VERSION,
                                 WRONG_TYPE)
from archspec.lang.diagnostics import Diagnostic, Loc, did_you_mean
from archspec.lang.schema.build import EDIT_PATH_PATTERN, FORMAT_VERSION, IDENT_PATTERN, ITEM_KEYS, NAME_PATTERN
from archspec.lang.yamlsrc import LocDict, LocList


def kind_of(v: Any) -> str:
    """A value as a diagnostic names it: `3`, `true/false`, `the string "x"`, `a list`, ..."""
    if isinstance(v, bool):
        return "true/false"
    if isinstance(v, (int, float)):
        return f"{v:g}" if isinstance(v, float) else str(v)
    if isinstance(v, str):
        return f"the string {json.dumps(v, ensure_ascii=False)}" if len(v) < 40 else "a string"
    if isinstance(v, list):
        return "a list"
    if isinstance(v, dict):
        return "a mapping"
    return "null" if v is None else type(v).__name__


def _walk(doc: Any, path: Iterable[Any]) -> tuple[Any, Any, Any]:
    """Follow a JSON path; return (container of the last step, last key, value)."""
    parent, key, value = None, None, doc
    for step in path:
        parent, key = value, step
        try:
            value = value[step]
        except (KeyError, IndexError, TypeError):
            break
    return parent, key, value


def _loc_of(doc: Any, path: list, display: str, *, key: bool = False) -> Loc:
    parent, k, value = _walk(doc, path)
    if parent is None:
        return getattr(doc, "loc", None) or Loc(display, 1, 1)
    if key and isinstance(parent, LocDict):
        return parent.key_loc(k) or Loc(display, 1, 1)
    if isinstance(parent, (LocDict, LocList)):
        return parent.val_loc(k) or Loc(display, 1, 1)
    return Loc(display, 1, 1)


def _where(path: list) -> str:
    """A readable name for a JSON path: `node conv2`, `params.width`, `recipe.optimizer.lr`."""
    if not path:
        return "the file"
    # inside a body, name the node: ..., <index>, <node name>, <key>...
    for i in range(len(path) - 2, -1, -1):
        if isinstance(path[i], int) and i > 0 and path[i - 1] in ("network", "body") and \
                isinstance(path[i + 1], str):
            rest = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path[i + 2:]).lstrip(".")
            return (f"`{rest}` of node `{path[i + 1]}`" if rest else f"node `{path[i + 1]}`")
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return f"`{out}`"


def _branch_of(error: Any) -> int | None:
    rel = list(error.relative_schema_path)
    return rel[0] if rel and isinstance(rel[0], int) else None


def _pick_branch(error: Any) -> Any | None:
    """For anyOf: the branch the value was evidently meant for (its type matched), else None.

    `kernel: 0` fails both `integer >= 1` and `=expression`; the first branch is the one to report.
    """
    branches: dict[int, list[Any]] = {}
    for sub in error.context:
        b = _branch_of(sub)
        if b is not None:
            branches.setdefault(b, []).append(sub)
    meant = []
    for b, errs in branches.items():
        at_root = [e for e in errs if not e.relative_path]
        type_miss = any(e.validator == "type" or
                        (e.validator in ("const", "enum") and not _same_type(e.instance, e.validator_value)) or
                        (e.validator == "pattern" and e.schema.get("pattern") == "^=") for e in at_root)
        if not type_miss:
            meant.append(errs)
    inst = error.instance
    if len(meant) != 1 and not (isinstance(inst, str) and inst.startswith("=")):
        # nothing fits: report against the branch that is not the `=expression` alternative
        plain = [errs for errs in branches.values()
                 if not any(e.validator == "pattern" and e.schema.get("pattern") == "^=" or
                            (not isinstance(inst, str) and e.schema.get("type") == "string") for e in errs)]
        meant = plain[:1] if len(plain) == 1 else meant
    if len(meant) != 1:
        return None
    errs = meant[0]
    errs.sort(key=lambda e: (-len(e.absolute_path), e.validator in ("anyOf", "oneOf")))
    return errs[0]


def _same_type(instance: Any, allowed: Any) -> bool:
    values = allowed if isinstance(allowed, list) else [allowed]
    return any(type(instance) is type(v) for v in values)


@dataclass
class _Failure:
    """One jsonschema error with what every wording needs: where it is in the file and in words."""

    error: Any
    doc: Any
    display: str
    path: list
    where: str
    loc: Loc

    @classmethod
    def of(cls, error: Any, doc: Any, display: str) -> _Failure:
        path = list(error.absolute_path)
        return cls(error, doc, display, path, _where(path), _loc_of(doc, path, display))

    @property
    def inst(self) -> Any:
        return self.error.instance

    @property
    def schema(self) -> Any:
        return self.error.schema

    def op(self) -> str | None:
        """The `op:` of the failing mapping, when it is a node that names one."""
        inst = self.inst
        return inst.get("op") if self.path and isinstance(inst, dict) and isinstance(inst.get("op"), str) else None


def _any_of(f: _Failure) -> list[Diagnostic]:
    sub = _pick_branch(f.error)
    if sub is not None:
        return translate(sub, f.doc, f.display)
    path, inst = f.path, f.inst
    if path and path[-1] == "input":
        return [Diagnostic(WRONG_TYPE, f"`input` should be [C, H, W] or \"CxHxW\", found {kind_of(inst)}", f.loc,
                           hint="e.g. `input: [3, 224, 224]`")]
    if path and path[-1] in ("kernel", "stride", "pad", "dilation"):
        return [Diagnostic(WRONG_TYPE, f"{f.where} should be a whole number k or a pair [kh, kw], found "
                           f"{kind_of(inst)}", f.loc)]
    expected = f.schema.get("description")
    return [Diagnostic(WRONG_TYPE, f"{f.where} has the wrong form: found {kind_of(inst)}", f.loc,
                       hint=f"expected {expected}" if expected else None)]


_TYPE_WORDS = {"integer": "a whole number", "object": "a mapping", "array": "a list", "string": "a string",
               "number": "a number", "boolean": "true or false"}


def _type(f: _Failure) -> list[Diagnostic]:
    inst = f.inst
    want = f.schema.get("type")
    want = " or ".join(want) if isinstance(want, list) else want
    want = _TYPE_WORDS.get(want, want)
    hint = None
    if want in ("a whole number", "a number") and isinstance(inst, str):
        hint = "values computed from params are written as `=expression`"
    elif want == "a whole number" and isinstance(inst, float) and inst.is_integer():
        hint = f"write {int(inst)}"
    return [Diagnostic(WRONG_TYPE, f"{f.where} should be {want}, found {kind_of(inst)}", f.loc, hint=hint)]


def _additional_properties(f: _Failure) -> list[Diagnostic]:
    from archspec.lang.ops import OPS

    inst, path = f.inst, f.path
    allowed = set(f.schema.get("properties", {}))
    out = []
    op = f.op()
    for extra in sorted(set(inst) - allowed, key=lambda k: (inst.key_loc(k).line if isinstance(inst, LocDict)
                                                              and inst.key_loc(k) else 0)):
        kloc = _loc_of(f.doc, path + [extra], f.display, key=True)
        if op in OPS:
            names = sorted(k for k in allowed if k not in ITEM_KEYS)
            msg = f"unknown attribute `{extra}` of op `{op}`" + (f" in {f.where}" if path else "")
        elif not path:
            names, msg = sorted(allowed), f"unknown top-level key `{extra}`"
        else:
            names, msg = sorted(allowed), f"unknown key `{extra}` in {f.where}"
        out.append(Diagnostic(UNKNOWN_KEY, msg, kloc, hint=did_you_mean(extra, names, what="allowed")))
    return out


def _required(f: _Failure) -> list[Diagnostic]:
    from archspec.lang.ops import OPS

    inst, path = f.inst, f.path
    missing = [k for k in f.schema.get("required", []) if isinstance(inst, dict) and k not in inst]
    op = f.op()
    if missing == ["op"]:
        return [Diagnostic(MISSING_KEY, f"{f.where} needs `op:` (a primitive), `use:` (a block) or `cases:`", f.loc,
                           hint="e.g. `- conv1: {op: conv, out: 64, kernel: 3}`")]
    if not path and missing == ["archspec"]:
        return [Diagnostic(MISSING_KEY, "the file does not say its format version", Loc(f.display, 1, 1),
                           hint=f"add `archspec: {FORMAT_VERSION}` as the first line")]
    out = []
    for k in missing:
        if op in OPS:
            attr = OPS[op].attrs.get(k)
            doc_text = f" ({attr.doc})" if attr is not None and attr.doc else ""
            out.append(Diagnostic(MISSING_OP_ATTR,
                                  f"op `{op}` needs `{k}`{doc_text}" + (f" in {f.where}" if path else ""),
                                  f.loc, hint=f"add `{k}: ...` to this node"))
        else:
            out.append(Diagnostic(MISSING_KEY, f"{f.where} needs `{k}`", f.loc, hint=f"add `{k}: ...`"))
    return out


def _enum(f: _Failure) -> list[Diagnostic]:
    from archspec.lang.ops import unknown_op_hint

    inst, path = f.inst, f.path
    choices = f.schema.get("enum") or [f.schema.get("const")]
    if path and path[-1] == "op":
        return [Diagnostic(UNKNOWN_OP, f"unknown op `{inst}`", f.loc, hint=unknown_op_hint(inst))]
    if path == ["archspec"]:
        return [Diagnostic(UNSUPPORTED_FORMAT_VERSION, f"this is archspec format {inst!r}; this version reads format "
                           f"{FORMAT_VERSION}", f.loc, hint=f"write `archspec: {FORMAT_VERSION}`")]
    if len(choices) == 1:
        return [Diagnostic(INVALID_CHOICE, f"{f.where} must be {json.dumps(choices[0])}, found {kind_of(inst)}", f.loc)]
    close = did_you_mean(str(inst), [str(c) for c in choices], what="allowed")
    listed = ", ".join(json.dumps(c) for c in choices)
    return [Diagnostic(INVALID_CHOICE, f"{f.where} is {kind_of(inst)}; allowed: {listed}", f.loc,
                       hint=close if close and close.startswith("did you mean") else None)]


def _item_size(f: _Failure) -> list[Diagnostic]:
    """`minProperties`/`maxProperties`: a list item is one named node."""
    if not isinstance(f.inst, dict):
        return _other(f)
    names = list(f.inst)
    if not names:
        return [Diagnostic(UNNAMED_ITEM, "an empty item: each list item is `- name: {op: ...}`", f.loc)]
    return [Diagnostic(UNNAMED_ITEM, f"each list item is one named node (`- name: {{op: ...}}`); this item has "
                       f"{len(names)} keys: " + ", ".join(f"`{n}`" for n in names), f.loc,
                       hint="indent the node's fields under its name, or give the item `repeat:`")]


def _property_names(f: _Failure) -> list[Diagnostic]:
    error = f.error
    node = _walk(f.doc, f.path)[2] if f.path else f.doc
    sub = error.context[0] if error.context else None
    name = sub.instance if sub is not None else "?"
    kloc = _loc_of(f.doc, f.path + [name], f.display, key=True) if isinstance(node, dict) else f.loc
    return [Diagnostic(INVALID_NODE_NAME, f"`{name}` is not a valid name", kloc,
                       hint="names are letters, digits and `_` (not starting with a digit), or a number")]


# What a pattern of the schema asks for, in words (a regular expression is no message for a user).
_PATTERN_WORDS = {
    NAME_PATTERN: "letters A-Z and a-z, digits and `_`, not starting with a digit (or a plain number such as `0`)",
    IDENT_PATTERN: "letters A-Z and a-z, digits and `_`, not starting with a digit",
    r"^[0-9]+(x[0-9]+)*$": "whole numbers joined by `x`, such as `3x224x224`",
    EDIT_PATH_PATTERN: "an item's name (or the position of an unnamed item, such as `0`), then `.cases.K` for "
                       "alternative K of a `cases:` item: `conv2`, `downsample.cases.0`",
}


def _pattern(f: _Failure) -> list[Diagnostic]:
    if f.schema.get("pattern") == "^=":
        return [Diagnostic(WRONG_TYPE, f"{f.where} should be a number or an `=expression`, found {kind_of(f.inst)}",
                           f.loc)]
    if "propertyNames" in f.error.schema_path:
        return _bad_name(f)
    return _limit(f)


def _bad_name(f: _Failure) -> list[Diagnostic]:
    """A key that is not a valid name: a node's (an item of `network` or of a body) or a param's or block's."""
    name = f.inst
    node = isinstance(f.path[-1], int) if f.path else False
    kloc = _loc_of(f.doc, f.path + [name], f.display, key=True)
    what = "node name" if node else {"params": "param name", "blocks": "block name", "edit": "path of an edit",
                                     "insert_before": "item name", "insert_after": "item name"}.get(
        f.path[-1] if f.path else "", "name")
    words = _PATTERN_WORDS.get(f.schema.get("pattern"), f"of the form {f.schema.get('pattern')}")
    return [Diagnostic(INVALID_NODE_NAME if node else INVALID_VALUE, f"`{name}` is not a valid {what}", kloc,
                       hint=f"a {what} is made of {words}")]


def _limit(f: _Failure) -> list[Diagnostic]:
    """A bound or a form: minimum, maximum, minItems, maxItems, pattern, ..."""
    v, inst, limit = f.error.validator, f.inst, f.error.validator_value
    found = kind_of(inst)
    if isinstance(inst, list):
        found = "an empty list" if not inst else f"{len(inst)} item{'s' if len(inst) != 1 else ''}"
    text = {"minimum": f"at least {limit}", "maximum": f"at most {limit}", "exclusiveMaximum": f"below {limit}",
            "minItems": f"at least {limit} item{'s' if limit != 1 else ''}",
            "maxItems": f"at most {limit} item{'s' if limit != 1 else ''}",
            "pattern": f"made of {_PATTERN_WORDS[limit]}" if limit in _PATTERN_WORDS else f"of the form {limit}",
            }.get(v, f"{v} {limit}")
    code = INVALID_SIZE if v == "minimum" and isinstance(inst, int) else INVALID_VALUE
    return [Diagnostic(code, f"{f.where} must be {text}, found {found}", f.loc)]


def _not(f: _Failure) -> list[Diagnostic]:
    return [Diagnostic(INVALID_VALUE, f"{f.where} mixes `op:`, `use:` and `cases:`; a node is exactly one of them",
                       f.loc, hint="split it into two items")]


def _other(f: _Failure) -> list[Diagnostic]:
    return [Diagnostic(INVALID_VALUE, f"{f.where}: {f.error.message}", f.loc)]


_BY_VALIDATOR: dict[str, Callable[[_Failure], list[Diagnostic]]] = {
    "anyOf": _any_of, "oneOf": _any_of,
    "type": _type,
    "additionalProperties": _additional_properties,
    "required": _required,
    "enum": _enum, "const": _enum,
    "maxProperties": _item_size, "minProperties": _item_size,
    "propertyNames": _property_names,
    "pattern": _pattern,
    "minimum": _limit, "maximum": _limit, "exclusiveMinimum": _limit, "exclusiveMaximum": _limit,
    "minItems": _limit, "maxItems": _limit,
    "multipleOf": _limit,
    "not": _not,
}


def translate(error: Any, doc: Any, display: str) -> list[Diagnostic]:
    """The diagnostics for one jsonschema error on the parsed file `doc`."""
    return _BY_VALIDATOR.get(error.validator, _other)(_Failure.of(error, doc, display))


def dedupe(diags: list[Diagnostic]) -> list[Diagnostic]:
    """Merge `unknown attribute kernal` + `needs kernel` on one node into the first; drop exact repeats."""
    drop: set[int] = set()
    for d in diags:
        if d.code == UNKNOWN_KEY and d.hint and d.hint.startswith("did you mean"):
            target = d.hint.split("`")[1]
            for m in diags:
                if m.code in (MISSING_KEY, MISSING_OP_ATTR) and f"needs `{target}`" in m.message and m.loc and d.loc \
                        and m.loc.line <= d.loc.line:
                    drop.add(id(m))
    out: list[Diagnostic] = []
    seen: set[tuple] = set()
    for d in diags:
        key = (d.code, d.message, str(d.loc))
        if id(d) in drop or key in seen:
            continue
        seen.add(key)
        out.append(d)
    out.sort(key=lambda d: (d.loc.file, d.loc.line, d.loc.col) if d.loc else ("", 0, 0))
    return out
