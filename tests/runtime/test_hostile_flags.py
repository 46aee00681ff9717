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
