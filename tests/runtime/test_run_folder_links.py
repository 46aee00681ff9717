"""Issue "Hostile input", findings 2 and 3: archspec never writes a run folder's own files through a symbolic
link. A folder holding only a linked `.archspec.lock` made `train --out` write the lock over the link's target; a
linked `log.txt` made `--resume` append to any file. Both are refused before anything is written, and appends
open with O_NOFOLLOW (a link planted later is refused too)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def test_a_linked_lock_in_an_empty_run_folder_is_refused_and_its_target_kept(cli, train_args, tmp_path):
    target = tmp_path / "precious.txt"
    target.write_text("keep me\n")
    run = tmp_path / "evil1"
    run.mkdir()
    (run / ".archspec.lock").symlink_to(target)
    r = cli(*train_args(run, iters=5))
    assert r.code == 2 and ".archspec.lock is a symbolic link" in r.err
    assert target.read_text() == "keep me\n"
    assert sorted(p.name for p in run.iterdir()) == [".archspec.lock"]


@pytest.mark.slow
def test_a_linked_log_in_a_run_folder_is_refused_on_resume_and_its_target_kept(cli, stopped_run, tmp_path):
    run = stopped_run(tmp_path / "run")
    target = tmp_path / "bashrc"
    target.write_text("# mine\n")
    (run / "log.txt").unlink()
    (run / "log.txt").symlink_to(target)
    r = cli("train", "--resume", "--out", run, "--quiet")
    assert r.code == 2 and "log.txt is a symbolic link" in r.err
    assert target.read_text() == "# mine\n"


def test_appending_never_follows_a_link(tmp_path):
    from archspec.lang.files import open_append

    target = tmp_path / "target"
    target.write_text("x")
    link = tmp_path / "log.txt"
    link.symlink_to(target)
    with pytest.raises(OSError):
        open_append(link)
    assert target.read_text() == "x"
    with open_append(tmp_path / "plain.txt") as f:
        f.write("a\n")
    with open_append(tmp_path / "plain.txt") as f:
        f.write("b\n")
    assert (tmp_path / "plain.txt").read_text() == "a\nb\n"
    assert not os.path.islink(tmp_path / "plain.txt")
