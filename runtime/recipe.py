"""Training recipes: the spec's `recipe:` section with command-line overrides, as one resolved object.

A recipe is data (specs/recipes/*.yaml); its fields, their defaults and their checks are declared once, in
`archspec.lang.recipe_fields`. This module applies overrides (`--iters`, `--batch-size`, `--lr`, or any field with
`--recipe optimizer.momentum=0.8`), fills in the defaults, checks the result (the spec schema's recipe part, then
the declared ranges and rules) into a typed `Recipe`, converts epochs to iterations and answers the one question
the training loop asks every step: what is the learning rate now?

Schedules: step decay (lr x gamma at each milestone), optionally after a warm-up at a fixed lr that lasts until
the training error falls below a threshold or `max_iters` pass (the paper's ResNet-110/1202 recipe). When the
length is overridden and the milestones are not, milestones scale with it (64k with steps at 32k/48k becomes
2k with steps at 1k/1.5k) and the run log says so.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

from archspec.lang.errors import UserError
from archspec.lang.recipe_fields import RecipeValues, field_names, problem, read, with_defaults
from archspec.runtime.lr_schedule import lr_at


class RecipeError(UserError):
    """A recipe value or override that cannot be used; the message is one line with the fix."""


def _merge(base: Any, over: Any) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            out[k] = _merge(base.get(k), v) if k in base else copy.deepcopy(v)
        return out
    return copy.deepcopy(over)


def _parse_value(text: str, path: str) -> Any:
    """A `--recipe` value, read as spec files are (their budgets of nesting and aliases hold here too)."""
    from archspec.lang.diagnostics import SpecError
    from archspec.lang.yamlsrc import parse_value

    import re

    if re.fullmatch(r"\s*[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+\s*", text):
        value = float(text)  # (YAML 1.1 reads 1e-3 as text; on the command line it is the number people mean)
        return int(value) if value.is_integer() and abs(value) < 2**63 else value
    try:
        return parse_value(text, f"--recipe {path}")
    except SpecError as e:
        raise RecipeError(f"`--recipe {path}=...`: {e.diagnostics[0].message}") from None


def named_recipe(ref: str) -> tuple[dict[str, Any], str]:
    """The recipe `--recipe NAME` names (a shipped recipe, or a file holding a `recipe:`) and where it is."""
    from archspec.lang.diagnostics import SpecError
    from archspec.lang.spec import load_recipe

    if not ref:
        raise RecipeError("`--recipe` is empty: give a recipe's name (e.g. rsb_a3), a recipe file, or FIELD=VALUE")
    try:
        data, shown = load_recipe(ref)
    except SpecError as e:
        d = e.diagnostics[0]
        where = f"{d.loc.file}:{d.loc.line}:{d.loc.col}: " if d.loc.line else ""
        raise RecipeError(f"`--recipe {ref}`: {where}{d.message}" + (f" ({d.hint})" if d.hint else "")) from None
    if not isinstance(data, dict):
        raise RecipeError(f"`--recipe {ref}`: {shown}'s `recipe:` is not a mapping of recipe fields")
    return data, shown


def check_schema(data: Any, where: str) -> None:
    """RecipeError, naming the field, for a recipe that the spec schema's recipe part refuses (a wrong type, an
    unknown choice such as `loss: mse`, a field that does not exist): every recipe goes through it, whether it
    comes from a spec, `--recipe`, a flag or a run folder's recipe.json. The message says what the field takes, as
    its declaration (`archspec.lang.recipe_fields`) words it, never the schema's own terms."""
    import jsonschema

    from archspec.lang.schema import build_schema

    schema = build_schema()
    validator = jsonschema.Draft202012Validator({"$ref": "#/$defs/recipe", "$defs": schema["$defs"]})
    errors = sorted(validator.iter_errors(data), key=lambda e: (len(e.absolute_path), list(map(str, e.path))))
    if errors:
        e = jsonschema.exceptions.best_match(errors)
        raise RecipeError(f"{where}: {_schema_problem([str(p) for p in e.absolute_path], e)}")


def _shown(value: Any) -> str:
    shown = json.dumps(value, default=str)
    return shown if len(shown) <= 60 else shown[:57] + "..."


def _schema_problem(path: list[str], e: Any) -> str:
    """`recipe field `batch_size` must be a positive whole number, got "abc"`: what the field at `path` takes,
    and what it got."""
    from archspec.lang.augment import AUGMENT

    field, value = ".".join(path) or "the recipe", e.instance
    if path[:1] == ["augment"] and len(path) >= 2:
        ops = ", ".join(AUGMENT)
        if len(path) == 2 and (not isinstance(value, dict) or "op" not in value):
            return f"recipe field `{field}` must be a mapping naming its `op` ({ops}), got {_shown(value)}"
        if len(path) == 2 and e.validator == "additionalProperties":
            op = value.get("op")
            names = [a.name for a in AUGMENT.get(op, ())]
            extra = next((k for k in value if k != "op" and k not in names), "?")
            return (f"recipe field `{field}`: augment op {op} has no parameter `{extra}` (its parameters: "
                    f"{', '.join(names) or 'none'})")
        if len(path) == 3 and path[2] == "op":
            return f"recipe field `{field}` must be one of {ops}, got {_shown(value)}"
        return f"recipe field `{field}` must be {_augment_requirement(e)}, got {_shown(value)}"
    spec = _declared(path)
    parent = _declared(path[:-1]) if len(path) > 1 else None
    if path and path[-1] == "name" and parent is not None and parent.kind == "keyed":
        return f"recipe field `{field}` must be one of {', '.join(parent.variants or ())}, got {_shown(value)}"
    if spec is None:
        return f"recipe field `{field}` is {_shown(value)}, which is not allowed ({e.message})"
    if e.validator == "additionalProperties" and isinstance(value, dict):
        names, which = field_names(path), ""
        if spec.kind == "keyed" and spec.variants:
            picked = value["name"] if "name" in value else spec.default_variant
            record = spec.variants.get(picked) if isinstance(picked, str) else None
            if record is not None:
                names = tuple(k for k in names if k in record.__dataclass_fields__)
                which = f"{field} {picked} "
        extra = next((k for k in value if k not in names), "?")
        return f"recipe field `{field}` has no field `{extra}` ({which or 'its '}fields: {', '.join(names)})"
    what = spec.requirement("iter")
    if spec.kind == "integer" and spec.in_unit:
        what = f"{what} of iterations, or a positive number of epochs"
    elif spec.kind == "choice" and len(spec.choices) > 1:
        what = "one of " + ", ".join(map(str, spec.choices))
    if spec.optional:
        what += " (or left out)"
    return f"recipe field `{field}` must be {what}, got {_shown(value)}{_why_not(spec, value)}"


def _declared(path: list[str]) -> Any:
    """The declaration of the recipe field at `path` (a list's item for an index); None where there is none."""
    from archspec.lang.recipe_fields import field_at

    keys = [k for k in path if not k.isdigit()]
    try:
        spec = field_at(keys) if keys else None
    except KeyError:
        return None
    if spec is not None and path and path[-1].isdigit():
        return spec.item
    return spec


def _augment_requirement(e: Any) -> str:
    """What an augment op's parameter takes, from its fragment of the schema (`archspec.lang.augment`'s table)."""
    from archspec.lang.augment import words

    schema = e.schema if isinstance(e.schema, dict) else {}
    if schema.get("type") == "boolean":
        return "true or false"
    if "enum" in schema:
        return "one of " + words([str(c) for c in schema["enum"]])
    low, high = schema.get("minimum", schema.get("exclusiveMinimum")), schema.get("maximum")
    open_low = "exclusiveMinimum" in schema
    noun = "whole number" if schema.get("type") == "integer" else "number"
    if low is not None and high is not None:
        return f"a {noun} in {'(' if open_low else '['}{low:g}, {high:g}]"
    return f"a {noun}" + (f" {'>' if open_low else '>='} {low:g}" if low is not None else "")


def _why_not(spec: Any, value: Any) -> str:
    """What a value that reads like a number but is text (YAML reads `1e-3` and 20-digit numbers as text) lacks."""
    import re

    if not isinstance(value, str) or spec.kind not in ("integer", "number"):
        return ""
    if re.fullmatch(r"[+-]?\d+", value):
        return f" (too large: at most {2**63 - 1:,})"
    if re.fullmatch(r"[+-]?\d+(\.\d*)?[eE][+-]?\d+", value):
        if spec.kind == "integer":
            return " (a whole number is written in digits)"
        mantissa, exponent = re.split("[eE]", value)
        return f" (YAML reads {value} as text: write {mantissa if '.' in mantissa else mantissa + '.0'}e{exponent})"
    return ""


def apply_override(recipe: dict[str, Any], path: str, value: Any) -> str | None:
    """Set `recipe[a][b]... = value` for `path` "a.b..."; fields the recipe does not declare are refused. An
    override that picks another schedule (`schedule.name=cosine`) keeps the fields the new one declares too and
    drops the others; another optimizer (`optimizer.name=adamw`) keeps only `norm_bias_decay` and what the
    override itself gives. The note returned says which (None when nothing was dropped)."""
    keys = path.split(".")
    top = keys[0]
    keyed = top in recipe and isinstance(recipe.get(top), dict) and _is_keyed(top)
    before = recipe[top].get("name") if keyed else None
    _set(recipe, keys, value)
    if not keyed or not isinstance(recipe.get(top), dict):
        return None
    after = recipe[top]["name"] if "name" in recipe[top] else before
    if after == before or not isinstance(after, str):
        return None
    from archspec.lang.recipe_fields import RecipeValues
    from archspec.lang.fields import field_at as declared_at

    variant = (declared_at(top, RecipeValues).variants or {}).get(after)
    if variant is None:
        return None  # (an unknown name: the checks say so)
    own = set(field_names([top])) & {f for f in variant.__dataclass_fields__}
    if top == "optimizer":  # an lr or a decay means another thing to another optimizer: only the switch carries
        own = {"name", "norm_bias_decay"} | {k for k in recipe[top] if _given_in(value, k)}
    dropped = [k for k in recipe[top] if k not in own]
    for k in dropped:
        del recipe[top][k]
    if not dropped:
        return None
    kept = ", ".join(k for k in recipe[top] if k != "name") or "no fields"
    why = "its own defaults (an lr or a weight decay means another thing to another optimizer)" \
        if top == "optimizer" else f"{after}'s defaults"
    return f"{top} {before or 'default'} -> {after}: kept {kept}; dropped {', '.join(dropped)}, which take {why}"


def _given_in(value: Any, key: str) -> bool:
    """Whether the override's own value (a mapping) sets `key`."""
    return isinstance(value, dict) and key in value


def _is_keyed(name: str) -> bool:
    from archspec.lang.recipe_fields import field_at

    try:
        return field_at(name).kind == "keyed"
    except KeyError:
        return False


def _set(recipe: dict[str, Any], keys: list[str], value: Any) -> None:
    from archspec.lang.diagnostics import did_you_mean

    node: Any = recipe
    for i, k in enumerate(keys):
        names = field_names(keys[:i])
        if k not in names:
            hint = did_you_mean(k, names, what="fields")
            where = ".".join(keys[:i + 1])
            raise RecipeError(f"the recipe has no field `{where}`" + (f" ({hint})" if hint else ""))
        if i == len(keys) - 1:
            # a mapping merges into the one there, as mappings merge everywhere (`optimizer={lr: 0.2}` keeps momentum)
            node[k] = _merge(node[k], value) if isinstance(node.get(k), dict) and isinstance(value, dict) else value
        else:
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                raise RecipeError(f"recipe field `{'.'.join(keys[:i + 1])}` is not a mapping")


@dataclass(frozen=True, kw_only=True)
class Recipe(RecipeValues):
    """A resolved recipe: its typed values (`recipe.optimizer.momentum`, declared in `archspec.lang.recipe_fields`:
    every field has a value, checked), `data`, the mapping as written to the run folder (recipe.json), and the
    `notes` resolving it left for the run log. `Recipe.of` makes one."""

    data: dict[str, Any] = field(compare=False, repr=False)
    notes: tuple[str, ...] = ()
    source: dict[str, str] | None = None  # a recipe named by `--recipe NAME`: {"name", "file"} (None: the spec's)

    @classmethod
    def of(cls, data: Any, notes: list[str] | tuple[str, ...] = (), source: dict[str, str] | None = None
           ) -> "Recipe":
        """The recipe `data` (a recipe.json's, or one `resolve` made), its absent fields at their defaults;
        RecipeError if a value cannot be used (the same message wherever the value came from)."""
        found = problem(data)
        if found is not None:
            raise RecipeError(found)
        return read(data, cls, data=data, notes=tuple(notes), source=source)

    # -- iterations -----------------------------------------------------------------------------------------

    def iterations(self, value: float, iters_per_epoch: int) -> int:
        """A schedule quantity (in the schedule's unit) in iterations."""
        return int(round(value * iters_per_epoch)) if self.schedule.unit == "epoch" else int(value)

    def total_iters(self, iters_per_epoch: int) -> int:
        return max(1, self.iterations(self.schedule.length, iters_per_epoch))

    def milestones(self, iters_per_epoch: int) -> list[int]:
        return sorted(self.iterations(m, iters_per_epoch) for m in getattr(self.schedule, "milestones", ()))

    def eval_interval(self, iters_per_epoch: int) -> int:
        return max(1, self.iterations(self.eval.interval, iters_per_epoch))

    def lr(self, iteration: int, iters_per_epoch: int, warming_up: bool) -> float:
        """The learning rate for the step that starts at `iteration` (0-based). Everything is counted in
        iterations (a count in epochs is rounded to whole iterations, as the run's length is); a schedule updated
        per epoch is read at the iteration its epoch starts."""
        sched, warmup = self.schedule, self.schedule.warmup
        if warmup is not None and warmup.kind == "constant":
            if warming_up:
                return warmup.lr
            warmup = None  # (over: the schedule alone, from where the run is)
        t = iteration
        if getattr(sched, "update", "iter") == "epoch":
            t = iteration // iters_per_epoch * iters_per_epoch
        linear = warmup is not None
        return lr_at(float(t), base_lr=self.optimizer.lr, kind=sched.name,
                     length=float(self.total_iters(iters_per_epoch)),
                     milestones=tuple(float(m) for m in self.milestones(iters_per_epoch)),
                     gamma=getattr(sched, "gamma", 1.0), min_lr=getattr(sched, "min_lr", 0.0),
                     warmup_kind="linear" if linear else None, warmup_lr=warmup.lr if linear else 0.0,
                     warmup_length=float(self.iterations(warmup.max_iters, iters_per_epoch)) if linear else 0.0,
                     prefix=warmup.prefix if linear else False)

    def warmup_still(self, iteration: int, train_error: float | None, iters_per_epoch: int) -> bool:
        """Whether warm-up goes on after `iteration` steps, given the recent training error (a fraction)."""
        w = self.schedule.warmup
        if w is None:
            return False
        if w.kind == "linear":
            return iteration < self.iterations(w.max_iters, iters_per_epoch)
        if w.max_iters is not None and iteration >= self.iterations(w.max_iters, iters_per_epoch):
            return False
        threshold = w.until_train_error
        return not (threshold is not None and train_error is not None and train_error < threshold)

    def to_json(self) -> str:
        return json.dumps(self.data, indent=2, sort_keys=True)


def _given(generic: list[str], path: str) -> bool:
    """Whether a `--recipe FIELD=VALUE` sets the field at `path` (itself, or a mapping holding it)."""
    keys = [item.split("=", 1)[0].strip() for item in generic if "=" in item]
    return any(path == k or path.startswith(k + ".") for k in keys)


def _keep_shares(data: dict[str, Any], generic: list[str], old_length: float, old_unit: str, unit: str,
                 length: float, notes: list[str]) -> None:
    """A run made longer or shorter by --iters or --epochs: the counts the recipe gives in its unit keep their
    share of the run, as the milestones do (5 of 100 epochs: 15 of 300 iterations): a linear warm-up's length and
    the EMA's start always, the eval interval when the unit changes (1 epoch means nothing in iterations); a
    schedule updated per epoch is updated per iteration once the run is counted in iterations. What the user
    set with --recipe keeps its value. Each change is a note for the run log."""
    kind = "iterations" if unit == "iter" else "epochs"

    def share(value: float) -> float:
        scaled = value / old_length * length
        return max(1, round(scaled)) if unit == "iter" else scaled

    sched = data["schedule"]
    warmup = sched.get("warmup")
    if isinstance(warmup, dict) and warmup.get("kind") == "linear" and _is_number(warmup.get("max_iters")) and \
            not _given(generic, "schedule.warmup.max_iters"):
        warmup["max_iters"] = share(warmup["max_iters"])  # (a constant warm-up ends on the error: its cap stays)
        notes.append(f"warm-up scaled with the length: {_count(warmup['max_iters'])} {kind}")
    ema = data.get("ema")
    if isinstance(ema, dict) and _is_number(ema.get("start")) and not _given(generic, "ema.start"):
        ema["start"] = share(ema["start"])
        notes.append(f"EMA start scaled with the length: {_count(ema['start'])} {kind}")
    interval = data["eval"].get("interval")
    if old_unit != unit and _is_number(interval) and not _given(generic, "eval.interval"):
        data["eval"]["interval"] = share(interval)
        notes.append(f"eval interval scaled with the length: every {_count(data['eval']['interval'])} {kind} "
                     f"({_count(interval)} of the recipe's {_count(old_length)} {old_unit}s; --eval-interval sets "
                     "another)")
    if sched.get("update") == "epoch" and unit == "iter" and old_unit == "epoch" and \
            not _given(generic, "schedule.update"):
        sched["update"] = "iter"
        notes.append("the learning rate changes every iteration: the run is counted in iterations (--iters)")


def _count(value: float) -> float:
    return int(value) if float(value).is_integer() else value


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def resolve(spec_recipe: dict[str, Any] | None, options: dict[str, Any], generic: list[str]) -> Recipe:
    """The spec's recipe with generic `field.path=value` overrides, defaults and named options (`iters`, `epochs`,
    `batch_size`, `lr`, ...) applied, checked for values that cannot work."""
    data = _merge({}, spec_recipe or {})
    notes: list[str] = []
    named = [item for item in generic if "=" not in item]
    if len(named) > 1:
        raise RecipeError(f"`--recipe {named[0]}` and `--recipe {named[1]}` both name a whole recipe: give one (and "
                          "change its fields with --recipe FIELD=VALUE)")
    source = None
    if named:
        data, shown = named_recipe(named[0].strip())
        source = {"name": named[0].strip(), "file": shown}
        notes.append(f"{named[0].strip()} ({shown}) in place of the spec's own recipe")
    for item in generic:
        if "=" not in item:
            continue
        path, text = item.split("=", 1)
        note = apply_override(data, path.strip(), _parse_value(text, path.strip()))
        if note:
            notes.append(note)
    data = with_defaults(data)
    check_schema(data, "the recipe with its --recipe overrides" if generic else "the spec's recipe")
    sched = data["schedule"]
    old_length, old_unit = sched["length"], sched["unit"]
    if not _is_number(old_length):  # (an `=expression` from --recipe: refused below unless an option replaces it)
        old_length = None
    if options.get("iters") is not None and options.get("epochs") is not None:
        raise RecipeError("give --iters or --epochs, not both")
    if options.get("iters") is not None or options.get("epochs") is not None:
        unit, length = ("iter", options["iters"]) if options.get("iters") is not None else ("epoch", options["epochs"])
        if options.get("milestones") is None and sched.get("milestones") and old_length:
            # (a very short run keeps the steps that still fall inside it)
            fractions = [m / old_length for m in sched["milestones"]]
            scaled = sorted({max(1, round(f * length)) for f in fractions})
            scaled = [m for m in scaled if m < length]
            if old_unit == unit:
                notes.append(f"milestones scaled with the length: {sched['milestones']} of {old_length} -> "
                             f"{scaled} of {length} ({unit}s)")
            else:
                notes.append(f"milestones kept at the same fractions of the length: {scaled} {unit}s")
            sched["milestones"] = scaled
        if old_length:
            _keep_shares(data, generic, old_length, old_unit, unit, length, notes)
        sched["unit"], sched["length"] = unit, length
        if old_length and _is_number(data["eval"]["interval"]) and data["eval"]["interval"] > length:
            data["eval"]["interval"] = length
    if options.get("milestones") is not None:
        if sched.get("name") not in (None, "step"):
            raise RecipeError(f"--milestones sets the steps of a step schedule, but this recipe's schedule is "
                              f"{sched.get('name')}: drop --milestones (or use --recipe schedule.name=step)")
        sched["milestones"] = list(options["milestones"])
    from archspec.runtime.options import PLAIN_OPTIONS

    for option, path in PLAIN_OPTIONS.items():
        if options.get(option) is not None:
            node = data
            for k in path[:-1]:
                node = node.setdefault(k, {})
            node[path[-1]] = options[option]
    if options.get("no_warmup"):
        sched.pop("warmup", None)
    try:
        return Recipe.of(data, notes, source)
    except RecipeError as e:
        raise _with_origin(e, data, spec_recipe, options, generic) from None


def _with_origin(e: RecipeError, data: dict[str, Any], spec_recipe: dict[str, Any] | None, options: dict[str, Any],
                 generic: list[str]) -> RecipeError:
    """`e`, or for milestones past the end of the run that the user did not give, the same problem saying where
    they came from (the spec's recipe, or the defaults): `--recipe schedule.length=4` is refused for milestones the
    user never wrote."""
    from archspec.lang.recipe_fields import past_the_end

    sched = data["schedule"]
    if "milestones" not in sched or str(e) != past_the_end(sched["length"], sched["milestones"], sched["unit"]):
        return e
    if options.get("milestones") is not None or any(
            item.split("=", 1)[0].strip() in ("schedule", "schedule.milestones") and "milestones" in item
            for item in generic):
        return e  # the user's own milestones: the plain message says it
    spec_schedule = (spec_recipe or {}).get("schedule")
    own = isinstance(spec_schedule, dict) and "milestones" in spec_schedule
    origin = ("the spec's recipe (its own, or one it extends or imports)" if own else
              "the recipe's defaults (the spec's recipe gives none)")
    return RecipeError(past_the_end(sched["length"], sched["milestones"], sched["unit"], origin))
