"""Issue "Hostile input", the gaps an audit found after it (notes/issue20_21_audit.md, G9, G10 and G13):

- G9: `eval --checkpoint RUN` whose last.pt is a folder said "has neither best.pt nor last.pt ... restore
  RUN/last.pt"; a best.pt that is a folder or a named pipe was passed over for last.pt without a word, and a linked
  best.pt was followed. Each is now named as `--resume` names it (`RUN/last.pt is a folder, not a regular file`).
- G10: every run file that is a symbolic link is refused on `--resume`, its target untouched (only the lock and the
  log had tests).
- G13: a recipe value of the wrong type said `'abc' does not match '^='` (the schema's pattern); a resumed run told
  to checkpoint every 3 iterations logged "3" and checkpointed every 5; a truncated run.json was "no run.json of
  one"; a schedule length below the spec's milestones opened with "milestone 48000".
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest
from limits import time_limit  # tests/ is on pytest's pythonpath

from archspec.lang.augment import AUGMENT
from archspec.lang.spec import load_spec
from archspec.runtime.recipe import RecipeError, resolve

OPS = ", ".join(AUGMENT)  # every augment op, as the messages list them


def _sibling(name: str):
    """A test module beside this one (its helpers are reused, not copied; tests/runtime is not a package)."""
    spec = importlib.util.spec_from_file_location(f"_{name}", Path(__file__).with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_folders = _sibling("test_hostile_run_folders")
one_line, snapshot = _folders.one_line, _folders.snapshot

EVAL = ("--device", "cpu", "--json")


def _put(path: Path, kind: str, target: Path) -> None:
    """Put a folder, a named pipe or a link to `target` where the file `path` was."""
    if path.exists() or path.is_symlink():
        path.unlink()
    if kind == "folder":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to(target)


# -- G9: the checkpoint eval picks in a run folder ---------------------------------------------------------------

@pytest.mark.parametrize("name, kind", [("last.pt", "folder"), ("last.pt", "fifo"), ("last.pt", "link"),
                                        ("best.pt", "folder"), ("best.pt", "fifo"), ("best.pt", "link")])
def test_eval_of_a_run_whose_checkpoint_is_not_a_plain_file_says_what_stands_there(cli, finished_run, tmp_path,
                                                                                     name, kind):
    run = finished_run
    target = tmp_path / "elsewhere.pt"
    target.write_bytes((run / name).read_bytes())  # a good checkpoint: a link to it is still refused
    if name == "last.pt":
        (run / "best.pt").unlink()  # (eval takes best.pt first)
    _put(run / name, kind, target)
    before = target.read_bytes()
    with time_limit(60, f"eval beside a {kind} {name}"):  # a pipe is never waited on
        r = cli("eval", "--checkpoint", run, *EVAL)
    assert r.code == 2 and r.out == "", r.err
    line = one_line(r.err)
    what = {"folder": "is a folder, not a regular file", "fifo": "is a named pipe (FIFO), not a regular file",
            "link": "is a symbolic link"}[kind]
    assert line.startswith(f"{run / name} {what}: "), line
    assert "neither" not in line and "restore" not in line, line
    assert line.endswith("give a checkpoint file with --checkpoint") if kind != "link" else \
        line.endswith("give the file it points to with --checkpoint, or remove the link")
    assert target.read_bytes() == before


# -- G10: a run file that is a link is refused on --resume -------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("name", ["metrics.jsonl", "evals.csv", "run.json", "last.pt", "spec.yaml", "recipe.json"])
def test_a_linked_run_file_is_refused_on_resume_and_its_target_kept(cli, stopped_run, tmp_path, name):
    run = stopped_run(tmp_path / "run")
    target = tmp_path / f"target-{name}"
    original = run / name
    target.write_bytes(original.read_bytes() if original.exists() else b"mine\n")  # followed, it would even work
    _put(original, "link", target)
    before = target.read_bytes()
    r = cli("train", "--resume", "--out", run, "--device", "cpu", "--quiet")
    assert r.code == 2, r.err
    assert one_line(r.err).startswith(f"{run / name} is a symbolic link: archspec writes a run folder's own files "
                                      "itself, never through a link")
    assert target.read_bytes() == before and (run / name).is_symlink()


# -- G13 (a): what a recipe field takes, in words --------------------------------------------------------------

def test_a_number_in_e_notation_is_a_number_on_the_command_line():
    assert resolve(None, {}, ["batch_size=1e3"]).batch_size == 1000
    with pytest.raises(RecipeError, match="batch size must be a positive whole number, got 1e\\+30"):
        resolve(None, {}, ["batch_size=1e30"])


@pytest.mark.parametrize("override, expected", [
    ("batch_size=abc", "recipe field `batch_size` must be a positive whole number, got \"abc\""),
    ("batch_size=99999999999999999999", "recipe field `batch_size` must be a positive whole number, got "
                                        "\"99999999999999999999\" (too large: at most 9,223,372,036,854,775,807)"),
    ("batch_size=2.5", "recipe field `batch_size` must be a positive whole number, got 2.5"),
    ("optimizer.lr=abc", "recipe field `optimizer.lr` must be a positive number, got \"abc\""),
    # (a bare 1e-3 on the command line is the number; in YAML, or quoted, it is text, and the hint says so)
    ("optimizer.lr='1e-3'", "recipe field `optimizer.lr` must be a positive number, got \"1e-3\" (YAML reads 1e-3 "
                            "as text: write 1.0e-3)"),
    ("optimizer.momentum=x", "recipe field `optimizer.momentum` must be in [0, 1), got \"x\""),
    ("schedule.gamma=abc", "recipe field `schedule.gamma` must be in (0, 1], got \"abc\""),
    ("schedule.length=abc", "recipe field `schedule.length` must be a positive whole number of iterations, or a "
                            "positive number of epochs, got \"abc\""),
    ("schedule.milestones=[a]", "recipe field `schedule.milestones.0` must be a positive whole number of "
                                "iterations, or a positive number of epochs, got \"a\""),
    ("dataset.train_size=abc", "recipe field `dataset.train_size` must be a positive whole number (or left out), "
                               "got \"abc\""),
    ("optimizer.nesterov=1", "recipe field `optimizer.nesterov` must be true or false, got 1"),
    ("eval.views=3", "recipe field `eval.views` must be one of 1, 10, got 3"),
    ("dataset.name=x", "recipe field `dataset.name` must be one of cifar10, cifar100, imagenet_folder, synthetic, got \"x\""),
    ("schedule.warmup=3", "recipe field `schedule.warmup` must be a mapping (or left out), got 3"),
    ("optimizer={foo: 1}", "recipe field `optimizer` has no field `foo` (optimizer sgd fields: name, lr, momentum, "
                           "weight_decay, nesterov, norm_bias_decay)"),
    ("augment=[3]", f"recipe field `augment.0` must be a mapping naming its `op` ({OPS}), got 3"),
    ("augment=[{op: hflip, x: 1}]", "recipe field `augment.0`: augment op hflip has no parameter `x` (its "
                                    "parameters: p)"),
    ("augment=[{op: hflip, p: abc}]", "recipe field `augment.0.p` must be a number in [0, 1], got \"abc\""),
    ("augment=[{op: nope}]", f"recipe field `augment.0.op` must be one of {OPS}, got \"nope\""),
])
def test_a_recipe_value_of_the_wrong_kind_says_what_the_field_takes(override, expected):
    with pytest.raises(RecipeError) as e:
        resolve(load_spec("cifar_resnet20").recipe, {}, [override])
    assert str(e.value) == f"the recipe with its --recipe overrides: {expected}"
    assert "does not match" not in str(e.value) and "^=" not in str(e.value)


def test_the_cli_words_a_bad_batch_size_in_one_line(cli, train_args, tmp_path):
    r = cli(*train_args(tmp_path / "run", "--recipe", "batch_size=abc", iters=2))
    assert r.code == 2 and one_line(r.err) == ("the recipe with its --recipe overrides: recipe field `batch_size` "
                                               "must be a positive whole number, got \"abc\"")
    assert not (tmp_path / "run").exists()


# -- G13 (b): the checkpoint interval used is the one logged ---------------------------------------------------

def test_a_checkpoint_interval_that_is_not_a_multiple_of_the_log_interval_is_logged_as_used(cli, train_args,
                                                                                               tmp_path):
    run = tmp_path / "run"
    args = train_args(run, iters=10)
    args[args.index("--checkpoint-interval") + 1] = "3"  # the log interval is 5
    r = cli(*args)
    assert r.code == 0, r.err
    log = (run / "log.txt").read_text()
    assert ("checkpoints: every 5 iterations (--checkpoint-interval 3 rounded up to a multiple of the log interval, "
            "5: a checkpoint is taken only where the loss has been checked for NaN)") in log


@pytest.mark.slow
def test_a_checkpoint_interval_given_on_resume_is_logged_as_used(cli, stopped_run, tmp_path):
    run = stopped_run(tmp_path / "run")  # started with --checkpoint-interval 10 and --log-interval 5
    r = cli("train", "--resume", "--out", str(run), "--device", "cpu", "--quiet", "--checkpoint-interval", "3")
    assert r.code == 0, r.err
    resumed = (run / "log.txt").read_text().split("--checkpoint-interval 3 from here on", 1)[1]
    assert "checkpoints: every 5 iterations (--checkpoint-interval 3 rounded up to a multiple of the log interval" \
        in resumed
    assert json.loads((run / "run.json").read_text())["checkpointing"]["interval"] == 3  # (as asked, for later)


# -- G13 (c): a run.json that is not JSON is damaged, not absent ------------------------------------------------

@pytest.mark.parametrize("text, why", [(b'{"format": "archspec-run", "seed": ', "not valid JSON (Expecting value"),
                                       (b"[" * 100_000 + b"]" * 100_000, "not valid JSON (nested too deeply)"),
                                       (b'{"format": "archspec-run", "x": "\xff"}', "not UTF-8 text")])
def test_resume_and_eval_call_a_run_json_that_is_not_json_damaged(cli, finished_run, text, why):
    run = finished_run
    (run / "run.json").write_bytes(text)
    before = snapshot(run)
    r = cli("train", "--resume", "--out", run, "--device", "cpu", "--quiet")
    assert r.code == 2
    line = one_line(r.err)
    assert line.startswith(f"{run / 'run.json'} is damaged: it is {why}"), line
    assert line.endswith("; restore it from a copy, or start a new run in another folder")
    assert "no run.json" not in line
    r = cli("eval", "--checkpoint", run, *EVAL)
    assert r.code == 2 and one_line(r.err).startswith(f"{run / 'run.json'} is damaged: it is {why}")
    assert snapshot(run) == before


# -- G13 (d): a schedule shorter than the spec's milestones -----------------------------------------------------

@pytest.mark.parametrize("override", ["schedule={length: 4}", "schedule.length=4"])
def test_a_length_below_the_specs_milestones_opens_with_the_length_and_says_whose_they_are(override):
    with pytest.raises(RecipeError) as e:
        resolve(load_spec("cifar_resnet20").recipe, {}, [override])
    assert str(e.value) == (
        "schedule length 4 iterations is not longer than the last milestone, 48000: the milestones [32000, 48000] "
        "come from the spec's recipe (its own, or one it extends or imports): give milestones below 4 "
        "(--milestones, or schedule.milestones in the recipe), or set the length with --iters, which scales the "
        "milestones with it")


def test_milestones_from_the_defaults_are_said_to_be_the_defaults():
    with pytest.raises(RecipeError, match=r"the milestones \[32000, 48000\] come from the recipe's defaults"):
        resolve({}, {}, ["schedule.length=4"])
