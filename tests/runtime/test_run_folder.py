"""Runs you can trust: every way `archspec train` used to trap, mix or mislead a user, reproduced with real
processes, signals, bytes and mounts, now answered with a working run or one clear line and exit code 2."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")


def records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file() and p.name != ".archspec.lock"}


# -- 1. a run that dies before its first checkpoint is neither stuck nor lost -----------------------------------

def test_a_diverged_start_is_replaced_by_the_same_command_with_a_lower_lr(cli, train_args, tmp_path):
    run = tmp_path / "run"
    r = cli(*train_args(run, "--lr", "1e12", "--checkpoint-interval", "20", iters=40))
    assert r.code == 3
    assert "no checkpoint was written" in r.err and "lower learning rate" in r.err
    assert "--resume" not in r.err  # resuming a run with no checkpoint was the old, wrong advice
    assert json.loads((run / "run.json").read_text())["status"] == "diverged"
    r = cli(*train_args(run, "--lr", "0.1", iters=10))
    assert r.code == 0, r.err
    assert "replacing the run" in (run / "log.txt").read_text()
    assert [x["iter"] for x in records(run) if x["kind"] == "train"] == [5, 10]  # the old records are gone


def test_diverged_message_is_printed_once(cli, train_args, tmp_path):
    args = [a for a in train_args(tmp_path / "run", "--lr", "1e12", iters=20) if a != "--quiet"]
    r = cli(*args)
    assert r.code == 3 and r.err.count("the loss became") == 1, r.err


def _killed_before_first_checkpoint(procs, train_args, run: Path) -> None:
    args = train_args(run, "--checkpoint-minutes", "1000", iters=40)
    args[args.index("--checkpoint-interval") + 1] = "40"  # only at the end
    args[args.index("--eval-interval") + 1] = "40"
    proc = procs.start(args)
    procs.wait_until(proc, lambda: (run / "metrics.jsonl").is_file() and (run / "metrics.jsonl").stat().st_size)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (run / "last.pt").exists()


@pytest.mark.slow
def test_sigkill_before_the_first_checkpoint_can_be_resumed_or_restarted(procs, cli, train_args, tmp_path):
    run = tmp_path / "run"
    _killed_before_first_checkpoint(procs, train_args, run)
    r = cli("train", "--resume", "--out", run, "--quiet")  # the folder's own spec, recipe and data
    assert r.code == 0, r.err
    log = (run / "log.txt").read_text()
    assert "starting it from the beginning" in log
    assert json.loads((run / "run.json").read_text())["status"] == "finished"
    assert [x["iter"] for x in records(run) if x["kind"] == "train"] == list(range(5, 45, 5))  # each once


@pytest.mark.slow
def test_plain_rerun_replaces_a_start_killed_before_its_first_checkpoint(procs, cli, train_args, tmp_path):
    run = tmp_path / "run"
    _killed_before_first_checkpoint(procs, train_args, run)
    r = cli(*train_args(run, iters=10))
    assert r.code == 0, r.err
    assert "replacing the run" in (run / "log.txt").read_text()
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "finished" and info["iterations"] == 10


@pytest.mark.slow
def test_short_runs_checkpoint_at_least_every_tenth_of_the_run(procs, train_args, tmp_path):
    from archspec.runtime.train import checkpoint_interval

    assert checkpoint_interval(400, 100, 400, None) == 100  # the eval interval clamped to the run: was 400
    assert checkpoint_interval(64000, 100, 2000, None) == 2000
    assert checkpoint_interval(40, 5, 20, None) == 5
    assert checkpoint_interval(1000, 100, 250, 130) == 200  # asked: rounded up to a log interval
    run = tmp_path / "run"
    args = [a for a in train_args(run, iters=100) if a not in ("--checkpoint-interval", "10")]
    args[args.index("--eval-interval") + 1] = "100"
    proc = procs.start(args)
    at = procs.wait_for_checkpoint(run, 1, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 0 < at <= 50 and at % 5 == 0  # not only at the end


@pytest.mark.slow
def test_time_based_checkpoints(procs, train_args, tmp_path):
    run = tmp_path / "run"
    args = train_args(run, "--checkpoint-minutes", "0.0001", iters=400)
    args[args.index("--checkpoint-interval") + 1] = "100000"
    args[args.index("--eval-interval") + 1] = "100000"
    proc = procs.start(args)
    at = procs.wait_for_checkpoint(run, 1, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 0 < at < 400 and at % 5 == 0  # at a log interval, long before the end


# -- 2. one process per run folder ------------------------------------------------------------------------------

@pytest.mark.slow
def test_two_trainings_into_one_folder_the_second_is_refused(procs, train_args, tmp_path):
    run = tmp_path / "run"
    first = procs.start(train_args(run, iters=60))
    procs.wait_until(first, lambda: (run / "run.json").is_file())
    second = subprocess.run([sys.executable, "-m", "archspec", *train_args(run, "--seed", "1", iters=60)],
                            capture_output=True, text=True, timeout=120)
    assert second.returncode == 2
    line = one_line(second.stderr)
    assert "in use by another archspec process" in line and f"pid {first.pid}" in line
    out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    iters = [(x["kind"], x["iter"]) for x in records(run)]
    assert len(iters) == len(set(iters))  # every record once
    assert json.loads((run / "run.json").read_text())["seed"] == 0


@pytest.mark.slow
def test_a_killed_owner_leaves_no_stale_lock(procs, cli, train_args, tmp_path):
    run = tmp_path / "run"
    proc = procs.start(train_args(run, iters=60))
    procs.wait_for_checkpoint(run, 10, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (run / ".archspec.lock").exists()
    r = cli("train", "--resume", "--out", run, "--quiet", "--iters", "60")
    assert r.code == 0, r.err


# -- 3. every flag is checked -----------------------------------------------------------------------------------

@pytest.mark.parametrize("flag, value, expected", [
    ("--iters", "0", "--iters: must be a whole number >= 1, got 0"),
    ("--batch-size", "0", "--batch-size: must be a whole number >= 1, got 0"),
    ("--milestones", "50,10", "--milestones: milestones must increase"),
    ("--momentum", "1.5", "--momentum: must be a number in [0, 1), got 1.5"),
    ("--lr", "-1", "--lr: must be a number > 0"),
    ("--log-interval", "-5", "--log-interval: must be a whole number >= 1"),
    ("--seed", "-1", "--seed: must be a whole number in [0,"),
    ("--checkpoint-minutes", "0", "--checkpoint-minutes: must be a number > 0"),
    ("--workers", "-2", "--workers: must be a whole number >= 0"),
    ("--epochs", "nan", "--epochs: expected a finite number"),
])
def test_bad_train_flags_are_refused_with_the_valid_range(cli, train_args, tmp_path, flag, value, expected):
    run = tmp_path / "run"
    r = cli(*train_args(run, flag, value, iters=10))
    assert r.code == 2 and expected in one_line(r.err), r.err
    assert not run.exists()


def test_milestones_past_the_end_are_refused(cli, train_args, tmp_path):
    r = cli(*train_args(tmp_path / "run", "--milestones", "10,50", iters=40))
    assert r.code == 2 and "schedule length 40 iterations is not longer than the last milestone, 50" in r.err
    assert "the schedule's milestones are [10, 50]" in r.err  # (the user's own: no "come from")


@pytest.mark.parametrize("args, expected", [
    (["eval", "cifar_resnet20", "--checkpoint", "{ck}", "--batch-size", "0"], "--batch-size"),
    (["export", "cifar_resnet20", "--torchscript", "{tmp}/m.pt", "--batch", "0"], "--batch"),
    (["render", "cifar_resnet20", "-o", "{tmp}/x.svg", "--collapse", "-1"], "--collapse"),
    (["summary", "cifar_resnet20", "--depth", "0"], "--depth"),
    (["plot", "{tmp}", "-o", "{tmp}/c.png", "--ymax", "0"], "--ymax"),
])
def test_bad_flags_of_other_commands(cli, tmp_path, args, expected):
    ck = tmp_path / "w.pt"
    ck.write_bytes(b"x")
    r = cli(*[a.format(ck=ck, tmp=tmp_path) for a in args])
    assert r.code == 2 and expected in one_line(r.err)


# -- 4. --resume takes the folder's spec and refuses one that contradicts it -------------------------------------

def _widened_spec(tmp_path: Path, specs_dir: Path, width: int) -> Path:
    """A copy of cifar_resnet.yaml (beside its libraries) with conv1 widened to `width` channels."""
    import shutil

    folder = shutil.copytree(specs_dir, tmp_path / "specs")
    spec = folder / "cifar_resnet.yaml"
    text = spec.read_text()
    assert "out: 16, kernel: 3" in text
    spec.write_text(text.replace("out: 16, kernel: 3", f"out: {width}, kernel: 3", 1))
    return spec


def test_resume_with_an_invalid_edited_spec_reports_its_errors(cli, stopped_run, specs_dir, tmp_path):
    run = stopped_run(tmp_path / "run")
    before = snapshot(run)
    r = cli("train", _widened_spec(tmp_path, specs_dir, 32), "--set", "n=3", "--resume", "--out", run, "--quiet")
    assert r.code == 2 and "error[E4" in r.err, r.err
    assert snapshot(run) == before


def test_resume_with_a_spec_of_another_network_names_the_difference(cli, stopped_run, tmp_path):
    run = stopped_run(tmp_path / "run")
    before = snapshot(run)
    r = cli("train", "cifar_resnet", "--set", "n=5", "--resume", "--out", run, "--quiet")
    assert r.code == 2
    line = one_line(r.err)
    assert "builds another network than the run's" in line and "these options" not in line
    r = cli("train", "cifar_plain20", "--resume", "--out", run, "--quiet")
    assert r.code == 2 and "builds another network" in r.err
    assert snapshot(run) == before
    # the same network written another way is the same run
    r = cli("train", "cifar_resnet", "--set", "n=3", "--resume", "--out", run, "--quiet")
    assert r.code == 0, r.err


def test_resume_names_the_option_the_user_changed(cli, train_args, tmp_path):
    run = tmp_path / "run"
    assert cli(*train_args(run, iters=10)).code == 0
    r = cli("train", "--resume", "--out", run, "--iters", "400")
    assert r.code == 2
    assert "--iters 400 changes the run (schedule.length: 10 in the run, 400 given)" in one_line(r.err)
    r = cli("train", "--resume", "--out", run, "--seed", "3")
    assert r.code == 2 and "--seed 3 changes the run" in r.err
    r = cli("train", "--resume", "--out", run)
    assert r.code == 0 and "nothing left to do" in r.err


def test_an_edited_run_spec_is_refused(cli, stopped_run, tmp_path):
    run = stopped_run(tmp_path / "run")
    spec = run / "spec.yaml"
    spec.write_text(spec.read_text().replace("out: 16", "out: 32", 1))
    r = cli("train", "--resume", "--out", run, "--quiet")
    assert r.code == 2 and "spec.yaml was changed after the run started" in one_line(r.err)


# -- 5. checkpoints know their architecture and their checksum ---------------------------------------------------

def test_a_checkpoint_of_another_architecture_is_refused(cli, cifar_dir, tmp_path):
    plain = tmp_path / "plain"
    args = ["--data-dir", cifar_dir, "--device", "cpu", "--iters", "5", "--batch-size", "8", "--log-interval", "5",
            "--train-size", "100", "--val-size", "20", "--quiet"]
    assert cli("train", "cifar_plain20", "--out", plain, *args).code == 0
    r = cli("eval", "cifar_resnet20", "--checkpoint", plain / "last.pt", "--device", "cpu")
    assert r.code == 2
    line = one_line(r.err)
    assert "holds cifar_plain20, not cifar_resnet20" in line and "layer1.0" in line
    r = cli("export", "cifar_resnet20", "--weights", plain / "best.pt", "--torchscript", tmp_path / "m.pt")
    assert r.code == 2 and "holds cifar_plain20" in r.err and not (tmp_path / "m.pt").exists()
    r = cli("eval", "--checkpoint", plain / "last.pt", "--device", "cpu", "--json")  # the run's own spec
    assert r.code == 0 and json.loads(r.out)["spec"] == "cifar_plain20"


def _flip_middle(path: Path, count: int = 5000) -> None:
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    for k in range(mid, mid + count):
        data[k] ^= 0xFF
    path.write_bytes(bytes(data))


def test_flipped_bytes_are_refused_by_eval_export_and_resume(cli, stopped_run, tmp_path):
    run = stopped_run(tmp_path / "run")
    _flip_middle(run / "last.pt")
    for args in (["eval", "--checkpoint", run / "last.pt", "--device", "cpu"],
                 ["export", "cifar_resnet20", "--weights", run / "last.pt", "--torchscript", tmp_path / "m.pt"],
                 ["train", "--resume", "--out", run, "--quiet"]):
        r = cli(*args)
        assert r.code == 2, (args, r.err)
        line = one_line(r.err)
        assert "last.pt" in line and ("damaged" in line or "cannot read" in line), line
    assert not (tmp_path / "m.pt").exists()


# -- 6. filesystem problems are exit 2 everywhere -------------------------------------------------------------

def test_out_pointing_at_a_file(cli, train_args, tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("mine")
    r = cli(*train_args(f, iters=5))
    assert r.code == 2 and "is a file, not a folder" in one_line(r.err)
    assert f.read_text() == "mine"
    r = cli(*train_args(f / "run", iters=5))
    assert r.code == 2 and "is a file" in one_line(r.err)


def test_read_only_places_are_exit_2_for_every_command(cli, train_args, stopped_run, tmpfs, tmp_path):
    ro = tmpfs(read_only=True)
    run = stopped_run(tmp_path / "run")
    commands = [
        train_args(ro / "run", iters=5),
        ["export", "cifar_resnet20", "--onnx", ro / "m.onnx"],
        ["export", "cifar_resnet20", "--torchscript", ro / "m.pt", "--weights", run / "last.pt"],
        ["render", "cifar_resnet20", "-o", ro / "r.svg"],
        ["plot", run, "-o", ro / "c.png"],
    ]
    for args in commands:
        r = cli(*args)
        assert r.code == 2, (args, r.err)
        assert "read-only file system" in one_line(r.err).lower(), r.err


def test_a_full_disk_during_training_keeps_the_last_checkpoint(cli, train_args, tmpfs):
    disk = tmpfs(size="4m")
    run = disk / "run"
    r = cli(*train_args(run, iters=40))
    assert r.code == 2
    line = one_line(r.err)
    assert "No space left on device" in line and "free some space" in line
    from archspec.runtime import checkpoint

    if (run / "last.pt").exists():  # the last complete checkpoint is whole and verifies
        assert checkpoint.load(run / "last.pt")["state"]["iteration"] > 0
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]
    assert json.loads((run / "run.json").read_text())["status"] == "failed"


# -- 7. a folder of the user's own files is never written into --------------------------------------------------

def test_a_folder_of_someone_elses_files_is_left_alone(cli, train_args, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "spec.yaml").write_text("my notes")
    (mine / "run.json").write_text('{"mine": true}')
    r = cli(*train_args(mine, iters=5))
    assert r.code == 2
    assert "holds files that no archspec run wrote (run.json, spec.yaml)" in one_line(r.err)
    assert snapshot(mine) == {"spec.yaml": b"my notes", "run.json": b'{"mine": true}'}
    r = cli("train", "--resume", "--out", mine)
    assert r.code == 2 and "holds no archspec run" in r.err
    assert snapshot(mine) == {"spec.yaml": b"my notes", "run.json": b'{"mine": true}'}


def test_an_empty_folder_is_fine_and_a_refused_start_leaves_no_folder(cli, train_args, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli(*train_args(empty, iters=5)).code == 0
    r = cli("train", "cifar_resnet20", "--out", tmp_path / "new", "--data-dir", tmp_path / "nothing", "--quiet")
    assert r.code == 2 and not (tmp_path / "new").exists()


# -- 8. atomic writes, and temporaries of killed writes are cleaned up -------------------------------------------

def test_atomic_writes_flush_the_file_and_the_folder(tmp_path, monkeypatch):
    from archspec.lang import files

    synced = []
    real = os.fsync
    monkeypatch.setattr(files.os, "fsync", lambda fd: (synced.append(os.readlink(f"/proc/self/fd/{fd}")),
                                                      real(fd))[1])
    files.write_text(tmp_path / "a.txt", "hello")
    assert (tmp_path / "a.txt").read_text() == "hello"
    assert any(s.startswith(str(tmp_path / ".a.txt.")) for s in synced)  # the data, before the rename
    assert str(tmp_path) in synced  # the rename itself


def test_best_checkpoint_is_written_atomically_and_verifies(cli, train_args, tmp_path):
    run = tmp_path / "run"
    assert cli(*train_args(run, iters=20)).code == 0
    from archspec.runtime import checkpoint

    best = checkpoint.load(run / "best.pt")
    assert best["arch"]["name"] == "cifar_resnet20" and best["iteration"] == 20


def test_stale_temporaries_are_removed_at_the_next_start(cli, stopped_run, tmp_path):
    run = stopped_run(tmp_path / "run")
    for name in (".last.pt.k2j4h1ab.tmp", ".best.pt.zz81kq0p.tmp", ".run.json.a1b2c3d4.tmp"):
        (run / name).write_bytes(b"half a checkpoint")
    (run / ".my.own.notes.tmp").write_text("keep")  # not a temporary of the run's files
    r = cli("train", "--resume", "--out", run, "--quiet")
    assert r.code == 0, r.err
    names = {p.name for p in run.iterdir()}
    assert not {n for n in names if n.endswith(".tmp") and n != ".my.own.notes.tmp"}
    assert ".my.own.notes.tmp" in names


# -- 9. the run folder remembers the data ------------------------------------------------------------------------

def test_eval_and_resume_without_data_dir(cli, stopped_run, tmp_path):
    run = stopped_run(tmp_path / "run")
    r = cli("train", "--resume", "--out", run, "--quiet")
    assert r.code == 0, r.err
    r = cli("eval", "--checkpoint", run / "best.pt", "--device", "cpu", "--split", "val", "--json")
    assert r.code == 0, r.err
    result = json.loads(r.out)
    best = min((x for x in records(run) if x["kind"] == "val"), key=lambda x: x["err"])
    assert result["images"] == 200 and abs(result["err"] - best["err"]) < 1e-9


# -- 10. what a resumed or stopped run prints and logs -----------------------------------------------------------

def test_images_per_second_counts_only_this_process_steps():
    from archspec.runtime.train import Window

    w = Window(torch.device("cpu"))
    for _ in range(3):  # steps before a Ctrl-C, saved with the checkpoint
        w.add(torch.tensor(1.0), torch.zeros(4, 10), torch.zeros(4, dtype=torch.long))
    resumed = Window(torch.device("cpu"))
    resumed.load(w.state())
    resumed.add(torch.tensor(1.0), torch.zeros(4, 10), torch.zeros(4, dtype=torch.long))
    assert resumed.images == 16 and resumed.steps == 4  # the loss and error window continues...
    assert resumed.timed_images == 4  # ...but speed counts only what this process did since it started


def test_images_per_second_after_a_resume_is_not_inflated(cli, stopped_run, tmp_path):
    run = stopped_run(tmp_path / "run")
    stopped_at = json.loads((run / "run.json").read_text())["checkpoint_iteration"]
    r = cli("train", "--resume", "--out", run, "--quiet")
    assert r.code == 0, r.err
    # this process's windows only: the first one after the restart (which would count the saved steps of its
    # window as if they had been timed here) against the others, measured minutes apart from the first run's
    speeds = [x["images_per_s"] for x in records(run) if x["kind"] == "train" and x["iter"] > stopped_at]
    first, rest = speeds[0], sorted(speeds[1:])
    assert len(rest) >= 3 and first < 2 * rest[len(rest) // 2], speeds


@pytest.mark.slow
def test_ctrl_c_message_once_and_log_holds_what_the_run_printed(procs, train_args, tmp_path):
    run = tmp_path / "run"
    args = [a for a in train_args(run, iters=100) if a != "--quiet"]
    proc = procs.start(args)
    procs.wait_for_checkpoint(run, 20, proc)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert err.count("stopped at iteration") == 1, err
    log = (run / "log.txt").read_text()
    assert "iteration 20: val error" in log and "iteration 20: test error" in log
    assert "interrupted: stopped at iteration" in log
    r = subprocess.run([sys.executable, "-m", "archspec", "train", "--resume", "--out", str(run), "--quiet",
                        "--iters", "100"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    log = (run / "log.txt").read_text()
    assert "cifar_resnet20: test error" in log and "after 100 iterations" in log  # the final summary


@pytest.mark.slow
def test_ctrl_c_during_an_evaluation_stops_it_at_once_and_resume_finishes_it(procs, train_args, write_cifar,
                                                                             tmp_path):
    """Before: Ctrl-C during the periodic evaluation was not acknowledged until every split was evaluated.
    Now it is acknowledged at once, the evaluation stops at the next batch, the run ends as interrupted (130,
    resumable) and `--resume` evaluates the rest first, so the run records what an uninterrupted one records.
    The stop falls at the run's last iteration here: a run stopped there is not taken for a finished one."""
    data = write_cifar(tmp_path / "data", test_images=1200)  # the test split takes seconds on a CPU
    run = tmp_path / "run"
    args = train_args(run, iters=20)
    args[args.index("--data-dir") + 1] = str(data)
    proc = procs.start(args)
    procs.wait_until(proc, lambda: "iteration 20: val error" in _text(run / "log.txt"), what="the run's evaluation")
    proc.send_signal(signal.SIGINT)  # the test split is being evaluated now
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "archspec: stopping (Ctrl-C): the evaluation at iteration 20 ends here" in err, err
    assert err.count("stopped at iteration 20 of 20") == 1 and "Traceback" not in err
    assert [(r["kind"], r["iter"]) for r in records(run) if r["kind"] != "train"] == [("val", 20)]  # cut short
    assert json.loads((run / "run.json").read_text())["status"] == "interrupted"
    r = subprocess.run([sys.executable, "-m", "archspec", "train", "--resume", "--out", str(run), "--quiet"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert [(r["kind"], r["iter"]) for r in records(run) if r["kind"] != "train"] == [("val", 20), ("test", 20)]
    log = (run / "log.txt").read_text()
    assert log.count("iteration 20: test error") == 1 and "cifar_resnet20: test error" in log


def _text(path: Path) -> str:
    return path.read_text() if path.is_file() else ""


def test_an_evaluation_asked_to_stop_ends_at_the_next_batch():
    import archspec
    from archspec.runtime.data import DataConfig, make_data
    from archspec.runtime.evaluate import evaluate

    model = archspec.build("cifar_resnet20").train()
    data = make_data(DataConfig(name="synthetic", root=None, batch_size=8, seed=0, device=torch.device("cpu"),
                                image_size=32, classes=10))
    calls = []

    def stop() -> bool:
        calls.append(1)
        return len(calls) > 2

    assert evaluate(model, data, data.splits[-1], stop=stop) is None
    assert len(calls) == 3 and model.training  # two batches, then the stop; the model's mode is restored
    assert evaluate(model, data, data.splits[-1], stop=lambda: False)["images"] > 16


# -- found by trying it as a new user -----------------------------------------------------------------------------

def test_a_run_whose_last_checkpoint_went_missing_is_not_taken_for_a_failed_start(cli, stopped_run, train_args,
                                                                                    tmp_path):
    run = stopped_run(tmp_path / "run")
    (run / "last.pt").unlink()
    before = snapshot(run)
    for args in (["train", "--resume", "--out", run, "--quiet"], train_args(run, iters=80)):
        r = cli(*args)
        assert r.code == 2 and "records a checkpoint at iteration" in one_line(r.err) and "missing" in r.err
        assert snapshot(run) == before  # best.pt and the metrics are still there


def test_resume_from_weights_only_or_another_runs_checkpoint_is_refused(cli, stopped_run, train_args, cifar_dir,
                                                                        tmp_path):
    run = stopped_run(tmp_path / "run")
    other = tmp_path / "other"
    assert cli(*train_args(other, iters=20)).code == 0  # a cifar_resnet20 run with a best.pt
    (run / "last.pt").write_bytes((other / "best.pt").read_bytes())
    r = cli("train", "--resume", "--out", run, "--quiet")
    assert r.code == 2 and "holds weights only" in one_line(r.err)
    plain = tmp_path / "plain"
    assert cli("train", "cifar_plain20", "--out", plain, "--data-dir", cifar_dir, "--device", "cpu", "--iters", "5",
               "--batch-size", "8", "--log-interval", "5", "--train-size", "100", "--val-size", "20",
               "--quiet").code == 0
    (run / "last.pt").write_bytes((plain / "last.pt").read_bytes())
    r = cli("train", "--resume", "--out", run)  # not quiet: still one line, nothing printed before it
    assert r.code == 2 and "not this run's own last.pt" in one_line(r.err)


def test_export_never_writes_over_its_own_weights(cli, stopped_run, tmp_path):
    run = stopped_run(tmp_path / "run")
    before = (run / "last.pt").read_bytes()
    r = cli("export", "cifar_resnet20", "--weights", run / "last.pt", "--torchscript", run / "last.pt")
    assert r.code == 2 and "is the --weights file" in one_line(r.err)
    assert (run / "last.pt").read_bytes() == before
    r = cli("export", "cifar_resnet20", "--torchscript", tmp_path / "m", "--program", tmp_path / "m")
    assert r.code == 2 and "the same path is named twice" in r.err


def test_export_onto_a_full_disk_is_one_line_and_leaves_nothing(cli, tmpfs):
    disk = tmpfs(size="256k")
    r = cli("export", "cifar_resnet20", "--torchscript", disk / "m.pt")
    assert r.code == 2 and "No space left on device" in one_line(r.err)
    assert list(disk.iterdir()) == []


def test_out_of_memory_is_exit_2(cli, tmp_path):
    r = cli("export", "cifar_resnet20", "--torchscript", tmp_path / "m.pt", "--batch", str(10**12))
    assert r.code == 2 and "out of memory" in one_line(r.err) and "--batch" in r.err


def test_a_refused_start_leaves_no_lock_in_someone_elses_folder(cli, train_args, tmp_path):
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "notes.txt").write_text("x")
    assert cli(*train_args(theirs, iters=5)).code == 2
    assert sorted(p.name for p in theirs.iterdir()) == ["notes.txt"]


def test_a_checkpoint_is_never_of_broken_weights(cli, train_args, tmp_path, monkeypatch):
    import archspec.runtime.train as loop

    real = loop._plain_step

    def poisoned(model, optimizer, x, y, *rest):  # the 10th update breaks the weights; its loss was fine
        out = real(model, optimizer, x, y, *rest)
        poisoned.calls += 1
        if poisoned.calls == 10:
            with torch.no_grad():
                next(iter(model.parameters())).fill_(float("nan"))
        return out

    poisoned.calls = 0
    monkeypatch.setattr(loop, "_plain_step", poisoned)
    run = tmp_path / "run"
    r = cli(*train_args(run, iters=40))
    assert r.code == 3 and "the weights became NaN or infinite" in r.err
    assert not (run / "last.pt").exists()  # the checkpoint due at iteration 10 was not written
