"""Training recipes: the spec's `recipe:` section with command-line overrides, as one resolved object.

A recipe is data (specs/recipes/*.yaml); this module fills in defaults, applies overrides (`--iters`,
`--batch-size`, `--lr`, or any field with `--recipe optimizer.momentum=0.8`), converts epochs to iterations and
answers the one question the training loop asks every step: what is the learning rate now?

Schedules: step decay (lr x gamma at each milestone), optionally after a warm-up at a fixed lr that lasts until
the training error falls below a threshold or `max_iters` pass (the paper's ResNet-110/1202 recipe). When the
length is overridden and the milestones are not, milestones scale with it (64k with steps at 32k/48k becomes
2k with steps at 1k/1.5k) and the run log says so.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass
from typing import Any

from archspec.lang.errors import UserError

DEFAULTS: dict[str, Any] = {
    "dataset": {"name": "cifar10", "normalize": "per_pixel_mean"},
    "augment": [],
    "batch_size": 128,
    "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4, "nesterov": False},
    "schedule": {"unit": "iter", "length": 64000, "milestones": [32000, 48000], "gamma": 0.1},
    "eval": {"interval": 2000, "views": 1, "resize": 256},
    "log_interval": 100,
    "loss": "cross_entropy",
}


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
    """Set `recipe[a][b]... = value` for `path` "a.b..."; fields the schema does not know are refused."""
    from archspec.lang.diagnostics import did_you_mean
    from archspec.lang.schema import build_schema

    schema = build_schema()["$defs"]["recipe"]
    keys = path.split(".")
    node: Any = recipe
    for i, k in enumerate(keys):
        props = schema.get("properties", {}) if isinstance(schema, dict) else {}
        if k not in props:
            hint = did_you_mean(k, props, what="fields")
            where = ".".join(keys[:i + 1])
            raise RecipeError(f"the recipe has no field `{where}`" + (f" ({hint})" if hint else ""))
        schema = props[k]
        if i == len(keys) - 1:
            # a mapping merges into the one there, as mappings merge everywhere (`optimizer={lr: 0.2}` keeps momentum)
            node[k] = _merge(node[k], value) if isinstance(node.get(k), dict) and isinstance(value, dict) else value
        else:
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                raise RecipeError(f"recipe field `{'.'.join(keys[:i + 1])}` is not a mapping")


@dataclass
class Recipe:
    """A resolved recipe. `data` is the raw mapping (as written to the run folder as recipe.json)."""

    data: dict[str, Any]
    notes: list[str]

    # -- plain fields ---------------------------------------------------------------------------------------

    @property
    def batch_size(self) -> int:
        return int(self.data["batch_size"])

    @property
    def optimizer(self) -> dict[str, Any]:
        return self.data["optimizer"]

    @property
    def log_interval(self) -> int:
        return int(self.data["log_interval"])

    @property
    def dataset(self) -> dict[str, Any]:
        return self.data["dataset"]

    @property
    def augment(self) -> list[dict[str, Any]]:
        return list(self.data.get("augment") or [])

    @property
    def eval(self) -> dict[str, Any]:
        return self.data["eval"]

    @property
    def schedule(self) -> dict[str, Any]:
        return self.data["schedule"]

    @property
    def warmup(self) -> dict[str, Any] | None:
        return self.schedule.get("warmup")

    # -- iterations -----------------------------------------------------------------------------------------

    def iterations(self, value: float, iters_per_epoch: int) -> int:
        """A schedule quantity (in the schedule's unit) in iterations."""
        return int(round(value * iters_per_epoch)) if self.schedule.get("unit") == "epoch" else int(value)

    def total_iters(self, iters_per_epoch: int) -> int:
        return max(1, self.iterations(self.schedule["length"], iters_per_epoch))

    def milestones(self, iters_per_epoch: int) -> list[int]:
        return sorted(self.iterations(m, iters_per_epoch) for m in self.schedule.get("milestones", []))

    def eval_interval(self, iters_per_epoch: int) -> int:
        return max(1, self.iterations(self.eval.get("interval") or self.schedule["length"], iters_per_epoch))

    def lr(self, iteration: int, iters_per_epoch: int, warming_up: bool) -> float:
        """The learning rate for the step that starts at `iteration` (0-based)."""
        if warming_up and self.warmup:
            return float(self.warmup["lr"])
        gamma = float(self.schedule.get("gamma", 0.1))
        passed = sum(1 for m in self.milestones(iters_per_epoch) if iteration >= m)
        return float(self.optimizer["lr"]) * gamma ** passed

    def warmup_still(self, iteration: int, train_error: float | None, iters_per_epoch: int) -> bool:
        """Whether warm-up goes on after `iteration` steps, given the recent training error (a fraction)."""
        w = self.warmup
        if not w:
            return False
        limit = w.get("max_iters")
        if limit is not None and iteration >= self.iterations(limit, iters_per_epoch):
            return False
        threshold = w.get("until_train_error")
        return not (threshold is not None and train_error is not None and train_error < threshold)

    def to_json(self) -> str:
        return json.dumps(self.data, indent=2, sort_keys=True)


def resolve(spec_recipe: dict[str, Any] | None, options: dict[str, Any], generic: list[str]) -> Recipe:
    """The spec's recipe with defaults, named options (`iters`, `epochs`, `batch_size`, `lr`, ...) and generic
    `field.path=value` overrides applied, checked for values that cannot work."""
    data = _merge(DEFAULTS, spec_recipe or {})
    notes: list[str] = []
    for item in generic:
        if "=" not in item:
            raise RecipeError(f"`--recipe {item}` is not of the form field.path=value (e.g. optimizer.momentum=0.8)")
        path, text = item.split("=", 1)
        apply_override(data, path.strip(), _parse_value(text, path.strip()))
    check_schema(data, "the recipe with its --recipe overrides" if generic else "the spec's recipe")
    sched = data["schedule"]
    old_length, old_unit = sched.get("length"), sched.get("unit", "iter")
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
        sched["unit"], sched["length"] = unit, length
        if data["eval"].get("interval") and old_length and data["eval"]["interval"] > length:
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
    _check(data)
    return Recipe(data, notes)


def _check(data: dict[str, Any]) -> None:
    def positive(value: Any, what: str, integer: bool = True) -> None:
        ok = isinstance(value, int) and not isinstance(value, bool) if integer else \
            isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if not ok or value <= 0:
            kind = "a positive whole number" if integer else "a positive number"
            raise RecipeError(f"{what} must be {kind}, got {value!r}")

    for path in (("batch_size",), ("log_interval",), ("schedule", "length"), ("optimizer", "lr")):
        node: Any = data
        for k in path:
            if not isinstance(node, dict) or k not in node:
                raise RecipeError(f"the recipe has no `{'.'.join(path)}`: give it (--recipe {'.'.join(path)}=VALUE)")
            node = node[k]
    positive(data["batch_size"], "batch size")
    positive(data["log_interval"], "log interval")
    positive(data["schedule"]["length"], "schedule length", integer=data["schedule"].get("unit") != "epoch")
    opt = data["optimizer"]
    if opt.get("name", "sgd") != "sgd":
        raise RecipeError(f"optimizer {opt.get('name')!r} is not supported (sgd is)")
    positive(opt["lr"], "learning rate", integer=False)
    for key in ("momentum", "weight_decay"):
        v = opt.get(key, 0)
        if not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0 or not math.isfinite(v):
            raise RecipeError(f"{key} must be a number >= 0, got {v!r}")
    if not opt.get("momentum", 0) < 1:  # as --momentum says: momentum 1 or more makes the steps grow without end
        raise RecipeError(f"momentum must be in [0, 1), got {opt['momentum']!r}")
    gamma = data["schedule"].get("gamma", 0.1)
    if not isinstance(gamma, (int, float)) or not 0 < gamma <= 1:
        raise RecipeError(f"schedule gamma must be in (0, 1], got {gamma!r}")
    if data["eval"].get("views", 1) not in (1, 10):
        raise RecipeError(f"eval views must be 1 or 10, got {data['eval'].get('views')!r}")
    warm = data["schedule"].get("warmup")
    if warm:
        positive(warm.get("lr"), "warm-up lr", integer=False)
    sched = data["schedule"]
    epochs = sched.get("unit") == "epoch"
    milestones = sched.get("milestones") or []
    unit = "epochs" if epochs else "iterations"
    if not isinstance(milestones, list):
        raise RecipeError(f"milestones must be a list of {unit}, got {milestones!r}")
    for m in milestones:
        positive(m, "each milestone", integer=not epochs)
    if any(b <= a for a, b in zip(milestones, milestones[1:])):
        raise RecipeError(f"milestones must increase, got {', '.join(map(str, milestones))} "
                          f"(e.g. {', '.join(map(str, sorted(set(milestones))))})")
    if milestones and milestones[-1] >= sched["length"]:
        # (the milestones may come from a recipe the user never read: a parent spec's, or the defaults; say them)
        raise RecipeError(f"milestone {milestones[-1]} is not before the end of the run ({sched['length']} {unit}); "
                          f"the schedule's milestones are {milestones}: give milestones below the length "
                          "(--milestones, or schedule.milestones in the recipe), or set the length with "
                          f"--{'epochs' if epochs else 'iters'}, which scales the milestones with it")
    if data["eval"].get("interval") is not None:
        positive(data["eval"]["interval"], "eval interval", integer=not epochs)
    for key in ("train_size", "val_size"):
        value = data["dataset"].get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                  or value < (0 if key == "val_size" else 1)):
            low = 0 if key == "val_size" else 1
            raise RecipeError(f"dataset {key} must be a whole number >= {low}, got {value!r}")
