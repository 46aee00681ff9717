"""Issue "A typed core", item 2: each option of `archspec train` and `archspec eval` is declared once
(archspec.runtime.options), and the flags, run.json's options, what a resume keeps and the recipe field each one
sets all come from that declaration. These tests hold every declared option to it, so a new one cannot be half
wired."""

from __future__ import annotations

import argparse
from dataclasses import FrozenInstanceError

import pytest

from archspec.cli import build_parser
from archspec.lang.spec import load_spec
from archspec.runtime.options import OPTION_FIELDS, RECIPE_OPTIONS, RunOptions
from archspec.runtime.recipe import resolve

SAMPLES = {"count": 7, "count0": 3, "real": 0.25, "real0": 0.001, "fraction": 0.5, "increasing": [2, 5],
           "views": 10, "dataset": "synthetic", "flag": True}
TEXT = {"count": "7", "count0": "3", "real": "0.25", "real0": "0.001", "fraction": "0.5", "increasing": "2,5",
        "views": "10", "dataset": "synthetic"}


def subparser(name: str) -> argparse.ArgumentParser:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices[name]


def flags_of(name: str) -> set[str]:
    return {s for a in subparser(name)._actions for s in a.option_strings}


def test_every_run_option_is_a_train_flag_both_ways_and_a_frozen_field():
    train = flags_of("train")
    for name in RunOptions.names():
        flag = "--" + name.replace("_", "-")
        assert {flag, "--no-" + flag[2:]} <= train, name
    with pytest.raises(FrozenInstanceError):
        RunOptions().bf16 = True  # type: ignore[misc]
    assert RunOptions.from_stored({"bf16": True, "gone": True}) == RunOptions(bf16=True)


@pytest.mark.parametrize("option", RECIPE_OPTIONS, ids=lambda o: o.name)
def test_every_recipe_option_is_a_flag_that_sets_its_field(option):
    flag = "--" + option.name.replace("_", "-")
    assert flag in flags_of("train")
    assert (flag in flags_of("eval")) == option.eval
    # the flag reads what its kind says ...
    argv = ["train", "cifar_resnet20", flag] + ([TEXT[option.kind]] if option.kind != "flag" else [])
    args = build_parser().parse_args(argv)
    assert getattr(args, option.name) == SAMPLES[option.kind]
    # ... and the recipe field it declares is what changes
    spec = load_spec("cifar_resnet110" if option.name == "no_warmup" else "cifar_resnet20")  # (110 warms up)
    before = resolve(spec.recipe, {}, []).data
    after = resolve(spec.recipe, {option.name: SAMPLES[option.kind]}, []).data
    path = OPTION_FIELDS[option.name].split(".")

    def at(data):
        for k in path:
            data = data.get(k) if isinstance(data, dict) else None
        return data

    assert at(before) != at(after), option.name


def test_a_wrong_value_is_refused_by_its_kind(cli):
    r = cli("train", "cifar_resnet20", "--momentum", "1")
    assert r.code == 2 and "--momentum" in r.err
    r = cli("train", "cifar_resnet20", "--iters", "5", "--epochs", "2", "--out", "/nonexistent/never")
    assert r.code == 2 and "give --iters or --epochs, not both" in r.err
