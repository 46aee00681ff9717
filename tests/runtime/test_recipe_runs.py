"""Each shipped modern recipe trains on the CPU, records itself in the run folder, and resumes exactly: a run
killed with SIGKILL after a checkpoint and resumed logs the losses, learning rates and errors (those of the EMA
weights included) of the uninterrupted run, and ends with the same weights and the same average of them."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

# ImageNet recipes on 32-pixel synthetic images: their own ops at the small size (what they do, not their sizes)
SMALL = {
    "rsb_a1": "[{op: random_resized_crop, size: 32}, {op: hflip}, {op: rand_augment, magnitude: 7}]",
    "rsb_a2": "[{op: random_resized_crop, size: 32}, {op: hflip}, {op: rand_augment, magnitude: 7}]",
    "rsb_a3": "[{op: random_resized_crop, size: 24}, {op: hflip}, {op: rand_augment, magnitude: 6}]",
    "tv_v2": "[{op: random_resized_crop, size: 24}, {op: hflip}, {op: trivial_augment}, "
             "{op: random_erasing, p: 0.1, mode: const}]",
}
RECIPES = ("rsb_a1", "rsb_a2", "rsb_a3", "tv_v2", "cifar10_modern", "cifar100_modern")


def args(name: str, out: Path, *extra: str) -> list[str]:
    cmd = ["train", "cifar_resnet20", "--recipe", name, "--dataset", "synthetic", "--out", str(out), "--device",
           "cpu", "--iters", "18", "--batch-size", "8", "--log-interval", "3", "--eval-interval", "9",
           "--checkpoint-interval", "3", "--val-size", "16", "--quiet", "--recipe", "schedule.update=iter"]
    if name in SMALL:
        cmd += ["--recipe", f"augment={SMALL[name]}", "--recipe", "eval.resize=32", "--recipe", "eval.crop=32"]
    if name == "tv_v2":
        cmd += ["--recipe", "ema.every=2"]  # (its 32 would leave 18 iterations with no update after the start)
    if name == "cifar100_modern":  # (and the clipping no shipped recipe uses, resumed as exactly)
        cmd += ["--recipe", "clip_grad={mode: agc, max: 0.05}"]
    return [*cmd, *extra]


def records(run: Path) -> list[tuple]:
    out = []
    for line in (run / "metrics.jsonl").read_text().splitlines():
        r = json.loads(line)
        out.append((r["kind"], r["iter"], r.get("loss"), r.get("lr"), r.get("err"), r.get("train_err")))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("name", RECIPES)
def test_a_shipped_recipe_trains_records_itself_and_resumes_exactly(name, tmp_path, procs):
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    done = subprocess.run([sys.executable, "-m", "archspec", *args(name, whole)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    info = json.loads((whole / "run.json").read_text())
    assert info["recipe_source"]["name"] == name and info["recipe_source"]["file"].endswith(f"{name}.yaml")
    assert any(name in n for n in info["recipe_notes"]) and info["status"] == "finished"
    recipe = json.loads((whole / "recipe.json").read_text())
    assert recipe["schedule"]["name"] == "cosine" and recipe["optimizer"]["name"] in ("sgd", "lamb")
    assert ("clip_grad" in recipe) == (name == "cifar100_modern")
    kinds = {r[0] for r in records(whole)}
    assert kinds >= {"train", "val"} and (("val_ema" in kinds) == (name == "tv_v2"))
    losses = [r[2] for r in records(whole) if r[0] == "train"]
    assert all(torch.isfinite(torch.tensor(losses))), losses
    assert len({r[3] for r in records(whole) if r[0] == "train"}) > 1  # the schedule moves

    proc = procs.start(args(name, broken))
    procs.wait_for_checkpoint(broken, 6, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    resumed = subprocess.run([sys.executable, "-m", "archspec", "train", "--resume", "--out", str(broken), "--quiet"],
                             capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert records(broken) == records(whole)  # bitwise: losses, learning rates, errors
    a, b = (torch.load(r / "last.pt", weights_only=True) for r in (whole, broken))
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert ("ema" in a) == (name == "tv_v2") and all(torch.equal(a["ema"][k], b["ema"][k]) for k in a.get("ema", {}))
    assert (whole / "best_ema.pt").exists() == (name == "tv_v2")
    if name == "tv_v2":  # the EMA weights' best serves alone: evaluated as any checkpoint is
        best = torch.load(whole / "best_ema.pt", weights_only=True)
        ema_vals = [r for r in records(whole) if r[0] == "val_ema"]
        assert best["val_err"] == min(r[4] for r in ema_vals)
        ev = subprocess.run([sys.executable, "-m", "archspec", "eval", "--checkpoint", str(whole / "best_ema.pt"),
                             "--split", "val", "--json"], capture_output=True, text=True)
        assert ev.returncode == 0, ev.stderr
        assert json.loads(ev.stdout)["err"] == pytest.approx(best["val_err"])
        table = subprocess.run([sys.executable, "-m", "archspec", "results", str(whole), "--format", "json"],
                               capture_output=True, text=True)
        run = json.loads(table.stdout)["points"][0]["runs"][0]
        assert run["ema_final_err"] == ema_vals[-1][4]
        shown = subprocess.run([sys.executable, "-m", "archspec", "results", str(whole)], capture_output=True,
                               text=True).stdout
        assert "error, EMA weights (%)" in shown
