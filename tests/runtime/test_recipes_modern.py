"""Today's recipes as data: the declared fields (optimizers, schedules, losses, EMA, Mixup/CutMix, clipping,
repeated augmentation), their rules, `--recipe NAME` and the shipped recipes, and the generated docs tables."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from archspec.lang.recipe_table import with_recipe_tables
from archspec.lang.spec import shipped_recipes
from archspec.runtime.recipe import RecipeError, resolve

DOCS = Path(__file__).resolve().parents[2] / "docs" / "training.md"
MODERN = ("rsb_a1", "rsb_a2", "rsb_a3", "tv_v2", "cifar10_modern", "cifar100_modern")


def refused(recipe, options=None, generic=()):
    with pytest.raises(RecipeError) as e:
        resolve(recipe, options or {}, list(generic))
    text = str(e.value)
    assert "\n" not in text
    return text


def test_every_shipped_recipe_resolves_names_its_source_and_figure_and_is_documented():
    docs = DOCS.read_text(encoding="utf-8")
    assert set(MODERN) <= set(shipped_recipes())
    for name, path in shipped_recipes().items():
        r = resolve({}, {}, [name])
        assert r.notes[0].startswith(f"{name} ("), r.notes
        assert f"`{name}`" in docs, f"docs/training.md does not list the shipped recipe {name}"
        if name in MODERN:
            head = path.read_text(encoding="utf-8")
            assert re.search(r"\d+(\.\d+)?%", head), f"{path} names no reported figure"
            assert re.search(r"\(20\d\d\)|\d{4}\)", head), f"{path} names no dated source"


def test_shipped_recipes_say_what_their_sources_say():
    a1, a3, tv = (resolve({}, {}, [n]) for n in ("rsb_a1", "rsb_a3", "tv_v2"))
    assert (a1.optimizer.name, a1.optimizer.lr, a1.optimizer.weight_decay, a1.loss) == ("lamb", 0.005, 0.01, "bce")
    assert (a1.mixup.mixup_alpha, a1.mixup.cutmix_alpha, a1.repeated_augment, a1.schedule.length) == (0.2, 1.0, 3, 600)
    assert a3.augment[0] == {"op": "random_resized_crop", "size": 160} and a3.eval.crop == 224
    assert a3.repeated_augment == 1 and a3.mixup.mixup_alpha == 0.1 and a3.optimizer.lr == 0.008
    assert (tv.optimizer.name, tv.optimizer.lr, tv.label_smoothing, tv.schedule.warmup.prefix) == ("sgd", 0.5, 0.1, True)
    assert (tv.eval.resize, tv.eval.crop, tv.ema.every, tv.repeated_augment) == (232, 224, 32, 4)
    assert [a["op"] for a in tv.augment] == ["random_resized_crop", "hflip", "trivial_augment", "random_erasing"]
    c100 = resolve({}, {}, ["cifar100_modern"])
    assert c100.dataset.name == "cifar100" and c100.schedule.name == "cosine" and c100.optimizer.nesterov


def test_a_named_recipe_replaces_the_specs_and_fields_apply_after_it():
    spec = {"batch_size": 7, "optimizer": {"name": "sgd", "lr": 0.3}}
    r = resolve(spec, {"lr": 0.002}, ["batch_size=64", "rsb_a3", "optimizer.weight_decay=0.05"])
    assert r.batch_size == 64 and r.optimizer.name == "lamb" and r.optimizer.lr == 0.002
    assert r.optimizer.weight_decay == 0.05 and r.loss == "bce"
    assert resolve(spec, {}, []).batch_size == 7  # without a name: the spec's own


def test_a_recipe_file_by_path(tmp_path):
    f = tmp_path / "mine.yaml"
    f.write_text("archspec: 1\ndescription: mine\nrecipe:\n  batch_size: 12\n  loss: bce\n")
    r = resolve({}, {}, [str(f)])
    assert r.batch_size == 12 and r.loss == "bce" and str(f) in r.notes[0]
    empty = tmp_path / "empty.yaml"
    empty.write_text("archspec: 1\ndescription: nothing\n")
    text = refused({}, generic=[str(empty)])
    assert "empty.yaml" in text and "no `recipe:`" in text


def test_bad_recipe_names_are_one_line_with_the_fix():
    text = refused({}, generic=["rsb_a4"])
    assert "no recipe named `rsb_a4`" in text and "rsb_a3" in text
    text = refused({}, generic=["rsb_a3", "tv_v2"])
    assert "both name a whole recipe" in text
    assert "no such file" in refused({}, generic=["nothere/recipe.yaml"])


def test_switching_optimizer_starts_from_its_defaults_and_switching_schedule_keeps_what_it_shares():
    spec = {"optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": True, "norm_bias_decay": False}}
    r = resolve(spec, {}, ["optimizer.name=adamw"])  # (SGD's 0.1 would make AdamW diverge)
    assert r.optimizer.name == "adamw" and r.optimizer.lr == 0.001 and r.optimizer.betas == (0.9, 0.999)
    assert r.optimizer.norm_bias_decay is False
    assert any("dropped lr, momentum, nesterov" in n for n in r.notes), r.notes
    assert resolve(spec, {}, ["optimizer={name: lamb, lr: 0.004}"]).optimizer.lr == 0.004
    r = resolve({"schedule": {"milestones": [10, 20], "length": 30}}, {}, ["schedule={name: cosine, min_lr: 0.001}"])
    assert r.schedule.name == "cosine" and r.schedule.length == 30 and r.schedule.min_lr == 0.001


@pytest.mark.parametrize("recipe, generic, options, words", [
    ({"optimizer": {"name": "adamw", "momentum": 0.9}}, [], {}, "optimizer adamw fields"),
    ({"schedule": {"name": "cosine", "milestones": [3]}}, [], {}, "has no field `milestones`"),
    ({"optimizer": {"name": "adam"}}, [], {}, "must be one of sgd, adamw, lamb"),
    ({"bce_target_threshold": 0.2}, [], {}, "drop it or set loss bce"),
    ({"dataset": {"labels": "coarse"}}, [], {}, "--dataset cifar100"),
    ({"schedule": {"name": "cosine", "warmup": {"kind": "linear", "lr": 0.01}}}, [], {}, "max_iters"),
    ({"schedule": {"name": "cosine", "length": 10, "warmup": {"kind": "linear", "lr": 0.01, "max_iters": 10}}}, [],
     {}, "not shorter than the run"),
    ({"schedule": {"warmup": {"lr": 0.01, "max_iters": 9, "prefix": True}}}, [], {}, "prefix applies to a linear warm-up"),
    ({"mixup": {"prob": 0.5}}, [], {}, "mixes nothing"),
    ({"ema": {"warmup_power": 0.75}}, [], {}, "set ema.warmup true"),
    ({"optimizer": {"name": "lamb", "betas": [0.9]}}, [], {}, "two numbers"),
    ({"schedule": {"name": "cosine"}}, [], {"milestones": [5, 8]}, "drop --milestones"),
    ({"label_smoothing": 1.0}, [], {}, "label smoothing must be in [0, 1)"),
    ({"schedule": {"warmup": {"lr": 0.01}}}, [], {}, "a constant warm-up needs an end"),
    ({"schedule": {"name": "cosine", "warmup": {"kind": "linear", "max_iters": 5}}}, [], {},
     "warm-up lr is required: give `schedule.warmup.lr`"),
    ({"optimizer": {"name": "lamb"}}, [], {"momentum": 0.9}, "(optimizer lamb fields: name, lr, betas, eps"),
])
def test_recipe_rules(recipe, generic, options, words):
    assert words in refused(recipe, options, generic)


def _lr(recipe, i, ipe=10):
    return recipe.lr(i, ipe, recipe.schedule.warmup is not None and recipe.warmup_still(i, None, ipe))


def test_cosine_with_a_linear_warmup_timm_style_and_torchvision_style():
    base = {"optimizer": {"name": "sgd", "lr": 0.4},
            "schedule": {"name": "cosine", "unit": "epoch", "length": 10, "min_lr": 0.01, "update": "epoch",
                         "warmup": {"kind": "linear", "lr": 0.004, "max_iters": 2}}}
    timm = resolve(base, {}, [])
    tv = resolve(base, {}, ["schedule.warmup.prefix=true"])
    for epoch in range(10):
        for inside in (0, 9):  # the rate holds for the whole epoch
            i = epoch * 10 + inside
            if epoch < 2:
                want = 0.004 + epoch * (0.4 - 0.004) / 2
                assert _lr(timm, i) == pytest.approx(want) and _lr(tv, i) == pytest.approx(want)
                continue
            assert _lr(timm, i) == pytest.approx(0.01 + 0.5 * 0.39 * (1 + math.cos(math.pi * epoch / 10)))
            assert _lr(tv, i) == pytest.approx(0.01 + 0.5 * 0.39 * (1 + math.cos(math.pi * (epoch - 2) / 8)))


def test_per_iteration_cosine_and_the_old_step_schedule():
    r = resolve({"schedule": {"name": "cosine", "length": 100}, "optimizer": {"lr": 0.2}}, {}, [])
    assert [round(_lr(r, i), 12) for i in (0, 50, 99)] == [0.2, round(0.1, 12), round(0.1 * (1 + math.cos(math.pi * 0.99)), 12)]
    step = resolve({"schedule": {"length": 40, "milestones": [20, 30]}}, {}, [])
    assert [_lr(step, i) for i in (0, 19, 20, 29, 30, 39)] == pytest.approx([0.1, 0.1, 0.01, 0.01, 0.001, 0.001])
    warm = resolve({"schedule": {"length": 40, "milestones": [20, 30],
                                 "warmup": {"lr": 0.01, "until_train_error": 0.8}}}, {}, [])
    assert warm.lr(5, 10, True) == 0.01 and warm.lr(5, 10, False) == 0.1


def test_a_linear_warmup_and_the_ema_start_keep_their_share_of_a_shorter_run():
    r = resolve({}, {"iters": 300}, ["rsb_a3"])
    assert r.schedule.unit == "iter" and r.schedule.warmup.max_iters == 15  # 5 of 100 epochs
    assert any("warm-up scaled" in n for n in r.notes)
    tv = resolve({}, {"epochs": 60}, ["tv_v2"])
    assert tv.schedule.warmup.max_iters == pytest.approx(0.5) and tv.ema.start == pytest.approx(0.5)
    own = resolve({}, {"iters": 300}, ["rsb_a3", "schedule.warmup.max_iters=7"])
    assert own.schedule.warmup.max_iters == 7  # the user's own is kept
    paper = resolve({"schedule": {"warmup": {"lr": 0.01, "until_train_error": 0.8, "max_iters": 400}}},
                    {"iters": 2000}, [])
    assert paper.schedule.warmup.max_iters == 400  # a constant warm-up ends on the error: its cap stays


def test_docs_recipe_tables_are_the_generated_ones():
    text = DOCS.read_text(encoding="utf-8")
    assert text == with_recipe_tables(text), "the recipe tables are stale: run `python -m archspec.lang.schema`"
    for field in ("`optimizer.max_grad_norm` (lamb)", "`schedule.min_lr` (cosine)", "`ema.decay`", "`mixup.prob`",
                  "`label_smoothing`", "`repeated_augment`", "`rand_augment`", "`trivial_augment`"):
        assert field in text, field


def test_train_refuses_an_unknown_recipe_name_in_one_line(cli, tmp_path):
    r = cli("train", "cifar_resnet20", "--recipe", "rsb_a4", "--out", str(tmp_path / "run"), "--device", "cpu")
    assert r.code == 2 and "no recipe named `rsb_a4`" in r.err and "Traceback" not in r.err
    assert not (tmp_path / "run").exists()


def test_list_recipes_describes_every_shipped_recipe(cli):
    r = cli("list", "--recipes")
    assert r.code == 0
    lines = r.out.strip().splitlines()
    assert [line.split()[0] for line in lines] == list(shipped_recipes())
    assert any(line.startswith("rsb_a3") and "78.1%" in line for line in lines)
    assert "archspec list --recipes" in " ".join(cli("train", "--help").out.split())  # (help wraps lines)


def test_iters_on_a_recipe_in_epochs_keeps_every_count_at_its_share_of_the_run():
    """`--iters 12` on cifar10_modern evaluated every 5 iterations (its "5 epochs" read as iterations) and tv_v2's
    per-epoch updates held the warm-up's first rate through a run shorter than an epoch."""
    r = resolve({}, {"iters": 400}, ["cifar10_modern"])
    assert r.eval.interval == 10 and any("eval interval scaled" in n for n in r.notes)  # 5 of 200 epochs
    tv = resolve({}, {"iters": 1200}, ["tv_v2"])
    assert tv.eval.interval == 2 and tv.schedule.update == "iter" and tv.schedule.warmup.max_iters == 10
    assert [round(tv.lr(i, 10_000, False), 6) for i in (0, 5)] == [0.005, round(0.005 + 5 * (0.5 - 0.005) / 10, 6)]
    sibling = resolve({}, {"iters": 1200}, ["tv_v2", "schedule.warmup.lr=0.001"])
    assert sibling.schedule.warmup.max_iters == 10  # setting the warm-up's lr keeps its length's share
    own = resolve({}, {"iters": 1200}, ["tv_v2", "eval.interval=7", "schedule.update=epoch"])
    assert own.eval.interval == 7 and own.schedule.update == "epoch"
    same = resolve({"schedule": {"length": 64000, "milestones": [32000, 48000]}, "eval": {"interval": 2000}},
                   {"iters": 4000}, [])
    assert same.eval.interval == 2000  # (the same unit: an interval of iterations keeps its meaning)


def test_null_removes_what_a_named_recipe_sets_and_1e_3_is_a_number():
    r = resolve({}, {}, ["tv_v2", "ema=null", "mixup=null", "schedule.warmup=null", "eval.crop=null"])
    assert r.ema is None and r.mixup is None and r.schedule.warmup is None and r.eval.crop is None
    assert resolve({}, {}, ["optimizer.lr=1e-3", "optimizer.weight_decay=5E-5"]).optimizer.lr == 0.001


FLAT_HEAD = """\
archspec: 1
name: flathead
input: [3, 32, 32]
network:
  - conv1: {op: conv, out: 4, kernel: 3, stride: 2, pad: 1}
  - relu1: {op: relu}
  - flat: {op: flatten}
  - fc: {op: linear, out: 10}
"""


def test_a_training_size_a_network_cannot_train_at_is_refused_before_the_run(cli, tmp_path):
    """A linear layer after a flatten compiled at the training size too (its inputs inferred), so the check let a
    FixRes recipe through and the run crashed at its first step with a traceback."""
    spec = tmp_path / "flathead.yaml"
    spec.write_text(FLAT_HEAD)
    r = cli("train", spec, "--recipe", "cifar10_modern", "--dataset", "synthetic", "--recipe",
            "augment=[{op: random_resized_crop, size: 24}, {op: hflip}]", "--recipe", "eval.crop=32", "--iters", "2",
            "--batch-size", "4", "--out", tmp_path / "run", "--device", "cpu", "--quiet")
    assert r.code == 2 and "parameters at 3x24x24" in r.err and "Traceback" not in r.err, r.err
    assert not (tmp_path / "run").exists()
