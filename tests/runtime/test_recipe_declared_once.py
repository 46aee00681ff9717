"""The training recipe is declared once (archspec.lang.recipe_fields): its JSON schema, its defaults, its value
checks, the typed record the runtime reads and the ranges of the `train` flags all come from that declaration.
These tests hold each of them to it, so that a field cannot be half declared."""

from __future__ import annotations

import ast
import json
from dataclasses import FrozenInstanceError, dataclass
from pathlib import Path

import jsonschema
import pytest

from archspec.cli import build_parser
from archspec.cmdbase import UsageError
from archspec.lang import fields
from archspec.lang.recipe_fields import (SGD, RecipeValues, Section, choice, defaults, field_at, field_names, keyed,
                                         number, problem, read, recipe_json_schema, with_defaults)
from archspec.lang.schema import build_schema
from archspec.lang.spec import load_spec
from archspec.runtime.options import RECIPE_OPTIONS
from archspec.runtime.recipe import Recipe, RecipeError, resolve

ROOT = Path(__file__).resolve().parents[2]

# what every recipe.json of a spec without a recipe has held since the first run folder (runtime/recipe.py's
# DEFAULTS before the declaration): changing a default changes what old commands train
FIRST_DEFAULTS = {
    "dataset": {"name": "cifar10", "normalize": "per_pixel_mean"},
    "augment": [],
    "batch_size": 128,
    "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4, "nesterov": False},
    "schedule": {"unit": "iter", "length": 64000, "milestones": [32000, 48000], "gamma": 0.1},
    "eval": {"interval": 2000, "views": 1, "resize": 256},
    "log_interval": 100,
    "loss": "cross_entropy",
}
# the fields added since, each at the default that trains what was trained before it existed (the schedule is
# named, every parameter is decayed, no smoothing, each image once per epoch)
LATER_DEFAULTS = {("schedule", "name"): "step", ("optimizer", "norm_bias_decay"): True, ("label_smoothing",): 0.0,
                  ("repeated_augment",): 1}


def later(first: dict) -> dict:
    """`first` with LATER_DEFAULTS added where the declaration puts them."""
    out = json.loads(json.dumps(first))
    order = defaults()
    for path, value in LATER_DEFAULTS.items():
        node, declared = out, order
        for key in path[:-1]:
            node, declared = node[key], declared[key]
        node[path[-1]] = value
        keys = list(declared)
        node_items = sorted(node.items(), key=lambda kv: keys.index(kv[0]) if kv[0] in keys else len(keys))
        node.clear()
        node.update(node_items)
    return {k: out[k] for k in sorted(out, key=list(order).index)}


def leaf_paths(prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every declared field that is not a section, as a path."""
    out = []
    for name in field_names(prefix):
        path = prefix + (name,)
        out += leaf_paths(path) if field_names(path) else [path]
    return out


def schema_at(path: tuple[str, ...], variant: str | None = None) -> dict:
    """The schema of the field at `path`; inside a keyed section (an optimizer, a schedule), that of the variant
    that declares the next key (`variant`: of that one), and an optional field's own (its null alternative aside)."""
    node = build_schema()["$defs"]["recipe"]
    for i, key in enumerate(path):
        if "anyOf" in node and node["anyOf"][-1] == {"type": "null"}:  # an optional section
            node = node["anyOf"][0]
        if "allOf" in node:  # a keyed section: the variant holding `key`
            thens = [rule["then"] for rule in node["allOf"]
                     if variant is None or rule["if"]["properties"]["name"]["const"] == variant]
            node = next(t for t in thens if key in t["properties"])
        node = node["properties"][key]
    if "anyOf" in node and node["anyOf"][-1] == {"type": "null"}:
        node = {**node["anyOf"][0], **{k: v for k, v in node.items() if k != "anyOf"}}
    return node


def variant_of(path: tuple[str, ...]) -> dict:
    """The smallest recipe that reaches the field at `path` (a keyed section named for the variant declaring it)."""
    data: dict = {}
    node, record = data, RecipeValues
    for key in path[:-1]:
        spec = fields.field_at((key,), record)
        node = node.setdefault(key, {"lr": 0.1} if key == "warmup" else {"max": 1.0} if key == "clip_grad" else
                               {"mixup_alpha": 0.2} if key == "mixup" else {})
        if spec.kind == "keyed":
            record = next(r for n, r in spec.variants.items()
                          if path[path.index(key) + 1] in r.__dataclass_fields__)
            node["name"] = record.__dataclass_fields__["name"].default
        else:
            record = spec.record
    return data


# -- the schema ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", leaf_paths(), ids=".".join)
def test_every_declared_field_is_in_the_schema_with_its_default_and_range(path):
    schema = schema_at(path)
    spec = _declared_in_variant(path)
    default = fields._default_json(_declared_in_variant(path, field=True))
    default = {} if default is fields.MISSING else default
    assert schema.get("default", {}) == default, path  # ({} when the field has no default)
    assert schema["description"].startswith(spec.doc)
    if spec.kind in ("integer", "number"):
        assert spec.requirement() in schema["description"], path
        ref = schema.get("$ref") or schema["anyOf"][0].get("$ref")
        if spec.kind == "number":
            assert ref == "#/$defs/number"
        elif spec.in_unit:  # a count in the schedule's unit: whole iterations or any positive number of epochs
            assert schema["anyOf"][0] == {"type": "number", "exclusiveMinimum": 0}, path
        else:  # a whole number keeps its lower bound in the schema
            low = spec.schema_minimum if spec.schema_minimum is not None else spec.minimum
            assert (ref == "#/$defs/count") == (low == 1), path
            if ref is None:
                assert schema["anyOf"][0] == {"type": "integer", "minimum": low}
    if spec.kind == "choice":
        assert schema["enum"] == list(spec.choices)
    if spec.kind == "boolean":
        assert schema["type"] == "boolean"


def _declared_in_variant(path: tuple[str, ...], field: bool = False):
    """The declaration of the field at `path` in the variant that declares it (field_at gives the first one's);
    `field`: its dataclass field instead."""
    record = RecipeValues
    spec = None
    for i, key in enumerate(path):
        spec = fields.field_at((key,), record)
        if field and i == len(path) - 1:
            return record.__dataclass_fields__[key]
        if spec.kind == "keyed" and i + 1 < len(path):
            record = next(r for r in spec.variants.values() if path[i + 1] in r.__dataclass_fields__)
        elif spec.kind == "section":
            record = spec.record
    return spec


def test_every_section_of_the_schema_is_closed_and_holds_exactly_the_declared_fields():
    def walk(schema: dict, record: type) -> None:
        if "allOf" in schema:  # a keyed section: each variant closed, with exactly its own fields
            for rule in schema["allOf"]:
                variant = rule["if"]["properties"]["name"]["const"]
                walk(rule["then"], rule_record[variant])
            return
        if "anyOf" in schema and schema["anyOf"][-1] == {"type": "null"}:
            schema = schema["anyOf"][0]
        assert schema["additionalProperties"] is False
        assert list(schema["properties"]) == [f.name for f, _ in fields._declared(record)]
        for f, spec in fields._declared(record):
            if spec.kind == "section":
                walk(schema["properties"][f.name], spec.record)
            elif spec.kind == "keyed":
                rule_record.update(spec.variants)
                walk(schema["properties"][f.name], record)
    rule_record: dict = {}
    walk(build_schema()["$defs"]["recipe"], RecipeValues)


def test_the_shipped_schema_file_has_the_generated_recipe():
    shipped = json.loads((ROOT / "specs" / "archspec.schema.json").read_text())
    assert shipped["$defs"]["recipe"] == json.loads(json.dumps(recipe_json_schema()))


# -- the defaults ----------------------------------------------------------------------------------------------

def test_the_defaults_are_the_declarations_and_the_same_as_ever():
    assert defaults() == later(FIRST_DEFAULTS)
    assert list(defaults())[:len(FIRST_DEFAULTS)] == list(FIRST_DEFAULTS)  # (the order spec.yaml writes them in)
    assert resolve(None, {}, []).data == later(FIRST_DEFAULTS)
    # the typed record of the defaults is the record's own defaults
    assert read(defaults()) == RecipeValues()
    assert RecipeValues().optimizer.momentum == 0.9 and RecipeValues().schedule.warmup is None


def test_resolving_never_changes_the_defaults():
    """`resolve(None, {"epochs": 2.5})` changed the module's DEFAULTS in place (a shallow merge), so the next
    recipe without a schedule trained 2.5 epochs."""
    resolve(None, {"epochs": 2.5, "views": 10}, [])
    resolve(None, {}, ["dataset.train_size=5"]).data["dataset"]["name"] = "changed"
    assert resolve(None, {}, []).data == later(FIRST_DEFAULTS) == defaults()


def test_a_recipe_json_without_some_fields_reads_them_at_their_defaults_and_keeps_its_text():
    data = json.loads(json.dumps(FIRST_DEFAULTS))
    del data["eval"]["resize"], data["optimizer"]["nesterov"]
    recipe = Recipe.of(data)
    assert recipe.eval.resize == 256 and recipe.optimizer.nesterov is False
    assert json.loads(recipe.to_json()) == data  # recipe.json is what the run folder has, not the defaults


def test_with_defaults_keeps_what_is_given_and_its_order():
    given = {"dataset": {"val_size": 0, "name": "synthetic"}, "schedule": None}
    filled = with_defaults(given)
    assert filled["schedule"] is None  # (the schema refuses it, naming it)
    assert list(filled["dataset"]) == ["name", "normalize", "val_size"]
    assert filled["dataset"]["name"] == "synthetic" and given == {"dataset": {"val_size": 0, "name": "synthetic"},
                                                                  "schedule": None}


# -- the typed record ------------------------------------------------------------------------------------------

def test_the_resolved_recipe_is_typed_and_frozen():
    recipe = resolve(load_spec("cifar_resnet110").recipe, {"iters": 100}, ["optimizer.lr=1"])
    assert isinstance(recipe.optimizer.lr, float) and recipe.optimizer.lr == 1.0
    assert isinstance(recipe.eval.views, int) and recipe.schedule.milestones == (50, 75)
    assert recipe.schedule.warmup is not None and recipe.schedule.warmup.lr == 0.01
    assert isinstance(recipe.augment, tuple) and recipe.augment[0]["op"] == "pad_crop"
    with pytest.raises(FrozenInstanceError):
        recipe.batch_size = 3  # type: ignore[misc]
    with pytest.raises(FrozenInstanceError):
        recipe.optimizer.lr = 3  # type: ignore[misc]
    assert recipe.at("eval.crop") is None and recipe.at("optimizer.momentum") == 0.9


def test_an_eval_views_of_one_point_zero_is_the_choice_one():
    """The schema's enum takes 1.0 for 1; so does the check, and the record holds the choice itself."""
    assert resolve(None, {}, ["eval.views=1.0"]).eval.views == 1
    assert type(resolve(None, {}, ["eval.views=1.0"]).eval.views) is int
    with pytest.raises(RecipeError, match="eval views must be 1 or 10, got 3"):
        resolve(None, {"views": 3}, [])


# -- the checks: the same message from every source ------------------------------------------------------------

OUT_OF_RANGE = [
    ("optimizer.momentum", "2", "momentum must be in [0, 1), got 2"),
    ("schedule.gamma", "0", "schedule gamma must be in (0, 1], got 0"),
    ("optimizer.weight_decay", "-1", "weight_decay must be a number >= 0, got -1"),
]


def spec_with(tmp_path: Path, field: str, value: str) -> Path:
    *sections, leaf = field.split(".")
    text = f"{leaf}: {value}"
    for s in reversed(sections):
        text = f"{s}: {{{text}}}"
    path = tmp_path / "spec.yaml"
    path.write_text(f"archspec: 1\nextends: archspec:cifar_resnet20.yaml\nrecipe: {{{text}}}\n")
    return path


@pytest.mark.parametrize("field, value, message", OUT_OF_RANGE)
def test_an_out_of_range_value_is_refused_alike_from_a_spec_and_from_recipe(cli, train_args, tmp_path, field,
                                                                             value, message):
    args = train_args(tmp_path / "a", iters=2)
    args[1] = str(spec_with(tmp_path, field, value))  # (instead of cifar_resnet20)
    from_spec = cli(*args)
    from_flag = cli(*train_args(tmp_path / "b", "--recipe", f"{field}={value}", iters=2))
    for r in (from_spec, from_flag):
        assert r.code == 2 and message in r.err and len(r.err.strip().splitlines()) == 1, r.err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


@pytest.mark.slow
@pytest.mark.parametrize("field, value, message", OUT_OF_RANGE[:1])
def test_an_out_of_range_value_in_a_run_folders_recipe_json_is_refused_alike(cli, stopped_run, finished_run,
                                                                             tmp_path, field, value, message):
    for run in (stopped_run(tmp_path / "stopped"), finished_run):
        info = json.loads((run / "run.json").read_text())
        info.pop("recipe_sha256", None)  # (as a run folder from before the hash was kept)
        (run / "run.json").write_text(json.dumps(info))
        data = json.loads((run / "recipe.json").read_text())
        section, leaf = field.split(".")
        data[section][leaf] = json.loads(value)
        (run / "recipe.json").write_text(json.dumps(data, indent=2, sort_keys=True))
    resumed = cli("train", "--resume", "--out", tmp_path / "stopped", "--quiet")
    assert resumed.code == 2 and message in resumed.err and "recipe.json is damaged" in resumed.err, resumed.err
    evaluated = cli("eval", "--checkpoint", finished_run, "--device", "cpu")
    assert evaluated.code == 2 and message in evaluated.err, evaluated.err


def test_nesterov_without_momentum_is_refused_before_the_run(cli, train_args, tmp_path):
    """torch.optim.SGD raised ValueError ("Nesterov momentum requires a momentum") once the run had started."""
    r = cli(*train_args(tmp_path / "run", "--momentum", "0", "--recipe", "optimizer.nesterov=true", iters=2))
    assert r.code == 2 and "optimizer nesterov needs a momentum above 0" in r.err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("path", [p for p in leaf_paths() if field_at(p).kind in ("integer", "number")],
                         ids=".".join)
def test_each_number_field_refuses_what_its_range_refuses_in_its_own_words(path):
    spec = _declared_in_variant(path)
    bad = "x" if spec.minimum is None else spec.minimum if spec.low_open else spec.minimum - 1
    data = with_defaults(variant_of(path))
    node = data
    for key in path[:-1]:
        node = node.setdefault(key, {"lr": 0.1} if key == "warmup" else {})
    node[path[-1]] = bad
    found = problem(data)
    assert found is not None and found.endswith(f"must be {spec.requirement()}, got {bad!r}"), found


# -- the flags read their field's declaration ------------------------------------------------------------------

def flag_refuses(option, text: str) -> bool:
    try:
        build_parser().parse_args(["train", "cifar_resnet20", "--" + option.name.replace("_", "-"), text])
    except UsageError:
        return True
    return False


@pytest.mark.parametrize("option", [o for o in RECIPE_OPTIONS if o.declared.kind in ("integer", "number")],
                         ids=lambda o: o.name)
def test_each_recipe_flag_has_its_fields_range(option):
    spec = option.declared
    low = 0 if option.unit == "epoch" else spec.minimum
    open_low = option.unit == "epoch" or spec.low_open
    assert flag_refuses(option, str(low if open_low else low - 1))
    assert not flag_refuses(option, str(low + 1 if open_low else low))
    if spec.maximum is not None:
        assert flag_refuses(option, str(spec.maximum)) == spec.high_open
    if spec.whole(option.unit):
        assert flag_refuses(option, "2.5")


@pytest.mark.parametrize("option", [o for o in RECIPE_OPTIONS if o.declared.kind == "choice"], ids=lambda o: o.name)
def test_each_choice_flag_offers_its_fields_choices(option):
    for c in option.declared.choices:
        assert not flag_refuses(option, str(c))
    assert flag_refuses(option, "nonsense")


# -- room for more: a choice of sections keyed by `name` -------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class _Adamish(Section):
    """A second optimizer, declared as a later one would be."""
    name: str = choice("adamish", ("adamish",), doc="the optimizer")
    lr: float = number(1e-3, minimum=0, low_open=True, label="learning rate", doc="the step size")
    beta: float = number(0.9, minimum=0, maximum=1, high_open=True, label="beta", doc="the average's decay")


@dataclass(frozen=True, kw_only=True)
class _TwoOptimizers(Section):
    optimizer: SGD = keyed({"sgd": SGD, "adamish": _Adamish}, "sgd", doc="how the weights are updated")


def test_a_second_variant_is_one_more_declaration():
    schema = {"$defs": build_schema()["$defs"], **fields.json_schema(_TwoOptimizers)}
    valid = jsonschema.Draft202012Validator(schema).is_valid
    assert valid({"optimizer": {"name": "adamish", "beta": 0.5}}) and valid({"optimizer": {"momentum": 0.5}})
    assert not valid({"optimizer": {"name": "adamish", "momentum": 0.5}})  # SGD's field, not Adamish's
    assert not valid({"optimizer": {"beta": 0.5}})  # no name: the default, SGD, which has no beta
    assert not valid({"optimizer": {"name": "lamb"}})
    assert fields.defaults(_TwoOptimizers) == {"optimizer": later(FIRST_DEFAULTS)["optimizer"]}
    assert fields.with_defaults({"optimizer": {"name": "adamish"}}, _TwoOptimizers) == \
        {"optimizer": {"name": "adamish", "lr": 1e-3, "beta": 0.9}}
    assert fields.problem({"optimizer": {"name": "adamish", "beta": 1}}, _TwoOptimizers) == \
        "beta must be in [0, 1), got 1"
    adam = fields.read({"optimizer": {"name": "adamish"}}, _TwoOptimizers).optimizer
    assert isinstance(adam, _Adamish) and adam.beta == 0.9
    assert set(fields.field_names(("optimizer",), _TwoOptimizers)) == {"name", "lr", "momentum", "weight_decay",
                                                                      "nesterov", "norm_bias_decay", "beta"}


# -- no consumer keeps defaults of its own ---------------------------------------------------------------------

# `.get("<a recipe field>", default)` calls that are not on a recipe, or not this change's to remove
NOT_RECIPE_FALLBACKS = {
    ("runtime/checkpoint.py", "name"),  # a checkpoint's architecture record
    ("runtime/rundir.py", "name"),  # run.json's record of the spec
    ("runtime/sweep.py", "kind"),  # a metrics record's kind, not the warm-up's
}


def test_no_consumer_falls_back_to_a_default_of_its_own():
    """Every recipe value a consumer reads has its declared default already: `ds.get("name", "cifar10")` or
    `o.get("momentum", 0)` (which disagreed with the declared 0.9) is a second source of truth."""
    names = {p[-1] for p in leaf_paths()} | set(field_names())
    found = set()
    files = sorted((ROOT / "runtime").rglob("*.py")) + sorted((ROOT / "archspec").glob("*.py"))
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
                    and len(node.args) == 2 and isinstance(node.args[0], ast.Constant)
                    and node.args[0].value in names):
                found.add((path.relative_to(ROOT).as_posix(), node.args[0].value))
    assert found <= NOT_RECIPE_FALLBACKS, sorted(found - NOT_RECIPE_FALLBACKS)


def test_views_are_declared_once():
    """1 and 10 are written in the declaration only (the data layer's own check of a DataConfig aside)."""
    hits = []
    for path in sorted((ROOT / "runtime").glob("*.py")) + sorted((ROOT / "archspec").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        if "(1, 10)" in text or "[1, 10]" in text:
            hits.append(path.relative_to(ROOT).as_posix())
    assert hits == ["archspec/lang/recipe_fields.py"]


def test_a_run_of_a_fractional_number_of_epochs_can_be_read_back(cli, cifar_dir, tmp_path):
    """`--epochs 0.5` trained, but wrote `schedule.length: 0.5`, which the schema refused as a whole number: the
    run could then be neither resumed nor evaluated ("recipe.json is damaged"). A count of epochs is any positive
    number; a count of iterations stays whole."""
    out = tmp_path / "run"
    r = cli("train", "cifar_resnet20", "--data-dir", cifar_dir, "--out", out, "--device", "cpu", "--epochs", "0.25",
            "--batch-size", "50", "--train-size", "400", "--val-size", "100", "--eval-interval", "1", "--quiet")
    assert r.code == 0, r.err
    assert json.loads((out / "recipe.json").read_text())["schedule"]["length"] == 0.25
    again = cli("train", "--resume", "--out", out, "--device", "cpu", "--quiet")
    assert again.code == 0 and "damaged" not in again.err, again.err
    with pytest.raises(RecipeError, match="schedule length"):
        resolve(None, {}, ["schedule.length=100.5", "schedule.milestones=[50]"])  # iterations stay whole
