"""Experiment files (`archspec sweep`, docs/experiments.md): every problem at the experiment file's line, before any
run starts, with exit code 2 and nothing written; the grid's points, their keys and `--only`; the shipped
experiments. Nothing here trains (`--dry-run`, or a refusal before any run)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from archspec.lang.diagnostics import Sources, SpecError
from archspec.lang.experiment import load_experiment, select, shipped_experiments
from tiny_sweep import TINY  # tests/ is on pytest's pythonpath



def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "tiny.yaml").write_text(TINY)
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    return path


def sweep(cli, path: Path, tmp_path: Path, *extra: str):
    out = tmp_path / "out"
    r = cli("sweep", path, "--out", out, "--device", "cpu", *extra)
    return r, out


def headlines(err: str) -> list[str]:
    """`exp.yaml:L:C: error[EXXX]: ...` for each diagnostic (the folder of the file left out)."""
    return [line.rsplit("/", 1)[-1] if line.split(":")[0].endswith(".yaml") else line for line in err.splitlines()
            if re.match(r"^\S+:\d+:\d+: error\[E\d{3}\]", line)]


def at(text: str, line: int, token: str) -> str:
    """`exp.yaml:LINE:COL` of the first `token` on line LINE (1-based) of `text`."""
    return f"exp.yaml:{line}:{text.splitlines()[line - 1].index(token) + 1}"


def test_a_missing_spec_and_a_bad_set_value_are_errors_at_their_values(cli, tmp_path):
    text = "archspec: 1\nexperiment: e\ngrid:\n  spec: [tiny.yaml, cifar_resnt]\n  set:\n    width: [4, 0]\n"
    r, out = sweep(cli, write(tmp_path, text), tmp_path)
    assert r.code == 2, r.err
    assert headlines(r.err) == [   # (the bad width once, not once per spec)
        f"{at(text, 4, 'cifar_resnt')}: error[E123]: no spec named `cifar_resnt`",
        f"{at(text, 6, '0]')}: error[E213]: param `width` must be at least 1, got 0"]
    assert "did you mean `cifar_resnet`?" in r.err and "    width: [4, 0]" in r.err
    assert not out.exists()   # nothing written


def test_unknown_keys_train_flags_and_recipe_values(cli, tmp_path):
    text = ("archspec: 1\nexperiment: e\ngrid:\n  spec: tiny.yaml\n  recipe: {optimizer.lr: [0.1, -1]}\nseeds: 2\n"
            "train: {iters: 5, batch_size: -3, bogus: 1, out: x, bf16: maybe}\n")
    path = write(tmp_path, text)
    r, out = sweep(cli, path, tmp_path)
    assert r.code == 2
    assert headlines(r.err) == [
        f"{at(text, 5, '-1')}: error[E704]: learning rate must be a positive number, got -1",
        f"{at(text, 7, '-3')}: error[E703]: train flag `batch_size`: must be a whole number >= 1, got -3",
        f"{at(text, 7, '1,')}: error[E703]: `archspec train` has no flag --bogus",
        f"{at(text, 7, 'x,')}: error[E703]: `out` is not a train flag of a sweep's run",
        f"{at(text, 7, 'maybe')}: error[E703]: `bf16` is on or off: write true or false, got 'maybe'"], r.err
    assert "give the sweep --out DIR" in r.err
    assert not out.exists()

    path.write_text("archspec: 1\nexperiment: e\ngrdi: {spec: tiny.yaml}\n")
    r, _ = sweep(cli, path, tmp_path)
    assert r.code == 2 and "exp.yaml:3:1: error[E101]: unknown key `grdi` in an experiment file" in headlines(r.err)
    assert "did you mean `grid`?" in r.err and "error[E701]" in r.err   # (and so no run at all)


def test_a_recipe_axis_that_a_flag_would_override_is_refused(cli, tmp_path):
    path = write(tmp_path, "archspec: 1\nexperiment: e\ngrid:\n  spec: tiny.yaml\n"
                 "  recipe: {optimizer.lr: [0.1, 0.2]}\n")
    r, _ = sweep(cli, path, tmp_path, "--lr", "0.5")
    assert r.code == 2 and "error[E704]: `optimizer.lr` is set here and by the train flag --lr, which would win" \
        in r.err


def test_points_are_not_crossed_and_duplicates_are_refused(tmp_path):
    path = write(tmp_path, "archspec: 1\nexperiment: e\ngrid:\n  spec: [tiny.yaml]\n  set: {width: [4, 8]}\n"
                 "  recipe: {optimizer.lr: [0.1, 0.01]}\npoints:\n"
                 "  - {spec: tiny.yaml, set: {width: 32}, label: Wide}\n")
    exp = load_experiment(str(path), Sources())
    assert [p.key for p in exp.points] == [
        "tiny-width=4-optimizer.lr=0.1", "tiny-width=4-optimizer.lr=0.01", "tiny-width=8-optimizer.lr=0.1",
        "tiny-width=8-optimizer.lr=0.01", "tiny-width=32"]
    assert exp.points[-1].title == "Wide" and exp.seeds == 1
    path.write_text(path.read_text() + "  - {spec: tiny.yaml, set: {width: 8}, recipe: {optimizer.lr: 0.1}}\n")
    with pytest.raises(SpecError) as e:
        load_experiment(str(path), Sources())
    assert [d.code for d in e.value.diagnostics] == ["E702"] and e.value.diagnostics[0].loc.line == 9


def test_only_selects_part_of_the_grid_and_says_what_there_is(cli, tmp_path):
    path = write(tmp_path, "archspec: 1\nexperiment: e\ngrid:\n  spec: tiny.yaml\n  set: {width: [4, 8, 16]}\n"
                 "  recipe: {optimizer.lr: [0.1, 0.01]}\nseeds: 3\n")
    exp = load_experiment(str(path), Sources())
    assert [p.key for p in select(exp, ["width=8", "width=16", "optimizer.lr=0.01"])] == [
        "tiny-width=8-optimizer.lr=0.01", "tiny-width=16-optimizer.lr=0.01"]
    r, out = sweep(cli, path, tmp_path, "--only", "width=8", "--seeds", "2", "--dry-run")
    assert r.code == 0, r.err
    assert "2 points x 2 seeds = 4 runs" in r.out and "tiny-width=8-optimizer.lr=0.1/seed1" in r.out
    assert "--set width=8 --recipe optimizer.lr=0.1" in r.out and not out.exists()
    r, _ = sweep(cli, path, tmp_path, "--only", "width=5")
    assert r.code == 2 and "--only width=5: no point of e has width=5; width takes 4, 8, 16" in r.err
    r, _ = sweep(cli, path, tmp_path, "--only", "depth=5")
    assert r.code == 2 and "e has no axis `depth`; its axes are spec (tiny.yaml); width (4, 8, 16); optimizer.lr" \
        in r.err


def test_the_shipped_experiments_check_and_list(cli, tmp_path):
    names = set(shipped_experiments())
    assert {"table6", "table3", "drop_path"} <= names
    r = cli("sweep", "--list")
    assert r.code == 0 and "table6        11 points x 5 seeds =  55 runs" in r.out
    table6 = load_experiment("table6", Sources())
    keys = [p.key for p in table6.points]
    assert keys[:5] == ["cifar_plain20", "cifar_plain32", "cifar_plain44", "cifar_plain56", "cifar_plain110"]
    assert keys[-1] == "cifar_resnet1202" and len(keys) == 11 and table6.seeds == 5
    assert [p.key for p in load_experiment("table3", Sources()).points] == ["resnet34_a", "resnet34_b", "resnet34_c"]
    for name in names:   # every spec and value compiles (ResNet-1202 included), nothing is written
        exp = load_experiment(name, Sources())
        assert "et al." in exp.description   # each names its source
        r = cli("sweep", name, "--out", tmp_path / name, "--dry-run", "--iters", "10")
        assert r.code == 0, r.err
        assert not (tmp_path / name).exists()
    r = cli("sweep", "tabel6")
    assert r.code == 2 and "tabel6: error[E700]: no experiment named `tabel6`" in r.err and "`table6`" in r.err


def test_a_sweep_folder_of_another_experiment_or_of_other_files_is_refused(cli, tmp_path):
    path = write(tmp_path, "archspec: 1\nexperiment: e\ngrid: {spec: tiny.yaml}\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "sweep.json").write_text(json.dumps({"format": "archspec-sweep", "version": 1, "points": [],
                                                "experiment": {"name": "table6", "sha256": "0" * 64}}))
    r = cli("sweep", path, "--out", out, "--device", "cpu")
    assert r.code == 2 and "is the sweep folder of experiment `table6`; runs of two experiments are never mixed" \
        in r.err
    (out / "sweep.json").unlink()
    (out / "notes.txt").write_text("mine")
    r = cli("sweep", path, "--out", out, "--device", "cpu")
    assert r.code == 2 and "holds files that no archspec sweep wrote (notes.txt)" in r.err
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_flags_a_sweep_refuses(cli, tmp_path):
    path = write(tmp_path, "archspec: 1\nexperiment: e\ngrid: {spec: tiny.yaml}\n")
    r, out = sweep(cli, path, tmp_path, "--per-gpu", "2")
    assert r.code == 2 and "--per-gpu packs runs on GPUs" in r.err and not out.exists()
    r, _ = sweep(cli, path, tmp_path, "--address", "ray://x:10001")
    assert r.code == 2 and "--address names a Ray cluster: give it with --backend ray" in r.err
    r = cli("sweep", path, "--out", tmp_path / "o", "--device", "cuda:1")
    assert r.code == 2 and "a sweep places its runs on the GPUs itself" in r.err
