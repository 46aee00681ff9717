"""Building the JSON Schema (draft 2020-12) of spec files from the op registry.

Owns the schema's constants (`FORMAT_VERSION`, `ITEM_KEYS`, `RESERVED_NAMES`, the name patterns; `AUGMENT_OPS`
comes from `archspec.lang.augment`) and `build_schema`/`schema_json`. The `recipe` definition is generated from the
recipe's declaration (`archspec.lang.recipe_fields.recipe_json_schema`). An op's attributes are declared once, in
`archspec.lang.ops`; of it this module reads only `OPS`, `USER_OPS`, each op's `.doc` and `.attrs` (`type`, `min`,
`max`, `choices`, `doc`, `required`).
The order in which the parts are put together is the order of the shipped `specs/archspec.schema.json`.
"""

from __future__ import annotations

import json
from typing import Any

from archspec.lang.augment import augment_json_schema

FORMAT_VERSION = 1
ITEM_KEYS = {"op", "use", "cases", "repeat", "in", "when", "stage", "doc", "with", "names", "items"}
RESERVED_NAMES = ITEM_KEYS | {"input", "index", "count", "in_channels", "in_shape"}
PARAM_TYPES = ["int", "float", "number", "bool", "str", "list", "map", "template", "op", "any"]
NAME_PART = r"([A-Za-z_][A-Za-z0-9_]*|[0-9]+)"  # one part of an item's name: an identifier or a number
_TEMPLATE_CHAR = r"([A-Za-z0-9_.]|\$\{[^{}]+\})"  # a name character, or a `${...}` computed where the item is
# an item's name: parts joined by `.` (`conv1`, `0`, `convs.0`), or a name computed with `${...}` (`convs.${index}`)
NAME_PATTERN = (rf"^({NAME_PART}(\.{NAME_PART})*"
                rf"|{_TEMPLATE_CHAR}*\$\{{[^{{}}]+\}}{_TEMPLATE_CHAR}*)$")
IDENT_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
EDIT_PATH_PATTERN = r"^([A-Za-z_][A-Za-z0-9_]*|[0-9]+)(\.cases\.[0-9]+)*$"  # conv2, 0, downsample.cases.1

AUGMENT_OPS: dict[str, dict[str, Any]] = augment_json_schema()  # from the one table, archspec.lang.augment


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
        base["exclusiveMaximum" if attr.max_open else "maximum"] = attr.max
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
        "names": {"type": "string", "description": "with `repeat`: each copy's name, computed with `index` and "
                  "`count` (`b${index + 1}`); by default NAME.0, NAME.1, ..."},
    }


def _op_schemas(common: dict) -> tuple[list[dict], dict[str, Any]]:
    """Per user-facing op: the `if op is X then op_X` rule of `node`, and the `op_X` definition."""
    from archspec.lang.ops import OPS, USER_OPS

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
    return op_rules, op_defs


def _value_defs() -> dict[str, Any]:
    return {
        "expr": _expr(),
        "identifier": {"type": "string", "pattern": IDENT_PATTERN},
        "count": _or_expr({"type": "integer", "minimum": 1}),
        "number": _or_expr({"type": "number"}),
    }


def _graph_defs(common: dict, op_rules: list[dict]) -> dict[str, Any]:
    """`node` (op, use or cases), `item` (a named node in a list) and `body` (the list)."""
    from archspec.lang.ops import USER_OPS

    return {
        "node": {
            "type": "object",
            "description": "a primitive op (`op:`), a block template (`use:`), a choice (`cases:`) or a `repeat` of "
                           "several `items:`",
            "properties": {**common, "op": {"anyOf": [{"enum": USER_OPS}, {"$ref": "#/$defs/expr"}],
                                                   "description": "an op of the registry, or an expression "
                                                                  "that names one (`=act`)"},
                           "use": {"type": "string"},
                           "with": {"anyOf": [{"type": "object"}, {"$ref": "#/$defs/expr"}]},
                           "cases": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/node"}},
                           "items": {"$ref": "#/$defs/body"}},
            "allOf": [
                *op_rules,
                {"if": {"required": ["items"]}, "then": {"$ref": "#/$defs/group"}},
                {"if": {"required": ["names"]}, "then": {"required": ["repeat"]}},
                {"if": {"required": ["use"]}, "then": {"not": {"anyOf": [{"required": ["op"]},
                                                                           {"required": ["cases"]}]}}},
                {"if": {"required": ["cases"]}, "then": {"not": {"required": ["op"]}}},
                {"if": {"not": {"anyOf": [{"required": [k]} for k in ("use", "cases", "items")]}},
                 "then": {"required": ["op"]}},
            ],
        },
        "group": {
            "type": "object", "required": ["repeat"], "additionalProperties": False,
            "description": "`repeat: n` of several items: each copy's items join the body they are in, named with "
                           "`${...}` (`convs.${index}`); the first reads the item before it, as any item does",
            "properties": {k: {} for k in ("repeat", "items", "when", "stage", "doc")},
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
    }


# what a param declaration may check; `items` declares each item of a list the same way
DECL_PROPERTIES: dict[str, Any] = {
    "type": {"$ref": "#/$defs/param_type"}, "min": {"type": "number"}, "max": {"type": "number"},
    "below": {"type": "number", "description": "a number must be less than this (a probability: below: 1)"},
    "enum": {"type": "array", "minItems": 1},
    "items": {"description": "a list's items: a type, or {type: int, min: 1, ...}", "anyOf": [
        {"$ref": "#/$defs/param_type"},
        {"type": "object", "additionalProperties": False, "properties": {
            "type": {"$ref": "#/$defs/param_type"}, "min": {"type": "number"}, "max": {"type": "number"},
            "below": {"type": "number"}, "enum": {"type": "array", "minItems": 1}}}]},
}


def _block_defs() -> dict[str, Any]:
    """Block templates: their params, constraints and body."""
    return {
        "param_type": {"enum": PARAM_TYPES},
        "param_decl": {"anyOf": [
            {"$ref": "#/$defs/param_type"},
            {"type": "object", "additionalProperties": False, "properties": {
                **DECL_PROPERTIES, "default": {}, "doc": {"type": "string"}}},
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
                **_edit_properties("the inherited body"),
            },
        },
        "network_edits": {
            "type": "object", "additionalProperties": False, "minProperties": 1,
            "description": "in a spec that extends another: changes to items of the parent's network, or "
                           "`replace: [...]`, a whole new network",
            "properties": {"replace": {"$ref": "#/$defs/body"}, **_edit_properties("the parent's network")},
            "if": {"required": ["replace"]},
            "then": {"not": {"anyOf": [{"required": [k]} for k in ("edit", "insert_before", "insert_after")]}},
        },
        "spec_param": {
            "description": "a value (or `=expression`), or a declaration `{type: int, default: 3, min: 1, doc: ...}`",
            "if": {"type": "object", "required": ["type"]},
            "then": {"type": "object", "additionalProperties": False, "properties": {
                **DECL_PROPERTIES, "default": {}, "doc": {"type": "string"}}},
        },
    }


def _edit_properties(what: str) -> dict[str, Any]:
    """`edit`, `insert_before` and `insert_after`: changes to named items of a body a file inherits."""
    return {
        "edit": {"type": "object", "propertyNames": {"pattern": EDIT_PATH_PATTERN},
                 "additionalProperties": {"type": "object"},
                 "description": f"changes to items of {what}: `conv2: {{groups: =groups}}` "
                 "merges into item conv2 (`key: null` removes a key); `downsample.cases.0: {...}` into an "
                 "alternative; an unnamed item by its position (`0`)"},
        **{key: {"type": "object", "propertyNames": {"pattern": NAME_PATTERN},
                 "additionalProperties": {"$ref": "#/$defs/body"},
                 "description": f"new items {where} a named item of {what}: "
                 f"`{{conv3: [{{se: {{use: se}}}}]}}`"}
           for key, where in (("insert_before", "before"), ("insert_after", "after"))},
    }


def _augment_def() -> dict[str, Any]:
    return {
        "type": "object", "required": ["op"],
        "properties": {"op": {"enum": sorted(AUGMENT_OPS)}},
        "allOf": [{"if": {"properties": {"op": {"const": k}}},
                   "then": {"properties": {"op": {}, **v}, "additionalProperties": False}}
                  for k, v in sorted(AUGMENT_OPS.items())],
    }


def _top_properties() -> dict[str, Any]:
    """The keys a spec file may have at its top level."""
    return {
        "archspec": {"const": FORMAT_VERSION, "description": "format version of this file"},
        "name": {"type": "string", "description": "model name; `${...}` interpolates params"},
        "description": {"type": "string"},
        "extends": {"type": "string", "description": "a spec this one starts from (path relative to this file)"},
        "imports": {"type": "array", "items": {"type": "string"},
                    "description": "libraries whose params, blocks and recipe this file uses"},
        "params": {"type": "object", "propertyNames": {"pattern": IDENT_PATTERN},
                   "additionalProperties": {"$ref": "#/$defs/spec_param"},
                   "description": "declarations (`n: {type: int, default: 3, min: 1}`) and values (or `=` "
                   "expressions) of params; `--set name=value` overrides one"},
        "constraints": {"type": "array", "items": {"$ref": "#/$defs/constraint"}},
        "input": {"anyOf": [
            {"type": "array", "minItems": 1, "maxItems": 3, "items": _or_expr({"type": "integer", "minimum": 1})},
            {"type": "string", "pattern": r"^[0-9]+(x[0-9]+)*$"}, {"$ref": "#/$defs/expr"}],
            "description": "input shape without the batch: [C, H, W] or \"3x224x224\""},
        "blocks": {"type": "object", "propertyNames": {"pattern": IDENT_PATTERN},
                   "additionalProperties": {"$ref": "#/$defs/template"}},
        "network": {"if": {"type": "object"}, "then": {"$ref": "#/$defs/network_edits"},
                    "else": {"$ref": "#/$defs/body"},
                    "description": "the network, a list of items; in a spec that extends another, "
                    "`{edit: ..., insert_before: ..., insert_after: ...}` or `{replace: [...]}`"},
        "output": {"type": "string", "description": "the output node (by default the last item)"},
        "recipe": {"$ref": "#/$defs/recipe"},
        "meta": {"type": "object", "description": "free-form notes for tools and readers"},
    }


def build_schema() -> dict:
    """The JSON Schema of one spec file (checked before `extends` and `imports` are merged)."""
    # (imported here: a spec whose verdict is cached never builds the schema, nor pays for importing the recipe)
    from archspec.lang.recipe_fields import recipe_json_schema

    common = _node_common()
    op_rules, op_defs = _op_schemas(common)
    defs: dict[str, Any] = {**_value_defs(), **_graph_defs(common, op_rules), **_block_defs(),
                            "augment": _augment_def(), "recipe": recipe_json_schema()}
    defs.update(op_defs)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "urn:archspec:spec:1",
        "title": "archspec spec",
        "description": "A neural-network architecture as data: params, block templates, and a graph of named nodes.",
        "type": "object",
        "required": ["archspec"],
        "additionalProperties": False,
        "properties": _top_properties(),
        "$defs": defs,
    }


def schema_json() -> str:
    return json.dumps(build_schema(), indent=2) + "\n"
