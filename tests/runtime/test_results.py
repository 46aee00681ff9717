"""`archspec results DIR...` and `archspec plot` of a sweep folder, on real runs: four tiny `archspec train` runs
(2 grid points x 2 seeds) made once per session on the synthetic CIFAR-10, laid out as `archspec sweep` lays them
out (DIR/<point key>/seed<N>) with a hand-written sweep.json that also lists a point never started. Every number
the tests expect is computed here from the runs' own metrics.jsonl, never written down.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import statistics
from pathlib import Path

import pytest

from archspec.runtime.rundir import RunDir

POINTS = {"cifar_resnet-n=1": ("cifar_resnet", 1), "cifar_plain-n=1": ("cifar_plain", 1)}
NEVER = ("cifar_resnet-n=2", "cifar_resnet", 2)  # listed in sweep.json, never started
TINY = ["--device", "cpu", "--iters", "4", "--batch-size", "8", "--log-interval", "2", "--eval-interval", "2",
        "--train-size", "64", "--val-size", "32", "--quiet"]


def _sweep_json(points: list[tuple[str, str, int]]) -> dict:
    return {"format": "archspec-sweep", "version": 1, "experiment": {"name": "t", "file": "t.yaml", "sha256": "0"},
            "command": "archspec sweep t.yaml --out DIR",
            "points": [{"key": key, "label": key, "spec": spec, "set": {"n": n}, "recipe": {}, "train": {"iters": 4},
                        "seeds": [0, 1], "runs": [{"seed": s, "folder": f"{key}/seed{s}"} for s in (0, 1)]}
                       for key, spec, n in points]}


@pytest.fixture(scope="session")
def _sweep_master(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch
    from learnable_cifar import write_learnable_cifar

    from archspec.cli import main

    data = write_learnable_cifar(tmp_path_factory.mktemp("cifar-small"), per_batch=40, test_images=48)
    root = tmp_path_factory.mktemp("sweep") / "grid"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny nets: on a busy machine, more threads only wait for each other
    try:
        for key, (spec, n) in POINTS.items():
            for seed in (0, 1):
                out = root / key / f"seed{seed}"
                assert main(["train", spec, "--set", f"n={n}", "--seed", str(seed), "--out", str(out), "--data-dir",
                             str(data), *TINY]) == 0
    finally:
        torch.set_num_threads(threads)
    points = [(key, spec, n) for key, (spec, n) in POINTS.items()] + [NEVER]
    (root / "sweep.json").write_text(json.dumps(_sweep_json(points)))
    return root


@pytest.fixture
def sweep(_sweep_master: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(_sweep_master, tmp_path / "grid"))


def held(run: Path) -> list[float]:
    """The test errors of a run, in order, from its metrics.jsonl."""
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [r["err"] for r in records if r["kind"] == "test"]


def over_seeds(values: list[float]) -> str:
    return f"{min(values):.2f} ({statistics.fmean(values):.2f}±{statistics.stdev(values):.2f})"


def rows(markdown: str) -> dict[str, dict[str, str]]:
    lines = [ln for ln in markdown.splitlines() if ln.startswith("|")]
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    return {cells[0]: dict(zip(head, cells)) for cells in
            ([c.strip() for c in ln.strip("|").split("|")] for ln in lines[2:])}


def test_the_markdown_table_has_a_row_per_point_computed_from_the_runs(cli, sweep):
    from archspec.compiler.analysis import compile_spec

    r = cli("results", sweep)
    assert r.code == 0, r.err
    table = rows(r.out)
    assert list(table) == [*POINTS, NEVER[0]]  # sweep.json's order
    for key, (spec, n) in POINTS.items():
        runs = [sweep / key / f"seed{s}" for s in (0, 1)]
        row, compiled = table[key], compile_spec(spec, {"n": n})
        assert row["spec"] == compiled.name and row["settings"] == f"n={n}" and row["seeds"] == "2/2"
        assert row["final test error (%)"] == over_seeds([held(run)[-1] for run in runs])
        assert row["lowest test error (%)"] == over_seeds([min(held(run)) for run in runs])
        assert row["params"] == f"{compiled.params / 1e6:.2f}M" and row["MACs"] == f"{compiled.macs / 1e6:.1f}M"
        assert row["status"] == "finished"
    never = table[NEVER[0]]
    assert never["seeds"] == "0/2" and never["status"] == "2 not started" and never["final test error (%)"] == "–"
    assert never["spec"] == compile_spec("cifar_resnet", {"n": 2}).name  # sized as the sweep will build it
    assert "errors (%) on the test split" in r.out
    assert f"not in the numbers: 2 runs not started (first: {sweep / NEVER[0] / 'seed0'}" in r.out


def test_csv_and_json_hold_the_same_numbers_unrounded(cli, sweep):
    key = "cifar_plain-n=1"
    finals = [held(sweep / key / f"seed{s}")[-1] for s in (0, 1)]
    r = cli("results", sweep, "--format", "csv")
    assert r.code == 0, r.err
    row = {x["point"]: x for x in csv.DictReader(io.StringIO(r.out))}[key]
    assert float(row["final_err_mean"]) == pytest.approx(statistics.fmean(finals), abs=1e-12)
    assert float(row["final_err_std"]) == pytest.approx(statistics.stdev(finals), abs=1e-12)
    assert float(row["final_err_best"]) == min(finals) and row["seeds_finished"] == "2" and row["split"] == "test"
    r = cli("results", sweep, "--format", "json")
    doc = json.loads(r.out)
    point = next(p for p in doc["points"] if p["key"] == key)
    assert point["final_err"]["mean"] == pytest.approx(statistics.fmean(finals), abs=1e-12)
    assert point["final_err"]["n"] == 2 and [run["seed"] for run in point["runs"]] == [0, 1]
    never = next(p for p in doc["points"] if p["key"] == NEVER[0])
    assert never["final_err"] is None and [run["status"] for run in never["runs"]] == ["not started"] * 2


def test_unfinished_failed_and_killed_runs_are_marked_not_dropped(cli, sweep):
    a, b = "cifar_resnet-n=1", "cifar_plain-n=1"
    RunDir(sweep / a / "seed1").update_info(status="interrupted")
    RunDir(sweep / b / "seed1").update_info(status="failed", message="DataError: the disk went away")
    r = cli("results", sweep)
    assert r.code == 0, r.err
    table = rows(r.out)
    assert table[a]["seeds"] == "1/2" and table[a]["status"] == "1 finished, 1 interrupted"
    # one seed is shown as one seed, never with a std of 0
    assert table[a]["final test error (%)"] == f"{held(sweep / a / 'seed0')[-1]:.2f} (1 seed)"
    assert table[b]["status"] == "1 finished, 1 failed"
    assert f"1 run failed (first: {sweep / b / 'seed1'}; DataError: the disk went away)" in r.out
    # run.json says running: alive while a process holds the folder, else killed ("stopped")
    RunDir(sweep / a / "seed1").update_info(status="running")
    assert rows(cli("results", sweep).out)[a]["status"] == "1 finished, 1 stopped"
    with RunDir(sweep / a / "seed1"):
        assert rows(cli("results", sweep).out)[a]["status"] == "1 finished, 1 running"


@pytest.mark.parametrize("damage, says", [("{", "is damaged (not valid JSON"),
                                          ('{"format": "archspec-run", "seed": "x"}', "`seed` is \"x\"")])
def test_a_damaged_run_json_is_one_line_and_exit_2(cli, sweep, damage, says):
    bad = sweep / "cifar_plain-n=1" / "seed0" / "run.json"
    bad.write_text(damage)
    r = cli("results", sweep)
    assert r.code == 2 and r.out == ""
    assert r.err.count("\n") == 1 and str(bad) in r.err and says in r.err, r.err


def test_a_damaged_sweep_json_or_a_folder_without_runs_is_one_line(cli, sweep, tmp_path):
    doc = json.loads((sweep / "sweep.json").read_text())
    doc["points"][0]["runs"][0]["folder"] = "../../elsewhere"
    (sweep / "sweep.json").write_text(json.dumps(doc))
    r = cli("results", sweep)
    assert r.code == 2 and "is not inside" in r.err and r.err.count("\n") == 1, r.err
    del doc["points"][0]["key"]
    (sweep / "sweep.json").write_text(json.dumps(doc))
    r = cli("results", sweep)
    assert r.code == 2 and "sweep.json is damaged: `points[0]`: 'key' is a required property" in r.err, r.err
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    r = cli("results", tmp_path / "empty")
    assert r.code == 2 and "holds no runs" in r.err


def test_a_folder_of_run_folders_pools_seeds_by_spec_params_and_recipe(cli, sweep, tmp_path):
    loose = tmp_path / "loose"
    for key in POINTS:
        for s in (0, 1):
            shutil.copytree(sweep / key / f"seed{s}", loose / f"{key}-{s}")
    recipe = json.loads((loose / "cifar_resnet-n=1-1" / "recipe.json").read_text())
    recipe["optimizer"]["lr"] = 0.05  # as if trained with --lr 0.05
    (loose / "cifar_resnet-n=1-1" / "recipe.json").write_text(json.dumps(recipe))
    r = cli("results", loose, "--sort", "final")
    assert r.code == 0, r.err
    table = rows(r.out)
    assert set(table) == {"cifar_plain8", "cifar_resnet8 optimizer.lr=0.1", "cifar_resnet8 optimizer.lr=0.05"}
    assert table["cifar_plain8"]["seeds"] == "2/2" and table["cifar_resnet8 optimizer.lr=0.05"]["seeds"] == "1/1"
    means = {"cifar_resnet8 optimizer.lr=0.1": held(loose / "cifar_resnet-n=1-0")[-1],
             "cifar_resnet8 optimizer.lr=0.05": held(loose / "cifar_resnet-n=1-1")[-1],
             "cifar_plain8": statistics.fmean(held(loose / f"cifar_plain-n=1-{s}")[-1] for s in (0, 1))}
    assert list(table) == sorted(means, key=means.get)  # --sort final: the lowest mean final error first


def test_a_run_folder_not_in_sweep_json_is_named_not_counted(cli, sweep):
    shutil.copytree(sweep / "cifar_plain-n=1" / "seed1", sweep / "cifar_plain-n=1" / "seed7")
    r = cli("results", sweep)
    assert r.code == 0 and rows(r.out)["cifar_plain-n=1"]["seeds"] == "2/2"
    assert f"1 run folder in {sweep} is not in its sweep.json, so not counted (first: " \
           f"{sweep / 'cifar_plain-n=1' / 'seed7'})" in r.out


def test_the_commands_choices_are_the_tables():
    from archspec import results_cmd
    from archspec.runtime import results_table

    assert results_cmd.FORMATS == results_table.FORMATS and results_cmd.SORTS == tuple(results_table.SORTS)


def test_table_given_a_run_folder_points_at_results(cli, sweep):
    r = cli("table", sweep / "cifar_plain-n=1" / "seed0")
    assert r.code == 2 and "is a folder, not a spec file" in r.err and "`archspec results " in r.err, r.err


# -- plot ------------------------------------------------------------------------------------------------------

def test_plot_of_a_sweep_draws_one_curve_per_started_point(sweep, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    from matplotlib.image import imread

    from archspec.runtime.plot import plot_runs

    drawn = plot_runs([sweep], tmp_path / "c.png")
    labels = [label for label in drawn.labels if not label.startswith("training error")]
    finals = {key: statistics.fmean(held(sweep / key / f"seed{s}")[-1] for s in (0, 1)) for key in POINTS}
    assert labels == [f"{key} (2 seeds, test {finals[key]:.2f}%)" for key in POINTS]
    assert "band: lowest to highest seed" in drawn.labels[-1]
    assert drawn.text == f"wrote {tmp_path / 'c.png'} (2 grid points)"
    assert f"not drawn: {NEVER[0]}" in capsys.readouterr().err
    assert imread(tmp_path / "c.png").shape[:2] == (540, 840) and drawn.size == (840, 540)


def test_plot_dpi_sets_the_image_size_and_is_checked(cli, sweep, tmp_path):
    pytest.importorskip("matplotlib")
    from matplotlib.image import imread

    r = cli("plot", sweep, "-o", tmp_path / "small.png", "--dpi", "50")
    assert r.code == 0, r.err
    assert imread(tmp_path / "small.png").shape[:2] == (225, 350)
    r = cli("plot", sweep / "cifar_plain-n=1" / "seed0", "-o", tmp_path / "one.png")  # a run folder, as before
    assert r.code == 0 and r.out.strip() == f"wrote {tmp_path / 'one.png'} (1 run)"
    for bad in ("0", "-3", "1.5", "5000"):
        r = cli("plot", sweep, "-o", tmp_path / "x.png", "--dpi", bad)
        assert r.code == 2 and "--dpi" in r.err and not (tmp_path / "x.png").exists()


def test_plot_of_a_folder_of_run_folders_is_no_longer_refused(cli, sweep, tmp_path):
    pytest.importorskip("matplotlib")
    (sweep / "sweep.json").unlink()  # a plain folder of run folders: pooled by spec and settings
    r = cli("plot", sweep, "-o", tmp_path / "c.png")
    assert r.code == 0 and "(2 grid points)" in r.out, r.err


def test_a_run_given_beside_its_sweep_stays_in_its_point(cli, sweep):
    r = cli("results", sweep / "cifar_plain-n=1" / "seed0", sweep)
    assert r.code == 0, r.err
    assert list(rows(r.out)) == [*POINTS, NEVER[0]] and rows(r.out)["cifar_plain-n=1"]["seeds"] == "2/2"
