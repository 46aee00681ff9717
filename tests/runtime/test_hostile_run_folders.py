"""Issue "Hostile input", finding 13: damaged run folders. A metrics.jsonl line that is not UTF-8, nested 100,000
deep or holding a 401-digit `iter` crashed `archspec plot` and `train --resume` (UnicodeDecodeError,
RecursionError, OverflowError: exit 1, "internal error"); a run.json whose `seed` is 2**80 or whose `spec` is null
crashed `--resume` the same way, and a `.archspec.lock` that is a named pipe (FIFO) crashed `train`.

Now a damaged metrics.jsonl line is skipped as a torn one always was, but said once (`plot` on stderr, `--resume`
in log.txt); every field of run.json that archspec reads is checked before use (RUN_SCHEMA), and a damaged one is
one line, exit 2, naming the file, the field and the fix; a run folder's own file that is not a regular file (a
FIFO lock) is refused in one line before anything is written. A refusal changes nothing in the folder."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from limits import time_limit  # tests/ is on pytest's pythonpath

NON_UTF8 = b'{"kind": "train", "iter": 5, "loss": "\xff\xfe"}'
DEEP = b"[" * 100_000 + b"]" * 100_000
HUGE_ITER = b'{"kind": "train", "iter": ' + b"9" * 401 + b"}"
LONG_INT = b'{"kind": "train", "iter": ' + b"9" * 5000 + b"}"  # json.loads: ValueError, not JSONDecodeError
DAMAGED_LINES = {"non-utf8": NON_UTF8, "deep": DEEP, "huge-iter": HUGE_ITER, "long-int": LONG_INT,
                 "negative-iter": b'{"kind": "train", "iter": -5}', "float-iter": b'{"kind": "train", "iter": 5.5}',
                 "big-value": b'{"kind": "train", "iter": 5, "train_err": ' + b"9" * 30 + b"}",
                 "not-a-record": b"[1, 2, 3]", "surrogate": b'{"kind": "val", "iter": 5, "loss": "\\ud800"}'}


def snapshot(run: Path) -> dict[str, bytes]:
    """Every file of the folder and its bytes; the lock aside (each start rewrites its holder, and a folder found
    to hold no run is left without one), and a file that is not a regular one as its kind."""
    return {p.name: p.read_bytes() if p.is_file() else b"<not a file>"
            for p in sorted(run.iterdir()) if p.name != ".archspec.lock"}


def one_line(err: str) -> str:
    """The one line of stderr, without the `archspec: error: ` before a refusal."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err and "internal error" not in err, err
    return lines[0].removeprefix("archspec: error: ")


def insert_line(metrics: Path, after: int, line: bytes) -> None:
    """Put `line` into metrics.jsonl after its first `after` lines."""
    lines = metrics.read_bytes().splitlines(keepends=True)
    metrics.write_bytes(b"".join(lines[:after]) + line + b"\n" + b"".join(lines[after:]))


def edit_run_json(run: Path, **fields) -> None:
    info = json.loads((run / "run.json").read_text())
    info.update(fields)
    (run / "run.json").write_text(json.dumps(info, indent=2) + "\n")


# -- metrics.jsonl: damaged lines are skipped, and said -----------------------------------------------------------

@pytest.mark.parametrize("kind", sorted(DAMAGED_LINES))
def test_plot_skips_a_damaged_metrics_line_and_says_so_once(cli, finished_run, tmp_path, kind):
    pytest.importorskip("matplotlib")
    metrics = finished_run / "metrics.jsonl"
    insert_line(metrics, 2, DAMAGED_LINES[kind])
    before = snapshot(finished_run)
    with time_limit(120, "plot"):
        r = cli("plot", finished_run, "--out", tmp_path / "x.png")
    assert r.code == 0, r.err
    assert one_line(r.err) == f"note: {metrics}: 1 damaged line skipped (first: line 3)"
    assert (tmp_path / "x.png").stat().st_size > 1000
    assert snapshot(finished_run) == before


def test_plot_counts_every_damaged_line_and_names_the_first(cli, finished_run, tmp_path):
    pytest.importorskip("matplotlib")
    metrics = finished_run / "metrics.jsonl"
    insert_line(metrics, 1, HUGE_ITER)
    insert_line(metrics, 4, NON_UTF8)
    insert_line(metrics, 5, DEEP)
    r = cli("plot", finished_run, "--out", tmp_path / "x.png")
    assert r.code == 0, r.err
    assert one_line(r.err) == f"note: {metrics}: 3 damaged lines skipped (first: line 2)"


def test_plot_of_a_run_whose_every_line_is_damaged_is_one_line(cli, finished_run, tmp_path):
    pytest.importorskip("matplotlib")
    metrics = finished_run / "metrics.jsonl"
    metrics.write_bytes(NON_UTF8 + b"\n" + DEEP + b"\n")
    r = cli("plot", finished_run, "--out", tmp_path / "x.png")
    assert r.code == 2
    assert one_line(r.err) == f"{metrics} has no training records yet (and 2 damaged lines, the first line 1)"
    assert not (tmp_path / "x.png").exists()


def test_a_torn_last_line_and_blank_lines_are_skipped_silently(cli, finished_run, tmp_path):
    pytest.importorskip("matplotlib")
    metrics = finished_run / "metrics.jsonl"
    insert_line(metrics, 1, b"")
    metrics.write_bytes(metrics.read_bytes() + b'{"kind": "train", "it')  # a write cut short by a kill
    r = cli("plot", finished_run, "--out", tmp_path / "x.png")
    assert r.code == 0 and r.err == "", r.err


def test_reading_metrics_never_raises_on_a_hostile_line(tmp_path):
    from archspec.runtime.metrics import decode_record, read_metrics, scan_metrics

    for line in DAMAGED_LINES.values():
        assert decode_record(line) is None
    assert decode_record(LONG_INT.decode()) is None  # text too: a 5,000-digit integer is a ValueError in json
    assert decode_record('{"kind": "val", "iter": 20, "err": 9.5}') == {"kind": "val", "iter": 20, "err": 9.5}
    path = tmp_path / "metrics.jsonl"
    path.write_bytes(b'{"kind": "train", "iter": 5}\n' + b"\n".join(DAMAGED_LINES.values()) + b"\n")
    assert read_metrics(path) == [{"kind": "train", "iter": 5}]
    assert scan_metrics(path).damaged == list(range(2, 2 + len(DAMAGED_LINES)))


@pytest.mark.slow
def test_resume_drops_damaged_metrics_lines_and_logs_it(cli, stopped_run, tmp_path):
    run = stopped_run(tmp_path / "run")
    metrics = run / "metrics.jsonl"
    kept = metrics.read_bytes().splitlines()[:2]  # records before the checkpoint (iterations 5 and 10)
    insert_line(metrics, 1, NON_UTF8)
    insert_line(metrics, 2, DEEP)
    insert_line(metrics, 3, HUGE_ITER)
    with time_limit(300, "the resumed run"):
        r = cli("train", "--resume", "--out", run, "--quiet")
    assert r.code == 0, r.err
    assert f"{metrics}: 3 damaged lines dropped (first: line 2)" in (run / "log.txt").read_text()
    lines = metrics.read_bytes().splitlines()
    assert lines[:2] == kept and all(json.loads(line)["iter"] < 10**6 for line in lines)
    assert json.loads((run / "run.json").read_text())["status"] == "finished"


# -- run.json: every field archspec reads is checked ---------------------------------------------------------------

DAMAGED_FIELDS = [
    ({"seed": 2**80}, "`seed` is 1208925819614629174706176"),
    ({"seed": -1}, "`seed` is -1"),
    ({"seed": "0"}, '`seed` is "0"'),
    ({"seed": True}, "`seed` is true"),
    ({"spec": None}, "`spec` is null"),
    ({"spec": {"name": "x", "sha256": 7}}, "`spec.sha256` is 7"),
    ({"recipe_sha256": ["a"]}, '`recipe_sha256` is ["a"]'),
    ({"options": "all"}, '`options` is "all"'),
    ({"options": {"bf16": "yes"}}, '`options.bf16` is "yes"'),
    ({"data_dir": 5}, "`data_dir` is 5"),
    ({"data_dir": "/data\u0000/cifar"}, "`data_dir` is"),
    ({"resumed": 2**64}, "`resumed` is 18446744073709551616"),
    ({"status": ["finished"]}, '`status` is ["finished"]'),
    ({"status": "done"}, '`status` is "done"'),
    ({"checkpoint_iteration": "10"}, '`checkpoint_iteration` is "10"'),
    ({"spec_recipe": 3}, "`spec_recipe` is 3"),
]


@pytest.mark.parametrize("fields, shown", DAMAGED_FIELDS, ids=[next(iter(f)) + str(i) for i, (f, _) in
                                                                  enumerate(DAMAGED_FIELDS)])
def test_resume_refuses_a_damaged_run_json_field_in_one_line(cli, stopped_run, tmp_path, fields, shown):
    run = stopped_run(tmp_path / "run")
    edit_run_json(run, **fields)
    before = snapshot(run)
    with time_limit(120, "the refusal"):
        r = cli("train", "--resume", "--out", run, "--quiet")
    assert r.code == 2, r.err
    line = one_line(r.err)
    assert line.startswith(f"{run / 'run.json'} is damaged: {shown}")
    assert line.endswith("restore it from a copy, or start a new run in another folder")
    assert snapshot(run) == before


def test_resume_refuses_a_run_json_without_a_seed(cli, stopped_run, tmp_path):
    run = stopped_run(tmp_path / "run")
    info = json.loads((run / "run.json").read_text())
    del info["seed"]
    (run / "run.json").write_text(json.dumps(info))
    before = snapshot(run)
    r = cli("train", "--resume", "--out", run, "--quiet")
    assert r.code == 2
    assert one_line(r.err).startswith(f"{run / 'run.json'} is damaged: it has no `seed`")
    assert snapshot(run) == before


@pytest.mark.parametrize("text", [b"[" * 100_000 + b"]" * 100_000, b'{"format": "archspec-run", "x": "\xff"}',
                                  b'{"format": "archspec-run", "seed": ' + b"9" * 5000 + b"}"])
def test_an_unreadable_run_json_is_one_line(cli, stopped_run, tmp_path, text):
    run = stopped_run(tmp_path / "run")
    (run / "run.json").write_bytes(text)
    before = snapshot(run)
    r = cli("train", "--resume", "--out", run, "--quiet")
    assert r.code == 2
    assert str(run) in one_line(r.err)
    assert snapshot(run) == before


def test_a_new_run_is_refused_in_one_line_beside_a_damaged_run_json(cli, train_args, stopped_run, tmp_path):
    run = stopped_run(tmp_path / "run")
    edit_run_json(run, status={"a": 1})  # describe() once hashed it
    before = snapshot(run)
    r = cli(*train_args(run, iters=5))
    assert r.code == 2 and f"{run} holds a run" in one_line(r.err)
    assert snapshot(run) == before
    (run / "last.pt").unlink()
    edit_run_json(run, status="interrupted", checkpoint_iteration="ten")  # `{at:,}` once formatted it
    before = snapshot(run)
    r = cli(*train_args(run, iters=5))
    assert r.code == 2 and 'run.json records a checkpoint at iteration "ten" but' in one_line(r.err)
    assert snapshot(run) == before
    r = cli("train", "--resume", "--out", run, "--quiet")  # resuming checks run.json first
    assert r.code == 2 and 'run.json is damaged: `checkpoint_iteration` is "ten"' in one_line(r.err)
    assert snapshot(run) == before


def test_marker_still_reads_a_damaged_run_json_and_info_refuses_it(stopped_run, tmp_path):
    from archspec.runtime.rundir import RunDir, RunDirError

    run = stopped_run(tmp_path / "run")
    # argv bytes that are not UTF-8 come as lone surrogates, which run.json holds: such a run.json is sound
    edit_run_json(run, command="archspec train x --out caf\udce9")
    assert RunDir(run).info()["seed"] == 0
    edit_run_json(run, seed=2**80)
    assert RunDir(run).marker()["seed"] == 2**80
    with pytest.raises(RunDirError, match="is damaged: `seed` is 1208925819614629174706176"):
        RunDir(run).info()


def test_plot_names_a_run_by_its_folder_when_run_json_is_hostile(cli, finished_run, tmp_path):
    pytest.importorskip("matplotlib")
    (finished_run / "run.json").write_bytes(b'{"spec": ' * 100_000 + b"1" + b"}" * 100_000)
    r = cli("plot", finished_run, "--out", tmp_path / "x.png")
    assert r.code == 0 and r.err == "", r.err
    (finished_run / "run.json").unlink()
    os.mkfifo(finished_run / "run.json")  # reading it would wait for a writer for ever
    with time_limit(60, "plot beside a FIFO run.json"):
        r = cli("plot", finished_run, "--out", tmp_path / "y.png")
    assert r.code == 0 and r.err == "", r.err


# -- a lock file that is not a file ---------------------------------------------------------------------------------

def test_a_fifo_lock_in_an_empty_folder_is_refused_in_one_line(cli, train_args, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    os.mkfifo(run / ".archspec.lock")
    with time_limit(60, "train beside a FIFO lock"):
        r = cli(*train_args(run, iters=5))
    assert r.code == 2
    assert one_line(r.err).startswith(f"{run / '.archspec.lock'} is a named pipe (FIFO), not a regular file")
    assert [p.name for p in run.iterdir()] == [".archspec.lock"] and (run / ".archspec.lock").is_fifo()


@pytest.mark.parametrize("name, kind", [(".archspec.lock", "fifo"), ("metrics.jsonl", "fifo"), ("last.pt", "folder")])
def test_a_run_file_that_is_not_a_regular_file_is_named_on_resume_and_left_alone(cli, stopped_run, tmp_path, name,
                                                                                  kind):
    """A named pipe in place of the lock or metrics.jsonl is refused before it is read (never waited on); last.pt
    as a folder (finding 22) was reported as "missing" ("restore it"), which it is not."""
    run = stopped_run(tmp_path / "run")
    (run / name).unlink()
    os.mkfifo(run / name) if kind == "fifo" else (run / name).mkdir()
    before = snapshot(run)
    with time_limit(60, f"resume beside a {kind} {name}"):
        r = cli("train", "--resume", "--out", run, "--device", "cpu", "--quiet")
    assert r.code == 2, r.err
    line = one_line(r.err)
    what = "a named pipe (FIFO)" if kind == "fifo" else "a folder"
    assert line.startswith(f"{run / name} is {what}, not a regular file") and "missing" not in line, line
    assert snapshot(run) == before
    assert (run / name).is_fifo() if kind == "fifo" else (run / name).is_dir() and not any((run / name).iterdir())


def test_a_run_folder_whose_name_is_not_utf8_trains_and_logs(cli, train_args, tmp_path):
    """A folder name of other bytes (`caf\\xe9`) crashed the log (UnicodeEncodeError, exit 1): it is written
    escaped, and the run goes on."""
    run = tmp_path / os.fsdecode(b"caf\xe9")
    r = cli(*train_args(run, iters=2))
    assert r.code == 0, r.err
    assert "caf\\udce9" in (run / "log.txt").read_text(encoding="utf-8")
