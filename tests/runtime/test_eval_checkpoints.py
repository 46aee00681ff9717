"""What `archspec eval --checkpoint` takes and says, and what `archspec train` says with nothing to train:
a run folder stands for its best.pt (else its last.pt), an exported network is named as such, and the result
says which iteration (and epoch) the checkpoint is from."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")


def test_train_with_nothing_to_train_says_to_give_a_spec(cli):
    """Before: `archspec train` said "give the run folder to resume: --out RUN", as if resuming were the point."""
    r = cli("train")
    assert r.code == 2
    assert r.err.strip() == ("archspec: error: say what to train: `archspec train SPEC` (a spec file, or a shipped "
                             "spec's name: `archspec list`), or continue a run with `archspec train --resume --out RUN`")
    r = cli("train", "--resume")
    assert r.code == 2 and r.err.strip() == ("archspec: error: --resume continues the run in a folder: name it "
                                             "(`archspec train --resume --out RUN`)")
