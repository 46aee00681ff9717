"""Logs others can read: metrics.jsonl is strict JSON (non-finite values as null, flagged), evals.csv holds a row
per evaluation and agrees with it (on resume too), `--tensorboard` writes the scalars as TensorBoard events (and
refuses to start without the package), and `archspec plot` reads old and new files alike."""

from __future__ import annotations

import csv
import json
import math
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from archspec.runtime import metrics  # noqa: E402

EVAL_TAGS = {f"{split}/{name}" for split in ("val", "test") for name in ("loss", "err", "top5_err")}
TRAIN_TAGS = {"train/loss", "train/lr", "train/err", "train/images_per_s"}


def strict(line: str) -> dict:
    """json.loads that refuses NaN, Infinity and -Infinity, as strict readers (JavaScript, jq, Go) do."""
    def refuse(token: str) -> None:
        raise ValueError(f"not JSON: {token}")
    return json.loads(line, parse_constant=refuse)


def lines(run: Path) -> list[str]:
    return (run / "metrics.jsonl").read_text().splitlines()


def csv_rows(run: Path) -> list[dict[str, str]]:
    with open(run / "evals.csv", newline="") as f:
        return list(csv.DictReader(f))


def eval_records(run: Path) -> list[dict]:
    return [r for r in metrics.read_metrics(run / "metrics.jsonl") if r["kind"] in ("val", "test")]


def assert_csv_matches_jsonl(run: Path) -> None:
    header = (run / "evals.csv").read_text().splitlines()[0]
    assert header == ",".join(metrics.EVAL_COLUMNS)
    rows, records = csv_rows(run), eval_records(run)
    assert len(rows) == len(records)
    for row, record in zip(rows, records):
        for column in metrics.EVAL_COLUMNS:
            value = record.get(column)
            if isinstance(value, float):
                assert float(row[column]) == value or (math.isnan(value) and math.isnan(float(row[column])))
            else:
                assert row[column] == ("" if value is None else str(value)), (column, row, record)


def train_command(cifar_dir: Path, out: Path, *extra: str, iters: int = 40) -> list[str]:
    return ["train", "cifar_resnet20", "--data-dir", str(cifar_dir), "--out", str(out), "--device", "cpu",
            "--iters", str(iters), "--batch-size", "16", "--log-interval", "5", "--eval-interval", "20",
            "--checkpoint-interval", "10", "--train-size", "1000", "--val-size", "200", "--quiet", *extra]


@pytest.fixture(scope="module")
def overflowing_run(cifar_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 40-iteration run whose validation loss overflows to infinity and whose test loss is NaN."""
    from archspec.cli import main
    from archspec.runtime import train

    real = train.evaluate

    def overflowing(model, data, split, **kw):
        result = real(model, data, split, **kw)
        result["loss"] = math.inf if split == "val" else math.nan
        return result

    run = tmp_path_factory.mktemp("overflow") / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(train, "evaluate", overflowing)
        assert main(train_command(cifar_dir, run, iters=40)) == 0
    return run


# -- strict JSON -----------------------------------------------------------------------------------------------

def test_nonfinite_evaluation_losses_are_strict_json_with_a_flag(overflowing_run):
    records = [strict(line) for line in lines(overflowing_run)]  # every line, strictly
    held = [r for r in records if r["kind"] in ("val", "test")]
    assert [(r["kind"], r["iter"]) for r in held] == [("val", 20), ("test", 20), ("val", 40), ("test", 40)]
    for r in held:
        assert r["loss"] is None
        assert r["nonfinite"] == {"loss": "inf" if r["kind"] == "val" else "nan"}
        assert [k for k, v in r.items() if v is None] == ["loss"] and math.isfinite(r["err"])
    assert all("nonfinite" not in r for r in records if r["kind"] == "train")
    # read back, the values are the numbers again, as from a file of bare NaN/Infinity tokens
    back = eval_records(overflowing_run)
    assert back[0]["loss"] == math.inf and math.isnan(back[1]["loss"])
    assert all("nonfinite" not in r for r in back)


def test_run_json_with_a_nonfinite_final_loss_is_strict_json_too(overflowing_run):
    info = strict((overflowing_run / "run.json").read_text())  # its `final` holds the last val and test records
    final = info["final"]
    assert final["final_test"]["loss"] is None and final["final_test"]["nonfinite"] == {"loss": "nan"}
    from archspec.runtime.rundir import RunDir

    back = RunDir(overflowing_run).info()["final"]  # read back: the numbers again
    assert math.isnan(back["final_test"]["loss"]) and back["final_val"]["loss"] == math.inf


def test_the_encoder_refuses_what_it_cannot_flag():
    assert metrics.encode_record({"kind": "val", "loss": -math.inf}) == \
        '{"kind": "val", "loss": null, "nonfinite": {"loss": "-inf"}}'
    with pytest.raises(ValueError):
        metrics.encode_record({"kind": "val", "losses": [1.0, math.nan]})  # nested: loud, not a NaN token


# -- evals.csv ---------------------------------------------------------------------------------------------------

def test_evals_csv_has_a_row_per_evaluation_matching_the_jsonl(overflowing_run):
    rows = csv_rows(overflowing_run)
    assert [(r["iter"], r["kind"]) for r in rows] == [("20", "val"), ("20", "test"), ("40", "val"), ("40", "test")]
    assert [r["loss"] for r in rows] == ["inf", "nan", "inf", "nan"]
    assert float(rows[0]["epoch"]) > 0 and rows[0]["images"] == "200"
    assert_csv_matches_jsonl(overflowing_run)


def test_resume_keeps_jsonl_and_csv_consistent(cli, stopped_run, tmp_path):
    run = stopped_run(tmp_path / "run")
    at = json.loads((run / "run.json").read_text())["checkpoint_iteration"]
    # an old-style line (bare NaN tokens) from before the checkpoint, and records logged after it, before a crash
    old = '{"kind": "val", "iter": 0, "loss": NaN, "err": 50.0, "top5_err": Infinity, "images": 1}\n'
    (run / "metrics.jsonl").write_text(old + (run / "metrics.jsonl").read_text()
                                       + json.dumps({"kind": "val", "iter": at + 1, "loss": 1.0, "err": 1.0,
                                                     "top5_err": 1.0, "images": 777}) + "\n")
    with open(run / "evals.csv", "a") as f:
        f.write(f"{at + 1},0.1,val,1.0,1.0,1.0,777\n{at + 2},0.1,te")  # a row past the checkpoint, a torn one
    r = cli("train", "--resume", "--out", run, "--quiet")
    assert r.code == 0, r.err
    records = [strict(line) for line in lines(run)]  # the old line was rewritten strictly too
    assert records[0] == {"kind": "val", "iter": 0, "loss": None, "err": 50.0, "top5_err": None, "images": 1,
                          "nonfinite": {"loss": "nan", "top5_err": "inf"}}
    assert all(r.get("images") != 777 for r in records)
    held = [(r["iter"], r["kind"]) for r in records if r["kind"] in ("val", "test")][1:]
    assert held == [(i, k) for i in (20, 40, 60, 80) for k in ("val", "test")]  # each once, none dropped
    assert_csv_matches_jsonl(run)
    assert csv_rows(run)[0]["loss"] == "nan" and csv_rows(run)[0]["top5_err"] == "inf"


# -- TensorBoard -----------------------------------------------------------------------------------------------

def scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_tensorboard_writes_the_scalars(cli, cifar_dir, tmp_path):
    pytest.importorskip("tensorboard")
    run = tmp_path / "run"
    r = cli(*train_command(cifar_dir, run, "--tensorboard", iters=20))
    assert r.code == 0, r.err
    found = scalars(run / "tensorboard")
    assert TRAIN_TAGS | EVAL_TAGS <= set(found)
    train = [r for r in metrics.read_metrics(run / "metrics.jsonl") if r["kind"] == "train"]
    assert [s for s, _ in found["train/loss"]] == [5, 10, 15, 20]
    assert [v for _, v in found["train/loss"]] == pytest.approx([r["loss"] for r in train], rel=1e-6)
    assert [s for s, _ in found["val/err"]] == [20] and [s for s, _ in found["test/loss"]] == [20]
    assert json.loads((run / "run.json").read_text())["options"]["tensorboard"] is True


def test_tensorboard_after_a_resume_holds_no_events_past_the_checkpoint(tmp_path):
    pytest.importorskip("tensorboard")
    log = metrics.MetricsLog(tmp_path / "metrics.jsonl", tensorboard=True)
    log.open()
    for i in (5, 10, 15, 20):  # a run killed after iteration 20, its checkpoint at 10
        log.write({"kind": "train", "iter": i, "loss": 100.0 + i, "lr": 0.1, "train_err": 50.0})
    log.close()
    log.open(keep_until=10)
    for i in (15, 20):
        log.write({"kind": "train", "iter": i, "loss": float(i), "lr": 0.1, "train_err": 50.0})
    log.close()
    assert scalars(tmp_path / "tensorboard")["train/loss"] == [(5, 105.0), (10, 110.0), (15, 15.0), (20, 20.0)]
    assert [r["loss"] for r in metrics.read_metrics(tmp_path / "metrics.jsonl")] == [105.0, 110.0, 15.0, 20.0]


def test_tensorboard_without_the_package_is_one_line_and_exit_2(cli, cifar_dir, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # `import tensorboard` now fails as if not installed
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    run = tmp_path / "run"
    r = cli(*train_command(cifar_dir, run, "--tensorboard", iters=20))
    assert r.code == 2
    assert len(r.err.strip().splitlines()) == 1 and "Traceback" not in r.err
    assert "--tensorboard" in r.err and metrics.INSTALL_TENSORBOARD in r.err
    assert metrics.INSTALL_TENSORBOARD == ("pip install 'archspec-nn[tensorboard]' (in a checkout: pip install -e "
                                           "'.[tensorboard]')")
    assert not run.exists()  # refused before training started: nothing written


# -- plot --------------------------------------------------------------------------------------------------------

RECORDS = [
    {"kind": "train", "iter": 5, "epoch": 0.1, "loss": 2.3, "lr": 0.1, "train_err": 90.0, "data_wait": math.nan},
    {"kind": "train", "iter": 10, "epoch": 0.2, "loss": 2.1, "lr": 0.1, "train_err": 80.0, "data_wait": 0.0},
    {"kind": "val", "iter": 10, "loss": math.inf, "err": 70.0, "top5_err": 20.0, "images": 200},
    {"kind": "test", "iter": 10, "loss": math.nan, "err": math.nan, "top5_err": -math.inf, "images": 240},
]


NEW_FILE = """\
{"kind": "train", "iter": 5, "epoch": 0.1, "loss": 2.3, "lr": 0.1, "train_err": 90.0, "data_wait": null, \
"nonfinite": {"data_wait": "nan"}}
{"kind": "train", "iter": 10, "epoch": 0.2, "loss": 2.1, "lr": 0.1, "train_err": 80.0, "data_wait": 0.0}
{"kind": "val", "iter": 10, "loss": null, "err": 70.0, "top5_err": 20.0, "images": 200, "nonfinite": {"loss": "inf"}}
{"kind": "test", "iter": 10, "loss": null, "err": null, "top5_err": null, "images": 240, \
"nonfinite": {"loss": "nan", "err": "nan", "top5_err": "-inf"}}
"""


def same(a: list[dict], b: list[dict]) -> bool:
    def key(v):
        return "nan" if isinstance(v, float) and math.isnan(v) else v
    return [{k: key(v) for k, v in r.items()} for r in a] == [{k: key(v) for k, v in r.items()} for r in b]


def test_plot_reads_old_nan_token_files_and_new_flagged_files_alike(cli, tmp_path):
    pytest.importorskip("matplotlib")
    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir()
    new.mkdir()
    (old / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in RECORDS))  # NaN, Infinity tokens
    (new / "metrics.jsonl").write_text(NEW_FILE)  # null, flagged
    assert "NaN" in (old / "metrics.jsonl").read_text() and "NaN" not in (new / "metrics.jsonl").read_text()
    r = cli("plot", old, new, "-o", tmp_path / "curves.png")
    assert r.code == 0, r.err
    assert same(metrics.read_metrics(old / "metrics.jsonl"), RECORDS)
    assert same(metrics.read_metrics(new / "metrics.jsonl"), RECORDS)
    assert (tmp_path / "curves.png").stat().st_size > 1000
    assert NEW_FILE == "".join(metrics.encode_record(r) + "\n" for r in RECORDS)  # what a run writes
