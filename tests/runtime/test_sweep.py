"""`archspec sweep` running real (tiny) runs on the CPU: the run folders and sweep.json; a sweep interrupted (Ctrl-C,
then SIGKILL of the sweep) and run again finishes without repeating finished runs; a run that diverges does not
stop the others. The runs are a tiny spec's (a conv and a classifier) on the small CIFAR files of conftest.py,
so that each takes a few seconds, mostly starting up."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tiny_sweep import FLAGS, experiment, info  # tests/ is on pytest's pythonpath


def sweep(path: Path, out: Path, cifar_dir: Path, *extra: str) -> subprocess.Popen:
    """`python -m archspec sweep` in the background (one thread per run: the machine may be shared)."""
    return subprocess.Popen([sys.executable, "-m", "archspec", "sweep", str(path), "--out", str(out), "--data-dir",
                             str(cifar_dir), "--device", "cpu", *extra], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})


def finish(proc: subprocess.Popen, timeout: float = 240) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, out, err


def train_iters(run: Path) -> list[int]:
    return [r["iter"] for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
            if r["kind"] == "train"]


def wait_for(condition, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while not condition():
        assert proc.poll() is None, f"the sweep ended early ({proc.returncode}): {proc.stderr.read()}"
        assert time.time() < deadline, "timed out"
        time.sleep(0.1)


def test_a_sweep_makes_a_run_folder_per_point_and_seed_and_its_record(cifar_dir, tmp_path):
    path = experiment(tmp_path, f"grid:\n  spec: tiny.yaml\n  set: {{width: [4, 8]}}\nseeds: 2\n"
                      f"train: {{iters: 10, {FLAGS}}}\n")
    out = tmp_path / "sweep"
    code, stdout, stderr = finish(sweep(path, out, cifar_dir, "--jobs", "2"))
    assert code == 0, stderr + stdout
    runs = [out / f"tiny-width={w}" / f"seed{s}" for w in (4, 8) for s in (0, 1)]
    for run in runs:
        assert info(run)["status"] == "finished" and (run / "last.pt").is_file()
        assert info(run)["seed"] == int(run.name[-1])
    assert info(runs[0])["spec"]["name"] == "tiny" and "--set width=4" in info(runs[0])["command"]
    record = json.loads((out / "sweep.json").read_text())
    assert record["format"] == "archspec-sweep" and record["version"] == 1
    assert record["experiment"]["name"] == "tiny" and len(record["experiment"]["sha256"]) == 64
    first = record["points"][0]
    assert {k: first[k] for k in ("key", "spec", "set", "recipe", "seeds")} == {
        "key": "tiny-width=4", "spec": "tiny.yaml", "set": {"width": 4}, "recipe": {}, "seeds": [0, 1]}
    assert first["runs"] == [{"seed": 0, "folder": "tiny-width=4/seed0"}, {"seed": 1, "folder": "tiny-width=4/seed1"}]
    assert first["train"]["iters"] == 10 and first["train"]["batch_size"] == 16
    # the live view, as plain lines (not a terminal), and the summary with each run's result
    assert "2 at a time on the CPU" in stderr and "started   tiny-width=8/seed1" in stderr
    assert "4 runs: 4 finished" in stdout and "tiny-width=4/seed0  finished    test error" in stdout
    # the same command again runs nothing
    before = {run: (run / "metrics.jsonl").stat().st_mtime_ns for run in runs}
    code, stdout, stderr = finish(sweep(path, out, cifar_dir, "--jobs", "2"))
    assert code == 0 and stdout.count("finished    test error") == 4 and stdout.count("(before this sweep)") == 4
    assert {run: (run / "metrics.jsonl").stat().st_mtime_ns for run in runs} == before


@pytest.mark.slow
def test_interrupted_and_killed_sweeps_continue_without_repeating_finished_runs(cifar_dir, tmp_path):
    # one run at a time: the short point finishes first, then the long one is stopped in the middle, before the
    # last one has started
    path = experiment(tmp_path, f"points:\n  - {{spec: tiny.yaml, set: {{width: 4}}, train: {{iters: 10}}}}\n"
                      f"  - {{spec: tiny.yaml, set: {{width: 8}}, train: {{iters: 400}}}}\n"
                      f"  - {{spec: tiny.yaml, set: {{width: 2}}, train: {{iters: 5}}}}\n"
                      f"train: {{{FLAGS}}}\n")
    out = tmp_path / "sweep"
    short, long, last = (out / f"tiny-width={w}" / "seed0" for w in (4, 8, 2))
    proc = sweep(path, out, cifar_dir)
    wait_for(lambda: (long / "last.pt").is_file(), proc)
    finished = (short / "metrics.jsonl").read_bytes()
    proc.send_signal(signal.SIGINT)   # Ctrl-C: forwarded to the run, which saves a checkpoint
    code, stdout, stderr = finish(proc)
    assert code == 130, stderr
    assert info(long)["status"] == "interrupted" and info(short)["status"] == "finished"
    assert "interrupted: each run saved a checkpoint; the same command continues the sweep" in stdout
    assert "3 runs: 1 finished, 1 interrupted, 1 not started" in stdout and not last.parent.exists()
    stopped = info(long)["checkpoint_iteration"]
    assert 0 < stopped < 400

    proc = sweep(path, out, cifar_dir)   # again; this time the sweep is killed outright
    wait_for(lambda: info(long).get("resumed") == 1 and info(long)["checkpoint_iteration"] > stopped, proc)
    proc.kill()
    proc.wait()
    # the run is not left behind: it gets SIGTERM when the sweep dies, saves a checkpoint and stops
    deadline = time.time() + 60
    while info(long)["status"] == "running" and time.time() < deadline:
        time.sleep(0.1)
    assert info(long)["status"] == "interrupted"

    code, stdout, stderr = finish(sweep(path, out, cifar_dir))
    assert code == 0, stderr + stdout
    assert info(long)["status"] == "finished" and info(long)["resumed"] == 2 and info(last)["status"] == "finished"
    assert (short / "metrics.jsonl").read_bytes() == finished   # never run again
    assert "started   tiny-width=8/seed0 (resumed)" in stderr and "started   tiny-width=4" not in stderr
    iters = train_iters(long)
    assert iters == sorted(set(iters)) and iters[-1] == 400   # resumed, not restarted: no iteration twice


def test_failed_and_diverged_runs_do_not_stop_the_others(cifar_dir, tmp_path):
    path = experiment(tmp_path, f"grid:\n  spec: tiny.yaml\n  recipe: {{optimizer.lr: [0.1, 1.0e+12]}}\n"
                      f"train: {{iters: 20, {FLAGS}}}\n")
    out = tmp_path / "sweep"
    good, bad = out / "tiny-optimizer.lr=0.1", out / "tiny-optimizer.lr=1000000000000.0"
    code, stdout, stderr = finish(sweep(path, out, cifar_dir, "--jobs", "2", "--quiet"))
    assert code == 3, stderr + stdout
    assert info(good / "seed0")["status"] == "finished" and info(bad / "seed0")["status"] == "diverged"
    assert "2 runs: 1 finished, 1 diverged" in stdout and "lr=1000000000000.0/seed0  diverged    the loss" in stdout
    assert stderr == ""   # --quiet: no live view

    # two seeds now: seed 0 of each is kept as it ended; seed 1 of the good point cannot start (its folder holds
    # someone else's file) and is reported, while the others run
    blocked = good / "seed1"
    blocked.mkdir()
    (blocked / "mine.txt").write_text("someone else's")
    code, stdout, _ = finish(sweep(path, out, cifar_dir, "--jobs", "2", "--quiet", "--seeds", "2"))
    assert code == 3
    assert "4 runs: 1 finished, 2 diverged, 1 failed" in stdout and "diverged before this sweep" in stdout
    assert re.search(r"lr=0\.1/seed1 +failed +exit code 2: archspec: error: .*mine\.txt", stdout), stdout
    assert (blocked / "mine.txt").read_text() == "someone else's"
    assert json.loads((out / "sweep.json").read_text())["points"][0]["seeds"] == [0, 1]
    (blocked / "mine.txt").unlink()
    code, stdout, _ = finish(sweep(path, out, cifar_dir, "--quiet", "--seeds", "2", "--only", "optimizer.lr=0.1"))
    assert code == 0 and "2 runs: 2 finished" in stdout and info(blocked)["status"] == "finished"

    (out / "sweep.json").write_text("{")   # damaged: refused before anything runs
    code, _, stderr = finish(sweep(path, out, cifar_dir))
    assert code == 2 and "sweep.json is damaged" in stderr
