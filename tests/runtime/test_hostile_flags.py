"""Issue "Hostile input", finding 12: a batch larger than the training set was an IndexError (and a failed run
folder); a 20-digit batch a multi-line C++ stack. Both are one line, exit 2, and no run folder is left."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("batch", ["1001", "99999999999999999999"])
def test_a_batch_larger_than_the_training_set_is_one_line_and_leaves_no_run(cli, train_args, tmp_path, batch):
    run = tmp_path / "run"
    args = [a for a in train_args(run, iters=2)]
    args[args.index("--batch-size") + 1] = batch
    r = cli(*args)
    assert r.code == 2, r.err
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and "is larger than the training set (1,000 images): lower --batch-size" in lines[0]
    assert not run.exists()


def test_a_resumed_run_keeps_its_checkpoint_interval_and_a_new_one_holds_from_there(cli, stopped_run, tmp_path):
    """Finding 22: `--checkpoint-interval` was dropped on `--resume` (the run went back to the default, every
    evaluation); it is kept in run.json like the run's other options, and one given on --resume is said and kept."""
    import json

    run = stopped_run(tmp_path / "run")  # started with --checkpoint-interval 10 (evaluations every 20)
    assert json.loads((run / "run.json").read_text())["checkpointing"] == {"interval": 10, "minutes": 10.0}
    r = cli("train", "--resume", "--out", str(run), "--device", "cpu", "--quiet", "--checkpoint-interval", "5")
    assert r.code == 0, r.err
    log = (run / "log.txt").read_text()
    assert "--checkpoint-interval 5 from here on (the run started with 10)" in log
    assert "checkpoints: every 5 iterations" in log
    assert json.loads((run / "run.json").read_text())["checkpointing"]["interval"] == 5


def test_a_resume_without_the_flag_checkpoints_as_the_run_started(cli, stopped_run, tmp_path):
    run = stopped_run(tmp_path / "run")
    r = cli("train", "--resume", "--out", str(run), "--device", "cpu", "--quiet")
    assert r.code == 0, r.err
    resumed = (run / "log.txt").read_text().split("resumed from", 1)[1]
    assert "checkpoints: every 10 iterations" in resumed  # not every evaluation (20), the default
