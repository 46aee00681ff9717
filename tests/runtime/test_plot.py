"""`archspec plot`: runs named so that they can be told apart, short curves still visible, one-line errors."""

import json

import pytest

pytest.importorskip("matplotlib")

from archspec.runtime import plot  # noqa: E402


def fake_run(folder, name="cifar_resnet20", evals=1, kind="val"):
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(json.dumps({"spec": {"name": name}}))
    lines = [{"kind": "train", "iter": 10 * i, "train_err": 90.0 - i, "loss": 2.0} for i in range(1, 4)]
    lines += [{"kind": kind, "iter": 30 * (i + 1), "err": 80.0 - i, "loss": 1.5} for i in range(evals)]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    return folder


def test_runs_of_one_spec_are_named_by_their_folders(tmp_path):
    a, b, c = fake_run(tmp_path / "seed0"), fake_run(tmp_path / "seed1"), fake_run(tmp_path / "r56", "cifar_resnet56")
    assert [name for name, _ in plot._runs([a, b, c])] == [
        "cifar_resnet20 (seed0)", "cifar_resnet20 (seed1)", "cifar_resnet56"]


def test_a_run_with_one_evaluation_is_drawn_with_markers_and_the_title_names_the_split(cli, tmp_path, monkeypatch):
    import matplotlib.axes

    drawn = []
    real = matplotlib.axes.Axes.plot
    monkeypatch.setattr(matplotlib.axes.Axes, "plot", lambda self, *a, **k: drawn.append((a, k)) or real(self, *a, **k))
    titles = []
    monkeypatch.setattr(matplotlib.axes.Axes, "set_title", lambda self, t, *a, **k: titles.append(t))
    r = cli("plot", fake_run(tmp_path / "run"), "-o", tmp_path / "c.png")
    assert r.code == 0, r.err
    held = [k for a, k in drawn if a and a[0] == [30] and k.get("lw") == 2.2]
    assert held and held[0]["marker"] == "o"
    assert titles == ["training (dashed) and validation (bold) error"]


def test_a_file_or_a_missing_folder_is_one_line(cli, tmp_path):
    run = fake_run(tmp_path / "run")
    r = cli("plot", run / "metrics.jsonl", "-o", tmp_path / "c.png")
    assert r.code == 2 and f"is a file, not a run folder: give the folder that holds it ({run})" in r.err
    r = cli("plot", tmp_path / "nowhere", "-o", tmp_path / "c.png")
    assert r.code == 2 and "no such folder" in r.err
