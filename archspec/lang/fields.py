"""Records of declared fields: frozen dataclasses whose fields each carry a `FieldSpec` (type, default, range or
choices, one line of doc), and what is generated from such a record: its JSON-schema definition, its defaults, the
checks of a mapping's values and the typed record read from a mapping.

A section is a frozen dataclass deriving from `Section`, its fields declared with `integer`, `number`, `boolean`,
`choice`, `items`, `augment_list`, `section` or `keyed` (a choice of sections by their `name`, each with fields of
its own). The training recipe is the one such declaration (`archspec.lang.recipe_fields`). Counts "in the unit"
(`in_unit`) are whole numbers of iterations or any positive number of epochs: the checks take the unit. Standard
library only.
"""

from __future__ import annotations

import copy
import math
from dataclasses import MISSING, Field, dataclass, field, fields
from typing import Any, Iterator, Mapping, Sequence

SPEC = "declared_field"  # the key of a field's FieldSpec in its dataclass metadata


@dataclass(frozen=True, kw_only=True)
class FieldSpec:
    """What one declared field is: `kind` (integer, number, boolean, choice, list, augment, section, keyed), its
    allowed values and how messages name it (`label`; by default "<section> <name>").

    The schema holds each field's type (a number or a whole number may be an `=expression` in a spec file) and a
    whole number's lower bound (`schema_minimum` where the schema has always been looser than `minimum`); the other
    bounds and the rules across fields are checked by `problem` once defaults and overrides are in, with a message
    that says what fits. A field with no default is required, unless `optional` (absent: what its doc says)."""

    kind: str
    doc: str
    label: str = ""
    minimum: float | None = None
    maximum: float | None = None
    low_open: bool = False                      # `minimum` itself is refused
    high_open: bool = False                     # `maximum` itself is refused
    choices: tuple[Any, ...] = ()
    optional: bool = False
    in_unit: bool = False                       # counted in the schedule's unit: whole in iterations, any in epochs
    item: FieldSpec | None = None               # list: what each item is
    increasing: bool = False                    # list: each item above the one before
    record: type | None = None                  # section: its record
    variants: Mapping[str, type] | None = None  # keyed: the records its `name` picks
    default_variant: str = ""                   # keyed: the one a mapping without `name` is
    schema_minimum: int | None = None

    def whole(self, unit: str) -> bool:
        """Whether the value is a whole number (an `in_unit` count is any number when the unit is epochs)."""
        return self.kind == "integer" and not (self.in_unit and unit == "epoch")

    def requirement(self, unit: str = "iter") -> str:
        """What a value must be, in words: "a positive whole number", "in [0, 1)", "1 or 10"."""
        if self.kind == "choice":
            shown = [str(c) for c in self.choices]
            return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " or " + shown[-1]
        if self.kind == "boolean":
            return "true or false"
        if self.kind not in ("integer", "number"):
            return "a list" if self.kind in ("list", "augment") else "a mapping"
        if self.in_unit and not self.whole(unit):
            return "a positive number"  # a count of epochs
        noun = "whole number" if self.whole(unit) else "number"
        low, high = self.minimum, self.maximum
        if low is not None and high is not None:
            return f"in {'(' if self.low_open else '['}{_num(low)}, {_num(high)}{')' if self.high_open else ']'}"
        if (low == 1 and noun == "whole number" and not self.low_open) or (low == 0 and self.low_open):
            return f"a positive {noun}"
        if low is not None:
            return f"a {noun} {'>' if self.low_open else '>='} {_num(low)}"
        if high is not None:
            return f"a {noun} {'<' if self.high_open else '<='} {_num(high)}"
        return f"a {noun}"

    def chosen(self, value: Any) -> Any:
        """The choice `value` is (1.0 is the choice 1, as the schema has it; true is not 1), or None."""
        return next((c for c in self.choices if value == c and isinstance(value, bool) == isinstance(c, bool)), None)

    def value_problem(self, value: Any, label: str, unit: str = "iter") -> str | None:
        """The message for `value` if this field cannot take it (scalars; lists and sections are walked)."""
        if self.kind == "choice":
            ok = self.chosen(value) is not None
        elif self.kind == "boolean":
            ok = isinstance(value, bool)
        elif self.kind in ("integer", "number"):
            ok = _in_range(self, value, unit)
        else:
            ok = True
        return None if ok else f"{label} must be {self.requirement(unit)}, got {value!r}"


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:g}"


def _in_range(spec: FieldSpec, v: Any, unit: str) -> bool:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return False
    if spec.in_unit and not spec.whole(unit):
        return v > 0  # a count of epochs
    if spec.whole(unit) and not isinstance(v, int):
        return False
    low, high = spec.minimum, spec.maximum
    return ((low is None or v > low or (v == low and not spec.low_open))
            and (high is None or v < high or (v == high and not spec.high_open)))


# -- declaring fields --------------------------------------------------------------------------------------------

def _declare(spec: FieldSpec, default: Any = MISSING, factory: Any = MISSING) -> Any:
    if default is MISSING and factory is MISSING and spec.optional:
        default = None
    return field(default=default, default_factory=factory, metadata={SPEC: spec})


def integer(default: Any = MISSING, *, doc: str, minimum: int | None = None, maximum: int | None = None,
            label: str = "", optional: bool = False, in_unit: bool = False, schema_minimum: int | None = None) -> Any:
    """A whole number (with `in_unit`: a count in the schedule's unit, any positive number of epochs)."""
    return _declare(FieldSpec(kind="integer", doc=doc, minimum=minimum, maximum=maximum, label=label,
                              optional=optional, in_unit=in_unit, schema_minimum=schema_minimum), default)


def number(default: Any = MISSING, *, doc: str, minimum: float | None = None, maximum: float | None = None,
           low_open: bool = False, high_open: bool = False, label: str = "", optional: bool = False) -> Any:
    """A finite number in [minimum, maximum] (either end may be open or absent)."""
    return _declare(FieldSpec(kind="number", doc=doc, minimum=minimum, maximum=maximum, low_open=low_open,
                              high_open=high_open, label=label, optional=optional), default)


def boolean(default: bool, *, doc: str, label: str = "") -> Any:
    return _declare(FieldSpec(kind="boolean", doc=doc, label=label), default)


def choice(default: Any, choices: tuple[Any, ...], *, doc: str, label: str = "", optional: bool = False) -> Any:
    """One of `choices` (strings or numbers; `optional`: or absent, the default None)."""
    return _declare(FieldSpec(kind="choice", doc=doc, choices=tuple(choices), label=label, optional=optional),
                    default)


def items(default: tuple[Any, ...], item: FieldSpec, *, doc: str, label: str = "", increasing: bool = False) -> Any:
    """A list of `item`s (a tuple in the record)."""
    return _declare(FieldSpec(kind="list", doc=doc, item=item, label=label, increasing=increasing), tuple(default))


def augment_list(*, doc: str) -> Any:
    """The augment ops, in order, each checked by `archspec.lang.augment`'s table."""
    return _declare(FieldSpec(kind="augment", doc=doc), ())


def section(record: type, *, doc: str, optional: bool = False) -> Any:
    """A mapping of its own fields (`optional`: absent, or `{}`, means none)."""
    spec = FieldSpec(kind="section", doc=doc, record=record, optional=optional)
    return _declare(spec) if optional else _declare(spec, factory=record)


def keyed(variants: Mapping[str, type], default: str, *, doc: str) -> Any:
    """A mapping whose `name` picks one of `variants` (each a section with a `name` choice of its own key)."""
    return _declare(FieldSpec(kind="keyed", doc=doc, variants=dict(variants), default_variant=default),
                    factory=variants[default])


class Section:
    """A frozen record of declared fields. `check` is its rule across its fields (None when they fit; `unit` as
    in `problem`); `self["lr"]` and `get("lr")` read a field by name, for code written against the mappings the
    record was read from (the default of `get` is never used: every field has a value)."""

    def check(self, unit: str) -> str | None:
        return None

    def __getitem__(self, name: str) -> Any:
        if name not in _names(type(self)):
            raise KeyError(name)
        return getattr(self, name)

    def get(self, name: str, default: Any = None) -> Any:
        return getattr(self, name) if name in _names(type(self)) else default

    def at(self, path: str) -> Any:
        """The value at a dotted path ("eval.crop")."""
        node: Any = self
        for key in path.split("."):
            node = node[key]
        return node


def _declared(record: type) -> Iterator[tuple[Field, FieldSpec]]:
    for f in fields(record):
        if SPEC in f.metadata:
            yield f, f.metadata[SPEC]


def _names(record: type) -> tuple[str, ...]:
    return tuple(f.name for f, _ in _declared(record))


def _label(spec: FieldSpec, path: tuple[str, ...]) -> str:
    if spec.label:
        return spec.label
    return " ".join(path) if len(path) > 1 else path[0].replace("_", " ")


# -- what is generated from a record ---------------------------------------------------------------------

def _variant(spec: FieldSpec, value: Any) -> type | None:
    """The record a keyed field's mapping `value` picks (its default's when it names none; None: unknown)."""
    assert spec.variants is not None
    name = value.get("name", spec.default_variant) if isinstance(value, dict) else spec.default_variant
    return spec.variants.get(name) if isinstance(name, str) else None


def _record_of(spec: FieldSpec, value: Any) -> type | None:
    return spec.record if spec.kind == "section" else _variant(spec, value) if spec.kind == "keyed" else None


def _default_json(f: Field) -> Any:
    """A field's default as a mapping writes it (lists, mappings); MISSING when it has none."""
    spec: FieldSpec = f.metadata[SPEC]
    if spec.kind == "section" and not spec.optional or spec.kind == "keyed":
        return defaults(_record_of(spec, None))
    if f.default is MISSING or f.default is None:
        return MISSING
    return list(f.default) if isinstance(f.default, tuple) else f.default


def defaults(record: type) -> dict[str, Any]:
    """The mapping of `record` every field of which has its default (fields without one are absent), in
    declaration order."""
    out = {}
    for f, _ in _declared(record):
        value = _default_json(f)
        if value is not MISSING:
            out[f.name] = value
    return out


def with_defaults(data: Any, record: type) -> Any:
    """`data` with every field it leaves out that has a default filled in, section by section (a keyed section by
    the variant it names); what it gives (null included) is kept as given. The keys come in the order recipe.json
    has always had: those with defaults first, then the others as `data` has them."""
    if not isinstance(data, dict):
        return copy.deepcopy(data)
    out: dict[str, Any] = {}
    declared = dict((f.name, (f, spec)) for f, spec in _declared(record))
    for name, (f, spec) in declared.items():
        if name in data:
            if _default_json(f) is not MISSING:
                out[name] = _filled(spec, data[name])
        else:
            value = _default_json(f)
            if value is not MISSING:
                out[name] = copy.deepcopy(value)
    for name, value in data.items():
        if name not in out:
            out[name] = _filled(declared[name][1], value) if name in declared else copy.deepcopy(value)
    return out


def _filled(spec: FieldSpec, value: Any) -> Any:
    sub = _record_of(spec, value)
    if sub is not None and isinstance(value, dict) and (value or not spec.optional):
        return with_defaults(value, sub)
    return copy.deepcopy(value)


def problem(data: Any, record: type, unit: str = "iter") -> str | None:
    """The first value of `data` (defaults filled in) that `record` cannot take, as one line; None if it fits.
    Fields first, in declaration order, then each section's rule across its fields. `unit`: the unit of the
    `in_unit` counts ("iter" or "epoch")."""
    data = with_defaults(data, record)
    found = next(_field_problems(record, data, (), unit), None)
    if found is not None:
        return found
    return _rule_problem(read(data, record), unit)


def _field_problems(record: type, data: Any, path: tuple[str, ...], unit: str) -> Iterator[str]:
    where = ".".join(path)
    if not isinstance(data, dict):
        yield f"recipe field `{where or 'the recipe'}` must be a mapping, got {data!r}"
        return
    names = _names(record)
    for key in data:
        if key not in names:
            whose = f"{where} {data['name']}" if where and isinstance(data.get("name"), str) else where or "the recipe"
            yield f"the recipe has no field `{'.'.join(path + (str(key),))}` ({whose} fields: {', '.join(names)})"
    for f, spec in _declared(record):
        here = path + (f.name,)
        if f.name not in data or data[f.name] is None and spec.optional:
            if not spec.optional and f.default is MISSING and f.default_factory is MISSING:
                yield f"{_label(spec, here)} is required: give `{'.'.join(here)}` ({spec.requirement(unit)})"
            continue
        value = data[f.name]
        if spec.kind in ("section", "keyed"):
            if spec.optional and value == {}:
                continue
            sub = _record_of(spec, value)
            if sub is None:
                yield (f"recipe field `{'.'.join(here)}.name` is {value.get('name')!r}: it must be one of "
                       f"{', '.join(spec.variants or ())}")
                continue
            yield from _field_problems(sub, value, here, unit)
        elif spec.kind in ("list", "augment"):
            if not isinstance(value, list):
                kind = " of " + ("epochs" if unit == "epoch" else "iterations") if spec.item and spec.item.in_unit \
                    else ""
                yield f"{_label(spec, here)} must be a list{kind}, got {value!r}"
            elif spec.item is not None:
                message = next((m for m in (spec.item.value_problem(v, _label(spec.item, here), unit)
                                            for v in value) if m), None)
                if message:
                    yield message
                elif spec.increasing and any(b <= a for a, b in zip(value, value[1:])):
                    yield (f"{_label(spec, here)} must increase, got {', '.join(map(str, value))} "
                           f"(e.g. {', '.join(map(str, sorted(set(value))))})")
        else:
            message = spec.value_problem(value, _label(spec, here), unit)
            if message:
                yield message


def _rule_problem(values: Section, unit: str) -> str | None:
    for f, spec in _declared(type(values)):
        value = getattr(values, f.name)
        if isinstance(value, Section):
            found = _rule_problem(value, unit)
            if found:
                return found
    return values.check(unit)


def read(data: Any, record: type, /, **extra: Any) -> Any:
    """The typed `record` of the mapping `data` (defaults filled in; checked with `problem` first): numbers as
    float, lists as tuples, sections as their records. `extra` fields go to the record as they are (a subclass's
    own)."""
    data = with_defaults(data, record)
    values: dict[str, Any] = {}
    for f, spec in _declared(record):
        if f.name not in data:
            continue
        value = data[f.name]
        if spec.kind in ("section", "keyed"):
            value = None if spec.optional and not value else read(value, _record_of(spec, value))
        elif spec.kind == "augment":
            value = tuple(dict(entry) for entry in value)
        elif spec.kind == "list":
            value = tuple(value)
        elif spec.kind == "number" and value is not None:
            value = float(value)
        elif spec.kind == "choice":
            value = spec.chosen(value)
        values[f.name] = value
    return record(**values, **extra)


def field_at(path: str | Sequence[str], record: type) -> FieldSpec:
    """The declaration of the field at a dotted path ("optimizer.lr"; a keyed field's fields are those of every
    variant, the default's first); KeyError if there is none."""
    keys = path.split(".") if isinstance(path, str) else list(path)
    spec: FieldSpec | None = None
    records: list[type] = [record]
    for key in keys:
        found = next(((f, s) for r in records for f, s in _declared(r) if f.name == key), None)
        if found is None:
            raise KeyError(".".join(keys))
        spec = found[1]
        records = _records_inside(spec)
    assert spec is not None
    return spec


def _records_inside(spec: FieldSpec) -> list[type]:
    if spec.kind == "section":
        return [spec.record] if spec.record else []
    if spec.kind == "keyed" and spec.variants:
        first = spec.variants[spec.default_variant]
        return [first] + [v for v in spec.variants.values() if v is not first]
    return []


def field_names(path: Sequence[str], record: type) -> tuple[str, ...]:
    """The names of the fields inside the field at `path` (the record's own for ()); () for a field that has
    none (a number, a list)."""
    records = _records_inside(field_at(path, record)) if path else [record]
    return tuple(dict.fromkeys(name for r in records for name in _names(r)))


# -- the JSON schema ---------------------------------------------------------------------------------------------

EXPR = {"$ref": "#/$defs/expr"}


def json_schema(record: type) -> dict[str, Any]:
    """The JSON-schema definition of `record` (it refers to the spec schema's `count`, `number`, `expr` and
    `augment` definitions): each field's type, a whole number's lower bound, the choices; its doc, range and
    default as `description` and `default`."""
    out: dict[str, Any] = {"type": "object", "additionalProperties": False, "properties": {}}
    for f, spec in _declared(record):
        out["properties"][f.name] = _field_schema(f, spec)
    if record.__doc__:
        out["description"] = " ".join(record.__doc__.split())
    return out


def _field_schema(f: Field, spec: FieldSpec) -> dict[str, Any]:
    if spec.kind == "section":
        assert spec.record is not None
        if spec.optional:  # null is "absent": `--recipe ema=null` removes a named recipe's EMA
            return {"anyOf": [json_schema(spec.record), {"type": "null"}], "description": spec.doc}
        return json_schema(spec.record) | {"description": spec.doc}
    if spec.kind == "keyed":
        return _keyed_schema(spec)
    schema = _value_schema(spec)
    if spec.optional:  # null is "absent": a field a named recipe sets can be unset (`--recipe eval.crop=null`)
        schema = {"anyOf": [schema, {"type": "null"}]}
    schema["description"] = _describe(spec)
    default = _default_json(f)
    if default is not MISSING:
        schema["default"] = default
    return schema


def _value_schema(spec: FieldSpec) -> dict[str, Any]:
    if spec.kind == "integer" and spec.in_unit:
        # a count in the schedule's unit: whole iterations, or any positive number of epochs (`--epochs 0.5`); the
        # value check says which once the unit is known
        return {"anyOf": [{"type": "number", "exclusiveMinimum": 0}, EXPR]}
    if spec.kind == "integer":
        low = spec.schema_minimum if spec.schema_minimum is not None else spec.minimum
        if low == 1:
            return {"$ref": "#/$defs/count"}
        whole: dict[str, Any] = {"type": "integer"} | ({"minimum": int(low)} if low is not None else {})
        return {"anyOf": [whole, EXPR]}
    if spec.kind == "number":
        return {"$ref": "#/$defs/number"}
    if spec.kind == "boolean":
        return {"type": "boolean"}
    if spec.kind == "choice":
        return {"enum": list(spec.choices)}
    if spec.kind == "augment":
        return {"type": "array", "items": {"$ref": "#/$defs/augment"}}
    assert spec.kind == "list" and spec.item is not None
    return {"type": "array", "items": _value_schema(spec.item)}


def _describe(spec: FieldSpec) -> str:
    accepts = _accepts(spec)
    return f"{spec.doc}; {accepts}" if accepts else spec.doc


def _accepts(spec: FieldSpec) -> str:
    """The range of a number or whole number in words ("" for other kinds: the schema says it)."""
    if spec.kind in ("integer", "number"):
        what = spec.requirement("iter")
        return f"{what}, of iterations or epochs (the schedule's unit)" if spec.in_unit else what
    if spec.kind == "list" and spec.item is not None:
        return f"{'increasing, ' if spec.increasing else ''}each {_accepts(spec.item)}"
    return ""


def _keyed_schema(spec: FieldSpec) -> dict[str, Any]:
    """One variant: its mapping (`name` one of the keys). More: `name` picks the variant whose fields apply (the
    default's when `name` is absent)."""
    assert spec.variants is not None
    keys, default = list(spec.variants), spec.default_variant
    name = {"enum": keys, "description": "which one (its fields follow)", "default": default}
    if len(keys) == 1:
        one = json_schema(spec.variants[default])
        one["properties"]["name"] = {"enum": keys} | {k: v for k, v in one["properties"]["name"].items()
                                                      if k != "enum"}
        return one | {"description": spec.doc}
    rules = [{"if": {"properties": {"name": {"const": key}}, **({} if key == default else {"required": ["name"]})},
              "then": json_schema(record)} for key, record in spec.variants.items()]
    return {"type": "object", "properties": {"name": name}, "allOf": rules, "description": spec.doc}
