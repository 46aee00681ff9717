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

    try:
        return parse_value(text, f"--recipe {path}")
    except SpecError as e:
        raise RecipeError(f"`--recipe {path}=...`: {e.diagnostics[0].message}") from None


def check_schema(data: Any, where: str) -> None:
    """RecipeError, naming the field, for a recipe that the spec schema's recipe part refuses (a wrong type, an
    unknown choice such as `loss: mse`, a field that does not exist): every recipe goes through it, whether it
    comes from a spec, `--recipe`, a flag or a run folder's recipe.json."""
    import jsonschema

    from archspec.lang.schema import build_schema

    schema = build_schema()
    validator = jsonschema.Draft202012Validator({"$ref": "#/$defs/recipe", "$defs": schema["$defs"]})
    errors = sorted(validator.iter_errors(data), key=lambda e: (len(e.absolute_path), list(map(str, e.path))))
    if errors:
        e = jsonschema.exceptions.best_match(errors)
        field = ".".join(str(p) for p in e.absolute_path) or "the recipe"
        shown = json.dumps(e.instance, default=str)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        raise RecipeError(f"{where}: recipe field `{field}` is {shown}, which the recipe schema refuses: "
                          f"{_schema_reason(e)}")


def _schema_reason(e: Any) -> str:
    if e.validator == "enum":
        return "it must be one of " + ", ".join(map(str, e.validator_value))
    if e.validator == "type":
        return f"it must be {'an' if str(e.validator_value)[0] in 'aeiou' else 'a'} {e.validator_value}"
    if e.validator == "additionalProperties":
        return e.message
    if e.validator in ("anyOf", "oneOf") and e.context:
        kinds = sorted({str(c.validator_value) for c in e.context if c.validator == "type"})
        return "it must be " + " or ".join(kinds) if kinds else e.message
    return e.message


def apply_override(recipe: dict[str, Any], path: str, value: Any) -> None:
    """Set `recipe[a][b]... = value` for `path` "a.b..."; fields the recipe does not declare are refused."""
    from archspec.lang.diagnostics import did_you_mean

    keys = path.split(".")
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

    @classmethod
    def of(cls, data: Any, notes: list[str] | tuple[str, ...] = ()) -> "Recipe":
        """The recipe `data` (a recipe.json's, or one `resolve` made), its absent fields at their defaults;
        RecipeError if a value cannot be used (the same message wherever the value came from)."""
        found = problem(data)
        if found is not None:
            raise RecipeError(found)
        return read(data, cls, data=data, notes=tuple(notes))

    # -- iterations -----------------------------------------------------------------------------------------

    def iterations(self, value: float, iters_per_epoch: int) -> int:
        """A schedule quantity (in the schedule's unit) in iterations."""
        return int(round(value * iters_per_epoch)) if self.schedule.unit == "epoch" else int(value)

    def total_iters(self, iters_per_epoch: int) -> int:
        return max(1, self.iterations(self.schedule.length, iters_per_epoch))

    def milestones(self, iters_per_epoch: int) -> list[int]:
        return sorted(self.iterations(m, iters_per_epoch) for m in self.schedule.milestones)

    def eval_interval(self, iters_per_epoch: int) -> int:
        return max(1, self.iterations(self.eval.interval, iters_per_epoch))

    def lr(self, iteration: int, iters_per_epoch: int, warming_up: bool) -> float:
        """The learning rate for the step that starts at `iteration` (0-based)."""
        warmup = self.schedule.warmup
        if warming_up and warmup is not None:
            return warmup.lr
        passed = sum(1 for m in self.milestones(iters_per_epoch) if iteration >= m)
        return self.optimizer.lr * self.schedule.gamma ** passed

    def warmup_still(self, iteration: int, train_error: float | None, iters_per_epoch: int) -> bool:
        """Whether warm-up goes on after `iteration` steps, given the recent training error (a fraction)."""
        w = self.schedule.warmup
        if w is None:
            return False
        if w.max_iters is not None and iteration >= self.iterations(w.max_iters, iters_per_epoch):
            return False
        threshold = w.until_train_error
        return not (threshold is not None and train_error is not None and train_error < threshold)

    def to_json(self) -> str:
        return json.dumps(self.data, indent=2, sort_keys=True)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def resolve(spec_recipe: dict[str, Any] | None, options: dict[str, Any], generic: list[str]) -> Recipe:
    """The spec's recipe with generic `field.path=value` overrides, defaults and named options (`iters`, `epochs`,
    `batch_size`, `lr`, ...) applied, checked for values that cannot work."""
    data = _merge({}, spec_recipe or {})
    notes: list[str] = []
    for item in generic:
        if "=" not in item:
            raise RecipeError(f"`--recipe {item}` is not of the form field.path=value (e.g. optimizer.momentum=0.8)")
        path, text = item.split("=", 1)
        apply_override(data, path.strip(), _parse_value(text, path.strip()))
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
        if options.get("milestones") is None and sched["milestones"] and old_length:
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
        sched["unit"], sched["length"] = unit, length
        if old_length and _is_number(data["eval"]["interval"]) and data["eval"]["interval"] > length:
            data["eval"]["interval"] = length
    if options.get("milestones") is not None:
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
    return Recipe.of(data, notes)
