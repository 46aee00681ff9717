"""Issue "Hostile input", findings 7, 13 (part), 14 and 15 (part): every recipe value goes through the recipe
schema (a `--recipe` override skipped it: `loss=mse`, `schedule.unit=day`, `optimizer.nesterov=banana` ran, exit
0; `optimizer=3` or `schedule=null` crashed), `optimizer.momentum=2` is refused as `--momentum 2` is, `--recipe`
values have the spec reader's alias and nesting budgets, and a run's recipe.json is hash-checked on --resume."""

from __future__ import annotations

import json

import pytest

from archspec.lang.spec import load_spec
from archspec.runtime.recipe import RecipeError, resolve


def recipe_of(*overrides: str):
    return resolve(load_spec("cifar_resnet20").recipe, {}, list(overrides))


@pytest.mark.parametrize("override, message", [
    ("loss=mse", "recipe field `loss` must be one of cross_entropy, bce, got \"mse\""),
    ("schedule.unit=day", "recipe field `schedule.unit` must be one of iter, epoch, got \"day\""),
    ("optimizer.nesterov=banana", "recipe field `optimizer.nesterov` must be true or false, got \"banana\""),
    ("optimizer=3", "recipe field `optimizer` must be a mapping, got 3"),
    ("schedule=null", "recipe field `schedule` must be a mapping, got null"),
    ("augment=3", "recipe field `augment` must be a list, got 3"),
    ("schedule.milestones=3", "recipe field `schedule.milestones` must be a list, got 3"),
    ("optimizer.momentum=2", "momentum must be in [0, 1), got 2"),
    ("optimizer={lr: null}", "recipe field `optimizer.lr` must be a positive number, got null"),
    ("batch_size=&a [*a]", "an alias refers to the collection that contains it"),
    ("augment=" + "[" * 70 + "]" * 70, "nested more than 64 deep"),
])
def test_every_recipe_override_goes_through_the_schema(override, message):
    with pytest.raises(RecipeError) as e:
        recipe_of(override)
    assert message in str(e.value)


def test_a_mapping_override_merges_into_the_mapping_there():
    base, changed = recipe_of(), recipe_of("optimizer={lr: 0.3}")
    assert changed.optimizer["lr"] == 0.3 and changed.optimizer["momentum"] == base.optimizer["momentum"]


def test_the_cli_says_which_field_in_one_line(cli, train_args, tmp_path):
    r = cli(*train_args(tmp_path / "run", "--recipe", "loss=mse", iters=2))
    assert r.code == 2 and len(r.err.strip().splitlines()) == 1 and "`loss`" in r.err
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_a_recipe_json_changed_before_resume_is_refused(cli, stopped_run, tmp_path):
    run = stopped_run(tmp_path / "run")
    data = json.loads((run / "recipe.json").read_text())
    data["optimizer"]["lr"] = 10.0
    (run / "recipe.json").write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    r = cli("train", "--resume", "--out", run, "--quiet")
    assert r.code == 2 and "recipe.json was changed after the run started" in r.err


@pytest.mark.slow
def test_a_damaged_recipe_json_is_refused_on_resume(cli, stopped_run, tmp_path):
    run = stopped_run(tmp_path / "run")
    info = json.loads((run / "run.json").read_text())
    info.pop("recipe_sha256", None)  # as a run folder from before the hash was kept
    (run / "run.json").write_text(json.dumps(info))
    (run / "recipe.json").write_text("[]\n")
    r = cli("train", "--resume", "--out", run, "--quiet")
    assert r.code == 2 and "recipe.json is damaged" in r.err and "internal error" not in r.err


def test_a_length_below_inherited_milestones_names_them_and_the_fixes():
    """Finding 22: `schedule: {length: 4}` was refused for "milestone 48000", a value the user never wrote (it
    comes with the parent's recipe): the message now shows the milestones and both ways out."""
    with pytest.raises(RecipeError) as e:
        recipe_of("schedule.length=4")
    text = str(e.value)
    assert text.startswith("schedule length 4 iterations is not longer than the last milestone, 48000")
    assert "the milestones [32000, 48000] come from the spec's recipe" in text
    assert "--milestones" in text and "--iters" in text
    # and the way it points to works: --iters scales them
    assert resolve(load_spec("cifar_resnet20").recipe, {"iters": 4}, []).data["schedule"]["milestones"] == [2, 3]
