"""The JSON Schema (draft 2020-12) of spec files, and schema errors turned into located diagnostics.

The schema is built here from the op registry (so an op's attributes are declared once, in `compiler.ops`) and
shipped as `specs/archspec.schema.json` for editors (`# yaml-language-server: $schema=...`); a test keeps the file
equal to what this module builds. `archspec schema` prints it. Each file is checked on its own, before `extends`
and `imports` are merged, so that an editor and archspec agree on every file.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Iterable

from archspec.lang.diagnostics import Diagnostic, Loc, did_you_mean
from archspec.lang.yamlsrc import LocDict, LocList

FORMAT_VERSION = 1
ITEM_KEYS = {"op", "use", "cases", "repeat", "in", "when", "stage", "doc", "with"}
RESERVED_NAMES = ITEM_KEYS | {"input", "index", "count", "in_channels", "in_shape"}
PARAM_TYPES = ["int", "float", "number", "bool", "str", "list", "map", "template", "any"]
NAME_PATTERN = r"^([A-Za-z_][A-Za-z0-9_]*|[0-9]+)$"
IDENT_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"

AUGMENT_OPS: dict[str, dict[str, Any]] = {
    "pad_crop": {"pad": {"type": "integer", "minimum": 0}, "size": {"type": "integer", "minimum": 1},
                 "fill": {"type": "number"}},
    "hflip": {"p": {"type": "number", "minimum": 0, "maximum": 1}},
    "scale_jitter": {"min": {"type": "integer", "minimum": 1}, "max": {"type": "integer", "minimum": 1}},
    "random_crop": {"size": {"type": "integer", "minimum": 1}},
    "lighting": {"alphastd": {"type": "number", "minimum": 0}},
}


def _expr() -> dict:
    return {"type": "string", "pattern": "^=", "description": "an expression: `=6 * n + 2`"}


def _or_expr(schema: dict) -> dict:
    return {"anyOf": [schema, {"$ref": "#/$defs/expr"}]}


def _attr_schema(attr: Any) -> dict:
    base: dict[str, Any]
    if attr.type == "int":
        base = {"type": "integer"}
    elif attr.type == "size":
        one = {"type": "integer"}
        if attr.min is not None:
            one["minimum"] = int(attr.min)
        base = {"anyOf": [one, {"type": "array", "items": _or_expr(one), "minItems": 2, "maxItems": 2}]}
        return _or_expr(base) | ({"description": attr.doc} if attr.doc else {})
    elif attr.type == "bool":
        base = {"type": "boolean"}
    elif attr.type == "float":
        base = {"type": "number"}
    elif attr.type == "list":
        base = {"type": "array"}
    else:
        base = {"type": "string"}
        if attr.choices:
            base["enum"] = list(attr.choices)
    if attr.min is not None and attr.type in ("int", "float"):
        base["minimum"] = attr.min if attr.type == "float" else int(attr.min)
    if attr.max is not None:
        base["maximum"] = attr.max
    schema = _or_expr(base)
    if attr.doc:
        schema["description"] = attr.doc
    return schema


def _node_common() -> dict:
    return {
        "in": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1}],
               "description": "input node(s); by default the previous item"},
        "when": {"type": ["string", "boolean"], "description": "include this item only if the expression holds"},
        "stage": {"type": "string", "description": "the Table 1 row this item starts (conv2_x, ...)"},
        "doc": {"type": "string"},
        "repeat": _or_expr({"type": "integer", "minimum": 0}),
    }


def build_schema() -> dict:
    from archspec.lang.ops import OPS, USER_OPS

    common = _node_common()
    op_defs: dict[str, Any] = {}
    op_rules = []
    for name in USER_OPS:
        op = OPS[name]
        props: dict[str, Any] = {"op": {"const": name}, **{k: {} for k in common}, "use": {}, "cases": {}}
        props.update({k: _attr_schema(a) for k, a in op.attrs.items()})
        op_defs[f"op_{name}"] = {
            "description": op.doc, "properties": props, "additionalProperties": False,
            "required": [k for k, a in op.attrs.items() if a.required],
        }
        op_rules.append({"if": {"properties": {"op": {"const": name}}, "required": ["op"]},
                         "then": {"$ref": f"#/$defs/op_{name}"}})
    defs: dict[str, Any] = {
        "expr": _expr(),
        "identifier": {"type": "string", "pattern": IDENT_PATTERN},
        "count": _or_expr({"type": "integer", "minimum": 1}),
        "number": _or_expr({"type": "number"}),
        "node": {
            "type": "object",
            "description": "a primitive op (`op:`), a block template (`use:`) or a choice (`cases:`)",
            "properties": {**common, "op": {"enum": USER_OPS}, "use": {"type": "string"},
                           "with": {"anyOf": [{"type": "object"}, {"$ref": "#/$defs/expr"}]},
                           "cases": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/node"}}},
            "allOf": [
                *op_rules,
                {"if": {"required": ["use"]}, "then": {"not": {"anyOf": [{"required": ["op"]},
                                                                           {"required": ["cases"]}]}}},
                {"if": {"required": ["cases"]}, "then": {"not": {"required": ["op"]}}},
                {"if": {"not": {"anyOf": [{"required": ["use"]}, {"required": ["cases"]}]}},
                 "then": {"required": ["op"]}},
            ],
        },
        "item": {
            "type": "object",
            "description": "`- name: {op: ...}`, or an unnamed `repeat` (children are named 0, 1, ...)",
            "if": {"anyOf": [{"required": [k]} for k in sorted(ITEM_KEYS)]},
            "then": {"$ref": "#/$defs/node"},
            "else": {
                "minProperties": 1, "maxProperties": 1,
                "propertyNames": {"pattern": NAME_PATTERN},
                "additionalProperties": {"$ref": "#/$defs/node"},
            },
        },
        "body": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/item"}},
        "param_type": {"enum": PARAM_TYPES},
        "param_decl": {"anyOf": [
            {"$ref": "#/$defs/param_type"},
            {"type": "object", "additionalProperties": False, "properties": {
                "type": {"$ref": "#/$defs/param_type"}, "default": {}, "min": {"type": "number"},
                "max": {"type": "number"}, "enum": {"type": "array", "minItems": 1}, "doc": {"type": "string"}}},
        ]},
        "constraint": {
            "type": "object", "required": ["check", "message"], "additionalProperties": False,
            "properties": {"check": {"type": ["string", "boolean"]}, "message": {"type": "string"}},
        },
        "template": {
            "type": "object", "additionalProperties": False,
            "description": "a block template (a file that extends another may give only the parts it changes)",
            "properties": {
                "doc": {"type": "string"},
                "params": {"type": "object", "propertyNames": {"pattern": IDENT_PATTERN},
                           "additionalProperties": {"$ref": "#/$defs/param_decl"}},
                "inputs": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/identifier"}},
                "output": {"type": "string"},
                "constraints": {"type": "array", "items": {"$ref": "#/$defs/constraint"}},
                "body": {"$ref": "#/$defs/body"},
            },
        },
        "augment": {
            "type": "object", "required": ["op"],
            "properties": {"op": {"enum": sorted(AUGMENT_OPS)}},
            "allOf": [{"if": {"properties": {"op": {"const": k}}},
                       "then": {"properties": {"op": {}, **v}, "additionalProperties": False}}
                      for k, v in sorted(AUGMENT_OPS.items())],
        },
        "recipe": _recipe_schema(),
    }
    defs.update(op_defs)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "urn:archspec:spec:1",
        "title": "archspec spec",
        "description": "A neural-network architecture as data: params, block templates, and a graph of named nodes.",
        "type": "object",
        "required": ["archspec"],
        "additionalProperties": False,
        "properties": {
            "archspec": {"const": FORMAT_VERSION, "description": "format version of this file"},
            "name": {"type": "string", "description": "model name; `${...}` interpolates params"},
            "description": {"type": "string"},
            "extends": {"type": "string", "description": "a spec this one starts from (path relative to this file)"},
            "imports": {"type": "array", "items": {"type": "string"},
                        "description": "libraries whose params, blocks and recipe this file uses"},
            "params": {"type": "object", "propertyNames": {"pattern": IDENT_PATTERN},
                       "description": "values (or `=` expressions) that `--set name=value` can override"},
            "constraints": {"type": "array", "items": {"$ref": "#/$defs/constraint"}},
            "input": {"anyOf": [
                {"type": "array", "minItems": 1, "maxItems": 3, "items": _or_expr({"type": "integer", "minimum": 1})},
                {"type": "string", "pattern": r"^[0-9]+(x[0-9]+)*$"}, {"$ref": "#/$defs/expr"}],
                "description": "input shape without the batch: [C, H, W] or \"3x224x224\""},
            "blocks": {"type": "object", "propertyNames": {"pattern": IDENT_PATTERN},
                       "additionalProperties": {"$ref": "#/$defs/template"}},
            "network": {"$ref": "#/$defs/body"},
            "output": {"type": "string", "description": "the output node (by default the last item)"},
            "recipe": {"$ref": "#/$defs/recipe"},
            "meta": {"type": "object", "description": "free-form notes for tools and readers"},
        },
        "$defs": defs,
    }


def _recipe_schema() -> dict:
    num, count = {"$ref": "#/$defs/number"}, {"$ref": "#/$defs/count"}
    nonneg = _or_expr({"type": "integer", "minimum": 0})

    def obj(props: dict, required: Iterable[str] = ()) -> dict:
        out = {"type": "object", "additionalProperties": False, "properties": props}
        if required:
            out["required"] = list(required)
        return out

    return obj({
        "dataset": obj({
            "name": {"enum": ["cifar10", "imagenet_folder", "synthetic"]},
            "train_size": nonneg, "val_size": nonneg, "classes": count, "image_size": count,
            "normalize": {"enum": ["per_pixel_mean", "per_channel", "none"]},
        }),
        "augment": {"type": "array", "items": {"$ref": "#/$defs/augment"}},
        "batch_size": count,
        "optimizer": obj({"name": {"enum": ["sgd"]}, "lr": num, "momentum": num, "weight_decay": num,
                          "nesterov": {"type": "boolean"}}),
        "schedule": obj({
            "unit": {"enum": ["iter", "epoch"]}, "length": count,
            "milestones": {"type": "array", "items": count}, "gamma": num,
            "warmup": obj({"lr": num, "until_train_error": num, "max_iters": count}),
        }),
        "eval": obj({"interval": count, "views": {"enum": [1, 10]}, "resize": count, "crop": count}),
        "log_interval": count,
        "loss": {"enum": ["cross_entropy"]},
    })


def schema_json() -> str:
    return json.dumps(build_schema(), indent=2) + "\n"


class SchemaChecker:
    """Checks parsed files against the schema.

    jsonschema is imported only when a file is not already known to pass: a file whose exact text passed this
    exact schema before is remembered by its SHA-256 in the cache folder (`$ARCHSPEC_CACHE_DIR`, else
    `$XDG_CACHE_HOME/archspec`, else `~/.cache/archspec`; `ARCHSPEC_NO_CACHE=1` turns it off). Only passes are
    remembered, so every problem is always found afresh.
    """

    def __init__(self, cache: bool | None = None) -> None:
        self.schema = build_schema()
        self._validator: Any = None
        use_cache = not os.environ.get("ARCHSPEC_NO_CACHE") if cache is None else cache
        self.cache_dir = _cache_dir() / "schema-ok" if use_cache else None
        self._schema_digest = hashlib.sha256(json.dumps(self.schema, sort_keys=True).encode()).digest()
        self.verified = _shipped_verified() if use_cache else set()

    @property
    def validator(self) -> Any:
        if self._validator is None:
            from jsonschema import Draft202012Validator

            self._validator = Draft202012Validator(self.schema)
        return self._validator

    def digest(self, text: str) -> str:
        return hashlib.sha256(self._schema_digest + text.encode()).hexdigest()

    def _key(self, text: str) -> Path | None:
        if self.cache_dir is None:
            return None
        return self.cache_dir / self.digest(text)

    def check_text(self, doc: Any, display: str, text: str) -> list[Diagnostic]:
        """`check`, skipped when this text is known to pass; a pass is remembered."""
        if self.verified and self.digest(text) in self.verified:
            return []  # a shipped file, checked against this very schema when archspec was built
        key = self._key(text)
        if key is not None and key.exists():
            return []
        problems = self.check(doc, display)
        if not problems and key is not None:
            try:
                key.parent.mkdir(parents=True, exist_ok=True)
                key.touch()
            except OSError:
                pass  # a read-only home is no reason to fail
        return problems

    def check(self, doc: Any, display: str) -> list[Diagnostic]:
        if not isinstance(doc, LocDict):
            loc = getattr(doc, "loc", None) or Loc(display, 1, 1)
            return [Diagnostic("E100", f"a spec file is a mapping of keys (`archspec:`, `network:`, ...), "
                               f"found {_kind(doc)}", loc)]
        diags: list[Diagnostic] = []
        for error in self.validator.iter_errors(doc):
            diags.extend(_translate(error, doc, display))
        return _dedupe(diags)


VERIFIED_NAME = "schema-verified.txt"


def _shipped_verified() -> set[str]:
    """Keys of the shipped spec files that pass this schema (written by `python -m archspec.lang.schema`)."""
    from archspec.lang.resolve import packaged_specs_dir

    try:
        lines = (packaged_specs_dir() / VERIFIED_NAME).read_text(encoding="utf-8").splitlines()
    except OSError:
        return set()
    return {ln.split()[0] for ln in lines if ln and not ln.startswith("#")}


def shipped_manifest() -> str:
    """The manifest of shipped files that pass the schema: `<sha256 of schema + text>  <file>` per line."""
    from archspec.lang.resolve import packaged_specs_dir
    from archspec.lang.diagnostics import Sources
    from archspec.lang.yamlsrc import parse, read_text

    checker = SchemaChecker(cache=False)
    root = packaged_specs_dir()
    lines = ["# Shipped spec files known to pass the schema (regenerate: python -m archspec.lang.schema)."]
    for path in sorted(root.rglob("*.yaml")):
        rel = path.relative_to(root).as_posix()
        text = read_text(path, rel, Sources())
        if not checker.check(parse(text, rel), rel):
            lines.append(f"{checker.digest(text)}  {rel}")
    return "\n".join(lines) + "\n"


def _cache_dir() -> Path:
    if os.environ.get("ARCHSPEC_CACHE_DIR"):
        return Path(os.environ["ARCHSPEC_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "archspec"


def _kind(v: Any) -> str:
    if isinstance(v, bool):
        return "true/false"
    if isinstance(v, (int, float)):
        return f"{v:g}" if isinstance(v, float) else str(v)
    if isinstance(v, str):
        return f"the string {json.dumps(v)}" if len(v) < 40 else "a string"
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


def _translate(error: Any, doc: Any, display: str) -> list[Diagnostic]:
    from archspec.lang.ops import OPS, USER_OPS

    path = list(error.absolute_path)
    v, inst, schema = error.validator, error.instance, error.schema
    where = _where(path)
    loc = _loc_of(doc, path, display)
    node = _walk(doc, path)[2] if path else doc
    if v in ("anyOf", "oneOf"):
        sub = _pick_branch(error)
        if sub is not None:
            return _translate(sub, doc, display)
        if path and path[-1] == "input":
            return [Diagnostic("E100", f"`input` should be [C, H, W] or \"CxHxW\", found {_kind(inst)}", loc,
                               hint="e.g. `input: [3, 224, 224]`")]
        if path and path[-1] in ("kernel", "stride", "pad", "dilation"):
            return [Diagnostic("E100", f"{where} should be a whole number k or a pair [kh, kw], found "
                               f"{_kind(inst)}", loc)]
        expected = schema.get("description")
        return [Diagnostic("E100", f"{where} has the wrong form: found {_kind(inst)}", loc,
                           hint=f"expected {expected}" if expected else None)]
    if v == "type":
        want = schema.get("type")
        want = " or ".join(want) if isinstance(want, list) else want
        want = {"integer": "a whole number", "object": "a mapping", "array": "a list", "string": "a string",
                "number": "a number", "boolean": "true or false"}.get(want, want)
        hint = None
        if want in ("a whole number", "a number") and isinstance(inst, str):
            hint = "values computed from params are written as `=expression`"
        elif want == "a whole number" and isinstance(inst, float) and inst.is_integer():
            hint = f"write {int(inst)}"
        return [Diagnostic("E100", f"{where} should be {want}, found {_kind(inst)}", loc, hint=hint)]
    if v == "additionalProperties":
        allowed = set(schema.get("properties", {}))
        out = []
        op = inst.get("op") if path and isinstance(inst, dict) and isinstance(inst.get("op"), str) else None
        for extra in sorted(set(inst) - allowed, key=lambda k: (inst.key_loc(k).line if isinstance(inst, LocDict)
                                                                  and inst.key_loc(k) else 0)):
            kloc = _loc_of(doc, path + [extra], display, key=True)
            if op in OPS:
                names = sorted(k for k in allowed if k not in ITEM_KEYS)
                msg = f"unknown attribute `{extra}` of op `{op}`" + (f" in {where}" if path else "")
            elif not path:
                names, msg = sorted(allowed), f"unknown top-level key `{extra}`"
            else:
                names, msg = sorted(allowed), f"unknown key `{extra}` in {where}"
            out.append(Diagnostic("E101", msg, kloc, hint=did_you_mean(extra, names, what="allowed")))
        return out
    if v == "required":
        missing = [k for k in schema.get("required", []) if isinstance(inst, dict) and k not in inst]
        op = inst.get("op") if path and isinstance(inst, dict) and isinstance(inst.get("op"), str) else None
        if missing == ["op"]:
            return [Diagnostic("E102", f"{where} needs `op:` (a primitive), `use:` (a block) or `cases:`", loc,
                               hint="e.g. `- conv1: {op: conv, out: 64, kernel: 3}`")]
        if not path and missing == ["archspec"]:
            return [Diagnostic("E102", "the file does not say its format version", Loc(display, 1, 1),
                               hint=f"add `archspec: {FORMAT_VERSION}` as the first line")]
        out = []
        for k in missing:
            if op in OPS:
                attr = OPS[op].attrs.get(k)
                doc_text = f" ({attr.doc})" if attr is not None and attr.doc else ""
                out.append(Diagnostic("E313", f"op `{op}` needs `{k}`{doc_text}" + (f" in {where}" if path else ""),
                                      loc, hint=f"add `{k}: ...` to this node"))
            else:
                out.append(Diagnostic("E102", f"{where} needs `{k}`", loc, hint=f"add `{k}: ...`"))
        return out
    if v in ("enum", "const"):
        choices = schema.get("enum") or [schema.get("const")]
        if path and path[-1] == "op":
            return [Diagnostic("E300", f"unknown op `{inst}`", loc,
                               hint=did_you_mean(str(inst), USER_OPS, what="ops"))]
        if path == ["archspec"]:
            return [Diagnostic("E105", f"this is archspec format {inst!r}; this version reads format "
                               f"{FORMAT_VERSION}", loc, hint=f"write `archspec: {FORMAT_VERSION}`")]
        if len(choices) == 1:
            return [Diagnostic("E103", f"{where} must be {json.dumps(choices[0])}, found {_kind(inst)}", loc)]
        close = did_you_mean(str(inst), [str(c) for c in choices], what="allowed")
        listed = ", ".join(json.dumps(c) for c in choices)
        return [Diagnostic("E103", f"{where} is {_kind(inst)}; allowed: {listed}", loc,
                           hint=close if close and close.startswith("did you mean") else None)]
    if v in ("maxProperties", "minProperties") and isinstance(inst, dict):
        names = list(inst)
        if not names:
            return [Diagnostic("E315", "an empty item: each list item is `- name: {op: ...}`", loc)]
        return [Diagnostic("E315", f"each list item is one named node (`- name: {{op: ...}}`); this item has "
                           f"{len(names)} keys: " + ", ".join(f"`{n}`" for n in names), loc,
                           hint="indent the node's fields under its name, or give the item `repeat:`")]
    if v == "propertyNames":
        sub = error.context[0] if error.context else None
        name = sub.instance if sub is not None else "?"
        kloc = _loc_of(doc, path + [name], display, key=True) if isinstance(node, dict) else loc
        return [Diagnostic("E316", f"`{name}` is not a valid name", kloc,
                           hint="names are letters, digits and `_` (not starting with a digit), or a number")]
    if v == "pattern" and schema.get("pattern") == "^=":
        return [Diagnostic("E100", f"{where} should be a number or an `=expression`, found {_kind(inst)}", loc)]
    if v in ("minimum", "maximum", "exclusiveMinimum", "minItems", "maxItems", "pattern", "multipleOf"):
        limit = error.validator_value
        found = _kind(inst)
        if isinstance(inst, list):
            found = "an empty list" if not inst else f"{len(inst)} item{'s' if len(inst) != 1 else ''}"
        text = {"minimum": f"at least {limit}", "maximum": f"at most {limit}",
                "minItems": f"at least {limit} item{'s' if limit != 1 else ''}",
                "maxItems": f"at most {limit} item{'s' if limit != 1 else ''}",
                "pattern": f"of the form {limit}"}.get(v, f"{v} {limit}")
        code = "E208" if v == "minimum" and isinstance(inst, int) else "E104"
        return [Diagnostic(code, f"{where} must be {text}, found {found}", loc)]
    if v == "not":
        return [Diagnostic("E104", f"{where} mixes `op:`, `use:` and `cases:`; a node is exactly one of them", loc,
                           hint="split it into two items")]
    return [Diagnostic("E104", f"{where}: {error.message}", loc)]


def _dedupe(diags: list[Diagnostic]) -> list[Diagnostic]:
    """Merge `unknown attribute kernal` + `needs kernel` on one node into the first; drop exact repeats."""
    drop: set[int] = set()
    for d in diags:
        if d.code == "E101" and d.hint and d.hint.startswith("did you mean"):
            target = d.hint.split("`")[1]
            for m in diags:
                if m.code in ("E102", "E313") and f"needs `{target}`" in m.message and m.loc and d.loc \
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


if __name__ == "__main__":  # regenerate the shipped schema and manifest
    from archspec.lang.resolve import packaged_specs_dir

    specs = packaged_specs_dir()
    (specs / "archspec.schema.json").write_text(schema_json(), encoding="utf-8")
    (specs / VERIFIED_NAME).write_text(shipped_manifest(), encoding="utf-8")
    print(f"wrote {specs / 'archspec.schema.json'} and {specs / VERIFIED_NAME}")
