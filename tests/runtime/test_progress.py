"""The training progress bar (runtime.metrics.Progress, drawn by tqdm): on a terminal it shows iteration/total,
loss, lr, error, images/s, elapsed and ETA, redrawn in place; messages land on lines of their own above it; a
redirected stream gets one plain line per log interval (no carriage returns, no escape codes); a disabled one gets
nothing; a resumed run starts the bar (and the ETA's clock) at its iteration; the training loop closes the bar on
every way out."""

from __future__ import annotations

import io
import re

import pytest

from archspec.runtime import metrics
from archspec.runtime.metrics import Progress


class FakeTTY(io.StringIO):
    """A terminal as far as Progress and tqdm can tell (no size: tqdm draws a bar of its default width)."""

    def isatty(self) -> bool:
        return True


def screen(text: str) -> list[str]:
    """The lines a terminal shows after `text`: a carriage return moves back to column 0 and what follows
    overwrites; trailing blanks are dropped."""
    shown = []
    for line in text.split("\n"):
        row: list[str] = []
        col = 0
        for part in re.split(r"(\r)", line):
            if part == "\r":
                col = 0
                continue
            row[col:col + len(part)] = part
            col += len(part)
        shown.append("".join(row).rstrip())
    return shown


class FakeClock:
    """Seconds that move only when told to: tqdm's clock and Progress's own (for the plain lines)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self.now = 1000.0
        monkeypatch.setattr("tqdm.std.time", lambda: self.now)
        monkeypatch.setattr(metrics.time, "perf_counter", lambda: self.now)


def live_bars() -> int:
    from tqdm import tqdm

    return len(getattr(tqdm, "_instances", ()))


def test_the_bar_shows_iteration_total_loss_lr_error_speed_and_eta(monkeypatch):
    clock = FakeClock(monkeypatch)
    out = FakeTTY()
    p = Progress(64000, stream=out)
    p.begin(0)
    clock.now += 60
    p.update(1200, 0.54321, 0.1, 12.345, 3021.4)
    last = screen(out.getvalue())[-1]
    assert "1,200/64,000" in last and "loss 0.5432" in last and "lr 0.1" in last and "err 12.35%" in last
    assert "3,021 img/s" in last
    assert "[01:00<52:20" in last  # elapsed < ETA: 62,800 iterations to go at 20 per second
    assert "\r" in out.getvalue() and "\n" not in out.getvalue()  # redrawn in place
    p.end()


def test_a_message_mid_run_gets_a_line_of_its_own_and_the_bar_comes_back_below_it(monkeypatch):
    clock = FakeClock(monkeypatch)
    out = FakeTTY()
    p = Progress(400, stream=out)
    p.begin(0)
    clock.now += 10
    p.update(100, 1.5, 0.1, 40.0, 500.0)
    p.message("iteration 100: val error 38.20% (best)")
    clock.now += 10
    p.update(200, 1.25, 0.1, 30.0, 500.0)
    p.end()
    lines = screen(out.getvalue())
    assert lines[0] == "iteration 100: val error 38.20% (best)"  # not glued to the bar, not overwritten by it
    assert "200/400" in lines[1] and "loss 1.2500" in lines[1]
    assert lines[2:] == [""]  # end: the bar stays, then a newline
    assert out.getvalue().endswith("\n")


def test_end_closes_the_bar_once_and_messages_after_it_are_plain_lines():
    out = FakeTTY()
    before = live_bars()
    p = Progress(10, stream=out)
    p.begin(0)
    p.update(5, 1.0, 0.1, 50.0, 100.0)
    assert live_bars() == before + 1
    p.end()
    assert live_bars() == before
    drawn = out.getvalue()
    p.end()
    p.message("done")
    assert out.getvalue() == drawn + "done\n"


@pytest.mark.parametrize("make", [FakeTTY, io.StringIO], ids=["terminal", "file"])
def test_a_disabled_progress_writes_nothing_but_the_messages_it_must(make):
    stream = make()
    p = Progress(100, stream=stream, enabled=False)
    p.begin(0)
    p.update(50, 1.0, 0.1, 10.0, 100.0)
    p.message("only when shown")
    p.end()
    assert stream.getvalue() == ""
    p.message("archspec: stopping (Ctrl-C)", always=True)
    assert stream.getvalue() == "archspec: stopping (Ctrl-C)\n"


def test_a_stream_that_is_not_a_terminal_gets_one_plain_line_per_log_interval(monkeypatch):
    clock = FakeClock(monkeypatch)
    out = io.StringIO()
    p = Progress(64000, stream=out)
    p.begin(0)
    clock.now += 60
    p.update(1200, 0.54321, 0.1, 12.345, 3021.4)
    p.message("iteration 1,200: val error 50.00%")
    clock.now += 60
    p.update(2400, 0.5, 0.1, 12.0, 3000.0)
    p.end()
    text = out.getvalue()
    assert "\r" not in text and "\x1b" not in text  # a log, not a drawing
    lines = text.splitlines()
    assert len(lines) == 3 and text.endswith("\n")
    assert "1,200/64,000" in lines[0] and "loss 0.5432" in lines[0] and "err 12.35%" in lines[0]
    assert "3,021 img/s" in lines[0] and "[01:00<52:20" in lines[0]
    assert lines[1] == "iteration 1,200: val error 50.00%"
    assert "2,400/64,000" in lines[2] and "[02:00<51:20" in lines[2]


@pytest.mark.parametrize("make", [FakeTTY, io.StringIO], ids=["terminal", "file"])
def test_a_resumed_run_starts_at_its_iteration_and_times_only_what_it_runs(monkeypatch, make):
    clock = FakeClock(monkeypatch)
    out = make()
    p = Progress(64000, stream=out)
    clock.now += 3600  # time before the resume counts for nothing
    p.begin(60000)
    if make is FakeTTY:
        assert "60,000/64,000" in screen(out.getvalue())[-1]  # drawn at once, where the run stands
    clock.now += 10
    p.update(60100, 0.1, 0.001, 1.0, 5000.0)
    p.end()
    last = screen(out.getvalue())[-2]  # (the last is the empty one after the final newline)
    # 10 iterations per second since the resume (not 6,010 since iteration 0): 3,900 left take 6:30
    assert "60,100/64,000" in last and "[00:10<06:30" in last


# -- in the training loop ----------------------------------------------------------------------------------------

def run_train(tmp_path, monkeypatch, stop_at: int | None = None, error: type = KeyboardInterrupt,
              resume: bool = False) -> tuple[str, BaseException | None]:
    """train() of cifar_resnet20 for 20 synthetic iterations (logged and checkpointed every 5) with a terminal for
    stderr, raising `error` in step `stop_at`: what the terminal received, and what train() raised."""
    torch = pytest.importorskip("torch")
    import archspec
    from archspec.runtime.data import DataConfig, make_data
    from archspec.runtime.recipe import resolve
    from archspec.runtime.train import TrainOptions, _plain_step, train

    device = torch.device("cpu")
    recipe = resolve(archspec.load("cifar_resnet20").recipe, {"iters": 20, "batch_size": 8, "log_interval": 5,
                                                              "eval_interval": 20, "dataset": "synthetic",
                                                              "no_warmup": True}, [])
    data = make_data(DataConfig(name="synthetic", root=None, batch_size=8, seed=0, device=device,
                                augment=recipe.augment, synthetic_size=80))
    steps = [0]

    def step(*args):
        steps[0] += 1
        if steps[0] == stop_at:
            raise error("stopped by the test")
        return _plain_step(*args)

    out = FakeTTY()
    options = TrainOptions(run_dir=tmp_path, device=device, checkpoint_interval=5, resume=resume)
    with monkeypatch.context() as m:
        m.setattr("sys.stderr", out)
        try:
            train(archspec.build("cifar_resnet20"), recipe, data, options, lambda text: None, step_fn=step)
        except (KeyboardInterrupt, RuntimeError) as e:
            return out.getvalue(), e
    return out.getvalue(), None


@pytest.mark.parametrize("error", [KeyboardInterrupt, RuntimeError], ids=["ctrl-c", "error"])
def test_the_training_loop_closes_the_bar_when_it_stops_on_an_exception(tmp_path, monkeypatch, error):
    before = live_bars()
    drawn, raised = run_train(tmp_path, monkeypatch, stop_at=13, error=error)
    assert isinstance(raised, error)
    assert live_bars() == before  # closed
    lines = screen(drawn)
    assert lines[-1] == "" and "10/20" in lines[-2] and "loss " in lines[-2]  # the bar as it stood, a newline


def test_a_resumed_run_draws_its_bar_from_the_checkpoints_iteration(tmp_path, monkeypatch):
    before = live_bars()
    drawn, raised = run_train(tmp_path, monkeypatch, stop_at=13)  # checkpoints at 5 and 10
    assert isinstance(raised, KeyboardInterrupt)
    drawn, raised = run_train(tmp_path, monkeypatch, resume=True)
    assert raised is None
    first = drawn.split("\r")[1]  # the first drawing, at begin
    assert "10/20" in first and " 50%" in first
    assert "20/20" in screen(drawn)[-2] and live_bars() == before
