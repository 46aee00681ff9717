"""`archspec train` on CPU with real CIFAR-format files: it learns, resumes exactly after SIGKILL, stops on NaN
keeping the last good checkpoint, saves on Ctrl-C, and answers bad data and checkpoints with exit code 2."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

KEY = ("kind", "iter", "loss", "lr", "train_err", "err")


def records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def keys(run: Path) -> list[tuple]:
    return [tuple(r.get(k) for k in KEY) for r in records(run)]


def start(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "archspec", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for_checkpoint(run: Path, at_least: int, proc: subprocess.Popen, timeout: float = 120) -> int:
    """Poll until last.pt holds iteration >= at_least (read safely: it is written atomically)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"run ended early: {proc.stderr.read()}")
        try:
            it = torch.load(run / "last.pt", weights_only=True)["state"]["iteration"]
            if it >= at_least:
                return it
        except (FileNotFoundError, RuntimeError, EOFError, KeyError):
            pass
        time.sleep(0.05)
    raise AssertionError("no checkpoint in time")


def test_short_run_lowers_the_loss_and_writes_the_run_folder(cli, train_args, tmp_path):
    run = tmp_path / "run"
    r = cli(*train_args(run, iters=40))
    assert r.code == 0, r.err
    assert {p.name for p in run.iterdir()} >= {"spec.yaml", "recipe.json", "run.json", "metrics.jsonl",
                                              "last.pt", "best.pt", "log.txt"}
    train = [x for x in records(run) if x["kind"] == "train"]
    assert len(train) == 8 and [x["iter"] for x in train] == list(range(5, 45, 5))
    assert train[-1]["loss"] < 0.5 * train[0]["loss"]
    assert {"loss", "lr", "train_err", "images_per_s", "epoch", "peak_mem_mb"} <= set(train[0])
    assert [x["kind"] for x in records(run) if x["kind"] != "train"] == ["val", "test", "val", "test"]
    # the resolved spec is a spec of its own, and builds the same network
    import archspec

    assert archspec.validate(run / "spec.yaml").ok
    assert archspec.compile(run / "spec.yaml").params == archspec.compile("cifar_resnet20").params
    recipe = json.loads((run / "recipe.json").read_text())
    assert recipe["schedule"]["length"] == 40 and recipe["schedule"]["milestones"] == [20, 30]
    info = json.loads((run / "run.json").read_text())
    assert info["seed"] == 0 and info["final"]["final_test"]["kind"] == "test"


@pytest.mark.slow
def test_resume_after_sigkill_logs_what_an_uninterrupted_run_logs(train_args, tmp_path):
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    assert subprocess.run([sys.executable, "-m", "archspec", *train_args(whole, iters=60)]).returncode == 0
    proc = start(train_args(broken, iters=60))
    wait_for_checkpoint(broken, 20, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    resumed = subprocess.run([sys.executable, "-m", "archspec", *train_args(broken, "--resume", iters=60)],
                             capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert keys(broken) == keys(whole)  # the same losses, lrs and errors, bitwise
    a = torch.load(whole / "last.pt", weights_only=True)["model"]
    b = torch.load(broken / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_ctrl_c_saves_and_exits_cleanly_then_resumes(train_args, tmp_path):
    run = tmp_path / "run"
    proc = start(train_args(run, iters=400))
    wait_for_checkpoint(run, 10, proc)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "stopped at iteration" in err and "--resume" in err and "Traceback" not in err
    stopped = torch.load(run / "last.pt", weights_only=True)["state"]["iteration"]
    assert stopped >= 10
    assert max(r["iter"] for r in records(run)) <= stopped + 5


def test_nan_stops_the_run_and_keeps_the_last_good_checkpoint(cli, train_args, tmp_path):
    run = tmp_path / "run"
    # warm up gently for 20 iterations (checkpoints at 10 and 20), then an lr that blows up
    r = cli(*train_args(run, "--lr", "1e12", "--recipe",
                        "schedule.warmup={lr: 0.01, until_train_error: 0.0, max_iters: 20}", iters=60))
    assert r.code == 3, r.err
    assert "loss became nan" in r.err.lower() or "loss became inf" in r.err.lower()
    assert "last good checkpoint" in r.err
    state = torch.load(run / "last.pt", weights_only=True)
    assert state["state"]["iteration"] == 20
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


def test_existing_run_is_never_overwritten(cli, train_args, tmp_path):
    run = tmp_path / "run"
    assert cli(*train_args(run, iters=10)).code == 0
    before = (run / "metrics.jsonl").read_bytes()
    r = cli(*train_args(run, iters=10))
    assert r.code == 2 and "finished run" in r.err and "--out" in r.err
    assert (run / "metrics.jsonl").read_bytes() == before


def test_resume_refuses_a_changed_recipe(cli, train_args, tmp_path):
    run = tmp_path / "run"
    assert cli(*train_args(run, iters=10)).code == 0
    r = cli(*train_args(run, "--resume", "--lr", "0.5", iters=10))
    assert r.code == 2 and "--lr 0.5 changes the run (optimizer.lr: 0.1 in the run, 0.5 given)" in r.err


def test_missing_data_is_one_line_with_where_and_how(cli, tmp_path):
    r = cli("train", "cifar_resnet20", "--data-dir", tmp_path / "nothing", "--out", tmp_path / "run",
            "--device", "cpu", "--iters", "5", "--quiet")
    assert r.code == 2
    line = r.err.strip()
    assert len(line.splitlines()) == 1 and "cifar-10-batches-py" in line and "--download" in line
    assert not (tmp_path / "run").exists()


def test_corrupt_dataset_file_is_exit_2(cli, cifar_dir, tmp_path):
    damaged = tmp_path / "cifar"
    (damaged / "cifar-10-batches-py").mkdir(parents=True)
    for f in (cifar_dir / "cifar-10-batches-py").iterdir():
        data = f.read_bytes()
        (damaged / "cifar-10-batches-py" / f.name).write_bytes(data[: len(data) // 2] if f.name == "data_batch_3"
                                                              else data)
    r = cli("train", "cifar_resnet20", "--data-dir", damaged, "--out", tmp_path / "run", "--device", "cpu",
            "--iters", "5", "--train-size", "1000", "--val-size", "200", "--quiet")
    assert r.code == 2 and "data_batch_3" in r.err and len(r.err.strip().splitlines()) == 1


@pytest.mark.parametrize("damage", [b"", b"junk" * 100])
def test_corrupt_checkpoint_on_resume_is_exit_2(cli, stopped_run, tmp_path, damage):
    run = stopped_run(tmp_path / "run")
    (run / "last.pt").write_bytes(damage)
    r = cli("train", "--resume", "--out", run, "--quiet")
    assert r.code == 2 and "last.pt" in r.err and len(r.err.strip().splitlines()) == 1


def test_bad_flags_are_exit_2(cli, train_args, tmp_path):
    assert cli(*train_args(tmp_path / "a", "--lr", "-1", iters=5)).code == 2
    r = cli(*train_args(tmp_path / "b", "--recipe", "optimizer.momentun=0.5", iters=5))
    assert r.code == 2 and "momentum" in r.err
    r = cli(*train_args(tmp_path / "c", "--device", "cuda", iters=5)) if not torch.cuda.is_available() else None
    assert r is None or (r.code == 2 and "CUDA" in r.err)


def test_eval_and_plot(cli, train_args, tmp_path):
    run = tmp_path / "run"
    assert cli(*train_args(run, iters=20)).code == 0
    r = cli("eval", "cifar_resnet20", "--checkpoint", run / "last.pt", "--data-dir", train_args(run)[3],
            "--device", "cpu", "--train-size", "1000", "--val-size", "200", "--json")
    assert r.code == 0, r.err
    result = json.loads(r.out)
    assert result["split"] == "test" and result["images"] == 240
    last_test = [x for x in records(run) if x["kind"] == "test"][-1]
    assert abs(result["err"] - last_test["err"]) < 1e-9  # the same model and data give the same answer
    r = cli("eval", "cifar_resnet20", "--checkpoint", run / "last.pt", "--data-dir", train_args(run)[3],
            "--device", "cpu", "--train-size", "1000", "--val-size", "200", "--views", "10")
    assert r.code == 0 and "10 views" in r.out
    png = tmp_path / "curves.png"
    r = cli("plot", run, run, "-o", png)
    assert r.code == 0, r.err
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    r = cli("plot", tmp_path / "nowhere", "-o", png)
    assert r.code == 2 and "not a run folder" in r.err


def _jpeg_folder(root: Path, classes=("ant", "bee", "cat"), per_class: int = 6) -> Path:
    from PIL import Image
    import numpy as np

    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for k, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(per_class if split == "train" else 2):
                size = (int(rng.integers(40, 70)), int(rng.integers(40, 70)))
                pixels = rng.integers(0, 80, (size[1], size[0], 3)).astype("uint8")
                pixels[..., k] += 150
                Image.fromarray(pixels).save(folder / f"{i}.JPEG", quality=90)
    return root


def test_train_on_an_image_folder_with_the_imagenet_pipeline(cli, tmp_path):
    pytest.importorskip("PIL")
    data = _jpeg_folder(tmp_path / "imagenet")
    r = cli("train", "resnet18_tv", "--data-dir", data, "--out", tmp_path / "run", "--device", "cpu", "--quiet",
            "--input", "3x32x32", "--set", "num_classes=3", "--iters", "4", "--batch-size", "6",
            "--log-interval", "2", "--workers", "2",
            "--recipe", "augment=[{op: scale_jitter, min: 36, max: 48}, {op: random_crop, size: 32}, {op: hflip}]",
            "--recipe", "eval={interval: 4, views: 10, resize: 36, crop: 32}")
    assert r.code == 0, r.err
    kinds = [x["kind"] for x in records(tmp_path / "run")]
    assert kinds == ["train", "train", "val"]
    val = records(tmp_path / "run")[-1]
    assert val["images"] == 6  # 2 per class, each seen through 10 crops averaged into one answer
